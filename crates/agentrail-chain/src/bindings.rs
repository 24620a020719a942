//! The contracts' ABI and bytecode, from the artifacts `scripts/contracts`
//! builds and checks against the sources.

#![allow(missing_docs, clippy::too_many_arguments)]

use alloy_sol_types::sol;

sol!(TestUSD, "../../contracts/artifacts/TestUSD.json");

sol!(
    AgentrailVault,
    "../../contracts/artifacts/AgentrailVault.json"
);

sol! {
    /// The EIP-712 message the operator signs for a withdrawal.
    struct Withdrawal {
        uint256 id;
        bytes32 account;
        address to;
        uint256 amount;
        uint256 deadline;
    }

    /// EIP-3009's authorization to move tokens to the vault.
    struct ReceiveWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    /// EIP-3009's authorization for a plain transfer (x402 `exact`).
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

/// The artifacts' creation bytecode, hex.
pub fn creation_code(artifact: &str) -> Result<Vec<u8>, String> {
    let value: serde_json::Value =
        serde_json::from_str(artifact).map_err(|e| format!("artifact: {e}"))?;
    let hex = value["bytecode"]
        .as_str()
        .or_else(|| value["bytecode"]["object"].as_str())
        .ok_or("the artifact has no bytecode")?;
    alloy_primitives::hex::decode(hex).map_err(|e| format!("bytecode: {e}"))
}

pub const TEST_USD_ARTIFACT: &str = include_str!("../../../contracts/artifacts/TestUSD.json");
pub const VAULT_ARTIFACT: &str = include_str!("../../../contracts/artifacts/AgentrailVault.json");
