//! Amounts and did:key identities as people and peers type them: parsed
//! or refused, and what parses prints back to itself.

use agentrail_core::{Amount, Did};

pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(amount) = Amount::parse_atomic(&text) {
        assert_eq!(amount.atomic().to_string(), text);
        assert_eq!(
            Amount::parse_decimal(&amount.to_decimal_string()),
            Ok(amount)
        );
    }
    if let Ok(amount) = Amount::parse_decimal(&text) {
        assert_eq!(
            Amount::parse_decimal(&amount.to_decimal_string()),
            Ok(amount)
        );
    }
    if let Ok(did) = text.parse::<Did>() {
        assert_eq!(did.to_string(), text);
    }
}
