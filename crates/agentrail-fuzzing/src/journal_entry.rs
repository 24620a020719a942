//! Journal entries (log leaves), as an auditor reads them from anywhere:
//! decoded and authenticated, or refused with a typed error.

use agentrail_wire::entry::JournalEntry;

pub fn run(data: &[u8]) {
    if let Ok(entry) = JournalEntry::decode(data) {
        let _ = entry.command();
        let _ = entry.authenticate("agentrail:agentrail.log/0011223344556677");
    }
}
