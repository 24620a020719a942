//! Checks of the node against the chain: its log against the root the
//! vault anchored.

use agentrail_client::{Client, ClientError};
use agentrail_log::merkle::{self, Hash};
use agentrail_log::{Checkpoint, LogKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::vault::{Vault, VaultError};

/// Why a check could not be made (not: what it found wrong).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Node(#[from] ClientError),
    #[error("{0}")]
    Log(String),
}

fn decode_hash(text: &str) -> Result<Hash, AuditError> {
    STANDARD
        .decode(text)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            AuditError::Log("the node sent a hash that is not 32 bytes of base64".into())
        })
}

/// The log against the vault's anchor.
#[derive(Debug, Clone, Serialize)]
pub struct AnchorCheck {
    pub anchored_size: u64,
    pub checkpoint_size: u64,
    pub consistent: bool,
    pub reason: Option<String>,
}

impl AnchorCheck {
    pub fn describe(&self) -> String {
        match (&self.reason, self.anchored_size) {
            (Some(reason), _) => format!("INCONSISTENT with the anchor: {reason}"),
            (None, 0) => "nothing anchored yet".into(),
            (None, size) => format!(
                "consistent with the anchored root of {size} entries (checkpoint of {} entries)",
                self.checkpoint_size
            ),
        }
    }
}

/// Checks the node's newest checkpoint (signed by `key`, or by the key the
/// node states) against the (size, root) the vault anchored: equal at the
/// same size, a valid consistency proof from a smaller one.
pub async fn check_anchor(
    client: &Client,
    vault: &Vault<'_>,
    key: Option<&LogKey>,
) -> Result<AnchorCheck, AuditError> {
    let (size, root) = vault.anchored().await?;
    let key = match key {
        Some(key) => key.clone(),
        None => LogKey::parse(&client.log_key().await?)
            .map_err(|e| AuditError::Log(format!("the node's log key: {e}")))?,
    };
    let newest = Checkpoint::open(&client.checkpoint().await?, &key).map_err(|e| {
        AuditError::Log(format!(
            "the node's checkpoint does not verify with the log key: {e}"
        ))
    })?;
    let mut check = AnchorCheck {
        anchored_size: size,
        checkpoint_size: newest.size,
        consistent: true,
        reason: None,
    };
    if size == 0 {
        return Ok(check);
    }
    let fail = |mut check: AnchorCheck, reason: String| {
        check.consistent = false;
        check.reason = Some(reason);
        Ok(check)
    };
    if newest.size < size {
        return fail(
            check,
            format!(
                "the vault anchored {size} entries, the node's log has {}",
                newest.size
            ),
        );
    }
    if newest.size == size {
        if newest.root != root.0 {
            return fail(
                check,
                format!("the root of {size} entries differs from the anchored one"),
            );
        }
        return Ok(check);
    }
    let proof = client.consistency(size, newest.size).await?;
    let hashes = proof
        .proof
        .iter()
        .map(|h| decode_hash(h))
        .collect::<Result<Vec<_>, _>>()?;
    if let Err(e) = merkle::verify_consistency(size, newest.size, &root.0, &newest.root, &hashes) {
        return fail(
            check,
            format!(
                "no valid consistency proof from the anchored {size} entries to {}: {e}",
                newest.size
            ),
        );
    }
    check.consistent = true;
    Ok(check)
}
