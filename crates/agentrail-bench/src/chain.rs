//! `agentrail bench chain`: the ledger on a real anvil chain, in one run:
//!
//! - how long a vault deposit takes to be credited at N confirmations,
//!   from the block that holds it, with anvil mining a block every
//!   `block_time_s` seconds;
//! - the gas of a deposit (by EIP-3009 authorization, and by approval plus
//!   `deposit`), of an anchor and of a withdrawal;
//! - the gas that `payments` payments cost through one channel — the
//!   payer's deposit, the payee's withdrawal, and the channel's share of
//!   the anchors (its ledger commands — open, collects, close — times the
//!   measured gas of one anchor over the entries one anchor covers) —
//!   scaled to one million payments, beside one million x402 `exact`
//!   payments, each one `transferWithAuthorization` whose gas is measured
//!   on the same chain.

use std::time::{Duration, Instant};

use agentrail_chain::alloy_primitives::{B256, U256};
use agentrail_chain::alloy_sol_types::{SolCall, SolEvent, SolStruct};
use agentrail_chain::anvil::Anvil;
use agentrail_chain::bindings::{AgentrailVault, TestUSD, TransferWithAuthorization};
use agentrail_chain::rpc::LogQuery;
use agentrail_chain::vault::{self, Vault, token_domain};
use agentrail_chain::wallet::{Call, transact};
use agentrail_chain::{Follower, FollowerConfig, Rpc, account_of, evm_address};
use agentrail_client::Client;
use agentrail_core::Amount;
use agentrail_core::chain::ChainBinding;
use agentrail_core::channel::{ChannelId, network_hash};
use agentrail_core::command::{Command, Withdraw};
use agentrail_pay::{Payee, PayeeOptions};
use agentrail_sim::kit;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::channel::{key, vouchers};

#[derive(Clone, Copy, Debug)]
pub struct ChainBenchConfig {
    /// Confirmations before the node credits a deposit.
    pub confirmations: u64,
    /// Seconds between anvil's blocks.
    pub block_time_s: u64,
    /// Deposits timed.
    pub deposits: usize,
    /// Payments carried by the channel.
    pub payments: usize,
    /// The node anchors every this many log entries.
    pub anchor_every: u64,
}

impl Default for ChainBenchConfig {
    fn default() -> ChainBenchConfig {
        ChainBenchConfig {
            confirmations: 3,
            block_time_s: 1,
            deposits: 5,
            payments: 1_000_000,
            anchor_every: 1_000,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ChainBenchReport {
    pub bench: &'static str,
    pub confirmations: u64,
    pub block_time_s: u64,
    /// From the deposit's block to its credit, median and worst, ms.
    pub deposit_to_credit_p50_ms: f64,
    pub deposit_to_credit_max_ms: f64,
    pub deposit_with_authorization_gas: u64,
    /// `approve` plus `deposit`.
    pub deposit_with_approval_gas: u64,
    /// Anchors the node sent during the run, and their median gas.
    pub anchors: usize,
    pub anchor_gas: u64,
    pub withdraw_gas: u64,
    /// One x402 `exact` payment: `transferWithAuthorization`.
    pub transfer_with_authorization_gas: u64,
    pub channel_payments: usize,
    /// Ledger commands the channel took (open, collects, close).
    pub channel_ledger_commands: u64,
    /// Anchors the node sent while the channel ran (on a timer as well).
    pub channel_anchors: usize,
    /// The channel's share of anchoring: its ledger commands × one
    /// anchor's gas ÷ the entries one anchor covers (`anchor_every`).
    pub channel_anchor_share_gas: f64,
    /// Deposit + withdrawal + the anchor share.
    pub channel_gas: f64,
    pub channel_gas_per_million: f64,
    pub exact_gas_per_million: f64,
    /// How many times more gas a million `exact` payments take.
    pub exact_vs_channel_gas: f64,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

pub fn run_chain_bench(
    config: ChainBenchConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<ChainBenchReport, String> {
    assert!(
        config.deposits > 0 && config.payments > 0,
        "nothing to measure"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(run(config, progress))
}

async fn run(
    config: ChainBenchConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<ChainBenchReport, String> {
    let fail = |e: &dyn std::fmt::Display| e.to_string();
    progress("anvil");
    let anvil = Anvil::start(4, Some(config.block_time_s))?;
    let http = agentrail_client::http_client(None).map_err(|e| fail(&e))?;
    let rpc = Rpc::new(anvil.url(), http.clone()).map_err(|e| fail(&e))?;
    let (operator, payer, other, relayer) =
        (anvil.key(0), anvil.key(1), anvil.key(2), anvil.key(3));
    let deployment = vault::deploy(&rpc, operator, operator.address(), U256::ZERO)
        .await
        .map_err(|e| fail(&e))?;
    let chain_id = deployment.chain_id;
    vault::mint_to(
        &rpc,
        chain_id,
        payer,
        deployment.token,
        payer.address(),
        U256::from(u128::from(u64::MAX)),
    )
    .await
    .map_err(|e| fail(&e))?;
    let vault = Vault {
        rpc: &rpc,
        chain_id,
        address: deployment.vault,
    };
    let binding = ChainBinding {
        chain_id,
        vault: evm_address(deployment.vault),
        operator: evm_address(operator.address()),
    };

    progress("node");
    let data = tempfile::tempdir().map_err(|e| fail(&e))?;
    let store = tempfile::tempdir().map_err(|e| fail(&e))?;
    let node_config = agentrail_node::NodeConfig {
        data_dir: data.path().to_owned(),
        listen: "127.0.0.1:0".parse().expect("an address"),
        dev: true,
        operator: None,
        snapshot_every: agentrail_node::ledger::SNAPSHOT_EVERY,
        limits: agentrail_node::limits::ServeLimits::default(),
        journal_cache_bytes: agentrail_node::JOURNAL_CACHE_BYTES,
        time_scale: None,
        cors_origins: Vec::new(),
        tls: None,
        chain: Some(binding),
        replication: None,
    };
    let follower = FollowerConfig {
        binding,
        confirmations: config.confirmations,
        start_block: deployment.block,
        poll: Duration::from_millis(10),
        anchor_every: config.anchor_every,
        // A short interval, so that a short run anchors too and one
        // anchor's gas is measured.
        anchor_interval: Some(Duration::from_secs(1)),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let (ready_tx, ready_rx) = oneshot::channel();
    let follower_rpc = Rpc::new(anvil.url(), http.clone()).map_err(|e| fail(&e))?;
    let evm_key = operator.clone();
    let server = tokio::spawn(agentrail_node::run_with(
        node_config,
        move |handle| {
            tokio::spawn(async move {
                let Some(key) = handle.operator_key() else {
                    return;
                };
                match Follower::new(handle, follower_rpc, follower, key, evm_key).await {
                    Ok(follower) => follower.run().await,
                    Err(e) => tracing::error!(error = %e, "the follower did not start"),
                }
            });
        },
        move |address| {
            let _ = ready_tx.send(address);
        },
        async {
            let _ = stopped.await;
        },
    ));
    let address = ready_rx.await.map_err(|_| "the node did not start")?;
    let node = Client::new(&format!("http://{address}"));
    let (streamer, seller) = (key("chain-streamer"), key("chain-seller"));
    for k in [&streamer, &seller] {
        node.submit(k, &kit::register_principal(kit::did(k)))
            .await
            .map_err(|e| fail(&e))?;
    }
    let credited = || async {
        node.health()
            .await
            .ok()
            .and_then(|health| health.chain)
            .map_or(0, |chain| chain.deposits_credited)
    };

    progress("deposit_to_credit");
    let mut latencies = Vec::new();
    let mut deposit_gas = 0;
    // One million USD each.
    let deposit = U256::from(1_000_000_000_000u128);
    for _ in 0..config.deposits {
        let receipt = vault
            .deposit_with_authorization(payer, account_of(&kit::did(&streamer)), deposit)
            .await
            .map_err(|e| fail(&e))?;
        let mined = Instant::now();
        deposit_gas = receipt.gas_used;
        let id = credited().await + 1;
        let deadline = mined + Duration::from_secs(60 + config.confirmations * config.block_time_s);
        while credited().await < id {
            if Instant::now() > deadline {
                return Err(format!("deposit {id} was not credited"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        latencies.push(mined.elapsed().as_secs_f64() * 1e3);
    }
    let approval = {
        let approve = TestUSD::approveCall {
            spender: deployment.vault,
            value: U256::from(1),
        }
        .abi_encode();
        let approved = transact(
            &rpc,
            chain_id,
            other,
            Call {
                to: Some(deployment.token),
                data: approve,
            },
        )
        .await
        .map_err(|e| fail(&e))?;
        vault::mint_to(
            &rpc,
            chain_id,
            other,
            deployment.token,
            other.address(),
            U256::from(1),
        )
        .await
        .map_err(|e| fail(&e))?;
        let data = AgentrailVault::depositCall {
            account: account_of(&kit::did(&seller)),
            amount: U256::from(1),
        }
        .abi_encode();
        let deposited = transact(
            &rpc,
            chain_id,
            other,
            Call {
                to: Some(deployment.vault),
                data,
            },
        )
        .await
        .map_err(|e| fail(&e))?;
        approved.gas_used + deposited.gas_used
    };

    progress("exact");
    let transfer_with_authorization_gas = {
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce).map_err(|e| fail(&e))?;
        let message = TransferWithAuthorization {
            from: payer.address(),
            to: other.address(),
            value: U256::from(1_000),
            validAfter: U256::ZERO,
            validBefore: U256::from(u64::MAX),
            nonce: B256::from(nonce),
        };
        let signature = payer
            .sign_hash(&message.eip712_signing_hash(&token_domain(chain_id, deployment.token)));
        let data = TestUSD::transferWithAuthorizationCall {
            from: message.from,
            to: message.to,
            value: message.value,
            validAfter: message.validAfter,
            validBefore: message.validBefore,
            nonce: message.nonce,
            v: 27 + u8::from(signature.v()),
            r: signature.r().into(),
            s: signature.s().into(),
        }
        .abi_encode();
        transact(
            &rpc,
            chain_id,
            relayer,
            Call {
                to: Some(deployment.token),
                data,
            },
        )
        .await
        .map_err(|e| fail(&e))?
        .gas_used
    };

    progress("channel");
    let channel_first_block = rpc.block_number().await.map_err(|e| fail(&e))?;
    let commands_before = node.health().await.map_err(|e| fail(&e))?.journal_len;
    let network = network_hash(&node.health().await.map_err(|e| fail(&e))?.network);
    let payee = Payee::open(
        store.path(),
        node.clone(),
        seller.clone(),
        PayeeOptions::default(),
    )
    .await
    .map_err(|e| fail(&e))?;
    node.submit(
        &streamer,
        &kit::open_channel(
            kit::did(&streamer),
            kit::did(&seller),
            Amount::from_atomic(config.payments as u128 * 2),
            "chain-stream",
        ),
    )
    .await
    .map_err(|e| fail(&e))?;
    let channel = ChannelId::derive(&kit::did(&streamer), &kit::did(&seller), "chain-stream");
    let mut accepted = 0usize;
    while accepted < config.payments {
        let count = (config.payments - accepted).min(50_000);
        let chunk = vouchers(
            &streamer,
            &network,
            channel,
            kit::did(&seller),
            "chain",
            accepted as u64 + 1,
            count,
        );
        for group in chunk.chunks(64) {
            for answer in payee.accept_batch(group).await {
                answer.map_err(|e| fail(&e))?;
            }
        }
        accepted += count;
        progress(&format!("channel {accepted}/{}", config.payments));
    }
    payee.close(&channel).await.map_err(|e| fail(&e))?;
    payee.shutdown().await.map_err(|e| fail(&e))?;
    let channel_ledger_commands =
        node.health().await.map_err(|e| fail(&e))?.journal_len - commands_before;

    // The payee takes its earnings to an EVM address.
    let earned = node
        .balance(&kit::did(&seller))
        .await
        .map_err(|e| fail(&e))?
        .available;
    let paid_to = relayer.address();
    let withdrawal = node
        .submit(
            &seller,
            &Command::Withdraw(Withdraw {
                from: kit::did(&seller),
                amount: earned,
                idempotency_key: "chain-bench-withdraw".into(),
                to: Some(evm_address(paid_to)),
            }),
        )
        .await
        .map_err(|e| fail(&e))?;
    let id = withdrawal
        .events
        .iter()
        .find_map(|event| match event {
            agentrail_core::Event::WithdrawalRequested { id, .. } => Some(*id),
            _ => None,
        })
        .ok_or("the withdrawal is not pending")?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let withdrawn = loop {
        let head = rpc.block_number().await.map_err(|e| fail(&e))?;
        if let Some(log) = vault
            .withdrawal_log(id, deployment.block, head)
            .await
            .map_err(|e| fail(&e))?
        {
            break log;
        }
        if Instant::now() > deadline {
            return Err("the withdrawal was not paid".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let withdraw_gas = rpc
        .receipt(withdrawn.transaction_hash)
        .await
        .map_err(|e| fail(&e))?
        .ok_or("no receipt for the withdrawal")?
        .gas_used;
    // The anchor that covers the channel's last command.
    let covered = node.health().await.map_err(|e| fail(&e))?.journal_len;
    let deadline = Instant::now() + Duration::from_secs(120);
    while vault.anchored().await.map_err(|e| fail(&e))?.0 < covered {
        if Instant::now() > deadline {
            return Err("the log was not anchored".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let head = rpc.block_number().await.map_err(|e| fail(&e))?;
    let anchored = rpc
        .logs(LogQuery {
            address: deployment.vault,
            topics: &[Some(AgentrailVault::Anchored::SIGNATURE_HASH)],
            from: deployment.block,
            to: head,
        })
        .await
        .map_err(|e| fail(&e))?;
    let mut anchor_gases = Vec::new();
    let mut channel_anchor_gas = 0u64;
    let mut channel_anchors = 0;
    for log in &anchored {
        let gas = rpc
            .receipt(log.transaction_hash)
            .await
            .map_err(|e| fail(&e))?
            .ok_or("no receipt for an anchor")?
            .gas_used;
        anchor_gases.push(gas as f64);
        if log.block_number > channel_first_block {
            channel_anchor_gas += gas;
            channel_anchors += 1;
        }
    }
    let anchor_gas = median(&mut anchor_gases) as u64;
    let _ = stop.send(());
    let _ = server.await;

    let _ = channel_anchor_gas;
    let channel_anchor_share_gas =
        channel_ledger_commands as f64 * anchor_gas as f64 / config.anchor_every as f64;
    let channel_gas = (deposit_gas + withdraw_gas) as f64 + channel_anchor_share_gas;
    let channel_gas_per_million = channel_gas * 1e6 / accepted as f64;
    let exact_gas_per_million = transfer_with_authorization_gas as f64 * 1e6;
    Ok(ChainBenchReport {
        bench: "chain",
        confirmations: config.confirmations,
        block_time_s: config.block_time_s,
        deposit_to_credit_p50_ms: median(&mut latencies.clone()),
        deposit_to_credit_max_ms: latencies.iter().copied().fold(0.0, f64::max),
        deposit_with_authorization_gas: deposit_gas,
        deposit_with_approval_gas: approval,
        anchors: anchored.len(),
        anchor_gas,
        withdraw_gas,
        transfer_with_authorization_gas,
        channel_payments: accepted,
        channel_ledger_commands,
        channel_anchors,
        channel_anchor_share_gas,
        channel_gas,
        channel_gas_per_million,
        exact_gas_per_million,
        exact_vs_channel_gas: exact_gas_per_million / channel_gas_per_million,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_chain_run_reports_every_figure() {
        let report = run_chain_bench(
            ChainBenchConfig {
                confirmations: 2,
                block_time_s: 1,
                deposits: 1,
                payments: 200,
                anchor_every: 5,
            },
            &mut |_| {},
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.channel_payments, 200);
        assert!(report.deposit_with_authorization_gas > 50_000);
        assert!(report.transfer_with_authorization_gas > 30_000);
        assert!(report.anchors >= 1 && report.anchor_gas > 20_000);
        assert!(report.withdraw_gas > 30_000);
        assert!(report.channel_ledger_commands >= 2);
    }
}
