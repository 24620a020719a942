//! agentrail-store: the node's journal and snapshots, on redb.
//!
//! The journal is an append-only sequence of opaque entries numbered from 0
//! (the node decides what an entry holds: the signed request as received,
//! its time and its outcome). Entries are appended in **batches**: one redb
//! write transaction, committed with [`redb::Durability::Immediate`], i.e.
//! one fsync per batch (group commit). Snapshots are opaque bytes tagged with
//! the number of entries they cover.
//!
//! # Durability contract
//!
//! - When [`Store::append_batch`] returns `Ok(first)`, every entry of the
//!   batch is on stable storage, numbered `first..first + batch.len()`, and
//!   survives a crash or a power cut. Callers answer clients only then.
//! - A batch is atomic: after any crash it is wholly present or wholly
//!   absent, never in part.
//! - When `append_batch` returns an error, the batch's fate is unknown until
//!   the store is reopened: redb applies a failed commit fully or not at all,
//!   but it may already be durable. The store refuses further writes
//!   ([`StoreError::NeedsReopen`]) until [`Store::open`] is called again and
//!   [`Store::len`] tells what landed. Callers must not answer the batch's
//!   clients with success or failure before that.
//! - [`Store::save_snapshot`] is atomic and durable on return; a snapshot
//!   never replaces the journal entries it covers (the journal is also the
//!   transparency log and is never truncated).
//! - The journal is also an RFC 9162 Merkle tree, stored as C2SP tiles
//!   (`tree.rs`): each full tile is written in the transaction of the batch
//!   that completes it, so the tree and the journal never disagree after a
//!   crash. Proofs read O(log n) tiles (`agentrail_log::merkle`).
//! - Every read checks a SHA-256 checksum that binds each entry to its index
//!   and each snapshot to its coverage, so a corrupt byte is an error, never
//!   a wrong answer.
//!
//! # Failure analysis
//!
//! | failure | what happens | tested by |
//! |---|---|---|
//! | crash between write and fsync | unsynced writes may be lost, in any prefix; redb's commit is one header switch guarded by checksums, so the newest batch found is the last one whose commit reached the disk: every acknowledged batch, and possibly the unacknowledged one in flight, whole | `crash_at_every_point_keeps_every_acknowledged_batch` (power cut after a random number of writes, a random prefix of unsynced writes kept) |
//! | torn write (a write half done) | the header or page checksum fails; redb falls back to the previous commit | same test: half of the crashes tear the next write at a random byte |
//! | full disk | the write fails with an I/O error (`StorageFull`) reported as [`StoreError::Io`]; nothing acknowledged is touched; the store refuses writes until reopened, and works again once space is freed | `a_full_disk_refuses_the_batch_and_loses_nothing` |
//! | corrupt tail (bytes changed after being written) | the integrity check on open (`set_check_integrity_on_open`) or the entry checksum reports [`StoreError::Corrupt`]; the store never serves a changed entry and never invents history: the operator restores the journal from a mirror of the log | `corrupt_bytes_are_reported_never_served` (200 random bit flips: each is caught or harmless, none panics) |
//! | corrupt snapshot | snapshots live in their own database, a cache derived from the journal: a damaged snapshot file fails its integrity check at open and is replaced by an empty one (`Recovery::snapshots_discarded`), a snapshot record that fails its own checksum is skipped for an older one (`Recovery::skipped_snapshots`); recovery then replays more of the intact journal | `a_corrupt_snapshot_falls_back_to_an_older_one_or_to_replay` |
//!
//! # History index
//!
//! Which entries concern each party (a 32-byte key the node chooses: the
//! identities an entry names) is a table `(party, index)` in the journal's
//! database, written in the transaction of the batch it indexes, so that a
//! node's memory does not grow with its history and the index never
//! disagrees with the journal after a crash. A journal written before the
//! index existed is indexed on open by the caller ([`Store::history_covers`],
//! [`Store::index_history`]).
//!
//! # Archive
//!
//! Records the node's state no longer holds (ended a retention ago) are
//! kept by key in an archive table, written in the transaction of the
//! batch whose state forgot them, each sealed with a checksum of its key
//! and bytes ([`Store::archived`]).
//!
//! Opening runs redb's integrity check over the whole file (every page
//! checksum), which costs a full read of the database at start-up; that is
//! the price of never trusting a file altered behind redb's back.

#![forbid(unsafe_code)]

pub mod fault;
mod tree;

pub use tree::TILE_WIDTH;

use std::path::Path;

use agentrail_log::merkle::{self, Hash, Nodes, TreeError};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, StorageBackend,
    TableDefinition,
};
use sha2::{Digest, Sha256};
use tree::{Edge, TILES, TableTiles, TileNodes};

const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("journal_entries_v2");
const SNAPSHOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("snapshots_v1");
/// The history index: `(party, entry index)`, nothing stored beside the key.
const HISTORY: TableDefinition<(&[u8; 32], u64), ()> = TableDefinition::new("history_v1");
/// Records the node's state forgot, by key, as their last view: written
/// in the transaction of the batch whose state forgot them.
const ARCHIVE: TableDefinition<&str, &[u8]> = TableDefinition::new("archive_v1");
/// Small counters of the journal's database.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta_v1");
/// Entries `0..n` whose parties are in [`HISTORY`].
const HISTORY_COVERS: &str = "history_covers";

/// Snapshots kept; older ones are deleted when a new one is saved.
pub const SNAPSHOTS_KEPT: usize = 2;
/// Largest entry accepted.
pub const ENTRY_BYTES_MAX: usize = 1 << 20;
/// Largest batch accepted.
pub const BATCH_ENTRIES_MAX: usize = 8_192;
/// Most parties one entry may be indexed under.
pub const PARTIES_PER_ENTRY_MAX: usize = 256;
/// Largest archived record accepted.
pub const ARCHIVED_BYTES_MAX: usize = 1 << 20;
/// Longest archive key accepted.
pub const ARCHIVE_KEY_BYTES_MAX: usize = 256;
/// Most entry indices one history read returns.
pub const HISTORY_READ_MAX: usize = 1_024;
/// Memory redb may use to cache the journal's pages. Its default (1 GiB)
/// lets a busy node's resident memory grow by every page written until the
/// cache is full, and fresh memory costs page faults on the writing path;
/// the operating system's page cache serves older pages just as well.
pub const JOURNAL_CACHE_BYTES: usize = 64 << 20;
/// The same for snapshots, which are written whole and read once at start.
const SNAPSHOT_CACHE_BYTES: usize = 1 << 20;
/// Bytes of checksum in front of every stored entry and snapshot.
const CHECKSUM_BYTES: usize = 16;

/// What went wrong, classified by what the caller should do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The storage failed (full disk, I/O error). Nothing acknowledged is
    /// lost; the store must be reopened before it writes again.
    #[error("storage failed: {0}")]
    Io(String),
    /// A write failed earlier; reopen the store to learn what landed.
    #[error("a write failed earlier; reopen the store to learn what is durable")]
    NeedsReopen,
    /// Stored bytes do not match their checksum, or the file is damaged.
    #[error("the store is corrupt: {0}")]
    Corrupt(String),
    /// The caller asked for something outside the store's bounds.
    #[error("invalid request: {0}")]
    Invalid(&'static str),
    /// The replica a replicated batch goes to first refused it or could
    /// not be reached ([`Store::append_replicated`]).
    #[error("the replica: {0}")]
    Replica(String),
}

impl From<redb::Error> for StoreError {
    fn from(error: redb::Error) -> StoreError {
        match error {
            redb::Error::Corrupted(message) => StoreError::Corrupt(message),
            redb::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
                StoreError::Corrupt(io.to_string())
            }
            other => StoreError::Io(other.to_string()),
        }
    }
}

fn err<E: Into<redb::Error>>(error: E) -> StoreError {
    StoreError::from(error.into())
}

/// Opening can fail with a panic deep in redb on a damaged file when the
/// integrity check is off; with it on, damage is `Corrupted` or an I/O error
/// of kind `InvalidData`, both mapped to [`StoreError::Corrupt`].
fn open_database(result: Result<Database, redb::DatabaseError>) -> Result<Database, StoreError> {
    result.map_err(err)
}

/// A snapshot and the number of journal entries it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub covers: u64,
    pub bytes: Vec<u8>,
}

/// Where recovery starts: the newest valid snapshot, if any, and what was
/// skipped on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    pub snapshot: Option<Snapshot>,
    /// Coverage of snapshots that failed their checksum.
    pub skipped_snapshots: Vec<u64>,
    /// The snapshot database was damaged at open and replaced by an empty one.
    pub snapshots_discarded: bool,
    /// Entries in the journal.
    pub journal_len: u64,
}

/// Where a batch landed in the journal and the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Index of the batch's first entry.
    pub first: u64,
    /// Each entry's RFC 9162 leaf hash.
    pub leaf_hashes: Vec<Hash>,
    /// The tree's root after the batch.
    pub root: Hash,
}

/// What takes a batch before the store commits it
/// ([`Store::append_replicated`]).
pub type Replicate<'a> = &'a mut dyn FnMut(&Appended) -> Result<(), StoreError>;

fn tree_error(error: TreeError) -> StoreError {
    match error {
        TreeError::Storage(message) => StoreError::Io(message),
        TreeError::Missing { level, index } => {
            StoreError::Corrupt(format!("Merkle tree node {level}/{index} is missing"))
        }
        TreeError::OutOfRange { .. } => StoreError::Invalid("outside the tree"),
        other => StoreError::Io(other.to_string()),
    }
}

/// Checks that `parties` names the parties of `entries` entries (or none
/// at all), within bounds.
fn check_parties(entries: usize, parties: &[&[[u8; 32]]]) -> Result<(), StoreError> {
    if !parties.is_empty() && parties.len() != entries {
        return Err(StoreError::Invalid("one list of parties per entry"));
    }
    if parties.iter().any(|p| p.len() > PARTIES_PER_ENTRY_MAX) {
        return Err(StoreError::Invalid("an entry names more than 256 parties"));
    }
    Ok(())
}

/// Checks a batch against the store's bounds.
fn check_batch<E: AsRef<[u8]>>(
    entries: &[E],
    parties: &[&[[u8; 32]]],
    archive: &[(&str, &[u8])],
) -> Result<(), StoreError> {
    if entries.is_empty() || entries.len() > BATCH_ENTRIES_MAX {
        return Err(StoreError::Invalid("a batch holds 1 to 8192 entries"));
    }
    if entries
        .iter()
        .any(|entry| entry.as_ref().len() > ENTRY_BYTES_MAX)
    {
        return Err(StoreError::Invalid("an entry is larger than 1 MiB"));
    }
    check_parties(entries.len(), parties)?;
    if archive.len() > BATCH_ENTRIES_MAX
        || archive.iter().any(|(key, bytes)| {
            key.len() > ARCHIVE_KEY_BYTES_MAX || bytes.len() > ARCHIVED_BYTES_MAX
        })
    {
        return Err(StoreError::Invalid(
            "at most 8192 archived records a batch, keys of 256 bytes, records of 1 MiB",
        ));
    }
    Ok(())
}

/// Indexes entries `from..` under `parties` in `txn`, and advances the
/// index's coverage if it reached `from` (a journal still being indexed
/// from its start keeps its coverage until [`Store::index_history`] gets
/// there; inserting a row twice changes nothing).
fn record_history(
    txn: &redb::WriteTransaction,
    from: u64,
    parties: &[&[[u8; 32]]],
) -> Result<(), StoreError> {
    let mut table = txn.open_table(HISTORY).map_err(err)?;
    for (offset, entry_parties) in parties.iter().enumerate() {
        let index = from + offset as u64;
        for party in entry_parties.iter() {
            table.insert((party, index), ()).map_err(err)?;
        }
    }
    let mut meta = txn.open_table(META).map_err(err)?;
    let covers = meta
        .get(HISTORY_COVERS)
        .map_err(err)?
        .map_or(0, |value| value.value());
    if covers == from {
        meta.insert(HISTORY_COVERS, from + parties.len() as u64)
            .map_err(err)?;
    }
    Ok(())
}

/// The journal and snapshots of one node. One writer at a time (the node's
/// single writer); reads may run concurrently.
#[derive(Debug)]
pub struct Store {
    /// The journal: the source of truth, never truncated.
    db: Database,
    /// Snapshots, in their own database: they are a cache derived from the
    /// journal, so a damaged snapshot file is discarded, never fatal.
    snapshots: Database,
    /// The snapshot database was found damaged at open and replaced.
    snapshots_discarded: bool,
    poisoned: std::sync::atomic::AtomicBool,
    /// Where a snapshot is sealed before it is written, kept from one
    /// snapshot to the next so that each does not allocate its size anew.
    snapshot_scratch: std::sync::Mutex<Vec<u8>>,
    /// The tree's right edge (partial tiles); full tiles are in the journal
    /// database. Replaced only after the batch that changes it committed.
    edge: std::sync::RwLock<Edge>,
}

/// SHA-256 of `parts`, cut to [`CHECKSUM_BYTES`].
fn digest(parts: &[&[u8]]) -> [u8; CHECKSUM_BYTES] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut out = [0u8; CHECKSUM_BYTES];
    out.copy_from_slice(&digest[..CHECKSUM_BYTES]);
    out
}

fn checksum(kind: &[u8], key: u64, payload: &[u8]) -> [u8; CHECKSUM_BYTES] {
    digest(&[kind, &key.to_le_bytes(), payload])
}

/// `payload` behind its checksum.
fn seal(sum: [u8; CHECKSUM_BYTES], payload: &[u8]) -> Vec<u8> {
    let mut sealed = Vec::with_capacity(CHECKSUM_BYTES + payload.len());
    sealed.extend_from_slice(&sum);
    sealed.extend_from_slice(payload);
    sealed
}

/// The payload of `sealed` if its checksum is `expected(payload)`.
fn unseal(sealed: &[u8], expected: impl FnOnce(&[u8]) -> [u8; CHECKSUM_BYTES]) -> Option<&[u8]> {
    if sealed.len() < CHECKSUM_BYTES {
        return None;
    }
    let (sum, payload) = sealed.split_at(CHECKSUM_BYTES);
    (sum == expected(payload)).then_some(payload)
}

const ENTRY_KIND: &[u8] = b"entry";

/// An entry's checksum binds its index to its RFC 9162 leaf hash, which the
/// tree needs anyway: one pass of SHA-256 over the entry serves both.
fn entry_checksum(index: u64, leaf_hash: &Hash) -> [u8; CHECKSUM_BYTES] {
    checksum(ENTRY_KIND, index, leaf_hash)
}

fn unseal_entry(index: u64, sealed: &[u8]) -> Option<&[u8]> {
    unseal(sealed, |payload| {
        entry_checksum(index, &merkle::leaf_hash(payload))
    })
}
const SNAPSHOT_KIND: &[u8] = b"snapshot";

/// An archived record's checksum binds it to its key.
fn archived_checksum(key: &str, payload: &[u8]) -> [u8; CHECKSUM_BYTES] {
    digest(&[
        b"archive",
        &(key.len() as u64).to_le_bytes(),
        key.as_bytes(),
        payload,
    ])
}

impl Store {
    /// Opens (or creates) the store in a directory: `journal.redb` and
    /// `snapshots.redb`. A damaged snapshot file is moved aside to
    /// `snapshots.redb.damaged` and replaced by an empty one.
    pub fn open(directory: &Path) -> Result<Store, StoreError> {
        Store::open_with_cache(directory, JOURNAL_CACHE_BYTES)
    }

    /// [`Store::open`] with `cache_bytes` of memory for the journal's pages
    /// instead of [`JOURNAL_CACHE_BYTES`].
    pub fn open_with_cache(directory: &Path, cache_bytes: usize) -> Result<Store, StoreError> {
        let journal = open_database(
            Database::builder()
                .set_check_integrity_on_open(true)
                .set_cache_size(cache_bytes)
                .create(directory.join("journal.redb")),
        )?;
        let snapshot_path = directory.join("snapshots.redb");
        let (snapshots, discarded) = match open_database(
            Database::builder()
                .set_check_integrity_on_open(true)
                .set_cache_size(SNAPSHOT_CACHE_BYTES)
                .create(&snapshot_path),
        ) {
            Ok(snapshots) => (snapshots, false),
            Err(StoreError::Corrupt(_)) => {
                std::fs::rename(&snapshot_path, directory.join("snapshots.redb.damaged"))
                    .map_err(|e| StoreError::Io(e.to_string()))?;
                (
                    open_database(
                        Database::builder()
                            .set_cache_size(SNAPSHOT_CACHE_BYTES)
                            .create(&snapshot_path),
                    )?,
                    true,
                )
            }
            Err(other) => return Err(other),
        };
        Store::init(journal, snapshots, discarded)
    }

    /// Opens (or creates) the store on redb storage backends (tests use
    /// [`fault::FaultyDisk`]). `replacement` supplies an empty snapshot
    /// backend if the snapshot one is damaged.
    pub fn open_with_backends<J: StorageBackend, S: StorageBackend>(
        journal: J,
        snapshots: S,
        replacement: impl FnOnce() -> S,
    ) -> Result<Store, StoreError> {
        let journal = open_database(
            Database::builder()
                .set_check_integrity_on_open(true)
                .set_cache_size(JOURNAL_CACHE_BYTES)
                .create_with_backend(journal),
        )?;
        let (snapshots, discarded) = match open_database(
            Database::builder()
                .set_check_integrity_on_open(true)
                .set_cache_size(SNAPSHOT_CACHE_BYTES)
                .create_with_backend(snapshots),
        ) {
            Ok(snapshots) => (snapshots, false),
            Err(StoreError::Corrupt(_)) => (
                open_database(
                    Database::builder()
                        .set_cache_size(SNAPSHOT_CACHE_BYTES)
                        .create_with_backend(replacement()),
                )?,
                true,
            ),
            Err(other) => return Err(other),
        };
        Store::init(journal, snapshots, discarded)
    }

    fn init(
        db: Database,
        snapshots: Database,
        snapshots_discarded: bool,
    ) -> Result<Store, StoreError> {
        for (database, table) in [(&db, ENTRIES), (&snapshots, SNAPSHOTS)] {
            let mut txn = database.begin_write().map_err(err)?;
            txn.set_durability(Durability::Immediate)
                .map_err(|e| StoreError::Io(e.to_string()))?;
            txn.open_table(table).map_err(err)?;
            if std::ptr::eq(database, &db) {
                txn.open_table(TILES).map_err(err)?;
                txn.open_table(HISTORY).map_err(err)?;
                txn.open_table(ARCHIVE).map_err(err)?;
                txn.open_table(META).map_err(err)?;
            }
            txn.commit().map_err(err)?;
        }
        let store = Store {
            db,
            snapshots,
            snapshots_discarded,
            poisoned: std::sync::atomic::AtomicBool::new(false),
            snapshot_scratch: std::sync::Mutex::new(Vec::new()),
            edge: std::sync::RwLock::new(Edge::default()),
        };
        store.load_tree()?;
        Ok(store)
    }

    /// Rebuilds the tree's edge from the stored tiles and the journal tail;
    /// if tiles are missing (a journal written before the tree existed, or
    /// damaged), rebuilds every tile from the entries.
    fn load_tree(&self) -> Result<(), StoreError> {
        let len = self.len()?;
        let tail_start = len / TILE_WIDTH as u64 * TILE_WIDTH as u64;
        let tail: Vec<Hash> = self
            .read(tail_start, TILE_WIDTH)?
            .iter()
            .map(|entry| merkle::leaf_hash(entry))
            .collect();
        let rebuilt = {
            let txn = self.db.begin_read().map_err(err)?;
            let tiles = txn.open_table(TILES).map_err(err)?;
            Edge::rebuild(len, tail, &TableTiles(&tiles))
        };
        let edge = match rebuilt {
            Ok(edge) => edge,
            Err(TreeError::Missing { .. }) => self.rebuild_tiles(len)?,
            Err(other) => return Err(tree_error(other)),
        };
        *self.edge.write().expect("edge lock") = edge;
        Ok(())
    }

    /// Hashes every entry again and stores every full tile.
    fn rebuild_tiles(&self, len: u64) -> Result<Edge, StoreError> {
        let mut edge = Edge::default();
        while edge.size < len {
            let leaves: Vec<Hash> = self
                .read(edge.size, 4 * TILE_WIDTH)?
                .iter()
                .map(|entry| merkle::leaf_hash(entry))
                .collect();
            if leaves.is_empty() {
                return Err(StoreError::Corrupt("journal entries are missing".into()));
            }
            let (next, tiles) = edge.append(&leaves);
            let mut txn = self.db.begin_write().map_err(err)?;
            txn.set_durability(Durability::Immediate)
                .map_err(|e| StoreError::Io(e.to_string()))?;
            {
                let mut table = txn.open_table(TILES).map_err(err)?;
                for tile in tiles {
                    table
                        .insert((tile.row, tile.index), tile.bytes.as_slice())
                        .map_err(err)?;
                }
            }
            txn.commit().map_err(err)?;
            edge = next;
        }
        Ok(edge)
    }

    /// Leaves in the Merkle tree (equal to [`Store::len`]).
    pub fn tree_size(&self) -> Result<u64, StoreError> {
        Ok(self.edge.read().expect("edge lock").size)
    }

    /// Runs `read` over the tree's nodes, in one read transaction.
    pub fn with_tree<T>(
        &self,
        read: impl FnOnce(&dyn Nodes) -> Result<T, TreeError>,
    ) -> Result<T, StoreError> {
        // The edge first: a batch committing meanwhile only adds tiles this
        // edge does not use yet.
        let edge = self.edge.read().expect("edge lock");
        let txn = self.db.begin_read().map_err(err)?;
        let tiles = txn.open_table(TILES).map_err(err)?;
        read(&TileNodes {
            tiles: &tiles,
            edge: &edge,
        })
        .map_err(tree_error)
    }

    /// Hashes `first..first + count` of tree row `row` (tree level 8·row),
    /// within one tile: what a C2SP tile (or its partial prefix) holds.
    /// `None` when the tree does not hold them all yet.
    pub fn tile_hashes(
        &self,
        row: u8,
        first: u64,
        count: u64,
    ) -> Result<Option<Vec<Hash>>, StoreError> {
        let edge = self.edge.read().expect("edge lock");
        let txn = self.db.begin_read().map_err(err)?;
        let tiles = txn.open_table(TILES).map_err(err)?;
        edge.hashes(usize::from(row), first, count, &TableTiles(&tiles))
            .map_err(tree_error)
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        if self.poisoned.load(std::sync::atomic::Ordering::Acquire) {
            return Err(StoreError::NeedsReopen);
        }
        Ok(())
    }

    fn poison<T>(&self, error: StoreError) -> Result<T, StoreError> {
        self.poisoned
            .store(true, std::sync::atomic::Ordering::Release);
        Err(error)
    }

    /// Entries in the journal.
    pub fn len(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(ENTRIES).map_err(err)?;
        table.len().map_err(err)
    }

    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Appends `entries` as one durable batch (one fsync) and returns the
    /// index of the first; the entries concern no party. See the
    /// durability contract in the crate docs.
    pub fn append_batch<E: AsRef<[u8]>>(&self, entries: &[E]) -> Result<u64, StoreError> {
        self.append_logged(entries, &[], &[])
            .map(|appended| appended.first)
    }

    /// [`Store::append_batch`], indexing entry `i` under the parties
    /// `parties[i]` (all of `parties` empty: none), archiving `archive`
    /// (key, bytes) in the same transaction, and telling the entries' leaf
    /// hashes and the tree's new root.
    pub fn append_logged<E: AsRef<[u8]>>(
        &self,
        entries: &[E],
        parties: &[&[[u8; 32]]],
        archive: &[(&str, &[u8])],
    ) -> Result<Appended, StoreError> {
        self.check_writable()?;
        check_batch(entries, parties, archive)?;
        match self.write_batch(entries, parties, archive, None) {
            Ok(first) => Ok(first),
            Err(error) => self.poison(error),
        }
    }

    /// [`Store::append_logged`] for a journal replicated elsewhere:
    /// `replicate` is called inside the batch's transaction once its leaf
    /// hashes and root are known, and the batch is committed here only if
    /// it returns `Ok` (the replica is the source of truth, this store its
    /// local copy). An error from it aborts the batch: nothing of it is
    /// written here, and the store must be reopened, as after any failed
    /// write, before it writes again.
    pub fn append_replicated<E: AsRef<[u8]>>(
        &self,
        entries: &[E],
        parties: &[&[[u8; 32]]],
        archive: &[(&str, &[u8])],
        replicate: Replicate<'_>,
    ) -> Result<Appended, StoreError> {
        self.check_writable()?;
        check_batch(entries, parties, archive)?;
        match self.write_batch(entries, parties, archive, Some(replicate)) {
            Ok(first) => Ok(first),
            Err(error) => self.poison(error),
        }
    }

    /// Entries `0..n` whose parties the history index holds.
    pub fn history_covers(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let meta = txn.open_table(META).map_err(err)?;
        Ok(meta
            .get(HISTORY_COVERS)
            .map_err(err)?
            .map_or(0, |value| value.value()))
    }

    /// Indexes entries `from..from + parties.len()` (already in the
    /// journal) under their parties, durably: how a journal written before
    /// the index existed catches up. `from` must be
    /// [`Store::history_covers`].
    pub fn index_history(&self, from: u64, parties: &[&[[u8; 32]]]) -> Result<(), StoreError> {
        self.check_writable()?;
        if parties.is_empty() || parties.len() > BATCH_ENTRIES_MAX {
            return Err(StoreError::Invalid("a batch holds 1 to 8192 entries"));
        }
        check_parties(parties.len(), parties)?;
        if from != self.history_covers()? || from + parties.len() as u64 > self.len()? {
            return Err(StoreError::Invalid(
                "history is indexed in order, for entries the journal holds",
            ));
        }
        let result = (|| {
            let mut txn = self.db.begin_write().map_err(err)?;
            txn.set_durability(Durability::Immediate)
                .map_err(|e| StoreError::Io(e.to_string()))?;
            record_history(&txn, from, parties)?;
            txn.commit().map_err(err)
        })();
        result.or_else(|error| self.poison(error))
    }

    /// The newest `limit` (at most [`HISTORY_READ_MAX`]) entries indexed
    /// under `party` below index `before`, newest first.
    pub fn history(
        &self,
        party: &[u8; 32],
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError> {
        if limit > HISTORY_READ_MAX {
            return Err(StoreError::Invalid(
                "a history read returns at most 1024 entries",
            ));
        }
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(HISTORY).map_err(err)?;
        let end = before.unwrap_or(u64::MAX);
        let mut out = Vec::with_capacity(limit);
        for item in table.range((party, 0)..(party, end)).map_err(err)?.rev() {
            if out.len() == limit {
                break;
            }
            let (key, _) = item.map_err(err)?;
            out.push(key.value().1);
        }
        Ok(out)
    }

    /// The archived record filed under `key`, checked against its checksum.
    pub fn archived(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(ARCHIVE).map_err(err)?;
        let Some(value) = table.get(key).map_err(err)? else {
            return Ok(None);
        };
        unseal(value.value(), |payload| archived_checksum(key, payload))
            .map(|bytes| Some(bytes.to_vec()))
            .ok_or_else(|| StoreError::Corrupt(format!("archived record {key} fails its checksum")))
    }

    fn write_batch<E: AsRef<[u8]>>(
        &self,
        entries: &[E],
        parties: &[&[[u8; 32]]],
        archive: &[(&str, &[u8])],
        replicate: Option<Replicate<'_>>,
    ) -> Result<Appended, StoreError> {
        let mut txn = self.db.begin_write().map_err(err)?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| StoreError::Io(e.to_string()))?;
        let appended = {
            let mut table = txn.open_table(ENTRIES).map_err(err)?;
            let first = table.len().map_err(err)?;
            let mut leaf_hashes: Vec<Hash> = Vec::with_capacity(entries.len());
            let mut sealed = Vec::new();
            for (offset, entry) in entries.iter().enumerate() {
                let index = first + offset as u64;
                let leaf_hash = merkle::leaf_hash(entry.as_ref());
                sealed.clear();
                sealed.extend_from_slice(&entry_checksum(index, &leaf_hash));
                sealed.extend_from_slice(entry.as_ref());
                table.insert(index, sealed.as_slice()).map_err(err)?;
                leaf_hashes.push(leaf_hash);
            }
            let (edge, new_tiles) = self.edge.read().expect("edge lock").append(&leaf_hashes);
            assert_eq!(
                edge.size,
                first + leaf_hashes.len() as u64,
                "tree and journal agree"
            );
            let mut tiles = txn.open_table(TILES).map_err(err)?;
            for tile in new_tiles {
                tiles
                    .insert((tile.row, tile.index), tile.bytes.as_slice())
                    .map_err(err)?;
            }
            let root = merkle::root(
                &TileNodes {
                    tiles: &tiles,
                    edge: &edge,
                },
                edge.size,
            )
            .map_err(tree_error)?;
            (
                Appended {
                    first,
                    leaf_hashes,
                    root,
                },
                edge,
            )
        };
        let empty: Vec<&[[u8; 32]]> = vec![&[]; entries.len()];
        let parties = if parties.is_empty() { &empty } else { parties };
        record_history(&txn, appended.0.first, parties)?;
        if !archive.is_empty() {
            let mut table = txn.open_table(ARCHIVE).map_err(err)?;
            for (key, bytes) in archive {
                table
                    .insert(*key, seal(archived_checksum(key, bytes), bytes).as_slice())
                    .map_err(err)?;
            }
        }
        if let Some(replicate) = replicate {
            // Dropping `txn` on an error aborts it.
            replicate(&appended.0)?;
        }
        txn.commit().map_err(err)?;
        let (appended, edge) = appended;
        *self.edge.write().expect("edge lock") = edge;
        Ok(appended)
    }

    /// Up to `limit` entries starting at `from`, checked against their
    /// checksums.
    pub fn read(&self, from: u64, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(ENTRIES).map_err(err)?;
        let mut out = Vec::new();
        for item in table.range(from..).map_err(err)?.take(limit) {
            let (key, value) = item.map_err(err)?;
            let index = key.value();
            if index != from + out.len() as u64 {
                return Err(StoreError::Corrupt(format!(
                    "journal entry {} is missing",
                    from + out.len() as u64
                )));
            }
            let payload = unseal_entry(index, value.value()).ok_or_else(|| {
                StoreError::Corrupt(format!("journal entry {index} fails its checksum"))
            })?;
            out.push(payload.to_vec());
        }
        Ok(out)
    }

    /// Saves a snapshot covering the first `covers` entries, atomically and
    /// durably, and deletes all but the newest [`SNAPSHOTS_KEPT`].
    pub fn save_snapshot(&self, covers: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.check_writable()?;
        if covers > self.len()? {
            return Err(StoreError::Invalid(
                "a snapshot cannot cover entries the journal lacks",
            ));
        }
        let result = (|| {
            let mut txn = self.snapshots.begin_write().map_err(err)?;
            txn.set_durability(Durability::Immediate)
                .map_err(|e| StoreError::Io(e.to_string()))?;
            {
                let mut table = txn.open_table(SNAPSHOTS).map_err(err)?;
                let mut sealed = self.snapshot_scratch.lock().expect("scratch lock");
                sealed.clear();
                sealed.extend_from_slice(&checksum(SNAPSHOT_KIND, covers, bytes));
                sealed.extend_from_slice(bytes);
                table.insert(covers, sealed.as_slice()).map_err(err)?;
                let keys: Vec<u64> = table
                    .iter()
                    .map_err(err)?
                    .map(|item| item.map(|(key, _)| key.value()))
                    .collect::<Result<_, _>>()
                    .map_err(err)?;
                for old in keys.iter().rev().skip(SNAPSHOTS_KEPT) {
                    table.remove(*old).map_err(err)?;
                }
            }
            txn.commit().map_err(err)
        })();
        result.or_else(|error| self.poison(error))
    }

    /// The newest snapshot that passes its checksum, and the ones skipped.
    pub fn recovery(&self) -> Result<Recovery, StoreError> {
        let txn = self.snapshots.begin_read().map_err(err)?;
        let table = txn.open_table(SNAPSHOTS).map_err(err)?;
        let mut skipped_snapshots = Vec::new();
        let mut snapshot = None;
        for item in table.iter().map_err(err)?.rev() {
            let (key, value) = item.map_err(err)?;
            let covers = key.value();
            match unseal(value.value(), |payload| {
                checksum(SNAPSHOT_KIND, covers, payload)
            }) {
                Some(bytes) => {
                    snapshot = Some(Snapshot {
                        covers,
                        bytes: bytes.to_vec(),
                    });
                    break;
                }
                None => skipped_snapshots.push(covers),
            }
        }
        let journal_len = self.len()?;
        if snapshot.as_ref().is_some_and(|s| s.covers > journal_len) {
            return Err(StoreError::Corrupt(
                "a snapshot covers more entries than the journal holds".into(),
            ));
        }
        Ok(Recovery {
            snapshot,
            skipped_snapshots,
            snapshots_discarded: self.snapshots_discarded,
            journal_len,
        })
    }

    /// Stores a snapshot record whose checksum does not match, as a
    /// damaged or mis-written snapshot would look. For recovery tests.
    #[doc(hidden)]
    pub fn save_damaged_snapshot_for_tests(
        &self,
        covers: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let mut sealed = seal(checksum(SNAPSHOT_KIND, covers, bytes), bytes);
        sealed[0] ^= 0xff;
        let mut txn = self.snapshots.begin_write().map_err(err)?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| StoreError::Io(e.to_string()))?;
        txn.open_table(SNAPSHOTS)
            .map_err(err)?
            .insert(covers, sealed.as_slice())
            .map_err(err)?;
        txn.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(n: u8) -> [u8; 32] {
        [n; 32]
    }

    #[test]
    fn archived_records_land_with_their_batch_and_are_checked_on_read() {
        let disk = || fault::FaultyDisk::new(64 << 20);
        let journal = disk();
        let store = Store::open_with_backends(journal.clone(), disk(), disk).expect("open");
        store
            .append_logged(&[b"a".to_vec()], &[], &[("task/t1", b"view one")])
            .expect("append");
        assert_eq!(
            store.archived("task/t1").expect("read").as_deref(),
            Some(&b"view one"[..])
        );
        assert_eq!(store.archived("task/t2").expect("read"), None);
        // A batch that fails (a full disk) takes its archived records with it.
        journal.set_capacity(journal.len_bytes());
        let big = vec![7u8; ARCHIVED_BYTES_MAX];
        assert!(
            store
                .append_logged(&[b"b".to_vec()], &[], &[("task/t2", &big)])
                .is_err()
        );
        journal.set_capacity(64 << 20);
        drop(store);
        let store = Store::open_with_backends(journal, disk(), disk).expect("reopen");
        assert_eq!(store.len().expect("len"), 1);
        assert_eq!(store.archived("task/t2").expect("read"), None);
        let long = "k".repeat(ARCHIVE_KEY_BYTES_MAX + 1);
        assert!(matches!(
            store.append_logged(&[b"c".to_vec()], &[], &[(long.as_str(), b"x")]),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn a_replicated_batch_lands_here_only_after_the_replica_took_it() {
        let disk = || fault::FaultyDisk::new(64 << 20);
        let journal = disk();
        let store = Store::open_with_backends(journal.clone(), disk(), disk).expect("open");
        let mut seen = Vec::new();
        let appended = store
            .append_replicated(&[b"a".to_vec(), b"b".to_vec()], &[], &[], &mut |batch| {
                seen.push((batch.first, batch.root));
                Ok(())
            })
            .expect("replicated");
        assert_eq!(
            seen,
            vec![(0, appended.root)],
            "the replica saw the root first"
        );
        // The replica refuses: nothing lands here, and the store wants a
        // reopen, as after any failed write.
        let refused = store.append_replicated(&[b"c".to_vec()], &[], &[("k", b"v")], &mut |_| {
            Err(StoreError::Replica("fenced".into()))
        });
        assert!(matches!(refused, Err(StoreError::Replica(_))));
        assert_eq!(store.len().expect("len"), 2);
        assert!(matches!(
            store.append_batch(&[b"d".to_vec()]),
            Err(StoreError::NeedsReopen)
        ));
        drop(store);
        let store = Store::open_with_backends(journal, disk(), disk).expect("reopen");
        assert_eq!(store.len().expect("len"), 2);
        assert_eq!(store.archived("k").expect("read"), None);
        let root = store
            .with_tree(|nodes| merkle::root(nodes, 2))
            .expect("root");
        assert_eq!(root, appended.root);
    }

    #[test]
    fn a_journal_without_an_index_is_indexed_in_order_and_then_kept_current() {
        let disk = || fault::FaultyDisk::new(64 << 20);
        let store = Store::open_with_backends(disk(), disk(), disk).expect("open");
        store
            .append_batch(&[b"a".to_vec(), b"b".to_vec(), b"c".to_vec()])
            .expect("append");
        // As a journal written before the index existed looks.
        let txn = store.db.begin_write().expect("write");
        txn.open_table(META)
            .expect("meta")
            .remove(HISTORY_COVERS)
            .expect("remove");
        txn.commit().expect("commit");
        assert_eq!(store.history_covers().expect("covers"), 0);
        // Entries appended before the catch-up are indexed but do not move
        // the coverage, which only the catch-up, in order, may advance.
        store
            .append_logged(&[b"d".to_vec()], &[&[party(1)]], &[])
            .expect("append");
        assert_eq!(store.history_covers().expect("covers"), 0);
        assert!(matches!(
            store.index_history(1, &[&[party(1)]]),
            Err(StoreError::Invalid(_))
        ));
        store
            .index_history(0, &[&[party(1)], &[], &[party(1), party(2)]])
            .expect("index");
        store.index_history(3, &[&[party(1)]]).expect("index");
        assert_eq!(store.history_covers().expect("covers"), 4);
        assert!(matches!(
            store.index_history(4, &[&[party(1)]]),
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(store.history(&party(1), None, 10).expect("read"), [3, 2, 0]);
        assert_eq!(store.history(&party(1), Some(3), 1).expect("read"), [2]);
        assert_eq!(store.history(&party(2), None, 10).expect("read"), [2]);
        assert!(store.history(&party(3), None, 10).expect("read").is_empty());
        assert!(matches!(
            store.history(&party(1), None, HISTORY_READ_MAX + 1),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.append_logged(&[b"e".to_vec()], &[&[party(1)], &[]], &[]),
            Err(StoreError::Invalid(_))
        ));
    }
}
