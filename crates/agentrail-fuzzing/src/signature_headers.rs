//! RFC 9421 signature headers: any three header values and any body are
//! refused with a typed error or checked; never a panic.

use agentrail_wire::httpsig::{self, SignatureHeaders};

/// The network the seeds' signatures name in their `tag`.
pub const NETWORK: &str = "agentrail:agentrail.log/0011223344556677";

pub fn run(data: &[u8]) {
    let mut parts = data.splitn(4, |&byte| byte == 0xff);
    let mut text = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let headers = SignatureHeaders {
        signature_input: text(),
        signature: text(),
        content_digest: text(),
    };
    let body = parts.next().unwrap_or_default();
    let digest_present = !headers.content_digest.is_empty();
    if let Ok(prepared) = httpsig::prepare(
        "POST",
        "/v1/commands",
        body,
        Some(&headers),
        digest_present,
        1_767_225_600,
        NETWORK,
    ) {
        let _ = prepared.check();
    }
}
