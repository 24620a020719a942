//! Request bodies: any bytes parse to a command or a typed error, and a
//! parsed command serializes and parses back to itself.

use agentrail_core::Command;

pub fn run(data: &[u8]) {
    if let Ok(command) = serde_json::from_slice::<Command>(data) {
        let bytes = serde_json::to_vec(&command).expect("a parsed command serializes");
        let again: Command = serde_json::from_slice(&bytes).expect("and parses again");
        assert_eq!(again, command);
    }
}
