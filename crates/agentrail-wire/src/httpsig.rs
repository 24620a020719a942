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
//! That is the shape this module signs. The verifier takes what RFC 9421
//! allows a signer to choose: any label (PyPI's `http-message-signatures`
//! writes `pyhms`, npm's `sig`), the covered components in any order, the
//! parameters in any order, parameters it does not know (ignored, but
//! signed), and `expires` (enforced when present). It requires: the
//! components `"@method"`, `"@path"` and `"content-digest"` and no others;
//! `created` within the window; a `nonce`; `keyid` an Ed25519 did:key;
//! `alg`, when present, `"ed25519"`; and `tag`, the ledger's network id.
//! When `Signature-Input` holds several signatures, the one tagged with
//! the node's network id is checked (else the first). The headers are
//! parsed as RFC 8941 structured fields (`sfv`), and the
//! `"@signature-params"` line of the base is the signature's inner list
//! serialized again, as RFC 9421 §2.3 defines it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey};
use sfv::{BareItem, Dictionary, FieldType, InnerList, ListEntry, Parser, Version};
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
/// Most signatures one `Signature-Input` may hold.
pub const SIGNATURES_MAX: usize = 8;
/// The components a signature must cover (in any order), and no others.
pub const REQUIRED_COMPONENTS: [&str; 3] = ["@method", "@path", "content-digest"];
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

/// The signature base (RFC 9421 §2.5) of a parsed signature: its
/// components in its order, then its parameters.
fn base_of(params: &Params, method: &str, path: &str, digest: &str) -> String {
    let mut base = String::new();
    for component in &params.components {
        let value = match component.as_str() {
            "@method" => method,
            "@path" => path,
            _ => digest,
        };
        base.push_str(&format!("\"{component}\": {value}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {}", params.serialized));
    base
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

/// One signature of a `Signature-Input` value, parsed.
struct Params {
    label: String,
    /// The covered components, in the signer's order.
    components: Vec<String>,
    created: u64,
    expires: Option<u64>,
    nonce: String,
    keyid: String,
    tag: String,
    /// The inner list serialized again: the `"@signature-params"` value.
    serialized: String,
}

fn malformed(reason: &'static str) -> SignatureError {
    SignatureError::Malformed(reason)
}

/// Parses a `Signature-Input` value and picks its signature for `network`:
/// the one tagged with it, else the first.
fn parse_params(signature_input: &str, network: Option<&str>) -> Result<Params, SignatureError> {
    let dictionary = canonical_dictionary(
        signature_input,
        "Signature-Input is not an RFC 8941 dictionary",
        "Signature-Input must be written as RFC 8941 serializes it (no repeated keys or parameters, single spaces)",
    )?;
    if dictionary.is_empty() || dictionary.len() > SIGNATURES_MAX {
        return Err(malformed("Signature-Input must hold 1 to 8 signatures"));
    }
    let tagged = |entry: &ListEntry| match entry {
        ListEntry::InnerList(list) => {
            list.params
                .get("tag")
                .and_then(BareItem::as_string)
                .map(|t| t.as_str())
                == network
        }
        ListEntry::Item(_) => false,
    };
    let (label, entry) = dictionary
        .iter()
        .find(|(_, entry)| network.is_some() && tagged(entry))
        .or_else(|| dictionary.iter().next())
        .expect("not empty");
    let ListEntry::InnerList(list) = entry else {
        return Err(malformed(
            "a Signature-Input member must be an inner list of covered components",
        ));
    };
    // Signed for another ledger: say so before anything else is judged.
    let tag = list.params.get("tag").and_then(BareItem::as_string);
    if let (Some(network), Some(tag)) = (network, tag)
        && tag.as_str() != network
    {
        return Err(SignatureError::WrongNetwork);
    }
    let components = components(list)?;
    let mut created = None;
    let mut expires = None;
    let mut nonce = None;
    let mut keyid = None;
    let mut tag = None;
    for (name, value) in &list.params {
        let string = || {
            value
                .as_string()
                .map(|s| s.as_str().to_owned())
                .ok_or(malformed("nonce, keyid, alg and tag must be strings"))
        };
        let integer = || {
            value
                .as_integer()
                .and_then(|i| u64::try_from(i64::from(i)).ok())
                .ok_or(malformed(
                    "created and expires must be non-negative integers",
                ))
        };
        match name.as_str() {
            "created" => created = Some(integer()?),
            "expires" => expires = Some(integer()?),
            "nonce" => nonce = Some(string()?),
            "keyid" => keyid = Some(string()?),
            "alg" if string()? != "ed25519" => {
                return Err(malformed(r#"alg must be "ed25519" when present"#));
            }
            "tag" => tag = Some(string()?),
            // Signed, but not ours to interpret (RFC 9421 §2.3).
            _ => {}
        }
    }
    let created = created.ok_or(malformed("created is required"))?;
    let nonce = nonce.ok_or(malformed("nonce is required"))?;
    let keyid = keyid.ok_or(malformed("keyid is required"))?;
    let tag = tag.ok_or(malformed(
        "tag is required: the ledger's network id (in /v1/health)",
    ))?;
    if tag.is_empty() || tag.len() > TAG_BYTES_MAX || !tag.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(malformed("tag must be 1-128 visible ASCII characters"));
    }
    let nonce_ok = !nonce.is_empty()
        && nonce.len() <= NONCE_BYTES_MAX
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !nonce_ok {
        return Err(malformed(
            "nonce must be 1-64 characters of A-Z, a-z, 0-9, '_', '-'",
        ));
    }
    let serialized = vec![ListEntry::InnerList(list.clone())]
        .serialize()
        .ok_or(malformed("the signature's parameters cannot be serialized"))?;
    Ok(Params {
        label: label.as_str().to_owned(),
        components,
        created,
        expires,
        nonce,
        keyid,
        tag,
        serialized,
    })
}

/// The covered components: exactly the required ones, each once, as plain
/// strings, in the signer's order.
fn components(list: &InnerList) -> Result<Vec<String>, SignatureError> {
    const WRONG: &str = r#"the covered components must be "@method", "@path" and "content-digest" (in any order), and no others"#;
    let mut components = Vec::with_capacity(list.items.len());
    for item in &list.items {
        let name = item
            .bare_item
            .as_string()
            .filter(|_| item.params.is_empty())
            .map(|s| s.as_str())
            .ok_or(malformed(WRONG))?;
        if !REQUIRED_COMPONENTS.contains(&name) || components.iter().any(|c| c == name) {
            return Err(malformed(WRONG));
        }
        components.push(name.to_owned());
    }
    if components.len() != REQUIRED_COMPONENTS.len() {
        return Err(malformed(WRONG));
    }
    Ok(components)
}

/// The `created` and nonce of a recorded `Signature-Input` value (its
/// signature for `network`); `None` when it does not parse.
pub fn recorded_nonce(signature_input: &str, network: &str) -> Option<(u64, String)> {
    let params = parse_params(signature_input, Some(network)).ok()?;
    Some((params.created, params.nonce))
}

/// An RFC 8941 dictionary that is written exactly as RFC 8941 serializes
/// it. A value the parser would read the same way though written otherwise
/// (a repeated key, base64 without its padding, other spacing) is refused:
/// the journal records the headers as received, and every verifier must
/// rebuild the very bytes that were signed from them.
fn canonical_dictionary(
    text: &str,
    not_dictionary: &'static str,
    not_canonical: &'static str,
) -> Result<Dictionary, SignatureError> {
    let dictionary: Dictionary = Parser::new(text)
        .with_version(Version::Rfc8941)
        .parse()
        .map_err(|_| malformed(not_dictionary))?;
    if dictionary.serialize().as_deref() != Some(text) {
        return Err(malformed(not_canonical));
    }
    Ok(dictionary)
}

/// The signature of `label` in a `Signature` value: 64 bytes.
fn signature_of(signature: &str, label: &str) -> Result<[u8; 64], SignatureError> {
    let dictionary = canonical_dictionary(
        signature,
        "Signature is not an RFC 8941 dictionary",
        "Signature must be written as RFC 8941 serializes it (base64 with its padding)",
    )?;
    let entry = dictionary.get(label).ok_or(malformed(
        "Signature holds no signature with the label of Signature-Input",
    ))?;
    match entry {
        ListEntry::Item(item) => item
            .bare_item
            .as_byte_sequence()
            .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
            .ok_or(malformed("the signature must be 64 bytes, as :<base64>:")),
        ListEntry::InnerList(_) => Err(malformed("the signature must be 64 bytes, as :<base64>:")),
    }
}

/// A request whose signature headers passed every check but the signature
/// itself: what the verifier stage hands to a (batched) signature check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    pub signer: Did,
    pub created: u64,
    /// The signature's `expires`, when it has one.
    pub expires: Option<u64>,
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
    let expired = prepared
        .expires
        .is_some_and(|expires| time >= expires.saturating_add(RECORDED_SLACK_S));
    if expired || time.abs_diff(prepared.created) > SIGNATURE_WINDOW_S + RECORDED_SLACK_S {
        return Err(SignatureError::Expired);
    }
    prepared.check()
}

/// Whether a request the writer records at `time` keeps to the window
/// [`verify_recorded`] allows (its signature was checked on arrival): the
/// writer refuses one that does not (it waited too long in the queue), so
/// that every journaled request verifies offline. Cheap: the times are
/// read from the one signature's parameters, or parsed when there are
/// several.
pub fn recorded_in_window(signature_input: &str, time: u64, network: &str) -> bool {
    fn number_after(text: &str, key: &str) -> Option<Option<u64>> {
        let mut found = text.match_indices(key);
        let Some((at, _)) = found.next() else {
            return Some(None);
        };
        if found.next().is_some() {
            return None;
        }
        let digits: &str = &text[at + key.len()..];
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        digits[..end].parse().ok().map(Some)
    }
    let quick = number_after(signature_input, ";created=")
        .and_then(|created| Some((created?, number_after(signature_input, ";expires=")?)));
    let (created, expires) = match quick {
        Some(times) => times,
        None => match parse_params(signature_input, Some(network)) {
            Ok(params) => (params.created, params.expires),
            Err(_) => return false,
        },
    };
    let expired = expires.is_some_and(|expires| time >= expires.saturating_add(RECORDED_SLACK_S));
    !expired && time.abs_diff(created) <= SIGNATURE_WINDOW_S + RECORDED_SLACK_S
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
    let parsed = parse_params(&headers.signature_input, Some(network))?;
    let signer: Did = parsed
        .keyid
        .parse()
        .map_err(|_| malformed("keyid must be an Ed25519 did:key"))?;
    let signature = signature_of(&headers.signature, &parsed.label)?;
    if let Some(now) = now {
        let outside = now.abs_diff(parsed.created) > SIGNATURE_WINDOW_S;
        if outside || parsed.expires.is_some_and(|expires| now >= expires) {
            return Err(SignatureError::Expired);
        }
    }
    if parsed.tag != network {
        return Err(SignatureError::WrongNetwork);
    }
    Ok(Prepared {
        signer,
        created: parsed.created,
        expires: parsed.expires,
        base: base_of(&parsed, method, path, &headers.content_digest),
        nonce: parsed.nonce,
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

    /// Signs `components` (in that order) and `params` under `label`, as
    /// any RFC 9421 library may.
    fn sign_as(label: &str, components: &[&str], params: &str, body: &[u8]) -> SignatureHeaders {
        let digest = content_digest(body);
        let mut base = String::new();
        for component in components {
            let value = match *component {
                "@method" => "POST".to_owned(),
                "@path" => "/v1/commands".to_owned(),
                "content-digest" => digest.clone(),
                other => format!("value of {other}"),
            };
            base.push_str(&format!("\"{component}\": {value}\n"));
        }
        let list = components
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(" ");
        let inner = format!("({list}){params}");
        base.push_str(&format!("\"@signature-params\": {inner}"));
        let signature = key(1).sign(base.as_bytes());
        SignatureHeaders {
            content_digest: digest,
            signature_input: format!("{label}={inner}"),
            signature: format!("{label}=:{}:", STANDARD.encode(signature.to_bytes())),
        }
    }

    #[test]
    fn the_writer_keeps_only_requests_whose_receipts_verify_offline() {
        let keyid = Did::from_verifying_key(&key(1).verifying_key());
        let body = br#"{"type":"transfer"}"#;
        let signed = sign(&key(1), "POST", "/v1/commands", body, params(1_000, "n1"));
        let window = SIGNATURE_WINDOW_S + RECORDED_SLACK_S;
        for (time, kept) in [
            (1_000 + window, true),
            (1_000 + window + 1, false),
            (1_000 - window, true),
        ] {
            assert_eq!(
                recorded_in_window(&signed.signature_input, time, NETWORK),
                kept
            );
            let offline = verify_recorded("POST", "/v1/commands", body, &signed, time, NETWORK);
            assert_eq!(
                offline.is_ok(),
                kept,
                "the same window as offline at {time}"
            );
        }
        let expiring = sign_as(
            "sig1",
            &["@method", "@path", "content-digest"],
            &format!(r#";created=1000;expires=1005;nonce="n1";keyid="{keyid}";tag="{NETWORK}""#),
            body,
        );
        assert!(recorded_in_window(
            &expiring.signature_input,
            1_064,
            NETWORK
        ));
        assert!(!recorded_in_window(
            &expiring.signature_input,
            1_065,
            NETWORK
        ));
    }

    #[test]
    fn any_label_order_and_unknown_parameter_rfc_9421_allows_is_accepted() {
        let body = br#"{"type":"transfer"}"#;
        let keyid = Did::from_verifying_key(&key(1).verifying_key());
        let all = ["content-digest", "@method", "@path"];
        let accepted = [
            (
                "pyhms",
                all.as_slice(),
                format!(
                    r#";created=1000;keyid="{keyid}";alg="ed25519";nonce="n1";tag="{NETWORK}""#
                ),
            ),
            (
                "sig",
                ["@path", "@method", "content-digest"].as_slice(),
                format!(r#";tag="{NETWORK}";nonce="n1";created=1000;keyid="{keyid}""#),
            ),
            (
                "sig1",
                all.as_slice(),
                format!(
                    r#";created=1000;expires=1100;nonce="n1";keyid="{keyid}";tag="{NETWORK}";x-vendor="y";n=7"#
                ),
            ),
        ];
        for (label, components, params) in &accepted {
            let headers = sign_as(label, components, params, body);
            let verified = check(&headers, body, 1_010)
                .unwrap_or_else(|code| panic!("{label}{params}: {code}"));
            assert_eq!((verified.signer, verified.nonce.as_str()), (keyid, "n1"));
            assert_eq!(
                recorded_nonce(&headers.signature_input, NETWORK),
                Some((1_000, "n1".to_owned()))
            );
        }
        // Two signatures: the one for this ledger is checked.
        let ours = sign_as(
            "b",
            &all,
            &format!(r#";created=1000;nonce="n1";keyid="{keyid}";tag="{NETWORK}""#),
            body,
        );
        let theirs = sign_as(
            "a",
            &all,
            &format!(r#";created=1000;nonce="n1";keyid="{keyid}";tag="agentrail:other""#),
            body,
        );
        let both = SignatureHeaders {
            signature_input: format!("{}, {}", theirs.signature_input, ours.signature_input),
            signature: format!("{}, {}", theirs.signature, ours.signature),
            ..ours.clone()
        };
        assert!(check(&both, body, 1_010).is_ok());

        let refused = [
            (
                "sig1",
                ["@method", "@path"].as_slice(),
                format!(r#";created=1000;nonce="n1";keyid="{keyid}";tag="{NETWORK}""#),
                "signature_malformed",
            ),
            (
                "sig1",
                ["@method", "@path", "content-digest", "@authority"].as_slice(),
                format!(r#";created=1000;nonce="n1";keyid="{keyid}";tag="{NETWORK}""#),
                "signature_malformed",
            ),
            (
                "sig1",
                ["@method", "@path", "@path"].as_slice(),
                format!(r#";created=1000;nonce="n1";keyid="{keyid}";tag="{NETWORK}""#),
                "signature_malformed",
            ),
            (
                "sig1",
                all.as_slice(),
                format!(
                    r#";created=1000;nonce="n1";keyid="{keyid}";alg="rsa-v1_5-sha256";tag="{NETWORK}""#
                ),
                "signature_malformed",
            ),
            (
                "sig1",
                all.as_slice(),
                format!(r#";created=1000;nonce="n1";keyid="{keyid}""#),
                "signature_malformed",
            ),
            (
                "sig1",
                all.as_slice(),
                format!(r#";created=1000;keyid="{keyid}";tag="{NETWORK}""#),
                "signature_malformed",
            ),
            (
                "sig1",
                all.as_slice(),
                format!(r#";nonce="n1";keyid="{keyid}";tag="{NETWORK}""#),
                "signature_malformed",
            ),
            (
                "sig1",
                all.as_slice(),
                format!(r#";created=1000;nonce="a b";keyid="{keyid}";tag="{NETWORK}""#),
                "signature_malformed",
            ),
            (
                "sig1",
                all.as_slice(),
                format!(r#";created=1000;nonce="n1";keyid="x";tag="{NETWORK}""#),
                "signature_malformed",
            ),
            (
                "sig1",
                all.as_slice(),
                format!(r#";created="1000";nonce="n1";keyid="{keyid}";tag="{NETWORK}""#),
                "signature_malformed",
            ),
            (
                "sig1",
                all.as_slice(),
                format!(r#";created=1000;expires=1005;nonce="n1";keyid="{keyid}";tag="{NETWORK}""#),
                "signature_expired",
            ),
            (
                "sig1",
                all.as_slice(),
                format!(r#";created=1000;nonce="n1";keyid="{keyid}";tag="agentrail:other""#),
                "signature_wrong_network",
            ),
        ];
        for (label, components, params, code) in &refused {
            let headers = sign_as(label, components, params, body);
            assert_eq!(
                check(&headers, body, 1_010).map(|_| ()),
                Err(*code),
                "{components:?}{params}"
            );
        }
        // Not structured fields, or a Signature without the input's label.
        let good = sign_as(
            "sig1",
            &all,
            &format!(r#";created=1000;nonce="n1";keyid="{keyid}";tag="{NETWORK}""#),
            body,
        );
        for bad in [
            SignatureHeaders {
                signature_input: "sig1=(\"@method\"".into(),
                ..good.clone()
            },
            SignatureHeaders {
                signature_input: "".into(),
                ..good.clone()
            },
            SignatureHeaders {
                signature: good.signature.replace("sig1=", "other="),
                ..good.clone()
            },
            SignatureHeaders {
                signature: "sig1=:AAAA:".into(),
                ..good.clone()
            },
            SignatureHeaders {
                signature: "sig1=\"text\"".into(),
                ..good.clone()
            },
        ] {
            assert_eq!(
                check(&bad, body, 1_010).map(|_| ()),
                Err("signature_malformed"),
                "{bad:?}"
            );
        }
        // Written otherwise than RFC 8941 serializes it, though it would
        // parse to the same: a repeated parameter, base64 without padding,
        // other spacing. Refused, so every verifier rebuilds the same bytes.
        let repeated = SignatureHeaders {
            signature_input: format!(r#"{};tag="{NETWORK}""#, good.signature_input),
            ..good.clone()
        };
        let unpadded = SignatureHeaders {
            signature: good.signature.replace("==:", ":"),
            ..good.clone()
        };
        let spaced = SignatureHeaders {
            signature_input: good.signature_input.replace("\" \"", "\"  \""),
            ..good.clone()
        };
        assert!(good.signature.ends_with("==:"));
        for bad in [repeated, unpadded, spaced] {
            assert_eq!(
                check(&bad, body, 1_010).map(|_| ()),
                Err("signature_malformed"),
                "{bad:?}"
            );
        }
        // A signed unknown parameter cannot be changed.
        let extended = sign_as(
            "sig1",
            &all,
            &format!(r#";created=1000;nonce="n1";keyid="{keyid}";tag="{NETWORK}";x="1""#),
            body,
        );
        let changed = SignatureHeaders {
            signature_input: extended.signature_input.replace(r#"x="1""#, r#"x="2""#),
            ..extended
        };
        assert_eq!(
            check(&changed, body, 1_010).map(|_| ()),
            Err("signature_invalid")
        );
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
