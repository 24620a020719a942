//! The attack suite: hostile clients against the real node over HTTP. Each
//! attack is named and must fail with its own error code (and a 4xx), and
//! the node must go on serving honest clients.

mod support;

use std::sync::Arc;
use std::time::Duration;

use agentrail_client::{Client, ClientError};
use agentrail_core::channel::{ChannelId, network_hash};
use agentrail_core::grant::{Limits, Role};
use agentrail_core::market::RequestQuotes;
use agentrail_core::{Amount, Command, Did, Timestamp};
use agentrail_sim::kit;
use ed25519_dalek::SigningKey;
use std::io::Write;
use support::{Node, did, key, now, panics, usd};

/// Ends a group of attacks: an independent audit of the log they left
/// (`agentrail audit`: every leaf replayed through the core, every
/// invariant checked on the replay, every balance compared with the node),
/// the node stopped cleanly, its summary line, and no panic in its log.
/// Every attack the node accepted, or answered with another code than its
/// own, already failed the test: `acknowledged` counts the honest commands
/// the attacks were mixed with, `lost` those of them the log lacks.
async fn finish(group: &str, node: Node) {
    let journal_len = node.client.health().await.expect("health").journal_len;
    let audit = std::process::Command::new(support::BIN)
        .args(["--json", "--node", &node.url, "audit"])
        .output()
        .expect("the audit runs");
    let report: serde_json::Value =
        serde_json::from_slice(&audit.stdout).unwrap_or(serde_json::Value::Null);
    let replayed = report["entries"].as_u64().unwrap_or(0);
    let invariant_violations = u64::from(!audit.status.success() || report["consistent"] != true);
    let lost = journal_len.saturating_sub(replayed);
    let data = node.data.clone();
    node.stop();
    let panics = panics(&data);
    println!(
        "attacks: group={group} rounds=1 acknowledged={journal_len} lost={lost} invariant_violations={invariant_violations} panics={panics} accepted=0 wrong_codes=0"
    );
    assert_eq!(
        invariant_violations,
        0,
        "the audit failed: {} {}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    );
    assert_eq!(lost, 0, "acknowledged entries are missing from the log");
    assert_eq!(panics, 0, "the node panicked");
}

/// What an attack was answered with.
fn refusal(result: Result<agentrail_wire::api::CommandResponse, ClientError>) -> (u16, String) {
    match result {
        Ok(response) => panic!("the attack was accepted as entry {}", response.index),
        Err(ClientError::Api { status, error }) => (status, error.code),
        Err(other) => panic!("the attack was not answered: {other}"),
    }
}

async fn attack(client: &Client, signer: &SigningKey, command: Command, expected: &str) {
    let (status, code) = refusal(client.submit(signer, &command).await);
    assert_eq!(code, expected, "{command:?}");
    assert!((400..500).contains(&status), "{expected} answered {status}");
}

async fn principal(client: &Client, label: &str) -> SigningKey {
    let k = key(label);
    client
        .submit(&k, &kit::register_principal(did(&k)))
        .await
        .unwrap();
    k
}

/// An agent of `principal` with `limits`, valid for a day.
async fn agent(client: &Client, principal: &SigningKey, label: &str, limits: Limits) -> SigningKey {
    let k = key(label);
    let t = now().0;
    let grant = kit::grant(
        principal,
        did(&k),
        Role::Agent,
        limits,
        Timestamp(t - 60),
        Timestamp(t + 86_400),
        label,
    );
    client
        .submit(principal, &kit::register_agent(grant))
        .await
        .unwrap();
    k
}

#[tokio::test(flavor = "multi_thread")]
async fn mandate_attacks_are_refused_even_when_racing_the_budget() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let client = node.client.clone();
    let owner = principal(&client, "atk-owner").await;
    let payee = principal(&client, "atk-payee").await;
    let limits = Limits {
        total_budget: Some(usd(30)),
        ..kit::limits(usd(5), usd(10))
    };
    let agent = agent(&client, &owner, "atk-agent", limits.clone()).await;
    client.faucet(did(&agent), usd(100)).await.unwrap();
    let (from, to) = (did(&agent), did(&payee));

    // A session that widens its agent's limits.
    let t = now().0;
    let wider = kit::grant(
        &agent,
        did(&key("atk-wide")),
        Role::Session,
        kit::limits(usd(6), usd(10)),
        Timestamp(t - 60),
        Timestamp(t + 3_600),
        "w",
    );
    attack(&client, &agent, kit::issue_session(wider), "grant_widens").await;
    // One payment above the per-payment cap.
    attack(
        &client,
        &agent,
        kit::transfer(from, to, usd(6), "big"),
        "per_payment_limit_exceeded",
    )
    .await;

    // Fifty concurrent 1 USD payments race a 10 USD daily budget: exactly
    // ten land, every other one is refused with budget_exceeded.
    let client = Arc::new(client);
    let agent = Arc::new(agent);
    let racers: Vec<_> = (0..50)
        .map(|i| {
            let (client, agent) = (Arc::clone(&client), Arc::clone(&agent));
            tokio::spawn(async move {
                client
                    .submit(
                        &agent,
                        &kit::transfer(from, to, usd(1), &format!("race-{i}")),
                    )
                    .await
            })
        })
        .collect();
    let (mut accepted, mut refused) = (0, 0);
    for racer in racers {
        match racer.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(error) => {
                assert_eq!(error.code(), Some("budget_exceeded"));
                refused += 1;
            }
        }
    }
    assert_eq!((accepted, refused), (10, 40));
    assert_eq!(client.balance(&to).await.unwrap().available, usd(10));
    // The race spent the day's budget: one more is refused.
    attack(
        &client,
        &agent,
        kit::transfer(from, to, usd(1), "race-late"),
        "budget_exceeded",
    )
    .await;

    // A revoked agent's key is refused at once.
    client.submit(&owner, &kit::revoke(from)).await.unwrap();
    attack(
        &client,
        &agent,
        kit::transfer(from, to, usd(1), "after-revoke"),
        "grant_revoked",
    )
    .await;
    // Someone else's account.
    attack(
        &client,
        &payee,
        kit::transfer(from, to, usd(1), "theft"),
        "not_authorized",
    )
    .await;
    finish(
        "mandate_attacks_are_refused_even_when_racing_the_budget",
        node,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn channel_attacks_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let client = node.client.clone();
    let payer = principal(&client, "ch-atk-payer").await;
    let payee = principal(&client, "ch-atk-payee").await;
    let thief = principal(&client, "ch-atk-thief").await;
    client.faucet(did(&payer), usd(50)).await.unwrap();
    let network = network_hash(&client.health().await.unwrap().network);
    client
        .submit(
            &payer,
            &kit::open_channel(did(&payer), did(&payee), usd(10), "c1"),
        )
        .await
        .unwrap();
    client
        .submit(
            &payer,
            &kit::open_channel(did(&payer), did(&thief), usd(10), "c2"),
        )
        .await
        .unwrap();
    let id = ChannelId::derive(&did(&payer), &did(&payee), "c1");
    let other = ChannelId::derive(&did(&payer), &did(&thief), "c2");
    let voucher = |nonce: u64, total: Amount| {
        kit::voucher(&payer, &network, id, did(&payee), "s", nonce, total)
    };

    client
        .submit(&payee, &kit::collect_channel(id, vec![voucher(2, usd(2))]))
        .await
        .unwrap();
    // The same voucher twice (a state conflict, 409), and an older one
    // after a newer one.
    let twice = client
        .submit(&payee, &kit::collect_channel(id, vec![voucher(2, usd(2))]))
        .await;
    assert_eq!(refusal(twice), (409, "voucher_stale".to_owned()));
    let nowhere = ChannelId::derive(&did(&payee), &did(&payer), "none");
    let missing = client
        .submit(&payee, &kit::collect_channel(nowhere, Vec::new()))
        .await;
    assert_eq!(refusal(missing), (404, "channel_not_found".to_owned()));
    attack(
        &client,
        &payee,
        kit::collect_channel(id, vec![voucher(1, usd(1))]),
        "voucher_stale",
    )
    .await;
    // More than the deposit.
    attack(
        &client,
        &payee,
        kit::collect_channel(id, vec![voucher(3, usd(11))]),
        "channel_exhausted",
    )
    .await;
    // A voucher signed by someone other than the payer.
    let forged = kit::voucher(&thief, &network, id, did(&payee), "s", 4, usd(3));
    attack(
        &client,
        &payee,
        kit::collect_channel(id, vec![forged]),
        "voucher_signature_invalid",
    )
    .await;
    // Someone else collecting this channel, and this channel's voucher on
    // another channel.
    attack(
        &client,
        &thief,
        kit::collect_channel(id, vec![voucher(5, usd(3))]),
        "not_authorized",
    )
    .await;
    let misaddressed = agentrail_core::channel::Voucher {
        channel_id: other,
        ..voucher(6, usd(3))
    };
    attack(
        &client,
        &thief,
        kit::collect_channel(other, vec![misaddressed]),
        "invalid_field",
    )
    .await;
    let moved = agentrail_core::channel::Voucher {
        channel_id: other,
        payee_id: did(&thief),
        ..voucher(6, usd(3))
    };
    attack(
        &client,
        &thief,
        kit::collect_channel(other, vec![moved]),
        "voucher_signature_invalid",
    )
    .await;
    // A voucher for another network (a replay from another ledger).
    let foreign = kit::voucher(
        &payer,
        &network_hash("agentrail:elsewhere"),
        id,
        did(&payee),
        "s",
        7,
        usd(3),
    );
    attack(
        &client,
        &payee,
        kit::collect_channel(id, vec![foreign]),
        "voucher_signature_invalid",
    )
    .await;
    // A payee redeeming more than a voucher says, through an amount.
    attack(
        &client,
        &payee,
        kit::collect_channel_up_to(id, vec![voucher(8, usd(3))], &[("s", usd(4))]),
        "invalid_field",
    )
    .await;
    // Nothing moves once it is closed.
    client
        .submit(&payee, &kit::close_channel(id, vec![voucher(8, usd(3))]))
        .await
        .unwrap();
    attack(
        &client,
        &payee,
        kit::collect_channel(id, vec![voucher(9, usd(4))]),
        "channel_closed",
    )
    .await;
    attack(
        &client,
        &payer,
        kit::top_up_channel(id, usd(1), "late"),
        "channel_closed",
    )
    .await;
    let balance = client.balance(&did(&payee)).await.unwrap();
    assert_eq!(
        balance.available,
        usd(3),
        "the payee got exactly its best voucher"
    );
    finish("channel_attacks_are_refused", node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn market_attacks_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let client = node.client.clone();
    let buyer = principal(&client, "mk-atk-buyer").await;
    let seller = principal(&client, "mk-atk-seller").await;
    let arbiter = principal(&client, "mk-atk-arbiter").await;
    let intruder = principal(&client, "mk-atk-intruder").await;
    client.faucet(did(&buyer), usd(50)).await.unwrap();
    let request = RequestQuotes {
        arbiter: Some(did(&arbiter)),
        ..kit::rfq("atk-rfq", did(&buyer), "compute", usd(10), 3_600)
    };
    client
        .submit(&buyer, &kit::request_quotes(request))
        .await
        .unwrap();
    client
        .submit(
            &seller,
            &kit::quote("atk-q", "atk-rfq", did(&seller), None, usd(8)),
        )
        .await
        .unwrap();
    // A quote above the buyer's budget; the seller accepting for the buyer.
    attack(
        &client,
        &seller,
        kit::quote("atk-q2", "atk-rfq", did(&seller), None, usd(11)),
        "price_above_budget",
    )
    .await;
    attack(
        &client,
        &seller,
        kit::accept("atk-q", "atk-t"),
        "not_authorized",
    )
    .await;
    client
        .submit(&buyer, &kit::accept("atk-q", "atk-t"))
        .await
        .unwrap();
    client
        .submit(&seller, &kit::deliver("atk-t", b"result", &[]))
        .await
        .unwrap();
    // Approving someone else's task; approving with another result hash.
    attack(
        &client,
        &intruder,
        kit::approve_task("atk-t", b"result"),
        "not_authorized",
    )
    .await;
    attack(
        &client,
        &buyer,
        kit::approve_task("atk-t", b"other"),
        "result_hash_mismatch",
    )
    .await;
    client
        .submit(&buyer, &kit::dispute("atk-t", "not what was asked"))
        .await
        .unwrap();
    // Ruling without being the arbiter named in the terms, the operator included.
    for (signer, label) in [
        (&seller, "seller"),
        (&buyer, "buyer"),
        (&intruder, "intruder"),
    ] {
        let (_, code) = refusal(client.submit(signer, &kit::resolve("atk-t", 10_000)).await);
        assert_eq!(code, "not_arbiter", "{label}");
    }
    // A ruling above the whole.
    attack(
        &client,
        &arbiter,
        kit::resolve("atk-t", 10_001),
        "invalid_field",
    )
    .await;
    client
        .submit(&arbiter, &kit::resolve("atk-t", 10_000))
        .await
        .unwrap();
    attack(
        &client,
        &arbiter,
        kit::resolve("atk-t", 0),
        "task_wrong_state",
    )
    .await;

    // Self-dealing to inflate a reputation: an agent buys from its own
    // principal's other agent again and again; the score does not move.
    let owner = principal(&client, "mk-atk-owner").await;
    let shill = agent(
        &client,
        &owner,
        "mk-atk-shill",
        kit::limits(usd(5), usd(50)),
    )
    .await;
    let star = agent(&client, &owner, "mk-atk-star", kit::limits(usd(1), usd(1))).await;
    client.faucet(did(&shill), usd(50)).await.unwrap();
    for i in 0..5 {
        let (rfq, quote, task) = (format!("sd-r{i}"), format!("sd-q{i}"), format!("sd-t{i}"));
        client
            .submit(
                &shill,
                &kit::request_quotes(kit::rfq(&rfq, did(&shill), "compute", usd(5), 3_600)),
            )
            .await
            .unwrap();
        client
            .submit(&star, &kit::quote(&quote, &rfq, did(&star), None, usd(5)))
            .await
            .unwrap();
        client
            .submit(&shill, &kit::accept(&quote, &task))
            .await
            .unwrap();
        client
            .submit(&star, &kit::deliver(&task, b"r", &[]))
            .await
            .unwrap();
        client
            .submit(&shill, &kit::approve_task(&task, b"r"))
            .await
            .unwrap();
    }
    let reputation = client.reputation(&did(&star)).await.unwrap();
    assert_eq!(
        (reputation.score, reputation.tasks_paid),
        (0, 0),
        "self-dealing counts for nothing"
    );
    finish("market_attacks_are_refused", node).await;
}

/// The defects a probe found, each attack refused with its code: a request
/// replayed onto another ledger, the operator posing as a principal, a
/// buyer's own session or a sibling agent as arbiter, a provider's own
/// agent as validator, a revoked arbiter ruling, a session's channel
/// outliving the session, a spoofing memo, and a stake or a split paid to
/// a payee the spender's mandate excludes.
#[tokio::test(flavor = "multi_thread")]
async fn economy_attacks_are_refused() {
    use agentrail_core::economy::{
        ApproveLeg, CollectSubscription, DeliverLeg, OrderLeg, Period, PlaceOrder, PostBounty,
        ScoreContribution, SubmitContribution, Subscribe,
    };
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let client = node.client.clone();
    let owner = principal(&client, "eco-owner").await;
    let host = principal(&client, "eco-host").await;
    let validator = principal(&client, "eco-validator").await;
    let worker = principal(&client, "eco-worker").await;
    let assistant = agent(
        &client,
        &owner,
        "eco-assistant",
        kit::limits(usd(10), usd(30)),
    )
    .await;
    client.faucet(did(&assistant), usd(50)).await.unwrap();
    client.faucet(did(&owner), usd(50)).await.unwrap();
    let hash = |text: &str| kit::sha256_hex(text.as_bytes());

    // A subscription collected twice in one period, above its amount, or
    // by someone other than the payee.
    let subscribe = Command::Subscribe(Subscribe {
        subscription_id: "eco-sub".into(),
        from: did(&assistant),
        payee: did(&host),
        amount: usd(5),
        period: Period::Month,
        ends_at: None,
        category: None,
    });
    client.submit(&assistant, &subscribe).await.unwrap();
    let collect = |amount| {
        Command::CollectSubscription(CollectSubscription {
            subscription_id: "eco-sub".into(),
            amount,
        })
    };
    attack(
        &client,
        &host,
        collect(usd(6)),
        "subscription_amount_exceeded",
    )
    .await;
    attack(&client, &worker, collect(usd(5)), "not_authorized").await;
    client.submit(&host, &collect(usd(5))).await.unwrap();
    attack(
        &client,
        &host,
        collect(usd(4)),
        "subscription_already_collected",
    )
    .await;

    // A bounty scored by someone other than its validator, or twice.
    let post = Command::PostBounty(PostBounty {
        bounty_id: "eco-bounty".into(),
        from: did(&owner),
        price: usd(4),
        contributions: 2,
        validator: did(&validator),
        full_pay_s: 600,
        close_s: 3_600,
        scoring_window_s: None,
        category: None,
        description: String::new(),
    });
    client.submit(&owner, &post).await.unwrap();
    let submit = Command::SubmitContribution(SubmitContribution {
        bounty_id: "eco-bounty".into(),
        contribution_id: "w1".into(),
        contributor: did(&worker),
        result_hash: hash("w1"),
        manifest: vec![],
    });
    client.submit(&worker, &submit).await.unwrap();
    let score = |bps| {
        Command::ScoreContribution(ScoreContribution {
            bounty_id: "eco-bounty".into(),
            contribution_id: "w1".into(),
            result_hash: hash("w1"),
            score_bps: bps,
        })
    };
    attack(&client, &worker, score(10_000), "not_validator").await;
    attack(&client, &owner, score(0), "not_validator").await;
    client.submit(&validator, &score(5_000)).await.unwrap();
    attack(&client, &validator, score(10_000), "contribution_scored").await;
    attack(&client, &validator, score(10_001), "contribution_scored").await;

    // An atomic order's leg paid early: the provider approving its own
    // leg, the buyer approving what was not delivered.
    let order = Command::PlaceOrder(PlaceOrder {
        order_id: "eco-order".into(),
        from: did(&owner),
        legs: vec![
            OrderLeg {
                provider: did(&host),
                price: usd(3),
                deadline_s: 3_600,
                description: "hosting".into(),
            },
            OrderLeg {
                provider: did(&worker),
                price: usd(2),
                deadline_s: 3_600,
                description: "labelling".into(),
            },
        ],
        atomic: true,
        review_window_s: None,
        arbiter: None,
        category: None,
    });
    client.submit(&owner, &order).await.unwrap();
    let approve = |leg| {
        Command::ApproveLeg(ApproveLeg {
            order_id: "eco-order".into(),
            leg,
            result_hash: hash("delivered"),
        })
    };
    attack(&client, &owner, approve(0), "leg_wrong_state").await;
    let deliver = Command::DeliverLeg(DeliverLeg {
        order_id: "eco-order".into(),
        leg: 0,
        result_hash: hash("delivered"),
        manifest: vec![],
    });
    attack(&client, &worker, deliver.clone(), "not_authorized").await;
    client.submit(&host, &deliver).await.unwrap();
    attack(&client, &host, approve(0), "not_authorized").await;
    let before = client.balance(&did(&host)).await.unwrap().available;
    client.submit(&owner, &approve(0)).await.unwrap();
    assert_eq!(
        client.balance(&did(&host)).await.unwrap().available,
        before,
        "an atomic order pays no leg before every leg is approved"
    );
    // A subscription, bounty or order id taken by someone else.
    attack(&client, &owner, subscribe.clone(), "idempotency_conflict").await;
    finish("economy", node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_attacks_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let client = node.client.clone();
    let owner = principal(&client, "pr-owner").await;
    let payee = principal(&client, "pr-payee").await;
    let judge = principal(&client, "pr-judge").await;
    let seller = principal(&client, "pr-seller").await;
    let excluded = principal(&client, "pr-excluded").await;
    let buyer_limits = Limits {
        denied_payees: vec![did(&excluded)],
        ..kit::limits(usd(10), usd(50))
    };
    let buyer = agent(&client, &owner, "pr-buyer", buyer_limits).await;
    let sibling = agent(&client, &owner, "pr-sibling", kit::limits(usd(1), usd(1))).await;
    let arbiter = agent(&client, &judge, "pr-arbiter", kit::limits(usd(1), usd(1))).await;
    client.faucet(did(&buyer), usd(40)).await.unwrap();

    // A transfer signed for another ledger where the same keys exist.
    let elsewhere = client.clone().with_network("agentrail:another-ledger");
    let (status, code) = refusal(
        elsewhere
            .submit(
                &buyer,
                &kit::transfer(did(&buyer), did(&payee), usd(1), "replayed"),
            )
            .await,
    );
    assert_eq!((status, code.as_str()), (401, "signature_wrong_network"));
    // The operator keeps the ledger; it registers as nothing.
    let operator = agentrail_wire::keyfile::decode(
        &std::fs::read_to_string(node.data.join("operator.key")).unwrap(),
    )
    .unwrap();
    attack(
        &client,
        &operator,
        kit::register_principal(did(&operator)),
        "not_authorized",
    )
    .await;
    // A session of the buyer, one hour long.
    let t = now().0;
    let session = key("pr-session");
    let grant = kit::grant(
        &buyer,
        did(&session),
        Role::Session,
        Limits {
            denied_payees: vec![did(&excluded)],
            ..kit::limits(usd(5), usd(10))
        },
        Timestamp(t - 60),
        Timestamp(t + 3_600),
        "s",
    );
    client
        .submit(&buyer, &kit::issue_session(grant))
        .await
        .unwrap();
    // Own-side arbiters: the buyer's session, a sibling agent.
    for (id, role) in [("pr-r1", &session), ("pr-r2", &sibling)] {
        let request = RequestQuotes {
            arbiter: Some(did(role)),
            ..kit::rfq(id, did(&buyer), "compute", usd(5), 3_600)
        };
        attack(
            &client,
            &buyer,
            kit::request_quotes(request),
            "own_side_role",
        )
        .await;
    }
    // The provider's own agent as validator: its quote is refused.
    let seller_agent = agent(
        &client,
        &seller,
        "pr-seller-agent",
        kit::limits(usd(1), usd(1)),
    )
    .await;
    let request = RequestQuotes {
        validator: Some(did(&seller_agent)),
        ..kit::rfq("pr-r3", did(&buyer), "compute", usd(5), 3_600)
    };
    client
        .submit(&buyer, &kit::request_quotes(request))
        .await
        .unwrap();
    attack(
        &client,
        &seller,
        kit::quote("pr-q3", "pr-r3", did(&seller), None, usd(4)),
        "own_side_role",
    )
    .await;
    // A revoked arbiter rules.
    let request = RequestQuotes {
        arbiter: Some(did(&arbiter)),
        ..kit::rfq("pr-r4", did(&buyer), "compute", usd(5), 3_600)
    };
    client
        .submit(&buyer, &kit::request_quotes(request))
        .await
        .unwrap();
    client
        .submit(
            &seller,
            &kit::quote("pr-q4", "pr-r4", did(&seller), None, usd(4)),
        )
        .await
        .unwrap();
    client
        .submit(&buyer, &kit::accept("pr-q4", "pr-t4"))
        .await
        .unwrap();
    // A split of the buyer's escrow to a payee its mandate excludes is
    // refused; the honest delivery lands.
    attack(
        &client,
        &seller,
        kit::deliver(
            "pr-t4",
            b"r",
            &[(did(&seller), 5_000), (did(&excluded), 5_000)],
        ),
        "payee_denied",
    )
    .await;
    client
        .submit(&seller, &kit::deliver("pr-t4", b"r", &[]))
        .await
        .unwrap();
    client
        .submit(&buyer, &kit::dispute("pr-t4", "garbage"))
        .await
        .unwrap();
    client
        .submit(&judge, &kit::revoke(did(&arbiter)))
        .await
        .unwrap();
    attack(&client, &arbiter, kit::resolve("pr-t4", 0), "grant_revoked").await;
    // A one-hour session opens a thirty-day channel.
    attack(
        &client,
        &session,
        kit::open_channel(did(&buyer), did(&payee), usd(5), "pr-long"),
        "channel_outlives_grant",
    )
    .await;
    // A memo that displays as another.
    let spoof = match kit::transfer(did(&buyer), did(&payee), usd(1), "pr-memo") {
        Command::Transfer(transfer) => Command::Transfer(agentrail_core::command::Transfer {
            memo: Some("refund\u{202E}gnp.exe".into()),
            ..transfer
        }),
        _ => unreachable!(),
    };
    attack(&client, &buyer, spoof, "invalid_field").await;
    finish("probe_attacks_are_refused", node).await;
}

/// Posts a command and returns (status, code), or the transport error when
/// the node closed the connection before the client finished sending.
async fn try_post(
    url: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> Result<(u16, String), reqwest::Error> {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/v1/commands"))
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let code = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|body| body["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    Ok((status, code))
}

async fn post(url: &str, body: Vec<u8>, headers: &[(&str, String)]) -> (u16, String) {
    try_post(url, body, headers)
        .await
        .expect("the node answers")
}

fn signed(
    signer: &SigningKey,
    body: &[u8],
    nonce: &str,
    network: &str,
) -> Vec<(&'static str, String)> {
    let headers = agentrail_wire::httpsig::sign(
        signer,
        "POST",
        "/v1/commands",
        body,
        agentrail_wire::httpsig::SignParams {
            created: now().0,
            nonce,
            network,
        },
    );
    vec![
        ("content-digest", headers.content_digest),
        ("signature-input", headers.signature_input),
        ("signature", headers.signature),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_bytes_get_a_typed_4xx_and_slow_clients_stall_nobody() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let client = node.client.clone();
    let signer = principal(&client, "bytes-signer").await;
    let network = client.network().await.unwrap();
    let payee: Did = did(&principal(&client, "bytes-payee").await);
    let from = did(&signer);
    let transfer = |amount: &str| {
        format!(r#"{{"type":"transfer","from":"{from}","to":"{payee}","amount":"{amount}","idempotency_key":"k-{}"}}"#, amount.len()).into_bytes()
    };
    // Amounts that overflow u128, negative, fractional, with a sign, empty.
    for (nonce, (label, amount)) in [
        ("overflow", "340282366920938463463374607431768211456"),
        (
            "far overflow",
            "9999999999999999999999999999999999999999999999",
        ),
        ("negative", "-5"),
        ("fraction", "1.5"),
        ("plus sign", "+5"),
        ("empty", ""),
        ("leading zero", "007"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = transfer(amount);
        let nonce = format!("amount-{nonce}");
        let (status, code) = post(
            &node.url,
            body.clone(),
            &signed(&signer, &body, &nonce, &network),
        )
        .await;
        assert_eq!((status, code.as_str()), (400, "invalid_request"), "{label}");
    }
    // The largest amount parses and is refused for funds, not by an overflow.
    let body = transfer("340282366920938463463374607431768211455");
    let (status, code) = post(
        &node.url,
        body.clone(),
        &signed(&signer, &body, "max", &network),
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "insufficient_funds"));
    // Deeply nested JSON and an oversized body.
    let deep = format!("{}{}", "{\"a\":".repeat(5_000), "}".repeat(5_000)).into_bytes();
    let (status, _) = post(
        &node.url,
        deep.clone(),
        &signed(&signer, &deep, "deep", &network),
    )
    .await;
    assert_eq!(status, 400);
    // Oversized bodies and headers: the node answers 413 (or the HTTP
    // layer a 4xx) and closes without reading the rest, so a client still
    // sending may see the connection reset before it reads the answer.
    // Either way nothing is accepted, and the node serves on.
    match try_post(&node.url, vec![b'['; 40 * 1024], &[]).await {
        Ok((status, code)) => assert_eq!((status, code.as_str()), (413, "body_too_large")),
        Err(error) => assert!(!error.is_timeout(), "{error}"),
    }
    let filler = [("x-filler", "a".repeat(512 * 1024))];
    if let Ok((status, _)) = try_post(&node.url, b"{}".to_vec(), &filler).await {
        assert!(
            (400..500).contains(&status),
            "oversized headers answered {status}"
        );
    }
    client.health().await.expect("the node serves on");

    // Slow clients: a hundred connections that send half a request line and
    // stop. An honest client is still answered at once.
    let address = node.url.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..100 {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream
            .write_all(b"POST /v1/commands HTTP/1.1\r\nHost: x\r\nContent-Le")
            .unwrap();
        idle.push(stream);
    }
    let honest = tokio::time::timeout(Duration::from_secs(5), client.health()).await;
    assert!(
        matches!(honest, Ok(Ok(_))),
        "an honest client waits behind slow ones"
    );
    drop(idle);
    finish(
        "hostile_bytes_get_a_typed_4xx_and_slow_clients_stall_nobody",
        node,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn floods_get_429_and_idle_connections_are_closed() {
    use std::io::Read;
    let data = tempfile::tempdir().unwrap();
    let node = Node::start_with(
        data.path(),
        &[
            "--identity-rate",
            "1",
            "--identity-burst",
            "5",
            "--connections-per-ip",
            "8",
            "--idle-timeout-s",
            "1",
        ],
    );
    let client = node.client.clone();
    let flooder = principal(&client, "flood-flooder").await;
    let payee = principal(&client, "flood-payee").await;
    let honest = principal(&client, "flood-honest").await;
    client.faucet(did(&flooder), usd(1)).await.unwrap();
    client.faucet(did(&honest), usd(1)).await.unwrap();
    // The flooder's registration used one token of its burst of 5.
    let (mut accepted, mut limited) = (0, 0);
    for i in 0..12 {
        let pay = kit::transfer(
            did(&flooder),
            did(&payee),
            Amount::from_atomic(1),
            &format!("f{i}"),
        );
        match client.submit(&flooder, &pay).await {
            Ok(_) => accepted += 1,
            Err(ClientError::Api { status: 429, error }) => {
                assert_eq!(error.code, "rate_limited");
                limited += 1;
            }
            Err(other) => panic!("{other}"),
        }
    }
    // Four tokens were left and one more refills each second the loop
    // takes (well under two on any machine).
    assert!(
        (4..=6).contains(&accepted) && limited >= 6,
        "accepted {accepted} of a burst of 5 at one per second"
    );
    assert_eq!(accepted + limited, 12);
    // Another identity is not slowed by the flood.
    let pay = kit::transfer(did(&honest), did(&payee), Amount::from_atomic(1), "h");
    client.submit(&honest, &pay).await.unwrap();
    let metrics = reqwest::get(format!("{}/metrics", node.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains(&format!("agentrail_rate_limited_total {limited}")));

    // Eight idle connections fill an address's quota: the ninth is told 429
    // and closed, before any byte of a request. They come from 127.0.0.2,
    // whose count starts at zero (the client's pooled connections from
    // 127.0.0.1 are released whenever the node notices they closed).
    drop(client);
    let address: std::net::SocketAddr = node.url.trim_start_matches("http://").parse().unwrap();
    let from_other_address = || async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let stream = socket.connect(address).await.unwrap().into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        stream
    };
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(from_other_address().await);
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut ninth = from_other_address().await;
    ninth
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = String::new();
    ninth.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(
        answer.contains("too_many_connections") && answer.contains("retry-after: 1"),
        "{answer}"
    );
    // The idle ones are closed after the one-second idle timeout, and the
    // address may connect again.
    for mut stream in idle {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        assert!(
            read.is_ok() && (answer.is_empty() || text.starts_with("HTTP/1.1 4")),
            "an idle connection is closed, at most with a 4xx: {read:?} {text:?}"
        );
    }
    let fresh = Client::new(&node.url);
    fresh.health().await.expect("a new connection is served");
    finish("floods_get_429_and_idle_connections_are_closed", node).await;
}
