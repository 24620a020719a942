//! The ledger on a real anvil chain: the node binary follows the vault
//! (`serve --chain-rpc`), credits deposits exactly once after N
//! confirmations, survives restarts, reorgs and RPC outages, pays
//! withdrawals the contract authorizes once, anchors its log, and the
//! audit checks the anchor and the reserves. Needs `scripts/evm-tools`
//! (`scripts/test` runs it); a missing anvil fails with that hint.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, Instant};

use agentrail_chain::alloy_primitives::hex;
use agentrail_chain::alloy_primitives::{Address, B256, U256};
use agentrail_chain::alloy_sol_types::SolError;
use agentrail_chain::anvil::Anvil;
use agentrail_chain::bindings::{AgentrailVault, Withdrawal};
use agentrail_chain::vault::{self, Deployment, Vault, VaultError};
use agentrail_chain::{Rpc, RpcError, WalletError, account_of};
use agentrail_client::Client;
use agentrail_core::command::{ClaimDeposits, Withdraw};
use agentrail_core::grant::Role;
use agentrail_core::{Command, Did, Timestamp};
use agentrail_sim::kit;
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use support::{BIN, Node, did, key, usd};

const CONFIRMATIONS: u64 = 3;
const WAIT: Duration = Duration::from_secs(30);

/// anvil with TestUSD and a vault deployed, the operator's key in a file,
/// and test tokens minted to dev account 1.
struct Chain {
    anvil: Anvil,
    rpc: Rpc,
    deployment: Deployment,
    keys: tempfile::TempDir,
}

impl Chain {
    async fn start() -> Chain {
        let anvil = Anvil::start(4, None).unwrap_or_else(|e| panic!("{e}"));
        let rpc = Rpc::new(anvil.url(), agentrail_client::http_client(None).unwrap()).unwrap();
        let operator = anvil.key(0).clone();
        let deployment = vault::deploy(&rpc, &operator, operator.address(), U256::ZERO)
            .await
            .unwrap();
        vault::mint_to(
            &rpc,
            deployment.chain_id,
            anvil.key(1),
            deployment.token,
            anvil.key(1).address(),
            U256::from(1_000_000u128 * 1_000_000),
        )
        .await
        .unwrap();
        let keys = tempfile::tempdir().unwrap();
        anvil
            .key(0)
            .write(&keys.path().join("operator.evm"))
            .unwrap();
        Chain {
            anvil,
            rpc,
            deployment,
            keys,
        }
    }

    fn vault(&self) -> Vault<'_> {
        Vault {
            rpc: &self.rpc,
            chain_id: self.deployment.chain_id,
            address: self.deployment.vault,
        }
    }

    fn key_file(&self) -> PathBuf {
        self.keys.path().join("operator.evm")
    }

    /// `serve` arguments that follow this chain through `rpc_url`.
    fn serve_args(&self, rpc_url: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "--chain-rpc",
            rpc_url,
            "--vault",
            &self.deployment.vault.to_string(),
            "--evm-key",
            self.key_file().to_str().unwrap(),
            "--confirmations",
            &CONFIRMATIONS.to_string(),
            "--chain-poll-ms",
            "50",
            "--anchor-interval-s",
            "0",
            "--chain-from-block",
            &self.deployment.block.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if !extra.contains(&"--anchor-every") {
            args.extend(["--anchor-every".to_owned(), "0".to_owned()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    fn start_node(&self, data: &Path, extra: &[&str]) -> Node {
        let args = self.serve_args(self.anvil.url(), extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Node::start_with(data, &args)
    }

    async fn mine(&self, blocks: u64) {
        for _ in 0..blocks {
            self.rpc.call("evm_mine", json!([])).await.unwrap();
        }
    }

    async fn snapshot(&self) -> Value {
        self.rpc.call("evm_snapshot", json!([])).await.unwrap()
    }

    async fn revert(&self, snapshot: Value) {
        let reverted = self
            .rpc
            .call("evm_revert", json!([snapshot]))
            .await
            .unwrap();
        assert_eq!(reverted, json!(true));
    }

    /// Dev account 1 deposits with `approve` and `deposit(account, amount)`:
    /// the vault's plain interface.
    async fn deposit(&self, to: Did, usd_amount: u128) -> agentrail_chain::rpc::Receipt {
        self.vault()
            .deposit_with_approval(
                self.anvil.key(1),
                account_of(&to),
                U256::from(usd_amount * 1_000_000),
            )
            .await
            .unwrap()
    }

    async fn head(&self) -> u64 {
        self.rpc.block_number().await.unwrap()
    }
}

async fn wait_until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn chain_health(client: &Client) -> agentrail_wire::api::ChainHealth {
    client
        .health()
        .await
        .unwrap()
        .chain
        .expect("a chain-bound node")
}

/// Waits until the follower finished a round that saw block `head`.
async fn follower_saw(client: &Client, head: u64) {
    wait_until("the follower reaches the head", || async {
        let chain = chain_health(client).await;
        chain.head.is_some_and(|seen| seen >= head) && chain.rpc_ok
    })
    .await;
    // One more full round after it, so what that round did is reported.
    let seen = chain_health(client).await.head.unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(chain_health(client).await.head.unwrap_or_default() >= seen);
}

async fn available(client: &Client, did: &Did) -> u128 {
    client
        .balance(did)
        .await
        .map(|balance| balance.available.atomic())
        .unwrap_or(0)
}

async fn register(client: &Client, key: &SigningKey) {
    client
        .submit(key, &kit::register_principal(did(key)))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deposit_is_credited_once_after_n_confirmations_across_restarts() {
    let chain = Chain::start().await;
    let data = tempfile::tempdir().unwrap();
    let node = chain.start_node(data.path(), &[]);
    let owner = key("chain-owner");
    register(&node.client, &owner).await;

    let receipt = chain.deposit(did(&owner), 25).await;
    // The deposit's block is its first confirmation: two more are needed.
    chain.mine(CONFIRMATIONS - 2).await;
    follower_saw(&node.client, chain.head().await).await;
    assert_eq!(available(&node.client, &did(&owner)).await, 0);
    assert_eq!(chain_health(&node.client).await.deposits_credited, 0);
    chain.mine(1).await;
    wait_until("the deposit is credited", || async {
        available(&node.client, &did(&owner)).await == usd(25).atomic()
    })
    .await;
    let history = node.client.history(&did(&owner), None, 10).await.unwrap();
    let credit = history
        .items
        .iter()
        .flat_map(|item| &item.events)
        .find_map(|event| match event {
            agentrail_core::Event::Deposited { .. } => Some(()),
            _ => None,
        });
    assert!(credit.is_some(), "{history:?}");
    let _ = receipt;

    // A second deposit, and the node stops before it is confirmed.
    chain.deposit(did(&owner), 7).await;
    node.stop();
    chain.mine(CONFIRMATIONS).await;
    let node = chain.start_node(data.path(), &[]);
    wait_until(
        "the second deposit is credited after the restart",
        || async { available(&node.client, &did(&owner)).await == usd(32).atomic() },
    )
    .await;
    // Killed mid-follow, restarted, and more blocks: still exactly twice.
    node.kill();
    let node = chain.start_node(data.path(), &[]);
    chain.mine(5).await;
    follower_saw(&node.client, chain.head().await).await;
    assert_eq!(
        available(&node.client, &did(&owner)).await,
        usd(32).atomic()
    );
    assert_eq!(chain_health(&node.client).await.deposits_credited, 2);

    // A deposit to an agent's key waits for that key's own signature: the
    // principal that registered it cannot take it, the agent can, once.
    let agent = key("chain-agent");
    let now = now_s();
    let grant = kit::grant(
        &owner,
        did(&agent),
        Role::Agent,
        kit::limits(usd(5), usd(5)),
        Timestamp(now - 60),
        Timestamp(now + 86_400),
        "chain-agent",
    );
    node.client
        .submit(&owner, &kit::register_agent(grant))
        .await
        .unwrap();
    chain.deposit(did(&agent), 4).await;
    chain.mine(CONFIRMATIONS).await;
    wait_until("the agent's deposit is kept", || async {
        chain_health(&node.client).await.deposits_credited == 3
    })
    .await;
    assert_eq!(available(&node.client, &did(&agent)).await, 0);
    let claim = Command::ClaimDeposits(ClaimDeposits {
        idempotency_key: "claim-1".into(),
    });
    let refused = node.client.submit(&owner, &claim).await.unwrap_err();
    assert_eq!(refused.code(), Some("no_unclaimed_deposits"), "{refused}");
    node.client.submit(&agent, &claim).await.unwrap();
    assert_eq!(available(&node.client, &did(&agent)).await, usd(4).atomic());
    assert_eq!(
        available(&node.client, &did(&owner)).await,
        usd(32).atomic()
    );
    assert_eq!(support::panics(data.path()), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reorg_before_n_confirmations_never_credits_the_vanished_deposit() {
    let chain = Chain::start().await;
    let data = tempfile::tempdir().unwrap();
    let node = chain.start_node(data.path(), &[]);
    let owner = key("reorg-owner");
    register(&node.client, &owner).await;

    let snapshot = chain.snapshot().await;
    let vanished = chain.deposit(did(&owner), 40).await;
    chain.mine(CONFIRMATIONS - 2).await;
    follower_saw(&node.client, chain.head().await).await;
    // The chain forgets the deposit and grows longer than before.
    chain.revert(snapshot).await;
    chain.mine(2 * CONFIRMATIONS).await;
    follower_saw(&node.client, chain.head().await).await;
    assert_eq!(available(&node.client, &did(&owner)).await, 0);
    assert_eq!(chain_health(&node.client).await.deposits_credited, 0);

    // Deposit 1 again, in another transaction: that one is credited.
    let kept = chain.deposit(did(&owner), 3).await;
    assert_ne!(kept.transaction_hash, vanished.transaction_hash);
    chain.mine(CONFIRMATIONS).await;
    wait_until("the deposit that stayed is credited", || async {
        available(&node.client, &did(&owner)).await == usd(3).atomic()
    })
    .await;
    let health = node.client.health().await.unwrap();
    assert_eq!(health.status, "ok");
    assert_eq!(health.chain.unwrap().alarm, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reorg_deeper_than_n_stops_crediting_and_raises_the_alarm() {
    let chain = Chain::start().await;
    let data = tempfile::tempdir().unwrap();
    let node = chain.start_node(data.path(), &[]);
    let owner = key("deep-owner");
    register(&node.client, &owner).await;

    let snapshot = chain.snapshot().await;
    chain.deposit(did(&owner), 10).await;
    chain.mine(CONFIRMATIONS).await;
    wait_until("the deposit is credited", || async {
        available(&node.client, &did(&owner)).await == usd(10).atomic()
    })
    .await;
    chain.revert(snapshot).await;
    chain.mine(2 * CONFIRMATIONS).await;
    wait_until("the alarm is raised", || async {
        chain_health(&node.client).await.alarm.is_some()
    })
    .await;
    let health = node.client.health().await.unwrap();
    assert_eq!(health.status, "degraded");
    let metrics = node
        .client
        .http()
        .get(format!("{}/metrics", node.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("agentrail_chain_alarm 1"), "{metrics}");
    let log = std::fs::read_to_string(data.path().join(support::NODE_LOG)).unwrap();
    assert!(log.contains("chain alarm"), "{log}");

    // Nothing more is credited, not even a new deposit 1; the node serves.
    chain.deposit(did(&owner), 5).await;
    chain.mine(2 * CONFIRMATIONS).await;
    follower_saw(&node.client, chain.head().await).await;
    assert_eq!(
        available(&node.client, &did(&owner)).await,
        usd(10).atomic()
    );
    assert_eq!(chain_health(&node.client).await.deposits_credited, 1);
    register(&node.client, &key("deep-later")).await;
}

/// A TCP proxy in front of anvil that can be taken away and brought back
/// on the same port.
struct Proxy {
    address: std::net::SocketAddr,
    target: std::net::SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(target: &str) -> Proxy {
        let target = target
            .trim_start_matches("http://")
            .parse()
            .expect("anvil's address");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut proxy = Proxy {
            address,
            target,
            task: None,
        };
        proxy.serve(listener);
        proxy
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let target = self.target;
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// Closes the port and every open connection.
    fn down(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    async fn up(&mut self) {
        let deadline = Instant::now() + WAIT;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.address).await {
                Ok(listener) => break listener,
                Err(e) => {
                    assert!(Instant::now() < deadline, "rebinding the proxy: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        self.serve(listener);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_node_keeps_serving_while_the_rpc_is_away_and_catches_up() {
    let chain = Chain::start().await;
    let mut proxy = Proxy::start(chain.anvil.url()).await;
    let data = tempfile::tempdir().unwrap();
    let args = chain.serve_args(&proxy.url(), &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let node = Node::start_with(data.path(), &args);
    let owner = key("outage-owner");
    register(&node.client, &owner).await;
    follower_saw(&node.client, chain.head().await).await;

    proxy.down();
    wait_until("the node reports the RPC down", || async {
        !chain_health(&node.client).await.rpc_ok
    })
    .await;
    // The ledger still takes commands; the chain moves on meanwhile.
    register(&node.client, &key("outage-other")).await;
    chain.deposit(did(&owner), 12).await;
    chain.mine(CONFIRMATIONS).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(available(&node.client, &did(&owner)).await, 0);
    let health = chain_health(&node.client).await;
    assert!(health.last_error.is_some(), "{health:?}");

    proxy.up().await;
    wait_until("the deposit is credited once the RPC is back", || async {
        available(&node.client, &did(&owner)).await == usd(12).atomic()
    })
    .await;
    assert!(chain_health(&node.client).await.rpc_ok);
    assert_eq!(support::panics(data.path()), 0);
}

/// The revert selector an error from the vault carries.
fn reverted_with(error: &VaultError) -> Option<[u8; 4]> {
    let VaultError::Wallet(WalletError::Rpc(RpcError::Remote {
        data: Some(data), ..
    })) = error
    else {
        return None;
    };
    let bytes = hex::decode(data.trim_matches('"')).ok()?;
    bytes.get(..4).map(|selector| selector.try_into().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_withdrawal_is_paid_once_and_replayed_or_forged_authorizations_are_refused() {
    let chain = Chain::start().await;
    let data = tempfile::tempdir().unwrap();
    let node = chain.start_node(data.path(), &[]);
    let owner = key("payout-owner");
    register(&node.client, &owner).await;
    chain.deposit(did(&owner), 50).await;
    chain.mine(CONFIRMATIONS).await;
    wait_until("the deposit is credited", || async {
        available(&node.client, &did(&owner)).await == usd(50).atomic()
    })
    .await;

    // Withdrawing without an address is refused on a chain ledger.
    let refused = node
        .client
        .submit(
            &owner,
            &Command::Withdraw(Withdraw {
                from: did(&owner),
                amount: usd(1),
                idempotency_key: "no-address".into(),
                to: None,
            }),
        )
        .await
        .unwrap_err();
    assert!(refused.code().is_some(), "{refused}");

    // The CLI's withdraw, as a user runs it.
    let payee: Address = "0x00000000000000000000000000000000000a11ce"
        .parse()
        .unwrap();
    let key_file = data.path().join("owner.key");
    std::fs::write(&key_file, agentrail_wire::keyfile::encode(&owner)).unwrap();
    let output = Process::new(BIN)
        .args(["--node", &node.url, "withdraw", "--key"])
        .arg(&key_file)
        .args(["--amount", "20", "--to", &payee.to_string()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let token = chain.deployment.token;
    wait_until("the vault pays", || async {
        vault::balance_of(&chain.rpc, token, payee).await.unwrap() == U256::from(usd(20).atomic())
    })
    .await;
    chain.mine(CONFIRMATIONS).await;
    wait_until("the ledger records the payout", || async {
        chain_health(&node.client).await.pending_withdrawals == 0
    })
    .await;
    assert_eq!(
        available(&node.client, &did(&owner)).await,
        usd(30).atomic()
    );

    // Whoever saw the payout cannot have it paid again.
    let attacker = chain.anvil.key(3);
    let operator = chain.anvil.key(0);
    let vault = chain.vault();
    let deadline = U256::from(now_s() + 600);
    let replay = Withdrawal {
        id: U256::from(1),
        account: account_of(&did(&owner)),
        to: payee,
        amount: U256::from(usd(20).atomic()),
        deadline,
    };
    let signature = vault.authorize_withdrawal(operator, &replay);
    let error = vault
        .withdraw(attacker, &replay, signature)
        .await
        .unwrap_err();
    assert_eq!(
        reverted_with(&error),
        Some(AgentrailVault::AlreadyWithdrawn::SELECTOR),
        "{error}"
    );
    // Nor sign one themselves, nor raise a signed amount, nor use one late.
    let forged = Withdrawal {
        id: U256::from(2),
        to: attacker.address(),
        ..replay.clone()
    };
    let signature = vault.authorize_withdrawal(attacker, &forged);
    let error = vault
        .withdraw(attacker, &forged, signature)
        .await
        .unwrap_err();
    assert_eq!(
        reverted_with(&error),
        Some(AgentrailVault::InvalidAuthorization::SELECTOR),
        "{error}"
    );
    let small = Withdrawal {
        amount: U256::from(1),
        ..forged.clone()
    };
    let signature = vault.authorize_withdrawal(operator, &small);
    let error = vault
        .withdraw(attacker, &forged, signature)
        .await
        .unwrap_err();
    assert_eq!(
        reverted_with(&error),
        Some(AgentrailVault::InvalidAuthorization::SELECTOR),
        "{error}"
    );
    let late = Withdrawal {
        deadline: U256::from(1),
        ..small
    };
    let signature = vault.authorize_withdrawal(operator, &late);
    let error = vault
        .withdraw(attacker, &late, signature)
        .await
        .unwrap_err();
    assert_eq!(
        reverted_with(&error),
        Some(AgentrailVault::AuthorizationExpired::SELECTOR),
        "{error}"
    );
    assert_eq!(
        vault::balance_of(&chain.rpc, token, chain.deployment.vault)
            .await
            .unwrap(),
        U256::from(usd(30).atomic())
    );
    assert_eq!(
        vault::balance_of(&chain.rpc, token, attacker.address())
            .await
            .unwrap(),
        U256::ZERO
    );
}

fn now_s() -> u64 {
    support::now().0
}

fn audit(node: &Node, chain: &Chain) -> (bool, Value) {
    let output = Process::new(BIN)
        .args(["--json", "--node", &node.url, "audit", "--chain-rpc"])
        .arg(chain.anvil.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let report: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("audit printed {stdout:?}: {e}; {output:?}"));
    (output.status.success(), report)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_anchored_root_is_the_checkpoint_and_reserves_fail_when_tokens_leave() {
    let chain = Chain::start().await;
    let data = tempfile::tempdir().unwrap();
    let node = chain.start_node(data.path(), &["--anchor-every", "1"]);
    let owner = key("anchor-owner");
    register(&node.client, &owner).await;
    chain.deposit(did(&owner), 80).await;
    chain.mine(CONFIRMATIONS).await;
    wait_until("the deposit is credited", || async {
        available(&node.client, &did(&owner)).await == usd(80).atomic()
    })
    .await;
    let payee = key("anchor-payee");
    register(&node.client, &payee).await;
    node.client
        .submit(
            &owner,
            &kit::transfer(did(&owner), did(&payee), usd(5), "anchor-transfer"),
        )
        .await
        .unwrap();

    // The vault's anchor is the node's signed checkpoint of that size.
    let size = node.client.health().await.unwrap().journal_len;
    let vault = chain.vault();
    wait_until("the log is anchored", || async {
        vault.anchored().await.unwrap().0 == size
    })
    .await;
    let log_key = agentrail_log::LogKey::parse(&node.client.log_key().await.unwrap()).unwrap();
    let checkpoint =
        agentrail_log::Checkpoint::open(&node.client.checkpoint().await.unwrap(), &log_key)
            .unwrap();
    let (anchored_size, anchored_root) = vault.anchored().await.unwrap();
    assert_eq!(checkpoint.size, anchored_size);
    assert_eq!(B256::from(checkpoint.root), anchored_root);

    let (passed, report) = audit(&node, &chain);
    assert!(passed, "{report}");
    assert_eq!(report["anchor"]["consistent"], json!(true), "{report}");
    assert_eq!(report["reserves"]["covered"], json!(true), "{report}");
    assert_eq!(
        report["reserves"]["owed"],
        json!(usd(80).atomic().to_string())
    );

    // The operator's EVM key pays a withdrawal the ledger never debited:
    // the tokens leave behind the ledger's back, and the audit says so.
    let stolen = Withdrawal {
        id: U256::from(1_000_000),
        account: account_of(&did(&owner)),
        to: chain.anvil.key(3).address(),
        amount: U256::from(usd(10).atomic()),
        deadline: U256::from(now_s() + 600),
    };
    let signature = vault.authorize_withdrawal(chain.anvil.key(0), &stolen);
    vault
        .withdraw(chain.anvil.key(3), &stolen, signature)
        .await
        .unwrap();
    let (passed, report) = audit(&node, &chain);
    assert!(!passed, "{report}");
    let reason = report["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("proof of reserves failed"), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outside_program_deposits_with_cast_and_reads_the_anchor() {
    // cast (Foundry's CLI) knows only the vault's public interface.
    let chain = Chain::start().await;
    let cast = agentrail_chain::anvil::find()
        .unwrap()
        .with_file_name("cast");
    assert!(cast.is_file(), "{}", agentrail_chain::anvil::INSTALL_HINT);
    let data = tempfile::tempdir().unwrap();
    let node = chain.start_node(data.path(), &["--anchor-every", "1"]);
    let owner = key("cast-owner");
    register(&node.client, &owner).await;
    let depositor = chain.anvil.key(2).secret_hex();
    let run = |args: &[&str]| {
        let output = Process::new(&cast).args(args).output().unwrap();
        assert!(output.status.success(), "cast {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let url = chain.anvil.url().to_owned();
    let token = chain.deployment.token.to_string();
    let vault = chain.deployment.vault.to_string();
    let account = account_of(&did(&owner)).to_string();
    let address = chain.anvil.key(2).address().to_string();
    run(&[
        "send",
        "--rpc-url",
        &url,
        "--private-key",
        &depositor,
        &token,
        "mint(address,uint256)",
        &address,
        "9000000",
    ]);
    run(&[
        "send",
        "--rpc-url",
        &url,
        "--private-key",
        &depositor,
        &token,
        "approve(address,uint256)",
        &vault,
        "9000000",
    ]);
    run(&[
        "send",
        "--rpc-url",
        &url,
        "--private-key",
        &depositor,
        &vault,
        "deposit(bytes32,uint256)",
        &account,
        "9000000",
    ]);
    chain.mine(CONFIRMATIONS).await;
    wait_until("cast's deposit is credited", || async {
        available(&node.client, &did(&owner)).await == 9_000_000
    })
    .await;
    chain.mine(2 * CONFIRMATIONS).await;
    follower_saw(&node.client, chain.head().await).await;
    assert_eq!(available(&node.client, &did(&owner)).await, 9_000_000);

    let size = node.client.health().await.unwrap().journal_len;
    wait_until("the log is anchored", || async {
        chain.vault().anchored().await.unwrap().0 == size
    })
    .await;
    let answer = run(&[
        "call",
        "--rpc-url",
        &url,
        &vault,
        "anchored()(uint64,bytes32)",
    ]);
    let mut lines = answer.lines();
    let first = |line: Option<&str>| line.unwrap().split_whitespace().next().unwrap().to_owned();
    let anchored_size: u64 = first(lines.next()).parse().unwrap();
    let anchored_root = first(lines.next());
    let log_key = agentrail_log::LogKey::parse(&node.client.log_key().await.unwrap()).unwrap();
    let checkpoint =
        agentrail_log::Checkpoint::open(&node.client.checkpoint().await.unwrap(), &log_key)
            .unwrap();
    assert_eq!(anchored_size, checkpoint.size);
    assert_eq!(anchored_root, format!("0x{}", hex::encode(checkpoint.root)));
}

#[test]
fn the_chain_demo_deposits_withdraws_anchors_and_conserves_the_money() {
    let output = Process::new(BIN)
        .args(["demo", "--chain", "--json", "--calls", "50"])
        .output()
        .expect("the demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the chain demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(report["passed"], true);
    assert_eq!(report["money_conserved"], true);
    assert_eq!(report["receipts_verified"], report["journal_entries"]);
    let scenarios = report["scenarios"].as_array().unwrap();
    let onchain = scenarios.last().unwrap();
    assert_eq!(onchain["passed"], true, "{onchain}");
    let figures = onchain["figures"].as_array().unwrap();
    let hashes = figures
        .iter()
        .filter(|figure| {
            figure["value"]
                .as_str()
                .is_some_and(|value| value.len() == 66 && value.starts_with("0x"))
        })
        .count();
    // The mint, a deposit per funding, and the withdrawal.
    assert!(hashes >= 3, "{figures:?}");
    assert!(
        report["withdrawn"].as_str().is_some_and(|w| w != "0"),
        "{report}"
    );
}
