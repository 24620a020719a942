//! The channel state machine, driven by bytes: opens, top-ups, vouchers
//! (new, replayed, forged, over the deposit), collects, closes by either
//! side and time passing. After every step every invariant holds, the
//! payee never holds more than the deposit, and the payer never loses more
//! than the best vouchers it signed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| agentrail_fuzzing::channel_state::run(data));
