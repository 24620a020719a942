//! Signed grants: any JSON parses to a grant or a typed error; a parsed
//! grant validates and checks its signature without a panic.

use agentrail_core::SignedGrant;

pub fn run(data: &[u8]) {
    if let Ok(grant) = serde_json::from_slice::<SignedGrant>(data) {
        let _ = grant.grant().validate();
        let _ = grant.verify_signature();
        let _ = grant.id();
    }
}
