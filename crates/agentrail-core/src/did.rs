//! Identities: Ed25519 public keys written as W3C `did:key` identifiers.
//!
//! `did:key:z6Mk…` is `did:key:` + `z` (multibase base58btc) + base58btc of
//! the multicodec prefix `0xed 0x01` (ed25519-pub, varint) followed by the
//! 32-byte public key.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ed25519::PublicKey;

const DID_KEY_PREFIX: &str = "did:key:";
const MULTIBASE_BASE58BTC: char = 'z';
/// Multicodec `ed25519-pub` (0xed) as an unsigned varint.
const MULTICODEC_ED25519_PUB: [u8; 2] = [0xed, 0x01];
/// A did:key for an Ed25519 key is 56 characters; anything much longer is
/// rejected before decoding.
pub const DID_TEXT_BYTES_MAX: usize = 128;

/// An identity: the Ed25519 public key behind a `did:key`.
///
/// Parsing checks the encoding (prefix, base58btc, multicodec, length) but
/// not that the 32 bytes are a point on the curve: decompressing a point
/// costs as much as a fifth of a signature check, and an identifier that is
/// only paid or named needs none. Validity is checked where it matters, when
/// a signature is verified: a did:key that is not a valid key verifies
/// nothing, so it can never sign a command or a grant.
///
/// Ordered and hashed by key bytes, so maps keyed by `Did` iterate
/// deterministically.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Did([u8; 32]);

/// Why a text is not an Ed25519 did:key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DidError {
    #[error("identity is too long to be a did:key")]
    TooLong,
    #[error("identity must start with \"did:key:z\" (did:key, base58btc multibase)")]
    NotDidKey,
    #[error("identity is not valid base58btc")]
    Base58,
    #[error("identity is not an Ed25519 key (multicodec 0xed01 followed by 32 bytes)")]
    NotEd25519,
}

impl Did {
    /// The identity of a public key. Fails for byte strings that are not a
    /// point on the curve.
    pub fn from_public_key_bytes(bytes: [u8; 32]) -> Did {
        Did(bytes)
    }

    pub fn from_verifying_key(key: &VerifyingKey) -> Did {
        Did(key.to_bytes())
    }

    pub fn public_key_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as a curve point; `None` when the 32 bytes are not a valid
    /// Ed25519 public key.
    pub fn verifying_key(&self) -> Option<VerifyingKey> {
        VerifyingKey::from_bytes(&self.0).ok()
    }

    /// The key, checked and decompressed for verification; `None` when the
    /// 32 bytes are not a canonical, large-order Ed25519 point.
    pub fn public_key(&self) -> Option<PublicKey> {
        PublicKey::from_bytes(&self.0)
    }

    /// Verifies a signature by this identity under agentrail's one
    /// acceptance rule ([`crate::ed25519`]). A did:key whose bytes are not a
    /// valid key verifies nothing.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        self.public_key()
            .is_some_and(|key| key.verify(message, &signature.to_bytes()))
    }
}

/// Base58btc digits of `0xed 0x01 ‖ key`: always 47, because the value lies
/// between 58^46 and 58^47 whatever the key.
const DID_DIGITS: usize = 47;
const BASE58_ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Base58btc of the 34-byte multicodec key. Writing identities is on every
/// hot path (journal entries, events, signatures), and the general-purpose
/// encoder divides byte by byte; this one divides nine 32-bit limbs by 58^5
/// at a time, about seven times faster. Checked against `bs58` in tests.
fn encode_did_digits(key: &[u8; 32]) -> [u8; DID_DIGITS] {
    const DIVISOR: u64 = 58u64.pow(5);
    let mut padded = [0u8; 36];
    padded[2..4].copy_from_slice(&MULTICODEC_ED25519_PUB);
    padded[4..].copy_from_slice(key);
    let mut limbs = [0u32; 9];
    for (index, limb) in limbs.iter_mut().enumerate() {
        *limb = u32::from_be_bytes(
            padded[4 * index..4 * index + 4]
                .try_into()
                .expect("four bytes"),
        );
    }
    let mut digits = [0u8; DID_DIGITS];
    let mut position = DID_DIGITS;
    while position > 0 {
        let mut remainder = 0u64;
        for limb in limbs.iter_mut() {
            let current = (remainder << 32) | u64::from(*limb);
            *limb = (current / DIVISOR) as u32;
            remainder = current % DIVISOR;
        }
        for _ in 0..5 {
            if position == 0 {
                break;
            }
            position -= 1;
            digits[position] = BASE58_ALPHABET[(remainder % 58) as usize];
            remainder /= 58;
        }
    }
    debug_assert!(
        limbs.iter().all(|limb| *limb == 0),
        "47 digits hold every ed25519 did:key"
    );
    digits
}

/// `did:key:z` and the digits: the text of every identity is this long.
const DID_TEXT_BYTES: usize = 9 + DID_DIGITS;

impl Did {
    /// The did:key text on the stack, without the formatting machinery
    /// (identities are written into every journal entry and event).
    fn text(&self) -> [u8; DID_TEXT_BYTES] {
        let mut text = [0u8; DID_TEXT_BYTES];
        text[..8].copy_from_slice(DID_KEY_PREFIX.as_bytes());
        text[8] = MULTIBASE_BASE58BTC as u8;
        text[9..].copy_from_slice(&encode_did_digits(&self.0));
        text
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.text();
        f.write_str(std::str::from_utf8(&text).expect("did:key text is ASCII"))
    }
}

/// The value of each base58btc digit, 0xff for bytes outside the alphabet.
const BASE58_VALUES: [u8; 128] = {
    let mut values = [0xffu8; 128];
    let mut index = 0;
    while index < 58 {
        values[BASE58_ALPHABET[index] as usize] = index as u8;
        index += 1;
    }
    values
};

/// Decodes digits of any length with the general decoder (only a 47-digit
/// text can be an Ed25519 did:key, but other lengths get the precise error).
fn decode_any_digits(encoded: &str) -> Result<[u8; 32], DidError> {
    let mut bytes = [0u8; 40];
    let length = bs58::decode(encoded)
        .onto(&mut bytes[..])
        .map_err(|error| match error {
            bs58::decode::Error::BufferTooSmall => DidError::NotEd25519,
            _ => DidError::Base58,
        })?;
    if length != 34 || bytes[..2] != MULTICODEC_ED25519_PUB {
        return Err(DidError::NotEd25519);
    }
    Ok(bytes[2..34].try_into().expect("32 bytes"))
}

/// Decodes the 47 digits every Ed25519 did:key has, five digits at a time
/// into 32-bit limbs (the inverse of [`encode_did_digits`], and about ten
/// times faster than the general decoder; checked against `bs58` in tests).
fn decode_did_digits(digits: &[u8]) -> Result<[u8; 32], DidError> {
    debug_assert_eq!(digits.len(), DID_DIGITS);
    let mut limbs = [0u32; 9];
    // 47 = 2 + 9 × 5: a chunk of two digits, then chunks of five.
    let mut start = 0;
    for size in std::iter::once(2).chain(std::iter::repeat_n(5, 9)) {
        let mut chunk = 0u64;
        for &digit in &digits[start..start + size] {
            let value = BASE58_VALUES
                .get(usize::from(digit))
                .copied()
                .filter(|value| *value != 0xff)
                .ok_or(DidError::Base58)?;
            chunk = chunk * 58 + u64::from(value);
        }
        start += size;
        let mut carry = chunk;
        for limb in limbs.iter_mut().rev() {
            let product = u64::from(*limb) * 58u64.pow(size as u32) + carry;
            *limb = product as u32;
            carry = product >> 32;
        }
        if carry != 0 {
            return Err(DidError::NotEd25519);
        }
    }
    let mut padded = [0u8; 36];
    for (index, limb) in limbs.iter().enumerate() {
        padded[4 * index..4 * index + 4].copy_from_slice(&limb.to_be_bytes());
    }
    if padded[..2] != [0, 0] || padded[2..4] != MULTICODEC_ED25519_PUB {
        return Err(DidError::NotEd25519);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&padded[4..]);
    Ok(key)
}

impl fmt::Debug for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Did({self})")
    }
}

impl FromStr for Did {
    type Err = DidError;
    fn from_str(text: &str) -> Result<Did, DidError> {
        if text.len() > DID_TEXT_BYTES_MAX {
            return Err(DidError::TooLong);
        }
        let encoded = text
            .strip_prefix(DID_KEY_PREFIX)
            .and_then(|rest| rest.strip_prefix(MULTIBASE_BASE58BTC))
            .ok_or(DidError::NotDidKey)?;
        if encoded.len() == DID_DIGITS {
            return decode_did_digits(encoded.as_bytes()).map(Did);
        }
        decode_any_digits(encoded).map(Did)
    }
}

impl Serialize for Did {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.text();
        serializer.serialize_str(std::str::from_utf8(&text).expect("did:key text is ASCII"))
    }
}

impl<'de> Deserialize<'de> for Did {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Did, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Did;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an Ed25519 did:key, e.g. \"did:key:z6Mk…\"")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Did, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    /// From w3c-ccg/did-method-key `test-vectors/ed25519-x25519.json`:
    /// (seed, publicKeyBase58, did).
    const VECTORS: [(&str, &str, &str); 5] = [
        (
            "0000000000000000000000000000000000000000000000000000000000000000",
            "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS",
            "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000001",
            "6ASf5EcmmEHTgDJ4X4ZT5vT6iHVJBXPg5AN5YoTCpGWt",
            "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000002",
            "8pM1DN3RiT8vbom5u1sNryaNT1nyL8CTTW3b5PwWXRBH",
            "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000003",
            "HPYVwAQmskwT1qEEeRzhoomyfyupJGASQQtCXSNG8XS2",
            "did:key:z6MkvqoYXQfDDJRv8L4wKzxYeuKyVZBfi9Qo6Ro8MiLH3kDQ",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000004",
            "J3qYF7YJMKCqQke47UQwiHizgFUXapHxRxKmxbkar89x",
            "did:key:z6MkwW6aqMnjgrhJXFUko3NnZPGzVpkNzhYK7yEhnsibmLwL",
        ),
    ];

    #[test]
    fn published_did_key_vectors_round_trip() {
        for (seed_hex, public_key_base58, did_text) in VECTORS {
            let seed: [u8; 32] = hex::decode(seed_hex).unwrap().try_into().unwrap();
            let signing_key = SigningKey::from_bytes(&seed);
            let public_key = bs58::decode(public_key_base58).into_vec().unwrap();
            assert_eq!(signing_key.verifying_key().as_bytes()[..], public_key[..]);

            let did = Did::from_verifying_key(&signing_key.verifying_key());
            assert_eq!(did.to_string(), did_text);
            let parsed: Did = did_text.parse().unwrap();
            assert_eq!(parsed, did);
            assert_eq!(parsed.to_string(), did_text);
        }
    }

    #[test]
    fn rejections() {
        let cases: [(&str, DidError); 6] = [
            ("did:web:example.com", DidError::NotDidKey),
            (
                "did:key:6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
                DidError::NotDidKey,
            ),
            ("did:key:z0OIl", DidError::Base58),
            // A P-256 did:key (multicodec 0x1200) from the same test suite.
            (
                "did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169",
                DidError::NotEd25519,
            ),
            ("did:key:zTjsVPtY", DidError::NotEd25519),
            (
                "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWpz6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWpz6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
                DidError::TooLong,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Did>(), Err(expected), "{text}");
        }
    }

    #[test]
    fn a_did_that_is_not_a_curve_point_parses_but_verifies_nothing() {
        let bytes = (0u8..=255)
            .map(|b| [b; 32])
            .find(|bytes| VerifyingKey::from_bytes(bytes).is_err())
            .expect("some byte strings are not points");
        let did = Did::from_public_key_bytes(bytes);
        let parsed: Did = did.to_string().parse().unwrap();
        assert_eq!(parsed, did);
        assert!(parsed.verifying_key().is_none());
        let key = SigningKey::from_bytes(&[7; 32]);
        let signature = ed25519_dalek::Signer::sign(&key, b"message");
        assert!(!parsed.verify(b"message", &signature));
    }

    proptest::proptest! {
        #[test]
        fn fast_encoding_matches_bs58(key in proptest::array::uniform32(proptest::num::u8::ANY)) {
            let mut bytes = vec![0xed, 0x01];
            bytes.extend_from_slice(&key);
            let expected = format!("did:key:z{}", bs58::encode(bytes).into_string());
            proptest::prop_assert_eq!(Did(key).to_string(), expected);
        }
    }

    /// The general decoder's verdict on a did:key's digits.
    fn bs58_decode(encoded: &str) -> Result<[u8; 32], DidError> {
        decode_any_digits(encoded)
    }

    proptest::proptest! {
        #[test]
        fn fast_decoding_matches_bs58_on_keys(key in proptest::array::uniform32(proptest::num::u8::ANY)) {
            let text = Did(key).to_string();
            let digits = &text[9..];
            proptest::prop_assert_eq!(decode_did_digits(digits.as_bytes()), Ok(key));
            proptest::prop_assert_eq!(bs58_decode(digits), Ok(key));
        }

        #[test]
        fn fast_decoding_matches_bs58_on_any_47_digits(
            indices in proptest::collection::vec(0usize..60, 47),
        ) {
            // Indices 58 and 59 stand for characters outside the alphabet.
            let digits: String = indices
                .iter()
                .map(|&i| match i {
                    58 => '0',
                    59 => 'l',
                    i => BASE58_ALPHABET[i] as char,
                })
                .collect();
            proptest::prop_assert_eq!(decode_did_digits(digits.as_bytes()), bs58_decode(&digits));
        }
    }

    #[test]
    fn fast_decoding_matches_bs58_at_the_edges() {
        for digits in [
            "1".repeat(47),
            "z".repeat(47),
            format!("1{}", "z".repeat(46)),
            format!("{}é", "z".repeat(45)),
        ] {
            if digits.len() == 47 {
                assert_eq!(
                    decode_did_digits(digits.as_bytes()),
                    bs58_decode(&digits),
                    "{digits}"
                );
            }
        }
    }

    #[test]
    fn fast_encoding_matches_bs58_at_the_extremes() {
        for key in [[0u8; 32], [0xff; 32]] {
            let mut bytes = vec![0xed, 0x01];
            bytes.extend_from_slice(&key);
            assert_eq!(
                Did(key).to_string(),
                format!("did:key:z{}", bs58::encode(bytes).into_string())
            );
        }
    }

    #[test]
    fn verify_checks_the_signature() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let did = Did::from_verifying_key(&key.verifying_key());
        let signature = ed25519_dalek::Signer::sign(&key, b"message");
        assert!(did.verify(b"message", &signature));
        assert!(!did.verify(b"massage", &signature));
    }
}
