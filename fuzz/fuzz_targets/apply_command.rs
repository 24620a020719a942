//! Any parsed command, from any of a small world's identities, applied to
//! a ledger with accounts, a mandate, a channel, a listing and a task:
//! never a panic, and every invariant holds after it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| agentrail_fuzzing::apply_command::run(data));
