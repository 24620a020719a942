//! A buyer agent: calls the text-statistics API many times, paying each
//! call through one payment channel, and reports what it spent.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use agentrail_client::Client;
use agentrail_example_text_stats::key_file;
use agentrail_pay::payer::{Method, Payer, PayerOptions};
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// The agentrail node.
    #[arg(long, env = "AGENTRAIL_NODE", default_value = agentrail_client::DEFAULT_NODE)]
    node: String,
    /// The buyer's key (a funded principal, agent or session).
    #[arg(long, default_value = "buyer.key")]
    key: PathBuf,
    #[arg(long, default_value = "http://127.0.0.1:8403")]
    provider: String,
    /// Calls to `/stats`.
    #[arg(long, default_value_t = 1_000)]
    calls: usize,
    /// Calls in flight at once (each on its own sub-channel).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Leave the channel open at the end.
    #[arg(long)]
    keep_open: bool,
}

const TEXT: &str = "Agents buy data, rent compute and hire each other. \
Each call is paid with a voucher: no fee, no waiting, and the ledger sees \
the channel only when it opens, collects and closes.";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let key = key_file(&args.key)?;
    let did = agentrail_core::Did::from_verifying_key(&key.verifying_key());
    let client = Client::new(&args.node);
    let payer = Arc::new(Payer::new(client, key, did, PayerOptions::default()).await?);
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (payer, next, url) = (
            Arc::clone(&payer),
            Arc::clone(&next),
            format!("{}/stats", args.provider),
        );
        let calls = args.calls;
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < calls {
                let paid = payer
                    .fetch(Method::POST, &url, TEXT.as_bytes().to_vec())
                    .await?;
                anyhow::ensure!(
                    paid.status.is_success(),
                    "the provider answered {}",
                    paid.status
                );
            }
            anyhow::Ok(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let elapsed = started.elapsed();
    // One metered call on a larger text.
    let big = TEXT.repeat(40);
    let full = payer
        .fetch(
            Method::POST,
            &format!("{}/stats/full", args.provider),
            big.into_bytes(),
        )
        .await?;
    let stats: serde_json::Value = serde_json::from_slice(&full.body)?;
    println!(
        "{} paid calls in {:.2} s ({:.0}/s); a metered call on {} words; spent {} USD",
        args.calls,
        elapsed.as_secs_f64(),
        args.calls as f64 / elapsed.as_secs_f64(),
        stats["words"],
        payer.spent().to_decimal_string()
    );
    if !args.keep_open {
        payer.close_all().await?;
        println!(
            "channel closing: the provider collects within its dispute window, the rest returns"
        );
    }
    Ok(())
}
