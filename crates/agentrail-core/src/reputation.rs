//! Reputation: a pure, versioned function of what the journal recorded.
//!
//! The ledger keeps, per provider account, a [`Record`] of settled work,
//! updated only by journaled commands and the ledger clock; the score is
//! computed from it on demand, so replaying the journal always gives the
//! same scores. Version 2, in integer arithmetic (no floats: the same
//! answer on every machine).
//!
//! Evidence comes only from *qualifying* counterparties: principals that
//! paid the provider at least [`COUNTERPARTY_VALUE_MIN`] in all and were
//! registered at least [`COUNTERPARTY_AGE_MIN_DAYS`] days before the score
//! is read. With `q` of them (counted up to 10):
//!
//! | component | points | from |
//! |---|---|---|
//! | quality | 0-400 | `400 × paid / (paid + 4 × lost + 2 × refunds + 2) × min(q, 5) / 5` |
//! | counterparties | 0-250 | `250 × q / (q + 5)`, scaled so that 10 earn 250: diminishing returns |
//! | volume | 0-200 | `10 ×` bits of the volume the qualifying counterparties paid, in cents, up to 20 bits |
//! | age | 0-150 | days since registration, up to 180, once `q ≥ 1` |
//!
//! minus `50 ×` disputes lost, floored at 0. Only work that settled with
//! payment counts: a task approved (by the buyer, its validator, or the end
//! of the review window), a dispute the provider won (half the price or
//! more), a licence bought. A task between two accounts of the same
//! principal counts for nothing (self-dealing): the record does not move.
//!
//! What it resists: principals registered for the purpose (they must wait
//! [`COUNTERPARTY_AGE_MIN_DAYS`]), dust payments (below
//! [`COUNTERPARTY_VALUE_MIN`] a payer is no evidence), many payers (each
//! further one adds less), self-dealing. What it cannot resist: an attacker
//! who funds aged principals with real value and lets it circulate back
//! through the provider; the score then costs time and working capital, not
//! nothing. Read it as evidence, not proof.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::constants::DAY_S;
use crate::did::Did;
use crate::time::Timestamp;

/// The version of the scoring function below.
pub const REPUTATION_VERSION: u32 = 2;
/// The highest score.
pub const SCORE_MAX: u16 = 1_000;
/// The least a counterparty must have paid in all to count (1 USD).
pub const COUNTERPARTY_VALUE_MIN: Amount = Amount::from_atomic(1_000_000);
/// The least age, in days, of a counterparty's registration to count.
pub const COUNTERPARTY_AGE_MIN_DAYS: u64 = 30;

const QUALITY_POINTS: u64 = 400;
/// Qualifying counterparties for full quality points.
const QUALITY_EVIDENCE_FULL: u64 = 5;
const COUNTERPARTY_POINTS: u64 = 250;
const COUNTERPARTIES_COUNTED_MAX: u64 = 10;
/// The half-saturation of the counterparty curve.
const COUNTERPARTY_HALF: u64 = 5;
const VOLUME_POINTS_PER_BIT: u64 = 10;
const VOLUME_BITS_MAX: u64 = 20;
const AGE_POINTS: u64 = 150;
const AGE_DAYS_MAX: u64 = 180;
const LOST_DISPUTE_PENALTY: u64 = 50;

const _: () = assert!(
    QUALITY_POINTS + COUNTERPARTY_POINTS + VOLUME_POINTS_PER_BIT * VOLUME_BITS_MAX + AGE_POINTS
        == SCORE_MAX as u64
);

/// What the ledger recorded of one provider's settled work.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Record {
    /// Tasks that paid the provider: approved, or disputes it won.
    pub tasks_paid: u64,
    pub disputes_won: u64,
    pub disputes_lost: u64,
    /// Tasks refunded because the provider missed the deadline.
    pub refunds: u64,
    pub licences_sold: u64,
    /// Money received from tasks and licences.
    pub volume: Amount,
    /// What each buyer's principal paid it, in all.
    pub counterparties: BTreeMap<Did, Amount>,
}

impl Record {
    /// Counts `amount` paid by the principal `counterparty`.
    pub fn paid_by(&mut self, counterparty: Did, amount: Amount) {
        // Money may circulate, so these can exceed the deposits over time:
        // they saturate rather than assert.
        self.volume = self.volume.checked_add(amount).unwrap_or(Amount::MAX);
        let paid = self.counterparties.entry(counterparty).or_default();
        *paid = paid.checked_add(amount).unwrap_or(Amount::MAX);
    }
}

/// A score and how it was reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Reputation {
    pub version: u32,
    /// 0-1000.
    pub score: u16,
    pub quality_points: u16,
    pub counterparty_points: u16,
    pub volume_points: u16,
    pub age_points: u16,
    pub penalty_points: u16,
    pub tasks_paid: u64,
    pub disputes_won: u64,
    pub disputes_lost: u64,
    pub refunds: u64,
    pub licences_sold: u64,
    pub volume: Amount,
    pub distinct_counterparties: u64,
    /// Counterparties old enough and paying enough to count.
    pub qualifying_counterparties: u64,
    /// What the qualifying counterparties paid.
    pub qualifying_volume: Amount,
    pub age_days: u64,
}

/// Scores `record` for an identity registered at `registered_at`, at `now`;
/// `registered` tells when a counterparty registered.
pub fn score(
    record: &Record,
    registered_at: Option<Timestamp>,
    now: Timestamp,
    registered: impl Fn(&Did) -> Option<Timestamp>,
) -> Reputation {
    let aged = |did: &Did| {
        registered(did).is_some_and(|at| {
            now.seconds().saturating_sub(at.seconds()) / DAY_S >= COUNTERPARTY_AGE_MIN_DAYS
        })
    };
    let mut qualifying = 0u64;
    let mut qualifying_volume = Amount::ZERO;
    for (did, paid) in &record.counterparties {
        if *paid >= COUNTERPARTY_VALUE_MIN && aged(did) {
            qualifying += 1;
            qualifying_volume = qualifying_volume.checked_add(*paid).unwrap_or(Amount::MAX);
        }
    }
    let q = qualifying.min(COUNTERPARTIES_COUNTED_MAX);
    let paid = record.tasks_paid + record.licences_sold;
    let denominator = paid
        .saturating_add(record.disputes_lost.saturating_mul(4))
        .saturating_add(record.refunds.saturating_mul(2))
        .saturating_add(2);
    let evidence = q.min(QUALITY_EVIDENCE_FULL);
    let quality = (u128::from(QUALITY_POINTS) * u128::from(paid) * u128::from(evidence)
        / (u128::from(denominator) * u128::from(QUALITY_EVIDENCE_FULL))) as u64;
    // 250 × q/(q+5), normalised so that the tenth counterparty reaches 250.
    let counterparties = COUNTERPARTY_POINTS * q * (COUNTERPARTIES_COUNTED_MAX + COUNTERPARTY_HALF)
        / ((q + COUNTERPARTY_HALF) * COUNTERPARTIES_COUNTED_MAX);
    let cents = qualifying_volume.atomic() / 10_000;
    let bits = u64::from(128 - cents.leading_zeros());
    let volume = VOLUME_POINTS_PER_BIT * bits.min(VOLUME_BITS_MAX);
    let age_days = registered_at.map_or(0, |at| now.seconds().saturating_sub(at.seconds()) / DAY_S);
    let age = if q > 0 {
        AGE_POINTS * age_days.min(AGE_DAYS_MAX) / AGE_DAYS_MAX
    } else {
        0
    };
    let sum = quality + counterparties + volume + age;
    let penalty = record
        .disputes_lost
        .saturating_mul(LOST_DISPUTE_PENALTY)
        .min(sum);
    let total = sum - penalty;
    assert!(total <= u64::from(SCORE_MAX), "a score stays within 0-1000");
    let points = |value: u64| u16::try_from(value).expect("points are at most 1000");
    Reputation {
        version: REPUTATION_VERSION,
        score: points(total),
        quality_points: points(quality),
        counterparty_points: points(counterparties),
        volume_points: points(volume),
        age_points: points(age),
        penalty_points: points(penalty),
        tasks_paid: record.tasks_paid,
        disputes_won: record.disputes_won,
        disputes_lost: record.disputes_lost,
        refunds: record.refunds,
        licences_sold: record.licences_sold,
        volume: record.volume,
        distinct_counterparties: record.counterparties.len() as u64,
        qualifying_counterparties: qualifying,
        qualifying_volume,
        age_days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: Timestamp = Timestamp(0);

    /// `buyers` principals registered at `OLD`, each paying `each_atomic`.
    fn record(paid: u64, lost: u64, refunds: u64, each_atomic: u128, buyers: u8) -> Record {
        let mut record = Record {
            tasks_paid: paid,
            disputes_lost: lost,
            refunds,
            ..Record::default()
        };
        for i in 0..buyers {
            record.paid_by(
                crate::did::Did::from_public_key_bytes([i; 32]),
                Amount::from_atomic(each_atomic),
            );
        }
        record
    }

    fn scored(record: &Record, counterparties_at: Timestamp, now: Timestamp) -> Reputation {
        score(record, Some(OLD), now, |_| Some(counterparties_at))
    }

    #[test]
    fn nothing_done_scores_nothing() {
        let reputation = scored(&Record::default(), OLD, Timestamp(400 * DAY_S));
        assert_eq!(reputation.score, 0, "age alone earns nothing");
    }

    #[test]
    fn table() {
        let now = Timestamp(200 * DAY_S);
        let check = |record: Record, expected: u16| {
            assert_eq!(scored(&record, OLD, now).score, expected, "{record:?}");
        };
        let usd = 1_000_000;
        // 1 paid task of 1 USD from one aged buyer: 400/3 × 1/5 + 250×1×15/60
        // + 10×7 bits + 150.
        check(record(1, 0, 0, usd, 1), 26 + 62 + 70 + 150);
        // Ten aged buyers of 10,000 USD each, 1000 tasks: the maximum but
        // for the limit of quality.
        check(record(1_000, 0, 0, 10_000 * usd, 10), 399 + 250 + 200 + 150);
        // A lost dispute weighs like four refunds of quality and 50 points.
        check(record(10, 1, 0, 20 * usd, 5), 250 + 187 + 140 + 150 - 50);
        check(record(10, 0, 2, 20 * usd, 5), 250 + 187 + 140 + 150);
    }

    #[test]
    fn fresh_or_dusty_sybils_earn_nothing() {
        let now = Timestamp(200 * DAY_S);
        // Ten principals registered yesterday, 1 USD each.
        let fresh = scored(
            &record(10, 0, 0, 1_000_000, 10),
            Timestamp(now.0 - DAY_S),
            now,
        );
        assert_eq!((fresh.score, fresh.qualifying_counterparties), (0, 0));
        // Ten aged principals paying 1 atomic unit each.
        let dust = scored(&record(10, 0, 0, 1, 10), OLD, now);
        assert_eq!((dust.score, dust.qualifying_counterparties), (0, 0));
    }

    #[test]
    fn each_further_counterparty_adds_less() {
        let now = Timestamp(200 * DAY_S);
        let mut gains = Vec::new();
        let mut previous = 0;
        for buyers in 1..=10 {
            let points = scored(&record(10, 0, 0, 1_000_000, buyers), OLD, now).counterparty_points;
            gains.push(points - previous);
            previous = points;
        }
        assert_eq!(previous, 250);
        assert!(gains.windows(2).all(|pair| pair[1] <= pair[0]), "{gains:?}");
    }

    #[test]
    fn more_settled_work_never_lowers_the_score() {
        let now = Timestamp(60 * DAY_S);
        let mut previous = 0;
        for paid in 0..200 {
            let reputation = scored(&record(paid, 1, 1, 2_000_000, 3), OLD, now);
            assert!(reputation.score >= previous);
            previous = reputation.score;
        }
    }
}
