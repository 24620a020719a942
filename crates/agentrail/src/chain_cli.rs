//! `agentrail chain …` and the chain flags of `serve`: the vault on an EVM
//! chain under the ledger.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use agentrail_chain::alloy_primitives::{Address, U256};
use agentrail_chain::vault::{self, Deployment};
use agentrail_chain::{EvmKey, Follower, FollowerConfig, Rpc, Vault, account_of, evm_address};
use agentrail_core::chain::ChainBinding;
use agentrail_core::{Amount, Did};
use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

/// What `chain deploy` writes into the data directory.
pub const CHAIN_FILE: &str = "chain.json";

/// `chain.json`: where the ledger's vault is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChainFile {
    pub rpc: String,
    #[serde(flatten)]
    pub deployment: Deployment,
}

pub fn read_chain_file(data: &Path) -> anyhow::Result<Option<ChainFile>> {
    let path = data.join(CHAIN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            Ok(Some(serde_json::from_str(&text).with_context(|| {
                format!("{} is damaged", path.display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// The chain flags of `serve`.
#[derive(Debug, Args)]
pub struct ServeChain {
    /// Follow the vault on the EVM chain at this JSON-RPC endpoint: credit
    /// its deposits, pay withdrawals from it, anchor the log in it.
    #[arg(long, value_name = "URL")]
    pub chain_rpc: Option<String>,
    /// The vault (default: the one `chain deploy` wrote into --data).
    #[arg(long, requires = "chain_rpc")]
    pub vault: Option<Address>,
    /// Confirmations before a deposit is credited or a payout recorded.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub confirmations: u64,
    /// The vault operator's EVM key file (64 hex digits): signs
    /// withdrawals and pays gas for payouts and anchors.
    #[arg(long, requires = "chain_rpc")]
    pub evm_key: Option<PathBuf>,
    /// The ledger operator's key file, outside dev mode (a dev node keeps
    /// it in the data directory): signs the credits and payouts.
    #[arg(long, requires = "chain_rpc")]
    pub operator_key: Option<PathBuf>,
    /// Anchor the log when it grew by this many entries (0: not by size).
    #[arg(long, default_value_t = 1_000)]
    pub anchor_every: u64,
    /// Anchor the log when this many seconds passed and it grew (0: not
    /// by time).
    #[arg(long, default_value_t = 60)]
    pub anchor_interval_s: u64,
    /// How often the chain is read, in milliseconds.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub chain_poll_ms: u64,
    /// The first block to look for deposits in (default: the vault's
    /// creation block from --data, else 0).
    #[arg(long)]
    pub chain_from_block: Option<u64>,
}

/// What `serve` needs to follow a chain, prepared before the node starts.
pub struct Prepared {
    pub binding: ChainBinding,
    rpc_url: String,
    evm_key: EvmKey,
    operator_key: Option<Arc<ed25519_dalek::SigningKey>>,
    config: FollowerConfig,
}

impl ServeChain {
    /// Reads the keys and the vault, and checks them against the chain.
    pub async fn prepare(&self, data: &Path, dev: bool) -> anyhow::Result<Option<Prepared>> {
        let Some(url) = &self.chain_rpc else {
            return Ok(None);
        };
        if !dev && self.operator_key.is_none() {
            bail!(
                "--chain-rpc outside dev mode needs --operator-key FILE: the ledger operator's key signs each credit and payout"
            );
        }
        let file = read_chain_file(data)?;
        let evm_key_path = self
            .evm_key
            .clone()
            .context("--chain-rpc needs --evm-key FILE, the vault operator's EVM key")?;
        let evm_key = EvmKey::read(&evm_key_path)?;
        let operator_key = self
            .operator_key
            .as_deref()
            .map(crate::cli_support::read_key)
            .transpose()?
            .map(Arc::new);
        let rpc = Rpc::new(url, agentrail_client::http_client(None)?)?;
        let bound = agentrail_node::ledger_chain(data)?.flatten();
        let binding = match bound {
            Some(binding) => {
                if let Some(vault) = self.vault
                    && evm_address(vault) != binding.vault
                {
                    bail!(
                        "this ledger is bound to vault {}, not {vault}",
                        binding.vault
                    );
                }
                binding
            }
            None => {
                let vault = self
                    .vault
                    .or(file.as_ref().map(|file| file.deployment.vault))
                    .context(
                        "name the vault with --vault (or deploy one with `agentrail chain deploy`)",
                    )?;
                let chain_id = rpc.chain_id().await.context("reading the chain id")?;
                let onchain = Vault {
                    rpc: &rpc,
                    chain_id,
                    address: vault,
                };
                let operator = onchain
                    .operator()
                    .await
                    .with_context(|| format!("{vault} does not answer as a vault"))?;
                ChainBinding {
                    chain_id,
                    vault: evm_address(vault),
                    operator: evm_address(operator),
                }
            }
        };
        if evm_address(evm_key.address()) != binding.operator {
            bail!(
                "{} holds the key of {}, not of the vault's operator {}",
                evm_key_path.display(),
                evm_key.address(),
                binding.operator
            );
        }
        let start_block = self
            .chain_from_block
            .or(file
                .filter(|file| evm_address(file.deployment.vault) == binding.vault)
                .map(|file| file.deployment.block))
            .unwrap_or(0);
        Ok(Some(Prepared {
            binding,
            rpc_url: url.clone(),
            evm_key,
            operator_key,
            config: FollowerConfig {
                binding,
                confirmations: self.confirmations,
                start_block,
                poll: Duration::from_millis(self.chain_poll_ms),
                anchor_every: self.anchor_every,
                anchor_interval: (self.anchor_interval_s > 0)
                    .then(|| Duration::from_secs(self.anchor_interval_s)),
            },
        }))
    }
}

impl Prepared {
    /// Starts the follower beside the node.
    pub fn spawn(self, node: agentrail_node::NodeHandle) {
        tokio::spawn(async move {
            let Some(operator_key) = self.operator_key.or_else(|| node.operator_key()) else {
                tracing::error!(
                    "the chain follower needs the ledger operator's key: pass --operator-key FILE (dev nodes keep it in the data directory); not following the chain"
                );
                return;
            };
            let rpc = match agentrail_client::http_client(None)
                .map_err(|e| e.to_string())
                .and_then(|http| Rpc::new(&self.rpc_url, http).map_err(|e| e.to_string()))
            {
                Ok(rpc) => rpc,
                Err(e) => {
                    tracing::error!(error = %e, "not following the chain");
                    return;
                }
            };
            match Follower::new(node, rpc, self.config, operator_key, self.evm_key).await {
                Ok(follower) => follower.run().await,
                Err(e) => tracing::error!(error = %e, "not following the chain"),
            }
        });
    }
}

#[derive(Debug, Subcommand)]
pub enum ChainCommand {
    /// Dev chains: deploy TestUSD and a vault operated by --evm-key's
    /// address, mint test tokens to it, and write the addresses into the
    /// data directory (chain.json).
    Deploy {
        #[arg(long, value_name = "URL")]
        rpc: String,
        /// The deployer's and vault operator's EVM key file.
        #[arg(long)]
        evm_key: PathBuf,
        #[arg(long, default_value = "agentrail-data")]
        data: PathBuf,
        /// Test tokens minted to the deployer, in USD.
        #[arg(long, default_value = "1000000")]
        mint: Amount,
    },
    /// Mint TestUSD (open to anyone on a dev chain) to an address.
    Mint {
        #[arg(long, value_name = "URL")]
        rpc: String,
        /// Pays the gas.
        #[arg(long)]
        evm_key: PathBuf,
        /// Default: the key's own address.
        #[arg(long)]
        to: Option<Address>,
        #[arg(long)]
        amount: Amount,
        /// The token (default: the one in --data's chain.json).
        #[arg(long)]
        token: Option<Address>,
        #[arg(long, default_value = "agentrail-data")]
        data: PathBuf,
    },
    /// Deposit tokens from --evm-key's address to a ledger account, with
    /// one transaction (an EIP-3009 authorization only the vault redeems),
    /// or with an approval and `deposit` (--approve).
    Deposit {
        #[arg(long, value_name = "URL")]
        rpc: String,
        #[arg(long)]
        evm_key: PathBuf,
        /// The ledger account credited.
        #[arg(long)]
        to: Did,
        #[arg(long)]
        amount: Amount,
        /// The vault (default: the one in --data's chain.json).
        #[arg(long)]
        vault: Option<Address>,
        #[arg(long, default_value = "agentrail-data")]
        data: PathBuf,
        /// Two transactions, approve then deposit, as any ERC-20 allows.
        #[arg(long)]
        approve: bool,
    },
    /// The vault on chain: its token balance, deposits, withdrawals and
    /// anchor, and whether the node's log is consistent with the anchor.
    Status {
        #[arg(long, value_name = "URL")]
        rpc: String,
        #[arg(long)]
        vault: Option<Address>,
        #[arg(long, default_value = "agentrail-data")]
        data: PathBuf,
    },
}

fn atomic(amount: Amount) -> U256 {
    U256::from(amount.atomic())
}

fn vault_or_file(vault: Option<Address>, data: &Path) -> anyhow::Result<Address> {
    match vault {
        Some(vault) => Ok(vault),
        None => Ok(read_chain_file(data)?
            .context("name the vault with --vault (or deploy one with `agentrail chain deploy`)")?
            .deployment
            .vault),
    }
}

pub async fn run(
    command: ChainCommand,
    client: agentrail_client::Client,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let connect = |url: &str| -> anyhow::Result<Rpc> {
        Ok(Rpc::new(url, agentrail_client::http_client(None)?)?)
    };
    match command {
        ChainCommand::Deploy {
            rpc,
            evm_key,
            data,
            mint,
        } => {
            let endpoint = connect(&rpc)?;
            let key = EvmKey::read(&evm_key)?;
            let deployment = vault::deploy(&endpoint, &key, key.address(), atomic(mint)).await?;
            std::fs::create_dir_all(&data)
                .with_context(|| format!("cannot create {}", data.display()))?;
            let file = ChainFile {
                rpc: rpc.clone(),
                deployment,
            };
            let path = data.join(CHAIN_FILE);
            std::fs::write(&path, serde_json::to_string_pretty(&file)? + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
            if json {
                println!("{}", serde_json::to_string(&deployment)?);
            } else {
                println!(
                    "deployed on chain {}: token {} and vault {} (operator {}), in block {}; {} test USD minted to {}; written to {}",
                    deployment.chain_id,
                    deployment.token,
                    deployment.vault,
                    deployment.operator,
                    deployment.block,
                    mint.to_decimal_string(),
                    key.address(),
                    path.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Mint {
            rpc,
            evm_key,
            to,
            amount,
            token,
            data,
        } => {
            let endpoint = connect(&rpc)?;
            let key = EvmKey::read(&evm_key)?;
            let token = match token {
                Some(token) => token,
                None => {
                    read_chain_file(&data)?
                        .context("name the token with --token")?
                        .deployment
                        .token
                }
            };
            let to = to.unwrap_or(key.address());
            let chain_id = endpoint.chain_id().await?;
            let receipt =
                vault::mint_to(&endpoint, chain_id, &key, token, to, atomic(amount)).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"tx": receipt.transaction_hash, "block": receipt.block_number, "to": to, "amount": amount})
                );
            } else {
                println!(
                    "minted {} test USD to {to} in transaction {}",
                    amount.to_decimal_string(),
                    receipt.transaction_hash
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Deposit {
            rpc,
            evm_key,
            to,
            amount,
            vault,
            data,
            approve,
        } => {
            let endpoint = connect(&rpc)?;
            let key = EvmKey::read(&evm_key)?;
            let address = vault_or_file(vault, &data)?;
            let vault = Vault {
                rpc: &endpoint,
                chain_id: endpoint.chain_id().await?,
                address,
            };
            let receipt = if approve {
                vault
                    .deposit_with_approval(&key, account_of(&to), atomic(amount))
                    .await?
            } else {
                vault
                    .deposit_with_authorization(&key, account_of(&to), atomic(amount))
                    .await?
            };
            let deposit = receipt
                .logs
                .iter()
                .filter(|log| log.address == address)
                .find_map(|log| vault::DepositLog::decode(log.clone()).ok())
                .context("the transaction emitted no Deposited log")?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"tx": receipt.transaction_hash, "block": receipt.block_number, "deposit_id": deposit.id.to_string(), "to": to, "amount": amount, "gas_used": receipt.gas_used})
                );
            } else {
                println!(
                    "deposit {} of {} USD to {to} in transaction {} (block {}); the node credits it after its confirmations",
                    deposit.id,
                    amount.to_decimal_string(),
                    receipt.transaction_hash,
                    receipt.block_number
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Status { rpc, vault, data } => {
            let endpoint = connect(&rpc)?;
            let address = vault_or_file(vault, &data)?;
            let chain_id = endpoint.chain_id().await?;
            let onchain = Vault {
                rpc: &endpoint,
                chain_id,
                address,
            };
            let token = onchain.token().await?;
            let held = vault::balance_of(&endpoint, token, address).await?;
            let (anchored_size, anchored_root) = onchain.anchored().await?;
            let head = endpoint.block_number().await?;
            let anchor = crate::log_cli::check_anchor(&client, &onchain).await;
            let health = client.health().await.ok();
            let status = serde_json::json!({
                "chain_id": chain_id,
                "head": head,
                "vault": address,
                "token": token,
                "vault_balance": held.to_string(),
                "anchored_size": anchored_size,
                "anchored_root": anchored_root,
                "anchor_consistent": anchor.as_ref().ok().map(|a| a.consistent),
                "anchor_error": anchor.as_ref().err().map(|e| format!("{e:#}")),
                "node": health.as_ref().and_then(|h| h.chain.clone()),
            });
            if json {
                println!("{status}");
            } else {
                println!("chain {chain_id} at block {head}: vault {address}, token {token}");
                println!(
                    "  vault holds {} USD",
                    Amount::from_atomic(held.saturating_to::<u128>()).to_decimal_string()
                );
                println!("  anchored: {anchored_size} entries, root {anchored_root}");
                match &anchor {
                    Ok(check) => println!("  node's log: {}", check.describe()),
                    Err(e) => println!("  node's log: not checked ({e:#})"),
                }
                if let Some(chain) = health.and_then(|h| h.chain) {
                    println!(
                        "  node: {} deposits credited, {} withdrawals pending, rpc {}{}",
                        chain.deposits_credited,
                        chain.pending_withdrawals,
                        if chain.rpc_ok { "ok" } else { "failing" },
                        chain
                            .alarm
                            .map(|alarm| format!(", ALARM: {alarm}"))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(match anchor {
                Ok(check) if !check.consistent => ExitCode::from(crate::log_cli::EXIT_LOG_LIES),
                _ => ExitCode::SUCCESS,
            })
        }
    }
}
