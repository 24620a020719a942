//! The node end to end: the real binary on a loopback port, driven through
//! `agentrail-client` and raw HTTP.

mod support;

use agentrail_client::Client;
use agentrail_core::grant::Role;
use agentrail_core::{Amount, Command, Event, Timestamp};
use agentrail_sim::kit;
use agentrail_wire::httpsig;
use ed25519_dalek::SigningKey;
use support::{BIN, Node, did, key, now, usd};

#[tokio::test(flavor = "multi_thread")]
async fn a_mandate_is_granted_funded_spent_within_limits_and_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let client = node.client.clone();
    let (principal, agent, session, vendor) = (
        key("it-principal"),
        key("it-agent"),
        key("it-session"),
        key("it-vendor"),
    );
    let t = now();
    for k in [&principal, &vendor] {
        client
            .submit(k, &kit::register_principal(did(k)))
            .await
            .unwrap();
    }
    let limits = agentrail_core::Limits {
        approval_threshold: Some(usd(8)),
        ..kit::limits(usd(10), usd(25))
    };
    let grant = kit::grant(
        &principal,
        did(&agent),
        Role::Agent,
        limits,
        t,
        Timestamp(t.0 + 86_400),
        "it",
    );
    client
        .submit(&principal, &kit::register_agent(grant))
        .await
        .unwrap();
    let session_limits = agentrail_core::Limits {
        approval_threshold: Some(usd(8)),
        ..kit::limits(usd(5), usd(12))
    };
    let session_grant = kit::grant(
        &agent,
        did(&session),
        Role::Session,
        session_limits,
        t,
        Timestamp(t.0 + 3_600),
        "it",
    );
    client
        .submit(&agent, &kit::issue_session(session_grant))
        .await
        .unwrap();
    client.faucet(did(&agent), usd(100)).await.unwrap();

    let paid = client
        .submit(
            &session,
            &kit::transfer(did(&agent), did(&vendor), usd(4), "t1"),
        )
        .await
        .unwrap();
    assert!(matches!(
        paid.events.as_slice(),
        [Event::Transferred { .. }]
    ));
    let refused = client
        .submit(
            &session,
            &kit::transfer(did(&agent), did(&vendor), usd(6), "t2"),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("per_payment_limit_exceeded"));
    let again = client
        .submit(
            &session,
            &kit::transfer(did(&agent), did(&vendor), usd(4), "t1"),
        )
        .await
        .unwrap();
    assert!(matches!(again.events.as_slice(), [Event::Duplicate { .. }]));

    let balance = client.balance(&did(&agent)).await.unwrap();
    assert_eq!((balance.available, balance.held), (usd(96), usd(0)));
    let passport = client.passport(&did(&session)).await.unwrap();
    assert_eq!(
        passport.owner_chain,
        vec![did(&session), did(&agent), did(&principal)]
    );
    assert_eq!(passport.grant.unwrap().spent_total, usd(4));
    let history = client.history(&did(&vendor), None, 10).await.unwrap();
    assert_eq!(history.items.first().map(|i| i.index), Some(again.index));

    node.stop();
    let node = Node::start(data.path());
    let balance = node.client.balance(&did(&agent)).await.unwrap();
    assert_eq!((balance.available, balance.held), (usd(96), usd(0)));
    assert_eq!(
        node.client.health().await.unwrap().journal_len,
        again.index + 1
    );

    let client = node.client.clone();
    // What the dashboard polls: the principal's tree and what waits for it.
    let tree = client.agents_of(&did(&principal), 0, 10).await.unwrap();
    assert_eq!((tree.total, tree.next_offset), (1, None));
    assert_eq!(tree.items[0].did, did(&agent));
    assert_eq!(tree.items[0].sessions, vec![did(&session)]);
    assert_eq!(tree.items[0].grant.spent_total, usd(4));
    assert_eq!(tree.items[0].balance.as_ref().unwrap().available, usd(96));
    let mut waiting = Vec::new();
    for key in ["w1", "w2"] {
        let amount = Amount::from_atomic(8_500_000);
        let pending = client
            .submit(
                &agent,
                &kit::transfer(did(&agent), did(&vendor), amount, key),
            )
            .await
            .unwrap();
        let Some(Event::PaymentPending { approval_id, .. }) = pending.events.first() else {
            panic!("{key} waits for approval: {:?}", pending.events);
        };
        waiting.push(*approval_id);
    }
    let first = client
        .pending_approvals(&did(&principal), 0, 1)
        .await
        .unwrap();
    assert_eq!(first.items[0].approval_id, waiting[0]);
    assert_eq!(first.items[0].signer, did(&agent));
    assert_eq!(first.items[0].amount, Amount::from_atomic(8_500_000));
    assert_eq!(first.next_after, Some(waiting[0]));
    let rest = client
        .pending_approvals(&did(&principal), waiting[0], 1)
        .await
        .unwrap();
    assert_eq!(rest.items[0].approval_id, waiting[1]);
    assert_eq!(rest.next_after, None);
    client
        .submit(&principal, &kit::approve(waiting[0]))
        .await
        .unwrap();
    // The approved one is no longer waiting.
    let left = client
        .pending_approvals(&did(&principal), 0, 10)
        .await
        .unwrap();
    assert_eq!(
        left.items.iter().map(|a| a.approval_id).collect::<Vec<_>>(),
        vec![waiting[1]]
    );
    let none = client
        .pending_approvals(&did(&vendor), 0, 10)
        .await
        .unwrap();
    assert!(none.items.is_empty());
    for refused in [
        client.agents_of(&did(&agent), 0, 10).await.unwrap_err(),
        client
            .pending_approvals(&did(&agent), 0, 10)
            .await
            .unwrap_err(),
    ] {
        assert_eq!(refused.code(), Some("unknown_identity"));
    }
    let too_many = client.agents_of(&did(&principal), 0, 51).await.unwrap_err();
    assert_eq!(too_many.code(), Some("invalid_query"));
    client
        .submit(&principal, &kit::decline(waiting[1]))
        .await
        .unwrap();
    let left = client
        .pending_approvals(&did(&principal), 0, 10)
        .await
        .unwrap();
    assert!(left.items.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_exits_non_zero_with_the_code_of_a_refused_transfer() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(BIN)
            .args(args)
            .env("AGENTRAIL_NODE", &node.url)
            .output()
            .expect("the CLI runs")
    };
    let principal = dir.path().join("p.key");
    let out = run(&["key", "generate", "--out", principal.to_str().unwrap()]);
    assert!(out.status.success());
    let principal_did = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(principal_did.starts_with("did:key:z6Mk"));
    assert!(
        run(&[
            "principal",
            "register",
            "--key",
            principal.to_str().unwrap()
        ])
        .status
        .success()
    );
    let out = run(&[
        "--json",
        "transfer",
        "--key",
        principal.to_str().unwrap(),
        "--to",
        &principal_did,
        "--amount",
        "2.5",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["error"]["code"], "same_account");
    let out = run(&["--json", "balance", &principal_did]);
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (body["available"].as_str(), body["held"].as_str()),
        (Some("0"), Some("0"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_market_cli_places_orders_posts_bounties_and_runs_subscriptions() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .arg("--json")
            .args(args)
            .env("AGENTRAIL_NODE", &node.url)
            .output()
            .expect("the CLI runs");
        let body: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (out.status.code(), body)
    };
    let mut dids = Vec::new();
    let mut keys = Vec::new();
    for name in ["buyer", "provider", "validator"] {
        let path = dir.path().join(format!("{name}.key"));
        let out = std::process::Command::new(BIN)
            .args(["key", "generate", "--out", path.to_str().unwrap()])
            .output()
            .unwrap();
        dids.push(String::from_utf8(out.stdout).unwrap().trim().to_owned());
        let path = path.to_str().unwrap().to_owned();
        assert_eq!(run(&["principal", "register", "--key", &path]).0, Some(0));
        keys.push(path);
    }
    let (buyer, provider, validator) = (&keys[0], &keys[1], &keys[2]);
    node.client
        .faucet(dids[0].parse().unwrap(), usd(20))
        .await
        .unwrap();
    let result = dir.path().join("result.txt");
    std::fs::write(&result, "the parts").unwrap();
    let result = result.to_str().unwrap();

    let leg = format!("{}=3@1h:parts", dids[1]);
    let (code, _) = run(&[
        "market", "order", "--key", buyer, "--id", "o1", "--leg", &leg, "--atomic",
    ]);
    assert_eq!(code, Some(0));
    let deliver = [
        "market",
        "deliver-leg",
        "--key",
        provider,
        "--order",
        "o1",
        "--leg",
        "0",
        "--result",
        result,
    ];
    assert_eq!(run(&deliver).0, Some(0));
    let approve = [
        "market",
        "approve-leg",
        "--key",
        buyer,
        "--order",
        "o1",
        "--leg",
        "0",
        "--result",
        result,
    ];
    assert_eq!(run(&approve).0, Some(0));
    let (_, order) = run(&["market", "show-order", "o1"]);
    assert_eq!(order["status"], "completed", "{order}");

    let (code, _) = run(&[
        "market",
        "subscribe",
        "--key",
        buyer,
        "--id",
        "s1",
        "--payee",
        &dids[1],
        "--amount",
        "1",
        "--period",
        "day",
    ]);
    assert_eq!(code, Some(0));
    let collect = |amount: &str| {
        run(&[
            "market",
            "collect-subscription",
            "--key",
            provider,
            "--subscription",
            "s1",
            "--amount",
            amount,
        ])
    };
    assert_eq!(collect("1").0, Some(0));
    let (code, refused) = collect("0.5");
    assert_eq!(code, Some(1));
    assert_eq!(refused["error"]["code"], "subscription_already_collected");
    assert_eq!(
        run(&["market", "cancel", "--key", buyer, "--subscription", "s1"]).0,
        Some(0)
    );
    let (_, view) = run(&["market", "show-subscription", "s1"]);
    assert_eq!(view["status"], "cancelled", "{view}");

    let (code, _) = run(&[
        "market",
        "bounty",
        "--key",
        buyer,
        "--id",
        "b1",
        "--price",
        "2",
        "--contributions",
        "1",
        "--validator",
        &dids[2],
        "--full-pay",
        "1h",
        "--close",
        "2h",
    ]);
    assert_eq!(code, Some(0));
    let (code, _) = run(&[
        "market", "submit", "--key", provider, "--bounty", "b1", "--id", "c1", "--result", result,
    ]);
    assert_eq!(code, Some(0));
    let score = |key: &str| {
        run(&[
            "market",
            "score",
            "--key",
            key,
            "--bounty",
            "b1",
            "--contribution",
            "c1",
            "--result",
            result,
            "--score-bps",
            "5000",
        ])
    };
    assert_eq!(score(buyer).1["error"]["code"], "not_validator");
    assert_eq!(score(validator).0, Some(0));
    let (_, bounty) = run(&["market", "show-bounty", "b1"]);
    assert_eq!(
        (bounty["status"].as_str(), bounty["paid"].as_str()),
        (Some("closed"), Some("1000000")),
        "{bounty}"
    );
    // 20 in, 3 to the order, 1 to the subscription, 1 to the bounty.
    let (_, balance) = run(&["balance", &dids[1]]);
    assert_eq!(balance["available"], "5000000", "{balance}");
}

/// Sends a request with explicit signature headers and returns (status, code).
async fn raw(url: &str, body: &[u8], headers: &[(&str, String)]) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/v1/commands"))
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

/// A request to `/v1/commands` signed at `created` for `network`.
fn sign_for(
    signer: &SigningKey,
    body: &[u8],
    created: u64,
    nonce: &str,
    network: &str,
) -> httpsig::SignatureHeaders {
    httpsig::sign(
        signer,
        "POST",
        "/v1/commands",
        body,
        httpsig::SignParams {
            created,
            nonce,
            network,
        },
    )
}

fn signed_headers(signature: &httpsig::SignatureHeaders) -> Vec<(&'static str, String)> {
    vec![
        ("content-digest", signature.content_digest.clone()),
        ("signature-input", signature.signature_input.clone()),
        ("signature", signature.signature.clone()),
    ]
}

/// A node serving HTTPS with a self-signed certificate: the CLI and the
/// client reach it when told to trust the certificate (`--ca-cert`,
/// `AGENTRAIL_CA_CERT`, `Client::connect`), and refuse it otherwise.
#[tokio::test(flavor = "multi_thread")]
async fn an_https_node_is_reached_with_its_ca_and_refused_without() {
    let data = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key_file) = (data.path().join("node.pem"), data.path().join("node.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key_file, certified.signing_key.serialize_pem()).unwrap();
    let node = Node::start_with(
        &data.path().join("node"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key_file.to_str().unwrap(),
        ],
    );
    assert!(node.url.starts_with("https://"), "{}", node.url);

    // The client library, trusting the certificate: reads and a command.
    let client = Client::connect(&node.url, Some(&cert)).unwrap();
    let principal = key("tls-principal");
    client
        .submit(&principal, &kit::register_principal(did(&principal)))
        .await
        .unwrap();
    client.faucet(did(&principal), usd(3)).await.unwrap();
    assert_eq!(
        client.balance(&did(&principal)).await.unwrap().available,
        usd(3)
    );
    // Not trusting it: a TLS failure, not an answer.
    let untrusted = Client::connect(&node.url, None).unwrap();
    assert!(matches!(
        untrusted.health().await,
        Err(agentrail_client::ClientError::Transport(_))
    ));
    // Plain HTTP to the TLS port gets no API answer.
    let plain = Client::new(&node.url.replace("https://", "http://"));
    assert!(plain.health().await.is_err());

    // The CLI, by environment variable and by flag.
    let balance = |extra: &[&str], env: Option<&std::path::Path>| {
        let mut command = std::process::Command::new(BIN);
        command
            .args(["--json", "--node", &node.url])
            .args(extra)
            .args(["balance", &did(&principal).to_string()])
            .env_remove("AGENTRAIL_CA_CERT");
        if let Some(path) = env {
            command.env("AGENTRAIL_CA_CERT", path);
        }
        command.output().unwrap()
    };
    let by_env = balance(&[], Some(&cert));
    assert!(
        by_env.status.success(),
        "{}",
        String::from_utf8_lossy(&by_env.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&by_env.stdout).unwrap();
    assert_eq!(shown["available"], "3000000");
    let by_flag = balance(&["--ca-cert", cert.to_str().unwrap()], None);
    assert!(
        by_flag.status.success(),
        "{}",
        String::from_utf8_lossy(&by_flag.stderr)
    );
    let refused = balance(&[], None);
    assert!(!refused.status.success());
    let missing = balance(&["--ca-cert", "/nonexistent/ca.pem"], None);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot read the CA file"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

/// A dev node lets any web page call it (CORS): the preflight of a signed
/// command is allowed with the headers it carries.
#[tokio::test(flavor = "multi_thread")]
async fn a_dev_node_answers_the_preflight_of_a_signed_command() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let response = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/commands", node.url),
        )
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,content-digest,signature-input,signature",
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let allowed = response.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(allowed.contains("signature-input"), "{allowed}");
}

/// A request signed as PyPI's `http-message-signatures` signs by default
/// (label `pyhms`, `created;keyid;alg;nonce;tag`, the components in the
/// caller's order), at `created`: the node takes it like its own shape,
/// and refuses it sent again.
#[tokio::test(flavor = "multi_thread")]
async fn requests_in_other_libraries_shapes_are_accepted() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let network = Client::new(&node.url).network().await.unwrap();
    for (label, components) in [
        ("pyhms", ["@method", "@path", "content-digest"]),
        ("sig", ["content-digest", "@path", "@method"]),
    ] {
        let signer = key(&format!("shape-{label}"));
        let body = serde_json::to_vec(&kit::register_principal(did(&signer))).unwrap();
        let nonce = format!("{label}-1");
        let headers =
            support::signed_in_shape(&signer, &body, &network, label, components, now().0, &nonce);
        assert_eq!(raw(&node.url, &body, &headers).await.0, 200, "{label}");
        assert_eq!(
            raw(&node.url, &body, &headers).await,
            (401, "nonce_reused".into()),
            "{label}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn request_signatures_refuse_each_attack_with_its_own_code() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let signer = key("sig-signer");
    let body = serde_json::to_vec(&kit::register_principal(did(&signer))).unwrap();
    let t = now().0;
    let network = Client::new(&node.url).network().await.unwrap();
    let good = sign_for(&signer, &body, t, "nonce-1", &network);

    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert_eq!(
        raw(&node.url, &tampered, &signed_headers(&good)).await,
        (400, "digest_mismatch".into())
    );

    let wrong_key = sign_for(&key("sig-other"), &body, t, "nonce-2", &network);
    let forged = httpsig::SignatureHeaders {
        signature: wrong_key.signature,
        ..good.clone()
    };
    assert_eq!(
        raw(&node.url, &body, &signed_headers(&forged)).await,
        (401, "signature_invalid".into())
    );

    let stale = sign_for(&signer, &body, t - 3_600, "nonce-3", &network);
    assert_eq!(
        raw(&node.url, &body, &signed_headers(&stale)).await,
        (401, "signature_expired".into())
    );

    // Regression (issue 15, item 1): a request signed for another ledger.
    let elsewhere = sign_for(
        &signer,
        &body,
        t,
        "nonce-4",
        "agentrail:agentrail.log/0000000000000000",
    );
    assert_eq!(
        raw(&node.url, &body, &signed_headers(&elsewhere)).await,
        (401, "signature_wrong_network".into())
    );

    let mut no_digest = signed_headers(&good);
    no_digest.remove(0);
    assert_eq!(
        raw(&node.url, &body, &no_digest).await,
        (400, "digest_missing".into())
    );

    assert_eq!(
        raw(&node.url, &body, &[]).await,
        (401, "signature_missing".into())
    );

    let (status, _) = raw(&node.url, &body, &signed_headers(&good)).await;
    assert_eq!(status, 200);
    assert_eq!(
        raw(&node.url, &body, &signed_headers(&good)).await,
        (401, "nonce_reused".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_typed_4xx_never_a_500() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let signer = key("bad-input");
    let t = now().0;
    let network = Client::new(&node.url).network().await.unwrap();
    let sign =
        |body: &[u8], nonce: &str| signed_headers(&sign_for(&signer, body, t, nonce, &network));

    let malformed = b"{\"type\": \"transfer\",";
    assert_eq!(
        raw(&node.url, malformed, &sign(malformed, "a")).await,
        (400, "malformed_json".into())
    );
    let wrong_shape = br#"{"type":"transfer","amount":-5}"#;
    assert_eq!(
        raw(&node.url, wrong_shape, &sign(wrong_shape, "b")).await,
        (400, "invalid_request".into())
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(
        raw(&node.url, deep.as_bytes(), &sign(deep.as_bytes(), "c"))
            .await
            .0,
        400
    );
    let huge = vec![b' '; 70 * 1024];
    assert_eq!(
        raw(&node.url, &huge, &sign(&huge, "d")).await,
        (413, "body_too_large".into())
    );
    let unknown_signer: Command = kit::transfer(did(&signer), did(&key("x")), usd(1), "k");
    let body = serde_json::to_vec(&unknown_signer).unwrap();
    assert_eq!(
        raw(&node.url, &body, &sign(&body, "e")).await,
        (404, "unknown_account".into())
    );

    let http = reqwest::Client::new();
    for (path, status, code) in [
        ("/v1/accounts/not-a-did/balance", 400, "invalid_did"),
        (
            "/v1/accounts/did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp/balance",
            404,
            "unknown_account",
        ),
        (
            "/v1/accounts/did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp/history?limit=1000",
            400,
            "invalid_field",
        ),
        (
            "/v1/accounts/did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp/history?limit=abc",
            400,
            "invalid_query",
        ),
        (
            "/v1/grants/did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
            404,
            "unknown_grant",
        ),
        ("/v1/nowhere", 404, "not_found"),
    ] {
        let response = http
            .get(format!("{}{path}", node.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{path}");
    }
    let response = http
        .get(format!("{}/v1/commands", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_lists_every_route_and_every_listed_route_answers() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let http = reqwest::Client::new();
    let document: serde_json::Value = http
        .get(format!("{}/v1/openapi.json", node.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 31);
    let someone = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
    for (path, operations) in paths {
        let url = format!("{}{}", node.url, path.replace("{did}", someone));
        let response = if operations.get("get").is_some() {
            http.get(url).send().await
        } else {
            http.post(url).send().await
        }
        .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("\"code\":\"not_found\""),
            "{path} is listed but not routed"
        );
        assert!(status < 500, "{path} answered {status}");
    }
    let metrics = http
        .get(format!("{}/metrics", node.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("agentrail_journal_entries 0"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_opens_collects_and_closes_over_http_and_survives_a_restart() {
    use agentrail_core::channel::{ChannelId, network_hash};
    use agentrail_core::state::ChannelStatus;
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let client = node.client.clone();
    let (buyer, seller) = (key("ch-buyer"), key("ch-seller"));
    for k in [&buyer, &seller] {
        client
            .submit(k, &kit::register_principal(did(k)))
            .await
            .unwrap();
    }
    client.faucet(did(&buyer), usd(50)).await.unwrap();
    let network = network_hash(&client.health().await.unwrap().network);

    let opened = client
        .submit(
            &buyer,
            &kit::open_channel(did(&buyer), did(&seller), usd(10), "api-1"),
        )
        .await
        .unwrap();
    let id = ChannelId::derive(&did(&buyer), &did(&seller), "api-1");
    assert!(matches!(
        opened.events.as_slice(),
        [Event::ChannelOpened { channel_id, .. }] if *channel_id == id
    ));
    // A thousand payments are a thousand vouchers and no ledger command; the
    // seller collects the last one.
    let mut vouchers = (1..=1_000u64).map(|n| {
        kit::voucher(
            &buyer,
            &network,
            id,
            did(&seller),
            "stream-1",
            n,
            agentrail_core::Amount::from_atomic(u128::from(n) * 5_000),
        )
    });
    let mut last = vouchers.next().unwrap();
    for voucher in vouchers {
        last = voucher;
    }
    client
        .submit(&seller, &kit::collect_channel(id, vec![last.clone()]))
        .await
        .unwrap();
    let stale = client
        .submit(&seller, &kit::collect_channel(id, vec![last]))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Some("voucher_stale"));
    let channel = client.channel(&id).await.unwrap();
    assert_eq!(channel.collected, usd(5));
    assert_eq!(
        client.balance(&did(&seller)).await.unwrap().available,
        usd(5)
    );
    let closed = client
        .submit(&seller, &kit::close_channel(id, Vec::new()))
        .await
        .unwrap();
    assert!(matches!(
        closed.events.as_slice(),
        [Event::ChannelClosed { refunded, .. }] if *refunded == usd(5)
    ));
    let buyer_balance = client.balance(&did(&buyer)).await.unwrap();
    assert_eq!(
        (buyer_balance.available, buyer_balance.held),
        (usd(45), usd(0))
    );
    let unknown = client
        .channel(&ChannelId::derive(&did(&seller), &did(&buyer), "none"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Some("channel_not_found"));

    // Recovery replays the channel, vouchers and all.
    node.stop();
    let node = Node::start(data.path());
    let channel = node.client.channel(&id).await.unwrap();
    assert_eq!(channel.status, ChannelStatus::Closed);
    assert_eq!(channel.collected, usd(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_channel_cli_opens_pays_collects_and_closes() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(BIN)
            .args(args)
            .env("AGENTRAIL_NODE", &node.url)
            .output()
            .expect("the CLI runs")
    };
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let mut dids = Vec::new();
    for name in ["buyer.key", "seller.key"] {
        let out = run(&["key", "generate", "--out", &path(name)]);
        dids.push(String::from_utf8(out.stdout).unwrap().trim().to_owned());
        assert!(
            run(&["principal", "register", "--key", &path(name)])
                .status
                .success()
        );
    }
    let (buyer, seller) = (&dids[0], &dids[1]);
    assert!(
        run(&["faucet", "--to", buyer, "--amount", "20"])
            .status
            .success()
    );
    let out = run(&[
        "channel",
        "open",
        "--key",
        &path("buyer.key"),
        "--to",
        seller,
        "--deposit",
        "5",
        "--idempotency-key",
        "cli-channel",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let channel = text
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("channel ")
        .to_owned();
    for (nonce, total) in [("1", "0.25"), ("2", "1.5")] {
        let out = run(&[
            "channel",
            "pay",
            "--key",
            &path("buyer.key"),
            "--channel",
            &channel,
            "--total",
            total,
            "--nonce",
            nonce,
            "--out",
            &path(&format!("v{nonce}.json")),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let collect = |voucher: &str| {
        run(&[
            "--json",
            "channel",
            "collect",
            "--key",
            &path("seller.key"),
            "--voucher",
            &path(voucher),
        ])
    };
    assert!(collect("v2.json").status.success());
    // The older voucher is refused with its own code.
    let out = collect("v1.json");
    assert_eq!(out.status.code(), Some(1));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["error"]["code"], "voucher_stale");
    let out = run(&["--json", "channel", "show", &channel]);
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view["collected"], "1500000");
    assert_eq!(view["status"]["state"], "open");
    // The buyer starts a close; the seller closes at once.
    assert!(
        run(&[
            "channel",
            "close",
            "--key",
            &path("buyer.key"),
            "--channel",
            &channel
        ])
        .status
        .success()
    );
    assert!(
        run(&[
            "channel",
            "close",
            "--key",
            &path("seller.key"),
            "--channel",
            &channel
        ])
        .status
        .success()
    );
    let out = run(&["--json", "balance", buyer]);
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (body["available"].as_str(), body["held"].as_str()),
        (Some("18500000"), Some("0"))
    );
}

#[test]
fn a_scaled_clock_is_refused_outside_dev_mode() {
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(support::BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dev-time-scale",
            "10",
            "--data",
        ])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--dev"), "{stderr}");
}

/// Regression (issue 15, item 4): a request accepted before a restart
/// cannot be replayed after it, and nothing signed before the node started
/// is accepted.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_does_not_reopen_the_nonce_window() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let network = Client::new(&node.url).network().await.unwrap();
    let signer = key("restart-replay");
    let body = serde_json::to_vec(&kit::register_principal(did(&signer))).unwrap();
    // Created ahead of the node's clock, as a client whose clock runs
    // fast signs: after the restart it still lies in the window.
    let created = now().0 + 120;
    let first = signed_headers(&sign_for(&signer, &body, created, "before", &network));
    assert_eq!(raw(&node.url, &body, &first).await.0, 200);
    let other = key("restart-late");
    let late_body = serde_json::to_vec(&kit::register_principal(did(&other))).unwrap();
    let signed_early = signed_headers(&sign_for(&other, &late_body, now().0, "early", &network));
    node.stop();
    std::thread::sleep(std::time::Duration::from_millis(1_100));

    let node = Node::start(data.path());
    assert_eq!(
        raw(&node.url, &body, &first).await,
        (401, "nonce_reused".into())
    );
    assert_eq!(
        raw(&node.url, &late_body, &signed_early).await,
        (401, "signature_before_start".into())
    );
    let fresh = signed_headers(&sign_for(&other, &late_body, now().0, "fresh", &network));
    assert_eq!(raw(&node.url, &late_body, &fresh).await.0, 200);
}

/// Regression (issue 15, item 9): an expiry is journaled when it falls
/// due, as a clock entry in the account's history, with no other command
/// to carry it.
#[tokio::test(flavor = "multi_thread")]
async fn an_expiry_is_journaled_when_it_falls_due_without_another_command() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let client = &node.client;
    let principal = key("clock-principal");
    client
        .submit(&principal, &kit::register_principal(did(&principal)))
        .await
        .unwrap();
    client.faucet(did(&principal), usd(5)).await.unwrap();
    let hold = Command::Hold(agentrail_core::command::Hold {
        hold_id: "soon".into(),
        from: did(&principal),
        amount: usd(2),
        category: None,
        expires_at: Some(Timestamp(now().0 + 2)),
    });
    client.submit(&principal, &hold).await.unwrap();
    let mut found = None;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let page = client.history(&did(&principal), None, 10).await.unwrap();
        found = page.items.into_iter().find(|item| {
            item.events.iter().any(
                |event| matches!(event, Event::HoldExpired { hold_id, .. } if hold_id == "soon"),
            )
        });
        if found.is_some() {
            break;
        }
    }
    let entry = found.expect("the hold's expiry is in the account's history");
    let health = client.health().await.unwrap();
    assert_eq!(
        entry.signer, health.operator,
        "the clock's entry is the operator's"
    );
    let balance = client.balance(&did(&principal)).await.unwrap();
    assert_eq!(balance.held, Amount::ZERO);
}

/// The contract check every test's client runs refuses an answer the
/// document does not allow: a wrong body, a wrong content type, an unlisted
/// code or status.
#[test]
fn the_contract_check_refuses_what_the_document_does_not_allow() {
    let answer = |path: &str, status: u16, content_type: &str, body: &str| {
        let (path, content_type, body) =
            (path.to_owned(), content_type.to_owned(), body.to_owned());
        std::panic::catch_unwind(move || {
            support::check_answer(&agentrail_client::Answer {
                method: "GET",
                path: &path,
                status,
                content_type: Some(&content_type),
                body: body.as_bytes(),
            })
        })
        .is_ok()
    };
    let balance = r#"{"did":"did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp","available":"5","held":"0"}"#;
    let path = "/v1/accounts/did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp/balance";
    assert!(answer(path, 200, "application/json", balance));
    assert!(!answer(
        path,
        200,
        "application/json",
        &balance.replace("\"5\"", "5")
    ));
    assert!(!answer(
        path,
        200,
        "application/json",
        &balance.replace(",\"held\":\"0\"", "")
    ));
    assert!(!answer(path, 200, "text/plain", balance));
    let refused = r#"{"error":{"code":"unknown_account","message":"no such account"}}"#;
    assert!(answer(path, 404, "application/json", refused));
    assert!(
        !answer(path, 400, "application/json", refused),
        "the listed status"
    );
    assert!(!answer(
        path,
        404,
        "application/json",
        &refused.replace("unknown_account", "made_up")
    ));
    assert!(!answer("/v1/nowhere", 200, "application/json", "{}"));
}
