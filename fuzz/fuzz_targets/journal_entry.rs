//! Journal entries (log leaves), as an auditor reads them from anywhere:
//! decoded and authenticated, or refused with a typed error.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| agentrail_fuzzing::journal_entry::run(data));
