//! Markets in the state machine: listings and their stakes, requests for
//! quotes and negotiation, escrowed tasks with contribution splits,
//! validators, arbiters and slashing, data licences, and the record that
//! reputation is computed from. The protocol is drawn in [`crate::market`].
//!
//! Money: a task's price sits in the buyer's `held` money from acceptance
//! until it settles, with exactly one entry in the expiry index (its
//! deadline, the end of its review window, or the end of its arbitration
//! window); a listing's stake sits in the provider's `held` money until it
//! is withdrawn or slashed. Every payout splits exactly (largest
//! remainder), and [`State::check_invariants`] counts both kinds of held
//! money.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::InvariantViolation;
use super::retention::Forget;
use super::{Charge, Expiry, State, check_category_field, check_key, check_nonzero, check_splits};
use crate::amount::{Amount, BPS_WHOLE};
use crate::command::Split;
use crate::constants::{
    ARBITRATION_WINDOW_S, CAPABILITIES_PER_LISTING_MAX, DESCRIPTION_BYTES_MAX, DISCOVERY_PAGE_MAX,
    INVITED_PER_RFQ_MAX, LISTING_NAME_BYTES_MAX, LISTINGS_PER_PROVIDER_MAX, NOTE_BYTES_MAX,
    QUOTE_ROUNDS_MAX, QUOTES_PER_RFQ_MAX, REVIEW_WINDOW_DEFAULT_S, REVIEW_WINDOW_MAX_S,
    REVIEW_WINDOW_MIN_S, RFQ_DURATION_DEFAULT_S, RFQ_DURATION_MAX_S, TASK_DEADLINE_MAX_S,
    TASK_DEADLINE_MIN_S, URI_BYTES_MAX,
};
use crate::did::Did;
use crate::event::{Event, Part};
use crate::market::{
    AcceptQuote, ApproveTask, Approver, CounterQuote, DeliverTask, Delivery, Discovered, Discovery,
    DiscoveryPage, DisputeTask, LicenseDataset, LicenseView, ListingKind, ListingRef,
    ListingStatus, ListingView, PublishListing, QuoteStatus, QuoteView, RefundReason,
    RequestQuotes, ResolveDispute, RfqPage, RfqQuery, RfqStatus, RfqView, Side, SubmitQuote,
    TaskStatus, TaskTerms, TaskView,
};
use crate::rejection::Rejection;
use crate::reputation::{self, Record, Reputation};
use crate::split::split_largest_remainder;
use crate::time::Timestamp;

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub(super) struct ListingRecord {
    creator: Did,
    pub(super) request: PublishListing,
    outcome: Vec<Event>,
    pub(super) status: ListingStatus,
    published_at: Timestamp,
    pub(super) stake_held: Amount,
    /// What the stake was counted against, until it returns or is slashed.
    stake_charge: Option<Charge>,
    open_tasks: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub(super) struct RfqRecord {
    creator: Did,
    request: RequestQuotes,
    outcome: Vec<Event>,
    pub(super) expires_at: Timestamp,
    pub(super) status: RfqStatus,
    pub(super) quotes: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub(super) struct QuoteRecord {
    creator: Did,
    request: SubmitQuote,
    outcome: Vec<Event>,
    price: Amount,
    last_offer_by: Side,
    rounds: u8,
    status: QuoteStatus,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub(super) struct TaskRecord {
    creator: Did,
    outcome: Vec<Event>,
    terms: TaskTerms,
    terms_hash: String,
    charge: Charge,
    funded_at: Timestamp,
    /// Buyer and provider answer to the same principal: the task settles,
    /// but the provider's record does not move.
    self_dealing: bool,
    pub(super) status: TaskStatus,
}

impl QuoteRecord {
    pub(super) fn rfq_id(&self) -> &str {
        &self.request.rfq_id
    }
}

impl TaskRecord {
    pub(super) fn rfq_id(&self) -> &str {
        &self.terms.rfq_id
    }

    /// When time alone next settles the task, while it holds money.
    pub(super) fn deadline(&self) -> Option<Timestamp> {
        match &self.status {
            TaskStatus::Funded => Some(self.terms.deadline),
            TaskStatus::Delivered { review_ends_at, .. } => Some(*review_ends_at),
            TaskStatus::Disputed {
                arbitration_ends_at,
                ..
            } => Some(*arbitration_ends_at),
            TaskStatus::Approved { .. }
            | TaskStatus::Resolved { .. }
            | TaskStatus::Refunded { .. } => None,
        }
    }

    /// The buyer and the price, while the escrow holds it.
    pub(super) fn escrow(&self) -> (Did, Amount) {
        (self.terms.buyer, self.terms.price)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub(super) struct LicenseRecord {
    creator: Did,
    request: LicenseDataset,
    outcome: Vec<Event>,
    view: LicenseView,
}

pub(super) fn check_text(
    field: &'static str,
    text: &str,
    max: usize,
    reason: &'static str,
) -> Result<(), Rejection> {
    if text.len() > max || !crate::text::is_plain(text) {
        return Err(Rejection::InvalidField { field, reason });
    }
    Ok(())
}

pub(super) fn check_hash(field: &'static str, text: &str) -> Result<(), Rejection> {
    let valid = text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !valid {
        return Err(Rejection::InvalidField {
            field,
            reason: "must be a SHA-256 hash: 64 lower-case hex digits",
        });
    }
    Ok(())
}

fn check_uri(field: &'static str, uri: Option<&str>) -> Result<(), Rejection> {
    match uri {
        Some(uri)
            if uri.len() > URI_BYTES_MAX
                || !(uri.starts_with("http://") || uri.starts_with("https://"))
                || uri.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            Err(Rejection::InvalidField {
                field,
                reason: "must be an http:// or https:// URI of at most 256 bytes",
            })
        }
        _ => Ok(()),
    }
}

pub(super) fn check_window(
    field: &'static str,
    seconds: u64,
    min: u64,
    max: u64,
    reason: &'static str,
) -> Result<(), Rejection> {
    if !(min..=max).contains(&seconds) {
        return Err(Rejection::InvalidField { field, reason });
    }
    Ok(())
}

/// A client-chosen id that is already taken: the original outcome when the
/// same signer sent the same request again (a safe retry), a conflict
/// otherwise. `existing` is the taken id's creator, request and outcome.
fn recall_id<R: PartialEq>(
    existing: Option<(Did, &R, &[Event])>,
    signer: Did,
    request: &R,
    id: &str,
) -> Result<Option<Vec<Event>>, Rejection> {
    match existing {
        None => Ok(None),
        Some((creator, original, outcome)) if creator == signer && original == request => {
            Ok(Some(vec![Event::Duplicate {
                original: outcome.to_vec(),
            }]))
        }
        Some(_) => Err(Rejection::IdempotencyConflict { key: id.to_owned() }),
    }
}

pub(super) fn sole(provider: Did) -> Vec<Split> {
    vec![Split {
        to: provider,
        bps: BPS_WHOLE,
    }]
}

fn terms_hash(terms: &TaskTerms) -> String {
    let bytes = crate::canonical::to_canonical_bytes(terms)
        .expect("task terms hold only strings and integers within JCS's range");
    hex::encode(Sha256::digest(&bytes))
}

impl State {
    // ----- reads ---------------------------------------------------------

    fn listing_view(&self, record: &ListingRecord) -> ListingView {
        ListingView {
            listing: record.request.clone(),
            status: record.status,
            published_at: record.published_at,
            stake_held: record.stake_held,
            open_tasks: record.open_tasks,
        }
    }

    pub fn listing(&self, listing_id: &str) -> Option<ListingView> {
        self.listings.get(listing_id).map(|r| self.listing_view(r))
    }

    /// Every listing `provider` published, withdrawn ones included.
    pub fn listings_of(&self, provider: &Did) -> Vec<ListingView> {
        self.provider_listings
            .get(provider)
            .into_iter()
            .flatten()
            .filter_map(|id| self.listing(id))
            .collect()
    }

    pub fn rfq(&self, rfq_id: &str) -> Option<RfqView> {
        let record = self.rfqs.get(rfq_id)?;
        Some(RfqView {
            request: record.request.clone(),
            status: self.rfq_status(record),
            expires_at: record.expires_at,
            quotes: record
                .quotes
                .iter()
                .filter_map(|id| self.quote(id))
                .collect(),
        })
    }

    /// Requests for quotes still taking quotes, latest expiry first, that ask for
    /// `capability` (if given) and that `provider` (if given) may quote on.
    /// O(requests); a page holds at most [`DISCOVERY_PAGE_MAX`].
    pub fn open_rfqs(&self, query: &RfqQuery) -> RfqPage {
        let limit = query.limit.clamp(1, DISCOVERY_PAGE_MAX);
        let mut matches: Vec<(&String, &RfqRecord)> = self
            .rfqs
            .iter()
            .filter(|(_, record)| self.rfq_status(record) == RfqStatus::Open)
            .filter(|(_, record)| {
                query
                    .capability
                    .as_ref()
                    .is_none_or(|wanted| record.request.capability == *wanted)
            })
            .filter(|(_, record)| {
                query.provider.is_none_or(|provider| {
                    record.request.from != provider
                        && (record.request.invited.is_empty()
                            || record.request.invited.contains(&provider))
                })
            })
            .collect();
        // The request that stays open longest first, then by id.
        matches.sort_by(|a, b| b.1.expires_at.cmp(&a.1.expires_at).then(a.0.cmp(b.0)));
        let total = matches.len();
        let rfqs: Vec<RfqView> = matches
            .into_iter()
            .skip(query.offset)
            .take(limit)
            .filter_map(|(id, _)| self.rfq(id))
            .collect();
        let end = query.offset.saturating_add(rfqs.len());
        RfqPage {
            rfqs,
            total,
            next_offset: (end < total).then_some(end),
        }
    }

    fn rfq_status(&self, record: &RfqRecord) -> RfqStatus {
        match record.status {
            RfqStatus::Open if self.clock >= record.expires_at => RfqStatus::Expired,
            status => status,
        }
    }

    pub fn quote(&self, quote_id: &str) -> Option<QuoteView> {
        let record = self.quotes.get(quote_id)?;
        let rfq = &self.rfqs[&record.request.rfq_id];
        let status = match record.status {
            QuoteStatus::Open if self.rfq_status(rfq) != RfqStatus::Open => QuoteStatus::Closed,
            status => status,
        };
        Some(QuoteView {
            quote_id: quote_id.to_owned(),
            rfq_id: record.request.rfq_id.clone(),
            provider: record.request.provider,
            listing_id: record.request.listing_id.clone(),
            price: record.price,
            last_offer_by: record.last_offer_by,
            rounds: record.rounds,
            note: record.request.note.clone(),
            status,
        })
    }

    pub fn task(&self, task_id: &str) -> Option<TaskView> {
        self.tasks.get(task_id).map(|record| TaskView {
            terms: record.terms.clone(),
            terms_hash: record.terms_hash.clone(),
            funded_at: record.funded_at,
            status: record.status.clone(),
        })
    }

    /// Every task and its state, by id.
    pub fn tasks(&self) -> impl Iterator<Item = (&str, &'static str)> {
        self.tasks
            .iter()
            .map(|(id, task)| (id.as_str(), task.status.name()))
    }

    pub fn license(&self, license_id: &str) -> Option<LicenseView> {
        self.licenses
            .get(license_id)
            .map(|record| record.view.clone())
    }

    /// What the ledger recorded of `did`'s settled work.
    pub fn record(&self, did: &Did) -> Record {
        self.records.get(did).cloned().unwrap_or_default()
    }

    /// `did`'s reputation at the ledger's clock (see [`crate::reputation`]).
    pub fn reputation(&self, did: &Did) -> Reputation {
        let empty = Record::default();
        let record = self.records.get(did).unwrap_or(&empty);
        reputation::score(
            record,
            self.registered_at.get(did).copied(),
            self.clock,
            |counterparty| self.registered_at.get(counterparty).copied(),
        )
    }

    /// Listed offers matching `query`, ranked by the provider's reputation
    /// (highest first), then price (lowest first, priced on quote last),
    /// then id. O(listings): the listing count is bounded per provider.
    pub fn discover(&self, query: &Discovery) -> DiscoveryPage {
        let limit = query.limit.clamp(1, DISCOVERY_PAGE_MAX);
        let mut matches: Vec<Discovered> = self
            .listings
            .values()
            .filter(|record| record.status == ListingStatus::Listed)
            .filter(|record| query.kind.is_none_or(|kind| record.request.kind == kind))
            .filter(|record| {
                query
                    .capability
                    .as_ref()
                    .is_none_or(|wanted| record.request.capabilities.contains(wanted))
            })
            .filter(|record| {
                query.max_price.is_none_or(|ceiling| {
                    record
                        .request
                        .pricing
                        .price()
                        .is_some_and(|price| price <= ceiling)
                })
            })
            .map(|record| Discovered {
                listing: self.listing_view(record),
                reputation: self.reputation(&record.request.provider).score,
            })
            .filter(|found| {
                query
                    .min_reputation
                    .is_none_or(|min| found.reputation >= min)
            })
            .collect();
        matches.sort_by(|a, b| {
            let price =
                |found: &Discovered| found.listing.listing.pricing.price().unwrap_or(Amount::MAX);
            b.reputation
                .cmp(&a.reputation)
                .then(price(a).cmp(&price(b)))
                .then(
                    a.listing
                        .listing
                        .listing_id
                        .cmp(&b.listing.listing.listing_id),
                )
        });
        let total = matches.len();
        let listings: Vec<Discovered> =
            matches.into_iter().skip(query.offset).take(limit).collect();
        let end = query.offset.saturating_add(listings.len());
        DiscoveryPage {
            listings,
            total,
            next_offset: (end < total).then_some(end),
        }
    }

    // ----- authority -----------------------------------------------------

    /// Checks that `signer` may act for `account` (a principal for its own
    /// and its agents' accounts, an agent for its own, a session for its
    /// agent's) and that every grant on the way is live.
    pub(super) fn check_acts_for(
        &self,
        signer: Did,
        account: &Did,
        now: Timestamp,
    ) -> Result<(), Rejection> {
        if !self.accounts.contains_key(account) {
            return Err(Rejection::UnknownAccount { did: *account });
        }
        for subject in self.spending_chain(signer, account)? {
            self.delegate(&subject).check_active(subject, now)?;
        }
        Ok(())
    }

    pub(super) fn acts_for(&self, signer: Did, account: &Did, now: Timestamp) -> bool {
        self.check_acts_for(signer, account, now).is_ok()
    }

    pub(super) fn principal_of(&self, account: &Did) -> Did {
        self.accounts
            .get(account)
            .expect("market parties have accounts")
            .owner
    }

    // ----- listings ------------------------------------------------------

    pub(super) fn publish_listing(
        &mut self,
        signer: Did,
        publish: &PublishListing,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        check_key("listing_id", &publish.listing_id)?;
        let existing = self.listings.get(&publish.listing_id);
        let existing = existing.map(|r| (r.creator, &r.request, r.outcome.as_slice()));
        if let Some(original) = recall_id(existing, signer, publish, &publish.listing_id)? {
            return Ok(original);
        }
        if publish.name.is_empty() {
            return Err(Rejection::InvalidField {
                field: "name",
                reason: "must be 1-64 bytes without control, bidirectional or invisible characters",
            });
        }
        check_text(
            "name",
            &publish.name,
            LISTING_NAME_BYTES_MAX,
            "must be 1-64 bytes without control, bidirectional or invisible characters",
        )?;
        check_text(
            "description",
            &publish.description,
            DESCRIPTION_BYTES_MAX,
            "must be at most 512 bytes without control, bidirectional or invisible characters",
        )?;
        let tags = &publish.capabilities;
        let unique: BTreeSet<&String> = tags.iter().collect();
        if tags.is_empty()
            || tags.len() > CAPABILITIES_PER_LISTING_MAX
            || unique.len() != tags.len()
        {
            return Err(Rejection::InvalidField {
                field: "capabilities",
                reason: "must list 1-16 distinct tags",
            });
        }
        for tag in tags {
            check_category_field(Some(tag)).map_err(|_| Rejection::InvalidField {
                field: "capabilities",
                reason: "a tag is 1-32 characters of a-z, 0-9, '_', '.', '-'",
            })?;
        }
        match &publish.pricing {
            crate::market::Pricing::PerUnit { unit, .. } if !crate::grant::is_category(unit) => {
                return Err(Rejection::InvalidField {
                    field: "pricing",
                    reason: "a unit is 1-32 characters of a-z, 0-9, '_', '.', '-'",
                });
            }
            pricing => {
                if pricing.price().is_some_and(Amount::is_zero) {
                    return Err(Rejection::AmountZero);
                }
            }
        }
        check_uri("endpoint", publish.endpoint.as_deref())?;
        if !publish.revenue_share.is_empty() {
            check_splits(&publish.revenue_share)?;
            for split in &publish.revenue_share {
                if !self.accounts.contains_key(&split.to) {
                    return Err(Rejection::UnknownAccount { did: split.to });
                }
            }
        }
        match (publish.kind, &publish.content_hash) {
            (ListingKind::Dataset, Some(hash)) => {
                check_hash("content_hash", hash)?;
                if publish.pricing.price().is_none() {
                    return Err(Rejection::InvalidField {
                        field: "pricing",
                        reason: "a dataset has a price per use",
                    });
                }
            }
            (ListingKind::Dataset, None) => {
                return Err(Rejection::InvalidField {
                    field: "content_hash",
                    reason: "a dataset names the SHA-256 of its content",
                });
            }
            (ListingKind::Service, Some(_)) => {
                return Err(Rejection::InvalidField {
                    field: "content_hash",
                    reason: "only a dataset has a content hash",
                });
            }
            (ListingKind::Service, None) => {}
        }
        let provider = publish.provider;
        let published = self.provider_listings.get(&provider).map_or(0, Vec::len);
        if published >= LISTINGS_PER_PROVIDER_MAX {
            return Err(Rejection::InvalidField {
                field: "listing_id",
                reason: "an account publishes at most 256 listings",
            });
        }
        let stake = publish.stake.unwrap_or(Amount::ZERO);
        let stake_charge = match publish.stake {
            Some(stake) => {
                check_nonzero(stake)?;
                let plan = self.plan_spend(signer, &provider, stake, None, None, now)?;
                if plan.needs_approval {
                    return Err(Rejection::ApprovalRequired {
                        subject: signer,
                        amount: stake,
                    });
                }
                Some(plan.charge)
            }
            None => {
                self.check_acts_for(signer, &provider, now)?;
                None
            }
        };

        if let Some(charge) = &stake_charge {
            self.charge(charge);
            self.reserve(&provider, stake);
        }
        let outcome = vec![Event::ListingPublished {
            listing_id: publish.listing_id.clone(),
            provider,
            kind: publish.kind,
            stake,
        }];
        self.listings.insert(
            publish.listing_id.clone(),
            ListingRecord {
                creator: signer,
                request: publish.clone(),
                outcome: outcome.clone(),
                status: ListingStatus::Listed,
                published_at: now,
                stake_held: stake,
                stake_charge,
                open_tasks: 0,
            },
        );
        self.provider_listings
            .entry(provider)
            .or_default()
            .push(publish.listing_id.clone());
        Ok(outcome)
    }

    fn active_listing(&self, listing_id: &str) -> Result<&ListingRecord, Rejection> {
        let record = self
            .listings
            .get(listing_id)
            .ok_or_else(|| Rejection::ListingNotFound {
                listing_id: listing_id.to_owned(),
            })?;
        if record.status != ListingStatus::Listed {
            return Err(Rejection::ListingWithdrawn {
                listing_id: listing_id.to_owned(),
            });
        }
        Ok(record)
    }

    pub(super) fn withdraw_listing(
        &mut self,
        signer: Did,
        withdraw: &ListingRef,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let record = self.active_listing(&withdraw.listing_id)?;
        let provider = record.request.provider;
        self.check_acts_for(signer, &provider, now)?;
        if record.open_tasks > 0 {
            return Err(Rejection::ListingBusy {
                listing_id: withdraw.listing_id.clone(),
                open_tasks: record.open_tasks,
            });
        }

        let record = self
            .listings
            .get_mut(&withdraw.listing_id)
            .expect("found above");
        record.status = ListingStatus::Withdrawn;
        let stake = std::mem::replace(&mut record.stake_held, Amount::ZERO);
        let charge = record.stake_charge.take();
        if let Some(charge) = charge {
            assert_eq!(charge.amount, stake, "an unslashed stake returns whole");
            self.refund(&charge);
            self.unreserve(&provider, stake);
        }
        Ok(vec![Event::ListingWithdrawn {
            listing_id: withdraw.listing_id.clone(),
            provider,
            stake_returned: stake,
        }])
    }

    // ----- negotiation ---------------------------------------------------

    pub(super) fn request_quotes(
        &mut self,
        signer: Did,
        request: &RequestQuotes,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        check_key("rfq_id", &request.rfq_id)?;
        let existing = self.rfqs.get(&request.rfq_id);
        let existing = existing.map(|r| (r.creator, &r.request, r.outcome.as_slice()));
        if let Some(original) = recall_id(existing, signer, request, &request.rfq_id)? {
            return Ok(original);
        }
        check_category_field(Some(&request.capability)).map_err(|_| Rejection::InvalidField {
            field: "capability",
            reason: "must be 1-32 characters of a-z, 0-9, '_', '.', '-'",
        })?;
        check_text(
            "description",
            &request.description,
            DESCRIPTION_BYTES_MAX,
            "must be at most 512 bytes without control, bidirectional or invisible characters",
        )?;
        check_nonzero(request.budget_max)?;
        check_window(
            "deadline_s",
            request.deadline_s,
            TASK_DEADLINE_MIN_S,
            TASK_DEADLINE_MAX_S,
            "must be between 60 seconds and 90 days",
        )?;
        check_window(
            "review_window_s",
            request.review_window_s.unwrap_or(REVIEW_WINDOW_DEFAULT_S),
            REVIEW_WINDOW_MIN_S,
            REVIEW_WINDOW_MAX_S,
            "must be between 60 seconds and 7 days",
        )?;
        let expires_at_max = now
            .checked_add_seconds(RFQ_DURATION_MAX_S)
            .expect("clock is bounded");
        let expires_at = request.expires_at.unwrap_or(
            now.checked_add_seconds(RFQ_DURATION_DEFAULT_S)
                .expect("clock is bounded"),
        );
        if expires_at <= now || expires_at > expires_at_max {
            return Err(Rejection::InvalidField {
                field: "expires_at",
                reason: "must be in the future and at most 30 days ahead",
            });
        }
        let invited: BTreeSet<&Did> = request.invited.iter().collect();
        if request.invited.len() > INVITED_PER_RFQ_MAX || invited.len() != request.invited.len() {
            return Err(Rejection::InvalidField {
                field: "invited",
                reason: "must list at most 32 distinct providers",
            });
        }
        self.check_acts_for(signer, &request.from, now)?;
        let buyer_principal = self.principal_of(&request.from);
        for (field, party) in [
            ("arbiter", request.arbiter),
            ("validator", request.validator),
        ] {
            let Some(party) = party else { continue };
            if party == self.operator {
                return Err(Rejection::InvalidField {
                    field,
                    reason: "may not be the node operator",
                });
            }
            // Neither the buyer's principal nor any of its agents or
            // sessions judges the buyer's own task.
            match self.owner_root(&party) {
                None => return Err(Rejection::UnknownIdentity { did: party }),
                Some(root) if root == buyer_principal => {
                    return Err(Rejection::OwnSideRole { field });
                }
                Some(_) => {}
            }
        }

        let outcome = vec![Event::QuotesRequested {
            rfq_id: request.rfq_id.clone(),
            buyer: request.from,
            capability: request.capability.clone(),
            budget_max: request.budget_max,
            expires_at,
        }];
        self.rfqs.insert(
            request.rfq_id.clone(),
            RfqRecord {
                creator: signer,
                request: request.clone(),
                outcome: outcome.clone(),
                expires_at,
                status: RfqStatus::Open,
                quotes: Vec::new(),
            },
        );
        self.forget_rfq_later(&request.rfq_id, expires_at);
        Ok(outcome)
    }

    fn open_rfq(&self, rfq_id: &str) -> Result<&RfqRecord, Rejection> {
        let record = self
            .rfqs
            .get(rfq_id)
            .ok_or_else(|| Rejection::RfqNotFound {
                rfq_id: rfq_id.to_owned(),
            })?;
        match self.rfq_status(record) {
            RfqStatus::Open => Ok(record),
            RfqStatus::Awarded => Err(Rejection::RfqClosed {
                rfq_id: rfq_id.to_owned(),
                reason: "a quote was accepted",
            }),
            RfqStatus::Expired => Err(Rejection::RfqClosed {
                rfq_id: rfq_id.to_owned(),
                reason: "it expired",
            }),
        }
    }

    pub(super) fn submit_quote(
        &mut self,
        signer: Did,
        submit: &SubmitQuote,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        check_key("quote_id", &submit.quote_id)?;
        let existing = self.quotes.get(&submit.quote_id);
        let existing = existing.map(|r| (r.creator, &r.request, r.outcome.as_slice()));
        if let Some(original) = recall_id(existing, signer, submit, &submit.quote_id)? {
            return Ok(original);
        }
        if let Some(note) = &submit.note {
            check_text(
                "note",
                note,
                NOTE_BYTES_MAX,
                "must be at most 256 bytes without control, bidirectional or invisible characters",
            )?;
        }
        check_nonzero(submit.price)?;
        let rfq = self.open_rfq(&submit.rfq_id)?;
        let request = &rfq.request;
        self.check_acts_for(signer, &submit.provider, now)?;
        if submit.provider == request.from {
            return Err(Rejection::SameAccount);
        }
        if !request.invited.is_empty() && !request.invited.contains(&submit.provider) {
            return Err(Rejection::NotAuthorized {
                reason: "the request for quotes invites other providers",
            });
        }
        let provider_principal = self.principal_of(&submit.provider);
        for (field, party) in [
            ("arbiter", request.arbiter),
            ("validator", request.validator),
        ] {
            if party.is_some_and(|party| self.owner_root(&party) == Some(provider_principal)) {
                return Err(Rejection::OwnSideRole { field });
            }
        }
        if submit.price > request.budget_max {
            return Err(Rejection::PriceAboveBudget {
                price: submit.price,
                budget_max: request.budget_max,
            });
        }
        if rfq.quotes.len() >= QUOTES_PER_RFQ_MAX {
            return Err(Rejection::RfqClosed {
                rfq_id: submit.rfq_id.clone(),
                reason: "it has all the quotes it takes",
            });
        }
        if let Some(listing_id) = &submit.listing_id {
            let listing = self.active_listing(listing_id)?;
            if listing.request.provider != submit.provider {
                return Err(Rejection::NotAuthorized {
                    reason: "a quote comes under the provider's own listing",
                });
            }
            if !listing.request.capabilities.contains(&request.capability) {
                return Err(Rejection::InvalidField {
                    field: "listing_id",
                    reason: "the listing does not offer the capability asked for",
                });
            }
            // A lost dispute pays the listing's stake to the buyer: the
            // buyer must be a payee the stake's mandate allows.
            if let Some(charge) = &listing.stake_charge {
                self.check_payees(&charge.delegates, [&request.from])?;
            }
        }

        let outcome = vec![Event::QuoteSubmitted {
            quote_id: submit.quote_id.clone(),
            rfq_id: submit.rfq_id.clone(),
            provider: submit.provider,
            price: submit.price,
        }];
        self.rfqs
            .get_mut(&submit.rfq_id)
            .expect("found above")
            .quotes
            .push(submit.quote_id.clone());
        self.quotes.insert(
            submit.quote_id.clone(),
            QuoteRecord {
                creator: signer,
                request: submit.clone(),
                outcome: outcome.clone(),
                price: submit.price,
                last_offer_by: Side::Provider,
                rounds: 1,
                status: QuoteStatus::Open,
            },
        );
        Ok(outcome)
    }

    /// An open quote on an open request.
    fn open_quote(&self, quote_id: &str) -> Result<(&QuoteRecord, &RfqRecord), Rejection> {
        let quote = self
            .quotes
            .get(quote_id)
            .ok_or_else(|| Rejection::QuoteNotFound {
                quote_id: quote_id.to_owned(),
            })?;
        let rfq = self.open_rfq(&quote.request.rfq_id)?;
        if quote.status != QuoteStatus::Open {
            return Err(Rejection::QuoteNotOpen {
                quote_id: quote_id.to_owned(),
            });
        }
        Ok((quote, rfq))
    }

    pub(super) fn counter_quote(
        &mut self,
        signer: Did,
        counter: &CounterQuote,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        check_nonzero(counter.price)?;
        let (quote, rfq) = self.open_quote(&counter.quote_id)?;
        let side = if self.acts_for(signer, &rfq.request.from, now) {
            Side::Buyer
        } else if self.acts_for(signer, &quote.request.provider, now) {
            Side::Provider
        } else {
            return Err(Rejection::NotAuthorized {
                reason: "only the buyer's or the provider's side makes offers on a quote",
            });
        };
        if quote.last_offer_by == side {
            return Err(Rejection::OfferOutOfTurn {
                quote_id: counter.quote_id.clone(),
            });
        }
        if quote.rounds >= QUOTE_ROUNDS_MAX {
            return Err(Rejection::QuoteRoundsExhausted {
                quote_id: counter.quote_id.clone(),
                rounds: quote.rounds,
            });
        }
        if counter.price > rfq.request.budget_max {
            return Err(Rejection::PriceAboveBudget {
                price: counter.price,
                budget_max: rfq.request.budget_max,
            });
        }

        let quote = self.quotes.get_mut(&counter.quote_id).expect("found above");
        quote.price = counter.price;
        quote.last_offer_by = side;
        quote.rounds += 1;
        Ok(vec![Event::QuoteCountered {
            quote_id: counter.quote_id.clone(),
            by: side,
            price: counter.price,
            round: quote.rounds,
        }])
    }

    pub(super) fn accept_quote(
        &mut self,
        signer: Did,
        accept: &AcceptQuote,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        check_key("task_id", &accept.task_id)?;
        if let Some(existing) = self.tasks.get(&accept.task_id) {
            if existing.creator == signer && existing.terms.quote_id == accept.quote_id {
                return Ok(vec![Event::Duplicate {
                    original: existing.outcome.clone(),
                }]);
            }
            return Err(Rejection::IdempotencyConflict {
                key: accept.task_id.clone(),
            });
        }
        let (quote, rfq) = self.open_quote(&accept.quote_id)?;
        let request = &rfq.request;
        self.check_acts_for(signer, &request.from, now)?;
        if quote.last_offer_by != Side::Provider {
            return Err(Rejection::OfferOutOfTurn {
                quote_id: accept.quote_id.clone(),
            });
        }
        if let Some(listing_id) = &quote.request.listing_id {
            self.active_listing(listing_id)?;
        }
        let plan = self.plan_spend(
            signer,
            &request.from,
            quote.price,
            Some(&quote.request.provider),
            Some(&request.capability),
            now,
        )?;
        if plan.needs_approval {
            return Err(Rejection::ApprovalRequired {
                subject: signer,
                amount: quote.price,
            });
        }
        let terms = TaskTerms {
            task_id: accept.task_id.clone(),
            rfq_id: quote.request.rfq_id.clone(),
            quote_id: accept.quote_id.clone(),
            buyer: request.from,
            provider: quote.request.provider,
            listing_id: quote.request.listing_id.clone(),
            capability: request.capability.clone(),
            price: quote.price,
            deadline: now
                .checked_add_seconds(request.deadline_s)
                .expect("clock is bounded"),
            review_window_s: request.review_window_s.unwrap_or(REVIEW_WINDOW_DEFAULT_S),
            arbiter: request.arbiter,
            validator: request.validator,
        };
        let terms_hash = terms_hash(&terms);
        let self_dealing = self.principal_of(&terms.buyer) == self.principal_of(&terms.provider);
        let quote_ids = rfq.quotes.clone();

        self.charge(&plan.charge);
        self.reserve(&terms.buyer, terms.price);
        self.rfqs
            .get_mut(&terms.rfq_id)
            .expect("found above")
            .status = RfqStatus::Awarded;
        for quote_id in quote_ids {
            let quote = self
                .quotes
                .get_mut(&quote_id)
                .expect("an rfq lists its quotes");
            quote.status = if quote_id == accept.quote_id {
                QuoteStatus::Accepted
            } else {
                QuoteStatus::Closed
            };
        }
        if let Some(listing_id) = &terms.listing_id {
            self.listings
                .get_mut(listing_id)
                .expect("checked above")
                .open_tasks += 1;
        }
        let outcome = vec![Event::TaskFunded {
            task_id: accept.task_id.clone(),
            quote_id: accept.quote_id.clone(),
            buyer: terms.buyer,
            provider: terms.provider,
            price: terms.price,
            deadline: terms.deadline,
            terms_hash: terms_hash.clone(),
        }];
        self.expiries
            .insert((terms.deadline, Expiry::Task(accept.task_id.clone())));
        self.tasks.insert(
            accept.task_id.clone(),
            TaskRecord {
                creator: signer,
                outcome: outcome.clone(),
                terms,
                terms_hash,
                charge: plan.charge,
                funded_at: now,
                self_dealing,
                status: TaskStatus::Funded,
            },
        );
        Ok(outcome)
    }

    // ----- tasks ---------------------------------------------------------

    fn task_record(&self, task_id: &str) -> Result<&TaskRecord, Rejection> {
        self.tasks
            .get(task_id)
            .ok_or_else(|| Rejection::TaskNotFound {
                task_id: task_id.to_owned(),
            })
    }

    fn wrong_state(task: &TaskRecord, expected: &'static str) -> Rejection {
        Rejection::TaskWrongState {
            task_id: task.terms.task_id.clone(),
            status: task.status.name(),
            expected,
        }
    }

    /// Moves a task's single expiry entry from its current deadline to
    /// `next` (or removes it when the task settles).
    fn move_task_expiry(&mut self, task_id: &str, next: Option<Timestamp>) {
        let current = self.tasks[task_id]
            .deadline()
            .expect("only a task holding money has an expiry");
        let removed = self
            .expiries
            .remove(&(current, Expiry::Task(task_id.to_owned())));
        assert!(removed, "a task holding money waits in the expiry index");
        if let Some(next) = next {
            self.expiries
                .insert((next, Expiry::Task(task_id.to_owned())));
        }
    }

    pub(super) fn deliver_task(
        &mut self,
        signer: Did,
        deliver: &DeliverTask,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let task = self.task_record(&deliver.task_id)?;
        self.check_acts_for(signer, &task.terms.provider, now)?;
        if task.status != TaskStatus::Funded {
            return Err(Self::wrong_state(task, "funded and not yet delivered"));
        }
        check_hash("result_hash", &deliver.result_hash)?;
        check_uri("uri", deliver.uri.as_deref())?;
        let manifest = self.delivery_manifest(
            &deliver.manifest,
            || {
                task.terms
                    .listing_id
                    .as_ref()
                    .map(|id| self.listings[id].request.revenue_share.clone())
                    .filter(|share| !share.is_empty())
                    .unwrap_or_else(|| sole(task.terms.provider))
            },
            &task.charge.delegates,
            None,
        )?;
        let review_ends_at = now
            .checked_add_seconds(task.terms.review_window_s)
            .expect("clock is bounded");
        let provider = task.terms.provider;

        self.move_task_expiry(&deliver.task_id, Some(review_ends_at));
        self.tasks
            .get_mut(&deliver.task_id)
            .expect("found above")
            .status = TaskStatus::Delivered {
            delivery: Delivery {
                result_hash: deliver.result_hash.clone(),
                uri: deliver.uri.clone(),
                manifest: manifest.clone(),
                delivered_at: now,
            },
            review_ends_at,
        };
        Ok(vec![Event::TaskDelivered {
            task_id: deliver.task_id.clone(),
            provider,
            result_hash: deliver.result_hash.clone(),
            manifest,
            review_ends_at,
        }])
    }

    /// A delivery's manifest: the one given (checked), or `default`'s.
    /// Every part goes to an account, and (the escrow being the payer's
    /// money) to a payee every grant of `delegates` allows; none to the
    /// side of `judge`, the validator or arbiter who rules on the work.
    pub(super) fn delivery_manifest(
        &self,
        given: &[Split],
        default: impl FnOnce() -> Vec<Split>,
        delegates: &[Did],
        judge: Option<Did>,
    ) -> Result<Vec<Split>, Rejection> {
        let manifest = if given.is_empty() {
            default()
        } else {
            check_splits(given)?;
            given.to_vec()
        };
        let judge_root = judge.and_then(|judge| self.owner_root(&judge));
        for split in &manifest {
            if !self.accounts.contains_key(&split.to) {
                return Err(Rejection::UnknownAccount { did: split.to });
            }
            if judge_root.is_some() && self.owner_root(&split.to) == judge_root {
                return Err(Rejection::OwnSideRole { field: "manifest" });
            }
        }
        self.check_payees(delegates, manifest.iter().map(|split| &split.to))?;
        Ok(manifest)
    }

    pub(super) fn approve_task(
        &mut self,
        signer: Did,
        approve: &ApproveTask,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let task = self.task_record(&approve.task_id)?;
        let by = if task.terms.validator == Some(signer) {
            self.check_role_live(signer, now)?;
            Approver::Validator
        } else {
            self.check_acts_for(signer, &task.terms.buyer, now)
                .map_err(|rejection| match rejection {
                    Rejection::NotAuthorized { .. } => Rejection::NotAuthorized {
                        reason: "only the buyer's side or the validator named in the terms approves a delivery",
                    },
                    other => other,
                })?;
            Approver::Buyer
        };
        let TaskStatus::Delivered { delivery, .. } = &task.status else {
            return Err(Self::wrong_state(task, "delivered and under review"));
        };
        if delivery.result_hash != approve.result_hash {
            return Err(Rejection::ResultHashMismatch {
                task_id: approve.task_id.clone(),
            });
        }
        self.move_task_expiry(&approve.task_id, None);
        Ok(vec![self.settle_approved(&approve.task_id, by)])
    }

    /// Pays a delivered task's escrow out by its manifest; the caller took
    /// the task out of the expiry index.
    fn settle_approved(&mut self, task_id: &str, by: Approver) -> Event {
        let task = &self.tasks[task_id];
        let TaskStatus::Delivered { delivery, .. } = &task.status else {
            unreachable!("only a delivered task is approved")
        };
        let delivery = delivery.clone();
        let (buyer, price) = task.escrow();
        let (provider, self_dealing, listing_id) = (
            task.terms.provider,
            task.self_dealing,
            task.terms.listing_id.clone(),
        );
        self.take_held(&buyer, price);
        let parts = self.pay_out(price, &delivery.manifest);
        self.close_task(listing_id.as_deref());
        if !self_dealing {
            let principal = self.principal_of(&buyer);
            let record = self.records.entry(provider).or_default();
            record.tasks_paid += 1;
            record.paid_by(principal, price);
        }
        self.tasks.get_mut(task_id).expect("exists").status = TaskStatus::Approved {
            delivery,
            by,
            parts: parts.clone(),
        };
        self.forget_later(Forget::Task(task_id.to_owned()));
        Event::TaskApproved {
            task_id: task_id.to_owned(),
            buyer,
            by,
            parts,
        }
    }

    /// Credits `amount`, already taken from its holder, by `manifest`.
    pub(super) fn pay_out(&mut self, amount: Amount, manifest: &[Split]) -> Vec<Part> {
        if amount.is_zero() {
            return Vec::new();
        }
        let shares: Vec<u16> = manifest.iter().map(|split| split.bps).collect();
        let amounts = split_largest_remainder(amount, &shares);
        let mut parts = Vec::with_capacity(amounts.len());
        for (split, part) in manifest.iter().zip(amounts) {
            if part.is_zero() {
                continue;
            }
            self.credit(&split.to, part);
            parts.push(Part {
                to: split.to,
                amount: part,
            });
        }
        let paid: u128 = parts.iter().map(|part| part.amount.atomic()).sum();
        assert_eq!(paid, amount.atomic(), "a payout conserves its amount");
        parts
    }

    fn close_task(&mut self, listing_id: Option<&str>) {
        if let Some(listing_id) = listing_id {
            let listing = self
                .listings
                .get_mut(listing_id)
                .expect("tasks name real listings");
            listing.open_tasks = listing
                .open_tasks
                .checked_sub(1)
                .expect("a listing counts its open tasks");
        }
    }

    pub(super) fn dispute_task(
        &mut self,
        signer: Did,
        dispute: &DisputeTask,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let task = self.task_record(&dispute.task_id)?;
        self.check_acts_for(signer, &task.terms.buyer, now)?;
        let TaskStatus::Delivered { delivery, .. } = &task.status else {
            return Err(Self::wrong_state(task, "delivered and under review"));
        };
        let Some(arbiter) = task.terms.arbiter else {
            return Err(Rejection::NoArbiter {
                task_id: dispute.task_id.clone(),
            });
        };
        check_text(
            "reason",
            &dispute.reason,
            NOTE_BYTES_MAX,
            "must be at most 256 bytes without control, bidirectional or invisible characters",
        )?;
        let delivery = delivery.clone();
        let arbitration_ends_at = now
            .checked_add_seconds(ARBITRATION_WINDOW_S)
            .expect("clock is bounded");

        self.move_task_expiry(&dispute.task_id, Some(arbitration_ends_at));
        self.tasks
            .get_mut(&dispute.task_id)
            .expect("found above")
            .status = TaskStatus::Disputed {
            delivery,
            reason: dispute.reason.clone(),
            arbitration_ends_at,
        };
        Ok(vec![Event::TaskDisputed {
            task_id: dispute.task_id.clone(),
            arbiter,
            arbitration_ends_at,
        }])
    }

    pub(super) fn resolve_dispute(
        &mut self,
        signer: Did,
        resolve: &ResolveDispute,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let task = self.task_record(&resolve.task_id)?;
        if task.terms.arbiter != Some(signer) {
            return Err(Rejection::NotArbiter {
                task_id: resolve.task_id.clone(),
            });
        }
        self.check_role_live(signer, now)?;
        let TaskStatus::Disputed { delivery, .. } = &task.status else {
            return Err(Self::wrong_state(task, "disputed"));
        };
        if resolve.provider_bps > BPS_WHOLE {
            return Err(Rejection::InvalidField {
                field: "provider_bps",
                reason: "must be between 0 and 10000 basis points",
            });
        }
        let delivery = delivery.clone();
        let (buyer, price) = task.escrow();
        let (provider, self_dealing, listing_id) = (
            task.terms.provider,
            task.self_dealing,
            task.terms.listing_id.clone(),
        );
        let charge = task.charge.clone();
        let task_id = resolve.task_id.clone();
        let shares = split_largest_remainder(
            price,
            &[resolve.provider_bps, BPS_WHOLE - resolve.provider_bps],
        );
        let (provider_amount, refunded) = (shares[0], shares[1]);
        let provider_lost = u32::from(resolve.provider_bps) * 2 < u32::from(BPS_WHOLE);

        self.move_task_expiry(&task_id, None);
        self.take_held(&buyer, provider_amount);
        let parts = self.pay_out(provider_amount, &delivery.manifest);
        if !refunded.is_zero() {
            self.refund(&Charge {
                amount: refunded,
                ..charge
            });
            self.unreserve(&buyer, refunded);
        }
        let mut slashed = Amount::ZERO;
        if provider_lost && let Some(listing_id) = &listing_id {
            let listing = self
                .listings
                .get_mut(listing_id)
                .expect("tasks name real listings");
            slashed = std::mem::replace(&mut listing.stake_held, Amount::ZERO);
            listing.stake_charge = None;
            if !slashed.is_zero() {
                self.take_held(&provider, slashed);
                self.credit(&buyer, slashed);
            }
        }
        self.close_task(listing_id.as_deref());
        if !self_dealing {
            let principal = self.principal_of(&buyer);
            let record = self.records.entry(provider).or_default();
            if provider_lost {
                record.disputes_lost += 1;
                // Volume counts money that may circulate: it can exceed the
                // deposits over time, so it saturates rather than asserts.
                record.volume = record
                    .volume
                    .checked_add(provider_amount)
                    .unwrap_or(Amount::MAX);
            } else {
                record.disputes_won += 1;
                record.tasks_paid += 1;
                record.paid_by(principal, provider_amount);
            }
        }
        self.tasks.get_mut(&task_id).expect("exists").status = TaskStatus::Resolved {
            delivery,
            provider_bps: resolve.provider_bps,
            parts: parts.clone(),
            refunded,
            slashed,
        };
        self.forget_later(Forget::Task(task_id.clone()));
        Ok(vec![Event::DisputeResolved {
            task_id,
            arbiter: signer,
            provider_bps: resolve.provider_bps,
            parts,
            buyer,
            provider,
            refunded,
            slashed,
        }])
    }

    /// What the ledger clock does to a task whose deadline came: a missed
    /// delivery refunds the buyer, a silent buyer approves, a silent
    /// arbiter returns the escrow to the buyer.
    pub(super) fn task_deadline(&mut self, task_id: String) -> Event {
        let task = &self.tasks[&task_id];
        let reason = match task.status {
            TaskStatus::Delivered { .. } => {
                return self.settle_approved(&task_id, Approver::ReviewWindowEnded);
            }
            TaskStatus::Funded => RefundReason::DeadlineMissed,
            TaskStatus::Disputed { .. } => RefundReason::ArbitrationLapsed,
            _ => unreachable!("only a task holding money waits in the expiry index"),
        };
        let (buyer, price) = task.escrow();
        let (provider, self_dealing, listing_id, charge) = (
            task.terms.provider,
            task.self_dealing,
            task.terms.listing_id.clone(),
            task.charge.clone(),
        );
        self.refund(&charge);
        self.unreserve(&buyer, price);
        self.close_task(listing_id.as_deref());
        if reason == RefundReason::DeadlineMissed && !self_dealing {
            self.records.entry(provider).or_default().refunds += 1;
        }
        self.tasks.get_mut(&task_id).expect("exists").status = TaskStatus::Refunded { reason };
        self.forget_later(Forget::Task(task_id.clone()));
        Event::TaskRefunded {
            task_id,
            buyer,
            amount: price,
            reason,
        }
    }

    // ----- data licences -------------------------------------------------

    pub(super) fn license_dataset(
        &mut self,
        signer: Did,
        license: &LicenseDataset,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        check_key("license_id", &license.license_id)?;
        let existing = self.licenses.get(&license.license_id);
        let existing = existing.map(|r| (r.creator, &r.request, r.outcome.as_slice()));
        if let Some(original) = recall_id(existing, signer, license, &license.license_id)? {
            return Ok(original);
        }
        let listing = self.active_listing(&license.listing_id)?;
        let offer = &listing.request;
        if offer.kind != ListingKind::Dataset {
            return Err(Rejection::InvalidField {
                field: "listing_id",
                reason: "only a dataset listing is licensed",
            });
        }
        let provider = offer.provider;
        if license.from == provider {
            return Err(Rejection::SameAccount);
        }
        let price = offer.pricing.price().expect("a dataset has a price");
        let content_hash = offer
            .content_hash
            .clone()
            .expect("a dataset has a content hash");
        let manifest = if offer.revenue_share.is_empty() {
            sole(provider)
        } else {
            offer.revenue_share.clone()
        };
        let category = offer.capabilities.first().cloned();
        let plan = self.plan_spend(
            signer,
            &license.from,
            price,
            Some(&provider),
            category.as_deref(),
            now,
        )?;
        if plan.needs_approval {
            return Err(Rejection::ApprovalRequired {
                subject: signer,
                amount: price,
            });
        }
        self.check_payees(
            &plan.charge.delegates,
            manifest.iter().map(|split| &split.to),
        )?;
        let self_dealing = self.principal_of(&license.from) == self.principal_of(&provider);

        self.charge(&plan.charge);
        self.debit(&license.from, price);
        let parts = self.pay_out(price, &manifest);
        if !self_dealing {
            let principal = self.principal_of(&license.from);
            let record = self.records.entry(provider).or_default();
            record.licences_sold += 1;
            record.paid_by(principal, price);
        }
        let outcome = vec![Event::DatasetLicensed {
            license_id: license.license_id.clone(),
            listing_id: license.listing_id.clone(),
            content_hash: content_hash.clone(),
            licensee: license.from,
            price,
            parts: parts.clone(),
        }];
        self.licenses.insert(
            license.license_id.clone(),
            LicenseRecord {
                creator: signer,
                request: license.clone(),
                outcome: outcome.clone(),
                view: LicenseView {
                    license_id: license.license_id.clone(),
                    listing_id: license.listing_id.clone(),
                    content_hash,
                    licensee: license.from,
                    price,
                    parts,
                    licensed_at: now,
                },
            },
        );
        self.forget_later(Forget::License(license.license_id.clone()));
        Ok(outcome)
    }

    /// Every live task: arbiter and validator outside both owner trees; the
    /// delivered manifest paid to payees the buyer's charge allows; the
    /// listing's stake at risk for a buyer its charge allows.
    pub(super) fn check_task_authority(&self) -> Result<(), InvariantViolation> {
        let fail = |message: String| Err(InvariantViolation(message));
        for (task_id, task) in &self.tasks {
            if task.deadline().is_none() {
                continue;
            }
            let terms = &task.terms;
            let sides = [
                self.owner_root(&terms.buyer),
                self.owner_root(&terms.provider),
            ];
            for party in [terms.arbiter, terms.validator].into_iter().flatten() {
                if sides.contains(&self.owner_root(&party)) {
                    return fail(format!(
                        "task {task_id} names {party} from a party's own tree"
                    ));
                }
            }
            let manifest = match &task.status {
                TaskStatus::Delivered { delivery, .. } | TaskStatus::Disputed { delivery, .. } => {
                    delivery.manifest.as_slice()
                }
                _ => &[],
            };
            if let Err(rejection) = self.check_payees(
                &task.charge.delegates,
                manifest.iter().map(|split| &split.to),
            ) {
                return fail(format!(
                    "task {task_id} pays a payee its buyer may not pay: {rejection}"
                ));
            }
            let stake = terms
                .listing_id
                .as_ref()
                .and_then(|id| self.listings[id].stake_charge.as_ref());
            if let Some(charge) = stake
                && let Err(rejection) = self.check_payees(&charge.delegates, [&terms.buyer])
            {
                return fail(format!(
                    "task {task_id} puts a stake at risk for a buyer its mandate may not pay: {rejection}"
                ));
            }
        }
        Ok(())
    }

    /// The held money of every listing stake, by provider (for the
    /// invariant check).
    pub(super) fn stakes_held(&self) -> impl Iterator<Item = (Did, Amount)> + '_ {
        self.listings
            .values()
            .filter(|listing| !listing.stake_held.is_zero())
            .map(|listing| (listing.request.provider, listing.stake_held))
    }
}
