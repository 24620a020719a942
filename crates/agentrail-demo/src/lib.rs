//! agentrail-demo: the product brief's scenarios, played for real.
//!
//! [`run`] starts a node on a loopback port with a temporary data
//! directory (dev mode, so a faucet funds the players), then agents — each
//! with its own keys and its own HTTP client — play the scenarios in
//! [`scenarios`]. Every expectation is checked; at the end every receipt
//! of the log is verified offline against the log key pinned at the start,
//! and the money is counted. The report says what held and what did not.

#![forbid(unsafe_code)]

mod chain;
mod economy;
mod scenarios;

pub use chain::CONFIRMATIONS as CHAIN_CONFIRMATIONS;

use std::time::Instant;

use agentrail_client::{Client, ClientError};
use agentrail_core::grant::{Limits, Role};
use agentrail_core::{Amount, Command, Did, Timestamp};
use agentrail_log::LogKey;
use agentrail_sim::kit;
use agentrail_wire::api::CommandResponse;
use anyhow::{Context, bail, ensure};
use ed25519_dalek::SigningKey;
use serde::Serialize;
use tokio::sync::oneshot;

/// How the demo runs.
#[derive(Clone, Copy, Debug)]
pub struct DemoOptions {
    /// Paid calls in the pay-per-call scenario.
    pub calls: usize,
    /// Play on a ledger bound to a vault on a local anvil chain: money
    /// enters as deposited tokens and leaves as a withdrawal to an EVM
    /// address.
    pub chain: bool,
}

impl Default for DemoOptions {
    fn default() -> DemoOptions {
        DemoOptions {
            calls: 1_000,
            chain: false,
        }
    }
}

/// One labelled figure of a scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    pub label: String,
    pub value: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    pub name: &'static str,
    pub passed: bool,
    pub seconds: f64,
    pub figures: Vec<Figure>,
    /// The first expectation that failed.
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BalanceLine {
    pub name: String,
    pub did: Did,
    pub available: Amount,
    pub held: Amount,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReputationLine {
    pub name: String,
    pub did: Did,
    pub score: u16,
    pub tasks_paid: u64,
    pub disputes_lost: u64,
    pub licences_sold: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DemoReport {
    pub passed: bool,
    pub seconds: f64,
    pub node: String,
    pub scenarios: Vec<ScenarioReport>,
    pub journal_entries: u64,
    /// Every leaf's receipt, checked offline against the pinned log key.
    pub receipts_verified: u64,
    /// The faucet's deposits equal every account's money (available + held).
    pub money_conserved: bool,
    pub deposited: Amount,
    /// What left through the vault (`--chain`).
    pub withdrawn: Amount,
    pub balances: Vec<BalanceLine>,
    pub reputations: Vec<ReputationLine>,
    /// Checks that did not belong to one scenario.
    pub errors: Vec<String>,
}

/// What the demo tells its caller while it runs.
#[derive(Clone, Debug)]
pub enum Progress {
    NodeStarted {
        url: String,
    },
    ScenarioStarted {
        index: usize,
        count: usize,
        name: &'static str,
    },
    ScenarioEnded {
        index: usize,
        count: usize,
        report: ScenarioReport,
    },
    Verifying {
        entries: u64,
    },
    /// `--chain`: the dev chain runs and the node follows its vault.
    ChainStarted {
        rpc: String,
        vault: String,
    },
}

/// A player: a name for people, keys, and its own connection to the node.
pub(crate) struct Actor {
    pub name: String,
    pub key: SigningKey,
    pub did: Did,
    pub client: Client,
    /// Has an account (principals and agents).
    pub has_account: bool,
    /// An agent's principal.
    pub principal: Option<String>,
}

/// The demo's world: the node, the players, what the faucet (or the vault)
/// paid in and what left through the vault.
pub(crate) struct World {
    pub url: String,
    pub actors: Vec<Actor>,
    pub deposited: Amount,
    pub withdrawn: Amount,
    /// The dev chain, with `--chain`.
    pub chain: Option<chain::ChainWorld>,
    /// A dev node's scaled clock, which the players sign by.
    pub clock: Option<agentrail_core::time::TimeScale>,
}

fn unix_now() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `whole` dollars and `micros` millionths.
pub(crate) fn usd(whole: u128, micros: u128) -> Amount {
    Amount::from_atomic(whole * 1_000_000 + micros)
}

impl World {
    pub fn actor(&self, name: &str) -> &Actor {
        self.actors
            .iter()
            .find(|actor| actor.name == name)
            .unwrap_or_else(|| panic!("the demo has no actor {name}"))
    }

    pub fn did(&self, name: &str) -> Did {
        self.actor(name).did
    }

    /// The ledger's time now: the real one, or the node's scaled clock.
    pub fn now(&self) -> Timestamp {
        match self.clock {
            Some(clock) => clock.at(unix_ms()),
            None => unix_now(),
        }
    }

    /// A client of the node that signs by the node's clock.
    pub fn client(&self) -> Client {
        match self.clock {
            Some(clock) => Client::new(&self.url).with_clock(move || clock.at(unix_ms()).0),
            None => Client::new(&self.url),
        }
    }

    fn add(&mut self, name: &str, key: SigningKey, has_account: bool) -> Did {
        let did = Did::from_verifying_key(&key.verifying_key());
        let client = self.client();
        self.actors.push(Actor {
            name: name.to_owned(),
            key,
            did,
            client,
            has_account,
            principal: None,
        });
        did
    }

    /// A new principal with a fresh key, registered.
    pub async fn principal(&mut self, name: &str) -> anyhow::Result<Did> {
        let did = self.add(name, agentrail_client::generate_key(), true);
        self.submit(name, kit::register_principal(did)).await?;
        Ok(did)
    }

    /// A new agent of `principal` with a 30-day mandate of `limits`.
    pub async fn agent(
        &mut self,
        name: &str,
        principal: &str,
        limits: Limits,
    ) -> anyhow::Result<Did> {
        let did = self.add(name, agentrail_client::generate_key(), true);
        if let Some(actor) = self.actors.last_mut() {
            actor.principal = Some(principal.to_owned());
        }
        let now = self.now();
        let grant = kit::grant(
            &self.actor(principal).key,
            did,
            Role::Agent,
            limits,
            Timestamp(now.0 - 60),
            Timestamp(now.0 + 30 * 86_400),
            &format!("demo-{name}"),
        );
        self.submit(principal, kit::register_agent(grant)).await?;
        Ok(did)
    }

    /// A one-hour session key of `agent` with `limits`.
    pub async fn session(
        &mut self,
        name: &str,
        agent: &str,
        limits: Limits,
    ) -> anyhow::Result<Did> {
        let did = self.add(name, agentrail_client::generate_key(), false);
        let grant = self.session_grant(agent, did, limits);
        self.submit(agent, kit::issue_session(grant)).await?;
        Ok(did)
    }

    pub fn session_grant(
        &self,
        agent: &str,
        subject: Did,
        limits: Limits,
    ) -> agentrail_core::SignedGrant {
        let now = self.now();
        kit::grant(
            &self.actor(agent).key,
            subject,
            Role::Session,
            limits,
            Timestamp(now.0 - 60),
            Timestamp(now.0 + 3_600),
            &format!("demo-session-{}", self.actors.len()),
        )
    }

    /// The dev faucet pays `amount` to `name`; on a chain, the owner's
    /// tokens are deposited into the vault for `name`, and this returns
    /// once the node credited them.
    pub async fn fund(&mut self, name: &str, amount: Amount) -> anyhow::Result<()> {
        let did = self.did(name);
        match self.chain.as_mut() {
            Some(_) => {
                // A vault deposit goes to a key that registered itself: an
                // agent's money is deposited to its principal, who passes
                // it on.
                let observer = Client::new(&self.url);
                let principal = self.actor(name).principal.clone();
                let depositee = principal.as_deref().unwrap_or(name);
                let depositee_did = self.did(depositee);
                let chain = self.chain.as_mut().expect("checked above");
                chain
                    .deposit(&observer, depositee_did, amount, depositee)
                    .await?;
                let tag = format!("fund-{name}-{}", chain.transactions.len());
                if let Some(principal) = principal {
                    let from = self.did(&principal);
                    self.submit(&principal, kit::transfer(from, did, amount, &tag))
                        .await?;
                }
            }
            None => {
                self.actor(name)
                    .client
                    .faucet(did, amount)
                    .await
                    .with_context(|| format!("funding {name}"))?;
            }
        }
        self.deposited = self
            .deposited
            .checked_add(amount)
            .context("deposits overflow")?;
        Ok(())
    }

    /// `name` signs and submits `command`, which must be accepted.
    pub async fn submit(&self, name: &str, command: Command) -> anyhow::Result<CommandResponse> {
        let kind = command_kind(&command);
        self.attempt(name, &command)
            .await
            .with_context(|| format!("{name}'s {kind} was refused"))
    }

    /// `name` signs and submits `command`. On a scaled clock the signature
    /// window is milliseconds of real time: a request that waited too long
    /// (`signature_expired`) is signed again, a few times.
    pub async fn attempt(
        &self,
        name: &str,
        command: &Command,
    ) -> Result<CommandResponse, ClientError> {
        let actor = self.actor(name);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match actor.client.submit(&actor.key, command).await {
                Err(ClientError::Api { error, .. })
                    if self.clock.is_some()
                        && error.code == "signature_expired"
                        && attempts < 8 => {}
                other => return other,
            }
        }
    }

    /// `name` submits `command`, which must be refused; returns the
    /// refusal's code and message.
    pub async fn refused(&self, name: &str, command: Command) -> anyhow::Result<(String, String)> {
        let kind = command_kind(&command);
        match self.attempt(name, &command).await {
            Ok(response) => bail!(
                "{name}'s {kind} was accepted (entry {}) but must be refused",
                response.index
            ),
            Err(ClientError::Api { error, .. }) => Ok((error.code, error.message)),
            Err(other) => Err(other).with_context(|| format!("{name}'s {kind}")),
        }
    }

    pub async fn balance(&self, name: &str) -> anyhow::Result<(Amount, Amount)> {
        let balance = self.actor(name).client.balance(&self.did(name)).await?;
        Ok((balance.available, balance.held))
    }
}

fn command_kind(command: &Command) -> String {
    serde_json::to_value(command)
        .ok()
        .and_then(|value| value["type"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "command".into())
}

/// The newest channel `payer` opened, from its latest history.
pub(crate) async fn channel_opened_by(
    client: &Client,
    payer: &Did,
) -> anyhow::Result<agentrail_core::channel::ChannelId> {
    let history = client.history(payer, None, 20).await?;
    history
        .items
        .iter()
        .flat_map(|item| &item.events)
        .find_map(|event| match event {
            agentrail_core::Event::ChannelOpened { channel_id, .. } => Some(*channel_id),
            _ => None,
        })
        .context("the payer opened a channel")
}

/// Fails with `message` unless `condition` holds.
pub(crate) fn expect(condition: bool, message: impl Into<String>) -> anyhow::Result<()> {
    ensure!(condition, "{}", message.into());
    Ok(())
}

/// A dev node the demo started.
pub(crate) struct RunningNode {
    pub address: std::net::SocketAddr,
    pub handle: agentrail_node::NodeHandle,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), agentrail_node::NodeError>>,
}

impl RunningNode {
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task
            .await
            .context("the node task")?
            .context("the node")
    }
}

/// Starts a dev node on a loopback port over `data`: on a chain's vault
/// with `chain`, on a scaled clock with `time_scale`.
pub(crate) async fn start_node(
    data: &std::path::Path,
    chain: Option<agentrail_core::chain::ChainBinding>,
    time_scale: Option<agentrail_core::time::TimeScale>,
) -> anyhow::Result<RunningNode> {
    let (stop, stopped) = oneshot::channel::<()>();
    let (ready_tx, ready_rx) = oneshot::channel();
    let config = agentrail_node::NodeConfig {
        data_dir: data.to_owned(),
        listen: "127.0.0.1:0".parse().expect("a loopback address"),
        dev: true,
        operator: None,
        snapshot_every: agentrail_node::ledger::SNAPSHOT_EVERY,
        limits: agentrail_node::limits::ServeLimits::default(),
        journal_cache_bytes: agentrail_node::JOURNAL_CACHE_BYTES,
        time_scale,
        cors_origins: Vec::new(),
        tls: None,
        chain,
        replication: None,
    };
    let (handle_tx, handle_rx) = oneshot::channel();
    let task = tokio::spawn(agentrail_node::run_with(
        config,
        move |handle| {
            let _ = handle_tx.send(handle);
        },
        move |address| {
            let _ = ready_tx.send(address);
        },
        async {
            let _ = stopped.await;
        },
    ));
    let address = ready_rx.await.context("the node did not start")?;
    let handle = handle_rx.await.context("the node did not start")?;
    Ok(RunningNode {
        address,
        handle,
        stop,
        task,
    })
}

/// Every receipt of the log's first `entries` leaves, checked offline
/// against `log_key`: how many verified, and what did not.
pub(crate) async fn verify_receipts(
    observer: &Client,
    log_key: &LogKey,
    entries: u64,
) -> (u64, Vec<String>) {
    let mut errors = Vec::new();
    let mut verified = 0;
    for index in 0..entries {
        match observer
            .receipt(index)
            .await
            .map(|receipt| receipt.verify(log_key))
        {
            Ok(Ok(proven)) if proven.index == index => verified += 1,
            Ok(Ok(_)) => errors.push(format!("receipt {index} proves another leaf")),
            Ok(Err(error)) => errors.push(format!("receipt {index} does not verify: {error}")),
            Err(error) => errors.push(format!("receipt {index} could not be fetched: {error}")),
        }
    }
    (verified, errors)
}

/// Runs the demo on its own runtime and node; see the crate docs.
pub fn run(
    options: DemoOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> anyhow::Result<DemoReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("a tokio runtime")?;
    runtime.block_on(run_async(options, progress))
}

async fn run_async(
    options: DemoOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> anyhow::Result<DemoReport> {
    let started = Instant::now();
    let data = tempfile::tempdir().context("a temporary data directory")?;
    let chain = if options.chain {
        Some(chain::ChainWorld::start().await?)
    } else {
        None
    };
    let running = start_node(
        data.path(),
        chain.as_ref().map(chain::ChainWorld::binding),
        None,
    )
    .await?;
    let (address, handle) = (running.address, running.handle.clone());
    if let Some(chain) = &chain {
        chain.spawn_follower(handle)?;
        progress(Progress::ChainStarted {
            rpc: chain.anvil.url().to_owned(),
            vault: chain.deployment.vault.to_string(),
        });
    }
    let url = format!("http://{address}");
    progress(Progress::NodeStarted { url: url.clone() });
    let observer = Client::new(&url);
    // Pin the log key before anything happens: every receipt is checked
    // against this key, not one the node states later.
    let log_key = LogKey::parse(&observer.log_key().await?).context("the node's log key")?;

    let mut world = World {
        url: url.clone(),
        actors: Vec::new(),
        deposited: Amount::ZERO,
        withdrawn: Amount::ZERO,
        chain,
        clock: None,
    };
    let mut reports = Vec::new();
    let count = scenarios::ALL.len();
    for (index, (name, scenario)) in scenarios::ALL.iter().enumerate() {
        progress(Progress::ScenarioStarted { index, count, name });
        let scenario_started = Instant::now();
        let mut figures = Vec::new();
        let outcome = scenario(&mut world, &mut figures, options).await;
        let report = ScenarioReport {
            name,
            passed: outcome.is_ok(),
            seconds: scenario_started.elapsed().as_secs_f64(),
            figures,
            error: outcome.err().map(|e| format!("{e:#}")),
        };
        progress(Progress::ScenarioEnded {
            index,
            count,
            report: report.clone(),
        });
        reports.push(report);
    }
    if world.chain.is_some() {
        let name = "On chain: withdraw to an EVM address, anchor, reserves";
        progress(Progress::ScenarioStarted {
            index: count,
            count: count + 1,
            name,
        });
        let scenario_started = Instant::now();
        let mut figures = Vec::new();
        let outcome = chain::finish(&mut world, &mut figures).await;
        let report = ScenarioReport {
            name,
            passed: outcome.is_ok(),
            seconds: scenario_started.elapsed().as_secs_f64(),
            figures,
            error: outcome.err().map(|e| format!("{e:#}")),
        };
        progress(Progress::ScenarioEnded {
            index: count,
            count: count + 1,
            report: report.clone(),
        });
        reports.push(report);
    }

    let journal_entries = observer.health().await?.journal_len;
    progress(Progress::Verifying {
        entries: journal_entries,
    });
    let (receipts_verified, mut errors) =
        verify_receipts(&observer, &log_key, journal_entries).await;

    let mut balances = Vec::new();
    let mut total = Amount::ZERO;
    for actor in world.actors.iter().filter(|actor| actor.has_account) {
        let balance = observer.balance(&actor.did).await?;
        total = total
            .checked_add(balance.available)
            .and_then(|sum| sum.checked_add(balance.held))
            .context("balances overflow")?;
        balances.push(BalanceLine {
            name: actor.name.clone(),
            did: actor.did,
            available: balance.available,
            held: balance.held,
        });
    }
    let owed = world
        .deposited
        .checked_sub(world.withdrawn)
        .context("withdrew more than deposited")?;
    let money_conserved = total == owed;
    if !money_conserved {
        errors.push(format!(
            "{} USD came in and {} USD left, but the accounts hold {}",
            world.deposited.to_decimal_string(),
            world.withdrawn.to_decimal_string(),
            total.to_decimal_string()
        ));
    }
    let mut reputations = Vec::new();
    for actor in world.actors.iter().filter(|actor| actor.has_account) {
        let reputation = observer.reputation(&actor.did).await?;
        if reputation.tasks_paid + reputation.disputes_lost + reputation.licences_sold > 0 {
            reputations.push(ReputationLine {
                name: actor.name.clone(),
                did: actor.did,
                score: reputation.score,
                tasks_paid: reputation.tasks_paid,
                disputes_lost: reputation.disputes_lost,
                licences_sold: reputation.licences_sold,
            });
        }
    }
    reputations.sort_by(|a, b| b.score.cmp(&a.score).then(a.name.cmp(&b.name)));

    running.stop().await?;
    let passed = errors.is_empty()
        && receipts_verified == journal_entries
        && reports.iter().all(|report| report.passed);
    Ok(DemoReport {
        passed,
        seconds: started.elapsed().as_secs_f64(),
        node: url,
        scenarios: reports,
        journal_entries,
        receipts_verified,
        money_conserved,
        deposited: world.deposited,
        withdrawn: world.withdrawn,
        balances,
        reputations,
        errors,
    })
}
