//! The one Ed25519 acceptance rule of agentrail, for single signatures and
//! for batches.
//!
//! Why our own verification (on `curve25519-dalek`'s audited group
//! arithmetic) instead of `ed25519-dalek`'s: the node verifies requests in
//! batches to reach its throughput, while receipts, audits and replays check
//! signatures one by one. Both must accept exactly the same signatures, or
//! an audit could disagree with the node about what was valid.
//! `ed25519-dalek`'s `verify_strict` checks the cofactorless equation and its
//! `verify_batch` a random combination of it; the two disagree on signatures
//! whose `R` carries a small-order component (the batch accepts some of
//! them with probability 1/8). With the **cofactored** equation below they
//! agree: a batch passes if and only if every member passes alone (up to a
//! 2^-128 chance of a forged batch passing).
//!
//! The rule, for public key `A`, message `M` and signature `R ‖ s`:
//!
//! 1. `A` and `R` are canonical encodings (y < p, and no "negative zero")
//!    of curve points, and `A` is not of small order (a small-order key
//!    would verify a forged signature on any message);
//! 2. `s` is a canonical scalar (s < ℓ), so a signature cannot be altered
//!    by adding ℓ;
//! 3. with `k = SHA-512(R ‖ A ‖ M) mod ℓ`: `[8]([s]B − R − [k]A)` is the
//!    identity.
//!
//! Every signature an RFC 8032 signer produces passes. The cofactored
//! equation accepts strictly more than the cofactorless one: only a key's
//! owner can craft such a signature, and it proves that owner's consent all
//! the same. Verifiers that use the cofactorless check (OpenSSL, Python's
//! `cryptography`) accept every honest signature too.
//!
//! Batches draw their random coefficients from a SHA-512 hash of the whole
//! batch (every `R`, `A`, `s` and `k`), so this module stays pure and
//! deterministic while the coefficients remain unpredictable to whoever
//! chose the signatures.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::{Digest, Sha512};

/// A public key that passed the key checks of the rule, decompressed once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey {
    bytes: [u8; 32],
    point: EdwardsPoint,
}

impl PublicKey {
    /// The key, or `None` if the bytes are not a canonical encoding of a
    /// curve point of large order.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<PublicKey> {
        let point = decompress_canonical(bytes)?;
        if point.is_small_order() {
            return None;
        }
        Some(PublicKey {
            bytes: *bytes,
            point,
        })
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// Checks one signature.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let Some(parts) = Parts::new(self, message, signature) else {
            return false;
        };
        // [s]B − [k]A − R, multiplied by the cofactor.
        let difference =
            EdwardsPoint::vartime_double_scalar_mul_basepoint(&parts.k, &-self.point, &parts.s)
                - parts.r;
        difference.mul_by_cofactor().is_identity()
    }
}

/// One signature to check in a batch.
#[derive(Clone, Copy, Debug)]
pub struct Item<'a> {
    pub key: &'a PublicKey,
    pub message: &'a [u8],
    pub signature: &'a [u8; 64],
}

impl Item<'_> {
    pub fn verify(&self) -> bool {
        self.key.verify(self.message, self.signature)
    }
}

/// True if and only if every item verifies alone (with overwhelming
/// probability). One multi-scalar multiplication for the whole batch: about
/// half the cost per signature of checking them one by one. An empty batch
/// verifies.
pub fn verify_batch(items: &[Item<'_>]) -> bool {
    if items.len() <= 1 {
        return items.iter().all(Item::verify);
    }
    let mut parts = Vec::with_capacity(items.len());
    let mut transcript = Sha512::new();
    transcript.update(b"agentrail ed25519 batch v1\n");
    transcript.update((items.len() as u64).to_le_bytes());
    for item in items {
        let Some(part) = Parts::new(item.key, item.message, item.signature) else {
            return false;
        };
        transcript.update(item.signature);
        transcript.update(item.key.bytes);
        transcript.update(part.k.as_bytes());
        parts.push(part);
    }
    let seed = transcript.finalize();
    let coefficients = coefficients(&seed, items.len());

    // Σ z_i·(s_i·B − R_i − k_i·A_i) as one sum: the basepoint's scalar is
    // Σ z_i·s_i, each R_i gets −z_i and each A_i gets −z_i·k_i.
    let mut scalars = Vec::with_capacity(2 * items.len() + 1);
    let mut points = Vec::with_capacity(2 * items.len() + 1);
    let mut basepoint_scalar = Scalar::ZERO;
    for ((part, item), z) in parts.iter().zip(items).zip(&coefficients) {
        basepoint_scalar += z * part.s;
        scalars.push(-z);
        points.push(part.r);
        scalars.push(-(z * part.k));
        points.push(item.key.point);
    }
    scalars.push(basepoint_scalar);
    points.push(ED25519_BASEPOINT_POINT);
    EdwardsPoint::vartime_multiscalar_mul(&scalars, &points)
        .mul_by_cofactor()
        .is_identity()
}

/// Which items of a batch fail, checking the whole batch at once first and
/// halving a failing batch until the culprits are found: a batch with one
/// forgery costs about 2·log2(n) batch checks instead of n single ones.
pub fn find_invalid(items: &[Item<'_>]) -> Vec<usize> {
    let mut invalid = Vec::new();
    bisect(items, 0, &mut invalid);
    invalid
}

/// Below this size a failing batch is checked item by item.
const BISECT_MIN: usize = 4;

fn bisect(items: &[Item<'_>], offset: usize, invalid: &mut Vec<usize>) {
    if verify_batch(items) {
        return;
    }
    if items.len() <= BISECT_MIN {
        for (index, item) in items.iter().enumerate() {
            if !item.verify() {
                invalid.push(offset + index);
            }
        }
        return;
    }
    let middle = items.len() / 2;
    bisect(&items[..middle], offset, invalid);
    bisect(&items[middle..], offset + middle, invalid);
}

/// 128-bit nonzero coefficients expanded from the batch's hash.
fn coefficients(seed: &[u8], count: usize) -> Vec<Scalar> {
    let mut out = Vec::with_capacity(count);
    let mut block = 0u64;
    while out.len() < count {
        let words = Sha512::new()
            .chain_update(seed)
            .chain_update(block.to_le_bytes())
            .finalize();
        for chunk in words.chunks_exact(16) {
            if out.len() == count {
                break;
            }
            let mut bytes = [0u8; 32];
            bytes[..16].copy_from_slice(chunk);
            // The top bit set: never zero.
            bytes[15] |= 0x80;
            out.push(Scalar::from_bytes_mod_order(bytes));
        }
        block += 1;
    }
    out
}

/// The checked pieces of one signature.
struct Parts {
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

impl Parts {
    fn new(key: &PublicKey, message: &[u8], signature: &[u8; 64]) -> Option<Parts> {
        let (r_bytes, s_bytes) = signature.split_at(32);
        let r_bytes: &[u8; 32] = r_bytes.try_into().expect("32 bytes");
        let s_bytes: [u8; 32] = s_bytes.try_into().expect("32 bytes");
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
        let r = decompress_canonical(r_bytes)?;
        let k = challenge(r_bytes, &key.bytes, message);
        Some(Parts { r, s, k })
    }
}

/// `SHA-512(R ‖ A ‖ M)` reduced mod ℓ.
fn challenge(r: &[u8; 32], key: &[u8; 32], message: &[u8]) -> Scalar {
    let digest: [u8; 64] = Sha512::new()
        .chain_update(r)
        .chain_update(key)
        .chain_update(message)
        .finalize()
        .into();
    Scalar::from_bytes_mod_order_wide(&digest)
}

/// Decompresses a point, refusing the encodings that are not canonical:
/// a y coordinate ≥ p (the 19 values 2^255 − 19 … 2^255 − 1) and a sign bit
/// set on a point whose x is zero. Checked on the bytes, without the
/// inversion that re-compressing would cost.
fn decompress_canonical(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    let y_at_least_p =
        bytes[0] >= 0xed && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[31] & 0x7f == 0x7f;
    if y_at_least_p {
        return None;
    }
    let point = CompressedEdwardsY(*bytes).decompress()?;
    let sign = bytes[31] >> 7;
    // x = 0 happens for y = ±1 only; its sign bit must be 0.
    let x_is_zero = {
        let mut y = *bytes;
        y[31] &= 0x7f;
        let one = {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        };
        // p − 1 in little-endian: 0xec, 0xff × 30, 0x7f.
        let minus_one = {
            let mut minus_one = [0xffu8; 32];
            minus_one[0] = 0xec;
            minus_one[31] = 0x7f;
            minus_one
        };
        y == one || y == minus_one
    };
    if x_is_zero && sign == 1 {
        return None;
    }
    Some(point)
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use ed25519_dalek::{Signer, SigningKey};

    fn key(seed: u8) -> (SigningKey, PublicKey) {
        let signing = SigningKey::from_bytes(&[seed; 32]);
        let public = PublicKey::from_bytes(signing.verifying_key().as_bytes()).expect("valid");
        (signing, public)
    }

    fn signed(seed: u8, message: &[u8]) -> (PublicKey, [u8; 64]) {
        let (signing, public) = key(seed);
        (public, signing.sign(message).to_bytes())
    }

    /// A signature whose R carries an order-8 component: the cofactorless
    /// equation fails, the cofactored one holds. The signer computes s for
    /// R' = R + T, which only the key's owner can do.
    fn torsioned(seed: u8, message: &[u8]) -> (PublicKey, [u8; 64]) {
        let signing = SigningKey::from_bytes(&[seed; 32]);
        let public = PublicKey::from_bytes(signing.verifying_key().as_bytes()).expect("valid");
        let secret = Scalar::from_bytes_mod_order(signing.to_scalar().to_bytes());
        let nonce = Scalar::from_bytes_mod_order([seed.wrapping_add(7); 32]);
        let r = ED25519_BASEPOINT_POINT * nonce + EIGHT_TORSION[1];
        let r_bytes = r.compress().to_bytes();
        let k = challenge(&r_bytes, &public.bytes, message);
        let s = nonce + k * secret;
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&r_bytes);
        signature[32..].copy_from_slice(s.as_bytes());
        (public, signature)
    }

    #[test]
    fn honest_signatures_verify_and_changes_do_not() {
        let (public, signature) = signed(1, b"pay 5");
        assert!(public.verify(b"pay 5", &signature));
        assert!(!public.verify(b"pay 6", &signature));
        let (_, other) = key(2);
        assert!(!other.verify(b"pay 5", &signature));
        for byte in 0..64 {
            let mut altered = signature;
            altered[byte] ^= 1;
            assert!(!public.verify(b"pay 5", &altered), "byte {byte}");
        }
    }

    #[test]
    fn the_rule_agrees_with_strict_verification_on_honest_signatures() {
        for seed in 0..32u8 {
            let message = [seed; 40];
            let (signing, public) = key(seed);
            let signature = signing.sign(&message);
            assert!(
                signing
                    .verifying_key()
                    .verify_strict(&message, &signature)
                    .is_ok()
            );
            assert!(public.verify(&message, &signature.to_bytes()));
        }
    }

    #[test]
    fn a_non_canonical_s_is_refused() {
        let (public, signature) = signed(3, b"m");
        // s + ℓ encodes the same scalar mod ℓ but is not canonical.
        let ell: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut s = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(signature[32 + i]) + u16::from(ell[i]) + carry;
            s[i] = sum as u8;
            carry = sum >> 8;
        }
        let mut altered = signature;
        altered[32..].copy_from_slice(&s);
        assert!(!public.verify(b"m", &altered));
    }

    #[test]
    fn small_order_and_non_canonical_keys_are_refused() {
        for point in EIGHT_TORSION {
            assert_eq!(PublicKey::from_bytes(&point.compress().to_bytes()), None);
        }
        // y = p (non-canonical 0), y = p + 1 (non-canonical 1).
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert_eq!(decompress_canonical(&p), None);
        p[0] = 0xee;
        assert_eq!(decompress_canonical(&p), None);
        // The identity with its sign bit set.
        let mut negative_zero = [0u8; 32];
        negative_zero[0] = 1;
        negative_zero[31] = 0x80;
        assert_eq!(decompress_canonical(&negative_zero), None);
        negative_zero[31] = 0;
        assert!(decompress_canonical(&negative_zero).is_some());
    }

    #[test]
    fn a_small_order_key_cannot_forge() {
        // With A and R of small order and s = 0 the cofactored equation
        // holds for every message: such keys must be unusable.
        let small = EIGHT_TORSION[1].compress().to_bytes();
        assert!(PublicKey::from_bytes(&small).is_none());
    }

    #[test]
    fn torsioned_signatures_pass_alone_and_in_batches_alike() {
        let (public, signature) = torsioned(4, b"consent");
        let dalek = ed25519_dalek::VerifyingKey::from_bytes(&public.bytes).expect("key");
        assert!(
            dalek
                .verify_strict(
                    b"consent",
                    &ed25519_dalek::Signature::from_bytes(&signature)
                )
                .is_err(),
            "the cofactorless check refuses it"
        );
        assert!(public.verify(b"consent", &signature));
        let (other, honest) = signed(5, b"other");
        let items = [
            Item {
                key: &public,
                message: b"consent",
                signature: &signature,
            },
            Item {
                key: &other,
                message: b"other",
                signature: &honest,
            },
        ];
        assert!(verify_batch(&items));
    }

    #[test]
    fn a_batch_fails_on_any_bad_member_and_bisection_names_it() {
        let messages: Vec<Vec<u8>> = (0..37u8).map(|i| vec![i; 20]).collect();
        let mut signatures: Vec<(PublicKey, [u8; 64])> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| signed(i as u8, m))
            .collect();
        let check = |signatures: &[(PublicKey, [u8; 64])]| {
            let batch: Vec<Item<'_>> = signatures
                .iter()
                .zip(&messages)
                .map(|((key, signature), message)| Item {
                    key,
                    message,
                    signature,
                })
                .collect();
            (verify_batch(&batch), find_invalid(&batch))
        };
        assert_eq!(check(&signatures), (true, vec![]));
        signatures[5].1[40] ^= 4;
        signatures[30].1[3] ^= 1;
        assert_eq!(check(&signatures), (false, vec![5, 30]));
        assert!(verify_batch(&[]));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Batches of honest, torsioned and altered signatures: the batch
        /// verdict is the conjunction of the single verdicts, and bisection
        /// names exactly the members that fail alone.
        #[test]
        fn batch_and_single_verdicts_agree(
            kinds in proptest::collection::vec(0u8..4, 0..24),
        ) {
            let members: Vec<(PublicKey, Vec<u8>, [u8; 64])> = kinds
                .iter()
                .enumerate()
                .map(|(index, kind)| {
                    let message = vec![index as u8; 16];
                    let (key, mut signature) = match kind {
                        1 => torsioned(index as u8, &message),
                        _ => signed(index as u8, &message),
                    };
                    match kind {
                        2 => signature[index % 64] ^= 0x10,
                        3 => signature[63] |= 0xf0,
                        _ => {}
                    }
                    (key, message, signature)
                })
                .collect();
            let items: Vec<Item<'_>> = members
                .iter()
                .map(|(key, message, signature)| Item { key, message, signature })
                .collect();
            let failing: Vec<usize> = (0..items.len()).filter(|&i| !items[i].verify()).collect();
            proptest::prop_assert_eq!(verify_batch(&items), failing.is_empty());
            proptest::prop_assert_eq!(find_invalid(&items), failing);
        }
    }
}
