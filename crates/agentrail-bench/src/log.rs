//! `agentrail bench log`: the transparency log's costs, measured.
//!
//! - appends per second to an in-memory RFC 9162 tree (leaf hashes given),
//!   and the cost of hashing a typical leaf;
//! - inclusion and consistency proofs at the configured size: build and
//!   verify time, size in bytes; also built from the durable store;
//! - signing one checkpoint (once per batch);
//! - the log's share of durable appends: the real store (journal entries and
//!   tree tiles in one transaction) against the journal as it was before
//!   the log (each entry sealed with its SHA-256 checksum, one redb table,
//!   the same durability), side by side.

use std::time::Instant;

use agentrail_log::merkle::{self, Hash, MemoryTree};
use agentrail_log::{Checkpoint, LogSigner};
use agentrail_sim::rng::Rng;
use agentrail_store::Store;
use redb::{Database, Durability, ReadableTableMetadata, TableDefinition};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// What to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogBenchConfig {
    /// Leaves in the in-memory tree (proofs are measured at this size).
    pub leaves: u64,
    /// Entries appended durably, in batches of `batch`.
    pub durable_entries: usize,
    pub batch: usize,
}

impl Default for LogBenchConfig {
    fn default() -> LogBenchConfig {
        LogBenchConfig {
            leaves: 1_000_000,
            durable_entries: 40_000,
            batch: 100,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogBenchReport {
    pub bench: &'static str,
    pub leaves: u64,
    pub tree_appends_per_s: f64,
    /// Hashing one 1 KiB leaf.
    pub leaf_hash_ns: f64,
    pub inclusion_build_us: f64,
    pub inclusion_verify_us: f64,
    pub inclusion_proof_bytes: usize,
    pub consistency_build_us: f64,
    pub consistency_verify_us: f64,
    pub consistency_proof_bytes: usize,
    /// An inclusion proof read from the durable store's nodes.
    pub store_inclusion_build_us: f64,
    pub checkpoint_sign_us: f64,
    pub durable_batch: usize,
    /// Entries per second (median of alternating rounds): journal and tree,
    /// one fsync per batch.
    pub durable_with_log_per_s: f64,
    /// Entries per second: the same entries in the journal without the log.
    pub durable_without_log_per_s: f64,
    /// How much slower appending is with the log, in percent.
    pub log_overhead_percent: f64,
}

fn entry(index: usize) -> Vec<u8> {
    let mut bytes = format!("{{\"version\":1,\"index\":{index},\"body\":\"").into_bytes();
    bytes.resize(1_000, b'x');
    bytes.extend_from_slice(b"\"}");
    bytes
}

const BARE: TableDefinition<u64, &[u8]> = TableDefinition::new("bare_journal");
/// Alternating rounds of the durable comparison.
const DURABLE_ROUNDS: usize = 8;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One batch into the journal as it was before the log: each entry sealed
/// with a SHA-256 checksum binding it to its index, one redb table, one
/// fsync per batch.
fn append_without_log(bare: &Database, batch: &[Vec<u8>]) {
    let mut txn = bare.begin_write().expect("write");
    txn.set_durability(Durability::Immediate)
        .expect("durability");
    {
        let mut table = txn.open_table(BARE).expect("table");
        let first = table.len().expect("length");
        for (offset, entry) in batch.iter().enumerate() {
            let index = first + offset as u64;
            let digest = Sha256::new()
                .chain_update(b"entry")
                .chain_update(index.to_le_bytes())
                .chain_update(entry)
                .finalize();
            let mut sealed = digest[..16].to_vec();
            sealed.extend_from_slice(entry);
            table.insert(index, sealed.as_slice()).expect("insert");
        }
    }
    txn.commit().expect("commit");
}

/// Runs every measurement; `progress(stage)` is called before each.
pub fn run_log_bench(config: LogBenchConfig, progress: &mut dyn FnMut(&str)) -> LogBenchReport {
    assert!(config.leaves >= 2 && config.durable_entries > 0 && config.batch > 0);
    progress("tree_appends");
    let leaves: Vec<Hash> = (0..config.leaves)
        .map(|i| merkle::leaf_hash(&i.to_le_bytes()))
        .collect();
    let mut tree = MemoryTree::new();
    let started = Instant::now();
    for leaf in &leaves {
        tree.push(*leaf);
    }
    let tree_appends_per_s = config.leaves as f64 / started.elapsed().as_secs_f64();
    let root = tree.root();

    progress("leaf_hash");
    let sample = entry(7);
    let rounds = 100_000;
    let started = Instant::now();
    let mut sink = 0u8;
    for _ in 0..rounds {
        sink ^= merkle::leaf_hash(std::hint::black_box(&sample))[0];
    }
    std::hint::black_box(sink);
    let leaf_hash_ns = started.elapsed().as_secs_f64() * 1e9 / rounds as f64;

    progress("proofs");
    let size = config.leaves;
    let samples = 10_000;
    let mut rng = Rng::new(42);
    let positions: Vec<u64> = (0..samples).map(|_| rng.below(size)).collect();
    let started = Instant::now();
    let proofs: Vec<Vec<Hash>> = positions
        .iter()
        .map(|&index| merkle::inclusion_proof(&tree, index, size).expect("in range"))
        .collect();
    let inclusion_build_us = started.elapsed().as_secs_f64() * 1e6 / samples as f64;
    let started = Instant::now();
    for (index, proof) in positions.iter().zip(&proofs) {
        merkle::verify_inclusion(&leaves[*index as usize], *index, size, proof, &root)
            .expect("a proof the tree built verifies");
    }
    let inclusion_verify_us = started.elapsed().as_secs_f64() * 1e6 / samples as f64;
    let inclusion_proof_bytes = proofs.iter().map(Vec::len).max().unwrap_or(0) * 32;

    let firsts: Vec<u64> = positions.iter().map(|p| (*p).max(1)).collect();
    let started = Instant::now();
    let consistency: Vec<(u64, Vec<Hash>)> = firsts
        .iter()
        .map(|&first| {
            (
                first,
                merkle::consistency_proof(&tree, first, size).expect("in range"),
            )
        })
        .collect();
    let consistency_build_us = started.elapsed().as_secs_f64() * 1e6 / samples as f64;
    let roots: Vec<Hash> = firsts
        .iter()
        .map(|&first| merkle::root(&tree, first).expect("in range"))
        .collect();
    let started = Instant::now();
    for ((first, proof), first_root) in consistency.iter().zip(&roots) {
        merkle::verify_consistency(*first, size, first_root, &root, proof)
            .expect("a proof the tree built verifies");
    }
    let consistency_verify_us = started.elapsed().as_secs_f64() * 1e6 / samples as f64;
    let consistency_proof_bytes = consistency.iter().map(|(_, p)| p.len()).max().unwrap_or(0) * 32;

    progress("checkpoint_sign");
    let signer = LogSigner::new(
        "agentrail.bench/log",
        ed25519_dalek::SigningKey::from_bytes(&[3; 32]),
    )
    .expect("a valid name");
    let rounds = 2_000;
    let started = Instant::now();
    for size in 0..rounds {
        std::hint::black_box(
            signer.sign(
                &Checkpoint {
                    origin: "agentrail.bench/log".into(),
                    size,
                    root,
                }
                .to_text(),
            ),
        );
    }
    let checkpoint_sign_us = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;

    progress("durable");
    // Both journals grow side by side, in alternating rounds, so that the
    // disk's moods fall on both alike; the medians are reported.
    let entries: Vec<Vec<u8>> = (0..config.durable_entries).map(entry).collect();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(dir.path()).expect("a fresh store");
    let bare = Database::create(dir.path().join("bare.redb")).expect("a bare database");
    let rounds = DURABLE_ROUNDS.min(entries.len());
    let per_round = entries.len().div_ceil(rounds);
    let (mut with_log, mut without_log) = (Vec::new(), Vec::new());
    for round in entries.chunks(per_round) {
        let started = Instant::now();
        for batch in round.chunks(config.batch) {
            store.append_batch(batch).expect("append");
        }
        with_log.push(round.len() as f64 / started.elapsed().as_secs_f64());
        let started = Instant::now();
        for batch in round.chunks(config.batch) {
            append_without_log(&bare, batch);
        }
        without_log.push(round.len() as f64 / started.elapsed().as_secs_f64());
    }
    let durable_with_log_per_s = median(&mut with_log);
    let durable_without_log_per_s = median(&mut without_log);
    let store_size = store.len().expect("length");
    let mut rng = Rng::new(7);
    let started = Instant::now();
    for _ in 0..1_000 {
        let index = rng.below(store_size);
        store
            .with_tree(|nodes| merkle::inclusion_proof(nodes, index, store_size))
            .expect("a stored proof");
    }
    let store_inclusion_build_us = started.elapsed().as_secs_f64() * 1e6 / 1_000.0;

    LogBenchReport {
        bench: "log",
        leaves: config.leaves,
        tree_appends_per_s,
        leaf_hash_ns,
        inclusion_build_us,
        inclusion_verify_us,
        inclusion_proof_bytes,
        consistency_build_us,
        consistency_verify_us,
        consistency_proof_bytes,
        store_inclusion_build_us,
        checkpoint_sign_us,
        durable_batch: config.batch,
        durable_with_log_per_s,
        durable_without_log_per_s,
        log_overhead_percent: 100.0 * (durable_without_log_per_s / durable_with_log_per_s - 1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_run_measures_everything() {
        let report = run_log_bench(
            LogBenchConfig {
                leaves: 1_000,
                durable_entries: 200,
                batch: 50,
            },
            &mut |_| {},
        );
        assert_eq!(report.inclusion_proof_bytes, 10 * 32);
        assert!(report.tree_appends_per_s > 0.0 && report.durable_with_log_per_s > 0.0);
    }
}
