//! The transparency log end to end: receipts, checkpoints, consistency
//! proofs and tiles served by the real node, verified offline.

mod support;

use agentrail_core::grant::Role;
use agentrail_core::{Command, Timestamp};
use agentrail_log::merkle::{self, MemoryTree};
use agentrail_log::receipt::ReceiptError;
use agentrail_log::{Checkpoint, LogKey};
use agentrail_sim::kit;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use support::{Node, did, key, now, usd};

fn b64_hash(text: &str) -> merkle::Hash {
    STANDARD.decode(text).unwrap().try_into().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_has_a_receipt_that_verifies_offline_and_the_log_only_grows() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let client = node.client.clone();
    let key_text = client.log_key().await.unwrap();
    let log_key = LogKey::parse(&key_text).unwrap();
    let (principal, agent, session, vendor) = (
        key("log-principal"),
        key("log-agent"),
        key("log-session"),
        key("log-vendor"),
    );
    let t = now();
    let grant = kit::grant(
        &principal,
        did(&agent),
        Role::Agent,
        kit::limits(usd(10), usd(100)),
        t,
        Timestamp(t.0 + 86_400),
        "log",
    );
    let session_grant = kit::grant(
        &agent,
        did(&session),
        Role::Session,
        kit::limits(usd(5), usd(50)),
        t,
        Timestamp(t.0 + 3_600),
        "log",
    );
    let steps: Vec<(&ed25519_dalek::SigningKey, Command)> = vec![
        (&principal, kit::register_principal(did(&principal))),
        (&vendor, kit::register_principal(did(&vendor))),
        (&principal, kit::register_agent(grant)),
        (&agent, kit::issue_session(session_grant)),
    ];
    let mut checkpoints = vec![client.checkpoint().await.unwrap()];
    let mut expected = Vec::new();
    for (signer, command) in &steps {
        let response = client.submit(signer, command).await.unwrap();
        assert_eq!(response.receipt.index, response.index);
        expected.push((response.index, did(signer), response.receipt.leaf_hash));
        checkpoints.push(client.checkpoint().await.unwrap());
    }
    client.faucet(did(&agent), usd(40)).await.unwrap();
    let mut session_paid = Vec::new();
    for n in 0..5 {
        let response = client
            .submit(
                &session,
                &kit::transfer(did(&agent), did(&vendor), usd(1), &format!("log-{n}")),
            )
            .await
            .unwrap();
        session_paid.push(response.index);
        expected.push((response.index, did(&session), response.receipt.leaf_hash));
        checkpoints.push(client.checkpoint().await.unwrap());
    }
    // The session key is revoked: what it signed stays proven.
    client
        .submit(&agent, &kit::revoke(did(&session)))
        .await
        .unwrap();

    for (index, signer, leaf_hash) in &expected {
        let receipt = client.receipt(*index).await.unwrap();
        assert_eq!(&receipt.leaf_hash, leaf_hash);
        let proven = receipt.verify(&log_key).unwrap();
        assert_eq!(proven.command.signer(), signer);
        assert_eq!(proven.index, *index);
    }
    let receipt = client.receipt(session_paid[2]).await.unwrap();
    let proven = receipt.verify(&log_key).unwrap();
    assert!(matches!(proven.command.command(), Command::Transfer(_)));

    // Tampering with any part is caught, and named.
    let mut leaf = STANDARD.decode(&receipt.leaf).unwrap();
    let position = leaf.len() / 2;
    leaf[position] ^= 1;
    let mut forged = receipt.clone();
    forged.leaf = STANDARD.encode(&leaf);
    assert_eq!(forged.verify(&log_key).unwrap_err(), ReceiptError::LeafHash);
    forged.leaf_hash = STANDARD.encode(merkle::leaf_hash(&leaf));
    assert!(matches!(
        forged.verify(&log_key).unwrap_err(),
        ReceiptError::Inclusion(_)
    ));
    let mut forged = receipt.clone();
    let mut sibling = b64_hash(&forged.inclusion_proof[0]);
    sibling[0] ^= 0x80;
    forged.inclusion_proof[0] = STANDARD.encode(sibling);
    assert!(matches!(
        forged.verify(&log_key).unwrap_err(),
        ReceiptError::Inclusion(_)
    ));
    let mut forged = receipt.clone();
    forged.checkpoint = forged.checkpoint.replacen('\n', "\n9", 1);
    assert!(matches!(
        forged.verify(&log_key).unwrap_err(),
        ReceiptError::Checkpoint(_) | ReceiptError::SizeMismatch { .. }
    ));

    // Every checkpoint seen is consistent with every later one.
    let opened: Vec<Checkpoint> = checkpoints
        .iter()
        .map(|note| Checkpoint::open(note, &log_key).unwrap())
        .collect();
    let newest = Checkpoint::open(&client.checkpoint().await.unwrap(), &log_key).unwrap();
    for old in &opened {
        let proof = client.consistency(old.size, newest.size).await.unwrap();
        let hashes: Vec<merkle::Hash> = proof.proof.iter().map(|h| b64_hash(h)).collect();
        merkle::verify_consistency(old.size, newest.size, &old.root, &newest.root, &hashes)
            .unwrap_or_else(|e| panic!("{} to {}: {e}", old.size, newest.size));
    }
    let refused = client.consistency(3, newest.size + 1).await.unwrap_err();
    assert_eq!(refused.code(), Some("invalid_range"));

    // The tiles rebuild the same tree.
    let width = newest.size;
    assert!(width < 256);
    let bundle = client
        .tile(&format!("entries/000.p/{width}"))
        .await
        .unwrap();
    let hashes = client.tile(&format!("0/000.p/{width}")).await.unwrap();
    let mut tree = MemoryTree::new();
    let mut rest = bundle.as_slice();
    for index in 0..width {
        let length = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        let leaf = &rest[2..2 + length];
        rest = &rest[2 + length..];
        let hash = merkle::leaf_hash(leaf);
        assert_eq!(&hashes[32 * index as usize..32 * index as usize + 32], hash);
        let entry = client.log_entry(index).await.unwrap();
        assert_eq!(STANDARD.decode(entry.leaf).unwrap(), leaf);
        tree.push(hash);
    }
    assert!(rest.is_empty());
    assert_eq!(tree.root(), newest.root);
    let missing = client.tile("0/001").await.unwrap_err();
    assert_eq!(missing.code(), Some("no_such_tile"));

    // A restart serves the same tree.
    node.stop();
    let node = Node::start(data.path());
    let after = Checkpoint::open(&node.client.checkpoint().await.unwrap(), &log_key).unwrap();
    assert_eq!(after, newest);
    node.stop();
}

fn cli(node: &Node, args: &[&str]) -> std::process::Output {
    std::process::Command::new(support::BIN)
        .args(args)
        .env("AGENTRAIL_NODE", &node.url)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_watch_and_audit_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let client = node.client.clone();
    let key_file = work.path().join("log.pub");
    std::fs::write(&key_file, client.log_key().await.unwrap()).unwrap();
    let key_arg = key_file.to_str().unwrap();
    let (payer, payee) = (key("cli-log-payer"), key("cli-log-payee"));
    for k in [&payer, &payee] {
        client
            .submit(k, &kit::register_principal(did(k)))
            .await
            .unwrap();
    }
    client.faucet(did(&payer), usd(10)).await.unwrap();
    let paid = client
        .submit(
            &payer,
            &kit::transfer(did(&payer), did(&payee), usd(3), "cli-log"),
        )
        .await
        .unwrap();

    let receipt = work.path().join("receipt.json");
    let index = paid.index.to_string();
    let out = cli(
        &node,
        &["receipt", &index, "--out", receipt.to_str().unwrap()],
    );
    assert!(out.status.success(), "{out:?}");
    let out = cli(
        &node,
        &["verify", receipt.to_str().unwrap(), "--log-key", key_arg],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("VALID receipt"), "{stdout}");
    assert!(stdout.contains(&did(&payer).to_string()), "{stdout}");
    assert!(stdout.contains("transfer"), "{stdout}");
    // Tampered: the amount in the leaf's recorded events changed.
    let mut document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&receipt).unwrap()).unwrap();
    let leaf = STANDARD.decode(document["leaf"].as_str().unwrap()).unwrap();
    let altered = String::from_utf8(leaf)
        .unwrap()
        .replace("3000000", "9000000");
    document["leaf"] = STANDARD.encode(altered).into();
    std::fs::write(&receipt, document.to_string()).unwrap();
    let out = cli(
        &node,
        &["verify", receipt.to_str().unwrap(), "--log-key", key_arg],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("leaf hash does not match"),
        "{out:?}"
    );

    let state = work.path().join("watch.json");
    let watch = |node: &Node| {
        cli(
            node,
            &[
                "log",
                "watch",
                "--state",
                state.to_str().unwrap(),
                "--log-key",
                key_arg,
            ],
        )
    };
    assert!(watch(&node).status.success());
    client
        .submit(
            &payer,
            &kit::transfer(did(&payer), did(&payee), usd(1), "cli-log-2"),
        )
        .await
        .unwrap();
    let out = watch(&node);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("consistent"));
    // A history the log never had: the watcher's remembered root differs.
    let mut saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    saved["root"] = STANDARD.encode([7u8; 32]).into();
    std::fs::write(&state, saved.to_string()).unwrap();
    client
        .submit(
            &payer,
            &kit::transfer(did(&payer), did(&payee), usd(1), "cli-log-3"),
        )
        .await
        .unwrap();
    let out = watch(&node);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("rewrote its history"));
    // The state file pins its key: another one is refused.
    let other = agentrail_log::LogSigner::new(
        "agentrail.log/other",
        ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
    )
    .unwrap()
    .verifier_key();
    let out = cli(
        &node,
        &[
            "log",
            "watch",
            "--state",
            state.to_str().unwrap(),
            "--log-key",
            &other,
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pins the log key"),
        "{out:?}"
    );

    client
        .submit(&payer, &kit::hold("cli-log-hold", did(&payer), usd(2)))
        .await
        .unwrap();
    let out = cli(&node, &["audit", "--log-key", key_arg, "--json"]);
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["consistent"], true);
    assert_eq!(report["entries"], 7);
    node.stop();
}

/// The Python verifier in `tests/`, written from the specifications alone.
fn python(args: &[&str]) -> std::process::Output {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/independent_verifier.py"
    );
    std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs the independent verifier (tests/independent_verifier.py)")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_independent_verifier_accepts_receipts_and_consistency_proofs() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let client = node.client.clone();
    let log_key = client.log_key().await.unwrap();
    let (payer, payee) = (key("py-payer"), key("py-payee"));
    for k in [&payer, &payee] {
        client
            .submit(k, &kit::register_principal(did(k)))
            .await
            .unwrap();
    }
    let old_note = work.path().join("old.note");
    std::fs::write(&old_note, client.checkpoint().await.unwrap()).unwrap();
    client.faucet(did(&payer), usd(10)).await.unwrap();
    let mut indices = Vec::new();
    for n in 0..3 {
        let paid = client
            .submit(
                &payer,
                &kit::transfer(did(&payer), did(&payee), usd(1), &format!("py-{n}")),
            )
            .await
            .unwrap();
        indices.push(paid.index);
    }
    // One request signed in another library's shape (label, orders).
    let body =
        serde_json::to_vec(&kit::transfer(did(&payer), did(&payee), usd(1), "py-shape")).unwrap();
    let network = client.network().await.unwrap();
    let headers = support::signed_in_shape(
        &payer,
        &body,
        &network,
        "pyhms",
        ["content-digest", "@method", "@path"],
        now().0,
        "py-shape-1",
    );
    let mut request = reqwest::Client::new()
        .post(format!("{}/v1/commands", node.url))
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let answer: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
    indices.push(
        answer["index"]
            .as_u64()
            .expect("the shaped request was accepted"),
    );
    let new_note = work.path().join("new.note");
    let newest = client.checkpoint().await.unwrap();
    std::fs::write(&new_note, &newest).unwrap();
    let size = Checkpoint::open(&newest, &LogKey::parse(&log_key).unwrap())
        .unwrap()
        .size;
    for index in indices.iter().chain([&0]) {
        let receipt = client.receipt(*index).await.unwrap();
        let path = work.path().join(format!("receipt-{index}.json"));
        std::fs::write(&path, serde_json::to_string(&receipt).unwrap()).unwrap();
        let out = python(&["receipt", path.to_str().unwrap(), &log_key]);
        assert!(out.status.success(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK"));
        // A changed bit in the signature is refused.
        let mut forged = receipt.clone();
        let mut leaf = STANDARD.decode(&forged.leaf).unwrap();
        let text = String::from_utf8(leaf.clone()).unwrap();
        let at = text.find("\"signature\":\"").unwrap();
        let at = at + text[at..].find("=:").unwrap() + 2;
        leaf[at] = if leaf[at] == b'A' { b'B' } else { b'A' };
        forged.leaf = STANDARD.encode(&leaf);
        std::fs::write(&path, serde_json::to_string(&forged).unwrap()).unwrap();
        let out = python(&["receipt", path.to_str().unwrap(), &log_key]);
        assert!(!out.status.success(), "{out:?}");
    }
    let proof = client.consistency(2, size).await.unwrap();
    let proof_path = work.path().join("proof.json");
    std::fs::write(&proof_path, serde_json::to_string(&proof).unwrap()).unwrap();
    let out = python(&[
        "consistency",
        &log_key,
        old_note.to_str().unwrap(),
        new_note.to_str().unwrap(),
        proof_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    // Swapped checkpoints do not verify.
    let out = python(&[
        "consistency",
        &log_key,
        new_note.to_str().unwrap(),
        old_note.to_str().unwrap(),
        proof_path.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "{out:?}");
    node.stop();
}
