//! The provider killed (SIGKILL) between paid calls: restarted on the same
//! voucher store, it loses at most its `--max-unsynced` bound per kill and
//! collects the rest.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use agentrail_client::Client;
use agentrail_core::Amount;
use agentrail_core::channel::ChannelId;
use agentrail_pay::payer::{Method, Payer, PayerOptions};
use agentrail_pay::{Payee, PayeeOptions};
use agentrail_sim::kit;

/// Starts the provider binary; its URL.
fn provider(node: &str, dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_provider"))
        .args([
            "--node",
            node,
            "--listen",
            "127.0.0.1:0",
            "--max-unsynced",
            "0.01",
        ])
        .arg("--key")
        .arg(dir.join("provider.key"))
        .arg("--store")
        .arg(dir.join("vouchers"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the provider starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the provider prints its address");
    let url = line.trim().rsplit(' ').next().expect("a URL").to_owned();
    (child, url)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_provider_loses_at_most_its_bound_and_collects_the_rest() {
    let data = tempfile::tempdir().unwrap();
    let operator = kit::key("crash-operator");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let config = agentrail_node::NodeConfig {
        data_dir: data.path().to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        dev: false,
        operator: Some(kit::did(&operator)),
        snapshot_every: agentrail_node::ledger::SNAPSHOT_EVERY,
        limits: agentrail_node::limits::ServeLimits::default(),
        journal_cache_bytes: agentrail_node::JOURNAL_CACHE_BYTES,
        time_scale: None,
        cors_origins: Vec::new(),
        tls: None,
        chain: None,
        replication: None,
    };
    tokio::spawn(agentrail_node::run(
        config,
        move |address| {
            let _ = ready_tx.send(address);
        },
        std::future::pending(),
    ));
    let node_url = format!("http://{}", ready_rx.await.unwrap());
    let node = Client::new(&node_url);
    let buyer = kit::key("crash-buyer");
    node.submit(&buyer, &kit::register_principal(kit::did(&buyer)))
        .await
        .unwrap();
    node.submit(
        &operator,
        &kit::deposit(kit::did(&buyer), kit::usd(50), "fund"),
    )
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (mut first, url) = provider(&node_url, dir.path());
    let payer = Arc::new(
        Payer::new(
            node.clone(),
            buyer.clone(),
            kit::did(&buyer),
            PayerOptions::default(),
        )
        .await
        .unwrap(),
    );
    for _ in 0..300 {
        let paid = payer
            .fetch(Method::POST, &format!("{url}/stats"), b"a b c".to_vec())
            .await
            .unwrap();
        assert!(paid.status.is_success());
    }
    let acknowledged = payer.spent();
    first.kill().unwrap();
    first.wait().unwrap();

    // The restarted provider takes the next payments where the stream was.
    let (mut second, url) = provider(&node_url, dir.path());
    for _ in 0..10 {
        let paid = payer
            .fetch(Method::POST, &format!("{url}/stats"), b"d e f".to_vec())
            .await
            .unwrap();
        assert!(paid.status.is_success());
    }
    let total = payer.spent();
    second.kill().unwrap();
    second.wait().unwrap();

    // What the store kept: everything but at most the bound, both times.
    let key = agentrail_wire::keyfile::decode(
        &std::fs::read_to_string(dir.path().join("provider.key")).unwrap(),
    )
    .unwrap();
    let seller = agentrail_core::Did::from_verifying_key(&key.verifying_key());
    let payee = Payee::open(
        &dir.path().join("vouchers"),
        node.clone(),
        key,
        PayeeOptions::default(),
    )
    .await
    .unwrap();
    let history = node.history(&kit::did(&buyer), None, 10).await.unwrap();
    let channel: ChannelId = history
        .items
        .iter()
        .flat_map(|item| &item.events)
        .find_map(|event| match event {
            agentrail_core::Event::ChannelOpened { channel_id, .. } => Some(*channel_id),
            _ => None,
        })
        .unwrap();
    let kept = payee.uncollected(&channel);
    // A lost voucher is made good by the payer's next one (its total is
    // cumulative); a lost charge is not (its credit served later calls for
    // free): each kill may cost up to the bound.
    let bound = Amount::from_atomic(10_000);
    assert!(kept <= total, "kept {kept:?} of {total:?}");
    assert!(
        kept.checked_add(bound.checked_mul(2).unwrap()).unwrap() >= total,
        "lost more than the bound per kill: kept {kept:?} of {total:?} (first run {acknowledged:?})"
    );
    assert_eq!(payee.collect(&channel).await.unwrap(), Some(kept));
    assert_eq!(node.balance(&seller).await.unwrap().available, kept);
}
