//! Kill -9 under load: concurrent transfers, the node killed at a random
//! moment, restarted on the same directory. Every acknowledged transfer must
//! be present exactly once, nothing half-applied, money conserved, and the
//! log after each restart consistent with every checkpoint seen before.
//!
//! `AGENTRAIL_KILL_ROUNDS=N` runs more rounds (CI runs 10).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentrail_core::grant::Role;
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

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_transfers_survive_kill_9() {
    let rounds: u64 = std::env::var("AGENTRAIL_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let data = tempfile::tempdir().unwrap();
    let principal = key("kill-principal");
    let agents: Vec<SigningKey> = (0..CLIENTS)
        .map(|i| key(&format!("kill-agent-{i}")))
        .collect();
    let funding_per_agent = usd(1_000_000);

    // Frequent snapshots, so that restarts recover through them too.
    let start = |data: &std::path::Path| Node::start_with(data, &["--snapshot-every", "300"]);
    let node = start(data.path());
    node.client
        .submit(&principal, &kit::register_principal(did(&principal)))
        .await
        .unwrap();
    let t = now();
    for agent in &agents {
        let grant = kit::grant(
            &principal,
            did(agent),
            Role::Agent,
            kit::limits(usd(1_000), usd(10_000_000)),
            t,
            Timestamp(t.0 + 86_400),
            "kill",
        );
        node.client
            .submit(&principal, &kit::register_agent(grant))
            .await
            .unwrap();
        node.client
            .faucet(did(agent), funding_per_agent)
            .await
            .unwrap();
    }
    let deposited = funding_per_agent.checked_mul(CLIENTS as u128).unwrap();
    let log_key = LogKey::parse(&node.client.log_key().await.unwrap()).unwrap();
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
            let payee = did(&agents[(index + 1) % CLIENTS]);
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
                        Err(_) => break,
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
    // Conservation: the agents' money adds up to what was deposited, and
    // nothing is held (no half-applied transfer).
    let mut total = 0u128;
    for agent in &agents {
        let balance = node.client.balance(&did(agent)).await.unwrap();
        assert_eq!(balance.held, Amount::ZERO);
        total += balance.available.atomic();
    }
    assert_eq!(total, deposited.atomic(), "money was created or lost");
    node.kill();
    // The restarts went through snapshots, not only through the journal.
    let store = agentrail_store::Store::open(data.path()).unwrap();
    let recovery = store.recovery().unwrap();
    assert!(
        recovery.snapshot.is_some_and(|s| s.covers >= 300),
        "no snapshot was taken"
    );
    eprintln!(
        "{rounds} kills: {} transfers sent, {} acknowledged, all present once",
        sent_total,
        acknowledged.len()
    );
}
