//! In-memory throughput of the ledger state machine.
//!
//! One run measures, side by side on the same machine and setup:
//! - `session_pre_verified`: transfers signed by a session key and spent
//!   through the session → agent → principal chain, signatures verified
//!   beforehand (as the node's parallel verifier stage does);
//! - `session_inline`: the same transfers with the command signature checked
//!   inside the timed loop, one thread (what a node without the verifier
//!   stage would do);
//! - `agent_pre_verified` and `principal_pre_verified`: shorter chains.
//!
//! Each case runs `rounds` times on a fresh ledger; the median is reported.

use std::time::Instant;

use agentrail_core::grant::Role;
use agentrail_core::{Amount, Authenticated, Did, Genesis, SignedCommand, State, Timestamp};
use ed25519_dalek::SigningKey;
use serde::Serialize;

use crate::kit::{self, T0, usd};

/// What to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchConfig {
    /// Transfers per round.
    pub transfers: usize,
    pub rounds: usize,
}

/// One measured case.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchCase {
    pub name: &'static str,
    pub commands: usize,
    pub rounds: usize,
    /// Median over rounds.
    pub commands_per_s: f64,
    pub ns_per_command: f64,
}

/// A whole run: the cases and their ratio.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchReport {
    pub bench: &'static str,
    pub cases: Vec<BenchCase>,
    /// session_pre_verified ÷ session_inline, measured in this run.
    pub pre_verified_speedup: f64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Spender {
    Session,
    Agent,
    Principal,
}

struct Chain {
    state: State,
    principal: SigningKey,
    agent: SigningKey,
    session: SigningKey,
    payee: Did,
    now: Timestamp,
}

/// A ledger with principal → agent → session, limits that never bind in a
/// benchmark, and money in the agent's and principal's accounts.
fn chain() -> Chain {
    let operator = kit::key("bench-operator");
    let principal = kit::key("bench-principal");
    let agent = kit::key("bench-agent");
    let session = kit::key("bench-session");
    let payee = kit::key("bench-payee");
    let mut state = State::new(Genesis {
        operator: kit::did(&operator),
        network: kit::network(),
        chain: None,
    });
    let now = Timestamp(T0.0 + 60);
    let roomy = || kit::limits(usd(1_000), usd(1_000_000_000));
    let agent_grant = kit::grant(
        &principal,
        kit::did(&agent),
        Role::Agent,
        roomy(),
        T0,
        Timestamp(T0.0 + 86_400 * 30),
        "bench",
    );
    let session_grant = kit::grant(
        &agent,
        kit::did(&session),
        Role::Session,
        roomy(),
        T0,
        Timestamp(T0.0 + 86_400 * 7),
        "bench",
    );
    let setup = [
        (&principal, kit::register_principal(kit::did(&principal))),
        (&payee, kit::register_principal(kit::did(&payee))),
        (&principal, kit::register_agent(agent_grant)),
        (&agent, kit::issue_session(session_grant)),
        (
            &operator,
            kit::deposit(kit::did(&agent), usd(1_000_000_000), "bench-agent"),
        ),
        (
            &operator,
            kit::deposit(kit::did(&principal), usd(1_000_000_000), "bench-principal"),
        ),
    ];
    for (key, command) in setup {
        state
            .apply(&kit::signed(key, command), now)
            .expect("benchmark setup is valid");
    }
    Chain {
        state,
        principal,
        agent,
        session,
        payee: kit::did(&payee),
        now,
    }
}

fn signed_transfers(chain: &Chain, spender: Spender, count: usize) -> Vec<SignedCommand> {
    let (key, from) = match spender {
        Spender::Session => (&chain.session, kit::did(&chain.agent)),
        Spender::Agent => (&chain.agent, kit::did(&chain.agent)),
        Spender::Principal => (&chain.principal, kit::did(&chain.principal)),
    };
    (0..count)
        .map(|index| {
            let command = kit::transfer(
                from,
                chain.payee,
                Amount::from_atomic(1),
                &format!("b{index}"),
            );
            SignedCommand::sign(command, key).expect("canonical")
        })
        .collect()
}

/// The commands of one case, as the timed loop receives them.
enum Input {
    /// Signatures checked inside the timed loop.
    Signed(Vec<SignedCommand>),
    /// Signatures checked beforehand.
    Verified(Vec<Authenticated>),
}

impl Input {
    fn len(&self) -> usize {
        match self {
            Input::Signed(commands) => commands.len(),
            Input::Verified(commands) => commands.len(),
        }
    }
}

/// Seconds to apply the input to a fresh ledger.
fn time_round(input: &Input) -> f64 {
    let mut chain = chain();
    let now = chain.now;
    match input {
        Input::Signed(signed) => {
            let signed = signed.clone();
            let started = Instant::now();
            for command in signed {
                let command = command.verify().expect("benchmark signatures are valid");
                chain
                    .state
                    .apply(&command, now)
                    .expect("benchmark transfers are valid");
            }
            started.elapsed().as_secs_f64()
        }
        Input::Verified(verified) => {
            let started = Instant::now();
            for command in verified {
                chain
                    .state
                    .apply(command, now)
                    .expect("benchmark transfers are valid");
            }
            started.elapsed().as_secs_f64()
        }
    }
}

fn case(name: &'static str, input: &Input, rounds: usize) -> BenchCase {
    let mut seconds: Vec<f64> = (0..rounds).map(|_| time_round(input)).collect();
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    let commands = input.len();
    BenchCase {
        name,
        commands,
        rounds,
        commands_per_s: commands as f64 / median,
        ns_per_command: median * 1e9 / commands as f64,
    }
}

fn verified(signed: Vec<SignedCommand>) -> Input {
    Input::Verified(
        signed
            .into_iter()
            .map(|command| command.verify().expect("valid"))
            .collect(),
    )
}

/// Runs every case; `progress(name)` is called before each.
pub fn run_core_bench(config: BenchConfig, progress: &mut dyn FnMut(&str)) -> BenchReport {
    assert!(
        config.transfers > 0 && config.rounds > 0,
        "nothing to measure"
    );
    // Keys are deterministic, so commands signed once are valid on every
    // fresh ledger: signing stays out of the measurement and out of the
    // run time.
    let template = chain();
    let by_session = signed_transfers(&template, Spender::Session, config.transfers);
    let by_agent = signed_transfers(&template, Spender::Agent, config.transfers);
    let by_principal = signed_transfers(&template, Spender::Principal, config.transfers);
    let plan = [
        ("session_pre_verified", verified(by_session.clone())),
        ("session_inline", Input::Signed(by_session)),
        ("agent_pre_verified", verified(by_agent)),
        ("principal_pre_verified", verified(by_principal)),
    ];
    let cases: Vec<BenchCase> = plan
        .into_iter()
        .map(|(name, input)| {
            progress(name);
            case(name, &input, config.rounds)
        })
        .collect();
    let pre_verified_speedup = cases[0].commands_per_s / cases[1].commands_per_s;
    BenchReport {
        bench: "core",
        cases,
        pre_verified_speedup,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_applies_its_commands() {
        let report = run_core_bench(
            BenchConfig {
                transfers: 20,
                rounds: 1,
            },
            &mut |_| {},
        );
        assert_eq!(report.cases.len(), 4);
        assert!(
            report
                .cases
                .iter()
                .all(|case| case.commands == 20 && case.commands_per_s > 0.0)
        );
    }
}
