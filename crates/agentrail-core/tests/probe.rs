//! The defects an attacker found by probing a node (one test each, named by
//! what it proves): roles inside a party's own owner tree, payee lists on
//! every path money takes, revocation in every role, channels that outlive
//! their grants, future-dated sessions, the operator as a principal,
//! disguising characters, idempotency across an account's keys, and
//! approval thresholds that bind a day as well as a payment.

mod support;

use agentrail_core::channel::ChannelId;
use agentrail_core::command::{OpenChannel, Split, Transfer};
use agentrail_core::constants::DAY_S;
use agentrail_core::grant::{Limits, Role};
use agentrail_core::market::{ListingKind, Pricing, PublishListing, RequestQuotes};
use agentrail_core::state::ChannelStatus;
use agentrail_core::{Command, Event, Rejection, Timestamp};
use agentrail_sim::kit::{self, usd};
use support::{Party, World, compute, party};

/// Applies a command that must be refused with `code`, and checks that the
/// refusal changed nothing.
fn refused(world: &mut World, who: &Party, command: Command, code: &str) -> Rejection {
    let before = world.state.to_snapshot();
    let described = format!("{command:?}");
    let rejection = world
        .apply(&who.key, command)
        .expect_err(&format!("{described} must be refused"));
    assert_eq!(rejection.code(), code, "{described}: {rejection}");
    assert_eq!(
        world.state.to_snapshot(),
        before,
        "a refusal changes nothing"
    );
    rejection
}

/// A principal of its own, registered.
fn registered(world: &mut World, label: &str) -> Party {
    let p = party(label);
    world.ok(&p.key, kit::register_principal(p.did));
    p
}

/// An agent of `principal` with `limits`, for 300 days.
fn agent_of(world: &mut World, principal: &Party, label: &str, limits: Limits) -> Party {
    let a = party(label);
    let grant = kit::grant(
        &principal.key,
        a.did,
        Role::Agent,
        limits,
        world.now,
        Timestamp(world.now.0 + 300 * DAY_S),
        label,
    );
    world.ok(&principal.key, kit::register_agent(grant));
    a
}

/// A session of `agent` for `seconds`.
fn session_of(world: &mut World, agent: &Party, label: &str, seconds: u64) -> Party {
    let s = party(label);
    let grant = kit::grant(
        &agent.key,
        s.did,
        Role::Session,
        kit::limits(usd(5), usd(12)),
        world.now,
        Timestamp(world.now.0 + seconds),
        label,
    );
    world.ok(&agent.key, kit::issue_session(grant));
    s
}

fn rfq_with(id: &str, from: &Party, arbiter: Option<&Party>, validator: Option<&Party>) -> Command {
    kit::request_quotes(RequestQuotes {
        arbiter: arbiter.map(|p| p.did),
        validator: validator.map(|p| p.did),
        ..kit::rfq(id, from.did, "compute", usd(8), DAY_S)
    })
}

#[test]
fn no_arbiter_or_validator_comes_from_either_partys_owner_tree() {
    let mut w = World::new();
    let (agent, session, open_agent, principal) = (
        party("agent"),
        party("session"),
        party("open-agent"),
        party("principal"),
    );
    // The buyer's own session, a sibling agent and its principal.
    for (label, role) in [
        ("session", &session),
        ("sibling", &open_agent),
        ("principal", &principal),
    ] {
        let id = format!("own-arbiter-{label}");
        refused(
            &mut w,
            &agent,
            rfq_with(&id, &agent, Some(role), None),
            "own_side_role",
        );
        let id = format!("own-validator-{label}");
        refused(
            &mut w,
            &agent,
            rfq_with(&id, &agent, None, Some(role)),
            "own_side_role",
        );
    }
    // The provider's own agent or session named by the buyer: the
    // provider's quote is refused.
    let seller = registered(&mut w, "probe-seller");
    let seller_agent = agent_of(
        &mut w,
        &seller,
        "probe-seller-agent",
        kit::limits(usd(10), usd(20)),
    );
    let seller_session = session_of(&mut w, &seller_agent, "probe-seller-session", 3_600);
    for (id, arbiter, validator) in [
        ("rfq-a", Some(&seller_session), None),
        ("rfq-v", None, Some(&seller_agent)),
    ] {
        w.ok(&agent.key, rfq_with(id, &agent, arbiter, validator));
        refused(
            &mut w,
            &seller,
            kit::quote(&format!("q-{id}"), id, seller.did, None, usd(5)),
            "own_side_role",
        );
    }
}

#[test]
fn every_recipient_of_a_spenders_money_passes_its_payee_lists() {
    let mut w = World::new();
    let (agent, picky, thrifty, principal) = (
        party("agent"),
        party("picky"),
        party("thrifty"),
        party("principal"),
    );
    // A stake the provider's mandate may not pay to this buyer: the quote
    // that would put it at stake is refused.
    let listing = PublishListing {
        stake: Some(usd(5)),
        ..kit::listing("staked", picky.did, &["compute"], usd(7))
    };
    w.ok(&picky.key, kit::publish(listing));
    w.ok(&thrifty.key, rfq_with("r-staked", &thrifty, None, None));
    refused(
        &mut w,
        &picky,
        kit::quote("q-staked", "r-staked", picky.did, Some("staked"), usd(5)),
        "payee_not_allowed",
    );
    // A delivery that splits the buyer's escrow to a denied payee.
    let seller = registered(&mut w, "probe-seller");
    w.ok(&agent.key, rfq_with("r-split", &agent, None, None));
    w.ok(
        &seller.key,
        kit::quote("q-split", "r-split", seller.did, None, usd(5)),
    );
    w.ok(&agent.key, kit::accept("q-split", "t-split"));
    let denied = party("denied");
    refused(
        &mut w,
        &seller,
        kit::deliver("t-split", b"r", &[(seller.did, 5_000), (denied.did, 5_000)]),
        "payee_denied",
    );
    w.ok(
        &seller.key,
        kit::deliver("t-split", b"r", &[(seller.did, 10_000)]),
    );
    // A licence whose revenue share pays an account the licensee's mandate
    // does not allow.
    let dataset = PublishListing {
        kind: ListingKind::Dataset,
        pricing: Pricing::PerCall { price: usd(2) },
        content_hash: Some(kit::sha256_hex(b"corpus")),
        revenue_share: vec![
            Split {
                to: principal.did,
                bps: 5_000,
            },
            Split {
                to: thrifty.did,
                bps: 5_000,
            },
        ],
        ..kit::listing("corpus", principal.did, &["data"], usd(2))
    };
    w.ok(&principal.key, kit::publish(dataset));
    refused(
        &mut w,
        &picky,
        kit::license("lic", "corpus", picky.did),
        "payee_not_allowed",
    );
}

#[test]
fn a_revoked_arbiter_does_not_rule_and_a_revoked_validator_does_not_approve() {
    let mut w = World::new();
    let agent = party("agent");
    let judge = registered(&mut w, "probe-judge");
    let arbiter = agent_of(&mut w, &judge, "probe-arbiter", kit::limits(usd(1), usd(1)));
    let validator = agent_of(
        &mut w,
        &judge,
        "probe-validator",
        kit::limits(usd(1), usd(1)),
    );
    let seller = registered(&mut w, "probe-seller");
    w.ok(
        &agent.key,
        rfq_with("r", &agent, Some(&arbiter), Some(&validator)),
    );
    w.ok(&seller.key, kit::quote("q", "r", seller.did, None, usd(5)));
    w.ok(&agent.key, kit::accept("q", "t"));
    w.ok(&seller.key, kit::deliver("t", b"r", &[]));
    w.ok(&judge.key, kit::revoke(validator.did));
    refused(
        &mut w,
        &validator,
        kit::approve_task("t", b"r"),
        "grant_revoked",
    );
    w.ok(&agent.key, kit::dispute("t", "garbage"));
    w.ok(&judge.key, kit::revoke(arbiter.did));
    refused(&mut w, &arbiter, kit::resolve("t", 0), "grant_revoked");
}

#[test]
fn a_sessions_channel_cannot_outlive_the_session_and_closes_when_it_is_revoked() {
    let mut w = World::new();
    let principal = party("principal");
    let agent = agent_of(
        &mut w,
        &principal,
        "probe-payer",
        kit::limits(usd(10), usd(25)),
    );
    w.ok(
        &party("operator").key,
        kit::deposit(agent.did, usd(20), "fund-payer"),
    );
    let session = session_of(&mut w, &agent, "probe-session", 3_600);
    // Thirty days by default: longer than the one-hour session.
    refused(
        &mut w,
        &session,
        kit::open_channel(agent.did, principal.did, usd(5), "long"),
        "channel_outlives_grant",
    );
    let open = OpenChannel {
        from: agent.did,
        payee: principal.did,
        deposit: usd(5),
        voucher_key: None,
        expires_at: Some(Timestamp(w.now.0 + 1_800)),
        dispute_window_s: Some(600),
        category: None,
        idempotency_key: "short".into(),
    };
    w.ok(&session.key, Command::OpenChannel(open));
    let channel = ChannelId::derive(&agent.did, &principal.did, "short");
    let network = *w.state.network();
    let signed_before = kit::voucher(
        &session.key,
        &network,
        channel,
        principal.did,
        "s",
        1,
        usd(3),
    );
    // Revoking the session starts the channel's close: the payee keeps the
    // dispute window to redeem what it holds, then the rest goes home.
    let events = w.ok(&agent.key, kit::revoke(session.did));
    assert!(
        events.iter().any(
            |e| matches!(e, Event::ChannelClosing { channel_id, .. } if *channel_id == channel)
        ),
        "{events:?}"
    );
    w.ok(
        &principal.key,
        kit::collect_channel(channel, vec![signed_before]),
    );
    assert_eq!(w.available(&principal.did), usd(103).atomic());
    w.now = Timestamp(w.now.0 + 600);
    let events = w.state.advance(w.now);
    assert!(matches!(&events[..], [Event::ChannelClosed { refunded, .. }] if *refunded == usd(2)));
    assert_eq!(
        w.state.channel(&channel).unwrap().status,
        ChannelStatus::Closed
    );
    // A new channel after the revocation: the revoked key opens nothing.
    refused(
        &mut w,
        &session,
        kit::open_channel(agent.did, principal.did, usd(1), "after"),
        "grant_revoked",
    );
}

#[test]
fn a_future_dated_session_stays_under_its_agent_and_falls_with_it() {
    let mut w = World::new();
    let (principal, agent, future) = (party("principal"), party("agent"), party("future-session"));
    // The world issued another session after the future-dated one.
    w.ok(&principal.key, kit::revoke(agent.did));
    let status = w.state.grant_status(&future.did, w.now).unwrap();
    assert!(
        status.revoked_at.is_some(),
        "the cascade reached the future session"
    );
    w.now = Timestamp(w.now.0 + 2 * DAY_S);
    assert!(!w.state.grant_status(&future.did, w.now).unwrap().active);
}

#[test]
fn future_dated_sessions_count_against_the_cap() {
    let mut w = World::new();
    let agent = agent_of(
        &mut w,
        &party("principal"),
        "probe-capped",
        kit::limits(usd(5), usd(10)),
    );
    let start = Timestamp(w.now.0 + DAY_S);
    let mut issued = 0;
    let refusal = loop {
        let s = party(&format!("probe-future-{issued}"));
        let grant = kit::grant(
            &agent.key,
            s.did,
            Role::Session,
            kit::limits(usd(1), usd(1)),
            start,
            Timestamp(start.0 + 3_600),
            "f",
        );
        match w.apply(&agent.key, kit::issue_session(grant)) {
            Ok(_) => issued += 1,
            Err(rejection) => break rejection,
        }
        assert!(issued <= agentrail_core::constants::SESSIONS_PER_AGENT_MAX);
    };
    assert_eq!(refusal.code(), "too_many_delegations");
    assert_eq!(issued, agentrail_core::constants::SESSIONS_PER_AGENT_MAX);
}

#[test]
fn the_operator_registers_as_nothing() {
    let mut w = World::new();
    let operator = party("operator");
    refused(
        &mut w,
        &operator,
        kit::register_principal(operator.did),
        "not_authorized",
    );
    let principal = party("principal");
    let grant = kit::grant(
        &principal.key,
        operator.did,
        Role::Agent,
        kit::limits(usd(1), usd(1)),
        w.now,
        Timestamp(w.now.0 + DAY_S),
        "op",
    );
    refused(
        &mut w,
        &principal,
        kit::register_agent(grant),
        "not_authorized",
    );
}

#[test]
fn human_readable_fields_refuse_bidi_and_invisible_characters() {
    let mut w = World::new();
    let (agent, principal) = (party("agent"), party("principal"));
    for (i, memo) in ["invoice\u{202E}fdp.exe", "a\u{2066}b", "zero\u{200B}width"]
        .into_iter()
        .enumerate()
    {
        let Command::Transfer(transfer) =
            compute(agent.did, principal.did, usd(1), &format!("m{i}"))
        else {
            unreachable!()
        };
        let command = Command::Transfer(Transfer {
            memo: Some(memo.into()),
            ..transfer
        });
        let rejection = refused(&mut w, &agent, command, "invalid_field");
        assert_eq!(rejection.param(), Some("memo"));
    }
    let listing = PublishListing {
        name: "GPU\u{202E}sruoh".into(),
        ..kit::listing("spoof", agent.did, &["compute"], usd(1))
    };
    refused(&mut w, &agent, kit::publish(listing), "invalid_field");
}

#[test]
fn an_idempotency_key_belongs_to_the_account_not_to_the_signer() {
    let mut w = World::new();
    let (agent, session, principal) = (party("agent"), party("session"), party("principal"));
    let pay = compute(agent.did, principal.did, usd(1), "shared-key");
    w.ok(&agent.key, pay.clone());
    let before = w.available(&principal.did);
    // The session retries the agent's payment: the first outcome, no second payment.
    let events = w.ok(&session.key, pay);
    assert!(
        matches!(&events[..], [Event::Duplicate { .. }]),
        "{events:?}"
    );
    assert_eq!(w.available(&principal.did), before);
    // Another payment under the same key of the same account is a conflict.
    refused(
        &mut w,
        &session,
        compute(agent.did, principal.did, usd(2), "shared-key"),
        "idempotency_conflict",
    );
    // A stranger learns nothing from the key.
    refused(
        &mut w,
        &party("stranger"),
        compute(agent.did, principal.did, usd(1), "shared-key"),
        "unknown_identity",
    );
}

#[test]
fn a_daily_approval_threshold_stops_a_split_series() {
    let mut w = World::new();
    let principal = party("principal");
    let limits = Limits {
        approval_threshold: Some(usd(3)),
        daily_approval_threshold: Some(usd(5)),
        ..kit::limits(usd(10), usd(50))
    };
    let splitter = agent_of(&mut w, &principal, "probe-splitter", limits);
    w.ok(
        &party("operator").key,
        kit::deposit(splitter.did, usd(20), "fund-splitter"),
    );
    for i in 0..2 {
        let events = w.ok(
            &splitter.key,
            kit::transfer(splitter.did, principal.did, usd(2), &format!("p{i}")),
        );
        assert!(
            matches!(&events[..], [Event::Transferred { .. }]),
            "{events:?}"
        );
    }
    // 2 + 2 + 2 > 5: the third waits for the principal, though below 3.
    let events = w.ok(
        &splitter.key,
        kit::transfer(splitter.did, principal.did, usd(2), "p2"),
    );
    assert!(
        matches!(&events[..], [Event::PaymentPending { .. }]),
        "{events:?}"
    );
    // A session cannot widen it.
    let s = party("probe-splitter-session");
    let grant = kit::grant(
        &splitter.key,
        s.did,
        Role::Session,
        Limits {
            daily_approval_threshold: Some(usd(6)),
            ..kit::limits(usd(1), usd(1))
        },
        w.now,
        Timestamp(w.now.0 + 3_600),
        "s",
    );
    refused(&mut w, &splitter, kit::issue_session(grant), "grant_widens");
    // The next day starts afresh.
    w.now = Timestamp(w.now.0 + DAY_S);
    let events = w.ok(
        &splitter.key,
        kit::transfer(splitter.did, principal.did, usd(2), "p3"),
    );
    assert!(
        matches!(events.last(), Some(Event::Transferred { .. })),
        "{events:?}"
    );
}
