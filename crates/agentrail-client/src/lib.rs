//! agentrail-client: typed calls for the agentrail node API.
//!
//! Mutating calls are signed per RFC 9421 with the caller's Ed25519 key
//! (see `agentrail_wire::httpsig`); each gets a fresh random nonce and the
//! ledger's network id as its `tag`, so that it is valid on that ledger
//! only. The network id is the one pinned with [`Client::with_network`],
//! or else the one the node's `/v1/health` names, read once.

#![forbid(unsafe_code)]

use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

pub mod market;

use agentrail_core::market::{
    Discovery, DiscoveryPage, LicenseView, ListingKind, ListingView, RfqPage, RfqQuery, RfqView,
    TaskView,
};
use agentrail_core::reputation::Reputation;
use agentrail_core::state::GrantStatus;
use agentrail_core::{Amount, Command, Did};
use agentrail_log::receipt::Receipt;
use agentrail_wire::api::{
    AgentCard, ApprovalResponse, BalanceResponse, COMMANDS_PATH, CommandResponse, ConsistencyProof,
    ErrorBody, ErrorDetail, FAUCET_PATH, FaucetRequest, Health, HistoryPage, HoldResponse,
    LogEntry, Passport,
};
use agentrail_wire::httpsig;
use ed25519_dalek::SigningKey;
use serde::de::DeserializeOwned;

/// The node's default address.
pub const DEFAULT_NODE: &str = "http://127.0.0.1:8402";

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The node refused the request; `error.code` is stable.
    #[error("{} ({}): {}", error.code, status, error.message)]
    Api { status: u16, error: ErrorDetail },
    /// The node could not be reached, or the connection failed.
    #[error("cannot reach the node: {0}")]
    Transport(String),
    /// The node answered something this client does not understand.
    #[error("unexpected answer from the node: {0}")]
    Decode(String),
    /// The TLS set-up failed: a CA file that cannot be read or parsed.
    #[error("TLS: {0}")]
    Tls(String),
}

/// What [`Client::with_observer`] is shown of each answer.
#[derive(Debug)]
pub struct Answer<'a> {
    pub method: &'a str,
    /// The path and query asked for.
    pub path: &'a str,
    pub status: u16,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// A function shown every answer of the node.
#[derive(Clone)]
pub struct Observer(Arc<dyn Fn(&Answer<'_>) + Send + Sync>);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

/// The environment variable naming a PEM file of extra CA certificates
/// (as `--ca-cert` does for the CLI).
pub const CA_CERT_ENV: &str = "AGENTRAIL_CA_CERT";

/// An HTTP client for `http://` and `https://` alike: rustls with the ring
/// provider, the system's roots, and the certificates of the PEM file
/// `ca_cert` as extra roots (a private CA, a self-signed node).
pub fn http_client(ca_cert: Option<&std::path::Path>) -> Result<reqwest::Client, ClientError> {
    // One provider for the process; reqwest picks up the installed one.
    // Installing fails only when one is already installed: either is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder();
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).map_err(|e| {
            ClientError::Tls(format!("cannot read the CA file {}: {e}", path.display()))
        })?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            ClientError::Tls(format!("{} holds no PEM certificate: {e}", path.display()))
        })?;
        if certificates.is_empty() {
            return Err(ClientError::Tls(format!(
                "{} holds no PEM certificate",
                path.display()
            )));
        }
        builder = builder.tls_certs_merge(certificates);
    }
    builder
        .build()
        .map_err(|e| ClientError::Tls(format!("the HTTP client cannot be built: {e}")))
}

impl ClientError {
    /// The node's error code, when the node refused the request.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { error, .. } => Some(&error.code),
            _ => None,
        }
    }
}

/// A connection to one node, or to the nodes of one ledger that share a
/// journal ([`Client::with_nodes`]).
#[derive(Clone, Debug)]
pub struct Client {
    nodes: Arc<Nodes>,
    http: reqwest::Client,
    /// Why the CA file of `AGENTRAIL_CA_CERT` could not be used: every
    /// call answers it rather than trying without the file.
    tls_error: Option<Arc<str>>,
    /// Shown every answer the node gives (tests check them against the
    /// OpenAPI document).
    observer: Option<Observer>,
    clock: SigningClock,
    /// The network id requests are signed for, once known.
    network: Arc<OnceLock<String>>,
}

/// The nodes a client may talk to, and the one it talks to now.
#[derive(Debug)]
struct Nodes {
    bases: Vec<String>,
    current: std::sync::atomic::AtomicUsize,
}

/// How long a client of several nodes looks for the one that leads before
/// it answers what the last one said.
pub const FAILOVER_WITHIN: std::time::Duration = std::time::Duration::from_secs(15);
/// The pause between two nodes asked in turn.
const FAILOVER_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// The time a client signs its requests with (Unix seconds).
#[derive(Clone)]
struct SigningClock(Arc<dyn Fn() -> u64 + Send + Sync>);

impl std::fmt::Debug for SigningClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningClock")
    }
}

/// A fresh 128-bit random nonce, hex.
pub fn random_nonce() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh Ed25519 key from the operating system's randomness.
pub fn generate_key() -> SigningKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the operating system provides randomness");
    SigningKey::from_bytes(&seed)
}

/// `text` percent-encoded for one path segment or query value.
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Client {
    /// A client of the node at `base` (`http://` or `https://`), trusting
    /// the system's roots and, when `AGENTRAIL_CA_CERT` names a PEM file,
    /// its certificates. When that file cannot be used, every call answers
    /// [`ClientError::Tls`] with the reason ([`Client::connect`] reports it
    /// at once instead).
    pub fn new(base: &str) -> Client {
        let ca = std::env::var_os(CA_CERT_ENV).map(std::path::PathBuf::from);
        match http_client(ca.as_deref()) {
            Ok(http) => Client::with_http(base, http),
            Err(error) => Client {
                tls_error: Some(Arc::from(error.to_string())),
                ..Client::with_http(base, reqwest::Client::new())
            },
        }
    }

    /// A client of the node at `base` that also trusts the certificates of
    /// the PEM file `ca_cert`.
    pub fn connect(base: &str, ca_cert: Option<&std::path::Path>) -> Result<Client, ClientError> {
        Ok(Client::with_http(base, http_client(ca_cert)?))
    }

    /// A client of the node at `base` over `http` (its TLS roots, proxies
    /// and timeouts).
    pub fn with_http(base: &str, http: reqwest::Client) -> Client {
        Client {
            nodes: Arc::new(Nodes {
                bases: vec![base.trim_end_matches('/').to_owned()],
                current: 0.into(),
            }),
            http,
            tls_error: None,
            observer: None,
            clock: SigningClock(Arc::new(unix_now)),
            network: Arc::new(OnceLock::new()),
        }
    }

    /// The same client showing `observer` every answer of the node.
    pub fn with_observer(
        mut self,
        observer: impl Fn(&Answer<'_>) + Send + Sync + 'static,
    ) -> Client {
        self.observer = Some(Observer(Arc::new(observer)));
        self
    }

    /// The HTTP client underneath (for other HTTP calls with the same TLS
    /// roots, as the paying client's).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The same client signing for the ledger `network`
    /// (`agentrail:<log origin>`) instead of the one the node names: a
    /// client that must not let the node it talks to choose which ledger
    /// its signatures are good on pins it, as it pins the log key.
    pub fn with_network(mut self, network: impl Into<String>) -> Client {
        self.network = Arc::new(OnceLock::from(network.into()));
        self
    }

    /// The network id this client signs for (read from `/v1/health` the
    /// first time, unless pinned).
    pub async fn network(&self) -> Result<String, ClientError> {
        if let Some(network) = self.network.get() {
            return Ok(network.clone());
        }
        let health = self.health().await?;
        Ok(self.network.get_or_init(|| health.network).clone())
    }

    /// The same client signing with the time `clock` tells (Unix seconds)
    /// instead of the system clock: for a node whose clock is set apart
    /// (a dev node's scaled clock).
    pub fn with_clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Client {
        self.clock = SigningClock(Arc::new(clock));
        self
    }

    /// The same client for a ledger served by several nodes sharing one
    /// journal (`agentrail serve --store postgres://…`), `base` first: a
    /// command a node refuses as `not_leader`, or that cannot reach a node
    /// at all, is signed again and sent to the next, in turn, for up to
    /// [`FAILOVER_WITHIN`]; reads go to the node commands last reached.
    /// A command whose connection failed after it was sent is not sent
    /// again (its outcome is unknown): its caller retries it with the same
    /// idempotency key, which returns the original outcome if it landed.
    pub fn with_nodes(mut self, others: &[&str]) -> Client {
        let mut bases = self.nodes.bases.clone();
        bases.extend(
            others
                .iter()
                .map(|base| base.trim_end_matches('/').to_owned()),
        );
        self.nodes = Arc::new(Nodes {
            bases,
            current: 0.into(),
        });
        self
    }

    /// The node this client talks to now.
    pub fn base(&self) -> &str {
        let current = self
            .nodes
            .current
            .load(std::sync::atomic::Ordering::Relaxed);
        &self.nodes.bases[current % self.nodes.bases.len()]
    }

    /// Talks to the next node from now on.
    fn next_node(&self, from: usize) {
        let _ = self.nodes.current.compare_exchange(
            from,
            (from + 1) % self.nodes.bases.len(),
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Signs `command` with `key` and submits it.
    pub async fn submit(
        &self,
        key: &SigningKey,
        command: &Command,
    ) -> Result<CommandResponse, ClientError> {
        let body = serde_json::to_vec(command).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.post_signed(key, COMMANDS_PATH, body).await
    }

    /// Posts `body` to `path`, signed with `key` (created now, random nonce).
    pub async fn post_signed<T: DeserializeOwned>(
        &self,
        key: &SigningKey,
        path: &str,
        body: Vec<u8>,
    ) -> Result<T, ClientError> {
        let deadline = std::time::Instant::now() + FAILOVER_WITHIN;
        loop {
            let current = self
                .nodes
                .current
                .load(std::sync::atomic::Ordering::Relaxed);
            let (result, unsent) = self.post_signed_once(key, path, &body).await;
            let refused_unapplied =
                unsent || matches!(&result, Err(error) if error.code() == Some("not_leader"));
            if result.is_ok()
                || !refused_unapplied
                || self.nodes.bases.len() == 1
                || std::time::Instant::now() >= deadline
            {
                let bytes = result?;
                return serde_json::from_slice(&bytes)
                    .map_err(|e| ClientError::Decode(e.to_string()));
            }
            self.next_node(current);
            tokio::time::sleep(FAILOVER_PAUSE).await;
        }
    }

    /// One signed post to the current node; `true` beside the result when
    /// the request did not reach the node at all.
    async fn post_signed_once(
        &self,
        key: &SigningKey,
        path: &str,
        body: &[u8],
    ) -> (Result<Vec<u8>, ClientError>, bool) {
        let network = match self.network().await {
            Ok(network) => network,
            // Nothing of the command was sent.
            Err(error) => return (Err(error), true),
        };
        let headers = httpsig::sign(
            key,
            "POST",
            path,
            body,
            httpsig::SignParams {
                created: (self.clock.0)(),
                nonce: &random_nonce(),
                network: &network,
            },
        );
        let request = self
            .http
            .post(format!("{}{path}", self.base()))
            .header("content-type", "application/json")
            .header("content-digest", headers.content_digest)
            .header("signature-input", headers.signature_input)
            .header("signature", headers.signature)
            .body(body.to_vec());
        self.send_classified(request).await
    }

    /// Dev mode only: the node deposits `amount` to `to` from its operator key.
    pub async fn faucet(&self, to: Did, amount: Amount) -> Result<CommandResponse, ClientError> {
        let request = self
            .http
            .post(format!("{}{FAUCET_PATH}", self.base()))
            .json(&FaucetRequest { to, amount });
        self.send(request).await
    }

    pub async fn balance(&self, did: &Did) -> Result<BalanceResponse, ClientError> {
        self.get(&format!("/v1/accounts/{did}/balance")).await
    }

    /// History of `did`, newest first, entries before index `before`.
    pub async fn history(
        &self,
        did: &Did,
        before: Option<u64>,
        limit: usize,
    ) -> Result<HistoryPage, ClientError> {
        let mut path = format!("/v1/accounts/{did}/history?limit={limit}");
        if let Some(before) = before {
            path.push_str(&format!("&before={before}"));
        }
        self.get(&path).await
    }

    /// A page of a principal's agents, oldest first, from `offset`.
    pub async fn agents_of(
        &self,
        principal: &Did,
        offset: u64,
        limit: usize,
    ) -> Result<agentrail_wire::api::AgentsPage, ClientError> {
        self.get(&format!(
            "/v1/principals/{principal}/agents?offset={offset}&limit={limit}"
        ))
        .await
    }

    /// A page of the payments waiting for a principal's approval, with ids
    /// above `after`.
    pub async fn pending_approvals(
        &self,
        principal: &Did,
        after: u64,
        limit: usize,
    ) -> Result<agentrail_wire::api::ApprovalsPage, ClientError> {
        self.get(&format!(
            "/v1/principals/{principal}/approvals?after={after}&limit={limit}"
        ))
        .await
    }

    pub async fn grant(&self, did: &Did) -> Result<GrantStatus, ClientError> {
        self.get(&format!("/v1/grants/{did}")).await
    }

    pub async fn passport(&self, did: &Did) -> Result<Passport, ClientError> {
        self.get(&format!("/v1/passports/{did}")).await
    }

    pub async fn health(&self) -> Result<Health, ClientError> {
        self.get("/v1/health").await
    }

    pub async fn hold(&self, id: &str) -> Result<HoldResponse, ClientError> {
        self.get(&format!("/v1/holds/{}", path_segment(id))).await
    }

    /// Live listings matching `query`, ranked (see `State::discover`). A
    /// `limit` of 0 asks for the node's default page.
    pub async fn listings(&self, query: &Discovery) -> Result<DiscoveryPage, ClientError> {
        let mut path = format!("/v1/listings?offset={}", query.offset);
        if query.limit > 0 {
            path.push_str(&format!("&limit={}", query.limit));
        }
        if let Some(capability) = &query.capability {
            path.push_str(&format!("&capability={}", path_segment(capability)));
        }
        if let Some(kind) = query.kind {
            path.push_str(match kind {
                ListingKind::Service => "&kind=service",
                ListingKind::Dataset => "&kind=dataset",
            });
        }
        if let Some(max_price) = query.max_price {
            path.push_str(&format!("&max_price={}", max_price.atomic()));
        }
        if let Some(min) = query.min_reputation {
            path.push_str(&format!("&min_reputation={min}"));
        }
        self.get(&path).await
    }

    pub async fn listing(&self, id: &str) -> Result<ListingView, ClientError> {
        self.get(&format!("/v1/listings/{}", path_segment(id)))
            .await
    }

    /// Open requests for quotes (see `State::open_rfqs`). A `limit` of 0
    /// asks for the node's default page.
    pub async fn rfqs(&self, query: &RfqQuery) -> Result<RfqPage, ClientError> {
        let mut path = format!("/v1/rfqs?offset={}", query.offset);
        if query.limit > 0 {
            path.push_str(&format!("&limit={}", query.limit));
        }
        if let Some(capability) = &query.capability {
            path.push_str(&format!("&capability={}", path_segment(capability)));
        }
        if let Some(provider) = &query.provider {
            path.push_str(&format!("&provider={provider}"));
        }
        self.get(&path).await
    }

    pub async fn rfq(&self, id: &str) -> Result<RfqView, ClientError> {
        self.get(&format!("/v1/rfqs/{}", path_segment(id))).await
    }

    pub async fn task(&self, id: &str) -> Result<TaskView, ClientError> {
        self.get(&format!("/v1/tasks/{}", path_segment(id))).await
    }

    pub async fn license(&self, id: &str) -> Result<LicenseView, ClientError> {
        self.get(&format!("/v1/licenses/{}", path_segment(id)))
            .await
    }

    pub async fn subscription(
        &self,
        id: &str,
    ) -> Result<agentrail_core::economy::SubscriptionView, ClientError> {
        self.get(&format!("/v1/subscriptions/{}", path_segment(id)))
            .await
    }

    pub async fn bounty(
        &self,
        id: &str,
    ) -> Result<agentrail_core::economy::BountyView, ClientError> {
        self.get(&format!("/v1/bounties/{}", path_segment(id)))
            .await
    }

    pub async fn order(&self, id: &str) -> Result<agentrail_core::economy::OrderView, ClientError> {
        self.get(&format!("/v1/orders/{}", path_segment(id))).await
    }

    pub async fn reputation(&self, did: &Did) -> Result<Reputation, ClientError> {
        self.get(&format!("/v1/reputation/{did}")).await
    }

    /// The identity's listings as an A2A Agent Card.
    pub async fn agent_card(&self, did: &Did) -> Result<AgentCard, ClientError> {
        self.get(&format!("/v1/agents/{did}/card")).await
    }

    pub async fn channel(
        &self,
        id: &agentrail_core::channel::ChannelId,
    ) -> Result<agentrail_core::state::ChannelView, ClientError> {
        self.get(&format!("/v1/channels/{id}")).await
    }

    pub async fn approval(&self, id: u64) -> Result<ApprovalResponse, ClientError> {
        self.get(&format!("/v1/approvals/{id}")).await
    }

    /// The newest signed checkpoint (a C2SP signed note).
    pub async fn checkpoint(&self) -> Result<String, ClientError> {
        self.get_text("/checkpoint").await
    }

    /// The log's verifier key, as the node states it. Pin it out of band:
    /// a verifier that takes the key from the node it checks proves nothing.
    pub async fn log_key(&self) -> Result<String, ClientError> {
        Ok(self.get_text("/v1/log/key").await?.trim().to_owned())
    }

    pub async fn log_entry(&self, index: u64) -> Result<LogEntry, ClientError> {
        self.get(&format!("/v1/log/entries/{index}")).await
    }

    pub async fn receipt(&self, index: u64) -> Result<Receipt, ClientError> {
        self.get(&format!("/v1/receipts/{index}")).await
    }

    pub async fn consistency(&self, from: u64, to: u64) -> Result<ConsistencyProof, ClientError> {
        self.get(&format!("/v1/log/proof/consistency?from={from}&to={to}"))
            .await
    }

    /// A C2SP tlog-tiles resource, by its path below `/tile/`.
    pub async fn tile(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        self.get_bytes(&format!("/tile/{path}")).await
    }

    async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        String::from_utf8(self.get_bytes(path).await?)
            .map_err(|_| ClientError::Decode("the answer is not UTF-8".into()))
    }

    async fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        self.send_raw(self.http.get(format!("{}{path}", self.base())))
            .await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.http.get(format!("{}{path}", self.base())))
            .await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let bytes = self.send_raw(request).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// The body of a successful answer; a refusal as [`ClientError::Api`].
    async fn send_raw(&self, request: reqwest::RequestBuilder) -> Result<Vec<u8>, ClientError> {
        self.send_classified(request).await.0
    }

    /// [`Client::send_raw`], and whether the request failed before it
    /// reached the node (no connection could be made).
    async fn send_classified(
        &self,
        request: reqwest::RequestBuilder,
    ) -> (Result<Vec<u8>, ClientError>, bool) {
        if let Some(error) = &self.tls_error {
            return (
                Err(ClientError::Tls(format!("{CA_CERT_ENV}: {error}"))),
                false,
            );
        }
        let request = match request.build() {
            Ok(request) => request,
            Err(e) => return (Err(ClientError::Transport(e.to_string())), false),
        };
        let (method, url) = (request.method().clone(), request.url().clone());
        let response = match self.http.execute(request).await {
            Ok(response) => response,
            Err(e) => return (Err(ClientError::Transport(e.to_string())), e.is_connect()),
        };
        (self.answer_of(method, url, response).await, false)
    }

    /// The body of a successful answer; a refusal as [`ClientError::Api`].
    async fn answer_of(
        &self,
        method: reqwest::Method,
        url: reqwest::Url,
        response: reqwest::Response,
    ) -> Result<Vec<u8>, ClientError> {
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if let Some(Observer(observer)) = &self.observer {
            let path = match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_owned(),
            };
            observer(&Answer {
                method: method.as_str(),
                path: &path,
                status: status.as_u16(),
                content_type: content_type.as_deref(),
                body: &bytes,
            });
        }
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(ClientError::Api {
                status: status.as_u16(),
                error: body.error,
            }),
            Err(_) => Err(ClientError::Decode(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&bytes)
            ))),
        }
    }
}
