//! Payments off the ledger (x402 `exact` on a chain) charged against a
//! mandate: the grants' limits and budgets apply, ledger and chain
//! payments share the budgets, no ledger money moves, a retry counts once.

mod support;

use agentrail_core::command::ChargeMandate;
use agentrail_core::{Amount, Command, Did, Event};
use agentrail_sim::kit::usd;
use support::{World, compute};

fn charge(from: Did, amount: Amount, key: &str) -> Command {
    Command::ChargeMandate(ChargeMandate {
        from,
        amount,
        payee: "eip155:31337:0x90F79bf6EB2c4f870365E785982E1f101E93b906".into(),
        reference: format!("0x{}", "ab".repeat(32)),
        idempotency_key: key.into(),
    })
}

fn code(w: &mut World, key: &ed25519_dalek::SigningKey, command: Command) -> &'static str {
    w.apply(key, command).unwrap_err().code()
}

#[test]
fn a_charge_counts_against_the_budgets_and_moves_no_money() {
    let mut w = World::new();
    let (thrifty, principal) = (w.thrifty.did, w.principal.did);
    let key = w.thrifty.key.clone();
    let before = w.available(&thrifty);
    let events = w.ok(&key, charge(thrifty, usd(10), "exact-1"));
    assert!(matches!(
        events.as_slice(),
        [Event::MandateCharged { amount, signer, payee, .. }]
            if *amount == usd(10) && *signer == thrifty && payee.starts_with("eip155:31337:")
    ));
    assert_eq!(w.available(&thrifty), before, "no ledger money moves");
    // A retry of the same charge is the same charge, counted once.
    let again = w.ok(&key, charge(thrifty, usd(10), "exact-1"));
    assert!(matches!(again.as_slice(), [Event::Duplicate { .. }]));
    let status = w.state.grant_status(&thrifty, w.now).unwrap();
    assert_eq!(
        (status.spent_total, status.remaining_total),
        (usd(10), Some(usd(5)))
    );
    // Ledger payments and chain payments share the total budget of 15.
    w.ok(&key, compute(thrifty, principal, usd(5), "ledger-1"));
    assert_eq!(
        code(
            &mut w,
            &key,
            charge(thrifty, Amount::from_atomic(1), "exact-2")
        ),
        "budget_exceeded"
    );
}

#[test]
fn the_per_payment_limit_and_the_session_chain_apply() {
    let mut w = World::new();
    let (agent, session) = (w.open_agent.did, w.session.clone());
    let key = w.open_agent.key.clone();
    assert_eq!(
        code(&mut w, &key, charge(agent, usd(1_001), "big")),
        "per_payment_limit_exceeded"
    );
    // The session of `agent` (whose grant names categories) charges through
    // its agent's grant, which allows no payment off the ledger.
    let from = w.agent.did;
    assert_eq!(
        code(&mut w, &session.key, charge(from, usd(1), "s-1")),
        "off_ledger_payment_not_allowed"
    );
}

#[test]
fn grants_that_name_payees_or_categories_or_ask_approval_allow_none() {
    let mut w = World::new();
    let (picky, agent) = (w.picky.clone(), w.agent.clone());
    assert_eq!(
        code(&mut w, &picky.key, charge(picky.did, usd(1), "p-1")),
        "off_ledger_payment_not_allowed"
    );
    let rejection = w
        .apply(&agent.key, charge(agent.did, usd(1), "a-1"))
        .unwrap_err();
    assert_eq!(rejection.code(), "off_ledger_payment_not_allowed");
    assert!(
        rejection.to_string().contains("allowed_categories"),
        "{rejection}"
    );
}

#[test]
fn a_principal_a_stranger_and_bad_fields_are_refused() {
    let mut w = World::new();
    let principal = w.principal.clone();
    assert_eq!(
        code(
            &mut w,
            &principal.key,
            charge(principal.did, usd(1), "pr-1")
        ),
        "not_authorized"
    );
    let stranger = w.stranger.clone();
    let thrifty = w.thrifty.did;
    assert!(
        w.apply(&stranger.key, charge(thrifty, usd(1), "st-1"))
            .is_err()
    );
    let key = w.thrifty.key.clone();
    assert_eq!(
        code(&mut w, &key, charge(thrifty, Amount::ZERO, "z")),
        "amount_zero"
    );
    let mut bad = charge(thrifty, usd(1), "bad-1");
    if let Command::ChargeMandate(c) = &mut bad {
        c.payee = "eip155:1:0x12 34".into();
    }
    assert_eq!(code(&mut w, &key, bad), "invalid_field");
    let mut long = charge(thrifty, usd(1), "bad-2");
    if let Command::ChargeMandate(c) = &mut long {
        c.reference = "a".repeat(129);
    }
    assert_eq!(code(&mut w, &key, long), "invalid_field");
}
