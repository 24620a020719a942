//! x402's facilitator API for `exact` on EVM: the server that
//! `agentrail facilitator` runs ([`router`]) and the client a paywall uses to
//! settle through any facilitator ([`FacilitatorClient`]).
//!
//! `POST /verify` and `POST /settle` take `{x402Version, paymentPayload,
//! paymentRequirements}`; `GET /supported` lists the kinds served. As x402's
//! SDKs expect, a refused payment is still HTTP 200, with `isValid: false`
//! and `invalidReason` (verify) or `success: false`, `errorReason` and an
//! empty `transaction` (settle); a request that is not JSON of that shape is
//! a 400 with a typed error. A settle of an authorization already settled
//! answers its transaction again ([`crate::exact::Settler`]).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::exact::{ExactError, Settler};
use crate::x402::{self, PaymentPayload, PaymentRequirements, SettlementResponse};

/// Largest request body the facilitator reads.
const BODY_BYTES_MAX: usize = 64 * 1024;

/// The body of `/verify` and `/settle`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FacilitatorRequest {
    pub x402_version: u32,
    pub payment_payload: PaymentPayload,
    pub payment_requirements: PaymentRequirements,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    pub is_valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedKind {
    pub x402_version: u32,
    pub scheme: String,
    pub network: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedResponse {
    pub kinds: Vec<SupportedKind>,
    #[serde(default)]
    pub extensions: Vec<String>,
    /// The addresses that send settlements, by CAIP-2 family.
    #[serde(default)]
    pub signers: serde_json::Map<String, serde_json::Value>,
}

/// The facilitator's routes over `settler`.
pub fn router(settler: Arc<Settler>) -> Router {
    Router::new()
        .route("/supported", get(supported))
        .route("/verify", post(verify))
        .route("/settle", post(settle))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(settler)
}

async fn supported(State(settler): State<Arc<Settler>>) -> Json<SupportedResponse> {
    let mut signers = serde_json::Map::new();
    signers.insert(
        "eip155:*".into(),
        serde_json::json!([settler.address().to_checksum(None)]),
    );
    Json(SupportedResponse {
        kinds: vec![SupportedKind {
            x402_version: x402::X402_VERSION,
            scheme: x402::EXACT.into(),
            network: settler.network(),
        }],
        extensions: Vec::new(),
        signers,
    })
}

fn bad_request(rejection: &JsonRejection) -> Response {
    let body = serde_json::json!({"error": {
        "code": "invalid_request",
        "message": format!("the body is not a facilitator request: {}", rejection.body_text()),
    }});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

async fn verify(
    State(settler): State<Arc<Settler>>,
    request: Result<Json<FacilitatorRequest>, JsonRejection>,
) -> Response {
    let Json(request) = match request {
        Ok(request) => request,
        Err(rejection) => return bad_request(&rejection),
    };
    let answer = match settler
        .verify(&request.payment_requirements, &request.payment_payload)
        .await
    {
        Ok(checked) => VerifyResponse {
            is_valid: true,
            invalid_reason: None,
            invalid_message: None,
            payer: Some(checked.payer()),
        },
        Err(error) => VerifyResponse {
            is_valid: false,
            invalid_reason: Some(error.code().to_owned()),
            invalid_message: Some(error.to_string()),
            payer: claimed_payer(&request.payment_payload),
        },
    };
    Json(answer).into_response()
}

async fn settle(
    State(settler): State<Arc<Settler>>,
    request: Result<Json<FacilitatorRequest>, JsonRejection>,
) -> Response {
    let Json(request) = match request {
        Ok(request) => request,
        Err(rejection) => return bad_request(&rejection),
    };
    let network = request.payment_requirements.network.clone();
    let answer = match settler
        .settle(&request.payment_requirements, &request.payment_payload)
        .await
    {
        Ok((checked, tx)) => SettlementResponse {
            success: true,
            transaction: tx.to_string(),
            network,
            payer: Some(checked.payer()),
            error_reason: None,
            error_message: None,
            channel: None,
        },
        Err(error) => SettlementResponse {
            payer: claimed_payer(&request.payment_payload),
            ..SettlementResponse::refusal(
                &network,
                error.code(),
                &error.to_string(),
                error.pending_transaction(),
            )
        },
    };
    Json(answer).into_response()
}

fn claimed_payer(payload: &PaymentPayload) -> Option<String> {
    payload.exact().ok().map(|exact| exact.authorization.from)
}

/// A facilitator by URL: ours or anyone's.
#[derive(Clone, Debug)]
pub struct FacilitatorClient {
    http: reqwest::Client,
    url: String,
}

impl FacilitatorClient {
    pub fn new(url: &str, http: reqwest::Client) -> FacilitatorClient {
        FacilitatorClient {
            http,
            url: url.trim_end_matches('/').to_owned(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        requirements: &PaymentRequirements,
        payload: &PaymentPayload,
    ) -> Result<T, ExactError> {
        let request = FacilitatorRequest {
            x402_version: x402::X402_VERSION,
            payment_payload: payload.clone(),
            payment_requirements: requirements.clone(),
        };
        let unreachable =
            |e: reqwest::Error| ExactError::Chain(format!("the facilitator {}: {e}", self.url));
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&request)
            .send()
            .await
            .map_err(unreachable)?;
        if !response.status().is_success() {
            return Err(ExactError::Chain(format!(
                "the facilitator {} answered {} to {path}",
                self.url,
                response.status()
            )));
        }
        response.json().await.map_err(unreachable)
    }

    /// The facilitator's `/verify`: the payer's address when valid.
    pub async fn verify(
        &self,
        requirements: &PaymentRequirements,
        payload: &PaymentPayload,
    ) -> Result<Option<String>, ExactError> {
        let answer: VerifyResponse = self.post("/verify", requirements, payload).await?;
        if answer.is_valid {
            Ok(answer.payer)
        } else {
            Err(remote(answer.invalid_reason, answer.invalid_message))
        }
    }

    /// The facilitator's `/settle`: the transaction.
    pub async fn settle(
        &self,
        requirements: &PaymentRequirements,
        payload: &PaymentPayload,
    ) -> Result<String, ExactError> {
        let answer: SettlementResponse = self.post("/settle", requirements, payload).await?;
        if answer.success {
            return Ok(answer.transaction);
        }
        if answer.error_reason.as_deref() == Some("settlement_pending")
            && let Ok(tx) = answer.transaction.parse()
        {
            return Err(ExactError::Pending { tx });
        }
        Err(remote(answer.error_reason, answer.error_message))
    }

    /// The facilitator's `/supported`.
    pub async fn supported(&self) -> Result<SupportedResponse, ExactError> {
        let unreachable =
            |e: reqwest::Error| ExactError::Chain(format!("the facilitator {}: {e}", self.url));
        self.http
            .get(format!("{}/supported", self.url))
            .send()
            .await
            .map_err(unreachable)?
            .error_for_status()
            .map_err(unreachable)?
            .json()
            .await
            .map_err(unreachable)
    }
}

/// A facilitator's refusal: typed where the paywall acts on it (a nonce
/// used, the settling side's trouble), kept as it came otherwise.
fn remote(code: Option<String>, message: Option<String>) -> ExactError {
    let code = code.unwrap_or_else(|| "facilitator_refused".into());
    let message = message.unwrap_or_else(|| code.clone());
    match code.as_str() {
        "invalid_exact_evm_nonce_already_used" => ExactError::NonceUsed,
        "chain_unavailable" | "unexpected_verify_error" | "unexpected_settle_error" => {
            ExactError::Chain(message)
        }
        "payment_in_progress" => ExactError::InProgress,
        _ => ExactError::Remote { code, message },
    }
}
