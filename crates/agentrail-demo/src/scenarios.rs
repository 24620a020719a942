//! The scenarios of the product brief, each a script of agents talking to
//! the node over HTTP, with the expectations that must hold.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use agentrail_client::Client;
use agentrail_client::market::{
    BuyerMove, BuyerStrategy, ProviderMove, ProviderStrategy, mandate_ceiling,
};
use agentrail_core::command::Split;
use agentrail_core::constants::QUOTE_ROUNDS_MAX;
use agentrail_core::grant::Limits;
use agentrail_core::market::{
    Approver, Discovery, ListingKind, Pricing, PublishListing, RequestQuotes, RfqQuery, TaskStatus,
};
use agentrail_core::{Amount, Did, Event};
use agentrail_example_text_stats::{STATS_PRICE, paid_routes};
use agentrail_pay::payer::{Method, Payer, PayerOptions};
use agentrail_pay::{Payee, PayeeOptions};
use agentrail_sim::kit;
use anyhow::{Context, bail};

use crate::{DemoOptions, Figure, World, expect, usd};

type Outcome<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>>;
type Scenario = for<'a> fn(&'a mut World, &'a mut Vec<Figure>, DemoOptions) -> Outcome<'a>;

/// Every scenario, in the order they run (later ones meet earlier players).
pub const ALL: [(&str, Scenario); 11] = [
    ("3 a.m. renewal", |w, f, o| Box::pin(renewal(w, f, o))),
    ("pay-per-call API", |w, f, o| {
        Box::pin(pay_per_call(w, f, o))
    }),
    ("five agents write an article", |w, f, o| {
        Box::pin(article(w, f, o))
    }),
    ("data-job market", |w, f, o| Box::pin(data_job(w, f, o))),
    ("creator royalties", |w, f, o| Box::pin(royalties(w, f, o))),
    ("dispute", |w, f, o| Box::pin(dispute(w, f, o))),
    ("rogue agent", |w, f, o| Box::pin(rogue(w, f, o))),
    ("supply_chain", |w, f, o| {
        Box::pin(crate::economy::supply_chain(w, f, o))
    }),
    ("crowdsourcing", |w, f, o| {
        Box::pin(crate::economy::crowdsourcing(w, f, o))
    }),
    ("subscription", |w, f, o| {
        Box::pin(crate::economy::subscription(w, f, o))
    }),
    ("model_platform", |w, f, o| {
        Box::pin(crate::economy::model_platform(w, f, o))
    }),
];

pub(crate) fn figure(figures: &mut Vec<Figure>, label: &str, value: impl std::fmt::Display) {
    figures.push(Figure {
        label: label.to_owned(),
        value: value.to_string(),
    });
}

pub(crate) fn money(amount: Amount) -> String {
    format!("{} USD", amount.to_decimal_string())
}

pub(crate) fn limits(max_per_payment: Amount, daily_budget: Amount) -> Limits {
    kit::limits(max_per_payment, daily_budget)
}

/// A service listing priced per task.
fn service(
    id: &str,
    provider: Did,
    capabilities: &[&str],
    price: Amount,
    stake: Option<Amount>,
) -> PublishListing {
    PublishListing {
        description: format!("{id}: agentrail demo provider"),
        endpoint: Some(format!("https://{id}.example/a2a")),
        stake,
        ..kit::listing(id, provider, capabilities, price)
    }
}

/// A provider bidding on requests for quotes.
struct Bidder<'a> {
    name: &'a str,
    strategy: ProviderStrategy,
    listing: Option<&'a str>,
}

fn bidder<'a>(
    name: &'a str,
    reservation: Amount,
    markup_bps: u16,
    listing: Option<&'a str>,
) -> Bidder<'a> {
    Bidder {
        name,
        strategy: ProviderStrategy {
            reservation_price: reservation,
            markup_bps,
        },
        listing,
    }
}

/// What a negotiation ended with.
struct Hire {
    provider: String,
    price: Amount,
    quotes: usize,
    rounds: u8,
    terms_hash: String,
}

/// The most `buyer` may commit in one payment: its mandate's ceiling for
/// an agent, the request's budget for a principal.
async fn ceiling(world: &World, buyer: &str, budget_max: Amount) -> anyhow::Result<Amount> {
    let actor = world.actor(buyer);
    match actor.client.grant(&actor.did).await {
        Ok(grant) => Ok(mandate_ceiling(&grant).min(budget_max)),
        Err(error) if error.code() == Some("unknown_grant") => Ok(budget_max),
        Err(error) => Err(error.into()),
    }
}

/// A request for quotes, quotes from every bidder whose reservation fits,
/// and the buyer strategy against the provider strategies until a quote is
/// accepted as `task_id`.
async fn hire(
    world: &World,
    buyer: &str,
    request: RequestQuotes,
    bidders: &[Bidder<'_>],
    task_id: &str,
) -> anyhow::Result<Hire> {
    let rfq_id = request.rfq_id.clone();
    let budget_max = request.budget_max;
    let capability = request.capability.clone();
    world.submit(buyer, kit::request_quotes(request)).await?;
    for bidder in bidders {
        // Each provider looks for open requests it may quote on.
        let open = world
            .actor(bidder.name)
            .client
            .rfqs(&RfqQuery {
                capability: Some(capability.clone()),
                provider: Some(world.did(bidder.name)),
                offset: 0,
                limit: 20,
            })
            .await?;
        let rfq = open
            .rfqs
            .into_iter()
            .find(|rfq| rfq.request.rfq_id == rfq_id)
            .with_context(|| format!("{} does not find the request for quotes", bidder.name))?;
        if let Some(ask) = bidder.strategy.ask(&rfq) {
            let quote = kit::quote(
                &format!("{rfq_id}-{}", bidder.name),
                &rfq_id,
                world.did(bidder.name),
                bidder.listing,
                ask,
            );
            world.submit(bidder.name, quote).await?;
        }
    }
    let buyer_client = &world.actor(buyer).client;
    let strategy = BuyerStrategy::default();
    let rfq = buyer_client.rfq(&rfq_id).await?;
    let mut reputations = BTreeMap::new();
    for quote in &rfq.quotes {
        let score = buyer_client.reputation(&quote.provider).await?.score;
        reputations.insert(quote.provider, score);
    }
    let limit = ceiling(world, buyer, budget_max).await?;
    let chosen = strategy
        .choose(&rfq, &reputations, limit)
        .context("no quote fits the buyer's mandate")?;
    let quote_id = chosen.quote_id.clone();
    let bidder = bidders
        .iter()
        .find(|bidder| world.did(bidder.name) == chosen.provider)
        .context("the chosen quote names a bidder")?;
    for _ in 0..QUOTE_ROUNDS_MAX {
        let quote = buyer_client
            .rfq(&rfq_id)
            .await?
            .quotes
            .into_iter()
            .find(|quote| quote.quote_id == quote_id)
            .context("the quote is listed")?;
        match strategy.respond(&quote, limit) {
            BuyerMove::Accept => {
                let funded = world.submit(buyer, kit::accept(&quote_id, task_id)).await?;
                let Some(Event::TaskFunded { terms_hash, .. }) = funded.events.last() else {
                    bail!("acceptance did not fund a task: {:?}", funded.events);
                };
                return Ok(Hire {
                    provider: bidder.name.to_owned(),
                    price: quote.price,
                    quotes: rfq.quotes.len(),
                    rounds: quote.rounds,
                    terms_hash: terms_hash.clone(),
                });
            }
            BuyerMove::Counter(price) => {
                world.submit(buyer, kit::counter(&quote_id, price)).await?;
                let seen = world.actor(bidder.name).client.rfq(&rfq_id).await?;
                let quote = seen
                    .quotes
                    .iter()
                    .find(|quote| quote.quote_id == quote_id)
                    .context("the provider sees its quote")?;
                if let ProviderMove::Offer(price) = bidder.strategy.respond(quote) {
                    world
                        .submit(bidder.name, kit::counter(&quote_id, price))
                        .await?;
                }
            }
            BuyerMove::WalkAway => bail!(
                "the buyer walked away from {quote_id} at {}",
                money(quote.price)
            ),
        }
    }
    bail!("no agreement on {quote_id} within {QUOTE_ROUNDS_MAX} offers")
}

/// The buyer (or the validator) checks that what it received is what was
/// delivered, then approves with the result's hash.
async fn approve_received(
    world: &World,
    approver: &str,
    task_id: &str,
    received: &[u8],
) -> anyhow::Result<Vec<Event>> {
    let task = world.actor(approver).client.task(task_id).await?;
    let TaskStatus::Delivered { delivery, .. } = &task.status else {
        bail!("task {task_id} is {}, not delivered", task.status.name());
    };
    expect(
        delivery.result_hash == kit::sha256_hex(received),
        "the delivered hash matches the result received",
    )?;
    Ok(world
        .submit(approver, kit::approve_task(task_id, received))
        .await?
        .events)
}

fn renewal_limits() -> Limits {
    Limits {
        total_budget: Some(usd(300, 0)),
        allowed_categories: Some(vec!["compute".into()]),
        approval_threshold: Some(usd(35, 0)),
        ..limits(usd(40, 0), usd(100, 0))
    }
}

async fn renewal(
    world: &mut World,
    figures: &mut Vec<Figure>,
    _: DemoOptions,
) -> anyhow::Result<()> {
    world.principal("owner").await?;
    world.principal("arbiter").await?;
    world.agent("assistant", "owner", renewal_limits()).await?;
    world.fund("assistant", usd(100, 0)).await?;
    let providers = [
        ("nimbus", usd(22, 0), 3_000, Some(usd(15, 0))),
        ("stratus", usd(18, 0), 5_000, Some(usd(10, 0))),
        ("cirrus", usd(30, 0), 1_000, None),
    ];
    for (name, reservation, markup, stake) in providers {
        let did = world.principal(name).await?;
        world.fund(name, usd(50, 0)).await?;
        let ask = reservation
            .checked_add(reservation.share_floor(markup))
            .context("price")?;
        let listing = service(
            &format!("{name}-vm"),
            did,
            &["compute", "vm-renewal"],
            ask,
            stake,
        );
        world.submit(name, kit::publish(listing)).await?;
    }
    let assistant = world.did("assistant");
    let found = world
        .actor("assistant")
        .client
        .listings(&Discovery {
            capability: Some("vm-renewal".into()),
            max_price: Some(usd(40, 0)),
            limit: 10,
            ..Discovery::default()
        })
        .await?;
    expect(
        found.total == 3,
        format!("three compute providers found, not {}", found.total),
    )?;
    figure(figures, "providers found", found.total);
    let card = world
        .actor("assistant")
        .client
        .agent_card(&world.did("stratus"))
        .await?;
    expect(
        card.skills.len() == 1,
        "stratus's A2A card lists its listing",
    )?;

    let request = RequestQuotes {
        description: "renew vm-42 for 30 days before it expires at 03:00".into(),
        review_window_s: Some(600),
        arbiter: Some(world.did("arbiter")),
        invited: providers.iter().map(|(name, ..)| world.did(name)).collect(),
        ..kit::rfq("renewal-rfq", assistant, "compute", usd(40, 0), 3_600)
    };
    let bidders: Vec<Bidder> = providers
        .iter()
        .map(|(name, reservation, markup, _)| {
            bidder(
                name,
                *reservation,
                *markup,
                Some(match *name {
                    "nimbus" => "nimbus-vm",
                    "stratus" => "stratus-vm",
                    _ => "cirrus-vm",
                }),
            )
        })
        .collect();
    let hired = hire(world, "assistant", request, &bidders, "renewal-task").await?;
    figure(figures, "quotes", hired.quotes);
    figure(
        figures,
        "hired",
        format!(
            "{} at {} after {} offers",
            hired.provider,
            money(hired.price),
            hired.rounds
        ),
    );
    figure(figures, "terms hash", &hired.terms_hash[..16]);
    expect(
        hired.provider == "stratus",
        "the cheapest provider wins among equals",
    )?;
    expect(
        hired.price <= usd(35, 0),
        "the price stays within the mandate",
    )?;

    let result = b"vm-42 renewed until 2027-01-01T03:00Z; invoice 2026-1201-42";
    let provider = hired.provider.clone();
    world
        .submit(&provider, kit::deliver("renewal-task", result, &[]))
        .await?;
    let events = approve_received(world, "assistant", "renewal-task", result).await?;
    expect(
        matches!(
            &events[..],
            [Event::TaskApproved {
                by: Approver::Buyer,
                ..
            }]
        ),
        "the assistant approves the delivery",
    )?;
    let (available, held) = world.balance("assistant").await?;
    expect(
        available == usd(100, 0).checked_sub(hired.price).context("price")? && held.is_zero(),
        "the assistant paid exactly the agreed price",
    )?;

    // The owner wakes up: every line of the report is checked offline.
    let owner = &world.actor("owner").client;
    let history = owner.history(&assistant, None, 50).await?;
    let log_key = agentrail_log::LogKey::parse(&owner.log_key().await?)?;
    let mut verified = 0;
    let mut lines = Vec::new();
    for item in history.items.iter().rev() {
        let proven = owner.receipt(item.index).await?.verify(&log_key)?;
        expect(
            proven.events == item.events,
            "the receipt proves the history line",
        )?;
        verified += 1;
        let kinds: Vec<String> = item
            .events
            .iter()
            .filter_map(|event| serde_json::to_value(event).ok())
            .filter_map(|value| value["type"].as_str().map(str::to_owned))
            .collect();
        lines.push(format!("#{} {}", item.index, kinds.join("+")));
    }
    figure(figures, "report lines", lines.join(", "));
    figure(
        figures,
        "morning report",
        format!(
            "{} entries, {verified} receipts verified offline",
            history.items.len()
        ),
    );
    let passport = owner.passport(&world.did(&provider)).await?;
    let reputation = passport
        .reputation
        .context("a provider's passport has a reputation")?;
    figure(
        figures,
        "provider's passport",
        format!(
            "{} listing(s), reputation {} after {} paid task(s)",
            passport.listings.len(),
            reputation.score,
            reputation.tasks_paid
        ),
    );
    expect(
        reputation.tasks_paid == 1,
        "the renewal counts for the provider",
    )?;
    let spent = owner.grant(&assistant).await?.spent_total;
    figure(
        figures,
        "mandate spent",
        format!("{} of 300 USD", spent.to_decimal_string()),
    );
    expect(spent == hired.price, "the mandate counted the renewal once")
}

async fn pay_per_call(
    world: &mut World,
    figures: &mut Vec<Figure>,
    options: DemoOptions,
) -> anyhow::Result<()> {
    world
        .agent("content-agent", "owner", limits(usd(5, 0), usd(50, 0)))
        .await?;
    world.fund("content-agent", usd(20, 0)).await?;
    world.principal("stats-api").await?;
    let store = tempfile::tempdir()?;
    let provider = world.actor("stats-api");
    let payee = Payee::open(
        store.path(),
        Client::new(&world.url),
        provider.key.clone(),
        PayeeOptions::default(),
    )
    .await?;
    let collector = payee.spawn_collector();
    let network = provider.client.health().await?.network;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = format!("http://{}", listener.local_addr()?);
    let serving = payee.clone();
    let server =
        tokio::spawn(
            async move { axum::serve(listener, paid_routes(serving, &network, None)).await },
        );

    let buyer = world.actor("content-agent");
    let before = buyer.client.health().await?.journal_len;
    let payer = Arc::new(
        Payer::new(
            buyer.client.clone(),
            buyer.key.clone(),
            buyer.did,
            PayerOptions::default(),
        )
        .await?,
    );
    let started = std::time::Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (payer, next, url, calls) = (
            Arc::clone(&payer),
            Arc::clone(&next),
            format!("{api}/stats"),
            options.calls,
        );
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < calls {
                let paid = payer
                    .fetch(
                        Method::POST,
                        &url,
                        b"an image caption to analyse, paid per call".to_vec(),
                    )
                    .await?;
                anyhow::ensure!(paid.status.is_success(), "the API answered {}", paid.status);
            }
            anyhow::Ok(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    figure(
        figures,
        "paid calls",
        format!(
            "{} in {elapsed:.2} s ({:.0}/s)",
            options.calls,
            options.calls as f64 / elapsed
        ),
    );
    let expected = STATS_PRICE
        .checked_mul(options.calls as u128)
        .context("price")?;
    expect(
        payer.spent() == expected,
        format!("spent {} for {} calls", money(payer.spent()), options.calls),
    )?;
    payer.close_all().await?;
    let channel_id = crate::channel_opened_by(&buyer.client, &buyer.did).await?;
    server.abort();
    collector.abort();
    payee.close(&channel_id).await?;
    payee.shutdown().await?;
    let after = buyer.client.health().await?.journal_len;
    let (earned, _) = world.balance("stats-api").await?;
    let (left, held) = world.balance("content-agent").await?;
    figure(figures, "provider earned", money(earned));
    figure(
        figures,
        "ledger commands",
        format!("{} for {} payments", after - before, options.calls),
    );
    expect(earned == expected, "the provider collected every call")?;
    expect(
        held.is_zero() && left == usd(20, 0).checked_sub(expected).context("price")?,
        "the rest returned to the buyer",
    )?;
    expect(
        after - before <= 6,
        "the ledger saw the channel a handful of times",
    )
}

async fn article(
    world: &mut World,
    figures: &mut Vec<Figure>,
    _: DemoOptions,
) -> anyhow::Result<()> {
    world.principal("magazine").await?;
    world.fund("magazine", usd(150, 0)).await?;
    world.principal("studio").await?;
    let roles = [
        ("researcher", 1_800),
        ("writer", 3_400),
        ("illustrator", 2_000),
        ("proofreader", 1_300),
        ("layout", 1_500),
    ];
    for (role, _) in roles {
        world
            .agent(role, "studio", limits(usd(1, 0), usd(1, 0)))
            .await?;
    }
    let price = usd(99, 999_999);
    let writer = world.did("writer");
    world
        .submit(
            "writer",
            kit::publish(service("article-studio", writer, &["writing"], price, None)),
        )
        .await?;
    let request = RequestQuotes {
        description: "a 2,000-word feature on agent payments, with images".into(),
        ..kit::rfq(
            "article-rfq",
            world.did("magazine"),
            "writing",
            usd(100, 0),
            7_200,
        )
    };
    let hired = hire(
        world,
        "magazine",
        request,
        &[bidder("writer", price, 0, Some("article-studio"))],
        "article-task",
    )
    .await?;
    figure(
        figures,
        "hired",
        format!(
            "writer's studio at {} after {} offers",
            money(hired.price),
            hired.rounds
        ),
    );
    let manifest: Vec<(Did, u16)> = roles
        .iter()
        .map(|(role, bps)| (world.did(role), *bps))
        .collect();
    let text = b"# Machines that pay\n... 2,000 words, five figures, laid out ...";
    world
        .submit("writer", kit::deliver("article-task", text, &manifest))
        .await?;
    let events = approve_received(world, "magazine", "article-task", text).await?;
    let Some(Event::TaskApproved { parts, .. }) = events.first() else {
        bail!("the approval paid nobody: {events:?}");
    };
    let total: u128 = parts.iter().map(|part| part.amount.atomic()).sum();
    expect(
        total == hired.price.atomic(),
        "the five parts sum to the price exactly",
    )?;
    for ((role, bps), part) in roles.iter().zip(parts) {
        let exact = hired.price.atomic() * u128::from(*bps);
        let floor = exact / 10_000;
        expect(part.to == world.did(role), "parts follow the manifest")?;
        expect(
            part.amount.atomic() == floor || part.amount.atomic() == floor + 1,
            format!("{role}'s part is its share, to the unit"),
        )?;
        figure(
            figures,
            role,
            format!("{} ({}%)", money(part.amount), f64::from(*bps) / 100.0),
        );
    }
    Ok(())
}

async fn data_job(
    world: &mut World,
    figures: &mut Vec<Figure>,
    _: DemoOptions,
) -> anyhow::Result<()> {
    world.principal("acme").await?;
    world.fund("acme", usd(100, 0)).await?;
    world.principal("qa-validator").await?;
    let labelers = [
        ("labeler-a", usd(14, 0), 4_000),
        ("labeler-b", usd(11, 0), 6_000),
        ("labeler-c", usd(16, 0), 1_000),
        ("labeler-d", usd(25, 0), 1_000),
    ];
    for (name, reservation, markup) in labelers {
        let did = world.principal(name).await?;
        let ask = reservation
            .checked_add(reservation.share_floor(markup))
            .context("price")?;
        world
            .submit(
                name,
                kit::publish(service(
                    &format!("{name}-labels"),
                    did,
                    &["data-labeling"],
                    ask,
                    None,
                )),
            )
            .await?;
    }
    let request = RequestQuotes {
        description: "label 10,000 product images; validated by qa".into(),
        validator: Some(world.did("qa-validator")),
        arbiter: Some(world.did("arbiter")),
        ..kit::rfq(
            "labels-rfq",
            world.did("acme"),
            "data-labeling",
            usd(20, 0),
            7_200,
        )
    };
    let names: Vec<String> = labelers
        .iter()
        .map(|(name, ..)| format!("{name}-labels"))
        .collect();
    let bidders: Vec<Bidder> = labelers
        .iter()
        .zip(&names)
        .map(|((name, reservation, markup), listing)| {
            bidder(name, *reservation, *markup, Some(listing.as_str()))
        })
        .collect();
    let hired = hire(world, "acme", request, &bidders, "labels-task").await?;
    figure(
        figures,
        "bids",
        format!(
            "{} (one provider's floor is above the budget)",
            hired.quotes
        ),
    );
    expect(
        hired.quotes == 3,
        "three of four labelers bid within the budget",
    )?;
    figure(
        figures,
        "winner",
        format!("{} at {}", hired.provider, money(hired.price)),
    );
    let labels = b"image-00001.jpg,shoe\nimage-00002.jpg,bag\n...";
    world
        .submit(&hired.provider, kit::deliver("labels-task", labels, &[]))
        .await?;
    let events = approve_received(world, "qa-validator", "labels-task", labels).await?;
    expect(
        matches!(
            &events[..],
            [Event::TaskApproved {
                by: Approver::Validator,
                ..
            }]
        ),
        "the validator approved by signing the result hash",
    )?;
    figure(
        figures,
        "approved by",
        "qa-validator (signed the result hash)",
    );
    Ok(())
}

async fn royalties(
    world: &mut World,
    figures: &mut Vec<Figure>,
    _: DemoOptions,
) -> anyhow::Result<()> {
    let ada = world.principal("ada").await?;
    let curator = world.principal("curator").await?;
    let corpus = b"A human-written corpus of 10,000 annotated sentences.";
    let listing = PublishListing {
        kind: ListingKind::Dataset,
        pricing: Pricing::PerCall {
            price: usd(0, 250_000),
        },
        content_hash: Some(kit::sha256_hex(corpus)),
        revenue_share: vec![
            Split {
                to: ada,
                bps: 8_000,
            },
            Split {
                to: curator,
                bps: 2_000,
            },
        ],
        description: "licensed per use; royalties to its creators".into(),
        ..kit::listing("ada-corpus", ada, &["data", "text-corpus"], usd(1, 0))
    };
    world.submit("ada", kit::publish(listing)).await?;
    let log_key = agentrail_log::LogKey::parse(&world.actor("ada").client.log_key().await?)?;
    let uses = [
        ("content-agent", "lic-content-1"),
        ("content-agent", "lic-content-2"),
        ("acme", "lic-acme-1"),
    ];
    for (licensee, license_id) in uses {
        let did = world.did(licensee);
        let response = world
            .submit(licensee, kit::license(license_id, "ada-corpus", did))
            .await?;
        // The licence is the receipt: anyone can check it offline.
        let receipt = world.actor(licensee).client.receipt(response.index).await?;
        let proven = receipt.verify(&log_key)?;
        let licensed = proven.events.iter().any(|event| {
            matches!(event,
            Event::DatasetLicensed { content_hash, licensee: holder, .. }
                if *content_hash == kit::sha256_hex(corpus) && *holder == did)
        });
        expect(
            licensed,
            format!("{license_id}'s receipt proves the licence"),
        )?;
    }
    let (ada_earned, _) = world.balance("ada").await?;
    let (curator_earned, _) = world.balance("curator").await?;
    figure(
        figures,
        "licences",
        format!("{} uses, each receipt verified offline", uses.len()),
    );
    figure(
        figures,
        "royalties",
        format!(
            "ada {}, curator {}",
            money(ada_earned),
            money(curator_earned)
        ),
    );
    expect(
        ada_earned == usd(0, 600_000) && curator_earned == usd(0, 150_000),
        "royalties split 80/20 exactly",
    )
}

async fn dispute(
    world: &mut World,
    figures: &mut Vec<Figure>,
    _: DemoOptions,
) -> anyhow::Result<()> {
    let sloppy = world.principal("sloppy").await?;
    world.fund("sloppy", usd(40, 0)).await?;
    let stake = usd(25, 0);
    world
        .submit(
            "sloppy",
            kit::publish(service(
                "sloppy-translate",
                sloppy,
                &["translation"],
                usd(15, 0),
                Some(stake),
            )),
        )
        .await?;
    let (acme_before, _) = world.balance("acme").await?;
    let request = RequestQuotes {
        description: "translate the launch note into French".into(),
        arbiter: Some(world.did("arbiter")),
        review_window_s: Some(600),
        ..kit::rfq(
            "translate-rfq",
            world.did("acme"),
            "translation",
            usd(20, 0),
            3_600,
        )
    };
    let hired = hire(
        world,
        "acme",
        request,
        &[bidder(
            "sloppy",
            usd(10, 0),
            5_000,
            Some("sloppy-translate"),
        )],
        "translate-task",
    )
    .await?;
    figure(
        figures,
        "hired",
        format!("sloppy at {}, stake {}", money(hired.price), money(stake)),
    );
    let garbage = b"lorem ipsum dolor sit amet";
    world
        .submit("sloppy", kit::deliver("translate-task", garbage, &[]))
        .await?;
    // The buyer's own acceptance test fails: nothing French in it.
    expect(
        !String::from_utf8_lossy(garbage).contains("Bonjour"),
        "the delivery fails the buyer's check",
    )?;
    world
        .submit(
            "acme",
            kit::dispute("translate-task", "the delivery is not a translation"),
        )
        .await?;
    let (code, _) = world
        .refused("sloppy", kit::resolve("translate-task", 10_000))
        .await?;
    expect(
        code == "not_arbiter",
        "the provider cannot rule on its own dispute",
    )?;
    let ruling = world
        .submit("arbiter", kit::resolve("translate-task", 0))
        .await?;
    let Some(Event::DisputeResolved {
        refunded, slashed, ..
    }) = ruling.events.first()
    else {
        bail!("no ruling: {:?}", ruling.events);
    };
    figure(
        figures,
        "ruling",
        format!(
            "for the buyer: {} refunded, {} of stake slashed",
            money(*refunded),
            money(*slashed)
        ),
    );
    let (acme_after, _) = world.balance("acme").await?;
    expect(
        *refunded == hired.price && *slashed == stake,
        "the escrow returns and the stake is slashed",
    )?;
    expect(
        acme_after == acme_before.checked_add(stake).context("balance")?,
        "the buyer is made whole and receives the stake",
    )?;
    let reputation = world.actor("acme").client.reputation(&sloppy).await?;
    figure(
        figures,
        "sloppy's reputation",
        format!(
            "{} (disputes lost: {})",
            reputation.score, reputation.disputes_lost
        ),
    );
    expect(
        reputation.disputes_lost == 1 && reputation.score == 0,
        "a lost dispute weighs heavily",
    )
}

async fn rogue(world: &mut World, figures: &mut Vec<Figure>, _: DemoOptions) -> anyhow::Result<()> {
    world.principal("rogue-owner").await?;
    let mandate = Limits {
        denied_payees: vec![world.did("sloppy")],
        ..limits(usd(5, 0), usd(12, 0))
    };
    let rogue = world.agent("rogue", "rogue-owner", mandate.clone()).await?;
    world.fund("rogue", usd(50, 0)).await?;
    let session_limits = Limits {
        max_per_payment: usd(2, 0),
        daily_budget: usd(4, 0),
        ..mandate.clone()
    };
    world
        .session("rogue-session", "rogue", session_limits)
        .await?;
    let curator = world.did("curator");
    let mut attempts: Vec<(&str, String, &str)> = Vec::new();
    let pay = |amount: Amount, key: &str| kit::transfer(rogue, curator, amount, key);
    attempts.push((
        "8 USD in one payment",
        world.refused("rogue", pay(usd(8, 0), "r-1")).await?.0,
        "per_payment_limit_exceeded",
    ));
    world.submit("rogue", pay(usd(5, 0), "r-2")).await?;
    world.submit("rogue", pay(usd(5, 0), "r-3")).await?;
    attempts.push((
        "a third 5 USD today",
        world.refused("rogue", pay(usd(5, 0), "r-4")).await?.0,
        "budget_exceeded",
    ));
    let denied = kit::transfer(rogue, world.did("sloppy"), usd(1, 0), "r-5");
    attempts.push((
        "paying a denied payee",
        world.refused("rogue", denied).await?.0,
        "payee_denied",
    ));
    let stranger = Did::from_verifying_key(&agentrail_client::generate_key().verifying_key());
    let wider = world.session_grant("rogue", stranger, limits(usd(50, 0), usd(500, 0)));
    attempts.push((
        "a session wider than its mandate",
        world.refused("rogue", kit::issue_session(wider)).await?.0,
        "grant_widens",
    ));
    world
        .submit("rogue", kit::revoke(world.did("rogue-session")))
        .await?;
    attempts.push((
        "spending with its revoked session",
        world
            .refused("rogue-session", pay(usd(1, 0), "r-6"))
            .await?
            .0,
        "grant_revoked",
    ));
    attempts.push((
        "approving another buyer's task",
        world
            .refused("rogue", kit::approve_task("labels-task", b"x"))
            .await?
            .0,
        "not_authorized",
    ));
    attempts.push((
        "ruling on a dispute it does not arbitrate",
        world
            .refused("rogue", kit::resolve("translate-task", 10_000))
            .await?
            .0,
        "not_arbiter",
    ));
    for (attempt, code, expected) in &attempts {
        figure(figures, attempt, format!("refused: {code}"));
        expect(
            code == expected,
            format!("{attempt}: expected {expected}, got {code}"),
        )?;
    }
    let (left, _) = world.balance("rogue").await?;
    expect(
        left == usd(40, 0),
        "only the two payments within the mandate left its account",
    )
}
