//! The known-answer vectors of `docs/vectors.json`: every signing byte
//! string, identifier and hash a client must reproduce, computed here by
//! the implementation and compared with the file, so the file cannot drift
//! from the code. An SDK in another language checks itself against the
//! same file. `AGENTRAIL_WRITE_VECTORS=1` rewrites it (after a deliberate
//! change of the wire contract).

use agentrail_core::channel::{ChannelId, VoucherTerms, network_hash, network_id};
use agentrail_core::grant::{GRANT_VERSION, Grant, Limits, Role};
use agentrail_core::{Amount, Did, SignedCommand, Timestamp};
use agentrail_log::merkle::{self, MemoryTree};
use agentrail_sim::kit;
use agentrail_wire::httpsig;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

const LOG_ORIGIN: &str = "agentrail.example/log";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn vectors() -> Value {
    let (principal, agent, payee) = (key(1), key(2), key(3));
    let did = |k: &SigningKey| Did::from_verifying_key(&k.verifying_key());
    let keys: Vec<Value> = [&principal, &agent, &payee]
        .iter()
        .map(|k| {
            json!({
                "seed_hex": hex::encode(k.to_bytes()),
                "public_key_hex": hex::encode(k.verifying_key().to_bytes()),
                "did": did(k).to_string(),
            })
        })
        .collect();
    let network = network_id(LOG_ORIGIN);

    // A grant: the principal gives the agent a mandate.
    let grant = Grant {
        version: GRANT_VERSION,
        issuer: did(&principal),
        subject: did(&agent),
        role: Role::Agent,
        limits: Limits {
            max_per_payment: Amount::from_atomic(5_000_000),
            daily_budget: Amount::from_atomic(20_000_000),
            total_budget: Some(Amount::from_atomic(100_000_000)),
            allowed_payees: Some(vec![did(&payee)]),
            denied_payees: Vec::new(),
            allowed_categories: Some(vec!["compute".into()]),
            approval_threshold: Some(Amount::from_atomic(2_000_000)),
            daily_approval_threshold: None,
        },
        not_before: Timestamp(1_767_225_600),
        expires_at: Timestamp(1_767_312_000),
        nonce: "vector-grant-1".into(),
    }
    .sign(&principal)
    .unwrap();

    // A command, its HTTP body, and the signed request that carries it.
    let command = kit::transfer(
        did(&agent),
        did(&payee),
        Amount::from_atomic(1_500_000),
        "vector-1",
    );
    let body = serde_json::to_vec(&command).unwrap();
    let created = 1_767_225_700;
    let headers = httpsig::sign(
        &agent,
        "POST",
        "/v1/commands",
        &body,
        httpsig::SignParams {
            created,
            nonce: "vector-nonce-1",
            network: &network,
        },
    );
    let params = headers.signature_input.strip_prefix("sig1=").unwrap();
    let base = format!(
        "\"@method\": POST\n\"@path\": /v1/commands\n\"content-digest\": {}\n\"@signature-params\": {params}",
        headers.content_digest
    );
    // The node's own signed command form (dev faucet entries).
    let node_signed = SignedCommand::sign(command.clone(), &principal).unwrap();

    // A channel and a voucher on it.
    let channel_id = ChannelId::derive(&did(&agent), &did(&payee), "vector-channel");
    let terms = VoucherTerms {
        channel_id,
        epoch: 0,
        sub_channel_id: "stream-0".into(),
        accumulated_amount: Amount::from_atomic(250_000),
        nonce: 7,
        payee_id: did(&payee),
    };
    let hash = network_hash(&network);
    let voucher_bytes = terms.signing_bytes(&hash);
    let voucher = terms.clone().sign(&agent, &hash);

    // A log of three entries, and the inclusion proof of the second.
    let entries = [b"entry zero".as_slice(), b"entry one", b"entry two"];
    let mut tree = MemoryTree::new();
    for entry in entries {
        tree.push(merkle::leaf_hash(entry));
    }
    let proof = merkle::inclusion_proof(&tree, 1, 3).unwrap();

    json!({
        "about": "Known answers for agentrail's wire contract (docs/protocol.md). Checked by crates/agentrail/tests/vectors.rs.",
        "keys": keys,
        "network": {
            "log_origin": LOG_ORIGIN,
            "network_id": network,
            "network_hash_hex": hex::encode(hash),
        },
        "grant": {
            "document": serde_json::to_value(&grant).unwrap()["grant"],
            "signing_bytes_utf8": String::from_utf8(grant.signed_bytes().to_vec()).unwrap(),
            "grant_id": serde_json::to_value(grant.id()).unwrap(),
            "signature_hex": serde_json::to_value(grant.signature()).unwrap(),
            "signed_grant": serde_json::to_value(&grant).unwrap(),
        },
        "request": {
            "signer_seed_hex": hex::encode(agent.to_bytes()),
            "method": "POST",
            "path": "/v1/commands",
            "body_utf8": String::from_utf8(body).unwrap(),
            "created": created,
            "nonce": "vector-nonce-1",
            "content_digest": headers.content_digest,
            "signature_input": headers.signature_input,
            "signature_base": base,
            "signature": headers.signature,
        },
        "node_signed_command": {
            "signer_seed_hex": hex::encode(principal.to_bytes()),
            "signing_bytes_utf8": format!(
                "agentrail command v1\n{}",
                String::from_utf8(agentrail_core::canonical::canonicalize(&serde_json::to_value(&command).unwrap()).unwrap()).unwrap()
            ),
            "signed": serde_json::to_value(&node_signed).unwrap(),
        },
        "channel": {
            "from": did(&agent).to_string(),
            "payee": did(&payee).to_string(),
            "idempotency_key": "vector-channel",
            "channel_id": channel_id.to_hex(),
        },
        "voucher": {
            "terms": serde_json::to_value(&terms).unwrap(),
            "signing_bytes_hex": hex::encode(voucher_bytes),
            "signed": serde_json::to_value(&voucher).unwrap(),
        },
        "merkle": {
            "entries_utf8": entries.iter().map(|e| String::from_utf8(e.to_vec()).unwrap()).collect::<Vec<_>>(),
            "leaf_hashes_b64": entries.iter().map(|e| STANDARD.encode(merkle::leaf_hash(e))).collect::<Vec<_>>(),
            "root_b64": STANDARD.encode(tree.root()),
            "inclusion_proof_of_1_b64": proof.iter().map(|h| STANDARD.encode(h)).collect::<Vec<_>>(),
        },
    })
}

#[test]
fn the_published_vectors_are_what_the_implementation_computes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/vectors.json");
    let computed = vectors();
    if std::env::var_os("AGENTRAIL_WRITE_VECTORS").is_some() {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&computed).unwrap() + "\n",
        )
        .unwrap();
    }
    let published: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(
        published, computed,
        "docs/vectors.json differs from the implementation"
    );
}

/// The vectors hold together by themselves, as a client in another
/// language would check them: each signature verifies over its bytes.
#[test]
fn the_vectors_verify_by_their_own_bytes() {
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    let v = vectors();
    let public =
        |did: &str| -> VerifyingKey { did.parse::<Did>().unwrap().verifying_key().unwrap() };
    let signature = |hex_text: &str| -> Signature {
        Signature::from_bytes(&hex::decode(hex_text).unwrap().try_into().unwrap())
    };
    let grant = &v["grant"];
    public(grant["document"]["issuer"].as_str().unwrap())
        .verify(
            grant["signing_bytes_utf8"].as_str().unwrap().as_bytes(),
            &signature(grant["signature_hex"].as_str().unwrap()),
        )
        .unwrap();
    let request = &v["request"];
    let encoded = request["signature"]
        .as_str()
        .unwrap()
        .trim_start_matches("sig1=:")
        .trim_end_matches(':');
    let bytes: [u8; 64] = STANDARD.decode(encoded).unwrap().try_into().unwrap();
    public(v["keys"][1]["did"].as_str().unwrap())
        .verify(
            request["signature_base"].as_str().unwrap().as_bytes(),
            &Signature::from_bytes(&bytes),
        )
        .unwrap();
    let voucher = &v["voucher"];
    public(v["keys"][1]["did"].as_str().unwrap())
        .verify(
            &hex::decode(voucher["signing_bytes_hex"].as_str().unwrap()).unwrap(),
            &signature(voucher["signed"]["payerSignature"].as_str().unwrap()),
        )
        .unwrap();
    assert_eq!(
        hex::decode(voucher["signing_bytes_hex"].as_str().unwrap())
            .unwrap()
            .len(),
        181
    );
}
