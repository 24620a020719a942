//! `agentrail bench channel`: micropayments through payment channels,
//! against their physical limit and against one ledger transfer per payment,
//! side by side in one run on an in-process node on loopback:
//!
//! - (a) raw Ed25519 verifications per second, one core: the limit of any
//!   design that checks one signature per payment;
//! - (b) vouchers a payee accepts per second, one core, alone and with
//!   their signatures checked in batches;
//! - (c) paid and unpaid requests per second, with p50/p99 latency, against
//!   the example text-statistics provider;
//! - (d) the same paid calls when every payment is one signed transfer
//!   through the node, which the provider looks up in the log before
//!   answering (x402 `exact`'s one settlement per payment);
//! - (e) ledger commands consumed by `payments` channel payments (open,
//!   collect, close), and per million payments;
//! - (f) x402 `exact` on a local anvil: the same paid calls, each paid by
//!   an EIP-3009 authorization that the provider verifies (signature,
//!   nonce and balance by RPC) and settles on chain, one transaction per
//!   call, before it answers (anvil mines each on arrival: the floor of
//!   any real chain's latency). Needs anvil (`scripts/evm-tools`).
//!
//! - (g) hash chains: the paid calls of (c) when the payer commits to a
//!   hash chain once per 1,024 calls and each call reveals the next link
//!   (one SHA-256 for the payee, no signature on either side), with the
//!   payee's processor time per paid call over an unpaid one, from its
//!   threads' accounting (the provider runs on a runtime of its own).
//!
//! Node, provider and clients share this machine's cores.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentrail_client::Client;
use agentrail_core::channel::{ChannelId, Voucher, VoucherTerms, network_hash};
use agentrail_core::ed25519::PublicKey;
use agentrail_core::{Amount, Did, Event};
use agentrail_example_text_stats::{STATS_PRICE, paid_routes, routes};
use agentrail_pay::payer::{Method, Payer, PayerOptions};
use agentrail_pay::{Payee, PayeeOptions};
use agentrail_sim::kit;
use agentrail_wire::entry::JournalEntry;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use ed25519_dalek::SigningKey;
use serde::Serialize;
use tokio::sync::oneshot;

/// What to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelBenchConfig {
    /// Signatures for (a) and vouchers for each half of (b).
    pub verifications: usize,
    /// HTTP calls for each of (c) paid, (c) unpaid and (d).
    pub calls: usize,
    /// Concurrent HTTP clients.
    pub clients: usize,
    /// Channel payments counted in (e), (b)'s included.
    pub payments: usize,
}

impl Default for ChannelBenchConfig {
    fn default() -> ChannelBenchConfig {
        ChannelBenchConfig {
            verifications: 20_000,
            calls: 4_000,
            clients: 16,
            payments: 1_000_000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChannelBenchReport {
    pub bench: &'static str,
    pub cores: usize,
    pub ed25519_verify_per_s: f64,
    pub voucher_accept_per_s: f64,
    pub voucher_accept_batch_per_s: f64,
    /// (b) ÷ (a), single and batched.
    pub voucher_accept_vs_verify: f64,
    pub voucher_accept_batch_vs_verify: f64,
    pub unpaid_rps: f64,
    pub unpaid_p50_us: f64,
    pub unpaid_p99_us: f64,
    pub paid_rps: f64,
    pub paid_p50_us: f64,
    pub paid_p99_us: f64,
    /// Paid ÷ unpaid throughput, and the p99 payment adds.
    pub paid_vs_unpaid: f64,
    pub paid_p99_added_us: f64,
    pub per_payment_transfer_rps: f64,
    pub per_payment_transfer_p99_us: f64,
    /// Channel payments ÷ per-payment transfers, throughput; and how many
    /// times lower the p99 a channel payment adds is.
    pub channel_vs_transfer_rps: f64,
    pub transfer_p99_added_over_channel: f64,
    /// (f): calls paid by x402 `exact`, one settlement on anvil each.
    pub exact_calls: usize,
    pub exact_rps: f64,
    pub exact_p50_us: f64,
    pub exact_p99_us: f64,
    /// Channel payments ÷ `exact` payments, throughput; and how many times
    /// lower the p99 a channel payment adds is.
    pub channel_vs_exact_rps: f64,
    pub exact_p99_added_over_channel: f64,
    /// (g): calls paid by the links of hash chains.
    pub hash_chain_rps: f64,
    pub hash_chain_p50_us: f64,
    pub hash_chain_p99_us: f64,
    /// (g) ÷ unpaid throughput, and the p99 it adds.
    pub hash_chain_vs_unpaid: f64,
    pub hash_chain_p99_added_us: f64,
    /// Links of one chain (one commitment signed and checked per chain).
    pub hash_chain_length: u32,
    /// The provider's processor time per call (its runtime's threads and
    /// the payee's), unpaid, paid by vouchers and by hash-chain links; and
    /// what a payment adds to a call, for the payee.
    pub unpaid_provider_cpu_us: f64,
    pub paid_provider_cpu_us: f64,
    pub hash_chain_provider_cpu_us: f64,
    pub paid_payee_cpu_us: f64,
    pub hash_chain_payee_cpu_us: f64,
    /// (e): commands of one channel that carried `payments` payments.
    pub payments: usize,
    pub ledger_commands: u64,
    pub ledger_commands_per_million: f64,
}

pub(crate) fn key(label: &str) -> SigningKey {
    kit::key(&format!("bench-channel-{label}"))
}

/// (a): one core verifying distinct 181-byte voucher messages.
fn raw_verify(count: usize) -> f64 {
    let signer = key("raw");
    let public = PublicKey::from_bytes(signer.verifying_key().as_bytes()).expect("a valid key");
    let network = network_hash("agentrail:bench");
    let signed: Vec<([u8; 181], [u8; 64])> = (0..count as u64)
        .map(|n| {
            let terms = terms(
                ChannelId([7; 32]),
                kit::did(&key("payee")),
                "s",
                n + 1,
                n + 1,
            );
            let message = terms.signing_bytes(&network);
            let voucher = terms.sign(&signer, &network);
            (message, voucher.payer_signature.0.to_bytes())
        })
        .collect();
    let started = Instant::now();
    let valid = signed
        .iter()
        .filter(|(message, signature)| public.verify(message, signature))
        .count();
    assert_eq!(valid, count, "every signature verifies");
    count as f64 / started.elapsed().as_secs_f64()
}

fn terms(channel_id: ChannelId, payee: Did, sub: &str, nonce: u64, total: u64) -> VoucherTerms {
    VoucherTerms {
        channel_id,
        epoch: 0,
        sub_channel_id: sub.to_owned(),
        accumulated_amount: Amount::from_atomic(u128::from(total)),
        nonce,
        payee_id: payee,
    }
}

/// Vouchers `first..first + count` of one sub-channel, signed on all cores.
pub(crate) fn vouchers(
    payer: &SigningKey,
    network: &[u8; 32],
    channel_id: ChannelId,
    payee: Did,
    sub: &str,
    first: u64,
    count: usize,
) -> Vec<Voucher> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = count.div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..count)
            .step_by(chunk)
            .map(|start| {
                let end = (start + chunk).min(count);
                scope.spawn(move || {
                    (start..end)
                        .map(|i| {
                            let n = first + i as u64;
                            terms(channel_id, payee, sub, n, n).sign(payer, network)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("signing thread"))
            .collect()
    })
}

/// Latency percentiles in microseconds and the rate.
fn summarize(mut latencies: Vec<Duration>, elapsed: Duration) -> (f64, f64, f64) {
    latencies.sort();
    let at = |q: f64| {
        let index = ((latencies.len() as f64 * q) as usize).min(latencies.len() - 1);
        latencies[index].as_secs_f64() * 1e6
    };
    (
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.50),
        at(0.99),
    )
}

/// Runs `calls` requests from `clients` tasks; `call` makes one and says
/// whether it succeeded.
async fn load<F, Fut>(calls: usize, clients: usize, call: F) -> (f64, f64, f64)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (call, next) = (Arc::clone(&call), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= calls {
                    break;
                }
                let sent = Instant::now();
                assert!(call(index).await, "a benchmark call failed");
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(calls);
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    summarize(latencies, started.elapsed())
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

/// [`serve`] on `runtime`: the provider's threads apart from its clients'.
async fn serve_on(runtime: &tokio::runtime::Runtime, router: axum::Router) -> String {
    runtime
        .spawn(serve(router))
        .await
        .expect("the provider starts")
}

/// The provider's processor time (µs) per call while `run` ran.
async fn provider_cpu<T>(calls: usize, run: impl std::future::Future<Output = T>) -> (T, f64) {
    let before = crate::threads::Sample::now();
    let out = run.await;
    let roles = crate::threads::Sample::now().since(&before);
    let us = roles.get("provider").copied().unwrap_or(0.0) * 1e6 / calls as f64;
    (out, us)
}

/// (d)'s provider check: the request names a journal entry whose transfer
/// pays the provider the price, used once.
#[derive(Clone)]
struct TransferCheck {
    node: Client,
    payee: Did,
    used: Arc<Mutex<HashSet<u64>>>,
}

async fn check_transfer(
    axum::extract::State(check): axum::extract::State<TransferCheck>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let index = request
        .headers()
        .get("x-transfer-index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(index) = index else {
        return StatusCode::PAYMENT_REQUIRED.into_response();
    };
    let paid = match check.node.log_entry(index).await {
        Ok(entry) => base64::engine::general_purpose::STANDARD
            .decode(&entry.leaf)
            .ok()
            .and_then(|leaf| JournalEntry::decode(&leaf).ok())
            .is_some_and(|entry| {
                entry.events.iter().any(|event| {
                    matches!(event, Event::Transferred { to, amount, .. }
                        if *to == check.payee && *amount >= STATS_PRICE)
                })
            }),
        Err(_) => false,
    };
    if !paid || !check.used.lock().expect("used lock").insert(index) {
        return StatusCode::PAYMENT_REQUIRED.into_response();
    }
    next.run(request).await
}

/// Runs (a) to (e); `progress(stage)` is called before each.
pub fn run_channel_bench(
    config: ChannelBenchConfig,
    progress: &mut dyn FnMut(&str),
) -> ChannelBenchReport {
    assert!(
        config.verifications > 0 && config.calls > 0 && config.clients > 0,
        "nothing to measure"
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    progress("ed25519_verify");
    let ed25519_verify_per_s = raw_verify(config.verifications);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = tempfile::tempdir().expect("a temporary directory");
    let operator = key("operator");
    runtime.block_on(async {
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = oneshot::channel();
        let node_config = agentrail_node::NodeConfig {
            data_dir: dir.path().to_owned(),
            listen: "127.0.0.1:0".parse().expect("an address"),
            dev: false,
            operator: Some(kit::did(&operator)),
            snapshot_every: agentrail_node::ledger::SNAPSHOT_EVERY,
            // The one-transfer-per-payment baseline sends every payment
            // from one identity, faster than its default rate: the
            // baseline is measured unthrottled.
            limits: agentrail_node::limits::ServeLimits {
                identity_rate_per_s: u32::MAX,
                identity_burst: u32::MAX,
                ..agentrail_node::limits::ServeLimits::default()
            },
            journal_cache_bytes: agentrail_node::JOURNAL_CACHE_BYTES,
            time_scale: None,
            cors_origins: Vec::new(),
            tls: None,
            chain: None,
            replication: None,
        };
        let server = tokio::spawn(agentrail_node::run(
            node_config,
            move |address| {
                let _ = ready_tx.send(address);
            },
            async {
                let _ = stopped.await;
            },
        ));
        let address = ready_rx.await.expect("the node starts");
        let node = Client::new(&format!("http://{address}"));
        let (buyer, seller, streamer) = (key("buyer"), key("seller"), key("streamer"));
        for k in [&buyer, &seller, &streamer] {
            node.submit(k, &kit::register_principal(kit::did(k)))
                .await
                .expect("registration");
        }
        for (k, tag) in [(&buyer, "fund-buyer"), (&streamer, "fund-streamer")] {
            node.submit(
                &operator,
                &kit::deposit(kit::did(k), kit::usd(1_000_000), tag),
            )
            .await
            .expect("funding");
        }
        let network_id = node.health().await.expect("health").network;
        let network = network_hash(&network_id);
        let payee = Payee::open(
            store.path(),
            node.clone(),
            seller.clone(),
            PayeeOptions::default(),
        )
        .await
        .expect("the payee opens");

        // (b) and (e): one channel carrying `payments` payments.
        progress("voucher_accept");
        let commands_before = node.health().await.expect("health").journal_len;
        let payments = config.payments.max(2 * config.verifications);
        node.submit(
            &streamer,
            &kit::open_channel(
                kit::did(&streamer),
                kit::did(&seller),
                Amount::from_atomic(payments as u128 * 2),
                "stream",
            ),
        )
        .await
        .expect("the channel opens");
        let channel = ChannelId::derive(&kit::did(&streamer), &kit::did(&seller), "stream");
        let single = vouchers(
            &streamer,
            &network,
            channel,
            kit::did(&seller),
            "single",
            1,
            config.verifications,
        );
        let started = Instant::now();
        for voucher in &single {
            payee.accept(voucher).await.expect("a valid voucher");
        }
        let voucher_accept_per_s = single.len() as f64 / started.elapsed().as_secs_f64();
        progress("voucher_accept_batch");
        let mut batch_time = Duration::ZERO;
        let mut accepted = single.len();
        let mut next = 1u64;
        let mut batch_measured = 0usize;
        while accepted < payments {
            let count = (payments - accepted).min(50_000);
            let chunk = vouchers(
                &streamer,
                &network,
                channel,
                kit::did(&seller),
                "batch",
                next,
                count,
            );
            next += count as u64;
            let started = Instant::now();
            for group in chunk.chunks(64) {
                for answer in payee.accept_batch(group).await {
                    answer.expect("a valid voucher");
                }
            }
            batch_time += started.elapsed();
            batch_measured += count;
            accepted += count;
        }
        let voucher_accept_batch_per_s = batch_measured as f64 / batch_time.as_secs_f64();
        payee.close(&channel).await.expect("the payee closes");
        let ledger_commands = node.health().await.expect("health").journal_len - commands_before;

        // (c): the example provider, paid and unpaid.
        progress("unpaid");
        let text: Arc<Vec<u8>> =
            Arc::new(b"Agents pay each other per call, a fraction of a cent at a time.".to_vec());
        let http = node.http().clone();
        let provider = tokio::runtime::Builder::new_multi_thread()
            .thread_name(crate::threads::PROVIDER_THREADS)
            .enable_all()
            .build()
            .expect("a runtime");
        let free = serve_on(&provider, routes()).await;
        let ((unpaid_rps, unpaid_p50_us, unpaid_p99_us), unpaid_provider_cpu_us) = {
            let (http, url, text) = (http.clone(), format!("{free}/stats"), Arc::clone(&text));
            provider_cpu(
                config.calls,
                load(config.calls, config.clients, move |_| {
                    let request = http.post(&url).body(text.to_vec());
                    async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
                }),
            )
            .await
        };
        progress("paid");
        let paid = serve_on(&provider, paid_routes(payee.clone(), &network_id, None)).await;
        // (c) pays every call with a signed voucher, (g) with hash-chain
        // links; one payer each, on one paid provider.
        let paid_with = |chain_length: u32| {
            let (node, buyer) = (node.clone(), buyer.clone());
            async move {
                Arc::new(
                    Payer::new(
                        node,
                        buyer.clone(),
                        kit::did(&buyer),
                        PayerOptions {
                            deposit_calls: 1_000_000,
                            streams_max: 64,
                            chain_length,
                        },
                    )
                    .await
                    .expect("the payer starts"),
                )
            }
        };
        let measure_paid = |payer: Arc<Payer>| {
            let (url, text) = (format!("{paid}/stats"), Arc::clone(&text));
            async move {
                // The first call opens the channel: not part of the
                // measurement.
                payer
                    .fetch(Method::POST, &url, text.to_vec())
                    .await
                    .expect("the first paid call");
                let measured = {
                    let payer = Arc::clone(&payer);
                    provider_cpu(
                        config.calls,
                        load(config.calls, config.clients, move |_| {
                            let (payer, url, body) =
                                (Arc::clone(&payer), url.clone(), text.to_vec());
                            async move {
                                payer
                                    .fetch(Method::POST, &url, body)
                                    .await
                                    .is_ok_and(|paid| paid.status.is_success())
                            }
                        }),
                    )
                    .await
                };
                payer.close_all().await.expect("the payer closes");
                measured
            }
        };
        let ((paid_rps, paid_p50_us, paid_p99_us), paid_provider_cpu_us) =
            measure_paid(paid_with(0).await).await;
        progress("hash_chain");
        let hash_chain_length = PayerOptions::default().chain_length;
        let ((hash_chain_rps, hash_chain_p50_us, hash_chain_p99_us), hash_chain_provider_cpu_us) =
            measure_paid(paid_with(hash_chain_length).await).await;

        // (d): one ledger transfer per call.
        progress("per_payment_transfer");
        let check = TransferCheck {
            node: node.clone(),
            payee: kit::did(&seller),
            used: Arc::default(),
        };
        let exact =
            serve(routes().layer(axum::middleware::from_fn_with_state(check, check_transfer)))
                .await;
        let (per_payment_transfer_rps, _, per_payment_transfer_p99_us) = {
            let (node, http, url, text) = (
                node.clone(),
                http.clone(),
                format!("{exact}/stats"),
                Arc::clone(&text),
            );
            let (buyer, seller) = (buyer.clone(), kit::did(&seller));
            load(config.calls, config.clients, move |index| {
                let (node, http, url, body, buyer) = (
                    node.clone(),
                    http.clone(),
                    url.clone(),
                    text.to_vec(),
                    buyer.clone(),
                );
                async move {
                    let transfer = kit::transfer(
                        kit::did(&buyer),
                        seller,
                        STATS_PRICE,
                        &format!("exact-{index}"),
                    );
                    let Ok(receipt) = node.submit(&buyer, &transfer).await else {
                        return false;
                    };
                    http.post(&url)
                        .header("x-transfer-index", receipt.index.to_string())
                        .body(body)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
                }
            })
            .await
        };
        // (f): x402 exact on anvil, one settlement per call.
        progress("exact");
        let exact_calls = (config.calls / 4).max(1);
        let (exact_rps, exact_p50_us, exact_p99_us) = exact_on_anvil(
            &node,
            &payee,
            &network_id,
            &buyer,
            &text,
            exact_calls,
            config.clients,
        )
        .await;
        let _ = stop.send(());
        let _ = server.await;
        payee.shutdown().await.expect("the payee stops");

        let paid_p99_added_us = (paid_p99_us - unpaid_p99_us).max(0.0);
        let transfer_added = (per_payment_transfer_p99_us - unpaid_p99_us).max(0.0);
        let exact_added = (exact_p99_us - unpaid_p99_us).max(0.0);
        provider.shutdown_background();
        ChannelBenchReport {
            bench: "channel",
            cores,
            ed25519_verify_per_s,
            voucher_accept_per_s,
            voucher_accept_batch_per_s,
            voucher_accept_vs_verify: voucher_accept_per_s / ed25519_verify_per_s,
            voucher_accept_batch_vs_verify: voucher_accept_batch_per_s / ed25519_verify_per_s,
            unpaid_rps,
            unpaid_p50_us,
            unpaid_p99_us,
            paid_rps,
            paid_p50_us,
            paid_p99_us,
            paid_vs_unpaid: paid_rps / unpaid_rps,
            paid_p99_added_us,
            per_payment_transfer_rps,
            per_payment_transfer_p99_us,
            channel_vs_transfer_rps: paid_rps / per_payment_transfer_rps,
            transfer_p99_added_over_channel: transfer_added / paid_p99_added_us.max(1.0),
            exact_calls,
            exact_rps,
            exact_p50_us,
            exact_p99_us,
            channel_vs_exact_rps: paid_rps / exact_rps,
            exact_p99_added_over_channel: exact_added / paid_p99_added_us.max(1.0),
            hash_chain_rps,
            hash_chain_p50_us,
            hash_chain_p99_us,
            hash_chain_vs_unpaid: hash_chain_rps / unpaid_rps,
            hash_chain_p99_added_us: (hash_chain_p99_us - unpaid_p99_us).max(0.0),
            hash_chain_length,
            unpaid_provider_cpu_us,
            paid_provider_cpu_us,
            hash_chain_provider_cpu_us,
            paid_payee_cpu_us: paid_provider_cpu_us - unpaid_provider_cpu_us,
            hash_chain_payee_cpu_us: hash_chain_provider_cpu_us - unpaid_provider_cpu_us,
            payments: accepted,
            ledger_commands,
            ledger_commands_per_million: ledger_commands as f64 * 1e6 / accepted as f64,
        }
    })
}

/// (f): the example provider offering `exact` on a fresh anvil with
/// TestUSD, settling from its own key; the buyer pays `exact` from a funded
/// EVM key, `calls` times from `clients` tasks.
#[allow(clippy::too_many_arguments)]
async fn exact_on_anvil(
    node: &Client,
    payee: &Payee,
    network_id: &str,
    buyer: &SigningKey,
    text: &Arc<Vec<u8>>,
    calls: usize,
    clients: usize,
) -> (f64, f64, f64) {
    use agentrail_chain::anvil::Anvil;
    use agentrail_chain::vault;
    use agentrail_evm::alloy_primitives::U256;
    use agentrail_evm::eip3009::TokenDomain;
    use agentrail_pay::exact::{ExactTerms, Settler};
    use agentrail_pay::paywall::{ExactOffer, ExactSettlement};

    let anvil = Anvil::start(3, None).unwrap_or_else(|e| panic!("(f) needs anvil: {e}"));
    let http = node.http().clone();
    let rpc = agentrail_chain::Rpc::new(anvil.url(), http.clone()).expect("anvil's URL");
    let deployer = anvil.key(0);
    let buyer_evm = anvil.key(1).clone();
    let deployment = vault::deploy(&rpc, deployer, deployer.address(), U256::ZERO)
        .await
        .expect("TestUSD deploys");
    vault::mint_to(
        &rpc,
        deployment.chain_id,
        deployer,
        deployment.token,
        buyer_evm.address(),
        U256::from(STATS_PRICE.atomic()) * U256::from(calls as u64 + 10),
    )
    .await
    .expect("the buyer is funded");
    let settler = Settler::connect(rpc, anvil.key(2).clone())
        .await
        .expect("the settler connects");
    let terms = ExactTerms {
        domain: TokenDomain {
            name: "Test USD".into(),
            version: "2".into(),
            chain_id: deployment.chain_id,
            token: deployment.token,
        },
        pay_to: anvil.key(2).address(),
        max_timeout_seconds: 60,
    };
    let store = tempfile::tempdir().expect("a temporary directory");
    let offer = ExactOffer::open(
        &store.path().join("exact.redb"),
        terms,
        ExactSettlement::Local(Arc::new(settler)),
    )
    .expect("the exact store opens");
    let url = format!(
        "{}/stats",
        serve(paid_routes(payee.clone(), network_id, Some(offer))).await
    );
    let payer = Arc::new(
        Payer::new(
            node.clone(),
            buyer.clone(),
            kit::did(buyer),
            PayerOptions::default(),
        )
        .await
        .expect("the payer starts")
        .with_exact_key(
            buyer_evm,
            vec![(
                agentrail_pay::exact::network(deployment.chain_id),
                deployment.token,
            )],
        )
        .prefer_exact(true),
    );
    // The terms are asked once, outside the measurement.
    let first = payer
        .fetch(Method::POST, &url, text.to_vec())
        .await
        .expect("the first exact call");
    assert!(
        first
            .settlement
            .is_some_and(|s| s.network.starts_with("eip155:"))
    );
    let text = Arc::clone(text);
    let measured = load(calls, clients, move |_| {
        let (payer, url, body) = (Arc::clone(&payer), url.clone(), text.to_vec());
        async move {
            payer
                .fetch(Method::POST, &url, body)
                .await
                .is_ok_and(|paid| paid.status.is_success())
        }
    })
    .await;
    drop(anvil);
    measured
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_measures_something() {
        let report = run_channel_bench(
            ChannelBenchConfig {
                verifications: 50,
                calls: 20,
                clients: 2,
                payments: 200,
            },
            &mut |_| {},
        );
        assert!(report.ed25519_verify_per_s > 0.0 && report.paid_rps > 0.0);
        assert!(report.per_payment_transfer_rps > 0.0);
        assert!(report.exact_rps > 0.0 && report.exact_calls == 5);
        assert!(
            report.hash_chain_rps > 0.0 && report.hash_chain_p50_us <= report.hash_chain_p99_us
        );
        assert!(
            report.hash_chain_provider_cpu_us > 0.0 && report.unpaid_provider_cpu_us > 0.0,
            "the provider's threads are accounted"
        );
        assert_eq!(report.payments, 200);
        assert_eq!(
            report.ledger_commands, 2,
            "open and close (with its collect)"
        );
    }
}
