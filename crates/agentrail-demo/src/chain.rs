//! `demo --chain`: the same scenarios on a ledger bound to a vault on a
//! local anvil chain. Money enters only as tokens deposited into the vault
//! (each credited once the follower saw its confirmations); at the end a
//! player withdraws to an EVM address, the log is anchored, and the
//! anchored root and the vault's reserves are checked.

use std::time::{Duration, Instant};

use agentrail_chain::alloy_primitives::{B256, U256};
use agentrail_chain::anvil::Anvil;
use agentrail_chain::vault::{self, Deployment, Vault};
use agentrail_chain::{EvmKey, Follower, FollowerConfig, Rpc, account_of, evm_address};
use agentrail_core::chain::ChainBinding;
use agentrail_core::command::Withdraw;
use agentrail_core::{Amount, Command, Did};
use anyhow::{Context, bail};

use crate::{Figure, World, expect};

/// Confirmations the demo's node waits for.
pub const CONFIRMATIONS: u64 = 2;
/// Seconds between the dev chain's blocks.
const BLOCK_TIME_S: u64 = 1;
/// How long a deposit or payout may take to show.
const WAIT: Duration = Duration::from_secs(60);

/// The dev chain the demo plays on.
pub(crate) struct ChainWorld {
    pub anvil: Anvil,
    pub rpc: Rpc,
    pub deployment: Deployment,
    /// The owner's EVM account: it holds the test tokens and deposits them.
    pub owner: EvmKey,
    /// Transactions worth showing: (what, hash).
    pub transactions: Vec<(String, B256)>,
}

impl ChainWorld {
    /// Starts anvil, deploys TestUSD and the vault, mints the owner's
    /// tokens.
    pub async fn start() -> anyhow::Result<ChainWorld> {
        let anvil = Anvil::start(3, Some(BLOCK_TIME_S)).map_err(anyhow::Error::msg)?;
        let rpc = Rpc::new(anvil.url(), agentrail_client::http_client(None)?)?;
        let operator = anvil.key(0).clone();
        let owner = anvil.key(1).clone();
        let deployment = vault::deploy(&rpc, &operator, operator.address(), U256::ZERO).await?;
        let minted = vault::mint_to(
            &rpc,
            deployment.chain_id,
            &owner,
            deployment.token,
            owner.address(),
            U256::from(100_000_000u128 * 1_000_000),
        )
        .await?;
        Ok(ChainWorld {
            anvil,
            rpc,
            deployment,
            owner,
            transactions: vec![(
                "the owner mints 100,000,000 test USD".into(),
                minted.transaction_hash,
            )],
        })
    }

    pub fn binding(&self) -> ChainBinding {
        ChainBinding {
            chain_id: self.deployment.chain_id,
            vault: evm_address(self.deployment.vault),
            operator: evm_address(self.deployment.operator),
        }
    }

    pub fn vault(&self) -> Vault<'_> {
        Vault {
            rpc: &self.rpc,
            chain_id: self.deployment.chain_id,
            address: self.deployment.vault,
        }
    }

    /// The follower the demo's node runs.
    pub fn follower_config(&self) -> FollowerConfig {
        FollowerConfig {
            binding: self.binding(),
            confirmations: CONFIRMATIONS,
            start_block: self.deployment.block,
            poll: Duration::from_millis(200),
            anchor_every: 0,
            anchor_interval: Some(Duration::from_secs(2)),
        }
    }

    /// Starts the follower beside the node.
    pub fn spawn_follower(&self, node: agentrail_node::NodeHandle) -> anyhow::Result<()> {
        let operator_key = node
            .operator_key()
            .context("a dev node holds the operator key")?;
        let rpc = Rpc::new(self.anvil.url(), agentrail_client::http_client(None)?)?;
        let config = self.follower_config();
        let evm_key = self.anvil.key(0).clone();
        tokio::spawn(async move {
            match Follower::new(node, rpc, config, operator_key, evm_key).await {
                Ok(follower) => follower.run().await,
                Err(e) => tracing::error!(error = %e, "the demo's follower did not start"),
            }
        });
        Ok(())
    }

    /// The owner deposits `amount` on chain to `to`; returns once the node
    /// credited it.
    pub async fn deposit(
        &mut self,
        observer: &agentrail_client::Client,
        to: Did,
        amount: Amount,
        name: &str,
    ) -> anyhow::Result<()> {
        let receipt = self
            .vault()
            .deposit_with_authorization(&self.owner, account_of(&to), U256::from(amount.atomic()))
            .await
            .with_context(|| format!("depositing for {name}"))?;
        let id = receipt
            .logs
            .iter()
            .find_map(|log| vault::DepositLog::decode(log.clone()).ok())
            .context("the deposit emitted no Deposited log")?
            .id;
        let id = u64::try_from(id).context("a deposit id beyond u64")?;
        self.transactions.push((
            format!(
                "deposit {id}: {} USD for {name}",
                amount.to_decimal_string()
            ),
            receipt.transaction_hash,
        ));
        wait_for(|| async {
            let health = observer.health().await?;
            Ok(health
                .chain
                .is_some_and(|chain| chain.deposits_credited >= id))
        })
        .await
        .with_context(|| format!("deposit {id} was not credited"))
    }
}

async fn wait_for<F, Fut>(mut done: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if done().await? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("not within {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The chain's part at the end of the demo: the richest principal
/// withdraws half its money to an EVM address, the log is anchored, and
/// the anchor and the reserves are checked.
pub(crate) async fn finish(world: &mut World, figures: &mut Vec<Figure>) -> anyhow::Result<()> {
    let observer = agentrail_client::Client::new(&world.url);
    let mut richest: Option<(String, Amount)> = None;
    for actor in world.actors.iter().filter(|actor| actor.has_account) {
        let balance = observer.balance(&actor.did).await?;
        if richest
            .as_ref()
            .is_none_or(|(_, most)| balance.available > *most)
        {
            richest = Some((actor.name.clone(), balance.available));
        }
    }
    let (name, available) = richest.context("nobody holds money")?;
    let amount = Amount::from_atomic(available.atomic() / 2);
    let chain = world.chain.as_mut().context("a chain world")?;
    let payee = chain.anvil.key(2).address();
    let token = chain.deployment.token;
    let before = vault::balance_of(&chain.rpc, token, payee).await?;
    let from = world.did(&name);
    let response = world
        .submit(
            &name,
            Command::Withdraw(Withdraw {
                from,
                amount,
                idempotency_key: format!("demo-withdraw-{name}"),
                to: Some(evm_address(payee)),
            }),
        )
        .await?;
    world.withdrawn = world.withdrawn.checked_add(amount).context("overflow")?;
    let id = response
        .events
        .iter()
        .find_map(|event| match event {
            agentrail_core::Event::WithdrawalRequested { id, .. } => Some(*id),
            _ => None,
        })
        .context("the withdrawal is not pending")?;
    let chain = world.chain.as_mut().context("a chain world")?;
    let started = Instant::now();
    let rpc = &chain.rpc;
    wait_for(|| async { Ok(vault::balance_of(rpc, token, payee).await? > before) })
        .await
        .context("the vault did not pay the withdrawal")?;
    let after = vault::balance_of(&chain.rpc, token, payee).await?;
    expect(
        after - before == U256::from(amount.atomic()),
        format!(
            "{payee} received {} atomic units, not {}",
            after - before,
            amount.atomic()
        ),
    )?;
    // Recorded by the ledger once the payout has its confirmations.
    wait_for(|| async {
        let history = observer.history(&from, None, 5).await?;
        Ok(history.items.iter().any(|entry| {
            entry.events.iter().any(|event| {
                matches!(event, agentrail_core::Event::WithdrawalPaid { id: paid, .. } if *paid == id)
            })
        }))
    })
    .await
    .context("the ledger did not record the payout")?;
    let head = chain.rpc.block_number().await?;
    let paid = chain
        .vault()
        .withdrawal_log(id, chain.deployment.block, head)
        .await?
        .context("no Withdrawn log")?;
    chain.transactions.push((
        format!(
            "{name} withdraws {} USD to {payee}",
            amount.to_decimal_string()
        ),
        paid.transaction_hash,
    ));
    figures.push(Figure {
        label: format!("{name} withdrew (ledger entry {})", response.index),
        value: format!(
            "{} USD to {payee}, paid and recorded in {:.1} s",
            amount.to_decimal_string(),
            started.elapsed().as_secs_f64()
        ),
    });
    // The anchor catches up with the log within a few seconds.
    let size = observer.health().await?.journal_len;
    wait_for(|| async { Ok(chain.vault().anchored().await?.0 >= size) })
        .await
        .context("the log was not anchored")?;
    let key = agentrail_log::LogKey::parse(&observer.log_key().await?)?;
    let anchor =
        agentrail_chain::audit::check_anchor(&observer, &chain.vault(), Some(&key)).await?;
    expect(anchor.consistent, anchor.describe())?;
    figures.push(Figure {
        label: "anchored in the vault".into(),
        value: anchor.describe(),
    });
    let held = vault::balance_of(&chain.rpc, token, chain.deployment.vault).await?;
    let owed = world
        .deposited
        .checked_sub(world.withdrawn)
        .context("withdrew more than deposited")?;
    expect(
        held >= U256::from(owed.atomic()),
        format!(
            "the vault holds {held} atomic units, the ledger owes {}",
            owed.atomic()
        ),
    )?;
    figures.push(Figure {
        label: "reserves".into(),
        value: format!(
            "the vault holds {} USD, the ledger owes {} USD",
            Amount::from_atomic(held.saturating_to::<u128>()).to_decimal_string(),
            owed.to_decimal_string()
        ),
    });
    figures.push(Figure {
        label: "chain".into(),
        value: format!(
            "{} (chain id {}), vault {}, token {}, {CONFIRMATIONS} confirmations",
            chain.anvil.url(),
            chain.deployment.chain_id,
            chain.deployment.vault,
            chain.deployment.token
        ),
    });
    for (what, tx) in &chain.transactions {
        figures.push(Figure {
            label: what.clone(),
            value: tx.to_string(),
        });
    }
    Ok(())
}
