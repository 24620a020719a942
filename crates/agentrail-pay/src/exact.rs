//! x402's `exact` scheme on EVM chains: one EIP-3009
//! `transferWithAuthorization` of the token per payment, checked here and
//! settled on chain.
//!
//! [`check`] is everything that needs no chain: the requirement the client
//! echoed, the recipient, the amount (exactly the price: never more), the
//! validity window and the EIP-712 signature. A [`Settler`] adds what needs
//! the chain (the nonce unused, the payer's balance) and sends the
//! authorization from its own key, which pays the gas; it is what
//! `agentrail facilitator` serves ([`crate::facilitator`]) and what a
//! paywall settling by itself uses.
//!
//! Settling is idempotent per authorization, by the chain itself: the token
//! moves the money once per `(from, nonce)`, and a settle of an
//! authorization already used answers the transaction that used it (found
//! by the token's `AuthorizationUsed` event), not an error and never a
//! second transfer. A transaction sent but not yet mined within
//! [`Settler::confirm_timeout`] answers x402's `settlement_pending` with its
//! hash; asking again waits for that one instead of sending another.
//!
//! Refusal codes are x402's (`mechanisms/evm/constants.py` of the x402
//! SDKs), so x402 clients and servers understand them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use agentrail_core::Amount;
use agentrail_evm::alloy_primitives::{Address, B256, U256};
use agentrail_evm::alloy_sol_types::{SolError, SolEvent};
use agentrail_evm::bindings::TestUSD;
use agentrail_evm::eip3009::{self, Authorization, SignatureError, TokenDomain};
use agentrail_evm::rpc::LogQuery;
use agentrail_evm::wallet::{self, WalletError};
use agentrail_evm::{EvmKey, Rpc, RpcError};

use crate::x402::{
    self, ExactAuthorization, PaymentPayload, PaymentRequirements, RequirementExtra,
};

/// A `validBefore` must leave at least this many seconds to settle in
/// (x402's facilitators use the same margin).
pub const VALID_BEFORE_MARGIN_SECONDS: u64 = 6;
/// How far past the requirement's timeout a `validBefore` may reach (clock
/// skew between payer and payee).
pub const VALID_BEFORE_SLACK_SECONDS: u64 = 60;
/// How far back, in blocks, the transaction that used an authorization is
/// looked for.
const USED_LOOKBACK_BLOCKS: u64 = 100_000;

/// What a payee offers for `exact`: the token, its EIP-712 domain and the
/// address paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExactTerms {
    pub domain: TokenDomain,
    pub pay_to: Address,
    /// How long an authorization may stay valid.
    pub max_timeout_seconds: u64,
}

impl ExactTerms {
    /// `eip155:<chain id>`, x402's name of the chain.
    pub fn network(&self) -> String {
        network(self.domain.chain_id)
    }

    /// The requirement of a call priced `amount` (atomic units of the
    /// token).
    pub fn requirements(&self, amount: Amount) -> PaymentRequirements {
        PaymentRequirements {
            scheme: x402::EXACT.into(),
            network: self.network(),
            asset: self.domain.token.to_checksum(None),
            pay_to: self.pay_to.to_checksum(None),
            amount,
            max_timeout_seconds: self.max_timeout_seconds,
            extra: RequirementExtra {
                name: Some(self.domain.name.clone()),
                version: Some(self.domain.version.clone()),
                ..RequirementExtra::default()
            },
        }
    }
}

/// x402's name of an EVM chain.
pub fn network(chain_id: u64) -> String {
    format!("eip155:{chain_id}")
}

/// Why an `exact` payment was refused or not settled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExactError {
    #[error("the payment is not for the exact scheme")]
    UnsupportedScheme,
    #[error("the payment is for network {0:?}, not this requirement's")]
    NetworkMismatch(String),
    #[error("the requirement names no EIP-712 domain (extra.name and extra.version)")]
    MissingDomain,
    #[error("the payment does not answer this requirement: {0}")]
    RequirementsMismatch(String),
    #[error("the payment is malformed: {0}")]
    Payload(String),
    #[error("the authorization pays {0}, not the payee")]
    RecipientMismatch(String),
    #[error("this facilitator settles payments to its own payees only, not to {0}")]
    RecipientNotServed(Address),
    #[error("this facilitator settles its own tokens only, not {0}")]
    AssetNotServed(Address),
    #[error("the payee's store: {0}")]
    Storage(String),
    #[error("the authorization moves {value}, not the price of {amount}")]
    ValueMismatch { value: String, amount: Amount },
    #[error("the authorization expires at {valid_before}, too soon to settle (now {now})")]
    ValidBefore { valid_before: u64, now: u64 },
    #[error("the authorization is valid only after {valid_after} (now {now})")]
    ValidAfter { valid_after: u64, now: u64 },
    #[error("the authorization's signature: {0}")]
    Signature(#[from] SignatureError),
    #[error("the authorization was already used")]
    NonceUsed,
    #[error("the payer holds {balance} of the token, less than {value}")]
    InsufficientBalance { balance: U256, value: U256 },
    #[error("the settlement transaction {tx} is not confirmed yet; ask again")]
    Pending { tx: B256 },
    #[error("the settlement failed: {0}")]
    TransactionFailed(String),
    #[error("the chain is unreachable: {0}")]
    Chain(String),
    #[error("a request with this payment is being served; retry when it is answered")]
    InProgress,
    #[error("the payment identifier is not x402's (16 to 128 of a-z, A-Z, 0-9, _ and -)")]
    IdentifierInvalid,
    #[error("the payment identifier was used by another payment")]
    IdentifierConflict,
    #[error(
        "the request paid under this payment identifier was served and retried as often as allowed; pay again"
    )]
    IdentifierSpent,
    /// A remote facilitator's refusal, with its code.
    #[error("the facilitator refused: {message}")]
    Remote { code: String, message: String },
}

impl ExactError {
    /// The stable code: x402's where it has one.
    pub fn code(&self) -> &str {
        match self {
            ExactError::UnsupportedScheme => "unsupported_scheme",
            ExactError::NetworkMismatch(_) => "network_mismatch",
            ExactError::MissingDomain => "missing_eip712_domain",
            ExactError::RequirementsMismatch(_) => "invalid_payment_requirements",
            ExactError::Payload(_) => "invalid_payload",
            ExactError::RecipientMismatch(_) => "invalid_exact_evm_payload_recipient_mismatch",
            ExactError::RecipientNotServed(_) => "recipient_not_served",
            ExactError::AssetNotServed(_) => "asset_not_served",
            ExactError::Storage(_) => "payee_storage",
            ExactError::ValueMismatch { .. } => {
                "invalid_exact_evm_payload_authorization_value_mismatch"
            }
            ExactError::ValidBefore { .. } => {
                "invalid_exact_evm_payload_authorization_valid_before"
            }
            ExactError::ValidAfter { .. } => "invalid_exact_evm_payload_authorization_valid_after",
            ExactError::Signature(_) => "invalid_exact_evm_payload_signature",
            ExactError::NonceUsed => "invalid_exact_evm_nonce_already_used",
            ExactError::InsufficientBalance { .. } => "invalid_exact_evm_insufficient_balance",
            ExactError::Pending { .. } => "settlement_pending",
            ExactError::TransactionFailed(_) => "transaction_failed",
            ExactError::Chain(_) => "chain_unavailable",
            ExactError::InProgress => "payment_in_progress",
            ExactError::IdentifierInvalid => "invalid_payment_identifier",
            ExactError::IdentifierConflict => "payment_identifier_conflict",
            ExactError::IdentifierSpent => "payment_identifier_spent",
            ExactError::Remote { code, .. } => code,
        }
    }

    /// The transaction of a settlement still pending, or `""`.
    pub fn pending_transaction(&self) -> String {
        match self {
            ExactError::Pending { tx } => tx.to_string(),
            _ => String::new(),
        }
    }

    /// Whether the trouble is the settling side's, not the payment's (a
    /// server answers 503 and the client may retry the same payment).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ExactError::Chain(_)
                | ExactError::Pending { .. }
                | ExactError::InProgress
                | ExactError::Storage(_)
        )
    }
}

impl From<RpcError> for ExactError {
    fn from(error: RpcError) -> ExactError {
        ExactError::Chain(error.to_string())
    }
}

/// A payment that passed [`check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub authorization: Authorization,
    pub signature: Vec<u8>,
    pub domain: TokenDomain,
}

impl Checked {
    /// The key that names this authorization: `from ‖ nonce`, hex.
    pub fn key(&self) -> String {
        format!("{}:{}", self.authorization.from, self.authorization.nonce)
    }

    /// The payer, checksummed.
    pub fn payer(&self) -> String {
        self.authorization.from.to_checksum(None)
    }
}

/// Checks `payload` against `requirements` at `now` (Unix seconds),
/// without the chain.
pub fn check(
    requirements: &PaymentRequirements,
    payload: &PaymentPayload,
    now: u64,
) -> Result<Checked, ExactError> {
    if requirements.scheme != x402::EXACT || payload.scheme() != Some(x402::EXACT) {
        return Err(ExactError::UnsupportedScheme);
    }
    if payload.network() != Some(requirements.network.as_str()) {
        return Err(ExactError::NetworkMismatch(
            payload.network().unwrap_or_default().to_owned(),
        ));
    }
    let chain_id = requirements
        .network
        .strip_prefix("eip155:")
        .and_then(|id| id.parse::<u64>().ok())
        .ok_or_else(|| ExactError::NetworkMismatch(requirements.network.clone()))?;
    let (Some(name), Some(version)) = (&requirements.extra.name, &requirements.extra.version)
    else {
        return Err(ExactError::MissingDomain);
    };
    let token = parse_address("asset", &requirements.asset)?;
    let pay_to = parse_address("payTo", &requirements.pay_to)?;
    if let Some(accepted) = &payload.accepted {
        let same = accepted.amount == requirements.amount
            && accepted.asset.eq_ignore_ascii_case(&requirements.asset)
            && accepted.pay_to.eq_ignore_ascii_case(&requirements.pay_to);
        if !same {
            return Err(ExactError::RequirementsMismatch(
                "accepted names another amount, asset or payTo".into(),
            ));
        }
    }
    let exact = payload.exact().map_err(ExactError::Payload)?;
    let authorization = parse_authorization(&exact.authorization)?;
    if authorization.to != pay_to {
        return Err(ExactError::RecipientMismatch(exact.authorization.to));
    }
    if requirements.amount.is_zero() {
        return Err(ExactError::RequirementsMismatch(
            "an exact payment moves at least one unit".into(),
        ));
    }
    if authorization.value != U256::from(requirements.amount.atomic()) {
        return Err(ExactError::ValueMismatch {
            value: exact.authorization.value,
            amount: requirements.amount,
        });
    }
    if authorization.valid_before < now.saturating_add(VALID_BEFORE_MARGIN_SECONDS) {
        return Err(ExactError::ValidBefore {
            valid_before: authorization.valid_before,
            now,
        });
    }
    // Bounded by the requirement's timeout: an authorization valid for
    // ever would keep a payment-identifier's retries (and the payer's
    // exposure) open for ever.
    let latest = now
        .saturating_add(requirements.max_timeout_seconds)
        .saturating_add(VALID_BEFORE_SLACK_SECONDS);
    if authorization.valid_before > latest {
        return Err(ExactError::ValidBefore {
            valid_before: authorization.valid_before,
            now,
        });
    }
    // The token moves it only strictly after validAfter.
    if authorization.valid_after >= now {
        return Err(ExactError::ValidAfter {
            valid_after: authorization.valid_after,
            now,
        });
    }
    let signature = parse_hex("signature", &exact.signature)?;
    let domain = TokenDomain {
        name: name.clone(),
        version: version.clone(),
        chain_id,
        token,
    };
    authorization.check_signature(&domain, &signature)?;
    Ok(Checked {
        authorization,
        signature,
        domain,
    })
}

fn parse_address(field: &str, text: &str) -> Result<Address, ExactError> {
    text.parse()
        .map_err(|_| ExactError::Payload(format!("{field} {text:?} is not an address")))
}

fn parse_hex(field: &str, text: &str) -> Result<Vec<u8>, ExactError> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| ExactError::Payload(format!("{field} is not 0x hex")))?;
    hex::decode(digits).map_err(|_| ExactError::Payload(format!("{field} is not 0x hex")))
}

fn parse_seconds(field: &str, text: &str) -> Result<u64, ExactError> {
    // Beyond u64 seconds is forever: clamp rather than refuse.
    let value: U256 = text
        .parse()
        .map_err(|_| ExactError::Payload(format!("{field} {text:?} is not a decimal number")))?;
    Ok(u64::try_from(value).unwrap_or(u64::MAX))
}

fn parse_authorization(json: &ExactAuthorization) -> Result<Authorization, ExactError> {
    let nonce = parse_hex("nonce", &json.nonce)?;
    let nonce: [u8; 32] = nonce
        .try_into()
        .map_err(|_| ExactError::Payload("nonce is not 32 bytes".into()))?;
    if json.value.starts_with("0x") {
        return Err(ExactError::Payload("value must be a decimal string".into()));
    }
    Ok(Authorization {
        from: parse_address("from", &json.from)?,
        to: parse_address("to", &json.to)?,
        value: json
            .value
            .parse()
            .map_err(|_| ExactError::Payload(format!("value {:?} is not a number", json.value)))?,
        valid_after: parse_seconds("validAfter", &json.valid_after)?,
        valid_before: parse_seconds("validBefore", &json.valid_before)?,
        nonce: B256::from(nonce),
    })
}

/// The x402 rule for a `payment-identifier` id.
pub fn identifier_valid(id: &str) -> bool {
    (16..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Seconds since the Unix epoch.
pub fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Settles `exact` payments from its own key (which pays the gas) on one
/// chain.
#[derive(Debug)]
pub struct Settler {
    rpc: Rpc,
    key: EvmKey,
    chain_id: u64,
    /// One transaction is signed at a time, so each gets the next nonce.
    send: tokio::sync::Mutex<()>,
    /// Sent and not yet seen mined, by authorization.
    pending: Mutex<HashMap<(Address, B256), B256>>,
    confirm_timeout: Duration,
    /// When set, the only payees whose payments are settled.
    pay_to_only: Option<Vec<Address>>,
    /// When set, the only tokens settled.
    tokens_only: Option<Vec<Address>>,
}

/// Sent transactions remembered while unconfirmed; beyond this a settle is
/// refused as the settler's trouble until some confirm.
const PENDING_MAX: usize = 4_096;

impl Settler {
    /// A settler on the chain at `rpc`, reading its chain id.
    pub async fn connect(rpc: Rpc, key: EvmKey) -> Result<Settler, ExactError> {
        let chain_id = rpc.chain_id().await?;
        Ok(Settler {
            rpc,
            key,
            chain_id,
            send: tokio::sync::Mutex::new(()),
            pending: Mutex::new(HashMap::new()),
            confirm_timeout: Duration::from_secs(30),
            pay_to_only: None,
            tokens_only: None,
        })
    }

    /// Settles only authorizations of `tokens`: a caller naming its own
    /// contract as the asset could otherwise have the settler run (and pay
    /// for) whatever that contract does.
    pub fn tokens_only(mut self, tokens: Vec<Address>) -> Settler {
        self.tokens_only = Some(tokens);
        self
    }

    fn serves(&self, checked: &Checked) -> Result<(), ExactError> {
        if let Some(tokens) = &self.tokens_only
            && !tokens.contains(&checked.domain.token)
        {
            return Err(ExactError::AssetNotServed(checked.domain.token));
        }
        if let Some(payees) = &self.pay_to_only
            && !payees.contains(&checked.authorization.to)
        {
            return Err(ExactError::RecipientNotServed(checked.authorization.to));
        }
        Ok(())
    }

    /// Settles only payments to `payees`. Without it anyone may have this
    /// settler send (and pay the gas of) any valid authorization, even one
    /// of a single unit to the caller itself.
    pub fn pay_to_only(mut self, payees: Vec<Address>) -> Settler {
        self.pay_to_only = Some(payees);
        self
    }

    /// How long a settle waits for its transaction before answering
    /// `settlement_pending` (30 s by default).
    pub fn confirm_timeout(mut self, timeout: Duration) -> Settler {
        self.confirm_timeout = timeout;
        self
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    pub fn network(&self) -> String {
        network(self.chain_id)
    }

    /// The address that sends settlements (and pays their gas).
    pub fn address(&self) -> Address {
        self.key.address()
    }

    pub fn rpc(&self) -> &Rpc {
        &self.rpc
    }

    /// Checks `payload` fully: [`check`], then the chain (the nonce unused,
    /// the balance enough).
    pub async fn verify(
        &self,
        requirements: &PaymentRequirements,
        payload: &PaymentPayload,
    ) -> Result<Checked, ExactError> {
        let checked = self.check_here(requirements, payload)?;
        let Authorization {
            from, value, nonce, ..
        } = checked.authorization;
        let token = checked.domain.token;
        if eip3009::authorization_used(&self.rpc, token, from, nonce).await? {
            return Err(ExactError::NonceUsed);
        }
        let balance = eip3009::balance(&self.rpc, token, from).await?;
        if balance < value {
            return Err(ExactError::InsufficientBalance { balance, value });
        }
        Ok(checked)
    }

    fn check_here(
        &self,
        requirements: &PaymentRequirements,
        payload: &PaymentPayload,
    ) -> Result<Checked, ExactError> {
        if requirements.network != self.network() {
            return Err(ExactError::NetworkMismatch(requirements.network.clone()));
        }
        let checked = check(requirements, payload, now_seconds())?;
        self.serves(&checked)?;
        Ok(checked)
    }

    /// Settles `payload`: the transaction that moved its money, sent now or
    /// before (never twice).
    pub async fn settle(
        &self,
        requirements: &PaymentRequirements,
        payload: &PaymentPayload,
    ) -> Result<(Checked, B256), ExactError> {
        // An authorization already used is answered with its transaction,
        // so the window is not checked again: the retry of a settle that
        // went through must not fail because time passed.
        let checked = match self.check_here(requirements, payload) {
            Ok(checked) => checked,
            Err(error @ (ExactError::ValidBefore { .. } | ExactError::ValidAfter { .. })) => {
                let Ok(checked) = check(requirements, payload, self.window_time(payload)) else {
                    return Err(error);
                };
                self.serves(&checked)?;
                let tx = self.used_by(&checked).await?.ok_or(error)?;
                return Ok((checked, tx));
            }
            Err(error) => return Err(error),
        };
        let tx = self.settle_checked(&checked).await?;
        Ok((checked, tx))
    }

    /// A time inside the payload's window (just before it closes), to
    /// check an expired payload's other fields.
    fn window_time(&self, payload: &PaymentPayload) -> u64 {
        payload
            .exact()
            .ok()
            .and_then(|exact| parse_seconds("validBefore", &exact.authorization.valid_before).ok())
            .map_or(0, |before| {
                before.saturating_sub(VALID_BEFORE_MARGIN_SECONDS.saturating_add(1))
            })
    }

    async fn settle_checked(&self, checked: &Checked) -> Result<B256, ExactError> {
        let id = (checked.authorization.from, checked.authorization.nonce);
        let sent = self.pending.lock().expect("pending lock").get(&id).copied();
        let tx = match sent {
            Some(tx) => tx,
            None => {
                let guard = self.send.lock().await;
                // Looked again under the lock: a concurrent settle of the
                // same authorization may have sent it meanwhile.
                let sent = self.pending.lock().expect("pending lock").get(&id).copied();
                match sent {
                    Some(tx) => tx,
                    None => {
                        if self.pending.lock().expect("pending lock").len() >= PENDING_MAX {
                            return Err(ExactError::Chain(format!(
                                "{PENDING_MAX} settlements are waiting to be mined"
                            )));
                        }
                        let tx = self.send_transfer(checked).await?;
                        self.pending.lock().expect("pending lock").insert(id, tx);
                        drop(guard);
                        tx
                    }
                }
            }
        };
        let outcome = wallet::wait_within(&self.rpc, tx, self.confirm_timeout).await;
        match outcome {
            Ok(_) => {
                self.pending.lock().expect("pending lock").remove(&id);
                tracing::info!(%tx, payer = %checked.authorization.from, value = %checked.authorization.value, "exact payment settled");
                Ok(tx)
            }
            Err(WalletError::NotMined(tx)) => Err(ExactError::Pending { tx }),
            Err(WalletError::Reverted { tx, .. }) => {
                self.pending.lock().expect("pending lock").remove(&id);
                // Used meanwhile by another transaction: that one paid.
                match self.used_by(checked).await? {
                    Some(other) => Ok(other),
                    None => Err(ExactError::TransactionFailed(format!(
                        "transaction {tx} reverted"
                    ))),
                }
            }
            Err(WalletError::Rpc(error)) => Err(error.into()),
            Err(other) => Err(ExactError::TransactionFailed(other.to_string())),
        }
    }

    /// Sends the transfer; a refusal the token would make is mapped to its
    /// x402 code before any gas is spent (the estimate runs the call).
    async fn send_transfer(&self, checked: &Checked) -> Result<B256, ExactError> {
        let call = checked
            .authorization
            .transfer_call(checked.domain.token, &checked.signature)?;
        match wallet::send(&self.rpc, self.chain_id, &self.key, call).await {
            Ok(tx) => Ok(tx),
            Err(WalletError::Rpc(RpcError::Remote {
                data: Some(data), ..
            })) if revert_is(&data, TestUSD::AuthorizationAlreadyUsed::SELECTOR) => {
                self.used_by(checked).await?.ok_or(ExactError::NonceUsed)
            }
            Err(WalletError::Rpc(RpcError::Remote {
                data: Some(data),
                message,
                ..
            })) => Err(self.revert_error(checked, &data, message).await),
            Err(WalletError::Rpc(error)) => Err(error.into()),
            Err(other) => Err(ExactError::TransactionFailed(other.to_string())),
        }
    }

    async fn revert_error(&self, checked: &Checked, data: &str, message: String) -> ExactError {
        if revert_is(data, TestUSD::InsufficientBalance::SELECTOR) {
            let balance =
                eip3009::balance(&self.rpc, checked.domain.token, checked.authorization.from)
                    .await
                    .unwrap_or(U256::ZERO);
            return ExactError::InsufficientBalance {
                balance,
                value: checked.authorization.value,
            };
        }
        if revert_is(data, TestUSD::InvalidSignature::SELECTOR) {
            return ExactError::Signature(SignatureError::Unrecoverable);
        }
        if revert_is(data, TestUSD::Expired::SELECTOR) {
            return ExactError::ValidBefore {
                valid_before: checked.authorization.valid_before,
                now: now_seconds(),
            };
        }
        if revert_is(data, TestUSD::NotYetValid::SELECTOR) {
            return ExactError::ValidAfter {
                valid_after: checked.authorization.valid_after,
                now: now_seconds(),
            };
        }
        ExactError::TransactionFailed(message)
    }

    /// The transaction that used the authorization, if one did and it paid
    /// what the authorization says: the event of a used nonce names no
    /// recipient and no amount, and the payer may have spent the nonce on
    /// another authorization (a zero transfer to itself), so the
    /// transaction counts only if it carries the token's `Transfer(from,
    /// to, value)`. Otherwise the nonce is used and nothing was paid.
    pub async fn used_by(&self, checked: &Checked) -> Result<Option<B256>, ExactError> {
        let token = checked.domain.token;
        let Authorization {
            from,
            to,
            value,
            nonce,
            ..
        } = checked.authorization;
        if !eip3009::authorization_used(&self.rpc, token, from, nonce).await? {
            return Ok(None);
        }
        let latest = self.rpc.block_number().await?;
        let logs = self
            .rpc
            .logs(LogQuery {
                address: token,
                topics: &[
                    Some(TestUSD::AuthorizationUsed::SIGNATURE_HASH),
                    Some(from.into_word()),
                    Some(nonce),
                ],
                from: latest.saturating_sub(USED_LOOKBACK_BLOCKS),
                to: latest,
            })
            .await?;
        let Some(log) = logs.first() else {
            // Used, but not by a transfer (cancelled) or too long ago.
            return Err(ExactError::NonceUsed);
        };
        let tx = log.transaction_hash;
        let Some(receipt) = self.rpc.receipt(tx).await? else {
            return Err(ExactError::NonceUsed);
        };
        let paid = receipt.status == 1
            && receipt.logs.iter().any(|log| {
                log.address == token
                    && log.topics.len() == 3
                    && log.topics[0] == TestUSD::Transfer::SIGNATURE_HASH
                    && log.topics[1] == from.into_word()
                    && log.topics[2] == to.into_word()
                    && log.data.as_ref() == value.to_be_bytes::<32>().as_slice()
            });
        if paid {
            Ok(Some(tx))
        } else {
            Err(ExactError::NonceUsed)
        }
    }
}

fn revert_is(data: &str, selector: [u8; 4]) -> bool {
    let expected = format!("0x{}", hex::encode(selector));
    data.get(..10)
        .is_some_and(|head| head.eq_ignore_ascii_case(&expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x402::ExactPayload;

    const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    fn terms() -> ExactTerms {
        ExactTerms {
            domain: TokenDomain {
                name: "Test USD".into(),
                version: "2".into(),
                chain_id: 31337,
                token: "0x5FbDB2315678afecb367f032d93F642f64180aa3"
                    .parse()
                    .unwrap(),
            },
            pay_to: "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
                .parse()
                .unwrap(),
            max_timeout_seconds: 60,
        }
    }

    fn pay(
        terms: &ExactTerms,
        amount: u128,
        now: u64,
        edit: impl Fn(&mut Authorization),
    ) -> PaymentPayload {
        let key = EvmKey::parse(KEY).unwrap();
        let requirements = terms.requirements(Amount::from_atomic(amount));
        let mut authorization = Authorization {
            from: key.address(),
            to: terms.pay_to,
            value: U256::from(amount),
            valid_after: 0,
            valid_before: now + 60,
            nonce: B256::repeat_byte(7),
        };
        let signature = authorization.sign(&terms.domain, &key);
        edit(&mut authorization);
        PaymentPayload {
            x402_version: 2,
            resource: None,
            accepted: Some(requirements),
            scheme: None,
            network: None,
            payload: serde_json::to_value(ExactPayload {
                signature: format!("0x{}", hex::encode(signature)),
                authorization: ExactAuthorization {
                    from: authorization.from.to_checksum(None),
                    to: authorization.to.to_checksum(None),
                    value: authorization.value.to_string(),
                    valid_after: authorization.valid_after.to_string(),
                    valid_before: authorization.valid_before.to_string(),
                    nonce: authorization.nonce.to_string(),
                },
            })
            .unwrap(),
            extensions: None,
        }
    }

    #[test]
    fn a_payment_is_checked_field_by_field_with_x402s_codes() {
        let terms = terms();
        let now = 1_800_000_000;
        let requirements = terms.requirements(Amount::from_atomic(10_000));
        let checked = check(&requirements, &pay(&terms, 10_000, now, |_| {}), now).unwrap();
        assert_eq!(
            checked.payer(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
        let code = |payload: PaymentPayload, now: u64| {
            check(&requirements, &payload, now)
                .unwrap_err()
                .code()
                .to_owned()
        };
        // A payment for less than the price, or more: the value must be it.
        assert_eq!(
            code(pay(&terms, 9_999, now, |_| {}), now),
            "invalid_payment_requirements"
        );
        let mut more = pay(&terms, 10_001, now, |_| {});
        more.accepted = Some(requirements.clone());
        assert_eq!(
            code(more, now),
            "invalid_exact_evm_payload_authorization_value_mismatch"
        );
        assert_eq!(
            code(
                pay(&terms, 10_000, now, |a| a.to = Address::repeat_byte(1)),
                now
            ),
            "invalid_exact_evm_payload_recipient_mismatch"
        );
        // A field changed after signing.
        assert_eq!(
            code(pay(&terms, 10_000, now, |a| a.valid_before += 1), now),
            "invalid_exact_evm_payload_signature"
        );
        assert_eq!(
            code(pay(&terms, 10_000, now, |_| {}), now + 55),
            "invalid_exact_evm_payload_authorization_valid_before"
        );
        assert_eq!(
            code(pay(&terms, 10_000, now, |a| a.valid_after = now + 5), now),
            "invalid_exact_evm_payload_authorization_valid_after"
        );
        // The token moves it only strictly after validAfter.
        assert_eq!(
            code(pay(&terms, 10_000, now, |a| a.valid_after = now), now),
            "invalid_exact_evm_payload_authorization_valid_after"
        );
        // Valid far past the requirement's timeout: refused.
        assert_eq!(
            code(
                pay(&terms, 10_000, now, |a| a.valid_before = now + 10_000),
                now
            ),
            "invalid_exact_evm_payload_authorization_valid_before"
        );
        let mut channel = pay(&terms, 10_000, now, |_| {});
        channel.accepted.as_mut().unwrap().scheme = "channel".into();
        assert_eq!(code(channel, now), "unsupported_scheme");
        assert!(identifier_valid("pay_39888af62733405285be19979e0d4638"));
        assert!(!identifier_valid("short"));
        assert!(!identifier_valid("pay 39888af62733405285be19979e0d4638"));
    }
}
