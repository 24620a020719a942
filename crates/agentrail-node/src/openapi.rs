//! The OpenAPI 3 document served at `/v1/openapi.json`, built from the
//! route table below (the router serves exactly these routes; a test checks
//! that each one answers).

use serde_json::{Value, json};

/// (method, path, summary, request schema, response schema).
pub const ROUTES: [(&str, &str, &str, Option<&str>, &str); 26] = [
    (
        "post",
        "/v1/commands",
        "Submit a signed command (RFC 9421 signature over @method, @path, content-digest)",
        Some("Command"),
        "CommandResponse",
    ),
    (
        "post",
        "/v1/faucet",
        "Dev mode: deposit from the operator key",
        Some("FaucetRequest"),
        "CommandResponse",
    ),
    (
        "get",
        "/v1/accounts/{did}/balance",
        "Available and held money of an account",
        None,
        "BalanceResponse",
    ),
    (
        "get",
        "/v1/accounts/{did}/history",
        "Journal entries that concern an identity, newest first",
        None,
        "HistoryPage",
    ),
    (
        "get",
        "/v1/grants/{did}",
        "Grant of an agent or session: limits, spending, exposure",
        None,
        "GrantStatus",
    ),
    (
        "get",
        "/v1/passports/{did}",
        "Owner chain, rights, balance and recent history of an identity",
        None,
        "Passport",
    ),
    (
        "get",
        "/v1/health",
        "Liveness and journal length",
        None,
        "Health",
    ),
    (
        "get",
        "/v1/holds/{id}",
        "Where a hold stands",
        None,
        "HoldResponse",
    ),
    (
        "get",
        "/v1/channels/{id}",
        "A payment channel: parties, deposit, collected, status, the best voucher redeemed per sub-channel",
        None,
        "ChannelView",
    ),
    (
        "get",
        "/v1/approvals/{index}",
        "Where a payment awaiting approval stands",
        None,
        "ApprovalResponse",
    ),
    (
        "get",
        "/v1/listings",
        "Discovery: live listings filtered by capability, kind, price ceiling and minimum reputation, ranked, paginated",
        None,
        "DiscoveryPage",
    ),
    (
        "get",
        "/v1/listings/{id}",
        "A listing (agent card entry): pricing, stake, revenue share, status",
        None,
        "Object",
    ),
    (
        "get",
        "/v1/rfqs",
        "Open requests for quotes, by capability and by a provider that may quote on them",
        None,
        "Object",
    ),
    (
        "get",
        "/v1/rfqs/{id}",
        "A request for quotes and its quotes",
        None,
        "Object",
    ),
    (
        "get",
        "/v1/tasks/{id}",
        "An escrowed task: terms, terms hash, state",
        None,
        "Object",
    ),
    (
        "get",
        "/v1/licenses/{id}",
        "A dataset licence: content hash, licensee, royalties paid",
        None,
        "Object",
    ),
    (
        "get",
        "/v1/reputation/{did}",
        "Reputation score (0-1000) and its components",
        None,
        "Reputation",
    ),
    (
        "get",
        "/v1/agents/{did}/card",
        "The identity's listings as an A2A Agent Card",
        None,
        "AgentCard",
    ),
    (
        "get",
        "/checkpoint",
        "The newest signed checkpoint (C2SP tlog-checkpoint in a signed note, text)",
        None,
        "Text",
    ),
    (
        "get",
        "/v1/log/key",
        "The log's signed-note verifier key (text)",
        None,
        "Text",
    ),
    (
        "get",
        "/v1/log/entries/{index}",
        "One leaf of the log (a journal entry) and its hash",
        None,
        "LogEntry",
    ),
    (
        "get",
        "/v1/log/proof/consistency",
        "RFC 9162 consistency proof between two tree sizes",
        None,
        "ConsistencyProof",
    ),
    (
        "get",
        "/v1/receipts/{index}",
        "A self-contained receipt: leaf, inclusion proof and signed checkpoint",
        None,
        "Receipt",
    ),
    (
        "get",
        "/tile/{path}",
        "C2SP tlog-tiles: hash tiles and entry bundles (binary)",
        None,
        "Binary",
    ),
    ("get", "/v1/openapi.json", "This document", None, "Object"),
    ("get", "/metrics", "Prometheus metrics (text)", None, "Text"),
];

fn schemas() -> Value {
    let did = json!({"type": "string", "pattern": "^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$"});
    let amount = json!({"type": "string", "pattern": "^(0|[1-9][0-9]{0,38})$", "description": "atomic units; 1 USD = 1000000"});
    json!({
        "Did": did,
        "Amount": amount,
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string"}, "message": {"type": "string"}, "param": {"type": "string"}}}}},
        "Command": {"type": "object", "required": ["type"], "description": "A ledger command; see ARCHITECTURE.md", "properties": {"type": {"type": "string", "enum": [
            "register_principal", "register_agent", "issue_session", "revoke", "deposit", "withdraw", "transfer", "hold", "release", "void", "approve", "decline",
            "open_channel", "top_up_channel", "collect_channel", "close_channel", "start_channel_close",
            "publish_listing", "withdraw_listing", "request_quotes", "submit_quote", "counter_quote", "accept_quote",
            "deliver_task", "approve_task", "dispute_task", "resolve_dispute", "license_dataset"]}}},
        "CommandResponse": {"type": "object", "required": ["index", "time", "events", "receipt"], "properties": {
            "index": {"type": "integer"}, "time": {"type": "integer"}, "events": {"type": "array", "items": {"type": "object"}},
            "receipt": {"type": "object", "required": ["index", "leaf_hash"], "properties": {"index": {"type": "integer"}, "leaf_hash": {"type": "string", "format": "byte"}}}}},
        "LogEntry": {"type": "object", "required": ["index", "leaf", "leaf_hash"], "properties": {
            "index": {"type": "integer"}, "leaf": {"type": "string", "format": "byte"}, "leaf_hash": {"type": "string", "format": "byte"}}},
        "ConsistencyProof": {"type": "object", "required": ["from", "to", "proof"], "properties": {
            "from": {"type": "integer"}, "to": {"type": "integer"}, "proof": {"type": "array", "items": {"type": "string", "format": "byte"}}}},
        "Receipt": {"type": "object", "required": ["index", "tree_size", "leaf", "leaf_hash", "inclusion_proof", "checkpoint"], "properties": {
            "index": {"type": "integer"}, "tree_size": {"type": "integer"}, "leaf": {"type": "string", "format": "byte"}, "leaf_hash": {"type": "string", "format": "byte"},
            "inclusion_proof": {"type": "array", "items": {"type": "string", "format": "byte"}}, "checkpoint": {"type": "string"}}},
        "Binary": {"type": "string", "format": "binary"},
        "HoldResponse": {"type": "object", "required": ["id", "status"], "properties": {"id": {"type": "string"}, "status": {"type": "string", "enum": ["reserved", "released", "voided", "expired"]}}},
        "ChannelView": {"type": "object", "required": ["channel_id", "from", "payee", "voucher_key", "deposit", "collected", "expires_at", "dispute_window_s", "status", "sub_channels"], "properties": {
            "channel_id": {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "from": {"$ref": "#/components/schemas/Did"}, "payee": {"$ref": "#/components/schemas/Did"},
            "voucher_key": {"$ref": "#/components/schemas/Did"}, "deposit": {"$ref": "#/components/schemas/Amount"}, "collected": {"$ref": "#/components/schemas/Amount"},
            "expires_at": {"type": "integer"}, "dispute_window_s": {"type": "integer"},
            "status": {"type": "object", "required": ["state"], "properties": {"state": {"type": "string", "enum": ["open", "closing", "closed", "expired"]}, "closes_at": {"type": "integer"}}},
            "sub_channels": {"type": "object", "additionalProperties": {"type": "object", "required": ["nonce", "amount"], "properties": {"nonce": {"type": "integer"}, "amount": {"$ref": "#/components/schemas/Amount"}}}}}},
        "ApprovalResponse": {"type": "object", "required": ["id", "status"], "properties": {"id": {"type": "integer"}, "status": {"type": "string"}}},
        "FaucetRequest": {"type": "object", "required": ["to", "amount"], "properties": {"to": {"$ref": "#/components/schemas/Did"}, "amount": {"$ref": "#/components/schemas/Amount"}}},
        "BalanceResponse": {"type": "object", "required": ["did", "available", "held"], "properties": {
            "did": {"$ref": "#/components/schemas/Did"}, "available": {"$ref": "#/components/schemas/Amount"}, "held": {"$ref": "#/components/schemas/Amount"}}},
        "HistoryPage": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {"type": "object"}}, "next_before": {"type": "integer", "nullable": true}}},
        "GrantStatus": {"type": "object"},
        "Passport": {"type": "object", "required": ["did", "kind", "owner_chain"]},
        "Health": {"type": "object", "required": ["status", "journal_len", "clock", "dev", "operator", "network"]},
        "DiscoveryPage": {"type": "object", "required": ["listings", "total"], "properties": {
            "listings": {"type": "array", "items": {"type": "object", "required": ["listing", "reputation"]}}, "total": {"type": "integer"}, "next_offset": {"type": "integer", "nullable": true}}},
        "Reputation": {"type": "object", "required": ["version", "score"], "properties": {"version": {"type": "integer"}, "score": {"type": "integer", "minimum": 0, "maximum": 1000}}},
        "AgentCard": {"type": "object", "required": ["protocolVersion", "name", "description", "url", "version", "capabilities", "defaultInputModes", "defaultOutputModes", "skills"]},
        "Object": {"type": "object"},
        "Text": {"type": "string"}
    })
}

fn operation(
    method: &str,
    path: &str,
    summary: &str,
    request: Option<&str>,
    response: &str,
) -> Value {
    let mut parameters = Vec::new();
    if path.contains("{did}") {
        parameters.push(json!({"name": "did", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/Did"}}));
    }
    if path.contains("{id}") {
        parameters.push(
            json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}),
        );
    }
    if path.contains("{index}") {
        parameters.push(json!({"name": "index", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0}}));
    }
    if path.contains("{path}") {
        parameters.push(json!({"name": "path", "in": "path", "required": true, "schema": {"type": "string"}, "description": "<L>/<N>[.p/<W>] or entries/<N>[.p/<W>]"}));
    }
    if path.ends_with("/consistency") {
        parameters.push(json!({"name": "from", "in": "query", "required": true, "schema": {"type": "integer", "minimum": 0}}));
        parameters.push(json!({"name": "to", "in": "query", "required": true, "schema": {"type": "integer", "minimum": 0}}));
    }
    if path == "/v1/listings" {
        for (name, schema) in [
            ("capability", json!({"type": "string"})),
            (
                "kind",
                json!({"type": "string", "enum": ["service", "dataset"]}),
            ),
            ("max_price", json!({"$ref": "#/components/schemas/Amount"})),
            (
                "min_reputation",
                json!({"type": "integer", "minimum": 0, "maximum": 1000}),
            ),
            ("offset", json!({"type": "integer", "minimum": 0})),
            (
                "limit",
                json!({"type": "integer", "minimum": 1, "maximum": 100}),
            ),
        ] {
            parameters.push(json!({"name": name, "in": "query", "schema": schema}));
        }
    }
    if path == "/v1/rfqs" {
        for (name, schema) in [
            ("capability", json!({"type": "string"})),
            ("provider", json!({"$ref": "#/components/schemas/Did"})),
            ("offset", json!({"type": "integer", "minimum": 0})),
            (
                "limit",
                json!({"type": "integer", "minimum": 1, "maximum": 100}),
            ),
        ] {
            parameters.push(json!({"name": name, "in": "query", "schema": schema}));
        }
    }
    if path.ends_with("/history") {
        parameters.push(json!({"name": "before", "in": "query", "schema": {"type": "integer"}}));
        parameters.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}}));
    }
    let error = json!({"description": "refused", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut op = json!({
        "summary": summary,
        "operationId": format!("{method}_{}", path.trim_start_matches('/').replace(['/', '{', '}', '.'], "_")),
        "parameters": parameters,
        "responses": {
            "200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{response}")}}}},
            "4XX": error.clone(),
            "503": error
        }
    });
    if let Some(request) = request {
        op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{request}")}}}});
    }
    if method == "post" && path == "/v1/commands" {
        op["parameters"] = json!([
            {"name": "Signature-Input", "in": "header", "required": true, "schema": {"type": "string"}},
            {"name": "Signature", "in": "header", "required": true, "schema": {"type": "string"}},
            {"name": "Content-Digest", "in": "header", "required": true, "schema": {"type": "string"}}
        ]);
    }
    op
}

/// The document, as JSON text.
pub fn document() -> String {
    let mut paths = serde_json::Map::new();
    for (method, path, summary, request, response) in ROUTES {
        let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        entry[method] = operation(method, path, summary, request, response);
    }
    let document = json!({
        "openapi": "3.0.3",
        "info": {"title": "agentrail node API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {"schemas": schemas()}
    });
    serde_json::to_string(&document).expect("the document is JSON")
}
