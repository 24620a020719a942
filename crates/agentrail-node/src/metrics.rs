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

/// Appends the chain follower's gauges.
pub fn render_chain(out: &mut String, chain: &agentrail_wire::api::ChainHealth) {
    let gauges = [
        (
            "agentrail_chain_alarm",
            "1 when the chain contradicts what the ledger credited (a reorg deeper than the confirmations); crediting has stopped.",
            u64::from(chain.alarm.is_some()),
        ),
        (
            "agentrail_chain_rpc_up",
            "1 when the last call to the chain's RPC endpoint succeeded.",
            u64::from(chain.rpc_ok),
        ),
        (
            "agentrail_chain_head_block",
            "The newest block the chain follower saw.",
            chain.head.unwrap_or_default(),
        ),
        (
            "agentrail_chain_deposits_credited",
            "Vault deposits the ledger credited.",
            chain.deposits_credited,
        ),
        (
            "agentrail_chain_withdrawals_pending",
            "Withdrawals debited and not yet paid on chain.",
            chain.pending_withdrawals,
        ),
        (
            "agentrail_chain_anchored_size",
            "The log size last anchored in the vault.",
            chain.anchored_size.unwrap_or_default(),
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
}
