//! Receipts: one self-contained JSON document proving that the log holds a
//! command, checkable offline with nothing but the log's public key.
//!
//! ```json
//! {"index": 7, "tree_size": 9, "leaf": "<base64 journal entry>",
//!  "leaf_hash": "<base64>", "inclusion_proof": ["<base64>", …],
//!  "checkpoint": "<C2SP signed note>"}
//! ```
//!
//! Verifying one checks, in order: the checkpoint's signature by the log
//! key; that the leaf is the `index`-th of the checkpoint's tree (RFC 9162
//! inclusion proof); and the leaf's own request signature by its signer. A
//! receipt therefore proves both that the log committed to the command and
//! that the signer asked for it; the log key alone could not have forged
//! the second.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use agentrail_core::{Authenticated, Event, Timestamp};
use agentrail_wire::entry::JournalEntry;

use crate::merkle::{self, Hash, ProofError};
use crate::note::{Checkpoint, LogKey, NoteError};

/// Longest leaf a receipt may carry (a C2SP entry bundle's limit).
pub const LEAF_BYTES_MAX: usize = u16::MAX as usize;
/// Most hashes an inclusion proof of a tree of up to 2^64 leaves holds.
const PROOF_HASHES_MAX: usize = 64;

/// A receipt as served by `GET /v1/receipts/{index}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub index: u64,
    pub tree_size: u64,
    /// Base64 of the leaf: the journal entry's bytes.
    pub leaf: String,
    /// Base64 of the leaf's RFC 9162 hash.
    pub leaf_hash: String,
    /// Base64 hashes, from the leaf up.
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint the proof leads to.
    pub checkpoint: String,
}

/// What a valid receipt proves.
#[derive(Clone, Debug)]
pub struct Proven {
    pub index: u64,
    pub tree_size: u64,
    pub origin: String,
    /// When the node accepted the command.
    pub time: Timestamp,
    /// Who signed it, and what it asked.
    pub command: Authenticated,
    /// What it did.
    pub events: Vec<Event>,
    /// `"http"` for a request signed by its signer, `"node"` for a command
    /// the node signed with the operator key.
    pub request_kind: &'static str,
}

/// Why a receipt does not verify. Each names what was tampered with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    #[error("the receipt is malformed: {0}")]
    Malformed(&'static str),
    #[error("the checkpoint does not verify: {0}")]
    Checkpoint(#[from] NoteError),
    #[error("the receipt's tree size {receipt} is not its checkpoint's {checkpoint}")]
    SizeMismatch { receipt: u64, checkpoint: u64 },
    #[error("the leaf hash does not match the leaf")]
    LeafHash,
    #[error("the leaf is not in the checkpoint's tree: {0}")]
    Inclusion(ProofError),
    #[error("the leaf is not a journal entry: {0}")]
    Leaf(String),
    #[error("the leaf's request is not authentic: {0}")]
    Request(String),
}

fn hash(text: &str) -> Result<Hash, ReceiptError> {
    STANDARD
        .decode(text)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(ReceiptError::Malformed("a hash is not 32 bytes of base64"))
}

impl Receipt {
    /// Verifies the receipt against the log's key; see the module docs.
    pub fn verify(&self, key: &LogKey) -> Result<Proven, ReceiptError> {
        let checkpoint = Checkpoint::open(&self.checkpoint, key)?;
        if checkpoint.size != self.tree_size {
            return Err(ReceiptError::SizeMismatch {
                receipt: self.tree_size,
                checkpoint: checkpoint.size,
            });
        }
        if self.leaf.len() > LEAF_BYTES_MAX.div_ceil(3) * 4 {
            return Err(ReceiptError::Malformed("the leaf is longer than 64 KiB"));
        }
        let leaf = STANDARD
            .decode(&self.leaf)
            .map_err(|_| ReceiptError::Malformed("the leaf is not base64"))?;
        let leaf_hash = merkle::leaf_hash(&leaf);
        if hash(&self.leaf_hash)? != leaf_hash {
            return Err(ReceiptError::LeafHash);
        }
        if self.inclusion_proof.len() > PROOF_HASHES_MAX {
            return Err(ReceiptError::Malformed("the proof has too many hashes"));
        }
        let proof = self
            .inclusion_proof
            .iter()
            .map(|h| hash(h))
            .collect::<Result<Vec<_>, _>>()?;
        merkle::verify_inclusion(
            &leaf_hash,
            self.index,
            self.tree_size,
            &proof,
            &checkpoint.root,
        )
        .map_err(ReceiptError::Inclusion)?;
        let entry = JournalEntry::decode(&leaf).map_err(|e| ReceiptError::Leaf(e.0))?;
        let command = entry
            .authenticate(&agentrail_core::channel::network_id(&checkpoint.origin))
            .map_err(|e| ReceiptError::Request(e.0))?;
        Ok(Proven {
            index: self.index,
            tree_size: self.tree_size,
            origin: checkpoint.origin,
            time: entry.time,
            command,
            events: entry.events,
            request_kind: match entry.request {
                agentrail_wire::entry::EntryRequest::Http { .. } => "http",
                agentrail_wire::entry::EntryRequest::Node { .. } => "node",
                agentrail_wire::entry::EntryRequest::Clock {} => "clock",
            },
        })
    }
}
