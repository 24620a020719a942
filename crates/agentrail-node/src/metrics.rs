//! Counters for `/metrics`, in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub accepted: AtomicU64,
    /// Clock entries journaled (what fell due, applied when it did).
    pub ticks: AtomicU64,
    pub batches: AtomicU64,
    pub batch_entries: AtomicU64,
    pub queue_full: AtomicU64,
    pub unauthenticated: AtomicU64,
    pub signature_batches: AtomicU64,
    pub signatures_checked: AtomicU64,
    pub rate_limited: AtomicU64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn reject(&self, code: &'static str) {
        *self
            .rejected
            .lock()
            .expect("metrics lock")
            .entry(code)
            .or_default() += 1;
    }

    /// The Prometheus exposition text.
    /// The metrics in Prometheus' text format, with the journal's length
    /// and the state's record counts as gauges.
    pub fn render(&self, journal_len: u64, sizes: &[(&str, usize)]) -> String {
        let mut out = String::new();
        let counters = [
            (
                "agentrail_commands_accepted_total",
                "Commands accepted and journaled.",
                &self.accepted,
            ),
            (
                "agentrail_ticks_total",
                "Clock entries journaled: expiries, deadlines and windows applied when they fell due.",
                &self.ticks,
            ),
            (
                "agentrail_batches_total",
                "Journal batches committed (one fsync each).",
                &self.batches,
            ),
            (
                "agentrail_batch_entries_total",
                "Entries committed in batches.",
                &self.batch_entries,
            ),
            (
                "agentrail_queue_full_total",
                "Requests refused with 503 because the writer's queue was full.",
                &self.queue_full,
            ),
            (
                "agentrail_unauthenticated_total",
                "Requests refused for a missing or bad signature.",
                &self.unauthenticated,
            ),
            (
                "agentrail_signature_batches_total",
                "Batches of request signatures checked together.",
                &self.signature_batches,
            ),
            (
                "agentrail_signatures_checked_total",
                "Request signatures checked in batches.",
                &self.signatures_checked,
            ),
            (
                "agentrail_rate_limited_total",
                "Commands refused with 429 because their identity exceeded its rate.",
                &self.rate_limited,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP agentrail_commands_rejected_total Commands refused by the ledger, by code.\n# TYPE agentrail_commands_rejected_total counter"
        );
        for (code, count) in self.rejected.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "agentrail_commands_rejected_total{{code=\"{code}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP agentrail_journal_entries Entries in the journal.\n# TYPE agentrail_journal_entries gauge\nagentrail_journal_entries {journal_len}"
        );
        let _ = writeln!(
            out,
            "# HELP agentrail_state_records Records the ledger's state holds in memory, by kind.\n# TYPE agentrail_state_records gauge"
        );
        for (kind, count) in sizes {
            let _ = writeln!(out, "agentrail_state_records{{kind=\"{kind}\"}} {count}");
        }
        out
    }
}
