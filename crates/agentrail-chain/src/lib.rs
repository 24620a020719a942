//! The ledger on an EVM chain.
//!
//! Tokens enter through the vault contract (`contracts/`), which emits a
//! `Deposited` log per deposit; the node's [`follower`] credits each once
//! it has enough confirmations, pays the ledger's withdrawals from the
//! vault against the operator's EIP-712 authorization, and anchors the
//! log's checkpoints in the vault. [`reserves`] checks from outside that
//! the vault holds what the ledger owes. The pure rules (what a chain
//! deposit credits, what a pending withdrawal is) live in
//! `agentrail_core::state::custody`; this crate is the I/O around them, over `agentrail-evm`'s plumbing.

#![forbid(unsafe_code)]

pub mod audit;
pub mod follower;
pub mod reserves;
pub mod vault;

pub use agentrail_evm::{alloy_primitives, alloy_sol_types, anvil, bindings, rpc, wallet};
pub use follower::{Follower, FollowerConfig, FollowerError};
pub use rpc::{Rpc, RpcError};
pub use vault::{Deployment, Vault, VaultError};
pub use wallet::{EvmKey, WalletError};

/// The 32 bytes a vault deposit names an account by: the did:key's
/// Ed25519 public key.
pub fn account_of(did: &agentrail_core::Did) -> alloy_primitives::B256 {
    alloy_primitives::B256::from(*did.public_key_bytes())
}

/// The core's address type from alloy's.
pub fn evm_address(address: alloy_primitives::Address) -> agentrail_core::chain::EvmAddress {
    agentrail_core::chain::EvmAddress(address.into_array())
}
