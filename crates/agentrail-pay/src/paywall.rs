//! HTTP 402 for axum providers: one `tower` layer.
//!
//! ```ignore
//! let app = Router::new()
//!     .route("/thumbnail", post(thumbnail))
//!     .route("/stats", post(stats))
//!     .layer(Paywall::new(payee, network_id)
//!         .per_call("/thumbnail", Amount::from_atomic(2_000))
//!         .per_unit("/stats", Amount::from_atomic(10), "kilobyte", Amount::from_atomic(100_000))
//!         .layer());
//! ```
//!
//! A priced route without a payment header answers `402` with
//! `PAYMENT-REQUIRED`. A paid request's voucher is checked by the [`Payee`]
//! (locally) before the handler runs, as credit
//! ([`Payee::accept_credit`]). Each sub-channel has a **credit**: what its
//! vouchers added, minus what its calls were charged. A call is served only
//! if the credit covers its most expensive outcome: the price of a call, or
//! `max_per_call` for a route priced per unit, where the handler reports
//! what it used by putting [`Units`] in the response's extensions and the
//! call costs `units × price` (capped at `max_per_call`). A call whose
//! handler answers an error status (4xx, 5xx) costs nothing. The settlement
//! response proposes the next voucher: the total that brings the credit back
//! to what the next call needs, as the channel scheme's server proposals do.
//! So the server never serves unpaid work, and the payee collects what the
//! calls cost, never the credit signed ahead ([`crate::Payee`]): what a
//! payer leaves unspent returns to it when the channel ends. Credits and
//! charges are kept with the vouchers, so they survive a restart.
//!
//! Web pages may pay too: the priced routes answer CORS, by default for
//! every origin, letting a page send `PAYMENT-SIGNATURE` / `X-PAYMENT` and
//! read `PAYMENT-REQUIRED` / `PAYMENT-RESPONSE`, as x402's HTTP transport
//! needs ([`x402_cors`]; [`Paywall::cors`] narrows it). The app's other
//! routes keep whatever CORS the app gives them; on a priced route these
//! rules replace the app's.
//!
//! Refusals are `402` with `PAYMENT-RESPONSE` naming the reason
//! (`errorReason`: `voucher_signature_invalid`, `voucher_stale`,
//! `channel_exhausted`, `channel_expired`, `channel_closed`, …) and a fresh
//! `PAYMENT-REQUIRED`; a malformed payment header is a `400`; the payee's
//! own trouble (its store, the node unreachable, a full queue) is a `503`
//! with `Retry-After`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use agentrail_core::Amount;
use agentrail_core::channel::VoucherTerms;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode};
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::exact::{self, ExactError, ExactTerms, Settler};
use crate::exact_store::{ExactStore, Record};
use crate::facilitator::FacilitatorClient;
use crate::x402::{
    self, ChainPayload, ChannelPayload, ChannelState, HashChainOffer, PaymentPayload,
    PaymentRequired, PaymentRequirements, RequirementExtra, ResourceInfo, SettlementResponse,
};
use crate::{Payee, PaymentError};

/// Units of work a metered handler reports in its response's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Units(pub u64);

/// What a route costs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Price {
    PerCall(Amount),
    PerUnit {
        price: Amount,
        unit: String,
        max_per_call: Amount,
    },
}

/// Prices per route and the payee that is paid; [`Paywall::layer`] makes
/// the `tower` layer.
#[derive(Clone, Debug)]
pub struct Paywall {
    payee: Payee,
    network: String,
    routes: HashMap<String, Price>,
    cors: CorsLayer,
    exact: Option<Arc<ExactOffer>>,
    /// The longest hash chain a commitment may name on routes priced per
    /// call; 0 offers none.
    chain_max: u32,
}

/// The longest hash chain a paywall takes by default.
pub const CHAIN_MAX_DEFAULT: u32 = 4_096;

/// Who settles the `exact` payments a paywall accepts.
#[derive(Debug)]
pub enum ExactSettlement {
    /// The paywall itself, from its own EVM key.
    Local(Arc<Settler>),
    /// A facilitator by URL (`agentrail facilitator`, or any x402 one).
    Facilitator(FacilitatorClient),
}

impl ExactSettlement {
    async fn verify(
        &self,
        requirements: &PaymentRequirements,
        payload: &PaymentPayload,
    ) -> Result<(), ExactError> {
        match self {
            ExactSettlement::Local(settler) => {
                settler.verify(requirements, payload).await.map(drop)
            }
            ExactSettlement::Facilitator(client) => {
                client.verify(requirements, payload).await.map(drop)
            }
        }
    }

    async fn settle(
        &self,
        requirements: &PaymentRequirements,
        payload: &PaymentPayload,
    ) -> Result<String, ExactError> {
        match self {
            ExactSettlement::Local(settler) => settler
                .settle(requirements, payload)
                .await
                .map(|(_, tx)| tx.to_string()),
            ExactSettlement::Facilitator(client) => client.settle(requirements, payload).await,
        }
    }
}

/// x402's `exact` scheme offered beside the channel scheme: an EIP-3009
/// transfer of the token per call, for routes priced per call (a metered
/// route's cost is known only after the call, which one fixed transfer
/// cannot pay without charging more than the price).
#[derive(Debug)]
pub struct ExactOffer {
    terms: ExactTerms,
    settlement: ExactSettlement,
    store: ExactStore,
    settle_before: bool,
    /// Authorizations and payment ids of requests being served.
    in_flight: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl ExactOffer {
    /// Accepts `terms`, settled by `settlement`, remembering payments in
    /// the store at `path` (a file).
    pub fn open(
        path: &std::path::Path,
        terms: ExactTerms,
        settlement: ExactSettlement,
    ) -> Result<ExactOffer, crate::exact_store::StoreError> {
        Ok(ExactOffer {
            terms,
            settlement,
            store: ExactStore::open(path)?,
            settle_before: false,
            in_flight: std::sync::Mutex::new(std::collections::HashSet::new()),
        })
    }

    /// Settles before the handler runs instead of after it succeeded: the
    /// handler never runs unpaid, and a call whose handler fails is paid.
    pub fn settle_before_handler(mut self) -> ExactOffer {
        self.settle_before = true;
        self
    }

    pub fn terms(&self) -> &ExactTerms {
        &self.terms
    }

    /// Marks `keys` in flight, or says which one already is.
    fn claim(self: &Arc<Self>, keys: Vec<String>) -> Option<InFlight> {
        let mut in_flight = self.in_flight.lock().expect("in-flight lock");
        if keys.iter().any(|key| in_flight.contains(key)) {
            return None;
        }
        in_flight.extend(keys.iter().cloned());
        Some(InFlight {
            offer: Arc::clone(self),
            keys,
        })
    }
}

/// Releases a request's authorization and id when it is answered.
struct InFlight {
    offer: Arc<ExactOffer>,
    keys: Vec<String>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut in_flight = self.offer.in_flight.lock().expect("in-flight lock");
        for key in &self.keys {
            in_flight.remove(key);
        }
    }
}

/// CORS for x402 over HTTP: any origin; a page may send the payment
/// headers and read the 402's and the settlement's.
pub fn x402_cors() -> CorsLayer {
    use axum::http::{HeaderName, Method};
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            HeaderName::from_static("content-type"),
            HeaderName::from_static("payment-signature"),
            HeaderName::from_static("x-payment"),
        ])
        .expose_headers([
            HeaderName::from_static("payment-required"),
            HeaderName::from_static("payment-response"),
            HeaderName::from_static("retry-after"),
        ])
}

impl Paywall {
    pub fn new(payee: Payee, network: &str) -> Paywall {
        Paywall {
            payee,
            network: network.to_owned(),
            routes: HashMap::new(),
            cors: x402_cors(),
            exact: None,
            chain_max: CHAIN_MAX_DEFAULT,
        }
    }

    /// The longest hash chain (docs/protocol.md, "Hash-chain payments") a
    /// payer may commit to on the routes priced per call, at most
    /// [`agentrail_core::hashchain::CHAIN_LENGTH_MAX`]; 0 offers none, and
    /// every call then pays with a signed voucher.
    pub fn hash_chains(mut self, max_length: u32) -> Paywall {
        self.chain_max = max_length.min(agentrail_core::hashchain::CHAIN_LENGTH_MAX);
        self
    }

    /// Offers x402's `exact` scheme too, on the routes priced per call.
    pub fn exact(mut self, offer: ExactOffer) -> Paywall {
        self.exact = Some(Arc::new(offer));
        self
    }

    /// Prices `path` per call.
    pub fn per_call(mut self, path: &str, price: Amount) -> Paywall {
        self.routes.insert(path.to_owned(), Price::PerCall(price));
        self
    }

    /// Prices `path` per unit the handler reports ([`Units`]); one call may
    /// cost at most `max_per_call`.
    pub fn per_unit(
        mut self,
        path: &str,
        price: Amount,
        unit: &str,
        max_per_call: Amount,
    ) -> Paywall {
        self.routes.insert(
            path.to_owned(),
            Price::PerUnit {
                price,
                unit: unit.to_owned(),
                max_per_call,
            },
        );
        self
    }

    /// Replaces the CORS rules (by default [`x402_cors`]), for example to
    /// let only some origins' pages pay.
    pub fn cors(mut self, cors: CorsLayer) -> Paywall {
        self.cors = cors;
        self
    }

    pub fn layer(self) -> PaywallLayer {
        PaywallLayer {
            paywall: Arc::new(self),
        }
    }

    fn requirements(&self, price: &Price) -> PaymentRequirements {
        let (amount, extra) = match price {
            Price::PerCall(amount) => (
                *amount,
                RequirementExtra {
                    pricing: Some("per_call".into()),
                    hash_chain: (self.chain_max > 0).then_some(HashChainOffer {
                        version: 1,
                        max_length: self.chain_max,
                    }),
                    ..RequirementExtra::default()
                },
            ),
            Price::PerUnit {
                price,
                unit,
                max_per_call,
            } => (
                *price,
                RequirementExtra {
                    pricing: Some("per_unit".into()),
                    unit: Some(unit.clone()),
                    max_amount_per_call: Some(*max_per_call),
                    ..RequirementExtra::default()
                },
            ),
        };
        PaymentRequirements {
            scheme: x402::SCHEME.into(),
            network: self.network.clone(),
            asset: x402::ASSET.into(),
            pay_to: self.payee.did().to_string(),
            amount,
            max_timeout_seconds: 60,
            extra,
        }
    }

    /// The `exact` requirement of a route, when it has one.
    fn exact_requirements(&self, price: &Price) -> Option<PaymentRequirements> {
        match (price, &self.exact) {
            (Price::PerCall(amount), Some(offer)) => Some(offer.terms.requirements(*amount)),
            _ => None,
        }
    }

    fn payment_required(&self, path: &str, price: &Price, error: &str) -> Response<Body> {
        let required = PaymentRequired {
            x402_version: x402::X402_VERSION,
            error: Some(error.to_owned()),
            resource: ResourceInfo {
                url: path.to_owned(),
                description: None,
                mime_type: None,
            },
            accepts: std::iter::once(self.requirements(price))
                .chain(self.exact_requirements(price))
                .collect(),
            extensions: self
                .exact_requirements(price)
                .map(|_| payment_identifier_declaration()),
        };
        let body = serde_json::json!({"error": {"code": "payment_required", "message": error}});
        let mut response = json_response(StatusCode::PAYMENT_REQUIRED, &body);
        insert_header(
            &mut response,
            x402::PAYMENT_REQUIRED,
            &x402::encode_header(&required),
        );
        response
    }

    fn refused(&self, path: &str, price: &Price, code: &str, message: &str) -> Response<Body> {
        let mut response = self.payment_required(path, price, message);
        let settlement = SettlementResponse::refusal(&self.network, code, message, String::new());
        refusal_answer(&mut response, &settlement, code, message);
        response
    }
}

/// Puts a refusal's `PAYMENT-RESPONSE` and its typed error body on `response`.
fn refusal_answer(
    response: &mut Response<Body>,
    settlement: &SettlementResponse,
    code: &str,
    message: &str,
) {
    insert_header(
        response,
        x402::PAYMENT_RESPONSE,
        &x402::encode_header(settlement),
    );
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    *response.body_mut() = Body::from(body.to_string());
}

/// x402's `payment-identifier` extension, declared optional: a client that
/// sends an id may retry a paid request with it and is not charged twice.
fn payment_identifier_declaration() -> serde_json::Map<String, serde_json::Value> {
    let declaration = serde_json::json!({
        "info": {"required": false},
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "required": {"type": "boolean"},
                "id": {"type": "string", "minLength": 16, "maxLength": 128, "pattern": "^[a-zA-Z0-9_-]+$"}
            },
            "required": ["required"]
        }
    });
    let mut extensions = serde_json::Map::new();
    extensions.insert(x402::PAYMENT_IDENTIFIER.into(), declaration);
    extensions
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    insert_header(&mut response, "content-type", "application/json");
    response
}

fn insert_header(response: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// The `tower` layer of a [`Paywall`].
#[derive(Clone, Debug)]
pub struct PaywallLayer {
    paywall: Arc<Paywall>,
}

impl<S> Layer<S> for PaywallLayer {
    type Service = PaywallService<S>;

    fn layer(&self, inner: S) -> PaywallService<S> {
        PaywallService {
            paywall: Arc::clone(&self.paywall),
            inner,
        }
    }
}

#[derive(Clone, Debug)]
pub struct PaywallService<S> {
    paywall: Arc<Paywall>,
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<Request<Body>> for PaywallService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let paywall = Arc::clone(&self.paywall);
        // The clone that was polled ready serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            let Some(price) = paywall.routes.get(&path).cloned() else {
                return inner.call(request).await;
            };
            // A request without an Origin is not a page's: CORS has
            // nothing to say to it, and it skips the layer.
            if !request.headers().contains_key(axum::http::header::ORIGIN) {
                return serve_paid(paywall, inner, request, price, path).await;
            }
            // A priced route answers CORS by x402's rules (a page may pay);
            // the app's other routes keep their own.
            let cors = paywall.cors.clone();
            let paid = tower::service_fn(move |request| {
                serve_paid(
                    Arc::clone(&paywall),
                    inner.clone(),
                    request,
                    price.clone(),
                    path.clone(),
                )
            });
            cors.layer(paid).oneshot(request).await
        })
    }
}

/// A request to a priced route: checked, served and charged.
async fn serve_paid<S>(
    paywall: Arc<Paywall>,
    mut inner: S,
    request: Request<Body>,
    price: Price,
    path: String,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<Body>, Response = Response<Body>> + Send,
    S::Future: Send,
{
    let header = request
        .headers()
        .get(x402::PAYMENT_SIGNATURE)
        .or_else(|| request.headers().get(x402::X_PAYMENT));
    let Some(header) = header else {
        return Ok(paywall.payment_required(&path, &price, "PAYMENT-SIGNATURE header is required"));
    };
    let bytes = match header
        .to_str()
        .map_err(|e| e.to_string())
        .and_then(x402::header_bytes)
    {
        Ok(bytes) => bytes,
        Err(reason) => {
            let body = serde_json::json!({"error": {"code": "invalid_payment", "message": reason}});
            return Ok(json_response(StatusCode::BAD_REQUEST, &body));
        }
    };
    // Most calls of a chain: read in one pass.
    if let Some(link) = x402::LinkPayment::parse(&bytes) {
        if link.scheme() != Some(x402::SCHEME) || link.network() != Some(paywall.network.as_str()) {
            return Ok(paywall.refused(
                &path,
                &price,
                "unsupported_scheme",
                "this server accepts the schemes and networks its 402 lists only",
            ));
        }
        return serve_link(paywall, inner, request, price, path, Ok(link.payload)).await;
    }
    let payload: PaymentPayload = match x402::parse_header(&bytes) {
        Ok(payload) => payload,
        Err(reason) => {
            let body = serde_json::json!({"error": {"code": "invalid_payment", "message": reason}});
            return Ok(json_response(StatusCode::BAD_REQUEST, &body));
        }
    };
    if payload.scheme() == Some(x402::EXACT)
        && let (Some(offer), Some(requirements)) =
            (paywall.exact.clone(), paywall.exact_requirements(&price))
    {
        return serve_exact(
            paywall,
            offer,
            inner,
            request,
            requirements,
            price,
            path,
            payload,
        )
        .await;
    }
    if payload.scheme() != Some(x402::SCHEME) || payload.network() != Some(paywall.network.as_str())
    {
        return Ok(paywall.refused(
            &path,
            &price,
            "unsupported_scheme",
            "this server accepts the schemes and networks its 402 lists only",
        ));
    }
    if let Some(link) = payload.chain_link() {
        return serve_link(paywall, inner, request, price, path, link).await;
    }
    let ChannelPayload {
        receipt: voucher,
        payer_id,
        hash_chain,
        ..
    } = match payload.channel() {
        Ok(channel) => channel,
        Err(reason) => {
            let body = serde_json::json!({"error": {"code": "invalid_payment", "message": reason}});
            return Ok(json_response(StatusCode::BAD_REQUEST, &body));
        }
    };
    let needed = match &price {
        Price::PerCall(amount) => *amount,
        Price::PerUnit { max_per_call, .. } => *max_per_call,
    };
    if let Some(start) = &hash_chain {
        match &price {
            Price::PerCall(_) if paywall.chain_max > 0 => {}
            _ => {
                return Ok(paywall.refused(
                    &path,
                    &price,
                    "unsupported_scheme",
                    "this route takes no hash chains (its 402 offers none)",
                ));
            }
        }
        if start.commitment.length > paywall.chain_max {
            return Ok(paywall.refused(
                &path,
                &price,
                "chain_commitment_invalid",
                &format!(
                    "this route takes chains of at most {} links",
                    paywall.chain_max
                ),
            ));
        }
        if start.commitment.unit != needed {
            let error = PaymentError::ChainPrice {
                unit: start.commitment.unit,
                price: needed,
            };
            return Ok(paywall.refused(&path, &price, error.code(), &error.to_string()));
        }
    }
    let accepted = match &hash_chain {
        Some(start) => {
            paywall
                .payee
                .accept_commitment(&voucher, &start.commitment)
                .await
        }
        None => paywall.payee.accept_credit(&voucher).await,
    };
    let accepted = match accepted {
        Ok(accepted) => accepted,
        // The server's own trouble, not the payment's: retry later.
        Err(error @ (PaymentError::Busy | PaymentError::Storage(_) | PaymentError::Node(_))) => {
            let body =
                serde_json::json!({"error": {"code": error.code(), "message": error.to_string()}});
            let mut response = json_response(StatusCode::SERVICE_UNAVAILABLE, &body);
            insert_header(&mut response, "retry-after", "1");
            return Ok(response);
        }
        Err(error) => {
            let code = error.code();
            return Ok(paywall.refused(&path, &price, code, &error.to_string()));
        }
    };
    // The voucher's money joined the credit; the call is served only
    // if the credit covers it, and reserves what it needs until its
    // cost is known, so that concurrent calls on one sub-channel
    // cannot spend it twice. A chain's first call pays with link 1.
    let reserved = match &hash_chain {
        Some(start) => paywall.payee.reveal(
            voucher.channel_id,
            &voucher.sub_channel_id,
            1,
            start.link,
            needed,
        ),
        None => paywall
            .payee
            .reserve(voucher.channel_id, &voucher.sub_channel_id, needed),
    };
    let reservation = match reserved {
        Ok(reservation) => reservation,
        Err(error) => {
            return Ok(paywall.refused(&path, &price, error.code(), &error.to_string()));
        }
    };
    // A clone of the inner service: made ready before it is called.
    let mut response = inner.ready().await?.call(request).await?;
    let cost = call_cost(&response, &price);
    let left = match reservation.charge(cost).await {
        Ok(left) => left,
        // Served and charged in memory; the store's trouble is logged
        // and the charge is written with the sub-channel's next row.
        Err(error) => {
            tracing::error!(code = error.code(), %error, "a charge was not written");
            paywall
                .payee
                .credit(&voucher.channel_id, &voucher.sub_channel_id)
        }
    };
    // The next voucher brings the credit back to what a call needs.
    let next_total = accepted
        .total
        .checked_add(needed.saturating_sub(left))
        .unwrap_or(Amount::MAX);
    let settlement = SettlementResponse {
        success: true,
        transaction: format!(
            "{}/{}/{}",
            voucher.channel_id, voucher.sub_channel_id, voucher.nonce
        ),
        network: paywall.network.clone(),
        payer: Some(payer_id),
        error_reason: None,
        error_message: None,
        channel: Some(ChannelState {
            channel_id: voucher.channel_id,
            sub_channel_id: voucher.sub_channel_id.clone(),
            accumulated_amount: accepted.total,
            nonce: voucher.nonce,
            proposal: VoucherTerms {
                channel_id: voucher.channel_id,
                epoch: 0,
                sub_channel_id: voucher.sub_channel_id.clone(),
                accumulated_amount: next_total,
                nonce: voucher.nonce + 1,
                payee_id: paywall.payee.did(),
            },
        }),
    };
    insert_header(
        &mut response,
        x402::PAYMENT_RESPONSE,
        &x402::encode_header(&settlement),
    );
    Ok(response)
}

/// What a served call costs at `price`: nothing when the handler answered
/// 4xx or 5xx; the units it reported at a per-unit price, at most the most
/// a call may cost.
fn call_cost(response: &Response<Body>, price: &Price) -> Amount {
    if response.status().is_client_error() || response.status().is_server_error() {
        return Amount::ZERO;
    }
    match price {
        Price::PerCall(amount) => *amount,
        Price::PerUnit {
            price,
            max_per_call,
            ..
        } => {
            let units = response.extensions().get::<Units>().map_or(0, |u| u.0);
            price
                .checked_mul(u128::from(units))
                .unwrap_or(Amount::MAX)
                .min(*max_per_call)
        }
    }
}

/// A request paid by the next link of a committed hash chain: one SHA-256
/// and no signature, then served and charged one unit (nothing when the
/// handler fails: the link is spent, its unit stays the payer's credit).
async fn serve_link<S>(
    paywall: Arc<Paywall>,
    mut inner: S,
    request: Request<Body>,
    price: Price,
    path: String,
    link: Result<ChainPayload, String>,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<Body>, Response = Response<Body>> + Send,
    S::Future: Send,
{
    let link = match link {
        Ok(link) => link,
        Err(reason) => {
            let body = serde_json::json!({"error": {"code": "invalid_payment", "message": reason}});
            return Ok(json_response(StatusCode::BAD_REQUEST, &body));
        }
    };
    let amount = match &price {
        Price::PerCall(amount) if paywall.chain_max > 0 => *amount,
        _ => {
            return Ok(paywall.refused(
                &path,
                &price,
                "unsupported_scheme",
                "this route takes no hash chains (its 402 offers none)",
            ));
        }
    };
    let reservation = match paywall.payee.reveal(
        link.channel_id,
        &link.sub_channel_id,
        link.index,
        link.link,
        amount,
    ) {
        Ok(reservation) => reservation,
        Err(error) => {
            return Ok(paywall.refused(&path, &price, error.code(), &error.to_string()));
        }
    };
    let mut response = inner.ready().await?.call(request).await?;
    let cost = call_cost(&response, &price);
    if let Err(error) = reservation.charge(cost).await {
        // Served and charged in memory; written with the next row.
        tracing::error!(code = error.code(), %error, "a charge was not written");
    }
    let settlement = SettlementResponse {
        success: true,
        transaction: format!(
            "{}/{}/link/{}",
            link.channel_id, link.sub_channel_id, link.index
        ),
        network: paywall.network.clone(),
        payer: Some(link.payer_id),
        error_reason: None,
        error_message: None,
        channel: None,
    };
    insert_header(
        &mut response,
        x402::PAYMENT_RESPONSE,
        &x402::encode_header(&settlement),
    );
    Ok(response)
}

/// A request paid with `exact`: checked, served at most once per
/// authorization, and settled (after the handler succeeded, or before it).
#[allow(clippy::too_many_arguments)]
async fn serve_exact<S>(
    paywall: Arc<Paywall>,
    offer: Arc<ExactOffer>,
    mut inner: S,
    request: Request<Body>,
    requirements: PaymentRequirements,
    price: Price,
    path: String,
    payload: PaymentPayload,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<Body>, Response = Response<Body>> + Send,
    S::Future: Send,
{
    let refuse = |error: ExactError| paywall.refused_exact(&path, &price, &error);
    let checked = match exact::check(&requirements, &payload, exact::now_seconds()) {
        Ok(checked) => checked,
        Err(error) => return Ok(refuse(error)),
    };
    let payment_id = payload.payment_identifier().map(str::to_owned);
    if let Some(id) = &payment_id
        && !exact::identifier_valid(id)
    {
        return Ok(refuse(ExactError::IdentifierInvalid));
    }
    let key = checked.key();
    let in_flight = offer.claim(
        std::iter::once(key.clone())
            .chain(payment_id.iter().map(|id| format!("id:{id}")))
            .collect(),
    );
    let Some(_in_flight) = in_flight else {
        return Ok(refuse(ExactError::InProgress));
    };
    let store_error =
        |error: crate::exact_store::StoreError| ExactError::Storage(error.to_string());
    // A retry under a payment id already paid: served again, not charged,
    // a few times while the first authorization is valid.
    if let Some(id) = &payment_id {
        match offer.store.by_identifier(id) {
            Ok(Some((replayed, mut record))) => {
                if record.payer != checked.payer() || record.resource != path {
                    return Ok(refuse(ExactError::IdentifierConflict));
                }
                if record.replays >= crate::exact_store::REPLAYS_MAX
                    || exact::now_seconds() >= record.valid_before
                {
                    return Ok(refuse(ExactError::IdentifierSpent));
                }
                record.replays += 1;
                if let Err(error) = offer.store.put(&replayed, &record) {
                    return Ok(refuse(store_error(error)));
                }
                let mut response = inner.ready().await?.call(request).await?;
                paywall.attach_exact(&mut response, &record.tx, &record.payer);
                return Ok(response);
            }
            Ok(None) => {}
            Err(error) => return Ok(refuse(store_error(error))),
        }
    }
    let known = match offer.store.get(&key) {
        Ok(known) => known,
        Err(error) => return Ok(refuse(store_error(error))),
    };
    let mut record = match known {
        Some(record) if record.served => return Ok(refuse(ExactError::NonceUsed)),
        // Settled, and its call never answered: this is that call.
        Some(record) => Some(record),
        None => None,
    };
    let new_record = |tx: String| Record {
        tx,
        payer: checked.payer(),
        resource: path.clone(),
        served: false,
        payment_id: payment_id.clone(),
        valid_before: checked.authorization.valid_before,
        replays: 0,
    };
    if record.is_none() {
        match offer.settlement.verify(&requirements, &payload).await {
            Ok(()) => {}
            // Used on chain but not recorded here: settled by an earlier
            // request whose answer never left (or by the payer itself). The
            // settle finds its transaction; the call is served once.
            Err(ExactError::NonceUsed) => {
                match offer.settlement.settle(&requirements, &payload).await {
                    Ok(tx) => record = Some(new_record(tx)),
                    Err(error) => return Ok(refuse(error)),
                }
            }
            Err(error) => return Ok(refuse(error)),
        }
    }
    if record.is_none() && offer.settle_before {
        match offer.settlement.settle(&requirements, &payload).await {
            Ok(tx) => record = Some(new_record(tx)),
            Err(error) => return Ok(refuse(error)),
        }
    }
    if let Some(record) = &record
        && let Err(error) = offer.store.put(&key, record)
    {
        return Ok(refuse(store_error(error)));
    }
    let mut response = inner.ready().await?.call(request).await?;
    if response.status().is_client_error() || response.status().is_server_error() {
        // Not settled when the handler failed (after); when settled
        // before, a retry of the same payment is served.
        return Ok(response);
    }
    let mut record = match record {
        Some(record) => record,
        None => match offer.settlement.settle(&requirements, &payload).await {
            Ok(tx) => new_record(tx),
            Err(error) => return Ok(refuse(error)),
        },
    };
    record.served = true;
    if let Err(error) = offer.store.put(&key, &record) {
        // The money moved and the answer is ready: serve it, and say so.
        tracing::error!(%error, key, "an exact payment's answer was not recorded");
    }
    paywall.attach_exact(&mut response, &record.tx, &record.payer);
    Ok(response)
}

impl Paywall {
    fn attach_exact(&self, response: &mut Response<Body>, tx: &str, payer: &str) {
        let Some(offer) = &self.exact else { return };
        let settlement = SettlementResponse {
            success: true,
            transaction: tx.to_owned(),
            network: offer.terms.network(),
            payer: Some(payer.to_owned()),
            error_reason: None,
            error_message: None,
            channel: None,
        };
        insert_header(
            response,
            x402::PAYMENT_RESPONSE,
            &x402::encode_header(&settlement),
        );
    }

    /// An `exact` payment refused: a 402 with a fresh `PAYMENT-REQUIRED`
    /// for the payment's own trouble; 400 for a malformed one; 409 for one
    /// being served; 503 with `Retry-After` for the settling side's
    /// trouble (a pending settlement names its transaction).
    fn refused_exact(&self, path: &str, price: &Price, error: &ExactError) -> Response<Body> {
        let code = error.code();
        let message = error.to_string();
        let status = match error {
            ExactError::Payload(_) | ExactError::IdentifierInvalid => StatusCode::BAD_REQUEST,
            ExactError::InProgress | ExactError::IdentifierConflict => StatusCode::CONFLICT,
            error if error.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::PAYMENT_REQUIRED,
        };
        let mut response = if status == StatusCode::PAYMENT_REQUIRED {
            self.payment_required(path, price, code)
        } else {
            json_response(status, &serde_json::json!({}))
        };
        *response.status_mut() = status;
        if error.is_transient() {
            insert_header(&mut response, "retry-after", "1");
        }
        let network = self
            .exact
            .as_ref()
            .map_or_else(|| self.network.clone(), |offer| offer.terms.network());
        let settlement =
            SettlementResponse::refusal(&network, code, &message, error.pending_transaction());
        refusal_answer(&mut response, &settlement, code, &message);
        response
    }
}
