//! The economy past one buyer and one provider: a supply-chain order
//! across three providers (all legs land; the warehouse fails and the
//! order unwinds), a crowdsourced collection paid by score and speed, the
//! renewal as a subscription over several periods (on a second dev node
//! whose clock runs a day every three seconds), and a model platform whose
//! per-call fees split between the model's creator and its host.
//!
//! Commands are built from the core's public types and sent with the
//! public client, as an agent would.

use std::sync::Arc;

use agentrail_client::Client;
use agentrail_core::command::{Split, Transfer};
use agentrail_core::economy::{
    ApproveLeg, BountyStatus, DeliverLeg, LegRef, LegStatus, OrderLeg, OrderStatus, Period,
    PlaceOrder, PostBounty, ScoreContribution, SubmitContribution, Subscribe, SubscriptionStatus,
    bounty_payout,
};
use agentrail_core::grant::Limits;
use agentrail_core::market::{ListingKind, Pricing, PublishListing};
use agentrail_core::time::TimeScale;
use agentrail_core::{Amount, Command, Event};
use agentrail_example_text_stats::{STATS_PRICE, paid_routes};
use agentrail_log::LogKey;
use agentrail_pay::payer::{Method, Payer, PayerOptions};
use agentrail_pay::{Payee, PayeeOptions};
use anyhow::Context;

use crate::scenarios::{figure, limits, money};
use crate::{DemoOptions, Figure, World, expect, start_node, unix_ms, usd, verify_receipts};

fn hash(bytes: &[u8]) -> String {
    agentrail_sim::kit::sha256_hex(bytes)
}

// ----- supply chain -----------------------------------------------------------

fn supply_order(world: &World, id: &str) -> Command {
    let legs = [
        ("supplier", 60, "2,000 aluminium housings"),
        ("logistics", 25, "freight to Rotterdam"),
        ("warehouse", 15, "30 days of storage"),
    ];
    Command::PlaceOrder(PlaceOrder {
        order_id: id.into(),
        from: world.did("retailer"),
        legs: legs
            .iter()
            .map(|(name, price, description)| OrderLeg {
                provider: world.did(name),
                price: usd(*price, 0),
                deadline_s: 86_400,
                description: (*description).into(),
            })
            .collect(),
        atomic: true,
        review_window_s: Some(3_600),
        arbiter: Some(world.did("arbiter")),
        category: None,
    })
}

fn deliver(id: &str, leg: u8) -> Command {
    Command::DeliverLeg(DeliverLeg {
        order_id: id.into(),
        leg,
        result_hash: hash(format!("{id}/{leg}: delivery note").as_bytes()),
        manifest: Vec::new(),
    })
}

fn approve(id: &str, leg: u8) -> Command {
    Command::ApproveLeg(ApproveLeg {
        order_id: id.into(),
        leg,
        result_hash: hash(format!("{id}/{leg}: delivery note").as_bytes()),
    })
}

pub(crate) async fn supply_chain(
    world: &mut World,
    figures: &mut Vec<Figure>,
    _: DemoOptions,
) -> anyhow::Result<()> {
    world.principal("retailer").await?;
    world.fund("retailer", usd(250, 0)).await?;
    for name in ["supplier", "logistics", "warehouse"] {
        world.principal(name).await?;
    }
    let providers = ["supplier", "logistics", "warehouse"];
    let before = world.balance("retailer").await?.0;

    // Every leg lands: nothing is paid until the last approval.
    world
        .submit("retailer", supply_order(world, "order-1"))
        .await?;
    expect(
        world.balance("retailer").await?.1 == usd(100, 0),
        "the order's total is held in one command",
    )?;
    for (leg, name) in providers.iter().enumerate() {
        world.submit(name, deliver("order-1", leg as u8)).await?;
    }
    world.submit("retailer", approve("order-1", 0)).await?;
    world.submit("retailer", approve("order-1", 1)).await?;
    expect(
        world.balance("supplier").await?.0.is_zero(),
        "an atomic order pays no leg early",
    )?;
    // The supplier cannot approve its own leg to be paid early.
    let (code, _) = world.refused("supplier", approve("order-1", 0)).await?;
    expect(
        code == "not_authorized",
        format!("an early approval: {code}"),
    )?;
    let last = world.submit("retailer", approve("order-1", 2)).await?;
    expect(
        last.events
            .iter()
            .any(|event| matches!(event, Event::OrderCompleted { .. })),
        "the last approval completes the order",
    )?;
    let mut paid = Vec::new();
    for name in providers {
        paid.push(format!("{name} {}", money(world.balance(name).await?.0)));
    }
    figure(figures, "order 1 (every leg lands)", paid.join(", "));
    expect(
        world.balance("supplier").await?.0 == usd(60, 0)
            && world.balance("logistics").await?.0 == usd(25, 0)
            && world.balance("warehouse").await?.0 == usd(15, 0),
        "each provider is paid its leg's price",
    )?;

    // The warehouse fails: the order unwinds whole.
    world
        .submit("retailer", supply_order(world, "order-2"))
        .await?;
    world.submit("supplier", deliver("order-2", 0)).await?;
    world.submit("logistics", deliver("order-2", 1)).await?;
    world.submit("retailer", approve("order-2", 0)).await?;
    world.submit("retailer", approve("order-2", 1)).await?;
    let declined = world
        .submit(
            "warehouse",
            Command::DeclineLeg(LegRef {
                order_id: "order-2".into(),
                leg: 2,
            }),
        )
        .await?;
    let refunded = declined
        .events
        .iter()
        .find_map(|event| match event {
            Event::OrderUnwound { refunded, .. } => Some(*refunded),
            _ => None,
        })
        .context("the warehouse's refusal unwinds the order")?;
    figure(
        figures,
        "order 2 (warehouse fails)",
        format!("unwound, {} returned", money(refunded)),
    );
    let order = world.actor("retailer").client.order("order-2").await?;
    expect(
        order.status == OrderStatus::Unwound
            && order.held.is_zero()
            && order
                .legs
                .iter()
                .filter(|leg| leg.status == LegStatus::Unwound)
                .count()
                == 2,
        "the approved legs unwound with the failed one",
    )?;
    expect(refunded == usd(100, 0), "the whole total returned")?;
    let (after, held) = world.balance("retailer").await?;
    expect(
        held.is_zero() && after == before.checked_sub(usd(100, 0)).context("paid")?,
        "the retailer paid only the order that landed",
    )?;
    expect(
        world.balance("supplier").await?.0 == usd(60, 0),
        "the failed order paid nobody",
    )?;
    figure(figures, "retailer paid", money(usd(100, 0)));
    Ok(())
}

// ----- crowdsourcing ---------------------------------------------------------

pub(crate) async fn crowdsourcing(
    world: &mut World,
    figures: &mut Vec<Figure>,
    _: DemoOptions,
) -> anyhow::Result<()> {
    let lead = world.principal("collector").await?;
    world.fund("collector", usd(40, 0)).await?;
    let validator = world.principal("qa").await?;
    let regions = ["region-eu", "region-us", "region-asia"];
    for name in regions {
        world.principal(name).await?;
    }
    let price = usd(10, 0);
    world
        .submit(
            "collector",
            Command::PostBounty(PostBounty {
                bounty_id: "prices-q4".into(),
                from: lead,
                price,
                contributions: 3,
                validator,
                full_pay_s: 3,
                close_s: 13,
                scoring_window_s: Some(600),
                category: None,
                description: "retail prices of 200 staples, one region each".into(),
            }),
        )
        .await?;
    let mut submitted = Vec::new();
    for (index, name) in regions.iter().enumerate() {
        if index == 2 {
            // The last region arrives after the full-pay window.
            tokio::time::sleep(std::time::Duration::from_millis(4_500)).await;
        }
        let result = format!("{name}: 200 prices, 2026-Q4");
        let response = world
            .submit(
                name,
                Command::SubmitContribution(SubmitContribution {
                    bounty_id: "prices-q4".into(),
                    contribution_id: (*name).into(),
                    contributor: world.did(name),
                    result_hash: hash(result.as_bytes()),
                    manifest: Vec::new(),
                }),
            )
            .await?;
        let speed = response
            .events
            .iter()
            .find_map(|event| match event {
                Event::ContributionSubmitted { speed_bps, .. } => Some(*speed_bps),
                _ => None,
            })
            .context("a submission states its speed")?;
        submitted.push((*name, result, speed));
    }
    expect(
        submitted[0].2 == 10_000 && submitted[2].2 < 10_000,
        "late work earns less",
    )?;
    let scores = [9_000u16, 7_000, 10_000];
    let score = |name: &str, result: &str, score_bps| {
        Command::ScoreContribution(ScoreContribution {
            bounty_id: "prices-q4".into(),
            contribution_id: name.into(),
            result_hash: hash(result.as_bytes()),
            score_bps,
        })
    };
    // Nobody but the named validator scores.
    let (code, _) = world
        .refused("collector", score(submitted[0].0, &submitted[0].1, 10_000))
        .await?;
    expect(code == "not_validator", format!("the lead scored: {code}"))?;
    let mut paid = Amount::ZERO;
    let mut refunded = Amount::ZERO;
    for ((name, result, speed), score_bps) in submitted.iter().zip(scores) {
        let response = world.submit("qa", score(name, result, score_bps)).await?;
        let earned = bounty_payout(price, score_bps, *speed);
        paid = paid.checked_add(earned).context("payouts")?;
        expect(
            world.balance(name).await?.0 == earned,
            format!("{name} earns price × score × speed"),
        )?;
        figure(
            figures,
            name,
            format!(
                "score {}%, speed {:.2}%, paid {}",
                score_bps / 100,
                f64::from(*speed) / 100.0,
                money(earned)
            ),
        );
        for event in &response.events {
            if let Event::BountyClosed { refunded: back, .. } = event {
                refunded = *back;
            }
        }
    }
    let bounty = world.actor("collector").client.bounty("prices-q4").await?;
    expect(
        bounty.status == BountyStatus::Closed,
        "the last score closes the bounty",
    )?;
    expect(
        paid.checked_add(refunded) == Some(usd(30, 0)),
        "payouts and the refund are the budget, exactly",
    )?;
    figure(figures, "budget", money(bounty.budget));
    figure(figures, "returned to the lead", money(refunded));
    let (left, held) = world.balance("collector").await?;
    expect(
        held.is_zero() && left == usd(40, 0).checked_sub(paid).context("paid")?,
        "the lead paid exactly the payouts",
    )
}

// ----- the renewal as a subscription -------------------------------------------

/// Real milliseconds of a ledger day on the subscription's node.
const DAY_MS: u64 = 3_000;

pub(crate) async fn subscription(
    _: &mut World,
    figures: &mut Vec<Figure>,
    _: DemoOptions,
) -> anyhow::Result<()> {
    let data = tempfile::tempdir().context("a temporary data directory")?;
    let clock = TimeScale {
        origin_ms: unix_ms(),
        scale: (86_400_000 / DAY_MS) as u32,
    };
    let node = start_node(data.path(), None, Some(clock)).await?;
    let url = format!("http://{}", node.address);
    let mut world = World {
        url: url.clone(),
        actors: Vec::new(),
        deposited: Amount::ZERO,
        withdrawn: Amount::ZERO,
        chain: None,
        clock: Some(clock),
    };
    let outcome = renew_monthly(&mut world, figures).await;
    // Every receipt of this node too, and its money.
    let observer = world.client();
    let log_key = LogKey::parse(&observer.log_key().await?).context("the node's log key")?;
    let entries = observer.health().await?.journal_len;
    let (verified, errors) = verify_receipts(&observer, &log_key, entries).await;
    node.stop().await?;
    outcome?;
    expect(errors.is_empty(), errors.join("; "))?;
    expect(
        verified == entries,
        "every receipt of the subscription's node verifies",
    )?;
    figure(
        figures,
        "receipts verified",
        format!("{verified} of {entries}"),
    );
    Ok(())
}

/// Waits until a tenth of the next ledger day has passed.
async fn next_day(world: &World) {
    let now = world.now();
    let start = Period::Day.next_start(now);
    let ledger_ms = (start.0 - now.0 + 8_640) * 1_000;
    let real_ms = ledger_ms * DAY_MS / 86_400_000;
    tokio::time::sleep(std::time::Duration::from_millis(real_ms)).await;
}

async fn renew_monthly(world: &mut World, figures: &mut Vec<Figure>) -> anyhow::Result<()> {
    world.principal("sub-owner").await?;
    let limits = Limits {
        total_budget: Some(usd(60, 0)),
        ..limits(usd(25, 0), usd(25, 0))
    };
    world.agent("sub-assistant", "sub-owner", limits).await?;
    world.fund("sub-assistant", usd(100, 0)).await?;
    world.principal("vm-host").await?;
    let (payer, payee) = (world.did("sub-assistant"), world.did("vm-host"));
    world
        .submit(
            "sub-assistant",
            Command::Subscribe(Subscribe {
                subscription_id: "vm-42".into(),
                from: payer,
                payee,
                amount: usd(20, 0),
                period: Period::Day,
                ends_at: None,
                category: None,
            }),
        )
        .await?;
    let collect = |amount| {
        Command::CollectSubscription(agentrail_core::economy::CollectSubscription {
            subscription_id: "vm-42".into(),
            amount,
        })
    };
    let mut collected = 0;
    let mut refusals = Vec::new();
    for _ in 0..4 {
        // Each collect just after a ledger day begins: its retry and the
        // second collect land in the same day.
        next_day(world).await;
        match world.attempt("vm-host", &collect(usd(20, 0))).await {
            Ok(_) => {
                collected += 1;
                // A second collect in the same period is refused.
                let (code, _) = world.refused("vm-host", collect(usd(1, 0))).await?;
                expect(
                    code == "subscription_already_collected",
                    format!("a second collect in a period: {code}"),
                )?;
            }
            Err(agentrail_client::ClientError::Api { error, .. }) => refusals.push(error.code),
            Err(other) => return Err(other.into()),
        }
    }
    // 20 a day, the mandate's total budget 60: three periods, then refused.
    expect(
        collected == 3,
        format!("{collected} periods collected, not 3"),
    )?;
    expect(
        refusals == ["budget_exceeded"],
        format!("the fourth period was refused by the budget: {refusals:?}"),
    )?;
    figure(
        figures,
        "periods collected",
        format!("{collected} × {}", money(usd(20, 0))),
    );
    figure(figures, "refused by the mandate", refusals.join(", "));
    // The owner revokes the agent: the subscription stops with it.
    world
        .submit(
            "sub-owner",
            Command::Revoke(agentrail_core::command::Revoke { subject: payer }),
        )
        .await?;
    next_day(world).await;
    let (code, _) = world.refused("vm-host", collect(usd(1, 0))).await?;
    expect(
        code == "grant_revoked",
        format!("after the revocation: {code}"),
    )?;
    figure(figures, "after the revocation", code);
    let view = world.actor("vm-host").client.subscription("vm-42").await?;
    expect(
        view.collected == usd(60, 0) && view.status == SubscriptionStatus::Active,
        "the subscription's record counts what was collected",
    )?;
    expect(
        world.balance("vm-host").await?.0 == usd(60, 0),
        "the host received every period",
    )?;
    // The owner's money is all there: deposits = balances.
    let mut total = Amount::ZERO;
    for name in ["sub-owner", "sub-assistant", "vm-host"] {
        let (available, held) = world.balance(name).await?;
        total = total
            .checked_add(available)
            .and_then(|sum| sum.checked_add(held))
            .context("balances")?;
    }
    expect(
        total == world.deposited,
        "money is conserved on the subscription's node",
    )?;
    // A direct payment after the revocation fails as well.
    let (code, _) = world
        .refused(
            "sub-assistant",
            Command::Transfer(Transfer {
                from: payer,
                to: payee,
                amount: usd(1, 0),
                category: None,
                memo: None,
                idempotency_key: "after-revoke".into(),
            }),
        )
        .await?;
    expect(
        code == "grant_revoked",
        format!("a transfer after the revocation: {code}"),
    )
}

// ----- model platform ----------------------------------------------------------

pub(crate) async fn model_platform(
    world: &mut World,
    figures: &mut Vec<Figure>,
    options: DemoOptions,
) -> anyhow::Result<()> {
    let creator = world.principal("model-creator").await?;
    let host = world.principal("model-host").await?;
    world.principal("app-owner").await?;
    world
        .agent("app-agent", "app-owner", limits(usd(5, 0), usd(50, 0)))
        .await?;
    world.fund("app-agent", usd(20, 0)).await?;
    let listing = PublishListing {
        listing_id: "tiny-llm".into(),
        provider: host,
        kind: ListingKind::Service,
        name: "tiny-llm, hosted".into(),
        description: "a small model's inference, paid per call; 70% to its creator".into(),
        capabilities: vec!["inference".into()],
        pricing: Pricing::PerCall { price: STATS_PRICE },
        endpoint: None,
        revenue_share: vec![
            Split {
                to: creator,
                bps: 7_000,
            },
            Split {
                to: host,
                bps: 3_000,
            },
        ],
        stake: None,
        content_hash: None,
    };
    world
        .submit("model-host", Command::PublishListing(listing))
        .await?;

    let store = tempfile::tempdir()?;
    let provider = world.actor("model-host");
    let payee = Payee::open(
        store.path(),
        Client::new(&world.url),
        provider.key.clone(),
        PayeeOptions::default(),
    )
    .await?;
    payee.split_by_listing("tiny-llm");
    let network = provider.client.health().await?.network;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = format!("http://{}", listener.local_addr()?);
    let serving = payee.clone();
    let server =
        tokio::spawn(
            async move { axum::serve(listener, paid_routes(serving, &network, None)).await },
        );
    let buyer = world.actor("app-agent");
    let payer = Arc::new(
        Payer::new(
            buyer.client.clone(),
            buyer.key.clone(),
            buyer.did,
            PayerOptions::default(),
        )
        .await?,
    );
    let calls = (options.calls / 4).max(10);
    for _ in 0..calls {
        let paid = payer
            .fetch(Method::POST, &format!("{api}/stats"), b"a prompt".to_vec())
            .await?;
        expect(
            paid.status.is_success(),
            format!("the model answered {}", paid.status),
        )?;
    }
    payer.close_all().await?;
    let channel_id = crate::channel_opened_by(&buyer.client, &buyer.did).await?;
    server.abort();
    payee.close(&channel_id).await?;
    payee.shutdown().await?;
    let fees = STATS_PRICE.checked_mul(calls as u128).context("fees")?;
    let (to_creator, to_host) = (
        world.balance("model-creator").await?.0,
        world.balance("model-host").await?.0,
    );
    figure(figures, "paid calls", calls);
    figure(figures, "fees", money(fees));
    figure(figures, "model creator (70%)", money(to_creator));
    figure(figures, "host (30%)", money(to_host));
    expect(
        to_creator.checked_add(to_host) == Some(fees),
        "the split pays out every fee, exactly",
    )?;
    // Each collect splits exactly (largest remainder), so the creator's
    // total is 70 % of the fees to within a unit per collect.
    expect(
        to_creator
            .atomic()
            .abs_diff(fees.share_floor(7_000).atomic())
            <= 4,
        "the creator receives its 70 %",
    )
}
