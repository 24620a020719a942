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
    /// Signed commands received over HTTP and not answered yet: waiting
    /// for the verifier or the writer, or being committed.
    pub in_flight: AtomicU64,
    /// How long signed commands took from their arrival to their
    /// answer, as a histogram over [`LATENCY_BUCKETS_US`].
    latency: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    latency_sum_us: AtomicU64,
    /// The last snapshot saved, and how long the writer held the state
    /// still to serialize it (the longest such pause since the start too).
    pub snapshot_bytes: AtomicU64,
    pub snapshot_pause_us_last: AtomicU64,
    pub snapshot_pause_us_max: AtomicU64,
    /// How long the writer held the state for each batch (applying it,
    /// and serializing a snapshot when one fell due), as a histogram over
    /// [`PAUSE_BUCKETS_US`]; reads and the next batch wait that long.
    writer_pause: [AtomicU64; PAUSE_BUCKETS_US.len() + 1],
    pub writer_pause_us_max: AtomicU64,
}

/// The upper bounds (µs) of the writer pause histogram's buckets.
pub const PAUSE_BUCKETS_US: [u64; 19] = [
    10, 20, 50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500, 10_000, 20_000,
    50_000, 100_000, 1_000_000,
];

/// The upper bounds (µs) of the command latency histogram's buckets.
pub const LATENCY_BUCKETS_US: [u64; 12] = [
    500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    5_000_000,
];

/// Counts a signed command in flight until it is dropped (answered, or
/// abandoned by its client), then records its latency.
#[derive(Debug)]
pub struct InFlight<'a> {
    metrics: &'a Metrics,
    started: std::time::Instant,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        let us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.metrics.latency[bucket].fetch_add(1, Ordering::Relaxed);
        self.metrics.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Starts counting one signed command (see [`InFlight`]).
    pub fn command_started(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            metrics: self,
            started: std::time::Instant::now(),
        }
    }

    /// Records a snapshot the writer serialized in `pause_us`.
    pub fn snapshot_serialized(&self, pause_us: u64) {
        self.snapshot_pause_us_last
            .store(pause_us, Ordering::Relaxed);
        self.snapshot_pause_us_max
            .fetch_max(pause_us, Ordering::Relaxed);
    }

    /// Records one batch for which the writer held the state `us`.
    pub fn writer_paused(&self, us: u64) {
        let bucket = PAUSE_BUCKETS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(PAUSE_BUCKETS_US.len());
        self.writer_pause[bucket].fetch_add(1, Ordering::Relaxed);
        self.writer_pause_us_max.fetch_max(us, Ordering::Relaxed);
    }

    /// The writer's pauses so far: per bucket of [`PAUSE_BUCKETS_US`] (and
    /// one past the last), how many batches.
    pub fn writer_pauses(&self) -> Vec<u64> {
        self.writer_pause
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect()
    }

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
    /// `files` are the store's files and their sizes in bytes, where the
    /// store is on disk.
    pub fn render(
        &self,
        journal_len: u64,
        sizes: &[(&str, usize)],
        files: &[(&str, u64)],
    ) -> String {
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
        let gauges = [
            (
                "agentrail_commands_in_flight",
                "Signed commands received and not answered yet (queued, verifying or committing).",
                self.in_flight.load(Ordering::Relaxed),
            ),
            (
                "agentrail_snapshot_bytes",
                "Size of the last snapshot saved.",
                self.snapshot_bytes.load(Ordering::Relaxed),
            ),
            (
                "agentrail_snapshot_pause_microseconds",
                "How long the writer held the state still to serialize the last snapshot.",
                self.snapshot_pause_us_last.load(Ordering::Relaxed),
            ),
            (
                "agentrail_writer_pause_max_microseconds",
                "The longest the writer held the state for one batch since the node started.",
                self.writer_pause_us_max.load(Ordering::Relaxed),
            ),
            (
                "agentrail_snapshot_pause_max_microseconds",
                "The longest snapshot pause of the writer since the node started.",
                self.snapshot_pause_us_max.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP agentrail_store_file_bytes Size of the store's files on disk.\n# TYPE agentrail_store_file_bytes gauge"
        );
        for (file, bytes) in files {
            let _ = writeln!(out, "agentrail_store_file_bytes{{file=\"{file}\"}} {bytes}");
        }
        let name = "agentrail_writer_pause_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} How long the writer held the state for each batch (reads and the next batch wait).\n# TYPE {name} histogram"
        );
        let mut cumulative = 0;
        for (i, bucket) in self.writer_pause.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = PAUSE_BUCKETS_US
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |us| format!("{}", *us as f64 / 1e6));
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_count {cumulative}");
        let name = "agentrail_command_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Signed commands over HTTP, from the request's arrival to its answer.\n# TYPE {name} histogram"
        );
        let mut cumulative = 0;
        for (i, bucket) in self.latency.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = LATENCY_BUCKETS_US
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |us| format!("{}", *us as f64 / 1e6));
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(
            out,
            "{name}_sum {}\n{name}_count {cumulative}",
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
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
