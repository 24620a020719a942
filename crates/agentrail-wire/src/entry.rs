//! The journal entry: one per accepted command, version 1, JSON.
//!
//! ```json
//! {"version":1,"time":1767225600,"signer":"did:key:…",
//!  "request":{"kind":"http","method":"POST","path":"/v1/commands",
//!             "content_digest":"sha-256=:…:","signature_input":"sig1=(…)…",
//!             "signature":"sig1=:…:","body":"<base64 of the body bytes>"},
//!  "events":[…]}
//! ```
//!
//! `request` is the signed request exactly as received (`kind: "http"`), a
//! command the node itself signed (`kind: "node"`, the dev faucet's
//! deposits, signed with the operator key), or the clock (`kind: "clock"`,
//! no fields, the operator as `signer`): what time did when it fell due
//! (expiries, deadlines, ended windows), a [`Command::Tick`] whose events
//! an auditor checks by replaying it, since it asserts nothing a replay
//! cannot recompute. Replaying the entries' commands
//! at their times through `agentrail-core` reproduces the ledger and the
//! recorded events.

use agentrail_core::command::Tick;
use agentrail_core::{Authenticated, Command, Did, Event, SignedCommand, Timestamp};

use crate::httpsig::{self, SignatureHeaders};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

pub const ENTRY_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryRequest {
    Http {
        method: String,
        path: String,
        content_digest: String,
        signature_input: String,
        signature: String,
        /// The body bytes, base64.
        body: String,
    },
    Node {
        command: Box<SignedCommand>,
    },
    /// The clock's entry ([`Command::Tick`]).
    Clock {},
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JournalEntry {
    pub version: u32,
    pub time: Timestamp,
    pub signer: Did,
    pub request: EntryRequest,
    pub events: Vec<Event>,
}

/// A journal entry without its request ([`JournalEntry::decode_summary`]).
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
pub struct EntrySummary {
    pub version: u32,
    pub time: Timestamp,
    pub signer: Did,
    pub events: Vec<Event>,
}

/// Why an entry cannot be read back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("journal entry unreadable: {0}")]
pub struct EntryError(pub String);

/// A journal entry made of borrowed parts: encodes to exactly the bytes of
/// the [`JournalEntry`] with the same fields, without copying them first.
#[derive(Serialize, schemars::JsonSchema)]
struct EntryParts<'a> {
    version: u32,
    time: Timestamp,
    signer: Did,
    request: &'a EntryRequest,
    events: &'a [Event],
}

/// The bytes of the current-version entry recording `request` by `signer`
/// at `time` with its outcome `events`.
pub fn encode_entry(
    time: Timestamp,
    signer: Did,
    request: &EntryRequest,
    events: &[Event],
) -> Vec<u8> {
    serde_json::to_vec(&EntryParts {
        version: ENTRY_VERSION,
        time,
        signer,
        request,
        events,
    })
    .expect("entries are representable as JSON")
}

impl JournalEntry {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(&EntryParts {
            version: self.version,
            time: self.time,
            signer: self.signer,
            request: &self.request,
            events: &self.events,
        })
        .expect("entries are representable as JSON")
    }

    pub fn decode(bytes: &[u8]) -> Result<JournalEntry, EntryError> {
        let entry: JournalEntry =
            serde_json::from_slice(bytes).map_err(|e| EntryError(e.to_string()))?;
        if entry.version != ENTRY_VERSION {
            return Err(EntryError(format!("version {} is unknown", entry.version)));
        }
        Ok(entry)
    }

    /// Decodes only who signed the entry, when, and what happened,
    /// skipping the request (most of the bytes): what the node's history
    /// index needs for every entry a snapshot already covers.
    pub fn decode_summary(bytes: &[u8]) -> Result<EntrySummary, EntryError> {
        let summary: EntrySummary =
            serde_json::from_slice(bytes).map_err(|e| EntryError(e.to_string()))?;
        if summary.version != ENTRY_VERSION {
            return Err(EntryError(format!(
                "version {} is unknown",
                summary.version
            )));
        }
        Ok(summary)
    }

    /// The command the entry's request carried.
    pub fn command(&self) -> Result<Command, EntryError> {
        match &self.request {
            EntryRequest::Http { body, .. } => {
                let bytes = STANDARD
                    .decode(body)
                    .map_err(|e| EntryError(e.to_string()))?;
                serde_json::from_slice(&bytes).map_err(|e| EntryError(e.to_string()))
            }
            EntryRequest::Node { command } => Ok(command.command().clone()),
            EntryRequest::Clock {} => Ok(Command::Tick(Tick {})),
        }
    }
}

impl JournalEntry {
    /// Checks the recorded request's own signature, as the node of the
    /// ledger `network` (`agentrail:<log origin>`) did when it accepted it,
    /// and returns the command it authorises. Needs nothing but the entry
    /// and the log's origin: this is how receipts and audits verify
    /// offline. A clock entry authorises only a tick by the recorded
    /// signer, which the replay refuses unless it is the operator.
    pub fn authenticate(&self, network: &str) -> Result<Authenticated, EntryError> {
        match &self.request {
            EntryRequest::Http {
                method,
                path,
                content_digest,
                signature_input,
                signature,
                body,
            } => {
                let bytes = STANDARD
                    .decode(body)
                    .map_err(|e| EntryError(format!("the body is not base64: {e}")))?;
                let headers = SignatureHeaders {
                    content_digest: content_digest.clone(),
                    signature_input: signature_input.clone(),
                    signature: signature.clone(),
                };
                let verified =
                    httpsig::verify_recorded(method, path, &bytes, &headers, self.time.0, network)
                        .map_err(|e| {
                            EntryError(format!("the request signature fails ({}): {e}", e.code()))
                        })?;
                if verified.signer != self.signer {
                    return Err(EntryError(
                        "the request was signed by another key than the recorded signer".into(),
                    ));
                }
                let command = serde_json::from_slice(&bytes)
                    .map_err(|e| EntryError(format!("the body is not a command: {e}")))?;
                Ok(Authenticated::assume_verified(self.signer, command))
            }
            EntryRequest::Node { command } => {
                let authenticated = (**command)
                    .clone()
                    .verify()
                    .map_err(|e| EntryError(format!("the command signature fails: {e}")))?;
                if *authenticated.signer() != self.signer {
                    return Err(EntryError(
                        "the command was signed by another key than the recorded signer".into(),
                    ));
                }
                Ok(authenticated)
            }
            EntryRequest::Clock {} => Ok(Authenticated::assume_verified(
                self.signer,
                Command::Tick(Tick {}),
            )),
        }
    }
}

pub fn encode_body(body: &[u8]) -> String {
    STANDARD.encode(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentrail_core::Amount;

    #[test]
    fn an_entry_from_parts_is_the_entry_byte_for_byte() {
        let (from, to) = (
            Did::from_public_key_bytes([3; 32]),
            Did::from_public_key_bytes([4; 32]),
        );
        let entry = JournalEntry {
            version: ENTRY_VERSION,
            time: Timestamp(1_767_225_600),
            signer: from,
            request: EntryRequest::Http {
                method: "POST".into(),
                path: "/v1/commands".into(),
                content_digest: "sha-256=:x:".into(),
                signature_input: "sig1=(\"@method\")".into(),
                signature: "sig1=:y:".into(),
                body: encode_body(b"{}"),
            },
            events: vec![Event::Deposited {
                to,
                amount: Amount::from_atomic(5),
            }],
        };
        let bytes = encode_entry(entry.time, entry.signer, &entry.request, &entry.events);
        assert_eq!(bytes, entry.encode());
        assert_eq!(JournalEntry::decode(&bytes).unwrap().encode(), bytes);
    }
}
