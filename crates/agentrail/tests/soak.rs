//! Soak: the real node binary under a steady load for a bounded time,
//! its resident memory sampled every half second. Once the working set is
//! warm, memory must stop growing.
//!
//! The load is what the node sees every day: transfers, holds released to
//! a payee, channel vouchers collected on long-lived channels, and whole
//! escrowed tasks (request, quote, accept, deliver, approve), from eight
//! clients as fast as the node answers them.
//!
//! What a day of traffic leaves in memory (idempotency keys, ended holds
//! and tasks, their requests and quotes) stays for a day of ledger time,
//! so a steady state takes more than a day to reach. The node runs on a
//! scaled clock (`--dev-time-scale`, dev only) on which a ledger day
//! passes in [`REAL_S_PER_LEDGER_DAY`] seconds, and the clients sign with
//! the same clock: the CI run covers six ledger days, the long run sixty,
//! on the same working set. Every window the node keeps (idempotency,
//! ended records, the nonce window of signed requests) is in ledger time,
//! so each holds what it would hold under this traffic for a real day.
//! The first two thirds warm up, the last third is measured. Snapshots are
//! taken every 25,000 entries and the journal's page cache is 16 MiB, so
//! that the minute-long run reaches both steady states in its warm-up.
//!
//! Checks, and one summary line (`soak: … rounds= acknowledged= lost=
//! invariant_violations= panics= …`, rounds being ledger days covered):
//! - resident memory in the measured third grows by at most
//!   [`GROWTH_ALLOWED_MB`] (median of its first sixth against median of
//!   its last), and never passes [`CEILING_MB`], snapshots included;
//! - every acknowledged task is approved when read back at the end (most
//!   from the archive, since the state forgot them), every acknowledged
//!   hold released, sampled acknowledged transfers are in the log where
//!   their receipt says;
//! - money is conserved: the agents hold exactly what was deposited, and
//!   what is held is exactly the channels' rest and running tasks' escrow;
//! - no answer was a 5xx, the node never panicked.
//!
//! `AGENTRAIL_SOAK_S=N` runs N seconds (CI runs 60; the long run
//! is 600).

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentrail_client::{Client, ClientError};
use agentrail_core::channel::{ChannelId, network_hash};
use agentrail_core::constants::DAY_S;
use agentrail_core::grant::Role;
use agentrail_core::market::TaskStatus;
use agentrail_core::state::HoldStatus;
use agentrail_core::time::TimeScale;
use agentrail_core::{Amount, Command, Timestamp};
use agentrail_sim::kit;
use ed25519_dalek::SigningKey;
use support::{Node, did, key, usd};

const CLIENTS: usize = 8;
/// Real seconds a ledger day takes on the soak node's scaled clock.
const REAL_S_PER_LEDGER_DAY: u64 = 10;
/// What each hold reserves.
const HOLD_ATOMIC: u128 = 1_000;
/// Most the measured third may grow.
const GROWTH_ALLOWED_MB: f64 = 16.0;
/// Most resident memory may ever be.
const CEILING_MB: f64 = 512.0;

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// The node's resident memory, from /proc.
fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// What the clients were told, to check at the end.
#[derive(Default)]
struct Told {
    acknowledged: u64,
    /// Every 50th acknowledged transfer: its log index and leaf hash.
    receipts: Vec<(u64, String)>,
    released: Vec<String>,
    /// Holds whose release was refused: still reserved, unless they expired.
    unreleased: Vec<String>,
    approved: Vec<String>,
    /// Every task an acceptance was sent for.
    attempted: Vec<String>,
    channels: Vec<ChannelId>,
    /// Refusals by code (a stale signature is retried, others counted).
    refused: std::collections::BTreeMap<String, u64>,
    server_errors: u64,
}

impl Told {
    fn refusal(&mut self, error: &ClientError) {
        if support::is_server_error(error) {
            self.server_errors += 1;
        }
        let code = error.code().unwrap_or("transport").to_owned();
        *self.refused.entry(code).or_default() += 1;
    }
}

/// Submits `command`, retrying a request whose signature aged out in a
/// queue (the scaled clock makes the window short) or that met a busy
/// node; `None` after another refusal, which is counted.
async fn submit(
    client: &Client,
    signer: &SigningKey,
    command: &Command,
    told: &Mutex<Told>,
) -> Option<agentrail_wire::api::CommandResponse> {
    for _ in 0..20 {
        match client.submit(signer, command).await {
            Ok(response) => {
                told.lock().unwrap().acknowledged += 1;
                return Some(response);
            }
            Err(error) => {
                let retry = matches!(
                    error.code(),
                    Some("signature_expired" | "overloaded" | "rate_limited")
                );
                told.lock().unwrap().refusal(&error);
                if !retry {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    None
}

struct Run {
    client: Client,
    network: [u8; 32],
    stop: Arc<AtomicBool>,
    told: Arc<Mutex<Told>>,
}

async fn transfers(run: Arc<Run>, agent: SigningKey, payee: SigningKey, tag: String) {
    let mut n = 0u64;
    while !run.stop.load(Ordering::Relaxed) {
        let amount = Amount::from_atomic(1 + u128::from(n % 97));
        let command = kit::transfer(did(&agent), did(&payee), amount, &format!("{tag}-{n}"));
        if let Some(response) = submit(&run.client, &agent, &command, &run.told).await
            && n.is_multiple_of(50)
        {
            run.told
                .lock()
                .unwrap()
                .receipts
                .push((response.receipt.index, response.receipt.leaf_hash));
        }
        n += 1;
    }
}

async fn holds(run: Arc<Run>, agent: SigningKey, payee: SigningKey, tag: String) {
    let mut n = 0u64;
    while !run.stop.load(Ordering::Relaxed) {
        let id = format!("{tag}-{n}");
        let hold = kit::hold(&id, did(&agent), Amount::from_atomic(HOLD_ATOMIC));
        if submit(&run.client, &agent, &hold, &run.told)
            .await
            .is_some()
        {
            let release = kit::release(&id, &[(did(&payee), 10_000)]);
            if submit(&run.client, &agent, &release, &run.told)
                .await
                .is_some()
            {
                run.told.lock().unwrap().released.push(id);
            } else {
                run.told.lock().unwrap().unreleased.push(id);
            }
        }
        n += 1;
    }
}

async fn vouchers(run: Arc<Run>, payer: SigningKey, payee: SigningKey, tag: String) {
    let mut opened = 0u64;
    'channels: while !run.stop.load(Ordering::Relaxed) {
        // A long-lived channel, reopened under a new key should it end.
        let key = format!("{tag}-{opened}");
        opened += 1;
        let open = kit::open_channel(did(&payer), did(&payee), usd(1_000), &key);
        if submit(&run.client, &payer, &open, &run.told)
            .await
            .is_none()
        {
            continue;
        }
        let channel = ChannelId::derive(&did(&payer), &did(&payee), &key);
        run.told.lock().unwrap().channels.push(channel);
        let mut nonce = 0u64;
        while !run.stop.load(Ordering::Relaxed) {
            nonce += 1;
            let total = Amount::from_atomic(u128::from(nonce) * 10);
            let voucher = kit::voucher(
                &payer,
                &run.network,
                channel,
                did(&payee),
                "soak",
                nonce,
                total,
            );
            let collect = kit::collect_channel(channel, vec![voucher]);
            if submit(&run.client, &payee, &collect, &run.told)
                .await
                .is_none()
            {
                continue 'channels;
            }
        }
    }
}

async fn tasks(run: Arc<Run>, buyer: SigningKey, provider: SigningKey, tag: String) {
    let mut n = 0u64;
    while !run.stop.load(Ordering::Relaxed) {
        let (rfq, quote, task) = (
            format!("{tag}-r{n}"),
            format!("{tag}-q{n}"),
            format!("{tag}-t{n}"),
        );
        n += 1;
        let steps = [
            (
                &buyer,
                kit::request_quotes(kit::rfq(&rfq, did(&buyer), "compute", usd(2), DAY_S)),
            ),
            (
                &provider,
                kit::quote(&quote, &rfq, did(&provider), None, usd(1)),
            ),
            (&buyer, kit::accept(&quote, &task)),
            (&provider, kit::deliver(&task, b"done", &[])),
            (&buyer, kit::approve_task(&task, b"done")),
        ];
        let mut done = true;
        for (step, (signer, command)) in steps.into_iter().enumerate() {
            if step == 2 {
                run.told.lock().unwrap().attempted.push(task.clone());
            }
            if submit(&run.client, signer, &command, &run.told)
                .await
                .is_none()
            {
                done = false;
                break;
            }
        }
        if done {
            run.told.lock().unwrap().approved.push(task);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_stops_growing_once_the_working_set_is_warm() {
    let seconds: u64 = std::env::var("AGENTRAIL_SOAK_S")
        .ok()
        .map(|v| v.parse().expect("AGENTRAIL_SOAK_S is a number of seconds"))
        .unwrap_or(60);
    assert!(
        seconds >= 6 * REAL_S_PER_LEDGER_DAY,
        "a soak needs at least six ledger days: {} s",
        6 * REAL_S_PER_LEDGER_DAY
    );
    // A ledger day every REAL_S_PER_LEDGER_DAY seconds, whatever the run's
    // length: a longer run covers more days of the same working set.
    let scale = (DAY_S / REAL_S_PER_LEDGER_DAY) as u32;
    let clock = TimeScale {
        origin_ms: unix_ms(),
        scale,
    };
    let (snapshot_every, cache_mb) = (25_000, 16);
    let data = tempfile::tempdir().unwrap();
    let node = Node::start_with(
        data.path(),
        &[
            "--dev-time-scale",
            &scale.to_string(),
            "--dev-time-origin-ms",
            &clock.origin_ms.to_string(),
            "--snapshot-every",
            &snapshot_every.to_string(),
            "--journal-cache-mb",
            &cache_mb.to_string(),
        ],
    );
    let client = node
        .client
        .clone()
        .with_clock(move || clock.at(unix_ms()).0);
    let now = clock.at(unix_ms());

    let principal = key("soak-principal");
    let agents: Vec<SigningKey> = (0..CLIENTS)
        .map(|i| key(&format!("soak-agent-{i}")))
        .collect();
    let funding = usd(1_000_000);
    client
        .submit(&principal, &kit::register_principal(did(&principal)))
        .await
        .unwrap();
    for agent in &agents {
        let grant = kit::grant(
            &principal,
            did(agent),
            Role::Agent,
            kit::limits(usd(10_000), usd(100_000_000)),
            now,
            Timestamp(now.0 + 300 * DAY_S),
            "soak",
        );
        client
            .submit(&principal, &kit::register_agent(grant))
            .await
            .unwrap();
        client.faucet(did(agent), funding).await.unwrap();
    }
    let deposited = funding.checked_mul(CLIENTS as u128).unwrap();
    let network = network_hash(&client.health().await.unwrap().network);
    let run = Arc::new(Run {
        client: client.clone(),
        network,
        stop: Arc::default(),
        told: Arc::default(),
    });
    let mut load = Vec::new();
    for (index, agent) in agents.iter().enumerate() {
        let (run, agent) = (Arc::clone(&run), agent.clone());
        let partner = agents[(index + 1) % CLIENTS].clone();
        let tag = format!("soak-{index}");
        load.push(match index % 4 {
            0 => tokio::spawn(transfers(run, agent, partner, tag)),
            1 => tokio::spawn(holds(run, agent, partner, tag)),
            2 => tokio::spawn(vouchers(run, agent, partner, tag)),
            _ => tokio::spawn(tasks(run, agent, partner, tag)),
        });
    }

    // Sample resident memory until the time is up.
    let pid = node.child.id();
    let started = Instant::now();
    let mut samples: Vec<(f64, f64, u64)> = Vec::new();
    let mut next_report = 10;
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss = rss_mb(pid).expect("the node is running");
        let acknowledged = run.told.lock().unwrap().acknowledged;
        let at = started.elapsed().as_secs_f64();
        samples.push((at, rss, acknowledged));
        if at as u64 >= next_report {
            eprintln!("soak: {at:.0}/{seconds} s, rss {rss:.1} MB, {acknowledged} acknowledged");
            next_report += 10;
        }
    }
    run.stop.store(true, Ordering::Relaxed);
    for client in load {
        client.await.unwrap();
    }

    // Memory: the last third (after at least four ledger days of warming
    // up), its first sixth against its last, by medians, so that the brief
    // peak of a snapshot being written counts for the ceiling only.
    let measured: Vec<f64> = samples
        .iter()
        .filter(|(at, ..)| *at >= seconds as f64 * 2.0 / 3.0)
        .map(|(_, rss, _)| *rss)
        .collect();
    let sixth = (measured.len() / 6).max(1);
    let warm = median(&measured[..sixth]);
    let end = median(&measured[measured.len() - sixth..]);
    let growth = end - warm;
    let peak = samples.iter().map(|(_, rss, _)| *rss).fold(0.0, f64::max);

    // What was acknowledged is there.
    let told = std::mem::take(&mut *run.told.lock().unwrap());
    let mut lost = 0u64;
    for task in &told.approved {
        match client.task(task).await {
            Ok(view) if matches!(view.status, TaskStatus::Approved { .. }) => {}
            _ => lost += 1,
        }
    }
    for hold in &told.released {
        match client.hold(hold).await {
            Ok(view) if view.status == HoldStatus::Released => {}
            _ => lost += 1,
        }
    }
    for (index, leaf_hash) in &told.receipts {
        match client.log_entry(*index).await {
            Ok(entry) if entry.leaf_hash == *leaf_hash => {}
            _ => lost += 1,
        }
    }
    // Money: deposits are all in the agents' accounts; what is held is the
    // channels' rest and the escrow of tasks still running.
    let mut expected_held = 0u128;
    for channel in &told.channels {
        let view = client.channel(channel).await.unwrap();
        if view.status == agentrail_core::state::ChannelStatus::Open {
            expected_held += view.deposit.atomic() - view.collected.atomic();
        }
    }
    for hold in &told.unreleased {
        if let Ok(view) = client.hold(hold).await
            && view.status == HoldStatus::Reserved
        {
            expected_held += HOLD_ATOMIC;
        }
    }
    expected_held += support::running_escrow(&client, &told.attempted).await;
    let (total, held) = support::money_of(&client, &agents).await;
    let invariant_violations =
        u64::from(total != deposited.atomic()) + u64::from(held != expected_held);
    let panics = support::panics(data.path());
    let snapshots = logged(data.path(), "snapshot saved", "bytes");
    let serialize_ms_max = logged(data.path(), "snapshot serialized", "serialized_us")
        .into_iter()
        .max()
        .unwrap_or(0) as f64
        / 1_000.0;
    let metrics = reqwest_metrics(&node.url).await;
    node.stop();

    let days = (seconds * u64::from(scale)) as f64 / DAY_S as f64;
    println!(
        "soak: seconds={seconds} scale={scale} rounds={days:.1} acknowledged={} lost={lost} invariant_violations={invariant_violations} panics={panics} server_errors={} rss_warm_mb={warm:.1} rss_end_mb={end:.1} rss_growth_mb={growth:.1} rss_peak_mb={peak:.1} tasks={} holds={} channels={} refused={:?} snapshots={} snapshot_first_bytes={} snapshot_last_bytes={} snapshot_serialize_ms_max={serialize_ms_max:.1} {metrics}",
        told.acknowledged,
        told.server_errors,
        told.approved.len(),
        told.released.len(),
        told.channels.len(),
        told.refused,
        snapshots.len(),
        snapshots.first().copied().unwrap_or(0),
        snapshots.last().copied().unwrap_or(0),
    );
    let curve: Vec<String> = samples
        .iter()
        .step_by(4)
        .map(|(at, rss, ack)| format!("{at:.0}s:{rss:.0}MB:{ack}"))
        .collect();
    eprintln!("soak curve: {}", curve.join(" "));
    assert_eq!(lost, 0, "acknowledged commands are missing");
    assert_eq!(
        invariant_violations, 0,
        "money was created, lost or misheld"
    );
    assert_eq!(panics, 0, "the node panicked");
    assert_eq!(told.server_errors, 0, "the node answered 500 or worse");
    assert!(
        !told.approved.is_empty() && !told.released.is_empty() && told.acknowledged > 1_000,
        "the load did too little to mean anything"
    );
    assert!(
        peak <= CEILING_MB,
        "resident memory reached {peak:.1} MB, above the ceiling of {CEILING_MB} MB"
    );
    assert!(
        growth <= GROWTH_ALLOWED_MB,
        "resident memory still grew by {growth:.1} MB after the working set was warm ({warm:.1} → {end:.1} MB)"
    );
}

/// The values of `field` in the node's log lines that say `message`.
fn logged(data: &std::path::Path, message: &str, field: &str) -> Vec<u64> {
    let log = std::fs::read_to_string(data.join(support::NODE_LOG)).unwrap_or_default();
    let prefix = format!("{field}=");
    log.lines()
        .filter(|line| line.contains(message))
        .map(strip_ansi)
        .filter_map(|line| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(&prefix)?.parse().ok())
        })
        .collect()
}

/// `line` without terminal colour codes (`ESC [ … m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        match (in_code, c) {
            (false, '\u{1b}') => in_code = true,
            (true, 'm') => in_code = false,
            (false, c) => out.push(c),
            (true, _) => {}
        }
    }
    out
}

/// The node's own gauges of what it holds, from `/metrics`.
async fn reqwest_metrics(url: &str) -> String {
    let Ok(text) = reqwest::get(format!("{url}/metrics")).await else {
        return String::new();
    };
    let Ok(text) = text.text().await else {
        return String::new();
    };
    // `agentrail_state_records{kind="holds"} 12` → `holds:12`
    let counts: Vec<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("agentrail_state_records{kind=\""))
        .filter_map(|rest| rest.split_once("\"} "))
        .map(|(kind, count)| format!("{kind}:{count}"))
        .collect();
    format!("state={}", counts.join(","))
}
