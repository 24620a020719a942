//! The key file format: `{"did":"did:key:…","seed":"<64 hex digits>"}`.
//! The seed is the Ed25519 secret key; the did is there for people and is
//! checked against the seed when the file is read. Callers write the file
//! with owner-only permissions.

use agentrail_core::Did;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    did: Did,
    seed: String,
}

/// Why a key file cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an agentrail key file: {0}")]
pub struct KeyFileError(pub &'static str);

pub fn encode(key: &SigningKey) -> String {
    let seed: String = key.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let file = KeyFile {
        did: Did::from_verifying_key(&key.verifying_key()),
        seed,
    };
    serde_json::to_string_pretty(&file).expect("key files are JSON") + "\n"
}

pub fn decode(text: &str) -> Result<SigningKey, KeyFileError> {
    let file: KeyFile = serde_json::from_str(text)
        .map_err(|_| KeyFileError("expected {\"did\": …, \"seed\": …}"))?;
    if file.seed.len() != 64 {
        return Err(KeyFileError("the seed must be 64 hex digits"));
    }
    let mut seed = [0u8; 32];
    for (index, byte) in seed.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&file.seed[2 * index..2 * index + 2], 16)
            .map_err(|_| KeyFileError("the seed must be hex"))?;
    }
    let key = SigningKey::from_bytes(&seed);
    if Did::from_verifying_key(&key.verifying_key()) != file.did {
        return Err(KeyFileError("the did does not belong to the seed"));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_mismatch() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let text = super::encode(&key);
        assert_eq!(super::decode(&text).unwrap().to_bytes(), key.to_bytes());
        let other = super::encode(&ed25519_dalek::SigningKey::from_bytes(&[8; 32]));
        let mixed = text.replace(
            &text[text.find("seed").unwrap()..],
            &other[other.find("seed").unwrap()..],
        );
        assert!(super::decode(&mixed).is_err());
    }
}
