//! Domain-separated signatures over RFC 8785 canonical JSON.
//!
//! Signed bytes = an ASCII domain line (`agentrail grant v1\n`,
//! `agentrail command v1\n`) followed by the JCS bytes of the document. The
//! domain line makes a signature over one kind of document useless as a
//! signature over another, and over anything outside agentrail.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::canonical::{CanonicalError, canonicalize};

/// Domain line for grants.
pub const GRANT_DOMAIN: &[u8] = b"agentrail grant v1\n";
/// Domain line for commands.
pub const COMMAND_DOMAIN: &[u8] = b"agentrail command v1\n";
/// Largest signed document (canonical bytes) accepted.
pub const SIGNED_DOCUMENT_BYTES_MAX: usize = 16 * 1024;

/// Reads a signed document: its typed form and the exact bytes its signer
/// signed. Bounded in size before it is parsed into the typed form.
pub(crate) fn decode_document<T: serde::de::DeserializeOwned>(
    domain: &[u8],
    document: &serde_json::Value,
) -> Result<(T, Vec<u8>), DocumentError> {
    let bytes = signing_bytes(domain, document)?;
    if bytes.len() > SIGNED_DOCUMENT_BYTES_MAX {
        return Err(DocumentError::TooLarge);
    }
    let typed = T::deserialize(document).map_err(|e| DocumentError::Shape(e.to_string()))?;
    Ok((typed, bytes))
}

/// The bytes a signer signs: domain line ‖ JCS(document).
pub fn signing_bytes(
    domain: &[u8],
    document: &serde_json::Value,
) -> Result<Vec<u8>, CanonicalError> {
    let canonical = canonicalize(document)?;
    let mut bytes = Vec::with_capacity(domain.len() + canonical.len());
    bytes.extend_from_slice(domain);
    bytes.extend_from_slice(&canonical);
    Ok(bytes)
}

/// An Ed25519 signature, written as 128 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SignatureBytes(pub Signature);

impl SignatureBytes {
    pub fn sign(key: &SigningKey, message: &[u8]) -> SignatureBytes {
        SignatureBytes(key.sign(message))
    }
}

impl fmt::Debug for SignatureBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0.to_bytes()))
    }
}

impl Serialize for SignatureBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(self.0.to_bytes()))
    }
}

impl<'de> Deserialize<'de> for SignatureBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SignatureBytes, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let invalid = || serde::de::Error::custom("signature must be 128 lower-case hex digits");
        if text.len() != 128 || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid());
        }
        let mut bytes = [0u8; 64];
        hex::decode_to_slice(text.as_bytes(), &mut bytes).map_err(|_| invalid())?;
        Ok(SignatureBytes(Signature::from_bytes(&bytes)))
    }
}

/// SHA-256 of a signed document's signing bytes: the document's id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocumentId(pub [u8; 32]);

impl DocumentId {
    pub fn of(signing_bytes: &[u8]) -> DocumentId {
        DocumentId(Sha256::digest(signing_bytes).into())
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({self})")
    }
}

impl Serialize for DocumentId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DocumentId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<DocumentId, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.as_bytes(), &mut bytes)
            .map_err(|_| serde::de::Error::custom("id must be 64 hex digits"))?;
        Ok(DocumentId(bytes))
    }
}

/// Why a signed document (grant or command) cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    #[error("document is not canonicalisable: {0}")]
    Canonical(#[from] CanonicalError),
    #[error("document is larger than {SIGNED_DOCUMENT_BYTES_MAX} bytes")]
    TooLarge,
    #[error("document does not match its format: {0}")]
    Shape(String),
}
