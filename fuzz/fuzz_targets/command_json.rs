//! Request bodies: any bytes parse to a command or a typed error, and a
//! parsed command serializes and parses back to itself.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| agentrail_fuzzing::command_json::run(data));
