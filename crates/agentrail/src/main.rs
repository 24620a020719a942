//! `agentrail`: the command-line tool. Argument parsing and wiring only; the
//! work lives in the library crates.

#![forbid(unsafe_code)]

mod chain_cli;
mod channel_cli;
mod cli_support;
mod demo_cli;
mod economy_cli;
mod ledger_cli;
mod log_cli;
mod market_cli;
mod x402_cli;

use std::process::ExitCode;

use agentrail_sim::SimConfig;
use agentrail_sim::bench::{BenchConfig, run_core_bench};
use agentrail_sim::simulation::run_with_progress;
use clap::{Parser, Subcommand};

use crate::ledger_cli::LedgerCommand;

/// See the workspace's Cargo.toml: resident memory that follows what is live.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "agentrail",
    version,
    about = "Identity, payment and proof rails for AI agents"
)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Log more (repeat for more detail).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// The node to talk to; several, comma-separated, for nodes sharing one
    /// journal (commands go to the one that leads).
    #[arg(long, global = true, env = "AGENTRAIL_NODE", default_value = agentrail_client::DEFAULT_NODE)]
    node: String,
    /// A PEM file of CA certificates to trust besides the system's (an
    /// `https://` node with a private or self-signed certificate).
    #[arg(long, global = true, env = agentrail_client::CA_CERT_ENV)]
    ca_cert: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Start a node on a loopback port and let agents play the product
    /// brief's scenarios (renewal, pay-per-call, an article by five agents,
    /// a data job, royalties, a dispute, a rogue agent); every receipt is
    /// verified offline at the end. Exits 0 only if every expectation held.
    Demo {
        /// Paid calls in the pay-per-call scenario.
        #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        calls: u64,
        /// Play on a ledger bound to a vault on a local anvil chain (run
        /// scripts/evm-tools first): money enters as tokens deposited on
        /// chain, leaves as a withdrawal to an EVM address, and the log is
        /// anchored in the vault; prints the transaction hashes.
        #[arg(long)]
        chain: bool,
    },
    /// Run a node: the ledger, its journal and the /v1 API.
    Serve {
        /// Dev mode: keep an operator key in the data directory and open a faucet.
        #[arg(long)]
        dev: bool,
        /// Data directory (journal, snapshots, genesis).
        #[arg(long, default_value = "agentrail-data")]
        data: std::path::PathBuf,
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8402")]
        listen: std::net::SocketAddr,
        /// The operator of a new ledger outside dev mode.
        #[arg(long)]
        operator: Option<agentrail_core::Did>,
        /// Journal entries between two snapshots.
        #[arg(long, default_value_t = agentrail_node::ledger::SNAPSHOT_EVERY, value_parser = clap::value_parser!(u64).range(1..))]
        snapshot_every: u64,
        /// Open connections in all; more are answered 429 and closed.
        #[arg(long, default_value_t = 4_096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        connections_max: u64,
        /// Open connections from one address.
        #[arg(long, default_value_t = 1_024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        connections_per_ip: u64,
        /// Seconds a connection may move no byte before it is closed.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3_600))]
        idle_timeout_s: u64,
        /// Commands per second one identity may sustain (429 past it).
        #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..))]
        identity_rate: u32,
        /// Commands one identity may send at once after a quiet spell.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
        identity_burst: u32,
        /// Memory for the journal's page cache, in MiB (the operating
        /// system's page cache serves what does not fit).
        #[arg(long, default_value_t = (agentrail_node::JOURNAL_CACHE_BYTES >> 20) as u64, value_parser = clap::value_parser!(u64).range(1..=65_536))]
        journal_cache_mb: u64,
        /// Dev only: run the ledger's clock this many times faster than the
        /// real one (a soak covers days of retention windows in minutes).
        /// Clients must sign with the same scaled time.
        #[arg(long, requires = "dev", value_parser = clap::value_parser!(u32).range(2..=1_000_000))]
        dev_time_scale: Option<u32>,
        /// The real instant (Unix milliseconds) the scaled clock starts
        /// from, reading it as that second; default: when the node starts.
        #[arg(long, requires = "dev_time_scale")]
        dev_time_origin_ms: Option<u64>,
        /// A web origin whose pages may call the API (CORS), e.g.
        /// https://dashboard.example; repeatable. In dev mode every origin
        /// may.
        #[arg(long = "cors-origin", value_name = "ORIGIN")]
        cors_origins: Vec<String>,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
        #[command(flatten)]
        chain: chain_cli::ServeChain,
        /// Where the journal lives: `embedded` (this machine's disk), or a
        /// PostgreSQL URL (`postgres://user@host1,host2/db`) shared by
        /// several nodes, of which one writes and the others follow.
        #[arg(long, default_value = "embedded", value_name = "embedded|postgres://…")]
        store: String,
        /// With a PostgreSQL store: follow for a lease before taking the
        /// lead, so that a leader starting beside this node wins.
        #[arg(long)]
        standby: bool,
        /// With a PostgreSQL store: how long the leader's lead outlives its
        /// last write or renewal (a standby takes over about this long
        /// after the leader dies), in milliseconds.
        #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
        lease_ms: u64,
        /// With a PostgreSQL store: the URL clients reach this node at,
        /// which standbys name in their `not_leader` answers (default:
        /// http:// and --listen).
        #[arg(long)]
        advertise: Option<String>,
    },
    /// The vault on an EVM chain: deploy (dev chains), mint test tokens,
    /// deposit, status.
    Chain {
        #[command(subcommand)]
        command: chain_cli::ChainCommand,
    },
    /// Serve x402's facilitator API (`/verify`, `/settle`, `/supported`)
    /// for the `exact` scheme on an EVM chain, settling from --evm-key.
    Facilitator(x402_cli::FacilitatorArgs),
    #[command(flatten)]
    Ledger(LedgerCommand),
    #[command(flatten)]
    Proof(log_cli::ProofCommand),
    /// Drive the ledger with seeded random commands (valid and hostile mixed)
    /// and check every invariant after every step.
    Simulate {
        /// First seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many consecutive seeds to run, starting at --seed.
        #[arg(long, default_value_t = 1)]
        seeds: u64,
        /// Commands per seed.
        #[arg(long, default_value_t = 100_000)]
        commands: u64,
    },
    /// Measure throughput.
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
}

#[derive(Debug, Subcommand)]
enum BenchTarget {
    /// The ledger on a local anvil chain (run scripts/evm-tools first):
    /// deposit-to-credit latency at N confirmations, gas per deposit,
    /// anchor and withdrawal, and the gas of a million payments through a
    /// channel beside a million x402 `exact` transfers.
    Chain {
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
        confirmations: u64,
        /// Seconds between anvil's blocks.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=60))]
        block_time_s: u64,
        /// Deposits timed.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1_000))]
        deposits: u64,
        /// Payments carried by the channel.
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
        payments: u64,
        /// The node anchors every this many log entries.
        #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
        anchor_every: u64,
    },
    /// Micropayments: Ed25519 limit, voucher acceptance, paid vs unpaid
    /// HTTP calls, one ledger transfer per payment, and ledger commands per
    /// million payments, side by side in one run.
    Channel {
        /// Signatures for the raw verification and each voucher case.
        #[arg(long, default_value_t = 20_000)]
        verifications: usize,
        /// HTTP calls for each of paid, unpaid and per-payment transfers.
        #[arg(long, default_value_t = 4_000)]
        calls: usize,
        /// Concurrent HTTP clients.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Payments carried by the one channel whose ledger commands are counted.
        #[arg(long, default_value_t = 1_000_000)]
        payments: usize,
    },
    /// Durable signed transfers per second: group commit, one fsync per
    /// command, SQLite, and HTTP, side by side in one run.
    Ledger {
        /// Transfers for group commit and HTTP.
        #[arg(long, default_value_t = 40_000)]
        transfers: usize,
        /// Transfers for one-fsync-per-command and SQLite.
        #[arg(long, default_value_t = 2_000)]
        slow_transfers: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 256)]
        clients: usize,
        /// Rounds of group commit with and without signature checks,
        /// alternating; their medians are reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Also (e): group commit on this PostgreSQL database (a
        /// `postgres://` URL; the benchmark works in a schema of its own
        /// and drops it), and a standby's takeover.
        #[arg(long, value_name = "postgres://…")]
        store: Option<String>,
    },
    /// The transparency log: tree appends, proofs, checkpoint signing, and
    /// its share of durable appends.
    Log {
        /// Leaves in the in-memory tree; proofs are measured at this size.
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(2..))]
        leaves: u64,
        /// Entries appended durably for the overhead figure.
        #[arg(long, default_value_t = 40_000)]
        durable_entries: usize,
        /// Entries per durable batch (one fsync each).
        #[arg(long, default_value_t = 100)]
        batch: usize,
    },
    /// Commands applied per second by the in-memory ledger.
    Core {
        /// Transfers per round.
        #[arg(long, default_value_t = 20_000)]
        transfers: usize,
        /// Rounds per case (the median is reported).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        // The demo's node logs only what goes wrong unless asked.
        0 if matches!(cli.command, Commands::Demo { .. }) => tracing::Level::WARN,
        0 => tracing::Level::INFO,
        1 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// A client of the node `nodes` names, or of the comma-separated nodes it
/// names (a ledger served by several nodes: see `serve --store`).
fn node_client(
    nodes: &str,
    ca_cert: Option<&std::path::Path>,
) -> anyhow::Result<agentrail_client::Client> {
    let mut urls = nodes
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty());
    let first = urls
        .next()
        .ok_or_else(|| anyhow::anyhow!("--node names no node"))?;
    let others: Vec<&str> = urls.collect();
    Ok(agentrail_client::Client::connect(first, ca_cert)?.with_nodes(&others))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Commands::Demo { calls, chain } => demo_cli::run(calls as usize, chain, cli.json),
        Commands::Serve {
            dev,
            data,
            listen,
            operator,
            snapshot_every,
            connections_max,
            connections_per_ip,
            idle_timeout_s,
            identity_rate,
            identity_burst,
            journal_cache_mb,
            dev_time_scale,
            dev_time_origin_ms,
            cors_origins,
            tls_cert,
            tls_key,
            chain,
            store,
            standby,
            lease_ms,
            advertise,
        } => {
            let replication = if store == "embedded" {
                if standby || advertise.is_some() {
                    anyhow::bail!("--standby and --advertise need --store postgres://…");
                }
                None
            } else if store.starts_with("postgres://") || store.starts_with("postgresql://") {
                Some(agentrail_node::ReplicationConfig {
                    url: store,
                    standby,
                    lease: std::time::Duration::from_millis(lease_ms),
                    advertise,
                })
            } else {
                anyhow::bail!("--store is `embedded` or a postgres:// URL");
            };
            let limits = agentrail_node::limits::ServeLimits {
                connections_max: connections_max as usize,
                connections_per_ip_max: connections_per_ip as usize,
                idle_timeout: std::time::Duration::from_secs(idle_timeout_s),
                identity_rate_per_s: identity_rate,
                identity_burst,
            };
            let config = agentrail_node::NodeConfig {
                data_dir: data,
                listen,
                dev,
                operator,
                snapshot_every,
                limits,
                journal_cache_bytes: (journal_cache_mb as usize) << 20,
                time_scale: dev_time_scale.map(|scale| agentrail_core::time::TimeScale {
                    origin_ms: dev_time_origin_ms.unwrap_or_else(|| {
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_millis() as u64)
                    }),
                    scale,
                }),
                cors_origins,
                tls: tls_cert
                    .zip(tls_key)
                    .map(|(cert, key)| agentrail_node::TlsFiles { cert, key }),
                chain: None,
                replication,
            };
            let scheme = if config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            runtime()?.block_on(async {
                let mut config = config;
                let prepared = chain.prepare(&config.data_dir, config.dev).await?;
                config.chain = prepared.as_ref().map(|prepared| prepared.binding);
                let ready = |address: std::net::SocketAddr| {
                    // Scripts and tests read this line to find the port.
                    println!("agentrail node listening on {scheme}://{address}");
                    // Not a second line on stdout: a script that read the
                    // first and closed the pipe would stop the node.
                    tracing::info!("the dashboard: {scheme}://{address}/");
                };
                let services = |node: agentrail_node::NodeHandle| {
                    if let Some(prepared) = prepared {
                        prepared.spawn(node);
                    }
                };
                agentrail_node::run_with(config, services, ready, shutdown_signal()).await?;
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Chain { command } => {
            let client = node_client(&cli.node, cli.ca_cert.as_deref())?;
            runtime()?.block_on(chain_cli::run(command, client, cli.json))
        }
        Commands::Facilitator(args) => runtime()?.block_on(x402_cli::run(args, cli.json)),
        Commands::Ledger(command) => {
            let client = node_client(&cli.node, cli.ca_cert.as_deref())?;
            runtime()?.block_on(ledger_cli::run(command, client, cli.json))
        }
        Commands::Proof(command) => {
            let client = node_client(&cli.node, cli.ca_cert.as_deref())?;
            runtime()?.block_on(log_cli::run(command, client, cli.json))
        }
        Commands::Simulate {
            seed,
            seeds,
            commands,
        } => simulate(cli.json, seed, seeds, commands),
        Commands::Bench {
            target:
                BenchTarget::Ledger {
                    transfers,
                    slow_transfers,
                    clients,
                    rounds,
                    store,
                },
        } => {
            anyhow::ensure!(
                transfers > 0
                    && slow_transfers > 0
                    && clients > 0
                    && clients <= 16_384
                    && (1..=100).contains(&rounds),
                "counts must be above zero; at most 16384 clients and 100 rounds"
            );
            if let Some(store) = &store {
                anyhow::ensure!(
                    store.starts_with("postgres://") || store.starts_with("postgresql://"),
                    "--store names a postgres:// database"
                );
            }
            let config = agentrail_bench::LedgerBenchConfig {
                transfers,
                slow_transfers,
                clients,
                rounds,
                postgres: store,
            };
            let report = agentrail_bench::run_ledger_bench(config, &mut |stage| {
                tracing::info!(stage, "measuring")
            });
            if cli.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_ledger_report(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
        Commands::Bench {
            target:
                BenchTarget::Chain {
                    confirmations,
                    block_time_s,
                    deposits,
                    payments,
                    anchor_every,
                },
        } => {
            let report = agentrail_bench::chain::run_chain_bench(
                agentrail_bench::chain::ChainBenchConfig {
                    confirmations,
                    block_time_s,
                    deposits: deposits as usize,
                    payments: payments as usize,
                    anchor_every,
                },
                &mut |stage| eprintln!("bench chain: {stage}"),
            )
            .map_err(anyhow::Error::msg)?;
            if cli.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_chain_report(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
        Commands::Bench {
            target:
                BenchTarget::Channel {
                    verifications,
                    calls,
                    clients,
                    payments,
                },
        } => {
            anyhow::ensure!(
                verifications > 0 && calls > 0 && (1..=1_024).contains(&clients),
                "counts must be above zero; at most 1024 clients"
            );
            let report = agentrail_bench::channel::run_channel_bench(
                agentrail_bench::channel::ChannelBenchConfig {
                    verifications,
                    calls,
                    clients,
                    payments,
                },
                &mut |stage| tracing::info!(stage, "measuring"),
            );
            if cli.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_channel_report(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
        Commands::Bench {
            target:
                BenchTarget::Log {
                    leaves,
                    durable_entries,
                    batch,
                },
        } => {
            anyhow::ensure!(
                durable_entries > 0 && batch > 0,
                "--durable-entries and --batch must be above zero"
            );
            let report = agentrail_bench::log::run_log_bench(
                agentrail_bench::log::LogBenchConfig {
                    leaves,
                    durable_entries,
                    batch,
                },
                &mut |stage| tracing::info!(stage, "measuring"),
            );
            if cli.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_log_report(&report);
            }
            Ok(ExitCode::SUCCESS)
        }
        Commands::Bench {
            target: BenchTarget::Core { transfers, rounds },
        } => {
            anyhow::ensure!(
                transfers > 0 && rounds > 0,
                "--transfers and --rounds must be above zero"
            );
            let report = run_core_bench(BenchConfig { transfers, rounds }, &mut |case| {
                tracing::info!(case, "measuring")
            });
            if cli.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{:<24} {:>14} {:>12}", "case", "commands/s", "ns/command");
                for case in &report.cases {
                    println!(
                        "{:<24} {:>14.0} {:>12.0}",
                        case.name, case.commands_per_s, case.ns_per_command
                    );
                }
                println!(
                    "pre-verified is {:.1}x the inline rate",
                    report.pre_verified_speedup
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}

fn simulate(json: bool, first: u64, seeds: u64, commands: u64) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(seeds > 0, "--seeds must be above zero");
    let last = first
        .checked_add(seeds - 1)
        .ok_or_else(|| anyhow::anyhow!("seed range overflows"))?;
    for seed in first..=last {
        let started = std::time::Instant::now();
        let mut progress = |step: u64| {
            if step > 0 {
                tracing::info!(seed, step, of = commands, "simulating");
            }
        };
        match run_with_progress(SimConfig::new(seed, commands), &mut progress) {
            Ok(report) => {
                if json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    let rejected: u64 = report.rejected.values().sum();
                    println!(
                        "seed {seed}: {} commands, {} accepted ({} duplicates), {} refused, {} expirations, {} identities, invariants held, replay identical ({:.1} s)",
                        report.commands,
                        report.accepted,
                        report.duplicates,
                        rejected,
                        report.expirations,
                        report.identities,
                        started.elapsed().as_secs_f64()
                    );
                }
            }
            Err(failure) => {
                eprintln!("{failure}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_log_report(report: &agentrail_bench::log::LogBenchReport) {
    println!(
        "tree appends (in memory):     {:>12.0} /s   (leaf hash of 1 KiB: {:.0} ns)",
        report.tree_appends_per_s, report.leaf_hash_ns
    );
    println!(
        "inclusion proof at {}:  build {:.2} us, verify {:.2} us, {} bytes; from the store {:.1} us",
        report.leaves,
        report.inclusion_build_us,
        report.inclusion_verify_us,
        report.inclusion_proof_bytes,
        report.store_inclusion_build_us
    );
    println!(
        "consistency proof at {}: build {:.2} us, verify {:.2} us, {} bytes",
        report.leaves,
        report.consistency_build_us,
        report.consistency_verify_us,
        report.consistency_proof_bytes
    );
    println!(
        "checkpoint signing:           {:>12.1} us per batch",
        report.checkpoint_sign_us
    );
    println!(
        "durable appends, batches of {}: {:.0}/s with the log, {:.0}/s without: the log adds {:.1}%",
        report.durable_batch,
        report.durable_with_log_per_s,
        report.durable_without_log_per_s,
        report.log_overhead_percent
    );
}

fn print_chain_report(r: &agentrail_bench::chain::ChainBenchReport) {
    println!(
        "chain (anvil, a block every {} s, {} confirmations)",
        r.block_time_s, r.confirmations
    );
    let rows: [(&str, String); 15] = [
        (
            "deposit to credit, p50",
            format!("{:.0} ms", r.deposit_to_credit_p50_ms),
        ),
        (
            "deposit to credit, max",
            format!("{:.0} ms", r.deposit_to_credit_max_ms),
        ),
        (
            "deposit by authorization",
            format!("{} gas", r.deposit_with_authorization_gas),
        ),
        (
            "approve + deposit",
            format!("{} gas", r.deposit_with_approval_gas),
        ),
        (
            "anchor (median)",
            format!("{} gas, {} anchors", r.anchor_gas, r.anchors),
        ),
        ("withdrawal", format!("{} gas", r.withdraw_gas)),
        (
            "x402 exact (transferWithAuthorization)",
            format!("{} gas", r.transfer_with_authorization_gas),
        ),
        ("channel payments", r.channel_payments.to_string()),
        (
            "channel ledger commands",
            r.channel_ledger_commands.to_string(),
        ),
        (
            "anchors while the channel ran",
            r.channel_anchors.to_string(),
        ),
        (
            "channel's share of anchors",
            format!("{:.0} gas", r.channel_anchor_share_gas),
        ),
        (
            "channel gas (deposit + withdrawal + share)",
            format!("{:.0}", r.channel_gas),
        ),
        (
            "gas per 1M payments, channel",
            format!("{:.0}", r.channel_gas_per_million),
        ),
        (
            "gas per 1M payments, exact",
            format!("{:.0}", r.exact_gas_per_million),
        ),
        ("exact ÷ channel", format!("{:.0}×", r.exact_vs_channel_gas)),
    ];
    for (label, value) in rows {
        println!("  {label:<46} {value}");
    }
}

fn print_channel_report(r: &agentrail_bench::channel::ChannelBenchReport) {
    println!(
        "(a) Ed25519 verifications, one core      {:>10.0}/s",
        r.ed25519_verify_per_s
    );
    println!(
        "(b) vouchers accepted, one core           {:>10.0}/s  ({:.2}x (a))",
        r.voucher_accept_per_s, r.voucher_accept_vs_verify
    );
    println!(
        "    the same, signatures in batches       {:>10.0}/s  ({:.2}x (a))",
        r.voucher_accept_batch_per_s, r.voucher_accept_batch_vs_verify
    );
    println!(
        "(c) unpaid calls                          {:>10.0}/s  p50 {:.0} us, p99 {:.0} us",
        r.unpaid_rps, r.unpaid_p50_us, r.unpaid_p99_us
    );
    println!(
        "    paid through a channel                {:>10.0}/s  p50 {:.0} us, p99 {:.0} us  ({:.2}x unpaid, +{:.0} us p99)",
        r.paid_rps, r.paid_p50_us, r.paid_p99_us, r.paid_vs_unpaid, r.paid_p99_added_us
    );
    println!(
        "(d) one ledger transfer per call          {:>10.0}/s  p99 {:.0} us  (channels {:.1}x the throughput, {:.1}x lower added p99)",
        r.per_payment_transfer_rps,
        r.per_payment_transfer_p99_us,
        r.channel_vs_transfer_rps,
        r.transfer_p99_added_over_channel
    );
    println!(
        "(e) ledger commands for {} payments: {} ({:.1} per million)",
        r.payments, r.ledger_commands, r.ledger_commands_per_million
    );
    println!(
        "(f) x402 exact on anvil                   {:>10.0}/s  p50 {:.0} us, p99 {:.0} us  (channels {:.1}x the throughput, {:.1}x lower added p99; {} calls)",
        r.exact_rps,
        r.exact_p50_us,
        r.exact_p99_us,
        r.channel_vs_exact_rps,
        r.exact_p99_added_over_channel,
        r.exact_calls
    );
    println!(
        "(g) hash-chain links                      {:>10.0}/s  p50 {:.0} us, p99 {:.0} us  ({:.2}x unpaid, +{:.0} us p99; {} links per commitment)",
        r.hash_chain_rps,
        r.hash_chain_p50_us,
        r.hash_chain_p99_us,
        r.hash_chain_vs_unpaid,
        r.hash_chain_p99_added_us,
        r.hash_chain_length
    );
    println!(
        "    payee CPU per paid call over an unpaid one: {:.1} us (hash chain), {:.1} us (voucher); provider CPU per call {:.1} unpaid, {:.1} voucher, {:.1} hash chain",
        r.hash_chain_payee_cpu_us,
        r.paid_payee_cpu_us,
        r.unpaid_provider_cpu_us,
        r.paid_provider_cpu_us,
        r.hash_chain_provider_cpu_us
    );
    println!(
        "node, provider and clients share this machine's {} cores",
        r.cores
    );
}

fn print_ledger_report(report: &agentrail_bench::LedgerBenchReport) {
    println!("{:<34} {:>12}", "case", "transfers/s");
    println!(
        "{:<34} {:>12.0}   (mean {:.0} per fsync, {:.0} signatures per batch check, {:.1} us CPU each, p50 {:.0} us, p99 {:.0} us)",
        "(a) group commit, in process",
        report.group_commit_tps,
        report.group_commit_mean_batch,
        report.group_commit_mean_signature_batch,
        report.group_commit_cpu_us,
        report.group_commit_p50_us,
        report.group_commit_p99_us
    );
    println!(
        "{:<34} {:>12.0}   ({:.1} us CPU each)",
        "(a') same, verified beforehand",
        report.group_commit_preverified_tps,
        report.group_commit_preverified_cpu_us
    );
    for (case, stages) in [
        ("(a)", &report.group_commit_cpu_by_stage_us),
        ("(a')", &report.group_commit_preverified_cpu_by_stage_us),
    ] {
        println!(
            "    {case:<5} us CPU per transfer: node {:.1} (verifier {:.1}, writer {:.1}, committer {:.1}, snapshot {:.1}), clients {:.1}",
            stages.node,
            stages.verifier,
            stages.writer,
            stages.committer,
            stages.snapshot,
            stages.clients
        );
    }
    println!(
        "    writer's pause per batch: p99 <= {:.0} us, longest {:.0} us (a snapshot every {} entries)",
        report.writer_pause_p99_us, report.writer_pause_max_us, report.snapshot_every
    );
    println!(
        "{:<34} {:>12.0}",
        "(b) one fsync per command", report.fsync_each_tps
    );
    println!(
        "{:<34} {:>12.0}",
        "(c) SQLite WAL synchronous=FULL", report.sqlite_tps
    );
    println!(
        "{:<34} {:>12.0}   (p50 {:.0} us, p99 {:.0} us)",
        "(d) HTTP on loopback", report.http_tps, report.http_p50_us, report.http_p99_us
    );
    let http = &report.http_cpu_by_stage_us;
    println!(
        "    us CPU per transfer: node {:.1} (HTTP {:.1}, verifier {:.1}, writer {:.1}, committer {:.1}, snapshot {:.1}) beside (a)'s {:.1}; clients {:.1}",
        report.http_node_cpu_us,
        http.http,
        http.verifier,
        http.writer,
        http.committer,
        http.snapshot,
        report.group_commit_cpu_by_stage_us.node,
        http.clients
    );
    if let Some(postgres) = &report.postgres {
        println!(
            "{:<34} {:>12.0}   (mean {:.0} per commit, {:.1} us CPU each, p50 {:.0} us, p99 {:.0} us; synchronous standby: {})",
            "(e) group commit on PostgreSQL",
            postgres.tps,
            postgres.mean_batch,
            postgres.cpu_us,
            postgres.p50_us,
            postgres.p99_us,
            if postgres.synchronous_standby_names.is_empty() {
                "none"
            } else {
                &postgres.synchronous_standby_names
            }
        );
        println!(
            "    takeover after the leader's last write: {:.0} ms (lease {} ms); (e)/(a) = {:.2}x",
            postgres.takeover_ms, postgres.lease_ms, postgres.vs_group_commit
        );
    }
    println!(
        "(a)/(c) = {:.1}x, (a')/(c) = {:.1}x, (a)/(b) = {:.1}x on {} cores",
        report.group_commit_vs_sqlite,
        report.preverified_vs_sqlite,
        report.group_commit_vs_fsync_each,
        report.cores
    );
}
