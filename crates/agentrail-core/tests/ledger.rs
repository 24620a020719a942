//! The ledger's stories, end to end through `State::apply`.

mod support;

use agentrail_core::command::Hold;
use agentrail_core::constants::{APPROVAL_WINDOW_S, DAY_S, IDEMPOTENCY_RETENTION_S};
use agentrail_core::event::Part;
use agentrail_core::grant::ExposureBound;
use agentrail_core::state::{ApprovalStatus, HoldStatus};
use agentrail_core::{Amount, Command, Event, Timestamp};
use agentrail_sim::kit::{self, usd};
use support::{World, compute};

#[test]
fn a_session_pays_within_its_mandate_and_every_level_is_charged() {
    let mut w = World::new();
    let (agent, principal) = (w.agent.did, w.principal.did);
    let events = w.ok(
        &w.session.key.clone(),
        compute(agent, principal, usd(5), "renewal"),
    );
    assert!(
        matches!(events.as_slice(), [Event::Transferred { amount, signer, .. }] if *amount == usd(5) && *signer == w.session.did)
    );
    assert_eq!(w.available(&agent), usd(95).atomic());
    assert_eq!(w.available(&principal), usd(105).atomic());
    let session = w.state.grant_status(&w.session.did, w.now).unwrap();
    let agent_status = w.state.grant_status(&agent, w.now).unwrap();
    assert_eq!((session.spent_today, session.spent_total), (usd(5), usd(5)));
    assert_eq!(
        (session.remaining_today, session.remaining_total),
        (usd(7), Some(usd(25)))
    );
    assert_eq!(
        (agent_status.spent_today, agent_status.spent_total),
        (usd(5), usd(5))
    );
}

#[test]
fn a_payment_above_the_threshold_waits_for_the_principal() {
    let mut w = World::new();
    let (agent, principal) = (w.agent.did, w.principal.did);
    let events = w.ok(
        &w.agent.key.clone(),
        compute(agent, principal, usd(9), "big"),
    );
    let [
        Event::PaymentPending {
            approval_id,
            expires_at,
            ..
        },
    ] = events.as_slice()
    else {
        panic!("{events:?}")
    };
    assert_eq!(*expires_at, Timestamp(w.now.0 + APPROVAL_WINDOW_S));
    assert_eq!(
        (w.available(&agent), w.held(&agent)),
        (usd(91).atomic(), usd(9).atomic())
    );

    let events = w.ok(&w.principal.key.clone(), kit::approve(*approval_id));
    assert!(matches!(
        events.as_slice(),
        [Event::PaymentApproved { .. }, Event::Transferred { .. }]
    ));
    assert_eq!((w.available(&agent), w.held(&agent)), (usd(91).atomic(), 0));
    assert_eq!(w.available(&principal), usd(109).atomic());
    assert_eq!(
        w.state.approval_status(*approval_id),
        Some(ApprovalStatus::Approved)
    );
}

#[test]
fn an_undecided_payment_expires_and_gives_back_money_and_budget() {
    let mut w = World::new();
    let agent = w.agent.did;
    w.ok(
        &w.agent.key.clone(),
        compute(agent, w.principal.did, usd(9), "big"),
    );
    assert_eq!(
        w.state.grant_status(&agent, w.now).unwrap().spent_total,
        usd(9)
    );
    let expired = w.state.advance(Timestamp(w.now.0 + APPROVAL_WINDOW_S));
    assert_eq!(
        expired,
        vec![Event::PaymentExpired {
            approval_id: 1,
            from: agent
        }]
    );
    assert_eq!(
        (w.available(&agent), w.held(&agent)),
        (usd(100).atomic(), 0)
    );
    assert_eq!(
        w.state
            .grant_status(&agent, w.state.clock())
            .unwrap()
            .spent_total,
        Amount::ZERO
    );
    w.now = w.state.clock();
    assert_eq!(
        w.apply(&w.principal.key.clone(), kit::approve(1))
            .map_err(|r| r.code()),
        Err("approval_not_pending")
    );
}

#[test]
fn revoking_an_agent_revokes_its_sessions_and_its_principal_keeps_the_money() {
    let mut w = World::new();
    let (agent, principal) = (w.agent.did, w.principal.did);
    let events = w.ok(&w.principal.key.clone(), kit::revoke(agent));
    assert_eq!(
        events[0],
        Event::GrantRevoked {
            subject: agent,
            revoked_by: principal,
            cascaded_from: None
        }
    );
    let cascaded: Vec<_> = events[1..]
        .iter()
        .map(|e| match e {
            Event::GrantRevoked {
                subject,
                cascaded_from: Some(from),
                ..
            } if *from == agent => *subject,
            other => panic!("{other:?}"),
        })
        .collect();
    // The already revoked session is not revoked twice.
    assert!(cascaded.contains(&w.session.did) && !cascaded.contains(&w.revoked_session.did));

    let refused = w.apply(
        &w.session.key.clone(),
        compute(agent, principal, usd(1), "after"),
    );
    assert_eq!(refused.map_err(|r| r.code()), Err("grant_revoked"));
    assert_eq!(
        w.state.exposure(&w.session.did, w.now).unwrap().amount,
        Amount::ZERO
    );
    // The principal owns the agent's account and moves money out at will.
    w.ok(
        &w.principal.key.clone(),
        kit::transfer(agent, principal, usd(100), "sweep"),
    );
    w.ok(
        &w.principal.key.clone(),
        kit::withdraw(principal, usd(200), "out"),
    );
    assert_eq!(w.state.totals().withdrawn, usd(200));
}

#[test]
fn a_release_splits_exactly_and_a_void_restores_the_budget() {
    let mut w = World::new();
    let agent = w.agent.did;
    let payees = [w.principal.did, w.other_principal.did, w.open_agent.did];
    let amount = Amount::from_atomic(7_000_001);
    let hold = Command::Hold(Hold {
        hold_id: "job".into(),
        from: agent,
        amount,
        category: Some("data".into()),
        expires_at: None,
    });
    w.ok(&w.agent.key.clone(), hold);
    let events = w.ok(
        &w.agent.key.clone(),
        kit::release(
            "job",
            &[(payees[0], 3_334), (payees[1], 3_333), (payees[2], 3_333)],
        ),
    );
    let [Event::HoldReleased { parts, .. }] = events.as_slice() else {
        panic!("{events:?}")
    };
    let expected = [2_333_801, 2_333_100, 2_333_100];
    assert_eq!(
        parts,
        &payees
            .iter()
            .zip(expected)
            .map(|(to, a)| Part {
                to: *to,
                amount: Amount::from_atomic(a)
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(
        parts.iter().map(|p| p.amount.atomic()).sum::<u128>(),
        amount.atomic()
    );

    let hold = Command::Hold(Hold {
        hold_id: "job-2".into(),
        from: agent,
        amount: usd(5),
        category: Some("data".into()),
        expires_at: None,
    });
    w.ok(&w.agent.key.clone(), hold);
    let spent = w.state.grant_status(&agent, w.now).unwrap().spent_total;
    w.ok(&w.agent.key.clone(), kit::void("job-2"));
    assert_eq!(
        w.state.grant_status(&agent, w.now).unwrap().spent_total,
        spent.checked_sub(usd(5)).unwrap()
    );
    assert_eq!(w.state.hold_status("job-2"), Some(HoldStatus::Voided));
    w.state.check_invariants().unwrap();
}

#[test]
fn a_hold_voids_itself_when_it_expires() {
    let mut w = World::new();
    let agent = w.agent.did;
    let expires_at = Timestamp(w.now.0 + 600);
    let hold = Command::Hold(Hold {
        hold_id: "h".into(),
        from: agent,
        amount: usd(3),
        category: Some("data".into()),
        expires_at: Some(expires_at),
    });
    w.ok(&w.agent.key.clone(), hold);
    assert_eq!(w.held(&agent), usd(3).atomic());
    assert_eq!(w.state.advance(Timestamp(expires_at.0 - 1)), vec![]);
    assert_eq!(
        w.state.advance(expires_at),
        vec![Event::HoldExpired {
            hold_id: "h".into(),
            from: agent
        }]
    );
    assert_eq!(
        (w.available(&agent), w.held(&agent)),
        (usd(100).atomic(), 0)
    );
}

#[test]
fn the_same_key_with_the_same_content_returns_the_original_outcome_for_a_day() {
    let mut w = World::new();
    let (agent, principal) = (w.agent.did, w.principal.did);
    let first_use = w.now;
    let first = w.ok(
        &w.agent.key.clone(),
        compute(agent, principal, usd(2), "once"),
    );
    w.now = Timestamp(first_use.0 + IDEMPOTENCY_RETENTION_S - 1);
    let second = w.ok(
        &w.agent.key.clone(),
        compute(agent, principal, usd(2), "once"),
    );
    assert_eq!(second, vec![Event::Duplicate { original: first }]);
    assert_eq!(w.available(&agent), usd(98).atomic());
    // Once the retention has passed the key is forgotten: the same request
    // (signed anew: a signed request expires within minutes) is a new
    // payment, and the ledger no longer holds the first outcome in memory.
    w.now = Timestamp(first_use.0 + IDEMPOTENCY_RETENTION_S);
    let third = w.ok(
        &w.agent.key.clone(),
        compute(agent, principal, usd(2), "once"),
    );
    assert!(
        matches!(third.as_slice(), [Event::Transferred { .. }]),
        "{third:?}"
    );
    assert_eq!(w.available(&agent), usd(96).atomic());
    w.state.check_invariants().unwrap();
    // Keys are per signer: the principal may use the same key for its own payment.
    w.ok(
        &w.principal.key.clone(),
        kit::transfer(principal, agent, usd(1), "once"),
    );
}

#[test]
fn the_daily_budget_resets_at_utc_midnight() {
    let mut w = World::new();
    let (agent, principal) = (w.agent.did, w.principal.did);
    for key in ["a", "b", "c"] {
        w.ok(&w.agent.key.clone(), compute(agent, principal, usd(8), key));
    }
    let refused = w.apply(&w.agent.key.clone(), compute(agent, principal, usd(2), "d"));
    assert_eq!(refused.map_err(|r| r.code()), Err("budget_exceeded"));
    w.now = Timestamp((w.now.utc_day() + 1) * DAY_S);
    w.ok(&w.agent.key.clone(), compute(agent, principal, usd(2), "d"));
}

#[test]
fn exposure_is_the_binding_limit_down_the_chain() {
    let mut w = World::new();
    // Agent: daily 25 over 300 days, total 40: the total binds.
    let agent = w.state.exposure(&w.agent.did, w.now).unwrap();
    assert_eq!(
        (agent.amount, agent.bound),
        (usd(40), ExposureBound::TotalBudget)
    );
    // Session: daily 12 over 7 UTC days, total 30: the total binds at 30.
    let session = w.state.exposure(&w.session.did, w.now).unwrap();
    assert_eq!(
        (session.amount, session.bound),
        (usd(30), ExposureBound::TotalBudget)
    );
    // Once the agent has spent 25 today, it has 15 left, below its session's 30.
    let (from, to) = (w.agent.did, w.principal.did);
    for key in ["a", "b", "c"] {
        let amount = if key == "c" { usd(9) } else { usd(8) };
        w.ok(&w.agent.key.clone(), compute(from, to, amount, key));
    }
    w.ok(&w.principal.key.clone(), kit::approve(1));
    let session = w.state.exposure(&w.session.did, w.now).unwrap();
    assert_eq!(
        (session.amount, session.bound),
        (usd(15), ExposureBound::Parent)
    );
}

#[test]
fn the_total_budget_can_be_spent_to_its_last_unit_and_no_further() {
    let mut w = World::new();
    let (thrifty, principal) = (w.thrifty.did, w.principal.did);
    w.ok(
        &w.thrifty.key.clone(),
        kit::transfer(thrifty, principal, usd(10), "a"),
    );
    w.now = Timestamp(w.now.0 + DAY_S);
    w.ok(
        &w.thrifty.key.clone(),
        kit::transfer(thrifty, principal, usd(5), "b"),
    );
    let refused = w.apply(
        &w.thrifty.key.clone(),
        kit::transfer(thrifty, principal, Amount::from_atomic(1), "c"),
    );
    assert_eq!(refused.map_err(|r| r.code()), Err("budget_exceeded"));
    assert_eq!(
        w.state.exposure(&thrifty, w.now).unwrap().amount,
        Amount::ZERO
    );
}
