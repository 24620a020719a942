//! agentrail-sim: deterministic, seeded simulation of the agentrail ledger,
//! and the small toolkit the ledger's tests build worlds with.
//!
//! Everything here is reproducible from a seed: keys, commands, times and
//! faults come from [`rng::Rng`]. The simulator drives the real
//! [`agentrail_core::State`] with valid and hostile commands mixed, checks
//! every invariant after every step, checks what it expects of each outcome
//! independently, and finally replays the accepted commands into a fresh
//! ledger to confirm that replay reproduces the state exactly.

#![forbid(unsafe_code)]

pub mod bench;
pub mod kit;
pub mod parallel;
pub mod record;
pub mod rng;
pub mod simulation;

pub use rng::Rng;
pub use simulation::{Follower, SimConfig, SimFailure, SimReport, run, run_following};
