//! Every bound the core enforces, in one place (TigerBeetle's
//! `constants.zig` habit). Relations between bounds are checked at compile
//! time below.

/// Seconds in a UTC day; daily budgets reset at 00:00 UTC.
pub const DAY_S: u64 = 86_400;
/// Latest timestamp accepted anywhere (9999-12-31T23:59:59Z).
pub const TIMESTAMP_MAX: u64 = 253_402_300_799;

/// Longest validity window of an agent grant.
pub const AGENT_GRANT_DURATION_MAX_S: u64 = 366 * DAY_S;
/// Longest validity window of a session grant: sessions are short-lived.
pub const SESSION_GRANT_DURATION_MAX_S: u64 = 31 * DAY_S;
/// Live (unexpired, unrevoked) sessions one agent may hold at once.
pub const SESSIONS_PER_AGENT_MAX: usize = 1_024;
/// Agents one principal may register.
pub const AGENTS_PER_PRINCIPAL_MAX: usize = 4_096;
/// Approvals one read of a principal's pending approvals looks at (the
/// state holds decided ones too, for a retention, of every principal).
pub const APPROVALS_SCANNED_MAX: usize = 4_096;

/// Entries in a grant's payee allow or deny list.
pub const PAYEES_PER_LIST_MAX: usize = 64;
/// Entries in a grant's category list.
pub const CATEGORIES_PER_LIST_MAX: usize = 32;
/// Bytes in a category name (`[a-z0-9_.-]`).
pub const CATEGORY_BYTES_MAX: usize = 32;
/// Bytes in a grant nonce (`[A-Za-z0-9_-]`).
pub const NONCE_BYTES_MAX: usize = 64;
/// Bytes in a client-chosen idempotency key or hold id (`[A-Za-z0-9_.:-]`).
pub const KEY_BYTES_MAX: usize = 64;
/// Bytes in a transfer memo (any UTF-8 text without control characters).
pub const MEMO_BYTES_MAX: usize = 256;
/// Payees in one hold release.
pub const SPLIT_PARTS_MAX: usize = 32;

/// How long a payment above an approval threshold waits for the principal.
pub const APPROVAL_WINDOW_S: u64 = DAY_S;
/// How long an idempotency key's outcome is remembered (ledger time from its
/// first use): a retry within it gets the original outcome, a key reused
/// after it is a new command. Signed requests are refused outside a window
/// of minutes (`SIGNATURE_WINDOW_S` in agentrail-wire), so no replay of a
/// request can reach the ledger after its key was forgotten; the bound
/// keeps the ledger's memory proportional to a day of traffic, not to all
/// of history.
pub const IDEMPOTENCY_RETENTION_S: u64 = DAY_S;
/// How long an ended record (a settled hold, payment, task and its request
/// for quotes, a licence) stays in the ledger's state after it ended; then
/// the node keeps its last view on disk (see `state/retention.rs`).
pub const RECORD_RETENTION_S: u64 = DAY_S;
/// Longest a hold may stay reserved before it voids itself.
pub const HOLD_DURATION_MAX_S: u64 = 90 * DAY_S;

/// Longest a payment channel may stay open.
pub const CHANNEL_DURATION_MAX_S: u64 = 90 * DAY_S;
/// How long a channel opened without an expiry stays open.
pub const CHANNEL_DURATION_DEFAULT_S: u64 = 30 * DAY_S;
/// Shortest and longest dispute window of a channel, and its default: how
/// long the payee keeps to collect once the payer starts a close.
pub const DISPUTE_WINDOW_MIN_S: u64 = 60;
pub const DISPUTE_WINDOW_MAX_S: u64 = 7 * DAY_S;
pub const DISPUTE_WINDOW_DEFAULT_S: u64 = DAY_S;
/// Vouchers redeemed by one command.
pub const VOUCHERS_PER_COMMAND_MAX: usize = 64;
/// Sub-channels (concurrent payment streams) of one channel.
pub const SUB_CHANNELS_PER_CHANNEL_MAX: usize = 1_024;
/// Top-ups of one channel (each is a charge the close may refund).
pub const TOP_UPS_PER_CHANNEL_MAX: usize = 256;

const _: () = assert!(SESSION_GRANT_DURATION_MAX_S <= AGENT_GRANT_DURATION_MAX_S);
const _: () = assert!(CATEGORIES_PER_LIST_MAX <= PAYEES_PER_LIST_MAX);
const _: () = assert!(SPLIT_PARTS_MAX <= PAYEES_PER_LIST_MAX);
const _: () = assert!(CHANNEL_DURATION_DEFAULT_S <= CHANNEL_DURATION_MAX_S);
const _: () = assert!(
    DISPUTE_WINDOW_MIN_S <= DISPUTE_WINDOW_DEFAULT_S
        && DISPUTE_WINDOW_DEFAULT_S <= DISPUTE_WINDOW_MAX_S
);
const _: () = assert!(TIMESTAMP_MAX < crate::canonical::JCS_INTEGER_MAX);
const _: () = assert!(TIMESTAMP_MAX + AGENT_GRANT_DURATION_MAX_S + HOLD_DURATION_MAX_S < u64::MAX);

/// Bytes in a listing's name.
pub const LISTING_NAME_BYTES_MAX: usize = 64;
/// Bytes in a listing's or a request's description.
pub const DESCRIPTION_BYTES_MAX: usize = 512;
/// Capability tags of one listing.
pub const CAPABILITIES_PER_LISTING_MAX: usize = 16;
/// Bytes in an endpoint or result URI.
pub const URI_BYTES_MAX: usize = 256;
/// Bytes in a quote's note or a dispute's reason.
pub const NOTE_BYTES_MAX: usize = 256;
/// Listings one account may publish (withdrawn ones included).
pub const LISTINGS_PER_PROVIDER_MAX: usize = 256;
/// Providers a request for quotes may invite.
pub const INVITED_PER_RFQ_MAX: usize = 32;
/// Quotes one request for quotes takes.
pub const QUOTES_PER_RFQ_MAX: usize = 64;
/// Offers on one quote: the quote, then alternating counter-offers. Odd,
/// so the last offer possible is the provider's, which the buyer can
/// accept (a provider meets a buyer's counter by offering its price).
pub const QUOTE_ROUNDS_MAX: u8 = 5;
/// How long a request for quotes takes quotes, at most and by default.
pub const RFQ_DURATION_MAX_S: u64 = 30 * DAY_S;
pub const RFQ_DURATION_DEFAULT_S: u64 = DAY_S;
/// A task's delivery deadline, counted from acceptance.
pub const TASK_DEADLINE_MIN_S: u64 = 60;
pub const TASK_DEADLINE_MAX_S: u64 = 90 * DAY_S;
/// How long a buyer keeps to approve or dispute a delivery.
pub const REVIEW_WINDOW_MIN_S: u64 = 60;
pub const REVIEW_WINDOW_MAX_S: u64 = 7 * DAY_S;
pub const REVIEW_WINDOW_DEFAULT_S: u64 = DAY_S;
/// How long an arbiter keeps to rule; then the escrow returns to the buyer.
pub const ARBITRATION_WINDOW_S: u64 = 7 * DAY_S;
/// Contributions one bounty pays at most.
pub const BOUNTY_CONTRIBUTIONS_MAX: u32 = 1_000;
/// Live subscriptions one account pays at most (each is a record the
/// state keeps until it ends).
pub const SUBSCRIPTIONS_PER_ACCOUNT_MAX: usize = 64;
/// Legs (or milestones) of one order.
pub const ORDER_LEGS_MAX: usize = 16;
/// Listings one discovery page returns.
pub const DISCOVERY_PAGE_MAX: usize = 100;

const _: () = assert!(CAPABILITIES_PER_LISTING_MAX <= CATEGORIES_PER_LIST_MAX);
const _: () = assert!(INVITED_PER_RFQ_MAX <= QUOTES_PER_RFQ_MAX);
const _: () = assert!(QUOTE_ROUNDS_MAX >= 3 && QUOTE_ROUNDS_MAX % 2 == 1);
const _: () = assert!(
    REVIEW_WINDOW_MIN_S <= REVIEW_WINDOW_DEFAULT_S
        && REVIEW_WINDOW_DEFAULT_S <= REVIEW_WINDOW_MAX_S
);
const _: () = assert!(
    TIMESTAMP_MAX + TASK_DEADLINE_MAX_S + REVIEW_WINDOW_MAX_S + ARBITRATION_WINDOW_S < u64::MAX
);
