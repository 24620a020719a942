//! EVM plumbing shared by the ledger's chain service (`agentrail-chain`)
//! and x402's `exact` scheme (`agentrail-pay`): a bounded JSON-RPC client
//! ([`rpc`]), keys and EIP-1559 transactions ([`wallet`]), the contracts'
//! interface ([`bindings`]), EIP-3009 authorizations ([`eip3009`]) and a
//! local anvil for tests and benchmarks ([`anvil`]). It knows nothing of
//! the ledger.

#![forbid(unsafe_code)]

pub mod anvil;
pub mod bindings;
pub mod eip3009;
pub mod rpc;
pub mod wallet;

pub use alloy_primitives;
pub use alloy_sol_types;
pub use rpc::{Rpc, RpcError};
pub use wallet::{EvmKey, WalletError};
