//! C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys, and
//! C2SP tlog-checkpoint bodies (https://c2sp.org/tlog-checkpoint).
//!
//! A note is a text ending in a newline, a blank line, then one line per
//! signature: `— <key name> <base64(key id ‖ signature)>`. The key id is
//! `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)[..4]`; a verifier key is
//! written `<name>+<hex key id>+<base64(0x01 ‖ public key)>`. Signatures by
//! keys a verifier does not know are ignored.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

use agentrail_core::ed25519::PublicKey;

use crate::merkle::Hash;

/// The signature type byte of Ed25519 in signed notes.
const ED25519_TYPE: u8 = 0x01;
/// The prefix of a signature line: an em dash and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// Longest note this module reads.
pub const NOTE_BYTES_MAX: usize = 16 * 1024;
/// Most signature lines read.
const SIGNATURES_MAX: usize = 100;

/// Why a note, a key or a checkpoint is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    #[error("malformed verifier key: {0}")]
    MalformedKey(&'static str),
    #[error("malformed note: {0}")]
    MalformedNote(&'static str),
    #[error("the note carries no signature by the key {0}")]
    NotSigned(String),
    #[error("the note's signature by {0} does not verify: the note was altered or forged")]
    BadSignature(String),
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
}

fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update([ED25519_TYPE])
        .chain_update(public)
        .finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A key name: non-empty, no Unicode space, no `+`.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// A log's public key, as verifiers hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogKey {
    name: String,
    id: [u8; 4],
    public: PublicKey,
}

impl LogKey {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.
    pub fn parse(text: &str) -> Result<LogKey, NoteError> {
        let text = text.trim();
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::MalformedKey("expected <name>+<key id>+<key>"));
        };
        if !valid_name(name) {
            return Err(NoteError::MalformedKey(
                "the key name is empty or has spaces",
            ));
        }
        let id: [u8; 4] = (id_hex.len() == 8)
            .then(|| hex::decode(id_hex).ok())
            .flatten()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(NoteError::MalformedKey("the key id is not 8 hex digits"))?;
        let bytes = STANDARD
            .decode(key)
            .map_err(|_| NoteError::MalformedKey("the key is not base64"))?;
        let (Some(&ED25519_TYPE), Ok(public)) = (
            bytes.first(),
            <[u8; 32]>::try_from(bytes.get(1..).unwrap_or_default()),
        ) else {
            return Err(NoteError::MalformedKey(
                "the key is not 0x01 followed by a 32-byte Ed25519 key",
            ));
        };
        if key_id(name, &public) != id {
            return Err(NoteError::MalformedKey(
                "the key id does not match the name and key",
            ));
        }
        let public = PublicKey::from_bytes(&public).ok_or(NoteError::MalformedKey(
            "the key is not a valid Ed25519 key",
        ))?;
        Ok(LogKey {
            name: name.to_owned(),
            id,
            public,
        })
    }

    /// Checks the note's signature by this key and returns its text.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        if note.len() > NOTE_BYTES_MAX {
            return Err(NoteError::MalformedNote("longer than 16 KiB"));
        }
        let split = note.rfind("\n\n").ok_or(NoteError::MalformedNote(
            "no blank line before the signatures",
        ))?;
        let text = &note[..split + 1];
        let signatures = &note[split + 2..];
        let Some(lines) = signatures.strip_suffix('\n') else {
            return Err(NoteError::MalformedNote(
                "the signatures do not end with a newline",
            ));
        };
        let mut verdict = None;
        for (count, line) in lines.split('\n').enumerate() {
            if count >= SIGNATURES_MAX {
                return Err(NoteError::MalformedNote("more than 100 signatures"));
            }
            let (name, signature) = line
                .strip_prefix(SIGNATURE_PREFIX)
                .and_then(|rest| rest.split_once(' '))
                .ok_or(NoteError::MalformedNote(
                    "a signature line is not \"— <name> <signature>\"",
                ))?;
            let bytes = STANDARD
                .decode(signature)
                .map_err(|_| NoteError::MalformedNote("a signature is not base64"))?;
            if bytes.len() < 5 {
                return Err(NoteError::MalformedNote("a signature is too short"));
            }
            if name != self.name || bytes[..4] != self.id || verdict.is_some() {
                continue;
            }
            let signature: Option<[u8; 64]> = bytes[4..].try_into().ok();
            verdict = Some(
                signature.is_some_and(|signature| self.public.verify(text.as_bytes(), &signature)),
            );
        }
        match verdict {
            Some(true) => Ok(text),
            Some(false) => Err(NoteError::BadSignature(self.name.clone())),
            None => Err(NoteError::NotSigned(self.name.clone())),
        }
    }
}

/// A log's signing key.
#[derive(Clone)]
pub struct LogSigner {
    name: String,
    id: [u8; 4],
    key: SigningKey,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSigner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl LogSigner {
    /// `None` if the name is empty or holds a space or `+`.
    pub fn new(name: &str, key: SigningKey) -> Option<LogSigner> {
        valid_name(name).then(|| LogSigner {
            name: name.to_owned(),
            id: key_id(name, key.verifying_key().as_bytes()),
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key string.
    pub fn verifier_key(&self) -> String {
        let mut bytes = vec![ED25519_TYPE];
        bytes.extend_from_slice(self.key.verifying_key().as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.id),
            STANDARD.encode(bytes)
        )
    }

    /// Signs a text (which must end in a newline) into a note.
    pub fn sign(&self, text: &str) -> String {
        assert!(
            text.ends_with('\n') && !text.contains("\n\n"),
            "a note text is lines ending in newlines, without blank lines"
        );
        let mut signature = self.id.to_vec();
        signature.extend_from_slice(&self.key.sign(text.as_bytes()).to_bytes());
        format!(
            "{text}\n{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(signature)
        )
    }
}

/// A tlog-checkpoint: which tree, how big, its root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: origin, size and base64 root, one per line.
    pub fn to_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Reads a checkpoint text (extension lines after the root are
    /// allowed and ignored).
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let mut lines = text.split('\n');
        let origin = lines
            .next()
            .filter(|origin| !origin.is_empty())
            .ok_or(NoteError::MalformedCheckpoint("the origin line is empty"))?;
        let size_text = lines
            .next()
            .ok_or(NoteError::MalformedCheckpoint("no tree size"))?;
        let canonical = size_text == "0" || !size_text.starts_with('0');
        let size: u64 = size_text
            .parse()
            .ok()
            .filter(|_| canonical && size_text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(NoteError::MalformedCheckpoint(
                "the tree size is not a decimal number",
            ))?;
        let root: Hash = lines
            .next()
            .and_then(|line| STANDARD.decode(line).ok())
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(NoteError::MalformedCheckpoint(
                "the root hash is not 32 bytes of base64",
            ))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }

    /// Opens a signed checkpoint note with the log's key and checks that its
    /// origin is the key's name.
    pub fn open(note: &str, key: &LogKey) -> Result<Checkpoint, NoteError> {
        let checkpoint = Checkpoint::parse(key.open(note)?)?;
        if checkpoint.origin != key.name {
            return Err(NoteError::MalformedCheckpoint(
                "the origin is not the log key's name",
            ));
        }
        Ok(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_c2sp_signed_note_example_verifies() {
        let key =
            LogKey::parse("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
                .unwrap();
        let note = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        assert_eq!(key.open(note), Ok("This is an example message.\n"));
        let altered = note.replace("example message", "example massage");
        assert_eq!(
            key.open(&altered),
            Err(NoteError::BadSignature("example.com/foo".into()))
        );
        // The key id must match the key.
        assert!(
            LogKey::parse("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
                .is_err()
        );
    }

    #[test]
    fn signed_checkpoints_round_trip_and_resist_tampering() {
        let signer =
            LogSigner::new("agentrail.test/log", SigningKey::from_bytes(&[9; 32])).unwrap();
        let key = LogKey::parse(&signer.verifier_key()).unwrap();
        let checkpoint = Checkpoint {
            origin: "agentrail.test/log".into(),
            size: 42,
            root: [7; 32],
        };
        let note = signer.sign(&checkpoint.to_text());
        assert_eq!(Checkpoint::open(&note, &key), Ok(checkpoint));
        let forged = note.replace("\n42\n", "\n43\n");
        assert!(Checkpoint::open(&forged, &key).is_err());
        let other = LogSigner::new("agentrail.test/log", SigningKey::from_bytes(&[8; 32])).unwrap();
        let other_key = LogKey::parse(&other.verifier_key()).unwrap();
        assert_eq!(
            Checkpoint::open(&note, &other_key),
            Err(NoteError::NotSigned("agentrail.test/log".into()))
        );
        for bad in [
            "",
            "o\n",
            "o\n01\nAAAA\n",
            "o\n1\nnot base64\n",
            "\n1\nAA==\n",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
    }
}
