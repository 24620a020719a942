//! Calls to the vault and its token: reads, deployment, deposits,
//! authorized withdrawals and anchors.

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::{Eip712Domain, SolCall, SolEvent, SolStruct, SolValue};

use crate::bindings::{
    AgentrailVault, ReceiveWithAuthorization, TEST_USD_ARTIFACT, TestUSD, VAULT_ARTIFACT,
    Withdrawal, creation_code,
};
use crate::rpc::{Log, LogQuery, Receipt, Rpc, RpcError};
use crate::wallet::{Call, EvmKey, WalletError, transact};

/// Why a vault call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    #[error(transparent)]
    Wallet(#[from] WalletError),
    #[error("the contract's answer to {call} does not decode: {reason}")]
    Decode { call: &'static str, reason: String },
    #[error("{0}")]
    Deploy(String),
}

impl From<RpcError> for VaultError {
    fn from(e: RpcError) -> VaultError {
        VaultError::Wallet(WalletError::Rpc(e))
    }
}

/// A deployed vault on one chain.
#[derive(Debug)]
pub struct Vault<'a> {
    pub rpc: &'a Rpc,
    pub chain_id: u64,
    pub address: Address,
}

/// What `chain deploy` created.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Deployment {
    pub chain_id: u64,
    pub token: Address,
    pub vault: Address,
    pub operator: Address,
    /// The block the vault was created in: where the follower starts.
    pub block: u64,
}

/// The EIP-712 domain of the vault's withdrawal authorizations.
pub fn withdrawal_domain(chain_id: u64, vault: Address) -> Eip712Domain {
    Eip712Domain::new(
        Some("AgentrailVault".into()),
        Some("1".into()),
        Some(U256::from(chain_id)),
        Some(vault),
        None,
    )
}

/// The EIP-712 domain of TestUSD's EIP-2612 and EIP-3009 signatures.
pub fn token_domain(chain_id: u64, token: Address) -> Eip712Domain {
    Eip712Domain::new(
        Some("Test USD".into()),
        Some("2".into()),
        Some(U256::from(chain_id)),
        Some(token),
        None,
    )
}

/// Reads a view function's answer.
pub async fn view<C: SolCall>(rpc: &Rpc, to: Address, call: C) -> Result<C::Return, VaultError> {
    let answer = rpc.view(to, &call.abi_encode()).await?;
    C::abi_decode_returns(&answer).map_err(|e| VaultError::Decode {
        call: C::SIGNATURE,
        reason: e.to_string(),
    })
}

/// Deploys TestUSD and a vault whose operator is `operator`, paying from
/// `deployer`, and mints `mint` test tokens to the deployer.
pub async fn deploy(
    rpc: &Rpc,
    deployer: &EvmKey,
    operator: Address,
    mint: U256,
) -> Result<Deployment, VaultError> {
    let chain_id = rpc.chain_id().await?;
    let token_code = creation_code(TEST_USD_ARTIFACT).map_err(VaultError::Deploy)?;
    let created = |receipt: Receipt, what: &str| {
        receipt
            .contract_address
            .ok_or_else(|| VaultError::Deploy(format!("the {what} creation made no contract")))
    };
    let receipt = transact(
        rpc,
        chain_id,
        deployer,
        Call {
            to: None,
            data: token_code,
        },
    )
    .await?;
    let token = created(receipt, "token")?;
    let mut vault_code = creation_code(VAULT_ARTIFACT).map_err(VaultError::Deploy)?;
    vault_code.extend_from_slice(&(token, operator).abi_encode_params());
    let receipt = transact(
        rpc,
        chain_id,
        deployer,
        Call {
            to: None,
            data: vault_code,
        },
    )
    .await?;
    let block = receipt.block_number;
    let vault = created(receipt, "vault")?;
    if !mint.is_zero() {
        mint_to(rpc, chain_id, deployer, token, deployer.address(), mint).await?;
    }
    Ok(Deployment {
        chain_id,
        token,
        vault,
        operator,
        block,
    })
}

/// Mints test tokens (TestUSD's `mint` is open to anyone).
pub async fn mint_to(
    rpc: &Rpc,
    chain_id: u64,
    payer: &EvmKey,
    token: Address,
    to: Address,
    amount: U256,
) -> Result<Receipt, VaultError> {
    let data = TestUSD::mintCall { to, amount }.abi_encode();
    Ok(transact(
        rpc,
        chain_id,
        payer,
        Call {
            to: Some(token),
            data,
        },
    )
    .await?)
}

/// A token balance.
pub async fn balance_of(rpc: &Rpc, token: Address, owner: Address) -> Result<U256, VaultError> {
    view(rpc, token, TestUSD::balanceOfCall { owner }).await
}

/// A `Deposited` log, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositLog {
    pub id: U256,
    pub from: Address,
    pub account: B256,
    pub amount: U256,
    pub log: Log,
}

impl DepositLog {
    pub fn decode(log: Log) -> Result<DepositLog, String> {
        let event =
            AgentrailVault::Deposited::decode_raw_log(log.topics.iter().copied(), &log.data)
                .map_err(|e| format!("a Deposited log does not decode: {e}"))?;
        Ok(DepositLog {
            id: event.id,
            from: event.from,
            account: event.account,
            amount: event.amount,
            log,
        })
    }
}

impl Vault<'_> {
    pub async fn token(&self) -> Result<Address, VaultError> {
        view(self.rpc, self.address, AgentrailVault::tokenCall {}).await
    }

    pub async fn operator(&self) -> Result<Address, VaultError> {
        view(self.rpc, self.address, AgentrailVault::operatorCall {}).await
    }

    /// The anchored (size, root).
    pub async fn anchored(&self) -> Result<(u64, B256), VaultError> {
        let answer = view(self.rpc, self.address, AgentrailVault::anchoredCall {}).await?;
        Ok((answer.size, answer.root))
    }

    pub async fn withdrawn(&self, id: u64) -> Result<bool, VaultError> {
        view(
            self.rpc,
            self.address,
            AgentrailVault::withdrawnCall { id: U256::from(id) },
        )
        .await
    }

    /// `Deposited` logs in blocks `from..=to`.
    pub async fn deposits(&self, from: u64, to: u64) -> Result<Vec<DepositLog>, VaultError> {
        let logs = self
            .rpc
            .logs(LogQuery {
                address: self.address,
                topics: &[Some(AgentrailVault::Deposited::SIGNATURE_HASH)],
                from,
                to,
            })
            .await?;
        logs.into_iter()
            .filter(|log| !log.removed && log.address == self.address)
            .map(|log| {
                DepositLog::decode(log).map_err(|reason| VaultError::Decode {
                    call: "Deposited",
                    reason,
                })
            })
            .collect()
    }

    /// The `Withdrawn` log of withdrawal `id`, if the vault paid it.
    pub async fn withdrawal_log(
        &self,
        id: u64,
        from: u64,
        to: u64,
    ) -> Result<Option<Log>, VaultError> {
        let logs = self
            .rpc
            .logs(LogQuery {
                address: self.address,
                topics: &[
                    Some(AgentrailVault::Withdrawn::SIGNATURE_HASH),
                    Some(B256::from(U256::from(id))),
                ],
                from,
                to,
            })
            .await?;
        Ok(logs
            .into_iter()
            .find(|log| !log.removed && log.address == self.address))
    }

    /// Deposits `amount` to `account` from `payer`'s tokens with one
    /// transaction: an EIP-3009 authorization the payer signs, which only
    /// this vault can redeem, for this account.
    pub async fn deposit_with_authorization(
        &self,
        payer: &EvmKey,
        account: B256,
        amount: U256,
    ) -> Result<Receipt, VaultError> {
        let token = self.token().await?;
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt).expect("the system's randomness");
        let salt = B256::from(salt);
        let nonce = view(
            self.rpc,
            self.address,
            AgentrailVault::depositNonceCall { account, salt },
        )
        .await?;
        let valid_before = U256::from(unix_now() + 3_600);
        let authorization = ReceiveWithAuthorization {
            from: payer.address(),
            to: self.address,
            value: amount,
            validAfter: U256::ZERO,
            validBefore: valid_before,
            nonce,
        };
        let digest = authorization.eip712_signing_hash(&token_domain(self.chain_id, token));
        let signature = payer.sign_hash(&digest);
        let data = AgentrailVault::depositWithAuthorizationCall {
            account,
            from: payer.address(),
            amount,
            validAfter: U256::ZERO,
            validBefore: valid_before,
            salt,
            v: 27 + u8::from(signature.v()),
            r: signature.r().into(),
            s: signature.s().into(),
        }
        .abi_encode();
        Ok(transact(
            self.rpc,
            self.chain_id,
            payer,
            Call {
                to: Some(self.address),
                data,
            },
        )
        .await?)
    }

    /// Deposits with an approval and `deposit` (two transactions), as any
    /// ERC-20 allows.
    pub async fn deposit_with_approval(
        &self,
        payer: &EvmKey,
        account: B256,
        amount: U256,
    ) -> Result<Receipt, VaultError> {
        let token = self.token().await?;
        let approve = TestUSD::approveCall {
            spender: self.address,
            value: amount,
        }
        .abi_encode();
        transact(
            self.rpc,
            self.chain_id,
            payer,
            Call {
                to: Some(token),
                data: approve,
            },
        )
        .await?;
        let data = AgentrailVault::depositCall { account, amount }.abi_encode();
        Ok(transact(
            self.rpc,
            self.chain_id,
            payer,
            Call {
                to: Some(self.address),
                data,
            },
        )
        .await?)
    }

    /// The operator's signature over a withdrawal.
    pub fn authorize_withdrawal(&self, operator: &EvmKey, withdrawal: &Withdrawal) -> Vec<u8> {
        let digest =
            withdrawal.eip712_signing_hash(&withdrawal_domain(self.chain_id, self.address));
        operator.sign_hash_bytes(&digest)
    }

    /// The `withdraw` call of an authorized withdrawal.
    pub fn withdraw_call(&self, withdrawal: &Withdrawal, signature: Vec<u8>) -> Call {
        let data = AgentrailVault::withdrawCall {
            id: withdrawal.id,
            account: withdrawal.account,
            to: withdrawal.to,
            amount: withdrawal.amount,
            deadline: withdrawal.deadline,
            signature: signature.into(),
        }
        .abi_encode();
        Call {
            to: Some(self.address),
            data,
        }
    }

    /// Sends `withdraw` for an authorized withdrawal, from `sender` (anyone
    /// may send it; the vault checks the operator's signature), and waits
    /// for it.
    pub async fn withdraw(
        &self,
        sender: &EvmKey,
        withdrawal: &Withdrawal,
        signature: Vec<u8>,
    ) -> Result<Receipt, VaultError> {
        let call = self.withdraw_call(withdrawal, signature);
        Ok(transact(self.rpc, self.chain_id, sender, call).await?)
    }

    /// The `anchor` call (operator only).
    pub fn anchor_call(&self, size: u64, root: B256) -> Call {
        Call {
            to: Some(self.address),
            data: AgentrailVault::anchorCall { size, root }.abi_encode(),
        }
    }

    /// Anchors the log's checkpoint and waits for it.
    pub async fn anchor(
        &self,
        operator: &EvmKey,
        size: u64,
        root: B256,
    ) -> Result<Receipt, VaultError> {
        let call = self.anchor_call(size, root);
        Ok(transact(self.rpc, self.chain_id, operator, call).await?)
    }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The known-answer vector of docs/protocol.md ("Withdrawal
    /// authorizations"): the chain tests also check this digest against
    /// the contract's own `withdrawalDigest`.
    #[test]
    fn the_withdrawal_digest_and_signature_match_the_documented_vector() {
        let vault: Address = "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512"
            .parse()
            .unwrap();
        let withdrawal = Withdrawal {
            id: U256::from(1),
            account: B256::repeat_byte(0x11),
            to: "0x00000000000000000000000000000000000a11ce"
                .parse()
                .unwrap(),
            amount: U256::from(20_000_000u64),
            deadline: U256::from(1_800_000_000u64),
        };
        let digest = withdrawal.eip712_signing_hash(&withdrawal_domain(31337, vault));
        let key =
            EvmKey::parse("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
                .unwrap();
        let signature = key.sign_hash_bytes(&digest);
        // The signature is also what `cast wallet sign --data` (Foundry)
        // gives for the same typed data and key.
        assert_eq!(
            digest.to_string(),
            "0x57b934514422b9cb2e577bd607e6d8ad02fd37758dffdcb766ef386454b2083c"
        );
        assert_eq!(
            format!("0x{}", hex::encode(signature)),
            "0x3164d5dd0071aad49b61e5ad9a4d0762682f79f9d5acdaa679c2f744fc4ab86e2f4010563e436b784bbdf7091fc4e7e25108461b447e5c9477e1e776c12e9f391c"
        );
    }
}
