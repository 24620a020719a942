//! Subscriptions, bounties and orders in the simulation — valid and
//! hostile mixed: collects by anyone and twice in a period, scores by
//! anyone but the validator, approvals of undelivered legs and by the
//! provider, declines, disputes and rulings, with time passing deadlines,
//! review and arbitration windows.
//!
//! What each step must satisfy beyond the ledger's own invariants: a score
//! by anyone but the named validator is refused with `not_validator`; a
//! subscription is collected at most once per period, never above its
//! amount, and never from a revoked or expired subscriber; a bounty's
//! payouts and refund are its budget; an atomic order pays a leg only when
//! it completes; an order's payouts and refunds are its total; a spend
//! (subscribe, bounty, order) is never accepted from a revoked or expired
//! grant.

use std::collections::{BTreeMap, BTreeSet};

use agentrail_core::economy::{
    ApproveLeg, CancelSubscription, CollectSubscription, DeliverLeg, DisputeLeg, LegRef, OrderLeg,
    OrderStatus, Period, PlaceOrder, PostBounty, ResolveLeg, ScoreContribution, SubmitContribution,
    Subscribe,
};
use agentrail_core::{Amount, Authenticated, Command, Event, Rejection};

use super::markets::{RECENT, recent};
use super::{Expect, Simulation, check_eq};
use crate::kit;

type Step = (Result<Authenticated, Rejection>, Expect);

/// What the simulation remembers of the economy it built.
#[derive(Debug, Default)]
pub(super) struct Book {
    /// Subscription id, the subscribing actor, the payee's actor.
    subscriptions: Vec<(String, usize, usize)>,
    /// Periods collected, per subscription.
    collected: BTreeSet<(String, u64)>,
    bounties: Vec<Bounty>,
    orders: Vec<Order>,
    /// Per order: its total, and what its legs paid or returned so far.
    settled: BTreeMap<String, (u128, u128)>,
    /// Per bounty: its budget, and what it paid or returned so far.
    budgets: BTreeMap<String, (u128, u128)>,
}

#[derive(Debug)]
struct Bounty {
    id: String,
    lead: usize,
    validator: usize,
    /// Contribution id, contributing actor.
    contributions: Vec<(String, usize)>,
}

#[derive(Debug)]
struct Order {
    id: String,
    buyer: usize,
    providers: Vec<usize>,
    arbiter: Option<usize>,
    atomic: bool,
}

fn result_hash(id: &str) -> String {
    kit::sha256_hex(id.as_bytes())
}

impl Simulation {
    /// One random subscription, bounty or order step.
    pub(super) fn gen_economy(&mut self) -> Step {
        match self.rng.below(100) {
            0..=9 => self.gen_subscribe(),
            10..=27 => self.gen_collect(),
            28..=31 => self.gen_cancel(),
            32..=39 => self.gen_bounty(),
            40..=51 => self.gen_submit(),
            52..=61 => self.gen_score(),
            62..=69 => self.gen_order(),
            70..=79 => self.gen_deliver_leg(),
            80..=88 => self.gen_approve_leg(),
            89..=91 => self.gen_decline_leg(),
            92..=95 => self.gen_dispute_leg(),
            _ => self.gen_resolve_leg(),
        }
    }

    fn gen_subscribe(&mut self) -> Step {
        let (actor, from) = self.spender();
        let payee = self.pick_actor();
        let id = self.fresh_key("sub");
        let amount = self.spend_amount(actor);
        let period = [Period::Day, Period::Week, Period::Month][self.rng.below(3) as usize];
        let ends_at = self
            .rng
            .chance(1, 3)
            .then(|| agentrail_core::Timestamp(self.now.0 + self.rng.between(3_600, 20 * 86_400)));
        let command = Command::Subscribe(Subscribe {
            subscription_id: id,
            from,
            payee: self.actors[payee].did,
            amount,
            period,
            ends_at,
            category: None,
        });
        let expect = self.spend_expectation(actor);
        (self.sign(actor, command), expect)
    }

    fn gen_collect(&mut self) -> Step {
        if self.economy.subscriptions.is_empty() {
            return self.gen_subscribe();
        }
        let index = recent(&mut self.rng, self.economy.subscriptions.len());
        let (id, _, payee) = self.economy.subscriptions[index].clone();
        // Mostly the payee; sometimes anyone (refused unless it acts for it).
        let signer = if self.rng.chance(1, 8) {
            self.pick_actor()
        } else {
            payee
        };
        let amount = self.spend_amount(signer);
        let command = Command::CollectSubscription(CollectSubscription {
            subscription_id: id,
            amount,
        });
        (self.sign(signer, command), Expect::Anything)
    }

    fn gen_cancel(&mut self) -> Step {
        if self.economy.subscriptions.is_empty() {
            return self.gen_subscribe();
        }
        let index = recent(&mut self.rng, self.economy.subscriptions.len());
        let (id, subscriber, payee) = self.economy.subscriptions[index].clone();
        let signer = match self.rng.below(3) {
            0 => subscriber,
            1 => payee,
            _ => self.pick_actor(),
        };
        let command = Command::CancelSubscription(CancelSubscription {
            subscription_id: id,
        });
        (self.sign(signer, command), Expect::Anything)
    }

    fn gen_bounty(&mut self) -> Step {
        let (actor, from) = self.spender();
        let validator = self.principal_actor();
        let id = self.fresh_key("bounty");
        let price = Amount::from_atomic(self.spend_amount(actor).atomic() / 4 + 1);
        let full_pay_s = self.rng.between(0, 6 * 3_600);
        let command = Command::PostBounty(PostBounty {
            bounty_id: id,
            from,
            price,
            contributions: self.rng.between(1, 4) as u32,
            validator: self.actors[validator].did,
            full_pay_s,
            close_s: full_pay_s + self.rng.between(60, 86_400),
            scoring_window_s: Some(self.rng.between(600, 86_400)),
            category: None,
            description: String::new(),
        });
        let expect = self.spend_expectation(actor);
        (self.sign(actor, command), expect)
    }

    fn gen_submit(&mut self) -> Step {
        if self.economy.bounties.is_empty() {
            return self.gen_bounty();
        }
        let index = recent(&mut self.rng, self.economy.bounties.len());
        let (actor, contributor) = self.spender();
        let id = self.fresh_key("contribution");
        let command = Command::SubmitContribution(SubmitContribution {
            bounty_id: self.economy.bounties[index].id.clone(),
            result_hash: result_hash(&id),
            contribution_id: id,
            contributor,
            manifest: Vec::new(),
        });
        (self.sign(actor, command), Expect::Anything)
    }

    fn gen_score(&mut self) -> Step {
        let len = self.economy.bounties.len();
        let candidates: Vec<usize> = (len.saturating_sub(RECENT)..len)
            .filter(|&i| !self.economy.bounties[i].contributions.is_empty())
            .collect();
        if candidates.is_empty() {
            return self.gen_submit();
        }
        let index = *self.rng.pick(&candidates);
        let bounty = &self.economy.bounties[index];
        let (bounty_id, validator) = (bounty.id.clone(), bounty.validator);
        let pick = self.rng.below(bounty.contributions.len() as u64) as usize;
        let (contribution_id, contributor) = bounty.contributions[pick].clone();
        let lead = bounty.lead;
        // The validator mostly; the lead or the contributor now and then,
        // who must be refused as not the validator (while the bounty is
        // held; a day after it closed it is forgotten).
        let hostile = if self.state.bounty(&bounty_id).is_some() {
            Expect::Refused("not_validator")
        } else {
            Expect::RefusedAny
        };
        let (signer, expect) = match self.rng.below(10) {
            0 if lead != validator => (lead, hostile),
            1 if contributor != validator => (contributor, hostile),
            _ => (validator, Expect::Anything),
        };
        let command = Command::ScoreContribution(ScoreContribution {
            bounty_id,
            result_hash: result_hash(&contribution_id),
            contribution_id,
            score_bps: self.rng.between(0, 10_000) as u16,
        });
        (self.sign(signer, command), expect)
    }

    fn gen_order(&mut self) -> Step {
        let (actor, from) = self.spender();
        let id = self.fresh_key("order");
        let legs = self.rng.between(1, 4);
        let cap = self.spend_amount(actor).atomic();
        let legs: Vec<OrderLeg> = (0..legs)
            .map(|_| {
                let provider = self.pick_actor();
                OrderLeg {
                    provider: self.actors[provider].did,
                    price: Amount::from_atomic(cap / 4 + 1),
                    deadline_s: self.rng.between(3_600, 3 * 86_400),
                    description: String::new(),
                }
            })
            .collect();
        let arbiter = self
            .rng
            .chance(2, 3)
            .then(|| self.principal_actor())
            .map(|arbiter| self.actors[arbiter].did);
        let command = Command::PlaceOrder(PlaceOrder {
            order_id: id,
            from,
            legs,
            atomic: self.rng.chance(1, 2),
            review_window_s: Some(self.rng.between(600, 2 * 86_400)),
            arbiter,
            category: None,
        });
        let expect = self.spend_expectation(actor);
        (self.sign(actor, command), expect)
    }

    /// A recent order and one of its legs.
    fn pick_leg(&mut self) -> Option<(usize, u8)> {
        if self.economy.orders.is_empty() {
            return None;
        }
        let order = recent(&mut self.rng, self.economy.orders.len());
        let leg = self
            .rng
            .below(self.economy.orders[order].providers.len() as u64) as u8;
        Some((order, leg))
    }

    fn leg_result(order: &str, leg: u8) -> String {
        result_hash(&format!("{order}/{leg}"))
    }

    fn gen_deliver_leg(&mut self) -> Step {
        let Some((order, leg)) = self.pick_leg() else {
            return self.gen_order();
        };
        let entry = &self.economy.orders[order];
        let provider = entry.providers[usize::from(leg)];
        let id = entry.id.clone();
        let signer = if self.rng.chance(1, 10) {
            self.pick_actor()
        } else {
            provider
        };
        let command = Command::DeliverLeg(DeliverLeg {
            result_hash: Self::leg_result(&id, leg),
            order_id: id,
            leg,
            manifest: Vec::new(),
        });
        (self.sign(signer, command), Expect::Anything)
    }

    fn gen_approve_leg(&mut self) -> Step {
        let Some((order, leg)) = self.pick_leg() else {
            return self.gen_order();
        };
        let entry = &self.economy.orders[order];
        let (buyer, provider, id) = (
            entry.buyer,
            entry.providers[usize::from(leg)],
            entry.id.clone(),
        );
        // The buyer mostly; the provider trying to be paid early sometimes.
        let signer = if self.rng.chance(1, 8) {
            provider
        } else {
            buyer
        };
        let command = Command::ApproveLeg(ApproveLeg {
            result_hash: Self::leg_result(&id, leg),
            order_id: id,
            leg,
        });
        (self.sign(signer, command), Expect::Anything)
    }

    fn gen_decline_leg(&mut self) -> Step {
        let Some((order, leg)) = self.pick_leg() else {
            return self.gen_order();
        };
        let entry = &self.economy.orders[order];
        let (provider, id) = (entry.providers[usize::from(leg)], entry.id.clone());
        let signer = if self.rng.chance(1, 5) {
            self.pick_actor()
        } else {
            provider
        };
        let command = Command::DeclineLeg(LegRef { order_id: id, leg });
        (self.sign(signer, command), Expect::Anything)
    }

    fn gen_dispute_leg(&mut self) -> Step {
        let Some((order, leg)) = self.pick_leg() else {
            return self.gen_order();
        };
        let entry = &self.economy.orders[order];
        let (buyer, id) = (entry.buyer, entry.id.clone());
        let command = Command::DisputeLeg(DisputeLeg {
            order_id: id,
            leg,
            reason: "short".into(),
        });
        (self.sign(buyer, command), Expect::Anything)
    }

    fn gen_resolve_leg(&mut self) -> Step {
        let Some((order, leg)) = self.pick_leg() else {
            return self.gen_order();
        };
        let entry = &self.economy.orders[order];
        let (arbiter, id) = (entry.arbiter, entry.id.clone());
        let signer = match arbiter {
            Some(arbiter) if self.rng.chance(9, 10) => arbiter,
            _ => self.pick_actor(),
        };
        let command = Command::ResolveLeg(ResolveLeg {
            order_id: id,
            leg,
            provider_bps: self.rng.between(0, 10_000) as u16,
        });
        (self.sign(signer, command), Expect::Anything)
    }

    /// Bookkeeping and checks for an accepted economy command; `false` if
    /// the command is not one.
    pub(super) fn economy_accepted(
        &mut self,
        command: &Authenticated,
        events: &[Event],
    ) -> Result<bool, String> {
        let signer = self
            .actors
            .iter()
            .rposition(|actor| actor.did == *command.signer())
            .unwrap_or(usize::MAX);
        let duplicate = matches!(events, [Event::Duplicate { .. }]);
        match command.command() {
            Command::Subscribe(subscribe) if !duplicate => {
                self.check_spender_usable(command)?;
                let payee = self.actor_index(&subscribe.payee);
                self.economy
                    .subscriptions
                    .push((subscribe.subscription_id.clone(), signer, payee));
            }
            Command::PostBounty(post) if !duplicate => {
                self.check_spender_usable(command)?;
                let validator = self.actor_index(&post.validator);
                self.economy.bounties.push(Bounty {
                    id: post.bounty_id.clone(),
                    lead: signer,
                    validator,
                    contributions: Vec::new(),
                });
            }
            Command::SubmitContribution(submit) if !duplicate => {
                let bounty = self
                    .economy
                    .bounties
                    .iter_mut()
                    .find(|bounty| bounty.id == submit.bounty_id)
                    .ok_or("a contribution to an unknown bounty was accepted")?;
                bounty
                    .contributions
                    .push((submit.contribution_id.clone(), signer));
            }
            Command::PlaceOrder(place) if !duplicate => {
                self.check_spender_usable(command)?;
                let providers = place
                    .legs
                    .iter()
                    .map(|leg| self.actor_index(&leg.provider))
                    .collect();
                let arbiter = place.arbiter.map(|did| self.actor_index(&did));
                self.economy.orders.push(Order {
                    id: place.order_id.clone(),
                    buyer: signer,
                    providers,
                    arbiter,
                    atomic: place.atomic,
                });
            }
            Command::Subscribe(_)
            | Command::PostBounty(_)
            | Command::SubmitContribution(_)
            | Command::PlaceOrder(_)
            | Command::CollectSubscription(_)
            | Command::CancelSubscription(_)
            | Command::ScoreContribution(_)
            | Command::DeliverLeg(_)
            | Command::ApproveLeg(_)
            | Command::DeclineLeg(_)
            | Command::DisputeLeg(_)
            | Command::ResolveLeg(_) => {}
            _ => return Ok(false),
        }
        self.check_economy_events(events)?;
        Ok(true)
    }

    /// The money rules every economy event must keep, whoever caused it
    /// (a command, or the clock).
    pub(super) fn check_economy_events(&mut self, events: &[Event]) -> Result<(), String> {
        let completes = |id: &str| {
            events
                .iter()
                .any(|e| matches!(e, Event::OrderCompleted { order_id, .. } if order_id == id))
        };
        let mut touched = Vec::new();
        for event in events {
            match event {
                Event::SubscriptionCollected {
                    subscription_id,
                    amount,
                    period_index,
                    ..
                } => {
                    let view = self
                        .state
                        .subscription(subscription_id)
                        .ok_or("a collect of an unknown subscription")?;
                    if *amount > view.terms.amount {
                        return Err("a collect took more than a period allows".into());
                    }
                    let subscriber = self.actor_index(&view.subscriber);
                    if !self.chain_usable(subscriber) {
                        return Err("a revoked or expired subscriber was collected from".into());
                    }
                    if !self
                        .economy
                        .collected
                        .insert((subscription_id.clone(), *period_index))
                    {
                        return Err("a subscription was collected twice in a period".into());
                    }
                }
                Event::BountyPosted {
                    bounty_id, budget, ..
                } => {
                    self.economy
                        .budgets
                        .insert(bounty_id.clone(), (budget.atomic(), 0));
                }
                Event::ContributionScored {
                    bounty_id, parts, ..
                } => {
                    let paid: u128 = parts.iter().map(|p| p.amount.atomic()).sum();
                    let entry = self.economy.budgets.entry(bounty_id.clone()).or_default();
                    entry.1 += paid;
                }
                Event::BountyClosed {
                    bounty_id,
                    refunded,
                    ..
                } => {
                    let (budget, paid) = self.economy.budgets.remove(bounty_id).unwrap_or_default();
                    check_eq(
                        paid + refunded.atomic(),
                        budget,
                        "a bounty's payouts and refund are its budget",
                    )?;
                }
                Event::OrderPlaced {
                    order_id, total, ..
                } => {
                    self.economy
                        .settled
                        .insert(order_id.clone(), (total.atomic(), 0));
                }
                Event::LegPaid {
                    order_id,
                    parts,
                    refunded,
                    ..
                } => {
                    let atomic = self
                        .economy
                        .orders
                        .iter()
                        .any(|order| order.id == *order_id && order.atomic);
                    if atomic && !completes(order_id) {
                        return Err(format!("atomic order {order_id} paid a leg early"));
                    }
                    let paid: u128 = parts.iter().map(|p| p.amount.atomic()).sum();
                    let entry = self.economy.settled.entry(order_id.clone()).or_default();
                    entry.1 += paid + refunded.atomic();
                    touched.push(order_id.clone());
                }
                Event::OrderUnwound {
                    order_id, refunded, ..
                } => {
                    let entry = self.economy.settled.entry(order_id.clone()).or_default();
                    entry.1 += refunded.atomic();
                    touched.push(order_id.clone());
                }
                Event::OrderCompleted { order_id, .. } => touched.push(order_id.clone()),
                _ => {}
            }
        }
        // An order that ended paid out and returned exactly its total (an
        // unwinding one settles its delivered legs later).
        for order_id in touched {
            let ended = self.state.order(&order_id).is_none_or(|view| {
                matches!(view.status, OrderStatus::Completed | OrderStatus::Unwound)
            });
            if ended && let Some((total, settled)) = self.economy.settled.remove(&order_id) {
                check_eq(
                    settled,
                    total,
                    "an order's payouts and refunds are its total",
                )?;
            }
        }
        Ok(())
    }
}
