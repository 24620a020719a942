//! Markets: every task transition and timeout, negotiation, stakes and
//! slashing, arbiters and validators, licences and royalties, discovery,
//! self-dealing, and the money invariants under random market sequences.

mod support;

use agentrail_core::command::Split;
use agentrail_core::market::{
    Approver, Discovery, ListingKind, Pricing, QuoteStatus, RefundReason, RfqStatus, Side,
};
use agentrail_core::{Amount, Command, Did, Event, Rejection, Timestamp};
use agentrail_sim::kit::{self, usd};
use proptest::prelude::*;
use support::{Party, World, party};

/// A market on top of the fixed world: `picky` (under `other_principal`)
/// sells compute with a stake of 10; `agent` (under `principal`) buys;
/// `arbiter` and `validator` are principals of their own.
struct Market {
    world: World,
    arbiter: Party,
    validator: Party,
    helper: Party,
}

const RESULT: &[u8] = b"the renewed server's receipt";

impl Market {
    fn new() -> Market {
        let mut world = World::new();
        let (arbiter, validator, helper) = (party("arbiter"), party("validator"), party("helper"));
        for p in [&arbiter, &validator, &helper] {
            world.ok(&p.key, kit::register_principal(p.did));
        }
        let listing = agentrail_core::market::PublishListing {
            stake: Some(usd(10)),
            ..kit::listing("gpu", world.picky.did, &["compute"], usd(7))
        };
        world.ok(&world.picky.key.clone(), kit::publish(listing));
        Market {
            world,
            arbiter,
            validator,
            helper,
        }
    }

    fn buyer(&self) -> Did {
        self.world.agent.did
    }

    fn provider(&self) -> Did {
        self.world.picky.did
    }

    fn ok(&mut self, who: &str, command: Command) -> Vec<Event> {
        let key = self.key(who);
        let events = self.world.ok(&key, command);
        self.world
            .state
            .check_invariants()
            .expect("invariants hold");
        events
    }

    fn refused(&mut self, who: &str, command: Command) -> Rejection {
        let key = self.key(who);
        let before = self.world.state.to_snapshot();
        let rejection = self
            .world
            .apply(&key, command)
            .expect_err("the command must be refused");
        assert_eq!(
            self.world.state.to_snapshot(),
            before,
            "a refusal changes nothing"
        );
        rejection
    }

    fn key(&self, who: &str) -> ed25519_dalek::SigningKey {
        match who {
            "buyer" => self.world.agent.key.clone(),
            "session" => self.world.session.key.clone(),
            "provider" => self.world.picky.key.clone(),
            "arbiter" => self.arbiter.key.clone(),
            "validator" => self.validator.key.clone(),
            "helper" => self.helper.key.clone(),
            "principal" => self.world.principal.key.clone(),
            "operator" => self.world.operator.key.clone(),
            "thrifty" => self.world.thrifty.key.clone(),
            other => panic!("no party {other}"),
        }
    }

    fn advance(&mut self, seconds: u64) -> Vec<Event> {
        self.world.now = Timestamp(self.world.now.0 + seconds);
        let events = self.world.state.advance(self.world.now);
        self.world
            .state
            .check_invariants()
            .expect("invariants hold");
        events
    }

    /// An RFQ for compute with budget 8, a one-day deadline, the arbiter
    /// and the validator; the provider quotes 7 under its listing; the
    /// buyer counters 5, the provider answers 6, the buyer accepts.
    fn funded(&mut self, task: &str) {
        let request = agentrail_core::market::RequestQuotes {
            arbiter: Some(self.arbiter.did),
            validator: Some(self.validator.did),
            ..kit::rfq(
                &format!("rfq-{task}"),
                self.buyer(),
                "compute",
                usd(8),
                86_400,
            )
        };
        self.ok("buyer", kit::request_quotes(request));
        let (rfq, quote) = (format!("rfq-{task}"), format!("quote-{task}"));
        let provider = self.provider();
        self.ok(
            "provider",
            kit::quote(&quote, &rfq, provider, Some("gpu"), usd(7)),
        );
        self.ok("buyer", kit::counter(&quote, usd(5)));
        self.ok("provider", kit::counter(&quote, usd(6)));
        let events = self.ok("buyer", kit::accept(&quote, task));
        assert!(matches!(&events[..], [Event::TaskFunded { price, .. }] if *price == usd(6)));
    }

    fn delivered(&mut self, task: &str) {
        self.funded(task);
        let (provider, helper) = (self.provider(), self.helper.did);
        self.ok(
            "provider",
            kit::deliver(task, RESULT, &[(provider, 6_667), (helper, 3_333)]),
        );
    }
}

#[test]
fn negotiation_escrow_delivery_and_approval_pay_the_manifest_exactly() {
    let mut market = Market::new();
    let (buyer, provider, helper) = (market.buyer(), market.provider(), market.helper.did);
    let budget_before = market
        .world
        .state
        .grant_status(&buyer, market.world.now)
        .unwrap();
    market.funded("t1");
    // The price sits in escrow and counts against the mandate once.
    assert_eq!(market.world.held(&buyer), usd(6).atomic());
    assert_eq!(market.world.available(&buyer), usd(94).atomic());
    let budget = market
        .world
        .state
        .grant_status(&buyer, market.world.now)
        .unwrap();
    assert_eq!(
        budget.spent_today,
        budget_before.spent_today.checked_add(usd(6)).unwrap()
    );
    let rfq = market.world.state.rfq("rfq-t1").unwrap();
    assert_eq!(rfq.status, RfqStatus::Awarded);
    assert_eq!(rfq.quotes[0].status, QuoteStatus::Accepted);
    assert_eq!(
        (rfq.quotes[0].rounds, rfq.quotes[0].last_offer_by),
        (3, Side::Provider)
    );

    market.ok(
        "provider",
        kit::deliver("t1", RESULT, &[(provider, 6_667), (helper, 3_333)]),
    );
    let events = market.ok("buyer", kit::approve_task("t1", RESULT));
    let Event::TaskApproved { by, parts, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(*by, Approver::Buyer);
    // 6 USD by 66.67% / 33.33%: 4.000200 and 1.999800, summing to 6 exactly.
    assert_eq!(
        parts
            .iter()
            .map(|p| (p.to, p.amount.atomic()))
            .collect::<Vec<_>>(),
        vec![(provider, 4_000_200), (helper, 1_999_800)]
    );
    assert_eq!(market.world.held(&buyer), 0);
    assert_eq!(market.world.available(&helper), 1_999_800);
    let record = market.world.state.record(&provider);
    assert_eq!((record.tasks_paid, record.counterparties.len()), (1, 1));
    assert_eq!(market.world.state.listing("gpu").unwrap().open_tasks, 0);
    // The buyer's principal counts once its registration is old enough.
    assert_eq!(market.world.state.reputation(&provider).score, 0);
    market.advance(agentrail_core::reputation::COUNTERPARTY_AGE_MIN_DAYS * 86_400);
    assert!(market.world.state.reputation(&provider).score > 0);
}

#[test]
fn the_validator_approves_by_signing_the_result_hash() {
    let mut market = Market::new();
    market.delivered("t1");
    let wrong = market.refused("validator", kit::approve_task("t1", b"something else"));
    assert_eq!(wrong.code(), "result_hash_mismatch");
    let events = market.ok("validator", kit::approve_task("t1", RESULT));
    assert!(matches!(
        &events[0],
        Event::TaskApproved {
            by: Approver::Validator,
            ..
        }
    ));
}

#[test]
fn a_missed_deadline_refunds_the_buyer_and_its_budget() {
    let mut market = Market::new();
    let buyer = market.buyer();
    let before = market
        .world
        .state
        .grant_status(&buyer, market.world.now)
        .unwrap();
    market.funded("t1");
    let events = market.advance(86_400);
    assert!(events.iter().any(|e| matches!(e,
        Event::TaskRefunded { reason: RefundReason::DeadlineMissed, amount, .. } if *amount == usd(6))));
    assert_eq!(market.world.available(&buyer), usd(100).atomic());
    let after = market
        .world
        .state
        .grant_status(&buyer, market.world.now)
        .unwrap();
    assert_eq!(
        after.spent_total, before.spent_total,
        "the budget is given back"
    );
    let provider = market.provider();
    assert_eq!(market.world.state.record(&provider).refunds, 1);
    // Too late to deliver now.
    let late = market.refused("provider", kit::deliver("t1", RESULT, &[]));
    assert_eq!(late.code(), "task_wrong_state");
}

#[test]
fn a_buyer_silent_past_the_review_window_approves_by_default() {
    let mut market = Market::new();
    market.delivered("t1");
    assert!(market.advance(3_599).is_empty());
    let events = market.advance(1);
    assert!(matches!(
        &events[..],
        [Event::TaskApproved {
            by: Approver::ReviewWindowEnded,
            ..
        }]
    ));
    let late = market.refused("buyer", kit::dispute("t1", "too late"));
    assert_eq!(late.code(), "task_wrong_state");
}

#[test]
fn the_arbiter_rules_for_the_buyer_and_the_stake_is_slashed() {
    let mut market = Market::new();
    let (buyer, provider) = (market.buyer(), market.provider());
    market.delivered("t1");
    assert_eq!(market.world.held(&provider), usd(10).atomic());
    market.ok("buyer", kit::dispute("t1", "the output is garbage"));
    // Neither party may rule; only the arbiter named in the terms.
    for who in ["buyer", "provider", "validator", "operator"] {
        assert_eq!(
            market.refused(who, kit::resolve("t1", 0)).code(),
            "not_arbiter"
        );
    }
    let events = market.ok("arbiter", kit::resolve("t1", 0));
    let Event::DisputeResolved {
        refunded,
        slashed,
        parts,
        ..
    } = &events[0]
    else {
        panic!("{events:?}")
    };
    assert_eq!((*refunded, *slashed, parts.len()), (usd(6), usd(10), 0));
    assert_eq!(market.world.available(&buyer), usd(110).atomic());
    assert_eq!(market.world.held(&provider), 0);
    assert_eq!(
        market.world.state.listing("gpu").unwrap().stake_held,
        Amount::ZERO
    );
    let record = market.world.state.record(&provider);
    assert_eq!((record.disputes_lost, record.tasks_paid), (1, 0));
}

#[test]
fn a_provider_who_wins_the_dispute_keeps_its_stake() {
    let mut market = Market::new();
    let (buyer, provider) = (market.buyer(), market.provider());
    market.delivered("t1");
    market.ok("buyer", kit::dispute("t1", "late by a minute"));
    let events = market.ok("arbiter", kit::resolve("t1", 7_000));
    let Event::DisputeResolved {
        refunded,
        slashed,
        parts,
        ..
    } = &events[0]
    else {
        panic!("{events:?}")
    };
    let paid: u128 = parts.iter().map(|p| p.amount.atomic()).sum();
    assert_eq!(
        paid + refunded.atomic(),
        usd(6).atomic(),
        "the ruling splits exactly"
    );
    assert_eq!(
        (*refunded, *slashed),
        (Amount::from_atomic(1_800_000), Amount::ZERO)
    );
    assert_eq!(market.world.held(&provider), usd(10).atomic());
    assert_eq!(market.world.available(&buyer), usd(94).atomic() + 1_800_000);
    assert_eq!(market.world.state.record(&provider).disputes_won, 1);
}

#[test]
fn a_silent_arbiter_returns_the_escrow_to_the_buyer() {
    let mut market = Market::new();
    let buyer = market.buyer();
    market.delivered("t1");
    market.ok("buyer", kit::dispute("t1", "never arrived"));
    let events = market.advance(agentrail_core::constants::ARBITRATION_WINDOW_S);
    assert!(matches!(
        &events[..],
        [Event::TaskRefunded {
            reason: RefundReason::ArbitrationLapsed,
            ..
        }]
    ));
    assert_eq!(market.world.available(&buyer), usd(100).atomic());
}

#[test]
fn refusals_name_their_reason_and_change_nothing() {
    let mut market = Market::new();
    let (buyer, provider) = (market.buyer(), market.provider());
    let operator = market.world.operator.did;
    // The operator may not arbitrate.
    let request = agentrail_core::market::RequestQuotes {
        arbiter: Some(operator),
        ..kit::rfq("rfq-x", buyer, "compute", usd(8), 3_600)
    };
    assert_eq!(
        market.refused("buyer", kit::request_quotes(request)).code(),
        "invalid_field"
    );
    market.ok(
        "buyer",
        kit::request_quotes(kit::rfq("rfq-x", buyer, "compute", usd(8), 3_600)),
    );
    let quote = kit::quote("q-x", "rfq-x", provider, Some("gpu"), usd(9));
    assert_eq!(
        market.refused("provider", quote).code(),
        "price_above_budget"
    );
    market.ok(
        "provider",
        kit::quote("q-x", "rfq-x", provider, Some("gpu"), usd(8)),
    );
    // Offers alternate; the buyer accepts only the provider's latest offer.
    assert_eq!(
        market
            .refused("provider", kit::counter("q-x", usd(7)))
            .code(),
        "offer_out_of_turn"
    );
    market.ok("buyer", kit::counter("q-x", usd(4)));
    assert_eq!(
        market.refused("buyer", kit::accept("q-x", "t-x")).code(),
        "offer_out_of_turn"
    );
    // Strangers to the quote make no offers.
    assert_eq!(
        market.refused("helper", kit::counter("q-x", usd(6))).code(),
        "not_authorized"
    );
    for round in 0..3 {
        let who = if round % 2 == 0 { "provider" } else { "buyer" };
        market.ok(who, kit::counter("q-x", usd(5)));
    }
    assert_eq!(
        market.refused("buyer", kit::counter("q-x", usd(5))).code(),
        "quote_rounds_exhausted"
    );
    market.ok("buyer", kit::accept("q-x", "t-x"));
    assert_eq!(
        market.refused("buyer", kit::accept("q-x", "t-y")).code(),
        "rfq_closed"
    );
    // No arbiter in these terms: no dispute.
    market.ok("provider", kit::deliver("t-x", RESULT, &[]));
    assert_eq!(
        market.refused("buyer", kit::dispute("t-x", "meh")).code(),
        "no_arbiter"
    );
    // Someone else's task.
    assert_eq!(
        market
            .refused("helper", kit::approve_task("t-x", RESULT))
            .code(),
        "not_authorized"
    );
    assert_eq!(
        market
            .refused("buyer", kit::deliver("t-x", RESULT, &[]))
            .code(),
        "not_authorized"
    );
    // The listing is busy until its task settles.
    assert_eq!(
        market
            .refused("provider", kit::withdraw_listing("gpu"))
            .code(),
        "listing_busy"
    );
    market.ok("buyer", kit::approve_task("t-x", RESULT));
    let events = market.ok("provider", kit::withdraw_listing("gpu"));
    assert!(
        matches!(&events[..], [Event::ListingWithdrawn { stake_returned, .. }] if *stake_returned == usd(10))
    );
    assert_eq!(market.world.held(&provider), 0);
    assert_eq!(
        market
            .refused("provider", kit::withdraw_listing("gpu"))
            .code(),
        "listing_withdrawn"
    );
}

#[test]
fn the_mandate_binds_acceptance() {
    let mut market = Market::new();
    let (buyer, provider) = (market.buyer(), market.provider());
    // The agent's approval threshold is 8 and its per-payment cap 10.
    market.ok(
        "buyer",
        kit::request_quotes(kit::rfq("rfq-big", buyer, "compute", usd(50), 3_600)),
    );
    market.ok(
        "provider",
        kit::quote("q-big", "rfq-big", provider, None, usd(12)),
    );
    let refused = market.refused("buyer", kit::accept("q-big", "t-big"));
    assert_eq!(refused.code(), "per_payment_limit_exceeded");
    market.ok("buyer", kit::counter("q-big", usd(9)));
    market.ok("provider", kit::counter("q-big", usd(9)));
    assert_eq!(
        market
            .refused("buyer", kit::accept("q-big", "t-big"))
            .code(),
        "approval_required"
    );
    // The principal may commit above the threshold.
    market.ok("principal", kit::accept("q-big", "t-big"));
    // A category outside the mandate is refused at acceptance.
    market.ok(
        "buyer",
        kit::request_quotes(kit::rfq("rfq-art", buyer, "art", usd(5), 3_600)),
    );
    market.ok(
        "provider",
        kit::quote("q-art", "rfq-art", provider, None, usd(1)),
    );
    assert_eq!(
        market
            .refused("buyer", kit::accept("q-art", "t-art"))
            .code(),
        "category_not_allowed"
    );
}

#[test]
fn self_dealing_settles_but_earns_no_reputation() {
    let mut market = Market::new();
    let (buyer, seller) = (market.buyer(), market.world.thrifty.did);
    for i in 0..3 {
        let (rfq, quote, task) = (format!("r{i}"), format!("q{i}"), format!("t{i}"));
        market.ok(
            "buyer",
            kit::request_quotes(kit::rfq(&rfq, buyer, "compute", usd(2), 3_600)),
        );
        market.ok("thrifty", kit::quote(&quote, &rfq, seller, None, usd(2)));
        market.ok("buyer", kit::accept(&quote, &task));
        market.ok("thrifty", kit::deliver(&task, RESULT, &[]));
        market.ok("buyer", kit::approve_task(&task, RESULT));
    }
    assert_eq!(
        market.world.available(&seller),
        usd(106).atomic(),
        "the money moved"
    );
    assert_eq!(market.world.state.record(&seller), Default::default());
    assert_eq!(market.world.state.reputation(&seller).score, 0);
}

#[test]
fn a_dataset_licence_pays_royalties_to_its_creators() {
    let mut market = Market::new();
    let (creator, helper, buyer) = (
        market.world.principal.did,
        market.helper.did,
        market.world.picky.did,
    );
    let dataset = agentrail_core::market::PublishListing {
        kind: ListingKind::Dataset,
        pricing: Pricing::PerCall {
            price: Amount::from_atomic(30_001),
        },
        content_hash: Some(kit::sha256_hex(b"the corpus")),
        revenue_share: vec![
            Split {
                to: creator,
                bps: 7_000,
            },
            Split {
                to: helper,
                bps: 3_000,
            },
        ],
        ..kit::listing("corpus", creator, &["data"], usd(1))
    };
    market.ok("principal", kit::publish(dataset));
    let events = market.ok("provider", kit::license("lic-1", "corpus", buyer));
    let Event::DatasetLicensed {
        parts,
        content_hash,
        ..
    } = &events[0]
    else {
        panic!("{events:?}")
    };
    assert_eq!(content_hash, &kit::sha256_hex(b"the corpus"));
    assert_eq!(
        parts.iter().map(|p| p.amount.atomic()).collect::<Vec<_>>(),
        vec![21_001, 9_000]
    );
    // The same licence id again is the original outcome, not a second payment.
    let again = market.ok("provider", kit::license("lic-1", "corpus", buyer));
    assert!(matches!(&again[..], [Event::Duplicate { .. }]));
    assert_eq!(market.world.state.record(&creator).licences_sold, 1);
    assert_eq!(market.world.state.license("lic-1").unwrap().licensee, buyer);
    // A service is not licensed.
    assert_eq!(
        market
            .refused("buyer", kit::license("lic-2", "gpu", buyer))
            .code(),
        "invalid_field"
    );
}

#[test]
fn discovery_filters_ranks_and_paginates() {
    let mut market = Market::new();
    let (p1, p2) = (market.world.principal.did, market.helper.did);
    market.ok(
        "principal",
        kit::publish(kit::listing("cheap", p1, &["compute", "gpu"], usd(2))),
    );
    market.ok(
        "helper",
        kit::publish(kit::listing("dear", p2, &["compute"], usd(9))),
    );
    market.ok(
        "helper",
        kit::publish(kit::listing("words", p2, &["writing"], usd(1))),
    );
    // picky earns a reputation with one approved task.
    market.delivered("t1");
    market.ok("buyer", kit::approve_task("t1", RESULT));
    market.advance(agentrail_core::reputation::COUNTERPARTY_AGE_MIN_DAYS * 86_400);
    let ids = |query: Discovery| -> Vec<String> {
        market
            .world
            .state
            .discover(&query)
            .listings
            .into_iter()
            .map(|found| found.listing.listing.listing_id)
            .collect()
    };
    let compute = Discovery {
        capability: Some("compute".into()),
        limit: 10,
        ..Discovery::default()
    };
    assert_eq!(
        ids(compute.clone()),
        ["gpu", "cheap", "dear"],
        "reputation first, then price"
    );
    assert_eq!(
        ids(Discovery {
            max_price: Some(usd(7)),
            ..compute.clone()
        }),
        ["gpu", "cheap"]
    );
    assert_eq!(
        ids(Discovery {
            min_reputation: Some(1),
            ..compute.clone()
        }),
        ["gpu"]
    );
    let page = market.world.state.discover(&Discovery {
        offset: 1,
        limit: 1,
        ..compute
    });
    assert_eq!((page.total, page.next_offset), (3, Some(2)));
    assert_eq!(page.listings[0].listing.listing.listing_id, "cheap");
}

#[test]
fn a_snapshot_carries_the_market() {
    let mut market = Market::new();
    market.delivered("t1");
    let snapshot = market.world.state.to_snapshot();
    let mut restored = agentrail_core::State::from_snapshot(&snapshot).expect("it loads");
    let later = Timestamp(market.world.now.0 + 3_600);
    assert_eq!(restored.advance(later), market.world.state.advance(later));
    assert_eq!(restored.to_snapshot(), market.world.state.to_snapshot());
}

/// One random market step.
#[derive(Clone, Debug)]
enum Step {
    Rfq { budget: u8, arbiter: bool },
    Quote { rfq: u8, price: u8, listing: bool },
    Counter { quote: u8, price: u8, buyer: bool },
    Accept { quote: u8 },
    Deliver { task: u8, bps: u16 },
    Approve { task: u8, validator: bool },
    Dispute { task: u8 },
    Resolve { task: u8, bps: u16 },
    Wait { seconds: u32 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u8..20, any::<bool>()).prop_map(|(budget, arbiter)| Step::Rfq { budget, arbiter }),
        (0u8..6, 1u8..20, any::<bool>()).prop_map(|(rfq, price, listing)| Step::Quote {
            rfq,
            price,
            listing
        }),
        (0u8..6, 1u8..20, any::<bool>()).prop_map(|(quote, price, buyer)| Step::Counter {
            quote,
            price,
            buyer
        }),
        (0u8..6).prop_map(|quote| Step::Accept { quote }),
        (0u8..6, 0u16..=10_000).prop_map(|(task, bps)| Step::Deliver { task, bps }),
        (0u8..6, any::<bool>()).prop_map(|(task, validator)| Step::Approve { task, validator }),
        (0u8..6).prop_map(|task| Step::Dispute { task }),
        (0u8..6, 0u16..=10_000).prop_map(|(task, bps)| Step::Resolve { task, bps }),
        (1u32..200_000).prop_map(|seconds| Step::Wait { seconds }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Whatever happens, money is conserved, every held unit is accounted
    /// for by a task, a stake, a hold or a channel, no task pays out more
    /// than its price, and settled payouts split exactly.
    #[test]
    fn market_invariants_hold_under_random_sequences(steps in prop::collection::vec(step(), 1..40)) {
        let mut market = Market::new();
        let (buyer, provider, helper) = (market.buyer(), market.provider(), market.helper.did);
        let (mut rfqs, mut quotes) = (0u8, 0u8);
        for step in steps {
            let (who, command) = match step {
                Step::Rfq { budget, arbiter } => {
                    let request = agentrail_core::market::RequestQuotes {
                        arbiter: arbiter.then_some(market.arbiter.did),
                        validator: Some(market.validator.did),
                        ..kit::rfq(&format!("r{rfqs}"), buyer, "compute", usd(u128::from(budget)), 7_200)
                    };
                    rfqs += 1;
                    ("buyer", kit::request_quotes(request))
                }
                Step::Quote { rfq, price, listing } => {
                    quotes += 1;
                    ("provider", kit::quote(&format!("q{}", quotes - 1), &format!("r{rfq}"), provider,
                        listing.then_some("gpu"), usd(u128::from(price))))
                }
                Step::Counter { quote, price, buyer: by_buyer } => {
                    (if by_buyer { "buyer" } else { "provider" }, kit::counter(&format!("q{quote}"), usd(u128::from(price))))
                }
                Step::Accept { quote } => ("buyer", kit::accept(&format!("q{quote}"), &format!("t{quote}"))),
                Step::Deliver { task, bps } => {
                    let manifest = if bps == 0 { vec![] } else if bps == 10_000 { vec![(helper, 10_000)] } else { vec![(provider, bps), (helper, 10_000 - bps)] };
                    ("provider", kit::deliver(&format!("t{task}"), RESULT, &manifest))
                }
                Step::Approve { task, validator } => {
                    (if validator { "validator" } else { "buyer" }, kit::approve_task(&format!("t{task}"), RESULT))
                }
                Step::Dispute { task } => ("buyer", kit::dispute(&format!("t{task}"), "no")),
                Step::Resolve { task, bps } => ("arbiter", kit::resolve(&format!("t{task}"), bps)),
                Step::Wait { seconds } => {
                    market.advance(u64::from(seconds));
                    continue;
                }
            };
            let key = market.key(who);
            let outcome = market.world.apply(&key, command);
            market.world.state.check_invariants().map_err(|e| TestCaseError::fail(e.to_string()))?;
            if let Ok(events) = outcome {
                for event in events {
                    let (parts, refunded) = match &event {
                        Event::TaskApproved { parts, .. } => (parts.clone(), Amount::ZERO),
                        Event::DisputeResolved { parts, refunded, .. } => (parts.clone(), *refunded),
                        _ => continue,
                    };
                    let paid: u128 = parts.iter().map(|p| p.amount.atomic()).sum::<u128>() + refunded.atomic();
                    prop_assert!(paid <= usd(19).atomic(), "no task pays more than the largest budget");
                }
            }
        }
        // Every task that still holds money settles when time runs out.
        market.advance(100 * 86_400);
        for (id, status) in market.world.state.tasks() {
            prop_assert!(["approved", "resolved", "refunded"].contains(&status), "{id} is {status}");
        }
        prop_assert_eq!(market.world.held(&buyer), 0);
    }
}

fn rfq_ids(market: &Market, query: agentrail_core::market::RfqQuery) -> Vec<String> {
    market
        .world
        .state
        .open_rfqs(&query)
        .rfqs
        .into_iter()
        .map(|rfq| rfq.request.rfq_id)
        .collect()
}

#[test]
fn providers_find_the_open_requests_they_may_quote_on() {
    let mut market = Market::new();
    let (buyer, provider) = (market.buyer(), market.provider());
    let invited_elsewhere = agentrail_core::market::RequestQuotes {
        invited: vec![market.helper.did],
        ..kit::rfq("r-private", buyer, "compute", usd(5), 3_600)
    };
    market.ok("buyer", kit::request_quotes(invited_elsewhere));
    market.ok(
        "buyer",
        kit::request_quotes(kit::rfq("r-open", buyer, "compute", usd(5), 3_600)),
    );
    market.ok(
        "buyer",
        kit::request_quotes(kit::rfq("r-words", buyer, "writing", usd(5), 3_600)),
    );
    let mine = agentrail_core::market::RfqQuery {
        capability: Some("compute".into()),
        provider: Some(provider),
        offset: 0,
        limit: 10,
    };
    assert_eq!(
        rfq_ids(&market, mine.clone()),
        ["r-open"],
        "private and other capabilities are left out"
    );
    let everyone = agentrail_core::market::RfqQuery {
        provider: None,
        capability: None,
        ..mine.clone()
    };
    assert_eq!(rfq_ids(&market, everyone).len(), 3);
    // Awarded and expired requests are no longer open.
    market.ok(
        "provider",
        kit::quote("q-open", "r-open", provider, None, usd(5)),
    );
    market.ok("buyer", kit::accept("q-open", "t-open"));
    assert!(rfq_ids(&market, mine.clone()).is_empty());
    market.advance(86_400);
    let all = agentrail_core::market::RfqQuery {
        provider: None,
        capability: None,
        ..mine
    };
    assert!(
        rfq_ids(&market, all).is_empty(),
        "every request expired after a day"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A task's payout splits exactly: the parts sum to the price, each part
    /// is its basis-point share rounded down or up by one atomic unit.
    #[test]
    fn task_payouts_split_exactly(
        price in 1u128..=90_000_000,
        weights in prop::collection::vec(1u16..=100, 1..=5),
    ) {
        let mut market = Market::new();
        let (buyer, provider) = (market.buyer(), market.provider());
        // Shares from the weights, summing to 10,000 bps.
        let sum: u32 = weights.iter().map(|w| u32::from(*w)).sum();
        let mut shares: Vec<u16> = weights.iter().map(|w| (u32::from(*w) * 10_000 / sum) as u16).collect();
        let short = 10_000 - shares.iter().map(|s| u32::from(*s)).sum::<u32>();
        shares[0] += short as u16;
        prop_assume!(shares.iter().all(|s| *s > 0));
        let contributors: Vec<Did> = (0..shares.len())
            .map(|i| {
                let p = party(&format!("contributor-{i}"));
                market.world.ok(&p.key, kit::register_principal(p.did));
                p.did
            })
            .collect();
        let price = Amount::from_atomic(price);
        market.ok("buyer", kit::request_quotes(kit::rfq("r", buyer, "compute", price, 3_600)));
        market.ok("provider", kit::quote("q", "r", provider, None, price));
        // The principal accepts: no per-payment cap or threshold applies.
        market.ok("principal", kit::accept("q", "t"));
        let manifest: Vec<(Did, u16)> = contributors.iter().copied().zip(shares.iter().copied()).collect();
        market.ok("provider", kit::deliver("t", RESULT, &manifest));
        let events = market.ok("buyer", kit::approve_task("t", RESULT));
        let Event::TaskApproved { parts, .. } = &events[0] else { panic!("{events:?}") };
        let total: u128 = parts.iter().map(|p| p.amount.atomic()).sum();
        prop_assert_eq!(total, price.atomic());
        for part in parts {
            let bps = manifest.iter().find(|(to, _)| *to == part.to).unwrap().1;
            let floor = price.atomic() * u128::from(bps) / 10_000;
            prop_assert!(part.amount.atomic() == floor || part.amount.atomic() == floor + 1);
        }
    }
}
