//! The `/v1` HTTP API. The only place that turns errors into HTTP: a stable
//! code, a message, the field, a 4xx status. Bad input never reaches a 500.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use agentrail_core::command::Deposit;
use agentrail_core::state::IdentityKind;
use agentrail_core::{Amount, Command, Did, Rejection, SignedCommand};
use agentrail_wire::api::{
    BODY_BYTES_MAX, BalanceResponse, COMMANDS_PATH, ErrorBody, ErrorDetail, FAUCET_PATH,
    FaucetRequest, HISTORY_PAGE_MAX, Health, HistoryPage, Passport,
};
use agentrail_wire::entry::{EntryRequest, encode_body};
use agentrail_wire::httpsig::{self, SIGNATURE_WINDOW_S, SignatureError, SignatureHeaders};
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ed25519_dalek::SigningKey;
use serde::Deserialize;
use tokio::sync::oneshot;

use agentrail_core::state::{ArchiveKind, Archived};

use crate::ledger::{Job, Ledger, Queue, QueueError, Refusal, Reply};
use crate::openapi;
use crate::verifier::{Check, Verifier};
use agentrail_log::merkle;
use agentrail_log::receipt::Receipt;
use agentrail_log::tile::{TILE_HEIGHT, TILE_WIDTH, Tile};
use agentrail_wire::api::{ApprovalResponse, ConsistencyProof, HoldResponse, LogEntry};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Largest single faucet deposit in dev mode: 1,000,000 USD.
pub const FAUCET_AMOUNT_MAX: Amount = Amount::from_atomic(1_000_000 * 1_000_000);
/// Nonces remembered (each for twice the signature window).
pub const NONCES_MAX: usize = 1_000_000;

/// An error as the API answers it.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    code: String,
    message: String,
    param: Option<String>,
    retry_after_s: Option<u32>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_owned(),
            message: message.into(),
            param: None,
            retry_after_s: None,
        }
    }

    /// The stable code a client sees.
    pub fn code(&self) -> &str {
        &self.code
    }

    pub(crate) fn with_param(mut self, param: &str) -> ApiError {
        self.param = Some(param.to_owned());
        self
    }

    /// 429: the signer sent more than its rate allows.
    pub(crate) fn rate_limited(retry_after_s: u32) -> ApiError {
        ApiError {
            retry_after_s: Some(retry_after_s),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "this identity sent more commands than its rate allows; retry in {retry_after_s} s"
                ),
            )
        }
    }

    fn busy(code: &str, message: &str) -> ApiError {
        ApiError {
            retry_after_s: Some(1),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                param: self.param,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The HTTP status of each ledger rejection.
pub fn rejection_status(rejection: &Rejection) -> StatusCode {
    status_of(rejection.code())
}

/// The state machine's rejection codes (`Rejection::code`); a test checks
/// the list against the source.
pub const REJECTION_CODES: [&str; 75] = [
    "already_contributed",
    "already_registered",
    "amount_overflow",
    "amount_zero",
    "approval_not_found",
    "approval_not_pending",
    "approval_required",
    "bounty_full",
    "bounty_not_found",
    "bounty_wrong_state",
    "budget_exceeded",
    "category_not_allowed",
    "chain_deposit_required",
    "channel_closed",
    "channel_closing",
    "channel_exhausted",
    "channel_expired",
    "channel_not_found",
    "channel_outlives_grant",
    "contribution_not_found",
    "contribution_scored",
    "deposit_out_of_order",
    "grant_expired",
    "grant_not_yet_valid",
    "grant_revoked",
    "grant_widens",
    "hold_not_active",
    "hold_not_found",
    "id_retired",
    "idempotency_conflict",
    "insufficient_funds",
    "invalid_field",
    "invalid_grant",
    "invalid_grant_signature",
    "invalid_signature",
    "invalid_split",
    "leg_wrong_state",
    "listing_busy",
    "listing_not_found",
    "listing_withdrawn",
    "no_arbiter",
    "no_unclaimed_deposits",
    "not_arbiter",
    "not_authorized",
    "not_operator",
    "not_validator",
    "nothing_due",
    "off_ledger_payment_not_allowed",
    "offer_out_of_turn",
    "order_not_found",
    "own_side_role",
    "payee_denied",
    "payee_not_allowed",
    "per_payment_limit_exceeded",
    "price_above_budget",
    "quote_not_found",
    "quote_not_open",
    "quote_rounds_exhausted",
    "result_hash_mismatch",
    "rfq_closed",
    "rfq_not_found",
    "same_account",
    "subscription_already_collected",
    "subscription_amount_exceeded",
    "subscription_not_active",
    "subscription_not_found",
    "task_not_found",
    "task_wrong_state",
    "too_many_delegations",
    "too_many_subscriptions",
    "unknown_account",
    "unknown_identity",
    "voucher_signature_invalid",
    "voucher_stale",
    "withdrawal_not_found",
];

/// The HTTP layer's own codes, with their status: request signatures and
/// bodies, paths and queries, limits, storage and the faucet.
pub const HTTP_CODES: [(&str, u16, &str); 33] = [
    (
        "invalid_range",
        400,
        "the proof's sizes are not 0 < from <= to <= the log's size",
    ),
    (
        "not_in_log",
        404,
        "the log holds no entry at this index yet",
    ),
    (
        "entry_too_large",
        500,
        "a journal entry exceeds the 64 KiB a bundle may carry (never for an entry the node wrote)",
    ),
    (
        "signature_missing",
        401,
        "the request is not signed: Signature and Signature-Input are required",
    ),
    (
        "digest_missing",
        400,
        "a mutating request carries Content-Digest (sha-256 of the body)",
    ),
    (
        "digest_mismatch",
        400,
        "the body does not match its Content-Digest",
    ),
    (
        "signature_malformed",
        401,
        "the signature headers break a rule of docs/protocol.md; the message names it",
    ),
    (
        "signature_invalid",
        401,
        "the signature does not verify with the key of keyid",
    ),
    (
        "signature_expired",
        401,
        "created lies more than 300 s from the node's clock, or expires has passed",
    ),
    (
        "nonce_reused",
        401,
        "this key used this nonce within the window",
    ),
    (
        "signature_wrong_network",
        401,
        "the request was signed for another ledger (its tag)",
    ),
    (
        "signature_before_start",
        401,
        "the request was created before the node started; sign it again",
    ),
    ("malformed_json", 400, "the body is not JSON"),
    (
        "invalid_request",
        400,
        "the body does not have the expected shape; the message names the fields",
    ),
    (
        "invalid_did",
        400,
        "a path segment is not an Ed25519 did:key",
    ),
    ("invalid_path", 400, "a path segment is malformed"),
    (
        "invalid_query",
        400,
        "a query parameter is malformed or out of range",
    ),
    ("body_too_large", 413, "the body exceeds 32 KiB"),
    ("not_found", 404, "no such endpoint"),
    ("no_such_tile", 404, "no such tile or bundle yet"),
    (
        "unknown_grant",
        404,
        "the identity holds no grant (a principal, or unknown)",
    ),
    (
        "method_not_allowed",
        405,
        "the endpoint does not take this method",
    ),
    (
        "rate_limited",
        429,
        "this identity sent more than its rate; wait Retry-After",
    ),
    (
        "too_many_connections",
        429,
        "too many open connections; retry in a second",
    ),
    ("faucet_disabled", 404, "the faucet exists in dev mode only"),
    (
        "faucet_limit",
        400,
        "the faucet gives at most 1,000,000 USD at a time",
    ),
    (
        "overloaded",
        503,
        "the ledger is busy; the command was not applied: retry after Retry-After",
    ),
    (
        "storage_unavailable",
        503,
        "the journal could not be written; the command was not applied",
    ),
    (
        "outcome_unknown",
        503,
        "the storage failed while committing: retry with the same idempotency key",
    ),
    (
        "shutting_down",
        503,
        "the node is stopping; the command was not applied",
    ),
    ("unavailable", 503, "the node cannot serve this now; retry"),
    (
        "not_leader",
        503,
        "this node is a standby: send commands to the node that leads (the message names it), or retry after Retry-After",
    ),
    (
        "invalid_signature",
        401,
        "the signature does not match the command and the signer's key",
    ),
];

/// The HTTP status of a rejection code.
pub fn status_of(code: &str) -> StatusCode {
    match code {
        "invalid_signature" => StatusCode::UNAUTHORIZED,
        "unknown_identity"
        | "unknown_account"
        | "hold_not_found"
        | "approval_not_found"
        | "listing_not_found"
        | "rfq_not_found"
        | "quote_not_found"
        | "task_not_found"
        | "channel_not_found"
        | "withdrawal_not_found"
        | "subscription_not_found"
        | "bounty_not_found"
        | "contribution_not_found"
        | "order_not_found" => StatusCode::NOT_FOUND,
        "already_registered"
        | "idempotency_conflict"
        | "hold_not_active"
        | "approval_not_pending"
        | "insufficient_funds"
        | "too_many_delegations"
        | "listing_withdrawn"
        | "listing_busy"
        | "rfq_closed"
        | "quote_not_open"
        | "offer_out_of_turn"
        | "quote_rounds_exhausted"
        | "price_above_budget"
        | "nothing_due"
        | "no_unclaimed_deposits"
        | "id_retired"
        | "task_wrong_state"
        | "no_arbiter"
        | "result_hash_mismatch"
        | "channel_closed"
        | "channel_expired"
        | "channel_closing"
        | "voucher_stale"
        | "channel_exhausted"
        | "deposit_out_of_order"
        | "subscription_not_active"
        | "subscription_already_collected"
        | "bounty_wrong_state"
        | "bounty_full"
        | "contribution_scored"
        | "leg_wrong_state"
        | "too_many_subscriptions"
        | "already_contributed" => StatusCode::CONFLICT,
        "not_authorized"
        | "not_operator"
        | "grant_not_yet_valid"
        | "grant_expired"
        | "grant_revoked"
        | "grant_widens"
        | "invalid_grant_signature"
        | "per_payment_limit_exceeded"
        | "budget_exceeded"
        | "payee_not_allowed"
        | "off_ledger_payment_not_allowed"
        | "payee_denied"
        | "category_not_allowed"
        | "not_arbiter"
        | "own_side_role"
        | "channel_outlives_grant"
        | "chain_deposit_required"
        | "approval_required"
        | "not_validator"
        | "subscription_amount_exceeded" => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn from_rejection(rejection: Rejection) -> ApiError {
    let error = ApiError::new(
        rejection_status(&rejection),
        rejection.code(),
        rejection.to_string(),
    );
    match rejection.param() {
        Some(param) => error.with_param(param),
        None => error,
    }
}

pub(crate) fn from_signature(error: SignatureError) -> ApiError {
    let status = match error {
        SignatureError::DigestMissing | SignatureError::DigestMismatch => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNAUTHORIZED,
    };
    ApiError::new(status, error.code(), error.to_string())
}

fn from_json(error: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {error}"),
        ),
        Category::Data => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("the body does not match the expected shape: {error}"),
        ),
    }
}

fn parse_did(text: &str) -> Result<Did, ApiError> {
    text.parse().map_err(|e: agentrail_core::DidError| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_did", e.to_string()).with_param("did")
    })
}

/// Nonces seen recently, per signer, to refuse replays. Bounded.
///
/// The window lives in memory, and a restart must not open it again. So a
/// node starts with the nonces of every request its journal accepted in
/// the last two windows ([`crate::ledger::Ledger::recent_nonces`]), and
/// refuses every request created before it started
/// (`signature_before_start`): a request refused before a restart was
/// created before it, so it cannot be replayed after it. What is left is
/// a request that was refused before the restart and whose `created` lay
/// ahead of the node's clock by more than the restart took: that one is
/// judged again (and refused again, unless what refused it changed).
#[derive(Debug, Default)]
pub struct Nonces {
    inner: Mutex<NonceWindow>,
    /// The ledger clock when the node started (or took the lead).
    started_at: std::sync::atomic::AtomicU64,
    /// Refusing every request: a standby's window does not hold the nonces
    /// of what the leader journals, so it admits nothing until it leads
    /// and starts afresh ([`Nonces::restart`]).
    closed: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct NonceWindow {
    seen: HashSet<(Did, String)>,
    /// The same nonces by their `created` second, to forget them in order.
    by_time: BTreeMap<u64, Vec<(Did, String)>>,
}

impl NonceWindow {
    fn of(recent: Vec<(Did, String, u64)>) -> NonceWindow {
        let mut window = NonceWindow::default();
        for (signer, nonce, created) in recent {
            let key = (signer, nonce);
            if window.seen.insert(key.clone()) {
                window.by_time.entry(created).or_default().push(key);
            }
        }
        window
    }
}

impl Nonces {
    /// The window of a node that started at `started_at` and whose journal
    /// accepted `recent` requests (signer, nonce, `created`) lately.
    pub fn after_start(started_at: u64, recent: Vec<(Did, String, u64)>) -> Nonces {
        Nonces {
            inner: Mutex::new(NonceWindow::of(recent)),
            started_at: started_at.into(),
            closed: false.into(),
        }
    }

    /// Admits nothing until the next [`Nonces::restart`] (a standby).
    pub fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Starts again, as [`Nonces::after_start`] does: what a standby does
    /// when it takes the lead, since the nonces the old leader saw and
    /// refused are known only to it.
    pub fn restart(&self, started_at: u64, recent: Vec<(Did, String, u64)>) {
        let mut window = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *window = NonceWindow::of(recent);
        self.started_at
            .store(started_at, std::sync::atomic::Ordering::Release);
        self.closed
            .store(false, std::sync::atomic::Ordering::Release);
    }

    /// Records a nonce; false when it was already used.
    pub fn record(
        &self,
        signer: Did,
        nonce: &str,
        created: u64,
        now: u64,
    ) -> Result<bool, ApiError> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(ApiError::busy(
                "not_leader",
                "this node is a standby; the command was not applied: send it to the node that leads",
            ));
        }
        if created < self.started_at.load(std::sync::atomic::Ordering::Acquire) {
            return Err(from_signature(SignatureError::BeforeStart));
        }
        let mut window = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let horizon = now.saturating_sub(2 * SIGNATURE_WINDOW_S);
        while let Some(entry) = window.by_time.first_entry() {
            if *entry.key() >= horizon {
                break;
            }
            for key in entry.remove() {
                window.seen.remove(&key);
            }
        }
        let key = (signer, nonce.to_owned());
        if window.seen.contains(&key) {
            return Ok(false);
        }
        if window.seen.len() >= NONCES_MAX {
            return Err(ApiError::busy(
                "overloaded",
                "too many recent requests; retry shortly",
            ));
        }
        window.seen.insert(key.clone());
        window.by_time.entry(created).or_default().push(key);
        Ok(true)
    }
}

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct App {
    pub ledger: Arc<Ledger>,
    /// The writer's queue, for commands the node signs itself (faucet).
    pub queue: Queue,
    /// The signature-checking stage in front of the writer.
    pub verifier: Verifier,
    /// The operator key, in dev mode only (the faucet signs with it).
    pub faucet_key: Option<Arc<SigningKey>>,
}

/// The headers a web page's request may carry: what a signed command needs.
const CORS_REQUEST_HEADERS: [&str; 4] = [
    "content-type",
    "content-digest",
    "signature-input",
    "signature",
];

/// CORS for the API: pages from `origins` (every origin in dev mode) may
/// call it, with the headers a signed request carries, and read
/// `Retry-After`. Without origins (and outside dev mode) no page may: the
/// browser refuses the preflight. An origin that is not an absolute
/// `scheme://host[:port]` is refused here.
pub fn cors(origins: &[String], dev: bool) -> Result<tower_http::cors::CorsLayer, String> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allow = if dev {
        if !origins.is_empty() {
            tracing::info!("dev mode: every origin may call the API, --cors-origin aside");
        }
        AllowOrigin::any()
    } else {
        let mut values = Vec::with_capacity(origins.len());
        for origin in origins {
            // What a browser sends as Origin: scheme, host and maybe port.
            let well_formed = origin.split_once("://").is_some_and(|(scheme, host)| {
                matches!(scheme, "http" | "https")
                    && !host.is_empty()
                    && host.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.:[]".contains(&b)
                    })
            });
            let value = HeaderValue::from_str(origin)
                .ok()
                .filter(|_| well_formed)
                .ok_or_else(|| {
                    format!("--cors-origin {origin:?} is not an origin like https://app.example")
                })?;
            values.push(value);
        }
        AllowOrigin::list(values)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers(CORS_REQUEST_HEADERS.map(axum::http::HeaderName::from_static))
        .expose_headers([axum::http::header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600)))
}

pub fn router(app: App) -> Router {
    Router::new()
        .route(COMMANDS_PATH, post(post_command))
        .route(FAUCET_PATH, post(post_faucet))
        .route("/v1/accounts/{did}/balance", get(get_balance))
        .route("/v1/accounts/{did}/history", get(get_history))
        .route("/v1/grants/{did}", get(get_grant))
        .route("/v1/passports/{did}", get(get_passport))
        .route("/v1/holds/{id}", get(get_hold))
        .route("/v1/channels/{id}", get(get_channel))
        .route("/v1/approvals/{index}", get(get_approval))
        .route(
            "/v1/principals/{did}/agents",
            get(crate::owner_http::get_agents),
        )
        .route(
            "/v1/principals/{did}/approvals",
            get(crate::owner_http::get_approvals),
        )
        .route("/v1/listings", get(crate::market_http::get_listings))
        .route("/v1/listings/{id}", get(crate::market_http::get_listing))
        .route("/v1/rfqs", get(crate::market_http::get_rfqs))
        .route("/v1/rfqs/{id}", get(crate::market_http::get_rfq))
        .route("/v1/tasks/{id}", get(crate::market_http::get_task))
        .route(
            "/v1/subscriptions/{id}",
            get(crate::market_http::get_subscription),
        )
        .route("/v1/bounties/{id}", get(crate::market_http::get_bounty))
        .route("/v1/orders/{id}", get(crate::market_http::get_order))
        .route("/v1/licenses/{id}", get(crate::market_http::get_license))
        .route(
            "/v1/reputation/{did}",
            get(crate::market_http::get_reputation),
        )
        .route(
            "/v1/agents/{did}/card",
            get(crate::market_http::get_agent_card),
        )
        .route("/v1/health", get(get_health))
        .route("/checkpoint", get(get_checkpoint))
        .route("/v1/log/key", get(get_log_key))
        .route("/v1/log/entries/{index}", get(get_log_entry))
        .route("/v1/log/proof/consistency", get(get_consistency))
        .route("/v1/receipts/{index}", get(get_receipt))
        .route("/tile/{*path}", get(get_tile))
        .route("/v1/openapi.json", get(get_openapi))
        .route("/metrics", get(get_metrics))
        .merge(agentrail_dashboard::router())
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(axum::middleware::map_response(harden))
        .with_state(app)
}

/// Every answer, JSON and text alike, is never to be sniffed as a page or
/// framed (the dashboard's own files carry their stricter policy).
async fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    response
}

async fn read_body(body: Body) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, BODY_BYTES_MAX)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is larger than {BODY_BYTES_MAX} bytes"),
            )
        })
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "signature_malformed",
                format!("the {name} header is not ASCII"),
            )
        }),
    }
}

async fn queue_and_wait(
    app: &App,
    command: agentrail_core::Authenticated,
    request: EntryRequest,
) -> Response {
    let (reply, answer) = oneshot::channel();
    let queued = app.queue.submit(Job {
        command,
        request,
        reply,
    });
    answer_when_done(app, queued, answer).await
}

/// The response to a queued command, once the writer (or the verifier
/// stage) answered.
async fn answer_when_done(
    app: &App,
    queued: Result<(), QueueError>,
    answer: oneshot::Receiver<Reply>,
) -> Response {
    let refusal = match queued {
        Ok(()) => match answer.await {
            Ok(Ok(response)) => return axum::Json(response).into_response(),
            Ok(Err(refusal)) => refusal,
            // The writer stopped without answering: whether it committed
            // the command is not known here.
            Err(_) => Refusal::Unknown,
        },
        Err(QueueError::Full) => Refusal::Overloaded,
        Err(QueueError::Stopped) => Refusal::Stopped,
    };
    let metrics = &app.ledger.metrics;
    match refusal {
        Refusal::Rejected(rejection) => from_rejection(rejection).into_response(),
        Refusal::Request(error) => {
            if error.status == StatusCode::UNAUTHORIZED {
                metrics
                    .unauthenticated
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            error.into_response()
        }
        Refusal::Overloaded => {
            metrics
                .queue_full
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ApiError::busy("overloaded", "the ledger is busy; retry shortly").into_response()
        }
        Refusal::Stopped => ApiError::busy("shutting_down", "the node is stopping").into_response(),
        Refusal::Unavailable => ApiError::busy(
            "storage_unavailable",
            "the journal could not be written; the command was not applied",
        )
        .into_response(),
        Refusal::NotLeader => {
            let leader = app.ledger.leader_url().unwrap_or_default();
            let message = if leader.is_empty() {
                "this node is a standby and no node leads yet; the command was not applied: retry shortly".to_owned()
            } else {
                format!("this node is a standby; the command was not applied: send it to the leader at {leader}")
            };
            ApiError::busy("not_leader", &message).into_response()
        }
        Refusal::Unknown => ApiError::busy(
            "outcome_unknown",
            "the storage failed while the command was being committed and it may have landed; retry with the same idempotency key, or look for it in the journal",
        )
        .into_response(),
    }
}

async fn post_command(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let _in_flight = app.ledger.metrics.command_started();
    let (reply, answer) = oneshot::channel();
    match prepare(&app.ledger, &method, &uri, &headers, body, reply).await {
        Ok(check) => {
            let queued = app.verifier.submit(check);
            answer_when_done(&app, queued, answer).await
        }
        Err(error) => answer_when_done(&app, Ok(()), refused(error)).await,
    }
}

/// An answer that is already there.
fn refused(error: ApiError) -> oneshot::Receiver<Reply> {
    let (reply, answer) = oneshot::channel();
    let _ = reply.send(Err(Refusal::Request(error)));
    answer
}

/// Reads the body and checks the signature headers, everything but the
/// signature itself, which the verifier stage checks in batches.
async fn prepare(
    ledger: &Ledger,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    reply: oneshot::Sender<Reply>,
) -> Result<Check, ApiError> {
    let bytes = read_body(body).await?;
    let digest = header_text(headers, "content-digest")?;
    let input = header_text(headers, "signature-input")?;
    let signature = header_text(headers, "signature")?;
    let signed = match (input, signature) {
        (Some(input), Some(signature)) => Some(SignatureHeaders {
            content_digest: digest.unwrap_or_default().to_owned(),
            signature_input: input.to_owned(),
            signature: signature.to_owned(),
        }),
        _ => None,
    };
    let prepared = httpsig::prepare(
        method.as_str(),
        uri.path(),
        &bytes,
        signed.as_ref(),
        digest.is_some(),
        ledger.now().0,
        ledger.network(),
    )
    .map_err(from_signature)?;
    Ok(Check {
        prepared,
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        headers: signed.expect("prepared requests carry their headers"),
        body: bytes,
        reply,
    })
}

/// The verifier stage on plain values, one request at a time: headers,
/// signature, nonce, then the command's shape.
// The plain inputs a handler holds, one per argument, so that a benchmark
// drives exactly the verifier stage.
#[allow(clippy::too_many_arguments)]
pub fn authenticate_request(
    nonces: &Nonces,
    method: &str,
    path: &str,
    signed: Option<SignatureHeaders>,
    digest_present: bool,
    bytes: &[u8],
    now: u64,
    network: &str,
) -> Result<(agentrail_core::Authenticated, EntryRequest), ApiError> {
    let verified = httpsig::verify(
        method,
        path,
        bytes,
        signed.as_ref(),
        digest_present,
        now,
        network,
    )
    .map_err(from_signature)?;
    let headers = signed.expect("verified requests carry their headers");
    admit(nonces, verified, method, path, headers, bytes, now)
}

/// After a valid signature: the nonce is recorded (a reused one refuses the
/// request), then the body is read as a command.
pub fn admit(
    nonces: &Nonces,
    verified: httpsig::Verified,
    method: &str,
    path: &str,
    headers: SignatureHeaders,
    bytes: &[u8],
    now: u64,
) -> Result<(agentrail_core::Authenticated, EntryRequest), ApiError> {
    if !nonces.record(verified.signer, &verified.nonce, verified.created, now)? {
        return Err(from_signature(SignatureError::NonceReused));
    }
    let command: Command = serde_json::from_slice(bytes).map_err(from_json)?;
    let request = EntryRequest::Http {
        method: method.to_owned(),
        path: path.to_owned(),
        content_digest: headers.content_digest,
        signature_input: headers.signature_input,
        signature: headers.signature,
        body: encode_body(bytes),
    };
    Ok((
        agentrail_core::Authenticated::assume_verified(verified.signer, command),
        request,
    ))
}

async fn post_faucet(State(app): State<App>, body: Body) -> Response {
    let Some(key) = app.faucet_key.clone() else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "faucet_disabled",
            "the faucet exists only in dev mode (agentrail serve --dev)",
        )
        .into_response();
    };
    let result = async {
        let bytes = read_body(body).await?;
        let request: FaucetRequest = serde_json::from_slice(&bytes).map_err(from_json)?;
        if request.amount > FAUCET_AMOUNT_MAX {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "faucet_limit",
                "the faucet gives at most 1000000 USD at a time",
            )
            .with_param("amount"));
        }
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce)
            .map_err(|_| ApiError::busy("unavailable", "no randomness available"))?;
        let command = Command::Deposit(Deposit {
            to: request.to,
            amount: request.amount,
            idempotency_key: format!("faucet-{}", hex::encode(nonce)),
            chain: None,
        });
        let signed = SignedCommand::sign(command, &key).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string())
        })?;
        let authenticated = signed.clone().verify().map_err(from_rejection)?;
        Ok((
            authenticated,
            EntryRequest::Node {
                command: Box::new(signed),
            },
        ))
    }
    .await;
    match result {
        Ok((command, request)) => queue_and_wait(&app, command, request).await,
        Err(error) => error.into_response(),
    }
}

pub(crate) fn path_did(path: Result<Path<String>, PathRejection>) -> Result<Did, ApiError> {
    let Path(text) =
        path.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))?;
    parse_did(&text)
}

/// A record the state forgot a retention after it ended, from the
/// archive, picked out by `pick` (`None`: not archived, or another kind).
pub(crate) fn from_archive<T>(
    ledger: &Ledger,
    kind: ArchiveKind,
    id: &str,
    pick: impl FnOnce(Archived) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    ledger
        .archived(kind, id)
        .map(|archived| archived.and_then(pick))
        .map_err(|e| ApiError::busy("storage_unavailable", &e.to_string()))
}

/// Reads the state, answering once what was read is durable, or answers
/// 503 while the ledger recovers from a storage failure.
pub(crate) async fn read_state<T>(
    ledger: &Ledger,
    read: impl FnOnce(&agentrail_core::State) -> T,
) -> Result<T, ApiError> {
    ledger.read_durable(read).await.ok_or_else(|| {
        ApiError::busy(
            "storage_unavailable",
            "the ledger is recovering from a storage failure; retry shortly",
        )
    })
}

async fn balance_of(ledger: &Ledger, did: Did) -> Result<Option<BalanceResponse>, ApiError> {
    let balance = read_state(ledger, |state| state.balance(&did)).await?;
    Ok(balance.map(|b| BalanceResponse {
        did,
        available: b.available,
        held: b.held,
    }))
}

async fn get_balance(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<BalanceResponse>, ApiError> {
    let did = path_did(path)?;
    balance_of(&app.ledger, did)
        .await?
        .map(axum::Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_account",
                format!("{did} has no account"),
            )
        })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    before: Option<u64>,
    limit: Option<usize>,
}

async fn get_history(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<axum::Json<HistoryPage>, ApiError> {
    let did = path_did(path)?;
    let Query(query) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > HISTORY_PAGE_MAX {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "limit must be 1 to 200",
        )
        .with_param("limit"));
    }
    let (items, next_before) = app
        .ledger
        .history(&did, query.before, limit)
        .map_err(|e| ApiError::busy("storage_unavailable", &e.to_string()))?;
    Ok(axum::Json(HistoryPage { items, next_before }))
}

async fn get_hold(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<HoldResponse>, ApiError> {
    let Path(id) =
        path.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))?;
    let status = match read_state(&app.ledger, |state| state.hold_status(&id)).await? {
        Some(status) => Some(status),
        None => from_archive(
            &app.ledger,
            ArchiveKind::Hold,
            &id,
            |archived| match archived {
                Archived::Hold { status, .. } => Some(status),
                _ => None,
            },
        )?,
    };
    status
        .map(|status| {
            axum::Json(HoldResponse {
                id: id.clone(),
                status,
            })
        })
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "hold_not_found",
                "no hold has this id",
            )
            .with_param("id")
        })
}

async fn get_channel(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<agentrail_core::state::ChannelView>, ApiError> {
    let Path(text) =
        path.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))?;
    let id = agentrail_core::channel::ChannelId::parse(&text).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            "a channel id is 64 lower-case hex digits",
        )
        .with_param("id")
    })?;
    read_state(&app.ledger, |state| state.channel(&id))
        .await?
        .map(axum::Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "channel_not_found",
                "no channel has this id",
            )
            .with_param("id")
        })
}

async fn get_approval(
    State(app): State<App>,
    path: Result<Path<u64>, PathRejection>,
) -> Result<axum::Json<ApprovalResponse>, ApiError> {
    let id = path_index(path)?;
    let status = match read_state(&app.ledger, |state| state.approval_status(id)).await? {
        Some(status) => Some(status),
        None => from_archive(
            &app.ledger,
            ArchiveKind::Approval,
            &id.to_string(),
            |archived| match archived {
                Archived::Approval { status, .. } => Some(status),
                _ => None,
            },
        )?,
    };
    status
        .map(|status| axum::Json(ApprovalResponse { id, status }))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "approval_not_found",
                "no approval has this id",
            )
            .with_param("id")
        })
}

async fn get_grant(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<agentrail_core::state::GrantStatus>, ApiError> {
    let did = path_did(path)?;
    read_state(&app.ledger, |state| {
        state.grant_status(&did, state.clock().max(app.ledger.now()))
    })
    .await?
    .map(axum::Json)
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_grant",
            format!("{did} is not an agent or a session"),
        )
    })
}

async fn get_passport(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<Passport>, ApiError> {
    let did = path_did(path)?;
    let now = app.ledger.now();
    let (kind, grant, chain, listings, reputation) = read_state(&app.ledger, |state| {
        let kind = state.identity_kind(&did)?;
        let listings = state.listings_of(&did);
        let reputation = (kind != IdentityKind::Session).then(|| state.reputation(&did));
        let grant = state.grant_status(&did, state.clock().max(now));
        let mut chain = vec![did];
        let mut current = grant.as_ref().map(|g| g.grant.grant().issuer);
        while let Some(issuer) = current {
            chain.push(issuer);
            current = state
                .grant_status(&issuer, now)
                .map(|g| g.grant.grant().issuer);
        }
        Some((kind, grant, chain, listings, reputation))
    })
    .await?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_identity",
            format!("{did} is not registered"),
        )
    })?;
    let balance = match kind {
        IdentityKind::Session => None,
        _ => balance_of(&app.ledger, did).await?,
    };
    let (recent, _) = app
        .ledger
        .history(&did, None, 10)
        .map_err(|e| ApiError::busy("storage_unavailable", &e.to_string()))?;
    Ok(axum::Json(Passport {
        did,
        kind,
        owner_chain: chain,
        grant,
        balance,
        recent,
        listings,
        reputation,
    }))
}

async fn get_health(State(app): State<App>) -> axum::Json<Health> {
    let clock = app.ledger.read(|state| state.clock());
    let genesis = app.ledger.genesis();
    let chain = match genesis.chain {
        None => None,
        Some(binding) => Some(
            app.ledger
                .chain_health
                .lock()
                .expect("chain health lock")
                .clone()
                .unwrap_or_else(|| agentrail_wire::api::ChainHealth {
                    binding: Some(binding),
                    deposits_credited: app
                        .ledger
                        .read(|state| state.chain_deposits().0)
                        .unwrap_or_default(),
                    ..Default::default()
                }),
        ),
    };
    let alarm = chain.as_ref().is_some_and(|chain| chain.alarm.is_some());
    axum::Json(Health {
        status: if clock.is_some() && !alarm {
            "ok"
        } else {
            "degraded"
        }
        .to_owned(),
        chain,
        journal_len: app.ledger.journal_len(),
        clock: clock.unwrap_or_default(),
        dev: app.faucet_key.is_some(),
        operator: app.ledger.genesis().operator,
        network: app.ledger.network().to_owned(),
        replication: app.ledger.replication_health(),
    })
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// The newest signed checkpoint (C2SP tlog-checkpoint, as a signed note).
async fn get_checkpoint(State(app): State<App>) -> Response {
    text(app.ledger.checkpoint().note.clone())
}

/// The log's verifier key (`<name>+<key id>+<base64 key>`).
async fn get_log_key(State(app): State<App>) -> Response {
    text(format!("{}\n", app.ledger.log_key()))
}

fn path_index(path: Result<Path<u64>, PathRejection>) -> Result<u64, ApiError> {
    path.map(|Path(index)| index).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            "the index must be a non-negative integer",
        )
        .with_param("index")
    })
}

fn unavailable() -> ApiError {
    ApiError::busy(
        "storage_unavailable",
        "the journal is being recovered; retry shortly",
    )
}

fn stored<T>(result: Option<Result<T, agentrail_store::StoreError>>) -> Result<T, ApiError> {
    match result {
        Some(Ok(value)) => Ok(value),
        Some(Err(error)) => {
            tracing::error!(%error, "reading the log failed");
            Err(unavailable())
        }
        None => Err(unavailable()),
    }
}

/// Leaf `index` of the published tree.
fn leaf_at(app: &App, index: u64, size: u64) -> Result<Vec<u8>, ApiError> {
    if index >= size {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_in_log",
            format!(
                "the log's checkpoint covers entries 0 to {}",
                size.saturating_sub(1)
            ),
        )
        .with_param("index"));
    }
    stored(app.ledger.leaves(index, 1))?
        .pop()
        .ok_or_else(unavailable)
}

async fn get_log_entry(
    State(app): State<App>,
    path: Result<Path<u64>, PathRejection>,
) -> Result<axum::Json<LogEntry>, ApiError> {
    let index = path_index(path)?;
    let leaf = leaf_at(&app, index, app.ledger.checkpoint().size)?;
    Ok(axum::Json(LogEntry {
        index,
        leaf_hash: STANDARD.encode(merkle::leaf_hash(&leaf)),
        leaf: STANDARD.encode(leaf),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    from: u64,
    to: u64,
}

async fn get_consistency(
    State(app): State<App>,
    query: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Result<axum::Json<ConsistencyProof>, ApiError> {
    let Query(ConsistencyQuery { from, to }) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    let size = app.ledger.checkpoint().size;
    if from > to || to > size {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_range",
            format!("need 0 <= from <= to <= {size} (the checkpoint's tree size)"),
        )
        .with_param("to"));
    }
    let proof = stored(
        app.ledger
            .with_tree(|nodes| merkle::consistency_proof(nodes, from, to)),
    )?;
    Ok(axum::Json(ConsistencyProof {
        from,
        to,
        proof: proof.iter().map(|h| STANDARD.encode(h)).collect(),
    }))
}

async fn get_receipt(
    State(app): State<App>,
    path: Result<Path<u64>, PathRejection>,
) -> Result<axum::Json<Receipt>, ApiError> {
    let index = path_index(path)?;
    let checkpoint = app.ledger.checkpoint();
    let leaf = leaf_at(&app, index, checkpoint.size)?;
    let proof = stored(
        app.ledger
            .with_tree(|nodes| merkle::inclusion_proof(nodes, index, checkpoint.size)),
    )?;
    Ok(axum::Json(Receipt {
        index,
        tree_size: checkpoint.size,
        leaf_hash: STANDARD.encode(merkle::leaf_hash(&leaf)),
        leaf: STANDARD.encode(leaf),
        inclusion_proof: proof.iter().map(|h| STANDARD.encode(h)).collect(),
        checkpoint: checkpoint.note.clone(),
    }))
}

/// C2SP tlog-tiles: hash tiles and entry bundles of the published tree.
async fn get_tile(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "no_such_tile", "no such tile");
    let Path(path) = path.map_err(|_| not_found())?;
    let tile = Tile::parse(&path).ok_or_else(not_found)?;
    let size = app.ledger.checkpoint().size;
    let first = tile.index.checked_mul(TILE_WIDTH).ok_or_else(not_found)?;
    let count = tile.count();
    let body = match tile.level {
        None => {
            if first.checked_add(count).is_none_or(|end| end > size) {
                return Err(not_found());
            }
            let leaves = stored(app.ledger.leaves(first, count as usize))?;
            let mut body = Vec::new();
            for leaf in leaves {
                let length = u16::try_from(leaf.len()).map_err(|_| {
                    tracing::error!(bytes = leaf.len(), "a journal entry exceeds 64 KiB");
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "entry_too_large",
                        "an entry of this bundle exceeds 64 KiB",
                    )
                })?;
                body.extend_from_slice(&length.to_be_bytes());
                body.extend_from_slice(&leaf);
            }
            body
        }
        Some(tile_level) => {
            let level = tile_level * TILE_HEIGHT;
            // Node (level, i) exists once the tree holds (i + 1)·2^level leaves.
            let complete = size >> level;
            if first.checked_add(count).is_none_or(|end| end > complete) {
                return Err(not_found());
            }
            let row = u8::try_from(tile_level).map_err(|_| not_found())?;
            let hashes =
                stored(app.ledger.tile_hashes(row, first, count))?.ok_or_else(not_found)?;
            hashes.concat()
        }
    };
    let cache = if tile.width.is_none() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response())
}

async fn get_openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document(),
    )
        .into_response()
}

async fn get_metrics(State(app): State<App>) -> Response {
    let mut text = app.ledger.metrics.render(
        app.ledger.journal_len(),
        &app.ledger.read(|state| state.sizes()).unwrap_or_default(),
        &app.ledger.store_files(),
    );
    if let Some(chain) = app
        .ledger
        .chain_health
        .lock()
        .expect("chain health lock")
        .as_ref()
    {
        crate::metrics::render_chain(&mut text, chain);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn preflight(router: Router, origin: &str) -> (StatusCode, Option<String>) {
        let request = axum::http::Request::builder()
            .method(Method::OPTIONS)
            .uri(COMMANDS_PATH)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-digest,signature-input,signature,content-type",
            )
            .body(Body::empty())
            .unwrap();
        let response = router.oneshot(request).await.unwrap();
        let allowed = response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned());
        (response.status(), allowed)
    }

    fn api(cors: tower_http::cors::CorsLayer) -> Router {
        Router::new()
            .route(COMMANDS_PATH, post(|| async { "ok" }))
            .layer(cors)
    }

    #[tokio::test]
    async fn pages_from_the_listed_origins_may_call_the_api_and_no_others() {
        let listed = cors(&["https://dash.example".to_owned()], false).unwrap();
        assert_eq!(
            preflight(api(listed.clone()), "https://dash.example").await,
            (StatusCode::OK, Some("https://dash.example".to_owned()))
        );
        assert_eq!(preflight(api(listed), "https://evil.example").await.1, None);
        assert_eq!(
            preflight(api(cors(&[], false).unwrap()), "https://dash.example")
                .await
                .1,
            None,
            "no origin is allowed unless named"
        );
        assert_eq!(
            preflight(api(cors(&[], true).unwrap()), "http://localhost:3000")
                .await
                .1,
            Some("*".to_owned()),
            "dev mode lets every page call"
        );
        for bad in [
            "dash.example",
            "https://dash.example/path",
            "ftp://x",
            "https://a\nb",
            "https://Dash.example",
            "https://user@dash.example",
            "https://dash.example?x",
        ] {
            assert!(cors(&[bad.to_owned()], false).is_err(), "{bad}");
        }
    }
}
