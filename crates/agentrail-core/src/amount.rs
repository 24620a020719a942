//! Money: an exact, checked amount of the ledger's one asset in atomic units.
//!
//! People read and type decimals (`"2.5"`); the wire and the store carry
//! base-10 strings of atomic units (`"2500000"`), as x402 does. No float ever
//! touches an amount.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The ledger's asset code.
pub const ASSET: &str = "USD";
/// Decimal places of the asset: one atomic unit is 0.000001 USD, as in USDC.
pub const DECIMALS: u32 = 6;
/// Atomic units in one whole unit of the asset.
pub const ATOMIC_PER_UNIT: u128 = 10u128.pow(DECIMALS);
/// Longest amount text accepted before parsing (u128::MAX has 39 digits).
pub const AMOUNT_TEXT_BYTES_MAX: usize = 48;

/// Basis points in a whole: 10,000 bps = 100 %.
pub const BPS_WHOLE: u16 = 10_000;

/// An amount of [`ASSET`] in atomic units. Arithmetic is checked: an
/// overflow or an underflow is an error the caller must handle, never a wrap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(u128);

/// Why a text is not an amount.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmountError {
    #[error("amount is empty")]
    Empty,
    #[error("amount is negative; amounts are never below zero")]
    Negative,
    #[error("amount has more than {DECIMALS} decimal places (the smallest unit is 0.000001)")]
    TooManyDecimals,
    #[error("amount is too large")]
    Overflow,
    #[error("amount in atomic units must not have leading zeros")]
    LeadingZero,
    #[error("amount is not a number: expected digits with an optional decimal point")]
    Invalid,
}

impl AmountError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            AmountError::Empty => "amount_empty",
            AmountError::Negative => "amount_negative",
            AmountError::TooManyDecimals => "amount_too_many_decimals",
            AmountError::Overflow => "amount_overflow",
            AmountError::LeadingZero => "amount_leading_zero",
            AmountError::Invalid => "amount_invalid",
        }
    }
}

impl Amount {
    pub const ZERO: Amount = Amount(0);
    pub const MAX: Amount = Amount(u128::MAX);

    pub const fn from_atomic(atomic: u128) -> Amount {
        Amount(atomic)
    }

    pub const fn atomic(self) -> u128 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    pub fn checked_mul(self, factor: u128) -> Option<Amount> {
        self.0.checked_mul(factor).map(Amount)
    }

    /// `self − other`, or zero when `other` is larger. For remaining budgets.
    pub fn saturating_sub(self, other: Amount) -> Amount {
        Amount(self.0.saturating_sub(other.0))
    }

    /// Parses a decimal a person typed: `"12.5"`, `"0.000001"`, `"3"`.
    pub fn parse_decimal(text: &str) -> Result<Amount, AmountError> {
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        if text.len() > AMOUNT_TEXT_BYTES_MAX {
            return Err(if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                AmountError::Overflow
            } else {
                AmountError::Invalid
            });
        }
        if text.starts_with('-') {
            return Err(AmountError::Negative);
        }
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (text, None),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::Invalid);
        }
        let mut atomic = parse_digits(whole)?
            .checked_mul(ATOMIC_PER_UNIT)
            .ok_or(AmountError::Overflow)?;
        if let Some(fraction) = fraction {
            if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return Err(AmountError::Invalid);
            }
            if fraction.len() > DECIMALS as usize {
                return Err(AmountError::TooManyDecimals);
            }
            let scale = 10u128.pow(DECIMALS - fraction.len() as u32);
            let fraction_atomic = parse_digits(fraction)? * scale;
            atomic = atomic
                .checked_add(fraction_atomic)
                .ok_or(AmountError::Overflow)?;
        }
        Ok(Amount(atomic))
    }

    /// Parses the wire form: base-10 atomic units, no sign, no leading zeros.
    pub fn parse_atomic(text: &str) -> Result<Amount, AmountError> {
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        if text.starts_with('-') {
            return Err(AmountError::Negative);
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::Invalid);
        }
        if text.len() > 1 && text.starts_with('0') {
            return Err(AmountError::LeadingZero);
        }
        if text.len() > AMOUNT_TEXT_BYTES_MAX {
            return Err(AmountError::Overflow);
        }
        parse_digits(text).map(Amount)
    }

    /// The decimal form for people, without trailing zeros: `"12.5"`, `"3"`.
    pub fn to_decimal_string(self) -> String {
        let whole = self.0 / ATOMIC_PER_UNIT;
        let fraction = self.0 % ATOMIC_PER_UNIT;
        if fraction == 0 {
            return whole.to_string();
        }
        let digits = format!("{fraction:0width$}", width = DECIMALS as usize);
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }

    /// The share `bps / 10,000` of this amount, rounded down. Exact for every
    /// amount: the product is split so that it cannot overflow.
    pub fn share_floor(self, bps: u16) -> Amount {
        assert!(bps <= BPS_WHOLE, "basis points above a whole: {bps}");
        let whole = u128::from(BPS_WHOLE);
        let bps = u128::from(bps);
        Amount((self.0 / whole) * bps + (self.0 % whole) * bps / whole)
    }
}

fn parse_digits(digits: &str) -> Result<u128, AmountError> {
    debug_assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    let mut value: u128 = 0;
    for byte in digits.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(byte - b'0')))
            .ok_or(AmountError::Overflow)?;
    }
    Ok(value)
}

impl fmt::Display for Amount {
    /// People read decimals with the asset code: `2.5 USD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {ASSET}", self.to_decimal_string())
    }
}

impl FromStr for Amount {
    type Err = AmountError;
    /// `FromStr` is the human form (decimals).
    fn from_str(text: &str) -> Result<Amount, AmountError> {
        Amount::parse_decimal(text)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Amount, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string of atomic units, e.g. \"2500000\" for 2.5 USD")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Amount, E> {
                Amount::parse_atomic(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_decimal(text: &str, expected: Result<u128, AmountError>) {
        assert_eq!(
            Amount::parse_decimal(text).map(Amount::atomic),
            expected,
            "{text:?}"
        );
    }

    #[test]
    fn parse_decimal_table() {
        check_decimal("0.000001", Ok(1));
        check_decimal("12.5", Ok(12_500_000));
        check_decimal("3", Ok(3_000_000));
        check_decimal("007.250000", Ok(7_250_000));
        check_decimal("0", Ok(0));
        check_decimal("", Err(AmountError::Empty));
        check_decimal("-1", Err(AmountError::Negative));
        check_decimal("-0.5", Err(AmountError::Negative));
        check_decimal("1.0000001", Err(AmountError::TooManyDecimals));
        check_decimal("1.", Err(AmountError::Invalid));
        check_decimal(".5", Err(AmountError::Invalid));
        check_decimal("1e6", Err(AmountError::Invalid));
        check_decimal("+1", Err(AmountError::Invalid));
        check_decimal(" 1", Err(AmountError::Invalid));
        check_decimal("1.2.3", Err(AmountError::Invalid));
        check_decimal("１", Err(AmountError::Invalid));
        check_decimal("abc", Err(AmountError::Invalid));
        // u128::MAX atomic units is 340282366920938463463374607431768.211455.
        check_decimal("340282366920938463463374607431768.211455", Ok(u128::MAX));
        check_decimal(
            "340282366920938463463374607431768.211456",
            Err(AmountError::Overflow),
        );
        check_decimal(
            "340282366920938463463374607431769",
            Err(AmountError::Overflow),
        );
        check_decimal(&"9".repeat(100), Err(AmountError::Overflow));
    }

    #[test]
    fn parse_atomic_table() {
        assert_eq!(Amount::parse_atomic("2500000"), Ok(Amount(2_500_000)));
        assert_eq!(Amount::parse_atomic("0"), Ok(Amount(0)));
        assert_eq!(Amount::parse_atomic("01"), Err(AmountError::LeadingZero));
        assert_eq!(Amount::parse_atomic("1.5"), Err(AmountError::Invalid));
        assert_eq!(Amount::parse_atomic("-5"), Err(AmountError::Negative));
        assert_eq!(Amount::parse_atomic(""), Err(AmountError::Empty));
        assert_eq!(
            Amount::parse_atomic(&u128::MAX.to_string()),
            Ok(Amount::MAX)
        );
        assert_eq!(
            Amount::parse_atomic("340282366920938463463374607431768211456"),
            Err(AmountError::Overflow)
        );
    }

    #[test]
    fn format_decimal() {
        assert_eq!(Amount(1).to_decimal_string(), "0.000001");
        assert_eq!(Amount(12_500_000).to_decimal_string(), "12.5");
        assert_eq!(Amount(3_000_000).to_decimal_string(), "3");
        assert_eq!(Amount(0).to_string(), "0 USD");
    }

    #[test]
    fn json_is_a_string_of_atomic_units() {
        let json = serde_json::to_string(&Amount(2_500_000)).unwrap();
        assert_eq!(json, "\"2500000\"");
        let back: Amount = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Amount(2_500_000));
        assert!(serde_json::from_str::<Amount>("2500000").is_err());
        assert!(serde_json::from_str::<Amount>("\"-1\"").is_err());
    }

    #[test]
    fn share_floor_never_overflows() {
        assert_eq!(Amount::MAX.share_floor(BPS_WHOLE), Amount::MAX);
        assert_eq!(Amount(100).share_floor(3_333), Amount(33));
        assert_eq!(Amount(1).share_floor(9_999), Amount(0));
    }

    proptest::proptest! {
        #[test]
        fn decimal_round_trip(atomic in proptest::num::u128::ANY) {
            let amount = Amount(atomic);
            proptest::prop_assert_eq!(Amount::parse_decimal(&amount.to_decimal_string()), Ok(amount));
            proptest::prop_assert_eq!(Amount::parse_atomic(&atomic.to_string()), Ok(amount));
        }

        #[test]
        fn share_floor_matches_wide_arithmetic(atomic in 0u128..(u128::MAX / 10_000), bps in 0u16..=10_000) {
            let expected = atomic * u128::from(bps) / 10_000;
            proptest::prop_assert_eq!(Amount(atomic).share_floor(bps).atomic(), expected);
        }
    }
}
