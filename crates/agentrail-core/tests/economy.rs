//! Subscriptions, bounties paid by score and speed, orders over several
//! legs (atomic or not) and milestones: every transition, the refusals an
//! attacker meets, and conservation under random sequences.

mod support;

use agentrail_core::economy::{
    ApproveLeg, CancelSubscription, CollectSubscription, DeliverLeg, DisputeLeg, LegRef, LegStatus,
    OrderLeg, OrderStatus, Period, PlaceOrder, PostBounty, ResolveLeg, ScoreContribution,
    SubmitContribution, Subscribe,
};
use agentrail_core::{Amount, Command, Did, Event, Rejection, Timestamp};
use agentrail_sim::kit::{self, usd};
use proptest::prelude::*;
use support::{Party, World, party};

const DAY: u64 = 86_400;

fn hash(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// The fixed world plus principals of their own: a validator, an arbiter
/// and three contributors (funded 0).
struct Economy {
    world: World,
    validator: Party,
    arbiter: Party,
    contributors: Vec<Party>,
}

impl Economy {
    fn new() -> Economy {
        let mut world = World::new();
        let (validator, arbiter) = (party("validator"), party("arbiter"));
        let contributors: Vec<Party> = (0..3).map(|i| party(&format!("contributor-{i}"))).collect();
        for p in [&validator, &arbiter].into_iter().chain(&contributors) {
            world.ok(&p.key, kit::register_principal(p.did));
        }
        Economy {
            world,
            validator,
            arbiter,
            contributors,
        }
    }

    fn key(&self, who: &str) -> ed25519_dalek::SigningKey {
        match who {
            "principal" => self.world.principal.key.clone(),
            "agent" => self.world.agent.key.clone(),
            "session" => self.world.session.key.clone(),
            "picky" => self.world.picky.key.clone(),
            "thrifty" => self.world.thrifty.key.clone(),
            "other_principal" => self.world.other_principal.key.clone(),
            "validator" => self.validator.key.clone(),
            "arbiter" => self.arbiter.key.clone(),
            "stranger" => self.world.stranger.key.clone(),
            "c0" => self.contributors[0].key.clone(),
            "c1" => self.contributors[1].key.clone(),
            "c2" => self.contributors[2].key.clone(),
            other => panic!("no party {other}"),
        }
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

    fn refused(&mut self, who: &str, command: Command) -> &'static str {
        let key = self.key(who);
        let before = self.world.state.to_snapshot();
        let rejection: Rejection = self.world.apply(&key, command).expect_err("refused");
        assert_eq!(
            self.world.state.to_snapshot(),
            before,
            "a refusal changes nothing"
        );
        rejection.code()
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

    fn total_money(&self) -> u128 {
        let w = &self.world;
        let mut dids: Vec<Did> = vec![
            w.principal.did,
            w.agent.did,
            w.thrifty.did,
            w.picky.did,
            w.open_agent.did,
            w.other_principal.did,
            self.validator.did,
            self.arbiter.did,
        ];
        dids.extend(self.contributors.iter().map(|c| c.did));
        dids.iter().map(|d| w.available(d) + w.held(d)).sum()
    }
}

fn subscribe(id: &str, from: Did, payee: Did, amount: Amount, period: Period) -> Command {
    Command::Subscribe(Subscribe {
        subscription_id: id.into(),
        from,
        payee,
        amount,
        period,
        ends_at: None,
        category: Some("compute".into()),
    })
}

fn collect(id: &str, amount: Amount) -> Command {
    Command::CollectSubscription(CollectSubscription {
        subscription_id: id.into(),
        amount,
    })
}

#[test]
fn a_subscription_collects_once_per_period_within_the_mandate() {
    let mut e = Economy::new();
    let (agent, picky) = (e.world.agent.did, e.world.picky.did);
    e.ok(
        "agent",
        subscribe("renewal", agent, picky, usd(5), Period::Day),
    );
    // Above the per-payment limit (10) or the approval threshold (8): refused at once.
    assert_eq!(
        e.refused("agent", subscribe("big", agent, picky, usd(9), Period::Day)),
        "approval_required"
    );
    let before = e.world.available(&picky);
    let events = e.ok("picky", collect("renewal", usd(5)));
    assert!(
        matches!(&events[..], [Event::SubscriptionCollected { amount, .. }] if *amount == usd(5))
    );
    assert_eq!(e.world.available(&picky), before + usd(5).atomic());
    // The same collect again is its retry; another in the period is refused.
    let again = e.ok("picky", collect("renewal", usd(5)));
    assert!(matches!(&again[..], [Event::Duplicate { .. }]));
    assert_eq!(
        e.refused("picky", collect("renewal", usd(4))),
        "subscription_already_collected"
    );
    // Nobody but the payee's side collects; never above the amount.
    assert_eq!(
        e.refused("c0", collect("renewal", usd(1))),
        "not_authorized"
    );
    assert_eq!(
        e.refused("stranger", collect("renewal", usd(1))),
        "unknown_identity"
    );
    e.advance(DAY);
    assert_eq!(
        e.refused("picky", collect("renewal", usd(6))),
        "subscription_amount_exceeded"
    );
    // Day after day, until the agent's total budget (40) is spent.
    let mut collected = 5;
    for _ in 0..10 {
        match e.world.apply(&e.key("picky"), collect("renewal", usd(5))) {
            Ok(_) => collected += 5,
            Err(rejection) => {
                assert_eq!(rejection.code(), "budget_exceeded");
                break;
            }
        }
        e.advance(DAY);
    }
    assert_eq!(collected, 40, "the total budget binds the subscription");
    // Cancelled by the payer's side: nothing more.
    e.ok(
        "agent",
        Command::CancelSubscription(CancelSubscription {
            subscription_id: "renewal".into(),
        }),
    );
    e.advance(3_600);
    assert_eq!(
        e.refused("picky", collect("renewal", usd(1))),
        "subscription_not_active"
    );
}

#[test]
fn a_revoked_grant_stops_its_subscriptions() {
    let mut e = Economy::new();
    let (thrifty, picky) = (e.world.thrifty.did, e.world.picky.did);
    e.ok(
        "thrifty",
        subscribe("feed", thrifty, picky, usd(2), Period::Week),
    );
    e.ok("picky", collect("feed", usd(2)));
    e.advance(7 * DAY);
    e.ok("principal", kit::revoke(thrifty));
    assert_eq!(e.refused("picky", collect("feed", usd(2))), "grant_revoked");
}

#[test]
fn months_are_calendar_months() {
    let mut e = Economy::new();
    let (principal, picky) = (e.world.principal.did, e.world.picky.did);
    e.ok(
        "principal",
        subscribe("m", principal, picky, usd(3), Period::Month),
    );
    e.ok("picky", collect("m", usd(3)));
    let next = Period::Month.next_start(e.world.now);
    e.advance(next.0 - e.world.now.0 - 1);
    assert_eq!(
        e.refused("picky", collect("m", usd(2))),
        "subscription_already_collected"
    );
    e.advance(1);
    e.ok("picky", collect("m", usd(3)));
}

fn bounty(id: &str, from: Did, validator: Did, price: Amount, slots: u32) -> Command {
    Command::PostBounty(PostBounty {
        bounty_id: id.into(),
        from,
        price,
        contributions: slots,
        validator,
        full_pay_s: 3_600,
        close_s: 7_200,
        scoring_window_s: None,
        category: None,
        description: "street-level prices, one region each".into(),
    })
}

fn submit(bounty: &str, id: &str, contributor: Did) -> Command {
    Command::SubmitContribution(SubmitContribution {
        bounty_id: bounty.into(),
        contribution_id: id.into(),
        contributor,
        result_hash: hash(id),
        manifest: vec![],
    })
}

fn score(bounty: &str, id: &str, score_bps: u16) -> Command {
    Command::ScoreContribution(ScoreContribution {
        bounty_id: bounty.into(),
        contribution_id: id.into(),
        result_hash: hash(id),
        score_bps,
    })
}

#[test]
fn a_bounty_pays_by_score_and_speed_and_returns_the_rest() {
    let mut e = Economy::new();
    let (lead, validator) = (e.world.principal.did, e.validator.did);
    let (c0, c1) = (e.contributors[0].did, e.contributors[1].did);
    let money = e.total_money();
    let lead_before = e.world.available(&lead);
    e.ok("principal", bounty("prices", lead, validator, usd(10), 3));
    assert_eq!(e.world.held(&lead), usd(30).atomic());
    e.ok("c0", submit("prices", "north", c0));
    e.advance(5_400); // halfway from full pay to the close
    let events = e.ok("c1", submit("prices", "south", c1));
    assert!(matches!(
        &events[..],
        [Event::ContributionSubmitted {
            speed_bps: 5_000,
            ..
        }]
    ));
    // Only the validator scores; a score is given once.
    assert_eq!(
        e.refused("principal", score("prices", "north", 10_000)),
        "not_validator"
    );
    assert_eq!(
        e.refused("c0", score("prices", "north", 10_000)),
        "not_validator"
    );
    e.ok("validator", score("prices", "north", 8_000));
    assert_eq!(
        e.refused("validator", score("prices", "north", 9_000)),
        "contribution_scored"
    );
    e.ok("validator", score("prices", "south", 10_000));
    assert_eq!(e.world.available(&c0), usd(8).atomic());
    assert_eq!(e.world.available(&c1), usd(5).atomic());
    // Past the close nobody submits; after the scoring window the rest returns.
    e.advance(3_600);
    assert_eq!(
        e.refused("c0", submit("prices", "late", c0)),
        "bounty_wrong_state"
    );
    let events = e.advance(DAY);
    assert!(events.iter().any(|event| matches!(event,
        Event::BountyClosed { paid, refunded, .. } if *paid == usd(13) && *refunded == usd(17))));
    assert_eq!(e.world.held(&lead), 0);
    assert_eq!(e.world.available(&lead), lead_before - usd(13).atomic());
    assert_eq!(e.total_money(), money);
}

#[test]
fn the_validators_side_does_not_contribute_and_the_leads_does_not_validate() {
    let mut e = Economy::new();
    let (lead, validator) = (e.world.principal.did, e.validator.did);
    let agent = e.world.agent.did;
    assert_eq!(
        e.refused("principal", bounty("own", lead, agent, usd(1), 1)),
        "own_side_role"
    );
    e.ok("principal", bounty("b", lead, validator, usd(1), 1));
    assert_eq!(
        e.refused("validator", submit("b", "mine", validator)),
        "own_side_role"
    );
    e.ok("c0", submit("b", "one", e.contributors[0].did));
    assert_eq!(
        e.refused("c1", submit("b", "two", e.contributors[1].did)),
        "bounty_full"
    );
    e.ok("principal", bounty("b2", lead, validator, usd(1), 3));
    e.ok("c0", submit("b2", "first", e.contributors[0].did));
    assert_eq!(
        e.refused("c0", submit("b2", "again", e.contributors[0].did)),
        "already_contributed"
    );
}

fn leg(provider: Did, price: u128, deadline_s: u64, description: &str) -> OrderLeg {
    OrderLeg {
        provider,
        price: usd(price),
        deadline_s,
        description: description.into(),
    }
}

fn order(id: &str, from: Did, legs: Vec<OrderLeg>, atomic: bool, arbiter: Option<Did>) -> Command {
    Command::PlaceOrder(PlaceOrder {
        order_id: id.into(),
        from,
        legs,
        atomic,
        review_window_s: Some(3_600),
        arbiter,
        category: None,
    })
}

fn in_compute(command: Command) -> Command {
    match command {
        Command::PlaceOrder(place) => Command::PlaceOrder(PlaceOrder {
            category: Some("compute".into()),
            ..place
        }),
        other => other,
    }
}

fn deliver(id: &str, leg: u8) -> Command {
    Command::DeliverLeg(DeliverLeg {
        order_id: id.into(),
        leg,
        result_hash: hash(&format!("{id}/{leg}")),
        manifest: vec![],
    })
}

fn approve(id: &str, leg: u8) -> Command {
    Command::ApproveLeg(ApproveLeg {
        order_id: id.into(),
        leg,
        result_hash: hash(&format!("{id}/{leg}")),
    })
}

/// Three providers of their own (contributors' principals stand in).
fn supply_chain(e: &Economy, atomic: bool) -> Command {
    let buyer = e.world.principal.did;
    order(
        "o",
        buyer,
        vec![
            leg(e.contributors[0].did, 10, DAY, "supplier"),
            leg(e.contributors[1].did, 5, DAY, "logistics"),
            leg(e.contributors[2].did, 3, 2 * DAY, "warehouse"),
        ],
        atomic,
        Some(e.arbiter.did),
    )
}

#[test]
fn an_atomic_order_pays_nothing_until_every_leg_is_approved() {
    let mut e = Economy::new();
    let buyer = e.world.principal.did;
    let money = e.total_money();
    e.ok("principal", supply_chain(&e, true));
    assert_eq!(e.world.held(&buyer), usd(18).atomic());
    for (who, index) in [("c0", 0), ("c1", 1), ("c2", 2)] {
        e.ok(who, deliver("o", index));
    }
    e.ok("principal", approve("o", 0));
    e.ok("principal", approve("o", 1));
    assert_eq!(
        e.world.available(&e.contributors[0].did),
        0,
        "nothing paid early"
    );
    let events = e.ok("principal", approve("o", 2));
    assert!(matches!(events.last(), Some(Event::OrderCompleted { .. })));
    assert_eq!(e.world.available(&e.contributors[0].did), usd(10).atomic());
    assert_eq!(e.world.available(&e.contributors[2].did), usd(3).atomic());
    assert_eq!(e.world.held(&buyer), 0);
    assert_eq!(e.total_money(), money);
}

#[test]
fn an_atomic_order_unwinds_whole_when_the_warehouse_fails() {
    let mut e = Economy::new();
    let buyer = e.world.principal.did;
    let before = e.world.available(&buyer);
    e.ok("principal", supply_chain(&e, true));
    e.ok("c0", deliver("o", 0));
    e.ok("principal", approve("o", 0));
    e.ok("c1", deliver("o", 1));
    // Approving a leg that was not delivered, or for someone else: refused.
    assert_eq!(e.refused("principal", approve("o", 2)), "leg_wrong_state");
    assert_eq!(e.refused("c1", approve("o", 1)), "not_authorized");
    let events = e.ok(
        "c2",
        Command::DeclineLeg(LegRef {
            order_id: "o".into(),
            leg: 2,
        }),
    );
    assert!(
        matches!(events.last(), Some(Event::OrderUnwound { refunded, .. }) if *refunded == usd(18))
    );
    assert_eq!(e.world.available(&buyer), before);
    assert_eq!(e.world.available(&e.contributors[0].did), 0);
    let view = e.world.state.order("o").unwrap();
    assert_eq!(view.status, OrderStatus::Unwound);
    assert_eq!(e.refused("c1", deliver("o", 1)), "leg_wrong_state");
}

#[test]
fn an_ordinary_order_keeps_what_it_paid_and_refunds_the_rest_when_a_leg_misses_its_deadline() {
    let mut e = Economy::new();
    let buyer = e.world.principal.did;
    let before = e.world.available(&buyer);
    e.ok("principal", supply_chain(&e, false));
    e.ok("c0", deliver("o", 0));
    e.ok("principal", approve("o", 0));
    assert_eq!(
        e.world.available(&e.contributors[0].did),
        usd(10).atomic(),
        "paid on approval"
    );
    e.ok("c2", deliver("o", 2));
    // Logistics never delivers: at its deadline the order unwinds; the
    // warehouse delivered before, and its review ended in silence first.
    let events = e.advance(DAY);
    assert!(
        events.iter().any(
            |event| matches!(event, Event::OrderUnwound { refunded, .. } if *refunded == usd(5))
        )
    );
    assert_eq!(e.world.available(&e.contributors[2].did), usd(3).atomic());
    assert_eq!(e.world.available(&buyer), before - usd(13).atomic());
    assert_eq!(e.world.held(&buyer), 0);
    assert_eq!(
        e.world.state.order("o").unwrap().status,
        OrderStatus::Unwound
    );
}

#[test]
fn a_failed_leg_does_not_take_a_delivered_ones_pay() {
    let mut e = Economy::new();
    let buyer = e.world.principal.did;
    e.ok("principal", supply_chain(&e, false));
    e.ok("c0", deliver("o", 0));
    // The warehouse declines after the supplier delivered: the supplier's
    // delivery still settles (by review), logistics and the warehouse return.
    let events = e.ok(
        "c2",
        Command::DeclineLeg(LegRef {
            order_id: "o".into(),
            leg: 2,
        }),
    );
    assert!(
        events.iter().any(
            |event| matches!(event, Event::OrderUnwound { refunded, .. } if *refunded == usd(8))
        )
    );
    let view = e.world.state.order("o").unwrap();
    assert_eq!(view.status, OrderStatus::Unwinding);
    assert_eq!(e.refused("c1", deliver("o", 1)), "leg_wrong_state");
    e.advance(3_600);
    assert_eq!(e.world.available(&e.contributors[0].did), usd(10).atomic());
    assert_eq!(e.world.held(&buyer), 0);
    assert_eq!(
        e.world.state.order("o").unwrap().status,
        OrderStatus::Unwound
    );
    // No provider on the buyer's own side; no delivery share to the arbiter's.
    let own = order(
        "own",
        buyer,
        vec![leg(e.world.thrifty.did, 1, DAY, "")],
        false,
        None,
    );
    assert_eq!(e.refused("principal", own), "own_side_role");
}

#[test]
fn milestones_are_legs_of_one_provider_disputed_one_by_one() {
    let mut e = Economy::new();
    let (buyer, provider) = (e.world.principal.did, e.contributors[0].did);
    let plan = order(
        "build",
        buyer,
        vec![
            leg(provider, 4, DAY, "design"),
            leg(provider, 6, 3 * DAY, "implementation"),
        ],
        false,
        Some(e.arbiter.did),
    );
    e.ok("principal", plan);
    e.ok("c0", deliver("build", 0));
    e.advance(3_600); // silence approves the first milestone
    assert_eq!(e.world.available(&provider), usd(4).atomic());
    e.ok("c0", deliver("build", 1));
    e.ok(
        "principal",
        Command::DisputeLeg(DisputeLeg {
            order_id: "build".into(),
            leg: 1,
            reason: "half of it is missing".into(),
        }),
    );
    let resolve = |bps| {
        Command::ResolveLeg(ResolveLeg {
            order_id: "build".into(),
            leg: 1,
            provider_bps: bps,
        })
    };
    assert_eq!(e.refused("principal", resolve(0)), "not_authorized");
    let events = e.ok("arbiter", resolve(3_000));
    assert!(
        events
            .iter()
            .any(|event| matches!(event, Event::LegFailed { .. }))
    );
    assert_eq!(
        e.world.available(&provider),
        usd(4).atomic() + usd(6).atomic() * 3 / 10
    );
    let view = e.world.state.order("build").unwrap();
    assert!(matches!(view.legs[1].status, LegStatus::Failed { .. }));
    assert_eq!(e.world.held(&buyer), 0);
}

#[test]
fn an_order_is_bound_by_the_mandate() {
    let mut e = Economy::new();
    let agent = e.world.agent.did;
    let provider = e.contributors[0].did;
    // The agent's per-payment limit (10) binds the order's total.
    let big = order(
        "big",
        agent,
        vec![leg(provider, 6, DAY, ""), leg(provider, 6, DAY, "")],
        false,
        None,
    );
    assert_eq!(
        e.refused("agent", in_compute(big)),
        "per_payment_limit_exceeded"
    );
    let denied = e.world.denied.did;
    let to_denied = order("d", agent, vec![leg(denied, 1, DAY, "")], false, None);
    assert_eq!(
        e.refused("agent", to_denied.clone()),
        "category_not_allowed"
    );
    assert_eq!(e.refused("agent", in_compute(to_denied)), "payee_denied");
    let fine = order("fine", agent, vec![leg(provider, 3, DAY, "")], false, None);
    e.ok("agent", in_compute(fine));
}

// ----- conservation under random sequences ---------------------------------

#[derive(Clone, Debug)]
enum Step {
    Subscribe {
        amount: u8,
        period: u8,
    },
    Collect {
        subscription: u8,
        amount: u8,
    },
    Cancel {
        subscription: u8,
        payee: bool,
    },
    Post {
        price: u8,
        slots: u8,
    },
    Submit {
        bounty: u8,
        contributor: u8,
    },
    Score {
        bounty: u8,
        contribution: u8,
        bps: u16,
    },
    /// `milestones`: every leg names one provider.
    Order {
        legs: u8,
        atomic: bool,
        milestones: bool,
    },
    Deliver {
        order: u8,
        leg: u8,
    },
    Approve {
        order: u8,
        leg: u8,
    },
    Decline {
        order: u8,
        leg: u8,
    },
    Dispute {
        order: u8,
        leg: u8,
    },
    Resolve {
        order: u8,
        leg: u8,
        bps: u16,
    },
    Wait {
        seconds: u32,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u8..10, 0u8..3).prop_map(|(amount, period)| Step::Subscribe { amount, period }),
        (0u8..4, 1u8..12).prop_map(|(subscription, amount)| Step::Collect {
            subscription,
            amount
        }),
        (0u8..4, any::<bool>()).prop_map(|(subscription, payee)| Step::Cancel {
            subscription,
            payee
        }),
        (1u8..20, 1u8..4).prop_map(|(price, slots)| Step::Post { price, slots }),
        (0u8..4, 0u8..3).prop_map(|(bounty, contributor)| Step::Submit {
            bounty,
            contributor
        }),
        (0u8..4, 0u8..3, 0u16..=10_000).prop_map(|(bounty, contribution, bps)| Step::Score {
            bounty,
            contribution,
            bps
        }),
        (1u8..4, any::<bool>(), any::<bool>()).prop_map(|(legs, atomic, milestones)| Step::Order {
            legs,
            atomic,
            milestones
        }),
        (0u8..4, 0u8..3).prop_map(|(order, leg)| Step::Deliver { order, leg }),
        (0u8..4, 0u8..3).prop_map(|(order, leg)| Step::Approve { order, leg }),
        (0u8..4, 0u8..3).prop_map(|(order, leg)| Step::Decline { order, leg }),
        (0u8..4, 0u8..3).prop_map(|(order, leg)| Step::Dispute { order, leg }),
        (0u8..4, 0u8..3, 0u16..=10_000).prop_map(|(order, leg, bps)| Step::Resolve {
            order,
            leg,
            bps
        }),
        (1u32..150_000).prop_map(|seconds| Step::Wait { seconds }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever happens, money is conserved; every held unit is an open
    /// bounty's or order's; a bounty pays out plus returns exactly its
    /// budget; an order's legs pay out plus return exactly its total; no
    /// subscription collects twice in a period or above its amount.
    #[test]
    fn economy_outcomes_conserve_money(steps in prop::collection::vec(step(), 1..50)) {
        let mut e = Economy::new();
        let money = e.total_money();
        let buyer = e.world.principal.did;
        let (mut subscriptions, mut bounties, mut orders) = (0u8, 0u8, 0u8);
        let mut collects: std::collections::BTreeSet<(String, u64)> = Default::default();
        let mut events_seen = Vec::new();
        for step in steps {
            let c = |i: u8| e.contributors[usize::from(i) % 3].did;
            let (who, command): (&str, Command) = match step {
                Step::Subscribe { amount, period } => {
                    subscriptions += 1;
                    let period = [Period::Day, Period::Week, Period::Month][usize::from(period)];
                    ("agent", subscribe(&format!("s{}", subscriptions - 1), e.world.agent.did, e.world.picky.did, usd(u128::from(amount)), period))
                }
                Step::Collect { subscription, amount } => ("picky", collect(&format!("s{subscription}"), usd(u128::from(amount)))),
                Step::Cancel { subscription, payee } => (if payee { "picky" } else { "agent" }, Command::CancelSubscription(CancelSubscription { subscription_id: format!("s{subscription}") })),
                Step::Post { price, slots } => {
                    bounties += 1;
                    ("principal", bounty(&format!("b{}", bounties - 1), buyer, e.validator.did, usd(u128::from(price)), u32::from(slots)))
                }
                Step::Submit { bounty, contributor } => {
                    let who = ["c0", "c1", "c2"][usize::from(contributor)];
                    (who, submit(&format!("b{bounty}"), &format!("b{bounty}-c{contributor}"), c(contributor)))
                }
                Step::Score { bounty, contribution, bps } => ("validator", score(&format!("b{bounty}"), &format!("b{bounty}-c{contribution}"), bps)),
                                Step::Order { legs, atomic, milestones } => {
                    orders += 1;
                    let provider = |i: u8| if milestones { c(0) } else { c(i) };
                    let legs = (0..legs).map(|i| leg(provider(i), u128::from(i) + 2, DAY * (u64::from(i) + 1), "")).collect();
                    ("principal", order(&format!("o{}", orders - 1), buyer, legs, atomic, Some(e.arbiter.did)))
                }
                                // A milestone plan's provider is c0; the others' is the leg's.
                Step::Deliver { order, leg } => {
                    let id = format!("o{order}");
                    let milestone = e.world.state.order(&id).is_some_and(|view| {
                        view.legs.len() > 1 && view.legs.iter().all(|l| l.terms.provider == e.contributors[0].did)
                    });
                    (if milestone { "c0" } else { ["c0", "c1", "c2"][usize::from(leg)] }, deliver(&id, leg))
                }
                Step::Approve { order, leg } => ("principal", approve(&format!("o{order}"), leg)),
                Step::Decline { order, leg } => (["c0", "c1", "c2"][usize::from(leg)], Command::DeclineLeg(LegRef { order_id: format!("o{order}"), leg })),
                Step::Dispute { order, leg } => ("principal", Command::DisputeLeg(DisputeLeg { order_id: format!("o{order}"), leg, reason: "no".into() })),
                Step::Resolve { order, leg, bps } => ("arbiter", Command::ResolveLeg(ResolveLeg { order_id: format!("o{order}"), leg, provider_bps: bps })),
                Step::Wait { seconds } => {
                    events_seen.extend(e.advance(u64::from(seconds)));
                    continue;
                }
            };
            let key = e.key(who);
            let outcome = e.world.apply(&key, command);
            e.world.state.check_invariants().map_err(|v| TestCaseError::fail(v.to_string()))?;
            prop_assert_eq!(e.total_money(), money);
            if let Ok(events) = outcome {
                for event in &events {
                    if let Event::SubscriptionCollected { subscription_id, period_index, amount, .. } = event {
                        prop_assert!(*amount <= usd(9));
                        prop_assert!(collects.insert((subscription_id.clone(), *period_index)), "collected twice in a period");
                    }
                }
                events_seen.extend(events);
            }
        }
        events_seen.extend(e.advance(200 * DAY));
        prop_assert_eq!(e.world.held(&buyer), 0, "every escrow settled");
        prop_assert_eq!(e.total_money(), money);
        // Each bounty: payouts + refund = budget; each order: payouts + refunds = total.
        let mut budgets = std::collections::BTreeMap::<String, (u128, u128)>::new();
        let mut totals = std::collections::BTreeMap::<String, (u128, u128)>::new();
        for event in &events_seen {
            match event {
                Event::BountyPosted { bounty_id, budget, .. } => budgets.entry(bounty_id.clone()).or_default().0 = budget.atomic(),
                Event::ContributionScored { bounty_id, parts, .. } => budgets.entry(bounty_id.clone()).or_default().1 += parts.iter().map(|p| p.amount.atomic()).sum::<u128>(),
                Event::BountyClosed { bounty_id, refunded, .. } => budgets.entry(bounty_id.clone()).or_default().1 += refunded.atomic(),
                Event::OrderPlaced { order_id, total, .. } => totals.entry(order_id.clone()).or_default().0 = total.atomic(),
                Event::LegPaid { order_id, parts, refunded, .. } => totals.entry(order_id.clone()).or_default().1 += parts.iter().map(|p| p.amount.atomic()).sum::<u128>() + refunded.atomic(),
                Event::OrderUnwound { order_id, refunded, .. } => totals.entry(order_id.clone()).or_default().1 += refunded.atomic(),
                _ => {}
            }
        }
        for (id, (budget, settled)) in budgets {
            prop_assert_eq!(budget, settled, "bounty {} settles its budget exactly", id);
        }
        for (id, (total, settled)) in totals {
            prop_assert_eq!(total, settled, "order {} settles its total exactly", id);
        }
    }
}
