//! x402 headers: PAYMENT-SIGNATURE / X-PAYMENT, PAYMENT-REQUIRED and
//! PAYMENT-RESPONSE decode to their shapes or a typed error.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| agentrail_fuzzing::x402_headers::run(data));
