//! The verifier stage: request signatures checked in batches, on every core,
//! before the single writer.
//!
//! ```text
//! HTTP handler: read the body, check headers, window and digest
//!   (httpsig::prepare) ──▶ bounded verifier queue (full: 503)
//!                               │
//! verifier threads (one per core): take up to VERIFY_BATCH_MAX checks,
//!   verify their signatures in one batch (halving a failing batch to name
//!   the forgeries), record nonces, read the commands ──▶ writer queue
//!                                                          │
//! writer: apply, journal, fsync ──▶ answers the handler directly
//! ```
//!
//! Batching roughly halves the cost of a signature, and signatures are most
//! of the work before the writer. A batch forms only from what is already
//! waiting, so a lone request is never delayed for company. Batch and single
//! verification accept exactly the same signatures
//! ([`agentrail_core::ed25519`]), so an audit replaying the log one entry
//! at a time agrees with what the node accepted.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use agentrail_core::Did;
use agentrail_core::ed25519::{self, Item, PublicKey};
use agentrail_wire::httpsig::{Prepared, SignatureHeaders};
use axum::body::Bytes;
use tokio::sync::oneshot;

use crate::http::{Nonces, admit};
use crate::ledger::{Job, Ledger, Queue, QueueError, Refusal, Reply};
use crate::limits::IdentityLimiter;
use crate::metrics::Metrics;

/// Requests waiting for a signature check; when full, the API answers 503.
pub const VERIFY_QUEUE_MAX: usize = 16_384;
/// Signatures checked together. Past ~64 a batch saves little more, and a
/// larger one makes its requests wait longer.
pub const VERIFY_BATCH_MAX: usize = 64;
/// Decompressed keys a verifier thread keeps (decompressing costs about a
/// tenth of a verification); the cache is emptied when full.
const KEY_CACHE_MAX: usize = 65_536;

/// A signed request on its way to the signature check.
#[derive(Debug)]
pub struct Check {
    pub prepared: Prepared,
    pub method: String,
    pub path: String,
    pub headers: SignatureHeaders,
    pub body: Bytes,
    pub reply: oneshot::Sender<Reply>,
}

/// The sending side of the verifier queue.
#[derive(Clone, Debug)]
pub struct Verifier {
    sender: SyncSender<Check>,
}

impl Verifier {
    /// Starts `threads` verifier threads that hand what passes to `writer`.
    /// They stop once every [`Verifier`] is dropped and the queue is drained.
    pub fn start(
        threads: usize,
        nonces: Arc<Nonces>,
        limiter: Arc<IdentityLimiter>,
        writer: Queue,
        ledger: Arc<Ledger>,
    ) -> std::io::Result<(Verifier, Vec<JoinHandle<()>>)> {
        let (sender, receiver) = sync_channel(VERIFY_QUEUE_MAX);
        let receiver = Arc::new(Mutex::new(receiver));
        let mut handles = Vec::with_capacity(threads);
        for index in 0..threads.max(1) {
            let (receiver, nonces, limiter, writer, ledger) = (
                Arc::clone(&receiver),
                Arc::clone(&nonces),
                Arc::clone(&limiter),
                writer.clone(),
                Arc::clone(&ledger),
            );
            handles.push(
                std::thread::Builder::new()
                    .name(format!("agentrail-verify-{index}"))
                    .spawn(move || {
                        let stage = Stage {
                            ledger: &ledger,
                            nonces: &nonces,
                            limiter: &limiter,
                            writer: &writer,
                            metrics: &ledger.metrics,
                        };
                        run(&receiver, &stage)
                    })?,
            );
        }
        Ok((Verifier { sender }, handles))
    }

    /// Queues a check without waiting: a full queue is the caller's 503.
    pub fn submit(&self, check: Check) -> Result<(), QueueError> {
        self.sender.try_send(check).map_err(|error| match error {
            TrySendError::Full(_) => QueueError::Full,
            TrySendError::Disconnected(_) => QueueError::Stopped,
        })
    }
}

/// What a verifier thread hands its checks to.
struct Stage<'a> {
    ledger: &'a Ledger,
    nonces: &'a Nonces,
    limiter: &'a IdentityLimiter,
    writer: &'a Queue,
    metrics: &'a Metrics,
}

/// One verifier thread.
fn run(receiver: &Mutex<Receiver<Check>>, stage: &Stage<'_>) {
    let mut keys = KeyCache::default();
    while let Some(batch) = take_batch(receiver) {
        stage
            .metrics
            .signature_batches
            .fetch_add(1, Ordering::Relaxed);
        stage
            .metrics
            .signatures_checked
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let verdicts = verify(&batch, &mut keys);
        let now = stage.ledger.now().0;
        for (check, valid) in batch.into_iter().zip(verdicts) {
            let Check {
                prepared,
                method,
                path,
                headers,
                body,
                reply,
            } = check;
            let signer = prepared.signer;
            let admitted = prepared
                .finish(valid)
                .map_err(crate::http::from_signature)
                .and_then(|verified| {
                    // Counted only once the signature verified: nobody
                    // drains another identity's bucket by naming its key.
                    stage.limiter.take(signer).map_err(|retry_after_s| {
                        stage.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
                        crate::http::ApiError::rate_limited(retry_after_s)
                    })?;
                    admit(stage.nonces, verified, &method, &path, headers, &body, now)
                });
            match admitted {
                Ok((command, request)) => stage.writer.forward(Job {
                    command,
                    request,
                    reply,
                }),
                Err(error) => {
                    let _ = reply.send(Err(Refusal::Request(error)));
                }
            }
        }
    }
}

/// Waits for one check, then takes whatever else is already queued, up to
/// a batch. `None` once the queue is closed and empty.
fn take_batch(receiver: &Mutex<Receiver<Check>>) -> Option<Vec<Check>> {
    let receiver = receiver
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let first = receiver.recv().ok()?;
    let mut batch = Vec::with_capacity(VERIFY_BATCH_MAX);
    batch.push(first);
    while batch.len() < VERIFY_BATCH_MAX {
        match receiver.try_recv() {
            Ok(check) => batch.push(check),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Whether each check's signature is valid under its signer's key.
fn verify(batch: &[Check], keys: &mut KeyCache) -> Vec<bool> {
    let public: Vec<Option<PublicKey>> = batch
        .iter()
        .map(|check| keys.get(check.prepared.signer))
        .collect();
    let (positions, items): (Vec<usize>, Vec<Item<'_>>) = batch
        .iter()
        .zip(&public)
        .enumerate()
        .filter_map(|(position, (check, key))| {
            key.as_ref().map(|key| {
                (
                    position,
                    Item {
                        key,
                        message: check.prepared.base.as_bytes(),
                        signature: &check.prepared.signature,
                    },
                )
            })
        })
        .unzip();
    // A signer whose did:key is not a valid key signs nothing.
    let mut verdicts = vec![false; batch.len()];
    for &position in &positions {
        verdicts[position] = true;
    }
    for invalid in ed25519::find_invalid(&items) {
        verdicts[positions[invalid]] = false;
    }
    verdicts
}

/// Decompressed public keys by identity, bounded.
#[derive(Debug, Default)]
struct KeyCache {
    keys: HashMap<Did, Option<PublicKey>>,
}

impl KeyCache {
    fn get(&mut self, did: Did) -> Option<PublicKey> {
        if let Some(key) = self.keys.get(&did) {
            return *key;
        }
        if self.keys.len() >= KEY_CACHE_MAX {
            self.keys.clear();
        }
        let key = did.public_key();
        self.keys.insert(did, key);
        key
    }
}
