//! What a paywall remembers of `exact` payments, durably: which
//! authorizations were settled (and by which transaction), whether the call
//! they paid was answered, and the `payment-identifier` ids that name them.
//!
//! The token already refuses an authorization twice; this store is what
//! stops one payment from being *served* twice. An authorization settled
//! and answered is refused when it comes again (`invalid_exact_evm_nonce_
//! already_used`), unless it comes with the id it was paid under: that is
//! the client's retry of a request whose answer it lost, served again
//! without a second settlement, a few times ([`REPLAYS_MAX`]) while the
//! authorization is valid. An authorization settled whose call was not
//! answered (a crash, a pending settlement) is served when it comes again.
//! Each record stands for money that moved on chain to the payee, so the
//! store grows only as fast as paid calls do.

use std::path::Path;

use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};

/// `from:nonce` → [`Record`] (JSON).
const PAYMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("exact_payments_v1");
/// payment identifier → `from:nonce`.
const IDENTIFIERS: TableDefinition<&str, &str> = TableDefinition::new("exact_identifiers_v1");

/// One settled authorization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The transaction that moved the money.
    pub tx: String,
    /// The payer, checksummed.
    pub payer: String,
    /// The route paid for.
    pub resource: String,
    /// Whether the call it paid was answered.
    pub served: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// When the authorization stops being valid (Unix seconds): a retry
    /// under its payment id is served until then, at most
    /// [`REPLAYS_MAX`] times.
    #[serde(default)]
    pub valid_before: u64,
    /// Retries served under the payment id.
    #[serde(default)]
    pub replays: u32,
}

/// Retries of one paid request served under its payment id: the id makes a
/// lost answer recoverable, not a call paid once served for ever.
pub const REPLAYS_MAX: u32 = 3;

/// The store's trouble.
#[derive(Debug, thiserror::Error)]
#[error("the exact payments store: {0}")]
pub struct StoreError(String);

fn store_error(error: impl std::fmt::Display) -> StoreError {
    StoreError(error.to_string())
}

#[derive(Debug)]
pub struct ExactStore {
    db: Database,
}

impl ExactStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<ExactStore, StoreError> {
        let db = Database::create(path).map_err(store_error)?;
        let write = db.begin_write().map_err(store_error)?;
        write.open_table(PAYMENTS).map_err(store_error)?;
        write.open_table(IDENTIFIERS).map_err(store_error)?;
        write.commit().map_err(store_error)?;
        Ok(ExactStore { db })
    }

    /// The record of authorization `key`.
    pub fn get(&self, key: &str) -> Result<Option<Record>, StoreError> {
        let read = self.db.begin_read().map_err(store_error)?;
        let table = read.open_table(PAYMENTS).map_err(store_error)?;
        match table.get(key).map_err(store_error)? {
            None => Ok(None),
            Some(value) => serde_json::from_slice(value.value())
                .map(Some)
                .map_err(store_error),
        }
    }

    /// The authorization key and record a payment id names.
    pub fn by_identifier(&self, id: &str) -> Result<Option<(String, Record)>, StoreError> {
        let key = {
            let read = self.db.begin_read().map_err(store_error)?;
            let table = read.open_table(IDENTIFIERS).map_err(store_error)?;
            match table.get(id).map_err(store_error)? {
                None => return Ok(None),
                Some(key) => key.value().to_owned(),
            }
        };
        Ok(self.get(&key)?.map(|record| (key, record)))
    }

    /// Writes `record` for `key` (and its id), durably, before the answer
    /// that depends on it leaves.
    pub fn put(&self, key: &str, record: &Record) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(record).map_err(store_error)?;
        let write = self.db.begin_write().map_err(store_error)?;
        {
            let mut payments = write.open_table(PAYMENTS).map_err(store_error)?;
            payments
                .insert(key, bytes.as_slice())
                .map_err(store_error)?;
            if let Some(id) = &record.payment_id {
                let mut ids = write.open_table(IDENTIFIERS).map_err(store_error)?;
                ids.insert(id.as_str(), key).map_err(store_error)?;
            }
        }
        write.commit().map_err(store_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_identifiers_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exact.redb");
        let record = Record {
            tx: "0x01".into(),
            payer: "0xabc".into(),
            resource: "/stats".into(),
            served: false,
            payment_id: Some("pay_0123456789abcdef".into()),
            valid_before: 1_800_000_000,
            replays: 0,
        };
        {
            let store = ExactStore::open(&path).unwrap();
            store.put("k", &record).unwrap();
            store
                .put(
                    "k",
                    &Record {
                        served: true,
                        ..record.clone()
                    },
                )
                .unwrap();
        }
        let store = ExactStore::open(&path).unwrap();
        assert!(store.get("k").unwrap().unwrap().served);
        let (key, found) = store
            .by_identifier("pay_0123456789abcdef")
            .unwrap()
            .unwrap();
        assert_eq!((key.as_str(), found.tx.as_str()), ("k", "0x01"));
        assert_eq!(store.get("other").unwrap(), None);
    }
}
