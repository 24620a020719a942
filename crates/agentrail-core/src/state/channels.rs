//! Payment channels in the state machine.
//!
//! ```text
//! open ──▶ Open ──(collect, top-up)──▶ Open
//!            │ payee closes (collects first) ─────────────▶ Closed
//!            │ payer starts a close ──▶ Closing ──(collect)──▶ Closing
//!            │                             │ payee closes ─▶ Closed
//!            │                             │ window ends ──▶ Closed
//!            │ expiry ──────────────────────────────────────▶ Expired
//! ```
//!
//! The deposit sits in the payer's `held` money. A collect moves the newly
//! vouched amount to the payee; the end of a channel returns the rest to the
//! payer and gives it back to the budgets it was charged to (latest charge
//! first). Invariants, asserted in tests and by [`State::check_invariants`]:
//! `collected ≤ deposit` (the payee never receives more than the deposit);
//! `collected` is the sum of what each sub-channel redeemed, each at most
//! the total of a voucher the payer signed (the payer never loses more than
//! it signed); a voucher is redeemed only above what its sub-channel
//! redeemed before, and never below its nonce (an older voucher never
//! beats a newer one); an ended channel moves nothing.
//!
//! A payee may redeem less than a voucher's total (`amounts`): what it
//! charged, when the payer signed credit ahead for calls not yet made. It
//! may later redeem the same voucher further, up to its total.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Charge, Expiry, State, check_category_field, check_key, check_nonzero};
use crate::amount::Amount;
use crate::channel::{ChannelId, Voucher, check_sub_channel_id};
use crate::command::{ChannelRef, CollectChannel, Command, OpenChannel, TopUpChannel};
use crate::constants::{
    CHANNEL_DURATION_DEFAULT_S, CHANNEL_DURATION_MAX_S, DISPUTE_WINDOW_DEFAULT_S,
    DISPUTE_WINDOW_MAX_S, DISPUTE_WINDOW_MIN_S, SUB_CHANNELS_PER_CHANNEL_MAX,
    TOP_UPS_PER_CHANNEL_MAX, VOUCHERS_PER_COMMAND_MAX,
};
use crate::did::Did;
use crate::ed25519::{self, Item};
use crate::event::{CloseReason, Event};
use crate::rejection::Rejection;
use crate::time::Timestamp;

/// Where a channel stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ChannelStatus {
    Open,
    /// The payer started a close; the payee may collect until `closes_at`.
    Closing {
        closes_at: Timestamp,
    },
    Closed,
    Expired,
}

/// The best voucher redeemed on one sub-channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Redeemed {
    pub nonce: u64,
    pub amount: Amount,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub(super) struct ChannelRecord {
    pub(super) creator: Did,
    pub(super) request: OpenChannel,
    outcome: Vec<Event>,
    voucher_key: Did,
    deposit: Amount,
    collected: Amount,
    /// What the deposit was counted against: the open, then each top-up.
    charges: Vec<Charge>,
    expires_at: Timestamp,
    dispute_window_s: u64,
    pub(super) status: ChannelStatus,
    sub_channels: BTreeMap<String, Redeemed>,
}

impl ChannelRecord {
    /// Money still reserved for the payee.
    pub(super) fn remaining(&self) -> Amount {
        self.deposit
            .checked_sub(self.collected)
            .expect("a channel never pays out more than its deposit")
    }

    /// When time alone next changes the channel, while it holds money.
    pub(super) fn deadline(&self) -> Option<Timestamp> {
        match self.status {
            ChannelStatus::Open => Some(self.expires_at),
            ChannelStatus::Closing { closes_at } => Some(closes_at),
            ChannelStatus::Closed | ChannelStatus::Expired => None,
        }
    }
}

/// A channel as readers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChannelView {
    pub channel_id: ChannelId,
    pub from: Did,
    pub payee: Did,
    pub voucher_key: Did,
    pub deposit: Amount,
    pub collected: Amount,
    pub expires_at: Timestamp,
    pub dispute_window_s: u64,
    pub status: ChannelStatus,
    /// The best voucher redeemed on each sub-channel.
    pub sub_channels: BTreeMap<String, Redeemed>,
}

impl State {
    /// A channel, open or ended.
    pub fn channel(&self, channel_id: &ChannelId) -> Option<ChannelView> {
        self.channels.get(channel_id).map(|record| ChannelView {
            channel_id: *channel_id,
            from: record.request.from,
            payee: record.request.payee,
            voucher_key: record.voucher_key,
            deposit: record.deposit,
            collected: record.collected,
            expires_at: record.expires_at,
            dispute_window_s: record.dispute_window_s,
            status: record.status,
            sub_channels: record.sub_channels.clone(),
        })
    }

    /// Every channel's id and status.
    pub fn channels(&self) -> impl Iterator<Item = (&ChannelId, ChannelStatus)> {
        self.channels.iter().map(|(id, record)| (id, record.status))
    }

    /// The network hash vouchers must sign.
    pub fn network(&self) -> &[u8; 32] {
        &self.network
    }

    /// A channel that still holds money; with `open_only`, one that is not
    /// closing either.
    fn live_channel(
        &self,
        channel_id: ChannelId,
        open_only: bool,
    ) -> Result<&ChannelRecord, Rejection> {
        let record = self
            .channels
            .get(&channel_id)
            .ok_or(Rejection::ChannelNotFound { channel_id })?;
        match record.status {
            ChannelStatus::Open => Ok(record),
            ChannelStatus::Closing { .. } if open_only => {
                Err(Rejection::ChannelClosing { channel_id })
            }
            ChannelStatus::Closing { .. } => Ok(record),
            ChannelStatus::Closed => Err(Rejection::ChannelClosed { channel_id }),
            ChannelStatus::Expired => Err(Rejection::ChannelExpired { channel_id }),
        }
    }

    pub(super) fn open_channel(
        &mut self,
        signer: Did,
        open: &OpenChannel,
        command: &Command,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        check_key("idempotency_key", &open.idempotency_key)?;
        check_category_field(open.category.as_deref())?;
        check_nonzero(open.deposit)?;
        let channel_id = ChannelId::derive(&open.from, &open.payee, &open.idempotency_key);
        if let Some(existing) = self.channels.get(&channel_id) {
            if existing.creator == signer
                && Command::OpenChannel(existing.request.clone()) == *command
            {
                return Ok(vec![Event::Duplicate {
                    original: existing.outcome.clone(),
                }]);
            }
            return Err(Rejection::IdempotencyConflict {
                key: open.idempotency_key.clone(),
            });
        }
        if open.from == open.payee {
            return Err(Rejection::SameAccount);
        }
        if !self.accounts.contains_key(&open.payee) {
            return Err(Rejection::UnknownAccount { did: open.payee });
        }
        let expires_at_max = now
            .checked_add_seconds(CHANNEL_DURATION_MAX_S)
            .expect("clock is bounded");
        let expires_at = match open.expires_at {
            Some(at) => at,
            None => now
                .checked_add_seconds(CHANNEL_DURATION_DEFAULT_S)
                .expect("clock is bounded"),
        };
        if expires_at <= now || expires_at > expires_at_max {
            return Err(Rejection::InvalidField {
                field: "expires_at",
                reason: "must be in the future and at most 90 days ahead",
            });
        }
        let dispute_window_s = open.dispute_window_s.unwrap_or(DISPUTE_WINDOW_DEFAULT_S);
        if !(DISPUTE_WINDOW_MIN_S..=DISPUTE_WINDOW_MAX_S).contains(&dispute_window_s) {
            return Err(Rejection::InvalidField {
                field: "dispute_window_s",
                reason: "must be between 60 seconds and 7 days",
            });
        }
        let voucher_key = open.voucher_key.unwrap_or(signer);
        if voucher_key.public_key().is_none() {
            return Err(Rejection::InvalidField {
                field: "voucher_key",
                reason: "is not a valid Ed25519 key",
            });
        }
        let plan = self.plan_spend(
            signer,
            &open.from,
            open.deposit,
            Some(&open.payee),
            open.category.as_deref(),
            now,
        )?;
        if plan.needs_approval {
            return Err(Rejection::NotAuthorized {
                reason: "the deposit is above an approval threshold: only the principal may open this channel",
            });
        }
        self.check_outlives(&[signer, voucher_key], expires_at)?;

        self.charge(&plan.charge);
        self.reserve(&open.from, open.deposit);
        let outcome = vec![Event::ChannelOpened {
            channel_id,
            from: open.from,
            payee: open.payee,
            deposit: open.deposit,
            voucher_key,
            expires_at,
        }];
        self.channels.insert(
            channel_id,
            ChannelRecord {
                creator: signer,
                request: open.clone(),
                outcome: outcome.clone(),
                voucher_key,
                deposit: open.deposit,
                collected: Amount::ZERO,
                charges: vec![plan.charge],
                expires_at,
                dispute_window_s,
                status: ChannelStatus::Open,
                sub_channels: BTreeMap::new(),
            },
        );
        self.expiries
            .insert((expires_at, Expiry::Channel(channel_id)));
        Ok(outcome)
    }

    pub(super) fn top_up_channel(
        &mut self,
        signer: Did,
        top_up: &TopUpChannel,
        command: &Command,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        check_key("idempotency_key", &top_up.idempotency_key)?;
        check_nonzero(top_up.amount)?;
        let channel_id = top_up.channel_id;
        let from = self
            .channels
            .get(&channel_id)
            .ok_or(Rejection::ChannelNotFound { channel_id })?
            .request
            .from;
        self.spending_chain(signer, &from)?;
        if let Some(original) = self.recall(from, &top_up.idempotency_key, command)? {
            return Ok(original);
        }
        let record = self.live_channel(channel_id, true)?;
        if record.charges.len() >= TOP_UPS_PER_CHANNEL_MAX {
            return Err(Rejection::InvalidField {
                field: "channel_id",
                reason: "the channel was topped up 256 times: open a new one",
            });
        }
        let deposit = record
            .deposit
            .checked_add(top_up.amount)
            .ok_or(Rejection::AmountOverflow)?;
        let (from, payee, category) = (
            record.request.from,
            record.request.payee,
            record.request.category.clone(),
        );
        let plan = self.plan_spend(
            signer,
            &from,
            top_up.amount,
            Some(&payee),
            category.as_deref(),
            now,
        )?;
        if plan.needs_approval {
            return Err(Rejection::NotAuthorized {
                reason: "the top-up is above an approval threshold: only the principal may add it",
            });
        }
        self.check_outlives(&[signer], self.channels[&channel_id].expires_at)?;

        self.charge(&plan.charge);
        self.reserve(&from, top_up.amount);
        let record = self.channels.get_mut(&channel_id).expect("checked above");
        record.deposit = deposit;
        record.charges.push(plan.charge);
        let outcome = vec![Event::ChannelToppedUp {
            channel_id,
            from,
            amount: top_up.amount,
            deposit,
        }];
        self.remember(from, &top_up.idempotency_key, command, &outcome);
        Ok(outcome)
    }

    /// A collect, or with `close` the payee's cooperative close: redeems the
    /// vouchers, then (for a close) returns the rest to the payer.
    pub(super) fn collect_channel(
        &mut self,
        signer: Did,
        collect: &CollectChannel,
        close: bool,
    ) -> Result<Vec<Event>, Rejection> {
        let channel_id = collect.channel_id;
        let record = self.live_channel(channel_id, false)?;
        let payee = record.request.payee;
        let payee_owner = self.accounts.get(&payee).map(|account| account.owner);
        if signer != payee && Some(signer) != payee_owner {
            return Err(Rejection::NotAuthorized {
                reason: "only the channel's payee (or its principal) collects or closes it",
            });
        }
        if collect.vouchers.len() > VOUCHERS_PER_COMMAND_MAX
            || (!close && collect.vouchers.is_empty())
        {
            return Err(Rejection::InvalidField {
                field: "vouchers",
                reason: "a collect redeems 1 to 64 vouchers, a close 0 to 64",
            });
        }
        let redeemed = self.redeem(record, channel_id, &collect.vouchers, &collect.amounts)?;
        let share = match &collect.listing_id {
            None => None,
            Some(listing_id) => {
                let listing =
                    self.listings
                        .get(listing_id)
                        .ok_or_else(|| Rejection::ListingNotFound {
                            listing_id: listing_id.clone(),
                        })?;
                if listing.request.provider != payee {
                    return Err(Rejection::NotAuthorized {
                        reason: "a collect is split only by a listing of the channel's payee",
                    });
                }
                if listing.status != crate::market::ListingStatus::Listed {
                    return Err(Rejection::ListingWithdrawn {
                        listing_id: listing_id.clone(),
                    });
                }
                let share = listing.request.revenue_share.clone();
                // The deposit is the payer's money: each part goes to a
                // payee every mandate that funded the channel allows.
                for charge in &record.charges {
                    self.check_payees(&charge.delegates, share.iter().map(|split| &split.to))?;
                }
                Some(share).filter(|share| !share.is_empty())
            }
        };

        let from = record.request.from;
        let before = record.collected;
        let mut events = Vec::new();
        let record = self.channels.get_mut(&channel_id).expect("checked above");
        let collected = redeemed.collected;
        record.collected = collected;
        record.sub_channels.extend(redeemed.sub_channels);
        let amount = collected.checked_sub(before).expect("a collect only adds");
        if !amount.is_zero() {
            self.take_held(&from, amount);
            let parts = match &share {
                Some(share) => self.pay_out(amount, share),
                None => {
                    self.credit(&payee, amount);
                    Vec::new()
                }
            };
            events.push(Event::ChannelCollected {
                channel_id,
                from,
                payee,
                amount,
                collected,
                parts,
            });
        }
        if close {
            let record = &self.channels[&channel_id];
            let deadline = record.deadline().expect("a live channel has a deadline");
            let removed = self
                .expiries
                .remove(&(deadline, Expiry::Channel(channel_id)));
            assert!(removed, "a live channel waits in the expiry index");
            events.push(self.end_channel(
                channel_id,
                ChannelStatus::Closed,
                CloseReason::Cooperative,
            ));
        }
        Ok(events)
    }

    /// Checks vouchers against a channel without changing anything: shapes,
    /// signatures (in one batch), order within each sub-channel, and the
    /// deposit. What each sub-channel they touch has redeemed after them:
    /// the voucher's nonce and its total, or the smaller amount the payee
    /// asked for (`amounts`).
    fn redeem(
        &self,
        record: &ChannelRecord,
        channel_id: ChannelId,
        vouchers: &[Voucher],
        amounts: &BTreeMap<String, Amount>,
    ) -> Result<Redemption, Rejection> {
        for (sub_channel_id, amount) in amounts {
            let mut paying = vouchers
                .iter()
                .filter(|voucher| voucher.sub_channel_id == *sub_channel_id)
                .peekable();
            if paying.peek().is_none() {
                return Err(Rejection::InvalidField {
                    field: "amounts",
                    reason: "an amount names a sub-channel none of the vouchers pays",
                });
            }
            if paying.any(|voucher| *amount > voucher.accumulated_amount) {
                return Err(Rejection::InvalidField {
                    field: "amounts",
                    reason: "an amount is more than its voucher's total",
                });
            }
        }
        for voucher in vouchers {
            let invalid = |reason| Rejection::InvalidField {
                field: "vouchers",
                reason,
            };
            if voucher.channel_id != channel_id {
                return Err(invalid("a voucher names another channel"));
            }
            if voucher.payee_id != record.request.payee {
                return Err(invalid("a voucher names another payee"));
            }
            if voucher.epoch != 0 {
                return Err(invalid(
                    "epoch must be 0: an agentrail channel is never reopened",
                ));
            }
            check_sub_channel_id(&voucher.sub_channel_id).map_err(invalid)?;
        }
        let key = record
            .voucher_key
            .public_key()
            .expect("checked when the channel opened");
        let messages: Vec<[u8; crate::channel::VOUCHER_BYTES]> = vouchers
            .iter()
            .map(|voucher| voucher.signing_bytes(&self.network))
            .collect();
        let signatures: Vec<[u8; 64]> = vouchers
            .iter()
            .map(|voucher| voucher.payer_signature.0.to_bytes())
            .collect();
        let items: Vec<Item<'_>> = messages
            .iter()
            .zip(&signatures)
            .map(|(message, signature)| Item {
                key: &key,
                message,
                signature,
            })
            .collect();
        if let Some(&first) = ed25519::find_invalid(&items).first() {
            return Err(Rejection::VoucherSignatureInvalid {
                sub_channel_id: vouchers[first].sub_channel_id.clone(),
            });
        }
        let mut sub_channels: BTreeMap<String, Redeemed> = BTreeMap::new();
        let mut collected = record.collected;
        for voucher in vouchers {
            let id = &voucher.sub_channel_id;
            let last = sub_channels
                .get(id)
                .or_else(|| record.sub_channels.get(id))
                .copied()
                .unwrap_or(Redeemed {
                    nonce: 0,
                    amount: Amount::ZERO,
                });
            // What this voucher redeems: its total, or what the payee asked.
            // The same voucher may be redeemed again, further up to its
            // total (a payee collecting as it charges); an older one never.
            let amount = amounts
                .get(id)
                .copied()
                .unwrap_or(voucher.accumulated_amount);
            if voucher.nonce < last.nonce || amount <= last.amount {
                return Err(Rejection::VoucherStale {
                    sub_channel_id: id.clone(),
                    nonce: last.nonce,
                    amount: last.amount,
                });
            }
            let delta = amount.checked_sub(last.amount).expect("checked above");
            collected = collected
                .checked_add(delta)
                .filter(|total| *total <= record.deposit)
                .ok_or(Rejection::ChannelExhausted {
                    deposit: record.deposit,
                    claimed: collected.checked_add(delta).unwrap_or(Amount::MAX),
                })?;
            sub_channels.insert(
                id.clone(),
                Redeemed {
                    nonce: voucher.nonce,
                    amount,
                },
            );
        }
        let new = sub_channels
            .keys()
            .filter(|id| !record.sub_channels.contains_key(*id))
            .count();
        if record.sub_channels.len() + new > SUB_CHANNELS_PER_CHANNEL_MAX {
            return Err(Rejection::InvalidField {
                field: "vouchers",
                reason: "a channel has at most 1024 sub-channels",
            });
        }
        Ok(Redemption {
            collected,
            sub_channels,
        })
    }

    pub(super) fn start_channel_close(
        &mut self,
        signer: Did,
        channel: &ChannelRef,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let channel_id = channel.channel_id;
        let record = self.live_channel(channel_id, true)?;
        // The opener, the grants above it, or the owning principal.
        let owner = self
            .accounts
            .get(&record.request.from)
            .expect("channels reserve from accounts")
            .owner;
        let chain = &record.charges[0].delegates;
        let authority: Vec<Did> = if signer == owner {
            Vec::new()
        } else if let Some(position) = chain.iter().position(|d| *d == signer) {
            chain[position..].to_vec()
        } else {
            return Err(Rejection::NotAuthorized {
                reason: "only the channel's opener, its agent or its principal may close it",
            });
        };
        for subject in &authority {
            self.delegate(subject).check_active(*subject, now)?;
        }
        Ok(vec![self.begin_close(channel_id, now)])
    }

    /// Starts an open channel's close: the payee has the dispute window (up
    /// to the channel's expiry) to redeem the vouchers it holds.
    fn begin_close(&mut self, channel_id: ChannelId, now: Timestamp) -> Event {
        let record = &self.channels[&channel_id];
        assert_eq!(
            record.status,
            ChannelStatus::Open,
            "only an open channel starts closing"
        );
        let expires_at = record.expires_at;
        let closes_at = now
            .checked_add_seconds(record.dispute_window_s)
            .expect("clock is bounded")
            .min(expires_at);

        let removed = self
            .expiries
            .remove(&(expires_at, Expiry::Channel(channel_id)));
        assert!(removed, "an open channel waits in the expiry index");
        self.expiries
            .insert((closes_at, Expiry::Channel(channel_id)));
        self.channels
            .get_mut(&channel_id)
            .expect("checked above")
            .status = ChannelStatus::Closing { closes_at };
        Event::ChannelClosing {
            channel_id,
            closes_at,
        }
    }

    /// What a revocation does to channels: every open channel whose voucher
    /// key or opener lost its grant starts closing. A voucher carries no
    /// time, so the ones signed before the revocation stay good for the
    /// dispute window and the revoked key cannot keep a channel alive.
    pub(super) fn close_channels_of(&mut self, revoked: &[Did], now: Timestamp) -> Vec<Event> {
        let affected: Vec<ChannelId> = self
            .channels
            .iter()
            .filter(|(_, record)| {
                record.status == ChannelStatus::Open
                    && (revoked.contains(&record.voucher_key) || revoked.contains(&record.creator))
            })
            .map(|(id, _)| *id)
            .collect();
        affected
            .into_iter()
            .map(|channel_id| self.begin_close(channel_id, now))
            .collect()
    }

    /// Checks that a channel expiring at `expires_at` ends no later than any
    /// grant above `subjects` (the spending chain, the voucher key's chain):
    /// a session's channel cannot outlive the session.
    fn check_outlives(&self, subjects: &[Did], expires_at: Timestamp) -> Result<(), Rejection> {
        for subject in subjects {
            for link in self.grant_chain(*subject) {
                let grant_ends_at = self.delegate(&link).grant.grant().expires_at;
                if expires_at > grant_ends_at {
                    return Err(Rejection::ChannelOutlivesGrant {
                        subject: link,
                        expires_at,
                        grant_ends_at,
                    });
                }
            }
        }
        Ok(())
    }

    /// Time reached a channel's deadline (already taken off the expiry
    /// index): an open channel expires, a closing one closes.
    pub(super) fn channel_deadline(&mut self, channel_id: ChannelId) -> Event {
        let (status, reason) = match self.channels[&channel_id].status {
            ChannelStatus::Open => (ChannelStatus::Expired, CloseReason::Expired),
            ChannelStatus::Closing { .. } => {
                (ChannelStatus::Closed, CloseReason::DisputeWindowEnded)
            }
            ended => unreachable!("an ended channel ({ended:?}) has no deadline"),
        };
        self.end_channel(channel_id, status, reason)
    }

    /// Ends a live channel whose expiry entry is gone: the rest of the
    /// deposit returns to the payer and to the budgets it was charged to.
    fn end_channel(
        &mut self,
        channel_id: ChannelId,
        status: ChannelStatus,
        reason: CloseReason,
    ) -> Event {
        let record = self
            .channels
            .get_mut(&channel_id)
            .expect("ending a known channel");
        assert!(record.deadline().is_some(), "only a live channel ends");
        record.status = status;
        let refunded = record.remaining();
        let (from, paid, charges) = (
            record.request.from,
            record.collected,
            record.charges.clone(),
        );
        let mut left = refunded;
        for charge in charges.iter().rev() {
            if left.is_zero() {
                break;
            }
            let part = left.min(charge.amount);
            self.refund(&Charge {
                amount: part,
                ..charge.clone()
            });
            left = left.checked_sub(part).expect("part ≤ left");
        }
        assert!(left.is_zero(), "the charges cover the deposit");
        self.unreserve(&from, refunded);
        Event::ChannelClosed {
            channel_id,
            from,
            paid,
            refunded,
            reason,
        }
    }
}

impl State {
    /// Every channel's collected money is what its sub-channels redeemed,
    /// within its deposit.
    pub(super) fn check_channel_books(&self) -> Result<(), super::InvariantViolation> {
        for (channel_id, record) in &self.channels {
            let redeemed = record
                .sub_channels
                .values()
                .try_fold(Amount::ZERO, |sum, sub| sum.checked_add(sub.amount));
            if redeemed != Some(record.collected) || record.collected > record.deposit {
                return Err(super::InvariantViolation(format!(
                    "channel {channel_id} collected {} of a {} deposit, its sub-channels redeemed {redeemed:?}",
                    record.collected, record.deposit
                )));
            }
        }
        Ok(())
    }

    /// No open channel outlives a grant above its opener or its voucher
    /// key, or stays open once one of them is revoked.
    pub(super) fn check_channel_authority(&self) -> Result<(), super::InvariantViolation> {
        for (channel_id, record) in &self.channels {
            if record.status != ChannelStatus::Open {
                continue;
            }
            for subject in [record.creator, record.voucher_key] {
                for link in self.grant_chain(subject) {
                    let delegate = self.delegate(&link);
                    if delegate.revoked_at.is_some()
                        || record.expires_at > delegate.grant.grant().expires_at
                    {
                        return Err(super::InvariantViolation(format!(
                            "channel {channel_id} is open beyond the grant of {link}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// What a set of vouchers would change.
struct Redemption {
    collected: Amount,
    sub_channels: BTreeMap<String, Redeemed>,
}
