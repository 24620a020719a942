//! `agentrail verify`, `receipt`, `log watch` and `audit`: checking the
//! node's transparency log without trusting the node.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agentrail_client::Client;
use agentrail_core::channel::{network_hash, network_id};
use agentrail_core::{Balance, Did, Event, Genesis, State};
use agentrail_log::merkle::{self, Hash, MemoryTree};
use agentrail_log::receipt::{Proven, Receipt};
use agentrail_log::{Checkpoint, LogKey};
use agentrail_wire::entry::JournalEntry;
use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Subcommand;
use serde::{Deserialize, Serialize};

/// Exit code when the log contradicts itself (a rewritten history, a replay
/// that disagrees with what the node serves).
pub(crate) const EXIT_LOG_LIES: u8 = 3;

#[derive(Debug, Subcommand)]
pub enum ProofCommand {
    /// Check a receipt offline: the checkpoint's signature, the inclusion
    /// proof and the request's own signature; print what it proves.
    Verify {
        /// The receipt (JSON, as `agentrail receipt` or /v1/receipts/N gives it).
        receipt: PathBuf,
        /// The log's verifier key, or a file holding it.
        #[arg(long)]
        log_key: String,
    },
    /// Fetch the receipt of journal entry INDEX from the node.
    Receipt {
        index: u64,
        /// Write it to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The node's transparency log.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Download every leaf, check the root against the signed checkpoint,
    /// replay every command through the ledger core, check every invariant
    /// of the replayed ledger and compare every balance, grant, hold and
    /// approval with what the node serves.
    Audit {
        /// The log's verifier key, or a file holding it (default: ask the
        /// node, which proves only internal consistency).
        #[arg(long)]
        log_key: Option<String>,
        #[command(flatten)]
        chain: ChainCheck,
    },
}

/// Checks against the vault on chain, for `audit` and `log watch`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChainCheck {
    /// Also check the log against the root anchored in the vault on this
    /// chain (a consistency proof from the anchored size), and, in an
    /// audit, proof of reserves: the vault holds what the ledger owes.
    #[arg(long, value_name = "URL")]
    pub chain_rpc: Option<String>,
    /// The vault (default: the one the node's genesis names).
    #[arg(long, requires = "chain_rpc")]
    pub vault: Option<agentrail_chain::alloy_primitives::Address>,
}

use agentrail_chain::audit::check_anchor as check_anchor_with;

pub async fn check_anchor(
    client: &Client,
    vault: &agentrail_chain::Vault<'_>,
) -> anyhow::Result<agentrail_chain::audit::AnchorCheck> {
    Ok(check_anchor_with(client, vault, None).await?)
}

/// The endpoint and vault a chain check reads.
async fn chain_target(
    check: &ChainCheck,
    client: &Client,
) -> anyhow::Result<
    Option<(
        agentrail_chain::Rpc,
        u64,
        agentrail_chain::alloy_primitives::Address,
    )>,
> {
    let Some(url) = &check.chain_rpc else {
        return Ok(None);
    };
    let rpc = agentrail_chain::Rpc::new(url, agentrail_client::http_client(None)?)?;
    let chain_id = rpc.chain_id().await.context("reading the chain id")?;
    let bound = client.health().await?.chain.and_then(|chain| chain.binding);
    let vault = match (check.vault, bound) {
        (Some(vault), Some(bound)) if agentrail_chain::evm_address(vault) != bound.vault => bail!(
            "the node's genesis binds vault {}, not {vault}",
            bound.vault
        ),
        (Some(vault), _) => vault,
        (None, Some(bound)) => agentrail_chain::alloy_primitives::Address::from(bound.vault.0),
        (None, None) => bail!("the node names no vault: pass --vault"),
    };
    if let Some(bound) = bound
        && bound.chain_id != chain_id
    {
        bail!(
            "the node is bound to chain {}, the endpoint serves chain {chain_id}",
            bound.chain_id
        );
    }
    Ok(Some((rpc, chain_id, vault)))
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Check that the log only grows: a consistency proof from the last
    /// checkpoint seen (kept in --state) to the node's newest.
    Watch {
        /// Where the last checkpoint seen is kept.
        #[arg(long)]
        state: PathBuf,
        /// The log's verifier key, or a file holding it (needed on the first
        /// run unless you accept the node's own word for it).
        #[arg(long)]
        log_key: Option<String>,
        /// Keep watching, checking every this many seconds.
        #[arg(long)]
        every: Option<u64>,
        #[command(flatten)]
        chain: ChainCheck,
    },
    /// Print the node's log verifier key.
    Key,
}

/// The text of a key given inline or in a file, checked.
fn key_text_of(argument: &str) -> anyhow::Result<String> {
    let text = if Path::new(argument).is_file() {
        std::fs::read_to_string(argument).with_context(|| format!("cannot read {argument}"))?
    } else {
        argument.to_owned()
    };
    let text = text.trim().to_owned();
    LogKey::parse(&text)?;
    Ok(text)
}

/// A key given inline or in a file.
fn read_key(argument: &str) -> anyhow::Result<LogKey> {
    Ok(LogKey::parse(&key_text_of(argument)?)?)
}

fn decode_hash(text: &str) -> anyhow::Result<Hash> {
    STANDARD
        .decode(text)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| anyhow!("the node sent a hash that is not 32 bytes of base64"))
}

pub async fn run(command: ProofCommand, client: Client, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        ProofCommand::Verify { receipt, log_key } => {
            let key = read_key(&log_key)?;
            let text = std::fs::read_to_string(&receipt)
                .with_context(|| format!("cannot read {}", receipt.display()))?;
            let receipt: Receipt = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a receipt", receipt.display()))?;
            match receipt.verify(&key) {
                Ok(proven) => {
                    print_proven(&proven, json);
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({"valid": false, "reason": error.to_string()})
                        );
                    } else {
                        eprintln!("INVALID receipt: {error}");
                    }
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        ProofCommand::Receipt { index, out } => {
            let receipt = client.receipt(index).await?;
            let text = serde_json::to_string_pretty(&receipt)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, text + "\n")
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                None => println!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        ProofCommand::Log {
            command: LogCommand::Key,
        } => {
            println!("{}", client.log_key().await?);
            Ok(ExitCode::SUCCESS)
        }
        ProofCommand::Log {
            command:
                LogCommand::Watch {
                    state,
                    log_key,
                    every,
                    chain,
                },
        } => loop {
            match watch_once(&client, &state, log_key.as_deref(), &chain, json).await {
                Ok(()) => {}
                Err(WatchError::Lies(reason)) => {
                    eprintln!(
                        "ALERT: the log at {} rewrote its history: {reason}",
                        client.base()
                    );
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({"consistent": false, "reason": reason})
                        );
                    }
                    return Ok(ExitCode::from(EXIT_LOG_LIES));
                }
                Err(WatchError::Other(error)) => return Err(error),
            }
            match every {
                Some(seconds) => {
                    tokio::time::sleep(std::time::Duration::from_secs(seconds.max(1))).await
                }
                None => return Ok(ExitCode::SUCCESS),
            }
        },
        ProofCommand::Audit { log_key, chain } => {
            audit(&client, log_key.as_deref(), &chain, json).await
        }
    }
}

fn print_proven(proven: &Proven, json: bool) {
    let signer = proven.command.signer();
    let command = proven.command.command();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "valid": true,
                "index": proven.index,
                "tree_size": proven.tree_size,
                "log": proven.origin,
                "time": proven.time,
                "signer": signer,
                "signed_by": proven.request_kind,
                "command": command,
                "events": proven.events,
            })
        );
        return;
    }
    let what = serde_json::to_value(command)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "command".into());
    println!(
        "VALID receipt: entry {} of the log {}",
        proven.index, proven.origin
    );
    println!(
        "  who:     {signer} signed it{}",
        if proven.request_kind == "node" {
            " (a command the node signed with the operator key)"
        } else {
            " (an HTTP request signed with its own key)"
        }
    );
    println!(
        "  what:    {what}: {}",
        serde_json::to_string(command).unwrap_or_default()
    );
    println!("  when:    accepted at {} (Unix seconds)", proven.time.0);
    println!("  outcome: {}", describe_events(&proven.events));
    println!(
        "  proven:  the log signed a checkpoint of {} entries that includes it",
        proven.tree_size
    );
}

fn describe_events(events: &[Event]) -> String {
    if events.is_empty() {
        return "accepted, with no effect".into();
    }
    events
        .iter()
        .map(|event| serde_json::to_string(event).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("; ")
}

/// What `log watch` keeps between runs.
#[derive(Debug, Serialize, Deserialize)]
struct WatchState {
    log_key: String,
    size: u64,
    root: String,
    checkpoint: String,
}

enum WatchError {
    /// The log contradicts what it signed before.
    Lies(String),
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for WatchError {
    fn from(error: E) -> WatchError {
        WatchError::Other(error.into())
    }
}

async fn watch_once(
    client: &Client,
    state_path: &Path,
    key_arg: Option<&str>,
    chain: &ChainCheck,
    json: bool,
) -> Result<(), WatchError> {
    let saved: Option<WatchState> = match std::fs::read_to_string(state_path) {
        Ok(text) => Some(
            serde_json::from_str(&text)
                .with_context(|| format!("{} is damaged", state_path.display()))?,
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(anyhow!("cannot read {}: {error}", state_path.display()).into()),
    };
    let given = key_arg.map(key_text_of).transpose()?;
    let key_text = match (&saved, given) {
        (Some(saved), Some(given)) if saved.log_key != given => {
            return Err(anyhow!(
                "{} pins the log key {}, not {given}",
                state_path.display(),
                saved.log_key
            )
            .into());
        }
        (Some(saved), _) => saved.log_key.clone(),
        (None, Some(given)) => given,
        (None, None) => {
            let text = client.log_key().await?;
            eprintln!(
                "warning: trusting the node's own log key on first use: {text} (pass --log-key to pin it)"
            );
            text
        }
    };
    let key = LogKey::parse(&key_text)?;
    let note = client.checkpoint().await?;
    let newest = Checkpoint::open(&note, &key)
        .map_err(|e| WatchError::Lies(format!("the newest checkpoint does not verify: {e}")))?;
    if let Some(saved) = &saved {
        let root = decode_hash(&saved.root)?;
        if newest.size < saved.size {
            return Err(WatchError::Lies(format!(
                "the tree shrank from {} to {} entries",
                saved.size, newest.size
            )));
        }
        let proof = client.consistency(saved.size, newest.size).await?;
        let hashes = proof
            .proof
            .iter()
            .map(|h| decode_hash(h))
            .collect::<anyhow::Result<Vec<_>>>()?;
        merkle::verify_consistency(saved.size, newest.size, &root, &newest.root, &hashes).map_err(
            |e| {
                WatchError::Lies(format!(
                    "no valid consistency proof from {} to {} entries: {e}",
                    saved.size, newest.size
                ))
            },
        )?;
    }
    let anchor = match chain_target(chain, client).await? {
        None => None,
        Some((rpc, chain_id, address)) => {
            let vault = agentrail_chain::Vault {
                rpc: &rpc,
                chain_id,
                address,
            };
            let check = check_anchor_with(client, &vault, Some(&key)).await?;
            if !check.consistent {
                return Err(WatchError::Lies(check.describe()));
            }
            Some(check)
        }
    };
    let state = WatchState {
        log_key: key_text,
        size: newest.size,
        root: STANDARD.encode(newest.root),
        checkpoint: note,
    };
    let temporary = state_path.with_extension("tmp");
    std::fs::write(&temporary, serde_json::to_string_pretty(&state)?)?;
    std::fs::rename(&temporary, state_path)?;
    let previous = saved.map_or(0, |s| s.size);
    if json {
        println!(
            "{}",
            serde_json::json!({"consistent": true, "from": previous, "to": newest.size, "anchor": anchor})
        );
    } else {
        println!(
            "consistent: the log grew from {previous} to {} entries without rewriting any",
            newest.size
        );
        if let Some(anchor) = anchor {
            println!("  chain: {}", anchor.describe());
        }
    }
    Ok(())
}

/// Leaves fetched per entry bundle.
const BUNDLE: u64 = agentrail_log::tile::TILE_WIDTH;

/// Leaves `from..to` of the log, through C2SP entry bundles.
async fn fetch_leaves(client: &Client, from: u64, to: u64) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut leaves = Vec::new();
    let mut next = from;
    while next < to {
        let bundle = next / BUNDLE;
        let start = bundle * BUNDLE;
        let end = (start + BUNDLE).min(to);
        let tile = agentrail_log::tile::Tile {
            level: None,
            index: bundle,
            width: (end - start < BUNDLE).then_some(end - start),
        };
        let bytes = client.tile(&tile.path()).await?;
        let mut rest = bytes.as_slice();
        for index in start..end {
            if rest.len() < 2 {
                bail!("entry bundle {bundle} is truncated");
            }
            let length = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let leaf = rest
                .get(2..2 + length)
                .ok_or_else(|| anyhow!("entry bundle {bundle} is truncated"))?;
            if index >= next {
                leaves.push(leaf.to_vec());
            }
            rest = &rest[2 + length..];
        }
        next = end;
    }
    Ok(leaves)
}

/// What the audit found wrong.
#[derive(Debug, Default, Serialize)]
struct Findings {
    mismatches: Vec<String>,
}

async fn audit(
    client: &Client,
    key_arg: Option<&str>,
    chain: &ChainCheck,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let key = match key_arg {
        Some(text) => read_key(text)?,
        None => {
            let text = client.log_key().await?;
            eprintln!(
                "warning: using the node's own log key ({text}); pass --log-key to check the node against a key you trust"
            );
            LogKey::parse(&text)?
        }
    };
    let health = client.health().await?;
    let network = network_id(key.name());
    let target = chain_target(chain, client).await?;
    let mut state = State::new(Genesis {
        operator: health.operator,
        network: network_hash(&network),
        chain: health.chain.as_ref().and_then(|chain| chain.binding),
    });
    let mut tree = MemoryTree::new();
    let mut replayed: u64 = 0;
    // The node may accept commands while we audit: replay up to a signed
    // checkpoint, compare, and catch up if the node moved on meanwhile.
    for attempt in 0..5 {
        let checkpoint = Checkpoint::open(&client.checkpoint().await?, &key)
            .context("the node's checkpoint does not verify with the log key")?;
        if checkpoint.size < replayed {
            return lies(json, format!("the log shrank below {replayed} entries"));
        }
        let mut next = replayed;
        while next < checkpoint.size {
            let end = (next + 16 * BUNDLE).min(checkpoint.size);
            for leaf in fetch_leaves(client, next, end).await? {
                tree.push(merkle::leaf_hash(&leaf));
                let entry = JournalEntry::decode(&leaf).map_err(|e| anyhow!("leaf {next}: {e}"))?;
                let command = entry
                    .authenticate(&network)
                    .map_err(|e| anyhow!("leaf {next} is not authentic: {e}"))?;
                // No `advance` before the entry: a node journals a clock
                // entry whenever something falls due, so time-driven
                // events in another entry's replay are a lie of the log.
                match state.apply(&command, entry.time) {
                    Ok(events) if events == entry.events => {}
                    Ok(_) => return lies(json, format!("leaf {next} replays to different events")),
                    Err(rejection) => {
                        return lies(
                            json,
                            format!(
                                "leaf {next} was accepted but replays to a refusal: {rejection}"
                            ),
                        );
                    }
                }
                next += 1;
            }
            eprintln!(
                "audit: replayed {next} of {} entries ({:.0}%)",
                checkpoint.size,
                100.0 * next as f64 / checkpoint.size.max(1) as f64
            );
        }
        replayed = next;
        if tree.root() != checkpoint.root {
            return lies(
                json,
                format!(
                    "the leaves do not hash to the signed root of {} entries",
                    checkpoint.size
                ),
            );
        }
        // The node's clock moves at every batch and expires holds and
        // approvals without a journal entry: bring the replay to it.
        let clock = client.health().await?.clock;
        if clock > state.clock() {
            state.advance(clock);
        }
        // Conservation and every other invariant, on the auditor's own
        // replay: a log that replays but breaks one is a broken ledger.
        if let Err(violation) = state.check_invariants() {
            return lies(
                json,
                format!("the replayed ledger breaks an invariant: {violation}"),
            );
        }
        let findings = compare(client, &state).await?;
        let moved = client.health().await?.journal_len > replayed;
        if findings.mismatches.is_empty() {
            let accounts = state.balances().count();
            let identities = state.identities().count();
            let mut onchain = None;
            if let Some((rpc, chain_id, address)) = &target {
                let vault = agentrail_chain::Vault {
                    rpc,
                    chain_id: *chain_id,
                    address: *address,
                };
                let anchor = check_anchor_with(client, &vault, Some(&key)).await?;
                if !anchor.consistent {
                    return lies(json, anchor.describe());
                }
                let reserves = agentrail_chain::reserves::check(&vault, &state).await?;
                if !reserves.covered {
                    return lies(
                        json,
                        format!(
                            "proof of reserves failed: the vault holds {} atomic units, the ledger owes {}",
                            reserves.held, reserves.owed
                        ),
                    );
                }
                onchain = Some((anchor, reserves));
            }
            if json {
                println!(
                    "{}",
                    serde_json::json!({"consistent": true, "entries": replayed, "accounts": accounts, "identities": identities, "root": STANDARD.encode(tree.root()), "anchor": onchain.as_ref().map(|o| &o.0), "reserves": onchain.as_ref().map(|o| &o.1)})
                );
            } else {
                println!(
                    "audit passed: {replayed} entries replayed, root matches the signed checkpoint, {accounts} balances and {identities} identities match the node"
                );
                if let Some((anchor, reserves)) = &onchain {
                    println!("  chain: {}", anchor.describe());
                    println!(
                        "  reserves: the vault holds {} atomic units, the ledger owes {}",
                        reserves.held, reserves.owed
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        if !moved || attempt == 4 {
            return lies(json, findings.mismatches.join("; "));
        }
        eprintln!("audit: the node accepted more commands meanwhile; catching up");
    }
    unreachable!("the loop returns")
}

fn lies(json: bool, reason: String) -> anyhow::Result<ExitCode> {
    if json {
        println!(
            "{}",
            serde_json::json!({"consistent": false, "reason": reason})
        );
    } else {
        eprintln!("AUDIT FAILED: {reason}");
    }
    Ok(ExitCode::from(EXIT_LOG_LIES))
}

/// Every balance, grant, hold and approval the replay computed, against the
/// node's answers.
async fn compare(client: &Client, state: &State) -> anyhow::Result<Findings> {
    let mut findings = Findings::default();
    let balances: Vec<(Did, Balance)> = state.balances().map(|(d, b)| (*d, b)).collect();
    for (did, balance) in balances {
        let served = client.balance(&did).await?;
        if served.available != balance.available || served.held != balance.held {
            findings.mismatches.push(format!(
                "{did}: replay says available {} held {}, the node says available {} held {}",
                balance.available, balance.held, served.available, served.held
            ));
        }
    }
    let delegates: Vec<Did> = state
        .identities()
        .filter(|(_, kind)| *kind != agentrail_core::state::IdentityKind::Principal)
        .map(|(did, _)| *did)
        .collect();
    for did in delegates {
        let Some(expected) = state.grant_status(&did, state.clock()) else {
            continue;
        };
        let served = client.grant(&did).await?;
        if served.grant != expected.grant
            || served.principal != expected.principal
            || served.revoked_at != expected.revoked_at
            || served.spent_total != expected.spent_total
        {
            findings.mismatches.push(format!(
                "{did}: the grant the node serves differs from the replay"
            ));
        }
    }
    let holds: Vec<(String, agentrail_core::state::HoldStatus)> = state
        .holds()
        .map(|(id, status)| (id.to_owned(), status))
        .collect();
    for (id, status) in holds {
        let served = client.hold(&id).await?;
        if served.status != status {
            findings.mismatches.push(format!(
                "hold {id}: replay says {status:?}, the node says {:?}",
                served.status
            ));
        }
    }
    let approvals: Vec<_> = state.approvals().collect();
    for (id, status) in approvals {
        let served = client.approval(id).await?;
        if served.status != status {
            findings.mismatches.push(format!(
                "approval {id}: replay says {status:?}, the node says {:?}",
                served.status
            ));
        }
    }
    Ok(findings)
}
