//! Bounties: crowdsourced work paid by quality and speed. The drawing is
//! in [`crate::economy`].
//!
//! A lead's side posts a bounty and its whole budget (`price ×
//! contributions`) is held from the lead's account, charged once to the
//! lead's mandate. Contributors submit results before the close; the
//! bounty's validator scores each, and the payout (`price × score × speed`,
//! rounded down, [`crate::economy::bounty_payout`]) leaves the held budget
//! at once, split by the contribution's manifest. When every slot is
//! scored, or when the scoring window ends, what is left returns to the
//! lead (and to the budgets of its mandate).
//!
//! Invariants: the lead's held money for an open bounty is `budget − paid`
//! and the bounty waits in the expiry index at its scoring end; the
//! payouts plus the refund equal the budget exactly; a contribution is
//! scored once, only by the validator, and earns at most the price; the
//! validator's side never contributes nor shares a payout; each side
//! (a principal with its agents and sessions) contributes once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::market::{check_hash, check_text, check_window, sole};
use super::retention::Forget;
use super::{Charge, Expiry, State, check_category_field, check_key, check_nonzero};
use crate::amount::{Amount, BPS_WHOLE};
use crate::command::Split;
use crate::constants::{
    BOUNTY_CONTRIBUTIONS_MAX, DESCRIPTION_BYTES_MAX, REVIEW_WINDOW_DEFAULT_S, REVIEW_WINDOW_MAX_S,
    REVIEW_WINDOW_MIN_S, TASK_DEADLINE_MAX_S,
};
use crate::did::Did;
use crate::economy::{
    BountyStatus, BountyView, ContributionView, PostBounty, ScoreContribution, SubmitContribution,
    bounty_payout, speed_bps,
};
use crate::event::{Event, Part};
use crate::rejection::Rejection;
use crate::time::Timestamp;

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
struct ContributionRecord {
    creator: Did,
    request: SubmitContribution,
    outcome: Vec<Event>,
    manifest: Vec<Split>,
    submitted_at: Timestamp,
    speed_bps: u16,
    score_bps: Option<u16>,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub(super) struct BountyRecord {
    creator: Did,
    terms: PostBounty,
    outcome: Vec<Event>,
    charge: Charge,
    full_pay_until: Timestamp,
    closes_at: Timestamp,
    scoring_ends_at: Timestamp,
    budget: Amount,
    paid: Amount,
    closed: bool,
    refunded: Amount,
    /// By contribution id (the view lists them in submission order).
    contributions: BTreeMap<String, ContributionRecord>,
}

impl BountyRecord {
    /// When time alone closes the bounty, while it holds money.
    pub(super) fn deadline(&self) -> Option<Timestamp> {
        (!self.closed).then_some(self.scoring_ends_at)
    }

    /// The lead and what the bounty still holds of its budget.
    pub(super) fn escrow(&self) -> (Did, Amount) {
        (
            self.terms.from,
            self.budget
                .checked_sub(self.paid)
                .expect("payouts stay within the budget"),
        )
    }

    fn status(&self, now: Timestamp) -> BountyStatus {
        if self.closed {
            BountyStatus::Closed
        } else if now >= self.closes_at {
            BountyStatus::Scoring
        } else {
            BountyStatus::Open
        }
    }
}

fn status_name(status: BountyStatus) -> &'static str {
    match status {
        BountyStatus::Open => "open",
        BountyStatus::Scoring => "closed to submissions",
        BountyStatus::Closed => "closed",
    }
}

impl State {
    pub fn bounty(&self, bounty_id: &str) -> Option<BountyView> {
        let record = self.bounties.get(bounty_id)?;
        let mut contributions: Vec<&ContributionRecord> = record.contributions.values().collect();
        contributions.sort_by_key(|c| (c.submitted_at, c.request.contribution_id.clone()));
        Some(BountyView {
            terms: record.terms.clone(),
            lead: record.creator,
            full_pay_until: record.full_pay_until,
            closes_at: record.closes_at,
            scoring_ends_at: record.scoring_ends_at,
            status: record.status(self.clock),
            budget: record.budget,
            paid: record.paid,
            refunded: record.refunded,
            contributions: contributions
                .into_iter()
                .map(|c| ContributionView {
                    contribution_id: c.request.contribution_id.clone(),
                    contributor: c.request.contributor,
                    result_hash: c.request.result_hash.clone(),
                    manifest: c.manifest.clone(),
                    submitted_at: c.submitted_at,
                    speed_bps: c.speed_bps,
                    score_bps: c.score_bps,
                    parts: c.parts.clone(),
                })
                .collect(),
        })
    }

    fn bounty_record(&self, bounty_id: &str) -> Result<&BountyRecord, Rejection> {
        self.bounties
            .get(bounty_id)
            .ok_or_else(|| Rejection::BountyNotFound {
                bounty_id: bounty_id.to_owned(),
            })
    }

    pub(super) fn post_bounty(
        &mut self,
        signer: Did,
        post: &PostBounty,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        check_key("bounty_id", &post.bounty_id)?;
        if let Some(existing) = self.bounties.get(&post.bounty_id) {
            if existing.creator == signer && existing.terms == *post {
                return Ok(vec![Event::Duplicate {
                    original: existing.outcome.clone(),
                }]);
            }
            return Err(Rejection::IdempotencyConflict {
                key: post.bounty_id.clone(),
            });
        }
        check_nonzero(post.price)?;
        check_category_field(post.category.as_deref())?;
        check_text(
            "description",
            &post.description,
            DESCRIPTION_BYTES_MAX,
            "must be at most 512 bytes without control, bidirectional or invisible characters",
        )?;
        if !(1..=BOUNTY_CONTRIBUTIONS_MAX).contains(&post.contributions) {
            return Err(Rejection::InvalidField {
                field: "contributions",
                reason: "must be 1 to 1000",
            });
        }
        if post.full_pay_s >= post.close_s || post.close_s > TASK_DEADLINE_MAX_S {
            return Err(Rejection::InvalidField {
                field: "close_s",
                reason: "must be after full_pay_s and at most 90 days ahead",
            });
        }
        let scoring_window_s = post.scoring_window_s.unwrap_or(REVIEW_WINDOW_DEFAULT_S);
        check_window(
            "scoring_window_s",
            scoring_window_s,
            REVIEW_WINDOW_MIN_S,
            REVIEW_WINDOW_MAX_S,
            "must be between 60 seconds and 7 days",
        )?;
        let budget = post
            .price
            .checked_mul(u128::from(post.contributions))
            .ok_or(Rejection::AmountOverflow)?;
        self.check_acts_for(signer, &post.from, now)?;
        // The validator judges the lead's money: never the lead's own side.
        match self.owner_root(&post.validator) {
            None => {
                return Err(Rejection::UnknownIdentity {
                    did: post.validator,
                });
            }
            Some(root) if root == self.principal_of(&post.from) => {
                return Err(Rejection::OwnSideRole { field: "validator" });
            }
            Some(_) if post.validator == self.operator => {
                return Err(Rejection::InvalidField {
                    field: "validator",
                    reason: "may not be the node operator",
                });
            }
            Some(_) => {}
        }
        let plan = self.plan_spend(
            signer,
            &post.from,
            budget,
            None,
            post.category.as_deref(),
            now,
        )?;
        if plan.needs_approval {
            return Err(Rejection::ApprovalRequired {
                subject: signer,
                amount: budget,
            });
        }
        let later = |s: u64| now.checked_add_seconds(s).expect("clock is bounded");
        let (full_pay_until, closes_at) = (later(post.full_pay_s), later(post.close_s));
        let scoring_ends_at = closes_at
            .checked_add_seconds(scoring_window_s)
            .expect("clock is bounded");

        self.charge(&plan.charge);
        self.reserve(&post.from, budget);
        self.expiries
            .insert((scoring_ends_at, Expiry::Bounty(post.bounty_id.clone())));
        let outcome = vec![Event::BountyPosted {
            bounty_id: post.bounty_id.clone(),
            lead: post.from,
            budget,
            closes_at,
        }];
        self.bounties.insert(
            post.bounty_id.clone(),
            BountyRecord {
                creator: signer,
                terms: post.clone(),
                outcome: outcome.clone(),
                charge: plan.charge,
                full_pay_until,
                closes_at,
                scoring_ends_at,
                budget,
                paid: Amount::ZERO,
                closed: false,
                refunded: Amount::ZERO,
                contributions: BTreeMap::new(),
            },
        );
        Ok(outcome)
    }

    pub(super) fn submit_contribution(
        &mut self,
        signer: Did,
        submit: &SubmitContribution,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let bounty = self.bounty_record(&submit.bounty_id)?;
        check_key("contribution_id", &submit.contribution_id)?;
        if let Some(existing) = bounty.contributions.get(&submit.contribution_id) {
            if existing.creator == signer && existing.request == *submit {
                return Ok(vec![Event::Duplicate {
                    original: existing.outcome.clone(),
                }]);
            }
            return Err(Rejection::IdempotencyConflict {
                key: submit.contribution_id.clone(),
            });
        }
        let status = bounty.status(now);
        if status != BountyStatus::Open {
            return Err(Rejection::BountyWrongState {
                bounty_id: submit.bounty_id.clone(),
                status: status_name(status),
                expected: "open to submissions",
            });
        }
        if bounty.contributions.len() >= bounty.terms.contributions as usize {
            return Err(Rejection::BountyFull {
                bounty_id: submit.bounty_id.clone(),
            });
        }
        self.check_acts_for(signer, &submit.contributor, now)?;
        let contributor_root = self.owner_root(&submit.contributor);
        let validator_root = self.owner_root(&bounty.terms.validator);
        if contributor_root == validator_root {
            return Err(Rejection::OwnSideRole {
                field: "contributor",
            });
        }
        // One contribution per side: slots are not for one party to fill.
        if bounty
            .contributions
            .values()
            .any(|c| self.owner_root(&c.request.contributor) == contributor_root)
        {
            return Err(Rejection::AlreadyContributed {
                bounty_id: submit.bounty_id.clone(),
            });
        }
        check_hash("result_hash", &submit.result_hash)?;
        let manifest = self.delivery_manifest(
            &submit.manifest,
            || sole(submit.contributor),
            &bounty.charge.delegates,
            Some(bounty.terms.validator),
        )?;
        let speed = speed_bps(now, bounty.full_pay_until, bounty.closes_at);
        let outcome = vec![Event::ContributionSubmitted {
            bounty_id: submit.bounty_id.clone(),
            contribution_id: submit.contribution_id.clone(),
            contributor: submit.contributor,
            speed_bps: speed,
        }];
        self.bounties
            .get_mut(&submit.bounty_id)
            .expect("found above")
            .contributions
            .insert(
                submit.contribution_id.clone(),
                ContributionRecord {
                    creator: signer,
                    request: submit.clone(),
                    outcome: outcome.clone(),
                    manifest,
                    submitted_at: now,
                    speed_bps: speed,
                    score_bps: None,
                    parts: Vec::new(),
                },
            );
        Ok(outcome)
    }

    pub(super) fn score_contribution(
        &mut self,
        signer: Did,
        score: &ScoreContribution,
        now: Timestamp,
    ) -> Result<Vec<Event>, Rejection> {
        let bounty = self.bounty_record(&score.bounty_id)?;
        if bounty.terms.validator != signer {
            return Err(Rejection::NotValidator {
                bounty_id: score.bounty_id.clone(),
            });
        }
        self.check_role_live(signer, now)?;
        if bounty.closed {
            return Err(Rejection::BountyWrongState {
                bounty_id: score.bounty_id.clone(),
                status: "closed",
                expected: "open or being scored",
            });
        }
        let contribution = bounty
            .contributions
            .get(&score.contribution_id)
            .ok_or_else(|| Rejection::ContributionNotFound {
                bounty_id: score.bounty_id.clone(),
                contribution_id: score.contribution_id.clone(),
            })?;
        if contribution.score_bps.is_some() {
            return Err(Rejection::ContributionScored {
                contribution_id: score.contribution_id.clone(),
            });
        }
        if contribution.request.result_hash != score.result_hash {
            return Err(Rejection::InvalidField {
                field: "result_hash",
                reason: "does not match the contribution's",
            });
        }
        if score.score_bps > BPS_WHOLE {
            return Err(Rejection::InvalidField {
                field: "score_bps",
                reason: "must be between 0 and 10000 basis points",
            });
        }
        let payout = bounty_payout(bounty.terms.price, score.score_bps, contribution.speed_bps);
        let manifest = contribution.manifest.clone();
        let lead = bounty.terms.from;

        self.take_held(&lead, payout);
        let parts = self.pay_out(payout, &manifest);
        let bounty = self
            .bounties
            .get_mut(&score.bounty_id)
            .expect("found above");
        bounty.paid = bounty
            .paid
            .checked_add(payout)
            .expect("payouts stay within the budget");
        assert!(
            bounty.paid <= bounty.budget,
            "payouts stay within the budget"
        );
        let contribution = bounty
            .contributions
            .get_mut(&score.contribution_id)
            .expect("found above");
        contribution.score_bps = Some(score.score_bps);
        contribution.parts = parts.clone();
        let every_slot_scored = bounty.contributions.len() == bounty.terms.contributions as usize
            && bounty.contributions.values().all(|c| c.score_bps.is_some());
        let mut events = vec![Event::ContributionScored {
            bounty_id: score.bounty_id.clone(),
            contribution_id: score.contribution_id.clone(),
            lead,
            score_bps: score.score_bps,
            parts,
        }];
        if every_slot_scored {
            let removed = self.expiries.remove(&(
                self.bounties[&score.bounty_id].scoring_ends_at,
                Expiry::Bounty(score.bounty_id.clone()),
            ));
            assert!(removed, "an open bounty waits in the expiry index");
            events.push(self.close_bounty(&score.bounty_id));
        }
        Ok(events)
    }

    /// Returns what a bounty did not pay to its lead; the caller took it
    /// out of the expiry index.
    pub(super) fn close_bounty(&mut self, bounty_id: &str) -> Event {
        let bounty = &self.bounties[bounty_id];
        let (lead, left) = bounty.escrow();
        let (charge, paid) = (bounty.charge.clone(), bounty.paid);
        if !left.is_zero() {
            self.refund(&Charge {
                amount: left,
                ..charge
            });
            self.unreserve(&lead, left);
        }
        let bounty = self.bounties.get_mut(bounty_id).expect("exists");
        bounty.closed = true;
        bounty.refunded = left;
        assert_eq!(
            paid.checked_add(left),
            Some(bounty.budget),
            "a bounty's payouts and refund are its budget"
        );
        self.forget_later(Forget::Bounty(bounty_id.to_owned()));
        Event::BountyClosed {
            bounty_id: bounty_id.to_owned(),
            lead,
            paid,
            refunded: left,
        }
    }
}
