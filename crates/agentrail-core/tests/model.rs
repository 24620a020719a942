//! The ledger against a reference model.
//!
//! `Model` below is written independently of `State`, as plainly as
//! possible: integers in `BTreeMap`s, one `if` per documented rule, in the
//! documented order. Proptest drives both with the same random commands and
//! requires them to agree on every accept/reject (down to the rejection
//! code) and on every balance, and the ledger to keep every invariant.

use std::collections::{BTreeMap, BTreeSet};

use agentrail_core::command::{Command, Hold};
use agentrail_core::constants::{DAY_S, IDEMPOTENCY_RETENTION_S, RECORD_RETENTION_S};
use agentrail_core::grant::{Limits, Role};
use agentrail_core::{Amount, Authenticated, Did, Genesis, State, Timestamp};
use agentrail_sim::kit::{self, T0};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;

// Identities by index. Accounts are 0..5.
const P0: usize = 0;
const P1: usize = 1;
const A0: usize = 2;
const A1: usize = 3;
const A2: usize = 4;
const S0: usize = 5;
const S1: usize = 6;
const OPERATOR: usize = 7;
const STRANGER: usize = 8;
const IDENTITIES: usize = 9;
const ACCOUNTS: usize = 5;
const UNIT: u128 = 1_000_000;

#[derive(Clone, Debug)]
struct Grant {
    issuer: usize,
    principal: usize,
    per_payment: u128,
    daily: u128,
    total: Option<u128>,
    allowed: Option<Vec<usize>>,
    denied: Vec<usize>,
    categories: Option<Vec<&'static str>>,
    threshold: Option<u128>,
    daily_threshold: Option<u128>,
    not_before: u64,
    expires_at: u64,
}

/// The grants of agents and sessions, by subject index.
fn grants() -> BTreeMap<usize, Grant> {
    let t0 = T0.0;
    let base = Grant {
        issuer: P0,
        principal: P0,
        per_payment: 10 * UNIT,
        daily: 25 * UNIT,
        total: Some(60 * UNIT),
        allowed: None,
        denied: vec![P1],
        categories: None,
        threshold: Some(8 * UNIT),
        daily_threshold: None,
        not_before: t0,
        expires_at: t0 + 10 * DAY_S,
    };
    BTreeMap::from([
        (A0, base.clone()),
        (
            A1,
            Grant {
                per_payment: 20 * UNIT,
                daily: 40 * UNIT,
                total: None,
                allowed: Some(vec![P0, A2]),
                denied: vec![],
                categories: Some(vec!["compute"]),
                threshold: None,
                daily_threshold: Some(30 * UNIT),
                ..base.clone()
            },
        ),
        (
            A2,
            Grant {
                issuer: P1,
                principal: P1,
                per_payment: 15 * UNIT,
                daily: 30 * UNIT,
                total: Some(50 * UNIT),
                denied: vec![],
                threshold: None,
                ..base.clone()
            },
        ),
        (
            S0,
            Grant {
                issuer: A0,
                per_payment: 5 * UNIT,
                daily: 12 * UNIT,
                total: Some(30 * UNIT),
                not_before: t0 + 3_600,
                ..base.clone()
            },
        ),
        (
            S1,
            Grant {
                issuer: A2,
                principal: P1,
                per_payment: 15 * UNIT,
                daily: 20 * UNIT,
                total: Some(40 * UNIT),
                denied: vec![],
                threshold: None,
                expires_at: t0 + 2 * DAY_S,
                ..base
            },
        ),
    ])
}

#[derive(Clone, Debug)]
enum Op {
    Deposit {
        signer: usize,
        to: usize,
        amount: u128,
        key: u8,
    },
    Transfer {
        signer: usize,
        from: usize,
        to: usize,
        amount: u128,
        key: u8,
        compute: bool,
    },
    Withdraw {
        signer: usize,
        from: usize,
        amount: u128,
        key: u8,
    },
    Hold {
        signer: usize,
        from: usize,
        amount: u128,
        id: u8,
    },
    Release {
        signer: usize,
        id: u8,
        to: usize,
        halves: bool,
    },
    Void {
        signer: usize,
        id: u8,
    },
    Approve {
        signer: usize,
        id: u64,
    },
    Decline {
        signer: usize,
        id: u64,
    },
    Revoke {
        signer: usize,
        subject: usize,
    },
    Wait {
        seconds: u64,
    },
}

fn amount() -> impl Strategy<Value = u128> {
    // Whole amounts equal to the grants' caps and budgets make the exact
    // boundaries (spending a budget to the last unit) common, not rare.
    prop_oneof![
        1 => Just(0u128),
        4 => prop::sample::select(vec![5u128, 8, 9, 10, 12, 15, 20, 25, 30, 40]).prop_map(|whole| whole * UNIT),
        4 => (1u128..=30).prop_map(|whole| whole * UNIT),
        2 => 1u128..=30 * UNIT,
    ]
}

/// A signer and the account it spends from: mostly its own (so that spends
/// get past authorisation and reach the limits), sometimes any account.
fn spender() -> impl Strategy<Value = (usize, usize)> {
    (0..IDENTITIES, 0..ACCOUNTS, 0u8..5).prop_map(|(signer, any_account, roll)| {
        let own = match signer {
            S0 => A0,
            S1 => A2,
            OPERATOR | STRANGER => any_account,
            own => own,
        };
        (signer, if roll == 0 { any_account } else { own })
    })
}

fn op() -> impl Strategy<Value = Op> {
    let signer = 0..IDENTITIES;
    let account = 0..ACCOUNTS;
    prop_oneof![
        3 => (prop_oneof![4 => Just(OPERATOR), 1 => Just(P0)], account.clone(), (0u128..=80).prop_map(|w| w * UNIT), 0u8..4)
            .prop_map(|(signer, to, amount, key)| Op::Deposit { signer, to, amount, key }),
        8 => (spender(), account.clone(), amount(), 0u8..4, any::<bool>())
            .prop_map(|((signer, from), to, amount, key, compute)| Op::Transfer { signer, from, to, amount, key, compute }),
        1 => (signer.clone(), account.clone(), amount(), 0u8..4)
            .prop_map(|(signer, from, amount, key)| Op::Withdraw { signer, from, amount, key }),
        3 => (spender(), amount(), 0u8..4)
            .prop_map(|((signer, from), amount, id)| Op::Hold { signer, from, amount, id }),
        2 => (signer.clone(), 0u8..4, account, any::<bool>())
            .prop_map(|(signer, id, to, halves)| Op::Release { signer, id, to, halves }),
        1 => (signer.clone(), 0u8..4).prop_map(|(signer, id)| Op::Void { signer, id }),
        1 => (signer.clone(), 1u64..5).prop_map(|(signer, id)| Op::Approve { signer, id }),
        1 => (signer.clone(), 1u64..5).prop_map(|(signer, id)| Op::Decline { signer, id }),
        1 => (signer, prop_oneof![Just(P0), 2..IDENTITIES - 2]).prop_map(|(signer, subject)| Op::Revoke { signer, subject }),
        2 => prop_oneof![0u64..600, 0u64..(3 * DAY_S)].prop_map(|seconds| Op::Wait { seconds }),
    ]
}

// ----- the reference model -----------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Remembered {
    Deposit(usize, u128),
    Transfer(usize, usize, u128, bool),
    Withdraw(usize, u128),
}

#[derive(Clone, Debug)]
struct MHold {
    creator: usize,
    from: usize,
    amount: u128,
    charged: Vec<usize>,
    day: u64,
    expires_at: u64,
    needs_approval: bool,
    reserved: bool,
    /// When it was released, voided or expired: forgotten a retention later.
    ended_at: Option<u64>,
}

#[derive(Clone, Debug)]
struct MApproval {
    from: usize,
    to: usize,
    amount: u128,
    charged: Vec<usize>,
    day: u64,
    expires_at: u64,
    pending: bool,
    ended_at: Option<u64>,
}

struct Model {
    grants: BTreeMap<usize, Grant>,
    now: u64,
    available: [u128; ACCOUNTS],
    held: [u128; ACCOUNTS],
    spent_day: BTreeMap<(usize, u64), u128>,
    spent_total: BTreeMap<usize, u128>,
    revoked: BTreeSet<usize>,
    /// Idempotency keys: the content and when the key was first used.
    keys: BTreeMap<(usize, u8), (Remembered, u64)>,
    holds: BTreeMap<u8, MHold>,
    approvals: BTreeMap<u64, MApproval>,
    next_approval: u64,
}

type Outcome = Result<(), &'static str>;

impl Model {
    fn new() -> Model {
        Model {
            grants: grants(),
            now: T0.0,
            available: [0; ACCOUNTS],
            held: [0; ACCOUNTS],
            spent_day: BTreeMap::new(),
            spent_total: BTreeMap::new(),
            revoked: BTreeSet::new(),
            keys: BTreeMap::new(),
            holds: BTreeMap::new(),
            approvals: BTreeMap::new(),
            next_approval: 1,
        }
    }

    fn owner(&self, account: usize) -> usize {
        match account {
            P0 | P1 => account,
            _ => self.grants[&account].principal,
        }
    }

    fn advance(&mut self) {
        let now = self.now;
        let mut refunds = Vec::new();
        for hold in self.holds.values_mut() {
            if hold.reserved && hold.expires_at <= now {
                hold.reserved = false;
                hold.ended_at = Some(now);
                refunds.push((hold.from, hold.amount, hold.charged.clone(), hold.day));
            }
        }
        for approval in self.approvals.values_mut() {
            if approval.pending && approval.expires_at <= now {
                approval.pending = false;
                approval.ended_at = Some(now);
                refunds.push((
                    approval.from,
                    approval.amount,
                    approval.charged.clone(),
                    approval.day,
                ));
            }
        }
        for (from, amount, charged, day) in refunds {
            self.held[from] -= amount;
            self.available[from] += amount;
            self.uncharge(&charged, day, amount);
        }
        // Ended records are forgotten a retention after they ended.
        let kept = |ended_at: Option<u64>| ended_at.is_none_or(|t| t + RECORD_RETENTION_S > now);
        self.holds.retain(|_, hold| kept(hold.ended_at));
        self.approvals.retain(|_, approval| kept(approval.ended_at));
    }

    fn end_hold(&mut self, id: u8) {
        let now = self.now;
        let hold = self.holds.get_mut(&id).unwrap();
        hold.reserved = false;
        hold.ended_at = Some(now);
    }

    fn uncharge(&mut self, charged: &[usize], day: u64, amount: u128) {
        for subject in charged {
            *self.spent_day.get_mut(&(*subject, day)).unwrap() -= amount;
            *self.spent_total.get_mut(subject).unwrap() -= amount;
        }
    }

    fn usable(&self, subject: usize) -> Outcome {
        let grant = &self.grants[&subject];
        if self.revoked.contains(&subject) {
            return Err("grant_revoked");
        }
        if self.now < grant.not_before {
            return Err("grant_not_yet_valid");
        }
        if self.now >= grant.expires_at {
            return Err("grant_expired");
        }
        Ok(())
    }

    fn payee_ok(&self, subject: usize, payee: usize) -> Outcome {
        let grant = &self.grants[&subject];
        if grant.denied.contains(&payee) {
            return Err("payee_denied");
        }
        if let Some(allowed) = &grant.allowed
            && !allowed.contains(&payee)
        {
            return Err("payee_not_allowed");
        }
        Ok(())
    }

    /// Who spends, and whose grants count it; then every rule.
    fn spend(
        &self,
        signer: usize,
        from: usize,
        amount: u128,
        payee: Option<usize>,
        compute: bool,
    ) -> Result<(Vec<usize>, bool), &'static str> {
        let chain = self.chain(signer, from)?;
        let day = self.now / DAY_S;
        let mut approval = false;
        for &subject in &chain {
            self.usable(subject)?;
            let grant = &self.grants[&subject];
            if amount > grant.per_payment {
                return Err("per_payment_limit_exceeded");
            }
            if let Some(payee) = payee {
                self.payee_ok(subject, payee)?;
            }
            if let Some(categories) = &grant.categories
                && !(compute && categories.contains(&"compute"))
            {
                return Err("category_not_allowed");
            }
            let today = self.spent_day.get(&(subject, day)).copied().unwrap_or(0);
            if today + amount > grant.daily {
                return Err("budget_exceeded");
            }
            let total = self.spent_total.get(&subject).copied().unwrap_or(0);
            if grant.total.is_some_and(|cap| total + amount > cap) {
                return Err("budget_exceeded");
            }
            approval |= grant.threshold.is_some_and(|threshold| amount > threshold);
            approval |= grant
                .daily_threshold
                .is_some_and(|threshold| today + amount > threshold);
        }
        if self.available[from] < amount {
            return Err("insufficient_funds");
        }
        Ok((chain, approval))
    }

    fn charge(&mut self, chain: &[usize], amount: u128) {
        let day = self.now / DAY_S;
        for &subject in chain {
            *self.spent_day.entry((subject, day)).or_default() += amount;
            *self.spent_total.entry(subject).or_default() += amount;
        }
    }

    /// The grants that bind `signer` acting for `from`, or why it may not.
    fn chain(&self, signer: usize, from: usize) -> Result<Vec<usize>, &'static str> {
        Ok(match signer {
            OPERATOR | STRANGER => return Err("unknown_identity"),
            P0 | P1 if self.owner(from) == signer => vec![],
            A0 | A1 | A2 if from == signer => vec![signer],
            S0 | S1 if from == self.grants[&signer].issuer => {
                vec![signer, self.grants[&signer].issuer]
            }
            _ => return Err("not_authorized"),
        })
    }

    /// Whether `key` was used in `scope` (the account the money leaves, or
    /// the operator for a deposit) for this content.
    fn recall(&self, scope: usize, key: u8, content: &Remembered) -> Result<bool, &'static str> {
        match self.keys.get(&(scope, key)) {
            None => Ok(false),
            // Forgotten after the retention: a new command.
            Some((_, at)) if at + IDEMPOTENCY_RETENTION_S <= self.now => Ok(false),
            Some((remembered, _)) if remembered == content => Ok(true),
            Some(_) => Err("idempotency_conflict"),
        }
    }

    /// Who may settle a hold, and the grants that bind them.
    fn settler(&self, signer: usize, hold: &MHold) -> Result<Vec<usize>, &'static str> {
        let authority = if self.owner(hold.from) == signer {
            vec![]
        } else if let Some(position) = hold.charged.iter().position(|&d| d == signer) {
            hold.charged[position..].to_vec()
        } else {
            return Err("not_authorized");
        };
        for &subject in &authority {
            self.usable(subject)?;
        }
        if !hold.reserved {
            return Err("hold_not_active");
        }
        Ok(authority)
    }

    fn apply(&mut self, op: &Op) -> Outcome {
        self.advance();
        match *op {
            Op::Wait { .. } => Ok(()),
            Op::Deposit {
                signer,
                to,
                amount,
                key,
            } => {
                if signer != OPERATOR {
                    return Err("not_operator");
                }
                if amount == 0 {
                    return Err("amount_zero");
                }
                let content = Remembered::Deposit(to, amount);
                if self.recall(signer, key, &content)? {
                    return Ok(());
                }
                self.available[to] += amount;
                self.keys.insert((signer, key), (content, self.now));
                Ok(())
            }
            Op::Withdraw {
                signer,
                from,
                amount,
                key,
            } => {
                if amount == 0 {
                    return Err("amount_zero");
                }
                let content = Remembered::Withdraw(from, amount);
                self.chain(signer, from)?;
                if self.recall(from, key, &content)? {
                    return Ok(());
                }
                if !(signer == P0 || signer == P1) || self.owner(from) != signer {
                    return Err("not_authorized");
                }
                if self.available[from] < amount {
                    return Err("insufficient_funds");
                }
                self.available[from] -= amount;
                self.keys.insert((from, key), (content, self.now));
                Ok(())
            }
            Op::Transfer {
                signer,
                from,
                to,
                amount,
                key,
                compute,
            } => {
                if amount == 0 {
                    return Err("amount_zero");
                }
                if from == to {
                    return Err("same_account");
                }
                let content = Remembered::Transfer(from, to, amount, compute);
                self.chain(signer, from)?;
                if self.recall(from, key, &content)? {
                    return Ok(());
                }
                let (chain, approval) = self.spend(signer, from, amount, Some(to), compute)?;
                self.charge(&chain, amount);
                self.available[from] -= amount;
                if approval {
                    self.held[from] += amount;
                    let id = self.next_approval;
                    self.next_approval += 1;
                    let (day, expires_at) = (self.now / DAY_S, self.now + DAY_S);
                    self.approvals.insert(
                        id,
                        MApproval {
                            from,
                            to,
                            amount,
                            charged: chain,
                            day,
                            expires_at,
                            pending: true,
                            ended_at: None,
                        },
                    );
                } else {
                    self.available[to] += amount;
                }
                self.keys.insert((from, key), (content, self.now));
                Ok(())
            }
            Op::Hold {
                signer,
                from,
                amount,
                id,
            } => {
                if amount == 0 {
                    return Err("amount_zero");
                }
                if let Some(existing) = self.holds.get(&id) {
                    let same = existing.creator == signer
                        && existing.from == from
                        && existing.amount == amount;
                    return if same {
                        Ok(())
                    } else {
                        Err("idempotency_conflict")
                    };
                }
                let (chain, approval) = self.spend(signer, from, amount, None, false)?;
                self.charge(&chain, amount);
                self.available[from] -= amount;
                self.held[from] += amount;
                let (day, expires_at) = (self.now / DAY_S, self.now + 90 * DAY_S);
                self.holds.insert(
                    id,
                    MHold {
                        creator: signer,
                        from,
                        amount,
                        charged: chain,
                        day,
                        expires_at,
                        needs_approval: approval,
                        reserved: true,
                        ended_at: None,
                    },
                );
                Ok(())
            }
            Op::Release {
                signer,
                id,
                to,
                halves,
            } => {
                let hold = self.holds.get(&id).ok_or("hold_not_found")?.clone();
                let authority = self.settler(signer, &hold)?;
                if hold.needs_approval && !authority.is_empty() {
                    return Err("not_authorized");
                }
                let payees = if halves {
                    vec![to, (to + 1) % ACCOUNTS]
                } else {
                    vec![to]
                };
                for &payee in &payees {
                    for &subject in &authority {
                        self.payee_ok(subject, payee)?;
                    }
                }
                self.end_hold(id);
                self.held[hold.from] -= hold.amount;
                if halves {
                    // Equal halves: the odd unit goes to the first payee.
                    self.available[payees[0]] += hold.amount - hold.amount / 2;
                    self.available[payees[1]] += hold.amount / 2;
                } else {
                    self.available[to] += hold.amount;
                }
                Ok(())
            }
            Op::Void { signer, id } => {
                let hold = self.holds.get(&id).ok_or("hold_not_found")?.clone();
                self.settler(signer, &hold)?;
                self.end_hold(id);
                self.held[hold.from] -= hold.amount;
                self.available[hold.from] += hold.amount;
                self.uncharge(&hold.charged, hold.day, hold.amount);
                Ok(())
            }
            Op::Approve { signer, id } | Op::Decline { signer, id } => {
                let approval = self.approvals.get(&id).ok_or("approval_not_found")?.clone();
                if signer != self.owner(approval.from) {
                    return Err("not_authorized");
                }
                if !approval.pending {
                    return Err("approval_not_pending");
                }
                let now = self.now;
                let approval_record = self.approvals.get_mut(&id).unwrap();
                approval_record.pending = false;
                approval_record.ended_at = Some(now);
                self.held[approval.from] -= approval.amount;
                if matches!(op, Op::Approve { .. }) {
                    self.available[approval.to] += approval.amount;
                } else {
                    self.available[approval.from] += approval.amount;
                    self.uncharge(&approval.charged, approval.day, approval.amount);
                }
                Ok(())
            }
            Op::Revoke { signer, subject } => {
                if subject == P0 {
                    return Err("not_authorized");
                }
                let grant = &self.grants[&subject];
                if signer != grant.issuer && signer != grant.principal {
                    return Err("not_authorized");
                }
                if self.revoked.contains(&subject) {
                    return Err("grant_revoked");
                }
                self.revoked.insert(subject);
                let below: Vec<usize> = self
                    .grants
                    .iter()
                    .filter(|(_, g)| g.issuer == subject)
                    .map(|(s, _)| *s)
                    .collect();
                self.revoked.extend(below);
                Ok(())
            }
        }
    }
}

// ----- the real ledger, driven with the same operations -------------------

struct Real {
    state: State,
    keys: Vec<SigningKey>,
    dids: Vec<Did>,
    now: Timestamp,
}

impl Real {
    fn new() -> Real {
        let keys: Vec<SigningKey> = (0..IDENTITIES)
            .map(|i| kit::key(&format!("model-{i}")))
            .collect();
        let dids: Vec<Did> = keys.iter().map(kit::did).collect();
        let mut real = Real {
            state: State::new(Genesis {
                operator: dids[OPERATOR],
                network: kit::network(),
                chain: None,
            }),
            keys,
            dids,
            now: T0,
        };
        for principal in [P0, P1] {
            real.must(principal, kit::register_principal(real.dids[principal]));
        }
        for (subject, grant) in grants() {
            let limits = Limits {
                max_per_payment: Amount::from_atomic(grant.per_payment),
                daily_budget: Amount::from_atomic(grant.daily),
                total_budget: grant.total.map(Amount::from_atomic),
                allowed_payees: grant
                    .allowed
                    .as_ref()
                    .map(|list| list.iter().map(|&i| real.dids[i]).collect()),
                denied_payees: grant.denied.iter().map(|&i| real.dids[i]).collect(),
                allowed_categories: grant
                    .categories
                    .as_ref()
                    .map(|list| list.iter().map(|c| (*c).to_owned()).collect()),
                approval_threshold: grant.threshold.map(Amount::from_atomic),
                daily_approval_threshold: grant.daily_threshold.map(Amount::from_atomic),
            };
            let role = if subject == S0 || subject == S1 {
                Role::Session
            } else {
                Role::Agent
            };
            let signed = kit::grant(
                &real.keys[grant.issuer],
                real.dids[subject],
                role,
                limits,
                Timestamp(grant.not_before),
                Timestamp(grant.expires_at),
                "m",
            );
            let command = if role == Role::Agent {
                kit::register_agent(signed)
            } else {
                kit::issue_session(signed)
            };
            real.must(grant.issuer, command);
        }
        real
    }

    fn must(&mut self, signer: usize, command: Command) {
        let described = format!("{command:?}");
        self.apply(signer, command)
            .unwrap_or_else(|code| panic!("setup {described}: {code}"));
    }

    fn apply(&mut self, signer: usize, command: Command) -> Outcome {
        // Pre-verified: these tests are about the ledger's rules, and the
        // signature path is covered elsewhere.
        let command = Authenticated::assume_verified(self.dids[signer], command);
        self.state
            .apply(&command, self.now)
            .map(|_| ())
            .map_err(|rejection| rejection.code())
    }

    fn run(&mut self, op: &Op) -> Outcome {
        let d = |i: usize| self.dids[i];
        let key = |k: u8| format!("k{k}");
        let command = match *op {
            Op::Wait { .. } => {
                self.state.advance(self.now);
                return Ok(());
            }
            Op::Deposit {
                signer,
                to,
                amount,
                key: k,
            } => (
                signer,
                kit::deposit(d(to), Amount::from_atomic(amount), &key(k)),
            ),
            Op::Withdraw {
                signer,
                from,
                amount,
                key: k,
            } => (
                signer,
                kit::withdraw(d(from), Amount::from_atomic(amount), &key(k)),
            ),
            Op::Transfer {
                signer,
                from,
                to,
                amount,
                key: k,
                compute,
            } => {
                let category = compute.then_some("compute");
                (
                    signer,
                    kit::transfer_in(
                        d(from),
                        d(to),
                        Amount::from_atomic(amount),
                        category,
                        &key(k),
                    ),
                )
            }
            Op::Hold {
                signer,
                from,
                amount,
                id,
            } => {
                let hold = Hold {
                    hold_id: format!("h{id}"),
                    from: d(from),
                    amount: Amount::from_atomic(amount),
                    category: None,
                    expires_at: None,
                };
                (signer, Command::Hold(hold))
            }
            Op::Release {
                signer,
                id,
                to,
                halves,
            } => {
                let splits = if halves {
                    vec![(d(to), 5_000), (d((to + 1) % ACCOUNTS), 5_000)]
                } else {
                    vec![(d(to), 10_000)]
                };
                (signer, kit::release(&format!("h{id}"), &splits))
            }
            Op::Void { signer, id } => (signer, kit::void(&format!("h{id}"))),
            Op::Approve { signer, id } => (signer, kit::approve(id)),
            Op::Decline { signer, id } => (signer, kit::decline(id)),
            Op::Revoke { signer, subject } => (signer, kit::revoke(d(subject))),
        };
        self.apply(command.0, command.1)
    }
}

fn check(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model = Model::new();
    let mut real = Real::new();
    for (step, op) in ops.iter().enumerate() {
        if let Op::Wait { seconds } = op {
            model.now += seconds;
            real.now = Timestamp(model.now);
        }
        let expected = model.apply(op);
        let actual = real.run(op);
        prop_assert_eq!(actual, expected, "step {}: {:?}", step, op);
        for account in 0..ACCOUNTS {
            let balance = real.state.balance(&real.dids[account]).unwrap();
            prop_assert_eq!(
                (balance.available.atomic(), balance.held.atomic()),
                (model.available[account], model.held[account]),
                "account {} after step {}: {:?}",
                account,
                step,
                op
            );
        }
        if let Err(violation) = real.state.check_invariants() {
            return Err(TestCaseError::fail(format!("step {step}: {violation}")));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_ledger_agrees_with_the_reference_model(ops in proptest::collection::vec(op(), 1..150)) {
        check(&ops)?;
    }
}

/// Deposits first, so that the random part spends real money more often.
#[test]
fn the_model_agrees_on_a_funded_world() {
    let funding: Vec<Op> = (0..ACCOUNTS)
        .map(|to| Op::Deposit {
            signer: OPERATOR,
            to,
            amount: 100 * UNIT,
            key: to as u8,
        })
        .collect();
    let runner = proptest::test_runner::Config {
        cases: 256,
        ..Default::default()
    };
    proptest::test_runner::TestRunner::new(runner)
        .run(&proptest::collection::vec(op(), 1..200), |ops| {
            let wait = Op::Wait { seconds: 3_600 };
            let all: Vec<Op> = funding
                .iter()
                .cloned()
                .chain(std::iter::once(wait))
                .chain(ops)
                .collect();
            check(&all)
        })
        .unwrap();
}
