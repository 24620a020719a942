//! x402 v2 messages for the `channel` scheme (agentrail binding) and the
//! `exact` scheme on EVM chains (x402's own).
//!
//! Shapes follow coinbase/x402 `specs/x402-specification-v2.md` and
//! `specs/transports-v2/http.md`: a `402` carries a base64 `PAYMENT-REQUIRED`
//! header ([`PaymentRequired`]); the paid retry carries `PAYMENT-SIGNATURE`
//! (or the v1 `X-PAYMENT`) with a [`PaymentPayload`]; answers carry
//! `PAYMENT-RESPONSE` ([`SettlementResponse`]). The `payload` of the channel
//! scheme is [`ChannelPayload`], whose `receipt` is our [`Voucher`].
//!
//! Binding: `network` is `agentrail:<log origin>`; `asset` is `USD`;
//! amounts are atomic units as strings; `payTo`, `payerId` and `payeeId` are
//! did:keys. `extra` of a requirement says whether the price is per call or
//! per unit (`"pricing": "per_call" | "per_unit"`, `"unit"`) and the deposit
//! the server suggests (`"suggestedDeposit"`). The settlement response adds
//! the accepted state of the sub-channel and the server's proposal for the
//! next voucher (`"channel"`), as the channel scheme describes.

use agentrail_core::Amount;
use agentrail_core::channel::{ChannelId, Voucher, VoucherTerms};
use agentrail_core::hashchain::{ChainCommitment, Link};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub const X402_VERSION: u32 = 2;
pub const SCHEME: &str = "channel";
/// x402's scheme of one EIP-3009 transfer per payment.
pub const EXACT: &str = "exact";
pub const ASSET: &str = "USD";
/// Header of a 402: what the server requires.
pub const PAYMENT_REQUIRED: &str = "payment-required";
/// Header of a paid request (v2).
pub const PAYMENT_SIGNATURE: &str = "payment-signature";
/// Header of a paid request (v1).
pub const X_PAYMENT: &str = "x-payment";
/// Header of an answer: how the payment went.
pub const PAYMENT_RESPONSE: &str = "payment-response";
/// Largest payment header accepted, in bytes.
pub const HEADER_BYTES_MAX: usize = 8 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    pub scheme: String,
    pub network: String,
    pub asset: String,
    pub pay_to: String,
    /// Per call, or per unit for metered routes; atomic units.
    pub amount: Amount,
    pub max_timeout_seconds: u64,
    #[serde(default)]
    pub extra: RequirementExtra,
}

/// A requirement's `extra`: the channel scheme's pricing, or the `exact`
/// scheme's EIP-712 domain of the token (`name`, `version`). Fields of other
/// schemes are kept as they came, so a requirement echoed back in
/// `accepted` is the one the server sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequirementExtra {
    /// `per_call` or `per_unit` (channel); absent means per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// For a metered route: the most one call may cost, so the payer can
    /// check it against its mandate before the first call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_amount_per_call: Option<Amount>,
    /// Channel, per call: the server takes hash-chain payments (an
    /// agentrail extension, docs/protocol.md "Hash-chain payments").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_chain: Option<HashChainOffer>,
    /// `exact` on EVM: the token's EIP-712 domain name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `exact` on EVM: the token's EIP-712 domain version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    pub x402_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub resource: ResourceInfo,
    pub accepts: Vec<PaymentRequirements>,
    /// Extensions the server declares (`payment-identifier`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload {
    pub x402_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    /// v2: the requirement the client chose. v1 payloads name `scheme` and
    /// `network` at the top instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<PaymentRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// The scheme's payload: [`ChannelPayload`] or [`ExactPayload`].
    pub payload: serde_json::Value,
    /// Extensions the client answers (`payment-identifier`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Map<String, serde_json::Value>>,
}

impl PaymentPayload {
    pub fn scheme(&self) -> Option<&str> {
        self.accepted
            .as_ref()
            .map(|a| a.scheme.as_str())
            .or(self.scheme.as_deref())
    }

    pub fn network(&self) -> Option<&str> {
        self.accepted
            .as_ref()
            .map(|a| a.network.as_str())
            .or(self.network.as_deref())
    }

    /// A v2 payment of `payload` answering `terms`, one of `required`'s.
    pub fn answering<T: Serialize>(
        required: &PaymentRequired,
        terms: &PaymentRequirements,
        payload: &T,
        extensions: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> PaymentPayload {
        PaymentPayload {
            x402_version: X402_VERSION,
            resource: Some(required.resource.clone()),
            accepted: Some(terms.clone()),
            scheme: None,
            network: None,
            payload: serde_json::to_value(payload).expect("x402 payloads are JSON"),
            extensions,
        }
    }

    /// The payload of the channel scheme.
    pub fn channel(&self) -> Result<ChannelPayload, String> {
        ChannelPayload::deserialize(&self.payload)
            .map_err(|e| format!("the payload is not the channel scheme's: {e}"))
    }

    /// The payload of a call paid by a chain's next link, when it is one
    /// (it names a `link` and no `receipt`).
    pub fn chain_link(&self) -> Option<Result<ChainPayload, String>> {
        let object = self.payload.as_object()?;
        if !object.contains_key("link") || object.contains_key("receipt") {
            return None;
        }
        Some(
            ChainPayload::deserialize(&self.payload)
                .map_err(|e| format!("the payload is not a hash-chain link: {e}")),
        )
    }

    /// The payload of the `exact` scheme on EVM.
    pub fn exact(&self) -> Result<ExactPayload, String> {
        ExactPayload::deserialize(&self.payload)
            .map_err(|e| format!("the payload is not the exact scheme's: {e}"))
    }

    /// The `payment-identifier` extension's id, when the client sent one.
    pub fn payment_identifier(&self) -> Option<&str> {
        self.extensions
            .as_ref()?
            .get(PAYMENT_IDENTIFIER)?
            .get("info")?
            .get("id")?
            .as_str()
    }
}

/// The x402 extension whose id makes a paid request idempotent.
pub const PAYMENT_IDENTIFIER: &str = "payment-identifier";

/// The `exact` scheme's payload on EVM: an EIP-3009 authorization and its
/// signature, every number a decimal string and every byte string 0x hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExactPayload {
    pub signature: String,
    pub authorization: ExactAuthorization,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExactAuthorization {
    pub from: String,
    pub to: String,
    pub value: String,
    pub valid_after: String,
    pub valid_before: String,
    pub nonce: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelPayload {
    pub version: u32,
    pub payer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_tx_ref: Option<String>,
    pub receipt: Voucher,
    /// A hash chain bound to `receipt`, whose first link pays this call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_chain: Option<ChainStart>,
}

/// A server's offer of hash-chain payments in a requirement's `extra`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HashChainOffer {
    pub version: u32,
    /// The longest chain one commitment may name.
    pub max_length: u32,
}

/// The first call of a chain: the commitment, and link 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChainStart {
    pub commitment: ChainCommitment,
    pub link: Link,
}

/// A call paid by the next link of a sub-channel's committed chain: the
/// scheme's payload with no voucher and no signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChainPayload {
    pub version: u32,
    pub payer_id: String,
    pub channel_id: ChannelId,
    pub sub_channel_id: String,
    /// Which link: 1 for the first call of the chain (sent with the
    /// commitment), 2 for the next, up to the chain's length.
    pub index: u32,
    pub link: Link,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettlementResponse {
    pub success: bool,
    /// For a channel: `<channelId>/<subChannelId>/<nonce>` of the accepted
    /// voucher (no ledger transaction happens per call).
    pub transaction: String,
    pub network: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<ChannelState>,
}

impl SettlementResponse {
    /// A payment not taken: `transaction` is empty unless one was sent
    /// (a settlement pending).
    pub fn refusal(network: &str, code: &str, message: &str, transaction: String) -> Self {
        SettlementResponse {
            success: false,
            transaction,
            network: network.to_owned(),
            payer: None,
            error_reason: Some(code.to_owned()),
            error_message: Some(message.to_owned()),
            channel: None,
        }
    }
}

/// The sub-channel after the call, and the voucher the server proposes for
/// the next one (unsigned).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelState {
    pub channel_id: ChannelId,
    pub sub_channel_id: String,
    pub accumulated_amount: Amount,
    pub nonce: u64,
    pub proposal: VoucherTerms,
}

/// Base64 of the JSON of `value`, as the headers carry it.
pub fn encode_header<T: Serialize>(value: &T) -> String {
    STANDARD.encode(serde_json::to_vec(value).expect("x402 messages are JSON"))
}

/// Reads a base64 JSON header, bounded in size.
pub fn decode_header<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    parse_header(&header_bytes(text)?)
}

/// The JSON bytes of a base64 header, bounded in size.
pub fn header_bytes(text: &str) -> Result<Vec<u8>, String> {
    if text.len() > HEADER_BYTES_MAX {
        return Err(format!(
            "the header is larger than {HEADER_BYTES_MAX} bytes"
        ));
    }
    STANDARD
        .decode(text.trim())
        .map_err(|e| format!("the header is not base64: {e}"))
}

/// A header's JSON ([`header_bytes`]) read as `T`.
pub fn parse_header<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("the header is not the expected JSON: {e}"))
}

/// A payment by a chain's next link, read in one pass without the
/// generic payload tree of [`PaymentPayload`] (what a paywall reads on
/// nearly every call of a chain). Fields it does not need are skipped.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkPayment<'a> {
    pub x402_version: u32,
    #[serde(borrow, default)]
    pub accepted: Option<AcceptedRef<'a>>,
    #[serde(borrow, default)]
    pub scheme: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    pub network: Option<std::borrow::Cow<'a, str>>,
    pub payload: ChainPayload,
}

/// The scheme and network of the requirement a payment answers.
#[derive(Debug, Deserialize)]
pub struct AcceptedRef<'a> {
    #[serde(borrow)]
    pub scheme: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub network: std::borrow::Cow<'a, str>,
}

impl LinkPayment<'_> {
    /// Reads `bytes` as a link payment, if they are one (a payload with a
    /// `link` and no voucher).
    pub fn parse(bytes: &[u8]) -> Option<LinkPayment<'_>> {
        serde_json::from_slice(bytes).ok()
    }

    pub fn scheme(&self) -> Option<&str> {
        self.accepted
            .as_ref()
            .map(|a| a.scheme.as_ref())
            .or(self.scheme.as_deref())
    }

    pub fn network(&self) -> Option<&str> {
        self.accepted
            .as_ref()
            .map(|a| a.network.as_ref())
            .or(self.network.as_deref())
    }
}
