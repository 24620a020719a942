//! Time as the core sees it: a number the caller passes in. The core never
//! reads a clock.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::constants::{DAY_S, TIMESTAMP_MAX};

/// Seconds since 1970-01-01T00:00:00Z (Unix time, UTC).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
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

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={}s", self.0)
    }
}
