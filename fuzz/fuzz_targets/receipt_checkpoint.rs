//! Receipts, checkpoints and log keys from outside: parsed and verified
//! against a fixed key, refused with a typed error when they are not right.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| agentrail_fuzzing::receipt_checkpoint::run(data));
