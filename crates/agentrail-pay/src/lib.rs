//! agentrail-pay: payment channels at the edges, and HTTP 402.
//!
//! - [`Payee`] (this module): the payee's side, below;
//! - [`paywall`]: a `tower` layer that prices an axum provider's routes in
//!   x402 `channel` payments;
//! - [`payer`]: the agent's HTTP client that pays them;
//! - [`x402`]: the x402 v2 messages, agentrail binding.
//!
//! A [`Payee`] accepts vouchers with no round trip to the node: it fetches a
//! channel's facts (voucher key, deposit, expiry) once, then checks each
//! voucher's signature and counters locally, keeps the best voucher of each
//! sub-channel, and collects them from the ledger by threshold, by time and
//! before the channel's deadline.
//!
//! # What is collected
//!
//! A voucher accepted with [`Payee::accept`] is a payment: all of its new
//! money is earned. One accepted with [`Payee::accept_credit`] is credit the
//! payer signed ahead (the paywall's way, where a metered call's cost is
//! known only after it ran): its money is earned only as calls are charged
//! against it ([`Payee::reserve`], [`Reservation::charge`]). The payee
//! collects what it earned on each sub-channel, never more: where that is
//! less than the best voucher's total, the collect names the amount
//! (`amounts`), and the credit left returns to the payer when the channel
//! ends. What was charged is kept with the voucher, so credit and charges
//! both survive a restart.
//!
//! # Durability
//!
//! Accepted vouchers are written to `vouchers.redb` by a flusher thread
//! that commits everything pending with one fsync (group commit) at most
//! [`PayeeOptions::flush_every`] after the first of them. What a crash can
//! lose is the vouchers accepted since the last commit; for each channel it
//! is bounded: once a channel's accepted-but-not-durable amount would exceed
//! [`PayeeOptions::max_unsynced`], [`Payee::accept`] waits for the commit
//! before answering. After a restart the payee holds, for every sub-channel,
//! a voucher at most `max_unsynced` (per channel) below the best one it had
//! accepted, and collects it like any other. Charges are bounded the same
//! way: a crash forgets at most `max_unsynced` of a channel's charges (the
//! payee then collects that much less; the payer never pays more).

#![forbid(unsafe_code)]

pub mod exact;
pub mod exact_store;
pub mod facilitator;
pub mod payer;
pub mod paywall;
pub mod x402;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agentrail_client::{Client, ClientError};
use agentrail_core::channel::{ChannelId, Voucher, check_sub_channel_id, network_hash};
use agentrail_core::command::CollectChannel;
use agentrail_core::ed25519::{self, Item, PublicKey};
use agentrail_core::hashchain::{ChainCommitment, Link};
use agentrail_core::state::{ChannelStatus, ChannelView, Redeemed};
use agentrail_core::{Amount, Command, Did, Timestamp};
use ed25519_dalek::SigningKey;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Per `"<channel id>/<sub-channel id>"`, the best voucher and what was
/// charged against it, as JSON ([`Stored`]; a bare voucher, as stores
/// written before charges were kept hold, was earned in full).
const VOUCHERS: TableDefinition<&str, &[u8]> = TableDefinition::new("vouchers_v1");
/// Longest a charge waits for room in the flusher's queue.
const ROW_WAIT_MAX: Duration = Duration::from_secs(5);
/// Why a channel's sums cannot overflow: each is at most its deposit.
const SUMS: &str = "a channel's sums stay within its deposit";
/// Vouchers accepted and waiting for the flusher, at most.
const PENDING_MAX: usize = 65_536;

/// How the payee keeps and collects vouchers.
#[derive(Clone, Copy, Debug)]
pub struct PayeeOptions {
    /// Longest an accepted voucher waits for its fsync.
    pub flush_every: Duration,
    /// Most a channel's accepted-but-not-durable amount (vouchers, and
    /// charges) may reach before [`Payee::accept`] or a charge waits for
    /// the fsync: the bound of a crash's loss.
    pub max_unsynced: Amount,
    /// Collect once a channel's uncollected amount reaches this.
    pub collect_threshold: Amount,
    /// Collect at least this often while anything is uncollected.
    pub collect_every: Duration,
    /// Collect this long before a channel's deadline (its expiry, or the
    /// end of its dispute window once the payer started a close).
    pub collect_margin: Duration,
    /// How often the collector looks at the channels.
    pub check_every: Duration,
}

impl Default for PayeeOptions {
    fn default() -> PayeeOptions {
        PayeeOptions {
            flush_every: Duration::from_millis(10),
            max_unsynced: Amount::from_atomic(1_000_000),
            collect_threshold: Amount::from_atomic(5_000_000),
            collect_every: Duration::from_secs(3_600),
            collect_margin: Duration::from_secs(600),
            check_every: Duration::from_secs(30),
        }
    }
}

/// Why a voucher was not accepted. Codes are stable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentError {
    #[error("the voucher is not signed by the channel's voucher key")]
    SignatureInvalid,
    #[error(
        "the voucher is not above the best one of its sub-channel (nonce {nonce}, amount {amount})"
    )]
    Stale { nonce: u64, amount: Amount },
    #[error("the channel's vouchers would claim {claimed} but it holds {deposit}")]
    Exhausted { deposit: Amount, claimed: Amount },
    #[error("the channel is closed")]
    ChannelClosed,
    #[error("the channel has expired")]
    ChannelExpired,
    #[error("the channel is closing and takes no new payments")]
    ChannelClosing,
    #[error("no such channel")]
    UnknownChannel,
    #[error("the voucher is malformed: {0}")]
    Malformed(&'static str),
    #[error("the voucher pays another payee")]
    WrongPayee,
    #[error("the sub-channel's credit is {credit}; the call needs {needed}")]
    Insufficient { credit: Amount, needed: Amount },
    #[error("the payee is overloaded; retry")]
    Busy,
    #[error("the voucher store failed: {0}")]
    Storage(String),
    #[error("the node: {0}")]
    Node(#[from] ClientError),
    /// A hash-chain commitment refused before its signature was checked.
    #[error("the hash-chain commitment is refused: {0}")]
    ChainCommitment(#[from] agentrail_core::hashchain::CommitmentError),
    /// The commitment is not signed by the channel's voucher key.
    #[error("the hash-chain commitment is not signed by the channel's voucher key")]
    ChainSignatureInvalid,
    /// A link revealed on a sub-channel without a commitment here (the
    /// payee restarted, or never saw one): commit to a new chain.
    #[error("no hash chain is committed on this sub-channel; send a new commitment")]
    ChainUnknown,
    /// A link that is not the next one of the sub-channel's chain.
    #[error("the link is not link {expected} of the sub-channel's chain")]
    ChainLinkInvalid { expected: u32 },
    /// Every link of the chain was revealed: commit to a new one.
    #[error("the sub-channel's hash chain is used up; send a new commitment")]
    ChainExhausted,
    /// The chain's unit is not the price of the call it would pay.
    #[error("the chain pays {unit} per call; this call costs {price}")]
    ChainPrice { unit: Amount, price: Amount },
}

impl PaymentError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            PaymentError::SignatureInvalid => "voucher_signature_invalid",
            PaymentError::Stale { .. } => "voucher_stale",
            PaymentError::Exhausted { .. } => "channel_exhausted",
            PaymentError::ChannelClosed => "channel_closed",
            PaymentError::ChannelExpired => "channel_expired",
            PaymentError::ChannelClosing => "channel_closing",
            PaymentError::UnknownChannel => "channel_not_found",
            PaymentError::Malformed(_) => "voucher_malformed",
            PaymentError::WrongPayee => "voucher_wrong_payee",
            PaymentError::Insufficient { .. } => "payment_insufficient",
            PaymentError::Busy => "payee_busy",
            PaymentError::Storage(_) => "payee_storage",
            PaymentError::Node(_) => "node_unavailable",
            PaymentError::ChainCommitment(_) => "chain_commitment_invalid",
            PaymentError::ChainSignatureInvalid => "chain_signature_invalid",
            PaymentError::ChainUnknown => "chain_unknown",
            PaymentError::ChainLinkInvalid { .. } => "chain_link_invalid",
            PaymentError::ChainExhausted => "chain_exhausted",
            PaymentError::ChainPrice { .. } => "chain_price_mismatch",
        }
    }
}

/// What an accepted voucher paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// New money: the voucher's total minus the best one before it (zero
    /// for a voucher accepted before, an idempotent retry).
    pub delta: Amount,
    /// The sub-channel's total.
    pub total: Amount,
    /// The sum over the channel's sub-channels.
    pub channel_total: Amount,
}

/// How much of a voucher's new money is earned on acceptance.
#[derive(Clone, Copy, Debug)]
enum Earn {
    /// All of it: the voucher is a payment.
    All,
    /// None yet: it is credit, earned as calls charge it.
    AsCharged,
}

/// Credit set aside for one call ([`Payee::reserve`]).
#[derive(Debug)]
#[must_use = "a reservation dropped uncharged charges nothing"]
pub struct Reservation {
    payee: Payee,
    channel_id: ChannelId,
    sub_channel_id: String,
    needed: Amount,
    open: bool,
}

impl Reservation {
    /// What was set aside.
    pub fn needed(&self) -> Amount {
        self.needed
    }

    /// Earns `cost` (at most what was reserved; the rest is credit again)
    /// and answers the sub-channel's credit left. Waits for the commit when
    /// the channel's unsynced charges are over
    /// [`PayeeOptions::max_unsynced`].
    pub async fn charge(mut self, cost: Amount) -> Result<Amount, PaymentError> {
        self.open = false;
        let (credit, changed) = self.payee.settle_reservation(&self, cost);
        if changed {
            self.payee
                .write_row(self.channel_id, &self.sub_channel_id)
                .await?;
        }
        Ok(credit)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.open {
            self.open = false;
            self.payee.settle_reservation(self, Amount::ZERO);
        }
    }
}

/// A channel's facts, as the ledger last told them.
#[derive(Clone, Debug)]
struct Facts {
    /// The voucher key, decompressed once (`None` if it is not a valid key:
    /// then no voucher verifies).
    public: Option<PublicKey>,
    deposit: Amount,
    expires_at: Timestamp,
    status: ChannelStatus,
}

impl Facts {
    fn from_view(view: &ChannelView) -> Facts {
        Facts {
            public: view.voucher_key.public_key(),
            deposit: view.deposit,
            expires_at: view.expires_at,
            status: view.status,
        }
    }

    /// When the channel stops taking vouchers on the ledger.
    fn deadline(&self) -> Option<Timestamp> {
        match self.status {
            ChannelStatus::Open => Some(self.expires_at),
            ChannelStatus::Closing { closes_at } => Some(closes_at),
            ChannelStatus::Closed | ChannelStatus::Expired => None,
        }
    }
}

/// A sub-channel as the store keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    voucher: Voucher,
    /// What was earned of the voucher's total: at most that total.
    charged: Amount,
}

/// A stored row: a sub-channel, or a bare voucher of an older store.
#[derive(Deserialize)]
#[serde(untagged)]
enum Row {
    Stored(Stored),
    Voucher(Voucher),
}

#[derive(Debug)]
struct SubChannel {
    /// The best voucher accepted.
    best: Voucher,
    /// What was earned of it (durable with it).
    charged: Amount,
    /// What calls being served may still charge (memory only).
    reserved: Amount,
}

impl SubChannel {
    /// Credit left for new calls.
    fn credit(&self) -> Amount {
        self.best
            .accumulated_amount
            .saturating_sub(self.charged)
            .saturating_sub(self.reserved)
    }
}

/// A sub-channel's committed hash chain, as far as it was revealed.
#[derive(Clone, Copy, Debug)]
struct ChainState {
    /// The chain's tip: a commitment to it again (a retry, or a replay by
    /// whoever saw it) leaves the chain where it is.
    tip: Link,
    /// The deepest link revealed (the tip before the first call).
    last: Link,
    /// Links revealed.
    depth: u32,
    length: u32,
    unit: Amount,
}

#[derive(Debug, Default)]
struct ChannelBook {
    facts: Option<Facts>,
    subs: BTreeMap<String, SubChannel>,
    /// Per sub-channel, the hash chain committed last (memory only: after
    /// a restart the payer commits to a new chain; the credit and charges
    /// are durable with the vouchers).
    chains: BTreeMap<String, ChainState>,
    /// Sum of the best vouchers' totals.
    claimed: Amount,
    /// Sum of the sub-channels' charges.
    charged: Amount,
    /// Per sub-channel, the voucher total and the charge its last committed
    /// row holds (or the ledger redeemed); their sums.
    durable: BTreeMap<String, Durable>,
    durable_claimed: Amount,
    durable_charged: Amount,
    /// The ledger's collected total and what it redeemed per sub-channel.
    collected: Amount,
    redeemed: BTreeMap<String, Redeemed>,
    /// Since when money has waited to be collected.
    waiting_since: Option<Instant>,
}

/// What is safe of a sub-channel if the payee crashes now.
#[derive(Clone, Copy, Debug, Default)]
struct Durable {
    total: Amount,
    charged: Amount,
}

impl ChannelBook {
    /// Earned and not collected yet: per sub-channel, what was charged
    /// beyond what the ledger redeemed.
    fn uncollected(&self) -> Amount {
        self.subs
            .iter()
            .map(|(id, sub)| {
                let redeemed = self.redeemed.get(id).map_or(Amount::ZERO, |r| r.amount);
                sub.charged.saturating_sub(redeemed)
            })
            .fold(Amount::ZERO, |sum, part| sum.checked_add(part).expect(SUMS))
    }

    /// Records that a sub-channel's voucher total and charge are safe (a
    /// committed row, or the ledger), never lowering what was.
    fn make_durable(&mut self, sub: &str, total: Amount, charged: Amount) {
        let durable = self.durable.entry(sub.to_owned()).or_default();
        let (total, charged) = (durable.total.max(total), durable.charged.max(charged));
        self.durable_claimed = self
            .durable_claimed
            .checked_add(total.saturating_sub(durable.total))
            .expect(SUMS);
        self.durable_charged = self
            .durable_charged
            .checked_add(charged.saturating_sub(durable.charged))
            .expect(SUMS);
        *durable = Durable { total, charged };
    }

    /// What the ledger redeemed was charged: after a crash that lost
    /// charges the ledger had already collected, the sub-channel's charge
    /// rises to what was redeemed (within its best voucher), so that the
    /// calls it paid for are not served again. The ledger keeps it: it is
    /// durable.
    fn charge_redeemed(&mut self) {
        let raised: Vec<(String, Amount, Amount)> = self
            .redeemed
            .iter()
            .filter_map(|(id, redeemed)| {
                let sub = self.subs.get_mut(id)?;
                let floor = redeemed.amount.min(sub.best.accumulated_amount);
                let raise = floor.saturating_sub(sub.charged);
                sub.charged = sub.charged.max(floor);
                Some((id.clone(), raise, floor))
            })
            .collect();
        for (id, raise, floor) in raised {
            self.charged = self.charged.checked_add(raise).expect(SUMS);
            let total = self.durable.get(&id).map_or(Amount::ZERO, |d| d.total);
            self.make_durable(&id, total, floor);
        }
    }

    /// Whether a commit of this channel's book should be waited for.
    fn over_bound(&self, max_unsynced: Amount) -> bool {
        let unsynced = self
            .claimed
            .saturating_sub(self.durable_claimed)
            .max(self.charged.saturating_sub(self.durable_charged));
        unsynced > max_unsynced
    }

    /// The store's row of a sub-channel, for the flusher.
    fn pending(&self, seq: u64, sub: &str) -> Pending {
        let kept = &self.subs[sub];
        Pending {
            seq,
            stored: Stored {
                voucher: kept.best.clone(),
                charged: kept.charged,
            },
        }
    }
}

#[derive(Debug, Default)]
struct Book {
    channels: HashMap<ChannelId, ChannelBook>,
    /// Sequence number of the last voucher handed to the flusher.
    seq: u64,
}

/// What the flusher is told.
#[derive(Debug)]
// Nearly every message is a `Keep`: boxing it would cost an allocation per
// voucher for the sake of the one `Stop`.
#[allow(clippy::large_enum_variant)]
enum ToFlusher {
    Keep(Pending),
    /// Commit what is pending, then close the store.
    Stop,
}

/// A sub-channel on its way to the disk.
#[derive(Debug)]
struct Pending {
    seq: u64,
    stored: Stored,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    key: SigningKey,
    did: Did,
    network: [u8; 32],
    options: PayeeOptions,
    book: Mutex<Book>,
    to_flusher: SyncSender<ToFlusher>,
    /// The highest sequence number committed.
    durable: watch::Sender<u64>,
    flusher: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The listing whose revenue share splits every collect.
    listing: std::sync::OnceLock<String>,
}

/// A payee: accepts, keeps and collects vouchers. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Payee {
    inner: Arc<Inner>,
}

fn now() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

fn storage(error: impl std::fmt::Display) -> PaymentError {
    PaymentError::Storage(error.to_string())
}

impl Payee {
    /// Opens the voucher store in `directory` (created if needed), loads
    /// the vouchers kept there, and learns the node's network id.
    pub async fn open(
        directory: &Path,
        client: Client,
        key: SigningKey,
        options: PayeeOptions,
    ) -> Result<Payee, PaymentError> {
        std::fs::create_dir_all(directory).map_err(storage)?;
        let db = Database::create(directory.join("vouchers.redb")).map_err(storage)?;
        let mut book = Book::default();
        {
            let txn = db.begin_write().map_err(storage)?;
            txn.open_table(VOUCHERS).map_err(storage)?;
            txn.commit().map_err(storage)?;
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(VOUCHERS).map_err(storage)?;
            for item in table.iter().map_err(storage)? {
                let (_, value) = item.map_err(storage)?;
                let stored = match serde_json::from_slice(value.value()).map_err(storage)? {
                    Row::Stored(stored) => stored,
                    Row::Voucher(voucher) => Stored {
                        charged: voucher.accumulated_amount,
                        voucher,
                    },
                };
                if stored.charged > stored.voucher.accumulated_amount {
                    return Err(storage("a stored charge exceeds its voucher"));
                }
                let channel = book.channels.entry(stored.voucher.channel_id).or_default();
                let overflow = || storage("stored vouchers overflow");
                channel.claimed = channel
                    .claimed
                    .checked_add(stored.voucher.accumulated_amount)
                    .ok_or_else(overflow)?;
                channel.charged = channel
                    .charged
                    .checked_add(stored.charged)
                    .ok_or_else(overflow)?;
                channel.make_durable(
                    &stored.voucher.sub_channel_id,
                    stored.voucher.accumulated_amount,
                    stored.charged,
                );
                channel.subs.insert(
                    stored.voucher.sub_channel_id.clone(),
                    SubChannel {
                        best: stored.voucher,
                        charged: stored.charged,
                        reserved: Amount::ZERO,
                    },
                );
            }
        }
        let network = network_hash(&client.health().await?.network);
        let (to_flusher, pending) = sync_channel(PENDING_MAX);
        let inner = Arc::new(Inner {
            client,
            did: Did::from_verifying_key(&key.verifying_key()),
            key,
            network,
            options,
            book: Mutex::new(book),
            to_flusher,
            durable: watch::Sender::new(0),
            flusher: Mutex::new(None),
            listing: std::sync::OnceLock::new(),
        });
        let weak = Arc::downgrade(&inner);
        let handle = std::thread::Builder::new()
            .name("agentrail-pay-flush".into())
            .spawn(move || flush(db, pending, weak, options.flush_every))
            .map_err(storage)?;
        *inner.flusher.lock().expect("flusher lock") = Some(handle);
        let payee = Payee { inner };
        // Learn what the ledger already collected of the channels kept here.
        let kept: Vec<ChannelId> = payee
            .inner
            .book
            .lock()
            .expect("book lock")
            .channels
            .keys()
            .copied()
            .collect();
        for channel_id in kept {
            if let Err(error) = payee.facts(channel_id, true).await {
                tracing::warn!(%channel_id, %error, "channel facts not fetched at open");
            }
        }
        // What was earned before the restart waits from now.
        for channel in payee
            .inner
            .book
            .lock()
            .expect("book lock")
            .channels
            .values_mut()
        {
            if !channel.uncollected().is_zero() {
                channel.waiting_since = Some(Instant::now());
            }
        }
        Ok(payee)
    }

    /// The payee's identity.
    pub fn did(&self) -> Did {
        self.inner.did
    }

    /// The network hash vouchers must sign.
    pub fn network(&self) -> &[u8; 32] {
        &self.inner.network
    }

    /// Checks a voucher locally and keeps it if it is the best of its
    /// sub-channel: a payment, all of its new money earned. Answers once it
    /// is durable, or within the [`PayeeOptions::max_unsynced`] bound.
    pub async fn accept(&self, voucher: &Voucher) -> Result<Accepted, PaymentError> {
        self.accept_as(voucher, Earn::All).await
    }

    /// [`Payee::accept`] for credit signed ahead: the voucher's new money is
    /// earned only as calls charge it ([`Payee::reserve`]).
    pub async fn accept_credit(&self, voucher: &Voucher) -> Result<Accepted, PaymentError> {
        self.accept_as(voucher, Earn::AsCharged).await
    }

    /// Accepts a hash-chain commitment and the voucher it is bound to (as
    /// credit: [`Payee::accept_credit`]): two signatures, once per chain.
    /// The sub-channel's calls then pay with [`Payee::reveal`]. A newer
    /// commitment on the sub-channel replaces the older one; the credit
    /// the older one left stays credit.
    pub async fn accept_commitment(
        &self,
        voucher: &Voucher,
        commitment: &ChainCommitment,
    ) -> Result<Accepted, PaymentError> {
        commitment.check(voucher)?;
        let facts = self.precheck(voucher).await?;
        let Some(key) = facts.public else {
            return Err(PaymentError::SignatureInvalid);
        };
        let message = voucher.signing_bytes(&self.inner.network);
        let signature = voucher.payer_signature.0.to_bytes();
        if !key.verify(&message, &signature) {
            return Err(PaymentError::SignatureInvalid);
        }
        if !commitment.verify(voucher, &key, &self.inner.network) {
            return Err(PaymentError::ChainSignatureInvalid);
        }
        let accepted = self.keep(voucher, facts, Earn::AsCharged).await?;
        let mut book = self.inner.book.lock().expect("book lock");
        let channel = book.channels.entry(voucher.channel_id).or_default();
        // Only the sub-channel's best voucher binds its chain, and a chain
        // is never rewound: the same commitment again (a retry, or a replay
        // of a captured request) leaves it where it is, so that no link is
        // taken twice.
        if channel
            .subs
            .get(&voucher.sub_channel_id)
            .is_some_and(|sub| sub.best == *voucher)
            && channel
                .chains
                .get(&voucher.sub_channel_id)
                .is_none_or(|chain| chain.tip != commitment.tip)
        {
            channel.chains.insert(
                voucher.sub_channel_id.clone(),
                ChainState {
                    tip: commitment.tip,
                    last: commitment.tip,
                    depth: 0,
                    length: commitment.length,
                    unit: commitment.unit,
                },
            );
        }
        Ok(accepted)
    }

    /// A call paid by link `index` of the sub-channel's chain: one SHA-256,
    /// no signature. The link must be the next one (`index` one past the
    /// links revealed) and hash to the last; the chain's unit is reserved
    /// from the sub-channel's credit, to be charged once the call's outcome
    /// is known ([`Reservation::charge`]). A refused link changes nothing.
    pub fn reveal(
        &self,
        channel_id: ChannelId,
        sub_channel_id: &str,
        index: u32,
        link: Link,
        price: Amount,
    ) -> Result<Reservation, PaymentError> {
        let time = now();
        let mut book = self.inner.book.lock().expect("book lock");
        let channel = book
            .channels
            .get_mut(&channel_id)
            .ok_or(PaymentError::ChainUnknown)?;
        match channel.facts.as_ref().map(|facts| facts.status) {
            Some(ChannelStatus::Closed) => return Err(PaymentError::ChannelClosed),
            Some(ChannelStatus::Expired) => return Err(PaymentError::ChannelExpired),
            Some(ChannelStatus::Closing { .. }) => return Err(PaymentError::ChannelClosing),
            Some(ChannelStatus::Open) => {}
            None => return Err(PaymentError::ChainUnknown),
        }
        if channel
            .facts
            .as_ref()
            .is_some_and(|facts| time >= facts.expires_at)
        {
            return Err(PaymentError::ChannelExpired);
        }
        let chain = channel
            .chains
            .get_mut(sub_channel_id)
            .ok_or(PaymentError::ChainUnknown)?;
        if chain.depth >= chain.length {
            return Err(PaymentError::ChainExhausted);
        }
        if chain.unit != price {
            return Err(PaymentError::ChainPrice {
                unit: chain.unit,
                price,
            });
        }
        let expected = chain.depth + 1;
        if index != expected || link.parent() != chain.last {
            return Err(PaymentError::ChainLinkInvalid { expected });
        }
        let unit = chain.unit;
        let sub = channel
            .subs
            .get_mut(sub_channel_id)
            .ok_or(PaymentError::ChainUnknown)?;
        let credit = sub.credit();
        if credit < unit {
            return Err(PaymentError::Insufficient {
                credit,
                needed: unit,
            });
        }
        sub.reserved = sub.reserved.checked_add(unit).expect("≤ the credit");
        let chain = channel
            .chains
            .get_mut(sub_channel_id)
            .expect("looked up above");
        chain.last = link;
        chain.depth = expected;
        Ok(Reservation {
            payee: self.clone(),
            channel_id,
            sub_channel_id: sub_channel_id.to_owned(),
            needed: unit,
            open: true,
        })
    }

    async fn accept_as(&self, voucher: &Voucher, earn: Earn) -> Result<Accepted, PaymentError> {
        let facts = self.precheck(voucher).await?;
        let signed = facts.public.is_some_and(|key| {
            key.verify(
                &voucher.signing_bytes(&self.inner.network),
                &voucher.payer_signature.0.to_bytes(),
            )
        });
        if !signed {
            return Err(PaymentError::SignatureInvalid);
        }
        self.keep(voucher, facts, earn).await
    }

    /// [`Payee::accept`] (payments) for many vouchers, their signatures checked as one
    /// batch (about half the cost of checking them one by one). Vouchers are
    /// kept in order; each gets its own answer.
    pub async fn accept_batch(&self, vouchers: &[Voucher]) -> Vec<Result<Accepted, PaymentError>> {
        let mut checked = Vec::with_capacity(vouchers.len());
        for voucher in vouchers {
            checked.push(self.precheck(voucher).await);
        }
        let messages: Vec<[u8; agentrail_core::channel::VOUCHER_BYTES]> = vouchers
            .iter()
            .map(|v| v.signing_bytes(&self.inner.network))
            .collect();
        let signatures: Vec<[u8; 64]> = vouchers
            .iter()
            .map(|v| v.payer_signature.0.to_bytes())
            .collect();
        let mut positions = Vec::new();
        let mut items = Vec::new();
        for (position, facts) in checked.iter().enumerate() {
            if let Ok(Facts {
                public: Some(key), ..
            }) = facts
            {
                positions.push(position);
                items.push(Item {
                    key,
                    message: &messages[position],
                    signature: &signatures[position],
                });
            }
        }
        let mut forged = vec![false; vouchers.len()];
        for invalid in ed25519::find_invalid(&items) {
            forged[positions[invalid]] = true;
        }
        let mut answers = Vec::with_capacity(vouchers.len());
        for ((voucher, facts), forged) in vouchers.iter().zip(checked).zip(forged) {
            answers.push(match facts {
                Err(error) => Err(error),
                Ok(Facts { public: None, .. }) => Err(PaymentError::SignatureInvalid),
                Ok(_) if forged => Err(PaymentError::SignatureInvalid),
                Ok(facts) => self.keep(voucher, facts, Earn::All).await,
            });
        }
        answers
    }

    /// The checks that need no signature, and the channel's facts.
    async fn precheck(&self, voucher: &Voucher) -> Result<Facts, PaymentError> {
        if voucher.payee_id != self.inner.did {
            return Err(PaymentError::WrongPayee);
        }
        if voucher.epoch != 0 {
            return Err(PaymentError::Malformed("epoch must be 0"));
        }
        check_sub_channel_id(&voucher.sub_channel_id).map_err(PaymentError::Malformed)?;
        self.facts(voucher.channel_id, false).await
    }

    /// Keeps a voucher whose signature was checked.
    async fn keep(
        &self,
        voucher: &Voucher,
        mut facts: Facts,
        earn: Earn,
    ) -> Result<Accepted, PaymentError> {
        let mut refreshed = false;
        loop {
            match self.record(voucher, &facts, earn) {
                // The payer may have topped up since the facts were fetched.
                Err(PaymentError::Exhausted { .. }) if !refreshed => {
                    facts = self.facts(voucher.channel_id, true).await?;
                    refreshed = true;
                }
                Err(error) => return Err(error),
                Ok((accepted, wait)) => {
                    self.wait_durable(wait).await?;
                    return Ok(accepted);
                }
            }
        }
    }

    /// Waits for the commit of `seq`, if any.
    async fn wait_durable(&self, seq: Option<u64>) -> Result<(), PaymentError> {
        let Some(seq) = seq else {
            return Ok(());
        };
        let mut durable = self.inner.durable.subscribe();
        durable
            .wait_for(|done| *done >= seq)
            .await
            .map(|_| ())
            .map_err(|_| storage("the flusher stopped"))
    }

    /// Updates the book with a verified voucher; the sequence number to
    /// wait for when the channel's unsynced amount is over the bound.
    fn record(
        &self,
        voucher: &Voucher,
        facts: &Facts,
        earn: Earn,
    ) -> Result<(Accepted, Option<u64>), PaymentError> {
        let time = now();
        match facts.status {
            ChannelStatus::Closed => return Err(PaymentError::ChannelClosed),
            ChannelStatus::Expired => return Err(PaymentError::ChannelExpired),
            ChannelStatus::Closing { .. } => return Err(PaymentError::ChannelClosing),
            ChannelStatus::Open if time >= facts.expires_at => {
                return Err(PaymentError::ChannelExpired);
            }
            ChannelStatus::Open => {}
        }
        let mut book = self.inner.book.lock().expect("book lock");
        let channel = book.channels.entry(voucher.channel_id).or_default();
        let previous = channel.subs.get(&voucher.sub_channel_id);
        let (last_nonce, last_amount) = previous
            .map(|sub| (sub.best.nonce, sub.best.accumulated_amount))
            .unwrap_or((0, Amount::ZERO));
        if previous.is_some_and(|sub| sub.best == *voucher) {
            return Ok((
                Accepted {
                    delta: Amount::ZERO,
                    total: last_amount,
                    channel_total: channel.claimed,
                },
                None,
            ));
        }
        if voucher.nonce <= last_nonce || voucher.accumulated_amount <= last_amount {
            return Err(PaymentError::Stale {
                nonce: last_nonce,
                amount: last_amount,
            });
        }
        // The ledger redeems at most so many sub-channels of a channel: a
        // voucher opening one more could never be collected, and would fail
        // every batch it joined.
        if previous.is_none() {
            let known = channel.subs.len()
                + channel
                    .redeemed
                    .keys()
                    .filter(|id| !channel.subs.contains_key(*id))
                    .count();
            if known >= agentrail_core::constants::SUB_CHANNELS_PER_CHANNEL_MAX {
                return Err(PaymentError::Malformed(
                    "a channel has at most 1024 sub-channels (the ledger's bound)",
                ));
            }
        }
        let delta = voucher
            .accumulated_amount
            .checked_sub(last_amount)
            .expect("checked above");
        let claimed = channel
            .claimed
            .checked_add(delta)
            .filter(|claimed| *claimed <= facts.deposit)
            .ok_or(PaymentError::Exhausted {
                deposit: facts.deposit,
                claimed: channel.claimed.checked_add(delta).unwrap_or(Amount::MAX),
            })?;
        let earned = match earn {
            Earn::All => delta,
            Earn::AsCharged => Amount::ZERO,
        };
        let charged = channel
            .charged
            .checked_add(earned)
            .expect("charges ≤ the claimed sum ≤ the deposit");
        let sub = voucher.sub_channel_id.clone();
        let previous = channel.subs.remove(&sub);
        let (sub_charged, reserved) = previous
            .as_ref()
            .map_or((Amount::ZERO, Amount::ZERO), |p| (p.charged, p.reserved));
        channel.subs.insert(
            sub.clone(),
            SubChannel {
                best: voucher.clone(),
                charged: sub_charged
                    .checked_add(earned)
                    .expect("within the channel's sum"),
                reserved,
            },
        );
        let (before_claimed, before_charged) = (channel.claimed, channel.charged);
        channel.claimed = claimed;
        channel.charged = charged;
        if !earned.is_zero() {
            channel.waiting_since.get_or_insert_with(Instant::now);
        }
        let over_bound = channel.over_bound(self.inner.options.max_unsynced);
        book.seq += 1;
        let seq = book.seq;
        let pending = book.channels[&voucher.channel_id].pending(seq, &sub);
        match self.inner.to_flusher.try_send(ToFlusher::Keep(pending)) {
            Ok(()) => {}
            Err(unsent) => {
                // Not kept: undo, so that a retry is accepted.
                let channel = book.channels.get_mut(&voucher.channel_id).expect("above");
                channel.claimed = before_claimed;
                channel.charged = before_charged;
                match previous {
                    Some(previous) => channel.subs.insert(sub, previous),
                    None => channel.subs.remove(&sub),
                };
                return Err(match unsent {
                    TrySendError::Full(_) => PaymentError::Busy,
                    TrySendError::Disconnected(_) => storage("the flusher stopped"),
                });
            }
        }
        Ok((
            Accepted {
                delta,
                total: voucher.accumulated_amount,
                channel_total: claimed,
            },
            over_bound.then_some(seq),
        ))
    }

    /// Sets aside `needed` of a sub-channel's credit for a call being
    /// served, so that concurrent calls cannot spend it twice. The call's
    /// cost is charged with [`Reservation::charge`]; a reservation dropped
    /// uncharged (the call failed or was abandoned) charges nothing.
    pub fn reserve(
        &self,
        channel_id: ChannelId,
        sub_channel_id: &str,
        needed: Amount,
    ) -> Result<Reservation, PaymentError> {
        let mut book = self.inner.book.lock().expect("book lock");
        let sub = book
            .channels
            .get_mut(&channel_id)
            .and_then(|channel| channel.subs.get_mut(sub_channel_id));
        let credit = sub.as_ref().map_or(Amount::ZERO, |sub| sub.credit());
        match sub {
            Some(sub) if credit >= needed => {
                sub.reserved = sub.reserved.checked_add(needed).expect("≤ the credit");
                Ok(Reservation {
                    payee: self.clone(),
                    channel_id,
                    sub_channel_id: sub_channel_id.to_owned(),
                    needed,
                    open: true,
                })
            }
            _ => Err(PaymentError::Insufficient { credit, needed }),
        }
    }

    /// Ends a reservation: `cost` (at most what was reserved) is earned.
    /// The sub-channel's credit left after it, and whether its row must be
    /// written.
    fn settle_reservation(&self, reservation: &Reservation, cost: Amount) -> (Amount, bool) {
        let cost = cost.min(reservation.needed);
        let mut book = self.inner.book.lock().expect("book lock");
        let channel = book
            .channels
            .get_mut(&reservation.channel_id)
            .expect("a reserved channel stays in the book");
        let sub = channel
            .subs
            .get_mut(&reservation.sub_channel_id)
            .expect("a reserved sub-channel stays in the book");
        sub.reserved = sub
            .reserved
            .checked_sub(reservation.needed)
            .expect("reserved above");
        if cost.is_zero() {
            return (sub.credit(), false);
        }
        sub.charged = sub
            .charged
            .checked_add(cost)
            .expect("≤ the voucher's total");
        let credit = sub.credit();
        channel.charged = channel
            .charged
            .checked_add(cost)
            .expect("≤ the claimed sum");
        channel.waiting_since.get_or_insert_with(Instant::now);
        (credit, true)
    }

    /// Hands a sub-channel's row to the flusher, waiting while its queue is
    /// full (the call was served: its charge must not be dropped) up to
    /// [`ROW_WAIT_MAX`], then for the commit when the channel is over the
    /// unsynced bound. A row not handed over stays in the book, written
    /// with the sub-channel's next row.
    async fn write_row(&self, channel_id: ChannelId, sub: &str) -> Result<(), PaymentError> {
        let started = Instant::now();
        loop {
            let wait = {
                let mut book = self.inner.book.lock().expect("book lock");
                let seq = book.seq + 1;
                let channel = &book.channels[&channel_id];
                let over_bound = channel.over_bound(self.inner.options.max_unsynced);
                // Built and sent under the lock, so that rows reach the
                // flusher in the order of the book's changes.
                match self
                    .inner
                    .to_flusher
                    .try_send(ToFlusher::Keep(channel.pending(seq, sub)))
                {
                    Ok(()) => {
                        book.seq = seq;
                        Some(over_bound.then_some(seq))
                    }
                    Err(TrySendError::Full(_)) => None,
                    Err(TrySendError::Disconnected(_)) => {
                        return Err(storage("the flusher stopped"));
                    }
                }
            };
            match wait {
                Some(wait) => return self.wait_durable(wait).await,
                None if started.elapsed() >= ROW_WAIT_MAX => return Err(PaymentError::Busy),
                None => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }

    /// The channel's facts, fetched from the node when not known yet (or
    /// when `refresh`).
    async fn facts(&self, channel_id: ChannelId, refresh: bool) -> Result<Facts, PaymentError> {
        if !refresh {
            let book = self.inner.book.lock().expect("book lock");
            if let Some(facts) = book.channels.get(&channel_id).and_then(|c| c.facts.clone()) {
                return Ok(facts);
            }
        }
        let view = match self.inner.client.channel(&channel_id).await {
            Ok(view) => view,
            Err(error) if error.code() == Some("channel_not_found") => {
                return Err(PaymentError::UnknownChannel);
            }
            Err(error) => return Err(error.into()),
        };
        if view.payee != self.inner.did {
            return Err(PaymentError::WrongPayee);
        }
        let facts = Facts::from_view(&view);
        let mut book = self.inner.book.lock().expect("book lock");
        let channel = book.channels.entry(channel_id).or_default();
        channel.facts = Some(facts.clone());
        channel.collected = view.collected;
        channel.redeemed = view.sub_channels.clone();
        channel.charge_redeemed();
        Ok(facts)
    }

    /// Money earned on a channel and not collected yet.
    pub fn uncollected(&self, channel_id: &ChannelId) -> Amount {
        let book = self.inner.book.lock().expect("book lock");
        book.channels
            .get(channel_id)
            .map(ChannelBook::uncollected)
            .unwrap_or(Amount::ZERO)
    }

    /// A sub-channel's credit: what its best voucher holds beyond what was
    /// charged and what calls being served reserved.
    pub fn credit(&self, channel_id: &ChannelId, sub_channel_id: &str) -> Amount {
        let book = self.inner.book.lock().expect("book lock");
        book.channels
            .get(channel_id)
            .and_then(|channel| channel.subs.get(sub_channel_id))
            .map_or(Amount::ZERO, SubChannel::credit)
    }

    /// What is worth redeeming on a channel: the best voucher of each
    /// sub-channel that earned more than the ledger redeemed, and the
    /// amounts to stop at where less was earned than the voucher says.
    fn redeemable(&self, channel_id: &ChannelId) -> (Vec<Voucher>, BTreeMap<String, Amount>) {
        let book = self.inner.book.lock().expect("book lock");
        let Some(channel) = book.channels.get(channel_id) else {
            return Default::default();
        };
        let mut vouchers = Vec::new();
        let mut amounts = BTreeMap::new();
        for (id, sub) in &channel.subs {
            let redeemed = channel.redeemed.get(id);
            let ahead =
                redeemed.is_none_or(|r| sub.best.nonce >= r.nonce && sub.charged > r.amount);
            if sub.charged.is_zero() || !ahead {
                continue;
            }
            if vouchers.len() == agentrail_core::constants::VOUCHERS_PER_COMMAND_MAX {
                break;
            }
            if sub.charged < sub.best.accumulated_amount {
                amounts.insert(id.clone(), sub.charged);
            }
            vouchers.push(sub.best.clone());
        }
        (vouchers, amounts)
    }

    /// Redeems the channel's best vouchers with the ledger (nothing to do:
    /// `Ok(None)`). The channel stays open.
    pub async fn collect(&self, channel_id: &ChannelId) -> Result<Option<Amount>, PaymentError> {
        self.settle(channel_id, false).await
    }

    /// From now on every collect is split by the payee's listing
    /// `listing_id` and its revenue share (a model's creator and its host),
    /// in the collect's own command. Set once; `false` if it was set.
    pub fn split_by_listing(&self, listing_id: &str) -> bool {
        self.inner.listing.set(listing_id.to_owned()).is_ok()
    }

    /// Redeems the best vouchers and closes the channel: the rest of the
    /// deposit returns to the payer.
    pub async fn close(&self, channel_id: &ChannelId) -> Result<Option<Amount>, PaymentError> {
        self.settle(channel_id, true).await
    }

    async fn settle(
        &self,
        channel_id: &ChannelId,
        close: bool,
    ) -> Result<Option<Amount>, PaymentError> {
        let (vouchers, amounts) = self.redeemable(channel_id);
        if vouchers.is_empty() && !close {
            return Ok(None);
        }
        let body = CollectChannel {
            channel_id: *channel_id,
            vouchers,
            amounts,
            listing_id: self.inner.listing.get().cloned(),
        };
        let command = if close {
            Command::CloseChannel(body)
        } else {
            Command::CollectChannel(body)
        };
        let result = self.inner.client.submit(&self.inner.key, &command).await;
        // Whatever the answer, learn where the ledger stands now.
        let refreshed = self.facts(*channel_id, true).await;
        {
            let mut book = self.inner.book.lock().expect("book lock");
            if let Some(channel) = book.channels.get_mut(channel_id) {
                channel.waiting_since = (!channel.uncollected().is_zero()).then(Instant::now);
            }
        }
        let response = result?;
        refreshed?;
        let paid = response.events.iter().find_map(|event| match event {
            agentrail_core::Event::ChannelCollected { amount, .. } => Some(*amount),
            _ => None,
        });
        Ok(paid.or(Some(Amount::ZERO)))
    }

    /// Collects every channel that is due: over the threshold, not
    /// collected for `collect_every`, or near its deadline. Returns how
    /// many channels it collected.
    pub async fn collect_due(&self) -> usize {
        let options = self.inner.options;
        let due: Vec<ChannelId> = {
            let book = self.inner.book.lock().expect("book lock");
            let time = now();
            book.channels
                .iter()
                .filter(|(_, c)| {
                    let uncollected = c.uncollected();
                    if uncollected.is_zero() {
                        return false;
                    }
                    let near_deadline =
                        c.facts
                            .as_ref()
                            .and_then(Facts::deadline)
                            .is_none_or(|deadline| {
                                time.0 + options.collect_margin.as_secs() >= deadline.0
                            });
                    uncollected >= options.collect_threshold
                        || near_deadline
                        || c.waiting_since
                            .is_some_and(|since| since.elapsed() >= options.collect_every)
                })
                .map(|(id, _)| *id)
                .collect()
        };
        let mut collected = 0;
        for channel_id in due {
            match self.collect(&channel_id).await {
                Ok(Some(_)) => collected += 1,
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%channel_id, code = error.code(), %error, "collect failed")
                }
            }
        }
        collected
    }

    /// Runs [`Payee::collect_due`] every `check_every`, refreshing the
    /// facts of channels with uncollected money first (so that a payer's
    /// close is noticed within its dispute window).
    pub fn spawn_collector(&self) -> tokio::task::JoinHandle<()> {
        let payee = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(payee.inner.options.check_every);
            loop {
                ticks.tick().await;
                let open: Vec<ChannelId> = {
                    let book = payee.inner.book.lock().expect("book lock");
                    book.channels
                        .iter()
                        .filter(|(_, c)| !c.uncollected().is_zero())
                        .map(|(id, _)| *id)
                        .collect()
                };
                for channel_id in open {
                    let _ = payee.facts(channel_id, true).await;
                }
                payee.collect_due().await;
            }
        })
    }

    /// Makes every accepted voucher durable and closes the store; the payee
    /// accepts nothing afterwards.
    pub async fn shutdown(&self) -> Result<(), PaymentError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let _ = inner.to_flusher.send(ToFlusher::Stop);
            if let Some(handle) = inner.flusher.lock().expect("flusher lock").take() {
                let _ = handle.join();
            }
        })
        .await
        .map_err(storage)
    }

    /// Waits until every voucher accepted so far is durable.
    pub async fn sync(&self) -> Result<(), PaymentError> {
        let seq = self.inner.book.lock().expect("book lock").seq;
        self.wait_durable(Some(seq)).await
    }
}

/// The flusher: commits pending vouchers in groups, one fsync each.
fn flush(
    db: Database,
    pending: Receiver<ToFlusher>,
    inner: std::sync::Weak<Inner>,
    window: Duration,
) {
    let mut stop = false;
    while !stop {
        let first = match pending.recv() {
            Ok(ToFlusher::Keep(first)) => first,
            Ok(ToFlusher::Stop) | Err(_) => return,
        };
        // Let the group gather without being woken for every voucher (a
        // blocked receiver costs each sender a wake-up), then take it all.
        std::thread::sleep(window);
        let mut group = vec![first];
        loop {
            match pending.try_recv() {
                Ok(ToFlusher::Keep(next)) => group.push(next),
                Ok(ToFlusher::Stop) | Err(TryRecvError::Disconnected) => {
                    stop = true;
                    break;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        loop {
            match commit(&db, &group) {
                Ok(()) => break,
                Err(error) if stop => {
                    tracing::error!(%error, "vouchers not committed at shutdown");
                    return;
                }
                Err(error) => {
                    tracing::error!(%error, "vouchers not committed; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        {
            let mut book = inner.book.lock().expect("book lock");
            for item in &group {
                let voucher = &item.stored.voucher;
                if let Some(channel) = book.channels.get_mut(&voucher.channel_id) {
                    channel.make_durable(
                        &voucher.sub_channel_id,
                        voucher.accumulated_amount,
                        item.stored.charged,
                    );
                }
            }
        }
        let last = group.iter().map(|item| item.seq).max().unwrap_or(0);
        inner.durable.send_modify(|done| *done = (*done).max(last));
    }
}

fn commit(db: &Database, group: &[Pending]) -> Result<(), redb::Error> {
    // A sub-channel's later rows are newer: only the last is written.
    let mut last: HashMap<(ChannelId, &str), &Stored> = HashMap::new();
    for item in group {
        let voucher = &item.stored.voucher;
        last.insert(
            (voucher.channel_id, voucher.sub_channel_id.as_str()),
            &item.stored,
        );
    }
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    {
        let mut table = txn.open_table(VOUCHERS)?;
        for ((channel_id, sub), stored) in last {
            let bytes = serde_json::to_vec(stored).expect("sub-channels are JSON");
            table.insert(format!("{channel_id}/{sub}").as_str(), bytes.as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}
