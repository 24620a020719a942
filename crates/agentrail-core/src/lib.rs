//! agentrail-core: identities, mandates, money and the ledger state machine.
//!
//! This crate is the functional core of agentrail. It does nothing unless
//! called: no I/O, no clock, no randomness, no threads, no async runtime.
//! Time comes in as an argument ([`Timestamp`]); keys come in from the
//! caller. The same [`State::apply`] recovers a node from its journal,
//! replays an audit and drives the deterministic simulator.
//!
//! Map of the crate:
//! - [`amount`]: exact money ([`Amount`], atomic units of USD, 6 decimals);
//! - [`did`]: Ed25519 identities as `did:key`;
//! - [`ed25519`]: the one signature acceptance rule, alone and in batches;
//! - [`canonical`] and [`signing`]: RFC 8785 canonical JSON and the
//!   domain-separated signatures over it;
//! - [`grant`]: mandates, attenuation and worst-case exposure;
//! - [`command`], [`event`], [`rejection`]: the state machine's inputs,
//!   outputs and refusals;
//! - [`state`]: the ledger itself;
//! - [`market`]: listings, quotes, escrowed tasks, licences; [`reputation`]:
//!   the score, a pure function of the record;
//! - [`economy`]: subscriptions, bounties paid by score and speed, orders
//!   over several legs (and milestones);
//! - [`split`]: exact basis-point splits;
//! - [`constants`]: every bound;
//! - [`text`]: which characters a human-readable field refuses.

#![forbid(unsafe_code)]

pub mod amount;
pub mod canonical;
pub mod chain;
pub mod channel;
pub mod command;
pub mod constants;
pub mod did;
pub mod economy;
pub mod ed25519;
pub mod event;
pub mod grant;
pub mod hashchain;
pub mod market;
pub mod rejection;
pub mod reputation;
mod schema;
pub mod signing;
pub mod split;
pub mod state;
pub mod text;
pub mod time;

pub use amount::{Amount, AmountError};
pub use command::{Authenticated, Command, SignedCommand};
pub use did::{Did, DidError};
pub use event::Event;
pub use grant::{Exposure, ExposureBound, Grant, GrantId, Limit, Limits, Role, SignedGrant};
pub use rejection::{Budget, Rejection};
pub use state::{Balance, Genesis, State, Totals};
pub use time::Timestamp;
