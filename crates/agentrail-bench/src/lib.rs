//! `agentrail bench ledger`: durable signed transfers per second, four ways,
//! side by side in one run on this machine:
//!
//! - (a) `group_commit`: RFC 9421-signed transfer requests through the real
//!   verifier stage (signature, window, nonce, parse) and the real single
//!   writer with group commit, from many concurrent in-process clients, no
//!   HTTP;
//! - (b) `fsync_each`: the same, committing one command per fsync;
//! - (c) `sqlite`: the same transfers in SQLite (WAL, `synchronous=FULL`), one
//!   transaction per transfer that updates two balance rows and inserts a
//!   journal row holding the request body (storage only: no signature check);
//! - (d) `http`: the real node over HTTP on loopback, concurrent clients,
//!   with latency percentiles;
//! - (e) `postgres` (with `--store postgres://…`): (a) on a ledger whose
//!   every batch is committed to PostgreSQL first (and to its synchronous
//!   standby, as the database is configured), in a schema of its own that
//!   is dropped afterwards; then a standby ledger on the same journal, and
//!   the time from the leader's last write until the standby leads.
//!
//! Every transfer is acknowledged only once durable, in every case.

#![forbid(unsafe_code)]

pub mod chain;
pub mod channel;
pub mod log;
pub mod threads;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agentrail_core::grant::Role;
use agentrail_core::{Amount, Command, Genesis, SignedCommand, Timestamp};
use agentrail_node::http::{Nonces, authenticate_request};
use agentrail_node::ledger::{Job, Ledger, LedgerOptions, QUEUE_MAX, Queue};
use agentrail_node::verifier::{Check, Verifier};
use agentrail_sim::kit;
use agentrail_wire::api::COMMANDS_PATH;
use agentrail_wire::entry::EntryRequest;
use agentrail_wire::httpsig::{self, SignatureHeaders};
use axum::body::Bytes;
use ed25519_dalek::SigningKey;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::threads::CpuByStage;

/// What to measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerBenchConfig {
    /// Transfers for (a) and (d).
    pub transfers: usize,
    /// Transfers for (b) and (c), which are slower.
    pub slow_transfers: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Rounds of (a) and (a'), alternating; the report gives medians.
    pub rounds: usize,
    /// A PostgreSQL database for (e), which creates and drops a schema in
    /// it; `None` skips (e).
    pub postgres: Option<String>,
}

impl Default for LedgerBenchConfig {
    fn default() -> LedgerBenchConfig {
        LedgerBenchConfig {
            transfers: 40_000,
            slow_transfers: 2_000,
            clients: 256,
            rounds: 3,
            postgres: None,
        }
    }
}

/// One run's figures. Rates are transfers per second.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LedgerBenchReport {
    pub bench: &'static str,
    pub transfers: usize,
    pub slow_transfers: usize,
    pub clients: usize,
    /// Rounds of (a) and (a'); their figures are medians.
    pub rounds: usize,
    pub cores: usize,
    pub group_commit_tps: f64,
    /// Mean commands per fsync in (a).
    pub group_commit_mean_batch: f64,
    /// Mean request signatures checked per batch in (a).
    pub group_commit_mean_signature_batch: f64,
    /// Processor time per transfer in (a), all threads together: with
    /// `cores`, the rate the machine could sustain at full use.
    pub group_commit_cpu_us: f64,
    /// (a) with signatures verified before the clock starts: the writer,
    /// the ledger and the journal alone, comparable with SQLite's storage-only
    /// figure.
    pub group_commit_preverified_tps: f64,
    pub group_commit_preverified_cpu_us: f64,
    /// (a)'s processor time per transfer by stage, from each thread's
    /// accounting (`clients` are the benchmark's own tasks).
    pub group_commit_cpu_by_stage_us: CpuByStage,
    pub group_commit_preverified_cpu_by_stage_us: CpuByStage,
    /// How long the writer held the state per batch in (a), a snapshot
    /// every [`BENCH_SNAPSHOT_EVERY`] entries included: the 99th
    /// percentile (the upper bound of its histogram bucket) and the
    /// longest, over every round.
    pub writer_pause_p99_us: f64,
    pub writer_pause_max_us: f64,
    /// Entries between two snapshots in (a) and (a').
    pub snapshot_every: u64,
    pub fsync_each_tps: f64,
    pub sqlite_tps: f64,
    pub http_tps: f64,
    pub http_p50_us: f64,
    pub http_p99_us: f64,
    /// (d)'s processor time per transfer of the node alone (its HTTP
    /// runtime, verifier, writer, committer and snapshot threads), beside
    /// (a)'s `node` figure: what HTTP costs the node, not its clients.
    pub http_node_cpu_us: f64,
    pub http_cpu_by_stage_us: CpuByStage,
    /// (a) ÷ (c).
    pub group_commit_vs_sqlite: f64,
    /// (a) ÷ (b).
    pub group_commit_vs_fsync_each: f64,
    /// (a, pre-verified) ÷ (c): storage against storage.
    pub preverified_vs_sqlite: f64,
    /// Latency of one transfer in (a), submission to durable answer.
    pub group_commit_p50_us: f64,
    pub group_commit_p99_us: f64,
    /// (e), when a database was named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresFigures>,
}

/// (e): the ledger on PostgreSQL, beside (a) in the same run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PostgresFigures {
    pub tps: f64,
    pub mean_batch: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub cpu_us: f64,
    /// (e) ÷ (a).
    pub vs_group_commit: f64,
    /// The database's `synchronous_standby_names`: empty means no standby
    /// flush was awaited.
    pub synchronous_standby_names: String,
    /// The lease the leader held.
    pub lease_ms: u64,
    /// From the leader's last write until a standby ledger on the same
    /// journal leads: the lease lapsing, and a standby started only then
    /// copying and replaying every entry of (e) first (a warm standby
    /// skips that: `tests/failover.rs` measures one).
    pub takeover_ms: f64,
}

const PAYERS: usize = 64;

/// Entries between two snapshots of the in-process ledgers: several per
/// round, so that the writer's pauses include snapshots.
pub const BENCH_SNAPSHOT_EVERY: u64 = 10_000;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Keys of one benchmark world: principal, payers (agents), payee.
struct World {
    operator: SigningKey,
    principal: SigningKey,
    payers: Vec<SigningKey>,
    payee: SigningKey,
}

impl World {
    fn new() -> World {
        World {
            operator: kit::key("bench-ledger-operator"),
            principal: kit::key("bench-ledger-principal"),
            payers: (0..PAYERS)
                .map(|i| kit::key(&format!("bench-ledger-payer-{i}")))
                .collect(),
            payee: kit::key("bench-ledger-payee"),
        }
    }

    /// Registration and funding, signed by whoever must sign each.
    fn setup(&self, funding: Amount) -> Vec<(SigningKey, Command)> {
        let now = Timestamp(unix_now());
        let mut commands = vec![
            (
                self.principal.clone(),
                kit::register_principal(kit::did(&self.principal)),
            ),
            (
                self.payee.clone(),
                kit::register_principal(kit::did(&self.payee)),
            ),
        ];
        for (index, payer) in self.payers.iter().enumerate() {
            let limits = kit::limits(kit::usd(1_000), kit::usd(1_000_000_000));
            let grant = kit::grant(
                &self.principal,
                kit::did(payer),
                Role::Agent,
                limits,
                now,
                Timestamp(now.0 + 86_400),
                "bench",
            );
            commands.push((self.principal.clone(), kit::register_agent(grant)));
            commands.push((
                self.operator.clone(),
                kit::deposit(kit::did(payer), funding, &format!("fund-{index}")),
            ));
        }
        commands
    }

    /// `count` signed transfer requests (body, headers), spread over payers.
    /// Signed for the ledger `network`.
    fn requests(&self, count: usize, tag: &str, network: &str) -> Vec<(Vec<u8>, SignatureHeaders)> {
        let now = unix_now();
        (0..count)
            .map(|index| {
                let payer = &self.payers[index % PAYERS];
                let command = kit::transfer(
                    kit::did(payer),
                    kit::did(&self.payee),
                    Amount::from_atomic(1),
                    &format!("{tag}-{index}"),
                );
                let body = serde_json::to_vec(&command).expect("JSON");
                let headers = httpsig::sign(
                    payer,
                    "POST",
                    COMMANDS_PATH,
                    &body,
                    httpsig::SignParams {
                        created: now,
                        nonce: &format!("{tag}-{index}"),
                        network,
                    },
                );
                (body, headers)
            })
            .collect()
    }
}

/// An in-process ledger with its writer thread.
struct Embedded {
    ledger: Arc<Ledger>,
    queue: Option<Queue>,
    verifier: Option<Verifier>,
    verifiers: Vec<std::thread::JoinHandle<()>>,
    writer: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// A ledger of the benchmark's log on a fresh directory, alone or as one
/// node of several on `journal`.
fn bench_ledger(
    world: &World,
    batch_max: usize,
    journal: Option<Arc<agentrail_postgres::Journal>>,
) -> (Ledger, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let genesis = Genesis {
        operator: kit::did(&world.operator),
        network: kit::network(),
        chain: None,
    };
    let log = agentrail_log::LogSigner::new(BENCH_LOG, kit::key("bench-ledger-log"))
        .expect("a valid log name");
    let options = LedgerOptions {
        batch_max,
        snapshot_every: BENCH_SNAPSHOT_EVERY,
    };
    let ledger = match journal {
        None => Ledger::open(dir.path(), genesis, log, options),
        Some(journal) => {
            let (path, opener_journal) = (dir.path().to_owned(), Arc::clone(&journal));
            Ledger::open_with(
                Box::new(move || {
                    let store = agentrail_store::Store::open(&path)?;
                    agentrail_node::replication::catch_up(&store, &opener_journal)?;
                    Ok(store)
                }),
                genesis,
                log,
                options,
            )
            .map(|ledger| ledger.with_replica(journal))
        }
    }
    .expect("a fresh ledger opens");
    (ledger, dir)
}

impl Embedded {
    /// The ledger and its writer and verifier threads, funded; leading on
    /// `journal` when one is given.
    fn start_on(
        world: &World,
        batch_max: usize,
        journal: Option<Arc<agentrail_postgres::Journal>>,
    ) -> Embedded {
        let (ledger, dir) = bench_ledger(world, batch_max, journal.clone());
        if let Some(journal) = &journal {
            let head = journal
                .acquire()
                .expect("the database answers")
                .expect("the bench's schema is fresh: nobody leads");
            ledger.lead(&head).expect("a fresh ledger leads");
        }
        let ledger = Arc::new(ledger);
        let (sender, receiver) = sync_channel(QUEUE_MAX);
        let writer = {
            let ledger = Arc::clone(&ledger);
            std::thread::Builder::new()
                .name("bench-writer".into())
                .spawn(move || ledger.run_writer(receiver))
                .expect("a writer thread")
        };
        let queue = Queue::new(sender);
        let (verifier, verifiers) = Verifier::start(
            cores(),
            Arc::new(Nonces::default()),
            Arc::new(agentrail_node::limits::IdentityLimiter::new(
                &agentrail_node::limits::ServeLimits::default(),
            )),
            queue.clone(),
            Arc::clone(&ledger),
        )
        .expect("verifier threads");
        let embedded = Embedded {
            ledger,
            queue: Some(queue),
            verifier: Some(verifier),
            verifiers,
            writer: Some(writer),
            _dir: dir,
        };
        for (key, command) in world.setup(kit::usd(1_000_000)) {
            let signed = SignedCommand::sign(command, &key).expect("canonical");
            let command = signed.clone().verify().expect("valid");
            let (reply, answer) = oneshot::channel();
            let request = EntryRequest::Node {
                command: Box::new(signed),
            };
            embedded
                .queue()
                .submit(Job {
                    command,
                    request,
                    reply,
                })
                .expect("queue open");
            answer
                .blocking_recv()
                .expect("writer answers")
                .expect("setup is valid");
        }
        embedded
    }
}

impl Embedded {
    fn queue(&self) -> &Queue {
        self.queue.as_ref().expect("the queue is open until drop")
    }

    fn verifier(&self) -> &Verifier {
        self.verifier
            .as_ref()
            .expect("the verifier is open until drop")
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        // Closing the queues stops the verifier threads, then the writer.
        self.verifier = None;
        for verifier in self.verifiers.drain(..) {
            let _ = verifier.join();
        }
        self.queue = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The node's verifier stage on one pre-signed request.
fn authenticate(
    nonces: &Nonces,
    (body, headers): &(Vec<u8>, SignatureHeaders),
) -> (agentrail_core::Authenticated, EntryRequest) {
    authenticate_request(
        nonces,
        "POST",
        COMMANDS_PATH,
        Some(headers.clone()),
        true,
        body,
        unix_now(),
        &bench_network(),
    )
    .expect("benchmark requests are valid")
}

/// The in-process ledger's log origin.
const BENCH_LOG: &str = "agentrail.bench/log";

/// The network id the in-process ledger's requests are signed for.
fn bench_network() -> String {
    agentrail_core::channel::network_id(BENCH_LOG)
}

/// Where the verifier stage runs in an in-process measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verification {
    /// Inside the timed run, in the clients' tasks (as the node does).
    Timed,
    /// Before the timed run: measures the writer and the journal alone.
    Before,
}

/// (a) and (b): signed requests through verifier and writer, no HTTP.
fn in_process(
    world: &World,
    batch_max: usize,
    count: usize,
    clients: usize,
    tag: &str,
    verification: Verification,
) -> InProcess {
    in_process_on(world, batch_max, count, clients, tag, verification, None).0
}

/// [`in_process`] on a ledger that leads on `journal`, if one is given;
/// the ledger is handed back for what follows.
fn in_process_on(
    world: &World,
    batch_max: usize,
    count: usize,
    clients: usize,
    tag: &str,
    verification: Verification,
    journal: Option<Arc<agentrail_postgres::Journal>>,
) -> (InProcess, Embedded) {
    let embedded = Embedded::start_on(world, batch_max, journal);
    let early_nonces = Nonces::default();
    let requests = world.requests(count, tag, &bench_network());
    let verified: Arc<Vec<_>> = Arc::new(match verification {
        Verification::Before => requests
            .iter()
            .map(|request| Some(authenticate(&early_nonces, request)))
            .collect(),
        Verification::Timed => Vec::new(),
    });
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let metrics = &embedded.ledger.metrics;
    let batches_before = metrics.batches.load(Ordering::Relaxed);
    let signature_batches_before = metrics.signature_batches.load(Ordering::Relaxed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let pauses_before = metrics.writer_pauses();
    let threads_before = threads::Sample::now();
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let mut latencies = runtime.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (requests, verified, next, queue, verifier) = (
                Arc::clone(&requests),
                Arc::clone(&verified),
                Arc::clone(&next),
                embedded.queue().clone(),
                embedded.verifier().clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some((body, headers)) = requests.get(index) else {
                        break;
                    };
                    let sent = Instant::now();
                    let (reply, answer) = oneshot::channel();
                    match verified.get(index) {
                        Some(Some((command, request))) => queue.submit(Job {
                            command: command.clone(),
                            request: request.clone(),
                            reply,
                        }),
                        // What the node's handler does: headers, window and
                        // digest here, the signature in the verifier stage.
                        _ => verifier.submit(Check {
                            prepared: httpsig::prepare(
                                "POST",
                                COMMANDS_PATH,
                                body,
                                Some(headers),
                                true,
                                unix_now(),
                                &bench_network(),
                            )
                            .expect("benchmark requests are well formed"),
                            method: "POST".to_owned(),
                            path: COMMANDS_PATH.to_owned(),
                            headers: headers.clone(),
                            body: Bytes::copy_from_slice(body),
                            reply,
                        }),
                    }
                    .expect("the queue has room for every client");
                    match answer.await.expect("writer answers") {
                        Ok(_) => {}
                        Err(refusal) => panic!("a benchmark transfer was refused: {refusal:?}"),
                    }
                    latencies.push(sent.elapsed().as_secs_f64() * 1e6);
                }
                latencies
            }));
        }
        let mut latencies = Vec::with_capacity(count);
        for task in tasks {
            latencies.extend(task.await.expect("client task"));
        }
        latencies
    });
    let elapsed = started.elapsed().as_secs_f64();
    let stages = CpuByStage::per_command(&threads::Sample::now().since(&threads_before), count);
    let pauses: Vec<u64> = metrics
        .writer_pauses()
        .iter()
        .zip(&pauses_before)
        .map(|(after, before)| after - before)
        .collect();
    let batches = metrics.batches.load(Ordering::Relaxed) - batches_before;
    let signature_batches =
        metrics.signature_batches.load(Ordering::Relaxed) - signature_batches_before;
    let mean = |batches: u64| match batches {
        0 => 0.0,
        batches => count as f64 / batches as f64,
    };
    let cpu_us = match (cpu_before, process_cpu_seconds()) {
        (Some(before), Some(after)) => (after - before) * 1e6 / count as f64,
        _ => f64::NAN,
    };
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    (
        InProcess {
            tps: count as f64 / elapsed,
            mean_batch: mean(batches),
            mean_signature_batch: mean(signature_batches),
            cpu_us,
            p50_us: percentile(0.50),
            p99_us: percentile(0.99),
            stages,
            pause_p99_us: pause_percentile(&pauses, 0.99),
            pause_max_us: metrics.writer_pause_us_max.load(Ordering::Relaxed) as f64,
        },
        embedded,
    )
}

/// What one in-process run measured.
struct InProcess {
    tps: f64,
    mean_batch: f64,
    mean_signature_batch: f64,
    /// Processor time of the whole process per transfer, all threads.
    cpu_us: f64,
    p50_us: f64,
    p99_us: f64,
    stages: CpuByStage,
    pause_p99_us: f64,
    /// The longest pause of the ledger's writer (its setup included).
    pause_max_us: f64,
}

impl InProcess {
    /// Each figure's median over `rounds` (not empty).
    fn median(rounds: &[InProcess]) -> InProcess {
        let median = |figure: fn(&InProcess) -> f64| threads::median_by(rounds, figure);
        InProcess {
            tps: median(|r| r.tps),
            mean_batch: median(|r| r.mean_batch),
            mean_signature_batch: median(|r| r.mean_signature_batch),
            cpu_us: median(|r| r.cpu_us),
            p50_us: median(|r| r.p50_us),
            p99_us: median(|r| r.p99_us),
            stages: CpuByStage::median(rounds, |r| &r.stages),
            pause_p99_us: median(|r| r.pause_p99_us),
            pause_max_us: rounds.iter().map(|r| r.pause_max_us).fold(0.0, f64::max),
        }
    }
}

/// The upper bound (µs) of the bucket of the writer pause histogram
/// (`counts` over [`agentrail_node::metrics::PAUSE_BUCKETS_US`]) that holds
/// the `p` quantile; infinite past the last bound, 0 when empty.
fn pause_percentile(counts: &[u64], p: f64) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let rank = ((total as f64 * p).ceil() as u64).max(1);
    let mut cumulative = 0;
    for (bucket, count) in counts.iter().enumerate() {
        cumulative += count;
        if cumulative >= rank {
            return agentrail_node::metrics::PAUSE_BUCKETS_US
                .get(bucket)
                .map_or(f64::INFINITY, |&bound| bound as f64);
        }
    }
    f64::INFINITY
}

/// User plus system processor time of this process so far, all threads;
/// `None` where `/proc` does not tell it.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 12th and 13th of them, in clock ticks of 1/100 s (Linux's USER_HZ).
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ').skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / 100.0)
}

/// (c): the same transfers in SQLite, one durable transaction each.
fn sqlite(world: &World, count: usize) -> rusqlite::Result<f64> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut connection = rusqlite::Connection::open(dir.path().join("ledger.sqlite"))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.execute_batch(
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0));
         CREATE TABLE journal (id INTEGER PRIMARY KEY, payer INTEGER NOT NULL, payee INTEGER NOT NULL, amount INTEGER NOT NULL, request BLOB NOT NULL);",
    )?;
    for id in 0..=PAYERS as i64 {
        connection.execute(
            "INSERT INTO accounts (id, balance) VALUES (?1, ?2)",
            (id, 1_000_000_000_000i64),
        )?;
    }
    let requests = world.requests(count, "sqlite", &bench_network());
    let payee = PAYERS as i64;
    let started = Instant::now();
    for (index, (body, _)) in requests.iter().enumerate() {
        let payer = (index % PAYERS) as i64;
        let transaction = connection.transaction()?;
        let debited = transaction.execute(
            "UPDATE accounts SET balance = balance - 1 WHERE id = ?1 AND balance >= 1",
            [payer],
        )?;
        assert_eq!(debited, 1, "the payer has funds");
        transaction.execute(
            "UPDATE accounts SET balance = balance + 1 WHERE id = ?1",
            [payee],
        )?;
        transaction.execute(
            "INSERT INTO journal (payer, payee, amount, request) VALUES (?1, ?2, 1, ?3)",
            (payer, payee, body),
        )?;
        transaction.commit()?;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// (d): the real node over HTTP on loopback.
fn http(world: &World, count: usize, clients: usize) -> Http {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // The node on a runtime of its own, so that its threads' time is told
    // apart from its clients'.
    let node_runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name(threads::NODE_THREADS)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = oneshot::channel();
        let config = agentrail_node::NodeConfig {
            data_dir: dir.path().to_owned(),
            listen: "127.0.0.1:0".parse().expect("an address"),
            dev: false,
            operator: Some(kit::did(&world.operator)),
            snapshot_every: agentrail_node::ledger::SNAPSHOT_EVERY,
            limits: agentrail_node::limits::ServeLimits::default(),
            journal_cache_bytes: agentrail_node::JOURNAL_CACHE_BYTES,
            time_scale: None,
            cors_origins: Vec::new(),
            tls: None,
            chain: None,
            replication: None,
        };
        let server = node_runtime.spawn(agentrail_node::run(
            config,
            move |address| {
                let _ = ready_tx.send(address);
            },
            async {
                let _ = stopped.await;
            },
        ));
        let address = ready_rx.await.expect("the node starts");
        let client = agentrail_client::Client::new(&format!("http://{address}"));
        for (key, command) in world.setup(kit::usd(1_000_000)) {
            client.submit(&key, &command).await.expect("setup is valid");
        }
        let network = client.network().await.expect("the node names its network");
        let requests = Arc::new(world.requests(count, "http", &network));
        let next = Arc::new(AtomicUsize::new(0));
        let http = client.http().clone();
        let url = format!("http://{address}{COMMANDS_PATH}");
        let threads_before = threads::Sample::now();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (requests, next, http, url) = (
                Arc::clone(&requests),
                Arc::clone(&next),
                http.clone(),
                url.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some((body, headers)) = requests.get(index) else {
                        break;
                    };
                    let sent = Instant::now();
                    let response = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("content-digest", &headers.content_digest)
                        .header("signature-input", &headers.signature_input)
                        .header("signature", &headers.signature)
                        .body(body.clone())
                        .send()
                        .await
                        .expect("the node answers");
                    assert!(
                        response.status().is_success(),
                        "status {}",
                        response.status()
                    );
                    let _ = response.bytes().await;
                    latencies.push(sent.elapsed());
                }
                latencies
            }));
        }
        let mut latencies: Vec<Duration> = Vec::with_capacity(count);
        for task in tasks {
            latencies.extend(task.await.expect("client task"));
        }
        let elapsed = started.elapsed().as_secs_f64();
        let stages = CpuByStage::per_command(&threads::Sample::now().since(&threads_before), count);
        let _ = stop.send(());
        let _ = server.await;
        latencies.sort();
        let percentile = |p: f64| {
            latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)]
                .as_secs_f64()
                * 1e6
        };
        Http {
            tps: count as f64 / elapsed,
            p50_us: percentile(0.50),
            p99_us: percentile(0.99),
            stages,
        }
    })
}

/// What (d) measured.
struct Http {
    tps: f64,
    p50_us: f64,
    p99_us: f64,
    stages: CpuByStage,
}

/// Runs (a) to (d); `progress(stage)` is called before each.
pub fn run_ledger_bench(
    config: LedgerBenchConfig,
    progress: &mut dyn FnMut(&str),
) -> LedgerBenchReport {
    assert!(
        config.transfers > 0
            && config.slow_transfers > 0
            && config.clients > 0
            && config.rounds > 0,
        "nothing to measure"
    );
    assert!(config.clients <= QUEUE_MAX, "more clients than queue slots");
    let world = World::new();
    // (a) and (a') alternate round by round, so that a slow spell of the
    // machine weighs on both alike; each figure is the median of its rounds.
    let (mut group_rounds, mut preverified_rounds) = (Vec::new(), Vec::new());
    for round in 0..config.rounds {
        progress("group_commit");
        group_rounds.push(in_process(
            &world,
            agentrail_node::ledger::BATCH_MAX,
            config.transfers,
            config.clients,
            &format!("group-{round}"),
            Verification::Timed,
        ));
        progress("group_commit_preverified");
        preverified_rounds.push(in_process(
            &world,
            agentrail_node::ledger::BATCH_MAX,
            config.transfers,
            config.clients,
            &format!("preverified-{round}"),
            Verification::Before,
        ));
    }
    let group_commit = InProcess::median(&group_rounds);
    let preverified = InProcess::median(&preverified_rounds);
    progress("fsync_each");
    let fsync_each_tps = in_process(
        &world,
        1,
        config.slow_transfers,
        config.clients,
        "each",
        Verification::Timed,
    )
    .tps;
    progress("sqlite");
    let sqlite_tps = sqlite(&world, config.slow_transfers).expect("SQLite runs");
    progress("http");
    let http = http(&world, config.transfers, config.clients);
    let postgres = config.postgres.as_deref().map(|url| {
        progress("postgres");
        on_postgres(&world, url, &config, group_commit.tps)
    });
    LedgerBenchReport {
        bench: "ledger",
        transfers: config.transfers,
        slow_transfers: config.slow_transfers,
        clients: config.clients,
        rounds: config.rounds,
        cores: cores(),
        group_commit_tps: group_commit.tps,
        group_commit_mean_batch: group_commit.mean_batch,
        group_commit_mean_signature_batch: group_commit.mean_signature_batch,
        group_commit_cpu_us: group_commit.cpu_us,
        group_commit_preverified_tps: preverified.tps,
        group_commit_preverified_cpu_us: preverified.cpu_us,
        group_commit_cpu_by_stage_us: group_commit.stages.clone(),
        group_commit_preverified_cpu_by_stage_us: preverified.stages.clone(),
        writer_pause_p99_us: group_commit.pause_p99_us,
        writer_pause_max_us: group_commit.pause_max_us,
        snapshot_every: BENCH_SNAPSHOT_EVERY,
        fsync_each_tps,
        sqlite_tps,
        http_tps: http.tps,
        http_p50_us: http.p50_us,
        http_p99_us: http.p99_us,
        http_node_cpu_us: http.stages.node,
        http_cpu_by_stage_us: http.stages,
        group_commit_vs_sqlite: group_commit.tps / sqlite_tps,
        group_commit_vs_fsync_each: group_commit.tps / fsync_each_tps,
        preverified_vs_sqlite: preverified.tps / sqlite_tps,
        group_commit_p50_us: group_commit.p50_us,
        group_commit_p99_us: group_commit.p99_us,
        postgres,
    }
}

/// The lease of (e)'s leader.
const BENCH_LEASE: Duration = Duration::from_millis(1_000);

/// (e): see the crate docs. Panics with the database's words when it
/// cannot be used.
fn on_postgres(
    world: &World,
    url: &str,
    config: &LedgerBenchConfig,
    group_commit_tps: f64,
) -> PostgresFigures {
    let schema = format!("agentrail_bench_{}_{}", std::process::id(), unix_now());
    let mut admin =
        postgres::Client::connect(url, postgres::NoTls).expect("the benchmark's database answers");
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .expect("a schema for the benchmark");
    let synchronous_standby_names: String = admin
        .query_one("SHOW synchronous_standby_names", &[])
        .map(|row| row.get(0))
        .unwrap_or_default();
    let separator = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    let journal = |holder: &str| {
        Arc::new(
            agentrail_postgres::Journal::connect(
                &scoped,
                BENCH_LOG,
                holder,
                &format!("http://{holder}"),
                BENCH_LEASE,
            )
            .expect("the benchmark's journal"),
        )
    };
    let (figures, leader) = in_process_on(
        world,
        agentrail_node::ledger::BATCH_MAX,
        config.transfers,
        config.clients,
        "postgres",
        Verification::Timed,
        Some(journal("bench-leader")),
    );
    let last_write = Instant::now();
    // A standby on the same journal: it follows, and leads once the
    // leader's lease lapsed (the leader never renews it here: it is as
    // good as dead after its last write).
    let (standby, _standby_dir) = bench_ledger(
        world,
        agentrail_node::ledger::BATCH_MAX,
        Some(journal("bench-standby")),
    );
    let standby = Arc::new(standby);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let follower = {
        let (standby, stop) = (Arc::clone(&standby), Arc::clone(&stop));
        std::thread::spawn(move || {
            agentrail_node::replication::run(
                standby,
                Arc::new(Nonces::default()),
                BENCH_LEASE,
                stop,
            )
        })
    };
    while !standby.is_leading() {
        assert!(
            last_write.elapsed() < Duration::from_secs(60),
            "the standby did not take the lead"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let takeover_ms = last_write.elapsed().as_secs_f64() * 1e3;
    assert_eq!(
        standby.journal_len(),
        leader.ledger.journal_len(),
        "the standby leads with every entry"
    );
    stop.store(true, Ordering::Release);
    let _ = follower.join();
    drop(leader);
    let _ = admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
    PostgresFigures {
        tps: figures.tps,
        mean_batch: figures.mean_batch,
        p50_us: figures.p50_us,
        p99_us: figures.p99_us,
        cpu_us: figures.cpu_us,
        vs_group_commit: figures.tps / group_commit_tps,
        synchronous_standby_names,
        lease_ms: BENCH_LEASE.as_millis() as u64,
        takeover_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_percentile_is_the_bound_of_its_bucket() {
        let buckets = agentrail_node::metrics::PAUSE_BUCKETS_US.len() + 1;
        let mut counts = vec![0u64; buckets];
        assert_eq!(pause_percentile(&counts, 0.99), 0.0);
        // 99 pauses of at most 10 us and one past the last bound.
        counts[0] = 99;
        counts[buckets - 1] = 1;
        assert_eq!(pause_percentile(&counts, 0.99), 10.0);
        assert_eq!(pause_percentile(&counts, 1.0), f64::INFINITY);
        counts[0] = 98;
        counts[3] = 1;
        assert_eq!(pause_percentile(&counts, 0.99), 100.0);
    }

    #[test]
    fn every_case_moves_the_money_it_claims() {
        let database = agentrail_postgres::cluster::Cluster::start().expect("a database");
        let report = run_ledger_bench(
            LedgerBenchConfig {
                transfers: 200,
                slow_transfers: 20,
                clients: 8,
                rounds: 1,
                postgres: Some(database.url().to_owned()),
            },
            &mut |_| {},
        );
        assert!(
            report.group_commit_tps > 0.0
                && report.fsync_each_tps > 0.0
                && report.sqlite_tps > 0.0
                && report.http_tps > 0.0
        );
        assert!(report.http_p50_us <= report.http_p99_us);
        assert!(report.group_commit_p50_us <= report.group_commit_p99_us);
        // Each stage's threads are accounted, and the writer's pauses too.
        let stages = &report.group_commit_cpu_by_stage_us;
        assert!(stages.verifier > 0.0 && stages.writer > 0.0 && stages.committer > 0.0);
        assert!(report.group_commit_preverified_cpu_by_stage_us.verifier < stages.verifier);
        assert!(report.http_cpu_by_stage_us.http > 0.0 && report.http_node_cpu_us > 0.0);
        assert!(report.writer_pause_max_us > 0.0);
        assert!(report.writer_pause_p99_us > 0.0);
        let postgres = report.postgres.expect("(e) ran");
        assert!(postgres.tps > 0.0 && postgres.p50_us <= postgres.p99_us);
        assert_eq!(postgres.synchronous_standby_names, "FIRST 1 (standby)");
        assert!(postgres.takeover_ms >= postgres.lease_ms as f64 / 2.0);
    }
}
