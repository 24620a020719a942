//! What the CLI's commands share: key files, durations, the clock, fresh
//! idempotency keys, and how an answer or a refusal is printed.

use std::path::Path;
use std::process::ExitCode;

use agentrail_client::{Client, ClientError};
use agentrail_core::constants::DAY_S;
use agentrail_core::state::IdentityKind;
use agentrail_core::{Did, Timestamp};
use agentrail_wire::keyfile;
use anyhow::Context;
use ed25519_dalek::SigningKey;
use serde::Serialize;

pub(crate) fn parse_duration_s(text: &str) -> anyhow::Result<u64> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let number: u64 = number
        .parse()
        .with_context(|| format!("{text:?} is not a duration like 30d, 12h, 45m or 3600s"))?;
    let unit_s = match unit {
        "d" => DAY_S,
        "h" => 3_600,
        "m" => 60,
        "s" | "" => 1,
        _ => anyhow::bail!("{text:?} is not a duration like 30d, 12h, 45m or 3600s"),
    };
    number
        .checked_mul(unit_s)
        .context("the duration is too long")
}

pub(crate) fn read_key(path: &Path) -> anyhow::Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    keyfile::decode(&text).with_context(|| path.display().to_string())
}

pub(crate) fn did_of(key: &SigningKey) -> Did {
    Did::from_verifying_key(&key.verifying_key())
}

pub(crate) fn now() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

pub(crate) fn fresh_key() -> String {
    format!("cli-{}", agentrail_client::random_nonce())
}

/// Prints an answer (or a refusal) and chooses the exit status.
pub(crate) fn report<T: Serialize>(
    json: bool,
    result: Result<T, ClientError>,
    human: impl FnOnce(&T) -> String,
) -> anyhow::Result<ExitCode> {
    match result {
        Ok(value) => {
            if json {
                println!("{}", serde_json::to_string(&value)?);
            } else {
                println!("{}", human(&value));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(ClientError::Api { status, error }) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&serde_json::json!({ "error": error }))?
                );
            }
            eprintln!("refused: {} ({status}): {}", error.code, error.message);
            Ok(ExitCode::from(1))
        }
        Err(other) => Err(other.into()),
    }
}

pub(crate) fn summarize(response: &agentrail_wire::api::CommandResponse) -> String {
    let events: Vec<String> = response
        .events
        .iter()
        .map(|event| {
            serde_json::to_value(event)
                .ok()
                .and_then(|v| v["type"].as_str().map(str::to_owned))
                .unwrap_or_default()
        })
        .collect();
    format!(
        "accepted as journal entry {}: {}",
        response.index,
        events.join(", ")
    )
}

/// The account a signer spends from by default.
pub(crate) async fn spending_account(client: &Client, signer: Did) -> anyhow::Result<Did> {
    let passport = client.passport(&signer).await?;
    Ok(match passport.kind {
        IdentityKind::Session => passport
            .owner_chain
            .get(1)
            .copied()
            .context("a session's passport names its agent")?,
        _ => signer,
    })
}
