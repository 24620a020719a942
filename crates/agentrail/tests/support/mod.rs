//! Starts the real `agentrail` binary on a loopback port, as a user would.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use agentrail_client::Client;
use agentrail_core::{Amount, Did};
use ed25519_dalek::SigningKey;

pub const BIN: &str = env!("CARGO_BIN_EXE_agentrail");
/// The file in a node's data directory that its stderr goes to.
pub const NODE_LOG: &str = "node.log";

/// How many times a node on `data` panicked, by its log.
pub fn panics(data: &Path) -> usize {
    std::fs::read_to_string(data.join(NODE_LOG))
        .map(|log| log.matches("panicked at").count())
        .unwrap_or(0)
}

pub struct Node {
    pub child: Child,
    pub url: String,
    pub client: Client,
    pub data: PathBuf,
}

impl Node {
    /// Starts `agentrail serve --dev` on `data` and waits until it listens.
    pub fn start(data: &Path) -> Node {
        Node::start_with(data, &[])
    }

    /// [`Node::start`] with extra `serve` arguments.
    pub fn start_with(data: &Path, extra: &[&str]) -> Node {
        Node::start_on(data, "127.0.0.1:0", extra)
    }

    /// [`Node::start_with`] listening on `listen`.
    pub fn start_on(data: &Path, listen: &str, extra: &[&str]) -> Node {
        // The node's log goes next to its data, appended across restarts,
        // so a test can look for panics afterwards.
        std::fs::create_dir_all(data).expect("the data directory");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.join(NODE_LOG))
            .expect("the node's log file");
        let mut child = Command::new(BIN)
            .args(["serve", "--dev", "--listen", listen, "--data"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the agentrail binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the node prints its address");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("an address")
            .to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:") || url.starts_with("https://127.0.0.1:"),
            "unexpected first line: {line:?}"
        );
        Node {
            child,
            client: Client::new(&url).with_observer(check_answer),
            url,
            data: data.to_owned(),
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = self.child.wait().expect("reaped");
        assert!(exit.success(), "the node exited with {exit}");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Registers `principal` and each of `agents` under a one-day grant of
/// `limits` (tagged `tag`), and funds each agent with `funding` from the
/// dev faucet.
pub async fn register_funded_agents(
    client: &Client,
    principal: &SigningKey,
    agents: &[SigningKey],
    limits: agentrail_core::grant::Limits,
    funding: Amount,
    tag: &str,
) {
    use agentrail_sim::kit;
    client
        .submit(principal, &kit::register_principal(did(principal)))
        .await
        .unwrap();
    let t = now();
    for agent in agents {
        let grant = kit::grant(
            principal,
            did(agent),
            agentrail_core::grant::Role::Agent,
            limits.clone(),
            t,
            agentrail_core::Timestamp(t.0 + 86_400),
            tag,
        );
        client
            .submit(principal, &kit::register_agent(grant))
            .await
            .unwrap();
        client.faucet(did(agent), funding).await.unwrap();
    }
}

pub fn key(label: &str) -> SigningKey {
    agentrail_sim::kit::key(label)
}

pub fn did(key: &SigningKey) -> Did {
    Did::from_verifying_key(&key.verifying_key())
}

pub fn usd(whole: u128) -> Amount {
    Amount::from_atomic(whole * 1_000_000)
}

/// The real clock, as the node reads it.
pub fn now() -> agentrail_core::Timestamp {
    agentrail_core::Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
}

/// The escrow of those of `tasks` still running (funded or delivered), in
/// atomic units: money the ledger must hold for them.
pub async fn running_escrow(client: &Client, tasks: &[String]) -> u128 {
    let mut held = 0;
    for task in tasks {
        if let Ok(view) = client.task(task).await
            && matches!(
                view.status,
                agentrail_core::market::TaskStatus::Funded
                    | agentrail_core::market::TaskStatus::Delivered { .. }
            )
        {
            held += view.terms.price.atomic();
        }
    }
    held
}

/// The money in `accounts`, in atomic units: (available + held, held).
pub async fn money_of(client: &Client, accounts: &[SigningKey]) -> (u128, u128) {
    let (mut total, mut held) = (0u128, 0u128);
    for account in accounts {
        let balance = client.balance(&did(account)).await.expect("a balance");
        held += balance.held.atomic();
        total += balance.available.atomic() + balance.held.atomic();
    }
    (total, held)
}

/// An answer of 500 or worse other than 503 (busy, retry): a bug behind it.
pub fn is_server_error(error: &agentrail_client::ClientError) -> bool {
    matches!(error, agentrail_client::ClientError::Api { status, .. } if *status >= 500 && *status != 503)
}

/// The headers of a request to `/v1/commands` signed as another RFC 9421
/// library may sign it: under `label`, the components in the order given,
/// the parameters as PyPI's `http-message-signatures` writes them
/// (`created;keyid;alg;nonce;tag`).
#[allow(dead_code)]
pub fn signed_in_shape(
    signer: &SigningKey,
    body: &[u8],
    network: &str,
    label: &str,
    components: [&str; 3],
    created: u64,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    use base64::Engine;
    use ed25519_dalek::Signer;
    let digest = agentrail_wire::httpsig::content_digest(body);
    let keyid = did(signer);
    let inner = format!(
        r#"({});created={created};keyid="{keyid}";alg="ed25519";nonce="{nonce}";tag="{network}""#,
        components.map(|c| format!("\"{c}\"")).join(" "),
    );
    let mut base = String::new();
    for component in components {
        let value = match component {
            "@method" => "POST",
            "@path" => "/v1/commands",
            _ => digest.as_str(),
        };
        base.push_str(&format!("\"{component}\": {value}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {inner}"));
    let signature =
        base64::engine::general_purpose::STANDARD.encode(signer.sign(base.as_bytes()).to_bytes());
    vec![
        ("content-digest", digest),
        ("signature-input", format!("{label}={inner}")),
        ("signature", format!("{label}=:{signature}:")),
    ]
}

/// The OpenAPI document and a validator per schema it names.
struct Contract {
    document: serde_json::Value,
    validators:
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

fn contract() -> &'static Contract {
    static CONTRACT: std::sync::OnceLock<Contract> = std::sync::OnceLock::new();
    CONTRACT.get_or_init(|| Contract {
        document: serde_json::from_str(&agentrail_node::openapi::document())
            .expect("the document is JSON"),
        validators: Default::default(),
    })
}

/// The route of the document a concrete path is an instance of.
fn route_of(path: &str) -> Option<&'static str> {
    let path = path.split('?').next().unwrap_or(path);
    agentrail_node::openapi::ROUTES
        .iter()
        .map(|route| route.1)
        .find(|template| {
            let (mut asked, mut listed) = (path.split('/'), template.split('/'));
            loop {
                match (asked.next(), listed.next()) {
                    (None, None) => return true,
                    (Some(_), Some("{path}")) => return true,
                    (Some(a), Some(l)) if l.starts_with('{') || a == l => {}
                    _ => return false,
                }
            }
        })
}

/// Checks one answer of the node against the OpenAPI document: the body of
/// a success against its route's schema and content type, a refusal
/// against the error schema, its code among the listed codes with the
/// listed status. Every test's client is shown every answer.
#[allow(dead_code)]
pub fn check_answer(answer: &agentrail_client::Answer<'_>) {
    let contract = contract();
    let route = route_of(answer.path)
        .unwrap_or_else(|| panic!("{} is no route of the document", answer.path));
    let operation = &contract.document["paths"][route][answer.method.to_ascii_lowercase()];
    assert!(
        operation.is_object(),
        "{} {route} is not in the document",
        answer.method
    );
    let kind = if answer.status < 300 {
        "200"
    } else if answer.status < 500 {
        "4XX"
    } else {
        "503"
    };
    let content = operation["responses"][kind]["content"]
        .as_object()
        .unwrap_or_else(|| {
            panic!(
                "{} {route} answered {}, which the document does not list",
                answer.method, answer.status
            )
        });
    let (declared, media) = content.iter().next().expect("one content type");
    let actual = answer
        .content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    assert_eq!(
        actual, declared,
        "{} {route} answered {} as {actual}",
        answer.method, answer.status
    );
    if declared != "application/json" {
        return;
    }
    let body: serde_json::Value = serde_json::from_slice(answer.body)
        .unwrap_or_else(|e| panic!("{} {route}: the body is not JSON: {e}", answer.method));
    let schema = &media["schema"];
    let key = schema.to_string();
    let validator = {
        let mut validators = contract.validators.lock().unwrap();
        validators
            .entry(key)
            .or_insert_with(|| {
                let mut root = schema.clone();
                root["$schema"] = "https://json-schema.org/draft/2020-12/schema".into();
                root["components"] = contract.document["components"].clone();
                std::sync::Arc::new(
                    jsonschema::validator_for(&root).expect("the document's schemas compile"),
                )
            })
            .clone()
    };
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{} {} ({}) does not match the document: {errors:?}\n{body}",
        answer.method,
        answer.path,
        answer.status
    );
    if answer.status >= 300 {
        let code = body["error"]["code"].as_str().unwrap_or("");
        let listed = &contract.document["x-error-codes"][code]["status"];
        assert_eq!(
            listed.as_u64(),
            Some(u64::from(answer.status)),
            "{} {route}: code {code} with status {} (listed: {listed})",
            answer.method,
            answer.status
        );
    }
}
