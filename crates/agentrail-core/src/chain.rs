//! The ledger's settlement chain: what binds a ledger to an EVM chain and
//! its vault, and what the operator writes down about money that crossed.
//!
//! A ledger bound to a chain ([`ChainBinding`] in its genesis) takes money
//! in only from the vault's `Deposited` logs, each credited once, in the
//! vault's id order ([`ChainDeposit`]); money leaves only as a withdrawal
//! to an EVM address, which the vault pays once per withdrawal id and the
//! operator records as paid ([`crate::command::SettleWithdrawal`]). The
//! state machine checks the order and the arithmetic; following the chain
//! and talking to it is the node's business.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a text is not an EVM address or a 32-byte hash.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected 0x and {digits} lowercase hex digits")]
pub struct HexError {
    digits: usize,
}

fn parse_hex<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
    let error = HexError { digits: 2 * N };
    let digits = text.strip_prefix("0x").ok_or(error.clone())?;
    // Lowercase only: one spelling per value, so a journaled command has
    // exactly one form.
    if digits.len() != 2 * N
        || !digits
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(error);
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out).map_err(|_| error)?;
    Ok(out)
}

macro_rules! hex_bytes {
    ($name:ident, $n:literal, $doc:literal, $example:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $n]);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "0x{}", hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = HexError;
            fn from_str(text: &str) -> Result<Self, HexError> {
                parse_hex::<$n>(text).map($name)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = Cow::<'de, str>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "pattern": format!("^0x[0-9a-f]{{{}}}$", 2 * $n),
                    "description": $doc,
                    "examples": [$example]
                })
            }
        }
    };
}

hex_bytes!(
    EvmAddress,
    20,
    "An EVM address: 0x and 40 lowercase hex digits (no EIP-55 checksum).",
    "0x5fbdb2315678afecb367f032d93f642f64180aa3"
);
hex_bytes!(
    Hash32,
    32,
    "A 32-byte hash (a transaction's or a block's): 0x and 64 lowercase hex digits.",
    "0x0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
);

/// What a ledger's genesis binds it to on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChainBinding {
    /// The EIP-155 chain id.
    pub chain_id: u64,
    /// The `AgentrailVault` holding the ledger's tokens.
    pub vault: EvmAddress,
    /// The vault's operator: signs withdrawals and anchors the log.
    pub operator: EvmAddress,
}

/// One `Deposited` log of the vault, as the operator credits it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChainDeposit {
    /// The vault's deposit id: 1, 2, 3, … — credited in this order, each once.
    pub id: u64,
    /// Who sent the tokens.
    pub from: EvmAddress,
    /// The transaction and the log's index in its block.
    pub tx: Hash32,
    pub log_index: u64,
    /// The block the log is in, and its hash, so an auditor can find it
    /// and a follower can tell when a reorg took it away.
    pub block: u64,
    pub block_hash: Hash32,
}

/// The idempotency key of a chain deposit, `eip155:<chain id>:deposit:<id>`:
/// the vault's id of the deposit on the ledger's chain (the genesis names
/// the vault). The vault gives each deposit the next id, so the id — not
/// the transaction, which a reorg can move to another block or log index —
/// is what the ledger credits exactly once; the command records the
/// transaction, log index and block beside it.
pub fn deposit_key(chain_id: u64, deposit: &ChainDeposit) -> String {
    format!("eip155:{chain_id}:deposit:{}", deposit.id)
}

/// A withdrawal the ledger debited, waiting for the vault to pay it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PendingWithdrawal {
    /// The vault's withdrawal id (`withdraw(id, …)` pays each id once).
    pub id: u64,
    pub from: crate::Did,
    pub to: EvmAddress,
    pub amount: crate::Amount,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_hashes_have_one_spelling() {
        let address: EvmAddress = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
            .parse()
            .unwrap();
        assert_eq!(
            address.to_string(),
            "0x5fbdb2315678afecb367f032d93f642f64180aa3"
        );
        for bad in [
            "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "5fbdb2315678afecb367f032d93f642f64180aa3",
            "0x5fbdb2315678afecb367f032d93f642f64180aa",
            "0x5fbdb2315678afecb367f032d93f642f64180aa3ff",
            "0xzzbdb2315678afecb367f032d93f642f64180aa3",
        ] {
            assert!(bad.parse::<EvmAddress>().is_err(), "{bad}");
        }
        let hash = Hash32([0xab; 32]);
        assert_eq!(hash.to_string().parse::<Hash32>(), Ok(hash));
        assert_eq!(
            serde_json::to_string(&hash).unwrap(),
            format!("\"0x{}\"", "ab".repeat(32))
        );
    }

    #[test]
    fn a_deposit_is_keyed_by_its_log() {
        let deposit = ChainDeposit {
            id: 1,
            from: EvmAddress([1; 20]),
            tx: Hash32([2; 32]),
            log_index: 3,
            block: 4,
            block_hash: Hash32([5; 32]),
        };
        assert_eq!(deposit_key(31337, &deposit), "eip155:31337:deposit:1");
        // The longest key fits the ledger's bound on keys.
        let longest = ChainDeposit {
            id: u64::MAX,
            ..deposit
        };
        assert!(deposit_key(u64::MAX, &longest).len() <= crate::constants::KEY_BYTES_MAX);
    }
}
