//! `agentrail facilitator`: x402's facilitator API for `exact` on EVM,
//! settling from an EVM key, so x402's own resource servers (and
//! agentrail's paywall) settle through it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use agentrail_chain::{EvmKey, Rpc};
use agentrail_pay::exact::Settler;
use clap::Args;

#[derive(Debug, Args)]
pub struct FacilitatorArgs {
    /// The chain's JSON-RPC endpoint.
    #[arg(long, value_name = "URL")]
    pub chain_rpc: String,
    /// The EVM key that sends settlements and pays their gas.
    #[arg(long)]
    pub evm_key: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8402")]
    pub listen: SocketAddr,
    /// Seconds a settle waits for its transaction before answering
    /// `settlement_pending`.
    #[arg(long, default_value = "30")]
    pub confirm_timeout: u64,
    /// Settle only payments to this address (repeatable). Without it the
    /// facilitator settles any valid authorization for anyone who asks,
    /// paying the gas of each.
    #[arg(long, value_name = "ADDRESS")]
    pub pay_to: Vec<agentrail_chain::alloy_primitives::Address>,
    /// The EIP-3009 token it settles (repeatable; at least one): another
    /// asset named by a caller could be any contract, run at this key's gas.
    #[arg(long, value_name = "ADDRESS", required = true)]
    pub token: Vec<agentrail_chain::alloy_primitives::Address>,
}

pub async fn run(args: FacilitatorArgs, json: bool) -> anyhow::Result<ExitCode> {
    let key = EvmKey::read(&args.evm_key)?;
    let rpc = Rpc::new(&args.chain_rpc, agentrail_client::http_client(None)?)?;
    let mut settler = Settler::connect(rpc, key)
        .await?
        .confirm_timeout(Duration::from_secs(args.confirm_timeout));
    settler = settler.tokens_only(args.token.clone());
    if args.pay_to.is_empty() {
        tracing::warn!("no --pay-to: settling every valid authorization, at this key's gas");
    } else {
        settler = settler.pay_to_only(args.pay_to.clone());
    }
    let (network, signer) = (settler.network(), settler.address());
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let url = format!("http://{}", listener.local_addr()?);
    if json {
        println!(
            "{}",
            serde_json::json!({"url": url, "network": network, "signer": signer})
        );
    } else {
        println!("facilitator for exact on {network} (signer {signer}) listening on {url}");
    }
    tracing::info!(%url, %network, %signer, "facilitator listening");
    let app = agentrail_pay::facilitator::router(Arc::new(settler));
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}
