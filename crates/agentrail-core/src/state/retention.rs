//! Ended records leave the state: a hold released, voided or expired, a
//! payment approved, declined or expired, a settled task with its request
//! for quotes and every quote on it, a request that expired unawarded, a
//! data licence. Each stays readable from the state for
//! [`RECORD_RETENTION_S`] of ledger time after it ended, then
//! [`State::advance`] forgets it and hands its last view out
//! ([`State::take_archived`]) for the node to keep on disk. The state then
//! holds what is live plus one day of what ended, so its memory follows
//! the traffic of a day, not all of history; the journal still holds
//! every command that made and ended each record.
//!
//! What forgetting changes: a client-chosen id (hold, request, quote,
//! task, licence) is unique among the records the state holds, so a day
//! after its record ended it may name a new one, as an idempotency key may
//! ([`crate::constants::IDEMPOTENCY_RETENTION_S`]); no signed request can
//! be replayed that late. Payment channels are never forgotten: an old
//! voucher names its channel by id, and a reused id would make it valid
//! again.
//!
//! ```text
//!   record ends at t ──▶ forget_at ∋ (t + retention, what)
//!   advance(now ≥ t + retention) ──▶ record removed ──▶ archived view
//!   an RFQ: its entry is set at creation (expiry + retention); awarded,
//!   it leaves with its task instead
//! ```

use serde::{Deserialize, Serialize};

use super::{ApprovalStatus, HoldStatus, InvariantViolation, State};
use crate::constants::RECORD_RETENTION_S;
use crate::economy::{BountyView, OrderView, SubscriptionView};
use crate::market::{LicenseView, RfqStatus, RfqView, TaskView};
use crate::time::Timestamp;

/// A record waiting to be forgotten.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub(super) enum Forget {
    Hold(String),
    Approval(u64),
    Task(String),
    Rfq(String),
    License(String),
    Subscription(String),
    Bounty(String),
    Order(String),
}

/// A record the state forgot, as its read showed it last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Archived {
    Hold {
        hold_id: String,
        status: HoldStatus,
    },
    Approval {
        approval_id: u64,
        status: ApprovalStatus,
    },
    Task {
        task_id: String,
        view: TaskView,
    },
    Rfq {
        rfq_id: String,
        view: RfqView,
    },
    License {
        license_id: String,
        view: LicenseView,
    },
    Subscription {
        subscription_id: String,
        view: SubscriptionView,
    },
    Bounty {
        bounty_id: String,
        view: BountyView,
    },
    Order {
        order_id: String,
        view: OrderView,
    },
}

/// Which kind of record an archive key names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveKind {
    Hold,
    Approval,
    Task,
    Rfq,
    License,
    Subscription,
    Bounty,
    Order,
}

impl ArchiveKind {
    pub fn name(self) -> &'static str {
        match self {
            ArchiveKind::Hold => "hold",
            ArchiveKind::Approval => "approval",
            ArchiveKind::Task => "task",
            ArchiveKind::Rfq => "rfq",
            ArchiveKind::License => "license",
            ArchiveKind::Subscription => "subscription",
            ArchiveKind::Bounty => "bounty",
            ArchiveKind::Order => "order",
        }
    }

    /// `<kind>/<id>`: how the node files an archived record.
    pub fn key(self, id: &str) -> String {
        format!("{}/{id}", self.name())
    }
}

impl Archived {
    /// The record's kind and id.
    pub fn kind_and_id(&self) -> (ArchiveKind, String) {
        match self {
            Archived::Hold { hold_id, .. } => (ArchiveKind::Hold, hold_id.clone()),
            Archived::Approval { approval_id, .. } => {
                (ArchiveKind::Approval, approval_id.to_string())
            }
            Archived::Task { task_id, .. } => (ArchiveKind::Task, task_id.clone()),
            Archived::Rfq { rfq_id, .. } => (ArchiveKind::Rfq, rfq_id.clone()),
            Archived::License { license_id, .. } => (ArchiveKind::License, license_id.clone()),
            Archived::Subscription {
                subscription_id, ..
            } => (ArchiveKind::Subscription, subscription_id.clone()),
            Archived::Bounty { bounty_id, .. } => (ArchiveKind::Bounty, bounty_id.clone()),
            Archived::Order { order_id, .. } => (ArchiveKind::Order, order_id.clone()),
        }
    }

    /// The key the record is filed under ([`ArchiveKind::key`]).
    pub fn key(&self) -> String {
        let (kind, id) = self.kind_and_id();
        kind.key(&id)
    }
}

/// When a record that ended at `ended_at` is forgotten.
fn forget_time(ended_at: Timestamp) -> Timestamp {
    ended_at
        .checked_add_seconds(RECORD_RETENTION_S)
        .unwrap_or(Timestamp(u64::MAX))
}

impl State {
    /// Schedules `what`, which ended now, to be forgotten after the
    /// retention.
    pub(super) fn forget_later(&mut self, what: Forget) {
        let inserted = self.forget_at.insert((forget_time(self.clock), what));
        assert!(inserted, "a record ends once");
    }

    /// Schedules `what`, which ends at `ends_at` by its own terms, to be
    /// forgotten a retention after that.
    pub(super) fn forget_after(&mut self, ends_at: Timestamp, what: Forget) {
        self.forget_at.insert((forget_time(ends_at), what));
    }

    /// Takes back a [`State::forget_after`]: the record ended earlier.
    pub(super) fn unforget_after(&mut self, ends_at: Timestamp, what: &Forget) {
        let removed = self.forget_at.remove(&(forget_time(ends_at), what.clone()));
        assert!(removed, "scheduled when it was created");
    }

    /// Schedules a new request for quotes to be forgotten after its expiry,
    /// should nobody be awarded it.
    pub(super) fn forget_rfq_later(&mut self, rfq_id: &str, expires_at: Timestamp) {
        self.forget_at
            .insert((forget_time(expires_at), Forget::Rfq(rfq_id.to_owned())));
    }

    /// Forgets every record whose retention ended by the clock.
    pub(super) fn forget_ended(&mut self) {
        while let Some((at, _)) = self.forget_at.first() {
            if *at > self.clock {
                break;
            }
            let (_, what) = self.forget_at.pop_first().expect("first() was Some");
            match what {
                Forget::Hold(hold_id) => {
                    let record = self.holds.remove(&hold_id).expect("forget names a hold");
                    self.archived.push(Archived::Hold {
                        hold_id,
                        status: record.status,
                    });
                }
                Forget::Approval(approval_id) => {
                    let record = self
                        .approvals
                        .remove(&approval_id)
                        .expect("forget names an approval");
                    self.archived.push(Archived::Approval {
                        approval_id,
                        status: record.status,
                    });
                }
                Forget::Task(task_id) => {
                    let view = self.task(&task_id).expect("forget names a task");
                    self.tasks.remove(&task_id);
                    let rfq_id = view.terms.rfq_id.clone();
                    self.archived.push(Archived::Task { task_id, view });
                    self.forget_rfq(&rfq_id);
                }
                Forget::Rfq(rfq_id) => {
                    let awarded = self.rfqs[&rfq_id].status == RfqStatus::Awarded;
                    // An awarded request leaves with its task.
                    if !awarded {
                        self.forget_rfq(&rfq_id);
                    }
                }
                Forget::License(license_id) => {
                    let view = self.license(&license_id).expect("forget names a licence");
                    self.licenses.remove(&license_id);
                    self.archived.push(Archived::License { license_id, view });
                }
                Forget::Subscription(subscription_id) => {
                    let view = self
                        .subscription(&subscription_id)
                        .expect("forget names a subscription");
                    self.subscriptions.remove(&subscription_id);
                    self.archived.push(Archived::Subscription {
                        subscription_id,
                        view,
                    });
                }
                Forget::Bounty(bounty_id) => {
                    let view = self.bounty(&bounty_id).expect("forget names a bounty");
                    self.bounties.remove(&bounty_id);
                    self.archived.push(Archived::Bounty { bounty_id, view });
                }
                Forget::Order(order_id) => {
                    let view = self.order(&order_id).expect("forget names an order");
                    self.orders.remove(&order_id);
                    self.archived.push(Archived::Order { order_id, view });
                }
            }
        }
    }

    /// Forgets a request for quotes and every quote on it.
    fn forget_rfq(&mut self, rfq_id: &str) {
        let view = self.rfq(rfq_id).expect("a task's request is kept with it");
        let record = self.rfqs.remove(rfq_id).expect("found above");
        self.forget_at.remove(&(
            forget_time(record.expires_at),
            Forget::Rfq(rfq_id.to_owned()),
        ));
        for quote_id in &record.quotes {
            self.quotes.remove(quote_id);
        }
        self.archived.push(Archived::Rfq {
            rfq_id: rfq_id.to_owned(),
            view,
        });
    }

    /// The records forgotten since the last call, oldest first: the node
    /// keeps them on disk, where reads find them once the state has not.
    pub fn take_archived(&mut self) -> Vec<Archived> {
        std::mem::take(&mut self.archived)
    }

    /// Every scheduled entry names a record that exists and has ended (or
    /// an RFQ), none is overdue, every ended record and every unawarded
    /// request has its entry, and every quote's request is held.
    /// O(records).
    pub fn check_retention_invariants(&self) -> Result<(), InvariantViolation> {
        let fail = |message: String| Err(InvariantViolation(message));
        let mut counts = [0usize; 7];
        for (at, what) in &self.forget_at {
            if *at <= self.clock {
                return fail(format!("{what:?} outlived its retention"));
            }
            let ended = match what {
                Forget::Hold(id) => {
                    counts[0] += 1;
                    self.holds
                        .get(id)
                        .is_some_and(|h| h.status != HoldStatus::Reserved)
                }
                Forget::Approval(id) => {
                    counts[1] += 1;
                    self.approvals
                        .get(id)
                        .is_some_and(|a| a.status != ApprovalStatus::Pending)
                }
                Forget::Task(id) => {
                    counts[2] += 1;
                    self.tasks.get(id).is_some_and(|t| {
                        t.deadline().is_none() && self.rfqs.contains_key(t.rfq_id())
                    })
                }
                Forget::License(id) => {
                    counts[3] += 1;
                    self.licenses.contains_key(id)
                }
                Forget::Rfq(id) => self.rfqs.contains_key(id),
                Forget::Subscription(id) => {
                    counts[4] += 1;
                    self.subscriptions.get(id).is_some_and(|record| {
                        // Cancelled, or scheduled by its own end.
                        record.is_cancelled() || record.ends_at().map(forget_time) == Some(*at)
                    })
                }
                Forget::Bounty(id) => {
                    counts[5] += 1;
                    self.bounties
                        .get(id)
                        .is_some_and(|b| b.deadline().is_none())
                }
                Forget::Order(id) => {
                    counts[6] += 1;
                    self.orders.get(id).is_some_and(|o| o.has_ended())
                }
            };
            if !ended {
                return fail(format!("{what:?} is scheduled but not an ended record"));
            }
        }
        let ended = [
            self.holds
                .values()
                .filter(|h| h.status != HoldStatus::Reserved)
                .count(),
            self.approvals
                .values()
                .filter(|a| a.status != ApprovalStatus::Pending)
                .count(),
            self.tasks
                .values()
                .filter(|t| t.deadline().is_none())
                .count(),
            self.licenses.len(),
            self.subscriptions
                .values()
                .filter(|s| s.is_cancelled() || s.ends_at().is_some())
                .count(),
            self.bounties
                .values()
                .filter(|b| b.deadline().is_none())
                .count(),
            self.orders.values().filter(|o| o.has_ended()).count(),
        ];
        if counts != ended {
            return fail(format!(
                "ended records {ended:?} but {counts:?} scheduled to be forgotten"
            ));
        }
        for (id, record) in &self.rfqs {
            let scheduled = self
                .forget_at
                .contains(&(forget_time(record.expires_at), Forget::Rfq(id.clone())));
            if record.status != RfqStatus::Awarded && !scheduled {
                return fail(format!("request {id} is never forgotten"));
            }
        }
        for (id, quote) in &self.quotes {
            if !self.rfqs.contains_key(quote.rfq_id()) {
                return fail(format!("quote {id} outlived its request"));
            }
        }
        Ok(())
    }
}
