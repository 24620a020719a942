//! RFC 8785 JSON Canonicalization Scheme (JCS) for the subset of JSON that
//! agentrail signs: objects, arrays, strings, booleans, null and integers.
//!
//! We write our own rather than depend on a JCS crate because the signed
//! subset is small and the rules must be exact and auditable: the few
//! published crates either pull a float formatter we must never need (amounts
//! are strings; a float in a signed document is an error here) or are
//! unmaintained. Integers are limited to ±(2^53 − 1) so that JavaScript's
//! `JSON.parse`/`JSON.stringify` round trip them exactly, which is what JCS
//! assumes.

use serde::Serialize;
use serde_json::Value;

/// Largest integer magnitude JCS can carry exactly (JavaScript's safe integers).
pub const JCS_INTEGER_MAX: u64 = (1 << 53) - 1;
/// Deepest nesting accepted in a signed document.
pub const JCS_DEPTH_MAX: usize = 16;

/// Why a document cannot be canonicalised.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CanonicalError {
    #[error("signed documents carry no fractional numbers; amounts are strings of atomic units")]
    FractionalNumber,
    #[error("integer is outside ±(2^53 − 1), which JSON cannot carry exactly")]
    IntegerOutOfRange,
    #[error("document is nested deeper than {JCS_DEPTH_MAX} levels")]
    TooDeep,
    #[error("document cannot be represented as JSON: {0}")]
    NotJson(String),
}

/// The RFC 8785 bytes of any serialisable value.
pub fn to_canonical_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let value = serde_json::to_value(value).map_err(|e| CanonicalError::NotJson(e.to_string()))?;
    canonicalize(&value)
}

/// The RFC 8785 bytes of a JSON value.
pub fn canonicalize(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out, 0)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), CanonicalError> {
    if depth > JCS_DEPTH_MAX {
        return Err(CanonicalError::TooDeep);
    }
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => {
            // ES6 Number-to-String of an integer is its plain decimal form.
            if let Some(unsigned) = number.as_u64() {
                if unsigned > JCS_INTEGER_MAX {
                    return Err(CanonicalError::IntegerOutOfRange);
                }
                out.extend_from_slice(unsigned.to_string().as_bytes());
            } else if let Some(signed) = number.as_i64() {
                if signed.unsigned_abs() > JCS_INTEGER_MAX {
                    return Err(CanonicalError::IntegerOutOfRange);
                }
                out.extend_from_slice(signed.to_string().as_bytes());
            } else {
                return Err(CanonicalError::FractionalNumber);
            }
        }
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(item, out, depth + 1)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // RFC 8785 §3.2.3: members sorted by the UTF-16 code units of
            // their names, not by UTF-8 bytes.
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push(b'{');
            for (index, (name, member)) in members.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_string(name, out);
                out.push(b':');
                write_value(member, out, depth + 1)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// RFC 8785 §3.2.2.2 (ES6 `JSON.stringify` of a string): `"` and `\` are
/// escaped, control characters use the short escapes where they exist and
/// `\u00xx` (lower-case hex) otherwise; everything else is literal UTF-8.
fn write_string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for character in text.chars() {
        match character {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{08}' => out.extend_from_slice(b"\\b"),
            '\u{09}' => out.extend_from_slice(b"\\t"),
            '\u{0a}' => out.extend_from_slice(b"\\n"),
            '\u{0c}' => out.extend_from_slice(b"\\f"),
            '\u{0d}' => out.extend_from_slice(b"\\r"),
            control if (control as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", control as u32).as_bytes());
            }
            other => {
                let mut buffer = [0u8; 4];
                out.extend_from_slice(other.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(value: Value, expected: &str) {
        let bytes = canonicalize(&value).unwrap();
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
    }

    #[test]
    fn canonical_forms() {
        check(
            json!({"b": 1, "a": [true, null, "x"]}),
            r#"{"a":[true,null,"x"],"b":1}"#,
        );
        check(
            json!({"nested": {"z": -5, "y": {}}}),
            r#"{"nested":{"y":{},"z":-5}}"#,
        );
        check(
            json!("tab\there \"q\" \\ \u{1} é €"),
            "\"tab\\there \\\"q\\\" \\\\ \\u0001 é €\"",
        );
        check(json!("\u{7f}\u{1f}"), "\"\u{7f}\\u001f\"");
        check(json!(9007199254740991u64), "9007199254740991");
        check(json!([]), "[]");
    }

    /// RFC 8785 §3.2.3's sorting example: names compared as UTF-16 code
    /// units, so U+10000 (a surrogate pair, 0xD800…) sorts before U+FB33.
    #[test]
    fn sorts_by_utf16_code_units() {
        let value = json!({
            "\u{20ac}": "Euro Sign",
            "\r": "Carriage Return",
            "\u{fb33}": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\u{1f600}": "Emoji: Grinning Face",
            "\u{0080}": "Control",
            "\u{00f6}": "Latin Small Letter O With Diaeresis"
        });
        let bytes = canonicalize(&value).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let order: Vec<&str> = [
            "Carriage Return",
            "One",
            "Control",
            "Latin Small Letter O With Diaeresis",
            "Euro Sign",
            "Emoji: Grinning Face",
            "Hebrew Letter Dalet With Dagesh",
        ]
        .to_vec();
        let positions: Vec<usize> = order.iter().map(|name| text.find(name).unwrap()).collect();
        assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "{text}");
    }

    #[test]
    fn rejects_what_json_cannot_carry_exactly() {
        assert_eq!(
            canonicalize(&json!(1.5)),
            Err(CanonicalError::FractionalNumber)
        );
        assert_eq!(
            canonicalize(&json!(9007199254740992u64)),
            Err(CanonicalError::IntegerOutOfRange)
        );
        assert_eq!(
            canonicalize(&json!(-9007199254740992i64)),
            Err(CanonicalError::IntegerOutOfRange)
        );
        let mut deep = json!(1);
        for _ in 0..=JCS_DEPTH_MAX {
            deep = json!([deep]);
        }
        assert_eq!(canonicalize(&deep), Err(CanonicalError::TooDeep));
    }
}
