//! Markets against the real binary over HTTP: the demo end to end, the
//! market reads and their refusals, A2A agent cards, passports, and a
//! restart in the middle of a dispute.

mod support;

use agentrail_core::market::{Discovery, ListingKind, PublishListing, RequestQuotes, TaskStatus};
use agentrail_sim::kit;
use support::{BIN, Node, did, key, usd};

#[test]
fn the_demo_passes_every_scenario_and_verifies_every_receipt() {
    let output = std::process::Command::new(BIN)
        .args(["demo", "--json", "--calls", "200"])
        .output()
        .expect("the demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(report["passed"], true);
    let scenarios = report["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 11);
    assert!(
        scenarios.iter().all(|s| s["passed"] == true),
        "{scenarios:?}"
    );
    let names: Vec<&str> = scenarios
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    for name in [
        "supply_chain",
        "crowdsourcing",
        "subscription",
        "model_platform",
    ] {
        let scenario = scenarios.iter().find(|s| s["name"] == name);
        let figures = scenario.map_or(0, |s| s["figures"].as_array().map_or(0, Vec::len));
        assert!(figures >= 3, "{name} reports its figures: {names:?}");
    }
    assert_eq!(report["receipts_verified"], report["journal_entries"]);
    assert_eq!(report["money_conserved"], true);
    // Progress went to stderr, one line per scenario.
    let progress = String::from_utf8_lossy(&output.stderr);
    // "… ok (s)" ends each scenario's line (a node's warning may come
    // in between: the subscription's second node runs a scaled clock).
    assert_eq!(progress.matches("ok (").count(), 11, "{progress}");
}

async fn get(node: &Node, path: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("{}{path}", node.url)).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn market_reads_answer_and_refuse_with_codes_and_the_market_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let client = node.client.clone();
    let (buyer, seller, arbiter) = (key("m-buyer"), key("m-seller"), key("m-arbiter"));
    for k in [&buyer, &seller, &arbiter] {
        client
            .submit(k, &kit::register_principal(did(k)))
            .await
            .unwrap();
    }
    client.faucet(did(&buyer), usd(50)).await.unwrap();
    client.faucet(did(&seller), usd(50)).await.unwrap();
    let listing = PublishListing {
        stake: Some(usd(20)),
        endpoint: Some("https://seller.example/a2a".into()),
        ..kit::listing("seller-gpu", did(&seller), &["compute", "gpu"], usd(9))
    };
    client
        .submit(&seller, &kit::publish(listing))
        .await
        .unwrap();

    // Discovery and its bounded query.
    let page = client
        .listings(&Discovery {
            capability: Some("gpu".into()),
            kind: Some(ListingKind::Service),
            max_price: Some(usd(10)),
            limit: 5,
            ..Discovery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("min_reputation=1001", "min_reputation"),
        ("capability=", "capability"),
    ] {
        let (status, body) = get(&node, &format!("/v1/listings?{query}")).await;
        assert_eq!(
            (status, body["error"]["param"].as_str()),
            (400, Some(param)),
            "{query}"
        );
        assert_eq!(body["error"]["code"], "invalid_query");
    }
    let (status, body) = get(&node, "/v1/listings?max_price=-1").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, body) = get(&node, "/v1/listings?sort=cheap").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );

    // The A2A card.
    let (status, card) = get(&node, &format!("/v1/agents/{}/card", did(&seller))).await;
    assert_eq!(status, 200);
    assert_eq!(card["protocolVersion"], "0.3.0");
    assert_eq!(card["url"], "https://seller.example/a2a");
    assert_eq!(card["skills"][0]["id"], "seller-gpu");
    assert_eq!(
        card["skills"][0]["tags"],
        serde_json::json!(["compute", "gpu"])
    );
    let extension = &card["capabilities"]["extensions"][0];
    assert_eq!(extension["uri"], agentrail_wire::api::MARKET_EXTENSION_URI);
    assert_eq!(extension["params"]["listings"][0]["stake_held"], "20000000");

    // Unknown things are 404 with their own codes; bad ids are 400.
    for (path, code) in [
        ("/v1/tasks/nope", "task_not_found"),
        ("/v1/rfqs/nope", "rfq_not_found"),
        ("/v1/listings/nope", "listing_not_found"),
        ("/v1/licenses/nope", "license_not_found"),
    ] {
        let (status, body) = get(&node, path).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some(code)),
            "{path}"
        );
    }
    let long = "x".repeat(65);
    let (status, _) = get(&node, &format!("/v1/tasks/{long}")).await;
    assert_eq!(status, 400);

    // A task up to a dispute; refusals carry 4xx statuses.
    let request = RequestQuotes {
        arbiter: Some(did(&arbiter)),
        ..kit::rfq("m-rfq", did(&buyer), "gpu", usd(10), 3_600)
    };
    client
        .submit(&buyer, &kit::request_quotes(request))
        .await
        .unwrap();
    let open = client
        .rfqs(&agentrail_core::market::RfqQuery {
            capability: Some("gpu".into()),
            provider: Some(did(&seller)),
            offset: 0,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(open.rfqs.len(), 1, "the seller finds the open request");
    let (status, body) = get(&node, "/v1/rfqs?provider=did:key:nope").await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("provider"))
    );
    let quote = kit::quote("m-quote", "m-rfq", did(&seller), Some("seller-gpu"), usd(9));
    client.submit(&seller, &quote).await.unwrap();
    let refused = client
        .submit(&seller, &kit::counter("m-quote", usd(8)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("offer_out_of_turn"));
    assert!(matches!(
        refused,
        agentrail_client::ClientError::Api { status: 409, .. }
    ));
    client
        .submit(&buyer, &kit::accept("m-quote", "m-task"))
        .await
        .unwrap();
    client
        .submit(&seller, &kit::deliver("m-task", b"out", &[]))
        .await
        .unwrap();
    client
        .submit(&buyer, &kit::dispute("m-task", "wrong output"))
        .await
        .unwrap();
    let refused = client
        .submit(&buyer, &kit::resolve("m-task", 0))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("not_arbiter"));
    assert!(matches!(
        refused,
        agentrail_client::ClientError::Api { status: 403, .. }
    ));

    // The passport shows listings and reputation.
    let passport = client.passport(&did(&seller)).await.unwrap();
    assert_eq!(passport.listings.len(), 1);
    assert_eq!(passport.reputation.unwrap().score, 0);

    // A restart replays the market from the journal; the arbiter rules after it.
    node.stop();
    let node = Node::start(data.path());
    let client = node.client.clone();
    let task = client.task("m-task").await.unwrap();
    assert!(
        matches!(task.status, TaskStatus::Disputed { .. }),
        "{:?}",
        task.status
    );
    client
        .submit(&arbiter, &kit::resolve("m-task", 0))
        .await
        .unwrap();
    let buyer_balance = client.balance(&did(&buyer)).await.unwrap();
    assert_eq!(buyer_balance.available, usd(70), "refund and slashed stake");
    let reputation = client.reputation(&did(&seller)).await.unwrap();
    assert_eq!(reputation.disputes_lost, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_market_cli_hires_delivers_and_pays() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path());
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(args)
            .env("AGENTRAIL_NODE", &node.url)
            .output()
            .expect("the CLI runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let mut dids = Vec::new();
    for name in ["buyer.key", "seller.key"] {
        let (_, out, _) = run(&["key", "generate", "--out", &path(name)]);
        dids.push(out.trim().to_owned());
        assert_eq!(
            run(&["principal", "register", "--key", &path(name)]).0,
            Some(0)
        );
    }
    let (buyer, seller) = (&dids[0], &dids[1]);
    assert_eq!(run(&["faucet", "--to", buyer, "--amount", "20"]).0, Some(0));
    std::fs::write(path("result.txt"), "the renewed server").unwrap();
    let (buyer_key, seller_key, result) =
        (path("buyer.key"), path("seller.key"), path("result.txt"));
    let steps: [&[&str]; 6] = [
        &[
            "market",
            "publish",
            "--key",
            &seller_key,
            "--id",
            "cli-gpu",
            "--name",
            "GPU hours",
            "--capability",
            "compute",
            "--price",
            "4",
        ],
        &[
            "market",
            "rfq",
            "--key",
            &buyer_key,
            "--id",
            "cli-rfq",
            "--capability",
            "compute",
            "--budget",
            "5",
            "--deadline",
            "2h",
        ],
        &[
            "market",
            "quote",
            "--key",
            &seller_key,
            "--rfq",
            "cli-rfq",
            "--id",
            "cli-q",
            "--listing",
            "cli-gpu",
            "--price",
            "4",
        ],
        &[
            "market", "accept", "--key", &buyer_key, "--quote", "cli-q", "--task", "cli-t",
        ],
        &[
            "market",
            "deliver",
            "--key",
            &seller_key,
            "--task",
            "cli-t",
            "--result",
            &result,
        ],
        &[
            "market", "approve", "--key", &buyer_key, "--task", "cli-t", "--result", &result,
        ],
    ];
    for args in steps {
        let (code, out, err) = run(args);
        assert_eq!(code, Some(0), "{args:?}: {out}{err}");
        assert!(out.starts_with("accepted as journal entry"), "{out}");
    }
    // A refusal exits 1 with its code.
    let (code, _, err) = run(&[
        "market", "approve", "--key", &buyer_key, "--task", "cli-t", "--result", &result,
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("task_wrong_state"), "{err}");
    let (_, listings, _) = run(&["market", "listings", "--capability", "compute"]);
    assert!(
        listings.contains("cli-gpu") && listings.contains("1 listing(s)"),
        "{listings}"
    );
    let (_, task, _) = run(&["--json", "market", "task", "cli-t"]);
    let task: serde_json::Value = serde_json::from_str(task.trim()).unwrap();
    assert_eq!(task["status"]["state"], "approved");
    let (_, card, _) = run(&["market", "card", seller]);
    assert!(card.contains("\"protocolVersion\": \"0.3.0\""), "{card}");
    let (_, passport, _) = run(&["passport", seller]);
    assert!(
        passport.contains("listing cli-gpu") && passport.contains("reputation:"),
        "{passport}"
    );
    assert_eq!(
        node.client
            .balance(&buyer.parse().unwrap())
            .await
            .unwrap()
            .available,
        usd(16)
    );
}
