//! The node's chain service: it credits the vault's deposits once they
//! have enough confirmations, pays the ledger's withdrawals from the vault
//! and records each payout once the chain shows it, and anchors the log.
//!
//! Exactly once comes from the ledger, not from this loop's memory: a
//! deposit is credited only as the next vault id after the ledger's last
//! (`deposit_out_of_order` otherwise), under an idempotency key made of the
//! chain id and the vault's deposit id; a withdrawal is paid under its
//! ledger id, which the vault pays at most once. The loop keeps no state a
//! crash could lose: after a restart it reads where the ledger stands and
//! goes on from there.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use agentrail_core::chain::{
    ChainBinding, ChainDeposit, EvmAddress, Hash32, PendingWithdrawal, deposit_key,
};
use agentrail_core::command::{Command, Deposit, SettleWithdrawal, SignedCommand};
use agentrail_core::{Amount, Did};
use agentrail_node::{NodeHandle, SubmitError};
use agentrail_wire::api::ChainHealth;
use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::SolEvent;
use ed25519_dalek::SigningKey;

use crate::bindings::{AgentrailVault, Withdrawal};
use crate::rpc::{Log, Rpc};
use crate::vault::{Vault, VaultError, unix_now};
use crate::wallet::{EvmKey, send};

/// Blocks one `eth_getLogs` query covers at most.
const LOG_RANGE: u64 = 2_000;
/// Withdrawal transactions sent per round.
const PAYOUTS_PER_ROUND: usize = 16;
/// Pending withdrawals looked at per round.
const PENDING_READ_MAX: usize = 1_024;
/// How long a withdrawal whose payout failed waits before another try.
const PAYOUT_BACKOFF: Duration = Duration::from_secs(30);
/// How long an operator's withdrawal authorization stays valid.
const AUTHORIZATION_S: u64 = 3_600;
/// How long a sent transaction may stay unmined before the follower sends
/// its work again (the vault refuses a second payout of an id, and an
/// anchor that does not grow).
const IN_FLIGHT_MAX: Duration = Duration::from_secs(300);

/// How the node follows its chain.
#[derive(Clone, Debug)]
pub struct FollowerConfig {
    pub binding: ChainBinding,
    /// Confirmations before a deposit is credited and a payout recorded
    /// (1: the block that holds it is enough).
    pub confirmations: u64,
    /// The first block to look for deposits in (the vault's creation).
    pub start_block: u64,
    /// How often the chain is read.
    pub poll: Duration,
    /// Anchor when the log grew by this many entries since the last anchor
    /// (0: not by size).
    pub anchor_every: u64,
    /// Anchor when this long passed since the last anchor and the log grew.
    pub anchor_interval: Option<Duration>,
}

/// Why the follower could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FollowerError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// The chain service of one node.
pub struct Follower {
    node: NodeHandle,
    rpc: Rpc,
    config: FollowerConfig,
    /// Signs the operator's ledger commands (deposits, settlements).
    operator_key: Arc<SigningKey>,
    /// The vault operator's EVM key: signs withdrawal authorizations and
    /// sends the anchor and withdrawal transactions.
    evm_key: EvmKey,
    /// Where the next log query starts; `None`: from the last credited
    /// deposit's block.
    cursor: Option<u64>,
    /// Set once the chain contradicts the ledger; crediting stops.
    alarm: Option<String>,
    anchored: Option<u64>,
    last_anchor: tokio::time::Instant,
    /// The anchor transaction sent and not yet mined: (hash, size).
    anchor_in_flight: Option<(B256, u64)>,
    /// Withdrawal transactions sent and not yet mined, by ledger id, with
    /// when they were sent. The follower waits for them across rounds
    /// rather than within one, so crediting never waits for a block.
    payouts_in_flight: HashMap<u64, (B256, tokio::time::Instant)>,
    /// Withdrawals whose last payout attempt failed, until when they wait.
    payout_backoff: HashMap<u64, tokio::time::Instant>,
    /// Whether the endpoint's chain id and the vault's operator were
    /// checked against the binding.
    verified: bool,
    health: ChainHealth,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("config", &self.config)
            .field("evm_key", &self.evm_key)
            .finish_non_exhaustive()
    }
}

impl Follower {
    /// Checks that the key and the endpoint fit the ledger's binding.
    pub async fn new(
        node: NodeHandle,
        rpc: Rpc,
        config: FollowerConfig,
        operator_key: Arc<SigningKey>,
        evm_key: EvmKey,
    ) -> Result<Follower, FollowerError> {
        let binding = config.binding;
        if node.genesis().chain != Some(binding) {
            return Err(FollowerError::Setup(
                "the follower's binding is not the ledger's".into(),
            ));
        }
        if Did::from_verifying_key(&operator_key.verifying_key()) != node.genesis().operator {
            return Err(FollowerError::Setup(
                "the operator key is not this ledger's operator".into(),
            ));
        }
        if EvmAddress(evm_key.address().into_array()) != binding.operator {
            return Err(FollowerError::Setup(format!(
                "the EVM key is {}, not the vault's operator {}",
                evm_key.address(),
                binding.operator
            )));
        }
        if config.confirmations == 0 {
            return Err(FollowerError::Setup(
                "confirmations must be at least 1".into(),
            ));
        }
        let health = ChainHealth {
            binding: Some(binding),
            following: true,
            confirmations: config.confirmations,
            ..ChainHealth::default()
        };
        Ok(Follower {
            node,
            rpc,
            config,
            operator_key,
            evm_key,
            cursor: None,
            alarm: None,
            anchored: None,
            last_anchor: tokio::time::Instant::now(),
            anchor_in_flight: None,
            payouts_in_flight: HashMap::new(),
            payout_backoff: HashMap::new(),
            verified: false,
            health,
        })
    }

    fn vault(&self) -> Vault<'_> {
        Vault {
            rpc: &self.rpc,
            chain_id: self.config.binding.chain_id,
            address: Address::from(self.config.binding.vault.0),
        }
    }

    /// Follows the chain until the node stops. An unreachable endpoint is
    /// reported and retried; the node keeps serving.
    pub async fn run(self) {
        let node = self.node.clone();
        tokio::select! {
            () = node.stopped() => {}
            () = self.follow() => {}
        }
    }

    async fn follow(mut self) {
        tracing::info!(
            chain_id = self.config.binding.chain_id,
            vault = %self.config.binding.vault,
            confirmations = self.config.confirmations,
            "following the chain"
        );
        loop {
            match self.round().await {
                Ok(()) => {
                    self.health.rpc_ok = true;
                    self.health.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "chain round failed; retrying");
                    self.health.rpc_ok = false;
                    self.health.last_error = Some(e.to_string());
                }
            }
            self.health.alarm.clone_from(&self.alarm);
            self.node.report_chain(self.health.clone());
            tokio::time::sleep(self.config.poll).await;
        }
    }

    /// One round: deposits, payouts, anchor.
    pub async fn round(&mut self) -> Result<(), FollowerError> {
        if !self.verified {
            self.verify_binding().await?;
        }
        let head = self.rpc.block_number().await.map_err(VaultError::from)?;
        self.health.head = Some(head);
        let safe = head
            .saturating_add(1)
            .checked_sub(self.config.confirmations);
        self.health.safe = safe;
        // Once the chain contradicts the ledger, nothing more moves: no
        // credit, no payout, no anchor, until an operator looks.
        if self.alarm.is_none() {
            if let Some(safe) = safe {
                self.credit_deposits(safe).await?;
                if self.alarm.is_none() {
                    self.pay_withdrawals(head, safe).await?;
                }
            }
            if self.alarm.is_none() {
                self.anchor().await?;
            }
        }
        let (credited, pending) = self
            .node
            .read(|state| {
                (
                    state.chain_deposits().0,
                    state.pending_withdrawals().count() as u64,
                )
            })
            .await
            .unwrap_or_default();
        self.health.deposits_credited = credited;
        self.health.pending_withdrawals = pending;
        Ok(())
    }

    /// The endpoint serves the bound chain, and the vault there is the
    /// bound one: a vault at the same address on another chain (a testnet,
    /// a fork) holds other money.
    async fn verify_binding(&mut self) -> Result<(), FollowerError> {
        let binding = self.config.binding;
        let chain_id = self.rpc.chain_id().await.map_err(VaultError::from)?;
        if chain_id != binding.chain_id {
            self.raise(format!(
                "the RPC endpoint serves chain {chain_id}, this ledger is bound to chain {}",
                binding.chain_id
            ));
        } else {
            let operator = self.vault().operator().await?;
            if operator != Address::from(binding.operator.0) {
                self.raise(format!(
                    "the vault's operator is {operator}, the ledger's genesis names {}",
                    binding.operator
                ));
            }
        }
        self.verified = true;
        Ok(())
    }

    fn raise(&mut self, alarm: String) {
        tracing::error!(alarm = %alarm, "chain alarm: crediting stopped");
        self.alarm = Some(alarm);
    }

    async fn submit(&self, command: Command) -> Result<(), SubmitOutcome> {
        let signed = SignedCommand::sign(command, &self.operator_key)
            .map_err(|e| SubmitOutcome::Refused(e.to_string()))?;
        match self.node.submit(signed).await {
            Ok(_) => Ok(()),
            Err(SubmitError::Rejected(rejection)) => Err(SubmitOutcome::Refused(format!(
                "{}: {rejection}",
                rejection.code()
            ))),
            Err(other) => Err(SubmitOutcome::Retry(other.to_string())),
        }
    }

    /// Credits the vault's deposits in blocks up to `safe`, in id order.
    async fn credit_deposits(&mut self, safe: u64) -> Result<(), FollowerError> {
        let Some((credited, last)) = self.node.read(|state| state.chain_deposits()).await else {
            return Ok(());
        };
        if let Some(last) = last {
            // The block of the last credit must still be on the chain; if
            // it is not, a reorg deeper than the confirmations removed or
            // moved a credited deposit.
            let now = self
                .rpc
                .block_hash(last.block)
                .await
                .map_err(VaultError::from)?;
            let Some(now) = now else {
                // A lagging endpoint: not there yet; look again later.
                return Ok(());
            };
            if now != B256::from(last.block_hash.0) {
                self.raise(format!(
                    "deposit {} was credited from block {} ({}), which the chain no longer has: a reorg deeper than {} confirmations",
                    last.id, last.block, last.block_hash, self.config.confirmations
                ));
                return Ok(());
            }
        }
        let from = self
            .cursor
            .unwrap_or_else(|| last.map_or(self.config.start_block, |last| last.block));
        if from > safe {
            return Ok(());
        }
        let to = safe.min(from.saturating_add(LOG_RANGE - 1));
        let mut logs = self.vault().deposits(from, to).await?;
        logs.sort_by_key(|deposit| (deposit.log.block_number, deposit.log.log_index));
        let mut next = credited + 1;
        for deposit in logs {
            let Ok(id) = u64::try_from(deposit.id) else {
                self.raise(format!("the vault reports deposit id {}", deposit.id));
                return Ok(());
            };
            if id < next {
                continue;
            }
            if id > next {
                if self.cursor.is_none() {
                    // Read from the last credit (or the start block) and
                    // still a gap: deposit `next` lies before where this
                    // follower looks.
                    self.raise(format!(
                        "vault deposit {next} is not at or after block {from} (the next found is {id}): is --chain-from-block after the vault's first deposit?"
                    ));
                    return Ok(());
                }
                // A log this follower has not seen lies before `from`:
                // read again from the last credit.
                tracing::warn!(id, next, "deposit ids skip; reading the range again");
                self.cursor = None;
                return Ok(());
            }
            let amount = u128::try_from(deposit.amount)
                .map(Amount::from_atomic)
                .map_err(|_| FollowerError::Setup("a deposit beyond u128".into()))?;
            let chain = ChainDeposit {
                id,
                from: EvmAddress(deposit.from.into_array()),
                tx: Hash32(deposit.log.transaction_hash.0),
                log_index: deposit.log.log_index,
                block: deposit.log.block_number,
                block_hash: Hash32(deposit.log.block_hash.0),
            };
            let to = Did::from_public_key_bytes(deposit.account.0);
            let command = Command::Deposit(Deposit {
                to,
                amount,
                idempotency_key: deposit_key(self.config.binding.chain_id, &chain),
                chain: Some(chain),
            });
            match self.submit(command).await {
                Ok(()) => {
                    tracing::info!(id, %to, %amount, tx = %deposit.log.transaction_hash, "deposit credited");
                    next += 1;
                }
                Err(SubmitOutcome::Retry(reason)) => {
                    tracing::warn!(id, reason, "deposit not credited yet; retrying");
                    return Ok(());
                }
                Err(SubmitOutcome::Refused(reason)) => {
                    self.raise(format!("the ledger refused vault deposit {id}: {reason}"));
                    return Ok(());
                }
            }
        }
        self.cursor = Some(to.saturating_add(1));
        Ok(())
    }

    /// Pays pending withdrawals and records the payouts the chain
    /// confirmed. One withdrawal's failure (a payee the token refuses, an
    /// endpoint error) backs that one off; the others go on.
    async fn pay_withdrawals(&mut self, head: u64, safe: u64) -> Result<(), FollowerError> {
        let Some(pending) = self
            .node
            .read(|state| {
                state
                    .pending_withdrawals()
                    .take(PENDING_READ_MAX)
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .await
        else {
            return Ok(());
        };
        let now = tokio::time::Instant::now();
        let mut sent = 0;
        for withdrawal in &pending {
            if self
                .payout_backoff
                .get(&withdrawal.id)
                .is_some_and(|until| *until > now)
            {
                continue;
            }
            match self.pay_one(withdrawal, head, safe, &mut sent).await {
                Ok(()) => {
                    self.payout_backoff.remove(&withdrawal.id);
                }
                Err(e) => {
                    tracing::warn!(id = withdrawal.id, error = %e, "payout failed; backing off");
                    self.payout_backoff
                        .insert(withdrawal.id, now + PAYOUT_BACKOFF);
                }
            }
            if self.alarm.is_some() {
                return Ok(());
            }
        }
        // Forget what the ledger no longer lists as pending.
        let pending_ids: std::collections::HashSet<u64> =
            pending.iter().map(|withdrawal| withdrawal.id).collect();
        self.payouts_in_flight
            .retain(|id, _| pending_ids.contains(id));
        self.payout_backoff.retain(|id, _| pending_ids.contains(id));
        Ok(())
    }

    /// The `Withdrawn` log of `id`: from the receipt of the transaction
    /// this follower sent, or searched for backwards from the head (a
    /// payout sent before a restart).
    async fn payout_log(&self, id: u64, head: u64) -> Result<Option<Log>, FollowerError> {
        let vault = self.vault();
        if let Some((tx, _)) = self.payouts_in_flight.get(&id)
            && let Some(receipt) = self.rpc.receipt(*tx).await.map_err(VaultError::from)?
            && receipt.status == 1
            && let Some(log) = receipt.logs.iter().find(|log| {
                log.address == vault.address
                    && log.topics.first() == Some(&AgentrailVault::Withdrawn::SIGNATURE_HASH)
                    && log.topics.get(1) == Some(&B256::from(U256::from(id)))
            })
        {
            return Ok(Some(log.clone()));
        }
        let mut to = head;
        loop {
            let from = to
                .saturating_sub(LOG_RANGE - 1)
                .max(self.config.start_block);
            if let Some(log) = vault.withdrawal_log(id, from, to).await? {
                return Ok(Some(log));
            }
            if from <= self.config.start_block {
                return Ok(None);
            }
            to = from - 1;
        }
    }

    async fn pay_one(
        &mut self,
        withdrawal: &PendingWithdrawal,
        head: u64,
        safe: u64,
        sent: &mut usize,
    ) -> Result<(), FollowerError> {
        if self.vault().withdrawn(withdrawal.id).await? {
            let Some(log) = self.payout_log(withdrawal.id, head).await? else {
                return Ok(());
            };
            // The vault paid this id: it must have paid it as the ledger
            // debited it.
            let paid =
                AgentrailVault::Withdrawn::decode_raw_log(log.topics.iter().copied(), &log.data)
                    .map_err(|e| {
                        FollowerError::Setup(format!("a Withdrawn log does not decode: {e}"))
                    })?;
            if paid.account != B256::from(*withdrawal.from.public_key_bytes())
                || paid.to != Address::from(withdrawal.to.0)
                || paid.amount != U256::from(withdrawal.amount.atomic())
            {
                self.raise(format!(
                    "the vault paid withdrawal {} as {} to {} for {}, not as the ledger debited it ({} to {} for {}): is another ledger using this vault?",
                    withdrawal.id,
                    paid.account,
                    paid.to,
                    paid.amount,
                    withdrawal.from,
                    withdrawal.to,
                    withdrawal.amount.atomic()
                ));
                return Ok(());
            }
            if log.block_number > safe {
                return Ok(());
            }
            let settle = Command::SettleWithdrawal(SettleWithdrawal {
                id: withdrawal.id,
                tx: Hash32(log.transaction_hash.0),
                block: log.block_number,
            });
            match self.submit(settle).await {
                Ok(()) => tracing::info!(
                    id = withdrawal.id,
                    tx = %log.transaction_hash,
                    "withdrawal paid and recorded"
                ),
                Err(SubmitOutcome::Retry(reason) | SubmitOutcome::Refused(reason)) => {
                    tracing::warn!(id = withdrawal.id, reason, "payout not recorded yet")
                }
            }
            return Ok(());
        }
        if let Some((tx, sent_at)) = self.payouts_in_flight.get(&withdrawal.id).copied() {
            match self.rpc.receipt(tx).await.map_err(VaultError::from)? {
                None if sent_at.elapsed() < IN_FLIGHT_MAX => return Ok(()),
                None => {
                    tracing::warn!(id = withdrawal.id, %tx, "payout not mined; sending it again");
                }
                // Mined: the vault's `withdrawn` shows it next round (or
                // a reorg removed it, and it is sent again).
                Some(receipt) if receipt.status == 1 => return Ok(()),
                Some(_) => {
                    tracing::warn!(id = withdrawal.id, %tx, "payout reverted; retrying");
                }
            }
            self.payouts_in_flight.remove(&withdrawal.id);
        }
        if *sent >= PAYOUTS_PER_ROUND {
            return Ok(());
        }
        let message = Withdrawal {
            id: U256::from(withdrawal.id),
            account: B256::from(*withdrawal.from.public_key_bytes()),
            to: Address::from(withdrawal.to.0),
            amount: U256::from(withdrawal.amount.atomic()),
            deadline: U256::from(unix_now() + AUTHORIZATION_S),
        };
        let vault = self.vault();
        let signature = vault.authorize_withdrawal(&self.evm_key, &message);
        let call = vault.withdraw_call(&message, signature);
        let tx = send(&self.rpc, self.config.binding.chain_id, &self.evm_key, call)
            .await
            .map_err(VaultError::from)?;
        *sent += 1;
        tracing::info!(id = withdrawal.id, to = %message.to, %tx, "withdrawal sent");
        self.payouts_in_flight
            .insert(withdrawal.id, (tx, tokio::time::Instant::now()));
        Ok(())
    }

    /// Anchors the newest checkpoint when the log grew enough or long
    /// enough ago.
    async fn anchor(&mut self) -> Result<(), FollowerError> {
        if self.config.anchor_every == 0 && self.config.anchor_interval.is_none() {
            return Ok(());
        }
        if let Some((tx, size)) = self.anchor_in_flight {
            match self.rpc.receipt(tx).await.map_err(VaultError::from)? {
                None if self.last_anchor.elapsed() < IN_FLIGHT_MAX => return Ok(()),
                Some(receipt) if receipt.status == 1 => {
                    tracing::info!(size, %tx, gas = receipt.gas_used, "log anchored");
                    self.anchored = Some(size);
                    self.health.anchored_size = Some(size);
                }
                // Not mined for long, or reverted (another anchor may have
                // landed): read the vault's anchor again.
                _ => self.anchored = None,
            }
            self.anchor_in_flight = None;
        }
        let anchored = match self.anchored {
            Some(size) => size,
            None => {
                let (size, _) = self.vault().anchored().await?;
                self.anchored = Some(size);
                size
            }
        };
        self.health.anchored_size = Some(anchored);
        let (size, root) = self.node.checkpoint();
        if size <= anchored {
            return Ok(());
        }
        let by_size = self.config.anchor_every > 0 && size - anchored >= self.config.anchor_every;
        let by_time = self
            .config
            .anchor_interval
            .is_some_and(|interval| self.last_anchor.elapsed() >= interval);
        if !by_size && !by_time {
            return Ok(());
        }
        let call = self.vault().anchor_call(size, B256::from(root));
        let tx = send(&self.rpc, self.config.binding.chain_id, &self.evm_key, call)
            .await
            .map_err(VaultError::from)?;
        self.anchor_in_flight = Some((tx, size));
        self.last_anchor = tokio::time::Instant::now();
        Ok(())
    }
}

enum SubmitOutcome {
    /// Not applied now; the same command may be sent again.
    Retry(String),
    /// The ledger will not apply it.
    Refused(String),
}
