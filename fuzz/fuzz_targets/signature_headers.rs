//! RFC 9421 signature headers: any three header values and any body are
//! refused with a typed error or checked; never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| agentrail_fuzzing::signature_headers::run(data));
