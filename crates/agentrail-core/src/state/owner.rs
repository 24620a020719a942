//! What a principal owns, as its dashboard shows it: its agents in the order
//! they were registered, each agent's sessions, and the payments that wait
//! for the principal's approval. Reads only; every list is bounded by its
//! caller's page size.

use serde::{Deserialize, Serialize};

use super::{ApprovalStatus, Identity, State};
use crate::amount::Amount;
use crate::constants::APPROVALS_SCANNED_MAX;
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
    /// pass as `after` for the next page, if there may be more. One call
    /// looks at no more than [`APPROVALS_SCANNED_MAX`] approvals (the state
    /// keeps decided ones for a retention, every principal's): a page may
    /// then hold fewer than `limit` with a `next_after` to go on from.
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
        for (scanned, (&approval_id, record)) in self.approvals.range(start..).enumerate() {
            if scanned == APPROVALS_SCANNED_MAX {
                // Everything below this id was looked at.
                return (page, Some(approval_id - 1));
            }
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
                return (page, Some(approval_id - 1));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Charge;

    fn did(n: u8) -> Did {
        Did::from_public_key_bytes([n; 32])
    }

    fn approval(from: Did, status: ApprovalStatus) -> super::super::ApprovalRecord {
        super::super::ApprovalRecord {
            signer: from,
            transfer: crate::command::Transfer {
                from,
                to: did(99),
                amount: Amount::from_atomic(1),
                memo: None,
                category: None,
                idempotency_key: "k".into(),
            },
            charge: Charge {
                delegates: Vec::new(),
                day: 0,
                amount: Amount::from_atomic(1),
            },
            expires_at: Timestamp(1),
            status,
        }
    }

    #[test]
    fn pages_of_pending_approvals_cover_each_once_within_the_scan_bound() {
        let (mine, theirs) = (did(1), did(2));
        let mut state = State::new(crate::state::Genesis {
            operator: did(0),
            network: [0; 32],
            chain: None,
        });
        for owner in [mine, theirs] {
            state.accounts.insert(
                owner,
                super::super::Account {
                    balance: Default::default(),
                    owner,
                },
            );
        }
        // Mine pending every third id, decided ones and theirs between,
        // more than one scan's worth.
        let total = APPROVALS_SCANNED_MAX as u64 * 2 + 17;
        let mut expected = Vec::new();
        for id in 1..=total {
            let (from, status) = match id % 3 {
                0 => (mine, ApprovalStatus::Pending),
                1 => (mine, ApprovalStatus::Approved),
                _ => (theirs, ApprovalStatus::Pending),
            };
            if from == mine && status == ApprovalStatus::Pending {
                expected.push(id);
            }
            state.approvals.insert(id, approval(from, status));
        }
        for limit in [1, 7, 100] {
            let (mut seen, mut after, mut calls) = (Vec::new(), 0, 0);
            loop {
                let (page, next) = state.pending_approvals_of(&mine, after, limit);
                assert!(page.len() <= limit);
                seen.extend(page.iter().map(|p| p.approval_id));
                calls += 1;
                match next {
                    Some(next) => after = next,
                    None => break,
                }
            }
            assert_eq!(seen, expected, "limit {limit}");
            assert!(calls >= expected.len() / limit);
        }
        assert!(
            state
                .pending_approvals_of(&theirs, u64::MAX, 10)
                .0
                .is_empty()
        );
    }
}
