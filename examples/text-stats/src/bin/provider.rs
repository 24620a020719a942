//! A paid text-statistics API.
//!
//! - `POST /stats`: counts and the ten most frequent words; 0.001 USD a call.
//! - `POST /stats/full`: every word's count; 0.0005 USD per started kilobyte
//!   of text (metered), at most 0.05 USD a call.
//!
//! Payments arrive as x402 `channel` vouchers; the provider checks them
//! locally, keeps them in `--store`, and collects them from the ledger by
//! itself.

use std::net::SocketAddr;
use std::path::PathBuf;

use agentrail_client::Client;
use agentrail_core::command::{Command, RegisterPrincipal};
use agentrail_evm::alloy_primitives::Address;
use agentrail_evm::alloy_sol_types::SolCall;
use agentrail_evm::bindings::TestUSD;
use agentrail_evm::eip3009::TokenDomain;
use agentrail_evm::{EvmKey, Rpc};
use agentrail_example_text_stats::{key_file, paid_routes};
use agentrail_pay::exact::{ExactTerms, Settler};
use agentrail_pay::facilitator::FacilitatorClient;
use agentrail_pay::paywall::{ExactOffer, ExactSettlement};
use agentrail_pay::{Payee, PayeeOptions};
use anyhow::Context;
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// The agentrail node.
    #[arg(long, env = "AGENTRAIL_NODE", default_value = agentrail_client::DEFAULT_NODE)]
    node: String,
    /// The provider's key (created if missing; registered as a principal).
    #[arg(long, default_value = "provider.key")]
    key: PathBuf,
    /// Where accepted vouchers are kept.
    #[arg(long, default_value = "provider-vouchers")]
    store: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8403")]
    listen: SocketAddr,
    /// Most a channel's accepted vouchers may exceed what is on disk: what
    /// a crash of this process can lose.
    #[arg(long, default_value = "1")]
    max_unsynced: agentrail_core::Amount,
    /// Also accept x402's `exact` scheme on the EVM chain at this RPC
    /// endpoint, for `/stats` (priced per call).
    #[arg(long, value_name = "URL", requires_all = ["exact_token", "exact_pay_to"])]
    exact_rpc: Option<String>,
    /// The EIP-3009 token paid (its EIP-712 name and version are read from
    /// it).
    #[arg(long)]
    exact_token: Option<Address>,
    /// The address paid.
    #[arg(long)]
    exact_pay_to: Option<Address>,
    /// Settle through this x402 facilitator ...
    #[arg(long, value_name = "URL", conflicts_with = "settle_key")]
    facilitator: Option<String>,
    /// ... or from this EVM key, which pays the gas.
    #[arg(long)]
    settle_key: Option<PathBuf>,
    /// Settle before the handler runs (default: after it succeeded).
    #[arg(long)]
    settle_before: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let key = key_file(&args.key)?;
    let client = Client::new(&args.node);
    let did = agentrail_core::Did::from_verifying_key(&key.verifying_key());
    let register = Command::RegisterPrincipal(RegisterPrincipal { principal: did });
    match client.submit(&key, &register).await {
        Ok(_) => {}
        Err(error) if error.code() == Some("already_registered") => {}
        Err(error) => return Err(error.into()),
    }
    let network = client.health().await?.network;
    let options = PayeeOptions {
        max_unsynced: args.max_unsynced,
        ..PayeeOptions::default()
    };
    let payee = Payee::open(&args.store, client, key, options).await?;
    let collector = payee.spawn_collector();
    let exact = match &args.exact_rpc {
        None => None,
        Some(url) => Some(exact_offer(&args, url).await?),
    };
    let app = paid_routes(payee.clone(), &network, exact);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!(
        "provider {did} listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    collector.abort();
    payee.shutdown().await?;
    Ok(())
}

/// The `exact` offer the arguments describe.
async fn exact_offer(args: &Args, url: &str) -> anyhow::Result<ExactOffer> {
    let http = agentrail_client::http_client(None)?;
    let rpc = Rpc::new(url, http.clone())?;
    let token = args.exact_token.context("--exact-token")?;
    let name = TestUSD::nameCall::abi_decode_returns(
        &rpc.view(token, &TestUSD::nameCall {}.abi_encode()).await?,
    )?;
    let version = TestUSD::versionCall::abi_decode_returns(
        &rpc.view(token, &TestUSD::versionCall {}.abi_encode())
            .await?,
    )?;
    let terms = ExactTerms {
        domain: TokenDomain {
            name,
            version,
            chain_id: rpc.chain_id().await?,
            token,
        },
        pay_to: args.exact_pay_to.context("--exact-pay-to")?,
        max_timeout_seconds: 60,
    };
    let settlement = match (&args.facilitator, &args.settle_key) {
        (Some(url), _) => ExactSettlement::Facilitator(FacilitatorClient::new(url, http)),
        (None, Some(key)) => {
            let settler = Settler::connect(rpc, EvmKey::read(key)?).await?;
            ExactSettlement::Local(std::sync::Arc::new(settler))
        }
        (None, None) => anyhow::bail!("--exact-rpc needs --facilitator or --settle-key"),
    };
    let offer = ExactOffer::open(&args.store.join("exact.redb"), terms, settlement)?;
    Ok(if args.settle_before {
        offer.settle_before_handler()
    } else {
        offer
    })
}
