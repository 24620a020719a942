//! Kill -9 under load: concurrent clients sending transfers, channel
//! vouchers with collects, and whole escrowed tasks (request, quote,
//! accept, deliver, approve); the node killed at a moment that varies and
//! restarted on the same directory. Every acknowledged command must be
//! present exactly once, nothing half-applied, money conserved, and the log
//! after each restart consistent with every checkpoint seen before. Prints
//! one summary line: `rounds`, `acknowledged`, `lost`,
//! `invariant_violations`, `panics` (in the node's log), `server_errors`
//! (answers 500 or worse).
//!
//! `AGENTRAIL_KILL_ROUNDS=N` runs more rounds (CI runs 20).

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentrail_client::{Client, ClientError};
use agentrail_core::channel::{ChannelId, network_hash};
use agentrail_core::market::TaskStatus;
use agentrail_core::{Amount, Command, Event, Timestamp};
use agentrail_log::merkle;
use agentrail_log::{Checkpoint, LogKey};
use agentrail_sim::kit;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use support::{Node, did, key, now, usd};

const CLIENTS: usize = 8;

/// A transfer a client was told was accepted, and what the node said.
struct Acknowledged {
    signer: SigningKey,
    command: Command,
    events: Vec<Event>,
    receipt: agentrail_wire::api::ReceiptRef,
}

/// What the channel and task clients were told, to check after the crashes.
#[derive(Default)]
struct Promised {
    /// (channel, sub-channel, total) of every acknowledged collect.
    collects: Vec<(ChannelId, String, Amount)>,
    /// Tasks whose approval was acknowledged.
    approved: Vec<String>,
    /// Every task an acceptance was sent for, acknowledged or not.
    attempted: Vec<String>,
    /// Answers of 500 or worse (other than 503): a bug behind them.
    server_errors: u64,
}

/// Which load a client sends.
#[derive(Clone, Copy)]
enum Load {
    Transfers,
    Vouchers,
    Tasks,
}

fn load_of(index: usize) -> Load {
    match index % 4 {
        0 | 1 => Load::Transfers,
        2 => Load::Vouchers,
        _ => Load::Tasks,
    }
}

/// Records a 5xx and says whether the client should stop (any error ends
/// its round: the node is gone, or busy with recovery).
fn failed(promised: &Mutex<Promised>, error: &ClientError) {
    if support::is_server_error(error) {
        promised.lock().unwrap().server_errors += 1;
    }
}

/// Channel client `index`: vouchers with rising totals on its own
/// sub-channel, each collected by the payee at once.
async fn voucher_load(
    client: Client,
    payer: SigningKey,
    payee: SigningKey,
    network: [u8; 32],
    next: Arc<AtomicU64>,
    promised: Arc<Mutex<Promised>>,
) -> u64 {
    let channel = ChannelId::derive(&did(&payer), &did(&payee), "kill-channel");
    let mut sent = 0;
    loop {
        let nonce = next.fetch_add(1, Ordering::Relaxed) + 1;
        let total = Amount::from_atomic(u128::from(nonce) * 1_000);
        let voucher = kit::voucher(&payer, &network, channel, did(&payee), "kill", nonce, total);
        sent += 1;
        match client
            .submit(&payee, &kit::collect_channel(channel, vec![voucher]))
            .await
        {
            Ok(_) => promised
                .lock()
                .unwrap()
                .collects
                .push((channel, "kill".into(), total)),
            Err(error) => {
                failed(&promised, &error);
                return sent;
            }
        }
    }
}

/// Task client: whole escrowed tasks from `buyer` to `provider`.
async fn task_load(
    client: Client,
    buyer: SigningKey,
    provider: SigningKey,
    tag: String,
    promised: Arc<Mutex<Promised>>,
) -> u64 {
    let mut sent = 0;
    for n in 0.. {
        let (rfq, quote, task) = (
            format!("{tag}-r{n}"),
            format!("{tag}-q{n}"),
            format!("{tag}-t{n}"),
        );
        let steps = [
            (
                &buyer,
                kit::request_quotes(kit::rfq(&rfq, did(&buyer), "compute", usd(2), 86_400)),
            ),
            (
                &provider,
                kit::quote(&quote, &rfq, did(&provider), None, usd(1)),
            ),
            (&buyer, kit::accept(&quote, &task)),
            (&provider, kit::deliver(&task, b"done", &[])),
            (&buyer, kit::approve_task(&task, b"done")),
        ];
        for (step, (signer, command)) in steps.into_iter().enumerate() {
            if step == 2 {
                promised.lock().unwrap().attempted.push(task.clone());
            }
            sent += 1;
            if let Err(error) = client.submit(signer, &command).await {
                failed(&promised, &error);
                return sent;
            }
        }
        promised.lock().unwrap().approved.push(task);
    }
    sent
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_commands_survive_kill_9() {
    let rounds: u64 = std::env::var("AGENTRAIL_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let data = tempfile::tempdir().unwrap();
    let principal = key("kill-principal");
    let agents: Vec<SigningKey> = (0..CLIENTS)
        .map(|i| key(&format!("kill-agent-{i}")))
        .collect();
    let funding_per_agent = usd(1_000_000);

    // Frequent snapshots, so that restarts recover through them too.
    let start = |data: &std::path::Path| Node::start_with(data, &["--snapshot-every", "300"]);
    let node = start(data.path());
    support::register_funded_agents(
        &node.client,
        &principal,
        &agents,
        kit::limits(usd(1_000), usd(10_000_000)),
        funding_per_agent,
        "kill",
    )
    .await;
    let deposited = funding_per_agent.checked_mul(CLIENTS as u128).unwrap();
    let log_key = LogKey::parse(&node.client.log_key().await.unwrap()).unwrap();
    let network = network_hash(&node.client.health().await.unwrap().network);
    for (index, agent) in agents.iter().enumerate() {
        if matches!(load_of(index), Load::Vouchers) {
            let payee = did(&agents[(index + 1) % CLIENTS]);
            // Within the agent's one-day grant.
            let expires_at = Timestamp(now().0 + 20 * 3_600);
            let open =
                kit::open_channel_until(did(agent), payee, usd(1_000), "kill-channel", expires_at);
            node.client.submit(agent, &open).await.unwrap();
        }
    }
    let nonces: Vec<Arc<AtomicU64>> = (0..CLIENTS).map(|_| Arc::default()).collect();
    let promised: Arc<Mutex<Promised>> = Arc::default();
    let mut node = Some(node);
    let acknowledged: Arc<Mutex<Vec<Acknowledged>>> = Arc::default();
    // Every checkpoint published before a crash, as a watcher saw it.
    let checkpoints: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut sent_total = 0u64;

    for round in 0..rounds {
        let running = node.take().unwrap_or_else(|| start(data.path()));
        let client = running.client.clone();
        let mut tasks = Vec::new();
        for (index, agent) in agents.iter().enumerate() {
            let (client, agent, acknowledged) =
                (client.clone(), agent.clone(), Arc::clone(&acknowledged));
            let partner = agents[(index + 1) % CLIENTS].clone();
            let payee = did(&partner);
            match load_of(index) {
                Load::Transfers => {}
                Load::Vouchers => {
                    let (network, next, promised) =
                        (network, Arc::clone(&nonces[index]), Arc::clone(&promised));
                    tasks.push(tokio::spawn(voucher_load(
                        client, agent, partner, network, next, promised,
                    )));
                    continue;
                }
                Load::Tasks => {
                    let tag = format!("k{round}-{index}");
                    tasks.push(tokio::spawn(task_load(
                        client,
                        agent,
                        partner,
                        tag,
                        Arc::clone(&promised),
                    )));
                    continue;
                }
            }
            let promised = Arc::clone(&promised);
            tasks.push(tokio::spawn(async move {
                let mut sent = 0u64;
                for n in 0.. {
                    let amount = Amount::from_atomic(1 + (n % 97) as u128);
                    let command = kit::transfer(
                        did(&agent),
                        payee,
                        amount,
                        &format!("r{round}-c{index}-n{n}"),
                    );
                    sent += 1;
                    match client.submit(&agent, &command).await {
                        Ok(response) => acknowledged.lock().unwrap().push(Acknowledged {
                            signer: agent.clone(),
                            command,
                            events: response.events,
                            receipt: response.receipt,
                        }),
                        Err(error) => {
                            failed(&promised, &error);
                            break;
                        }
                    }
                }
                sent
            }));
        }
        let watcher = {
            let (client, checkpoints) = (client.clone(), Arc::clone(&checkpoints));
            tokio::spawn(async move {
                while let Ok(note) = client.checkpoint().await {
                    checkpoints.lock().unwrap().push(note);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        // Kill at a moment that varies from round to round.
        tokio::time::sleep(Duration::from_millis(40 + (round * 37) % 160)).await;
        running.kill();
        for task in tasks {
            sent_total += task.await.unwrap();
        }
        watcher.await.unwrap();
    }

    // Restart and audit.
    let node = start(data.path());
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    assert!(
        acknowledged.len() > 100,
        "too little load to mean anything: {}",
        acknowledged.len()
    );
    // Every acknowledged transfer is there exactly once: repeating it
    // returns the original outcome instead of paying again.
    for ack in &acknowledged {
        let again = node.client.submit(&ack.signer, &ack.command).await.unwrap();
        assert_eq!(
            again.events,
            vec![Event::Duplicate {
                original: ack.events.clone()
            }],
            "an acknowledged transfer is missing"
        );
    }
    // The log after the restarts extends every checkpoint published before
    // a crash, and holds every acknowledged command where its receipt said.
    let newest = Checkpoint::open(&node.client.checkpoint().await.unwrap(), &log_key).unwrap();
    let seen = std::mem::take(&mut *checkpoints.lock().unwrap());
    assert!(
        seen.len() > rounds as usize,
        "the watcher saw too few checkpoints"
    );
    for note in &seen {
        let old = Checkpoint::open(note, &log_key).unwrap();
        let proof = node
            .client
            .consistency(old.size, newest.size)
            .await
            .unwrap();
        let hashes: Vec<merkle::Hash> = proof
            .proof
            .iter()
            .map(|h| STANDARD.decode(h).unwrap().try_into().unwrap())
            .collect();
        merkle::verify_consistency(old.size, newest.size, &old.root, &newest.root, &hashes)
            .unwrap_or_else(|e| panic!("checkpoint of {} entries was rewritten: {e}", old.size));
    }
    for ack in acknowledged.iter().step_by(97) {
        let entry = node.client.log_entry(ack.receipt.index).await.unwrap();
        assert_eq!(
            entry.leaf_hash, ack.receipt.leaf_hash,
            "a receipt points nowhere"
        );
    }
    // Every acknowledged collect and approval survived.
    let promised = std::mem::take(&mut *promised.lock().unwrap());
    let mut lost = 0u64;
    for (channel, sub_channel, total) in &promised.collects {
        let view = node.client.channel(channel).await.unwrap();
        let redeemed = view.sub_channels.get(sub_channel).map(|r| r.amount);
        if redeemed.is_none_or(|amount| amount < *total) {
            lost += 1;
        }
    }
    for task in &promised.approved {
        let status = node.client.task(task).await.unwrap().status;
        if !matches!(status, TaskStatus::Approved { .. }) {
            lost += 1;
        }
    }
    assert_eq!(lost, 0, "acknowledged collects or approvals are missing");
    // Conservation: the agents' money adds up to what was deposited, and
    // what is held is exactly the channels' rest and the escrow of tasks
    // still running (nothing half-applied).
    let mut expected_held = 0u128;
    for (index, agent) in agents.iter().enumerate() {
        if matches!(load_of(index), Load::Vouchers) {
            let payee = did(&agents[(index + 1) % CLIENTS]);
            let view = node
                .client
                .channel(&ChannelId::derive(&did(agent), &payee, "kill-channel"))
                .await
                .unwrap();
            expected_held += view.deposit.atomic() - view.collected.atomic();
        }
    }
    expected_held += support::running_escrow(&node.client, &promised.attempted).await;
    let (total, held) = support::money_of(&node.client, &agents).await;
    let invariant_violations =
        u64::from(total != deposited.atomic()) + u64::from(held != expected_held);
    assert_eq!(total, deposited.atomic(), "money was created or lost");
    assert_eq!(held, expected_held, "held money is not what runs");
    assert_eq!(promised.server_errors, 0, "the node answered 500 or worse");
    let panics = support::panics(data.path());
    assert_eq!(panics, 0, "the node panicked");
    assert!(
        !promised.collects.is_empty() && !promised.approved.is_empty(),
        "the channel and task load did nothing"
    );
    node.kill();
    // The restarts went through snapshots, not only through the journal.
    let store = agentrail_store::Store::open(data.path()).unwrap();
    let recovery = store.recovery().unwrap();
    assert!(
        recovery.snapshot.is_some_and(|s| s.covers >= 300),
        "no snapshot was taken"
    );
    let acknowledged_total =
        acknowledged.len() + promised.collects.len() + promised.approved.len() * 5;
    eprintln!(
        "kill: rounds={rounds} sent={sent_total} acknowledged={acknowledged_total} lost={lost} invariant_violations={invariant_violations} panics={} server_errors={}",
        panics, promised.server_errors
    );
}
