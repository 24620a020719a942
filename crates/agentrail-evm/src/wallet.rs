//! An EVM account: its key file, EIP-712 signatures, and transactions it
//! signs and sends.
//!
//! Transactions are EIP-1559 (type 2), RLP-encoded here with `alloy-rlp`:
//! `alloy-consensus` does the same for every transaction type and brought
//! 26 crates (two `darling`s, `serde_with`, `alloy-trie`, every EIP's
//! types) for these dozen lines. A test checks the bytes against Foundry's
//! `cast mktx` for the same fields and key.

use std::path::Path;
use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes, Signature, U256, keccak256};
use alloy_rlp::{Encodable, Header};
use k256::ecdsa::SigningKey;

use crate::rpc::{Receipt, Rpc, RpcError};

/// How long a sent transaction may take to be mined.
const MINE_TIMEOUT: Duration = Duration::from_secs(120);
const RECEIPT_POLL: Duration = Duration::from_millis(100);

/// Why an EVM key or transaction failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    #[error("{path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The transaction was mined and reverted.
    #[error("transaction {tx} reverted")]
    Reverted { tx: B256, receipt: Box<Receipt> },
    #[error("transaction {0} was not mined in time")]
    NotMined(B256),
}

/// A secp256k1 key that signs for one EVM address.
#[derive(Clone)]
pub struct EvmKey {
    key: SigningKey,
    address: Address,
}

impl std::fmt::Debug for EvmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EvmKey({})", self.address)
    }
}

impl EvmKey {
    /// A key from its 32 secret bytes.
    pub fn from_bytes(secret: &[u8; 32]) -> Result<EvmKey, String> {
        let key = SigningKey::from_bytes(secret.into())
            .map_err(|_| "not a secp256k1 secret key".to_owned())?;
        let address = Address::from_private_key(&key);
        Ok(EvmKey { key, address })
    }

    /// A new random key.
    pub fn generate() -> EvmKey {
        loop {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).expect("the system's randomness");
            if let Ok(key) = EvmKey::from_bytes(&secret) {
                return key;
            }
        }
    }

    /// Reads a key file: the secret as 64 hex digits (an optional `0x`),
    /// as `cast wallet` and anvil print them.
    pub fn read(path: &Path) -> Result<EvmKey, WalletError> {
        let fail = |reason: String| WalletError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        Self::parse(&text).map_err(fail)
    }

    /// Parses the text of a key file.
    pub fn parse(text: &str) -> Result<EvmKey, String> {
        let text = text.trim();
        let digits = text.strip_prefix("0x").unwrap_or(text);
        let mut secret = [0u8; 32];
        hex::decode_to_slice(digits, &mut secret)
            .map_err(|_| "an EVM key file holds 32 bytes as 64 hex digits".to_owned())?;
        EvmKey::from_bytes(&secret)
    }

    /// Writes the key file (mode 0600), refusing to replace one.
    pub fn write(&self, path: &Path) -> Result<(), WalletError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let fail = |e: std::io::Error| WalletError::KeyFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(fail)?;
        let text = format!("{}\n", self.secret_hex());
        file.write_all(text.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)
    }

    /// The secret as a key file holds it: `0x` and 64 hex digits.
    pub fn secret_hex(&self) -> String {
        format!("0x{}", hex::encode(self.key.to_bytes()))
    }

    pub fn address(&self) -> Address {
        self.address
    }

    /// Signs a 32-byte digest (an EIP-712 signing hash, a transaction's).
    pub fn sign_hash(&self, digest: &B256) -> Signature {
        let (signature, recovery) = self
            .key
            .sign_prehash_recoverable(digest.as_slice())
            .expect("a 32-byte digest signs");
        Signature::from_signature_and_parity(signature, recovery.is_y_odd())
    }

    /// The 65-byte `r ‖ s ‖ v` form contracts take (v = 27 or 28).
    pub fn sign_hash_bytes(&self, digest: &B256) -> Vec<u8> {
        self.sign_hash(digest).as_bytes().to_vec()
    }
}

/// A contract call or creation to send.
#[derive(Clone, Debug)]
pub struct Call {
    /// `None` creates a contract from `data`.
    pub to: Option<Address>,
    pub data: Vec<u8>,
}

/// Signs and sends `call` from `key`, and waits for its receipt. A mined
/// transaction that reverted is an error carrying the receipt.
pub async fn transact(
    rpc: &Rpc,
    chain_id: u64,
    key: &EvmKey,
    call: Call,
) -> Result<Receipt, WalletError> {
    let tx = send(rpc, chain_id, key, call).await?;
    wait(rpc, tx).await
}

/// Signs and sends `call`, returning the transaction hash without
/// waiting for it to be mined.
pub async fn send(rpc: &Rpc, chain_id: u64, key: &EvmKey, call: Call) -> Result<B256, WalletError> {
    let nonce = rpc.pending_nonce(key.address()).await?;
    let estimate = rpc.estimate_gas(key.address(), call.to, &call.data).await?;
    // A margin over the estimate: state can move between the estimate and
    // the block.
    let gas_limit = estimate.saturating_add(estimate / 5).saturating_add(10_000);
    let base = rpc.base_fee().await?;
    let tip = rpc.priority_fee().await?;
    let tx = Eip1559 {
        chain_id,
        nonce,
        max_priority_fee_per_gas: tip,
        max_fee_per_gas: base.saturating_mul(2).saturating_add(tip),
        gas_limit,
        to: call.to,
        data: call.data,
    };
    let (raw, hash) = tx.sign(key);
    let answered = rpc.send_raw(&raw).await?;
    if answered != hash {
        return Err(WalletError::Rpc(RpcError::Malformed {
            method: "eth_sendRawTransaction".into(),
            reason: format!("the endpoint answered {answered} for transaction {hash}"),
        }));
    }
    tracing::debug!(%hash, nonce, "transaction sent");
    Ok(hash)
}

/// The fields of an EIP-1559 transaction agentrail sends (no value, no
/// access list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eip1559 {
    pub chain_id: u64,
    pub nonce: u64,
    pub max_priority_fee_per_gas: u128,
    pub max_fee_per_gas: u128,
    pub gas_limit: u64,
    /// `None` creates a contract.
    pub to: Option<Address>,
    pub data: Vec<u8>,
}

impl Eip1559 {
    /// The RLP list of the fields, with the signature's when given.
    fn rlp(&self, signature: Option<&Signature>) -> Vec<u8> {
        let to = self
            .to
            .map_or(Bytes::new(), |to| Bytes::copy_from_slice(to.as_slice()));
        let data = Bytes::copy_from_slice(&self.data);
        let access_list = Header {
            list: true,
            payload_length: 0,
        };
        let mut payload = Vec::new();
        self.chain_id.encode(&mut payload);
        self.nonce.encode(&mut payload);
        self.max_priority_fee_per_gas.encode(&mut payload);
        self.max_fee_per_gas.encode(&mut payload);
        self.gas_limit.encode(&mut payload);
        to.encode(&mut payload);
        U256::ZERO.encode(&mut payload);
        data.encode(&mut payload);
        access_list.encode(&mut payload);
        if let Some(signature) = signature {
            u8::from(signature.v()).encode(&mut payload);
            signature.r().encode(&mut payload);
            signature.s().encode(&mut payload);
        }
        let mut out = vec![2u8];
        Header {
            list: true,
            payload_length: payload.len(),
        }
        .encode(&mut out);
        out.extend_from_slice(&payload);
        out
    }

    /// What the sender signs: keccak256(0x02 ‖ rlp(fields)).
    pub fn signing_hash(&self) -> B256 {
        keccak256(self.rlp(None))
    }

    /// The signed transaction's bytes, and its hash.
    pub fn sign(&self, key: &EvmKey) -> (Vec<u8>, B256) {
        let signature = key.sign_hash(&self.signing_hash());
        let raw = self.rlp(Some(&signature));
        let hash = keccak256(&raw);
        (raw, hash)
    }
}

/// Waits for the receipt of `tx`.
pub async fn wait(rpc: &Rpc, tx: B256) -> Result<Receipt, WalletError> {
    wait_within(rpc, tx, MINE_TIMEOUT).await
}

/// Waits at most `timeout` for the receipt of `tx` ([`WalletError::NotMined`]
/// after it).
pub async fn wait_within(rpc: &Rpc, tx: B256, timeout: Duration) -> Result<Receipt, WalletError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match rpc.receipt(tx).await {
            Ok(Some(receipt)) => {
                return if receipt.status == 1 {
                    Ok(receipt)
                } else {
                    Err(WalletError::Reverted {
                        tx,
                        receipt: Box::new(receipt),
                    })
                };
            }
            Ok(None) => {}
            Err(e) if e.is_transient() => {}
            Err(e) => return Err(e.into()),
        }
        if tokio::time::Instant::now() > deadline {
            return Err(WalletError::NotMined(tx));
        }
        tokio::time::sleep(RECEIPT_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes Foundry's `cast mktx --private-key <anvil's first key>
    /// --chain 31337 --nonce 7 --gas-limit 100000 --gas-price 3000000000
    /// --priority-gas-price 1000000000 0x…a11ce 'deposit(bytes32,uint256)'
    /// 0x11…11 20000000` prints.
    #[test]
    fn a_signed_transaction_is_the_one_cast_makes() {
        let key =
            EvmKey::parse("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
                .unwrap();
        let mut data = hex::decode("1de26e16").unwrap();
        data.extend_from_slice(&[0x11; 32]);
        data.extend_from_slice(&U256::from(20_000_000u64).to_be_bytes::<32>());
        let tx = Eip1559 {
            chain_id: 31337,
            nonce: 7,
            max_priority_fee_per_gas: 1_000_000_000,
            max_fee_per_gas: 3_000_000_000,
            gas_limit: 100_000,
            to: Some(
                "0x00000000000000000000000000000000000a11ce"
                    .parse()
                    .unwrap(),
            ),
            data,
        };
        let (raw, hash) = tx.sign(&key);
        assert_eq!(
            format!("0x{}", hex::encode(&raw)),
            "0x02f8b2827a6907843b9aca0084b2d05e00830186a09400000000000000000000000000000000000a11ce80b8441de26e1611111111111111111111111111111111111111111111111111111111111111110000000000000000000000000000000000000000000000000000000001312d00c001a0e121fffd9f9683e0d2b9327eb78a3c26b05fa6c40b62e15111d8fcd0ba35baffa04adc94dce22541b4cf453571f772c3ef5d859c888d225abf3406fe9be83d8454"
        );
        assert_eq!(hash, keccak256(&raw));
    }
}
