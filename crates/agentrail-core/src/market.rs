//! Markets: listings (agent cards), requests for quotes, quotes and
//! counter-offers, escrowed tasks, data licences — the command payloads and
//! the views readers get. The rules live in `state/market.rs`; reputation,
//! a pure function of what the ledger recorded, in [`crate::reputation`].
//!
//! A task's life (every arrow is a signed, journaled command or, for the
//! dashed ones, the ledger clock):
//!
//! ```text
//! request_quotes ─▶ submit_quote ◀─▶ counter_quote (alternating, bounded)
//!                        │ accept_quote (buyer; budget reserved in escrow)
//!                        ▼
//!                     Funded ──deliver_task (provider, before the deadline)──▶ Delivered
//!                        ┆ deadline passes                                        │
//!                        ▼                         approve_task (buyer or validator)│
//!                     Refunded ◀┄┄ arbitration lapses ┄┄ Disputed ◀── dispute_task ─┤
//!                                                        │ resolve_dispute (arbiter)│
//!                                                        ▼                          ▼
//!                                                     Resolved         Approved ◀┄ review window ends
//! ```

use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::command::Split;
use crate::did::Did;
use crate::event::Part;
use crate::time::Timestamp;

/// What a listing offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListingKind {
    /// Work done on request: an API, compute, a task.
    Service,
    /// Content licensed per use; its `revenue_share` are the creators'
    /// royalties.
    Dataset,
}

/// How a listing is priced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pricing {
    /// A fixed price for each call (for a dataset: each licensed use).
    PerCall { price: Amount },
    /// A price for each unit of work, e.g. a token or a kilobyte.
    PerUnit { price: Amount, unit: String },
    /// A fixed price for a whole task.
    PerTask { price: Amount },
    /// Priced by quote only.
    OnQuote,
}

impl Pricing {
    /// The advertised price, if there is one.
    pub fn price(&self) -> Option<Amount> {
        match self {
            Pricing::PerCall { price }
            | Pricing::PerUnit { price, .. }
            | Pricing::PerTask { price } => Some(*price),
            Pricing::OnQuote => None,
        }
    }
}

/// Publishes an agent card. Signed by the provider, its session, or its
/// principal. A stake, if any, is reserved from the provider's account
/// (counted against its mandate like a hold) while the listing stands, and
/// is slashed to the buyer when the provider loses a dispute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishListing {
    /// Chosen by the client, unique in the ledger; also the idempotency key.
    pub listing_id: String,
    pub provider: Did,
    pub kind: ListingKind,
    /// 1-64 bytes.
    pub name: String,
    /// At most 512 bytes.
    #[serde(default)]
    pub description: String,
    /// 1-16 tags of `[a-z0-9_.-]`, 1-32 bytes each.
    pub capabilities: Vec<String>,
    pub pricing: Pricing,
    /// Where the service answers (`http://` or `https://`, at most 256 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Who shares the revenue, in basis points summing to 10,000; empty
    /// means the provider alone. A dataset's licence fees and a task
    /// delivered without a manifest are paid out this way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revenue_share: Vec<Split>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stake: Option<Amount>,
    /// SHA-256 of the content, 64 lower-case hex digits: datasets only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListingRef {
    pub listing_id: String,
}

/// A buyer asks for quotes. No money moves until a quote is accepted. The
/// terms named here (deadline, review window, arbiter, validator) are what
/// every quote agrees to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestQuotes {
    /// Chosen by the client, unique among the records the ledger keeps
    /// (and, at a node, among those archived: `id_retired`).
    pub rfq_id: String,
    /// The account that will pay.
    pub from: Did,
    /// The capability wanted; also the category the budget is charged to.
    pub capability: String,
    #[serde(default)]
    pub description: String,
    /// No quote may ask more.
    pub budget_max: Amount,
    /// Seconds from acceptance to the delivery deadline (60 s to 90 days).
    pub deadline_s: u64,
    /// Seconds the buyer keeps to approve or dispute a delivery before it
    /// approves by default (60 s to 7 days; one day if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_window_s: Option<u64>,
    /// Decides a dispute; any identity but the operator, the buyer's side
    /// and the provider. Without one, deliveries cannot be disputed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arbiter: Option<Did>,
    /// May approve a delivery in the buyer's place by signing its result
    /// hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator: Option<Did>,
    /// Only these providers may quote (at most 32); anyone if empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invited: Vec<Did>,
    /// Quotes are taken until then: at most 30 days ahead, one day if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// A provider's offer on a request for quotes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitQuote {
    /// Chosen by the client, unique among the records the ledger keeps
    /// (and, at a node, among those archived: `id_retired`).
    pub quote_id: String,
    pub rfq_id: String,
    pub provider: Did,
    /// The provider's listing the work comes under (its stake backs the
    /// task); it must offer the capability asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing_id: Option<String>,
    pub price: Amount,
    /// At most 256 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A counter-offer: by the buyer's side, or the provider's answer to one.
/// Offers alternate, and a quote takes at most [`crate::constants::QUOTE_ROUNDS_MAX`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CounterQuote {
    pub quote_id: String,
    pub price: Amount,
}

/// The buyer accepts the provider's latest offer: the price is reserved in
/// escrow from the buyer's account, within its mandate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptQuote {
    pub quote_id: String,
    /// Chosen by the client, unique among the records the ledger keeps
    /// (and, at a node, among those archived: `id_retired`).
    pub task_id: String,
}

/// The lead provider delivers: the result's hash and a contribution
/// manifest (contributor → basis points), signed with this command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliverTask {
    pub task_id: String,
    /// SHA-256 of the result, 64 lower-case hex digits.
    pub result_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Empty: the listing's revenue share, or the provider alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifest: Vec<Split>,
}

/// The buyer (or the validator named in the terms) approves a delivery;
/// naming its result hash binds the approval to what was delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveTask {
    pub task_id: String,
    pub result_hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DisputeTask {
    pub task_id: String,
    /// At most 256 bytes.
    pub reason: String,
}

/// The arbiter's ruling: the provider's share of the price in basis points;
/// the rest returns to the buyer. Below half, the provider lost and its
/// listing's stake goes to the buyer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveDispute {
    pub task_id: String,
    pub provider_bps: u16,
}

/// Buys one licensed use of a dataset listing: its price goes to the
/// creators in the listing's revenue share; the journal entry's receipt is
/// the licence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenseDataset {
    /// Chosen by the client, unique among the records the ledger keeps
    /// (and, at a node, among those archived: `id_retired`);
    /// also the idempotency key.
    pub license_id: String,
    pub listing_id: String,
    /// The account that pays and holds the licence.
    pub from: Did,
}

// ----- views ----------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListingStatus {
    Listed,
    Withdrawn,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ListingView {
    #[serde(flatten)]
    pub listing: PublishListing,
    pub status: ListingStatus,
    pub published_at: Timestamp,
    /// What the stake still holds (zero once slashed or withdrawn).
    pub stake_held: Amount,
    /// Tasks under this listing not yet settled.
    pub open_tasks: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RfqStatus {
    Open,
    Awarded,
    /// It took quotes until its expiry and none was accepted.
    Expired,
}

/// Which side made an offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buyer,
    Provider,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuoteStatus {
    Open,
    Accepted,
    /// Another quote won, or the request expired.
    Closed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct QuoteView {
    pub quote_id: String,
    pub rfq_id: String,
    pub provider: Did,
    pub listing_id: Option<String>,
    /// The latest offer, by `last_offer_by`.
    pub price: Amount,
    pub last_offer_by: Side,
    /// Offers made so far, the first quote included.
    pub rounds: u8,
    pub note: Option<String>,
    pub status: QuoteStatus,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RfqView {
    #[serde(flatten)]
    pub request: RequestQuotes,
    pub status: RfqStatus,
    pub expires_at: Timestamp,
    pub quotes: Vec<QuoteView>,
}

/// The agreed terms of a task, fixed at acceptance; `terms_hash` in the
/// events is SHA-256 of their RFC 8785 canonical JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskTerms {
    pub task_id: String,
    pub rfq_id: String,
    pub quote_id: String,
    pub buyer: Did,
    pub provider: Did,
    pub listing_id: Option<String>,
    pub capability: String,
    pub price: Amount,
    pub deadline: Timestamp,
    pub review_window_s: u64,
    pub arbiter: Option<Did>,
    pub validator: Option<Did>,
}

/// Who approved a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Approver {
    Buyer,
    Validator,
    /// The buyer stayed silent past the review window.
    ReviewWindowEnded,
    /// The arbiter ruled at least half of the price due (an order's leg).
    Arbiter,
}

/// Why escrow returned to the buyer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    DeadlineMissed,
    /// The arbiter did not rule within the arbitration window.
    ArbitrationLapsed,
}

/// Where a task stands; the variants own what each state knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TaskStatus {
    Funded,
    Delivered {
        delivery: Delivery,
        review_ends_at: Timestamp,
    },
    Approved {
        delivery: Delivery,
        by: Approver,
        parts: Vec<Part>,
    },
    Disputed {
        delivery: Delivery,
        reason: String,
        arbitration_ends_at: Timestamp,
    },
    Resolved {
        delivery: Delivery,
        provider_bps: u16,
        parts: Vec<Part>,
        refunded: Amount,
        slashed: Amount,
    },
    Refunded {
        reason: RefundReason,
    },
}

impl TaskStatus {
    pub fn name(&self) -> &'static str {
        match self {
            TaskStatus::Funded => "funded",
            TaskStatus::Delivered { .. } => "delivered",
            TaskStatus::Approved { .. } => "approved",
            TaskStatus::Disputed { .. } => "disputed",
            TaskStatus::Resolved { .. } => "resolved",
            TaskStatus::Refunded { .. } => "refunded",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Delivery {
    pub result_hash: String,
    pub uri: Option<String>,
    /// The manifest in force: contributors and their basis points.
    pub manifest: Vec<Split>,
    pub delivered_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskView {
    pub terms: TaskTerms,
    pub terms_hash: String,
    pub funded_at: Timestamp,
    pub status: TaskStatus,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LicenseView {
    pub license_id: String,
    pub listing_id: String,
    pub content_hash: String,
    pub licensee: Did,
    pub price: Amount,
    pub parts: Vec<Part>,
    pub licensed_at: Timestamp,
}

/// A discovery query: filters, then ranking by reputation (highest first),
/// price (lowest first) and listing id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Discovery {
    pub capability: Option<String>,
    pub kind: Option<ListingKind>,
    /// Listings priced above this (or priced on quote) are left out.
    pub max_price: Option<Amount>,
    pub min_reputation: Option<u16>,
    /// How many ranked listings to skip.
    pub offset: usize,
    /// At most [`crate::constants::DISCOVERY_PAGE_MAX`].
    pub limit: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Discovered {
    pub listing: ListingView,
    pub reputation: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DiscoveryPage {
    pub listings: Vec<Discovered>,
    /// Matching listings in all.
    pub total: usize,
    /// The offset of the next page, if there is one.
    pub next_offset: Option<usize>,
}

/// Which open requests for quotes a provider looks for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RfqQuery {
    pub capability: Option<String>,
    /// Only requests this provider may quote on (not its own, and inviting
    /// it or everyone).
    pub provider: Option<Did>,
    pub offset: usize,
    /// At most [`crate::constants::DISCOVERY_PAGE_MAX`].
    pub limit: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RfqPage {
    /// Latest expiry first.
    pub rfqs: Vec<RfqView>,
    pub total: usize,
    pub next_offset: Option<usize>,
}
