//! agentrail-sim-node: the whole node under the seeded simulation, over a
//! simulated disk that fails.
//!
//! The core simulator ([`agentrail_sim::simulation`]) plays a population of
//! clients (principals, agents, sessions, strangers, the operator) sending
//! valid and hostile commands, with channels, tasks and disputes in the mix,
//! and keeps its own reference ledger. This crate follows it with a real
//! node: the node's [`Ledger`] (the single writer's apply and commit steps,
//! the journal with its Merkle tree, the snapshots and recovery) over two
//! [`FaultyDisk`]s, one for the journal and one for snapshots. Each clock
//! tick's commands reach the node in one to three batches, committed
//! together or one by one, and one tick in `fault_every` injects a fault:
//!
//! | fault | what it does | what must hold |
//! |---|---|---|
//! | `power_cut` | the power fails after a random number of writes and syncs, during the commit or the snapshot after it; the node restarts on what survived: a random prefix of the unsynced writes, the next one sometimes torn | every acknowledged command present, unchanged; what landed without an answer is exactly the next commands; the rest is retried |
//! | `kill` | the process dies after the tick; unsynced writes are lost in the same way | the same |
//! | `transient_io` | writes and syncs fail, then work again without a restart | the node recovers by itself; refused commands are retried |
//! | `disk_full` | the journal's disk fills up, then space is freed | nothing acknowledged is touched; the node carries on |
//! | `corrupt_journal` | a random byte of the journal file changes, then the node restarts | the node refuses to start or serves exactly what it served before, never a changed entry; a refusal is answered by restoring the file from a copy (a mirror of the log) |
//! | `corrupt_snapshot` | a random byte of the snapshot file changes, then the node restarts | recovery falls back to an older snapshot or to replay, and reaches the same state |
//!
//! Client commands reach the node as clients send them: RFC 9421 signed
//! requests for the node's network, admitted by the node's own request
//! check (signature, nonce window, body) and journaled as the requests (one
//! in [`NODE_SIGNED_EVERY`] goes as a command the node signed itself, as
//! its faucet does, so that both kinds of entry are recovered). The same
//! request check run for another network id (a second ledger where the
//! same keys exist) must refuse them, as sent and with its tag rewritten
//! to that network (about one request in eight, [`CROSS_LEDGER_EVERY`]: the check is
//! the same for every request, and two more signature verifications for
//! each would double the run). After every restart each such request
//! journaled lately must be refused as a replay: by the nonce window the
//! node rebuilds from its journal when it was created since the start (a
//! restart within its tick), as created before the start otherwise.
//!
//! After every attempt each answer must equal the reference's outcome (the
//! same events, or the same rejection), each receipt must name the entry
//! the simulation expects at the next index, and the node's checkpoint must
//! be the root of an independent in-memory tree of every acknowledged
//! entry. After every restart the recovered tree must hold that tree as its
//! prefix. After every fault, and every few ticks, the node's state must
//! equal the reference's byte for byte and pass every invariant, and every
//! ended record the reference forgot since (with a few older ones) must
//! read back from the node's archive as the reference last showed it. A
//! seed reproduces any failure.
//!
//! What this does not cover: the HTTP layer and the verifier threads (the
//! attack suite and the kill test drive those through the real binary),
//! and the writer's threads themselves ([`Ledger::process`] runs their
//! steps on the calling thread so that a seed fixes every interleaving).

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use agentrail_core::state::Archived;
use agentrail_core::{
    Authenticated, Command, Event, Genesis, Rejection, SignedCommand, State, Timestamp,
};
use agentrail_log::LogSigner;
use agentrail_log::merkle::{self, Hash, MemoryTree};
use agentrail_node::http::{Nonces, authenticate_request};
use agentrail_node::ledger::{Job, Ledger, LedgerError, LedgerOptions, Refusal, StoreOpener};
use agentrail_sim::simulation::run_following;
use agentrail_sim::{Follower, Rng, SimConfig, SimFailure, SimReport};
use agentrail_store::Store;
use agentrail_store::fault::FaultyDisk;
use agentrail_wire::api::COMMANDS_PATH;
use agentrail_wire::entry::{EntryRequest, encode_entry};
use agentrail_wire::httpsig::{self, SignParams, SignatureError, SignatureHeaders};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use tokio::sync::oneshot;

/// The size of each simulated disk.
const DISK_BYTES: u64 = 1 << 30;
/// The log's name; channel vouchers of the simulation sign its network id.
const LOG_NAME: &str = "agentrail.test/log";
/// Attempts to get a tick's commands answered once its fault is over.
const ATTEMPTS_MAX: usize = 4;
/// Older forgotten records read again at each comparison.
const ARCHIVE_SAMPLES: usize = 8;
/// Ticks between two full comparisons with the reference, without faults.
const COMPARE_EVERY: u64 = 64;
/// One client command in this many is journaled as a command the node
/// signed itself; the others go as signed HTTP requests.
pub const NODE_SIGNED_EVERY: u64 = 8;
/// A second ledger's network id: nothing signed for the node verifies there.
/// The client commands numbered by a multiple of this (and not of
/// [`NODE_SIGNED_EVERY`]: about one signed request in eight) are checked
/// against it.
pub const CROSS_LEDGER_EVERY: u64 = 7;
const _: () = assert!(!CROSS_LEDGER_EVERY.is_multiple_of(NODE_SIGNED_EVERY));
const OTHER_NETWORK: &str = "agentrail:other.test/log";
/// Signed requests journaled lately, replayed after each restart.
const REPLAYS_KEPT: usize = 16;

/// What to simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeSimConfig {
    pub seed: u64,
    /// Commands the clients send after the population is set up.
    pub commands: u64,
    /// Commands per clock tick: they reach the node together.
    pub clock_every: u64,
    /// One tick in `fault_every` injects a fault.
    pub fault_every: u64,
    /// Journal entries between two snapshots.
    pub snapshot_every: u64,
}

impl NodeSimConfig {
    pub fn new(seed: u64, commands: u64) -> NodeSimConfig {
        NodeSimConfig {
            seed,
            commands,
            clock_every: 32,
            fault_every: 16,
            snapshot_every: 400,
        }
    }
}

/// What a run did. A run that returns a report found nothing wrong: lost
/// commands, invariant violations and panics end it with a
/// [`NodeSimFailure`] instead.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NodeSimReport {
    pub seed: u64,
    pub commands: u64,
    pub ticks: u64,
    /// Commands the node accepted and answered (journal entries).
    pub acknowledged: u64,
    /// Commands the node refused with the reference's rejection.
    pub refused: u64,
    /// Answers that the storage failed (`Unavailable`, `Unknown`): the
    /// commands were sent again.
    pub retried: u64,
    /// Commands found in the journal after a restart that had no answer.
    pub landed_unanswered: u64,
    /// Refusals whose answer a crash lost, before a later command that
    /// landed: a client that gives up (retrying them later could rightly
    /// get another outcome than the reference's).
    pub answers_lost: u64,
    pub restarts: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Corrupt bytes that stopped the node from starting (and were
    /// repaired from a copy).
    pub corruption_refused: u64,
    /// Corrupt bytes after which the node served exactly what it had.
    pub corruption_harmless: u64,
    /// Full comparisons of the node's state with the reference.
    pub comparisons: u64,
    /// Reads of records the reference forgot, served from the node's
    /// archive exactly as the reference last showed them.
    pub archive_reads: u64,
    /// Commands sent as signed requests, each refused by a second ledger.
    pub signed_requests: u64,
    /// Journaled signed requests created since a restart (in its tick),
    /// replayed after it: each refused by the rebuilt nonce window.
    pub replays_refused: u64,
    /// Journaled signed requests created before a restart, replayed after
    /// it: each refused as older than the start (or the window).
    pub replays_too_old: u64,
    pub journal_len: u64,
    /// The log's root at the end, hex: equal runs, equal roots.
    pub root: String,
    /// The core simulation's own report.
    pub core: SimReport,
}

/// A run that found a defect: the core simulator's failure (its step and
/// message), with the command that runs the whole-node seed again.
pub type NodeSimFailure = SimFailure;

/// Runs one seeded whole-node simulation.
pub fn run(config: NodeSimConfig) -> Result<NodeSimReport, NodeSimFailure> {
    assert!(config.fault_every > 0 && config.clock_every > 0);
    let mut node = SimulatedNode::new(config);
    let core_config = SimConfig {
        clock_every: config.clock_every,
        ..SimConfig::new(config.seed, config.commands)
    };
    let core = run_following(core_config, Some(&mut node), &mut |_| {}).map_err(|failure| {
        NodeSimFailure {
            reproduce: format!(
                "AGENTRAIL_NODE_SIM_SEED={} cargo test -p agentrail-sim-node --test node_simulation",
                failure.seed
            ),
            ..failure
        }
    })?;
    let mut report = node.report;
    report.seed = config.seed;
    report.commands = config.commands;
    report.journal_len = node.tree.size();
    report.root = hex::encode(node.tree.root());
    report.core = core;
    Ok(report)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    PowerCut,
    Kill,
    TransientIo,
    DiskFull,
    CorruptJournal,
    CorruptSnapshot,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::PowerCut => "power_cut",
            Fault::Kill => "kill",
            Fault::TransientIo => "transient_io",
            Fault::DiskFull => "disk_full",
            Fault::CorruptJournal => "corrupt_journal",
            Fault::CorruptSnapshot => "corrupt_snapshot",
        }
    }
}

/// How a restart treats what was not synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reboot {
    /// A power cut: a random prefix survives, the next write maybe torn.
    Crash,
    /// A clean restart: everything written survives.
    Clean,
}

/// The node's two disks; the store opener reads them from here, so that a
/// restart sees the disks of the new boot.
#[derive(Debug)]
struct Disks {
    journal: FaultyDisk,
    snapshots: FaultyDisk,
}

/// A client's signed request, as it went over the wire.
#[derive(Clone)]
struct SignedRequest {
    headers: SignatureHeaders,
    body: Vec<u8>,
    created: u64,
}

/// A command on its way to the node, with what the reference said of it.
struct Pending {
    command: Authenticated,
    /// What the journal records of it: the request, or the command the
    /// node signed.
    request: EntryRequest,
    /// The request as sent, when it was one.
    http: Option<SignedRequest>,
    now: Timestamp,
    expected: Result<Vec<Event>, Rejection>,
    /// The journal entry's leaf hash, when the reference accepted it.
    leaf: Option<Hash>,
    /// The clock's entry: the node journals it itself, first in the first
    /// batch it applies at this time, and answers nobody.
    clock: bool,
    done: bool,
}

impl Pending {
    fn job(&self) -> (Job, oneshot::Receiver<agentrail_node::ledger::Reply>) {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            command: self.command.clone(),
            request: self.request.clone(),
            reply,
        };
        (job, answer)
    }
}

struct SimulatedNode {
    config: NodeSimConfig,
    rng: Rng,
    disks: Arc<Mutex<Disks>>,
    genesis: Option<Genesis>,
    log_key: [u8; 32],
    clock: Arc<AtomicU64>,
    ledger: Option<Ledger>,
    pending: Vec<Pending>,
    /// Every acknowledged entry's leaf hash, kept apart from the node.
    tree: MemoryTree,
    /// Every record the reference forgot, newest by key: the node must
    /// serve each from its archive.
    forgotten: BTreeMap<String, Archived>,
    /// Every key forgotten, in order (a key forgotten twice is listed twice).
    forgotten_keys: Vec<String>,
    /// How many of `forgotten_keys` a comparison checked already.
    forgotten_checked: usize,
    /// The node's network id, and its window of request nonces (rebuilt
    /// from the journal at every start, as the node's HTTP layer does).
    network: String,
    nonces: Nonces,
    /// The clock when the node last started.
    started_at: u64,
    /// Client commands sent so far.
    sent: u64,
    /// Signed requests journaled lately, oldest first.
    journaled: Vec<SignedRequest>,
    report: NodeSimReport,
}

fn lock(disks: &Mutex<Disks>) -> MutexGuard<'_, Disks> {
    // A poisoned lock means a panic already ended the run.
    disks
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SimulatedNode {
    fn new(config: NodeSimConfig) -> SimulatedNode {
        // A stream of its own, so that faults do not change the clients'.
        let mut rng = Rng::new(config.seed ^ 0x6e6f_6465_7369_6d21);
        let log_key = rng.bytes32();
        SimulatedNode {
            config,
            rng,
            disks: Arc::new(Mutex::new(Disks {
                journal: FaultyDisk::new(DISK_BYTES),
                snapshots: FaultyDisk::new(DISK_BYTES),
            })),
            genesis: None,
            log_key,
            clock: Arc::new(AtomicU64::new(0)),
            ledger: None,
            pending: Vec::new(),
            tree: MemoryTree::new(),
            forgotten: BTreeMap::new(),
            forgotten_keys: Vec::new(),
            forgotten_checked: 0,
            network: String::new(),
            nonces: Nonces::default(),
            started_at: 0,
            sent: 0,
            journaled: Vec::new(),
            report: NodeSimReport::default(),
        }
    }

    fn open(&self) -> Result<Ledger, LedgerError> {
        let genesis = self.genesis.expect("the run started");
        let disks = Arc::clone(&self.disks);
        let opener: StoreOpener = Box::new(move || {
            let (journal, snapshots) = {
                let disks = lock(&disks);
                (disks.journal.clone(), disks.snapshots.clone())
            };
            // A damaged snapshot file is replaced by an empty one, which
            // the node keeps from then on, as the real store does on a
            // file system (the damaged file renamed, a new one created).
            Store::open_with_backends(journal, snapshots, || {
                let replacement = FaultyDisk::new(DISK_BYTES);
                lock(&disks).snapshots = replacement.clone();
                replacement
            })
        });
        let log = LogSigner::new(LOG_NAME, SigningKey::from_bytes(&self.log_key))
            .expect("a valid log name");
        let options = LedgerOptions {
            snapshot_every: self.config.snapshot_every,
            ..LedgerOptions::default()
        };
        let clock = Arc::clone(&self.clock);
        let ledger = Ledger::open_with(opener, genesis, log, options)?;
        Ok(ledger.with_clock(Box::new(move || Timestamp(clock.load(Ordering::Relaxed)))))
    }

    fn ledger(&self) -> &Ledger {
        self.ledger.as_ref().expect("the node is running")
    }

    fn count_fault(&mut self, fault: Fault) {
        *self
            .report
            .faults
            .entry(fault.name().to_owned())
            .or_default() += 1;
    }

    /// Delivers the tick's commands, with a fault now and then, until every
    /// one is answered as the reference answered it.
    fn deliver(&mut self, reference: &State) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.report.ticks += 1;
        let fault = self
            .rng
            .chance(1, self.config.fault_every)
            .then(|| match self.rng.below(12) {
                0..=3 => Fault::PowerCut,
                4..=5 => Fault::Kill,
                6..=7 => Fault::TransientIo,
                8..=9 => Fault::DiskFull,
                10 => Fault::CorruptJournal,
                _ => Fault::CorruptSnapshot,
            });
        if let Some(fault) = fault {
            self.count_fault(fault);
            self.arm(fault);
        }
        let mut unknown = self.attempt()?;
        match fault {
            Some(Fault::PowerCut | Fault::Kill) => {
                self.restart(Reboot::Crash)?;
                unknown = false;
            }
            Some(Fault::TransientIo) => {
                let disks = lock(&self.disks);
                disks.journal.restore_power();
                disks.snapshots.restore_power();
            }
            Some(Fault::DiskFull) => lock(&self.disks).journal.set_capacity(DISK_BYTES),
            _ => {}
        }
        let mut attempts = 1;
        loop {
            if unknown {
                // The store could not tell whether the last commit landed:
                // the node restarts to learn it before anything is resent
                // (resending first would apply a landed command twice).
                self.restart(Reboot::Clean)?;
            }
            if self.pending.iter().all(|p| p.done) {
                break;
            }
            if attempts == ATTEMPTS_MAX {
                return Err(format!(
                    "{} commands still unanswered {attempts} attempts after a {:?}",
                    self.pending.iter().filter(|p| !p.done).count(),
                    fault
                ));
            }
            unknown = self.attempt()?;
            attempts += 1;
        }
        let landed: Vec<SignedRequest> = self
            .pending
            .iter()
            .filter(|p| p.leaf.is_some())
            .filter_map(|p| p.http.clone())
            .collect();
        self.journaled.extend(landed);
        let excess = self.journaled.len().saturating_sub(REPLAYS_KEPT);
        self.journaled.drain(..excess);
        self.pending.clear();
        match fault {
            Some(Fault::CorruptJournal) => self.corrupt(true)?,
            Some(Fault::CorruptSnapshot) => self.corrupt(false)?,
            _ => {}
        }
        if fault.is_some() || self.report.ticks.is_multiple_of(COMPARE_EVERY) {
            self.compare(reference)?;
        } else {
            self.ledger()
                .read(|state| state.check_money_invariants())
                .ok_or("the node is degraded after a tick without faults")?
                .map_err(|violation| format!("invariant violated in the node: {violation}"))?;
        }
        Ok(())
    }

    /// Prepares a fault that strikes while the tick is processed.
    fn arm(&mut self, fault: Fault) {
        let writes = self.rng.below(24);
        let snapshot_writes = self.rng.below(48);
        let room = self.rng.below(256 << 10);
        let disks = lock(&self.disks);
        match fault {
            Fault::PowerCut => {
                disks.journal.fail_power_after(writes);
                disks.snapshots.fail_power_after(snapshot_writes);
            }
            Fault::TransientIo => disks.journal.fail_power_after(writes),
            Fault::DiskFull => disks
                .journal
                .set_capacity(disks.journal.len_bytes().saturating_add(room)),
            Fault::Kill | Fault::CorruptJournal | Fault::CorruptSnapshot => {}
        }
    }

    /// Sends every unanswered command once, in one to three batches, and
    /// checks each answer. `Ok(true)` when the store could not tell whether
    /// a commit landed.
    fn attempt(&mut self) -> Result<bool, String> {
        let open: Vec<usize> = (0..self.pending.len())
            .filter(|&i| !self.pending[i].done)
            .collect();
        let now = self.pending[open[0]].now;
        self.clock.store(now.0, Ordering::Relaxed);
        let pieces = 1 + self.rng.below(3.min(open.len() as u64)) as usize;
        let mut cuts: Vec<usize> = (1..pieces)
            .map(|_| 1 + self.rng.below(open.len() as u64 - 1) as usize)
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        cuts.push(open.len());
        let merge = self.rng.chance(1, 2);
        let mut answers = Vec::with_capacity(open.len());
        let mut batches = Vec::new();
        let mut start = 0;
        for end in cuts {
            let mut batch = Vec::new();
            for &index in &open[start..end] {
                if self.pending[index].clock {
                    // The node journals the clock's entry on its own.
                    continue;
                }
                let (job, answer) = self.pending[index].job();
                batch.push(job);
                answers.push((index, answer));
            }
            batches.push(batch);
            start = end;
        }
        self.ledger().process(batches, merge);
        self.find_clock_entry()?;
        let mut unknown = false;
        for (index, mut answer) in answers {
            let reply = answer
                .try_recv()
                .map_err(|_| format!("the node never answered command {index} of the tick"))?;
            match reply {
                Ok(response) => {
                    if response.index == self.tree.size() + 1
                        && let Some(clock) = self.pending.iter().position(|p| p.clock && !p.done)
                    {
                        // The clock's entry landed before this answer while
                        // the store could not be read (a later batch of the
                        // attempt failed): the next checkpoint check holds
                        // its leaf to the node's root.
                        self.acknowledge_clock(clock);
                    }
                    let pending = &self.pending[index];
                    let Ok(expected) = &pending.expected else {
                        return Err(format!(
                            "the node accepted {:?}, which the reference refused: {:?}",
                            pending.command, pending.expected
                        ));
                    };
                    if response.events != *expected {
                        return Err(format!(
                            "the node's events {:?} differ from the reference's {expected:?}",
                            response.events
                        ));
                    }
                    if response.index != self.tree.size() {
                        return Err(format!(
                            "receipt index {} where the next entry is {}",
                            response.index,
                            self.tree.size()
                        ));
                    }
                    let leaf = pending.leaf.expect("accepted commands have a leaf");
                    if response.receipt.leaf_hash != STANDARD.encode(leaf) {
                        return Err(format!(
                            "entry {} is not the entry of {:?} at {:?}",
                            response.index, pending.command, pending.now
                        ));
                    }
                    self.tree.push(leaf);
                    self.pending[index].done = true;
                    self.report.acknowledged += 1;
                }
                Err(Refusal::Rejected(rejection)) => {
                    let pending = &self.pending[index];
                    if pending.expected.as_ref().err() != Some(&rejection) {
                        return Err(format!(
                            "the node refused {:?} with {rejection:?}; the reference said {:?}",
                            pending.command, pending.expected
                        ));
                    }
                    self.pending[index].done = true;
                    self.report.refused += 1;
                }
                Err(Refusal::Unavailable) => self.report.retried += 1,
                Err(Refusal::Unknown) => {
                    self.report.retried += 1;
                    unknown = true;
                }
                Err(other) => return Err(format!("unexpected refusal {other:?}")),
            }
        }
        self.check_checkpoint()?;
        Ok(unknown)
    }

    /// The clock's entry, when one is pending and the node journaled it:
    /// the next entry after every acknowledged one, what the reference's
    /// tick recorded, before any command of its time.
    fn find_clock_entry(&mut self) -> Result<(), String> {
        let Some(index) = self.pending.iter().position(|p| p.clock && !p.done) else {
            return Ok(());
        };
        let next = self.tree.size();
        let Some(Ok(leaves)) = self.ledger().leaves(next, 1) else {
            return Ok(());
        };
        let Some(leaf) = leaves.first() else {
            return Ok(());
        };
        let expected = self.pending[index]
            .leaf
            .expect("clock entries are accepted");
        if merkle::leaf_hash(leaf) != expected {
            return Err(format!(
                "entry {next} is not the clock's entry at {:?}: nothing may come before it",
                self.pending[index].now
            ));
        }
        self.acknowledge_clock(index);
        Ok(())
    }

    /// The pending clock's entry is the next entry of the log.
    fn acknowledge_clock(&mut self, index: usize) {
        let leaf = self.pending[index]
            .leaf
            .expect("clock entries are accepted");
        self.tree.push(leaf);
        self.pending[index].done = true;
        self.report.acknowledged += 1;
    }

    /// When the node is healthy its signed checkpoint covers exactly the
    /// acknowledged entries, with the independent tree's root.
    fn check_checkpoint(&self) -> Result<(), String> {
        let ledger = self.ledger();
        if ledger.read(|_| ()).is_none() {
            return Ok(());
        }
        let checkpoint = ledger.checkpoint();
        if checkpoint.size != self.tree.size() || checkpoint.root != self.tree.root() {
            return Err(format!(
                "the checkpoint (size {}) is not the tree of the {} acknowledged entries",
                checkpoint.size,
                self.tree.size()
            ));
        }
        Ok(())
    }

    /// Stops the node, cuts the power (or not) and starts it again, then
    /// checks that nothing acknowledged was lost.
    fn restart(&mut self, reboot: Reboot) -> Result<(), String> {
        self.ledger = None;
        self.reboot_disks(reboot);
        let ledger = self
            .open()
            .map_err(|error| format!("the node did not restart: {error}"))?;
        self.adopt(ledger)
    }

    fn reboot_disks(&mut self, reboot: Reboot) {
        let (journal_keep, journal_torn) = self.survivors(reboot, |d| &d.journal);
        let (snapshots_keep, snapshots_torn) = self.survivors(reboot, |d| &d.snapshots);
        let mut disks = lock(&self.disks);
        disks.journal = disks.journal.crash(journal_keep, journal_torn);
        disks.snapshots = disks.snapshots.crash(snapshots_keep, snapshots_torn);
    }

    /// Which unsynced writes of a disk survive: all of them on a clean
    /// restart; a random prefix, the next one maybe torn, on a crash.
    fn survivors(
        &mut self,
        reboot: Reboot,
        disk: impl Fn(&Disks) -> &FaultyDisk,
    ) -> (usize, Option<usize>) {
        let unsynced = disk(&lock(&self.disks)).unsynced_operations();
        match reboot {
            Reboot::Clean => (unsynced, None),
            Reboot::Crash => {
                let keep = self.rng.below(unsynced as u64 + 1) as usize;
                let torn = self
                    .rng
                    .chance(1, 2)
                    .then(|| self.rng.below(4_096) as usize);
                (keep, torn)
            }
        }
    }

    /// Takes a freshly started node after checking what it recovered: every
    /// acknowledged entry, unchanged, then only entries that are the next
    /// commands sent without an answer.
    fn adopt(&mut self, ledger: Ledger) -> Result<(), String> {
        self.report.restarts += 1;
        let acknowledged = self.tree.size();
        let len = ledger.journal_len();
        if len < acknowledged {
            return Err(format!(
                "lost: {} acknowledged entries, {len} after the restart",
                acknowledged
            ));
        }
        let root = ledger
            .with_tree(|nodes| merkle::root(nodes, acknowledged))
            .ok_or("the restarted node is degraded")?
            .map_err(|error| format!("the recovered tree cannot be read: {error}"))?;
        if root != self.tree.root() {
            return Err("an acknowledged entry changed across the restart".to_owned());
        }
        let extra = ledger
            .leaves(acknowledged, (len - acknowledged) as usize)
            .ok_or("the restarted node is degraded")?
            .map_err(|error| format!("the recovered journal cannot be read: {error}"))?;
        let mut extra = extra
            .iter()
            .map(|bytes| merkle::leaf_hash(bytes))
            .peekable();
        for pending in self.pending.iter_mut().filter(|p| !p.done) {
            let Some(next) = extra.peek().copied() else {
                break;
            };
            match pending.leaf {
                Some(leaf) if leaf == next => {
                    extra.next();
                    self.tree.push(leaf);
                    pending.done = true;
                    self.report.landed_unanswered += 1;
                }
                Some(_) => {
                    return Err(format!(
                        "entry {} after the restart is not the next command sent",
                        self.tree.size()
                    ));
                }
                None => {
                    pending.done = true;
                    self.report.answers_lost += 1;
                }
            }
        }
        if extra.next().is_some() {
            return Err("the journal holds an entry nobody sent".to_owned());
        }
        self.ledger = Some(ledger);
        self.check_checkpoint()?;
        self.start_nonces()?;
        self.check_replays()
    }

    /// The nonce window of a node starting now, as its HTTP layer builds
    /// it: the nonces its journal accepted in the last two windows.
    fn start_nonces(&mut self) -> Result<(), String> {
        let now = self.clock.load(Ordering::Relaxed);
        let horizon = Timestamp(now.saturating_sub(2 * httpsig::SIGNATURE_WINDOW_S));
        let recent = self
            .ledger()
            .recent_nonces(horizon)
            .map_err(|error| format!("the journal's nonces cannot be read: {error}"))?;
        self.nonces = Nonces::after_start(now, recent);
        self.started_at = now;
        Ok(())
    }

    /// Every signed request journaled lately (this tick's included) is
    /// refused when sent again after the restart: no replay across it.
    fn check_replays(&mut self) -> Result<(), String> {
        let now = self.clock.load(Ordering::Relaxed);
        let this_tick = self
            .pending
            .iter()
            .filter(|p| p.done && p.leaf.is_some())
            .filter_map(|p| p.http.clone());
        let replays: Vec<SignedRequest> = self.journaled.iter().cloned().chain(this_tick).collect();
        for replay in replays {
            let admitted = authenticate_request(
                &self.nonces,
                "POST",
                COMMANDS_PATH,
                Some(replay.headers.clone()),
                true,
                &replay.body,
                now,
                &self.network,
            );
            let since_start = replay.created >= self.started_at;
            let expected: &[SignatureError] = if since_start {
                &[SignatureError::NonceReused]
            } else {
                &[SignatureError::BeforeStart, SignatureError::Expired]
            };
            match admitted {
                Err(error) if expected.iter().any(|e| e.code() == error.code()) => {
                    if since_start {
                        self.report.replays_refused += 1;
                    } else {
                        self.report.replays_too_old += 1;
                    }
                }
                Err(error) => {
                    return Err(format!(
                        "a replayed request was refused with {}, not {expected:?}",
                        error.code()
                    ));
                }
                Ok(_) => {
                    return Err(format!(
                        "a journaled request was admitted again after a restart: {}",
                        replay.headers.signature_input
                    ));
                }
            }
        }
        Ok(())
    }

    /// A client's command as a signed request for the node's network,
    /// admitted by the node's request check; a second ledger refuses it,
    /// as sent and with its tag rewritten to that ledger's.
    fn signed_request(
        &mut self,
        key: &SigningKey,
        command: &Authenticated,
        now: Timestamp,
    ) -> Result<(EntryRequest, SignedRequest), String> {
        let body = serde_json::to_vec(command.command())
            .map_err(|error| format!("a command is not JSON: {error}"))?;
        let nonce = format!("sim-{}", self.sent);
        let params = SignParams {
            created: now.0,
            nonce: &nonce,
            network: &self.network,
        };
        let headers = httpsig::sign(key, "POST", COMMANDS_PATH, &body, params);
        let (admitted, request) = authenticate_request(
            &self.nonces,
            "POST",
            COMMANDS_PATH,
            Some(headers.clone()),
            true,
            &body,
            now.0,
            &self.network,
        )
        .map_err(|error| format!("the node refused a well-signed request: {error:?}"))?;
        if admitted.signer() != command.signer() || admitted.command() != command.command() {
            return Err("the node admitted another command than the one signed".to_owned());
        }
        self.report.signed_requests += 1;
        let signed = SignedRequest {
            headers,
            body,
            created: now.0,
        };
        if self.sent.is_multiple_of(CROSS_LEDGER_EVERY) {
            Self::check_elsewhere(&signed, &self.network)?;
        }
        Ok((request, signed))
    }

    /// A second ledger's request check, with its own network id and nonces,
    /// refuses a request signed for the node, as sent and retagged.
    fn check_elsewhere(signed: &SignedRequest, network: &str) -> Result<(), String> {
        let (headers, body, now) = (&signed.headers, &signed.body, signed.created);
        let elsewhere = |headers: &SignatureHeaders| {
            authenticate_request(
                &Nonces::default(),
                "POST",
                COMMANDS_PATH,
                Some(headers.clone()),
                true,
                body,
                now,
                OTHER_NETWORK,
            )
            .err()
            .map(|error| error.code().to_owned())
        };
        if elsewhere(headers).as_deref() != Some(SignatureError::WrongNetwork.code()) {
            return Err("a request signed for the node was not refused by another ledger".into());
        }
        let retagged = SignatureHeaders {
            signature_input: headers.signature_input.replace(
                &format!("tag=\"{network}\""),
                &format!("tag=\"{OTHER_NETWORK}\""),
            ),
            ..headers.clone()
        };
        if elsewhere(&retagged).as_deref() != Some(SignatureError::Invalid.code()) {
            return Err("a request retagged for another ledger verified there".into());
        }
        Ok(())
    }

    /// Changes one random byte of the journal or the snapshot file, then
    /// restarts: the node either refuses to start (the file is restored
    /// from a copy) or serves exactly what it served before.
    fn corrupt(&mut self, journal: bool) -> Result<(), String> {
        self.ledger = None;
        self.reboot_disks(Reboot::Clean);
        let offset_roll = self.rng.next_u64();
        let mask = 1u8 << self.rng.below(8);
        let copy = {
            let disks = lock(&self.disks);
            let disk = if journal {
                &disks.journal
            } else {
                &disks.snapshots
            };
            let len = disk.len_bytes();
            if len == 0 {
                None
            } else {
                let copy = disk.fork();
                disk.corrupt(offset_roll % len, mask);
                Some(copy)
            }
        };
        match self.open() {
            Ok(ledger) => {
                self.report.corruption_harmless += 1;
                self.adopt(ledger)
            }
            Err(error) => {
                let Some(copy) = copy else {
                    return Err(format!("the node did not restart: {error}"));
                };
                if !journal {
                    return Err(format!(
                        "a damaged snapshot stopped the node (it must fall back): {error}"
                    ));
                }
                self.report.corruption_refused += 1;
                lock(&self.disks).journal = copy;
                let ledger = self
                    .open()
                    .map_err(|error| format!("the node did not restart from the copy: {error}"))?;
                self.adopt(ledger)
            }
        }
    }

    /// The node's state must equal the reference's, byte for byte, and pass
    /// every invariant.
    fn compare(&mut self, reference: &State) -> Result<(), String> {
        self.report.comparisons += 1;
        // A restart leaves the node's clock at its last entry: an empty
        // batch brings it to the tick's time, as the next command would.
        self.clock.store(reference.clock().0, Ordering::Relaxed);
        self.ledger().process(vec![Vec::new()], true);
        let (snapshot, invariants) = self
            .ledger()
            .read(|state| (state.to_snapshot(), state.check_invariants()))
            .ok_or("the node is degraded after its tick was answered")?;
        invariants.map_err(|violation| format!("invariant violated in the node: {violation}"))?;
        if snapshot != reference.to_snapshot() {
            return Err("the node's state differs from the reference's".to_owned());
        }
        self.check_archive()
    }

    /// Every record the reference forgot since the last comparison, and a
    /// few older ones, read from the node's archive as the reference
    /// showed it last.
    fn check_archive(&mut self) -> Result<(), String> {
        let mut keys = self.forgotten_keys[self.forgotten_checked..].to_vec();
        self.forgotten_checked = self.forgotten_keys.len();
        for _ in 0..ARCHIVE_SAMPLES.min(self.forgotten_keys.len()) {
            let nth = self.rng.below(self.forgotten_keys.len() as u64) as usize;
            keys.push(self.forgotten_keys[nth].clone());
        }
        for key in keys {
            let expected = &self.forgotten[&key];
            let (kind, id) = expected.kind_and_id();
            let served = self
                .ledger()
                .archived(kind, &id)
                .map_err(|error| format!("the archive of {key} cannot be read: {error}"))?;
            if served.as_ref() != Some(expected) {
                return Err(format!(
                    "lost: the node serves {served:?} for the forgotten {key}, not {expected:?}"
                ));
            }
            self.report.archive_reads += 1;
        }
        Ok(())
    }
}

impl Follower for SimulatedNode {
    fn start(&mut self, genesis: Genesis) -> Result<(), String> {
        self.genesis = Some(genesis);
        let ledger = self
            .open()
            .map_err(|error| format!("the node did not start: {error}"))?;
        self.network = ledger.network().to_owned();
        self.ledger = Some(ledger);
        self.start_nonces()
    }

    fn command(
        &mut self,
        key: &SigningKey,
        command: &Authenticated,
        now: Timestamp,
        outcome: &Result<Vec<Event>, Rejection>,
        forgotten: &[Archived],
    ) -> Result<(), String> {
        for archived in forgotten {
            let key = archived.key();
            self.forgotten.insert(key.clone(), archived.clone());
            self.forgotten_keys.push(key);
        }
        if self.pending.last().is_some_and(|last| last.now != now) {
            return Err("commands of one tick must share a time".to_owned());
        }
        let clock = matches!(command.command(), Command::Tick(_));
        if clock && (outcome.is_err() || !self.pending.is_empty()) {
            return Err("the clock's entry comes first at its time, and is accepted".to_owned());
        }
        let mut http = None;
        let request = if clock {
            EntryRequest::Clock {}
        } else {
            self.sent += 1;
            if self.sent.is_multiple_of(NODE_SIGNED_EVERY) {
                let signed =
                    SignedCommand::sign(command.command().clone(), key).map_err(|error| {
                        format!("a command the simulation sent cannot be signed: {error}")
                    })?;
                EntryRequest::Node {
                    command: Box::new(signed),
                }
            } else {
                let (request, signed) = self.signed_request(key, command, now)?;
                http = Some(signed);
                request
            }
        };
        let leaf = outcome.as_ref().ok().map(|events| {
            merkle::leaf_hash(&encode_entry(now, *command.signer(), &request, events))
        });
        self.pending.push(Pending {
            command: command.clone(),
            request,
            http,
            now,
            expected: outcome.clone(),
            leaf,
            clock,
            done: false,
        });
        Ok(())
    }

    fn tick(&mut self, reference: &State) -> Result<(), String> {
        self.deliver(reference)
    }

    fn finish(&mut self, reference: &State) -> Result<(), String> {
        self.deliver(reference)?;
        // One last restart: everything acknowledged must come back.
        self.restart(Reboot::Clean)?;
        self.compare(reference)
    }
}
