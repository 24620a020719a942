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
        // The node's log goes next to its data, appended across restarts,
        // so a test can look for panics afterwards.
        std::fs::create_dir_all(data).expect("the data directory");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.join(NODE_LOG))
            .expect("the node's log file");
        let mut child = Command::new(BIN)
            .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--data"])
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
            client: Client::new(&url),
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
