//! Hash-chain payments: an agentrail extension of the channel scheme for
//! unit-priced calls, where a paid call costs the payee one SHA-256 and no
//! signature.
//!
//! The payer draws a random 32-byte seed and hashes it `length` times:
//! link `length` is the seed, link `k - 1` is SHA-256(link `k`), and link 0
//! is the **tip**. It signs once a **commitment**: the tip, the unit price
//! and the length, bound to one voucher of the sub-channel (whose new
//! credit covers the chain). Call `k` (1 to `length`) then reveals link
//! `k`; the payee checks that SHA-256 of it is the link it holds (the tip
//! for the first call) and charges one unit. Whoever holds link `k` has
//! seen `k` calls paid: nothing else yields it, because SHA-256 cannot be
//! inverted.
//!
//! # Signed bytes (257, fixed)
//!
//! ```text
//! offset size  field
//!      0   24  domain: "agentrail hash chain v1\n"
//!     24  181  the bound voucher's signed bytes (see [`crate::channel`])
//!    205   32  tip (link 0)
//!    237   16  unit price, u128 big-endian, atomic units
//!    253    4  length, u32 big-endian (1 to CHAIN_LENGTH_MAX)
//! ```
//!
//! The signature is by the channel's voucher key, as the voucher's is. The
//! domain line keeps it from meaning a voucher; the voucher's bytes carry
//! network, channel, sub-channel, total, nonce and payee.

use std::fmt;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::amount::Amount;
use crate::channel::{VOUCHER_BYTES, Voucher, VoucherTerms};
use crate::ed25519::PublicKey;
use crate::signing::SignatureBytes;

/// Domain line of commitment signatures.
pub const CHAIN_DOMAIN: &[u8] = b"agentrail hash chain v1\n";
/// Length of the bytes a commitment signature covers.
pub const CHAIN_BYTES: usize = 257;
/// The longest chain a commitment may name: a payee holds a commitment's
/// state per sub-channel, a payer `length` links (32 bytes each) per chain.
pub const CHAIN_LENGTH_MAX: u32 = 65_536;

/// One link of a chain, written as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Link(pub [u8; 32]);

impl Link {
    /// The link this one is the preimage of: SHA-256 of its 32 bytes.
    pub fn parent(&self) -> Link {
        Link(Sha256::digest(self.0).into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 lower-case hex digits.
    pub fn parse(text: &str) -> Option<Link> {
        if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.as_bytes(), &mut bytes).ok()?;
        Some(Link(bytes))
    }

    /// Whether `depth` hashes of this link give `ancestor`: the check of a
    /// link `depth` below a known one, `depth` hashes long.
    pub fn descends_from(&self, ancestor: &Link, depth: u32) -> bool {
        let mut link = *self;
        for _ in 0..depth {
            link = link.parent();
        }
        link == *ancestor
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Link({})", self.to_hex())
    }
}

impl Serialize for Link {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Link {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Link, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Link::parse(&text)
            .ok_or_else(|| serde::de::Error::custom("a chain link is 64 lower-case hex digits"))
    }
}

/// What a commitment states, before it is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainTerms {
    pub tip: Link,
    pub unit: Amount,
    pub length: u32,
}

impl ChainTerms {
    /// The fixed 257 bytes a commitment signature covers, for the chain
    /// bound to `voucher` on the network whose hash is `network`.
    pub fn signing_bytes(&self, voucher: &VoucherTerms, network: &[u8; 32]) -> [u8; CHAIN_BYTES] {
        let mut out = [0u8; CHAIN_BYTES];
        let voucher_bytes: [u8; VOUCHER_BYTES] = voucher.signing_bytes(network);
        let mut at = 0;
        for part in [
            CHAIN_DOMAIN,
            &voucher_bytes[..],
            &self.tip.0[..],
            &self.unit.atomic().to_be_bytes()[..],
            &self.length.to_be_bytes()[..],
        ] {
            out[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        debug_assert_eq!(at, CHAIN_BYTES);
        out
    }

    /// Signs the commitment with the channel's voucher key.
    pub fn sign(
        self,
        voucher: &VoucherTerms,
        key: &SigningKey,
        network: &[u8; 32],
    ) -> ChainCommitment {
        let signature = SignatureBytes::sign(key, &self.signing_bytes(voucher, network));
        ChainCommitment {
            tip: self.tip,
            unit: self.unit,
            length: self.length,
            signature,
        }
    }
}

/// A signed commitment to a chain, as the first call of the chain sends it
/// beside the voucher it is bound to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChainCommitment {
    #[schemars(with = "String")]
    pub tip: Link,
    /// The price of one call, atomic units.
    pub unit: Amount,
    pub length: u32,
    /// Ed25519 by the channel's voucher key over the 257 signed bytes.
    #[schemars(with = "String")]
    pub signature: SignatureBytes,
}

/// Why a commitment is refused before its signature is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommitmentError {
    #[error("a chain's length is 1 to {CHAIN_LENGTH_MAX}")]
    Length,
    #[error("a chain's unit price is above zero")]
    Unit,
    #[error("the voucher's total does not cover the chain's length times its unit")]
    Uncovered,
}

impl ChainCommitment {
    pub fn terms(&self) -> ChainTerms {
        ChainTerms {
            tip: self.tip,
            unit: self.unit,
            length: self.length,
        }
    }

    /// The checks that need no signature: a length within bounds, a unit
    /// above zero, and a voucher whose total covers the chain.
    pub fn check(&self, voucher: &Voucher) -> Result<(), CommitmentError> {
        if self.length == 0 || self.length > CHAIN_LENGTH_MAX {
            return Err(CommitmentError::Length);
        }
        if self.unit.is_zero() {
            return Err(CommitmentError::Unit);
        }
        match self.unit.checked_mul(u128::from(self.length)) {
            Some(cost) if cost <= voucher.accumulated_amount => Ok(()),
            _ => Err(CommitmentError::Uncovered),
        }
    }

    /// Whether `key` signed this commitment bound to `voucher`.
    pub fn verify(&self, voucher: &Voucher, key: &PublicKey, network: &[u8; 32]) -> bool {
        key.verify(
            &self.terms().signing_bytes(&voucher.terms(), network),
            &self.signature.0.to_bytes(),
        )
    }
}

/// A payer's chain, every link computed ahead (32 bytes each), so that a
/// call reveals a link without hashing.
#[derive(Clone)]
pub struct HashChain {
    /// `links[k]` is link `k`: `links[0]` the tip, `links[length]` the seed.
    links: Vec<Link>,
}

impl fmt::Debug for HashChain {
    // The links are secrets until revealed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashChain")
            .field("tip", &self.tip())
            .field("length", &self.length())
            .finish()
    }
}

impl HashChain {
    /// The chain of `length` (1 to [`CHAIN_LENGTH_MAX`]) links above `seed`.
    pub fn from_seed(seed: [u8; 32], length: u32) -> HashChain {
        assert!(
            (1..=CHAIN_LENGTH_MAX).contains(&length),
            "a chain's length is 1 to CHAIN_LENGTH_MAX"
        );
        let mut links = Vec::with_capacity(length as usize + 1);
        links.push(Link(seed));
        for _ in 0..length {
            let next = links.last().expect("the seed").parent();
            links.push(next);
        }
        links.reverse();
        HashChain { links }
    }

    pub fn tip(&self) -> Link {
        self.links[0]
    }

    pub fn length(&self) -> u32 {
        (self.links.len() - 1) as u32
    }

    /// Link `k` (what call `k` reveals), for `k` in 0 to the length.
    pub fn link(&self, k: u32) -> Option<Link> {
        self.links.get(k as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelId;
    use crate::did::Did;

    fn voucher_terms() -> VoucherTerms {
        let payee = SigningKey::from_bytes(&[2; 32]);
        VoucherTerms {
            channel_id: ChannelId([7; 32]),
            epoch: 0,
            sub_channel_id: "s1".into(),
            accumulated_amount: Amount::from_atomic(1_000),
            nonce: 3,
            payee_id: Did::from_verifying_key(&payee.verifying_key()),
        }
    }

    #[test]
    fn each_link_hashes_to_the_one_before_it() {
        let chain = HashChain::from_seed([9; 32], 5);
        assert_eq!(chain.length(), 5);
        assert_eq!(chain.link(5), Some(Link([9; 32])));
        for k in 1..=5 {
            assert_eq!(chain.link(k).unwrap().parent(), chain.link(k - 1).unwrap());
        }
        assert!(chain.link(6).is_none());
        assert!(chain.link(4).unwrap().descends_from(&chain.tip(), 4));
        assert!(!chain.link(4).unwrap().descends_from(&chain.tip(), 3));
    }

    #[test]
    fn a_commitment_is_bound_to_its_voucher_and_network() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let network = crate::channel::network_hash("agentrail:test");
        let terms = voucher_terms();
        let voucher = terms.clone().sign(&key, &network);
        let chain = HashChain::from_seed([9; 32], 10);
        let commitment = ChainTerms {
            tip: chain.tip(),
            unit: Amount::from_atomic(100),
            length: 10,
        }
        .sign(&terms, &key, &network);
        let public = Did::from_verifying_key(&key.verifying_key())
            .public_key()
            .unwrap();
        assert!(commitment.verify(&voucher, &public, &network));
        assert_eq!(commitment.check(&voucher), Ok(()));
        // Another voucher of the sub-channel, another network, other terms.
        let other = VoucherTerms {
            nonce: 4,
            ..terms.clone()
        }
        .sign(&key, &network);
        assert!(!commitment.verify(&other, &public, &network));
        let elsewhere = crate::channel::network_hash("agentrail:other");
        assert!(!commitment.verify(&voucher, &public, &elsewhere));
        let longer = ChainCommitment {
            length: 9,
            ..commitment.clone()
        };
        assert!(!longer.verify(&voucher, &public, &network));
        // Covered: 10 × 100 ≤ 1000; 11 × 100 is not.
        let uncovered = ChainCommitment {
            length: 11,
            ..commitment.clone()
        };
        assert_eq!(uncovered.check(&voucher), Err(CommitmentError::Uncovered));
        let empty = ChainCommitment {
            length: 0,
            ..commitment
        };
        assert_eq!(empty.check(&voucher), Err(CommitmentError::Length));
    }

    /// The known-answer vectors of docs/protocol.md ("Hash-chain payments").
    #[test]
    fn known_answers() {
        let chain = HashChain::from_seed([0x11; 32], 3);
        let hexes: Vec<String> = (0..=3).map(|k| chain.link(k).unwrap().to_hex()).collect();
        let key = SigningKey::from_bytes(&[1; 32]);
        let network = crate::channel::network_hash("agentrail:test");
        let terms = voucher_terms();
        let chain_terms = ChainTerms {
            tip: chain.tip(),
            unit: Amount::from_atomic(100),
            length: 3,
        };
        let bytes = chain_terms.signing_bytes(&terms, &network);
        let commitment = chain_terms.sign(&terms, &key, &network);
        let printed = format!(
            "links {hexes:?}\nsigned {}\nsignature {}",
            hex::encode(bytes),
            hex::encode(commitment.signature.0.to_bytes())
        );
        assert_eq!(
            printed,
            include_str!("../tests/hashchain_vectors.txt").trim_end()
        );
    }
}
