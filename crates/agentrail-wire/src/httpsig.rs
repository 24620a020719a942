//! HTTP Message Signatures (RFC 9421) with Ed25519, and `Content-Digest`
//! (RFC 9530, sha-256), for agentrail's mutating requests.
//!
//! A signed request carries:
//!
//! ```text
//! Content-Digest: sha-256=:<base64 SHA-256 of the body>:
//! Signature-Input: sig1=("@method" "@path" "content-digest");created=<unix s>;nonce="<nonce>";keyid="<did:key>";alg="ed25519";tag="<network id>"
//! Signature: sig1=:<base64 Ed25519 signature over the signature base>:
//! ```
//!
//! and the signature base (RFC 9421 §2.5) is, lines joined by `\n`:
//!
//! ```text
//! "@method": POST
//! "@path": /v1/commands
//! "content-digest": sha-256=:…:
//! "@signature-params": ("@method" "@path" "content-digest");created=…;nonce="…";keyid="…";alg="ed25519";tag="agentrail:…"
//! ```
//!
//! `tag` (RFC 9421 §2.3, an application-specific tag) is the ledger's
//! network id, `agentrail:<log origin>` (served in `/v1/health`, and the
//! one vouchers sign): a request signed for one ledger is refused by every
//! other (`signature_wrong_network`), even where the same keys are
//! registered, so a request recorded on its way to one node cannot be
//! replayed onto another.
//!
//! The verifier accepts exactly this shape (one label, these three covered
//! components in this order, these five parameters in this order). We parse
//! it by hand rather than with a general structured-field parser: the subset
//! is fixed, and anything outside it is refused with a precise code instead
//! of being interpreted.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey};
use sha2::{Digest, Sha256};

use agentrail_core::Did;

/// The covered components, in order.
pub const COVERED: &str = r#"("@method" "@path" "content-digest")"#;
/// Seconds a signature's `created` may differ from the node's clock.
pub const SIGNATURE_WINDOW_S: u64 = 300;
/// Longest header value accepted.
pub const HEADER_BYTES_MAX: usize = 1024;
/// Longest nonce accepted.
pub const NONCE_BYTES_MAX: usize = 64;
/// Longest `tag` (network id) accepted.
pub const TAG_BYTES_MAX: usize = 128;
const LABEL: &str = "sig1";

/// The three headers of a signed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureHeaders {
    pub content_digest: String,
    pub signature_input: String,
    pub signature: String,
}

/// Why a request's signature is refused. Each has a stable code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    #[error("the request is not signed: Signature and Signature-Input headers are required")]
    Missing,
    #[error("the Content-Digest header is missing; mutating requests carry sha-256 of the body")]
    DigestMissing,
    #[error("the body does not match its Content-Digest")]
    DigestMismatch,
    #[error("malformed signature headers: {0}")]
    Malformed(&'static str),
    #[error("the signature does not verify with the key named in keyid")]
    Invalid,
    #[error("the signature was created outside the accepted window of 300 seconds")]
    Expired,
    #[error("this nonce was already used")]
    NonceReused,
    #[error(
        "the signature's tag names another ledger: sign for this node's network id (in /v1/health)"
    )]
    WrongNetwork,
    #[error(
        "the request was signed before this node started: sign it again with a fresh created time"
    )]
    BeforeStart,
}

impl SignatureError {
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            SignatureError::DigestMissing => "digest_missing",
            SignatureError::DigestMismatch => "digest_mismatch",
            SignatureError::Malformed(_) => "signature_malformed",
            SignatureError::Invalid => "signature_invalid",
            SignatureError::Expired => "signature_expired",
            SignatureError::NonceReused => "nonce_reused",
            SignatureError::WrongNetwork => "signature_wrong_network",
            SignatureError::BeforeStart => "signature_before_start",
        }
    }
}

/// `sha-256=:<base64>:` of a body.
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(Sha256::digest(body)))
}

fn signature_params(created: u64, nonce: &str, keyid: &Did, network: &str) -> String {
    format!(
        r#"{COVERED};created={created};nonce="{nonce}";keyid="{keyid}";alg="ed25519";tag="{network}""#
    )
}

fn signature_base(method: &str, path: &str, digest: &str, params: &str) -> String {
    format!(
        "\"@method\": {method}\n\"@path\": {path}\n\"content-digest\": {digest}\n\"@signature-params\": {params}"
    )
}

/// What a signer binds a request to besides its method, path and body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignParams<'a> {
    /// Unix seconds (the ledger's clock, within 300 s).
    pub created: u64,
    /// Unique per key within the window (`[A-Za-z0-9_-]`, at most 64 bytes).
    pub nonce: &'a str,
    /// The ledger's network id (`agentrail:<log origin>`).
    pub network: &'a str,
}

/// Signs a request for one ledger.
pub fn sign(
    key: &SigningKey,
    method: &str,
    path: &str,
    body: &[u8],
    params: SignParams<'_>,
) -> SignatureHeaders {
    let keyid = Did::from_verifying_key(&key.verifying_key());
    let digest = content_digest(body);
    let params = signature_params(params.created, params.nonce, &keyid, params.network);
    let base = signature_base(method, path, &digest, &params);
    let signature = key.sign(base.as_bytes());
    SignatureHeaders {
        content_digest: digest,
        signature_input: format!("{LABEL}={params}"),
        signature: format!("{LABEL}=:{}:", STANDARD.encode(signature.to_bytes())),
    }
}

/// What a verified signature tells: who signed, when, with which nonce
/// (for which ledger: the verifier checked the tag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub signer: Did,
    pub created: u64,
    pub nonce: String,
}

/// The parsed parameters of a Signature-Input value.
struct Params<'a> {
    created: u64,
    nonce: &'a str,
    keyid: &'a str,
    tag: &'a str,
}

fn quoted<'a>(text: &'a str, name: &str) -> Result<(&'a str, &'a str), SignatureError> {
    let rest = text
        .strip_prefix(name)
        .and_then(|r| r.strip_prefix("=\""))
        .ok_or(SignatureError::Malformed(
            "a parameter is missing or out of order",
        ))?;
    let end = rest
        .find('"')
        .ok_or(SignatureError::Malformed("an unterminated string"))?;
    Ok((&rest[..end], &rest[end + 1..]))
}

fn parse_params(params: &str) -> Result<Params<'_>, SignatureError> {
    let rest = params
        .strip_prefix(COVERED)
        .ok_or(SignatureError::Malformed(
            r#"the covered components must be ("@method" "@path" "content-digest")"#,
        ))?;
    let rest = rest
        .strip_prefix(";created=")
        .ok_or(SignatureError::Malformed(
            "created must follow the components",
        ))?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let created: u64 = rest[..digits]
        .parse()
        .map_err(|_| SignatureError::Malformed("created is not a number"))?;
    let rest = rest[digits..]
        .strip_prefix(';')
        .ok_or(SignatureError::Malformed("nonce must follow created"))?;
    let (nonce, rest) = quoted(rest, "nonce")?;
    let rest = rest
        .strip_prefix(';')
        .ok_or(SignatureError::Malformed("keyid must follow nonce"))?;
    let (keyid, rest) = quoted(rest, "keyid")?;
    let rest = rest
        .strip_prefix(r#";alg="ed25519""#)
        .ok_or(SignatureError::Malformed(
            r#"alg must be "ed25519" and follow keyid"#,
        ))?;
    let rest = rest.strip_prefix(';').ok_or(SignatureError::Malformed(
        "tag (the ledger's network id) must follow alg",
    ))?;
    let (tag, rest) = quoted(rest, "tag")?;
    if !rest.is_empty() {
        return Err(SignatureError::Malformed("tag must be the last parameter"));
    }
    if tag.is_empty() || tag.len() > TAG_BYTES_MAX || !tag.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SignatureError::Malformed(
            "tag must be 1-128 visible ASCII characters",
        ));
    }
    let nonce_ok = !nonce.is_empty()
        && nonce.len() <= NONCE_BYTES_MAX
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !nonce_ok {
        return Err(SignatureError::Malformed(
            "nonce must be 1-64 characters of A-Z, a-z, 0-9, '_', '-'",
        ));
    }
    Ok(Params {
        created,
        nonce,
        keyid,
        tag,
    })
}

/// The `created` and nonce of a recorded `Signature-Input` value of this
/// shape (`None` for any other).
pub fn recorded_nonce(signature_input: &str) -> Option<(u64, String)> {
    let params = parse_params(signature_input.strip_prefix("sig1=")?).ok()?;
    Some((params.created, params.nonce.to_owned()))
}

/// A request whose signature headers passed every check but the signature
/// itself: what the verifier stage hands to a (batched) signature check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    pub signer: Did,
    pub created: u64,
    pub nonce: String,
    /// The signature base (RFC 9421 §2.5): the signed message.
    pub base: String,
    pub signature: [u8; 64],
    digest_matches: bool,
}

impl Prepared {
    /// Checks the signature alone (not in a batch), then [`Prepared::finish`].
    pub fn check(self) -> Result<Verified, SignatureError> {
        let valid = self.signer.verify(
            self.base.as_bytes(),
            &Signature::from_bytes(&self.signature),
        );
        self.finish(valid)
    }

    /// The verdict once the signature over [`Prepared::base`] was checked.
    /// The digest is judged after the signature: a valid signature over a
    /// digest that does not match the body means the body was changed.
    pub fn finish(self, signature_valid: bool) -> Result<Verified, SignatureError> {
        if !signature_valid {
            return Err(SignatureError::Invalid);
        }
        if !self.digest_matches {
            return Err(SignatureError::DigestMismatch);
        }
        Ok(Verified {
            signer: self.signer,
            created: self.created,
            nonce: self.nonce,
        })
    }
}

/// Checks a request's signature headers against its method, path and body,
/// `now` (the node's clock) and `network` (the node's network id):
/// everything except the signature itself, which the caller checks over
/// [`Prepared::base`] (alone or in a batch). Nonce reuse is also the
/// caller's check (it needs memory).
pub fn prepare(
    method: &str,
    path: &str,
    body: &[u8],
    headers: Option<&SignatureHeaders>,
    digest_present: bool,
    now: u64,
    network: &str,
) -> Result<Prepared, SignatureError> {
    prepare_at(
        method,
        path,
        body,
        headers,
        digest_present,
        Some(now),
        network,
    )
}

/// Seconds a journaled request's `created` may lie from the entry's time
/// beyond the window: the writer stamps the entry a moment after the
/// handler checked the window.
pub const RECORDED_SLACK_S: u64 = 60;

/// Verifies a request as the journal of the ledger `network` recorded it,
/// accepted at `time`: the same checks as on arrival, with the window taken
/// around `time`.
pub fn verify_recorded(
    method: &str,
    path: &str,
    body: &[u8],
    headers: &SignatureHeaders,
    time: u64,
    network: &str,
) -> Result<Verified, SignatureError> {
    let prepared = prepare_at(method, path, body, Some(headers), true, None, network)?;
    if time.abs_diff(prepared.created) > SIGNATURE_WINDOW_S + RECORDED_SLACK_S {
        return Err(SignatureError::Expired);
    }
    prepared.check()
}

fn prepare_at(
    method: &str,
    path: &str,
    body: &[u8],
    headers: Option<&SignatureHeaders>,
    digest_present: bool,
    now: Option<u64>,
    network: &str,
) -> Result<Prepared, SignatureError> {
    let headers = headers.ok_or(SignatureError::Missing)?;
    if !digest_present {
        return Err(SignatureError::DigestMissing);
    }
    if [
        &headers.content_digest,
        &headers.signature_input,
        &headers.signature,
    ]
    .iter()
    .any(|h| h.len() > HEADER_BYTES_MAX)
    {
        return Err(SignatureError::Malformed(
            "a signature header is longer than 1024 bytes",
        ));
    }
    let params = headers
        .signature_input
        .strip_prefix("sig1=")
        .ok_or(SignatureError::Malformed(
            "Signature-Input must hold one signature labelled sig1",
        ))?;
    let parsed = parse_params(params)?;
    let signer: Did = parsed
        .keyid
        .parse()
        .map_err(|_| SignatureError::Malformed("keyid must be an Ed25519 did:key"))?;
    let encoded = headers
        .signature
        .strip_prefix("sig1=:")
        .and_then(|rest| rest.strip_suffix(':'))
        .ok_or(SignatureError::Malformed(
            "Signature must be sig1=:<base64>:",
        ))?;
    let signature: [u8; 64] = STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(SignatureError::Malformed(
            "the signature is not 64 bytes of base64",
        ))?;
    if now.is_some_and(|now| now.abs_diff(parsed.created) > SIGNATURE_WINDOW_S) {
        return Err(SignatureError::Expired);
    }
    if parsed.tag != network {
        return Err(SignatureError::WrongNetwork);
    }
    Ok(Prepared {
        signer,
        created: parsed.created,
        nonce: parsed.nonce.to_owned(),
        base: signature_base(method, path, &headers.content_digest, params),
        signature,
        digest_matches: headers.content_digest == content_digest(body),
    })
}

/// [`prepare`] and the signature check in one call.
pub fn verify(
    method: &str,
    path: &str,
    body: &[u8],
    headers: Option<&SignatureHeaders>,
    digest_present: bool,
    now: u64,
    network: &str,
) -> Result<Verified, SignatureError> {
    prepare(method, path, body, headers, digest_present, now, network)?.check()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    const NETWORK: &str = "agentrail:agentrail.log/0011223344556677";

    fn params(created: u64, nonce: &str) -> SignParams<'_> {
        SignParams {
            created,
            nonce,
            network: NETWORK,
        }
    }

    fn check(headers: &SignatureHeaders, body: &[u8], now: u64) -> Result<Verified, &'static str> {
        verify(
            "POST",
            "/v1/commands",
            body,
            Some(headers),
            true,
            now,
            NETWORK,
        )
        .map_err(|e| e.code())
    }

    #[test]
    fn signed_requests_verify_and_every_tampering_has_its_code() {
        let body = br#"{"type":"transfer"}"#;
        let headers = sign(&key(1), "POST", "/v1/commands", body, params(1_000, "n1"));
        let verified = check(&headers, body, 1_010).unwrap();
        assert_eq!(
            verified.signer,
            Did::from_verifying_key(&key(1).verifying_key())
        );
        assert_eq!(verified.nonce, "n1");

        assert_eq!(
            check(&headers, br#"{"type":"transfel"}"#, 1_010),
            Err("digest_mismatch")
        );
        assert_eq!(
            check(&headers, body, 1_000 + SIGNATURE_WINDOW_S + 1),
            Err("signature_expired")
        );
        assert_eq!(
            verify(
                "POST",
                "/v1/other",
                body,
                Some(&headers),
                true,
                1_010,
                NETWORK
            )
            .map_err(|e| e.code()),
            Err("signature_invalid")
        );
        assert_eq!(
            verify("POST", "/v1/commands", body, None, true, 1_010, NETWORK).map_err(|e| e.code()),
            Err("signature_missing")
        );
        assert_eq!(
            verify(
                "POST",
                "/v1/commands",
                body,
                Some(&headers),
                false,
                1_010,
                NETWORK
            )
            .map_err(|e| e.code()),
            Err("digest_missing")
        );

        // A signature by another key, presented under the first key's id.
        let other = sign(&key(2), "POST", "/v1/commands", body, params(1_000, "n1"));
        let forged = SignatureHeaders {
            signature: other.signature,
            ..headers.clone()
        };
        assert_eq!(check(&forged, body, 1_010), Err("signature_invalid"));

        // A digest header changed to match a tampered body breaks the signature.
        let tampered = br#"{"type":"transfel"}"#;
        let redigested = SignatureHeaders {
            content_digest: content_digest(tampered),
            ..headers.clone()
        };
        assert_eq!(
            check(&redigested, tampered, 1_010),
            Err("signature_invalid")
        );

        for (input, why) in [
            (
                r#"sig2=("@method" "@path" "content-digest");created=1;nonce="a";keyid="x";alg="ed25519";tag="t""#,
                "label",
            ),
            (
                r#"sig1=("@method" "@path");created=1;nonce="a";keyid="x";alg="ed25519";tag="t""#,
                "components",
            ),
            (
                r#"sig1=("@method" "@path" "content-digest");nonce="a";created=1;keyid="x";alg="ed25519";tag="t""#,
                "order",
            ),
            (
                r#"sig1=("@method" "@path" "content-digest");created=1;nonce="a b";keyid="x";alg="ed25519";tag="t""#,
                "nonce",
            ),
            (
                r#"sig1=("@method" "@path" "content-digest");created=1;nonce="a";keyid="x";alg="rsa";tag="t""#,
                "alg",
            ),
            (
                r#"sig1=("@method" "@path" "content-digest");created=1;nonce="a";keyid="x";alg="ed25519""#,
                "no tag",
            ),
            (
                r#"sig1=("@method" "@path" "content-digest");created=1;nonce="a";keyid="x";alg="ed25519";tag="a b""#,
                "tag",
            ),
            (
                r#"sig1=("@method" "@path" "content-digest");created=1;nonce="a";keyid="x";alg="ed25519";tag="t";x="y""#,
                "tag last",
            ),
        ] {
            let bad = SignatureHeaders {
                signature_input: input.to_owned(),
                ..headers.clone()
            };
            assert_eq!(
                check(&bad, body, 1_010),
                Err("signature_malformed"),
                "{why}"
            );
        }
    }

    #[test]
    fn a_request_signed_for_one_ledger_is_refused_by_another() {
        let body = br#"{"type":"transfer"}"#;
        let headers = sign(&key(1), "POST", "/v1/commands", body, params(1_000, "n1"));
        assert!(check(&headers, body, 1_010).is_ok());
        let elsewhere = verify(
            "POST",
            "/v1/commands",
            body,
            Some(&headers),
            true,
            1_010,
            "agentrail:agentrail.log/8899aabbccddeeff",
        );
        assert_eq!(
            elsewhere.map_err(|e| e.code()),
            Err("signature_wrong_network")
        );
        // Rewriting the tag to the other ledger's breaks the signature.
        let retagged = SignatureHeaders {
            signature_input: headers
                .signature_input
                .replace(NETWORK, "agentrail:agentrail.log/8899aabbccddeeff"),
            ..headers.clone()
        };
        let moved = verify(
            "POST",
            "/v1/commands",
            body,
            Some(&retagged),
            true,
            1_010,
            "agentrail:agentrail.log/8899aabbccddeeff",
        );
        assert_eq!(moved.map_err(|e| e.code()), Err("signature_invalid"));
    }

    /// A known answer: the seed-1 key signing a
    /// transfer body for one network at one time; the base and the headers
    /// are exactly these bytes.
    #[test]
    fn known_answer() {
        let body = br#"{"type":"transfer"}"#;
        let headers = sign(
            &key(1),
            "POST",
            "/v1/commands",
            body,
            params(1_767_225_600, "n1"),
        );
        let keyid = Did::from_verifying_key(&key(1).verifying_key());
        assert_eq!(
            headers.signature_input,
            format!(
                r#"sig1=("@method" "@path" "content-digest");created=1767225600;nonce="n1";keyid="{keyid}";alg="ed25519";tag="{NETWORK}""#
            )
        );
        assert_eq!(
            headers.content_digest,
            "sha-256=:ijCoVIrRwWGqTVQvfqXPRF60TAUCKNmpB5Bt2Xyvtl8=:"
        );
        let prepared = prepare(
            "POST",
            "/v1/commands",
            body,
            Some(&headers),
            true,
            1_767_225_600,
            NETWORK,
        )
        .unwrap();
        assert_eq!(
            prepared.base,
            format!(
                "\"@method\": POST\n\"@path\": /v1/commands\n\"content-digest\": {}\n\"@signature-params\": {}",
                headers.content_digest,
                &headers.signature_input["sig1=".len()..]
            )
        );
    }
}
