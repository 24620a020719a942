//! Events: what an accepted command did. A command yields one or more
//! events; replaying the same commands at the same times yields the same
//! events.

use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::channel::ChannelId;
use crate::did::Did;
use crate::grant::GrantId;
use crate::time::Timestamp;

/// One payee's part of a released hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub to: Did,
    pub amount: Amount,
}

/// Why a channel closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    PaymentDeclined {
        approval_id: u64,
    },
    PaymentExpired {
        approval_id: u64,
    },
    HoldReserved {
        hold_id: String,
        from: Did,
        amount: Amount,
        expires_at: Timestamp,
    },
    HoldReleased {
        hold_id: String,
        parts: Vec<Part>,
    },
    HoldVoided {
        hold_id: String,
    },
    HoldExpired {
        hold_id: String,
    },
    ChannelOpened {
        channel_id: ChannelId,
        from: Did,
        payee: Did,
        deposit: Amount,
        voucher_key: Did,
        expires_at: Timestamp,
    },
    ChannelToppedUp {
        channel_id: ChannelId,
        amount: Amount,
        deposit: Amount,
    },
    /// `amount` moved to the payee now; `collected` is the channel's total.
    ChannelCollected {
        channel_id: ChannelId,
        payee: Did,
        amount: Amount,
        collected: Amount,
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
    /// The command repeated an idempotency key with identical content:
    /// nothing was applied again, and this is the original outcome.
    Duplicate {
        original: Vec<Event>,
    },
}

impl Event {
    /// Every identity the event names (with repeats), for history indexes.
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
            Event::Transferred {
                from, to, signer, ..
            } => out.extend([*from, *to, *signer]),
            Event::PaymentPending { from, to, .. } => out.extend([*from, *to]),
            Event::HoldReserved { from, .. } => out.push(*from),
            Event::HoldReleased { parts, .. } => out.extend(parts.iter().map(|part| part.to)),
            Event::ChannelOpened { from, payee, .. } => out.extend([*from, *payee]),
            Event::ChannelCollected { payee, .. } => out.push(*payee),
            Event::ChannelClosed { from, .. } => out.push(*from),
            Event::Duplicate { original } => original.iter().for_each(|event| event.parties(out)),
            Event::PaymentApproved { .. }
            | Event::PaymentDeclined { .. }
            | Event::PaymentExpired { .. }
            | Event::HoldVoided { .. }
            | Event::HoldExpired { .. }
            | Event::ChannelToppedUp { .. }
            | Event::ChannelClosing { .. } => {}
        }
    }
}
