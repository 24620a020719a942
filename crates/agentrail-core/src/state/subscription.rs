//! Subscriptions: a payer's side lets a payee collect at most an amount
//! per period (a UTC day, week or calendar month) until an end or a
//! cancellation. The drawing is in [`crate::economy`].
//!
//! Each collect is a payment from the payer to the payee charged to the
//! mandate of the key that subscribed, checked when it happens: the grants'
//! per-payment limit, payees, categories, and daily and total budgets bind
//! as they bind a transfer, and a revoked or expired grant stops the
//! subscription (its collects are refused with the grant's code). A
//! collect that would need a principal's approval is refused: a payee
//! cannot wait for one.
//!
//! A payer's account has at most 64 live subscriptions
//! ([`SUBSCRIPTIONS_PER_ACCOUNT_MAX`]): each is a record the state keeps
//! until it ends.
//!
//! Invariants: no money is held (a collect moves money at once, so
//! conservation is a transfer's); one collect per period number; no
//! collect above the subscription's amount, after its end or after a
//! cancellation.

use serde::{Deserialize, Serialize};

use super::retention::Forget;
use super::{State, check_category_field, check_key, check_nonzero};
use crate::constants::SUBSCRIPTIONS_PER_ACCOUNT_MAX;
use crate::did::Did;
use crate::economy::{
    CancelSubscription, CollectSubscription, Subscribe, SubscriptionStatus, SubscriptionView,
};
use crate::event::Event;
use crate::rejection::Rejection;
use crate::time::Timestamp;

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub(super) struct SubscriptionRecord {
    subscriber: Did,
    terms: Subscribe,
    outcome: Vec<Event>,
    created_at: Timestamp,
    cancelled: bool,
    collected: crate::amount::Amount,
    collects: u64,
    last_period: Option<u64>,
    /// The last collect and what it did, so that its retry gets it back.
    last_collect: Option<(Did, CollectSubscription, Vec<Event>)>,
    /// Who cancelled it and what that did, for the same reason.
    #[serde(default)]
    cancel: Option<(Did, Vec<Event>)>,
}

impl SubscriptionRecord {
    fn status(&self, now: Timestamp) -> SubscriptionStatus {
        if self.cancelled {
            SubscriptionStatus::Cancelled
        } else if self.terms.ends_at.is_some_and(|end| now >= end) {
            SubscriptionStatus::Ended
        } else {
            SubscriptionStatus::Active
        }
    }

    pub(super) fn ends_at(&self) -> Option<Timestamp> {
        self.terms.ends_at
    }

    pub(super) fn is_cancelled(&self) -> bool {
        self.cancelled
    }
}

fn status_name(status: SubscriptionStatus) -> &'static str {
    match status {
        SubscriptionStatus::Active => "active",
        SubscriptionStatus::Cancelled => "cancelled",
        SubscriptionStatus::Ended => "ended",
    }
}

impl State {
    pub fn subscription(&self, subscription_id: &str) -> Option<SubscriptionView> {
        let record = self.subscriptions.get(subscription_id)?;
        Some(SubscriptionView {
            terms: record.terms.clone(),
            subscriber: record.subscriber,
            created_at: record.created_at,
            status: record.status(self.clock),
            collected: record.collected,
            collects: record.collects,
            last_period: record.last_period,
        })
    }

    fn subscription_record(&self, subscription_id: &str) -> Result<&SubscriptionRecord, Rejection> {
        self.subscriptions
            .get(subscription_id)
            .ok_or_else(|| Rejection::SubscriptionNotFound {
                subscription_id: subscription_id.to_owned(),
            })
    }

    pub(super) fn subscribe(
        &mut self,
        signer: Did,
        subscribe: &Subscribe,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        check_key("subscription_id", &subscribe.subscription_id)?;
        if let Some(existing) = self.subscriptions.get(&subscribe.subscription_id) {
            if existing.subscriber == signer && existing.terms == *subscribe {
                return Ok(vec![Event::Duplicate {
                    original: existing.outcome.clone(),
                }]);
            }
            return Err(Rejection::IdempotencyConflict {
                key: subscribe.subscription_id.clone(),
            });
        }
        check_nonzero(subscribe.amount)?;
        check_category_field(subscribe.category.as_deref())?;
        if subscribe.from == subscribe.payee {
            return Err(Rejection::SameAccount);
        }
        if !self.accounts.contains_key(&subscribe.payee) {
            return Err(Rejection::UnknownAccount {
                did: subscribe.payee,
            });
        }
        if subscribe.ends_at.is_some_and(|end| end <= now) {
            return Err(Rejection::InvalidField {
                field: "ends_at",
                reason: "must be after the subscription starts",
            });
        }
        self.check_acts_for(signer, &subscribe.from, now)?;
        let live = self
            .subscriptions
            .values()
            .filter(|record| record.terms.from == subscribe.from)
            .filter(|record| record.status(now) == SubscriptionStatus::Active)
            .count();
        if live >= SUBSCRIPTIONS_PER_ACCOUNT_MAX {
            return Err(Rejection::TooManySubscriptions {
                from: subscribe.from,
                max: SUBSCRIPTIONS_PER_ACCOUNT_MAX,
            });
        }
        // What a period's collect will be checked against, checked now too:
        // a subscription its own mandate could never pay is refused here.
        let delegates = self.spending_chain(signer, &subscribe.from)?;
        let needs_approval = self.check_grants(
            &delegates,
            subscribe.amount,
            Some(&subscribe.payee),
            subscribe.category.as_deref(),
            now,
        )?;
        if needs_approval {
            return Err(Rejection::ApprovalRequired {
                subject: signer,
                amount: subscribe.amount,
            });
        }
        let outcome = vec![Event::SubscriptionCreated {
            subscription_id: subscribe.subscription_id.clone(),
            from: subscribe.from,
            payee: subscribe.payee,
            amount: subscribe.amount,
            period: subscribe.period,
        }];
        if let Some(ends_at) = subscribe.ends_at {
            self.forget_after(
                ends_at,
                Forget::Subscription(subscribe.subscription_id.clone()),
            );
        }
        self.subscriptions.insert(
            subscribe.subscription_id.clone(),
            SubscriptionRecord {
                subscriber: signer,
                terms: subscribe.clone(),
                outcome: outcome.clone(),
                created_at: now,
                cancelled: false,
                collected: crate::amount::Amount::ZERO,
                collects: 0,
                last_period: None,
                last_collect: None,
                cancel: None,
            },
        );
        Ok(outcome)
    }

    pub(super) fn collect_subscription(
        &mut self,
        signer: Did,
        collect: &CollectSubscription,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let record = self.subscription_record(&collect.subscription_id)?;
        let terms = record.terms.clone();
        self.check_acts_for(signer, &terms.payee, now)
            .map_err(|rejection| match rejection {
                Rejection::NotAuthorized { .. } => Rejection::NotAuthorized {
                    reason: "only the subscription's payee (or its principal) collects it",
                },
                other => other,
            })?;
        let period_index = terms.period.index(now);
        if record.last_period == Some(period_index) {
            if let Some((by, last, outcome)) = &record.last_collect
                && *by == signer
                && last == collect
            {
                return Ok(vec![Event::Duplicate {
                    original: outcome.clone(),
                }]);
            }
            return Err(Rejection::SubscriptionAlreadyCollected {
                subscription_id: collect.subscription_id.clone(),
                period_index,
                next_at: terms.period.next_start(now),
            });
        }
        let status = record.status(now);
        if status != SubscriptionStatus::Active {
            return Err(Rejection::SubscriptionNotActive {
                subscription_id: collect.subscription_id.clone(),
                status: status_name(status),
            });
        }
        check_nonzero(collect.amount)?;
        if collect.amount > terms.amount {
            return Err(Rejection::SubscriptionAmountExceeded {
                amount: collect.amount,
                limit: terms.amount,
            });
        }
        let plan = self.plan_spend(
            record.subscriber,
            &terms.from,
            collect.amount,
            Some(&terms.payee),
            terms.category.as_deref(),
            now,
        )?;
        if plan.needs_approval {
            return Err(Rejection::ApprovalRequired {
                subject: record.subscriber,
                amount: collect.amount,
            });
        }

        self.charge(&plan.charge);
        self.debit(&terms.from, collect.amount);
        self.credit(&terms.payee, collect.amount);
        let outcome = vec![Event::SubscriptionCollected {
            subscription_id: collect.subscription_id.clone(),
            from: terms.from,
            payee: terms.payee,
            amount: collect.amount,
            period_index,
        }];
        let record = self
            .subscriptions
            .get_mut(&collect.subscription_id)
            .expect("found above");
        record.collected = record
            .collected
            .checked_add(collect.amount)
            .unwrap_or(crate::amount::Amount::MAX);
        record.collects += 1;
        record.last_period = Some(period_index);
        record.last_collect = Some((signer, collect.clone(), outcome.clone()));
        Ok(outcome)
    }

    pub(super) fn cancel_subscription(
        &mut self,
        signer: Did,
        cancel: &CancelSubscription,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let record = self.subscription_record(&cancel.subscription_id)?;
        let (from, payee) = (record.terms.from, record.terms.payee);
        if !(self.acts_for(signer, &from, now) || self.acts_for(signer, &payee, now)) {
            return Err(Rejection::NotAuthorized {
                reason: "only the subscription's payer or payee (or their principals) cancels it",
            });
        }
        if let Some((by, outcome)) = &record.cancel
            && *by == signer
        {
            return Ok(vec![Event::Duplicate {
                original: outcome.clone(),
            }]);
        }
        let status = record.status(now);
        if status != SubscriptionStatus::Active {
            return Err(Rejection::SubscriptionNotActive {
                subscription_id: cancel.subscription_id.clone(),
                status: status_name(status),
            });
        }
        let ends_at = record.terms.ends_at;
        let id = cancel.subscription_id.clone();
        if let Some(ends_at) = ends_at {
            self.unforget_after(ends_at, &Forget::Subscription(id.clone()));
        }
        let outcome = vec![Event::SubscriptionCancelled {
            subscription_id: id.clone(),
            by: signer,
        }];
        let record = self.subscriptions.get_mut(&id).expect("found above");
        record.cancelled = true;
        record.cancel = Some((signer, outcome.clone()));
        self.forget_later(Forget::Subscription(id));
        Ok(outcome)
    }
}
