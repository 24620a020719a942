//! agentrail-log: the journal as a transparency log, in the formats the
//! transparency-log ecosystem already reads.
//!
//! - [`merkle`]: RFC 9162 Merkle tree hashing, inclusion and consistency
//!   proofs (built from stored subtree hashes, never from the leaves) and
//!   their verification;
//! - [`note`]: C2SP signed notes with Ed25519 keys, and C2SP
//!   tlog-checkpoint bodies;
//! - [`tile`]: C2SP tlog-tiles paths;
//! - [`receipt`]: a self-contained proof that one journaled command was
//!   accepted, and its offline verification.
//!
//! Pure like `agentrail-core`: no I/O, no clock, no randomness.

#![forbid(unsafe_code)]

pub mod merkle;
pub mod note;
pub mod receipt;
pub mod tile;

pub use merkle::{Hash, MemoryTree, Nodes, TreeError};
pub use note::{Checkpoint, LogKey, LogSigner, NoteError};
