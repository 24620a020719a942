//! Money in and out of the ledger: deposits, withdrawals, and — on a ledger
//! bound to a chain — the vault's deposits credited in order and its
//! payouts recorded.
//!
//! ```text
//! off chain:  operator ─ deposit ─▶ account      principal ─ withdraw ─▶ gone
//! on chain:   vault Deposited(id) ─▶ operator's deposit {chain: id, tx, log}
//!               id = credited + 1 ─▶ account (or kept unclaimed for the key
//!               until it registers)
//!             principal ─ withdraw {to: 0x…} ─▶ pending(id) ─▶ vault pays id
//!               once ─▶ operator's settle_withdrawal(id, tx) ─▶ paid
//! ```
//!
//! On a chain ledger the books always show what the vault must hold:
//! `available + held + unclaimed + pending withdrawals`
//! (= deposited − withdrawn + pending), which `agentrail audit` compares
//! with the vault's token balance.

use super::{State, check_funds, check_key, check_nonzero};
use crate::chain::{PendingWithdrawal, deposit_key};
use crate::command::{ClaimDeposits, Command, Deposit, SettleWithdrawal, Withdraw};
use crate::did::Did;
use crate::event::Event;
use crate::rejection::Rejection;
use crate::state::Identity;

impl State {
    pub(super) fn deposit(
        &mut self,
        signer: Did,
        deposit: &Deposit,
        command: &Command,
    ) -> Result<Vec<Event>, Rejection> {
        if signer != self.operator {
            return Err(Rejection::NotOperator);
        }
        check_key("idempotency_key", &deposit.idempotency_key)?;
        check_nonzero(deposit.amount)?;
        let chain = match (self.chain, &deposit.chain) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(Rejection::InvalidField {
                    field: "chain",
                    reason: "this ledger is not bound to a chain",
                });
            }
            (Some(_), None) => return Err(Rejection::ChainDepositRequired),
            (Some(binding), Some(chain)) => {
                if deposit.idempotency_key != deposit_key(binding.chain_id, chain) {
                    return Err(Rejection::InvalidField {
                        field: "idempotency_key",
                        reason: "a chain deposit's key is eip155:<chain id>:deposit:<vault deposit id>",
                    });
                }
                Some(*chain)
            }
        };
        if let Some(original) = self.recall(signer, &deposit.idempotency_key, command)? {
            return Ok(original);
        }
        if let Some(chain) = &chain {
            let expected = self.chain_deposits + 1;
            if chain.id != expected {
                return Err(Rejection::DepositOutOfOrder {
                    expected,
                    got: chain.id,
                });
            }
        }
        let owner = self.accounts.get(&deposit.to).map(|account| account.owner);
        let has_account = owner.is_some();
        if !has_account && chain.is_none() {
            return Err(Rejection::UnknownAccount { did: deposit.to });
        }
        if self.totals.deposited.checked_add(deposit.amount).is_none() {
            // Every balance is at most the total deposited, so this bounds
            // them all. (The vault refuses deposits past this sum.)
            return Err(Rejection::AmountOverflow);
        }

        self.totals.deposited = self
            .totals
            .deposited
            .checked_add(deposit.amount)
            .expect("checked above");
        // A vault deposit names a key, and anyone may send one: only a key
        // that registered itself (a principal, its own account's owner)
        // takes it at once. What is deposited to any other key is kept
        // until that key registers itself: a principal that registers
        // someone else's key as its agent — even while the deposit waits
        // for its confirmations — must not collect what was sent to it.
        let credited = match chain {
            None => has_account,
            Some(_) => owner == Some(deposit.to),
        };
        let event = if credited {
            self.credit(&deposit.to, deposit.amount);
            Event::Deposited {
                to: deposit.to,
                amount: deposit.amount,
            }
        } else {
            let kept = self.unclaimed.entry(deposit.to).or_default();
            *kept = kept.checked_add(deposit.amount).expect("≤ deposited");
            self.totals.unclaimed = self
                .totals
                .unclaimed
                .checked_add(deposit.amount)
                .expect("≤ deposited");
            Event::DepositUnclaimed {
                to: deposit.to,
                amount: deposit.amount,
            }
        };
        if let Some(chain) = chain {
            self.chain_deposits = chain.id;
            self.last_chain_deposit = Some(chain);
        }
        let outcome = vec![event];
        self.remember(signer, &deposit.idempotency_key, command, &outcome);
        Ok(outcome)
    }

    /// Moves what chain deposits kept for `did` into its account, which
    /// has just opened.
    pub(super) fn claim_deposits(&mut self, did: Did) -> Option<Event> {
        let amount = self.unclaimed.remove(&did)?;
        self.totals.unclaimed = self
            .totals
            .unclaimed
            .checked_sub(amount)
            .expect("totals cover every unclaimed deposit");
        self.credit(&did, amount);
        Some(Event::DepositClaimed { to: did, amount })
    }

    /// The signer takes what chain deposits kept for its own key into its
    /// account. Only that key signs this: a principal that registered
    /// someone else's key as its agent cannot collect what was sent to it,
    /// and the key's holder, who can, sees the account's owner first.
    pub(super) fn claim_chain_deposits(
        &mut self,
        signer: Did,
        claim: &ClaimDeposits,
        command: &Command,
    ) -> Result<Vec<Event>, Rejection> {
        check_key("idempotency_key", &claim.idempotency_key)?;
        if let Some(original) = self.recall(signer, &claim.idempotency_key, command)? {
            return Ok(original);
        }
        if !self.accounts.contains_key(&signer) {
            return Err(Rejection::UnknownAccount { did: signer });
        }
        let event = self
            .claim_deposits(signer)
            .ok_or(Rejection::NoUnclaimedDeposits { did: signer })?;
        let outcome = vec![event];
        self.remember(signer, &claim.idempotency_key, command, &outcome);
        Ok(outcome)
    }

    pub(super) fn withdraw(
        &mut self,
        signer: Did,
        withdraw: &Withdraw,
        command: &Command,
    ) -> Result<Vec<Event>, Rejection> {
        check_key("idempotency_key", &withdraw.idempotency_key)?;
        check_nonzero(withdraw.amount)?;
        match (self.chain, withdraw.to) {
            (None, None) | (Some(_), Some(_)) => {}
            (None, Some(_)) => {
                return Err(Rejection::InvalidField {
                    field: "to",
                    reason: "this ledger is not bound to a chain: its withdrawals are paid off chain",
                });
            }
            (Some(_), None) => {
                return Err(Rejection::InvalidField {
                    field: "to",
                    reason: "this ledger pays withdrawals on chain: name the EVM address to pay",
                });
            }
        }
        if withdraw.to.is_some_and(|to| to.0 == [0; 20]) {
            return Err(Rejection::InvalidField {
                field: "to",
                reason: "the zero address cannot receive tokens",
            });
        }
        self.spending_chain(signer, &withdraw.from)?;
        if let Some(original) = self.recall(withdraw.from, &withdraw.idempotency_key, command)? {
            return Ok(original);
        }
        let account = self
            .accounts
            .get(&withdraw.from)
            .ok_or(Rejection::UnknownAccount { did: withdraw.from })?;
        let is_principal = matches!(
            self.identities.get(&signer),
            Some(Identity::Principal { .. })
        );
        if !is_principal || account.owner != signer {
            return Err(Rejection::NotAuthorized {
                reason: "only the principal that owns an account withdraws from it",
            });
        }
        check_funds(account.balance, withdraw.amount)?;

        self.debit(&withdraw.from, withdraw.amount);
        self.totals.withdrawn = self
            .totals
            .withdrawn
            .checked_add(withdraw.amount)
            .expect("withdrawn ≤ deposited");
        let mut outcome = vec![Event::Withdrawn {
            from: withdraw.from,
            amount: withdraw.amount,
        }];
        if let Some(to) = withdraw.to {
            self.withdrawals += 1;
            let pending = PendingWithdrawal {
                id: self.withdrawals,
                from: withdraw.from,
                to,
                amount: withdraw.amount,
            };
            self.pending_withdrawals.insert(pending.id, pending);
            self.totals.pending_withdrawals = self
                .totals
                .pending_withdrawals
                .checked_add(withdraw.amount)
                .expect("pending ≤ withdrawn");
            outcome.push(Event::WithdrawalRequested {
                id: pending.id,
                from: pending.from,
                to,
                amount: pending.amount,
            });
        }
        self.remember(withdraw.from, &withdraw.idempotency_key, command, &outcome);
        Ok(outcome)
    }

    pub(super) fn settle_withdrawal(
        &mut self,
        signer: Did,
        settle: &SettleWithdrawal,
    ) -> Result<Vec<Event>, Rejection> {
        if signer != self.operator {
            return Err(Rejection::NotOperator);
        }
        let pending = self
            .pending_withdrawals
            .remove(&settle.id)
            .ok_or(Rejection::WithdrawalNotFound { id: settle.id })?;
        self.totals.pending_withdrawals = self
            .totals
            .pending_withdrawals
            .checked_sub(pending.amount)
            .expect("totals cover every pending withdrawal");
        Ok(vec![Event::WithdrawalPaid {
            id: pending.id,
            from: pending.from,
            to: pending.to,
            amount: pending.amount,
            tx: settle.tx,
        }])
    }

    /// Withdrawals debited and not yet paid by the vault, by id.
    pub fn pending_withdrawals(&self) -> impl Iterator<Item = &PendingWithdrawal> {
        self.pending_withdrawals.values()
    }

    /// How many of the vault's deposits this ledger credited (the next to
    /// credit has id one more), and the last one.
    pub fn chain_deposits(&self) -> (u64, Option<crate::chain::ChainDeposit>) {
        (self.chain_deposits, self.last_chain_deposit)
    }

    /// What the vault must hold for this ledger: every balance, hold,
    /// unclaimed deposit and withdrawal not yet paid.
    pub fn liabilities(&self) -> crate::Amount {
        let totals = self.totals;
        [totals.held, totals.unclaimed, totals.pending_withdrawals]
            .into_iter()
            .try_fold(totals.available, crate::Amount::checked_add)
            .expect("≤ deposited")
    }
}
