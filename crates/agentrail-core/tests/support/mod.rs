//! A small, fixed world for ledger tests: an operator, two principals, their
//! agents and sessions, with funds.

#![allow(dead_code)]

use agentrail_core::constants::DAY_S;
use agentrail_core::grant::{Limits, Role};
use agentrail_core::{Authenticated, Command, Did, Event, Genesis, Rejection, State, Timestamp};
use agentrail_sim::kit::{self, T0, usd};
use ed25519_dalek::SigningKey;

#[derive(Clone)]
pub struct Party {
    pub key: SigningKey,
    pub did: Did,
}

pub fn party(label: &str) -> Party {
    let key = kit::key(label);
    let did = kit::did(&key);
    Party { key, did }
}

pub struct World {
    pub state: State,
    pub now: Timestamp,
    pub operator: Party,
    /// Principal owning `agent`, `open_agent` and `thrifty`.
    pub principal: Party,
    /// A second principal, owner of `picky`.
    pub other_principal: Party,
    /// Per payment 10, daily 25, total 40, categories compute/data,
    /// denies `denied`, approval above 8. Funded 100.
    pub agent: Party,
    /// No limits beyond per payment 1000 and daily 5000. Unfunded.
    pub open_agent: Party,
    /// Total budget 15. Funded 100.
    pub thrifty: Party,
    /// Under `other_principal`; may pay only `principal`, `agent` and the
    /// market's `helper`. Funded 100.
    pub picky: Party,
    /// Session of `agent`: per payment 5, daily 12, total 30.
    pub session: Party,
    pub expired_session: Party,
    pub future_session: Party,
    pub revoked_session: Party,
    pub denied: Party,
    pub stranger: Party,
}

pub fn agent_limits() -> Limits {
    Limits {
        total_budget: Some(usd(40)),
        allowed_categories: Some(vec!["compute".into(), "data".into()]),
        denied_payees: vec![party("denied").did],
        approval_threshold: Some(usd(8)),
        ..kit::limits(usd(10), usd(25))
    }
}

pub fn session_limits() -> Limits {
    Limits {
        max_per_payment: usd(5),
        daily_budget: usd(12),
        total_budget: Some(usd(30)),
        ..agent_limits()
    }
}

impl World {
    pub fn new() -> World {
        let operator = party("operator");
        let mut world = World {
            state: State::new(Genesis {
                operator: operator.did,
                network: agentrail_sim::kit::network(),
                chain: None,
            }),
            now: T0,
            operator,
            principal: party("principal"),
            other_principal: party("other-principal"),
            agent: party("agent"),
            open_agent: party("open-agent"),
            thrifty: party("thrifty"),
            picky: party("picky"),
            session: party("session"),
            expired_session: party("expired-session"),
            future_session: party("future-session"),
            revoked_session: party("revoked-session"),
            denied: party("denied"),
            stranger: party("stranger"),
        };
        let year = Timestamp(T0.0 + 300 * DAY_S);
        let principals =
            [&world.principal, &world.other_principal, &world.denied].map(|principal| {
                (
                    principal.key.clone(),
                    kit::register_principal(principal.did),
                )
            });
        for (key, command) in principals {
            world.ok(&key, command);
        }
        let agents = [
            (&world.principal, &world.agent, agent_limits()),
            (
                &world.principal,
                &world.open_agent,
                kit::limits(usd(1_000), usd(5_000)),
            ),
            (
                &world.principal,
                &world.thrifty,
                Limits {
                    total_budget: Some(usd(15)),
                    ..kit::limits(usd(10), usd(25))
                },
            ),
            (
                &world.other_principal,
                &world.picky,
                Limits {
                    allowed_payees: Some(vec![
                        world.principal.did,
                        world.agent.did,
                        party("helper").did,
                    ]),
                    ..kit::limits(usd(10), usd(25))
                },
            ),
        ];
        let mut commands = Vec::new();
        for (issuer, subject, limits) in agents {
            let grant = kit::grant(&issuer.key, subject.did, Role::Agent, limits, T0, year, "a");
            commands.push((issuer.key.clone(), kit::register_agent(grant)));
        }
        let sessions = [
            (&world.session, T0, Timestamp(T0.0 + 7 * DAY_S)),
            (&world.expired_session, T0, Timestamp(T0.0 + 60)),
            (
                &world.future_session,
                Timestamp(T0.0 + 2 * DAY_S),
                Timestamp(T0.0 + 3 * DAY_S),
            ),
            (&world.revoked_session, T0, Timestamp(T0.0 + 7 * DAY_S)),
        ];
        for (subject, not_before, expires_at) in sessions {
            let grant = kit::grant(
                &world.agent.key,
                subject.did,
                Role::Session,
                session_limits(),
                not_before,
                expires_at,
                "s",
            );
            commands.push((world.agent.key.clone(), kit::issue_session(grant)));
        }
        for (key, command) in commands {
            world.ok(&key, command);
        }
        // An hour later: the one-minute session has expired.
        world.now = Timestamp(T0.0 + 3_600);
        let revoked = world.revoked_session.did;
        world.ok(&world.agent.key.clone(), kit::revoke(revoked));
        for (to, key) in [
            (world.agent.did, "fund-agent"),
            (world.thrifty.did, "fund-thrifty"),
            (world.picky.did, "fund-picky"),
            (world.principal.did, "fund-principal"),
        ] {
            world.ok(&world.operator.key.clone(), kit::deposit(to, usd(100), key));
        }
        world
    }

    pub fn apply(&mut self, key: &SigningKey, command: Command) -> Result<Vec<Event>, Rejection> {
        let signed: Authenticated = kit::signed(key, command);
        self.state.apply(&signed, self.now)
    }

    /// Applies a command that must be accepted.
    pub fn ok(&mut self, key: &SigningKey, command: Command) -> Vec<Event> {
        let described = format!("{command:?}");
        self.apply(key, command)
            .unwrap_or_else(|rejection| panic!("{described} was refused: {rejection}"))
    }

    pub fn available(&self, did: &Did) -> u128 {
        self.state
            .balance(did)
            .unwrap_or_default()
            .available
            .atomic()
    }

    pub fn held(&self, did: &Did) -> u128 {
        self.state.balance(did).unwrap_or_default().held.atomic()
    }
}

/// A transfer in the category every test grant allows.
pub fn compute(from: Did, to: Did, amount: agentrail_core::Amount, key: &str) -> Command {
    kit::transfer_in(from, to, amount, Some("compute"), key)
}
