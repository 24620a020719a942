//! What a principal owns, as its dashboard shows it: its agents in the order
//! they were registered, each agent's sessions, and the payments that wait
//! for the principal's approval. Reads only; every list is bounded by its
//! caller's page size.

use serde::{Deserialize, Serialize};

use super::{ApprovalStatus, Identity, State};
use crate::amount::Amount;
use crate::did::Did;
use crate::time::Timestamp;

/// A payment above an approval threshold that waits for the principal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PendingApproval {
    /// What `approve` and `decline` name.
    pub approval_id: u64,
    /// The key that asked for the payment (an agent or a session).
    pub signer: Did,
    pub from: Did,
    pub to: Did,
    pub amount: Amount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// When the held amount returns to `from` if nobody decides.
    pub expires_at: Timestamp,
}

impl State {
    /// The agents a principal registered, oldest first (revoked and expired
    /// ones included: the list only grows); `None` if `principal` is not a
    /// registered principal.
    pub fn agents_of(&self, principal: &Did) -> Option<&[Did]> {
        match self.identities.get(principal)? {
            Identity::Principal { agents } => Some(agents),
            _ => None,
        }
    }

    /// The sessions an agent issued that were live when its newest session
    /// was issued, oldest first; `None` if `agent` is not an agent.
    pub fn sessions_of(&self, agent: &Did) -> Option<&[Did]> {
        match self.identities.get(agent)? {
            Identity::Agent(delegate) => Some(&delegate.sessions),
            _ => None,
        }
    }

    /// At most `limit` payments waiting for `principal`'s approval, from
    /// accounts it owns, with ids above `after`, in id order; and the id to
    /// pass as `after` for the next page, if there may be more.
    pub fn pending_approvals_of(
        &self,
        principal: &Did,
        after: u64,
        limit: usize,
    ) -> (Vec<PendingApproval>, Option<u64>) {
        let mut page = Vec::new();
        let Some(start) = after.checked_add(1) else {
            return (page, None);
        };
        for (&approval_id, record) in self.approvals.range(start..) {
            if record.status != ApprovalStatus::Pending {
                continue;
            }
            let owner = self
                .accounts
                .get(&record.transfer.from)
                .map(|account| account.owner);
            if owner != Some(*principal) {
                continue;
            }
            if page.len() == limit {
                let last = page.last().map(|p: &PendingApproval| p.approval_id);
                return (page, last);
            }
            page.push(PendingApproval {
                approval_id,
                signer: record.signer,
                from: record.transfer.from,
                to: record.transfer.to,
                amount: record.transfer.amount,
                memo: record.transfer.memo.clone(),
                category: record.transfer.category.clone(),
                expires_at: record.expires_at,
            });
        }
        (page, None)
    }
}
