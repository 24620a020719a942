//! Receipts, checkpoints and log keys from outside: parsed and verified
//! against a fixed key, refused with a typed error when they are not right.

use std::sync::OnceLock;

use agentrail_log::receipt::Receipt;
use agentrail_log::{Checkpoint, LogKey, LogSigner};

fn key() -> &'static LogKey {
    static KEY: OnceLock<LogKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let signer = LogSigner::new("agentrail.test/log", agentrail_sim::kit::key("log"))
            .expect("a valid name");
        LogKey::parse(&signer.verifier_key()).expect("its own key parses")
    })
}

pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = LogKey::parse(&text);
    let _ = Checkpoint::parse(&text);
    let _ = Checkpoint::open(&text, key());
    if let Ok(receipt) = serde_json::from_slice::<Receipt>(data) {
        let _ = receipt.verify(key());
    }
}
