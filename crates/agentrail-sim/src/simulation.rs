//! The seeded ledger simulator.
//!
//! A run builds a population (principals, their agents, sessions that come
//! and go, strangers and the operator), then drives `commands` random
//! commands through [`State`], valid and hostile mixed: overspending, wrong
//! accounts, payees outside the lists, widening grants, forged signatures,
//! revoked and expired grants, reused idempotency keys, bad splits and
//! decisions by the wrong principal. After every step it checks
//! [`State::check_invariants`] and what it expects of that step's outcome
//! on its own account (exact balance movements, duplicates that return the
//! original outcome, nothing accepted from a revoked or expired grant, every
//! forgery refused). At the end it replays the accepted commands into a
//! fresh ledger and requires the same outcomes and the same final state.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use agentrail_core::command::{Command, Hold, Split, Tick};
use agentrail_core::constants::{DAY_S, IDEMPOTENCY_RETENTION_S};
use agentrail_core::grant::{Limit, Limits, Role};
use agentrail_core::signing::SignatureBytes;
use agentrail_core::state::{ApprovalStatus, Archived, HoldStatus};
use agentrail_core::{
    Amount, Authenticated, Did, Event, Genesis, Rejection, SignedCommand, State, Timestamp,
};
use ed25519_dalek::SigningKey;

use crate::kit::{self, T0, usd};
use crate::rng::Rng;

mod economy;
mod markets;

/// What to simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimConfig {
    pub seed: u64,
    /// Random commands after the population is set up.
    pub commands: u64,
    pub principals: usize,
    pub agents_per_principal: usize,
    /// Keys that are never registered.
    pub strangers: usize,
    /// Commands between two moves of the clock (1: the clock moves before
    /// every command). Commands between two moves share one time, as the
    /// commands of one batch do in a node.
    pub clock_every: u64,
}

impl SimConfig {
    /// The default population: 10 principals × 3 agents, 8 strangers, the
    /// operator, and sessions issued as the run goes (over 50 identities).
    pub fn new(seed: u64, commands: u64) -> SimConfig {
        SimConfig {
            seed,
            commands,
            principals: 10,
            agents_per_principal: 3,
            strangers: 8,
            clock_every: 1,
        }
    }
}

/// A second ledger that follows the simulation: it receives every command
/// the simulation submits, with the outcome the reference (the
/// simulation's own [`State`]) gave, and must reach the same outcomes. The
/// whole-node simulation follows with a real node over a faulty disk.
pub trait Follower {
    /// The run starts on a ledger with this genesis.
    fn start(&mut self, genesis: Genesis) -> Result<(), String>;
    /// One command, the key of its signer, the time it was applied at, the
    /// reference's outcome, and the ended records the reference forgot
    /// applying it.
    fn command(
        &mut self,
        key: &SigningKey,
        command: &Authenticated,
        now: Timestamp,
        outcome: &Result<Vec<Event>, Rejection>,
        forgotten: &[Archived],
    ) -> Result<(), String>;
    /// The clock is about to move: every command so far has been handed
    /// over, and `reference` is the state after all of them.
    fn tick(&mut self, reference: &State) -> Result<(), String>;
    /// The run ended; `reference` is the final state.
    fn finish(&mut self, reference: &State) -> Result<(), String>;
}

/// A command waiting to be handed to the follower.
struct Followed {
    command: Authenticated,
    now: Timestamp,
    outcome: Result<Vec<Event>, Rejection>,
    /// What the reference forgot when it applied the command.
    forgotten: Vec<Archived>,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SimReport {
    pub seed: u64,
    pub commands: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub expirations: u64,
    /// Rejections by machine code.
    pub rejected: BTreeMap<String, u64>,
    /// Accepted commands by type (duplicates included).
    pub accepted_by_type: BTreeMap<String, u64>,
    /// Time-driven events by type (expiries, refunds, default approvals).
    pub expired_by_type: BTreeMap<String, u64>,
    /// Ended records the state forgot a retention later, by kind.
    pub forgotten_by_kind: BTreeMap<String, u64>,
    pub identities: usize,
    pub deposited_atomic: u128,
    pub withdrawn_atomic: u128,
    /// Available plus held over every account at the end.
    pub in_ledger_atomic: u128,
    /// FNV-1a over every outcome: equal digests, equal runs.
    pub digest: u64,
}

/// A run that found a defect. The seed reproduces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimFailure {
    pub seed: u64,
    pub step: u64,
    pub message: String,
    /// The command that runs this seed again.
    pub reproduce: String,
}

impl fmt::Display for SimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "simulation seed {} failed at step {}: {}\nreproduce with: {}",
            self.seed, self.step, self.message, self.reproduce
        )
    }
}

impl std::error::Error for SimFailure {}

/// Runs one seeded simulation. Never panics: a panic inside the ledger (a
/// failed assertion) becomes a [`SimFailure`] naming the seed and step.
pub fn run(config: SimConfig) -> Result<SimReport, SimFailure> {
    run_with_progress(config, &mut |_| {})
}

/// [`run`], calling `progress(step)` every 10,000 steps.
pub fn run_with_progress(
    config: SimConfig,
    progress: &mut dyn FnMut(u64),
) -> Result<SimReport, SimFailure> {
    run_following(config, None, progress)
}

/// [`run_with_progress`], handing every command to `follower` as well.
pub fn run_following(
    config: SimConfig,
    mut follower: Option<&mut dyn Follower>,
    progress: &mut dyn FnMut(u64),
) -> Result<SimReport, SimFailure> {
    assert!(config.clock_every > 0, "the clock must move");
    let mut simulation = Simulation::new(config);
    if follower.is_some() {
        simulation.followed = Some(Vec::new());
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        simulation.execute(&mut follower, progress)
    }));
    let reproduce = format!(
        "AGENTRAIL_SIM_SEED={} cargo test -p agentrail-sim --test simulation",
        config.seed
    );
    match outcome {
        Ok(Ok(())) => Ok(simulation.report),
        Ok(Err(message)) => Err(SimFailure {
            seed: config.seed,
            step: simulation.step,
            message,
            reproduce,
        }),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panic".to_owned());
            Err(SimFailure {
                seed: config.seed,
                step: simulation.step,
                message: format!("panic: {message}"),
                reproduce,
            })
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Principal,
    Agent,
    Session,
}

struct Actor {
    key: SigningKey,
    did: Did,
    kind: Kind,
    /// Index of the issuing actor (agents: principal; sessions: agent).
    issuer: Option<usize>,
    principal: usize,
    limits: Option<Limits>,
    expires_at: Timestamp,
    revoked: bool,
    /// Idempotency keys this actor used, with the command.
    used_keys: Vec<(String, Command)>,
    agents: Vec<usize>,
}

impl Actor {
    fn new(
        key: SigningKey,
        kind: Kind,
        issuer: Option<usize>,
        principal: usize,
        limits: Option<Limits>,
        expires_at: Timestamp,
    ) -> Actor {
        let did = kit::did(&key);
        Actor {
            key,
            did,
            kind,
            issuer,
            principal,
            limits,
            expires_at,
            revoked: false,
            used_keys: Vec::new(),
            agents: Vec::new(),
        }
    }
}

/// A command as the node's verifier hands it to the ledger: authenticated.
/// The simulation tests the state machine, so it does not sign what it
/// sends (making a signature and checking it again was a third of its
/// time). Signatures are made and checked where they are the subject: the
/// forgeries here, and the whole-node simulation, which signs every command
/// it journals.
fn authenticated(key: &SigningKey, command: Command) -> Authenticated {
    Authenticated::assume_verified(kit::did(key), command)
}

/// What the simulator expects of one step, checked against the outcome.
enum Expect {
    /// Any outcome is fine as long as the invariants hold; accepted spends
    /// are checked for exact movements.
    Anything,
    /// Must be refused with this code.
    Refused(&'static str),
    /// Must be refused, for whatever reason.
    RefusedAny,
    /// Must be accepted as a duplicate returning exactly this outcome.
    Duplicate(Vec<Event>),
}

/// Steps between two full recounts of every grant's budgets.
const BUDGET_CHECK_EVERY: u64 = 64;
/// Steps between two full recounts of every account's money.
const MONEY_CHECK_EVERY: u64 = 16;

const CATEGORIES: [&str; 3] = ["compute", "data", "ads"];

struct Simulation {
    config: SimConfig,
    rng: Rng,
    state: State,
    now: Timestamp,
    step: u64,
    operator: SigningKey,
    actors: Vec<Actor>,
    strangers: Vec<SigningKey>,
    accounts: Vec<Did>,
    /// Actors believed able to spend; pruned as grants expire or are revoked.
    active: Vec<usize>,
    holds: Vec<(String, usize)>,
    decided: Vec<(u64, usize)>,
    approvals: Vec<(u64, usize)>,
    /// Accepted transfers by signer and key: the command, its outcome and
    /// when the key was first used.
    outcomes: BTreeMap<(Did, String), (Command, Vec<Event>, Timestamp)>,
    journal: Vec<(Authenticated, Timestamp, Vec<Event>)>,
    /// A snapshot taken halfway, and the journal length it covers.
    snapshot: Option<(Vec<u8>, usize)>,
    next_id: u64,
    report: SimReport,
    market: markets::Book,
    economy: economy::Book,
    /// Commands for the follower, when there is one.
    followed: Option<Vec<Followed>>,
}

impl Simulation {
    fn new(config: SimConfig) -> Simulation {
        let mut rng = Rng::new(config.seed);
        let operator = SigningKey::from_bytes(&rng.bytes32());
        let state = State::new(Genesis {
            operator: kit::did(&operator),
            network: kit::network(),
            chain: None,
        });
        let strangers = (0..config.strangers)
            .map(|_| SigningKey::from_bytes(&rng.bytes32()))
            .collect();
        Simulation {
            config,
            rng,
            state,
            now: T0,
            step: 0,
            operator,
            actors: Vec::new(),
            strangers,
            accounts: Vec::new(),
            active: Vec::new(),
            holds: Vec::new(),
            decided: Vec::new(),
            approvals: Vec::new(),
            outcomes: BTreeMap::new(),
            journal: Vec::new(),
            snapshot: None,
            next_id: 0,
            report: SimReport {
                seed: config.seed,
                ..SimReport::default()
            },
            market: markets::Book::default(),
            economy: economy::Book::default(),
            followed: None,
        }
    }

    fn execute(
        &mut self,
        follower: &mut Option<&mut dyn Follower>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), String> {
        if let Some(follower) = follower.as_mut() {
            follower.start(self.state.genesis())?;
        }
        self.populate()?;
        self.hand_over(follower)?;
        for step in 0..self.config.commands {
            self.step = step;
            if step % 10_000 == 0 {
                progress(step);
            }
            if step == self.config.commands / 2 {
                self.snapshot = Some((self.state.to_snapshot(), self.journal.len()));
            }
            if step % self.config.clock_every == 0 {
                if let Some(follower) = follower.as_mut() {
                    follower.tick(&self.state)?;
                }
                self.advance_time()?;
            }
            let (signed, expect) = self.next_command();
            self.submit(signed, expect)?;
            self.hand_over(follower)?;
            // Conservation is asserted inside the ledger after every
            // command in O(1); the full O(accounts + expiries) recount of
            // every account's held money runs every few steps (it was two
            // thirds of the run's time when it ran every step), so a
            // misplaced unit is caught within MONEY_CHECK_EVERY steps and
            // the seed reproduces it.
            // Mandates that bind (roles, payees, sessions, channels): the
            // step's own events are checked in `submit`; the full
            // O(identities + tasks + channels) pass runs with the money's
            // (every step, it quadrupled the run's time).
            if step % MONEY_CHECK_EVERY == 0 {
                self.state
                    .check_authority_invariants()
                    .map_err(|violation| violation.to_string())?;
                self.state
                    .check_money_invariants()
                    .map_err(|violation| violation.to_string())?;
            }
            // Budgets are asserted inside the ledger on every charge; the
            // full O(grants) recount runs periodically.
            if step % BUDGET_CHECK_EVERY == 0 {
                self.state
                    .check_budget_invariants()
                    .map_err(|violation| violation.to_string())?;
            }
        }
        self.state
            .check_invariants()
            .map_err(|violation| violation.to_string())?;
        self.step = self.config.commands;
        if let Some(follower) = follower.as_mut() {
            follower.finish(&self.state)?;
        }
        self.replay()?;
        self.report.commands = self.config.commands;
        self.report.identities = self.actors.len() + self.strangers.len() + 1;
        let totals = self.state.totals();
        self.report.deposited_atomic = totals.deposited.atomic();
        self.report.withdrawn_atomic = totals.withdrawn.atomic();
        self.report.in_ledger_atomic = self
            .state
            .balances()
            .map(|(_, b)| b.available.atomic() + b.held.atomic())
            .sum();
        Ok(())
    }

    /// Hands the commands submitted since the last call to the follower.
    fn hand_over(&mut self, follower: &mut Option<&mut dyn Follower>) -> Result<(), String> {
        let (Some(follower), Some(followed)) = (follower.as_mut(), self.followed.as_mut()) else {
            return Ok(());
        };
        for item in std::mem::take(followed) {
            let key = self.key_of(item.command.signer())?;
            follower.command(
                &key,
                &item.command,
                item.now,
                &item.outcome,
                &item.forgotten,
            )?;
        }
        Ok(())
    }

    /// The signing key of an identity of the run.
    fn key_of(&self, did: &Did) -> Result<SigningKey, String> {
        if *did == kit::did(&self.operator) {
            return Ok(self.operator.clone());
        }
        if let Some(actor) = self.actors.iter().rev().find(|a| a.did == *did) {
            return Ok(actor.key.clone());
        }
        self.strangers
            .iter()
            .find(|key| kit::did(key) == *did)
            .cloned()
            .ok_or_else(|| format!("no key for signer {did}"))
    }

    // ----- population ----------------------------------------------------

    fn populate(&mut self) -> Result<(), String> {
        for _ in 0..self.config.principals {
            let principal = self.add_principal()?;
            for _ in 0..self.config.agents_per_principal {
                self.add_agent(principal)?;
            }
        }
        for index in 0..self.accounts.len() {
            let to = self.accounts[index];
            let amount =
                Amount::from_atomic(u128::from(self.rng.between(1_000, 20_000)) * 1_000_000);
            let command = kit::deposit(to, amount, &self.fresh_key("seed"));
            let operator = self.operator.clone();
            self.submit(Ok(authenticated(&operator, command)), Expect::Anything)?;
        }
        Ok(())
    }

    fn add_principal(&mut self) -> Result<usize, String> {
        let key = SigningKey::from_bytes(&self.rng.bytes32());
        let did = kit::did(&key);
        let index = self.actors.len();
        self.submit(
            Ok(authenticated(&key, kit::register_principal(did))),
            Expect::Anything,
        )?;
        self.actors.push(Actor::new(
            key,
            Kind::Principal,
            None,
            index,
            None,
            Timestamp(u64::MAX),
        ));
        self.accounts.push(did);
        self.active.push(index);
        Ok(index)
    }

    fn add_agent(&mut self, principal: usize) -> Result<(), String> {
        let key = SigningKey::from_bytes(&self.rng.bytes32());
        let did = kit::did(&key);
        let limits = self.random_agent_limits();
        let expires_at = Timestamp(self.now.0 + 366 * DAY_S);
        let nonce = self.fresh_key("n");
        let grant = kit::grant(
            &self.actors[principal].key,
            did,
            Role::Agent,
            limits.clone(),
            self.now,
            expires_at,
            &nonce,
        );
        let signer = self.actors[principal].key.clone();
        if self.submit(
            Ok(authenticated(&signer, kit::register_agent(grant))),
            Expect::Anything,
        )? {
            let index = self.actors.len();
            self.actors[principal].agents.push(index);
            self.active.push(index);
            self.actors.push(Actor::new(
                key,
                Kind::Agent,
                Some(principal),
                principal,
                Some(limits),
                expires_at,
            ));
            self.accounts.push(did);
        }
        Ok(())
    }

    fn random_amount(&mut self, low_cents: u64, high_cents: u64) -> Amount {
        Amount::from_atomic(u128::from(self.rng.between(low_cents, high_cents)) * 10_000)
    }

    fn random_agent_limits(&mut self) -> Limits {
        let per = self.random_amount(50, 10_000);
        let daily = per
            .checked_mul(u128::from(self.rng.between(2, 20)))
            .expect("small");
        let mut limits = kit::limits(per, daily);
        if self.rng.chance(1, 2) {
            limits.total_budget = daily.checked_mul(u128::from(self.rng.between(5, 60)));
        }
        if self.rng.chance(15, 100) && self.accounts.len() > 4 {
            let mut allowed = Vec::new();
            for _ in 0..self.rng.between(2, 8) {
                let payee = *self.rng.pick(&self.accounts);
                if !allowed.contains(&payee) {
                    allowed.push(payee);
                }
            }
            limits.allowed_payees = Some(allowed);
        }
        if self.rng.chance(2, 10) && !self.accounts.is_empty() {
            limits.denied_payees = vec![*self.rng.pick(&self.accounts)];
        }
        if self.rng.chance(2, 10) {
            limits.allowed_categories = Some(vec!["compute".to_owned(), "data".to_owned()]);
        }
        if self.rng.chance(2, 10) {
            limits.approval_threshold = Some(Amount::from_atomic(per.atomic() / 2));
        }
        limits
    }

    /// A session grant narrower than `agent`'s on every limit.
    fn narrower(&mut self, agent: &Limits) -> Limits {
        let scale = |rng: &mut Rng, amount: Amount| {
            Amount::from_atomic(amount.atomic() * u128::from(rng.between(10, 100)) / 100)
        };
        let mut limits = kit::limits(
            scale(&mut self.rng, agent.max_per_payment),
            scale(&mut self.rng, agent.daily_budget),
        );
        limits.total_budget = match agent.total_budget {
            Some(total) => Some(scale(&mut self.rng, total)),
            None if self.rng.chance(1, 2) => Some(scale(&mut self.rng, agent.daily_budget)),
            None => None,
        };
        limits.allowed_payees = agent.allowed_payees.clone();
        limits.denied_payees = agent.denied_payees.clone();
        limits.allowed_categories = agent.allowed_categories.clone();
        limits.approval_threshold = agent.approval_threshold;
        limits
    }

    /// `limits` widened on one limit that can be widened.
    fn widened(&mut self, limits: &Limits) -> (Limits, Limit) {
        let mut wide = limits.clone();
        let one = Amount::from_atomic(1);
        let candidates: Vec<Limit> = [
            Some(Limit::MaxPerPayment),
            Some(Limit::DailyBudget),
            limits.total_budget.map(|_| Limit::TotalBudget),
            limits.allowed_payees.as_ref().map(|_| Limit::AllowedPayees),
            (!limits.denied_payees.is_empty()).then_some(Limit::DeniedPayees),
            limits
                .allowed_categories
                .as_ref()
                .map(|_| Limit::AllowedCategories),
            limits.approval_threshold.map(|_| Limit::ApprovalThreshold),
        ]
        .into_iter()
        .flatten()
        .collect();
        let limit = *self.rng.pick(&candidates);
        match limit {
            Limit::MaxPerPayment => {
                wide.max_per_payment = limits.max_per_payment.checked_add(one).expect("small")
            }
            Limit::DailyBudget => {
                wide.daily_budget = limits.daily_budget.checked_add(one).expect("small")
            }
            Limit::TotalBudget => wide.total_budget = None,
            Limit::AllowedPayees => wide.allowed_payees = None,
            Limit::DeniedPayees => wide.denied_payees.clear(),
            Limit::AllowedCategories => wide.allowed_categories = None,
            _ => wide.approval_threshold = None,
        }
        // A widening that earlier limits already reject would be reported
        // under those; keep every earlier limit exactly as narrow as before.
        (wide, limit)
    }

    // ----- commands ------------------------------------------------------

    fn advance_time(&mut self) -> Result<(), String> {
        // Time passes at the same pace per command whatever `clock_every`.
        let every = self.config.clock_every;
        let seconds = if self.rng.chance(every, 5_000) {
            self.rng.between(DAY_S, 3 * DAY_S)
        } else {
            self.rng.between(0, 240 * every)
        };
        self.now = Timestamp(self.now.0 + seconds);
        // What fell due is the clock's entry, before the step's command, as
        // a node journals it: no other command may carry a time-driven
        // event (`submit` checks that nothing is due before a command).
        if !self.state.is_due(self.now) {
            if !self.state.advance(self.now).is_empty() {
                return Err("time-driven events with nothing due".to_owned());
            }
            return Ok(());
        }
        let tick = authenticated(&self.operator, Command::Tick(Tick {}));
        if !self.submit(Ok(tick), Expect::Anything)? {
            return Err("the clock's entry was refused with something due".to_owned());
        }
        let events = self
            .journal
            .last()
            .expect("the tick was journaled")
            .2
            .clone();
        self.report.expirations += events.len() as u64;
        self.check_economy_events(&events)?;
        for event in &events {
            self.check_payout(event)?;
            let name = match event {
                Event::TaskApproved { .. } => "task_approved_by_default",
                Event::TaskRefunded { .. } => "task_refunded",
                Event::ChannelClosed { .. } => "channel_closed",
                Event::HoldExpired { .. } => "hold_expired",
                Event::PaymentExpired { .. } => "payment_expired",
                _ => "other",
            };
            *self
                .report
                .expired_by_type
                .entry(name.to_owned())
                .or_default() += 1;
        }
        Ok(())
    }

    fn fresh_key(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{}", self.next_id)
    }

    fn next_command(&mut self) -> (Result<Authenticated, Rejection>, Expect) {
        let roll = self.rng.below(1_400);
        match roll {
            1_250.. => self.gen_economy(),
            1_000.. => self.gen_market(),
            0..=379 => self.gen_transfer(),
            380..=469 => self.gen_hold(),
            470..=539 => self.gen_release(),
            540..=569 => self.gen_void(),
            570..=619 => self.gen_decision(),
            620..=699 => self.gen_deposit(),
            700..=729 => self.gen_withdraw(),
            730..=769 => self.gen_session(),
            770..=809 => self.gen_transfer(),
            810..=819 => self.gen_revoke(),
            820..=824 => self.gen_new_agent(),
            825..=874 => self.gen_forgery(),
            875..=899 => self.gen_stranger_spend(),
            _ => self.gen_reuse_key(),
        }
    }

    fn sign(&self, actor: usize, command: Command) -> Result<Authenticated, Rejection> {
        Ok(authenticated(&self.actors[actor].key, command))
    }

    /// A spender and the account it spends from: usually an actor that can
    /// still spend, sometimes any actor at all (expired, revoked).
    fn spender(&mut self) -> (usize, Did) {
        let actor = self.pick_actor();
        let from = match self.actors[actor].kind {
            Kind::Principal => {
                let agents = self.actors[actor].agents.clone();
                if !agents.is_empty() && self.rng.chance(1, 2) {
                    self.actors[*self.rng.pick(&agents)].did
                } else {
                    self.actors[actor].did
                }
            }
            Kind::Agent => self.actors[actor].did,
            Kind::Session => {
                self.actors[self.actors[actor].issuer.expect("sessions have agents")].did
            }
        };
        if self.rng.chance(3, 100) {
            return (actor, *self.rng.pick(&self.accounts));
        }
        (actor, from)
    }

    fn pick_actor(&mut self) -> usize {
        if self.rng.chance(1, 10) || self.active.is_empty() {
            return self.rng.below(self.actors.len() as u64) as usize;
        }
        loop {
            let slot = self.rng.below(self.active.len() as u64) as usize;
            let actor = self.active[slot];
            if self.chain_usable(actor) || self.active.len() == 1 {
                return actor;
            }
            self.active.swap_remove(slot);
        }
    }

    fn spend_amount(&mut self, actor: usize) -> Amount {
        let cap = self.actors[actor]
            .limits
            .as_ref()
            .map_or(usd(200), |l| l.max_per_payment);
        let high = cap.atomic() + cap.atomic() / 5 + 1;
        Amount::from_atomic(u128::from(
            self.rng.between(1, high.min(u128::from(u64::MAX)) as u64),
        ))
    }

    /// Whether `actor` and every grant above it may spend right now.
    fn chain_usable(&self, actor: usize) -> bool {
        let mut index = Some(actor);
        while let Some(current) = index {
            let a = &self.actors[current];
            if a.kind == Kind::Principal {
                return true;
            }
            if a.revoked || self.now >= a.expires_at {
                return false;
            }
            index = a.issuer;
        }
        true
    }

    fn gen_transfer(&mut self) -> (Result<Authenticated, Rejection>, Expect) {
        let (actor, from) = self.spender();
        let mut to = *self.rng.pick(&self.accounts);
        if to == from && self.rng.chance(9, 10) {
            to = self.accounts[(self.rng.below(self.accounts.len() as u64)) as usize];
        }
        let amount = self.spend_amount(actor);
        let category = if self.rng.chance(1, 4) {
            None
        } else {
            Some(*self.rng.pick(&CATEGORIES))
        };
        let key = self.fresh_key("t");
        let command = kit::transfer_in(from, to, amount, category, &key);
        self.actors[actor].used_keys.push((key, command.clone()));
        let expect = if !self.chain_usable(actor) && from != to {
            Expect::RefusedAny
        } else {
            Expect::Anything
        };
        (self.sign(actor, command), expect)
    }

    fn gen_reuse_key(&mut self) -> (Result<Authenticated, Rejection>, Expect) {
        let actor = self.rng.below(self.actors.len() as u64) as usize;
        let Some((key, used)) = self.actors[actor].used_keys.last().cloned() else {
            return self.gen_transfer();
        };
        let Some((remembered, outcome, at)) =
            self.outcomes.get(&(self.actors[actor].did, key)).cloned()
        else {
            // The ledger refused the first use; a retry is a fresh attempt.
            return (self.sign(actor, used), Expect::Anything);
        };
        if at.0 + IDEMPOTENCY_RETENTION_S <= self.now.0 {
            // Forgotten: the same key is a new command now.
            return (self.sign(actor, remembered), Expect::Anything);
        }
        if self.rng.chance(1, 2) {
            // Same key, different content: always a conflict once remembered.
            let Command::Transfer(mut transfer) = remembered else {
                unreachable!("only transfers are remembered")
            };
            transfer.amount = transfer
                .amount
                .checked_add(Amount::from_atomic(1))
                .expect("small");
            return (
                self.sign(actor, Command::Transfer(transfer)),
                Expect::Refused("idempotency_conflict"),
            );
        }
        (self.sign(actor, remembered), Expect::Duplicate(outcome))
    }

    fn gen_hold(&mut self) -> (Result<Authenticated, Rejection>, Expect) {
        let (actor, from) = self.spender();
        let amount = self.spend_amount(actor);
        let hold_id = self.fresh_key("h");
        let expires_at = if self.rng.chance(1, 2) {
            Some(Timestamp(self.now.0 + self.rng.between(60, 2 * DAY_S)))
        } else {
            None
        };
        let category = if self.rng.chance(1, 3) {
            None
        } else {
            Some((*self.rng.pick(&CATEGORIES)).to_owned())
        };
        let command = Command::Hold(Hold {
            hold_id,
            from,
            amount,
            category,
            expires_at,
        });
        let expect = if self.chain_usable(actor) {
            Expect::Anything
        } else {
            Expect::RefusedAny
        };
        (self.sign(actor, command), expect)
    }

    /// A hold and someone who may (usually) settle it.
    fn hold_and_settler(&mut self) -> Option<(String, usize)> {
        if self.holds.is_empty() {
            return None;
        }
        if self.rng.chance(1, 50) {
            let actor = self.pick_actor();
            return Some((self.fresh_key("unknown-hold"), actor));
        }
        let recent = self.holds.len().saturating_sub(50);
        let index = recent + self.rng.below((self.holds.len() - recent) as u64) as usize;
        let (hold_id, creator) = self.holds[index].clone();
        let settler = match self.rng.below(10) {
            0..=5 => creator,
            6..=7 => self.actors[creator].issuer.unwrap_or(creator),
            8 => self.actors[creator].principal,
            _ => self.rng.below(self.actors.len() as u64) as usize,
        };
        Some((hold_id, settler))
    }

    fn gen_release(&mut self) -> (Result<Authenticated, Rejection>, Expect) {
        let Some((hold_id, settler)) = self.hold_and_settler() else {
            return self.gen_transfer();
        };
        let parts = self.rng.between(1, 4) as usize;
        let mut splits: Vec<Split> = Vec::new();
        let mut left = 10_000u16;
        for part in 0..parts {
            let to = *self.rng.pick(&self.accounts);
            if splits.iter().any(|split| split.to == to) {
                continue;
            }
            if left == 0 {
                break;
            }
            let bps = if part + 1 == parts {
                left
            } else {
                self.rng.between(1, u64::from(left)) as u16
            };
            left -= bps;
            splits.push(Split { to, bps });
        }
        let mut expect = Expect::Anything;
        if self.rng.chance(1, 10) && !splits.is_empty() {
            splits[0].bps = splits[0].bps.saturating_add(1);
            expect = Expect::RefusedAny;
        } else if splits.iter().map(|s| u32::from(s.bps)).sum::<u32>() != 10_000 {
            expect = Expect::RefusedAny;
        }
        let command = Command::Release(agentrail_core::command::Release { hold_id, splits });
        (self.sign(settler, command), expect)
    }

    fn gen_void(&mut self) -> (Result<Authenticated, Rejection>, Expect) {
        let Some((hold_id, settler)) = self.hold_and_settler() else {
            return self.gen_transfer();
        };
        (self.sign(settler, kit::void(&hold_id)), Expect::Anything)
    }

    fn gen_decision(&mut self) -> (Result<Authenticated, Rejection>, Expect) {
        let decided =
            self.approvals.is_empty() || (!self.decided.is_empty() && self.rng.chance(1, 10));
        if decided && self.decided.is_empty() {
            return self.gen_deposit();
        }
        let (approval_id, principal) = if decided {
            *self.rng.pick(&self.decided)
        } else {
            *self.rng.pick(&self.approvals)
        };
        let (decider, expect) = if self.rng.chance(1, 5) {
            let other = self.rng.below(self.actors.len() as u64) as usize;
            let expect = if other == principal {
                Expect::Anything
            } else {
                Expect::RefusedAny
            };
            (other, expect)
        } else {
            (principal, Expect::Anything)
        };
        let command = if self.rng.chance(3, 4) {
            kit::approve(approval_id)
        } else {
            kit::decline(approval_id)
        };
        (self.sign(decider, command), expect)
    }

    fn gen_deposit(&mut self) -> (Result<Authenticated, Rejection>, Expect) {
        let to = *self.rng.pick(&self.accounts);
        let amount = self.random_amount(100, 500_000);
        let key = self.fresh_key("d");
        if self.rng.chance(1, 5) {
            let stranger = self.rng.pick(&self.strangers).clone();
            return (
                Ok(authenticated(&stranger, kit::deposit(to, amount, &key))),
                Expect::Refused("not_operator"),
            );
        }
        (
            Ok(authenticated(
                &self.operator,
                kit::deposit(to, amount, &key),
            )),
            Expect::Anything,
        )
    }

    fn gen_withdraw(&mut self) -> (Result<Authenticated, Rejection>, Expect) {
        let (actor, from) = self.spender();
        let amount = self.random_amount(1, 100_000);
        let key = self.fresh_key("w");
        let expect = if self.actors[actor].kind == Kind::Principal {
            Expect::Anything
        } else {
            Expect::Refused("not_authorized")
        };
        (self.sign(actor, kit::withdraw(from, amount, &key)), expect)
    }

    fn gen_session(&mut self) -> (Result<Authenticated, Rejection>, Expect) {
        let agents: Vec<usize> = (0..self.actors.len())
            .filter(|&i| self.actors[i].kind == Kind::Agent)
            .collect();
        if agents.is_empty() {
            return self.gen_transfer();
        }
        let agent = *self.rng.pick(&agents);
        let agent_limits = self.actors[agent]
            .limits
            .clone()
            .expect("agents have limits");
        let key = SigningKey::from_bytes(&self.rng.bytes32());
        let did = kit::did(&key);
        let expires_at = Timestamp(
            (self.now.0 + self.rng.between(3_600, 7 * DAY_S)).min(self.actors[agent].expires_at.0),
        );
        let mut limits = self.narrower(&agent_limits);
        let mut expect = if self.chain_usable(agent) {
            Expect::Anything
        } else {
            Expect::RefusedAny
        };
        let widening = self.rng.chance(1, 6);
        if widening {
            let (wide, _) = self.widened(&agent_limits);
            limits = wide;
            if matches!(expect, Expect::Anything) {
                expect = Expect::Refused("grant_widens");
            }
        }
        let nonce = self.fresh_key("s");
        let grant = kit::grant(
            &self.actors[agent].key,
            did,
            Role::Session,
            limits.clone(),
            self.now,
            expires_at,
            &nonce,
        );
        let principal = self.actors[agent].principal;
        if !widening {
            // Tracked now; removed again in `submit` if the ledger refused it.
            self.actors.push(Actor::new(
                key,
                Kind::Session,
                Some(agent),
                principal,
                Some(limits),
                expires_at,
            ));
        }
        (self.sign(agent, kit::issue_session(grant)), expect)
    }

    fn gen_revoke(&mut self) -> (Result<Authenticated, Rejection>, Expect) {
        let delegates: Vec<usize> = (0..self.actors.len())
            .filter(|&i| {
                self.actors[i].kind == Kind::Session
                    || (self.actors[i].kind == Kind::Agent && self.rng.chance(1, 8))
            })
            .collect();
        if delegates.is_empty() {
            return self.gen_transfer();
        }
        let subject = *self.rng.pick(&delegates);
        let revoker = if self.rng.chance(1, 2) {
            self.actors[subject].issuer.expect("delegates have issuers")
        } else {
            self.actors[subject].principal
        };
        (
            self.sign(revoker, kit::revoke(self.actors[subject].did)),
            Expect::Anything,
        )
    }

    fn gen_new_agent(&mut self) -> (Result<Authenticated, Rejection>, Expect) {
        let principals: Vec<usize> = (0..self.actors.len())
            .filter(|&i| self.actors[i].kind == Kind::Principal)
            .collect();
        let principal = *self.rng.pick(&principals);
        let before = self.actors.len();
        if let Err(message) = self.add_agent(principal) {
            panic!("registering an agent failed: {message}");
        }
        debug_assert!(self.actors.len() >= before);
        // The registration was submitted by add_agent; follow with a deposit.
        self.gen_deposit()
    }

    /// A transfer whose signature was made by another key.
    fn gen_forgery(&mut self) -> (Result<Authenticated, Rejection>, Expect) {
        let (actor, from) = self.spender();
        let to = *self.rng.pick(&self.accounts);
        let key = self.fresh_key("f");
        let command = kit::transfer(from, to, Amount::from_atomic(1), &key);
        let signed =
            SignedCommand::sign(command.clone(), &self.actors[actor].key).expect("canonical");
        let forger = self.rng.pick(&self.strangers).clone();
        let forged: SignatureBytes = *SignedCommand::sign(command, &forger)
            .expect("canonical")
            .signature();
        (
            signed.with_signature(forged).verify(),
            Expect::Refused("invalid_signature"),
        )
    }

    fn gen_stranger_spend(&mut self) -> (Result<Authenticated, Rejection>, Expect) {
        let stranger = self.rng.pick(&self.strangers).clone();
        let from = *self.rng.pick(&self.accounts);
        let to = *self.rng.pick(&self.accounts);
        let key = self.fresh_key("x");
        (
            Ok(authenticated(
                &stranger,
                kit::transfer(from, to, usd(1), &key),
            )),
            Expect::RefusedAny,
        )
    }

    // ----- checking ------------------------------------------------------

    /// Submits one command and checks the outcome; `Ok(accepted)`.
    fn submit(
        &mut self,
        signed: Result<Authenticated, Rejection>,
        expect: Expect,
    ) -> Result<bool, String> {
        let command = match signed {
            Ok(command) => command,
            Err(rejection) => {
                return self
                    .check_rejection(&rejection, &expect, None)
                    .map(|_| false);
            }
        };
        let ticks = matches!(command.command(), Command::Tick(_));
        if !ticks && self.state.is_due(self.now) {
            return Err(format!(
                "{command:?} would carry time-driven events: nothing may fall due outside the clock's entry"
            ));
        }
        let before = Before::capture(&self.state, command.command());
        let balances = crate::record::Balances::capture(&self.state);
        let result = self.state.apply(&command, self.now);
        let forgotten = self.state.take_archived();
        for archived in &forgotten {
            let kind = archived.kind_and_id().0.name().to_owned();
            *self.report.forgotten_by_kind.entry(kind).or_default() += 1;
        }
        if let Some(followed) = self.followed.as_mut() {
            followed.push(Followed {
                command: command.clone(),
                now: self.now,
                outcome: result.clone(),
                forgotten,
            });
        }
        let accepted = match result {
            Ok(events) => {
                balances.check_parties(&self.state, &events)?;
                crate::record::check_roles(&self.state, *command.signer(), &events)?;
                self.check_accepted(&before, &command, &events, expect)?;
                *self
                    .report
                    .accepted_by_type
                    .entry(command_type(command.command()).to_owned())
                    .or_default() += 1;
                self.journal.push((command, self.now, events.clone()));
                self.report.accepted += 1;
                self.report.digest = fnv(self.report.digest, format!("{events:?}").as_bytes());
                true
            }
            Err(rejection) => {
                self.check_rejection(&rejection, &expect, Some(&command))?;
                self.forget_refused_session(&command);
                false
            }
        };
        Ok(accepted)
    }

    fn forget_refused_session(&mut self, command: &Authenticated) {
        if let Command::IssueSession(register) = command.command() {
            let subject = register.grant.grant().subject;
            if self.actors.last().is_some_and(|last| last.did == subject) {
                self.actors.pop();
            }
        }
    }

    fn check_rejection(
        &mut self,
        rejection: &Rejection,
        expect: &Expect,
        command: Option<&Authenticated>,
    ) -> Result<(), String> {
        *self
            .report
            .rejected
            .entry(rejection.code().to_owned())
            .or_default() += 1;
        let ok = match expect {
            Expect::Refused(code) => rejection.code() == *code,
            Expect::Duplicate(_) => false,
            Expect::Anything | Expect::RefusedAny => true,
        };
        if !ok {
            let code = match expect {
                Expect::Refused(code) => code,
                _ => "a duplicate",
            };
            return Err(format!(
                "expected {code}, got {} ({rejection}) for {command:?}",
                rejection.code()
            ));
        }
        Ok(())
    }

    fn check_accepted(
        &mut self,
        before: &Before,
        command: &Authenticated,
        events: &[Event],
        expect: Expect,
    ) -> Result<(), String> {
        match expect {
            Expect::Refused(code) => {
                return Err(format!(
                    "expected {code}, but accepted {command:?} -> {events:?}"
                ));
            }
            Expect::RefusedAny => {
                return Err(format!(
                    "expected a refusal, but accepted {command:?} -> {events:?}"
                ));
            }
            Expect::Duplicate(original) => {
                if events
                    != [Event::Duplicate {
                        original: original.clone(),
                    }]
                {
                    return Err(format!(
                        "a repeated key returned {events:?}, not the original {original:?}"
                    ));
                }
                self.report.duplicates += 1;
                return Ok(());
            }
            Expect::Anything => {}
        }
        if let [Event::Duplicate { .. }] = events {
            self.report.duplicates += 1;
            return Ok(());
        }
        let balance = |state: &State, did: &Did| state.balance(did).unwrap_or_default();
        let balance_before = |did: &Did| before.balances.get(did).copied().unwrap_or_default();
        match command.command() {
            Command::Transfer(transfer) => {
                let key = (*command.signer(), transfer.idempotency_key.clone());
                self.outcomes
                    .insert(key, (command.command().clone(), events.to_vec(), self.now));
                let (from_before, to_before) =
                    (balance_before(&transfer.from), balance_before(&transfer.to));
                let (from_after, to_after) = (
                    balance(&self.state, &transfer.from),
                    balance(&self.state, &transfer.to),
                );
                match events {
                    [Event::Transferred { amount, .. }] => {
                        check_eq(
                            from_after.available.atomic() + amount.atomic(),
                            from_before.available.atomic(),
                            "payer debited",
                        )?;
                        check_eq(
                            to_after.available.atomic(),
                            to_before.available.atomic() + amount.atomic(),
                            "payee credited",
                        )?;
                    }
                    [
                        Event::PaymentPending {
                            approval_id,
                            amount,
                            ..
                        },
                    ] => {
                        check_eq(
                            from_after.held.atomic(),
                            from_before.held.atomic() + amount.atomic(),
                            "pending held",
                        )?;
                        let principal = self
                            .actors
                            .iter()
                            .position(|a| a.did == self.owner_of(&transfer.from))
                            .expect("owner known");
                        self.approvals.push((*approval_id, principal));
                    }
                    other => return Err(format!("a transfer yielded {other:?}")),
                }
                self.check_spender_usable(command)?;
            }
            Command::Hold(hold) => {
                self.check_spender_usable(command)?;
                let creator = self.actor_index(command.signer());
                self.holds.push((hold.hold_id.clone(), creator));
            }
            Command::IssueSession(register) => {
                let session = self.actor_index(&register.grant.grant().subject);
                self.active.push(session);
            }
            Command::Void(_) => {}
            Command::Decline(decision) => self.decide(decision.approval_id),
            Command::Release(release) => {
                let [Event::HoldReleased { parts, .. }] = events else {
                    return Err(format!("a release yielded {events:?}"));
                };
                let sum: u128 = parts.iter().map(|part| part.amount.atomic()).sum();
                let held_before: u128 = before.totals.held.atomic();
                check_eq(
                    held_before - self.state.totals().held.atomic(),
                    sum,
                    "a release pays out exactly the hold",
                )?;
                check_eq(
                    self.state
                        .hold_status(&release.hold_id)
                        .map(|s| s == HoldStatus::Released)
                        .unwrap_or(false) as u128,
                    1,
                    "hold released",
                )?;
            }
            Command::Approve(decision) => {
                self.decide(decision.approval_id);
                check_eq(
                    (self.state.approval_status(decision.approval_id)
                        == Some(ApprovalStatus::Approved)) as u128,
                    1,
                    "approved",
                )?;
            }
            Command::Revoke(revoke) => {
                for actor in 0..self.actors.len() {
                    let cascades = self.actors[actor]
                        .issuer
                        .is_some_and(|issuer| self.actors[issuer].did == revoke.subject);
                    if self.actors[actor].did == revoke.subject || cascades {
                        self.actors[actor].revoked = true;
                    }
                }
            }
            _ => {
                if !self.economy_accepted(command, events)? {
                    self.market_accepted(command, events)?;
                }
            }
        }
        Ok(())
    }

    fn actor_index(&self, did: &Did) -> usize {
        self.actors
            .iter()
            .rposition(|a| a.did == *did)
            .expect("signers are actors")
    }

    fn decide(&mut self, approval_id: u64) {
        if let Some(position) = self.approvals.iter().position(|(id, _)| *id == approval_id) {
            let decided = self.approvals.swap_remove(position);
            self.decided.push(decided);
        }
    }

    fn owner_of(&self, account: &Did) -> Did {
        let actor = self
            .actors
            .iter()
            .find(|a| a.did == *account)
            .expect("accounts belong to actors");
        self.actors[actor.principal].did
    }

    /// Nothing is ever accepted from a revoked or expired grant.
    fn check_spender_usable(&self, command: &Authenticated) -> Result<(), String> {
        let actor = self.actor_index(command.signer());
        if !self.chain_usable(actor) {
            return Err(format!("a revoked or expired grant spent: {command:?}"));
        }
        Ok(())
    }

    /// Replays every accepted command into a fresh ledger, and the second
    /// half into the snapshot taken halfway (recovery = snapshot + journal
    /// tail): the outcomes and the final state must be identical.
    fn replay(&mut self) -> Result<(), String> {
        let from_genesis = State::new(Genesis {
            operator: kit::did(&self.operator),
            network: kit::network(),
            chain: None,
        });
        self.replay_from(from_genesis, 0)?;
        if let Some((bytes, covers)) = self.snapshot.take() {
            let restored =
                State::from_snapshot(&bytes).map_err(|e| format!("snapshot did not load: {e}"))?;
            if restored.to_snapshot() != bytes {
                return Err("a snapshot did not round-trip byte for byte".to_owned());
            }
            self.replay_from(restored, covers)?;
        }
        Ok(())
    }

    fn replay_from(&mut self, mut replayed: State, start: usize) -> Result<(), String> {
        for (index, (command, at, events)) in self.journal.iter().enumerate().skip(start) {
            // No `advance` before an entry: what fell due is in the
            // clock's entries, as in a node's journal.
            let outcome = replayed
                .apply(command, *at)
                .map_err(|r| format!("replay refused entry {index}: {r}"))?;
            if outcome != *events {
                return Err(format!(
                    "replay of entry {index} yielded {outcome:?}, not {events:?}"
                ));
            }
        }
        replayed.advance(self.now);
        self.state.advance(self.now);
        check_eq(
            replayed.totals().held.atomic(),
            self.state.totals().held.atomic(),
            "replayed holds",
        )?;
        let original: Vec<_> = self.state.balances().map(|(d, b)| (*d, b)).collect();
        let again: Vec<_> = replayed.balances().map(|(d, b)| (*d, b)).collect();
        if original != again {
            return Err("replay reached different balances".to_owned());
        }
        replayed.check_invariants().map_err(|v| v.to_string())
    }
}

/// What a step's checks need from before the command: the totals and the
/// balances of the accounts the command names (cloning the whole ledger per
/// step would make the run quadratic).
struct Before {
    totals: agentrail_core::Totals,
    balances: BTreeMap<Did, agentrail_core::Balance>,
}

impl Before {
    fn capture(state: &State, command: &Command) -> Before {
        let mut balances = BTreeMap::new();
        if let Command::Transfer(transfer) = command {
            for did in [transfer.from, transfer.to] {
                balances.insert(did, state.balance(&did).unwrap_or_default());
            }
        }
        Before {
            totals: state.totals(),
            balances,
        }
    }
}

/// The wire name of a command's type, for the report.
fn command_type(command: &Command) -> &'static str {
    match command {
        Command::RegisterPrincipal(_) => "register_principal",
        Command::RegisterAgent(_) => "register_agent",
        Command::IssueSession(_) => "issue_session",
        Command::Revoke(_) => "revoke",
        Command::Deposit(_) => "deposit",
        Command::Withdraw(_) => "withdraw",
        Command::Transfer(_) => "transfer",
        Command::Hold(_) => "hold",
        Command::Release(_) => "release",
        Command::Void(_) => "void",
        Command::Approve(_) => "approve",
        Command::Decline(_) => "decline",
        Command::OpenChannel(_) => "open_channel",
        Command::TopUpChannel(_) => "top_up_channel",
        Command::CollectChannel(_) => "collect_channel",
        Command::CloseChannel(_) => "close_channel",
        Command::StartChannelClose(_) => "start_channel_close",
        Command::PublishListing(_) => "publish_listing",
        Command::WithdrawListing(_) => "withdraw_listing",
        Command::RequestQuotes(_) => "request_quotes",
        Command::SubmitQuote(_) => "submit_quote",
        Command::CounterQuote(_) => "counter_quote",
        Command::AcceptQuote(_) => "accept_quote",
        Command::DeliverTask(_) => "deliver_task",
        Command::ApproveTask(_) => "approve_task",
        Command::DisputeTask(_) => "dispute_task",
        Command::ResolveDispute(_) => "resolve_dispute",
        Command::LicenseDataset(_) => "license_dataset",
        Command::Tick(_) => "tick",
        Command::ClaimDeposits(_) => "claim_deposits",
        Command::ChargeMandate(_) => "charge_mandate",
        Command::Subscribe(_) => "subscribe",
        Command::CollectSubscription(_) => "collect_subscription",
        Command::CancelSubscription(_) => "cancel_subscription",
        Command::PostBounty(_) => "post_bounty",
        Command::SubmitContribution(_) => "submit_contribution",
        Command::ScoreContribution(_) => "score_contribution",
        Command::PlaceOrder(_) => "place_order",
        Command::DeliverLeg(_) => "deliver_leg",
        Command::ApproveLeg(_) => "approve_leg",
        Command::DeclineLeg(_) => "decline_leg",
        Command::DisputeLeg(_) => "dispute_leg",
        Command::ResolveLeg(_) => "resolve_leg",
        _ => "other",
    }
}

fn check_eq(actual: u128, expected: u128, what: &str) -> Result<(), String> {
    if actual != expected {
        return Err(format!("{what}: {actual} != {expected}"));
    }
    Ok(())
}

fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    if hash == 0 {
        hash = 0xcbf2_9ce4_8422_2325;
    }
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}
