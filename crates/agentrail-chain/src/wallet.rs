//! An EVM account: its key file, EIP-712 signatures, and transactions it
//! signs and sends (EIP-1559, encoded by `alloy-consensus`).

use std::path::Path;
use std::time::Duration;

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256};
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
    #[error("transaction {0} was not mined within {MINE_TIMEOUT:?}")]
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
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit,
        max_fee_per_gas: base.saturating_mul(2).saturating_add(tip),
        max_priority_fee_per_gas: tip,
        to: call.to.map_or(TxKind::Create, TxKind::Call),
        value: U256::ZERO,
        access_list: Default::default(),
        input: Bytes::from(call.data),
    };
    let signature = key.sign_hash(&tx.signature_hash());
    let signed = tx.into_signed(signature);
    let mut raw = Vec::new();
    signed.eip2718_encode(&mut raw);
    let hash = *signed.hash();
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

/// Waits for the receipt of `tx`.
pub async fn wait(rpc: &Rpc, tx: B256) -> Result<Receipt, WalletError> {
    let deadline = tokio::time::Instant::now() + MINE_TIMEOUT;
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
