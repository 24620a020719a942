//! Payments off the ledger counted against a mandate (`charge_mandate`).
//!
//! An agent that pays on a chain (x402's `exact`: a token transfer from
//! its own address) moves no ledger money, so the ledger cannot stop the
//! transfer. What it can do, and does here, is hold such payments to the
//! same grants as ledger payments when the agent's software asks first:
//! the per-payment limit and the daily and total budgets of every grant of
//! the spending chain apply, and the amount counts against those budgets,
//! so ledger payments and chain payments share one budget and every chain
//! payment is a leaf of the log. A grant that names payees or categories,
//! or asks approval above a threshold, allows no payment off the ledger:
//! a chain address can be checked against none of them.
//!
//! Invariant: no balance changes (conservation holds trivially); a charge
//! is counted once per idempotency key, in the paying account's key space.

use super::{Charge, State, check_key, check_nonzero};
use crate::command::{ChargeMandate, Command};
use crate::did::Did;
use crate::event::Event;
use crate::grant::Limit;
use crate::rejection::Rejection;
use crate::time::Timestamp;

/// Longest `payee` (a CAIP-10 account id) and `reference`.
const OFF_LEDGER_TEXT_MAX: usize = 128;

fn check_off_ledger_text(field: &'static str, text: &str) -> Result<(), Rejection> {
    let valid = !text.is_empty()
        && text.len() <= OFF_LEDGER_TEXT_MAX
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.".contains(&b));
    if !valid {
        return Err(Rejection::InvalidField {
            field,
            reason: "must be 1-128 characters of A-Z, a-z, 0-9, ':', '-', '_', '.'",
        });
    }
    Ok(())
}

impl State {
    pub(super) fn charge_mandate(
        &mut self,
        signer: Did,
        charge: &ChargeMandate,
        command: &Command,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        check_key("idempotency_key", &charge.idempotency_key)?;
        check_nonzero(charge.amount)?;
        check_off_ledger_text("payee", &charge.payee)?;
        check_off_ledger_text("reference", &charge.reference)?;
        let delegates = self.spending_chain(signer, &charge.from)?;
        if delegates.is_empty() {
            return Err(Rejection::NotAuthorized {
                reason: "a principal has no mandate to charge",
            });
        }
        if let Some(original) = self.recall(charge.from, &charge.idempotency_key, command)? {
            return Ok(original);
        }
        for subject in &delegates {
            let limits = &self.delegate(subject).grant.grant().limits;
            let limit = if limits.allowed_payees.is_some() {
                Some(Limit::AllowedPayees)
            } else if limits.allowed_categories.is_some() {
                Some(Limit::AllowedCategories)
            } else if limits.approval_threshold.is_some() {
                Some(Limit::ApprovalThreshold)
            } else if limits.daily_approval_threshold.is_some() {
                Some(Limit::DailyApprovalThreshold)
            } else {
                None
            };
            if let Some(limit) = limit {
                return Err(Rejection::OffLedgerPaymentNotAllowed {
                    subject: *subject,
                    limit,
                });
            }
        }
        let needs_approval = self.check_grants(&delegates, charge.amount, None, None, now)?;
        assert!(!needs_approval, "grants with approvals were refused above");
        self.charge(&Charge {
            delegates,
            day: now.utc_day(),
            amount: charge.amount,
        });
        let outcome = vec![Event::MandateCharged {
            from: charge.from,
            signer,
            amount: charge.amount,
            payee: charge.payee.clone(),
            reference: charge.reference.clone(),
        }];
        self.remember(charge.from, &charge.idempotency_key, command, &outcome);
        Ok(outcome)
    }
}
