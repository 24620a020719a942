//! The OpenAPI 3 document served at `/v1/openapi.json`, built from the
//! route table below (the router serves exactly these routes; a test checks
//! that each one answers).

use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

/// (method, path, summary, request schema, response schema).
pub const ROUTES: [(&str, &str, &str, Option<&str>, &str); 31] = [
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
        "/v1/principals/{did}/agents",
        "A principal's agents, oldest first: each grant with spending and exposure, account and sessions",
        None,
        "AgentsPage",
    ),
    (
        "get",
        "/v1/principals/{did}/approvals",
        "Payments from a principal's accounts that wait for its approval, in id order",
        None,
        "ApprovalsPage",
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
        "ListingView",
    ),
    (
        "get",
        "/v1/rfqs",
        "Open requests for quotes, by capability and by a provider that may quote on them",
        None,
        "RfqPage",
    ),
    (
        "get",
        "/v1/rfqs/{id}",
        "A request for quotes and its quotes",
        None,
        "RfqView",
    ),
    (
        "get",
        "/v1/tasks/{id}",
        "An escrowed task: terms, terms hash, state",
        None,
        "TaskView",
    ),
    (
        "get",
        "/v1/subscriptions/{id}",
        "A subscription: terms, the key whose mandate pays, what was collected and when",
        None,
        "SubscriptionView",
    ),
    (
        "get",
        "/v1/bounties/{id}",
        "A bounty: terms, budget, each contribution with its speed, score and payout",
        None,
        "BountyView",
    ),
    (
        "get",
        "/v1/orders/{id}",
        "An order: its legs (or milestones), each leg's state, what the escrow holds",
        None,
        "OrderView",
    ),
    (
        "get",
        "/v1/licenses/{id}",
        "A dataset licence: content hash, licensee, royalties paid",
        None,
        "LicenseView",
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

/// How a route's body is written: JSON of a named type, text or bytes.
fn content(name: &str, generator: &mut SchemaGenerator) -> (&'static str, Value) {
    use agentrail_core::market::{
        DiscoveryPage, LicenseView, ListingView, RfqPage, RfqView, TaskView,
    };
    use agentrail_wire::api;
    let schema = match name {
        "Text" => return ("text/plain", json!({"type": "string"})),
        "Binary" => {
            return (
                "application/octet-stream",
                json!({"type": "string", "format": "binary"}),
            );
        }
        "Object" => return ("application/json", json!({"type": "object"})),
        "Command" => generator.subschema_for::<agentrail_core::Command>(),
        "CommandResponse" => generator.subschema_for::<api::CommandResponse>(),
        "FaucetRequest" => generator.subschema_for::<api::FaucetRequest>(),
        "BalanceResponse" => generator.subschema_for::<api::BalanceResponse>(),
        "HistoryPage" => generator.subschema_for::<api::HistoryPage>(),
        "GrantStatus" => generator.subschema_for::<agentrail_core::state::GrantStatus>(),
        "Passport" => generator.subschema_for::<api::Passport>(),
        "Health" => generator.subschema_for::<api::Health>(),
        "HoldResponse" => generator.subschema_for::<api::HoldResponse>(),
        "ChannelView" => generator.subschema_for::<agentrail_core::state::ChannelView>(),
        "ApprovalResponse" => generator.subschema_for::<api::ApprovalResponse>(),
        "AgentsPage" => generator.subschema_for::<api::AgentsPage>(),
        "ApprovalsPage" => generator.subschema_for::<api::ApprovalsPage>(),
        "DiscoveryPage" => generator.subschema_for::<DiscoveryPage>(),
        "ListingView" => generator.subschema_for::<ListingView>(),
        "RfqPage" => generator.subschema_for::<RfqPage>(),
        "RfqView" => generator.subschema_for::<RfqView>(),
        "TaskView" => generator.subschema_for::<TaskView>(),
        "SubscriptionView" => {
            generator.subschema_for::<agentrail_core::economy::SubscriptionView>()
        }
        "BountyView" => generator.subschema_for::<agentrail_core::economy::BountyView>(),
        "OrderView" => generator.subschema_for::<agentrail_core::economy::OrderView>(),
        "LicenseView" => generator.subschema_for::<LicenseView>(),
        "Reputation" => generator.subschema_for::<agentrail_core::reputation::Reputation>(),
        "AgentCard" => generator.subschema_for::<api::AgentCard>(),
        "LogEntry" => generator.subschema_for::<api::LogEntry>(),
        "ConsistencyProof" => generator.subschema_for::<api::ConsistencyProof>(),
        "Receipt" => generator.subschema_for::<agentrail_log::receipt::Receipt>(),
        other => unreachable!("no schema named {other}"),
    };
    ("application/json", schema.to_value())
}

fn operation(
    generator: &mut SchemaGenerator,
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
    if path.ends_with("/agents") {
        parameters.push(
            json!({"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}}),
        );
        parameters.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": agentrail_wire::api::AGENTS_PAGE_MAX}}));
    }
    if path.ends_with("/approvals") {
        parameters.push(
            json!({"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}}),
        );
        parameters.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": agentrail_wire::api::APPROVALS_PAGE_MAX}}));
    }
    if path.ends_with("/history") {
        parameters.push(json!({"name": "before", "in": "query", "schema": {"type": "integer"}}));
        parameters.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}}));
    }
    let error = generator
        .subschema_for::<agentrail_wire::api::ErrorBody>()
        .to_value();
    let error = json!({"description": "refused: `error.code` is one of the codes of `x-error-codes`", "content": {"application/json": {"schema": error}}});
    let (response_type, response_schema) = content(response, generator);
    let mut op = json!({
        "summary": summary,
        "operationId": format!("{method}_{}", path.trim_start_matches('/').replace(['/', '{', '}', '.'], "_")),
        "parameters": parameters,
        "responses": {
            "200": {"description": "ok", "content": {response_type: {"schema": response_schema}}},
            "4XX": error.clone(),
            "503": error
        }
    });
    if let Some(request) = request {
        let (request_type, request_schema) = content(request, generator);
        op["requestBody"] =
            json!({"required": true, "content": {request_type: {"schema": request_schema}}});
    }
    if method == "post" && path == "/v1/commands" {
        // The command of docs/vectors.json#request, signed there.
        op["requestBody"]["content"]["application/json"]["examples"] = json!({
            "transfer": {"summary": "1.5 USD from an agent to a payee", "value": {
                "type": "transfer",
                "from": "did:key:z6Mko9hTggMwjSTEaJaPUfE6tqcy2xvU6BnNq3e3o8qVBiyH",
                "to": "did:key:z6MkvRXNYcE7MMduynWTgeKbDaT1iijDSC8pZqXZc8rHPrf2",
                "amount": "1500000",
                "idempotency_key": "vector-1"
            }}
        });
        op["parameters"] = json!([
            {"name": "Content-Digest", "in": "header", "required": true, "schema": {"type": "string"}, "description": "sha-256=:<base64 SHA-256 of the body>: (RFC 9530)"}
        ]);
        op["security"] = json!([{"httpMessageSignature": []}]);
    }
    op
}

/// The document, as JSON text.
pub fn document() -> String {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|settings| settings.definitions_path = "#/components/schemas/".into())
        .into_generator();
    let mut paths = serde_json::Map::new();
    for (method, path, summary, request, response) in ROUTES {
        let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        entry[method] = operation(&mut generator, method, path, summary, request, response);
    }
    let mut schemas: serde_json::Map<String, Value> = generator.take_definitions(true);
    let codes = error_codes();
    if let Some(code) = schemas
        .get_mut("ErrorDetail")
        .and_then(|detail| detail.pointer_mut("/properties/code"))
    {
        code["enum"] = codes
            .as_object()
            .map(|c| c.keys().cloned().collect::<Vec<_>>())
            .into();
    }
    let document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "agentrail node API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The wire contract: docs/protocol.md; its known-answer vectors: docs/vectors.json."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "httpMessageSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Signature",
                    "description": "RFC 9421 HTTP Message Signature with Ed25519 (Signature-Input and Signature headers) covering \"@method\", \"@path\" and \"content-digest\", with created, nonce, keyid (the signer's did:key) and tag (the network id); see docs/protocol.md"
                }
            }
        },
        "x-error-codes": codes
    });
    serde_json::to_string(&document).expect("the document is JSON")
}

/// The message templates of the state machine's rejections, by code, read
/// from the `#[error(…)]` attribute of each `Rejection` variant (fields in
/// braces are filled in the real message).
fn rejection_messages() -> std::collections::BTreeMap<&'static str, &'static str> {
    const SOURCE: &str = include_str!("../../agentrail-core/src/rejection.rs");
    let mut by_variant = std::collections::BTreeMap::new();
    let mut template = None;
    for line in SOURCE.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("#[error(\"") {
            template = rest.strip_suffix("\")]");
        } else if let Some(template) = template.take() {
            let variant = line
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or("");
            by_variant.insert(variant, template);
        }
    }
    let mut by_code = std::collections::BTreeMap::new();
    for line in SOURCE.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("Rejection::") else {
            continue;
        };
        let variant = rest
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or("");
        if let (Some((_, code)), Some(template)) =
            (rest.split_once("=> \""), by_variant.get(variant))
        {
            by_code.insert(code.trim_end_matches("\","), *template);
        }
    }
    by_code
}

/// Every stable error code the node answers, with its HTTP status and
/// what it means.
fn error_codes() -> Value {
    let messages = rejection_messages();
    let mut codes = serde_json::Map::new();
    for code in crate::http::REJECTION_CODES {
        let description = match messages.get(code) {
            Some(&"{0}") | None => "refused by the ledger's rules; the message says why",
            Some(template) => template,
        };
        codes.insert(
            code.to_owned(),
            json!({"status": crate::http::status_of(code).as_u16(), "description": description}),
        );
    }
    for (code, status, description) in crate::http::HTTP_CODES {
        codes
            .entry(code.to_owned())
            .or_insert(json!({"status": status, "description": description}));
    }
    Value::Object(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document_value() -> Value {
        serde_json::from_str(&document()).unwrap()
    }

    /// Every command and every event has a schema with its properties, and
    /// every read its own.
    #[test]
    fn every_command_event_and_read_has_properties() {
        let document = document_value();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        let variants = |name: &str| -> Vec<Value> {
            let schema = &schemas[name];
            schema["oneOf"]
                .as_array()
                .or(schema["anyOf"].as_array())
                .unwrap_or_else(|| panic!("{name} is not a union: {schema}"))
                .clone()
        };
        let commands = variants("Command");
        // Every command, the clock's `tick` (which only the node journals) and the
        // operator's `settle_withdrawal` included.
        assert_eq!(commands.len(), 44, "one schema per command");
        for command in commands.iter().chain(variants("Event").iter()) {
            let tag = &command["properties"]["type"];
            assert!(tag["const"].is_string(), "tagged by type: {command}");
            assert!(
                command["properties"].as_object().unwrap().len() > 1
                    || command["required"].as_array().is_some_and(|r| r.len() == 1),
                "{command}"
            );
        }
        for read in [
            "GrantStatus",
            "Passport",
            "Health",
            "AgentCard",
            "ChannelView",
            "HistoryPage",
        ] {
            assert!(
                schemas[read]["properties"]
                    .as_object()
                    .is_some_and(|p| !p.is_empty()),
                "{read} has properties"
            );
        }
        // Every reference resolves.
        let text = document.to_string();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &reference[..reference.find('"').unwrap()];
            assert!(
                schemas.contains_key(name),
                "{name} is referenced but missing"
            );
        }
        // Text and bytes are declared as what they are.
        let checkpoint = &document["paths"]["/checkpoint"]["get"]["responses"]["200"]["content"];
        assert!(checkpoint.get("text/plain").is_some(), "{checkpoint}");
        assert!(document["components"]["securitySchemes"]["httpMessageSignature"].is_object());
        // The example is a command the schema takes (its fields, its tag).
        let example = &document["paths"]["/v1/commands"]["post"]["requestBody"]["content"]["application/json"]
            ["examples"]["transfer"]["value"];
        let command: agentrail_core::Command = serde_json::from_value(example.clone()).unwrap();
        assert!(matches!(command, agentrail_core::Command::Transfer(_)));
    }

    /// The codes listed are the state machine's, each with its status.
    #[test]
    fn the_error_codes_are_the_ones_the_sources_answer() {
        let source = include_str!("../../agentrail-core/src/rejection.rs");
        let start = source.find("pub fn code(&self)").unwrap();
        let body = &source[start..start + source[start..].find("\n    }\n").unwrap()];
        let mut codes: Vec<&str> = body
            .split("=> \"")
            .skip(1)
            .map(|rest| &rest[..rest.find('"').unwrap()])
            .collect();
        codes.sort_unstable();
        codes.dedup();
        let mut listed = crate::http::REJECTION_CODES.to_vec();
        listed.sort_unstable();
        assert_eq!(listed, codes);
        let node_sources = [
            include_str!("http.rs"),
            include_str!("market_http.rs"),
            include_str!("limits.rs"),
        ]
        .concat();
        for (code, _, _) in crate::http::HTTP_CODES {
            let quoted = format!("\"{code}\"");
            let wire = include_str!("../../agentrail-wire/src/httpsig.rs");
            assert!(
                node_sources.matches(&quoted).count() > 1 || wire.contains(&quoted),
                "{code} is answered somewhere"
            );
        }
        let document = document_value();
        let codes = &document["x-error-codes"];
        assert_eq!(codes["insufficient_funds"]["status"], 409);
        assert_eq!(codes["nonce_reused"]["status"], 401);
        for (code, listed) in codes.as_object().unwrap() {
            let description = listed["description"].as_str().unwrap();
            assert!(description.len() > 10, "{code}: {description}");
        }
        assert!(
            codes["grant_expired"]["description"]
                .as_str()
                .unwrap()
                .contains("expired")
        );
        let detail =
            &document["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"];
        assert_eq!(
            detail.as_array().unwrap().len(),
            codes.as_object().unwrap().len()
        );
    }
}
