//! Signed grants: any JSON parses to a grant or a typed error; a parsed
//! grant validates and checks its signature without a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| agentrail_fuzzing::grant::run(data));
