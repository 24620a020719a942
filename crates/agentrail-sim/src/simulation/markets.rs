//! Markets and payment channels in the simulation: listings with stakes,
//! requests for quotes, offers from both sides, acceptances, deliveries,
//! approvals by buyers and validators, disputes and rulings, licences,
//! channels with vouchers, collects and closes — valid and hostile mixed,
//! with time passing deadlines, review and arbitration windows.
//!
//! What each step must satisfy beyond the ledger's own invariants: a
//! ruling by anyone but the named arbiter is refused with `not_arbiter`;
//! every payout (approval or ruling) moves exactly the task's price; a
//! spend (acceptance, licence, channel, stake) is never accepted from a
//! revoked or expired grant; and the final replay reproduces every outcome.

use agentrail_core::channel::ChannelId;
use agentrail_core::command::{CollectChannel, Command, Split};
use agentrail_core::market::{ListingKind, Pricing, PublishListing, RequestQuotes};
use agentrail_core::state::ChannelStatus;
use agentrail_core::{Amount, Authenticated, Did, Event, Rejection};

use super::{CATEGORIES, Expect, Kind, Simulation, check_eq};
use crate::kit;

/// What the simulation remembers of the market it built.
#[derive(Debug, Default)]
pub(super) struct Book {
    /// Listing id and the actor that published it.
    listings: Vec<(String, usize)>,
    datasets: Vec<String>,
    rfqs: Vec<Rfq>,
    /// Quote id, request index, quoting actor.
    quotes: Vec<(String, usize, usize)>,
    tasks: Vec<Task>,
    channels: Vec<Channel>,
}

#[derive(Debug)]
struct Rfq {
    id: String,
    budget: Amount,
    buyer: usize,
    arbiter: Option<usize>,
    validator: Option<usize>,
}

#[derive(Debug)]
struct Task {
    id: String,
    buyer: usize,
    provider: usize,
    arbiter: Option<usize>,
    validator: Option<usize>,
    result: Option<Vec<u8>>,
}

#[derive(Debug)]
struct Channel {
    id: ChannelId,
    /// Signs the vouchers (the opener).
    payer: usize,
    /// The payee account's own actor.
    payee: usize,
    /// Per stream: the last nonce and total signed.
    streams: [(u64, Amount); 3],
}

type Step = (Result<Authenticated, Rejection>, Expect);

/// Steps pick among the newest entries: old requests have closed and old
/// tasks have settled, so this keeps most steps meaningful.
pub(super) const RECENT: usize = 12;

/// An index among the last [`RECENT`] of `len` entries (`len` > 0).
pub(super) fn recent(rng: &mut crate::rng::Rng, len: usize) -> usize {
    let window = len.min(RECENT);
    len - 1 - rng.below(window as u64) as usize
}

impl Simulation {
    /// One random market or channel step.
    pub(super) fn gen_market(&mut self) -> Step {
        match self.rng.below(100) {
            0..=7 => self.gen_listing(),
            8..=17 => self.gen_rfq(),
            18..=29 => self.gen_quote(),
            30..=37 => self.gen_counter(),
            38..=47 => self.gen_accept(),
            48..=55 => self.gen_deliver(),
            56..=62 => self.gen_approve(),
            63..=66 => self.gen_dispute(),
            67..=71 => self.gen_resolve(),
            72..=75 => self.gen_license(),
            76..=77 => self.gen_withdraw_listing(),
            78..=83 => self.gen_open_channel(),
            84..=95 => self.gen_voucher(),
            _ => self.gen_close_channel(),
        }
    }

    pub(super) fn principal_actor(&mut self) -> usize {
        loop {
            let actor = self.rng.below(self.actors.len() as u64) as usize;
            if self.actors[actor].kind == Kind::Principal {
                return actor;
            }
        }
    }

    /// A spend is expected to be refused when the signer's chain is dead.
    pub(super) fn spend_expectation(&self, actor: usize) -> Expect {
        if self.chain_usable(actor) {
            Expect::Anything
        } else {
            Expect::RefusedAny
        }
    }

    fn gen_listing(&mut self) -> Step {
        let (actor, provider) = self.spender();
        let id = self.fresh_key("listing");
        let dataset = self.rng.chance(1, 4);
        let price = self.random_amount(1, 5_000);
        let staked = self.rng.chance(1, 3);
        let stake = staked.then(|| self.spend_amount(actor));
        let mut revenue_share = Vec::new();
        if self.rng.chance(1, 3) {
            let other = *self.rng.pick(&self.accounts);
            if other != provider {
                revenue_share = vec![
                    Split {
                        to: provider,
                        bps: 6_000,
                    },
                    Split {
                        to: other,
                        bps: 4_000,
                    },
                ];
            }
        }
        let listing = PublishListing {
            kind: if dataset {
                ListingKind::Dataset
            } else {
                ListingKind::Service
            },
            pricing: if dataset || self.rng.chance(1, 2) {
                Pricing::PerCall { price }
            } else {
                Pricing::PerTask { price }
            },
            content_hash: dataset.then(|| kit::sha256_hex(id.as_bytes())),
            revenue_share,
            stake,
            ..kit::listing(&id, provider, &[*self.rng.pick(&CATEGORIES)], price)
        };
        let expect = if staked {
            self.spend_expectation(actor)
        } else {
            Expect::Anything
        };
        (self.sign(actor, kit::publish(listing)), expect)
    }

    fn gen_withdraw_listing(&mut self) -> Step {
        let Some((id, actor)) = self.pick_listing() else {
            return self.gen_listing();
        };
        (
            self.sign(actor, kit::withdraw_listing(&id)),
            Expect::Anything,
        )
    }

    fn pick_listing(&mut self) -> Option<(String, usize)> {
        if self.market.listings.is_empty() {
            return None;
        }
        Some(self.rng.pick(&self.market.listings).clone())
    }

    fn gen_rfq(&mut self) -> Step {
        let (actor, from) = self.spender();
        let id = self.fresh_key("rfq");
        let mut expect = Expect::Anything;
        let arbiter = if self.rng.chance(1, 20) {
            // The operator may never arbitrate (refused as `invalid_field`,
            // unless the signer could not act for the account anyway).
            expect = Expect::RefusedAny;
            Some(kit::did(&self.operator))
        } else if self.rng.chance(2, 3) {
            let arbiter = self.principal_actor();
            Some(self.actors[arbiter].did)
        } else {
            None
        };
        let validator = if self.rng.chance(1, 3) {
            let validator = self.principal_actor();
            Some(self.actors[validator].did)
        } else {
            None
        };
        let capability = *self.rng.pick(&CATEGORIES);
        let budget = self.spend_amount(actor);
        // The clock moves about two minutes a step and a task sees a step
        // of its own every hundred or so: deadlines of hours to days let
        // most tasks be delivered, and some still miss.
        let deadline_s = self.rng.between(3_600, 3 * 86_400);
        let request = RequestQuotes {
            arbiter,
            validator,
            review_window_s: Some(self.rng.between(600, 2 * 86_400)),
            ..kit::rfq(&id, from, capability, budget, deadline_s)
        };
        if !self.chain_usable(actor) {
            expect = Expect::RefusedAny;
        }
        (self.sign(actor, kit::request_quotes(request)), expect)
    }

    fn gen_quote(&mut self) -> Step {
        if self.market.rfqs.is_empty() {
            return self.gen_rfq();
        }
        let rfq = recent(&mut self.rng, self.market.rfqs.len());
        let (actor, provider) = self.spender();
        let listing = self
            .market
            .listings
            .iter()
            .find(|(_, publisher)| self.actors[*publisher].did == provider)
            .map(|(id, _)| id.clone())
            .filter(|_| self.rng.chance(1, 2));
        let id = self.fresh_key("quote");
        // Around the budget: mostly within it, sometimes above.
        let budget = self.market.rfqs[rfq].budget.atomic() as u64;
        let price = Amount::from_atomic(u128::from(
            self.rng.between(budget / 2, budget + budget / 10).max(1),
        ));
        let command = kit::quote(
            &id,
            &self.market.rfqs[rfq].id,
            provider,
            listing.as_deref(),
            price,
        );
        (self.sign(actor, command), Expect::Anything)
    }

    fn gen_counter(&mut self) -> Step {
        if self.market.quotes.is_empty() {
            return self.gen_quote();
        }
        let (id, rfq, provider) =
            self.market.quotes[recent(&mut self.rng, self.market.quotes.len())].clone();
        let signer = if self.rng.chance(1, 2) {
            self.market.rfqs[rfq].buyer
        } else {
            provider
        };
        let budget = self.market.rfqs[rfq].budget.atomic() as u64;
        let price = Amount::from_atomic(u128::from(self.rng.between(budget / 3, budget).max(1)));
        (
            self.sign(signer, kit::counter(&id, price)),
            Expect::Anything,
        )
    }

    fn gen_accept(&mut self) -> Step {
        if self.market.quotes.is_empty() {
            return self.gen_quote();
        }
        let (id, rfq, _) =
            self.market.quotes[recent(&mut self.rng, self.market.quotes.len())].clone();
        let signer = if self.rng.chance(1, 10) {
            self.pick_actor()
        } else {
            self.market.rfqs[rfq].buyer
        };
        let task = self.fresh_key("task");
        (self.sign(signer, kit::accept(&id, &task)), Expect::Anything)
    }

    fn pick_task(&mut self) -> Option<usize> {
        if self.market.tasks.is_empty() {
            return None;
        }
        Some(recent(&mut self.rng, self.market.tasks.len()))
    }

    fn gen_deliver(&mut self) -> Step {
        let Some(task) = self.pick_task() else {
            return self.gen_accept();
        };
        let signer = if self.rng.chance(1, 10) {
            self.pick_actor()
        } else {
            self.market.tasks[task].provider
        };
        let result = self.fresh_key("result").into_bytes();
        let provider = self.actors[self.market.tasks[task].provider].did;
        let manifest = if self.rng.chance(1, 2) {
            Vec::new()
        } else {
            let other = *self.rng.pick(&self.accounts);
            let share = self.rng.between(1, 9_999) as u16;
            if other == provider {
                vec![(provider, 10_000)]
            } else {
                vec![(provider, share), (other, 10_000 - share)]
            }
        };
        let command = kit::deliver(&self.market.tasks[task].id, &result, &manifest);
        self.market.tasks[task].result = Some(result);
        (self.sign(signer, command), Expect::Anything)
    }

    fn gen_approve(&mut self) -> Step {
        let Some(task) = self.pick_task() else {
            return self.gen_accept();
        };
        let entry = &self.market.tasks[task];
        let (buyer, validator, id) = (entry.buyer, entry.validator, entry.id.clone());
        let result = entry.result.clone().unwrap_or_default();
        let signer = match validator {
            Some(validator) if self.rng.chance(1, 3) => validator,
            _ if self.rng.chance(1, 10) => self.pick_actor(),
            _ => buyer,
        };
        let result = if self.rng.chance(1, 10) {
            b"not the delivery".to_vec()
        } else {
            result
        };
        (
            self.sign(signer, kit::approve_task(&id, &result)),
            Expect::Anything,
        )
    }

    fn gen_dispute(&mut self) -> Step {
        let Some(task) = self.pick_task() else {
            return self.gen_accept();
        };
        let (buyer, id) = (
            self.market.tasks[task].buyer,
            self.market.tasks[task].id.clone(),
        );
        (
            self.sign(buyer, kit::dispute(&id, "not as agreed")),
            Expect::Anything,
        )
    }

    fn gen_resolve(&mut self) -> Step {
        let Some(task) = self.pick_task() else {
            return self.gen_accept();
        };
        let (arbiter, id) = (
            self.market.tasks[task].arbiter,
            self.market.tasks[task].id.clone(),
        );
        let bps = self.rng.below(10_001) as u16;
        match arbiter {
            Some(arbiter) if self.rng.chance(4, 5) => {
                (self.sign(arbiter, kit::resolve(&id, bps)), Expect::Anything)
            }
            _ => {
                let signer = self.pick_actor();
                let expect = if arbiter == Some(signer) {
                    Expect::Anything
                } else if self.state.task(&id).is_none() {
                    // Settled a retention ago and forgotten.
                    Expect::Refused("task_not_found")
                } else {
                    Expect::Refused("not_arbiter")
                };
                (self.sign(signer, kit::resolve(&id, bps)), expect)
            }
        }
    }

    fn gen_license(&mut self) -> Step {
        if self.market.datasets.is_empty() {
            return self.gen_listing();
        }
        let listing = self.rng.pick(&self.market.datasets).clone();
        let (actor, from) = self.spender();
        let id = self.fresh_key("licence");
        let expect = self.spend_expectation(actor);
        (self.sign(actor, kit::license(&id, &listing, from)), expect)
    }

    fn gen_open_channel(&mut self) -> Step {
        let (actor, from) = self.spender();
        let payee = *self.rng.pick(&self.accounts);
        let deposit = self.spend_amount(actor);
        let key = self.fresh_key("channel");
        let expect = if from == payee {
            Expect::Refused("same_account")
        } else {
            self.spend_expectation(actor)
        };
        (
            self.sign(actor, kit::open_channel(from, payee, deposit, &key)),
            expect,
        )
    }

    fn gen_voucher(&mut self) -> Step {
        if self.market.channels.is_empty() {
            return self.gen_open_channel();
        }
        let channel = recent(&mut self.rng, self.market.channels.len());
        let stream = self.rng.below(3) as usize;
        let sub = format!("stream-{stream}");
        // How the payee redeems: the whole voucher, up to what it charged,
        // or (refused) more than the voucher says.
        let how = self.rng.below(6);
        let (nonce, total) = self.market.channels[channel].streams[stream];
        // Mostly a newer voucher, sometimes a replay of the last one: often
        // when redeeming up to what was charged, which may redeem the same
        // voucher further than before.
        let replay = if how < 2 {
            self.rng.chance(1, 2)
        } else {
            self.rng.chance(1, 10)
        };
        let (nonce, total) = if replay {
            (nonce, total)
        } else {
            let step = self.random_amount(1, 200);
            (nonce + 1, total.checked_add(step).expect("small sums"))
        };
        let entry = &self.market.channels[channel];
        let (id, payer, payee) = (entry.id, entry.payer, entry.payee);
        let voucher = kit::voucher(
            &self.actors[payer].key,
            &kit::network(),
            id,
            self.actors[payee].did,
            &sub,
            nonce,
            total,
        );
        self.market.channels[channel].streams[stream] = (nonce, total);
        let view = self.state.channel(&id);
        let live = view.as_ref().is_some_and(|view| {
            matches!(
                view.status,
                ChannelStatus::Open | ChannelStatus::Closing { .. }
            )
        });
        let redeemed = view
            .as_ref()
            .and_then(|view| view.sub_channels.get(&sub))
            .map_or(Amount::ZERO, |redeemed| redeemed.amount);
        let cents = |amount: Amount| u64::try_from(amount.atomic() / 10_000).unwrap_or(u64::MAX);
        let (up_to, expect) = match how {
            0 | 1 => {
                // Above what was redeemed when anything is left, else stale.
                let (low, high) = (cents(redeemed) + 1, cents(total));
                let up_to = if low <= high {
                    self.random_amount(low, high)
                } else {
                    self.random_amount(0, high)
                };
                (Some(up_to), Expect::Anything)
            }
            2 => {
                let over = total
                    .checked_add(self.random_amount(1, 100))
                    .expect("small sums");
                let expect = if live {
                    Expect::Refused("invalid_field")
                } else {
                    Expect::RefusedAny
                };
                (Some(over), expect)
            }
            _ => (None, Expect::Anything),
        };
        let command = match up_to {
            Some(up_to) => kit::collect_channel_up_to(id, vec![voucher], &[(sub.as_str(), up_to)]),
            None => kit::collect_channel(id, vec![voucher]),
        };
        (self.sign(payee, command), expect)
    }

    fn gen_close_channel(&mut self) -> Step {
        if self.market.channels.is_empty() {
            return self.gen_open_channel();
        }
        let entry = self.rng.pick(&self.market.channels);
        let (id, payer, payee) = (entry.id, entry.payer, entry.payee);
        if self.rng.chance(1, 2) {
            (
                self.sign(payee, kit::close_channel(id, Vec::new())),
                Expect::Anything,
            )
        } else {
            (
                self.sign(payer, kit::start_channel_close(id)),
                Expect::Anything,
            )
        }
    }

    /// Bookkeeping and checks for an accepted market or channel command.
    pub(super) fn market_accepted(
        &mut self,
        command: &Authenticated,
        events: &[Event],
    ) -> Result<(), String> {
        // The operator (deposits) is no actor; every market signer is.
        let signer = self
            .actors
            .iter()
            .rposition(|actor| actor.did == *command.signer())
            .unwrap_or(usize::MAX);
        match command.command() {
            Command::PublishListing(listing) => {
                if listing.stake.is_some() {
                    self.check_spender_usable(command)?;
                }
                self.market
                    .listings
                    .push((listing.listing_id.clone(), signer));
                if listing.kind == ListingKind::Dataset {
                    self.market.datasets.push(listing.listing_id.clone());
                }
            }
            Command::RequestQuotes(request) => {
                let index = |did: Option<Did>| {
                    did.and_then(|did| self.actors.iter().rposition(|actor| actor.did == did))
                };
                self.market.rfqs.push(Rfq {
                    id: request.rfq_id.clone(),
                    budget: request.budget_max,
                    buyer: signer,
                    arbiter: index(request.arbiter),
                    validator: index(request.validator),
                });
            }
            Command::SubmitQuote(quote) => {
                let rfq = self
                    .market
                    .rfqs
                    .iter()
                    .position(|rfq| rfq.id == quote.rfq_id)
                    .ok_or("a quote on an unknown request was accepted")?;
                self.market
                    .quotes
                    .push((quote.quote_id.clone(), rfq, signer));
            }
            Command::AcceptQuote(accept) => {
                self.check_spender_usable(command)?;
                let (_, rfq, provider) = self
                    .market
                    .quotes
                    .iter()
                    .find(|(id, ..)| *id == accept.quote_id)
                    .cloned()
                    .ok_or("an unknown quote was accepted")?;
                let (arbiter, validator) = (
                    self.market.rfqs[rfq].arbiter,
                    self.market.rfqs[rfq].validator,
                );
                self.market.tasks.push(Task {
                    id: accept.task_id.clone(),
                    buyer: signer,
                    provider,
                    arbiter,
                    validator,
                    result: None,
                });
            }
            Command::LicenseDataset(_) => self.check_spender_usable(command)?,
            Command::OpenChannel(open) => {
                self.check_spender_usable(command)?;
                let opened = events.iter().find_map(|event| match event {
                    Event::ChannelOpened { channel_id, .. } => Some(*channel_id),
                    _ => None,
                });
                if let Some(channel_id) = opened {
                    let payee = self.actor_index(&open.payee);
                    self.market.channels.push(Channel {
                        id: channel_id,
                        payer: signer,
                        payee,
                        streams: [(0, Amount::ZERO); 3],
                    });
                }
            }
            Command::CollectChannel(collect) | Command::CloseChannel(collect) => {
                self.check_redeemed(collect)?;
            }
            _ => {}
        }
        for event in events {
            self.check_payout(event)?;
        }
        Ok(())
    }

    /// After an accepted collect, no voucher of it verifies on another
    /// network, no sub-channel has redeemed more than the payer signed on
    /// it, and one redeemed up to an amount stands at it.
    fn check_redeemed(&self, collect: &CollectChannel) -> Result<(), String> {
        let view = self
            .state
            .channel(&collect.channel_id)
            .ok_or("a collect on an unknown channel was accepted")?;
        let Some(entry) = self
            .market
            .channels
            .iter()
            .find(|channel| channel.id == collect.channel_id)
        else {
            return Ok(());
        };
        // What the ledger redeemed was signed for this network, and for no
        // other: a second ledger would refuse every voucher of it.
        let key = view
            .voucher_key
            .public_key()
            .ok_or("a channel's voucher key is not a key")?;
        let elsewhere = agentrail_core::channel::network_hash("agentrail:other.test/log");
        for voucher in &collect.vouchers {
            let signature = voucher.payer_signature.0.to_bytes();
            if key.verify(&voucher.signing_bytes(&elsewhere), &signature) {
                return Err("a redeemed voucher verifies on another network".into());
            }
        }
        for (sub, redeemed) in &view.sub_channels {
            let signed = sub
                .strip_prefix("stream-")
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| entry.streams.get(i))
                .ok_or("a sub-channel the payer never signed was redeemed")?;
            if redeemed.amount > signed.1 {
                return Err(format!(
                    "{sub} redeemed {} of {} signed",
                    redeemed.amount, signed.1
                ));
            }
            if let Some(up_to) = collect.amounts.get(sub) {
                check_eq(
                    redeemed.amount.atomic(),
                    up_to.atomic(),
                    "a capped redemption stops at its cap",
                )?;
            }
        }
        Ok(())
    }

    /// Every payout moves exactly its task's price.
    pub(super) fn check_payout(&self, event: &Event) -> Result<(), String> {
        let (task_id, parts, refunded) = match event {
            Event::TaskApproved { task_id, parts, .. } => (task_id, parts, Amount::ZERO),
            Event::DisputeResolved {
                task_id,
                parts,
                refunded,
                ..
            } => (task_id, parts, *refunded),
            _ => return Ok(()),
        };
        let price = self
            .state
            .task(task_id)
            .ok_or("a payout names an unknown task")?
            .terms
            .price;
        let paid: u128 = parts.iter().map(|part| part.amount.atomic()).sum();
        check_eq(
            paid + refunded.atomic(),
            price.atomic(),
            "a payout moves exactly the price",
        )
    }
}
