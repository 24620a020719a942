//! Bodies of the `/v1` API. Amounts are strings of atomic units; identities
//! are did:key strings; times are Unix seconds.

use agentrail_core::chain::ChainBinding;
use agentrail_core::market::ListingView;
use agentrail_core::reputation::Reputation;
use agentrail_core::state::{GrantStatus, IdentityKind};
use agentrail_core::{Amount, Did, Event, Timestamp};
use serde::{Deserialize, Serialize};

/// Path of the one mutating endpoint: the body is a command.
pub const COMMANDS_PATH: &str = "/v1/commands";
/// Path of the dev-mode faucet.
pub const FAUCET_PATH: &str = "/v1/faucet";
/// Largest request body accepted. With its base64 in the journal entry,
/// the signature headers and the events, an entry stays under the 64 KiB
/// a C2SP tlog-tiles entry bundle can hold.
pub const BODY_BYTES_MAX: usize = 32 * 1024;
/// Largest page of history.
pub const HISTORY_PAGE_MAX: usize = 200;
/// The most agents one page of `GET /v1/principals/{did}/agents` holds.
pub const AGENTS_PAGE_MAX: usize = 50;
/// The most approvals one page of `GET /v1/principals/{did}/approvals` holds.
pub const APPROVALS_PAGE_MAX: usize = 100;

/// Every error: `{"error":{"code":"…","message":"…","param":"…"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorDetail {
    /// Stable machine code, e.g. `budget_exceeded`.
    pub code: String,
    /// For people.
    pub message: String,
    /// The request field the error is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

/// The answer to an accepted command: where it is in the journal, and what
/// it did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CommandResponse {
    pub index: u64,
    pub time: Timestamp,
    pub events: Vec<Event>,
    /// Where the command sits in the transparency log; the full proof is at
    /// `GET /v1/receipts/{index}`.
    pub receipt: ReceiptRef,
}

/// `GET /v1/holds/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldResponse {
    pub id: String,
    pub status: agentrail_core::state::HoldStatus,
}

/// `GET /v1/approvals/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalResponse {
    pub id: u64,
    pub status: agentrail_core::state::ApprovalStatus,
}

/// `GET /v1/log/entries/{index}`: one leaf of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogEntry {
    pub index: u64,
    /// Base64 of the leaf (the journal entry's bytes).
    pub leaf: String,
    /// Base64 of its RFC 9162 leaf hash.
    pub leaf_hash: String,
}

/// `GET /v1/log/proof/consistency?from=M&to=N`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    /// Base64 hashes (RFC 9162 §2.1.4).
    pub proof: Vec<String>,
}

/// A journaled command's place in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRef {
    pub index: u64,
    /// Base64 of the RFC 9162 leaf hash.
    pub leaf_hash: String,
}

/// Dev mode: the node deposits from its operator key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaucetRequest {
    pub to: Did,
    pub amount: Amount,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BalanceResponse {
    pub did: Did,
    pub available: Amount,
    pub held: Amount,
}

/// One journal entry that concerns an identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HistoryItem {
    pub index: u64,
    pub time: Timestamp,
    pub signer: Did,
    pub events: Vec<Event>,
}

/// A page of history, newest first; pass `next_before` as `before` for the
/// next page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HistoryPage {
    pub items: Vec<HistoryItem>,
    pub next_before: Option<u64>,
}

/// Everything the ledger knows of one identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Passport {
    pub did: Did,
    pub kind: IdentityKind,
    /// From the identity up to its principal.
    pub owner_chain: Vec<Did>,
    /// The grant of an agent or session: limits, spending, exposure.
    pub grant: Option<GrantStatus>,
    /// The account of a principal or agent.
    pub balance: Option<BalanceResponse>,
    /// The newest journal entries that concern it; each `index` is the
    /// log leaf whose receipt (`/v1/receipts/{index}`) proves it.
    pub recent: Vec<HistoryItem>,
    /// Listings it published (withdrawn ones included).
    #[serde(default)]
    pub listings: Vec<ListingView>,
    /// Its reputation (principals and agents), with the components.
    #[serde(default)]
    pub reputation: Option<Reputation>,
}

/// An agent's card in the A2A Agent Card shape (protocol 0.3), built from
/// its listings; agentrail's market terms ride in the
/// `capabilities.extensions` entry named [`MARKET_EXTENSION_URI`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentCard {
    pub protocol_version: String,
    pub name: String,
    pub description: String,
    pub url: String,
    pub preferred_transport: String,
    pub version: String,
    pub provider: AgentProvider,
    pub capabilities: AgentCapabilities,
    pub default_input_modes: Vec<String>,
    pub default_output_modes: Vec<String>,
    pub skills: Vec<AgentSkill>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentProvider {
    /// The owning principal's did:key.
    pub organization: String,
    pub url: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentCapabilities {
    pub streaming: bool,
    pub push_notifications: bool,
    pub extensions: Vec<AgentExtension>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentExtension {
    pub uri: String,
    pub description: String,
    pub required: bool,
    pub params: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentSkill {
    /// The listing id.
    pub id: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
}

/// Names the agentrail market extension of an A2A Agent Card.
pub const MARKET_EXTENSION_URI: &str = "https://agentrail.dev/a2a/market/v1";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Health {
    pub status: String,
    pub journal_len: u64,
    pub clock: Timestamp,
    pub dev: bool,
    /// The ledger's operator (its genesis): what an audit replays from.
    pub operator: Did,
    /// The network id channel vouchers sign (`agentrail:<log origin>`).
    pub network: String,
    /// The chain this ledger is bound to, and how its follower fares;
    /// absent on a ledger with no chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainHealth>,
    /// On a node of several sharing a journal in PostgreSQL: whether this
    /// one leads and how far behind the journal it is; absent on a node of
    /// its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<ReplicationHealth>,
}

/// How a node of several fares in the journal they share.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReplicationHealth {
    /// `leader` (this node takes commands) or `standby` (it follows and
    /// serves reads; commands are answered `not_leader`).
    pub role: String,
    /// The term of the journal's head when this node last read it.
    pub term: u64,
    /// Entries the journal's head holds, when this node last read it.
    pub head_size: u64,
    /// Entries the head holds that this node has not applied yet.
    pub behind: u64,
    /// Where the leader takes commands (empty while none leads).
    pub leader_url: String,
    /// Whether this node's last call to the database succeeded.
    pub database_ok: bool,
    /// Whether the database waits for a synchronous standby's flush before
    /// a commit returns (`synchronous_commit` and
    /// `synchronous_standby_names`, read at start): without one, an
    /// acknowledged batch lives on one machine until it is replicated.
    pub synchronous_standby: bool,
}

/// How a node bound to an EVM chain follows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChainHealth {
    /// The genesis' binding: chain id, vault and the operator's address.
    pub binding: Option<ChainBinding>,
    /// Whether this node runs the chain follower (`serve --chain-rpc`).
    pub following: bool,
    /// Whether the last call to the chain's RPC endpoint succeeded.
    pub rpc_ok: bool,
    /// The newest block the follower saw.
    pub head: Option<u64>,
    /// The newest block with the required confirmations.
    pub safe: Option<u64>,
    /// Confirmations a deposit needs before it is credited.
    pub confirmations: u64,
    /// Vault deposits credited (the next has id one more).
    pub deposits_credited: u64,
    /// Withdrawals debited and not yet paid on chain.
    pub pending_withdrawals: u64,
    /// The log size last anchored in the vault.
    pub anchored_size: Option<u64>,
    /// Set when the chain contradicts what the ledger credited (a reorg
    /// deeper than the confirmations): crediting stops until an operator
    /// looks. The node keeps serving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<String>,
    /// The last RPC error, if the last call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// One agent of a principal (`GET /v1/principals/{did}/agents`): its grant
/// with spending and exposure, its account and the sessions it issued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentSummary {
    pub did: Did,
    pub grant: GrantStatus,
    pub balance: Option<BalanceResponse>,
    /// Sessions that were live when the agent's newest session was issued,
    /// oldest first (`GET /v1/grants/{did}` tells where each stands).
    pub sessions: Vec<Did>,
}

/// A page of a principal's agents, oldest first; pass `next_offset` as
/// `offset` for the next page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentsPage {
    pub principal: Did,
    /// How many agents the principal registered in all.
    pub total: u64,
    pub items: Vec<AgentSummary>,
    pub next_offset: Option<u64>,
}

/// A page of the payments waiting for a principal's approval, in id order;
/// pass `next_after` as `after` for the next page. One read looks at a
/// bounded number of approvals, so a page may hold fewer than asked (even
/// none) while `next_after` says there may be more; `null` is the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApprovalsPage {
    pub items: Vec<agentrail_core::state::PendingApproval>,
    pub next_after: Option<u64>,
}
