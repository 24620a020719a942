//! The contracts' calls, events and errors agentrail uses, and their
//! bytecode, from the artifacts `scripts/contracts` builds and checks
//! against the sources.
//!
//! The interface is written out below rather than generated from the
//! artifacts' whole JSON ABI: expanding every function of both contracts
//! cost more compile time than anything else in this crate. A test checks
//! each signature below against the artifacts, so the two cannot drift.

#![allow(missing_docs, clippy::too_many_arguments)]

use alloy_sol_types::sol;

sol! {
    interface TestUSD {
        function mint(address to, uint256 amount) external;
        function approve(address spender, uint256 value) external returns (bool);
        function balanceOf(address owner) external view returns (uint256);
        function name() external view returns (string);
        function version() external view returns (string);
        function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
        function transferWithAuthorization(
            address from,
            address to,
            uint256 value,
            uint256 validAfter,
            uint256 validBefore,
            bytes32 nonce,
            uint8 v,
            bytes32 r,
            bytes32 s
        ) external;

        event Transfer(address indexed from, address indexed to, uint256 value);
        event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);

        error InsufficientBalance();
        error InvalidSignature();
        error Expired();
        error NotYetValid();
        error AuthorizationAlreadyUsed();
    }

    interface AgentrailVault {
        function token() external view returns (address);
        function operator() external view returns (address);
        function deposit(bytes32 account, uint256 amount) external;
        function depositNonce(bytes32 account, bytes32 salt) external view returns (bytes32);
        function depositWithAuthorization(
            bytes32 account,
            address from,
            uint256 amount,
            uint256 validAfter,
            uint256 validBefore,
            bytes32 salt,
            uint8 v,
            bytes32 r,
            bytes32 s
        ) external;
        function withdraw(
            uint256 id,
            bytes32 account,
            address to,
            uint256 amount,
            uint256 deadline,
            bytes signature
        ) external;
        function withdrawn(uint256 id) external view returns (bool);
        function withdrawalDigest(
            uint256 id,
            bytes32 account,
            address to,
            uint256 amount,
            uint256 deadline
        ) external view returns (bytes32);
        function anchor(uint64 size, bytes32 root) external;
        function anchored() external view returns (uint64 size, bytes32 root);

        event Deposited(uint256 indexed id, address indexed from, bytes32 indexed account, uint256 amount);
        event Anchored(uint64 size, bytes32 root);
        event Withdrawn(uint256 indexed id, bytes32 indexed account, address to, uint256 amount);

        error AlreadyWithdrawn();
        error AuthorizationExpired();
        error InvalidAuthorization();
    }

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

/// An artifact's creation bytecode.
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

#[cfg(test)]
mod tests {
    use alloy_sol_types::{SolCall, SolError, SolEvent};

    use super::*;

    /// Every `name(types)` of `kind` in an artifact's ABI.
    fn signatures(artifact: &str, kind: &str) -> Vec<String> {
        let value: serde_json::Value = serde_json::from_str(artifact).unwrap();
        value["abi"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|item| item["type"] == kind)
            .map(|item| {
                let types: Vec<&str> = item["inputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|input| input["type"].as_str().unwrap())
                    .collect();
                format!("{}({})", item["name"].as_str().unwrap(), types.join(","))
            })
            .collect()
    }

    #[test]
    fn the_interface_is_the_artifacts() {
        let expected: [(&str, &str, &[&str]); 6] = [
            (
                TEST_USD_ARTIFACT,
                "function",
                &[
                    TestUSD::mintCall::SIGNATURE,
                    TestUSD::approveCall::SIGNATURE,
                    TestUSD::balanceOfCall::SIGNATURE,
                    TestUSD::transferWithAuthorizationCall::SIGNATURE,
                    TestUSD::nameCall::SIGNATURE,
                    TestUSD::versionCall::SIGNATURE,
                    TestUSD::authorizationStateCall::SIGNATURE,
                ],
            ),
            (
                TEST_USD_ARTIFACT,
                "event",
                &[
                    TestUSD::AuthorizationUsed::SIGNATURE,
                    TestUSD::Transfer::SIGNATURE,
                ],
            ),
            (
                TEST_USD_ARTIFACT,
                "error",
                &[
                    TestUSD::InsufficientBalance::SIGNATURE,
                    TestUSD::InvalidSignature::SIGNATURE,
                    TestUSD::Expired::SIGNATURE,
                    TestUSD::NotYetValid::SIGNATURE,
                    TestUSD::AuthorizationAlreadyUsed::SIGNATURE,
                ],
            ),
            (
                VAULT_ARTIFACT,
                "function",
                &[
                    AgentrailVault::tokenCall::SIGNATURE,
                    AgentrailVault::operatorCall::SIGNATURE,
                    AgentrailVault::depositCall::SIGNATURE,
                    AgentrailVault::depositNonceCall::SIGNATURE,
                    AgentrailVault::depositWithAuthorizationCall::SIGNATURE,
                    AgentrailVault::withdrawCall::SIGNATURE,
                    AgentrailVault::withdrawnCall::SIGNATURE,
                    AgentrailVault::withdrawalDigestCall::SIGNATURE,
                    AgentrailVault::anchorCall::SIGNATURE,
                    AgentrailVault::anchoredCall::SIGNATURE,
                ],
            ),
            (
                VAULT_ARTIFACT,
                "event",
                &[
                    AgentrailVault::Deposited::SIGNATURE,
                    AgentrailVault::Anchored::SIGNATURE,
                    AgentrailVault::Withdrawn::SIGNATURE,
                ],
            ),
            (
                VAULT_ARTIFACT,
                "error",
                &[
                    AgentrailVault::AlreadyWithdrawn::SIGNATURE,
                    AgentrailVault::AuthorizationExpired::SIGNATURE,
                    AgentrailVault::InvalidAuthorization::SIGNATURE,
                ],
            ),
        ];
        for (artifact, kind, wanted) in expected {
            let found = signatures(artifact, kind);
            for signature in wanted {
                assert!(found.iter().any(|s| s == signature), "{kind} {signature}");
            }
        }
        // Indexed arguments are not in a signature: check them too.
        let value: serde_json::Value = serde_json::from_str(VAULT_ARTIFACT).unwrap();
        let indexed = |name: &str| -> Vec<bool> {
            value["abi"]
                .as_array()
                .unwrap()
                .iter()
                .find(|item| item["type"] == "event" && item["name"] == name)
                .unwrap()["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|input| input["indexed"] == true)
                .collect()
        };
        assert_eq!(indexed("Deposited"), [true, true, true, false]);
        assert_eq!(indexed("Withdrawn"), [true, true, false, false]);
        assert_eq!(indexed("Anchored"), [false, false]);
    }
}
