//! Payment channels: identifiers and vouchers.
//!
//! A channel is a unidirectional payer → payee relation holding a deposit.
//! The payer pays by signing **vouchers**: each one states the total paid so
//! far on one sub-channel (a concurrent stream with its own counter). The
//! payee checks a voucher alone, with one signature and two integers, and
//! redeems the best one per sub-channel with the ledger when it likes.
//!
//! This is the agentrail binding of x402's `channel` scheme, whose signed
//! *receipt* we call a voucher (a receipt, in agentrail, is a log inclusion
//! proof). Field for field: `channelId`, `epoch` (always 0: a channel is
//! never reopened; a new one gets a new id), `subChannelId`,
//! `accumulatedAmount` (atomic units), `nonce`, `payeeId` (a did:key) and
//! `payerSignature` (Ed25519 by the channel's voucher key, 128 hex digits).
//!
//! # Signed bytes (181, fixed)
//!
//! ```text
//! offset size  field
//!      0   21  domain: "agentrail voucher v1\n"
//!     21   32  network: SHA-256 of the network id ("agentrail:<log origin>")
//!     53   32  channel id
//!     85    8  epoch, u64 big-endian
//!     93   32  sub-channel: SHA-256 of the subChannelId text
//!    125   16  accumulated amount, u128 big-endian, atomic units
//!    141    8  nonce, u64 big-endian
//!    149   32  payee: the Ed25519 public key of the payee's did:key
//! ```
//!
//! The domain line keeps a voucher signature from meaning anything else; the
//! network hash keeps a voucher for one ledger from being redeemed on
//! another.

use std::fmt;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::amount::Amount;
use crate::constants::KEY_BYTES_MAX;
use crate::did::Did;
use crate::signing::SignatureBytes;

/// Domain line of voucher signatures.
pub const VOUCHER_DOMAIN: &[u8] = b"agentrail voucher v1\n";
/// Length of the bytes a voucher signature covers.
pub const VOUCHER_BYTES: usize = 181;
/// Domain line of channel identifiers.
const CHANNEL_ID_DOMAIN: &[u8] = b"agentrail channel id v1\n";

/// A channel's identifier: SHA-256 over the payer's and payee's keys and the
/// opener's idempotency key, so the payer knows it before the channel opens.
/// Written as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelId(pub [u8; 32]);

impl ChannelId {
    pub fn derive(from: &Did, payee: &Did, key: &str) -> ChannelId {
        let digest = Sha256::new()
            .chain_update(CHANNEL_ID_DOMAIN)
            .chain_update(from.public_key_bytes())
            .chain_update(payee.public_key_bytes())
            .chain_update((key.len() as u64).to_be_bytes())
            .chain_update(key.as_bytes())
            .finalize();
        ChannelId(digest.into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 lower-case hex digits.
    pub fn parse(text: &str) -> Option<ChannelId> {
        if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.as_bytes(), &mut bytes).ok()?;
        Some(ChannelId(bytes))
    }
}

impl fmt::Debug for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelId({})", self.to_hex())
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::str::FromStr for ChannelId {
    type Err = &'static str;

    fn from_str(text: &str) -> Result<ChannelId, &'static str> {
        ChannelId::parse(text).ok_or("a channel id is 64 lower-case hex digits")
    }
}

impl Serialize for ChannelId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ChannelId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ChannelId, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        ChannelId::parse(&text)
            .ok_or_else(|| serde::de::Error::custom("a channel id is 64 lower-case hex digits"))
    }
}

/// The network id of the ledger whose log is named `log_origin`.
pub fn network_id(log_origin: &str) -> String {
    format!("agentrail:{log_origin}")
}

/// The SHA-256 of a network id, as vouchers sign it.
pub fn network_hash(network: &str) -> [u8; 32] {
    Sha256::digest(network.as_bytes()).into()
}

/// What a voucher commits to, before it is signed: also x402's unsigned
/// *proposal* for the next payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VoucherTerms {
    pub channel_id: ChannelId,
    pub epoch: u64,
    pub sub_channel_id: String,
    pub accumulated_amount: Amount,
    pub nonce: u64,
    pub payee_id: Did,
}

/// The fixed 181 bytes a voucher signature covers (see the module docs).
fn signing_bytes(
    network: &[u8; 32],
    channel_id: &ChannelId,
    epoch: u64,
    sub_channel_id: &str,
    amount: Amount,
    nonce: u64,
    payee: &Did,
) -> [u8; VOUCHER_BYTES] {
    let mut out = [0u8; VOUCHER_BYTES];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        out[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(VOUCHER_DOMAIN);
    put(network);
    put(&channel_id.0);
    put(&epoch.to_be_bytes());
    put(&Sha256::digest(sub_channel_id.as_bytes()));
    put(&amount.atomic().to_be_bytes());
    put(&nonce.to_be_bytes());
    put(payee.public_key_bytes());
    debug_assert_eq!(at, VOUCHER_BYTES);
    out
}

impl VoucherTerms {
    /// The fixed 181 bytes a signature covers (see the module docs).
    pub fn signing_bytes(&self, network: &[u8; 32]) -> [u8; VOUCHER_BYTES] {
        signing_bytes(
            network,
            &self.channel_id,
            self.epoch,
            &self.sub_channel_id,
            self.accumulated_amount,
            self.nonce,
            &self.payee_id,
        )
    }

    pub fn sign(self, key: &SigningKey, network: &[u8; 32]) -> Voucher {
        let payer_signature = SignatureBytes::sign(key, &self.signing_bytes(network));
        let VoucherTerms {
            channel_id,
            epoch,
            sub_channel_id,
            accumulated_amount,
            nonce,
            payee_id,
        } = self;
        Voucher {
            channel_id,
            epoch,
            sub_channel_id,
            accumulated_amount,
            nonce,
            payee_id,
            payer_signature,
        }
    }
}

/// Why a sub-channel id is malformed, if it is: it is a key (1 to 64 bytes
/// of `[A-Za-z0-9_.:-]`).
pub fn check_sub_channel_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty()
        || id.len() > KEY_BYTES_MAX
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
    {
        return Err("subChannelId must be 1 to 64 characters of [A-Za-z0-9_.:-]");
    }
    Ok(())
}

/// A signed voucher: x402's channel receipt in the agentrail binding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Voucher {
    pub channel_id: ChannelId,
    pub epoch: u64,
    pub sub_channel_id: String,
    pub accumulated_amount: Amount,
    pub nonce: u64,
    pub payee_id: Did,
    pub payer_signature: SignatureBytes,
}

impl Voucher {
    /// What the voucher commits to.
    pub fn terms(&self) -> VoucherTerms {
        VoucherTerms {
            channel_id: self.channel_id,
            epoch: self.epoch,
            sub_channel_id: self.sub_channel_id.clone(),
            accumulated_amount: self.accumulated_amount,
            nonce: self.nonce,
            payee_id: self.payee_id,
        }
    }

    /// The bytes its signature covers.
    pub fn signing_bytes(&self, network: &[u8; 32]) -> [u8; VOUCHER_BYTES] {
        signing_bytes(
            network,
            &self.channel_id,
            self.epoch,
            &self.sub_channel_id,
            self.accumulated_amount,
            self.nonce,
            &self.payee_id,
        )
    }

    /// Whether `key` signed these terms for `network`, under agentrail's one
    /// signature rule.
    pub fn verify(&self, key: &Did, network: &[u8; 32]) -> bool {
        key.verify(&self.signing_bytes(network), &self.payer_signature.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn did(key: &SigningKey) -> Did {
        Did::from_verifying_key(&key.verifying_key())
    }

    fn terms() -> VoucherTerms {
        VoucherTerms {
            channel_id: ChannelId::derive(&did(&key(1)), &did(&key(2)), "open-1"),
            epoch: 0,
            sub_channel_id: "stream-1".into(),
            accumulated_amount: Amount::from_atomic(1_500),
            nonce: 7,
            payee_id: did(&key(2)),
        }
    }

    #[test]
    fn the_signed_bytes_are_laid_out_as_documented() {
        let network = network_hash("agentrail:test");
        let bytes = terms().signing_bytes(&network);
        assert_eq!(&bytes[..21], VOUCHER_DOMAIN);
        assert_eq!(&bytes[21..53], &network);
        assert_eq!(&bytes[53..85], &terms().channel_id.0);
        assert_eq!(&bytes[85..93], &0u64.to_be_bytes());
        assert_eq!(&bytes[93..125], Sha256::digest(b"stream-1").as_slice());
        assert_eq!(&bytes[125..141], &1_500u128.to_be_bytes());
        assert_eq!(&bytes[141..149], &7u64.to_be_bytes());
        assert_eq!(&bytes[149..], did(&key(2)).public_key_bytes());
    }

    #[test]
    fn a_voucher_verifies_only_as_signed() {
        let network = network_hash("agentrail:test");
        let voucher = terms().sign(&key(1), &network);
        assert!(voucher.verify(&did(&key(1)), &network));
        assert!(!voucher.verify(&did(&key(3)), &network));
        assert!(!voucher.verify(&did(&key(1)), &network_hash("agentrail:other")));
        let mut raised = voucher.clone();
        raised.accumulated_amount = Amount::from_atomic(1_501);
        assert!(!raised.verify(&did(&key(1)), &network));
        let mut moved = voucher.clone();
        moved.sub_channel_id = "stream-2".into();
        assert!(!moved.verify(&did(&key(1)), &network));
    }

    #[test]
    fn the_json_shape_is_the_x402_receipt() {
        let voucher = terms().sign(&key(1), &network_hash("agentrail:test"));
        let json = serde_json::to_value(&voucher).unwrap();
        let mut fields: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "accumulatedAmount",
                "channelId",
                "epoch",
                "nonce",
                "payeeId",
                "payerSignature",
                "subChannelId"
            ]
        );
        let back: Voucher = serde_json::from_value(json).unwrap();
        assert_eq!(back, voucher);
    }

    #[test]
    fn channel_ids_differ_by_parties_and_key() {
        let (a, b) = (did(&key(1)), did(&key(2)));
        let id = ChannelId::derive(&a, &b, "k");
        assert_ne!(id, ChannelId::derive(&b, &a, "k"));
        assert_ne!(id, ChannelId::derive(&a, &b, "k2"));
        assert_eq!(ChannelId::parse(&id.to_hex()), Some(id));
        assert_eq!(ChannelId::parse(&id.to_hex().to_uppercase()), None);
    }
}
