//! Time as the core sees it: a number the caller passes in. The core never
//! reads a clock.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::constants::{DAY_S, TIMESTAMP_MAX};

/// Seconds since 1970-01-01T00:00:00Z (Unix time, UTC).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The UTC day this instant falls in (days since the epoch).
    pub const fn utc_day(self) -> u64 {
        self.0 / DAY_S
    }

    pub const fn seconds(self) -> u64 {
        self.0
    }

    pub const fn is_valid(self) -> bool {
        self.0 <= TIMESTAMP_MAX
    }

    pub fn checked_add_seconds(self, seconds: u64) -> Option<Timestamp> {
        self.0.checked_add(seconds).map(Timestamp)
    }
}

/// A clock that runs `scale` times faster than the real one from the real
/// instant `origin_ms` (Unix milliseconds), which it reads as the second
/// `origin_ms / 1000`: how a soak covers days of retention windows in
/// minutes. Pure: the caller passes the real time in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeScale {
    pub origin_ms: u64,
    pub scale: u32,
}

impl TimeScale {
    /// The scaled time at the real instant `real_ms` (Unix milliseconds);
    /// before the origin it is the origin.
    pub fn at(&self, real_ms: u64) -> Timestamp {
        let elapsed_ms = u128::from(real_ms.saturating_sub(self.origin_ms));
        let scaled_s = elapsed_ms * u128::from(self.scale) / 1_000;
        let seconds = u128::from(self.origin_ms / 1_000) + scaled_s;
        Timestamp(u64::try_from(seconds).unwrap_or(u64::MAX))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={}s", self.0)
    }
}
