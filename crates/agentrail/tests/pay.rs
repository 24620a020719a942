//! The payee library against a real node: vouchers checked locally, kept
//! across a restart, collected by threshold.

mod support;

use std::time::Duration;

use agentrail_core::channel::ChannelId;
use agentrail_core::{Amount, Event};
use agentrail_pay::{Payee, PayeeOptions, PaymentError};
use agentrail_sim::kit;
use support::{Node, did, key, usd};

fn cents(n: u128) -> Amount {
    Amount::from_atomic(n * 10_000)
}

/// A buyer with 50 and a seller, and a channel of 10 between them.
async fn world(
    node: &Node,
    tag: &str,
) -> (
    ed25519_dalek::SigningKey,
    ed25519_dalek::SigningKey,
    ChannelId,
) {
    let client = &node.client;
    let (buyer, seller) = (key(&format!("{tag}-buyer")), key(&format!("{tag}-seller")));
    for k in [&buyer, &seller] {
        client
            .submit(k, &kit::register_principal(did(k)))
            .await
            .unwrap();
    }
    client.faucet(did(&buyer), usd(50)).await.unwrap();
    client
        .submit(
            &buyer,
            &kit::open_channel(did(&buyer), did(&seller), usd(10), "pay"),
        )
        .await
        .unwrap();
    let id = ChannelId::derive(&did(&buyer), &did(&seller), "pay");
    (buyer, seller, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn vouchers_are_checked_locally_and_each_bad_one_has_its_reason() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let (buyer, seller, id) = world(&node, "local").await;
    let store = tempfile::tempdir().unwrap();
    let payee = Payee::open(
        store.path(),
        node.client.clone(),
        seller.clone(),
        PayeeOptions::default(),
    )
    .await
    .unwrap();
    let network = *payee.network();
    let voucher = |sub: &str, nonce: u64, total: Amount| {
        kit::voucher(&buyer, &network, id, did(&seller), sub, nonce, total)
    };

    let first = payee.accept(&voucher("a", 1, cents(3))).await.unwrap();
    assert_eq!((first.delta, first.total), (cents(3), cents(3)));
    let second = payee.accept(&voucher("a", 2, cents(10))).await.unwrap();
    assert_eq!(second.delta, cents(7));
    // Another stream has its own counters.
    let other = payee.accept(&voucher("b", 1, cents(5))).await.unwrap();
    assert_eq!(other.channel_total, cents(15));
    // A retry of the best voucher is accepted and pays nothing.
    let retry = payee.accept(&voucher("a", 2, cents(10))).await.unwrap();
    assert_eq!(retry.delta, Amount::ZERO);

    let reason = |result: Result<_, PaymentError>| result.unwrap_err().code();
    assert_eq!(
        reason(payee.accept(&voucher("a", 1, cents(3))).await),
        "voucher_stale"
    );
    assert_eq!(
        reason(payee.accept(&voucher("a", 3, cents(9))).await),
        "voucher_stale"
    );
    let forged = kit::voucher(&seller, &network, id, did(&seller), "a", 3, cents(11));
    assert_eq!(
        reason(payee.accept(&forged).await),
        "voucher_signature_invalid"
    );
    assert_eq!(
        reason(payee.accept(&voucher("c", 1, usd(10))).await),
        "channel_exhausted"
    );
    let elsewhere = kit::voucher(&buyer, &network, id, did(&buyer), "a", 3, cents(11));
    assert_eq!(
        reason(payee.accept(&elsewhere).await),
        "voucher_wrong_payee"
    );
    let unknown = ChannelId::derive(&did(&buyer), &did(&seller), "nothing");
    let nowhere = kit::voucher(&buyer, &network, unknown, did(&seller), "a", 1, cents(1));
    assert_eq!(reason(payee.accept(&nowhere).await), "channel_not_found");

    // Collecting redeems the best voucher of each stream, once.
    assert_eq!(payee.uncollected(&id), cents(15));
    assert_eq!(payee.collect(&id).await.unwrap(), Some(cents(15)));
    assert_eq!(payee.collect(&id).await.unwrap(), None);
    assert_eq!(payee.uncollected(&id), Amount::ZERO);
    let balance = node.client.balance(&did(&seller)).await.unwrap();
    assert_eq!(balance.available, cents(15));
    // The close returns the rest; the channel then takes nothing.
    payee.close(&id).await.unwrap();
    assert_eq!(
        reason(payee.accept(&voucher("a", 9, cents(20))).await),
        "channel_closed"
    );
    assert_eq!(
        node.client.balance(&did(&buyer)).await.unwrap().available,
        usd(50).checked_sub(cents(15)).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_payee_keeps_its_vouchers_and_collects_them() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let (buyer, seller, id) = world(&node, "restart").await;
    let store = tempfile::tempdir().unwrap();
    // Every accepted voucher is durable before it is answered.
    let options = PayeeOptions {
        max_unsynced: Amount::ZERO,
        ..PayeeOptions::default()
    };
    {
        let payee = Payee::open(store.path(), node.client.clone(), seller.clone(), options)
            .await
            .unwrap();
        let network = *payee.network();
        for n in 1..=200u64 {
            let sub = if n % 2 == 0 { "even" } else { "odd" };
            let voucher = kit::voucher(
                &buyer,
                &network,
                id,
                did(&seller),
                sub,
                n,
                cents(u128::from(n)),
            );
            payee.accept(&voucher).await.unwrap();
        }
        payee.shutdown().await.unwrap();
    }
    // A new process on the same store.
    let payee = Payee::open(store.path(), node.client.clone(), seller.clone(), options)
        .await
        .unwrap();
    assert_eq!(payee.uncollected(&id), cents(200 + 199));
    let collected = payee.collect(&id).await.unwrap();
    assert_eq!(collected, Some(cents(399)));
    // An old voucher replayed after the restart is still stale.
    let network = *payee.network();
    let old = kit::voucher(&buyer, &network, id, did(&seller), "even", 100, cents(100));
    assert_eq!(
        payee.accept(&old).await.unwrap_err().code(),
        "voucher_stale"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_collector_collects_above_the_threshold() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let (buyer, seller, id) = world(&node, "auto").await;
    let store = tempfile::tempdir().unwrap();
    let options = PayeeOptions {
        collect_threshold: cents(50),
        check_every: Duration::from_millis(50),
        ..PayeeOptions::default()
    };
    let payee = Payee::open(store.path(), node.client.clone(), seller.clone(), options)
        .await
        .unwrap();
    let network = *payee.network();
    let collector = payee.spawn_collector();
    for n in 1..=60u64 {
        let voucher = kit::voucher(
            &buyer,
            &network,
            id,
            did(&seller),
            "s",
            n,
            cents(u128::from(n)),
        );
        payee.accept(&voucher).await.unwrap();
    }
    let mut collected = Amount::ZERO;
    for _ in 0..100 {
        collected = node.client.channel(&id).await.unwrap().collected;
        if collected >= cents(50) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    collector.abort();
    assert!(collected >= cents(50), "collected {collected:?}");
    let history = node.client.history(&did(&seller), None, 10).await.unwrap();
    assert!(history.items.iter().any(|item| {
        item.events
            .iter()
            .any(|e| matches!(e, Event::ChannelCollected { .. }))
    }));
}
