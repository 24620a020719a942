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

/// A buyer with 50 and a seller, both registered principals.
async fn funded_pair(
    client: &agentrail_client::Client,
    tag: &str,
) -> (ed25519_dalek::SigningKey, ed25519_dalek::SigningKey) {
    let (buyer, seller) = (key(&format!("{tag}-buyer")), key(&format!("{tag}-seller")));
    for k in [&buyer, &seller] {
        client
            .submit(k, &kit::register_principal(did(k)))
            .await
            .unwrap();
    }
    client.faucet(did(&buyer), usd(50)).await.unwrap();
    (buyer, seller)
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
    let (buyer, seller) = funded_pair(client, tag).await;
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

/// Hash chains: a commitment is checked once, each link with one hash; a
/// replayed, skipped, forged or foreign link changes nothing; the payee
/// earns only the links revealed, and collects exactly that.
#[tokio::test(flavor = "multi_thread")]
async fn a_hash_chain_pays_link_by_link_and_refuses_every_link_it_did_not_commit_to() {
    use agentrail_core::channel::VoucherTerms;
    use agentrail_core::hashchain::{ChainCommitment, ChainTerms, HashChain, Link};

    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let (buyer, seller, id) = world(&node, "chain").await;
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
    let unit = cents(1);
    let terms = |sub: &str, nonce: u64, total: Amount| VoucherTerms {
        channel_id: id,
        epoch: 0,
        sub_channel_id: sub.to_owned(),
        accumulated_amount: total,
        nonce,
        payee_id: did(&seller),
    };
    let commit = |sub: &str, nonce: u64, chain: &HashChain, signer: &ed25519_dalek::SigningKey| {
        let voucher_terms = terms(sub, nonce, cents(u128::from(chain.length())));
        let commitment = ChainTerms {
            tip: chain.tip(),
            unit,
            length: chain.length(),
        }
        .sign(&voucher_terms, signer, &network);
        (voucher_terms.sign(&buyer, &network), commitment)
    };
    fn reason<T: std::fmt::Debug>(result: Result<T, PaymentError>) -> &'static str {
        result.unwrap_err().code()
    }

    let chain = HashChain::from_seed([5; 32], 4);
    let (voucher, commitment) = commit("a", 1, &chain, &buyer);
    // A commitment signed by another key than the channel's voucher key.
    let (_, forged) = commit("a", 1, &chain, &seller);
    assert_eq!(
        reason(payee.accept_commitment(&voucher, &forged).await),
        "chain_signature_invalid"
    );
    // A chain its voucher's total does not cover.
    let uncovered = ChainCommitment {
        length: 5,
        ..commitment.clone()
    };
    assert_eq!(
        reason(payee.accept_commitment(&voucher, &uncovered).await),
        "chain_commitment_invalid"
    );
    payee
        .accept_commitment(&voucher, &commitment)
        .await
        .unwrap();
    assert_eq!(payee.uncollected(&id), Amount::ZERO, "credit, not payment");

    let link = |k: u32| chain.link(k).unwrap();
    let reveal =
        |sub: &str, k: u32, link: Link, price: Amount| payee.reveal(id, sub, k, link, price);
    // Skipping ahead, a link of another chain, another price, another
    // sub-channel: refused, and nothing moves.
    assert_eq!(reason(reveal("a", 2, link(2), unit)), "chain_link_invalid");
    let other = HashChain::from_seed([6; 32], 4);
    assert_eq!(
        reason(reveal("a", 1, other.link(1).unwrap(), unit)),
        "chain_link_invalid"
    );
    assert_eq!(
        reason(reveal("a", 1, link(1), cents(2))),
        "chain_price_mismatch"
    );
    assert_eq!(reason(reveal("b", 1, link(1), unit)), "chain_unknown");
    // The tip itself is no payment: it was never secret.
    assert_eq!(
        reason(reveal("a", 1, chain.tip(), unit)),
        "chain_link_invalid"
    );

    for k in 1..=3 {
        reveal("a", k, link(k), unit)
            .unwrap()
            .charge(unit)
            .await
            .unwrap();
    }
    // A replayed link is refused.
    assert_eq!(reason(reveal("a", 3, link(3), unit)), "chain_link_invalid");
    // The same commitment again (a retry, or a replay of the captured
    // request) does not rewind the chain: its links stay spent.
    payee
        .accept_commitment(&voucher, &commitment)
        .await
        .unwrap();
    assert_eq!(reason(reveal("a", 1, link(1), unit)), "chain_link_invalid");
    // A call that failed is charged nothing; its link is spent.
    reveal("a", 4, link(4), unit)
        .unwrap()
        .charge(Amount::ZERO)
        .await
        .unwrap();
    assert_eq!(
        reason(reveal("a", 5, link(4).parent(), unit)),
        "chain_exhausted"
    );
    assert_eq!(payee.uncollected(&id), cents(3));

    // A new commitment on the sub-channel, over a higher voucher.
    let next = HashChain::from_seed([7; 32], 2);
    let voucher_terms = terms("a", 2, cents(6));
    let commitment = ChainTerms {
        tip: next.tip(),
        unit,
        length: 2,
    }
    .sign(&voucher_terms, &buyer, &network);
    payee
        .accept_commitment(&voucher_terms.sign(&buyer, &network), &commitment)
        .await
        .unwrap();
    reveal("a", 1, next.link(1).unwrap(), unit)
        .unwrap()
        .charge(unit)
        .await
        .unwrap();
    assert_eq!(payee.uncollected(&id), cents(4));
    assert_eq!(payee.close(&id).await.unwrap(), Some(cents(4)));
    assert_eq!(
        node.client.balance(&did(&buyer)).await.unwrap().available,
        usd(50).checked_sub(cents(4)).unwrap(),
        "the links not revealed returned to the payer"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_takes_no_more_sub_channels_than_the_ledger_redeems() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let (buyer, seller, id) = world(&node, "subs").await;
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
    let voucher = |sub: &str, nonce: u64, total: u128| {
        kit::voucher(
            &buyer,
            &network,
            id,
            did(&seller),
            sub,
            nonce,
            Amount::from_atomic(total),
        )
    };
    let max = agentrail_core::constants::SUB_CHANNELS_PER_CHANNEL_MAX;
    let all: Vec<_> = (0..max).map(|n| voucher(&format!("s{n}"), 1, 1)).collect();
    for result in payee.accept_batch(&all).await {
        result.unwrap();
    }
    let one_more = payee.accept(&voucher("s-extra", 1, 1)).await;
    assert_eq!(one_more.unwrap_err().code(), "voucher_malformed");
    // A known sub-channel still takes its next voucher, and every one of
    // them can be collected.
    assert_eq!(
        payee.accept(&voucher("s0", 2, 2)).await.unwrap().delta,
        Amount::from_atomic(1)
    );
    let mut collected = Amount::ZERO;
    while let Some(amount) = payee.collect(&id).await.unwrap() {
        collected = collected.checked_add(amount).unwrap();
    }
    assert_eq!(collected, Amount::from_atomic(max as u128 + 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_names_its_forgery_and_keeps_the_rest() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let (buyer, seller, id) = world(&node, "batch").await;
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
    let mut vouchers: Vec<_> = (1..=20u64)
        .map(|n| {
            kit::voucher(
                &buyer,
                &network,
                id,
                did(&seller),
                &format!("s{n}"),
                1,
                cents(1),
            )
        })
        .collect();
    vouchers[7] = kit::voucher(&seller, &network, id, did(&seller), "s8", 1, cents(1));
    let answers = payee.accept_batch(&vouchers).await;
    for (n, answer) in answers.iter().enumerate() {
        match answer {
            Ok(accepted) => assert!(n != 7 && accepted.delta == cents(1)),
            Err(error) => assert_eq!((n, error.code()), (7, "voucher_signature_invalid")),
        }
    }
    assert_eq!(payee.uncollected(&id), cents(19));
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

/// Credit is earned only as it is charged, and what the ledger redeemed
/// counts as charged even when the payee's store lost the charge: after a
/// restart on an older copy of its store, the calls the ledger already paid
/// are not served again, and nothing is collected twice.
#[tokio::test(flavor = "multi_thread")]
async fn credit_is_earned_as_charged_and_what_the_ledger_redeemed_stays_charged() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let (buyer, seller, id) = world(&node, "credit").await;
    let store = tempfile::tempdir().unwrap();
    let open = |path: std::path::PathBuf| {
        let (client, seller) = (node.client.clone(), seller.clone());
        async move {
            Payee::open(&path, client, seller, PayeeOptions::default())
                .await
                .unwrap()
        }
    };
    let payee = open(store.path().to_owned()).await;
    let network = *payee.network();
    let ahead = kit::voucher(&buyer, &network, id, did(&seller), "a", 1, cents(10));
    assert_eq!(payee.accept_credit(&ahead).await.unwrap().delta, cents(10));
    assert_eq!(payee.uncollected(&id), Amount::ZERO, "credit is not earned");
    assert_eq!(payee.collect(&id).await.unwrap(), None);
    // Two calls reserve at once; one fails (nothing charged), one costs 3.
    let first = payee.reserve(id, "a", cents(6)).unwrap();
    let refused = payee.reserve(id, "a", cents(6)).unwrap_err();
    assert_eq!(refused.code(), "payment_insufficient");
    let second = payee.reserve(id, "a", cents(4)).unwrap();
    drop(second);
    assert_eq!(payee.credit(&id, "a"), cents(4));
    assert_eq!(first.charge(cents(3)).await.unwrap(), cents(7));
    payee.shutdown().await.unwrap();

    // A copy of the store as it was before the next charge.
    let older = tempfile::tempdir().unwrap();
    std::fs::copy(
        store.path().join("vouchers.redb"),
        older.path().join("vouchers.redb"),
    )
    .unwrap();
    let payee = open(store.path().to_owned()).await;
    let charge = payee.reserve(id, "a", cents(5)).unwrap();
    assert_eq!(charge.charge(cents(5)).await.unwrap(), cents(2));
    assert_eq!(payee.collect(&id).await.unwrap(), Some(cents(8)));
    let view = node.client.channel(&id).await.unwrap();
    assert_eq!(
        (view.sub_channels["a"].nonce, view.sub_channels["a"].amount),
        (1, cents(8))
    );
    payee.shutdown().await.unwrap();

    // Restarted on the older copy: the 5 charged since is what the ledger
    // redeemed, so it stays charged, and nothing is left to collect.
    let payee = open(older.path().to_owned()).await;
    assert_eq!(payee.credit(&id, "a"), cents(2));
    assert_eq!(payee.uncollected(&id), Amount::ZERO);
    assert_eq!(payee.collect(&id).await.unwrap(), None);
    // The rest of the credit is still the payer's: the close returns it.
    assert_eq!(payee.close(&id).await.unwrap(), Some(Amount::ZERO));
    assert_eq!(
        node.client.balance(&did(&seller)).await.unwrap().available,
        cents(8)
    );
}

mod http402 {
    use super::*;
    use agentrail_pay::payer::{PayError, Payer, PayerOptions};
    use agentrail_pay::paywall::{Paywall, Units};
    use agentrail_pay::x402::{self, PaymentRequired, SettlementResponse};
    use axum::Router;
    use axum::response::IntoResponse;
    use axum::routing::post;
    use reqwest::Method;
    use std::sync::Arc;

    async fn echo(body: axum::body::Bytes) -> impl IntoResponse {
        format!("{} bytes", body.len())
    }

    async fn metered(body: axum::body::Bytes) -> impl IntoResponse {
        let mut response = format!("{} bytes", body.len()).into_response();
        // One unit per started kilobyte.
        response
            .extensions_mut()
            .insert(Units(body.len().div_ceil(1024) as u64));
        response
    }

    async fn broken() -> impl IntoResponse {
        axum::http::StatusCode::INTERNAL_SERVER_ERROR
    }

    /// A provider on a loopback port; its address.
    async fn provider(payee: Payee, network: &str) -> String {
        let app = Router::new()
            .route("/echo", post(echo))
            .route("/metered", post(metered))
            .route("/broken", post(broken))
            .route("/free", post(echo))
            .layer(
                Paywall::new(payee, network)
                    .per_call("/echo", cents(1))
                    .per_call("/broken", cents(1))
                    .per_unit(
                        "/metered",
                        Amount::from_atomic(1_000),
                        "kilobyte",
                        cents(10),
                    )
                    .layer(),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{address}")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn paid_calls_per_call_and_per_unit_concurrently_through_one_channel() {
        let data = tempfile::tempdir().unwrap();
        let node = Node::start(data.path());
        let client = node.client.clone();
        let (buyer, seller) = super::funded_pair(&client, "x402").await;
        let network = client.health().await.unwrap().network;
        let store = tempfile::tempdir().unwrap();
        let payee = Payee::open(
            store.path(),
            client.clone(),
            seller.clone(),
            PayeeOptions::default(),
        )
        .await
        .unwrap();
        let base = provider(payee.clone(), &network).await;

        // Unpaid: a 402 whose header names the price.
        let http = reqwest::Client::new();
        let unpaid = http
            .post(format!("{base}/echo"))
            .body("hi")
            .send()
            .await
            .unwrap();
        assert_eq!(unpaid.status(), 402);
        let required: PaymentRequired =
            x402::decode_header(unpaid.headers()[x402::PAYMENT_REQUIRED].to_str().unwrap())
                .unwrap();
        assert_eq!(required.x402_version, 2);
        assert_eq!(required.accepts[0].scheme, "channel");
        assert_eq!(required.accepts[0].amount, cents(1));
        assert_eq!(required.accepts[0].pay_to, did(&seller).to_string());
        // A free route stays free.
        let free = http
            .post(format!("{base}/free"))
            .body("hi")
            .send()
            .await
            .unwrap();
        assert_eq!(free.status(), 200);
        // A malformed payment header is a 400.
        let bad = http
            .post(format!("{base}/echo"))
            .header(x402::PAYMENT_SIGNATURE, "not base64!")
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);

        let payer = Arc::new(
            Payer::new(
                client.clone(),
                buyer.clone(),
                did(&buyer),
                PayerOptions::default(),
            )
            .await
            .unwrap(),
        );
        // 40 calls, 8 at a time: each concurrent call uses its own stream.
        let mut tasks = Vec::new();
        for n in 0..40 {
            let (payer, url) = (Arc::clone(&payer), format!("{base}/echo"));
            tasks.push(tokio::spawn(async move {
                payer
                    .fetch(Method::POST, &url, vec![b'x'; n])
                    .await
                    .unwrap()
            }));
            if tasks.len() == 8 {
                for task in tasks.drain(..) {
                    let paid = task.await.unwrap();
                    assert_eq!(paid.status, 200);
                    assert_eq!(paid.paid, cents(1));
                    assert!(paid.settlement.unwrap().success);
                }
            }
        }
        assert_eq!(payer.spent(), cents(40));
        assert_eq!(
            payee.uncollected(&channel_of(&client, &buyer, &seller).await),
            cents(40)
        );

        // Metered: the first call prepays the most a call may cost; each
        // later voucher tops the credit back up by what the call used.
        let mut costs = Amount::ZERO;
        for kilobytes in [1usize, 3, 2] {
            let paid = payer
                .fetch(
                    Method::POST,
                    &format!("{base}/metered"),
                    vec![0; kilobytes * 1024],
                )
                .await
                .unwrap();
            assert_eq!(paid.status, 200);
            let cost = Amount::from_atomic(1_000 * kilobytes as u128);
            costs = costs.checked_add(cost).unwrap();
            let settlement: SettlementResponse = paid.settlement.unwrap();
            let state = settlement.channel.unwrap();
            assert_eq!(
                state.proposal.accumulated_amount,
                state.accumulated_amount.checked_add(cost).unwrap(),
                "the proposal restores the credit"
            );
        }
        // What the payer paid for metered calls: one prepaid maximum plus
        // the costs of all but the last call.
        let metered_paid = payer.spent().checked_sub(cents(40)).unwrap();
        assert_eq!(
            metered_paid,
            cents(10)
                .checked_add(Amount::from_atomic(1_000 * 4))
                .unwrap()
        );

        // The payee collects what the calls cost, not the credit signed
        // ahead for the next metered call.
        let id = channel_of(&client, &buyer, &seller).await;
        let charged = cents(40).checked_add(costs).unwrap();
        assert_eq!(payee.uncollected(&id), charged);
        assert_eq!(payee.collect(&id).await.unwrap(), Some(charged));
        assert_eq!(
            client.balance(&did(&seller)).await.unwrap().available,
            charged
        );
        // The payer closes its channels when asked.
        assert_eq!(payer.close_all().await.unwrap(), 1);
    }

    /// Ten calls at a cent and one metered kilobyte: the payee collects
    /// 10.1 cents, though the payer signed a metered call's maximum ahead;
    /// a call the handler failed costs nothing; credit and charges survive
    /// the payee's restart; the close returns the rest to the payer.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_payee_collects_what_the_calls_cost_not_the_credit_signed_ahead() {
        let data = tempfile::tempdir().unwrap();
        let node = Node::start(data.path());
        let client = node.client.clone();
        let (buyer, seller) = super::funded_pair(&client, "charged").await;
        let network = client.health().await.unwrap().network;
        let store = tempfile::tempdir().unwrap();
        let open = || {
            Payee::open(
                store.path(),
                client.clone(),
                seller.clone(),
                PayeeOptions::default(),
            )
        };
        let payee = open().await.unwrap();
        let base = provider(payee.clone(), &network).await;
        let payer = Payer::new(
            client.clone(),
            buyer.clone(),
            did(&buyer),
            PayerOptions::default(),
        )
        .await
        .unwrap();
        for _ in 0..10 {
            let paid = payer
                .fetch(Method::POST, &format!("{base}/echo"), b"hi".to_vec())
                .await
                .unwrap();
            assert_eq!(paid.status, 200);
        }
        let paid = payer
            .fetch(Method::POST, &format!("{base}/metered"), vec![0; 1024])
            .await
            .unwrap();
        assert_eq!(paid.status, 200);
        let failed = payer
            .fetch(Method::POST, &format!("{base}/broken"), Vec::new())
            .await
            .unwrap();
        assert_eq!(failed.status, 500);
        let charged = cents(10).checked_add(Amount::from_atomic(1_000)).unwrap();
        let id = channel_of(&client, &buyer, &seller).await;
        assert_eq!(payee.uncollected(&id), charged);
        assert!(payer.spent() > charged, "the payer signed credit ahead");

        // Restarted on its store, the payee remembers both.
        payee.shutdown().await.unwrap();
        let payee = open().await.unwrap();
        assert_eq!(payee.uncollected(&id), charged);
        assert_eq!(payee.close(&id).await.unwrap(), Some(charged));
        assert_eq!(
            client.balance(&did(&seller)).await.unwrap().available,
            charged
        );
        let buyer_balance = client.balance(&did(&buyer)).await.unwrap();
        assert_eq!(buyer_balance.held, Amount::ZERO);
        assert_eq!(
            buyer_balance.available,
            usd(50).checked_sub(charged).unwrap(),
            "the credit left returned to the payer"
        );
        let view = client.channel(&id).await.unwrap();
        let redeemed: Vec<Amount> = view.sub_channels.values().map(|r| r.amount).collect();
        assert_eq!(
            redeemed
                .iter()
                .try_fold(Amount::ZERO, |a, b| a.checked_add(*b)),
            Some(charged)
        );
    }

    /// The payer commits to a hash chain where the paywall offers one, pays
    /// each call with its next link, and commits again when the chain is
    /// used up or the payee forgot it (a restart); a paywall offering no
    /// chains is paid with vouchers.
    #[tokio::test(flavor = "multi_thread")]
    async fn calls_pay_with_hash_chain_links_where_offered_and_vouchers_elsewhere() {
        let data = tempfile::tempdir().unwrap();
        let node = Node::start(data.path());
        let client = node.client.clone();
        let (buyer, seller) = super::funded_pair(&client, "links").await;
        let network = client.health().await.unwrap().network;
        let store = tempfile::tempdir().unwrap();
        let open = || {
            Payee::open(
                store.path(),
                client.clone(),
                seller.clone(),
                PayeeOptions::default(),
            )
        };
        let payee = open().await.unwrap();
        let base = provider(payee.clone(), &network).await;
        let payer = Payer::new(
            client.clone(),
            buyer.clone(),
            did(&buyer),
            PayerOptions {
                chain_length: 4,
                ..PayerOptions::default()
            },
        )
        .await
        .unwrap();
        let mut links = 0;
        for _ in 0..10 {
            let paid = payer
                .fetch(Method::POST, &format!("{base}/echo"), b"hi".to_vec())
                .await
                .unwrap();
            assert_eq!((paid.status.as_u16(), paid.paid), (200, cents(1)));
            let settlement = paid.settlement.unwrap();
            links += usize::from(settlement.transaction.contains("/link/"));
        }
        // Calls 1, 5 and 9 committed (and paid with link 1); the others
        // paid with links alone.
        assert_eq!(links, 7);
        assert_eq!(payer.spent(), cents(10));
        let id = channel_of(&client, &buyer, &seller).await;
        assert_eq!(payee.uncollected(&id), cents(10));

        // Restarted, the payee forgot the chain: the payer commits anew.
        payee.shutdown().await.unwrap();
        let payee = open().await.unwrap();
        let base = provider(payee.clone(), &network).await;
        let paid = payer
            .fetch(Method::POST, &format!("{base}/echo"), b"hi".to_vec())
            .await
            .unwrap();
        assert_eq!((paid.status.as_u16(), paid.paid), (200, cents(1)));
        assert_eq!(payee.uncollected(&id), cents(11));

        // A paywall that offers no chains is paid with vouchers.
        let vouchers_only = {
            let app = Router::new().route("/echo", post(echo)).layer(
                Paywall::new(payee.clone(), &network)
                    .per_call("/echo", cents(1))
                    .hash_chains(0)
                    .layer(),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            format!("http://{address}")
        };
        let paid = payer
            .fetch(
                Method::POST,
                &format!("{vouchers_only}/echo"),
                b"hi".to_vec(),
            )
            .await
            .unwrap();
        assert_eq!(paid.status, 200);
        assert!(!paid.settlement.unwrap().transaction.contains("/link/"));
        assert_eq!(payee.close(&id).await.unwrap(), Some(cents(12)));
        assert_eq!(
            client.balance(&did(&buyer)).await.unwrap().available,
            usd(50).checked_sub(cents(12)).unwrap(),
            "only the calls were paid; the credit signed ahead returned"
        );
    }

    /// A web page may pay: the preflight allows the payment headers, and
    /// the 402 exposes its own to the page.
    #[tokio::test(flavor = "multi_thread")]
    async fn pages_may_pay_the_paywall_answers_cors_for_x402() {
        let data = tempfile::tempdir().unwrap();
        let node = Node::start(data.path());
        let client = node.client.clone();
        let (_, seller) = super::funded_pair(&client, "cors").await;
        let network = client.health().await.unwrap().network;
        let store = tempfile::tempdir().unwrap();
        let payee = Payee::open(
            store.path(),
            client.clone(),
            seller,
            PayeeOptions::default(),
        )
        .await
        .unwrap();
        let base = provider(payee, &network).await;
        let http = reqwest::Client::new();
        let preflight = http
            .request(Method::OPTIONS, format!("{base}/echo"))
            .header("origin", "https://shop.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "payment-signature,content-type",
            )
            .send()
            .await
            .unwrap();
        assert!(preflight.status().is_success(), "{}", preflight.status());
        let allowed = preflight.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(allowed.contains("payment-signature"), "{allowed}");
        assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
        let unpaid = http
            .post(format!("{base}/echo"))
            .header("origin", "https://shop.example")
            .body("hi")
            .send()
            .await
            .unwrap();
        assert_eq!(unpaid.status(), 402);
        let exposed = unpaid.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            exposed.contains("payment-required") && exposed.contains("payment-response"),
            "{exposed}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_price_above_the_mandate_is_refused_before_paying() {
        let data = tempfile::tempdir().unwrap();
        let node = Node::start(data.path());
        let client = node.client.clone();
        let (principal, agent, seller) = (key("m-principal"), key("m-agent"), key("m-seller"));
        for k in [&principal, &seller] {
            client
                .submit(k, &kit::register_principal(did(k)))
                .await
                .unwrap();
        }
        let now = support::now();
        let grant = kit::grant(
            &principal,
            did(&agent),
            agentrail_core::grant::Role::Agent,
            kit::limits(Amount::from_atomic(5_000), usd(1)),
            now,
            agentrail_core::Timestamp(now.0 + 3_600),
            "m",
        );
        client
            .submit(&principal, &kit::register_agent(grant))
            .await
            .unwrap();
        client.faucet(did(&agent), usd(5)).await.unwrap();
        let network = client.health().await.unwrap().network;
        let store = tempfile::tempdir().unwrap();
        let payee = Payee::open(
            store.path(),
            client.clone(),
            seller.clone(),
            PayeeOptions::default(),
        )
        .await
        .unwrap();
        let base = provider(payee, &network).await;
        let payer = Payer::new(
            client.clone(),
            agent.clone(),
            did(&agent),
            PayerOptions::default(),
        )
        .await
        .unwrap();
        // The metered route may cost 10 cents a call: above the 0.5 cent limit.
        let refused = payer
            .fetch(Method::POST, &format!("{base}/metered"), vec![0; 10])
            .await
            .unwrap_err();
        assert!(matches!(refused, PayError::OverMandate { .. }), "{refused}");
        assert_eq!(
            client.balance(&did(&agent)).await.unwrap().held,
            Amount::ZERO
        );
    }

    async fn channel_of(
        client: &agentrail_client::Client,
        buyer: &ed25519_dalek::SigningKey,
        seller: &ed25519_dalek::SigningKey,
    ) -> ChannelId {
        // The payer's channel is the one its history shows opened.
        let history = client.history(&did(seller), None, 50).await.unwrap();
        history
            .items
            .iter()
            .flat_map(|item| &item.events)
            .find_map(|event| match event {
                Event::ChannelOpened {
                    channel_id, from, ..
                } if *from == did(buyer) => Some(*channel_id),
                _ => None,
            })
            .expect("an open channel")
    }
}

mod reasons {
    use super::*;
    use agentrail_core::channel::Voucher;
    use agentrail_pay::paywall::Paywall;
    use agentrail_pay::x402::{
        self, ChannelPayload, PaymentPayload, PaymentRequired, PaymentRequirements,
        SettlementResponse,
    };
    use axum::Router;
    use axum::routing::post;
    use serde_json::Value;

    /// Checks `value` against a JSON Schema node of the subset x402's core
    /// schema uses: type, const, required, properties, items, minItems,
    /// minimum and local `$ref`s.
    fn conforms(schema: &Value, root: &Value, value: &Value) -> Result<(), String> {
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.trim_start_matches("#/$defs/");
            return conforms(&root["$defs"][name], root, value);
        }
        if let Some(constant) = schema.get("const")
            && constant != value
        {
            return Err(format!("{value} is not {constant}"));
        }
        let type_ok = match schema["type"].as_str() {
            Some("object") => value.is_object(),
            Some("string") => value.is_string(),
            Some("integer") => value.is_u64() || value.is_i64(),
            Some("boolean") => value.is_boolean(),
            Some("array") => value.is_array(),
            _ => true,
        };
        if !type_ok {
            return Err(format!("{value} is not of type {}", schema["type"]));
        }
        for field in schema["required"].as_array().into_iter().flatten() {
            let field = field.as_str().unwrap();
            if value.get(field).is_none() {
                return Err(format!("{field} is missing"));
            }
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (name, property) in properties {
                if let Some(inner) = value.get(name) {
                    conforms(property, root, inner).map_err(|e| format!("{name}: {e}"))?;
                }
            }
        }
        if let Some(minimum) = schema["minimum"].as_u64()
            && value.as_u64().is_some_and(|v| v < minimum)
        {
            return Err(format!("{value} is below {minimum}"));
        }
        if let Some(items) = value.as_array() {
            if let Some(min) = schema["minItems"].as_u64()
                && (items.len() as u64) < min
            {
                return Err("too few items".into());
            }
            if schema.get("items").is_some() {
                for item in items {
                    conforms(&schema["items"], root, item)?;
                }
            }
        }
        Ok(())
    }

    /// x402's published core schema (coinbase/x402
    /// `specs/schemas/x402-v2.schema.json`, Apache-2.0), kept unchanged in
    /// `tests/` for conformance checks.
    fn schema() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/x402-v2.schema.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn check(definition: &str, value: &impl serde::Serialize) {
        let root = schema();
        let value = serde_json::to_value(value).unwrap();
        conforms(&root["$defs"][definition], &root, &value)
            .unwrap_or_else(|e| panic!("{definition} does not conform: {e}\n{value}"));
    }

    #[test]
    fn the_validator_refuses_what_the_schema_refuses() {
        let root = schema();
        let bad = serde_json::json!({"x402Version": 1, "accepts": []});
        assert!(conforms(&root["$defs"]["PaymentRequired"], &root, &bad).is_err());
        let missing = serde_json::json!({"success": true, "network": "n"});
        assert!(conforms(&root["$defs"]["SettlementResponse"], &root, &missing).is_err());
    }

    struct Setup {
        _node: Node,
        _data: tempfile::TempDir,
        _store: tempfile::TempDir,
        base: String,
        network: String,
        buyer: ed25519_dalek::SigningKey,
        seller: ed25519_dalek::SigningKey,
        id: ChannelId,
        payee: Payee,
        requirements: PaymentRequirements,
    }

    async fn setup(expires_in: Option<u64>) -> Setup {
        let data = tempfile::tempdir().unwrap();
        let node = Node::start(data.path());
        let client = node.client.clone();
        let (buyer, seller) = super::funded_pair(&client, "r").await;
        let mut open = kit::open_channel(did(&buyer), did(&seller), cents(5), "r");
        if let (Some(seconds), agentrail_core::Command::OpenChannel(open)) = (expires_in, &mut open)
        {
            open.expires_at = Some(agentrail_core::Timestamp(support::now().0 + seconds));
        }
        client.submit(&buyer, &open).await.unwrap();
        let id = ChannelId::derive(&did(&buyer), &did(&seller), "r");
        let network = client.health().await.unwrap().network;
        let store = tempfile::tempdir().unwrap();
        let payee = Payee::open(
            store.path(),
            client.clone(),
            seller.clone(),
            PayeeOptions::default(),
        )
        .await
        .unwrap();
        let app = Router::new().route("/echo", post(|| async { "ok" })).layer(
            Paywall::new(payee.clone(), &network)
                .per_call("/echo", cents(1))
                .layer(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let unpaid = reqwest::Client::new()
            .post(format!("{base}/echo"))
            .send()
            .await
            .unwrap();
        let required: PaymentRequired =
            x402::decode_header(unpaid.headers()[x402::PAYMENT_REQUIRED].to_str().unwrap())
                .unwrap();
        check("PaymentRequired", &required);
        Setup {
            _node: node,
            _data: data,
            _store: store,
            base,
            network,
            buyer,
            seller,
            id,
            payee,
            requirements: required.accepts[0].clone(),
        }
    }

    impl Setup {
        fn voucher(
            &self,
            signer: &ed25519_dalek::SigningKey,
            nonce: u64,
            total: Amount,
        ) -> Voucher {
            let network = agentrail_core::channel::network_hash(&self.network);
            kit::voucher(
                signer,
                &network,
                self.id,
                did(&self.seller),
                "s",
                nonce,
                total,
            )
        }

        /// Sends `voucher` in a v2 (or v1) header: the status and the
        /// settlement response.
        async fn pay(&self, voucher: Voucher, v1: bool) -> (u16, SettlementResponse) {
            let payload = PaymentPayload {
                x402_version: if v1 { 1 } else { 2 },
                resource: None,
                accepted: (!v1).then(|| self.requirements.clone()),
                scheme: v1.then(|| "channel".to_owned()),
                network: v1.then(|| self.network.clone()),
                payload: serde_json::to_value(ChannelPayload {
                    version: 1,
                    payer_id: did(&self.buyer).to_string(),
                    client_tx_ref: None,
                    receipt: voucher,
                    hash_chain: None,
                })
                .unwrap(),
                extensions: None,
            };
            let header = if v1 {
                x402::X_PAYMENT
            } else {
                x402::PAYMENT_SIGNATURE
            };
            let response = reqwest::Client::new()
                .post(format!("{}/echo", self.base))
                .header(header, x402::encode_header(&payload))
                .send()
                .await
                .unwrap();
            let settlement: SettlementResponse =
                x402::decode_header(response.headers()[x402::PAYMENT_RESPONSE].to_str().unwrap())
                    .unwrap();
            check("SettlementResponse", &settlement);
            (response.status().as_u16(), settlement)
        }
    }

    fn reason(settlement: &SettlementResponse) -> &str {
        settlement.error_reason.as_deref().unwrap_or("")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn every_refused_payment_names_its_reason() {
        let world = setup(None).await;
        // v2 and v1 headers both pay.
        let (status, settlement) = world
            .pay(world.voucher(&world.buyer, 1, cents(1)), false)
            .await;
        assert_eq!((status, settlement.success), (200, true));
        let (status, _) = world
            .pay(world.voucher(&world.buyer, 2, cents(2)), true)
            .await;
        assert_eq!(status, 200);

        let cases = [
            (
                world.voucher(&world.seller, 3, cents(3)),
                "voucher_signature_invalid",
            ),
            (world.voucher(&world.buyer, 1, cents(1)), "voucher_stale"),
            (
                world.voucher(&world.buyer, 3, cents(6)),
                "channel_exhausted",
            ),
            // Valid, but adds less than a call's price.
            (
                world.voucher(&world.buyer, 3, Amount::from_atomic(20_001)),
                "payment_insufficient",
            ),
        ];
        for (voucher, expected) in cases {
            let (status, settlement) = world.pay(voucher, false).await;
            assert_eq!((status, reason(&settlement)), (402, expected));
            assert!(!settlement.success);
        }
        // A closed channel takes nothing more.
        world.payee.close(&world.id).await.unwrap();
        let (status, settlement) = world
            .pay(world.voucher(&world.buyer, 9, cents(4)), false)
            .await;
        assert_eq!((status, reason(&settlement)), (402, "channel_closed"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_expired_channel_is_refused_as_expired() {
        let world = setup(Some(2)).await;
        let (status, _) = world
            .pay(world.voucher(&world.buyer, 1, cents(1)), false)
            .await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        let (status, settlement) = world
            .pay(world.voucher(&world.buyer, 2, cents(2)), false)
            .await;
        assert_eq!((status, reason(&settlement)), (402, "channel_expired"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payer_whose_terms_went_stale_pays_the_difference() {
    use agentrail_pay::payer::{Method, Payer, PayerOptions};
    use agentrail_pay::paywall::Paywall;
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let client = node.client.clone();
    let (buyer, seller) = funded_pair(&client, "stale").await;
    let network = client.health().await.unwrap().network;
    let store = tempfile::tempdir().unwrap();
    let payee = Payee::open(
        store.path(),
        client.clone(),
        seller.clone(),
        PayeeOptions::default(),
    )
    .await
    .unwrap();
    // A server that stops (closing its kept-alive connections) when told.
    let serve = |price: Amount, listener: tokio::net::TcpListener| {
        let app = axum::Router::new()
            .route("/echo", axum::routing::post(|| async { "ok" }))
            .layer(
                Paywall::new(payee.clone(), &network)
                    .per_call("/echo", price)
                    .layer(),
            );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap()
        });
        (stop, task)
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop_first, first) = serve(cents(1), listener);
    let payer = Payer::new(
        client.clone(),
        buyer.clone(),
        did(&buyer),
        PayerOptions::default(),
    )
    .await
    .unwrap();
    let url = format!("http://{address}/echo");
    assert_eq!(
        payer
            .fetch(Method::POST, &url, Vec::new())
            .await
            .unwrap()
            .paid,
        cents(1)
    );
    // The provider restarts at twice the price; the payer still knows the
    // old terms, pays them, is told its credit is short, and pays again.
    stop_first.send(()).unwrap();
    first.await.unwrap();
    // The same address again, though the closed connections linger in
    // TIME_WAIT.
    // The old server's connections are dropped by tasks of their own, so
    // the address may stay busy for a moment after it stopped.
    let mut attempts = 0;
    let socket = loop {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        match socket.bind(address) {
            Ok(()) => break socket,
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse && attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(error) => panic!("{address} stayed busy: {error}"),
        }
    };
    let _second = serve(cents(2), socket.listen(64).unwrap());
    // A connection kept alive to the old server may fail: the payer retires
    // that stream (its voucher's fate is unknown) and the retry uses another.
    let paid = match payer.fetch(Method::POST, &url, Vec::new()).await {
        Err(agentrail_pay::payer::PayError::Http(_)) => {
            payer.fetch(Method::POST, &url, Vec::new()).await.unwrap()
        }
        other => other.unwrap(),
    };
    assert_eq!((paid.status.as_u16(), paid.paid), (200, cents(2)));
    assert_eq!(payer.spent(), cents(3));
}

/// A dishonest server advertises 10 cents a call but answers every voucher
/// with `payment_insufficient` (it charges 20 behind the advertisement): the
/// payer pays the advertised 10 once and refuses to pay more.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_demanding_more_than_it_advertised_is_never_paid_it() {
    use agentrail_pay::payer::{Method, PayError, Payer, PayerOptions};
    use agentrail_pay::paywall::Paywall;
    use agentrail_pay::x402::{self, PaymentRequired};
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let client = node.client.clone();
    let (buyer, seller) = funded_pair(&client, "greedy").await;
    let network = client.health().await.unwrap().network;
    let store = tempfile::tempdir().unwrap();
    let payee = Payee::open(
        store.path(),
        client.clone(),
        seller.clone(),
        PayeeOptions::default(),
    )
    .await
    .unwrap();
    // Rewrites the price of every unpaid 402 from 20 cents to 10.
    async fn advertise_less(
        request: axum::extract::Request,
        next: axum::middleware::Next,
    ) -> axum::response::Response {
        let paid = request.headers().contains_key(x402::PAYMENT_SIGNATURE);
        let mut response = next.run(request).await;
        if !paid && let Some(value) = response.headers().get(x402::PAYMENT_REQUIRED) {
            let mut required: PaymentRequired =
                x402::decode_header(value.to_str().unwrap()).unwrap();
            for terms in &mut required.accepts {
                terms.amount = cents(10);
            }
            let lowered = x402::encode_header(&required);
            response
                .headers_mut()
                .insert(x402::PAYMENT_REQUIRED, lowered.parse().unwrap());
        }
        response
    }
    let app = axum::Router::new()
        .route("/greedy", axum::routing::post(|| async { "ok" }))
        .layer(
            Paywall::new(payee.clone(), &network)
                .per_call("/greedy", cents(20))
                .layer(),
        )
        .layer(axum::middleware::from_fn(advertise_less));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let payer = Payer::new(
        client.clone(),
        buyer.clone(),
        did(&buyer),
        PayerOptions::default(),
    )
    .await
    .unwrap();
    let url = format!("http://{address}/greedy");
    let refused = payer.fetch(Method::POST, &url, Vec::new()).await;
    assert!(
        matches!(&refused, Err(PayError::Refused(reason)) if reason.starts_with("payment_insufficient")),
        "{refused:?}"
    );
    assert_eq!(payer.spent(), cents(10), "the advertised price, once");
}
