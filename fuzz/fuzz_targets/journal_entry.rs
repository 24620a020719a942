//! Journal entries (log leaves), as an auditor reads them from anywhere:
//! decoded and authenticated, or refused with a typed error.
#![no_main]

use agentrail_wire::entry::JournalEntry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = JournalEntry::decode(data) {
        let _ = entry.command();
        let _ = entry.authenticate();
    }
});
