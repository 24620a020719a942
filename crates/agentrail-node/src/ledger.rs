//! The ledger service: state, journal and the single writer.
//!
//! ```text
//! verifier threads: signatures checked ──▶ bounded queue
//!                                             │
//!   writer thread: take up to BATCH_MAX jobs ─▶ State::apply each ─▶ encode
//!   the entries ──▶ pipeline (PIPELINE_DEPTH batches)
//!                                             │
//!   committer thread: merge what waits ─▶ one journal append with its
//!   history index (one fsync) ─▶ checkpoint, durable mark ─▶ only then
//!   reply to every job
//! ```
//!
//! The writer applies the next batch while the committer makes the previous
//! one durable, so the fsync no longer stalls the state machine. Nothing is
//! answered before it is durable: commands are answered by the committer,
//! rejections too (a refusal may depend on an earlier command that is still
//! being committed), and reads of the state ([`Ledger::read_durable`]) wait
//! until everything the state they saw reflects is durable. When a commit
//! fails the committer rebuilds the state from disk under a new recovery
//! epoch; batches and reads of the old epoch are refused, never answered
//! from a state that included lost commands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use agentrail_core::state::{ArchiveKind, Archived};
use agentrail_core::{Authenticated, Did, Event, Genesis, Rejection, State, Timestamp};
use agentrail_log::merkle::{self, Hash, Nodes, TreeError};
use agentrail_log::{Checkpoint, LogSigner};
use agentrail_postgres::{Head, Journal, JournalError};
use agentrail_store::{Store, StoreError};
use agentrail_wire::api::{CommandResponse, HistoryItem, ReceiptRef};
use agentrail_wire::entry::{EntryRequest, JournalEntry, encode_entry};
use agentrail_wire::httpsig::SignatureError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::sync::{oneshot, watch};

use crate::metrics::Metrics;

/// Commands waiting for the writer; when full, the API answers 503.
pub const QUEUE_MAX: usize = 16_384;
/// Commands applied and committed together (one fsync).
pub const BATCH_MAX: usize = 4_096;
/// Journal entries between two snapshots, by default.
pub const SNAPSHOT_EVERY: u64 = 100_000;

/// How the writer batches and snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedgerOptions {
    /// Commands committed together (1 measures one fsync per command).
    pub batch_max: usize,
    /// Journal entries between two snapshots.
    pub snapshot_every: u64,
}

impl Default for LedgerOptions {
    fn default() -> LedgerOptions {
        LedgerOptions {
            batch_max: BATCH_MAX,
            snapshot_every: SNAPSHOT_EVERY,
        }
    }
}
/// How often an idle writer looks whether something fell due.
const TICK_POLL: std::time::Duration = std::time::Duration::from_millis(250);
/// Entries read per chunk during recovery.
const RECOVERY_CHUNK: usize = 1_024;

/// Why the ledger could not start or continue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("journal entry {index} does not replay to what was recorded: {reason}")]
    Divergence { index: u64, reason: String },
    /// The replicated journal (PostgreSQL) refused or could not be reached.
    #[error(transparent)]
    Replica(#[from] JournalError),
    /// The local copy and the replicated journal disagree.
    #[error("the local journal and the database disagree: {0}")]
    Diverged(String),
}

/// Where the writer reads the time from: the system clock in a node, a
/// simulated one in the deterministic simulation.
pub type Clock = Box<dyn Fn() -> Timestamp + Send + Sync>;

/// Opens (or reopens) the ledger's store.
pub type StoreOpener = Box<dyn Fn() -> Result<Store, StoreError> + Send + Sync>;

/// What `State::apply` said of one job.
type Applied = Result<Vec<Event>, Rejection>;

/// The outcome a job waits for.
pub type Reply = Result<CommandResponse, Refusal>;

/// Why the writer did not accept a job.
#[derive(Debug)]
pub enum Refusal {
    Rejected(Rejection),
    /// The storage failed and the command did not land; retry later.
    Unavailable,
    /// The storage failed while the command was being committed and could
    /// not be reopened to learn whether it landed: it may have. A retry
    /// with the same idempotency key is safe.
    Unknown,
    /// Refused before the writer: a bad signature, a replayed nonce, a body
    /// that is not a command.
    Request(crate::http::ApiError),
    /// The writer's queue was full.
    Overloaded,
    /// The node is stopping.
    Stopped,
    /// The node is a standby (or its lead just ended): another node writes.
    NotLeader,
}

/// One command on its way to the writer.
#[derive(Debug)]
pub struct Job {
    pub command: Authenticated,
    pub request: EntryRequest,
    pub reply: oneshot::Sender<Reply>,
}

/// Why a job could not be queued.
#[derive(Debug, PartialEq, Eq)]
pub enum QueueError {
    Full,
    Stopped,
}

/// Appends to `out` the identities an entry concerns, sorted, once each.
pub(crate) fn parties(signer: Did, events: &[Event], out: &mut Vec<Did>) {
    let start = out.len();
    out.push(signer);
    for event in events {
        event.parties(out);
    }
    out[start..].sort_unstable();
    let mut kept = start;
    for read in start..out.len() {
        if kept == start || out[read] != out[kept - 1] {
            out[kept] = out[read];
            kept += 1;
        }
    }
    out.truncate(kept);
}

/// State, journal and history, shared by the writer and the readers.
pub struct Ledger {
    /// Opens the store; called again to learn what landed after a failure.
    open_store: StoreOpener,
    /// The store's directory, for a store on disk ([`Ledger::open`]).
    directory: Option<PathBuf>,
    genesis: Genesis,
    /// `agentrail:<log origin>`: what signed requests and vouchers bind.
    network: String,
    state: RwLock<State>,
    store: RwLock<Option<Store>>,
    /// Records the state forgot whose archive write is not durable yet.
    unwritten: Mutex<Unwritten>,
    /// Entries durable in the journal.
    journal_len: AtomicU64,
    /// Entries applied to the state: durable ones and those in the
    /// pipeline. Changes only under the state's write lock.
    applied_len: AtomicU64,
    /// `applied_len` at the last snapshot taken.
    last_snapshot: AtomicU64,
    /// Recovery epoch: bumped (under the state's write lock) whenever the
    /// state is rebuilt from disk.
    epoch: AtomicU64,
    /// The durable journal length, for readers that wait for it.
    durable: watch::Sender<Mark>,
    /// A write failed and the store could not be reopened yet.
    degraded: AtomicBool,
    options: LedgerOptions,
    /// Signs a checkpoint after every batch.
    log: LogSigner,
    checkpoint: RwLock<Arc<SignedCheckpoint>>,
    clock: Clock,
    /// The newest snapshot serialized, waiting to be saved once durable.
    snapshot_buffer: Mutex<SnapshotBuffer>,
    pub metrics: Metrics,
    /// What the chain follower last reported, on a node that runs one.
    pub chain_health: Mutex<Option<agentrail_wire::api::ChainHealth>>,
    /// The replicated journal every batch is committed to first, on a
    /// node of several ([`Ledger::with_replica`]).
    replica: Option<Arc<Journal>>,
    /// Whether this node writes: always on a node of its own; on a node
    /// of several, while it holds the lead in the replicated journal.
    leading: AtomicBool,
    /// What the replication loop last learned of the journal's head.
    replication: Mutex<Option<agentrail_wire::api::ReplicationHealth>>,
}

/// A snapshot the writer serialized: the state after the first `covers`
/// entries. One buffer, reused, so that a snapshot neither copies the state
/// nor allocates its size anew.
#[derive(Debug, Default)]
struct SnapshotBuffer {
    covers: u64,
    bytes: Vec<u8>,
}

/// Records the state forgot ([`State::take_archived`]) on their way to the
/// store's archive, which they reach in the transaction of the next batch
/// committed. Reads find them here until then, so a forgotten record is
/// always readable from the state, from here or from the store.
#[derive(Debug, Default)]
struct Unwritten {
    /// By archive key, encoded.
    records: BTreeMap<String, Vec<u8>>,
    /// Keys not handed to a batch yet, oldest first.
    unassigned: Vec<String>,
}

impl Unwritten {
    /// What a state recovered from the store forgot while replaying the
    /// journal's tail (some of it may be archived already: writing it again
    /// changes nothing).
    fn recovered(state: &mut State) -> Unwritten {
        let mut unwritten = Unwritten::default();
        unwritten.add(state);
        unwritten
    }

    /// Takes what `state` forgot since it was last asked.
    fn add(&mut self, state: &mut State) {
        for archived in state.take_archived() {
            let key = archived.key();
            let bytes = serde_json::to_vec(&archived).expect("views serialize");
            self.records.insert(key.clone(), bytes);
            self.unassigned.push(key);
        }
    }

    /// The records not handed to a batch yet.
    fn assign(&mut self) -> Vec<(String, Vec<u8>)> {
        let keys = std::mem::take(&mut self.unassigned);
        keys.into_iter()
            .filter_map(|key| {
                let bytes = self.records.get(&key)?.clone();
                Some((key, bytes))
            })
            .collect()
    }

    /// Drops what became durable (unless the key was forgotten again since,
    /// with other bytes).
    fn written(&mut self, archived: &[(String, Vec<u8>)]) {
        for (key, bytes) in archived {
            if self.records.get(key) == Some(bytes) {
                self.records.remove(key);
            }
        }
    }
}

/// The newest checkpoint: the log's size and root, signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub size: u64,
    pub root: Hash,
    /// The C2SP signed note.
    pub note: String,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("genesis", &self.genesis)
            .finish_non_exhaustive()
    }
}

/// The system clock, in whole seconds.
pub fn unix_now() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

/// Rebuilds the state from the newest valid snapshot plus the journal tail,
/// checking that every entry replays to the events it recorded, after
/// indexing the history of any entries a journal of an older version left
/// unindexed.
/// The state the journal holds, the journal's length, and the length the
/// snapshot it started from covers (0 for none): a node that replayed a
/// snapshot interval's worth takes its next snapshot at its next batch,
/// so one that restarts often does not replay ever more of the journal.
fn recover(store: &Store, genesis: Genesis) -> Result<(State, u64, u64), LedgerError> {
    let recovery = store.recovery()?;
    if !recovery.skipped_snapshots.is_empty() || recovery.snapshots_discarded {
        tracing::warn!(skipped = ?recovery.skipped_snapshots, discarded = recovery.snapshots_discarded, "damaged snapshots ignored; replaying more of the journal");
    }
    index_history(store, recovery.journal_len)?;
    let (mut state, start) = match recovery.snapshot {
        Some(snapshot) => match State::from_snapshot(&snapshot.bytes) {
            Ok(state) => (state, snapshot.covers),
            Err(error) => {
                tracing::warn!(%error, "snapshot unusable; replaying the journal from its start");
                (State::new(genesis), 0)
            }
        },
        None => (State::new(genesis), 0),
    };
    let mut index = start;
    while index < recovery.journal_len {
        let chunk = store.read(index, RECOVERY_CHUNK)?;
        if chunk.is_empty() {
            break;
        }
        for bytes in chunk {
            replay_entry(&mut state, index, &bytes)?;
            index += 1;
        }
    }
    Ok((state, index, start))
}

/// Applies journal entry `index` to `state` as it was applied when it was
/// journaled, and checks that it yields the events recorded.
fn replay_entry(state: &mut State, index: u64, bytes: &[u8]) -> Result<JournalEntry, LedgerError> {
    let entry = JournalEntry::decode(bytes).map_err(|e| divergence(index, e))?;
    let command = entry.command().map_err(|e| divergence(index, e))?;
    // The journal holds only commands verified on their way in. No
    // `advance` before it: whatever fell due was journaled as a clock
    // entry first, so a replay that finds expiries due anywhere else
    // yields other events than recorded (divergence).
    let command = Authenticated::assume_verified(entry.signer, command);
    let events = state
        .apply(&command, entry.time)
        .map_err(|r| LedgerError::Divergence {
            index,
            reason: format!("refused on replay: {r}"),
        })?;
    if events != entry.events {
        return Err(LedgerError::Divergence {
            index,
            reason: "different events on replay".into(),
        });
    }
    Ok(entry)
}

fn divergence(index: u64, error: agentrail_wire::entry::EntryError) -> LedgerError {
    LedgerError::Divergence {
        index,
        reason: error.to_string(),
    }
}

/// Indexes the history of the journal's entries the store's index does
/// not cover yet (a journal written before the index existed): every
/// entry this version appends is indexed in its own batch's transaction.
fn index_history(store: &Store, journal_len: u64) -> Result<(), LedgerError> {
    let mut index = store.history_covers()?;
    if index < journal_len {
        tracing::info!(
            from = index,
            to = journal_len,
            "indexing the journal's history"
        );
    }
    let mut dids = Vec::new();
    let mut ends = Vec::new();
    while index < journal_len {
        let chunk = store.read(index, RECOVERY_CHUNK)?;
        if chunk.is_empty() {
            return Err(StoreError::Corrupt(format!("journal entry {index} is missing")).into());
        }
        dids.clear();
        ends.clear();
        for (offset, bytes) in chunk.iter().enumerate() {
            let summary = JournalEntry::decode_summary(bytes)
                .map_err(|e| divergence(index + offset as u64, e))?;
            parties(summary.signer, &summary.events, &mut dids);
            ends.push(dids.len());
        }
        let keys: Vec<[u8; 32]> = dids.iter().map(|did| *did.public_key_bytes()).collect();
        store.index_history(index, &slices(&keys, &ends))?;
        index += chunk.len() as u64;
    }
    Ok(())
}

/// `items` cut at `ends`: slice `i` is `items[ends[i - 1]..ends[i]]`.
pub(crate) fn slices<'a, T>(items: &'a [T], ends: &[usize]) -> Vec<&'a [T]> {
    let mut start = 0;
    ends.iter()
        .map(|&end| {
            let slice = &items[start..end];
            start = end;
            slice
        })
        .collect()
}

/// Signs the checkpoint of the store's first `size` entries.
fn sign_checkpoint(
    log: &LogSigner,
    store: &Store,
    size: u64,
) -> Result<SignedCheckpoint, LedgerError> {
    let root = store.with_tree(|nodes| merkle::root(nodes, size))?;
    Ok(checkpoint_of(log, size, root))
}

fn checkpoint_of(log: &LogSigner, size: u64, root: Hash) -> SignedCheckpoint {
    let text = Checkpoint {
        origin: log.name().to_owned(),
        size,
        root,
    }
    .to_text();
    SignedCheckpoint {
        size,
        root,
        note: log.sign(&text),
    }
}

impl Ledger {
    /// Opens the journal in `directory` and recovers the state.
    pub fn open(
        directory: &Path,
        genesis: Genesis,
        log: LogSigner,
        options: LedgerOptions,
    ) -> Result<Ledger, LedgerError> {
        let directory: PathBuf = directory.to_owned();
        let opened = directory.clone();
        let mut ledger = Ledger::open_with(
            Box::new(move || Store::open(&opened)),
            genesis,
            log,
            options,
        )?;
        ledger.set_store_directory(directory);
        Ok(ledger)
    }

    /// Names the directory the store's files are in, for their sizes in
    /// the metrics.
    pub fn set_store_directory(&mut self, directory: PathBuf) {
        self.directory = Some(directory);
    }

    /// The store's files and their sizes in bytes (none for a store that
    /// is not a directory of files).
    pub fn store_files(&self) -> Vec<(&'static str, u64)> {
        let Some(directory) = &self.directory else {
            return Vec::new();
        };
        ["journal.redb", "snapshots.redb"]
            .into_iter()
            .filter_map(|file| {
                let bytes = std::fs::metadata(directory.join(file)).ok()?.len();
                Some((file, bytes))
            })
            .collect()
    }

    /// [`Ledger::open`] on any store (tests use a fault-injecting disk).
    pub fn open_with(
        open_store: StoreOpener,
        genesis: Genesis,
        log: LogSigner,
        options: LedgerOptions,
    ) -> Result<Ledger, LedgerError> {
        assert!(
            (1..=BATCH_MAX).contains(&options.batch_max),
            "batch_max within 1..=BATCH_MAX"
        );
        assert!(
            options.snapshot_every > 0,
            "snapshots need a positive interval"
        );
        let store = open_store()?;
        let (mut state, journal_len, snapshot_covers) = recover(&store, genesis)?;
        let unwritten = Unwritten::recovered(&mut state);
        tracing::info!(journal_len, "ledger recovered");
        let checkpoint = sign_checkpoint(&log, &store, journal_len)?;
        let network = agentrail_core::channel::network_id(log.name());
        Ok(Ledger {
            open_store,
            genesis,
            network,
            state: RwLock::new(state),
            store: RwLock::new(Some(store)),
            unwritten: Mutex::new(unwritten),
            journal_len: AtomicU64::new(journal_len),
            applied_len: AtomicU64::new(journal_len),
            last_snapshot: AtomicU64::new(snapshot_covers),
            epoch: AtomicU64::new(0),
            durable: watch::Sender::new(Mark {
                epoch: 0,
                len: journal_len,
            }),
            degraded: AtomicBool::new(false),
            options,
            log,
            checkpoint: RwLock::new(Arc::new(checkpoint)),
            clock: Box::new(unix_now),
            snapshot_buffer: Mutex::new(SnapshotBuffer::default()),
            directory: None,
            metrics: Metrics::default(),
            chain_health: Mutex::new(None),
            replica: None,
            leading: AtomicBool::new(true),
            replication: Mutex::new(None),
        })
    }

    /// The same ledger as one node of several: every batch is committed to
    /// `journal` before the local store, and it writes only while it
    /// leads ([`Ledger::lead`]); until then it follows ([`Ledger::follow`]).
    /// Its store opener must bring the local store up to the journal
    /// ([`crate::replication::catch_up`]).
    pub fn with_replica(mut self, journal: Arc<Journal>) -> Ledger {
        self.replica = Some(journal);
        self.leading = AtomicBool::new(false);
        self
    }

    /// The replicated journal, on a node of several.
    pub fn replica(&self) -> Option<&Arc<Journal>> {
        self.replica.as_ref()
    }

    /// How this node fares in the replicated journal, on a node of several.
    pub fn replication_health(&self) -> Option<agentrail_wire::api::ReplicationHealth> {
        self.replica.as_ref()?;
        let mut health = self
            .replication
            .lock()
            .expect("replication lock")
            .clone()
            .unwrap_or_default();
        health.role = if self.is_leading() {
            "leader"
        } else {
            "standby"
        }
        .to_owned();
        health.behind = health.head_size.saturating_sub(self.journal_len());
        Some(health)
    }

    /// Records what the replication loop last learned of the journal's head.
    pub fn report_replication(&self, health: agentrail_wire::api::ReplicationHealth) {
        *self.replication.lock().expect("replication lock") = Some(health);
    }

    /// Where the leader takes commands, if a node of several knows one.
    pub fn leader_url(&self) -> Option<String> {
        let health = self.replication.lock().expect("replication lock");
        health
            .as_ref()
            .map(|health| health.leader_url.clone())
            .filter(|url| !url.is_empty())
    }

    /// Whether this node writes (see [`Ledger::with_replica`]).
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    /// Applies what the replicated journal holds beyond this node's
    /// journal, batch by batch, to the state and the local store, each
    /// replayed as recovery replays (the same events, or divergence) and
    /// each batch's root checked against the one the leader committed.
    /// Returns the entries applied. A standby runs this continually.
    pub fn follow(&self) -> Result<u64, LedgerError> {
        let Some(journal) = &self.replica else {
            return Ok(0);
        };
        if self.degraded.load(Ordering::Acquire) {
            let mut state = self.state.write().expect("state lock");
            self.reopen(&mut state)?;
        }
        let mut followed = 0;
        loop {
            // Read without the state's lock, and take it batch read by
            // batch read: readers are served between them, also while a
            // standby far behind catches up with a busy leader. The
            // replication thread is the only one that follows.
            let from = self.journal_len();
            let batches = journal.read(from)?;
            if batches.is_empty() {
                break;
            }
            let mut state = self.state.write().expect("state lock");
            for batch in batches {
                if batch.first != self.journal_len() {
                    return Err(LedgerError::Diverged(format!(
                        "the database's batch starts at {}, the local journal holds {}",
                        batch.first,
                        self.journal_len()
                    )));
                }
                if let Err(error) = self.follow_batch(&mut state, &batch) {
                    // The state may hold part of the batch: rebuilt before
                    // anything else reads or follows.
                    self.degraded.store(true, Ordering::Release);
                    return Err(error);
                }
                followed += batch.entries.len() as u64;
            }
        }
        let len = self.journal_len();
        if followed > 0
            && len.saturating_sub(self.last_snapshot.load(Ordering::Acquire))
                >= self.options.snapshot_every
            && let Ok(mut buffer) = self.snapshot_buffer.try_lock()
        {
            self.state
                .read()
                .expect("state lock")
                .write_snapshot(&mut buffer.bytes);
            buffer.covers = len;
            self.last_snapshot.store(len, Ordering::Release);
            drop(buffer);
            self.save_snapshot(len);
        }
        Ok(followed)
    }

    /// One batch of the replicated journal, applied and stored locally.
    fn follow_batch(
        &self,
        state: &mut State,
        batch: &agentrail_postgres::Batch,
    ) -> Result<(), LedgerError> {
        let mut dids = Vec::new();
        let mut ends = Vec::with_capacity(batch.entries.len());
        for (offset, bytes) in batch.entries.iter().enumerate() {
            let entry = replay_entry(state, batch.first + offset as u64, bytes)?;
            parties(entry.signer, &entry.events, &mut dids);
            ends.push(dids.len());
        }
        let archive = {
            let mut unwritten = self.unwritten.lock().expect("unwritten lock");
            unwritten.add(state);
            unwritten.assign()
        };
        let keys: Vec<[u8; 32]> = dids.iter().map(|did| *did.public_key_bytes()).collect();
        let archived: Vec<(&str, &[u8])> = archive
            .iter()
            .map(|(key, bytes)| (key.as_str(), bytes.as_slice()))
            .collect();
        let appended = {
            let slot = self.store.read().expect("store lock");
            let store = slot.as_ref().ok_or(StoreError::NeedsReopen)?;
            store.append_logged(&batch.entries, &slices(&keys, &ends), &archived)?
        };
        self.unwritten
            .lock()
            .expect("unwritten lock")
            .written(&archive);
        if appended.root != batch.root {
            return Err(LedgerError::Diverged(format!(
                "the batch at {} has another root here",
                batch.first
            )));
        }
        let len = batch.first + batch.entries.len() as u64;
        *self.checkpoint.write().expect("checkpoint lock") =
            Arc::new(checkpoint_of(&self.log, len, appended.root));
        self.applied_len.store(len, Ordering::Release);
        self.publish(len);
        Ok(())
    }

    /// Starts writing, in the term `head` names (just taken with
    /// [`Journal::acquire`]): follows the journal to the head's size, checks
    /// that this node's root is the head's, and only then leads.
    pub fn lead(&self, head: &Head) -> Result<(), LedgerError> {
        self.follow()?;
        let checkpoint = self.checkpoint();
        if checkpoint.size != head.size || checkpoint.root != head.root {
            return Err(LedgerError::Diverged(format!(
                "the head is {} entries with root {}, this node has {} with root {}",
                head.size,
                hex::encode(head.root),
                checkpoint.size,
                hex::encode(checkpoint.root)
            )));
        }
        self.leading.store(true, Ordering::Release);
        tracing::info!(term = head.term, size = head.size, "leading");
        Ok(())
    }

    /// Stops writing: another node leads (or this one lost the database
    /// for longer than its lease). Batches in the pipeline are refused by
    /// the journal (their term is over), and the state, which may hold
    /// them, is rebuilt from the store and the journal before this node
    /// follows or leads again.
    pub fn step_down(&self) {
        if let Some(journal) = &self.replica {
            journal.resign();
        }
        if self.leading.swap(false, Ordering::AcqRel) {
            self.degraded.store(true, Ordering::Release);
            tracing::warn!("stepped down: this node no longer writes");
        }
    }

    /// The same ledger reading the time from `clock` instead of the system
    /// clock (the ledger's own clock still never runs backwards).
    pub fn with_clock(mut self, clock: Clock) -> Ledger {
        self.clock = clock;
        self
    }

    /// The time on the ledger's clock: what signed requests are checked
    /// against and commands applied at.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    pub fn genesis(&self) -> Genesis {
        self.genesis
    }

    /// The newest signed checkpoint.
    pub fn checkpoint(&self) -> Arc<SignedCheckpoint> {
        Arc::clone(&self.checkpoint.read().expect("checkpoint lock"))
    }

    /// The network id signed requests and channel vouchers bind:
    /// `agentrail:<log origin>`.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// The signer, nonce and `created` of every request the journal
    /// accepted at or after `since`, newest first: what a restarted node's
    /// nonce window starts from ([`crate::http::Nonces::after_start`]).
    /// Reads the journal backwards from its end (entries are in time order,
    /// since the ledger's clock never runs backwards).
    pub fn recent_nonces(&self, since: Timestamp) -> Result<Vec<(Did, String, u64)>, LedgerError> {
        let mut recent = Vec::new();
        let mut end = self.journal_len();
        while end > 0 {
            let from = end.saturating_sub(RECOVERY_CHUNK as u64);
            let chunk = self
                .with_store(|store| store.read(from, (end - from) as usize))
                .ok_or(StoreError::NeedsReopen)??;
            for bytes in chunk.iter().rev() {
                let entry = JournalEntry::decode(bytes).map_err(|e| divergence(end, e))?;
                if entry.time < since {
                    return Ok(recent);
                }
                if let EntryRequest::Http {
                    signature_input, ..
                } = &entry.request
                    && let Some((created, nonce)) =
                        agentrail_wire::httpsig::recorded_nonce(signature_input, self.network())
                {
                    recent.push((entry.signer, nonce, created));
                }
            }
            end = from;
        }
        Ok(recent)
    }

    /// The log's verifier key (`<name>+<key id>+<key>`).
    pub fn log_key(&self) -> String {
        self.log.verifier_key()
    }

    /// Reads the store; `None` while the ledger is degraded (its store is
    /// being reopened and may not match what was answered).
    fn with_store<T>(
        &self,
        read: impl FnOnce(&Store) -> Result<T, StoreError>,
    ) -> Option<Result<T, StoreError>> {
        if self.degraded.load(Ordering::Acquire) {
            return None;
        }
        let store = self.store.read().expect("store lock");
        store.as_ref().map(read)
    }

    /// Reads the stored Merkle tree.
    pub fn with_tree<T>(
        &self,
        read: impl FnOnce(&dyn Nodes) -> Result<T, TreeError>,
    ) -> Option<Result<T, StoreError>> {
        self.with_store(|store| store.with_tree(read))
    }

    /// Hashes of tree row `row` (level 8·row), `first..first + count`,
    /// within one tile; `Ok(None)` when the tree does not hold them yet.
    pub fn tile_hashes(
        &self,
        row: u8,
        first: u64,
        count: u64,
    ) -> Option<Result<Option<Vec<Hash>>, StoreError>> {
        self.with_store(|store| store.tile_hashes(row, first, count))
    }

    /// Journal entries (leaves) `from..from + limit`, as stored.
    pub fn leaves(&self, from: u64, limit: usize) -> Option<Result<Vec<Vec<u8>>, StoreError>> {
        self.with_store(|store| store.read(from, limit))
    }

    pub fn journal_len(&self) -> u64 {
        self.journal_len.load(Ordering::Acquire)
    }

    /// Runs `read` on the current state; `None` while the ledger is
    /// degraded after a storage failure. The state may include batches
    /// still being committed: answers that must only show durable effects
    /// use [`Ledger::read_durable`].
    pub fn read<T>(&self, read: impl FnOnce(&State) -> T) -> Option<T> {
        self.read_marked(read).map(|(value, _)| value)
    }

    fn read_marked<T>(&self, read: impl FnOnce(&State) -> T) -> Option<(T, Mark)> {
        let state = self.state.read().expect("state lock");
        if self.degraded.load(Ordering::Acquire) {
            return None;
        }
        let mark = Mark {
            epoch: self.epoch.load(Ordering::Acquire),
            len: self.applied_len.load(Ordering::Acquire),
        };
        Some((read(&state), mark))
    }

    /// Runs `read` on the current state and returns its answer once
    /// everything that state reflects is durable; `None` while the ledger
    /// is degraded, or if a storage failure lost part of what was read.
    pub async fn read_durable<T>(&self, read: impl FnOnce(&State) -> T) -> Option<T> {
        let (value, read_at) = self.read_marked(read)?;
        let mut durable = self.durable.subscribe();
        let reached = durable
            .wait_for(|now| now.epoch != read_at.epoch || now.len >= read_at.len)
            .await
            .ok()?;
        (reached.epoch == read_at.epoch).then_some(value)
    }

    /// The record of `kind` filed under `id` that the state forgot (ended a
    /// retention ago), if any: what its read showed last.
    pub fn archived(&self, kind: ArchiveKind, id: &str) -> Result<Option<Archived>, LedgerError> {
        let key = kind.key(id);
        let pending = self
            .unwritten
            .lock()
            .expect("unwritten lock")
            .records
            .get(&key)
            .cloned();
        let bytes = match pending {
            Some(bytes) => Some(bytes),
            None => {
                let store = self.store.read().expect("store lock");
                let store = store.as_ref().ok_or(StoreError::NeedsReopen)?;
                store.archived(&key)?
            }
        };
        bytes
            .map(|bytes| {
                serde_json::from_slice(&bytes).map_err(|e| {
                    LedgerError::Store(StoreError::Corrupt(format!(
                        "archived record {key} does not decode: {e}"
                    )))
                })
            })
            .transpose()
    }

    /// Journal entries concerning `did`, newest first, below index `before`
    /// (at most [`agentrail_store::HISTORY_READ_MAX`] - 1 at a time).
    pub fn history(
        &self,
        did: &Did,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<HistoryItem>, Option<u64>), LedgerError> {
        let store = self.store.read().expect("store lock");
        let store = store.as_ref().ok_or(StoreError::NeedsReopen)?;
        let indices = store.history(did.public_key_bytes(), before, limit + 1)?;
        let mut items = Vec::new();
        let mut named = Vec::new();
        for &index in indices.iter().take(limit) {
            let bytes = store
                .read(index, 1)?
                .pop()
                .ok_or(StoreError::Corrupt(format!("entry {index} missing")))?;
            let entry = JournalEntry::decode(&bytes).map_err(|e| divergence(index, e))?;
            // The index is not covered by the entries' checksums: an entry
            // that does not name `did` is a damaged index, never an answer.
            named.clear();
            parties(entry.signer, &entry.events, &mut named);
            if named.binary_search(did).is_err() {
                return Err(StoreError::Corrupt(format!(
                    "the history index lists entry {index}, which does not concern {did}"
                ))
                .into());
            }
            items.push(HistoryItem {
                index,
                time: entry.time,
                signer: entry.signer,
                events: entry.events,
            });
        }
        let next = if indices.len() > limit {
            items.last().map(|item| item.index)
        } else {
            None
        };
        Ok((items, next))
    }

    /// The writer: applies batches and, on a second thread, commits them,
    /// until the queue closes and everything queued is answered.
    pub fn run_writer(self: Arc<Self>, queue: Receiver<Job>) {
        let (to_committer, applied) = sync_channel::<AppliedBatch>(PIPELINE_DEPTH);
        let (to_snapshotter, snapshots) = sync_channel::<u64>(1);
        std::thread::scope(|scope| {
            let committer = std::thread::Builder::new()
                .name("agentrail-commit".into())
                .spawn_scoped(scope, || self.run_committer(applied, to_snapshotter))
                .expect("a committer thread");
            let snapshotter = std::thread::Builder::new()
                .name("agentrail-snapshot".into())
                .spawn_scoped(scope, || self.run_snapshotter(snapshots))
                .expect("a snapshot thread");
            loop {
                let first = match queue.recv_timeout(TICK_POLL) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout) => {
                        // Idle: what falls due is journaled when it does,
                        // not at the next command.
                        if self.is_leading()
                            && self.is_due()
                            && let Some(batch) = self.apply_batch(Vec::new())
                            && let Err(lost) = to_committer.send(batch)
                        {
                            lost.0.refuse(|| Refusal::Stopped);
                            break;
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                let mut jobs = vec![first];
                while jobs.len() < self.options.batch_max {
                    match queue.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                if let Some(batch) = self.apply_batch(jobs)
                    && let Err(lost) = to_committer.send(batch)
                {
                    lost.0.refuse(|| Refusal::Stopped);
                    break;
                }
            }
            drop(to_committer);
            let _ = committer.join();
            let _ = snapshotter.join();
        });
        tracing::info!("writer stopped");
    }

    /// Whether an expiry, deadline or window has fallen due on the clock.
    fn is_due(&self) -> bool {
        let state = self.state.read().expect("state lock");
        state.is_due((self.clock)())
    }

    /// The writer's steps on the calling thread, for the deterministic
    /// simulation: applies `batches` one after the other, as the writer
    /// does while earlier batches wait in the pipeline, then commits them as
    /// the committer would (merged up to a commit's limit when `merge`, one
    /// commit per batch otherwise), answers every job, and saves the
    /// snapshots that became durable. Nothing is simulated here: these are
    /// the functions [`Ledger::run_writer`] runs on its threads, minus the
    /// threads.
    pub fn process(&self, batches: Vec<Vec<Job>>, merge: bool) {
        let applied: Vec<AppliedBatch> = batches
            .into_iter()
            .filter_map(|jobs| self.apply_batch(jobs))
            .collect();
        let mut group = Vec::new();
        let mut entries = 0;
        let mut snapshots = Vec::new();
        for batch in applied {
            if !group.is_empty() && (!merge || entries + batch.entries.len() > self.commit_max()) {
                snapshots.extend(self.commit_group(std::mem::take(&mut group)));
                entries = 0;
            }
            entries += batch.entries.len();
            group.push(batch);
        }
        if !group.is_empty() {
            snapshots.extend(self.commit_group(group));
        }
        for covers in snapshots {
            self.save_snapshot(covers);
        }
    }

    /// Applies one batch to the state and encodes its entries; `None` when
    /// the ledger is degraded and could not recover (every job is refused).
    fn apply_batch(&self, jobs: Vec<Job>) -> Option<AppliedBatch> {
        let mut state = self.state.write().expect("state lock");
        // Dropped before `state`: the time the state was held.
        let _pause = PauseTimer::start(&self.metrics);
        if !self.is_leading() {
            for job in jobs {
                let _ = job.reply.send(Err(Refusal::NotLeader));
            }
            return None;
        }
        if self.degraded.load(Ordering::Acquire)
            && let Err(error) = self.reopen(&mut state)
        {
            tracing::error!(%error, "the store is still unavailable");
            for job in jobs {
                let _ = job.reply.send(Err(Refusal::Unavailable));
            }
            return None;
        }
        // The time every command of the batch is applied at, and recorded
        // with: the ledger's clock, which never runs backwards.
        let now = state.clock().max((self.clock)());
        let mut batch = AppliedBatch {
            epoch: self.epoch.load(Ordering::Acquire),
            term: self.replica.as_ref().and_then(|journal| journal.term()),
            time: now,
            entries: Vec::new(),
            parties: Vec::new(),
            party_ends: Vec::new(),
            ticked: false,
            outcomes: Vec::with_capacity(jobs.len()),
            archive: Vec::new(),
            snapshot: None,
        };
        if state.is_due(now) {
            // What fell due is the batch's first entry, the clock's, so
            // that no other entry carries a time-driven event and the log
            // holds every movement of money.
            let signer = self.genesis.operator;
            let tick = Authenticated::assume_verified(
                signer,
                agentrail_core::Command::Tick(agentrail_core::command::Tick {}),
            );
            let events = state.apply(&tick, now).expect("something is due");
            batch
                .entries
                .push(encode_entry(now, signer, &EntryRequest::Clock {}, &events));
            parties(signer, &events, &mut batch.parties);
            batch.party_ends.push(batch.parties.len());
            batch.ticked = true;
            self.metrics.ticks.fetch_add(1, Ordering::Relaxed);
        } else {
            let events = state.advance(now);
            assert!(events.is_empty(), "nothing was due");
        }
        // What the clock just forgot is archived before any command of the
        // batch is checked against the archive.
        self.unwritten
            .lock()
            .expect("unwritten lock")
            .add(&mut state);
        for Job {
            command,
            request,
            reply,
        } in jobs
        {
            // A signed request that waited in the queue past the window its
            // receipt is checked against offline is refused, not journaled:
            // its client signs it again.
            if let EntryRequest::Http {
                signature_input, ..
            } = &request
                && !agentrail_wire::httpsig::recorded_in_window(
                    signature_input,
                    now.0,
                    &self.network,
                )
            {
                self.metrics.reject(SignatureError::Expired.code());
                let _ = reply.send(Err(Refusal::Request(crate::http::from_signature(
                    SignatureError::Expired,
                ))));
                continue;
            }
            let result = match self.retired_id(&state, command.command()) {
                Some(rejection) => Err(rejection),
                None => state.apply(&command, now),
            };
            if let Ok(events) = &result {
                let signer = *command.signer();
                batch
                    .entries
                    .push(encode_entry(now, signer, &request, events));
                parties(signer, events, &mut batch.parties);
                batch.party_ends.push(batch.parties.len());
            }
            batch.outcomes.push((reply, result));
        }
        {
            // What the state forgot goes to the store with the next batch
            // that commits: before any snapshot of a state without it.
            let mut unwritten = self.unwritten.lock().expect("unwritten lock");
            unwritten.add(&mut state);
            if !batch.entries.is_empty() {
                batch.archive = unwritten.assign();
            }
        }
        let applied = self.applied_len.load(Ordering::Acquire) + batch.entries.len() as u64;
        self.applied_len.store(applied, Ordering::Release);
        if applied - self.last_snapshot.load(Ordering::Acquire) >= self.options.snapshot_every
            // Still saving the previous one: the next batch tries again.
            && let Ok(mut buffer) = self.snapshot_buffer.try_lock()
        {
            // Serialized here, where the state holds still, into a buffer
            // kept from one snapshot to the next. A copy to serialize off
            // the writer's path would stall it less (measured in the soak:
            // 20-30 ms to copy, 40-70 ms to serialize a state of 10 MB)
            // but would double the state's memory at every snapshot.
            let started = std::time::Instant::now();
            state.write_snapshot(&mut buffer.bytes);
            buffer.covers = applied;
            let serialized_us = started.elapsed().as_micros() as u64;
            self.metrics.snapshot_serialized(serialized_us);
            tracing::info!(
                covers = applied,
                bytes = buffer.bytes.len(),
                serialized_us,
                "snapshot serialized"
            );
            batch.snapshot = Some(applied);
            self.last_snapshot.store(applied, Ordering::Release);
        }
        Some(batch)
    }

    /// A command that would create a record under an id the archive holds
    /// (the state forgot it a retention after it ended): refused, so that
    /// every id names one record for good and the earlier one reads as it
    /// ended. A store that cannot be read refuses nothing here.
    fn retired_id(&self, state: &State, command: &agentrail_core::Command) -> Option<Rejection> {
        use agentrail_core::Command as C;
        let (kind, field, id, live) = match command {
            C::Hold(hold) => (
                ArchiveKind::Hold,
                "hold_id",
                &hold.hold_id,
                state.hold_status(&hold.hold_id).is_some(),
            ),
            C::RequestQuotes(request) => (
                ArchiveKind::Rfq,
                "rfq_id",
                &request.rfq_id,
                state.rfq(&request.rfq_id).is_some(),
            ),
            C::AcceptQuote(accept) => (
                ArchiveKind::Task,
                "task_id",
                &accept.task_id,
                state.task(&accept.task_id).is_some(),
            ),
            C::LicenseDataset(license) => (
                ArchiveKind::License,
                "license_id",
                &license.license_id,
                state.license(&license.license_id).is_some(),
            ),
            C::Subscribe(subscribe) => (
                ArchiveKind::Subscription,
                "subscription_id",
                &subscribe.subscription_id,
                state.subscription(&subscribe.subscription_id).is_some(),
            ),
            C::PostBounty(post) => (
                ArchiveKind::Bounty,
                "bounty_id",
                &post.bounty_id,
                state.bounty(&post.bounty_id).is_some(),
            ),
            C::PlaceOrder(place) => (
                ArchiveKind::Order,
                "order_id",
                &place.order_id,
                state.order(&place.order_id).is_some(),
            ),
            _ => return None,
        };
        if live {
            return None;
        }
        match self.archived(kind, id) {
            Ok(Some(_)) => Some(Rejection::IdRetired {
                field,
                id: id.clone(),
            }),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "the archive could not be read to check an id");
                None
            }
        }
    }

    /// The committer: makes applied batches durable in order, merging what
    /// is already waiting into one commit, then answers their jobs.
    fn run_committer(&self, applied: Receiver<AppliedBatch>, snapshots: SyncSender<u64>) {
        let mut waiting: Option<AppliedBatch> = None;
        while let Some(first) = waiting.take().or_else(|| applied.recv().ok()) {
            let mut entries = first.entries.len();
            let mut group = vec![first];
            while let Ok(next) = applied.try_recv() {
                if entries + next.entries.len() > self.commit_max() {
                    waiting = Some(next);
                    break;
                }
                entries += next.entries.len();
                group.push(next);
            }
            for snapshot in self.commit_group(group) {
                // A snapshot the snapshotter has no room for is skipped: a
                // later one covers more.
                let _ = snapshots.try_send(snapshot);
            }
        }
    }

    /// Entries one commit may hold: a batch's worth, within the store's
    /// limit (so that `batch_max: 1` means one fsync per command).
    fn commit_max(&self) -> usize {
        self.options
            .batch_max
            .min(agentrail_store::BATCH_ENTRIES_MAX)
    }

    /// Commits a group of applied batches with one fsync and answers their
    /// jobs; returns the snapshots that became durable.
    fn commit_group(&self, group: Vec<AppliedBatch>) -> Vec<u64> {
        // Batches applied before a recovery were applied to a state that
        // no longer exists: none of them landed.
        let epoch = self.epoch.load(Ordering::Acquire);
        let (group, stale): (Vec<_>, Vec<_>) =
            group.into_iter().partition(|batch| batch.epoch == epoch);
        for batch in stale {
            batch.refuse(|| Refusal::Unavailable);
        }
        // On a node of several, one commit holds batches of one term: the
        // term they were applied in, which the journal checks.
        let term = group.first().and_then(|batch| batch.term);
        let (group, other_term): (Vec<_>, Vec<_>) =
            group.into_iter().partition(|batch| batch.term == term);
        for batch in other_term {
            batch.refuse(|| Refusal::NotLeader);
        }
        let entries: Vec<&[u8]> = group
            .iter()
            .flat_map(|batch| batch.entries.iter().map(Vec::as_slice))
            .collect();
        let expected_first = self.journal_len();
        let keys: Vec<[u8; 32]> = group
            .iter()
            .flat_map(|batch| batch.parties.iter().map(|did| *did.public_key_bytes()))
            .collect();
        let mut ends = Vec::with_capacity(entries.len());
        let mut offset = 0;
        for batch in &group {
            ends.extend(batch.party_ends.iter().map(|end| offset + end));
            offset += batch.parties.len();
        }
        let archive: Vec<(&str, &[u8])> = group
            .iter()
            .flat_map(|batch| {
                batch
                    .archive
                    .iter()
                    .map(|(key, bytes)| (key.as_str(), bytes.as_slice()))
            })
            .collect();
        let landed = if entries.is_empty() {
            Ok(Landed::Nothing)
        } else {
            self.append(
                &entries,
                &slices(&keys, &ends),
                &archive,
                expected_first,
                term,
            )
        };
        let leaf_hashes = match landed {
            Err(Unlanded::Unknown(error)) => {
                tracing::error!(%error, "journal append failed and the store cannot tell whether it landed");
                for batch in group {
                    batch.refuse(|| Refusal::Unknown);
                }
                return Vec::new();
            }
            Ok(Landed::Now { leaf_hashes, root }) => {
                let len = expected_first + entries.len() as u64;
                let mut unwritten = self.unwritten.lock().expect("unwritten lock");
                for batch in &group {
                    unwritten.written(&batch.archive);
                }
                drop(unwritten);
                *self.checkpoint.write().expect("checkpoint lock") =
                    Arc::new(checkpoint_of(&self.log, len, root));
                self.publish(len);
                leaf_hashes
            }
            // The reopen signed the checkpoint.
            Ok(Landed::AfterRecovery { leaf_hashes }) => leaf_hashes,
            Ok(Landed::Nothing) => Vec::new(),
            Err(Unlanded::No(error)) => {
                tracing::error!(%error, "journal append failed; the batch's commands are refused");
                for batch in group {
                    batch.refuse(|| Refusal::Unavailable);
                }
                return Vec::new();
            }
            Err(Unlanded::NotLeader) => {
                for batch in group {
                    batch.refuse(|| Refusal::NotLeader);
                }
                return Vec::new();
            }
        };
        if !entries.is_empty() {
            self.metrics.batches.fetch_add(1, Ordering::Relaxed);
            self.metrics
                .batch_entries
                .fetch_add(entries.len() as u64, Ordering::Relaxed);
        }
        let mut leaf_hashes = leaf_hashes.into_iter();
        let mut next = expected_first;
        let mut snapshots = Vec::new();
        for batch in group {
            let now = batch.time;
            if batch.ticked {
                leaf_hashes
                    .next()
                    .expect("the clock's entry has a leaf hash");
                next += 1;
            }
            for (reply_to, result) in batch.outcomes {
                let reply = match result {
                    Ok(events) => {
                        let index = next;
                        next += 1;
                        self.metrics.accepted.fetch_add(1, Ordering::Relaxed);
                        let leaf_hash = leaf_hashes
                            .next()
                            .expect("one leaf hash per accepted command");
                        Ok(CommandResponse {
                            index,
                            time: now,
                            events,
                            receipt: ReceiptRef {
                                index,
                                leaf_hash: STANDARD.encode(leaf_hash),
                            },
                        })
                    }
                    Err(rejection) => {
                        self.metrics.reject(rejection.code());
                        Err(Refusal::Rejected(rejection))
                    }
                };
                let _ = reply_to.send(reply);
            }
            snapshots.extend(batch.snapshot);
        }
        snapshots
    }

    /// Appends entries as one durable commit. On failure, reopens the store
    /// and recovers: if the entries landed after all, that is what it
    /// returns; if not, the state is rebuilt without them and the error is
    /// returned; if the store cannot be reopened, nobody knows yet.
    fn append(
        &self,
        entries: &[&[u8]],
        parties: &[&[[u8; 32]]],
        archive: &[(&str, &[u8])],
        expected_first: u64,
        term: Option<u64>,
    ) -> Result<Landed, Unlanded> {
        // Set when the replicated journal says another node leads, or could
        // not tell whether the batch landed.
        let mut fenced = false;
        let mut unknown = false;
        let result = {
            let slot = self.store.read().expect("store lock");
            slot.as_ref()
                .ok_or(StoreError::NeedsReopen)
                .and_then(|store| match &self.replica {
                    None => store.append_logged(entries, parties, archive),
                    Some(journal) => {
                        store.append_replicated(entries, parties, archive, &mut |appended| {
                            journal
                                .append(term.unwrap_or(0), appended.first, entries, &appended.root)
                                .map_err(|error| {
                                    fenced = matches!(
                                        error,
                                        JournalError::Fenced { .. } | JournalError::NotLeader
                                    );
                                    unknown = matches!(error, JournalError::Unreachable(_));
                                    StoreError::Replica(error.to_string())
                                })
                        })
                    }
                })
        };
        match result {
            Ok(appended) => {
                assert_eq!(
                    appended.first, expected_first,
                    "the committer is the journal's only writer"
                );
                Ok(Landed::Now {
                    leaf_hashes: appended.leaf_hashes,
                    root: appended.root,
                })
            }
            Err(error) => {
                tracing::error!(%error, "journal append failed; reopening the store to learn what landed");
                // The writer waits while the state is rebuilt.
                let mut state = self.state.write().expect("state lock");
                self.degraded.store(true, Ordering::Release);
                *self.store.write().expect("store lock") = None;
                // A batch of an older term, refused while this node leads
                // again in a newer one, does not end the newer lead.
                let leads_newer = || {
                    self.replica
                        .as_ref()
                        .and_then(|journal| journal.term())
                        .is_some_and(|current| Some(current) != term)
                };
                if fenced && !leads_newer() {
                    self.step_down();
                }
                let len = self.reopen(&mut state).map_err(Unlanded::Unknown)?;
                if self.replica.is_some() {
                    // What the journal holds there may be another leader's.
                    let ours = len >= expected_first + entries.len() as u64
                        && self
                            .with_store(|store| store.read(expected_first, entries.len()))
                            .and_then(Result::ok)
                            .is_some_and(|found| {
                                found.len() == entries.len()
                                    && found.iter().zip(entries).all(|(a, b)| a == b)
                            });
                    if ours {
                        tracing::warn!("the failed batch was committed after all");
                        return Ok(Landed::AfterRecovery {
                            leaf_hashes: entries.iter().map(|e| merkle::leaf_hash(e)).collect(),
                        });
                    }
                    if fenced || len != expected_first {
                        if !leads_newer() {
                            self.step_down();
                        }
                        return Err(Unlanded::NotLeader);
                    }
                    if unknown {
                        // Not there yet, but a transaction of ours may
                        // still be in flight.
                        return Err(Unlanded::Unknown(error.into()));
                    }
                    return Err(Unlanded::No(error.into()));
                }
                if len == expected_first + entries.len() as u64 {
                    // The reopen re-signed the checkpoint.
                    tracing::warn!("the failed batch was durable after all");
                    return Ok(Landed::AfterRecovery {
                        leaf_hashes: entries.iter().map(|e| merkle::leaf_hash(e)).collect(),
                    });
                }
                assert_eq!(len, expected_first, "a batch lands whole or not at all");
                Err(Unlanded::No(error.into()))
            }
        }
    }

    /// Publishes the durable journal length to readers waiting for it.
    fn publish(&self, len: u64) {
        self.journal_len.store(len, Ordering::Release);
        self.durable.send_replace(Mark {
            epoch: self.epoch.load(Ordering::Acquire),
            len,
        });
    }

    /// Reopens the store and rebuilds the state from it. Until this
    /// succeeds the ledger is degraded: its in-memory state may hold a batch
    /// that never became durable, so reads answer 503 and the writer applies
    /// nothing. Called with the state's write lock held.
    fn reopen(&self, state: &mut State) -> Result<u64, LedgerError> {
        // The files are opened once at a time; and a snapshot serialized
        // from the state being replaced is not saved.
        *self.store.write().expect("store lock") = None;
        self.snapshot_buffer
            .lock()
            .expect("snapshot buffer lock")
            .covers = u64::MAX;
        let store = (self.open_store)()?;
        let (mut recovered, len, snapshot_covers) = recover(&store, self.genesis)?;
        *self.unwritten.lock().expect("unwritten lock") = Unwritten::recovered(&mut recovered);
        *self.checkpoint.write().expect("checkpoint lock") =
            Arc::new(sign_checkpoint(&self.log, &store, len)?);
        *state = recovered;
        *self.store.write().expect("store lock") = Some(store);
        // Whatever was applied before is gone: batches and reads of the
        // old state are refused.
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.applied_len.store(len, Ordering::Release);
        self.last_snapshot.store(snapshot_covers, Ordering::Release);
        self.publish(len);
        self.degraded.store(false, Ordering::Release);
        tracing::info!(journal_len = len, "store reopened");
        Ok(len)
    }

    /// Saves the snapshots the committer reports durable.
    fn run_snapshotter(&self, snapshots: Receiver<u64>) {
        while let Ok(covers) = snapshots.recv() {
            self.save_snapshot(covers);
        }
    }

    /// Saves the serialized snapshot if it is still the one of the first
    /// `covers` entries (all durable): the writer may have serialized a
    /// newer one since, saved once that one is durable. A failure costs
    /// only recovery time: it is logged.
    fn save_snapshot(&self, covers: u64) {
        let buffer = self.snapshot_buffer.lock().expect("snapshot buffer lock");
        if buffer.covers != covers {
            return;
        }
        let store = self.store.read().expect("store lock");
        let Some(store) = store.as_ref() else {
            return;
        };
        match store.save_snapshot(covers, &buffer.bytes) {
            Ok(()) => {
                self.metrics
                    .snapshot_bytes
                    .store(buffer.bytes.len() as u64, Ordering::Relaxed);
                tracing::info!(covers, bytes = buffer.bytes.len(), "snapshot saved");
            }
            Err(error) => tracing::warn!(%error, "snapshot not saved"),
        }
    }
}

/// Records, when dropped, how long the writer held the state.
struct PauseTimer<'a> {
    metrics: &'a Metrics,
    started: std::time::Instant,
}

impl<'a> PauseTimer<'a> {
    fn start(metrics: &'a Metrics) -> PauseTimer<'a> {
        PauseTimer {
            metrics,
            started: std::time::Instant::now(),
        }
    }
}

impl Drop for PauseTimer<'_> {
    fn drop(&mut self) {
        let us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.metrics.writer_paused(us);
    }
}

/// Batches applied to the state waiting for the committer: enough to apply
/// the next batch while the previous one is being made durable.
const PIPELINE_DEPTH: usize = 2;

/// How far the journal is durable: `len` entries, in recovery epoch
/// `epoch` (a recovery starts a new one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    epoch: u64,
    len: u64,
}

/// How appended entries became durable.
enum Landed {
    /// Committed: the tree's new root.
    Now { leaf_hashes: Vec<Hash>, root: Hash },
    /// Found durable by the recovery after a failed commit, which also
    /// rebuilt the history and re-signed the checkpoint.
    AfterRecovery { leaf_hashes: Vec<Hash> },
    /// The group held only refusals: nothing to append, only to answer
    /// (after every earlier batch, which is durable by now).
    Nothing,
}

/// Why appended entries are not known to be durable.
enum Unlanded {
    /// The commit failed and the reopened store does not hold them.
    No(LedgerError),
    /// The commit failed and the store could not be reopened: they may
    /// have landed.
    Unknown(LedgerError),
    /// Another node leads: the replicated journal refused them.
    NotLeader,
}

/// A batch applied to the state, on its way to the journal.
struct AppliedBatch {
    /// The recovery epoch it was applied in.
    epoch: u64,
    /// On a node of several, the term it was applied in.
    term: Option<u64>,
    time: Timestamp,
    entries: Vec<Vec<u8>>,
    /// The identities each entry concerns, for the store's history index:
    /// entry `i`'s
    /// are `parties[party_ends[i - 1]..party_ends[i]]`.
    parties: Vec<Did>,
    party_ends: Vec<usize>,
    /// The first entry is the clock's ([`agentrail_core::command::Tick`]),
    /// which answers nobody.
    ticked: bool,
    outcomes: Vec<(oneshot::Sender<Reply>, Applied)>,
    /// Records the state forgot, archived in the same transaction.
    archive: Vec<(String, Vec<u8>)>,
    /// The entries the snapshot serialized after this batch covers, to be
    /// saved once durable.
    snapshot: Option<u64>,
}

impl AppliedBatch {
    /// Answers every job of the batch with the same refusal.
    fn refuse(self, refusal: impl Fn() -> Refusal) {
        for (reply, _) in self.outcomes {
            let _ = reply.send(Err(refusal()));
        }
    }
}

/// The sending side of the writer's queue.
#[derive(Clone, Debug)]
pub struct Queue {
    sender: SyncSender<Job>,
}

impl Queue {
    pub fn new(sender: SyncSender<Job>) -> Queue {
        Queue { sender }
    }

    /// Queues a job without waiting: a full queue is the caller's 503.
    pub fn submit(&self, job: Job) -> Result<(), QueueError> {
        self.sender.try_send(job).map_err(|error| match error {
            TrySendError::Full(_) => QueueError::Full,
            TrySendError::Disconnected(_) => QueueError::Stopped,
        })
    }

    /// Queues a job, or answers it at once when the queue cannot take it.
    pub fn forward(&self, job: Job) {
        if let Err(error) = self.sender.try_send(job) {
            let (job, refusal) = match error {
                TrySendError::Full(job) => (job, Refusal::Overloaded),
                TrySendError::Disconnected(job) => (job, Refusal::Stopped),
            };
            let _ = job.reply.send(Err(refusal));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentrail_core::command::RegisterPrincipal;
    use ed25519_dalek::SigningKey;

    fn log() -> LogSigner {
        LogSigner::new("agentrail.test/log", SigningKey::from_bytes(&[77; 32])).unwrap()
    }

    fn job() -> (Job, oneshot::Receiver<Reply>) {
        job_for(5)
    }

    /// A principal's registration, signed by the key of `seed`.
    fn job_for(seed: u8) -> (Job, oneshot::Receiver<Reply>) {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let did = Did::from_verifying_key(&key.verifying_key());
        let signed = agentrail_core::SignedCommand::sign(
            agentrail_core::Command::RegisterPrincipal(RegisterPrincipal { principal: did }),
            &key,
        )
        .unwrap();
        let (reply, answer) = oneshot::channel();
        let command = signed.clone().verify().unwrap();
        (
            Job {
                command,
                request: EntryRequest::Node {
                    command: Box::new(signed),
                },
                reply,
            },
            answer,
        )
    }

    /// `command` signed by the key of `seed`.
    fn signed_job(seed: u8, command: agentrail_core::Command) -> (Job, oneshot::Receiver<Reply>) {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let signed = agentrail_core::SignedCommand::sign(command, &key).unwrap();
        let (reply, answer) = oneshot::channel();
        let command = signed.clone().verify().unwrap();
        let request = EntryRequest::Node {
            command: Box::new(signed),
        };
        (
            Job {
                command,
                request,
                reply,
            },
            answer,
        )
    }

    fn did_of(seed: u8) -> Did {
        Did::from_verifying_key(&SigningKey::from_bytes(&[seed; 32]).verifying_key())
    }

    #[test]
    fn an_ended_record_leaves_the_state_for_the_archive_and_stays_readable() {
        use agentrail_core::command::{Deposit, Hold, Void};
        use agentrail_core::state::HoldStatus;
        use agentrail_core::{Amount, Command};
        use agentrail_store::fault::FaultyDisk;
        let (journal, snapshots) = (FaultyDisk::new(64 << 20), FaultyDisk::new(64 << 20));
        let opener = move || -> StoreOpener {
            let (journal, snapshots) = (journal.clone(), snapshots.clone());
            Box::new(move || {
                Store::open_with_backends(journal.clone(), snapshots.clone(), || {
                    FaultyDisk::new(64 << 20)
                })
            })
        };
        let genesis = Genesis {
            operator: did_of(9),
            network: [0; 32],
            chain: None,
        };
        let clock = Arc::new(AtomicU64::new(1_000_000));
        let open = || {
            let clock = Arc::clone(&clock);
            Ledger::open_with(opener(), genesis, log(), LedgerOptions::default())
                .unwrap()
                .with_clock(Box::new(move || Timestamp(clock.load(Ordering::SeqCst))))
        };
        let ledger = open();
        let run = |ledger: &Ledger, jobs: Vec<(Job, oneshot::Receiver<Reply>)>| {
            let (jobs, answers): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
            ledger.process(vec![jobs], false);
            answers
                .into_iter()
                .map(|answer| answer.blocking_recv().unwrap().is_ok())
                .collect::<Vec<bool>>()
        };
        let principal = did_of(5);
        let accepted = run(
            &ledger,
            vec![
                job_for(5),
                signed_job(
                    9,
                    Command::Deposit(Deposit {
                        to: principal,
                        amount: Amount::from_atomic(100),
                        idempotency_key: "d1".into(),
                        chain: None,
                    }),
                ),
                signed_job(
                    5,
                    Command::Hold(Hold {
                        hold_id: "h1".into(),
                        from: principal,
                        amount: Amount::from_atomic(40),
                        category: None,
                        expires_at: None,
                    }),
                ),
                signed_job(
                    5,
                    Command::Void(Void {
                        hold_id: "h1".into(),
                    }),
                ),
            ],
        );
        assert_eq!(accepted, [true; 4]);
        let voided = Some(Archived::Hold {
            hold_id: "h1".into(),
            status: HoldStatus::Voided,
        });
        assert_eq!(
            ledger.read(|s| s.hold_status("h1")),
            Some(Some(HoldStatus::Voided))
        );
        assert_eq!(ledger.archived(ArchiveKind::Hold, "h1").unwrap(), None);
        // A day later a refused command moves the clock: the hold leaves
        // the state, and reads find it before any batch committed it.
        clock.fetch_add(
            agentrail_core::constants::RECORD_RETENTION_S,
            Ordering::SeqCst,
        );
        assert_eq!(run(&ledger, vec![job_for(5)]), [false]);
        assert_eq!(ledger.read(|s| s.hold_status("h1")), Some(None));
        assert_eq!(ledger.archived(ArchiveKind::Hold, "h1").unwrap(), voided);
        // The next batch that commits writes it to the store; a restart,
        // replaying the journal, forgets it again and still serves it.
        assert_eq!(run(&ledger, vec![job_for(6)]), [true]);
        assert!(ledger.unwritten.lock().unwrap().records.is_empty());
        assert_eq!(ledger.archived(ArchiveKind::Hold, "h1").unwrap(), voided);
        drop(ledger);
        let reopened = open();
        assert_eq!(reopened.read(|s| s.hold_status("h1")), Some(None));
        assert_eq!(reopened.archived(ArchiveKind::Hold, "h1").unwrap(), voided);
        // Its id is never reused, so the voided hold keeps reading as it
        // ended (a second hold under "h1" would hide it).
        let (job, answer) = signed_job(
            5,
            Command::Hold(Hold {
                hold_id: "h1".into(),
                from: principal,
                amount: Amount::from_atomic(10),
                category: None,
                expires_at: None,
            }),
        );
        reopened.process(vec![vec![job]], false);
        match answer.blocking_recv().unwrap() {
            Err(Refusal::Rejected(rejection)) => assert_eq!(rejection.code(), "id_retired"),
            other => panic!("a reused id was not refused: {other:?}"),
        }
        assert_eq!(reopened.archived(ArchiveKind::Hold, "h1").unwrap(), voided);
        reopened.read(|s| s.check_invariants()).unwrap().unwrap();
    }

    #[test]
    fn a_failed_append_refuses_the_batch_and_the_ledger_carries_on() {
        use agentrail_store::fault::FaultyDisk;
        let (journal, snapshots) = (FaultyDisk::new(64 << 20), FaultyDisk::new(64 << 20));
        let opener = {
            let (journal, snapshots) = (journal.clone(), snapshots.clone());
            Box::new(move || {
                Store::open_with_backends(journal.clone(), snapshots.clone(), || {
                    FaultyDisk::new(64 << 20)
                })
            })
        };
        let genesis = Genesis {
            operator: Did::from_public_key_bytes([1; 32]),
            network: [0; 32],
            chain: None,
        };
        let ledger =
            Arc::new(Ledger::open_with(opener, genesis, log(), LedgerOptions::default()).unwrap());
        let (sender, receiver) = std::sync::mpsc::sync_channel(16);
        let writer = {
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || ledger.run_writer(receiver))
        };
        // The storage fails and stays down: the store cannot be reopened to
        // learn whether the command landed, so its outcome is unknown, and
        // reads wait for the ledger to recover.
        journal.fail_power_after(0);
        let (first, answer) = job();
        sender.send(first).unwrap();
        assert!(matches!(
            answer.blocking_recv().unwrap(),
            Err(Refusal::Unknown)
        ));
        // While it is down, commands are refused without being applied.
        let (second, answer) = job_for(6);
        sender.send(second).unwrap();
        assert!(matches!(
            answer.blocking_recv().unwrap(),
            Err(Refusal::Unavailable)
        ));
        assert_eq!(ledger.journal_len(), 0);
        assert!(
            ledger.read(|_| ()).is_none(),
            "reads wait while the state may hold a lost batch"
        );
        // The storage is back: the ledger recovers from disk and the same
        // command lands.
        journal.restore_power();
        let signer = Did::from_verifying_key(&SigningKey::from_bytes(&[5; 32]).verifying_key());
        let (again, answer) = job();
        sender.send(again).unwrap();
        assert_eq!(answer.blocking_recv().unwrap().unwrap().index, 0);
        assert!(
            ledger
                .read(|state| state.balance(&signer))
                .flatten()
                .is_some()
        );
        drop(sender);
        writer.join().unwrap();
    }

    #[test]
    fn a_storage_failure_mid_stream_answers_every_job_and_success_means_durable() {
        use agentrail_store::fault::FaultyDisk;
        let journal = FaultyDisk::new(64 << 20);
        let opener = {
            let journal = journal.clone();
            Box::new(move || {
                Store::open_with_backends(journal.clone(), FaultyDisk::new(64 << 20), || {
                    FaultyDisk::new(64 << 20)
                })
            })
        };
        let genesis = Genesis {
            operator: Did::from_public_key_bytes([1; 32]),
            network: [0; 32],
            chain: None,
        };
        let options = LedgerOptions {
            batch_max: 8,
            ..LedgerOptions::default()
        };
        let ledger = Arc::new(Ledger::open_with(opener, genesis, log(), options).unwrap());
        let (sender, receiver) = std::sync::mpsc::sync_channel(256);
        let writer = {
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || ledger.run_writer(receiver))
        };
        // Small batches keep several in the pipeline when the power fails.
        let mut answers = Vec::new();
        for seed in 10..210u8 {
            if seed == 60 {
                journal.fail_power_after(40);
            }
            let (job, answer) = job_for(seed);
            sender.send(job).unwrap();
            answers.push((seed, answer));
        }
        let (mut landed, mut refused, mut unknown) = (Vec::new(), Vec::new(), 0);
        for (seed, answer) in answers {
            match answer.blocking_recv().unwrap() {
                Ok(response) => landed.push((response.index, seed)),
                Err(Refusal::Unavailable) => refused.push(seed),
                Err(Refusal::Unknown) => unknown += 1,
                Err(other) => panic!("unexpected refusal {other:?}"),
            }
        }
        journal.restore_power();
        let (last, answer) = job_for(250);
        sender.send(last).unwrap();
        let last_index = answer.blocking_recv().unwrap().unwrap().index;
        drop(sender);
        writer.join().unwrap();

        // The acknowledged registrations are in the journal, at the indices
        // they were given, and in the state; the refused ones are not; the
        // ones of unknown outcome may be.
        assert!(landed.len() as u64 <= last_index);
        assert!(last_index <= (landed.len() + unknown) as u64);
        assert_eq!(ledger.journal_len(), last_index + 1);
        let entries = ledger.leaves(0, 1_000).unwrap().unwrap();
        for (index, seed) in &landed {
            let entry = JournalEntry::decode(&entries[*index as usize]).unwrap();
            let did =
                Did::from_verifying_key(&SigningKey::from_bytes(&[*seed; 32]).verifying_key());
            assert_eq!(entry.signer, did);
        }
        let registered = |seed: u8| {
            let did = Did::from_verifying_key(&SigningKey::from_bytes(&[seed; 32]).verifying_key());
            ledger.read(|state| state.balance(&did).is_some()).unwrap()
        };
        assert!(landed.iter().all(|(_, seed)| registered(*seed)));
        assert!(refused.iter().all(|seed| !registered(*seed)));
        assert!(!refused.is_empty(), "the power cut refused commands");
    }

    #[test]
    fn a_full_queue_refuses_instead_of_growing() {
        let (sender, receiver) = std::sync::mpsc::sync_channel(2);
        let queue = Queue::new(sender);
        assert_eq!(queue.submit(job().0), Ok(()));
        assert_eq!(queue.submit(job().0), Ok(()));
        assert_eq!(queue.submit(job().0), Err(QueueError::Full));
        drop(receiver);
        assert_eq!(queue.submit(job().0), Err(QueueError::Stopped));
    }

    #[test]
    fn the_writer_answers_only_after_the_batch_is_durable_and_recovers_it() {
        let dir =
            std::env::temp_dir().join(format!("agentrail-ledger-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let genesis = Genesis {
            operator: Did::from_public_key_bytes([1; 32]),
            network: [0; 32],
            chain: None,
        };
        let ledger =
            Arc::new(Ledger::open(&dir, genesis, log(), LedgerOptions::default()).unwrap());
        let (sender, receiver) = std::sync::mpsc::sync_channel(16);
        let writer = {
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || ledger.run_writer(receiver))
        };
        let (first, first_answer) = job();
        let (second, second_answer) = job();
        sender.send(first).unwrap();
        sender.send(second).unwrap();
        let accepted = first_answer.blocking_recv().unwrap().unwrap();
        assert_eq!(accepted.index, 0);
        // The same registration again is refused, and nothing is journaled for it.
        assert!(matches!(
            second_answer.blocking_recv().unwrap(),
            Err(Refusal::Rejected(_))
        ));
        assert_eq!(ledger.journal_len(), 1);
        drop(sender);
        writer.join().unwrap();
        drop(ledger);

        let reopened = Ledger::open(&dir, genesis, log(), LedgerOptions::default()).unwrap();
        assert_eq!(reopened.journal_len(), 1);
        let signer = Did::from_verifying_key(&SigningKey::from_bytes(&[5; 32]).verifying_key());
        assert_eq!(
            reopened.read(|state| state.balance(&signer).is_some()),
            Some(true)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
