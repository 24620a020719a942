//! Events: what an accepted command did. A command yields one or more
//! events; replaying the same commands at the same times yields the same
//! events.

use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::chain::{EvmAddress, Hash32};
use crate::channel::ChannelId;
use crate::command::Split;
use crate::did::Did;
use crate::economy::{LegFailure, Period};
use crate::grant::GrantId;
use crate::market::{Approver, ListingKind, RefundReason, Side};
use crate::time::Timestamp;

/// One payee's part of a released hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Part {
    pub to: Did,
    pub amount: Amount,
}

/// Why a channel closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The payee closed it.
    Cooperative,
    /// The dispute window after the payer's close ended.
    DisputeWindowEnded,
    /// It reached its expiry.
    Expired,
}

/// Something the ledger did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    PrincipalRegistered {
        principal: Did,
    },
    AgentRegistered {
        agent: Did,
        principal: Did,
        grant_id: GrantId,
    },
    SessionIssued {
        session: Did,
        agent: Did,
        grant_id: GrantId,
    },
    /// `subject`'s grant ended; `cascaded_from` names the revoked grant
    /// above it when the revocation came from there.
    GrantRevoked {
        subject: Did,
        revoked_by: Did,
        cascaded_from: Option<Did>,
    },
    Deposited {
        to: Did,
        amount: Amount,
    },
    Withdrawn {
        from: Did,
        amount: Amount,
    },
    /// A payment off the ledger counted against the mandate of `from`'s
    /// grants; no ledger money moved.
    MandateCharged {
        from: Did,
        signer: Did,
        amount: Amount,
        payee: String,
        reference: String,
    },
    /// A chain deposit to a did:key with no account yet: the ledger keeps
    /// it for that key, and credits it when the key registers.
    DepositUnclaimed {
        to: Did,
        amount: Amount,
    },
    /// The deposits kept for `to` moved into its new account.
    DepositClaimed {
        to: Did,
        amount: Amount,
    },
    /// A withdrawal debited for payment on chain, waiting for the vault.
    WithdrawalRequested {
        id: u64,
        from: Did,
        to: EvmAddress,
        amount: Amount,
    },
    /// The vault paid withdrawal `id` in transaction `tx`.
    WithdrawalPaid {
        id: u64,
        from: Did,
        to: EvmAddress,
        amount: Amount,
        tx: Hash32,
    },
    Transferred {
        from: Did,
        to: Did,
        amount: Amount,
        signer: Did,
        memo: Option<String>,
        category: Option<String>,
    },
    /// A payment above an approval threshold: its amount is held until the
    /// principal approves or declines it, or `expires_at` passes.
    PaymentPending {
        approval_id: u64,
        from: Did,
        to: Did,
        amount: Amount,
        expires_at: Timestamp,
    },
    /// Followed by the `Transferred` event that pays it.
    PaymentApproved {
        approval_id: u64,
    },
    /// The held amount returned to `from`.
    PaymentDeclined {
        approval_id: u64,
        from: Did,
    },
    /// The held amount returned to `from`.
    PaymentExpired {
        approval_id: u64,
        from: Did,
    },
    HoldReserved {
        hold_id: String,
        from: Did,
        amount: Amount,
        expires_at: Timestamp,
    },
    /// `from`'s held money paid out as `parts`.
    HoldReleased {
        hold_id: String,
        from: Did,
        parts: Vec<Part>,
    },
    /// The held amount returned to `from`.
    HoldVoided {
        hold_id: String,
        from: Did,
    },
    /// The held amount returned to `from`.
    HoldExpired {
        hold_id: String,
        from: Did,
    },
    ChannelOpened {
        channel_id: ChannelId,
        from: Did,
        payee: Did,
        deposit: Amount,
        voucher_key: Did,
        expires_at: Timestamp,
    },
    /// `amount` more of `from`'s money reserved in the channel.
    ChannelToppedUp {
        channel_id: ChannelId,
        from: Did,
        amount: Amount,
        deposit: Amount,
    },
    /// `amount` of `from`'s held deposit moved to the payee now;
    /// `collected` is the channel's total.
    ChannelCollected {
        channel_id: ChannelId,
        from: Did,
        payee: Did,
        amount: Amount,
        collected: Amount,
        /// The collect split by the payee's listing: who received what
        /// (the payee alone received `amount` if empty).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        parts: Vec<Part>,
    },
    /// The payer started a close: the payee may collect until `closes_at`.
    ChannelClosing {
        channel_id: ChannelId,
        closes_at: Timestamp,
    },
    /// The channel ended: the payee received `paid` in all, `refunded`
    /// returned to the payer.
    ChannelClosed {
        channel_id: ChannelId,
        from: Did,
        paid: Amount,
        refunded: Amount,
        reason: CloseReason,
    },
    ListingPublished {
        listing_id: String,
        provider: Did,
        kind: ListingKind,
        stake: Amount,
    },
    /// The listing is withdrawn; what its stake still held returned.
    ListingWithdrawn {
        listing_id: String,
        provider: Did,
        stake_returned: Amount,
    },
    QuotesRequested {
        rfq_id: String,
        buyer: Did,
        capability: String,
        budget_max: Amount,
        expires_at: Timestamp,
    },
    QuoteSubmitted {
        quote_id: String,
        rfq_id: String,
        provider: Did,
        price: Amount,
    },
    QuoteCountered {
        quote_id: String,
        by: Side,
        price: Amount,
        round: u8,
    },
    /// The buyer accepted: `price` is reserved from its account in escrow
    /// until `deadline`, under terms whose canonical hash is `terms_hash`.
    TaskFunded {
        task_id: String,
        quote_id: String,
        buyer: Did,
        provider: Did,
        price: Amount,
        deadline: Timestamp,
        terms_hash: String,
    },
    TaskDelivered {
        task_id: String,
        provider: Did,
        result_hash: String,
        manifest: Vec<Split>,
        review_ends_at: Timestamp,
    },
    /// `buyer`'s escrow paid the contributors of the manifest.
    TaskApproved {
        task_id: String,
        buyer: Did,
        by: Approver,
        parts: Vec<Part>,
    },
    TaskDisputed {
        task_id: String,
        arbiter: Did,
        arbitration_ends_at: Timestamp,
    },
    /// The arbiter ruled: `parts` to the contributors, `refunded` to the
    /// buyer, and `slashed` of the provider's stake to the buyer.
    DisputeResolved {
        task_id: String,
        arbiter: Did,
        provider_bps: u16,
        parts: Vec<Part>,
        buyer: Did,
        provider: Did,
        refunded: Amount,
        slashed: Amount,
    },
    TaskRefunded {
        task_id: String,
        buyer: Did,
        amount: Amount,
        reason: RefundReason,
    },
    /// One licensed use: `price` paid to the creators as `parts`.
    DatasetLicensed {
        license_id: String,
        listing_id: String,
        content_hash: String,
        licensee: Did,
        price: Amount,
        parts: Vec<Part>,
    },
    /// A payer's side let `payee` collect at most `amount` per period.
    SubscriptionCreated {
        subscription_id: String,
        from: Did,
        payee: Did,
        amount: Amount,
        period: Period,
    },
    /// One period's collect: `amount` moved from `from` to `payee`.
    SubscriptionCollected {
        subscription_id: String,
        from: Did,
        payee: Did,
        amount: Amount,
        /// The period's number ([`Period::index`]).
        period_index: u64,
    },
    SubscriptionCancelled {
        subscription_id: String,
        by: Did,
    },
    /// `budget` (price × contributions) is held from the lead.
    BountyPosted {
        bounty_id: String,
        lead: Did,
        budget: Amount,
        closes_at: Timestamp,
    },
    ContributionSubmitted {
        bounty_id: String,
        contribution_id: String,
        contributor: Did,
        speed_bps: u16,
    },
    /// The validator's score, and the payout it earned (`parts`, from the
    /// lead's held budget).
    ContributionScored {
        bounty_id: String,
        contribution_id: String,
        lead: Did,
        score_bps: u16,
        parts: Vec<Part>,
    },
    /// Every slot scored or the scoring window ended: `refunded` returned
    /// to the lead.
    BountyClosed {
        bounty_id: String,
        lead: Did,
        paid: Amount,
        refunded: Amount,
    },
    /// The legs' total is held from the buyer.
    OrderPlaced {
        order_id: String,
        buyer: Did,
        total: Amount,
        legs: u8,
        atomic: bool,
    },
    LegDelivered {
        order_id: String,
        leg: u8,
        provider: Did,
        result_hash: String,
        review_ends_at: Timestamp,
    },
    LegDisputed {
        order_id: String,
        leg: u8,
        arbiter: Did,
        arbitration_ends_at: Timestamp,
    },
    /// The leg was accepted with `provider_bps` of its price due to its
    /// provider's side (10,000 unless an arbiter ruled).
    LegApproved {
        order_id: String,
        leg: u8,
        by: Approver,
        provider_bps: u16,
    },
    /// The leg's money left the escrow: `parts` to the provider's side,
    /// `refunded` to the buyer.
    LegPaid {
        order_id: String,
        leg: u8,
        buyer: Did,
        parts: Vec<Part>,
        refunded: Amount,
    },
    LegFailed {
        order_id: String,
        leg: u8,
        reason: LegFailure,
    },
    /// A leg failed: `refunded` (the price of every leg not paid, the
    /// failed one included unless its `LegPaid` settled it) returned to the
    /// buyer.
    OrderUnwound {
        order_id: String,
        buyer: Did,
        refunded: Amount,
    },
    /// Every leg was paid.
    OrderCompleted {
        order_id: String,
        buyer: Did,
    },
    /// The command repeated an idempotency key with identical content:
    /// nothing was applied again, and this is the original outcome.
    Duplicate {
        original: Vec<Event>,
    },
}

impl Event {
    /// Every identity the event names (with repeats), for history indexes:
    /// among them every account whose balance (available or held) the
    /// event changes, so that an account's history shows every movement of
    /// its money.
    pub fn parties(&self, out: &mut Vec<Did>) {
        match self {
            Event::PrincipalRegistered { principal } => out.push(*principal),
            Event::AgentRegistered {
                agent, principal, ..
            } => out.extend([*agent, *principal]),
            Event::SessionIssued { session, agent, .. } => out.extend([*session, *agent]),
            Event::GrantRevoked {
                subject,
                revoked_by,
                cascaded_from,
            } => {
                out.extend([*subject, *revoked_by]);
                out.extend(cascaded_from);
            }
            Event::Deposited { to, .. } => out.push(*to),
            Event::Withdrawn { from, .. } => out.push(*from),
            Event::MandateCharged { from, signer, .. } => out.extend([*from, *signer]),
            Event::DepositUnclaimed { to, .. } | Event::DepositClaimed { to, .. } => out.push(*to),
            Event::WithdrawalRequested { from, .. } | Event::WithdrawalPaid { from, .. } => {
                out.push(*from)
            }
            Event::Transferred {
                from, to, signer, ..
            } => out.extend([*from, *to, *signer]),
            Event::PaymentPending { from, to, .. } => out.extend([*from, *to]),
            Event::HoldReserved { from, .. } => out.push(*from),
            Event::HoldReleased { from, parts, .. } => {
                out.push(*from);
                out.extend(parts.iter().map(|part| part.to));
            }
            Event::ChannelOpened { from, payee, .. } => out.extend([*from, *payee]),
            Event::ChannelCollected {
                from, payee, parts, ..
            } => {
                out.extend([*from, *payee]);
                out.extend(parts.iter().map(|part| part.to));
            }
            Event::ChannelClosed { from, .. } => out.push(*from),
            Event::ListingPublished { provider, .. } | Event::ListingWithdrawn { provider, .. } => {
                out.push(*provider)
            }
            Event::QuotesRequested { buyer, .. } => out.push(*buyer),
            Event::QuoteSubmitted { provider, .. } => out.push(*provider),
            Event::TaskFunded {
                buyer, provider, ..
            } => out.extend([*buyer, *provider]),
            Event::TaskDelivered { provider, .. } => out.push(*provider),
            Event::TaskApproved { buyer, parts, .. } => {
                out.push(*buyer);
                out.extend(parts.iter().map(|part| part.to));
            }
            Event::TaskDisputed { arbiter, .. } => out.push(*arbiter),
            Event::DisputeResolved {
                arbiter,
                parts,
                buyer,
                provider,
                ..
            } => {
                out.extend([*arbiter, *buyer, *provider]);
                out.extend(parts.iter().map(|part| part.to));
            }
            Event::TaskRefunded { buyer, .. } => out.push(*buyer),
            Event::DatasetLicensed {
                licensee, parts, ..
            } => {
                out.push(*licensee);
                out.extend(parts.iter().map(|part| part.to));
            }
            Event::SubscriptionCreated { from, payee, .. }
            | Event::SubscriptionCollected { from, payee, .. } => out.extend([*from, *payee]),
            Event::SubscriptionCancelled { by, .. } => out.push(*by),
            Event::BountyPosted { lead, .. } | Event::BountyClosed { lead, .. } => out.push(*lead),
            Event::ContributionSubmitted { contributor, .. } => out.push(*contributor),
            Event::ContributionScored { lead, parts, .. } => {
                out.push(*lead);
                out.extend(parts.iter().map(|part| part.to));
            }
            Event::OrderPlaced { buyer, .. }
            | Event::OrderUnwound { buyer, .. }
            | Event::OrderCompleted { buyer, .. } => out.push(*buyer),
            Event::LegDelivered { provider, .. } => out.push(*provider),
            Event::LegDisputed { arbiter, .. } => out.push(*arbiter),
            Event::LegPaid { buyer, parts, .. } => {
                out.push(*buyer);
                out.extend(parts.iter().map(|part| part.to));
            }
            Event::LegApproved { .. } | Event::LegFailed { .. } => {}
            Event::Duplicate { original } => original.iter().for_each(|event| event.parties(out)),
            Event::PaymentDeclined { from, .. }
            | Event::PaymentExpired { from, .. }
            | Event::HoldVoided { from, .. }
            | Event::HoldExpired { from, .. }
            | Event::ChannelToppedUp { from, .. } => out.push(*from),
            // Followed by the `Transferred` event that names both accounts.
            Event::PaymentApproved { .. }
            | Event::ChannelClosing { .. }
            | Event::QuoteCountered { .. } => {}
        }
    }
}
