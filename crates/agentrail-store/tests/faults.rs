//! The store's durability contract, checked through a disk that fails: power
//! cuts at every point of a commit, torn writes, a full disk, bytes changed
//! after writing, damaged snapshots.

use std::panic::{AssertUnwindSafe, catch_unwind};

use agentrail_log::merkle::{self, MemoryTree, Nodes};
use agentrail_store::fault::FaultyDisk;
use agentrail_store::{Store, StoreError};

const DISK_BYTES: u64 = 256 << 20;

/// xorshift64*: enough randomness for choosing crash points, seeded.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound.max(1)
    }
}

fn entry(batch: u64, index: u64) -> Vec<u8> {
    let mut bytes = format!("batch {batch} entry {index} ").into_bytes();
    bytes.resize(40 + (index as usize * 37) % 300, b'x');
    bytes
}

fn batch(number: u64, size: u64) -> Vec<Vec<u8>> {
    (0..size).map(|index| entry(number, index)).collect()
}

/// The parties an entry is indexed under: one of five, chosen by its
/// length, and a sixth shared by every third length.
fn parties_of(entry: &[u8]) -> Vec<[u8; 32]> {
    let mut parties = vec![[(entry.len() % 5) as u8; 32]];
    if entry.len().is_multiple_of(3) {
        parties.push([0xee; 32]);
    }
    parties
}

/// Appends `entries` indexed under their parties.
fn append(store: &Store, entries: &[Vec<u8>]) -> Result<u64, StoreError> {
    let parties: Vec<Vec<[u8; 32]>> = entries.iter().map(|e| parties_of(e)).collect();
    let slices: Vec<&[[u8; 32]]> = parties.iter().map(Vec::as_slice).collect();
    store
        .append_logged(entries, &slices, &[])
        .map(|appended| appended.first)
}

/// Checks that the history index lists exactly the entries of each party,
/// newest first, and pages by `before`.
fn check_history(store: &Store, entries: &[Vec<u8>]) {
    assert_eq!(store.history_covers().unwrap(), entries.len() as u64);
    for party in (0..5u8).map(|p| [p; 32]).chain([[0xee; 32]]) {
        let expected: Vec<u64> = (0..entries.len() as u64)
            .rev()
            .filter(|&i| parties_of(&entries[i as usize]).contains(&party))
            .collect();
        let mut found: Vec<u64> = Vec::new();
        let mut before = None;
        loop {
            let page = store.history(&party, before, 7).unwrap();
            found.extend(&page);
            match page.last() {
                Some(&last) if page.len() == 7 => before = Some(last),
                _ => break,
            }
        }
        assert_eq!(found, expected, "the history index of a party is wrong");
    }
}

fn open(journal: &FaultyDisk, snapshots: &FaultyDisk) -> Result<Store, StoreError> {
    Store::open_with_backends(journal.clone(), snapshots.clone(), || {
        FaultyDisk::new(DISK_BYTES)
    })
}

/// Every entry, after checking that the stored Merkle tree is the tree of
/// exactly these entries (same size, same root, proofs that verify).
fn all_entries(store: &Store) -> Vec<Vec<u8>> {
    let len = store.len().unwrap();
    let entries = store.read(0, len as usize).unwrap();
    assert_eq!(entries.len() as u64, len);
    assert_eq!(store.tree_size().unwrap(), len, "tree and journal disagree");
    let mut expected = MemoryTree::new();
    for entry in &entries {
        expected.push(merkle::leaf_hash(entry));
    }
    let root = store.with_tree(|nodes| merkle::root(nodes, len)).unwrap();
    assert_eq!(root, expected.root(), "the stored tree's root is wrong");
    if len > 0 {
        let index = len / 2;
        let proof = store
            .with_tree(|nodes| merkle::inclusion_proof(nodes, index, len))
            .unwrap();
        let leaf = merkle::leaf_hash(&entries[index as usize]);
        assert_eq!(
            merkle::verify_inclusion(&leaf, index, len, &proof, &root),
            Ok(())
        );
    }
    entries
}

#[test]
fn appended_batches_are_numbered_read_back_and_synced_once_each() {
    let (journal, snapshots) = (FaultyDisk::new(DISK_BYTES), FaultyDisk::new(DISK_BYTES));
    let store = open(&journal, &snapshots).unwrap();
    let syncs_before = journal.syncs();
    assert_eq!(store.append_batch(&batch(0, 3)).unwrap(), 0);
    assert_eq!(store.append_batch(&batch(1, 5)).unwrap(), 3);
    // Group commit: a batch costs one sync whatever its size (plus one when
    // the file has to grow), where one commit per entry would cost 500.
    assert_eq!(journal.syncs() - syncs_before, 2);
    for _ in 0..3 {
        let before = journal.syncs();
        store.append_batch(&batch(2, 500)).unwrap();
        assert!(
            journal.syncs() - before <= 3,
            "{} syncs for one batch",
            journal.syncs() - before
        );
    }
    let before = journal.syncs();
    store.append_batch(&batch(2, 1)).unwrap();
    assert_eq!(journal.syncs() - before, 1);
    assert_eq!(store.read(3, 2).unwrap(), batch(1, 2));
    assert_eq!(store.len().unwrap(), 1_509);
    assert!(matches!(
        store.append_batch::<Vec<u8>>(&[]),
        Err(StoreError::Invalid(_))
    ));
}

#[test]
fn crash_at_every_point_keeps_every_acknowledged_batch() {
    let rounds = std::env::var("AGENTRAIL_STORE_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60u64);
    // How the in-flight batches ended: acknowledged, landed without an
    // acknowledgement, lost. Each must happen, or the test tests nothing.
    let mut endings = [0u32; 3];
    for seed in 1..=rounds {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let (mut journal, snapshots) = (FaultyDisk::new(DISK_BYTES), FaultyDisk::new(DISK_BYTES));
        let mut acknowledged: Vec<Vec<u8>> = Vec::new();
        for round in 0..4 {
            let store = open(&journal, &snapshots)
                .unwrap_or_else(|e| panic!("seed {seed}: reopen failed: {e}"));
            assert_eq!(
                all_entries(&store),
                acknowledged,
                "seed {seed} round {round}: acknowledged entries changed"
            );
            for number in 0..rng.below(4) {
                let entries = batch(seed * 100 + round * 10 + number, 1 + rng.below(40));
                append(&store, &entries).unwrap();
                acknowledged.extend(entries);
            }
            // The power fails somewhere inside the next commit.
            journal.fail_power_after(rng.below(12));
            let in_flight = batch(seed * 100 + round * 10 + 9, 1 + rng.below(40));
            let outcome = append(&store, &in_flight);
            drop(store);
            let cut = journal.unsynced_operations() as u64;
            let keep = rng.below(cut + 1) as usize;
            let torn = (rng.below(2) == 0).then(|| rng.below(4096) as usize);
            journal = journal.crash(keep, torn);
            let store = open(&journal, &snapshots)
                .unwrap_or_else(|e| panic!("seed {seed}: open after crash failed: {e}"));
            let found = all_entries(&store);
            check_history(&store, &found);
            let landed = found.len() > acknowledged.len();
            if outcome.is_ok() {
                assert!(landed, "seed {seed}: an acknowledged batch was lost");
            }
            endings[if outcome.is_ok() {
                0
            } else if landed {
                1
            } else {
                2
            }] += 1;
            if landed {
                acknowledged.extend(in_flight);
            }
            assert_eq!(
                found, acknowledged,
                "seed {seed} round {round}: a batch landed in part or changed"
            );
        }
    }
    // A lost acknowledged batch or a panic fails the round above.
    println!(
        "store-crash: rounds={} in_flight_acknowledged={} in_flight_landed_unacknowledged={} in_flight_unacknowledged_lost={} lost=0 invariant_violations=0 panics=0",
        rounds * 4,
        endings[0],
        endings[1],
        endings[2]
    );
    assert!(
        endings[0] > 0 && endings[2] > 0,
        "crash points too narrow: {endings:?}"
    );
}

#[test]
fn a_full_disk_refuses_the_batch_and_loses_nothing() {
    let (journal, snapshots) = (FaultyDisk::new(DISK_BYTES), FaultyDisk::new(DISK_BYTES));
    let store = open(&journal, &snapshots).unwrap();
    let first = batch(1, 20);
    store.append_batch(&first).unwrap();
    journal.set_capacity(journal.len_bytes());
    let big: Vec<Vec<u8>> = (0..2_000).map(|i| entry(2, i)).collect();
    let refused = store.append_batch(&big);
    assert!(matches!(refused, Err(StoreError::Io(_))), "{refused:?}");
    assert!(matches!(
        store.append_batch(&first),
        Err(StoreError::NeedsReopen)
    ));
    drop(store);

    // Space is freed; the store reopens with exactly what was acknowledged.
    journal.set_capacity(DISK_BYTES);
    let store = open(&journal, &snapshots).unwrap();
    let found = all_entries(&store);
    assert!(
        found == first || found == [first.clone(), big.clone()].concat(),
        "a refused batch landed in part"
    );
    store.append_batch(&batch(3, 5)).unwrap();
}

#[test]
fn corrupt_bytes_are_reported_never_served() {
    let (journal, snapshots) = (FaultyDisk::new(DISK_BYTES), FaultyDisk::new(DISK_BYTES));
    let mut expected = Vec::new();
    {
        let store = open(&journal, &snapshots).unwrap();
        for number in 0..6 {
            let entries = batch(number, 30);
            store.append_batch(&entries).unwrap();
            expected.extend(entries);
        }
    }
    let size = journal.len_bytes();
    let mut rng = Rng(0x5eed);
    let (mut refused, mut served) = (0, 0);
    for _ in 0..200 {
        let damaged = journal.fork();
        let offset = rng.below(size);
        damaged.corrupt(offset, 1 << rng.below(8));
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let store = open(&damaged, &snapshots)?;
            let len = store.len()?;
            store.read(0, len as usize)
        }));
        match outcome {
            Err(_) => panic!("a corrupt byte at {offset} made the store panic"),
            Ok(Err(StoreError::Corrupt(_))) => refused += 1,
            Ok(Err(other)) => panic!("a corrupt byte at {offset} gave {other:?}, not Corrupt"),
            Ok(Ok(entries)) => {
                assert_eq!(
                    entries, expected,
                    "a corrupt byte at {offset} changed what the store serves"
                );
                served += 1;
            }
        }
    }
    // Bytes in free or unused space change nothing; the rest must be caught.
    assert!(refused > 0, "no corruption was detected ({served} served)");
}

#[test]
fn a_corrupt_snapshot_falls_back_to_an_older_one_or_to_replay() {
    let (journal, snapshots) = (FaultyDisk::new(DISK_BYTES), FaultyDisk::new(DISK_BYTES));
    {
        let store = open(&journal, &snapshots).unwrap();
        store.append_batch(&batch(1, 10)).unwrap();
        store.save_snapshot(4, b"state after 4").unwrap();
        store.save_snapshot(7, b"state after 7").unwrap();
        store
            .save_damaged_snapshot_for_tests(10, b"state after 10")
            .unwrap();
        let recovery = store.recovery().unwrap();
        assert_eq!(
            recovery.snapshot.map(|s| (s.covers, s.bytes)),
            Some((7, b"state after 7".to_vec()))
        );
        assert_eq!(recovery.skipped_snapshots, vec![10]);
        assert!(matches!(
            store.save_snapshot(11, b"too far"),
            Err(StoreError::Invalid(_))
        ));
    }
    // Damage anywhere in the snapshot file: it is replaced, and recovery
    // replays the whole journal, which is intact.
    let size = snapshots.len_bytes();
    for offset in (0..size).step_by(97) {
        let damaged = snapshots.fork();
        damaged.corrupt(offset, 0x10);
        let store =
            Store::open_with_backends(journal.fork(), damaged, || FaultyDisk::new(DISK_BYTES))
                .unwrap();
        let recovery = store.recovery().unwrap();
        assert_eq!(recovery.journal_len, 10);
        if recovery.snapshots_discarded {
            assert_eq!(recovery.snapshot, None);
        } else if let Some(snapshot) = recovery.snapshot {
            assert!(
                snapshot.bytes == b"state after 7" || snapshot.bytes == b"state after 4",
                "offset {offset}"
            );
        }
    }
}

#[test]
fn the_proofs_the_stored_tree_builds_verify_for_every_size_up_to_300() {
    let (journal, snapshots) = (FaultyDisk::new(DISK_BYTES), FaultyDisk::new(DISK_BYTES));
    let store = open(&journal, &snapshots).unwrap();
    let mut expected = MemoryTree::new();
    let mut roots = vec![expected.root()];
    for size in 1..=300u64 {
        let leaf = entry(size, size);
        store.append_batch(std::slice::from_ref(&leaf)).unwrap();
        expected.push(merkle::leaf_hash(&leaf));
        let root = expected.root();
        roots.push(root);
        let stored_root = store.with_tree(|nodes| merkle::root(nodes, size)).unwrap();
        assert_eq!(stored_root, root, "size {size}");
        // Every index of small trees and of trees around the first full
        // tile; a sample elsewhere.
        let every = size <= 64 || (250..=262).contains(&size);
        let step = if every { 1 } else { (size / 16) as usize };
        for index in (0..size).step_by(step).chain([size - 1]) {
            let proof = store
                .with_tree(|nodes| merkle::inclusion_proof(nodes, index, size))
                .unwrap();
            let leaf_hash = expected.node(0, index).unwrap();
            assert_eq!(
                merkle::verify_inclusion(&leaf_hash, index, size, &proof, &root),
                Ok(())
            );
        }
        for first in [1, size / 3, size / 2, size - 1] {
            let proof = store
                .with_tree(|nodes| merkle::consistency_proof(nodes, first, size))
                .unwrap();
            assert_eq!(
                merkle::verify_consistency(first, size, &roots[first as usize], &root, &proof),
                Ok(())
            );
        }
    }
    // Reopened, the tree is rebuilt from its tiles and the journal tail.
    drop(store);
    let store = open(&journal, &snapshots).unwrap();
    assert_eq!(all_entries(&store).len(), 300);
    let tiles = store.tile_hashes(0, 0, 256).unwrap().unwrap();
    assert_eq!(tiles[255], expected.node(0, 255).unwrap());
    assert_eq!(store.tile_hashes(0, 256, 44).unwrap().unwrap().len(), 44);
    assert_eq!(store.tile_hashes(0, 256, 45).unwrap(), None);
}
