//! Past one machine: two nodes sharing a journal in a private PostgreSQL
//! (a primary and its synchronous standby, `scripts/postgres`), under
//! concurrent transfers sent through a client that knows both nodes. Each
//! round breaks something, in turn:
//!
//! - `kill -9` of the leading node: the standby takes over; the killed
//!   node comes back as a standby, copying what it missed;
//! - SIGSTOP of the leading node until the standby took over, then
//!   SIGCONT: its next batch is refused by the term check and it steps
//!   down;
//! - (last round only) `kill -9` of the database's primary and promotion
//!   of its standby: the nodes find the new primary among the URL's hosts.
//!
//! Then: every acknowledged transfer is in the journal exactly once (sent
//! again, it returns the original outcome), every balance is what the
//! acknowledged transfers make it (none lost, none applied twice), money
//! is conserved, and every checkpoint either node published is consistent
//! with the final one. Last, a clean stop (SIGTERM) of the leader hands
//! the lead over without waiting for its lease. Prints one summary line:
//! `rounds`, `acknowledged`, `lost`, `invariant_violations`, `panics`,
//! `takeover_ms` (the slowest takeover after a failure), `handover_ms`
//! (after the clean stop).
//!
//! `AGENTRAIL_FAILOVER_ROUNDS=N` runs more rounds (CI runs 3).

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentrail_client::{Client, ClientError};
use agentrail_core::{Amount, Event};
use agentrail_log::merkle;
use agentrail_log::{Checkpoint, LogKey};
use agentrail_postgres::cluster::Cluster;
use agentrail_sim::kit;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use support::{Node, did, key, usd};

const CLIENTS: usize = 4;
const LEASE_MS: &str = "1000";
fn signal(node: &Node, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &node.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A node of the pair, on `data`, sharing the journal at `url`.
fn start(data: &Path, url: &str, standby: bool) -> Node {
    let mut args = vec!["--store", url, "--lease-ms", LEASE_MS];
    if standby {
        args.push("--standby");
    }
    Node::start_with(data, &args)
}

async fn role(client: &Client) -> Option<String> {
    let health = client.health().await.ok()?;
    health.replication.map(|replication| replication.role)
}

/// Waits until the node behind `client` leads; how long that took.
async fn until_leading(client: &Client, within: Duration) -> Duration {
    let started = Instant::now();
    while role(client).await.as_deref() != Some("leader") {
        assert!(
            started.elapsed() < within,
            "{} did not take the lead within {within:?}",
            client.base()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// A transfer a client was told had landed.
struct Acknowledged {
    signer: SigningKey,
    command: agentrail_core::Command,
    events: Vec<Event>,
    from: usize,
    to: usize,
    amount: u128,
}

/// Client `index` sends transfers to its neighbour until `stop`, each
/// retried with the same idempotency key until the ledger answers it.
async fn transfers(
    client: Client,
    agents: Arc<Vec<SigningKey>>,
    index: usize,
    round: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
    acknowledged: Arc<Mutex<Vec<Acknowledged>>>,
    server_errors: Arc<Mutex<u64>>,
) {
    let to = (index + 1) % agents.len();
    let signer = agents[index].clone();
    for n in 0u64.. {
        if stop.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let amount = 1 + u128::from(n % 89);
        let command = kit::transfer(
            did(&signer),
            did(&agents[to]),
            Amount::from_atomic(amount),
            &format!("f{round}-c{index}-n{n}"),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match client.submit(&signer, &command).await {
                Ok(response) => {
                    let events = match response.events.as_slice() {
                        [Event::Duplicate { original }] => original.clone(),
                        _ => response.events,
                    };
                    acknowledged.lock().unwrap().push(Acknowledged {
                        signer: signer.clone(),
                        command,
                        events,
                        from: index,
                        to,
                        amount,
                    });
                    break;
                }
                Err(error) => {
                    if support::is_server_error(&error) {
                        *server_errors.lock().unwrap() += 1;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "a transfer found no node to land on: {error}"
                    );
                    if let ClientError::Api { error, .. } = &error {
                        assert!(
                            matches!(
                                error.code.as_str(),
                                "not_leader"
                                    | "storage_unavailable"
                                    | "outcome_unknown"
                                    | "signature_before_start"
                                    | "overloaded"
                                    | "shutting_down"
                            ),
                            "an unexpected refusal: {} {}",
                            error.code,
                            error.message
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_takes_over_and_nothing_acknowledged_is_lost() {
    let rounds: u64 = std::env::var("AGENTRAIL_FAILOVER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let database = Cluster::start().unwrap();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut nodes: [Option<Node>; 2] = [Some(start(dirs[0].path(), database.url(), false)), None];
    let first = nodes[0].as_ref().unwrap();
    until_leading(&first.client, Duration::from_secs(10)).await;
    let replication = first.client.health().await.unwrap().replication.unwrap();
    assert!(
        replication.synchronous_standby && replication.database_ok,
        "the database waits for its standby: {replication:?}"
    );
    // The second node is the same ledger: its genesis and log key.
    for file in ["genesis.json", "log.key", "operator.key"] {
        std::fs::copy(dirs[0].path().join(file), dirs[1].path().join(file)).unwrap();
    }
    nodes[1] = Some(start(dirs[1].path(), database.url(), true));
    let urls = [
        nodes[0].as_ref().unwrap().url.clone(),
        nodes[1].as_ref().unwrap().url.clone(),
    ];
    let client = Client::new(&urls[0]).with_nodes(&[&urls[1]]);
    let log_key = LogKey::parse(&client.log_key().await.unwrap()).unwrap();

    let principal = key("failover-principal");
    let agents: Arc<Vec<SigningKey>> = Arc::new(
        (0..CLIENTS)
            .map(|i| key(&format!("failover-agent-{i}")))
            .collect(),
    );
    let funding = usd(1_000);
    support::register_funded_agents(
        &client,
        &principal,
        &agents,
        kit::limits(usd(1_000), usd(1_000_000)),
        funding,
        "failover",
    )
    .await;

    let acknowledged: Arc<Mutex<Vec<Acknowledged>>> = Arc::default();
    let server_errors: Arc<Mutex<u64>> = Arc::default();
    let checkpoints: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut takeover_max = Duration::ZERO;
    let mut leader = 0usize;
    for round in 0..rounds {
        let round_started = Instant::now();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut load = Vec::new();
        for index in 0..CLIENTS {
            load.push(tokio::spawn(transfers(
                client.clone(),
                Arc::clone(&agents),
                index,
                round,
                Arc::clone(&stop),
                Arc::clone(&acknowledged),
                Arc::clone(&server_errors),
            )));
        }
        let watchers: Vec<_> = urls
            .iter()
            .map(|url| {
                let (watcher, checkpoints, stop) = (
                    Client::new(url),
                    Arc::clone(&checkpoints),
                    Arc::clone(&stop),
                );
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::Acquire) {
                        if let Ok(note) = watcher.checkpoint().await {
                            checkpoints.lock().unwrap().push(note);
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let standby = 1 - leader;
        let standby_client = Client::new(&urls[standby]);
        let last = round + 1 == rounds;
        if last && rounds >= 3 {
            // The database fails over; the nodes carry on, whichever leads.
            database.kill_primary().unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            database.promote().unwrap();
        } else if round % 2 == 0 {
            let killed = nodes[leader].take().unwrap();
            killed.kill();
            takeover_max =
                takeover_max.max(until_leading(&standby_client, Duration::from_secs(15)).await);
            tokio::time::sleep(Duration::from_millis(300)).await;
            // Back as a standby, on the same directory and address.
            let address = urls[leader].trim_start_matches("http://").to_owned();
            let restarted = Node::start_on(
                dirs[leader].path(),
                &address,
                &[
                    "--store",
                    database.url(),
                    "--lease-ms",
                    LEASE_MS,
                    "--standby",
                ],
            );
            assert_eq!(role(&restarted.client).await.as_deref(), Some("standby"));
            nodes[leader] = Some(restarted);
            leader = standby;
        } else {
            let paused = nodes[leader].as_ref().unwrap();
            signal(paused, "-STOP");
            takeover_max =
                takeover_max.max(until_leading(&standby_client, Duration::from_secs(15)).await);
            tokio::time::sleep(Duration::from_millis(300)).await;
            signal(paused, "-CONT");
            // Its next batch or renewal is refused: it steps down.
            let started = Instant::now();
            while role(&paused.client).await.as_deref() != Some("standby") {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "the resumed old leader did not step down"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            leader = standby;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let broken_after = round_started.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Release);
        for task in load {
            task.await.unwrap();
        }
        eprintln!(
            "failover: round {round} broke and recovered in {broken_after:?}, load stopped after {:?}",
            round_started.elapsed()
        );
        for watcher in watchers {
            watcher.await.unwrap();
        }
    }

    // The audit, through whichever node leads now.
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    assert!(
        acknowledged.len() > 50,
        "too little load to mean anything: {}",
        acknowledged.len()
    );
    let mut lost = 0u64;
    for ack in &acknowledged {
        let again = client.submit(&ack.signer, &ack.command).await.unwrap();
        if again.events
            != vec![Event::Duplicate {
                original: ack.events.clone(),
            }]
        {
            lost += 1;
        }
    }
    let mut expected: BTreeMap<usize, i128> = (0..CLIENTS)
        .map(|index| (index, funding.atomic() as i128))
        .collect();
    for ack in &acknowledged {
        *expected.get_mut(&ack.from).unwrap() -= ack.amount as i128;
        *expected.get_mut(&ack.to).unwrap() += ack.amount as i128;
    }
    let mut invariant_violations = 0u64;
    let mut total = 0u128;
    for (index, agent) in agents.iter().enumerate() {
        let balance = client.balance(&did(agent)).await.unwrap();
        total += balance.available.atomic() + balance.held.atomic();
        if balance.available.atomic() as i128 != expected[&index] {
            invariant_violations += 1;
        }
    }
    if total != funding.atomic() * CLIENTS as u128 {
        invariant_violations += 1;
    }
    // Both nodes hold the same log, consistent with every checkpoint seen.
    let newest = Checkpoint::open(&client.checkpoint().await.unwrap(), &log_key).unwrap();
    let seen = std::mem::take(&mut *checkpoints.lock().unwrap());
    assert!(seen.len() > 10, "the watchers saw too few checkpoints");
    for note in &seen {
        let old = Checkpoint::open(note, &log_key).unwrap();
        if old.size > newest.size {
            continue;
        }
        let proof = client.consistency(old.size, newest.size).await.unwrap();
        let hashes: Vec<merkle::Hash> = proof
            .proof
            .iter()
            .map(|h| STANDARD.decode(h).unwrap().try_into().unwrap())
            .collect();
        merkle::verify_consistency(old.size, newest.size, &old.root, &newest.root, &hashes)
            .unwrap_or_else(|e| panic!("checkpoint of {} entries was forked: {e}", old.size));
    }
    for node in nodes.iter().flatten() {
        let started = Instant::now();
        loop {
            let theirs =
                Checkpoint::open(&node.client.checkpoint().await.unwrap(), &log_key).unwrap();
            if theirs.size >= newest.size {
                let proof = client.consistency(newest.size, theirs.size).await;
                if theirs.size == newest.size {
                    assert_eq!(theirs.root, newest.root, "the nodes hold other logs");
                } else {
                    assert!(proof.is_ok());
                }
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "a standby does not catch up"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // A clean stop (SIGTERM) of the leader hands the lead over at once,
    // without waiting for its lease to lapse.
    let leading = nodes
        .iter()
        .position(|node| node.as_ref().is_some_and(|node| node.url == client.base()))
        .expect("the client's node is one of the pair");
    let stopped = nodes[leading].take().unwrap();
    let stopping = Instant::now();
    stopped.stop();
    let heir = Client::new(&nodes[1 - leading].as_ref().unwrap().url);
    until_leading(&heir, Duration::from_secs(15)).await;
    let handover = stopping.elapsed();
    let panics: usize = dirs.iter().map(|dir| support::panics(dir.path())).sum();
    let server_errors = *server_errors.lock().unwrap();
    eprintln!(
        "failover: rounds={rounds} acknowledged={} lost={lost} invariant_violations={invariant_violations} panics={panics} server_errors={server_errors} takeover_ms={} handover_ms={}",
        acknowledged.len(),
        takeover_max.as_millis(),
        handover.as_millis()
    );
    assert_eq!(lost, 0, "acknowledged transfers are missing");
    assert_eq!(
        invariant_violations, 0,
        "balances are not what was acknowledged"
    );
    assert_eq!(panics, 0, "a node panicked");
    assert_eq!(server_errors, 0, "a node answered 500 or worse");
}
