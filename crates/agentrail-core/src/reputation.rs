//! Reputation: a pure, versioned function of what the journal recorded.
//!
//! The ledger keeps, per provider account, a [`Record`] of settled work,
//! updated only by journaled commands and the ledger clock; the score is
//! computed from it on demand, so replaying the journal always gives the
//! same scores. Version 1, in integer arithmetic (no floats: the same
//! answer on every machine):
//!
//! | component | points | from |
//! |---|---|---|
//! | quality | 0-400 | `400 × paid / (paid + 4 × lost + 2 × refunds + 2)` |
//! | counterparties | 0-250 | `25 ×` distinct principals that paid it, up to 10 |
//! | volume | 0-200 | `10 ×` bits of the volume received in cents, up to 20 bits (10,000 USD) |
//! | age | 0-150 | days since registration, up to 180, once it has been paid at least once |
//!
//! minus `50 ×` disputes lost, floored at 0. Only work that settled with
//! payment counts: a task approved (by the buyer, its validator, or the end
//! of the review window), a dispute the provider won (half the price or
//! more), a licence bought. A task between two accounts of the same
//! principal counts for nothing (self-dealing): the record does not move.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::constants::DAY_S;
use crate::did::Did;
use crate::time::Timestamp;

/// The version of the scoring function below.
pub const REPUTATION_VERSION: u32 = 1;
/// The highest score.
pub const SCORE_MAX: u16 = 1_000;

const QUALITY_POINTS: u64 = 400;
const COUNTERPARTY_POINTS_EACH: u64 = 25;
const COUNTERPARTIES_COUNTED_MAX: u64 = 10;
const VOLUME_POINTS_PER_BIT: u64 = 10;
const VOLUME_BITS_MAX: u64 = 20;
const AGE_POINTS: u64 = 150;
const AGE_DAYS_MAX: u64 = 180;
const LOST_DISPUTE_PENALTY: u64 = 50;

const _: () = assert!(
    QUALITY_POINTS
        + COUNTERPARTY_POINTS_EACH * COUNTERPARTIES_COUNTED_MAX
        + VOLUME_POINTS_PER_BIT * VOLUME_BITS_MAX
        + AGE_POINTS
        == SCORE_MAX as u64
);

/// What the ledger recorded of one provider's settled work.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The principals of the buyers who paid it.
    pub counterparties: BTreeSet<Did>,
}

/// A score and how it was reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    pub age_days: u64,
}

/// Scores `record` for an identity registered at `registered_at`, at `now`.
pub fn score(record: &Record, registered_at: Option<Timestamp>, now: Timestamp) -> Reputation {
    let paid = record.tasks_paid + record.licences_sold;
    let denominator = paid
        .saturating_add(record.disputes_lost.saturating_mul(4))
        .saturating_add(record.refunds.saturating_mul(2))
        .saturating_add(2);
    let quality = (u128::from(QUALITY_POINTS) * u128::from(paid) / u128::from(denominator)) as u64;
    let distinct = record.counterparties.len() as u64;
    let counterparties = COUNTERPARTY_POINTS_EACH * distinct.min(COUNTERPARTIES_COUNTED_MAX);
    let cents = record.volume.atomic() / 10_000;
    let bits = u64::from(128 - cents.leading_zeros());
    let volume = VOLUME_POINTS_PER_BIT * bits.min(VOLUME_BITS_MAX);
    let age_days = registered_at.map_or(0, |at| now.seconds().saturating_sub(at.seconds()) / DAY_S);
    let age = if paid > 0 {
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
        distinct_counterparties: distinct,
        age_days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(paid: u64, lost: u64, refunds: u64, volume_usd: u128, buyers: u8) -> Record {
        Record {
            tasks_paid: paid,
            disputes_lost: lost,
            refunds,
            volume: Amount::from_atomic(volume_usd * 1_000_000),
            counterparties: (0..buyers)
                .map(|i| crate::did::Did::from_public_key_bytes([i; 32]))
                .collect(),
            ..Record::default()
        }
    }

    #[test]
    fn nothing_done_scores_nothing() {
        let reputation = score(
            &Record::default(),
            Some(Timestamp(0)),
            Timestamp(400 * DAY_S),
        );
        assert_eq!(reputation.score, 0, "age alone earns nothing");
    }

    #[test]
    fn table() {
        let now = Timestamp(200 * DAY_S);
        let check = |record: Record, expected: u16| {
            assert_eq!(
                score(&record, Some(Timestamp(0)), now).score,
                expected,
                "{record:?}"
            );
        };
        // 1 paid task of 1 USD from one buyer: 400/3 + 25 + 10×7 bits + 150.
        check(record(1, 0, 0, 1, 1), 133 + 25 + 70 + 150);
        // The best record reaches the maximum only in the limit of quality.
        check(record(1_000, 0, 0, 100_000, 20), 399 + 250 + 200 + 150);
        // A lost dispute weighs like four refunds of quality and 50 points.
        check(record(10, 1, 0, 100, 5), 250 + 125 + 140 + 150 - 50);
        check(record(10, 0, 2, 100, 5), 250 + 125 + 140 + 150);
    }

    #[test]
    fn more_settled_work_never_lowers_the_score() {
        let now = Timestamp(30 * DAY_S);
        let mut previous = 0;
        for paid in 0..200 {
            let reputation = score(
                &record(paid, 1, 1, u128::from(paid), 3),
                Some(Timestamp(0)),
                now,
            );
            assert!(reputation.score >= previous);
            previous = reputation.score;
        }
    }
}
