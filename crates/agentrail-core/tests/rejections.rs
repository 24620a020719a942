//! Every rejection the ledger can give, one row per case: the machine code,
//! the offending field, a message, and a ledger left exactly as it was.

mod support;

use agentrail_core::command::{Hold, Transfer};
use agentrail_core::grant::{Limits, Role, SignedGrant};
use agentrail_core::{Amount, Authenticated, Command, Rejection, SignedCommand, Timestamp};
use agentrail_sim::kit::{self, T0, usd};
use support::{World, compute, session_limits};

type Build = fn(&mut World) -> Result<Authenticated, Rejection>;

struct Row {
    name: &'static str,
    code: &'static str,
    param: Option<&'static str>,
    build: Build,
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "forged signature",
            code: "invalid_signature",
            param: None,
            build: |w| {
                let command = compute(w.agent.did, w.principal.did, usd(1), "forged");
                let forged = *SignedCommand::sign(command.clone(), &w.stranger.key)
                    .unwrap()
                    .signature();
                SignedCommand::sign(command, &w.agent.key)
                    .unwrap()
                    .with_signature(forged)
                    .verify()
            },
        },
        Row {
            name: "idempotency key with a space",
            code: "invalid_field",
            param: Some("idempotency_key"),
            build: |w| {
                Ok(kit::signed(
                    &w.agent.key,
                    compute(w.agent.did, w.principal.did, usd(1), "has space"),
                ))
            },
        },
        Row {
            name: "memo with a control character",
            code: "invalid_field",
            param: Some("memo"),
            build: |w| {
                let command = Command::Transfer(Transfer {
                    memo: Some("bell\u{7}".into()),
                    ..transfer_of(compute(w.agent.did, w.principal.did, usd(1), "m"))
                });
                Ok(kit::signed(&w.agent.key, command))
            },
        },
        Row {
            name: "category not in the category alphabet",
            code: "invalid_field",
            param: Some("category"),
            build: |w| {
                Ok(kit::signed(
                    &w.agent.key,
                    kit::transfer_in(w.agent.did, w.principal.did, usd(1), Some("Compute"), "c"),
                ))
            },
        },
        Row {
            name: "hold expiring in the past",
            code: "invalid_field",
            param: Some("expires_at"),
            build: |w| {
                let command = Command::Hold(Hold {
                    hold_id: "h".into(),
                    from: w.agent.did,
                    amount: usd(1),
                    category: Some("data".into()),
                    expires_at: Some(T0),
                });
                Ok(kit::signed(&w.agent.key, command))
            },
        },
        Row {
            name: "session grant with role agent",
            code: "invalid_grant",
            param: Some("role"),
            build: |w| {
                let grant = kit::grant(
                    &w.agent.key,
                    w.stranger.did,
                    Role::Agent,
                    session_limits(),
                    w.now,
                    Timestamp(w.now.0 + 60),
                    "x",
                );
                Ok(kit::signed(&w.agent.key, kit::issue_session(grant)))
            },
        },
        Row {
            name: "grant that ends before it starts",
            code: "invalid_grant",
            param: Some("expires_at"),
            build: |w| {
                let grant = kit::grant(
                    &w.agent.key,
                    w.stranger.did,
                    Role::Session,
                    session_limits(),
                    w.now,
                    w.now,
                    "x",
                );
                Ok(kit::signed(&w.agent.key, kit::issue_session(grant)))
            },
        },
        Row {
            name: "grant signed by another key",
            code: "invalid_grant_signature",
            param: None,
            build: |w| {
                let genuine = kit::grant(
                    &w.agent.key,
                    w.stranger.did,
                    Role::Session,
                    session_limits(),
                    w.now,
                    Timestamp(w.now.0 + 60),
                    "x",
                );
                let other = kit::grant(
                    &w.agent.key,
                    w.stranger.did,
                    Role::Session,
                    session_limits(),
                    w.now,
                    Timestamp(w.now.0 + 61),
                    "x",
                );
                let document = serde_json::to_value(&genuine).unwrap()["grant"].clone();
                let forged = SignedGrant::from_document(document, *other.signature()).unwrap();
                Ok(kit::signed(&w.agent.key, kit::issue_session(forged)))
            },
        },
        Row {
            name: "unregistered signer spends",
            code: "unknown_identity",
            param: None,
            build: |w| {
                Ok(kit::signed(
                    &w.stranger.key,
                    compute(w.agent.did, w.principal.did, usd(1), "u"),
                ))
            },
        },
        Row {
            name: "payee without an account",
            code: "unknown_account",
            param: None,
            build: |w| {
                Ok(kit::signed(
                    &w.agent.key,
                    compute(w.agent.did, w.stranger.did, usd(1), "u"),
                ))
            },
        },
        Row {
            name: "principal registers twice",
            code: "already_registered",
            param: None,
            build: |w| {
                Ok(kit::signed(
                    &w.principal.key,
                    kit::register_principal(w.principal.did),
                ))
            },
        },
        Row {
            name: "agent spends from a sibling's account",
            code: "not_authorized",
            param: None,
            build: |w| {
                Ok(kit::signed(
                    &w.agent.key,
                    compute(w.open_agent.did, w.principal.did, usd(1), "n"),
                ))
            },
        },
        Row {
            name: "session withdraws",
            code: "not_authorized",
            param: None,
            build: |w| {
                Ok(kit::signed(
                    &w.session.key,
                    kit::withdraw(w.agent.did, usd(1), "w"),
                ))
            },
        },
        Row {
            name: "another principal decides an approval",
            code: "not_authorized",
            param: None,
            build: |w| {
                w.ok(
                    &w.agent.key.clone(),
                    compute(w.agent.did, w.principal.did, usd(9), "big"),
                );
                Ok(kit::signed(&w.other_principal.key, kit::approve(1)))
            },
        },
        Row {
            name: "principal deposits",
            code: "not_operator",
            param: None,
            build: |w| {
                Ok(kit::signed(
                    &w.principal.key,
                    kit::deposit(w.principal.did, usd(1), "d"),
                ))
            },
        },
        Row {
            name: "session before its window",
            code: "grant_not_yet_valid",
            param: None,
            build: |w| {
                Ok(kit::signed(
                    &w.future_session.key,
                    compute(w.agent.did, w.principal.did, usd(1), "f"),
                ))
            },
        },
        Row {
            name: "session after its window",
            code: "grant_expired",
            param: None,
            build: |w| {
                Ok(kit::signed(
                    &w.expired_session.key,
                    compute(w.agent.did, w.principal.did, usd(1), "e"),
                ))
            },
        },
        Row {
            name: "revoked session",
            code: "grant_revoked",
            param: None,
            build: |w| {
                Ok(kit::signed(
                    &w.revoked_session.key,
                    compute(w.agent.did, w.principal.did, usd(1), "r"),
                ))
            },
        },
        Row {
            name: "session wider than its agent per day",
            code: "grant_widens",
            param: Some("daily_budget"),
            build: |w| {
                let limits = Limits {
                    daily_budget: usd(26),
                    ..session_limits()
                };
                let grant = kit::grant(
                    &w.agent.key,
                    w.stranger.did,
                    Role::Session,
                    limits,
                    w.now,
                    Timestamp(w.now.0 + 60),
                    "x",
                );
                Ok(kit::signed(&w.agent.key, kit::issue_session(grant)))
            },
        },
        Row {
            name: "session dropping its agent's categories",
            code: "grant_widens",
            param: Some("allowed_categories"),
            build: |w| {
                let limits = Limits {
                    allowed_categories: None,
                    ..session_limits()
                };
                let grant = kit::grant(
                    &w.agent.key,
                    w.stranger.did,
                    Role::Session,
                    limits,
                    w.now,
                    Timestamp(w.now.0 + 60),
                    "x",
                );
                Ok(kit::signed(&w.agent.key, kit::issue_session(grant)))
            },
        },
        Row {
            name: "session outliving its agent",
            code: "grant_widens",
            param: Some("expires_at"),
            build: |w| {
                let grant = kit::grant(
                    &w.agent.key,
                    w.stranger.did,
                    Role::Session,
                    session_limits(),
                    Timestamp(T0.0 + 299 * 86_400),
                    Timestamp(T0.0 + 301 * 86_400),
                    "x",
                );
                Ok(kit::signed(&w.agent.key, kit::issue_session(grant)))
            },
        },
        Row {
            name: "above the session's per-payment cap",
            code: "per_payment_limit_exceeded",
            param: Some("amount"),
            build: |w| {
                Ok(kit::signed(
                    &w.session.key,
                    compute(w.agent.did, w.principal.did, usd(6), "p"),
                ))
            },
        },
        Row {
            name: "past the session's daily budget",
            code: "budget_exceeded",
            param: Some("amount"),
            build: |w| {
                for key in ["d1", "d2"] {
                    w.ok(
                        &w.session.key.clone(),
                        compute(w.agent.did, w.principal.did, usd(5), key),
                    );
                }
                Ok(kit::signed(
                    &w.session.key,
                    compute(w.agent.did, w.principal.did, usd(3), "d3"),
                ))
            },
        },
        Row {
            name: "past the agent's total budget",
            code: "budget_exceeded",
            param: Some("amount"),
            build: |w| {
                w.ok(
                    &w.thrifty.key.clone(),
                    compute(w.thrifty.did, w.principal.did, usd(10), "t1"),
                );
                Ok(kit::signed(
                    &w.thrifty.key,
                    compute(w.thrifty.did, w.principal.did, usd(6), "t2"),
                ))
            },
        },
        Row {
            name: "payee outside the allow-list",
            code: "payee_not_allowed",
            param: Some("to"),
            build: |w| {
                Ok(kit::signed(
                    &w.picky.key,
                    compute(w.picky.did, w.thrifty.did, usd(1), "a"),
                ))
            },
        },
        Row {
            name: "payee on the deny list",
            code: "payee_denied",
            param: Some("to"),
            build: |w| {
                Ok(kit::signed(
                    &w.agent.key,
                    compute(w.agent.did, w.denied.did, usd(1), "a"),
                ))
            },
        },
        Row {
            name: "category outside the list",
            code: "category_not_allowed",
            param: Some("category"),
            build: |w| {
                Ok(kit::signed(
                    &w.agent.key,
                    kit::transfer_in(w.agent.did, w.principal.did, usd(1), Some("ads"), "a"),
                ))
            },
        },
        Row {
            name: "no category where one is required",
            code: "category_not_allowed",
            param: Some("category"),
            build: |w| {
                Ok(kit::signed(
                    &w.agent.key,
                    kit::transfer(w.agent.did, w.principal.did, usd(1), "a"),
                ))
            },
        },
        Row {
            name: "more than the account holds",
            code: "insufficient_funds",
            param: Some("amount"),
            build: |w| {
                Ok(kit::signed(
                    &w.open_agent.key,
                    compute(w.open_agent.did, w.principal.did, usd(1), "i"),
                ))
            },
        },
        Row {
            name: "zero amount",
            code: "amount_zero",
            param: Some("amount"),
            build: |w| {
                Ok(kit::signed(
                    &w.agent.key,
                    compute(w.agent.did, w.principal.did, Amount::ZERO, "z"),
                ))
            },
        },
        Row {
            name: "deposit that overflows",
            code: "amount_overflow",
            param: Some("amount"),
            build: |w| {
                Ok(kit::signed(
                    &w.operator.key,
                    kit::deposit(w.principal.did, Amount::MAX, "o"),
                ))
            },
        },
        Row {
            name: "payment to oneself",
            code: "same_account",
            param: Some("to"),
            build: |w| {
                Ok(kit::signed(
                    &w.agent.key,
                    compute(w.agent.did, w.agent.did, usd(1), "s"),
                ))
            },
        },
        Row {
            name: "idempotency key reused for other content",
            code: "idempotency_conflict",
            param: Some("idempotency_key"),
            build: |w| {
                w.ok(
                    &w.agent.key.clone(),
                    compute(w.agent.did, w.principal.did, usd(1), "k"),
                );
                Ok(kit::signed(
                    &w.agent.key,
                    compute(w.agent.did, w.principal.did, usd(2), "k"),
                ))
            },
        },
        Row {
            name: "hold id reused for other content",
            code: "idempotency_conflict",
            param: Some("idempotency_key"),
            build: |w| {
                w.ok(
                    &w.principal.key.clone(),
                    kit::hold("h", w.principal.did, usd(1)),
                );
                Ok(kit::signed(
                    &w.principal.key,
                    kit::hold("h", w.principal.did, usd(2)),
                ))
            },
        },
        Row {
            name: "release of an unknown hold",
            code: "hold_not_found",
            param: Some("hold_id"),
            build: |w| {
                Ok(kit::signed(
                    &w.principal.key,
                    kit::release("nope", &[(w.agent.did, 10_000)]),
                ))
            },
        },
        Row {
            name: "void of a voided hold",
            code: "hold_not_active",
            param: Some("hold_id"),
            build: |w| {
                w.ok(
                    &w.principal.key.clone(),
                    kit::hold("h", w.principal.did, usd(1)),
                );
                w.ok(&w.principal.key.clone(), kit::void("h"));
                Ok(kit::signed(&w.principal.key, kit::void("h")))
            },
        },
        Row {
            name: "stranger settles a hold",
            code: "not_authorized",
            param: None,
            build: |w| {
                w.ok(
                    &w.principal.key.clone(),
                    kit::hold("h", w.principal.did, usd(1)),
                );
                Ok(kit::signed(&w.other_principal.key, kit::void("h")))
            },
        },
        Row {
            name: "split short of a whole",
            code: "invalid_split",
            param: Some("splits"),
            build: |w| {
                w.ok(
                    &w.principal.key.clone(),
                    kit::hold("h", w.principal.did, usd(1)),
                );
                Ok(kit::signed(
                    &w.principal.key,
                    kit::release("h", &[(w.agent.did, 9_999)]),
                ))
            },
        },
        Row {
            name: "split naming a payee twice",
            code: "invalid_split",
            param: Some("splits"),
            build: |w| {
                w.ok(
                    &w.principal.key.clone(),
                    kit::hold("h", w.principal.did, usd(1)),
                );
                Ok(kit::signed(
                    &w.principal.key,
                    kit::release("h", &[(w.agent.did, 5_000), (w.agent.did, 5_000)]),
                ))
            },
        },
        Row {
            name: "session releases a hold to a denied payee",
            code: "payee_denied",
            param: Some("to"),
            build: |w| {
                w.ok(
                    &w.session.key.clone(),
                    Command::Hold(Hold {
                        hold_id: "h".into(),
                        from: w.agent.did,
                        amount: usd(1),
                        category: Some("data".into()),
                        expires_at: None,
                    }),
                );
                Ok(kit::signed(
                    &w.session.key,
                    kit::release("h", &[(w.denied.did, 10_000)]),
                ))
            },
        },
        Row {
            name: "agent releases a hold above its approval threshold",
            code: "not_authorized",
            param: None,
            build: |w| {
                w.ok(
                    &w.agent.key.clone(),
                    Command::Hold(Hold {
                        hold_id: "h".into(),
                        from: w.agent.did,
                        amount: usd(9),
                        category: Some("data".into()),
                        expires_at: None,
                    }),
                );
                Ok(kit::signed(
                    &w.agent.key,
                    kit::release("h", &[(w.principal.did, 10_000)]),
                ))
            },
        },
        Row {
            name: "approval that does not exist",
            code: "approval_not_found",
            param: Some("approval_id"),
            build: |w| Ok(kit::signed(&w.principal.key, kit::approve(99))),
        },
        Row {
            name: "approval already declined",
            code: "approval_not_pending",
            param: Some("approval_id"),
            build: |w| {
                w.ok(
                    &w.agent.key.clone(),
                    compute(w.agent.did, w.principal.did, usd(9), "big"),
                );
                w.ok(&w.principal.key.clone(), kit::decline(1));
                Ok(kit::signed(&w.principal.key, kit::approve(1)))
            },
        },
        Row {
            name: "revoking a principal",
            code: "not_authorized",
            param: None,
            build: |w| Ok(kit::signed(&w.principal.key, kit::revoke(w.principal.did))),
        },
        Row {
            name: "revoking someone else's agent",
            code: "not_authorized",
            param: None,
            build: |w| {
                Ok(kit::signed(
                    &w.other_principal.key,
                    kit::revoke(w.agent.did),
                ))
            },
        },
        Row {
            name: "revoking twice",
            code: "grant_revoked",
            param: None,
            build: |w| {
                Ok(kit::signed(
                    &w.agent.key,
                    kit::revoke(w.revoked_session.did),
                ))
            },
        },
    ]
}

fn transfer_of(command: Command) -> Transfer {
    match command {
        Command::Transfer(transfer) => transfer,
        other => panic!("not a transfer: {other:?}"),
    }
}

#[test]
fn every_rejection_has_a_code_a_field_a_message_and_changes_nothing() {
    let mut codes = std::collections::BTreeSet::new();
    for row in rows() {
        let mut world = World::new();
        let outcome = (row.build)(&mut world).and_then(|command| {
            let balances_before: Vec<_> = world.state.balances().map(|(d, b)| (*d, b)).collect();
            let totals_before = world.state.totals();
            let result = world.state.apply(&command, world.now);
            let balances_after: Vec<_> = world.state.balances().map(|(d, b)| (*d, b)).collect();
            assert_eq!(
                balances_before, balances_after,
                "{}: a rejection moved money",
                row.name
            );
            assert_eq!(
                totals_before,
                world.state.totals(),
                "{}: a rejection moved totals",
                row.name
            );
            world.state.check_invariants().unwrap();
            result
        });
        let rejection = match outcome {
            Err(rejection) => rejection,
            Ok(events) => panic!("{}: accepted with {events:?}", row.name),
        };
        assert_eq!(rejection.code(), row.code, "{}: {rejection}", row.name);
        assert_eq!(rejection.param(), row.param, "{}: {rejection}", row.name);
        assert!(
            rejection.to_string().len() > 10,
            "{}: message too thin",
            row.name
        );
        codes.insert(row.code);
    }
    // Every code but the ones that need more than a table row to reach.
    let untested: Vec<&str> = ALL_CODES
        .iter()
        .copied()
        .filter(|code| !codes.contains(code))
        .collect();
    assert_eq!(untested, ["too_many_delegations"], "codes without a row");
}

const ALL_CODES: [&str; 29] = [
    "invalid_signature",
    "invalid_field",
    "invalid_grant",
    "invalid_grant_signature",
    "unknown_identity",
    "unknown_account",
    "already_registered",
    "not_authorized",
    "not_operator",
    "grant_not_yet_valid",
    "grant_expired",
    "grant_revoked",
    "grant_widens",
    "per_payment_limit_exceeded",
    "budget_exceeded",
    "payee_not_allowed",
    "payee_denied",
    "category_not_allowed",
    "insufficient_funds",
    "amount_zero",
    "amount_overflow",
    "same_account",
    "idempotency_conflict",
    "hold_not_found",
    "hold_not_active",
    "approval_not_found",
    "approval_not_pending",
    "invalid_split",
    "too_many_delegations",
];

#[test]
fn too_many_live_sessions() {
    use agentrail_core::constants::SESSIONS_PER_AGENT_MAX;
    let mut world = World::new();
    let agent = world.open_agent.key.clone();
    let expires_at = Timestamp(world.now.0 + 60);
    let mut last = Ok(Vec::new());
    for index in 0..=SESSIONS_PER_AGENT_MAX {
        let session = kit::key(&format!("many-{index}"));
        let limits = kit::limits(usd(1), usd(1));
        let grant = kit::grant(
            &agent,
            kit::did(&session),
            Role::Session,
            limits,
            world.now,
            expires_at,
            "m",
        );
        last = world.apply(&agent, kit::issue_session(grant));
        if index < SESSIONS_PER_AGENT_MAX {
            assert!(last.is_ok(), "session {index}: {last:?}");
        }
    }
    assert_eq!(last.map_err(|r| r.code()), Err("too_many_delegations"));
    // Once they expire, there is room again.
    world.now = Timestamp(expires_at.0 + 1);
    let session = kit::key("one-more");
    let grant = kit::grant(
        &agent,
        kit::did(&session),
        Role::Session,
        kit::limits(usd(1), usd(1)),
        world.now,
        Timestamp(world.now.0 + 60),
        "m",
    );
    world.ok(&agent, kit::issue_session(grant));
}
