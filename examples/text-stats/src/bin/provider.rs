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
use agentrail_example_text_stats::{key_file, paid_routes};
use agentrail_pay::{Payee, PayeeOptions};
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
    let app = paid_routes(payee.clone(), &network);
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
