//! agentrail-wire: what the node and its clients say to each other.
//!
//! - [`httpsig`]: RFC 9421 request signatures and RFC 9530 digests;
//! - [`api`]: request and response bodies of the `/v1` API, and the error
//!   shape;
//! - [`entry`]: the journal entry format (the signed request as received,
//!   the node's time, and the outcome).
//!
//! No I/O here: both the node and the client crate build on it.

#![forbid(unsafe_code)]

pub mod api;
pub mod entry;
pub mod httpsig;
pub mod keyfile;
