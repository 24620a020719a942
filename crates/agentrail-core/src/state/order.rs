//! Orders: one escrow over several legs (a supply chain's supplier,
//! logistics and warehouse; or one provider's milestones), each delivered
//! and approved on its own. The drawing is in [`crate::economy`].
//!
//! The buyer's side places the order: the legs' total is held from the
//! buyer's account in one command, charged once to its mandate (every
//! leg's provider must be a payee it allows). A leg is delivered by its
//! provider's side, then approved by the buyer's side, by the buyer's
//! silence past the review window, or by the order's arbiter (half of the
//! price or more to the provider). A leg fails when its provider declines
//! it, misses its deadline, loses a dispute (less than half) or the arbiter
//! does not rule in time. Then:
//! - an ordinary order has paid each approved leg when it was approved;
//!   the failed leg pays what the arbiter gave its provider (if anything),
//!   every leg not yet delivered is unwound (its price returns), and legs
//!   delivered before the failure still settle by review or arbitration;
//! - an atomic order has paid nothing: every leg, approved or not, is
//!   unwound and the whole total returns.
//!
//! An atomic order whose every leg is approved pays them all at once. No
//! provider is on the buyer's own side (it could decline its leg to
//! unwind the others), and no part of a delivery goes to the arbiter's.
//!
//! Invariants: the buyer's held money for an order is the sum of the
//! prices of its legs neither paid, failed nor unwound; such an order waits
//! in the expiry index at the earliest time one of its open legs falls
//! due; what the legs paid plus what returned equals the total exactly.

use serde::{Deserialize, Serialize};

use super::market::{check_hash, check_text, check_window, sole};
use super::retention::Forget;
use super::{Charge, Expiry, State, check_category_field, check_key, check_nonzero};
use crate::amount::{Amount, BPS_WHOLE};
use crate::command::Split;
use crate::constants::{
    ARBITRATION_WINDOW_S, NOTE_BYTES_MAX, ORDER_LEGS_MAX, REVIEW_WINDOW_DEFAULT_S,
    REVIEW_WINDOW_MAX_S, REVIEW_WINDOW_MIN_S, TASK_DEADLINE_MAX_S, TASK_DEADLINE_MIN_S,
};
use crate::did::Did;
use crate::economy::{
    ApproveLeg, DeliverLeg, DisputeLeg, LegFailure, LegRef, LegStatus, LegView, OrderStatus,
    OrderView, PlaceOrder, ResolveLeg,
};
use crate::event::Event;
use crate::market::Approver;
use crate::rejection::Rejection;
use crate::split::split_largest_remainder;
use crate::time::Timestamp;

const TEXT_REASON: &str =
    "must be at most 256 bytes without control, bidirectional or invisible characters";

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub(super) struct OrderRecord {
    creator: Did,
    request: PlaceOrder,
    outcome: Vec<Event>,
    charge: Charge,
    placed_at: Timestamp,
    review_window_s: u64,
    deadlines: Vec<Timestamp>,
    legs: Vec<LegStatus>,
    status: OrderStatus,
}

impl OrderRecord {
    /// When time alone next moves one of the order's legs, while it holds
    /// money.
    pub(super) fn deadline(&self) -> Option<Timestamp> {
        self.legs
            .iter()
            .zip(&self.deadlines)
            .filter_map(|(leg, deadline)| leg_due(leg, *deadline))
            .min()
    }

    /// The buyer and what the escrow holds: every leg not settled.
    pub(super) fn escrow(&self) -> (Did, Amount) {
        let held = self
            .legs
            .iter()
            .zip(&self.request.legs)
            .filter(|(status, _)| holds_money(status))
            .map(|(_, leg)| leg.price.atomic())
            .sum::<u128>();
        (self.request.from, Amount::from_atomic(held))
    }

    pub(super) fn has_ended(&self) -> bool {
        matches!(self.status, OrderStatus::Completed | OrderStatus::Unwound)
    }
}

fn holds_money(status: &LegStatus) -> bool {
    status.is_open() || matches!(status, LegStatus::Approved { .. })
}

/// When time alone moves a leg: its deadline, its review's end, its
/// arbitration's end.
fn leg_due(status: &LegStatus, deadline: Timestamp) -> Option<Timestamp> {
    match status {
        LegStatus::Funded => Some(deadline),
        LegStatus::Delivered { review_ends_at, .. } => Some(*review_ends_at),
        LegStatus::Disputed {
            arbitration_ends_at,
            ..
        } => Some(*arbitration_ends_at),
        _ => None,
    }
}

fn total_of(legs: &[crate::economy::OrderLeg]) -> Option<Amount> {
    legs.iter()
        .try_fold(Amount::ZERO, |sum, leg| sum.checked_add(leg.price))
}

impl State {
    pub fn order(&self, order_id: &str) -> Option<OrderView> {
        let record = self.orders.get(order_id)?;
        Some(OrderView {
            order_id: order_id.to_owned(),
            buyer: record.request.from,
            atomic: record.request.atomic,
            arbiter: record.request.arbiter,
            review_window_s: record.review_window_s,
            placed_at: record.placed_at,
            status: record.status,
            total: total_of(&record.request.legs).expect("checked when placed"),
            held: record.escrow().1,
            legs: record
                .legs
                .iter()
                .enumerate()
                .map(|(index, status)| LegView {
                    leg: index as u8,
                    terms: record.request.legs[index].clone(),
                    deadline: record.deadlines[index],
                    status: status.clone(),
                })
                .collect(),
        })
    }

    fn order_leg(&self, order_id: &str, leg: u8) -> Result<(&OrderRecord, &LegStatus), Rejection> {
        let order = self
            .orders
            .get(order_id)
            .ok_or_else(|| Rejection::OrderNotFound {
                order_id: order_id.to_owned(),
            })?;
        let status = order
            .legs
            .get(usize::from(leg))
            .ok_or(Rejection::InvalidField {
                field: "leg",
                reason: "the order has no leg at this position",
            })?;
        Ok((order, status))
    }

    fn leg_wrong_state(
        order_id: &str,
        leg: u8,
        status: &LegStatus,
        expected: &'static str,
    ) -> Rejection {
        Rejection::LegWrongState {
            order_id: order_id.to_owned(),
            leg,
            status: status.name(),
            expected,
        }
    }

    /// Runs `change` on an order with its expiry entry kept in step.
    fn change_order<T>(&mut self, order_id: &str, change: impl FnOnce(&mut State) -> T) -> T {
        if let Some(due) = self.orders[order_id].deadline() {
            let removed = self
                .expiries
                .remove(&(due, Expiry::Order(order_id.to_owned())));
            assert!(removed, "an order holding money waits in the expiry index");
        }
        let result = change(self);
        if let Some(due) = self.orders[order_id].deadline() {
            self.expiries
                .insert((due, Expiry::Order(order_id.to_owned())));
        }
        result
    }

    pub(super) fn place_order(
        &mut self,
        signer: Did,
        place: &PlaceOrder,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        check_key("order_id", &place.order_id)?;
        if let Some(existing) = self.orders.get(&place.order_id) {
            if existing.creator == signer && existing.request == *place {
                return Ok(vec![Event::Duplicate {
                    original: existing.outcome.clone(),
                }]);
            }
            return Err(Rejection::IdempotencyConflict {
                key: place.order_id.clone(),
            });
        }
        if place.legs.is_empty() || place.legs.len() > ORDER_LEGS_MAX {
            return Err(Rejection::InvalidField {
                field: "legs",
                reason: "an order has 1 to 16 legs",
            });
        }
        check_category_field(place.category.as_deref())?;
        let review_window_s = place.review_window_s.unwrap_or(REVIEW_WINDOW_DEFAULT_S);
        check_window(
            "review_window_s",
            review_window_s,
            REVIEW_WINDOW_MIN_S,
            REVIEW_WINDOW_MAX_S,
            "must be between 60 seconds and 7 days",
        )?;
        self.check_acts_for(signer, &place.from, now)?;
        let buyer_root = self.principal_of(&place.from);
        for leg in &place.legs {
            check_nonzero(leg.price)?;
            check_window(
                "deadline_s",
                leg.deadline_s,
                TASK_DEADLINE_MIN_S,
                TASK_DEADLINE_MAX_S,
                "must be between 60 seconds and 90 days",
            )?;
            check_text("description", &leg.description, NOTE_BYTES_MAX, TEXT_REASON)?;
            if !self.accounts.contains_key(&leg.provider) {
                return Err(Rejection::UnknownAccount { did: leg.provider });
            }
            if leg.provider == place.from {
                return Err(Rejection::SameAccount);
            }
            // A provider of the buyer's own side could decline its leg to
            // unwind the order after the others delivered.
            if self.owner_root(&leg.provider) == Some(buyer_root) {
                return Err(Rejection::OwnSideRole { field: "provider" });
            }
        }
        if let Some(arbiter) = place.arbiter {
            let root = self
                .owner_root(&arbiter)
                .ok_or(Rejection::UnknownIdentity { did: arbiter })?;
            let provider_side = place
                .legs
                .iter()
                .any(|leg| self.owner_root(&leg.provider) == Some(root));
            if root == buyer_root || provider_side {
                return Err(Rejection::OwnSideRole { field: "arbiter" });
            }
            if arbiter == self.operator {
                return Err(Rejection::InvalidField {
                    field: "arbiter",
                    reason: "may not be the node operator",
                });
            }
        }
        let total = total_of(&place.legs).ok_or(Rejection::AmountOverflow)?;
        let plan = self.plan_spend(
            signer,
            &place.from,
            total,
            None,
            place.category.as_deref(),
            now,
        )?;
        self.check_payees(
            &plan.charge.delegates,
            place.legs.iter().map(|leg| &leg.provider),
        )?;
        if plan.needs_approval {
            return Err(Rejection::ApprovalRequired {
                subject: signer,
                amount: total,
            });
        }
        let deadlines: Vec<Timestamp> = place
            .legs
            .iter()
            .map(|leg| {
                now.checked_add_seconds(leg.deadline_s)
                    .expect("clock is bounded")
            })
            .collect();

        self.charge(&plan.charge);
        self.reserve(&place.from, total);
        let outcome = vec![Event::OrderPlaced {
            order_id: place.order_id.clone(),
            buyer: place.from,
            total,
            legs: place.legs.len() as u8,
            atomic: place.atomic,
        }];
        let record = OrderRecord {
            creator: signer,
            request: place.clone(),
            outcome: outcome.clone(),
            charge: plan.charge,
            placed_at: now,
            review_window_s,
            deadlines,
            legs: vec![LegStatus::Funded; place.legs.len()],
            status: OrderStatus::Open,
        };
        let due = record.deadline().expect("a new order's legs are funded");
        self.expiries
            .insert((due, Expiry::Order(place.order_id.clone())));
        self.orders.insert(place.order_id.clone(), record);
        Ok(outcome)
    }

    pub(super) fn deliver_leg(
        &mut self,
        signer: Did,
        deliver: &DeliverLeg,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let (order, status) = self.order_leg(&deliver.order_id, deliver.leg)?;
        let provider = order.request.legs[usize::from(deliver.leg)].provider;
        self.check_acts_for(signer, &provider, now)?;
        if *status != LegStatus::Funded {
            return Err(Self::leg_wrong_state(
                &deliver.order_id,
                deliver.leg,
                status,
                "funded and not yet delivered",
            ));
        }
        check_hash("result_hash", &deliver.result_hash)?;
        let manifest = self.delivery_manifest(
            &deliver.manifest,
            || sole(provider),
            &order.charge.delegates,
            order.request.arbiter,
        )?;
        let review_ends_at = now
            .checked_add_seconds(order.review_window_s)
            .expect("clock is bounded");
        let id = deliver.order_id.clone();
        self.change_order(&id, |state| {
            state.orders.get_mut(&id).expect("found above").legs[usize::from(deliver.leg)] =
                LegStatus::Delivered {
                    result_hash: deliver.result_hash.clone(),
                    manifest,
                    review_ends_at,
                };
        });
        Ok(vec![Event::LegDelivered {
            order_id: id,
            leg: deliver.leg,
            provider,
            result_hash: deliver.result_hash.clone(),
            review_ends_at,
        }])
    }

    pub(super) fn approve_leg(
        &mut self,
        signer: Did,
        approve: &ApproveLeg,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let (order, status) = self.order_leg(&approve.order_id, approve.leg)?;
        self.check_acts_for(signer, &order.request.from, now)
            .map_err(|rejection| match rejection {
                Rejection::NotAuthorized { .. } => Rejection::NotAuthorized {
                    reason: "only the buyer's side approves a leg of its order",
                },
                other => other,
            })?;
        let LegStatus::Delivered { result_hash, .. } = status else {
            return Err(Self::leg_wrong_state(
                &approve.order_id,
                approve.leg,
                status,
                "delivered and under review",
            ));
        };
        if *result_hash != approve.result_hash {
            return Err(Rejection::InvalidField {
                field: "result_hash",
                reason: "does not match what was delivered for this leg",
            });
        }
        let id = approve.order_id.clone();
        Ok(self.change_order(&id, |state| {
            state.accept_leg(&id, approve.leg, Approver::Buyer, BPS_WHOLE)
        }))
    }

    pub(super) fn decline_leg(
        &mut self,
        signer: Did,
        decline: &LegRef,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let (order, status) = self.order_leg(&decline.order_id, decline.leg)?;
        let provider = order.request.legs[usize::from(decline.leg)].provider;
        self.check_acts_for(signer, &provider, now)?;
        if *status != LegStatus::Funded {
            return Err(Self::leg_wrong_state(
                &decline.order_id,
                decline.leg,
                status,
                "funded and not yet delivered",
            ));
        }
        let id = decline.order_id.clone();
        Ok(self.change_order(&id, |state| {
            state.fail_leg(&id, decline.leg, LegFailure::Declined, 0)
        }))
    }

    pub(super) fn dispute_leg(
        &mut self,
        signer: Did,
        dispute: &DisputeLeg,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let (order, status) = self.order_leg(&dispute.order_id, dispute.leg)?;
        self.check_acts_for(signer, &order.request.from, now)?;
        let LegStatus::Delivered {
            result_hash,
            manifest,
            ..
        } = status
        else {
            return Err(Self::leg_wrong_state(
                &dispute.order_id,
                dispute.leg,
                status,
                "delivered and under review",
            ));
        };
        let Some(arbiter) = order.request.arbiter else {
            return Err(Rejection::NotAuthorized {
                reason: "the order names no arbiter, so its legs cannot be disputed",
            });
        };
        check_text("reason", &dispute.reason, NOTE_BYTES_MAX, TEXT_REASON)?;
        let (result_hash, manifest) = (result_hash.clone(), manifest.clone());
        let arbitration_ends_at = now
            .checked_add_seconds(ARBITRATION_WINDOW_S)
            .expect("clock is bounded");
        let id = dispute.order_id.clone();
        self.change_order(&id, |state| {
            state.orders.get_mut(&id).expect("found above").legs[usize::from(dispute.leg)] =
                LegStatus::Disputed {
                    result_hash,
                    manifest,
                    reason: dispute.reason.clone(),
                    arbitration_ends_at,
                };
        });
        Ok(vec![Event::LegDisputed {
            order_id: id,
            leg: dispute.leg,
            arbiter,
            arbitration_ends_at,
        }])
    }

    pub(super) fn resolve_leg(
        &mut self,
        signer: Did,
        resolve: &ResolveLeg,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let (order, status) = self.order_leg(&resolve.order_id, resolve.leg)?;
        if order.request.arbiter != Some(signer) {
            return Err(Rejection::NotAuthorized {
                reason: "only the arbiter the order names rules on its legs",
            });
        }
        self.check_role_live(signer, now)?;
        if !matches!(status, LegStatus::Disputed { .. }) {
            return Err(Self::leg_wrong_state(
                &resolve.order_id,
                resolve.leg,
                status,
                "disputed",
            ));
        }
        if resolve.provider_bps > BPS_WHOLE {
            return Err(Rejection::InvalidField {
                field: "provider_bps",
                reason: "must be between 0 and 10000 basis points",
            });
        }
        let id = resolve.order_id.clone();
        let won = u32::from(resolve.provider_bps) * 2 >= u32::from(BPS_WHOLE);
        Ok(self.change_order(&id, |state| {
            if won {
                state.accept_leg(&id, resolve.leg, Approver::Arbiter, resolve.provider_bps)
            } else {
                state.fail_leg(
                    &id,
                    resolve.leg,
                    LegFailure::DisputeLost,
                    resolve.provider_bps,
                )
            }
        }))
    }

    /// What the ledger clock does to an order whose leg fell due: a missed
    /// delivery fails, a silent buyer approves, a silent arbiter fails the
    /// leg. Every leg due by now moves, in order.
    pub(super) fn order_deadline(&mut self, order_id: String, now: Timestamp) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            let order = &self.orders[&order_id];
            if order.has_ended() {
                break;
            }
            let due = order
                .legs
                .iter()
                .zip(&order.deadlines)
                .enumerate()
                .filter_map(|(index, (leg, deadline))| {
                    leg_due(leg, *deadline)
                        .filter(|at| *at <= now)
                        .map(|at| (at, index))
                })
                .min();
            // The earliest due first (then the lowest position): the same
            // outcome whether the clock stopped at each due time or not.
            let Some((_, leg)) = due else { break };
            let leg = leg as u8;
            events.extend(match order.legs[usize::from(leg)] {
                LegStatus::Funded => self.fail_leg(&order_id, leg, LegFailure::DeadlineMissed, 0),
                LegStatus::Delivered { .. } => {
                    self.accept_leg(&order_id, leg, Approver::ReviewWindowEnded, BPS_WHOLE)
                }
                LegStatus::Disputed { .. } => {
                    self.fail_leg(&order_id, leg, LegFailure::ArbitrationLapsed, 0)
                }
                _ => unreachable!("only open legs fall due"),
            });
        }
        if let Some(next) = self.orders[&order_id].deadline() {
            self.expiries.insert((next, Expiry::Order(order_id)));
        }
        events
    }

    /// A leg accepted with `provider_bps` due: paid now, or (an atomic
    /// order) when every leg is accepted. The caller keeps the expiry.
    fn accept_leg(
        &mut self,
        order_id: &str,
        leg: u8,
        by: Approver,
        provider_bps: u16,
    ) -> Vec<Event> {
        let order = self.orders.get_mut(order_id).expect("exists");
        let index = usize::from(leg);
        let manifest = match &order.legs[index] {
            LegStatus::Delivered { manifest, .. } | LegStatus::Disputed { manifest, .. } => {
                manifest.clone()
            }
            other => unreachable!("a {} leg is not accepted", other.name()),
        };
        order.legs[index] = LegStatus::Approved {
            manifest,
            provider_bps,
        };
        let mut events = vec![Event::LegApproved {
            order_id: order_id.to_owned(),
            leg,
            by,
            provider_bps,
        }];
        let atomic = order.request.atomic;
        let all_approved = order
            .legs
            .iter()
            .all(|leg| matches!(leg, LegStatus::Approved { .. } | LegStatus::Paid { .. }));
        if !atomic {
            events.push(self.pay_leg(order_id, leg));
        } else if all_approved {
            for leg in 0..self.orders[order_id].legs.len() {
                events.push(self.pay_leg(order_id, leg as u8));
            }
        }
        events.extend(self.end_if_settled(order_id));
        events
    }

    /// Ends an order none of whose legs holds money any more: completed
    /// if every leg was paid, unwound otherwise (its `OrderUnwound` came
    /// with the failure).
    fn end_if_settled(&mut self, order_id: &str) -> Option<Event> {
        let order = &self.orders[order_id];
        if order.has_ended() || order.legs.iter().any(holds_money) {
            return None;
        }
        let buyer = order.request.from;
        let completed = order
            .legs
            .iter()
            .all(|leg| matches!(leg, LegStatus::Paid { .. }));
        self.orders.get_mut(order_id).expect("exists").status = if completed {
            OrderStatus::Completed
        } else {
            OrderStatus::Unwound
        };
        self.forget_later(Forget::Order(order_id.to_owned()));
        completed.then(|| Event::OrderCompleted {
            order_id: order_id.to_owned(),
            buyer,
        })
    }

    /// Pays an approved leg out of the escrow: its provider's share by
    /// the leg's manifest, the rest back to the buyer.
    fn pay_leg(&mut self, order_id: &str, leg: u8) -> Event {
        let order = &self.orders[order_id];
        let index = usize::from(leg);
        let LegStatus::Approved {
            manifest,
            provider_bps,
        } = &order.legs[index]
        else {
            unreachable!("only an approved leg is paid")
        };
        let (manifest, provider_bps) = (manifest.clone(), *provider_bps);
        let price = order.request.legs[index].price;
        let (buyer, charge) = (order.request.from, order.charge.clone());
        let (parts, refunded) =
            self.settle_leg_money(buyer, &charge, price, provider_bps, &manifest);
        self.orders.get_mut(order_id).expect("exists").legs[index] = LegStatus::Paid {
            parts: parts.clone(),
            refunded,
        };
        Event::LegPaid {
            order_id: order_id.to_owned(),
            leg,
            buyer,
            parts,
            refunded,
        }
    }

    /// Takes a leg's `price` from the buyer's held money: `provider_bps`
    /// of it to `manifest`, the rest back to the buyer and its budgets.
    fn settle_leg_money(
        &mut self,
        buyer: Did,
        charge: &Charge,
        price: Amount,
        provider_bps: u16,
        manifest: &[Split],
    ) -> (Vec<crate::event::Part>, Amount) {
        let shares = split_largest_remainder(price, &[provider_bps, BPS_WHOLE - provider_bps]);
        let (to_provider, refunded) = (shares[0], shares[1]);
        self.take_held(&buyer, to_provider);
        let parts = self.pay_out(to_provider, manifest);
        if !refunded.is_zero() {
            self.refund(&Charge {
                amount: refunded,
                ..charge.clone()
            });
            self.unreserve(&buyer, refunded);
        }
        (parts, refunded)
    }

    /// A leg failed: the order unwinds. In an ordinary order the failed
    /// leg pays `provider_bps` (an arbiter's ruling below half) and every
    /// other leg not yet paid returns; in an atomic order everything
    /// returns. The caller keeps the expiry.
    fn fail_leg(
        &mut self,
        order_id: &str,
        leg: u8,
        reason: LegFailure,
        provider_bps: u16,
    ) -> Vec<Event> {
        let order = &self.orders[order_id];
        let index = usize::from(leg);
        let (buyer, charge, atomic) = (
            order.request.from,
            order.charge.clone(),
            order.request.atomic,
        );
        let mut events = vec![Event::LegFailed {
            order_id: order_id.to_owned(),
            leg,
            reason,
        }];
        // What returns to the buyer here (a partly paid leg settles its
        // own rest in its `LegPaid`).
        let mut to_return = Amount::ZERO;
        let price = order.request.legs[index].price;
        if !atomic && provider_bps > 0 {
            let LegStatus::Disputed { manifest, .. } = &order.legs[index] else {
                unreachable!("only an arbiter's ruling pays a failed leg")
            };
            let manifest = manifest.clone();
            let (parts, back) =
                self.settle_leg_money(buyer, &charge, price, provider_bps, &manifest);
            events.push(Event::LegPaid {
                order_id: order_id.to_owned(),
                leg,
                buyer,
                parts,
                refunded: back,
            });
        } else {
            to_return = price;
        }
        let order = self.orders.get_mut(order_id).expect("exists");
        order.legs[index] = LegStatus::Failed { reason };
        for (other, status) in order.legs.iter_mut().enumerate() {
            // An ordinary order keeps what was delivered: it settles by
            // review or arbitration. An atomic one returns everything.
            let unwinds = if atomic {
                holds_money(status)
            } else {
                *status == LegStatus::Funded
            };
            if other != index && unwinds {
                *status = LegStatus::Unwound;
                to_return = to_return
                    .checked_add(order.request.legs[other].price)
                    .expect("within the order's total");
            }
        }
        order.status = OrderStatus::Unwinding;
        if !to_return.is_zero() {
            self.refund(&Charge {
                amount: to_return,
                ..charge
            });
            self.unreserve(&buyer, to_return);
        }
        events.push(Event::OrderUnwound {
            order_id: order_id.to_owned(),
            buyer,
            refunded: to_return,
        });
        events.extend(self.end_if_settled(order_id));
        events
    }
}
