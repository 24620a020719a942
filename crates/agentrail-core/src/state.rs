//! The ledger as a deterministic state machine:
//! `State::apply(command, now) -> Result<Vec<Event>, Rejection>`.
//!
//! Every handler checks everything first and mutates only after the last
//! check passed, so a rejected command leaves the ledger as it was (only the
//! clock and the time-driven expirations of [`State::advance`] move).
//! Money moves only through the few helpers at the bottom of this file, each
//! of which keeps the running totals and asserts conservation.
//!
//! Protocol of a spend (transfer, hold):
//!
//! ```text
//! signer ─▶ spending chain (session → agent, or agent, or principal)
//!        ─▶ every grant in the chain: unrevoked, inside its window,
//!           per-payment cap, payee lists, category, daily and total budget
//!        ─▶ funds ─▶ charge budgets ─▶ move money (or wait for approval)
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::amount::{Amount, BPS_WHOLE};
use crate::chain::{ChainBinding, ChainDeposit, PendingWithdrawal};
use crate::command::{
    Authenticated, Command, Decision, Hold, RegisterGrant, RegisterPrincipal, Release, Revoke,
    Transfer, Void,
};
use crate::constants::{
    AGENTS_PER_PRINCIPAL_MAX, APPROVAL_WINDOW_S, HOLD_DURATION_MAX_S, IDEMPOTENCY_RETENTION_S,
    KEY_BYTES_MAX, MEMO_BYTES_MAX, SESSIONS_PER_AGENT_MAX, SPLIT_PARTS_MAX,
};
use crate::did::Did;
use crate::event::{Event, Part};
use crate::grant::{
    Exposure, ExposureBound, Inactive, InvalidGrant, Role, SignedGrant, Spent, is_category,
};
use crate::rejection::{Budget, Rejection};
use crate::split::split_largest_remainder;
use crate::time::Timestamp;

mod bounty;
mod channels;
mod custody;
mod mandate;
mod market;
mod order;
mod owner;
mod retention;
mod subscription;

use channels::ChannelRecord;
pub use channels::{ChannelStatus, ChannelView, Redeemed};
use market::{LicenseRecord, ListingRecord, QuoteRecord, RfqRecord, TaskRecord};
pub use owner::PendingApproval;
use retention::Forget;
pub use retention::{ArchiveKind, Archived};

/// What a new ledger starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Genesis {
    /// The only identity that may deposit money into the ledger.
    pub operator: Did,
    /// SHA-256 of the network id (`agentrail:<log origin>`) that channel
    /// vouchers sign ([`crate::channel::network_hash`]), so that a voucher
    /// for one ledger is worthless on another.
    pub network: [u8; 32],
    /// The chain and vault whose tokens the ledger counts, if any: then
    /// money enters only as the vault's deposits and leaves only as
    /// withdrawals it pays (`state/custody.rs`).
    pub chain: Option<ChainBinding>,
}

/// An account's money.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Balance {
    /// Free to spend.
    pub available: Amount,
    /// Reserved by holds, channel deposits and payments waiting for approval.
    pub held: Amount,
}

/// Ledger-wide sums, kept as the ledger moves and checked against the
/// accounts by [`State::check_invariants`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Totals {
    pub deposited: Amount,
    pub withdrawn: Amount,
    pub available: Amount,
    pub held: Amount,
    /// Chain deposits kept for did:keys that have no account yet.
    #[serde(default)]
    pub unclaimed: Amount,
    /// Withdrawn, and not yet paid by the vault.
    #[serde(default)]
    pub pending_withdrawals: Amount,
}

/// What kind of identity a did:key is registered as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    Principal,
    Agent,
    Session,
}

/// The state of an agent or session grant, for status pages and passports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GrantStatus {
    pub grant: SignedGrant,
    pub principal: Did,
    pub revoked_at: Option<Timestamp>,
    pub active: bool,
    pub spent_today: Amount,
    pub spent_total: Amount,
    /// What this grant's own daily budget still allows today.
    pub remaining_today: Amount,
    /// What this grant's own total budget still allows, if it has one.
    pub remaining_total: Option<Amount>,
    /// The most that can still leave through this grant and those above it.
    pub exposure: Exposure,
}

/// Where a hold stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    Reserved,
    Released,
    Voided,
    Expired,
}

/// Where a payment above an approval threshold stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Declined,
    Expired,
}

/// A broken invariant: a bug in this crate, never a user error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ledger invariant broken: {0}")]
pub struct InvariantViolation(pub String);

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
struct Account {
    balance: Balance,
    /// The principal that owns the account (itself, for a principal).
    owner: Did,
}

/// An agent or a session: a grant and what has been spent through it.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
struct Delegate {
    grant: SignedGrant,
    principal: Did,
    revoked_at: Option<Timestamp>,
    spent_total: Amount,
    spent_by_day: BTreeMap<u64, Amount>,
    /// Sessions issued by this agent that may still be live (agents only).
    sessions: Vec<Did>,
}

impl Delegate {
    fn issuer(&self) -> Did {
        self.grant.grant().issuer
    }

    fn spent(&self, day: u64) -> Spent {
        Spent {
            today: self.spent_by_day.get(&day).copied().unwrap_or_default(),
            total: self.spent_total,
        }
    }

    /// Whether the grant may act now or later: not revoked, not expired (a
    /// grant whose `not_before` is still ahead counts).
    fn may_still_act(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.grant.grant().check_active(now) != Err(Inactive::Expired)
    }

    fn check_active(&self, subject: Did, now: Timestamp) -> Result<(), Rejection> {
        if self.revoked_at.is_some() {
            return Err(Rejection::GrantRevoked { subject });
        }
        self.grant
            .grant()
            .check_active(now)
            .map_err(|inactive| match inactive {
                Inactive::NotYetValid => Rejection::GrantNotYetValid { subject },
                Inactive::Expired => Rejection::GrantExpired { subject },
            })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
enum Identity {
    Principal { agents: Vec<Did> },
    Agent(Delegate),
    Session(Delegate),
}

impl Identity {
    fn kind(&self) -> IdentityKind {
        match self {
            Identity::Principal { .. } => IdentityKind::Principal,
            Identity::Agent(_) => IdentityKind::Agent,
            Identity::Session(_) => IdentityKind::Session,
        }
    }

    fn delegate(&self) -> Option<&Delegate> {
        match self {
            Identity::Principal { .. } => None,
            Identity::Agent(delegate) | Identity::Session(delegate) => Some(delegate),
        }
    }

    fn delegate_mut(&mut self) -> Option<&mut Delegate> {
        match self {
            Identity::Principal { .. } => None,
            Identity::Agent(delegate) | Identity::Session(delegate) => Some(delegate),
        }
    }
}

/// The budgets a spend was counted against: the grants of the spending
/// chain (session and agent, or agent alone; none for a principal), on one
/// UTC day. Refunding a charge restores exactly what it took.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
struct Charge {
    delegates: Vec<Did>,
    day: u64,
    amount: Amount,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
struct HoldRecord {
    creator: Did,
    request: Hold,
    outcome: Vec<Event>,
    charge: Charge,
    expires_at: Timestamp,
    /// Above an approval threshold of its chain: only the principal releases it.
    needs_approval: bool,
    status: HoldStatus,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
struct ApprovalRecord {
    signer: Did,
    transfer: Transfer,
    charge: Charge,
    expires_at: Timestamp,
    status: ApprovalStatus,
}

#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
enum Expiry {
    Hold(String),
    Approval(u64),
    /// An open channel's expiry, or a closing one's end of dispute window.
    Channel(crate::channel::ChannelId),
    /// A task's delivery deadline, end of review or end of arbitration.
    Task(String),
    /// A bounty's end of scoring.
    Bounty(String),
    /// The earliest time one of an order's open legs falls due.
    Order(String),
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
struct Remembered {
    command: Command,
    outcome: Vec<Event>,
    /// When the key was first used.
    at: Timestamp,
}

/// What a spend needs once every check has passed.
struct SpendPlan {
    charge: Charge,
    needs_approval: bool,
}

/// The whole ledger. Maps are ordered so that iteration, and therefore every
/// outcome, is deterministic.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    operator: Did,
    clock: Timestamp,
    identities: BTreeMap<Did, Identity>,
    accounts: BTreeMap<Did, Account>,
    holds: BTreeMap<String, HoldRecord>,
    approvals: BTreeMap<u64, ApprovalRecord>,
    /// Exactly the reserved holds and pending approvals, by expiry time.
    expiries: BTreeSet<(Timestamp, Expiry)>,
    #[serde(with = "pairs")]
    idempotency: BTreeMap<(Did, String), Remembered>,
    /// Every remembered key in the order of first use, which is time order
    /// (the clock never runs backwards): forgotten from the front once
    /// `IDEMPOTENCY_RETENTION_S` has passed.
    idempotency_order: VecDeque<(Timestamp, Did, String)>,
    next_approval_id: u64,
    totals: Totals,
    /// Payment channels, open and ended.
    #[serde(default)]
    channels: BTreeMap<crate::channel::ChannelId, ChannelRecord>,
    /// See [`Genesis::network`].
    network: [u8; 32],
    /// When each principal and agent registered (reputation counts age).
    #[serde(default)]
    registered_at: BTreeMap<Did, Timestamp>,
    #[serde(default)]
    listings: BTreeMap<String, ListingRecord>,
    /// Listing ids by provider, in publishing order.
    #[serde(default)]
    provider_listings: BTreeMap<Did, Vec<String>>,
    #[serde(default)]
    rfqs: BTreeMap<String, RfqRecord>,
    #[serde(default)]
    quotes: BTreeMap<String, QuoteRecord>,
    #[serde(default)]
    tasks: BTreeMap<String, TaskRecord>,
    #[serde(default)]
    licenses: BTreeMap<String, LicenseRecord>,
    /// Settled work per provider account, which reputation is scored from.
    #[serde(default)]
    records: BTreeMap<Did, crate::reputation::Record>,
    /// Ended records by the time they leave the state (`retention.rs`).
    #[serde(default)]
    forget_at: BTreeSet<(Timestamp, Forget)>,
    /// Records forgotten and not yet taken by the node
    /// ([`State::take_archived`]); never part of a snapshot.
    #[serde(skip)]
    archived: Vec<Archived>,
    /// See [`Genesis::chain`].
    #[serde(default)]
    chain: Option<ChainBinding>,
    /// How many of the vault's deposits were credited: the next must carry
    /// id `chain_deposits + 1`.
    #[serde(default)]
    chain_deposits: u64,
    /// The last one, whose block a follower checks is still on chain.
    #[serde(default)]
    last_chain_deposit: Option<ChainDeposit>,
    /// Chain deposits to did:keys without an account, until they register.
    #[serde(default)]
    unclaimed: BTreeMap<Did, Amount>,
    /// Withdrawals debited and not yet paid by the vault, by id.
    #[serde(default)]
    pending_withdrawals: BTreeMap<u64, PendingWithdrawal>,
    /// Withdrawal ids given out (the last one).
    #[serde(default)]
    withdrawals: u64,
    #[serde(default)]
    subscriptions: BTreeMap<String, subscription::SubscriptionRecord>,
    #[serde(default)]
    bounties: BTreeMap<String, bounty::BountyRecord>,
    #[serde(default)]
    orders: BTreeMap<String, order::OrderRecord>,
}

impl State {
    pub fn new(genesis: Genesis) -> State {
        State {
            operator: genesis.operator,
            clock: Timestamp(0),
            identities: BTreeMap::new(),
            accounts: BTreeMap::new(),
            holds: BTreeMap::new(),
            approvals: BTreeMap::new(),
            expiries: BTreeSet::new(),
            idempotency: BTreeMap::new(),
            idempotency_order: VecDeque::new(),
            next_approval_id: 1,
            totals: Totals::default(),
            channels: BTreeMap::new(),
            network: genesis.network,
            registered_at: BTreeMap::new(),
            listings: BTreeMap::new(),
            provider_listings: BTreeMap::new(),
            rfqs: BTreeMap::new(),
            quotes: BTreeMap::new(),
            tasks: BTreeMap::new(),
            licenses: BTreeMap::new(),
            records: BTreeMap::new(),
            forget_at: BTreeSet::new(),
            archived: Vec::new(),
            chain: genesis.chain,
            chain_deposits: 0,
            last_chain_deposit: None,
            unclaimed: BTreeMap::new(),
            pending_withdrawals: BTreeMap::new(),
            withdrawals: 0,
            subscriptions: BTreeMap::new(),
            bounties: BTreeMap::new(),
            orders: BTreeMap::new(),
        }
    }

    /// Applies one authenticated command at `now`.
    ///
    /// First runs [`State::advance`] to `now`; on success the returned events
    /// start with any expirations that fired. A rejection changes nothing
    /// else. The clock never moves backwards: a `now` earlier than the latest
    /// one seen is treated as the latest one.
    pub fn apply(
        &mut self,
        command: &Authenticated,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let signer = *command.signer();
        if let Command::Tick(_) = command.command() {
            return self.tick(signer, now);
        }
        let mut events = self.advance(now);
        let now = self.clock;
        let outcome = match command.command() {
            Command::RegisterPrincipal(register) => {
                self.register_principal(signer, register, now)?
            }
            Command::RegisterAgent(register) => self.register_agent(signer, register, now)?,
            Command::IssueSession(register) => self.issue_session(signer, register, now)?,
            Command::Revoke(revoke) => self.revoke(signer, revoke, now)?,
            Command::Deposit(deposit) => self.deposit(signer, deposit, command.command())?,
            Command::Withdraw(withdraw) => self.withdraw(signer, withdraw, command.command())?,
            Command::SettleWithdrawal(settle) => self.settle_withdrawal(signer, settle)?,
            Command::ClaimDeposits(claim) => {
                self.claim_chain_deposits(signer, claim, command.command())?
            }
            Command::ChargeMandate(charge) => {
                self.charge_mandate(signer, charge, command.command(), now)?
            }
            Command::Subscribe(subscribe) => self.subscribe(signer, subscribe, now)?,
            Command::CollectSubscription(collect) => {
                self.collect_subscription(signer, collect, now)?
            }
            Command::CancelSubscription(cancel) => self.cancel_subscription(signer, cancel, now)?,
            Command::PostBounty(post) => self.post_bounty(signer, post, now)?,
            Command::SubmitContribution(submit) => self.submit_contribution(signer, submit, now)?,
            Command::ScoreContribution(score) => self.score_contribution(signer, score, now)?,
            Command::PlaceOrder(place) => self.place_order(signer, place, now)?,
            Command::DeliverLeg(deliver) => self.deliver_leg(signer, deliver, now)?,
            Command::ApproveLeg(approve) => self.approve_leg(signer, approve, now)?,
            Command::DeclineLeg(decline) => self.decline_leg(signer, decline, now)?,
            Command::DisputeLeg(dispute) => self.dispute_leg(signer, dispute, now)?,
            Command::ResolveLeg(resolve) => self.resolve_leg(signer, resolve, now)?,
            Command::Transfer(transfer) => {
                self.transfer(signer, transfer, command.command(), now)?
            }
            Command::Hold(hold) => self.hold(signer, hold, now)?,
            Command::Release(release) => self.release(signer, release, now)?,
            Command::Void(void) => self.void(signer, void, now)?,
            Command::Approve(decision) => self.approve(signer, decision)?,
            Command::Decline(decision) => self.decline(signer, decision)?,
            Command::OpenChannel(open) => {
                self.open_channel(signer, open, command.command(), now)?
            }
            Command::TopUpChannel(top_up) => {
                self.top_up_channel(signer, top_up, command.command(), now)?
            }
            Command::CollectChannel(collect) => self.collect_channel(signer, collect, false)?,
            Command::CloseChannel(close) => self.collect_channel(signer, close, true)?,
            Command::StartChannelClose(channel) => {
                self.start_channel_close(signer, channel, now)?
            }
            Command::PublishListing(publish) => self.publish_listing(signer, publish, now)?,
            Command::WithdrawListing(listing) => self.withdraw_listing(signer, listing, now)?,
            Command::RequestQuotes(request) => self.request_quotes(signer, request, now)?,
            Command::SubmitQuote(submit) => self.submit_quote(signer, submit, now)?,
            Command::CounterQuote(counter) => self.counter_quote(signer, counter, now)?,
            Command::AcceptQuote(accept) => self.accept_quote(signer, accept, now)?,
            Command::DeliverTask(deliver) => self.deliver_task(signer, deliver, now)?,
            Command::ApproveTask(approve) => self.approve_task(signer, approve, now)?,
            Command::DisputeTask(dispute) => self.dispute_task(signer, dispute, now)?,
            Command::ResolveDispute(resolve) => self.resolve_dispute(signer, resolve, now)?,
            Command::LicenseDataset(license) => self.license_dataset(signer, license, now)?,
            Command::Tick(_) => unreachable!("ticks return above"),
        };
        assert!(
            !outcome.is_empty(),
            "an accepted command yields at least one event"
        );
        // What a command schedules lies after its own time, so a node that
        // ticks before a batch never sees a time-driven event inside an
        // entry of another command.
        assert!(
            !self.is_due(now),
            "a command schedules nothing at or before its own time"
        );
        self.assert_totals();
        events.extend(outcome);
        Ok(events)
    }

    /// The clock's entry: what `advance` did at its time, by the operator
    /// only, and only when something fell due (an empty tick would be an
    /// entry that records nothing).
    fn tick(&mut self, signer: Did, now: Timestamp) -> Result<Vec<Event>, Rejection> {
        if signer != self.operator {
            return Err(Rejection::NotAuthorized {
                reason: "only the ledger's operator records the clock",
            });
        }
        if !self.is_due(now) {
            return Err(Rejection::NothingDue);
        }
        let events = self.advance(now);
        assert!(!events.is_empty(), "something was due");
        Ok(events)
    }

    /// When the next expiry, deadline or window falls due: a node journals
    /// a [`Command::Tick`] at that time (or at its next batch after it).
    pub fn next_due(&self) -> Option<Timestamp> {
        self.expiries.first().map(|(due, _)| *due)
    }

    /// Whether something has fallen due by `now` (or by the ledger's clock,
    /// if later): what a [`Command::Tick`] at `now` would record.
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.next_due()
            .is_some_and(|due| due <= self.clock.max(now))
    }

    /// Moves the clock to `now`, fires every expiry due by then (holds,
    /// approvals, channels, tasks), forgets the idempotency keys and the
    /// ended records whose retention ended (their views wait in
    /// [`State::take_archived`]). Time alone decides these, so replaying the
    /// same commands at the same times reaches the same state whether or
    /// not the caller advanced the clock in between.
    pub fn advance(&mut self, now: Timestamp) -> Vec<Event> {
        self.clock = self.clock.max(now);
        self.forget_old_keys();
        let mut events = Vec::new();
        while let Some((expires_at, _)) = self.expiries.first() {
            if *expires_at > self.clock {
                break;
            }
            let (_, expiry) = self.expiries.pop_first().expect("first() was Some");
            match expiry {
                Expiry::Hold(hold_id) => {
                    let record = self.holds.get_mut(&hold_id).expect("expiry names a hold");
                    assert_eq!(
                        record.status,
                        HoldStatus::Reserved,
                        "only reserved holds wait to expire"
                    );
                    record.status = HoldStatus::Expired;
                    let (from, amount, charge) = (
                        record.request.from,
                        record.request.amount,
                        record.charge.clone(),
                    );
                    self.forget_later(Forget::Hold(hold_id.clone()));
                    self.refund(&charge);
                    self.unreserve(&from, amount);
                    events.push(Event::HoldExpired { hold_id, from });
                }
                Expiry::Approval(approval_id) => {
                    let record = self
                        .approvals
                        .get_mut(&approval_id)
                        .expect("expiry names an approval");
                    assert_eq!(
                        record.status,
                        ApprovalStatus::Pending,
                        "only pending payments expire"
                    );
                    record.status = ApprovalStatus::Expired;
                    let (from, amount, charge) = (
                        record.transfer.from,
                        record.transfer.amount,
                        record.charge.clone(),
                    );
                    self.forget_later(Forget::Approval(approval_id));
                    self.refund(&charge);
                    self.unreserve(&from, amount);
                    events.push(Event::PaymentExpired { approval_id, from });
                }
                Expiry::Channel(channel_id) => events.push(self.channel_deadline(channel_id)),
                Expiry::Task(task_id) => events.push(self.task_deadline(task_id)),
                Expiry::Bounty(bounty_id) => events.push(self.close_bounty(&bounty_id)),
                Expiry::Order(order_id) => {
                    let clock = self.clock;
                    events.extend(self.order_deadline(order_id, clock));
                }
            }
        }
        self.forget_ended();
        self.assert_totals();
        events
    }

    // ----- reads ---------------------------------------------------------

    /// How many records of each kind the state holds (for monitoring what
    /// the ledger keeps in memory), by name.
    pub fn sizes(&self) -> [(&'static str, usize); 13] {
        [
            ("identities", self.identities.len()),
            ("accounts", self.accounts.len()),
            ("holds", self.holds.len()),
            ("approvals", self.approvals.len()),
            ("expiries", self.expiries.len()),
            ("idempotency_keys", self.idempotency.len()),
            ("channels", self.channels.len()),
            ("listings", self.listings.len()),
            ("rfqs", self.rfqs.len()),
            ("quotes", self.quotes.len()),
            ("tasks", self.tasks.len()),
            ("licenses", self.licenses.len()),
            ("ended_waiting", self.forget_at.len()),
        ]
    }

    pub fn operator(&self) -> Did {
        self.operator
    }

    /// What the ledger was created with.
    pub fn genesis(&self) -> Genesis {
        Genesis {
            operator: self.operator,
            network: self.network,
            chain: self.chain,
        }
    }

    /// The latest time the ledger has seen.
    pub fn clock(&self) -> Timestamp {
        self.clock
    }

    pub fn totals(&self) -> Totals {
        self.totals
    }

    pub fn balance(&self, did: &Did) -> Option<Balance> {
        self.accounts.get(did).map(|account| account.balance)
    }

    /// Every account, in did:key byte order.
    pub fn balances(&self) -> impl Iterator<Item = (&Did, Balance)> {
        self.accounts
            .iter()
            .map(|(did, account)| (did, account.balance))
    }

    /// Every identity and its kind, in did:key byte order.
    pub fn identities(&self) -> impl Iterator<Item = (&Did, IdentityKind)> {
        self.identities
            .iter()
            .map(|(did, identity)| (did, identity.kind()))
    }

    pub fn identity_kind(&self, did: &Did) -> Option<IdentityKind> {
        self.identities.get(did).map(Identity::kind)
    }

    /// Every hold and where it stands, by id.
    pub fn holds(&self) -> impl Iterator<Item = (&str, HoldStatus)> {
        self.holds
            .iter()
            .map(|(id, hold)| (id.as_str(), hold.status))
    }

    /// Every approval and where it stands, by id.
    pub fn approvals(&self) -> impl Iterator<Item = (u64, ApprovalStatus)> {
        self.approvals
            .iter()
            .map(|(id, approval)| (*id, approval.status))
    }

    pub fn hold_status(&self, hold_id: &str) -> Option<HoldStatus> {
        self.holds.get(hold_id).map(|hold| hold.status)
    }

    pub fn approval_status(&self, approval_id: u64) -> Option<ApprovalStatus> {
        self.approvals
            .get(&approval_id)
            .map(|approval| approval.status)
    }

    /// The grant behind an agent or session, with spending and exposure at `now`.
    pub fn grant_status(&self, subject: &Did, now: Timestamp) -> Option<GrantStatus> {
        let delegate = self.identities.get(subject)?.delegate()?;
        let spent = delegate.spent(now.utc_day());
        Some(GrantStatus {
            grant: delegate.grant.clone(),
            principal: delegate.principal,
            revoked_at: delegate.revoked_at,
            active: delegate.check_active(*subject, now).is_ok(),
            spent_today: spent.today,
            spent_total: spent.total,
            remaining_today: delegate
                .grant
                .grant()
                .limits
                .daily_budget
                .saturating_sub(spent.today),
            remaining_total: delegate
                .grant
                .grant()
                .limits
                .total_budget
                .map(|total| total.saturating_sub(spent.total)),
            exposure: self.exposure(subject, now)?,
        })
    }

    /// The most that can still leave through `subject`'s grant before it
    /// expires, even with its key stolen: its own bound, or its agent's when
    /// that is smaller. A revoked grant exposes nothing.
    pub fn exposure(&self, subject: &Did, now: Timestamp) -> Option<Exposure> {
        let delegate = self.identities.get(subject)?.delegate()?;
        let inactive = Exposure {
            amount: Amount::ZERO,
            bound: ExposureBound::Inactive,
        };
        if delegate.revoked_at.is_some() {
            return Some(inactive);
        }
        let own = delegate
            .grant
            .grant()
            .exposure(now, delegate.spent(now.utc_day()));
        let issuer = delegate.issuer();
        match self.identities.get(&issuer) {
            Some(Identity::Agent(_)) => {
                let parent = self
                    .exposure(&issuer, now)
                    .expect("a session's agent is registered");
                if parent.amount < own.amount {
                    let bound = if parent.amount.is_zero() {
                        ExposureBound::Inactive
                    } else {
                        ExposureBound::Parent
                    };
                    return Some(Exposure {
                        amount: parent.amount,
                        bound,
                    });
                }
                Some(own)
            }
            _ => Some(own),
        }
    }

    // ----- identities ----------------------------------------------------

    fn register_principal(
        &mut self,
        signer: Did,
        register: &RegisterPrincipal,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        if register.principal != signer {
            return Err(Rejection::NotAuthorized {
                reason: "a principal registers itself",
            });
        }
        self.check_unregistered(&signer)?;
        self.identities
            .insert(signer, Identity::Principal { agents: Vec::new() });
        let claimed = self.open_account(signer, signer);
        self.registered_at.insert(signer, now);
        let mut events = vec![Event::PrincipalRegistered { principal: signer }];
        events.extend(claimed);
        Ok(events)
    }

    fn register_agent(
        &mut self,
        signer: Did,
        register: &RegisterGrant,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let signed = &register.grant;
        let grant = signed.grant();
        check_grant_document(signer, signed, Role::Agent)?;
        let agents = match self.identities.get(&signer) {
            None => return Err(Rejection::UnknownIdentity { did: signer }),
            Some(Identity::Principal { agents }) => agents,
            Some(_) => {
                return Err(Rejection::NotAuthorized {
                    reason: "only a principal grants an agent mandate",
                });
            }
        };
        self.check_unregistered(&grant.subject)?;
        if grant.check_active(now) == Err(Inactive::Expired) {
            return Err(Rejection::GrantExpired {
                subject: grant.subject,
            });
        }
        if agents.len() >= AGENTS_PER_PRINCIPAL_MAX {
            return Err(Rejection::TooManyDelegations);
        }
        if !signed.verify_signature() {
            return Err(Rejection::InvalidGrantSignature);
        }

        let agent = grant.subject;
        match self.identities.get_mut(&signer) {
            Some(Identity::Principal { agents }) => agents.push(agent),
            _ => unreachable!("checked above: the signer is a principal"),
        }
        self.identities
            .insert(agent, Identity::Agent(new_delegate(signed.clone(), signer)));
        let claimed = self.open_account(agent, signer);
        self.registered_at.insert(agent, now);
        let mut events = vec![Event::AgentRegistered {
            agent,
            principal: signer,
            grant_id: signed.id(),
        }];
        events.extend(claimed);
        Ok(events)
    }

    fn issue_session(
        &mut self,
        signer: Did,
        register: &RegisterGrant,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let signed = &register.grant;
        let grant = signed.grant();
        check_grant_document(signer, signed, Role::Session)?;
        let agent = match self.identities.get(&signer) {
            None => return Err(Rejection::UnknownIdentity { did: signer }),
            Some(Identity::Agent(agent)) => agent,
            Some(_) => {
                return Err(Rejection::NotAuthorized {
                    reason: "only an agent issues session grants",
                });
            }
        };
        agent.check_active(signer, now)?;
        self.check_unregistered(&grant.subject)?;
        if grant.check_active(now) == Err(Inactive::Expired) {
            return Err(Rejection::GrantExpired {
                subject: grant.subject,
            });
        }
        grant
            .check_narrows(agent.grant.grant())
            .map_err(|limit| Rejection::GrantWidens { limit })?;
        let live_sessions: Vec<Did> = agent
            .sessions
            .iter()
            .copied()
            .filter(|session| self.delegate(session).may_still_act(now))
            .collect();
        if live_sessions.len() >= SESSIONS_PER_AGENT_MAX {
            return Err(Rejection::TooManyDelegations);
        }
        if !signed.verify_signature() {
            return Err(Rejection::InvalidGrantSignature);
        }

        let session = grant.subject;
        let principal = agent.principal;
        let agent = self.delegate_mut(&signer);
        agent.sessions = live_sessions;
        agent.sessions.push(session);
        self.identities.insert(
            session,
            Identity::Session(new_delegate(signed.clone(), principal)),
        );
        Ok(vec![Event::SessionIssued {
            session,
            agent: signer,
            grant_id: signed.id(),
        }])
    }

    fn revoke(
        &mut self,
        signer: Did,
        revoke: &Revoke,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let subject = revoke.subject;
        let delegate = match self.identities.get(&subject) {
            None => return Err(Rejection::UnknownIdentity { did: subject }),
            Some(identity) => identity.delegate().ok_or(Rejection::NotAuthorized {
                reason: "a principal's own registration cannot be revoked",
            })?,
        };
        if signer != delegate.issuer() && signer != delegate.principal {
            return Err(Rejection::NotAuthorized {
                reason: "only the grant's issuer or the principal above it may revoke it",
            });
        }
        if delegate.revoked_at.is_some() {
            return Err(Rejection::GrantRevoked { subject });
        }

        let sessions = delegate.sessions.clone();
        self.delegate_mut(&subject).revoked_at = Some(now);
        let mut events = vec![Event::GrantRevoked {
            subject,
            revoked_by: signer,
            cascaded_from: None,
        }];
        let mut revoked = vec![subject];
        for session in sessions {
            let delegate = self.delegate_mut(&session);
            if delegate.revoked_at.is_none() {
                delegate.revoked_at = Some(now);
                revoked.push(session);
                events.push(Event::GrantRevoked {
                    subject: session,
                    revoked_by: signer,
                    cascaded_from: Some(subject),
                });
            }
        }
        events.extend(self.close_channels_of(&revoked, now));
        Ok(events)
    }

    // ----- money in and out ----------------------------------------------

    // ----- payments ------------------------------------------------------

    fn transfer(
        &mut self,
        signer: Did,
        transfer: &Transfer,
        command: &Command,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        check_key("idempotency_key", &transfer.idempotency_key)?;
        check_memo(transfer.memo.as_deref())?;
        check_category_field(transfer.category.as_deref())?;
        check_nonzero(transfer.amount)?;
        if transfer.from == transfer.to {
            return Err(Rejection::SameAccount);
        }
        self.spending_chain(signer, &transfer.from)?;
        if let Some(original) = self.recall(transfer.from, &transfer.idempotency_key, command)? {
            return Ok(original);
        }
        if !self.accounts.contains_key(&transfer.to) {
            return Err(Rejection::UnknownAccount { did: transfer.to });
        }
        let plan = self.plan_spend(
            signer,
            &transfer.from,
            transfer.amount,
            Some(&transfer.to),
            transfer.category.as_deref(),
            now,
        )?;

        self.charge(&plan.charge);
        let outcome = if plan.needs_approval {
            let approval_id = self.next_approval_id;
            self.next_approval_id += 1;
            let expires_at = now
                .checked_add_seconds(APPROVAL_WINDOW_S)
                .expect("clock is bounded");
            self.reserve(&transfer.from, transfer.amount);
            self.approvals.insert(
                approval_id,
                ApprovalRecord {
                    signer,
                    transfer: transfer.clone(),
                    charge: plan.charge,
                    expires_at,
                    status: ApprovalStatus::Pending,
                },
            );
            self.expiries
                .insert((expires_at, Expiry::Approval(approval_id)));
            vec![Event::PaymentPending {
                approval_id,
                from: transfer.from,
                to: transfer.to,
                amount: transfer.amount,
                expires_at,
            }]
        } else {
            self.debit(&transfer.from, transfer.amount);
            self.credit(&transfer.to, transfer.amount);
            vec![transferred(signer, transfer)]
        };
        self.remember(transfer.from, &transfer.idempotency_key, command, &outcome);
        Ok(outcome)
    }

    fn approve(&mut self, signer: Did, decision: &Decision) -> Result<Vec<Event>, Rejection> {
        let record = self.pending_approval(signer, decision.approval_id)?;
        let (original_signer, transfer, expires_at) =
            (record.signer, record.transfer.clone(), record.expires_at);

        self.approvals
            .get_mut(&decision.approval_id)
            .expect("found above")
            .status = ApprovalStatus::Approved;
        self.forget_later(Forget::Approval(decision.approval_id));
        let removed = self
            .expiries
            .remove(&(expires_at, Expiry::Approval(decision.approval_id)));
        assert!(removed, "a pending approval waits in the expiry index");
        self.take_held(&transfer.from, transfer.amount);
        self.credit(&transfer.to, transfer.amount);
        Ok(vec![
            Event::PaymentApproved {
                approval_id: decision.approval_id,
            },
            transferred(original_signer, &transfer),
        ])
    }

    fn decline(&mut self, signer: Did, decision: &Decision) -> Result<Vec<Event>, Rejection> {
        let record = self.pending_approval(signer, decision.approval_id)?;
        let (from, amount, charge, expires_at) = (
            record.transfer.from,
            record.transfer.amount,
            record.charge.clone(),
            record.expires_at,
        );

        self.approvals
            .get_mut(&decision.approval_id)
            .expect("found above")
            .status = ApprovalStatus::Declined;
        self.forget_later(Forget::Approval(decision.approval_id));
        let removed = self
            .expiries
            .remove(&(expires_at, Expiry::Approval(decision.approval_id)));
        assert!(removed, "a pending approval waits in the expiry index");
        self.refund(&charge);
        self.unreserve(&from, amount);
        Ok(vec![Event::PaymentDeclined {
            approval_id: decision.approval_id,
            from,
        }])
    }

    /// A pending approval that `signer` (the owning principal) may decide.
    fn pending_approval(
        &self,
        signer: Did,
        approval_id: u64,
    ) -> Result<&ApprovalRecord, Rejection> {
        let record = self
            .approvals
            .get(&approval_id)
            .ok_or(Rejection::ApprovalNotFound { approval_id })?;
        let owner = self
            .accounts
            .get(&record.transfer.from)
            .expect("approvals spend from accounts")
            .owner;
        if signer != owner {
            return Err(Rejection::NotAuthorized {
                reason: "only the principal that owns the account decides an approval",
            });
        }
        if record.status != ApprovalStatus::Pending {
            return Err(Rejection::ApprovalNotPending { approval_id });
        }
        Ok(record)
    }

    // ----- holds (escrow) ------------------------------------------------

    fn hold(&mut self, signer: Did, hold: &Hold, now: Timestamp) -> Result<Vec<Event>, Rejection> {
        check_key("hold_id", &hold.hold_id)?;
        check_category_field(hold.category.as_deref())?;
        check_nonzero(hold.amount)?;
        let expires_at_max = now
            .checked_add_seconds(HOLD_DURATION_MAX_S)
            .expect("clock is bounded");
        let expires_at = hold.expires_at.unwrap_or(expires_at_max);
        if expires_at <= now || expires_at > expires_at_max {
            return Err(Rejection::InvalidField {
                field: "expires_at",
                reason: "must be in the future and at most 90 days ahead",
            });
        }
        if let Some(existing) = self.holds.get(&hold.hold_id) {
            if existing.creator == signer && existing.request == *hold {
                return Ok(vec![Event::Duplicate {
                    original: existing.outcome.clone(),
                }]);
            }
            return Err(Rejection::IdempotencyConflict {
                key: hold.hold_id.clone(),
            });
        }
        let plan = self.plan_spend(
            signer,
            &hold.from,
            hold.amount,
            None,
            hold.category.as_deref(),
            now,
        )?;

        self.charge(&plan.charge);
        self.reserve(&hold.from, hold.amount);
        let outcome = vec![Event::HoldReserved {
            hold_id: hold.hold_id.clone(),
            from: hold.from,
            amount: hold.amount,
            expires_at,
        }];
        self.holds.insert(
            hold.hold_id.clone(),
            HoldRecord {
                creator: signer,
                request: hold.clone(),
                outcome: outcome.clone(),
                charge: plan.charge,
                expires_at,
                needs_approval: plan.needs_approval,
                status: HoldStatus::Reserved,
            },
        );
        self.expiries
            .insert((expires_at, Expiry::Hold(hold.hold_id.clone())));
        Ok(outcome)
    }

    fn release(
        &mut self,
        signer: Did,
        release: &Release,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let (record, authority) = self.reserved_hold(signer, &release.hold_id, now)?;
        if record.needs_approval && !authority.is_empty() {
            return Err(Rejection::NotAuthorized {
                reason: "the hold is above an approval threshold: only the principal may release it",
            });
        }
        check_splits(&release.splits)?;
        for split in &release.splits {
            if !self.accounts.contains_key(&split.to) {
                return Err(Rejection::UnknownAccount { did: split.to });
            }
            for subject in &authority {
                self.delegate(subject)
                    .grant
                    .grant()
                    .limits
                    .check_payee(&split.to)
                    .map_err(|limit| Rejection::from_limit(limit, *subject, Some(split.to)))?;
            }
        }
        let (from, amount, expires_at) = (
            record.request.from,
            record.request.amount,
            record.expires_at,
        );
        let shares: Vec<u16> = release.splits.iter().map(|split| split.bps).collect();
        let amounts = split_largest_remainder(amount, &shares);

        self.settle_hold(&release.hold_id, expires_at, HoldStatus::Released);
        self.take_held(&from, amount);
        let mut parts = Vec::with_capacity(amounts.len());
        for (split, part) in release.splits.iter().zip(amounts) {
            self.credit(&split.to, part);
            parts.push(Part {
                to: split.to,
                amount: part,
            });
        }
        Ok(vec![Event::HoldReleased {
            hold_id: release.hold_id.clone(),
            from,
            parts,
        }])
    }

    fn void(&mut self, signer: Did, void: &Void, now: Timestamp) -> Result<Vec<Event>, Rejection> {
        let (record, _) = self.reserved_hold(signer, &void.hold_id, now)?;
        let (from, amount, charge, expires_at) = (
            record.request.from,
            record.request.amount,
            record.charge.clone(),
            record.expires_at,
        );

        self.settle_hold(&void.hold_id, expires_at, HoldStatus::Voided);
        self.refund(&charge);
        self.unreserve(&from, amount);
        Ok(vec![Event::HoldVoided {
            hold_id: void.hold_id.clone(),
            from,
        }])
    }

    /// A reserved hold that `signer` may settle, and the grants whose limits
    /// bind the signer (empty for the owning principal). The creator, its
    /// agent (for a session's hold) and the owning principal may settle it.
    fn reserved_hold(
        &self,
        signer: Did,
        hold_id: &str,
        now: Timestamp,
    ) -> Result<(&HoldRecord, Vec<Did>), Rejection> {
        let record = self
            .holds
            .get(hold_id)
            .ok_or_else(|| Rejection::HoldNotFound {
                hold_id: hold_id.to_owned(),
            })?;
        let owner = self
            .accounts
            .get(&record.request.from)
            .expect("holds reserve from accounts")
            .owner;
        let authority: Vec<Did> = if signer == owner {
            Vec::new()
        } else if let Some(position) = record.charge.delegates.iter().position(|d| *d == signer) {
            record.charge.delegates[position..].to_vec()
        } else {
            return Err(Rejection::NotAuthorized {
                reason: "only the hold's creator, its agent or its principal may settle it",
            });
        };
        for subject in &authority {
            self.delegate(subject).check_active(*subject, now)?;
        }
        if record.status != HoldStatus::Reserved {
            return Err(Rejection::HoldNotActive {
                hold_id: hold_id.to_owned(),
            });
        }
        Ok((record, authority))
    }

    fn settle_hold(&mut self, hold_id: &str, expires_at: Timestamp, status: HoldStatus) {
        let record = self.holds.get_mut(hold_id).expect("settled holds exist");
        assert_eq!(
            record.status,
            HoldStatus::Reserved,
            "only a reserved hold settles"
        );
        record.status = status;
        let removed = self
            .expiries
            .remove(&(expires_at, Expiry::Hold(hold_id.to_owned())));
        assert!(removed, "a reserved hold waits in the expiry index");
        self.forget_later(Forget::Hold(hold_id.to_owned()));
    }

    // ----- policy --------------------------------------------------------

    /// Checks a spend of `amount` from `from` signed by `signer`: who may
    /// spend from the account, then every grant of the spending chain from
    /// the signer upwards, then funds.
    fn plan_spend(
        &self,
        signer: Did,
        from: &Did,
        amount: Amount,
        payee: Option<&Did>,
        category: Option<&str>,
        now: Timestamp,
    ) -> Result<SpendPlan, Rejection> {
        let account = self
            .accounts
            .get(from)
            .ok_or(Rejection::UnknownAccount { did: *from })?;
        let delegates = self.spending_chain(signer, from)?;
        let needs_approval = self.check_grants(&delegates, amount, payee, category, now)?;
        check_funds(account.balance, amount)?;
        Ok(SpendPlan {
            charge: Charge {
                delegates,
                day: now.utc_day(),
                amount,
            },
            needs_approval,
        })
    }

    /// Checks a spend of `amount` against every grant of `delegates`
    /// (active, per-payment limit, payees, categories, daily and total
    /// budgets); says whether an approval threshold is passed.
    fn check_grants(
        &self,
        delegates: &[Did],
        amount: Amount,
        payee: Option<&Did>,
        category: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, Rejection> {
        let day = now.utc_day();
        let mut needs_approval = false;
        for subject in delegates {
            let delegate = self.delegate(subject);
            delegate.check_active(*subject, now)?;
            let limits = &delegate.grant.grant().limits;
            if amount > limits.max_per_payment {
                return Err(Rejection::PerPaymentLimitExceeded {
                    subject: *subject,
                    amount,
                    limit: limits.max_per_payment,
                });
            }
            if let Some(payee) = payee {
                limits
                    .check_payee(payee)
                    .map_err(|limit| Rejection::from_limit(limit, *subject, Some(*payee)))?;
            }
            limits
                .check_category(category)
                .map_err(|limit| Rejection::from_limit(limit, *subject, None))?;
            let spent = delegate.spent(day);
            let daily_left = limits.daily_budget.saturating_sub(spent.today);
            if amount > daily_left {
                return Err(Rejection::BudgetExceeded {
                    subject: *subject,
                    budget: Budget::Daily,
                    amount,
                    remaining: daily_left,
                });
            }
            if let Some(total) = limits.total_budget {
                let total_left = total.saturating_sub(spent.total);
                if amount > total_left {
                    return Err(Rejection::BudgetExceeded {
                        subject: *subject,
                        budget: Budget::Total,
                        amount,
                        remaining: total_left,
                    });
                }
            }
            needs_approval |= limits
                .approval_threshold
                .is_some_and(|threshold| amount > threshold);
            needs_approval |= limits.daily_approval_threshold.is_some_and(|threshold| {
                spent
                    .today
                    .checked_add(amount)
                    .is_none_or(|today| today > threshold)
            });
        }
        Ok(needs_approval)
    }

    /// The grants that bind `signer` when it acts for the account `from`
    /// (session and agent, agent alone, or none for the owning principal),
    /// or why it may not act for it.
    fn spending_chain(&self, signer: Did, from: &Did) -> Result<Vec<Did>, Rejection> {
        let account = self
            .accounts
            .get(from)
            .ok_or(Rejection::UnknownAccount { did: *from })?;
        match self.identities.get(&signer) {
            None => Err(Rejection::UnknownIdentity { did: signer }),
            Some(Identity::Principal { .. }) if account.owner == signer => Ok(Vec::new()),
            Some(Identity::Principal { .. }) => Err(Rejection::NotAuthorized {
                reason: "a principal spends only from its own account and its agents' accounts",
            }),
            Some(Identity::Agent(_)) if *from == signer => Ok(vec![signer]),
            Some(Identity::Agent(_)) => Err(Rejection::NotAuthorized {
                reason: "an agent spends only from its own account",
            }),
            Some(Identity::Session(session)) if *from == session.issuer() => {
                Ok(vec![signer, session.issuer()])
            }
            Some(Identity::Session(_)) => Err(Rejection::NotAuthorized {
                reason: "a session spends only from its agent's account",
            }),
        }
    }

    /// Counts a planned spend against every budget of its chain.
    fn charge(&mut self, charge: &Charge) {
        for subject in &charge.delegates {
            let delegate = self.delegate_mut(subject);
            let limits = delegate.grant.grant().limits.clone();
            let today = delegate.spent_by_day.entry(charge.day).or_default();
            *today = today
                .checked_add(charge.amount)
                .expect("bounded by the daily budget");
            assert!(
                *today <= limits.daily_budget,
                "daily budget exceeded for {subject}"
            );
            delegate.spent_total = delegate
                .spent_total
                .checked_add(charge.amount)
                .expect("bounded by deposits");
            if let Some(total) = limits.total_budget {
                assert!(
                    delegate.spent_total <= total,
                    "total budget exceeded for {subject}"
                );
            }
        }
    }

    /// Gives back exactly what [`State::charge`] took.
    fn refund(&mut self, charge: &Charge) {
        for subject in &charge.delegates {
            let delegate = self.delegate_mut(subject);
            let day = delegate
                .spent_by_day
                .get_mut(&charge.day)
                .expect("a refund follows its charge");
            *day = day
                .checked_sub(charge.amount)
                .expect("a refund never exceeds its charge");
            if day.is_zero() {
                delegate.spent_by_day.remove(&charge.day);
            }
            delegate.spent_total = delegate
                .spent_total
                .checked_sub(charge.amount)
                .expect("a refund never exceeds its charge");
        }
    }

    // ----- idempotency ---------------------------------------------------

    /// The original outcome when `key` was already used in `scope` for this
    /// exact command; a conflict when it was used for another.
    ///
    /// A key's scope is the account the money leaves (the operator, for a
    /// deposit): an agent and each of its sessions share one key space, so
    /// a retry through another key of the same account never pays twice.
    /// Callers check that the signer may act for the account first, so a
    /// stranger learns nothing from a key.
    fn recall(
        &self,
        scope: Did,
        key: &str,
        command: &Command,
    ) -> Result<Option<Vec<Event>>, Rejection> {
        match self.idempotency.get(&(scope, key.to_owned())) {
            None => Ok(None),
            Some(remembered) if remembered.command == *command => {
                Ok(Some(vec![Event::Duplicate {
                    original: remembered.outcome.clone(),
                }]))
            }
            Some(_) => Err(Rejection::IdempotencyConflict {
                key: key.to_owned(),
            }),
        }
    }

    fn remember(&mut self, scope: Did, key: &str, command: &Command, outcome: &[Event]) {
        let at = self.clock;
        let previous = self.idempotency.insert(
            (scope, key.to_owned()),
            Remembered {
                command: command.clone(),
                outcome: outcome.to_vec(),
                at,
            },
        );
        assert!(previous.is_none(), "an idempotency key is remembered once");
        self.idempotency_order
            .push_back((at, scope, key.to_owned()));
    }

    /// Forgets the keys first used `IDEMPOTENCY_RETENTION_S` or more before
    /// the clock.
    fn forget_old_keys(&mut self) {
        while let Some((at, _, _)) = self.idempotency_order.front() {
            if at.0.saturating_add(IDEMPOTENCY_RETENTION_S) > self.clock.0 {
                break;
            }
            let (_, signer, key) = self
                .idempotency_order
                .pop_front()
                .expect("front() was Some");
            let forgotten = self.idempotency.remove(&(signer, key));
            assert!(forgotten.is_some(), "the order lists remembered keys");
        }
    }

    // ----- identities and accounts ---------------------------------------

    /// Checks that `did` may register: it is new, and it is not the
    /// operator, which keeps the ledger and holds no account of its own.
    fn check_unregistered(&self, did: &Did) -> Result<(), Rejection> {
        if *did == self.operator {
            return Err(Rejection::NotAuthorized {
                reason: "the node operator keeps the ledger: it is not a principal, an agent or a session",
            });
        }
        if self.identities.contains_key(did) {
            return Err(Rejection::AlreadyRegistered { did: *did });
        }
        Ok(())
    }

    /// The principal at the root of `did`'s owner tree: itself for a
    /// principal, the principal above an agent or a session. `None` for an
    /// unregistered key (and the operator).
    pub fn owner_root(&self, did: &Did) -> Option<Did> {
        match self.identities.get(did)? {
            Identity::Principal { .. } => Some(*did),
            Identity::Agent(delegate) | Identity::Session(delegate) => Some(delegate.principal),
        }
    }

    /// Checks that `did` may still act in a role it was named to (arbiter,
    /// validator): registered, and every grant from it up to its principal
    /// live now, so a revocation or an expiry ends every role at once.
    fn check_role_live(&self, did: Did, now: Timestamp) -> Result<(), Rejection> {
        if self.owner_root(&did).is_none() {
            return Err(Rejection::UnknownIdentity { did });
        }
        for subject in self.grant_chain(did) {
            self.delegate(&subject).check_active(subject, now)?;
        }
        Ok(())
    }

    /// The grants from `did` up to its principal: session and agent, agent
    /// alone, none for a principal or an unregistered key.
    fn grant_chain(&self, did: Did) -> Vec<Did> {
        let mut chain = Vec::new();
        let mut subject = did;
        while let Some(delegate) = self.identities.get(&subject).and_then(Identity::delegate) {
            chain.push(subject);
            subject = delegate.issuer();
        }
        chain
    }

    /// Checks every recipient of money charged to `delegates` against their
    /// payee lists: whoever receives a spender's money, by a transfer, a
    /// payout split, a licence share or a slashed stake, is a payee its
    /// mandate allows.
    fn check_payees<'a>(
        &self,
        delegates: &[Did],
        payees: impl IntoIterator<Item = &'a Did>,
    ) -> Result<(), Rejection> {
        for payee in payees {
            for subject in delegates {
                self.delegate(subject)
                    .grant
                    .grant()
                    .limits
                    .check_payee(payee)
                    .map_err(|limit| Rejection::from_limit(limit, *subject, Some(*payee)))?;
            }
        }
        Ok(())
    }

    fn delegate(&self, subject: &Did) -> &Delegate {
        self.identities
            .get(subject)
            .and_then(Identity::delegate)
            .expect("the subject is a registered agent or session")
    }

    fn delegate_mut(&mut self, subject: &Did) -> &mut Delegate {
        self.identities
            .get_mut(subject)
            .and_then(Identity::delegate_mut)
            .expect("the subject is a registered agent or session")
    }

    /// Opens `did`'s account, with any chain deposits kept for it when the
    /// key opened its own account (a principal registering itself; an
    /// agent's account belongs to whoever registered it).
    #[must_use = "the claim's event belongs to the command's outcome"]
    fn open_account(&mut self, did: Did, owner: Did) -> Option<Event> {
        let previous = self.accounts.insert(
            did,
            Account {
                balance: Balance::default(),
                owner,
            },
        );
        assert!(previous.is_none(), "an account opens once");
        if did == owner {
            self.claim_deposits(did)
        } else {
            None
        }
    }

    fn account_mut(&mut self, did: &Did) -> &mut Account {
        self.accounts
            .get_mut(did)
            .expect("money moves between existing accounts")
    }

    // ----- the only places money moves -----------------------------------

    /// Adds to `to`'s available money. Cannot overflow: every balance is at
    /// most the total deposited, which deposits keep below `Amount::MAX`.
    fn credit(&mut self, to: &Did, amount: Amount) {
        let account = self.account_mut(to);
        account.balance.available = account
            .balance
            .available
            .checked_add(amount)
            .expect("balances ≤ deposits");
        self.totals.available = self
            .totals
            .available
            .checked_add(amount)
            .expect("balances ≤ deposits");
    }

    fn debit(&mut self, from: &Did, amount: Amount) {
        let account = self.account_mut(from);
        account.balance.available = account
            .balance
            .available
            .checked_sub(amount)
            .expect("funds checked before debit");
        self.totals.available = self
            .totals
            .available
            .checked_sub(amount)
            .expect("totals cover every account");
    }

    fn reserve(&mut self, from: &Did, amount: Amount) {
        self.debit(from, amount);
        let account = self.account_mut(from);
        account.balance.held = account
            .balance
            .held
            .checked_add(amount)
            .expect("balances ≤ deposits");
        self.totals.held = self
            .totals
            .held
            .checked_add(amount)
            .expect("balances ≤ deposits");
    }

    fn take_held(&mut self, from: &Did, amount: Amount) {
        let account = self.account_mut(from);
        account.balance.held = account
            .balance
            .held
            .checked_sub(amount)
            .expect("a hold takes only what it reserved");
        self.totals.held = self
            .totals
            .held
            .checked_sub(amount)
            .expect("totals cover every account");
    }

    fn unreserve(&mut self, from: &Did, amount: Amount) {
        self.take_held(from, amount);
        self.credit(from, amount);
    }

    /// Conservation, in O(1): available + held + unclaimed == deposited −
    /// withdrawn.
    fn assert_totals(&self) {
        let in_ledger = self
            .totals
            .deposited
            .checked_sub(self.totals.withdrawn)
            .expect("withdrawn ≤ deposited");
        let accounted = self
            .totals
            .available
            .checked_add(self.totals.held)
            .and_then(|sum| sum.checked_add(self.totals.unclaimed))
            .expect("balances ≤ deposits");
        assert_eq!(accounted, in_ledger, "money was created or destroyed");
    }

    /// Checks every invariant against the full state, in O(n). For tests and
    /// the simulator; [`State::apply`] asserts the O(1) ones on every call.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.check_money_invariants()?;
        self.check_channel_books()?;
        self.check_budget_invariants()?;
        self.check_idempotency_invariants()?;
        self.check_retention_invariants()?;
        self.check_authority_invariants()
    }

    /// Mandates that bind: the operator is no identity; every session that
    /// may still act (a future-dated one included) is listed under its
    /// agent, and a revoked agent's sessions are revoked; every live task's
    /// arbiter and validator sit outside both parties' owner trees, and its
    /// payouts and stake go to payees the spenders' mandates allow; no open
    /// channel outlives, or survives the revocation of, a grant above its
    /// opener or voucher key.
    pub fn check_authority_invariants(&self) -> Result<(), InvariantViolation> {
        let fail = |message: String| Err(InvariantViolation(message));
        if self.identities.contains_key(&self.operator)
            || self.accounts.contains_key(&self.operator)
        {
            return fail("the operator is registered as an identity".into());
        }
        for (did, identity) in &self.identities {
            let Identity::Session(session) = identity else {
                continue;
            };
            let agent = self.delegate(&session.issuer());
            if session.may_still_act(self.clock) && !agent.sessions.contains(did) {
                return fail(format!(
                    "session {did} may still act but its agent does not list it"
                ));
            }
            // A session expired before its agent's revocation needs none.
            let cascaded = agent
                .revoked_at
                .is_some_and(|at| session.grant.grant().expires_at > at);
            if cascaded && session.revoked_at.is_none() {
                return fail(format!("session {did} outlived its agent's revocation"));
            }
        }
        self.check_task_authority()?;
        self.check_channel_authority()
    }

    /// Every remembered key is listed once in first-use order, with its
    /// time, and none is older than the retention.
    pub fn check_idempotency_invariants(&self) -> Result<(), InvariantViolation> {
        let fail = |message: String| Err(InvariantViolation(message));
        if self.idempotency_order.len() != self.idempotency.len() {
            return fail(format!(
                "{} keys remembered, {} in the order",
                self.idempotency.len(),
                self.idempotency_order.len()
            ));
        }
        let mut previous = Timestamp(0);
        for (at, signer, key) in &self.idempotency_order {
            let listed = self.idempotency.get(&(*signer, key.clone()));
            if listed.is_none_or(|remembered| remembered.at != *at) || *at < previous {
                return fail(format!("key {key} of {signer} is out of order"));
            }
            if at.0.saturating_add(IDEMPOTENCY_RETENTION_S) <= self.clock.0 {
                return fail(format!("key {key} of {signer} outlived its retention"));
            }
            previous = *at;
        }
        Ok(())
    }

    /// Conservation and holds, in O(accounts + reserved holds + pending
    /// approvals): account sums equal the totals; available + held ==
    /// deposited − withdrawn; each account's held money is exactly its
    /// reserved holds and pending approvals (so none is missing from the
    /// expiry index).
    pub fn check_money_invariants(&self) -> Result<(), InvariantViolation> {
        let fail = |message: String| Err(InvariantViolation(message));
        let mut available = 0u128;
        let mut held = 0u128;
        for account in self.accounts.values() {
            available += account.balance.available.atomic();
            held += account.balance.held.atomic();
        }
        if available != self.totals.available.atomic() || held != self.totals.held.atomic() {
            return fail(format!(
                "account sums {available}/{held} differ from totals {:?}",
                self.totals
            ));
        }
        let unclaimed: u128 = self.unclaimed.values().map(|a| a.atomic()).sum();
        let pending: u128 = self
            .pending_withdrawals
            .values()
            .map(|w| w.amount.atomic())
            .sum();
        if unclaimed != self.totals.unclaimed.atomic()
            || pending != self.totals.pending_withdrawals.atomic()
        {
            return fail(format!(
                "unclaimed {unclaimed} and pending {pending} differ from totals {:?}",
                self.totals
            ));
        }
        if available + held + unclaimed
            != self.totals.deposited.atomic() - self.totals.withdrawn.atomic()
        {
            return fail(format!(
                "balances + holds + unclaimed != deposits − withdrawals: {:?}",
                self.totals
            ));
        }
        if pending > self.totals.withdrawn.atomic()
            // Kept deposits wait for a key that has not opened its own
            // account (an agent's belongs to its principal).
            || self.unclaimed.keys().any(|did| {
                self.accounts
                    .get(did)
                    .is_some_and(|account| account.owner == *did)
            })
            || (self.chain.is_none() && (unclaimed != 0 || self.withdrawals != 0))
            || self
                .pending_withdrawals
                .keys()
                .any(|id| *id == 0 || *id > self.withdrawals)
        {
            return fail(format!(
                "chain books out of shape: {:?}, {} withdrawal ids",
                self.totals, self.withdrawals
            ));
        }
        let mut reserved: BTreeMap<Did, u128> = BTreeMap::new();
        for (expires_at, expiry) in &self.expiries {
            let (from, amount) = match expiry {
                Expiry::Hold(hold_id) => {
                    let hold = &self.holds[hold_id];
                    if hold.status != HoldStatus::Reserved || hold.expires_at != *expires_at {
                        return fail(format!(
                            "hold {hold_id} in the expiry index is {:?}",
                            hold.status
                        ));
                    }
                    (hold.request.from, hold.request.amount)
                }
                Expiry::Approval(approval_id) => {
                    let approval = &self.approvals[approval_id];
                    if approval.status != ApprovalStatus::Pending
                        || approval.expires_at != *expires_at
                    {
                        return fail(format!(
                            "approval {approval_id} in the expiry index is {:?}",
                            approval.status
                        ));
                    }
                    (approval.transfer.from, approval.transfer.amount)
                }
                Expiry::Channel(channel_id) => {
                    let channel = &self.channels[channel_id];
                    if channel.deadline() != Some(*expires_at) {
                        return fail(format!(
                            "channel {channel_id} in the expiry index is {:?}",
                            channel.status
                        ));
                    }
                    (channel.request.from, channel.remaining())
                }
                Expiry::Task(task_id) => {
                    let task = &self.tasks[task_id];
                    if task.deadline() != Some(*expires_at) {
                        return fail(format!(
                            "task {task_id} in the expiry index is {}",
                            task.status.name()
                        ));
                    }
                    task.escrow()
                }
                Expiry::Bounty(bounty_id) => {
                    let bounty = &self.bounties[bounty_id];
                    if bounty.deadline() != Some(*expires_at) {
                        return fail(format!("bounty {bounty_id} in the expiry index is closed"));
                    }
                    bounty.escrow()
                }
                Expiry::Order(order_id) => {
                    let order = &self.orders[order_id];
                    if order.deadline() != Some(*expires_at) {
                        return fail(format!(
                            "order {order_id} waits in the expiry index at {expires_at}, not at {:?}",
                            order.deadline()
                        ));
                    }
                    order.escrow()
                }
            };
            *reserved.entry(from).or_default() += amount.atomic();
        }
        for (provider, stake) in self.stakes_held() {
            *reserved.entry(provider).or_default() += stake.atomic();
        }
        let waiting = self
            .tasks
            .values()
            .filter(|task| task.deadline().is_some())
            .count();
        let indexed = self
            .expiries
            .iter()
            .filter(|(_, expiry)| matches!(expiry, Expiry::Task(_)))
            .count();
        if waiting != indexed {
            return fail(format!(
                "{waiting} tasks hold money but {indexed} wait in the expiry index"
            ));
        }
        // Every bounty and order that holds money waits in the index (the
        // loop above counted what those entries hold).
        let open_bounties = self.bounties.values().filter(|b| b.deadline().is_some());
        let open_orders = self.orders.values().filter(|o| !o.escrow().1.is_zero());
        let indexed = self
            .expiries
            .iter()
            .filter(|(_, expiry)| matches!(expiry, Expiry::Bounty(_) | Expiry::Order(_)))
            .count();
        if open_bounties.count() + open_orders.count() != indexed {
            return fail("a bounty or an order holds money outside the expiry index".to_owned());
        }
        for (did, account) in &self.accounts {
            let expected = reserved.get(did).copied().unwrap_or(0);
            if account.balance.held.atomic() != expected {
                return fail(format!(
                    "{did} holds {} but its holds and approvals sum to {expected}",
                    account.balance.held.atomic()
                ));
            }
        }
        Ok(())
    }

    /// No grant ever spent above its daily or total budget, and each grant's
    /// daily spending adds up to its total. O(grants × days spent).
    pub fn check_budget_invariants(&self) -> Result<(), InvariantViolation> {
        let fail = |message: String| Err(InvariantViolation(message));
        for (did, identity) in &self.identities {
            let Some(delegate) = identity.delegate() else {
                continue;
            };
            let limits = &delegate.grant.grant().limits;
            let mut sum = 0u128;
            for (day, spent) in &delegate.spent_by_day {
                if *spent > limits.daily_budget {
                    return fail(format!(
                        "{did} spent {spent} on day {day}, above its daily budget"
                    ));
                }
                sum += spent.atomic();
            }
            if sum != delegate.spent_total.atomic() {
                return fail(format!(
                    "{did}'s daily spending does not add up to its total"
                ));
            }
            if limits
                .total_budget
                .is_some_and(|total| delegate.spent_total > total)
            {
                return fail(format!("{did} spent above its total budget"));
            }
        }
        Ok(())
    }
}

/// Maps whose keys are not strings, written as a list of `[key, value]`
/// pairs so that JSON can carry them.
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        let pairs = Vec::<(K, V)>::deserialize(deserializer)?;
        Ok(pairs.into_iter().collect())
    }
}

/// The version of the snapshot format [`State::to_snapshot`] writes.
pub const SNAPSHOT_VERSION: u32 = 4;

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
struct SnapshotEnvelope<S> {
    version: u32,
    state: S,
}

/// Why snapshot bytes cannot be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    #[error("snapshot version {0} is not one this build reads")]
    UnknownVersion(u32),
    #[error("snapshot is malformed: {0}")]
    Malformed(String),
    #[error("snapshot breaks a ledger invariant: {0}")]
    Invariant(#[from] InvariantViolation),
}

impl State {
    /// The whole ledger as versioned bytes (JSON), for snapshots.
    pub fn to_snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_snapshot(&mut out);
        out
    }

    /// [`State::to_snapshot`] into `out`, replacing what it held: a caller
    /// that snapshots again and again reuses one buffer instead of
    /// allocating (and growing) one the size of the state each time.
    pub fn write_snapshot(&self, out: &mut Vec<u8>) {
        out.clear();
        serde_json::to_writer(
            &mut *out,
            &SnapshotEnvelope {
                version: SNAPSHOT_VERSION,
                state: self,
            },
        )
        .expect("the ledger state is representable as JSON");
    }

    /// Loads a snapshot written by [`State::to_snapshot`], checking every
    /// invariant before trusting it (pair assertion: checked before writing,
    /// checked again after reading).
    pub fn from_snapshot(bytes: &[u8]) -> Result<State, SnapshotError> {
        #[derive(Deserialize, schemars::JsonSchema)]
        struct Version {
            version: u32,
        }
        let version: Version =
            serde_json::from_slice(bytes).map_err(|e| SnapshotError::Malformed(e.to_string()))?;
        if version.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::UnknownVersion(version.version));
        }
        let envelope: SnapshotEnvelope<State> =
            serde_json::from_slice(bytes).map_err(|e| SnapshotError::Malformed(e.to_string()))?;
        envelope.state.check_invariants()?;
        Ok(envelope.state)
    }
}

fn new_delegate(grant: SignedGrant, principal: Did) -> Delegate {
    Delegate {
        grant,
        principal,
        revoked_at: None,
        spent_total: Amount::ZERO,
        spent_by_day: BTreeMap::new(),
        sessions: Vec::new(),
    }
}

fn transferred(signer: Did, transfer: &Transfer) -> Event {
    Event::Transferred {
        from: transfer.from,
        to: transfer.to,
        amount: transfer.amount,
        signer,
        memo: transfer.memo.clone(),
        category: transfer.category.clone(),
    }
}

/// Checks of a grant document that need no ledger state.
fn check_grant_document(signer: Did, signed: &SignedGrant, role: Role) -> Result<(), Rejection> {
    let grant = signed.grant();
    if grant.issuer != signer {
        return Err(Rejection::NotAuthorized {
            reason: "a grant is submitted by its issuer",
        });
    }
    if grant.role != role {
        let reason = match role {
            Role::Agent => "must be \"agent\" to register an agent",
            Role::Session => "must be \"session\" to issue a session",
        };
        return Err(Rejection::InvalidGrant(InvalidGrant {
            field: "role",
            reason,
        }));
    }
    grant.validate().map_err(Rejection::InvalidGrant)
}

fn check_funds(balance: Balance, amount: Amount) -> Result<(), Rejection> {
    if balance.available < amount {
        return Err(Rejection::InsufficientFunds {
            available: balance.available,
            required: amount,
        });
    }
    Ok(())
}

fn check_nonzero(amount: Amount) -> Result<(), Rejection> {
    if amount.is_zero() {
        return Err(Rejection::AmountZero);
    }
    Ok(())
}

fn check_key(field: &'static str, key: &str) -> Result<(), Rejection> {
    let valid = !key.is_empty()
        && key.len() <= KEY_BYTES_MAX
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
    if !valid {
        return Err(Rejection::InvalidField {
            field,
            reason: "must be 1-64 characters of A-Z, a-z, 0-9, '_', '.', ':', '-'",
        });
    }
    Ok(())
}

fn check_memo(memo: Option<&str>) -> Result<(), Rejection> {
    match memo {
        Some(memo) if memo.len() > MEMO_BYTES_MAX || !crate::text::is_plain(memo) => {
            Err(Rejection::InvalidField {
                field: "memo",
                reason: "must be at most 256 bytes without control, bidirectional or invisible characters",
            })
        }
        _ => Ok(()),
    }
}

fn check_category_field(category: Option<&str>) -> Result<(), Rejection> {
    match category {
        Some(category) if !is_category(category) => Err(Rejection::InvalidField {
            field: "category",
            reason: "must be 1-32 characters of a-z, 0-9, '_', '.', '-'",
        }),
        _ => Ok(()),
    }
}

fn check_splits(splits: &[crate::command::Split]) -> Result<(), Rejection> {
    if splits.is_empty() || splits.len() > SPLIT_PARTS_MAX {
        return Err(Rejection::InvalidSplit {
            reason: "a release names 1 to 32 payees",
        });
    }
    if splits.iter().any(|split| split.bps == 0) {
        return Err(Rejection::InvalidSplit {
            reason: "every share must be above zero",
        });
    }
    let sum: u32 = splits.iter().map(|split| u32::from(split.bps)).sum();
    if sum != u32::from(BPS_WHOLE) {
        return Err(Rejection::InvalidSplit {
            reason: "shares must sum to 10000 basis points",
        });
    }
    let payees: BTreeSet<Did> = splits.iter().map(|split| split.to).collect();
    if payees.len() != splits.len() {
        return Err(Rejection::InvalidSplit {
            reason: "a payee appears twice",
        });
    }
    Ok(())
}
