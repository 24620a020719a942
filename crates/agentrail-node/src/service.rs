//! A handle for services that run beside the node in its process (the
//! chain follower): they read the state and submit commands they signed
//! themselves, through the same writer queue as the HTTP API.

use std::sync::Arc;

use agentrail_core::command::SignedCommand;
use agentrail_core::{Genesis, Rejection, State};
use agentrail_wire::api::{ChainHealth, CommandResponse};
use agentrail_wire::entry::EntryRequest;
use ed25519_dalek::SigningKey;
use tokio::sync::oneshot;

use crate::ledger::{Job, Ledger, Queue, QueueError, Refusal};

/// What a running node lends to the services beside it.
#[derive(Clone, Debug)]
pub struct NodeHandle {
    pub(crate) ledger: Arc<Ledger>,
    /// The writer's queue until the node stops; then `None` for every
    /// clone at once, so a handle kept anywhere never holds the writer up.
    pub(crate) queue: Arc<std::sync::Mutex<Option<Queue>>>,
    pub(crate) operator_key: Option<Arc<SigningKey>>,
    /// Turns true when the node stops serving: services then return and
    /// drop their handles, which lets the writer drain and stop.
    pub(crate) stopping: tokio::sync::watch::Receiver<bool>,
}

/// Why a submitted command did not land.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The ledger refused it; it will refuse it again.
    #[error("refused: {0}")]
    Rejected(Rejection),
    /// The node could not take it now (busy, storage failing, stopping);
    /// the outcome may be unknown, so retry with the same idempotency key.
    #[error("not applied now: {0}")]
    Busy(String),
}

impl NodeHandle {
    /// Queues a command and waits until it is durable or refused.
    pub async fn submit(&self, command: SignedCommand) -> Result<CommandResponse, SubmitError> {
        let authenticated = command.clone().verify().map_err(SubmitError::Rejected)?;
        let (reply, answer) = oneshot::channel();
        let queue = self
            .queue
            .lock()
            .expect("the queue lock")
            .clone()
            .ok_or_else(|| SubmitError::Busy("the node is stopping".into()))?;
        queue
            .submit(Job {
                command: authenticated,
                request: EntryRequest::Node {
                    command: Box::new(command),
                },
                reply,
            })
            .map_err(|e| {
                SubmitError::Busy(match e {
                    QueueError::Full => "the writer's queue is full".into(),
                    QueueError::Stopped => "the node is stopping".into(),
                })
            })?;
        match answer.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(Refusal::Rejected(rejection))) => Err(SubmitError::Rejected(rejection)),
            Ok(Err(other)) => Err(SubmitError::Busy(format!("{other:?}"))),
            Err(_) => Err(SubmitError::Busy("the writer stopped".into())),
        }
    }

    /// Reads the state once what it shows is durable; `None` while the
    /// ledger recovers from a storage failure.
    pub async fn read<T>(&self, read: impl FnOnce(&State) -> T) -> Option<T> {
        self.ledger.read_durable(read).await
    }

    /// The newest signed checkpoint: (size, root).
    pub fn checkpoint(&self) -> (u64, [u8; 32]) {
        let checkpoint = self.ledger.checkpoint();
        (checkpoint.size, checkpoint.root)
    }

    /// Entries durable in the journal.
    pub fn journal_len(&self) -> u64 {
        self.ledger.journal_len()
    }

    pub fn genesis(&self) -> Genesis {
        self.ledger.genesis()
    }

    /// The operator's key, when the node holds it (dev mode).
    pub fn operator_key(&self) -> Option<Arc<SigningKey>> {
        self.operator_key.clone()
    }

    /// Completes once the node stops serving. A service must then return
    /// and drop every clone of its handle: the node waits for that before
    /// its writer stops.
    pub async fn stopped(&self) {
        let mut stopping = self.stopping.clone();
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }

    /// Publishes the chain follower's state in `/v1/health` and `/metrics`.
    pub fn report_chain(&self, health: ChainHealth) {
        *self.ledger.chain_health.lock().expect("chain health lock") = Some(health);
    }
}
