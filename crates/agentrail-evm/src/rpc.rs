//! A JSON-RPC client for the dozen Ethereum methods agentrail calls.
//!
//! Written here rather than taken from `alloy-provider`: its provider,
//! network and RPC-type stack doubles the workspace's crate count and
//! added minutes to a cold build on this machine (see ARCHITECTURE.md),
//! while the node needs only these calls, over the reqwest client and
//! rustls configuration the rest of agentrail already uses. Transactions
//! are still encoded and signed by `alloy-consensus`, ABI by
//! `alloy-sol-types`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes, U256};
use serde::Deserialize;
use serde_json::{Value, json};

/// Largest answer read from the endpoint.
const ANSWER_BYTES_MAX: usize = 32 << 20;
/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a call to the chain failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The endpoint could not be reached or did not answer in time.
    #[error("the chain's RPC endpoint is unreachable: {0}")]
    Transport(String),
    /// The endpoint answered with an error.
    #[error("the chain refused {method}: {message} (code {code})")]
    Remote {
        method: String,
        code: i64,
        message: String,
        /// Revert data, hex, when the call reverted.
        data: Option<String>,
    },
    /// The answer is not what the method returns.
    #[error("the chain's answer to {method} is malformed: {reason}")]
    Malformed { method: String, reason: String },
}

impl RpcError {
    /// Whether retrying later may succeed (the endpoint was away).
    pub fn is_transient(&self) -> bool {
        matches!(self, RpcError::Transport(_))
    }
}

/// An Ethereum JSON-RPC endpoint.
#[derive(Debug)]
pub struct Rpc {
    url: String,
    http: reqwest::Client,
    next_id: AtomicU64,
}

/// One log entry, as `eth_getLogs` and receipts report it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Log {
    pub address: Address,
    pub topics: Vec<B256>,
    pub data: Bytes,
    #[serde(deserialize_with = "quantity_u64")]
    pub block_number: u64,
    pub block_hash: B256,
    pub transaction_hash: B256,
    #[serde(deserialize_with = "quantity_u64")]
    pub log_index: u64,
    #[serde(default)]
    pub removed: bool,
}

/// A mined transaction's receipt.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub transaction_hash: B256,
    #[serde(deserialize_with = "quantity_u64")]
    pub block_number: u64,
    pub block_hash: B256,
    #[serde(deserialize_with = "quantity_u64")]
    pub gas_used: u64,
    #[serde(deserialize_with = "quantity_u64")]
    pub status: u64,
    #[serde(default)]
    pub contract_address: Option<Address>,
    pub logs: Vec<Log>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockHeader {
    hash: B256,
    #[serde(default)]
    base_fee_per_gas: Option<String>,
}

fn parse_quantity(text: &str) -> Result<u64, String> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| format!("{text:?} is not a 0x quantity"))?;
    u64::from_str_radix(digits, 16).map_err(|e| format!("{text:?}: {e}"))
}

fn parse_u256(text: &str) -> Result<U256, String> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| format!("{text:?} is not a 0x quantity"))?;
    U256::from_str_radix(digits, 16).map_err(|e| format!("{text:?}: {e}"))
}

fn quantity_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = String::deserialize(d)?;
    parse_quantity(&text).map_err(serde::de::Error::custom)
}

fn hex_quantity(value: u64) -> String {
    format!("{value:#x}")
}

/// The block range of a log query.
#[derive(Clone, Copy, Debug)]
pub struct LogQuery<'a> {
    pub address: Address,
    /// Topic 0 (the event), then indexed arguments; `None` matches any.
    pub topics: &'a [Option<B256>],
    pub from: u64,
    pub to: u64,
}

impl Rpc {
    pub fn new(url: &str, http: reqwest::Client) -> Result<Rpc, RpcError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| RpcError::Transport(format!("{url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(RpcError::Transport(format!(
                "{url:?}: the RPC endpoint must be http:// or https://"
            )));
        }
        Ok(Rpc {
            url: url.to_owned(),
            http,
            next_id: AtomicU64::new(1),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `method` and returns its `result`.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let transport = |e: reqwest::Error| RpcError::Transport(e.to_string());
        let mut response = self
            .http
            .post(&self.url)
            .timeout(CALL_TIMEOUT)
            .json(&request)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > ANSWER_BYTES_MAX {
                return Err(RpcError::Transport(format!(
                    "{method}: the answer exceeds {ANSWER_BYTES_MAX} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let malformed = |reason: String| RpcError::Malformed {
            method: method.to_owned(),
            reason,
        };
        let answer: Value = serde_json::from_slice(&body).map_err(|e| {
            if status.is_success() {
                malformed(e.to_string())
            } else {
                RpcError::Transport(format!("{method}: HTTP {status}"))
            }
        })?;
        if let Some(error) = answer.get("error") {
            return Err(RpcError::Remote {
                method: method.to_owned(),
                code: error
                    .get("code")
                    .and_then(Value::as_i64)
                    .unwrap_or_default(),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
                    .to_owned(),
                data: error.get("data").map(|data| match data {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                }),
            });
        }
        answer
            .get("result")
            .cloned()
            .ok_or_else(|| malformed("no result".into()))
    }

    async fn typed<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, RpcError> {
        let value = self.call(method, params).await?;
        serde_json::from_value(value).map_err(|e| RpcError::Malformed {
            method: method.to_owned(),
            reason: e.to_string(),
        })
    }

    async fn quantity(&self, method: &str, params: Value) -> Result<u64, RpcError> {
        let text: String = self.typed(method, params).await?;
        parse_quantity(&text).map_err(|reason| RpcError::Malformed {
            method: method.to_owned(),
            reason,
        })
    }

    pub async fn chain_id(&self) -> Result<u64, RpcError> {
        self.quantity("eth_chainId", json!([])).await
    }

    pub async fn block_number(&self) -> Result<u64, RpcError> {
        self.quantity("eth_blockNumber", json!([])).await
    }

    /// The hash of block `number` on the chain as the endpoint sees it
    /// now; `None` when it has no such block.
    pub async fn block_hash(&self, number: u64) -> Result<Option<B256>, RpcError> {
        let block: Option<BlockHeader> = self
            .typed("eth_getBlockByNumber", json!([hex_quantity(number), false]))
            .await?;
        Ok(block.map(|block| block.hash))
    }

    /// The base fee of the newest block (0 on chains without one).
    pub async fn base_fee(&self) -> Result<u128, RpcError> {
        let block: Option<BlockHeader> = self
            .typed("eth_getBlockByNumber", json!(["latest", false]))
            .await?;
        let fee = block.and_then(|block| block.base_fee_per_gas);
        match fee {
            None => Ok(0),
            Some(text) => parse_u256(&text)
                .map(|fee| fee.saturating_to::<u128>())
                .map_err(|reason| RpcError::Malformed {
                    method: "eth_getBlockByNumber".into(),
                    reason,
                }),
        }
    }

    /// The tip the endpoint suggests, or 1 gwei where it has no opinion.
    pub async fn priority_fee(&self) -> Result<u128, RpcError> {
        match self.quantity("eth_maxPriorityFeePerGas", json!([])).await {
            Ok(fee) => Ok(u128::from(fee)),
            Err(RpcError::Remote { .. }) => Ok(1_000_000_000),
            Err(other) => Err(other),
        }
    }

    pub async fn logs(&self, query: LogQuery<'_>) -> Result<Vec<Log>, RpcError> {
        let topics: Vec<Value> = query
            .topics
            .iter()
            .map(|topic| topic.map_or(Value::Null, |t| json!(t)))
            .collect();
        self.typed(
            "eth_getLogs",
            json!([{
                "address": query.address,
                "topics": topics,
                "fromBlock": hex_quantity(query.from),
                "toBlock": hex_quantity(query.to),
            }]),
        )
        .await
    }

    /// `eth_call` against the newest block.
    pub async fn view(&self, to: Address, data: &[u8]) -> Result<Bytes, RpcError> {
        self.typed(
            "eth_call",
            json!([{"to": to, "data": Bytes::copy_from_slice(data)}, "latest"]),
        )
        .await
    }

    pub async fn pending_nonce(&self, account: Address) -> Result<u64, RpcError> {
        self.quantity("eth_getTransactionCount", json!([account, "pending"]))
            .await
    }

    pub async fn estimate_gas(
        &self,
        from: Address,
        to: Option<Address>,
        data: &[u8],
    ) -> Result<u64, RpcError> {
        let mut call = json!({"from": from, "data": Bytes::copy_from_slice(data)});
        if let Some(to) = to {
            call["to"] = json!(to);
        }
        self.quantity("eth_estimateGas", json!([call])).await
    }

    pub async fn send_raw(&self, transaction: &[u8]) -> Result<B256, RpcError> {
        self.typed(
            "eth_sendRawTransaction",
            json!([Bytes::copy_from_slice(transaction)]),
        )
        .await
    }

    pub async fn receipt(&self, transaction: B256) -> Result<Option<Receipt>, RpcError> {
        self.typed("eth_getTransactionReceipt", json!([transaction]))
            .await
    }
}
