//! Why the ledger refused a command: one variant per reason, each with a
//! stable machine code, the offending field and a message a person
//! understands. A rejected command changes nothing but the clock.

use crate::amount::Amount;
use crate::channel::ChannelId;
use crate::did::Did;
use crate::grant::{InvalidGrant, Limit};

/// Which budget a spend would exceed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    Daily,
    Total,
}

impl Budget {
    fn as_str(self) -> &'static str {
        match self {
            Budget::Daily => "daily",
            Budget::Total => "total",
        }
    }
}

/// A refused command. Codes are stable API: add variants, never rename codes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    #[error("the signature does not match the command and the signer's key")]
    InvalidSignature,
    #[error("{field} is invalid: {reason}")]
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
    #[error("{0}")]
    InvalidGrant(InvalidGrant),
    #[error("the grant's signature is not its issuer's")]
    InvalidGrantSignature,
    #[error("{did} is not registered")]
    UnknownIdentity { did: Did },
    #[error("{did} has no account")]
    UnknownAccount { did: Did },
    #[error("{did} is already registered; an identity registers once")]
    AlreadyRegistered { did: Did },
    #[error("not allowed: {reason}")]
    NotAuthorized { reason: &'static str },
    #[error("only the ledger operator may deposit")]
    NotOperator,
    #[error("the grant of {subject} is not valid yet")]
    GrantNotYetValid { subject: Did },
    #[error("the grant of {subject} has expired")]
    GrantExpired { subject: Did },
    #[error("the grant of {subject} has been revoked")]
    GrantRevoked { subject: Did },
    #[error("the new grant widens its parent's {}: a grant may only narrow the one above it", limit.as_str())]
    GrantWidens { limit: Limit },
    #[error("{amount} is above the per-payment limit of {limit} set for {subject}")]
    PerPaymentLimitExceeded {
        subject: Did,
        amount: Amount,
        limit: Amount,
    },
    #[error("{amount} would exceed the {} budget of {subject}: {remaining} left", budget.as_str())]
    BudgetExceeded {
        subject: Did,
        budget: Budget,
        amount: Amount,
        remaining: Amount,
    },
    #[error("{payee} is not among the payees the grant of {subject} allows")]
    PayeeNotAllowed { subject: Did, payee: Did },
    #[error("{payee} is on the deny list of the grant of {subject}")]
    PayeeDenied { subject: Did, payee: Did },
    #[error("the grant of {subject} does not allow this category")]
    CategoryNotAllowed { subject: Did },
    #[error("insufficient funds: {available} available, {required} required")]
    InsufficientFunds { available: Amount, required: Amount },
    #[error("the amount must be greater than zero")]
    AmountZero,
    #[error("the amount would overflow the ledger's arithmetic")]
    AmountOverflow,
    #[error("payer and payee are the same account")]
    SameAccount,
    #[error("idempotency key {key:?} was already used for a different command")]
    IdempotencyConflict { key: String },
    #[error("no hold with id {hold_id:?}")]
    HoldNotFound { hold_id: String },
    #[error("hold {hold_id:?} is no longer reserved")]
    HoldNotActive { hold_id: String },
    #[error("no pending payment with approval id {approval_id}")]
    ApprovalNotFound { approval_id: u64 },
    #[error("payment {approval_id} is no longer waiting for approval")]
    ApprovalNotPending { approval_id: u64 },
    #[error("invalid split: {reason}")]
    InvalidSplit { reason: &'static str },
    #[error("too many live sessions or agents under one identity")]
    TooManyDelegations,
    #[error("no channel with id {channel_id}")]
    ChannelNotFound { channel_id: ChannelId },
    #[error("channel {channel_id} is closed")]
    ChannelClosed { channel_id: ChannelId },
    #[error("channel {channel_id} has expired")]
    ChannelExpired { channel_id: ChannelId },
    #[error("channel {channel_id} is closing: it takes no more money")]
    ChannelClosing { channel_id: ChannelId },
    #[error(
        "the voucher for sub-channel {sub_channel_id:?} is not signed by the channel's voucher key"
    )]
    VoucherSignatureInvalid { sub_channel_id: String },
    #[error(
        "the voucher for sub-channel {sub_channel_id:?} is not above the one already redeemed (nonce {nonce}, amount {amount})"
    )]
    VoucherStale {
        sub_channel_id: String,
        nonce: u64,
        amount: Amount,
    },
    #[error("the vouchers claim {claimed} in all but the channel holds {deposit}")]
    ChannelExhausted { deposit: Amount, claimed: Amount },
    #[error("no listing with id {listing_id:?}")]
    ListingNotFound { listing_id: String },
    #[error("listing {listing_id:?} is withdrawn")]
    ListingWithdrawn { listing_id: String },
    #[error("listing {listing_id:?} still has {open_tasks} unsettled task(s); settle them first")]
    ListingBusy { listing_id: String, open_tasks: u32 },
    #[error("no request for quotes with id {rfq_id:?}")]
    RfqNotFound { rfq_id: String },
    #[error("request for quotes {rfq_id:?} takes no more quotes: {reason}")]
    RfqClosed {
        rfq_id: String,
        reason: &'static str,
    },
    #[error("no quote with id {quote_id:?}")]
    QuoteNotFound { quote_id: String },
    #[error("quote {quote_id:?} is no longer open")]
    QuoteNotOpen { quote_id: String },
    #[error("the last offer on quote {quote_id:?} is already this side's: wait for the other side")]
    OfferOutOfTurn { quote_id: String },
    #[error("quote {quote_id:?} has had its {rounds} offers; accept it or let it go")]
    QuoteRoundsExhausted { quote_id: String, rounds: u8 },
    #[error("{price} is above the request's budget of {budget_max}")]
    PriceAboveBudget { price: Amount, budget_max: Amount },
    #[error("no task with id {task_id:?}")]
    TaskNotFound { task_id: String },
    #[error("task {task_id:?} is {status}; this needs it {expected}")]
    TaskWrongState {
        task_id: String,
        status: &'static str,
        expected: &'static str,
    },
    #[error("task {task_id:?} names no arbiter, so it cannot be disputed")]
    NoArbiter { task_id: String },
    #[error("only the arbiter named in the terms of task {task_id:?} may rule on it")]
    NotArbiter { task_id: String },
    #[error("the result hash does not match what was delivered for task {task_id:?}")]
    ResultHashMismatch { task_id: String },
    #[error("no subscription with id {subscription_id:?}")]
    SubscriptionNotFound { subscription_id: String },
    #[error("subscription {subscription_id:?} is {status}: nothing more is collected")]
    SubscriptionNotActive {
        subscription_id: String,
        status: &'static str,
    },
    #[error(
        "subscription {subscription_id:?} was already collected in this period ({period_index}); the next period begins at {next_at}"
    )]
    SubscriptionAlreadyCollected {
        subscription_id: String,
        period_index: u64,
        next_at: crate::time::Timestamp,
    },
    #[error("{amount} is above the {limit} a period of this subscription allows")]
    SubscriptionAmountExceeded { amount: Amount, limit: Amount },
    #[error("{from} has {max} live subscriptions, the most one account may pay")]
    TooManySubscriptions { from: Did, max: usize },
    #[error("bounty {bounty_id:?} already has a contribution from this contributor's side")]
    AlreadyContributed { bounty_id: String },
    #[error("no bounty with id {bounty_id:?}")]
    BountyNotFound { bounty_id: String },
    #[error("bounty {bounty_id:?} is {status}; this needs it {expected}")]
    BountyWrongState {
        bounty_id: String,
        status: &'static str,
        expected: &'static str,
    },
    #[error("bounty {bounty_id:?} has all its contributions")]
    BountyFull { bounty_id: String },
    #[error("bounty {bounty_id:?} has no contribution {contribution_id:?}")]
    ContributionNotFound {
        bounty_id: String,
        contribution_id: String,
    },
    #[error("contribution {contribution_id:?} is already scored")]
    ContributionScored { contribution_id: String },
    #[error("only the validator named by bounty {bounty_id:?} scores its contributions")]
    NotValidator { bounty_id: String },
    #[error("no order with id {order_id:?}")]
    OrderNotFound { order_id: String },
    #[error("leg {leg} of order {order_id:?} is {status}; this needs it {expected}")]
    LegWrongState {
        order_id: String,
        leg: u8,
        status: &'static str,
        expected: &'static str,
    },
    #[error(
        "{amount} is above the approval threshold of {subject}: only the principal may commit it"
    )]
    ApprovalRequired { subject: Did, amount: Amount },
    #[error(
        "nothing is due at this time: the clock's entry records expiries only when they fall due"
    )]
    NothingDue,
    #[error(
        "the {field} may not be inside the owner tree of a party to the task (its principal, agents or sessions)"
    )]
    OwnSideRole { field: &'static str },
    #[error(
        "the channel would expire at {expires_at}, after the grant of {subject} ends at {grant_ends_at}"
    )]
    ChannelOutlivesGrant {
        subject: Did,
        expires_at: crate::time::Timestamp,
        grant_ends_at: crate::time::Timestamp,
    },
    /// Refused by a node, not the state: the state forgets ended records,
    /// the node's archive keeps them, and an id is never reused so that the
    /// earlier record stays readable under it.
    #[error(
        "{field} {id:?} belonged to a record that ended and is archived: ids are never reused, choose another"
    )]
    IdRetired { field: &'static str, id: String },
    /// A ledger bound to a chain takes money in only from its vault.
    #[error(
        "this ledger is bound to a chain: money comes in only as a deposit to its vault on chain"
    )]
    ChainDepositRequired,
    /// Chain deposits are credited once each, in the vault's id order.
    #[error("the vault's deposit {got} is not the next to credit: that is deposit {expected}")]
    DepositOutOfOrder { expected: u64, got: u64 },
    #[error("there is no pending withdrawal {id}")]
    WithdrawalNotFound { id: u64 },
    /// A claim found no chain deposit kept for the signer's key.
    #[error("no chain deposit is kept unclaimed for {did}")]
    NoUnclaimedDeposits { did: Did },
    /// A grant limits what a payment off the ledger cannot be checked
    /// against: its payees (did:keys), its categories, or its approvals.
    #[error(
        "{subject}'s grant sets {}, which a payment off the ledger cannot be checked against",
        limit.as_str()
    )]
    OffLedgerPaymentNotAllowed { subject: Did, limit: Limit },
}

impl Rejection {
    /// Stable machine code, e.g. `budget_exceeded`.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::InvalidSignature => "invalid_signature",
            Rejection::InvalidField { .. } => "invalid_field",
            Rejection::InvalidGrant(_) => "invalid_grant",
            Rejection::InvalidGrantSignature => "invalid_grant_signature",
            Rejection::UnknownIdentity { .. } => "unknown_identity",
            Rejection::UnknownAccount { .. } => "unknown_account",
            Rejection::AlreadyRegistered { .. } => "already_registered",
            Rejection::NotAuthorized { .. } => "not_authorized",
            Rejection::NotOperator => "not_operator",
            Rejection::GrantNotYetValid { .. } => "grant_not_yet_valid",
            Rejection::GrantExpired { .. } => "grant_expired",
            Rejection::GrantRevoked { .. } => "grant_revoked",
            Rejection::GrantWidens { .. } => "grant_widens",
            Rejection::PerPaymentLimitExceeded { .. } => "per_payment_limit_exceeded",
            Rejection::BudgetExceeded { .. } => "budget_exceeded",
            Rejection::PayeeNotAllowed { .. } => "payee_not_allowed",
            Rejection::PayeeDenied { .. } => "payee_denied",
            Rejection::CategoryNotAllowed { .. } => "category_not_allowed",
            Rejection::InsufficientFunds { .. } => "insufficient_funds",
            Rejection::AmountZero => "amount_zero",
            Rejection::AmountOverflow => "amount_overflow",
            Rejection::SameAccount => "same_account",
            Rejection::IdempotencyConflict { .. } => "idempotency_conflict",
            Rejection::HoldNotFound { .. } => "hold_not_found",
            Rejection::HoldNotActive { .. } => "hold_not_active",
            Rejection::ApprovalNotFound { .. } => "approval_not_found",
            Rejection::ApprovalNotPending { .. } => "approval_not_pending",
            Rejection::InvalidSplit { .. } => "invalid_split",
            Rejection::TooManyDelegations => "too_many_delegations",
            Rejection::ChannelNotFound { .. } => "channel_not_found",
            Rejection::ChannelClosed { .. } => "channel_closed",
            Rejection::ChannelExpired { .. } => "channel_expired",
            Rejection::ChannelClosing { .. } => "channel_closing",
            Rejection::VoucherSignatureInvalid { .. } => "voucher_signature_invalid",
            Rejection::VoucherStale { .. } => "voucher_stale",
            Rejection::ChannelExhausted { .. } => "channel_exhausted",
            Rejection::ListingNotFound { .. } => "listing_not_found",
            Rejection::ListingWithdrawn { .. } => "listing_withdrawn",
            Rejection::ListingBusy { .. } => "listing_busy",
            Rejection::RfqNotFound { .. } => "rfq_not_found",
            Rejection::RfqClosed { .. } => "rfq_closed",
            Rejection::QuoteNotFound { .. } => "quote_not_found",
            Rejection::QuoteNotOpen { .. } => "quote_not_open",
            Rejection::OfferOutOfTurn { .. } => "offer_out_of_turn",
            Rejection::QuoteRoundsExhausted { .. } => "quote_rounds_exhausted",
            Rejection::PriceAboveBudget { .. } => "price_above_budget",
            Rejection::TaskNotFound { .. } => "task_not_found",
            Rejection::TaskWrongState { .. } => "task_wrong_state",
            Rejection::NoArbiter { .. } => "no_arbiter",
            Rejection::NotArbiter { .. } => "not_arbiter",
            Rejection::ResultHashMismatch { .. } => "result_hash_mismatch",
            Rejection::ApprovalRequired { .. } => "approval_required",
            Rejection::NothingDue => "nothing_due",
            Rejection::OwnSideRole { .. } => "own_side_role",
            Rejection::ChannelOutlivesGrant { .. } => "channel_outlives_grant",
            Rejection::IdRetired { .. } => "id_retired",
            Rejection::ChainDepositRequired => "chain_deposit_required",
            Rejection::DepositOutOfOrder { .. } => "deposit_out_of_order",
            Rejection::WithdrawalNotFound { .. } => "withdrawal_not_found",
            Rejection::NoUnclaimedDeposits { .. } => "no_unclaimed_deposits",
            Rejection::OffLedgerPaymentNotAllowed { .. } => "off_ledger_payment_not_allowed",
            Rejection::SubscriptionNotFound { .. } => "subscription_not_found",
            Rejection::SubscriptionNotActive { .. } => "subscription_not_active",
            Rejection::SubscriptionAlreadyCollected { .. } => "subscription_already_collected",
            Rejection::SubscriptionAmountExceeded { .. } => "subscription_amount_exceeded",
            Rejection::TooManySubscriptions { .. } => "too_many_subscriptions",
            Rejection::AlreadyContributed { .. } => "already_contributed",
            Rejection::BountyNotFound { .. } => "bounty_not_found",
            Rejection::BountyWrongState { .. } => "bounty_wrong_state",
            Rejection::BountyFull { .. } => "bounty_full",
            Rejection::ContributionNotFound { .. } => "contribution_not_found",
            Rejection::ContributionScored { .. } => "contribution_scored",
            Rejection::NotValidator { .. } => "not_validator",
            Rejection::OrderNotFound { .. } => "order_not_found",
            Rejection::LegWrongState { .. } => "leg_wrong_state",
        }
    }

    /// The request field the rejection is about, when there is one.
    pub fn param(&self) -> Option<&'static str> {
        match self {
            Rejection::InvalidField { field, .. } => Some(field),
            Rejection::InvalidGrant(invalid) => Some(invalid.field),
            Rejection::GrantWidens { limit } => Some(limit.as_str()),
            Rejection::PerPaymentLimitExceeded { .. }
            | Rejection::BudgetExceeded { .. }
            | Rejection::InsufficientFunds { .. }
            | Rejection::AmountZero
            | Rejection::AmountOverflow => Some("amount"),
            Rejection::PayeeNotAllowed { .. } | Rejection::PayeeDenied { .. } => Some("to"),
            Rejection::CategoryNotAllowed { .. } => Some("category"),
            Rejection::IdempotencyConflict { .. } => Some("idempotency_key"),
            Rejection::HoldNotFound { .. } | Rejection::HoldNotActive { .. } => Some("hold_id"),
            Rejection::ApprovalNotFound { .. } | Rejection::ApprovalNotPending { .. } => {
                Some("approval_id")
            }
            Rejection::InvalidSplit { .. } => Some("splits"),
            Rejection::ChannelNotFound { .. }
            | Rejection::ChannelClosed { .. }
            | Rejection::ChannelExpired { .. }
            | Rejection::ChannelClosing { .. } => Some("channel_id"),
            Rejection::VoucherSignatureInvalid { .. }
            | Rejection::VoucherStale { .. }
            | Rejection::ChannelExhausted { .. } => Some("vouchers"),
            Rejection::SameAccount => Some("to"),
            Rejection::ListingNotFound { .. }
            | Rejection::ListingWithdrawn { .. }
            | Rejection::ListingBusy { .. } => Some("listing_id"),
            Rejection::RfqNotFound { .. } | Rejection::RfqClosed { .. } => Some("rfq_id"),
            Rejection::QuoteNotFound { .. }
            | Rejection::QuoteNotOpen { .. }
            | Rejection::OfferOutOfTurn { .. }
            | Rejection::QuoteRoundsExhausted { .. } => Some("quote_id"),
            Rejection::PriceAboveBudget { .. } => Some("price"),
            Rejection::TaskNotFound { .. }
            | Rejection::TaskWrongState { .. }
            | Rejection::NoArbiter { .. }
            | Rejection::NotArbiter { .. } => Some("task_id"),
            Rejection::ResultHashMismatch { .. } => Some("result_hash"),
            Rejection::ApprovalRequired { .. } => Some("amount"),
            Rejection::OwnSideRole { field } => Some(field),
            Rejection::ChannelOutlivesGrant { .. } => Some("expires_at"),
            Rejection::IdRetired { field, .. } => Some(field),
            Rejection::ChainDepositRequired | Rejection::DepositOutOfOrder { .. } => Some("chain"),
            Rejection::WithdrawalNotFound { .. } => Some("id"),
            Rejection::SubscriptionNotFound { .. }
            | Rejection::SubscriptionNotActive { .. }
            | Rejection::SubscriptionAlreadyCollected { .. } => Some("subscription_id"),
            Rejection::SubscriptionAmountExceeded { .. } => Some("amount"),
            Rejection::BountyNotFound { .. }
            | Rejection::BountyWrongState { .. }
            | Rejection::BountyFull { .. }
            | Rejection::NotValidator { .. } => Some("bounty_id"),
            Rejection::ContributionNotFound { .. } | Rejection::ContributionScored { .. } => {
                Some("contribution_id")
            }
            Rejection::OrderNotFound { .. } => Some("order_id"),
            Rejection::TooManySubscriptions { .. } => Some("from"),
            Rejection::AlreadyContributed { .. } => Some("contributor"),
            Rejection::LegWrongState { .. } => Some("leg"),
            _ => None,
        }
    }

    /// The rejection a grant's payee or category verdict maps to.
    pub(crate) fn from_limit(limit: Limit, subject: Did, payee: Option<Did>) -> Rejection {
        match (limit, payee) {
            (Limit::DeniedPayees, Some(payee)) => Rejection::PayeeDenied { subject, payee },
            (Limit::AllowedPayees, Some(payee)) => Rejection::PayeeNotAllowed { subject, payee },
            _ => Rejection::CategoryNotAllowed { subject },
        }
    }
}
