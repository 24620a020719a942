//! The economy past one buyer and one provider: subscriptions (a payee
//! collects at most so much per period from a payer's mandate), bounties
//! (a lead pays contributions by a validator's score and their speed),
//! and orders (one escrow over several legs, each delivered and approved
//! on its own; an atomic order pays nothing until every leg is approved).
//! A milestone plan is an order whose legs name one provider.
//!
//! The rules live in `state/subscription.rs`, `state/bounty.rs` and
//! `state/order.rs`; this module holds the commands' bodies and the views.
//!
//! ```text
//!   subscription: subscribe ─▶ collect (once per period, ≤ amount) … ─▶ cancel | ends_at
//!   bounty:       post_bounty (price × slots held) ─▶ submit ─▶ score (paid at once)
//!                 … ─▶ every slot scored, or the scoring window ends: the rest returns
//!   order leg:    funded ─▶ delivered ─▶ approved (paid, or awaiting the others if atomic)
//!                    │          └──▶ disputed ─▶ resolved (≥ 50 % to the provider: approved)
//!                    └─ declined by its provider, or past its deadline: the leg fails;
//!                       every leg not yet delivered is refunded, delivered ones still
//!                       settle (an atomic order: every leg not paid is refunded)
//! ```

use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::command::Split;
use crate::constants::DAY_S;
use crate::did::Did;
use crate::event::Part;
use crate::time::Timestamp;

/// How often a subscription may be collected. Days and weeks count from
/// the Unix epoch in UTC (weeks start on Thursdays, as the epoch did);
/// months are UTC calendar months.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    /// The number of the period `at` falls in: one collect per number.
    pub fn index(self, at: Timestamp) -> u64 {
        let day = at.utc_day();
        match self {
            Period::Day => day,
            Period::Week => day / 7,
            Period::Month => {
                let (year, month) = civil_month(day);
                year * 12 + (month - 1)
            }
        }
    }

    /// When the period after the one `at` falls in begins.
    pub fn next_start(self, at: Timestamp) -> Timestamp {
        let day = at.utc_day();
        let next_day = match self {
            Period::Day => day + 1,
            Period::Week => (day / 7 + 1) * 7,
            Period::Month => {
                let (year, month) = civil_month(day);
                let (year, month) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                days_from_civil(year, month)
            }
        };
        Timestamp(next_day * DAY_S)
    }

    pub fn name(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }
}

/// The UTC year and month (1-12) of a day counted from 1970-01-01
/// (the proleptic Gregorian calendar, after Howard Hinnant's
/// `civil_from_days`).
fn civil_month(day: u64) -> (u64, u64) {
    let z = day + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month)
}

/// The day (from 1970-01-01) on which `year`-`month`-01 falls.
fn days_from_civil(year: u64, month: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let yoe = year - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ----- subscriptions -------------------------------------------------------

/// A payer's side lets `payee` collect at most `amount` per `period` from
/// `from`, until `ends_at` or a cancellation. Each collect is charged to
/// the mandate of the key that subscribed, as a payment to `payee` is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    /// Chosen by the client: 1-64 characters of A-Z, a-z, 0-9, '_', '-',
    /// '.', ':'. Also the idempotency key.
    pub subscription_id: String,
    pub from: Did,
    pub payee: Did,
    /// The most one period's collect takes.
    pub amount: Amount,
    pub period: Period,
    /// When collecting stops; open-ended if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    /// Checked against the mandate's categories at every collect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// The payee's side takes this period's money: `amount` at most the
/// subscription's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectSubscription {
    pub subscription_id: String,
    pub amount: Amount,
}

/// Either side ends a subscription; nothing is collected after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelSubscription {
    pub subscription_id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Active,
    Cancelled,
    /// Its `ends_at` passed (seen at a collect or a cancel).
    Ended,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SubscriptionView {
    pub terms: Subscribe,
    /// The key whose mandate each collect is charged to.
    pub subscriber: Did,
    pub created_at: Timestamp,
    pub status: SubscriptionStatus,
    pub collected: Amount,
    pub collects: u64,
    /// The period number ([`Period::index`]) of the last collect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_period: Option<u64>,
}

// ----- bounties ------------------------------------------------------------

/// A lead locks `price × contributions` for up to `contributions`
/// results; `validator` scores each. A contribution submitted by
/// `full_pay_until` earns `price × score`; later, the share falls linearly
/// to zero at `closes_at`, when submissions end. The validator scores
/// until `closes_at + scoring_window_s`; then, or once every slot is
/// scored, the rest returns to `from`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostBounty {
    /// Chosen by the client (the same characters as a subscription id).
    pub bounty_id: String,
    pub from: Did,
    pub price: Amount,
    /// 1 to 1,000 ([`crate::constants::BOUNTY_CONTRIBUTIONS_MAX`]).
    pub contributions: u32,
    pub validator: Did,
    /// Seconds from now: full pay for results submitted until then.
    pub full_pay_s: u64,
    /// Seconds from now, after `full_pay_s`, at most 90 days: submissions
    /// end, at zero pay.
    pub close_s: u64,
    /// Seconds the validator has after the close: 60 s to 7 days, one day
    /// if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring_window_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// What is asked, at most 512 bytes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// A contributor's result: its hash, and who shares the payout (the
/// contributor alone if empty).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitContribution {
    pub bounty_id: String,
    /// Unique within the bounty; also the idempotency key.
    pub contribution_id: String,
    pub contributor: Did,
    pub result_hash: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifest: Vec<Split>,
}

/// The validator's score of a contribution, in basis points (0-10,000):
/// the payout follows at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreContribution {
    pub bounty_id: String,
    pub contribution_id: String,
    /// The hash the validator checked.
    pub result_hash: String,
    pub score_bps: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContributionView {
    pub contribution_id: String,
    pub contributor: Did,
    pub result_hash: String,
    pub manifest: Vec<Split>,
    pub submitted_at: Timestamp,
    /// The speed factor its submission time earned, in basis points.
    pub speed_bps: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_bps: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BountyStatus {
    Open,
    /// Submissions ended; the validator is still scoring.
    Scoring,
    Closed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BountyView {
    pub terms: PostBounty,
    pub lead: Did,
    pub full_pay_until: Timestamp,
    pub closes_at: Timestamp,
    pub scoring_ends_at: Timestamp,
    pub status: BountyStatus,
    /// `price × contributions`.
    pub budget: Amount,
    pub paid: Amount,
    /// Returned to the lead when the bounty closed.
    pub refunded: Amount,
    pub contributions: Vec<ContributionView>,
}

/// The speed factor, in basis points, of a result submitted at `at`:
/// 10,000 until `full_until`, falling linearly to 0 at `closes_at`
/// (rounded down).
pub fn speed_bps(at: Timestamp, full_until: Timestamp, closes_at: Timestamp) -> u16 {
    if at <= full_until {
        return crate::amount::BPS_WHOLE;
    }
    if at >= closes_at {
        return 0;
    }
    let left = u128::from(closes_at.0 - at.0);
    let span = u128::from(closes_at.0 - full_until.0);
    u16::try_from(left * u128::from(crate::amount::BPS_WHOLE) / span).expect("a fraction of 10,000")
}

/// `price × score_bps/10,000 × speed_bps/10,000`, rounded down, exact for
/// every `price`.
pub fn bounty_payout(price: Amount, score_bps: u16, speed_bps: u16) -> Amount {
    let whole = u128::from(crate::amount::BPS_WHOLE);
    let numerator = u128::from(score_bps) * u128::from(speed_bps);
    let denominator = whole * whole;
    assert!(
        numerator <= denominator,
        "scores and speeds are at most whole"
    );
    let price = price.atomic();
    // price = q·d + r, so price·n/d = q·n + r·n/d; r·n < d² fits in u128,
    // and q·n ≤ q·d ≤ price.
    let (q, r) = (price / denominator, price % denominator);
    Amount::from_atomic(q * numerator + r * numerator / denominator)
}

// ----- orders --------------------------------------------------------------

/// One leg of an order: who delivers it, for how much, by when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLeg {
    pub provider: Did,
    pub price: Amount,
    /// Seconds from the order for the delivery: 60 s to 90 days.
    pub deadline_s: u64,
    /// What the leg is, at most 256 bytes (a milestone's name).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// A buyer's side binds 1 to 16 legs into one order and locks their total
/// in escrow. `atomic`: nothing is paid until every leg is approved, and
/// everything is refunded if one fails; otherwise each leg is paid when
/// approved, and a failed leg refunds every leg not yet delivered (those
/// delivered still settle by review or arbitration). No provider may be
/// on the buyer's own side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    /// Chosen by the client (the same characters as a subscription id).
    pub order_id: String,
    pub from: Did,
    pub legs: Vec<OrderLeg>,
    #[serde(default)]
    pub atomic: bool,
    /// Seconds the buyer has to approve or dispute a delivery: 60 s to 7
    /// days, one day if absent. Silence approves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_window_s: Option<u64>,
    /// Who resolves a disputed leg; disputes are impossible without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arbiter: Option<Did>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// A leg of an order, by its position (0-based).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LegRef {
    pub order_id: String,
    pub leg: u8,
}

/// The leg's provider delivers: the result's hash, and who shares its
/// price (the provider alone if empty).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliverLeg {
    pub order_id: String,
    pub leg: u8,
    pub result_hash: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifest: Vec<Split>,
}

/// The buyer's side accepts a delivered leg (naming the hash it checked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveLeg {
    pub order_id: String,
    pub leg: u8,
    pub result_hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DisputeLeg {
    pub order_id: String,
    pub leg: u8,
    /// At most 256 bytes.
    pub reason: String,
}

/// The order's arbiter gives `provider_bps` of the leg's price to its
/// provider; below half, the leg is lost (it fails).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveLeg {
    pub order_id: String,
    pub leg: u8,
    pub provider_bps: u16,
}

/// Why a leg failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LegFailure {
    /// Its provider declined it.
    Declined,
    /// Not delivered by its deadline.
    DeadlineMissed,
    /// The arbiter gave the provider less than half.
    DisputeLost,
    /// The arbiter did not rule in time.
    ArbitrationLapsed,
}

/// Where a leg stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LegStatus {
    Funded,
    Delivered {
        result_hash: String,
        manifest: Vec<Split>,
        review_ends_at: Timestamp,
    },
    Disputed {
        result_hash: String,
        manifest: Vec<Split>,
        reason: String,
        arbitration_ends_at: Timestamp,
    },
    /// Accepted (by the buyer, its silence, or the arbiter) and waiting for
    /// the rest of an atomic order: `provider_bps` of its price is due.
    Approved {
        manifest: Vec<Split>,
        provider_bps: u16,
    },
    /// Paid out: `parts` to the provider's side, `refunded` to the buyer.
    Paid {
        parts: Vec<Part>,
        refunded: Amount,
    },
    Failed {
        reason: LegFailure,
    },
    /// Another leg failed, and this one's price returned to the buyer.
    Unwound,
}

impl LegStatus {
    pub fn name(&self) -> &'static str {
        match self {
            LegStatus::Funded => "funded",
            LegStatus::Delivered { .. } => "delivered",
            LegStatus::Disputed { .. } => "disputed",
            LegStatus::Approved { .. } => "approved",
            LegStatus::Paid { .. } => "paid",
            LegStatus::Failed { .. } => "failed",
            LegStatus::Unwound => "unwound",
        }
    }

    /// Still waiting on its provider, its buyer or the arbiter.
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            LegStatus::Funded | LegStatus::Delivered { .. } | LegStatus::Disputed { .. }
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Open,
    /// A leg failed: what was funded and not delivered returned; legs
    /// delivered before the failure still settle by review or arbitration
    /// (an ordinary order), so no provider loses work it handed over.
    Unwinding,
    /// Every leg was paid.
    Completed,
    /// A leg failed; what was not paid returned to the buyer.
    Unwound,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LegView {
    pub leg: u8,
    pub terms: OrderLeg,
    pub deadline: Timestamp,
    pub status: LegStatus,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrderView {
    pub order_id: String,
    pub buyer: Did,
    pub atomic: bool,
    pub arbiter: Option<Did>,
    pub review_window_s: u64,
    pub placed_at: Timestamp,
    pub status: OrderStatus,
    pub total: Amount,
    /// What the escrow still holds.
    pub held: Amount,
    pub legs: Vec<LegView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_utc_calendar_months() {
        // 2026-12-07T00:00:00Z and the first of the next month.
        let at = Timestamp(1_796_601_600);
        assert_eq!(civil_month(at.utc_day()), (2026, 12));
        assert_eq!(Period::Month.next_start(at), Timestamp(1_798_761_600));
        assert_eq!(civil_month(days_from_civil(2024, 2)), (2024, 2));
        assert_eq!(days_from_civil(1970, 1), 0);
        let feb_29 = days_from_civil(2024, 2) + 28;
        assert_eq!(civil_month(feb_29), (2024, 2));
        assert_eq!(civil_month(feb_29 + 1), (2024, 3));
        assert_eq!(
            Period::Month.index(Timestamp(1_798_761_600)),
            Period::Month.index(at) + 1
        );
    }

    #[test]
    fn payouts_fall_with_time_and_never_exceed_the_price() {
        let (full, close) = (Timestamp(100), Timestamp(200));
        assert_eq!(speed_bps(Timestamp(100), full, close), 10_000);
        assert_eq!(speed_bps(Timestamp(150), full, close), 5_000);
        assert_eq!(speed_bps(Timestamp(200), full, close), 0);
        let price = Amount::from_atomic(1_000_001);
        assert_eq!(bounty_payout(price, 10_000, 10_000), price);
        assert_eq!(
            bounty_payout(price, 5_000, 5_000),
            Amount::from_atomic(250_000)
        );
        assert_eq!(
            bounty_payout(Amount::MAX, 10_000, 10_000),
            Amount::MAX,
            "no overflow at the largest amount"
        );
        assert!(bounty_payout(Amount::MAX, 9_999, 10_000) < Amount::MAX);
        // The vectors of docs/protocol.md.
        assert_eq!(
            bounty_payout(Amount::from_atomic(10_000_000), 7_000, 7_500),
            Amount::from_atomic(5_250_000)
        );
    }
}
