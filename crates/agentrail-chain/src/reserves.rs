//! Proof of reserves: the vault's token balance covers what the ledger
//! owes.
//!
//! The ledger owes every balance, hold and unclaimed deposit, and every
//! withdrawal it debited and has not recorded as paid
//! (`State::liabilities`). A withdrawal the vault paid before the ledger
//! recorded it has already left the vault, so it is counted as paid.

use agentrail_core::{Amount, State};
use alloy_primitives::{Address, U256};
use serde::Serialize;

use crate::vault::{Vault, VaultError, balance_of};

/// What a reserves check found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reserves {
    /// The vault's token balance, atomic units.
    pub held: String,
    /// What the ledger owes, atomic units, less payouts the vault made
    /// that the ledger has not recorded yet.
    pub owed: String,
    /// Pending withdrawals the vault already paid.
    pub paid_unrecorded: u64,
    pub covered: bool,
}

/// Compares the vault's balance with what `state` owes.
pub async fn check(vault: &Vault<'_>, state: &State) -> Result<Reserves, VaultError> {
    let token: Address = vault.token().await?;
    let held = balance_of(vault.rpc, token, vault.address).await?;
    let mut owed = state.liabilities();
    let mut paid_unrecorded = 0;
    for pending in state.pending_withdrawals() {
        if vault.withdrawn(pending.id).await? {
            owed = owed.checked_sub(pending.amount).unwrap_or(Amount::ZERO);
            paid_unrecorded += 1;
        }
    }
    let owed_tokens = U256::from(owed.atomic());
    Ok(Reserves {
        held: held.to_string(),
        owed: owed_tokens.to_string(),
        paid_unrecorded,
        covered: held >= owed_tokens,
    })
}
