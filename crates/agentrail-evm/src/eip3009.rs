//! EIP-3009 `transferWithAuthorization`: what x402's `exact` scheme carries
//! on EVM chains. The payer signs an EIP-712 message naming the payee, the
//! amount, a validity window and a random 32-byte nonce; anyone may submit
//! it to the token, which moves the tokens once per `(from, nonce)`.
//!
//! The rules here are the token's own (`contracts/src/TestUSD.sol`, USDC's
//! FiatTokenV2): a 65-byte `r ‖ s ‖ v` signature with `v` 27 or 28 and a
//! low `s` (the malleable twin is refused), valid strictly after
//! `validAfter` and strictly before `validBefore`.

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::{Eip712Domain, SolCall, SolStruct};

use crate::bindings::{TestUSD, TransferWithAuthorization};
use crate::rpc::{Rpc, RpcError};
use crate::wallet::{Call, EvmKey};

/// Half the secp256k1 group order: a higher `s` is refused.
const HALF_ORDER: U256 = U256::from_be_slice(&[
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
]);

/// The token's EIP-712 domain (x402 names `name` and `version` in a
/// requirement's `extra`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenDomain {
    pub name: String,
    pub version: String,
    pub chain_id: u64,
    pub token: Address,
}

impl TokenDomain {
    pub fn eip712(&self) -> Eip712Domain {
        Eip712Domain::new(
            Some(self.name.clone().into()),
            Some(self.version.clone().into()),
            Some(U256::from(self.chain_id)),
            Some(self.token),
            None,
        )
    }
}

/// One authorization's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub from: Address,
    pub to: Address,
    pub value: U256,
    /// Unix seconds; valid strictly after.
    pub valid_after: u64,
    /// Unix seconds; valid strictly before.
    pub valid_before: u64,
    pub nonce: B256,
}

impl Authorization {
    /// The EIP-712 signing hash under `domain`.
    pub fn signing_hash(&self, domain: &TokenDomain) -> B256 {
        self.message().eip712_signing_hash(&domain.eip712())
    }

    fn message(&self) -> TransferWithAuthorization {
        TransferWithAuthorization {
            from: self.from,
            to: self.to,
            value: self.value,
            validAfter: U256::from(self.valid_after),
            validBefore: U256::from(self.valid_before),
            nonce: self.nonce,
        }
    }

    /// `from`'s 65-byte signature (`key` must be `from`'s).
    pub fn sign(&self, domain: &TokenDomain, key: &EvmKey) -> Vec<u8> {
        key.sign_hash_bytes(&self.signing_hash(domain))
    }

    /// Whether `signature` is `from`'s, by the token's rules.
    pub fn check_signature(
        &self,
        domain: &TokenDomain,
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let signer = recover(&self.signing_hash(domain), signature)?;
        if signer != self.from {
            return Err(SignatureError::NotFrom { signer });
        }
        Ok(())
    }

    /// The token call that uses the authorization (the `v, r, s` form
    /// every EIP-3009 token has).
    pub fn transfer_call(&self, token: Address, signature: &[u8]) -> Result<Call, SignatureError> {
        let (r, s, v) = split(signature)?;
        let call = TestUSD::transferWithAuthorizationCall {
            from: self.from,
            to: self.to,
            value: self.value,
            validAfter: U256::from(self.valid_after),
            validBefore: U256::from(self.valid_before),
            nonce: self.nonce,
            v,
            r,
            s,
        };
        Ok(Call {
            to: Some(token),
            data: call.abi_encode(),
        })
    }
}

/// Why a signature is not the payer's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    #[error("the signature is {0} bytes, not 65")]
    Length(usize),
    #[error("the signature's v is {0}, not 27 or 28")]
    RecoveryId(u8),
    #[error("the signature's s is in the upper half of the curve order (malleable)")]
    HighS,
    #[error("the signature does not recover to any key")]
    Unrecoverable,
    #[error("the signature is {signer}'s, not the payer's")]
    NotFrom { signer: Address },
}

fn split(signature: &[u8]) -> Result<(B256, B256, u8), SignatureError> {
    let bytes: &[u8; 65] = signature
        .try_into()
        .map_err(|_| SignatureError::Length(signature.len()))?;
    let r = B256::from_slice(&bytes[..32]);
    let s = B256::from_slice(&bytes[32..64]);
    let v = bytes[64];
    if v != 27 && v != 28 {
        return Err(SignatureError::RecoveryId(v));
    }
    if U256::from_be_bytes(s.0) > HALF_ORDER {
        return Err(SignatureError::HighS);
    }
    Ok((r, s, v))
}

/// The address that signed `digest`, by the token's rules.
pub fn recover(digest: &B256, signature: &[u8]) -> Result<Address, SignatureError> {
    let (r, s, v) = split(signature)?;
    let signature = alloy_primitives::Signature::new(r.into(), s.into(), v == 28);
    signature
        .recover_address_from_prehash(digest)
        .map_err(|_| SignatureError::Unrecoverable)
}

/// A fresh random authorization nonce.
pub fn random_nonce() -> B256 {
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).expect("the system's randomness");
    B256::from(nonce)
}

/// Whether `(authorizer, nonce)` was used (or cancelled) at the token.
pub async fn authorization_used(
    rpc: &Rpc,
    token: Address,
    authorizer: Address,
    nonce: B256,
) -> Result<bool, RpcError> {
    let call = TestUSD::authorizationStateCall { authorizer, nonce };
    let answer = rpc.view(token, &call.abi_encode()).await?;
    TestUSD::authorizationStateCall::abi_decode_returns(&answer).map_err(|e| malformed(&e))
}

/// `owner`'s token balance.
pub async fn balance(rpc: &Rpc, token: Address, owner: Address) -> Result<U256, RpcError> {
    let call = TestUSD::balanceOfCall { owner };
    let answer = rpc.view(token, &call.abi_encode()).await?;
    TestUSD::balanceOfCall::abi_decode_returns(&answer).map_err(|e| malformed(&e))
}

fn malformed(error: &alloy_sol_types::Error) -> RpcError {
    RpcError::Malformed {
        method: "eth_call".into(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> (TokenDomain, Authorization, EvmKey) {
        let key =
            EvmKey::parse("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
                .unwrap();
        let domain = TokenDomain {
            name: "Test USD".into(),
            version: "2".into(),
            chain_id: 31337,
            token: "0x5FbDB2315678afecb367f032d93F642f64180aa3"
                .parse()
                .unwrap(),
        };
        let authorization = Authorization {
            from: key.address(),
            to: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
                .parse()
                .unwrap(),
            value: U256::from(10_000u64),
            valid_after: 0,
            valid_before: 1_900_000_000,
            nonce: B256::repeat_byte(0x11),
        };
        (domain, authorization, key)
    }

    /// docs/protocol.md's vector, as eth-account 0.14 (`encode_typed_data`,
    /// `sign_message`) computes it.
    #[test]
    fn the_known_answer_vector_is_eth_accounts() {
        let (domain, authorization, key) = example();
        assert_eq!(
            authorization.signing_hash(&domain).to_string(),
            "0x86147a9cca5d76c89a1f2016ebf6ccd42de981280dba6ac89098821108e5e5c1"
        );
        assert_eq!(
            format!("0x{}", hex::encode(authorization.sign(&domain, &key))),
            "0x1b988cd0b74a93bd3a7114d05bb1843665500517f2ec7388e3c1fe63c6ecf1c50079d02baaf06095a95f4e8fb3b6424fcf8076f30231585687945be1011ac6d61b"
        );
    }

    #[test]
    fn a_signature_recovers_to_its_signer_and_nothing_else_passes() {
        let (domain, authorization, key) = example();
        let signature = authorization.sign(&domain, &key);
        assert_eq!(signature.len(), 65);
        authorization.check_signature(&domain, &signature).unwrap();

        let other = Authorization {
            value: U256::from(10_001u64),
            ..authorization
        };
        assert!(matches!(
            other.check_signature(&domain, &signature),
            Err(SignatureError::NotFrom { .. })
        ));
        let elsewhere = TokenDomain {
            chain_id: 1,
            ..domain.clone()
        };
        assert!(
            authorization
                .check_signature(&elsewhere, &signature)
                .is_err()
        );
        assert_eq!(
            authorization.check_signature(&domain, &signature[..64]),
            Err(SignatureError::Length(64))
        );
        let mut bad_v = signature.clone();
        bad_v[64] = 1;
        assert_eq!(
            authorization.check_signature(&domain, &bad_v),
            Err(SignatureError::RecoveryId(1))
        );
        // The malleable twin: s' = n − s, v flipped.
        let n = U256::from_be_slice(&[
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c,
            0xd0, 0x36, 0x41, 0x41,
        ]);
        let s = U256::from_be_slice(&signature[32..64]);
        let mut twin = signature.clone();
        twin[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
        twin[64] = if signature[64] == 27 { 28 } else { 27 };
        assert_eq!(
            authorization.check_signature(&domain, &twin),
            Err(SignatureError::HighS)
        );
    }
}
