//! agentrail-node: the service around `agentrail-core`.
//!
//! `run` opens (or creates) a ledger in a data directory, recovers it from
//! its journal, starts the single writer and serves the `/v1` API until
//! shutdown. See `ledger` for the write path and `http` for the API.

#![forbid(unsafe_code)]

pub mod http;
pub mod ledger;
pub mod limits;
mod market_http;
pub mod metrics;
pub mod openapi;
mod owner_http;
pub mod replication;
mod service;
pub mod tls;
pub mod verifier;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::sync_channel;

use agentrail_core::chain::ChainBinding;
use agentrail_core::channel::{network_hash, network_id};
use agentrail_core::{Did, Genesis};
use agentrail_log::LogSigner;
pub use agentrail_store::JOURNAL_CACHE_BYTES;
use agentrail_store::Store;
use agentrail_wire::keyfile;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::http::{App, Nonces, router};
use crate::ledger::{Ledger, LedgerError, LedgerOptions, QUEUE_MAX, Queue};
use crate::verifier::Verifier;
pub use service::{NodeHandle, SubmitError};

/// How to run a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Dev mode: an operator key in the data directory and a faucet.
    pub dev: bool,
    /// The operator of a new (non-dev) ledger.
    pub operator: Option<Did>,
    /// Journal entries between two snapshots.
    pub snapshot_every: u64,
    /// Connection and request-rate limits.
    pub limits: limits::ServeLimits,
    /// Memory for the journal's page cache (redb's), in bytes.
    pub journal_cache_bytes: usize,
    /// Dev mode only: a ledger clock that runs faster than the real one
    /// (soak tests cover days of retention windows in minutes).
    pub time_scale: Option<agentrail_core::time::TimeScale>,
    /// Web origins whose pages may call the API (CORS), e.g.
    /// `https://dashboard.example`; in dev mode every origin may.
    pub cors_origins: Vec<String>,
    /// HTTPS: a PEM certificate chain and its PEM private key.
    pub tls: Option<TlsFiles>,
    /// The EVM chain a new ledger is bound to (its vault and the
    /// operator's address); an existing ledger must name the same.
    pub chain: Option<ChainBinding>,
    /// A node of several: the journal they share, in PostgreSQL.
    pub replication: Option<ReplicationConfig>,
}

/// How a node of several shares its journal ([`replication`]).
#[derive(Clone, Debug)]
pub struct ReplicationConfig {
    /// The database: a `postgres://` URL or `key=value` string, which may
    /// name several hosts (the writable one is used).
    pub url: String,
    /// Start as a standby: take the lead only after a whole lease has
    /// passed since start, so that a leader starting beside it wins.
    pub standby: bool,
    /// How long the leader's lead outlives its last write or renewal: a
    /// standby takes over about this long after the leader died.
    pub lease: std::time::Duration,
    /// Where this node takes commands while it leads, as standbys tell
    /// clients (default: `http://` and the address it listens on).
    pub advertise: Option<String>,
}

/// The files of a node's TLS identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why the node could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
}

/// `genesis.json`: version 1 names the operator; version 2 also binds the
/// ledger to a vault on an EVM chain.
#[derive(Serialize, Deserialize)]
struct GenesisFile {
    version: u32,
    operator: Did,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chain: Option<ChainBinding>,
}

/// The chain binding of the ledger in `data_dir`, if it has a genesis:
/// `Ok(None)` when there is no ledger yet, `Ok(Some(None))` when it has no
/// chain.
pub fn ledger_chain(data_dir: &Path) -> Result<Option<Option<ChainBinding>>, NodeError> {
    let path = data_dir.join(GENESIS_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| NodeError::Setup(format!("cannot read {}: {e}", path.display())))?;
    let file: GenesisFile = serde_json::from_str(&text)
        .map_err(|e| NodeError::Setup(format!("{} is damaged: {e}", path.display())))?;
    Ok(Some(file.chain))
}

const GENESIS_FILE: &str = "genesis.json";
const OPERATOR_KEY_FILE: &str = "operator.key";
const LOG_KEY_FILE: &str = "log.key";

/// Reads or creates the log's signing key. The log's name (the checkpoint
/// origin and the note key name) is derived from the key, so it is stable
/// across restarts and unique per ledger.
fn log_signer(config: &NodeConfig) -> Result<LogSigner, NodeError> {
    let setup = |message: String| NodeError::Setup(message);
    let path = config.data_dir.join(LOG_KEY_FILE);
    if !path.exists() {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| setup(format!("no randomness: {e}")))?;
        write_private(&path, &keyfile::encode(&SigningKey::from_bytes(&seed)))
            .map_err(|e| setup(format!("cannot write the log key: {e}")))?;
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| setup(format!("cannot read {}: {e}", path.display())))?;
    let key = keyfile::decode(&text).map_err(|e| setup(format!("{}: {e}", path.display())))?;
    let name = format!(
        "agentrail.log/{}",
        hex::encode(&key.verifying_key().as_bytes()[..8])
    );
    Ok(LogSigner::new(&name, key).expect("a hex name is a valid key name"))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Reads or creates the ledger's genesis file, and the operator key in dev
/// mode: the operator, the chain binding, and the faucet's key.
fn genesis(
    config: &NodeConfig,
) -> Result<(Did, Option<ChainBinding>, Option<SigningKey>), NodeError> {
    let setup = |message: String| NodeError::Setup(message);
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| setup(format!("cannot create {}: {e}", config.data_dir.display())))?;
    let genesis_path = config.data_dir.join(GENESIS_FILE);
    let key_path = config.data_dir.join(OPERATOR_KEY_FILE);
    if !genesis_path.exists() {
        let operator = match (config.dev, config.operator) {
            (_, Some(operator)) => operator,
            (true, None) => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| setup(format!("no randomness: {e}")))?;
                let key = SigningKey::from_bytes(&seed);
                write_private(&key_path, &keyfile::encode(&key))
                    .map_err(|e| setup(format!("cannot write the operator key: {e}")))?;
                Did::from_verifying_key(&key.verifying_key())
            }
            (false, None) => {
                return Err(setup("this data directory holds no ledger: start with --dev, or name the operator with --operator DID".into()));
            }
        };
        let text = serde_json::to_string_pretty(&GenesisFile {
            version: if config.chain.is_some() { 2 } else { 1 },
            operator,
            chain: config.chain,
        })
        .expect("JSON");
        write_private(&genesis_path, &text)
            .map_err(|e| setup(format!("cannot write {}: {e}", genesis_path.display())))?;
    }
    let text = std::fs::read_to_string(&genesis_path)
        .map_err(|e| setup(format!("cannot read {}: {e}", genesis_path.display())))?;
    let file: GenesisFile = serde_json::from_str(&text)
        .map_err(|e| setup(format!("{} is damaged: {e}", genesis_path.display())))?;
    if !matches!(file.version, 1 | 2) || (file.version == 1) != file.chain.is_none() {
        return Err(setup(format!(
            "{} has version {}, which this node does not read",
            genesis_path.display(),
            file.version
        )));
    }
    if let Some(asked) = config.chain
        && file.chain != Some(asked)
    {
        return Err(setup(match file.chain {
            None => "this ledger is not bound to a chain; a chain binding is chosen when the ledger is created".into(),
            Some(bound) => format!(
                "this ledger is bound to vault {} on chain {} (operator {}), not to vault {} on chain {}",
                bound.vault, bound.chain_id, bound.operator, asked.vault, asked.chain_id
            ),
        }));
    }
    let faucet_key = if config.dev {
        let text = std::fs::read_to_string(&key_path).map_err(|_| {
            setup(
                "dev mode needs the operator key in the data directory, and this ledger has none"
                    .into(),
            )
        })?;
        let key =
            keyfile::decode(&text).map_err(|e| setup(format!("{}: {e}", key_path.display())))?;
        if Did::from_verifying_key(&key.verifying_key()) != file.operator {
            return Err(setup("operator.key is not this ledger's operator".into()));
        }
        Some(key)
    } else {
        None
    };
    Ok((file.operator, file.chain, faucet_key))
}

/// The system clock in Unix milliseconds.
fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs the node until `shutdown` completes. `ready` is told the bound
/// address once the node accepts connections.
pub async fn run(
    config: NodeConfig,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    run_with(config, |_| {}, ready, shutdown).await
}

/// Runs the node as [`run`] does, and calls `services` with a handle to
/// it once it accepts connections: for tasks that run beside it (the
/// chain follower) and stop with it.
pub async fn run_with(
    config: NodeConfig,
    services: impl FnOnce(NodeHandle),
    ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    let (operator, chain, faucet_key) = genesis(&config)?;
    let log = log_signer(&config)?;
    // Channel vouchers name the ledger by its log.
    let genesis = Genesis {
        operator,
        network: network_hash(&network_id(log.name())),
        chain,
    };
    let data_dir = config.data_dir.clone();
    let store_dir = data_dir.clone();
    let options = LedgerOptions {
        snapshot_every: config.snapshot_every,
        ..LedgerOptions::default()
    };
    if config.time_scale.is_some() && !config.dev {
        return Err(NodeError::Setup(
            "a scaled clock is for dev nodes only".into(),
        ));
    }
    let cache = config.journal_cache_bytes;
    let replica = match &config.replication {
        None => None,
        Some(replication) => {
            let advertise = replication
                .advertise
                .clone()
                .unwrap_or_else(|| format!("http://{}", config.listen));
            let mut tag = [0u8; 4];
            getrandom::fill(&mut tag)
                .map_err(|e| NodeError::Setup(format!("no randomness: {e}")))?;
            let holder = format!("{advertise}#{}", hex::encode(tag));
            let (url, origin, lease) = (
                replication.url.clone(),
                log.name().to_owned(),
                replication.lease,
            );
            let journal = tokio::task::spawn_blocking(move || {
                agentrail_postgres::Journal::connect(&url, &origin, &holder, &advertise, lease)
            })
            .await
            .map_err(|e| NodeError::Setup(format!("connecting stopped: {e}")))?
            .map_err(|e| NodeError::Setup(format!("the replicated journal: {e}")))?;
            Some(Arc::new(journal))
        }
    };
    let opener_replica = replica.clone();
    let mut ledger = tokio::task::spawn_blocking(move || {
        let open_store = Box::new(move || {
            let store = Store::open_with_cache(&data_dir, cache)?;
            if let Some(journal) = &opener_replica {
                replication::catch_up(&store, journal)?;
            }
            Ok(store)
        });
        Ledger::open_with(open_store, genesis, log, options)
    })
    .await
    .map_err(|e| NodeError::Setup(format!("recovery stopped: {e}")))??;
    if let Some(journal) = &replica {
        ledger = ledger.with_replica(Arc::clone(journal));
    }
    ledger.set_store_directory(store_dir);
    if let Some(scale) = config.time_scale {
        tracing::warn!(
            scale = scale.scale,
            origin_ms = scale.origin_ms,
            "the ledger's clock is scaled: dev only"
        );
        ledger = ledger.with_clock(Box::new(move || scale.at(unix_now_ms())));
    }
    let ledger = Arc::new(ledger);
    let started_at = ledger.now();
    let horizon = agentrail_core::Timestamp(
        started_at
            .0
            .saturating_sub(2 * agentrail_wire::httpsig::SIGNATURE_WINDOW_S),
    );
    let recent = {
        let ledger = Arc::clone(&ledger);
        tokio::task::spawn_blocking(move || ledger.recent_nonces(horizon))
            .await
            .map_err(|e| NodeError::Setup(format!("reading recent nonces stopped: {e}")))??
    };
    tracing::info!(
        recent = recent.len(),
        "nonces of the last window read from the journal"
    );
    let nonces = Arc::new(Nonces::after_start(started_at.0, recent));
    if replica.is_some() {
        // A node of several admits commands once it leads.
        nonces.close();
    }
    let (sender, receiver) = sync_channel(QUEUE_MAX);
    let writer = {
        let ledger = Arc::clone(&ledger);
        std::thread::Builder::new()
            .name("agentrail-writer".into())
            .spawn(move || ledger.run_writer(receiver))?
    };
    let queue = Queue::new(sender);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (verifier, verifiers) = Verifier::start(
        threads,
        Arc::clone(&nonces),
        Arc::new(limits::IdentityLimiter::new(&config.limits)),
        queue.clone(),
        Arc::clone(&ledger),
    )?;
    let faucet_key = faucet_key.map(Arc::new);
    let (stop_services, stopping) = tokio::sync::watch::channel(false);
    let services_queue = Arc::new(std::sync::Mutex::new(Some(queue.clone())));
    let handle = NodeHandle {
        ledger: Arc::clone(&ledger),
        queue: Arc::clone(&services_queue),
        operator_key: faucet_key.clone(),
        stopping,
    };
    let app = App {
        ledger: Arc::clone(&ledger),
        queue,
        verifier,
        faucet_key,
    };
    let cors = http::cors(&config.cors_origins, config.dev).map_err(NodeError::Setup)?;
    let tls = match &config.tls {
        Some(files) => Some(tls::server_config(&files.cert, &files.key).map_err(NodeError::Setup)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let address = listener.local_addr()?;
    tracing::info!(%address, dev = config.dev, operator = %genesis.operator, "node listening");
    if let (Some(journal), Some(replication)) = (&replica, &config.replication)
        && replication.advertise.is_none()
    {
        let scheme = if tls.is_some() { "https" } else { "http" };
        journal.set_leader_url(&format!("{scheme}://{address}"));
    }
    let stop_replication = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let replication = match &config.replication {
        None => None,
        Some(replication) => {
            let (ledger, nonces, stop) = (
                Arc::clone(&ledger),
                Arc::clone(&nonces),
                Arc::clone(&stop_replication),
            );
            let (lease, standby) = (replication.lease, replication.standby);
            Some(
                std::thread::Builder::new()
                    .name("agentrail-replication".into())
                    .spawn(move || {
                        if standby {
                            // Follow for a lease before taking the lead.
                            let until = std::time::Instant::now() + lease;
                            while std::time::Instant::now() < until
                                && !stop.load(std::sync::atomic::Ordering::Acquire)
                            {
                                if let Err(error) = ledger.follow() {
                                    tracing::warn!(%error, "following the journal failed");
                                }
                                std::thread::sleep(replication::FOLLOW_EVERY);
                            }
                        }
                        replication::run(ledger, nonces, lease, stop)
                    })?,
            )
        }
    };

    ready(address);
    services(handle);
    let listener = limits::LimitedListener::new(listener, config.limits);
    let app = router(app).layer(cors);
    match tls {
        Some(tls) => {
            axum::serve(tls::TlsListener::new(listener, tls)?, app)
                .with_graceful_shutdown(shutdown)
                .await?
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await?
        }
    }
    // The services beside the node stop, and no handle can queue more.
    let _ = stop_services.send(true);
    services_queue.lock().expect("the queue lock").take();
    // The router (and its queue senders) is gone: the verifier threads drain
    // their queue and stop, then the writer drains and stops.
    tokio::task::spawn_blocking(move || {
        for verifier in verifiers {
            let _ = verifier.join();
        }
        let stopped = writer.join();
        // Written and answered: the lead is handed over.
        stop_replication.store(true, std::sync::atomic::Ordering::Release);
        if let Some(replication) = replication {
            let _ = replication.join();
        }
        stopped
    })
    .await
    .ok();
    Ok(())
}
