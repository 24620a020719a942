//! Amounts and did:key identities as people and peers type them: parsed
//! or refused, and what parses prints back to itself.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| agentrail_fuzzing::amount_did::run(data));
