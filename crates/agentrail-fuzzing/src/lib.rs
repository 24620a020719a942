//! agentrail-fuzzing: the bodies of the fuzz targets, one module each.
//!
//! `fuzz/` (its own workspace, run by `fuzz/run.sh SECONDS`) wraps each
//! `run` in a libFuzzer target for coverage-guided runs; `tests/bounded.rs`
//! runs every one in `cargo test` over the committed seeds and a fixed,
//! seeded budget of mutations of them, so that CI checks the targets too.
//! Each `run` must never panic on any input: a panic is a defect.

#![forbid(unsafe_code)]

pub mod amount_did;
pub mod apply_command;
pub mod channel_state;
pub mod command_json;
pub mod grant;
pub mod journal_entry;
pub mod receipt_checkpoint;
pub mod signature_headers;
pub mod x402_headers;

/// A target: its name (of its seeds' directory and its cargo fuzz binary)
/// and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: [Target; 9] = [
    ("command_json", command_json::run),
    ("apply_command", apply_command::run),
    ("signature_headers", signature_headers::run),
    ("grant", grant::run),
    ("x402_headers", x402_headers::run),
    ("receipt_checkpoint", receipt_checkpoint::run),
    ("journal_entry", journal_entry::run),
    ("amount_did", amount_did::run),
    ("channel_state", channel_state::run),
];
