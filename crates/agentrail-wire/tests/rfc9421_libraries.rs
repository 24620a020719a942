//! Requests signed by RFC 9421 libraries nobody here wrote (PyPI's and
//! npm's `http-message-signatures`, with their default labels and parameter
//! orders), recorded by `tests/interop/record_rfc9421_*`: the verifier
//! accepts them, and refuses them once changed, elsewhere or too late.

use agentrail_core::Did;
use agentrail_wire::httpsig::{self, SignatureHeaders};
use ed25519_dalek::SigningKey;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    library: String,
    seed_hex: String,
    keyid: String,
    network: String,
    created: u64,
    method: String,
    path: String,
    body: String,
    content_digest: String,
    signature_input: String,
    signature: String,
}

fn fixtures() -> Vec<Fixture> {
    [
        include_str!("fixtures/rfc9421_pyhms.json"),
        include_str!("fixtures/rfc9421_npm.json"),
    ]
    .iter()
    .map(|text| serde_json::from_str(text).expect("a fixture"))
    .collect()
}

fn verify(
    fixture: &Fixture,
    headers: &SignatureHeaders,
    body: &[u8],
    now: u64,
    network: &str,
) -> Result<httpsig::Verified, &'static str> {
    httpsig::verify(
        &fixture.method,
        &fixture.path,
        body,
        Some(headers),
        true,
        now,
        network,
    )
    .map_err(|e| e.code())
}

#[test]
fn requests_signed_by_the_python_and_npm_libraries_verify() {
    for fixture in fixtures() {
        let seed: [u8; 32] = hex::decode(&fixture.seed_hex).unwrap().try_into().unwrap();
        let did = Did::from_verifying_key(&SigningKey::from_bytes(&seed).verifying_key());
        assert_eq!(
            did.to_string(),
            fixture.keyid,
            "{}: the same did:key",
            fixture.library
        );
        let headers = SignatureHeaders {
            content_digest: fixture.content_digest.clone(),
            signature_input: fixture.signature_input.clone(),
            signature: fixture.signature.clone(),
        };
        let body = fixture.body.as_bytes();
        let now = fixture.created + 10;
        let verified = verify(&fixture, &headers, body, now, &fixture.network)
            .unwrap_or_else(|code| panic!("{}: {code}", fixture.library));
        assert_eq!(verified.signer, did, "{}", fixture.library);
        assert_eq!(verified.created, fixture.created);
        assert_eq!(
            httpsig::recorded_nonce(&fixture.signature_input, &fixture.network),
            Some((fixture.created, verified.nonce.clone()))
        );
        assert_eq!(
            httpsig::verify_recorded(
                &fixture.method,
                &fixture.path,
                body,
                &headers,
                now,
                &fixture.network
            )
            .map(|v| v.signer),
            Ok(did)
        );

        let changed = fixture.body.replace("1000000", "9000000");
        assert_eq!(
            verify(
                &fixture,
                &headers,
                changed.as_bytes(),
                now,
                &fixture.network
            )
            .map(|_| ()),
            Err("digest_mismatch")
        );
        assert_eq!(
            verify(&fixture, &headers, body, now, "agentrail:elsewhere").map(|_| ()),
            Err("signature_wrong_network")
        );
        assert_eq!(
            verify(
                &fixture,
                &headers,
                body,
                fixture.created + httpsig::SIGNATURE_WINDOW_S + 1,
                &fixture.network
            )
            .map(|_| ()),
            Err("signature_expired")
        );
        let moved = httpsig::verify(
            "POST",
            "/v1/faucet",
            body,
            Some(&headers),
            true,
            now,
            &fixture.network,
        );
        assert_eq!(
            moved.map(|_| ()).map_err(|e| e.code()),
            Err("signature_invalid")
        );
    }
}

#[test]
fn the_npm_library_s_default_expiry_is_enforced() {
    let fixture = fixtures().pop().unwrap();
    assert!(fixture.signature_input.contains("expires="));
    let headers = SignatureHeaders {
        content_digest: fixture.content_digest.clone(),
        signature_input: fixture.signature_input.clone(),
        signature: fixture.signature.clone(),
    };
    // npm writes expires = created + 300: at that second it no longer holds.
    let at = fixture.created + 300;
    assert_eq!(
        verify(
            &fixture,
            &headers,
            fixture.body.as_bytes(),
            at,
            &fixture.network
        )
        .map(|_| ()),
        Err("signature_expired")
    );
    assert!(
        verify(
            &fixture,
            &headers,
            fixture.body.as_bytes(),
            at - 1,
            &fixture.network
        )
        .is_ok()
    );
}
