//! A node of several: the journal in PostgreSQL ([`agentrail_postgres`]),
//! the local store its copy.
//!
//! Every node keeps its own local store (journal, tiles, history index,
//! archive, snapshots), as a node of its own does; on a node of several
//! it is a copy of the replicated journal, brought up to it when the store
//! is opened ([`catch_up`]) and after every batch the node follows
//! ([`crate::ledger::Ledger::follow`]). The leader commits each batch to
//! the database first, inside the local batch's transaction, so the local
//! copy never holds what the database lacks.
//!
//! [`run`] is the loop that decides the node's role: a leader renews its
//! lease and steps down when it finds itself fenced; a standby follows the
//! journal and takes the lead when the lease lapses.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agentrail_log::merkle;
use agentrail_postgres::{Journal, JournalError};
use agentrail_store::{Store, StoreError};
use agentrail_wire::entry::JournalEntry;

use crate::http::Nonces;
use crate::ledger::{Ledger, parties, slices};

/// How often a standby looks for new batches and for a lapsed lease.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(100);

fn replica_error(error: JournalError) -> StoreError {
    StoreError::Replica(error.to_string())
}

/// Brings the local store up to the replicated journal: checks that what
/// it holds is a prefix of the journal (the same root where it ends), then
/// appends the batches it lacks, each checked against the root the leader
/// committed. A local store that holds entries the journal lacks, or
/// other ones, is refused: it belongs to another journal (move it aside
/// and the node copies this one afresh).
pub fn catch_up(store: &Store, journal: &Journal) -> Result<u64, StoreError> {
    let local = store.len()?;
    if local > 0 {
        let root = store.with_tree(|nodes| merkle::root(nodes, local))?;
        match journal.root_at(local).map_err(replica_error)? {
            Some(theirs) if theirs == root => {}
            Some(_) => {
                return Err(StoreError::Corrupt(format!(
                    "the local journal's first {local} entries are not the database's"
                )));
            }
            None => {
                return Err(StoreError::Corrupt(format!(
                    "the local journal holds {local} entries, which the database's batches do not end at: it is not this database's copy"
                )));
            }
        }
    }
    let mut appended = 0u64;
    loop {
        let batches = journal.read(local + appended).map_err(replica_error)?;
        if batches.is_empty() {
            break;
        }
        for batch in batches {
            let mut dids = Vec::new();
            let mut ends = Vec::with_capacity(batch.entries.len());
            for (offset, bytes) in batch.entries.iter().enumerate() {
                let summary = JournalEntry::decode_summary(bytes).map_err(|e| {
                    StoreError::Corrupt(format!(
                        "the database's entry {}: {e}",
                        batch.first + offset as u64
                    ))
                })?;
                parties(summary.signer, &summary.events, &mut dids);
                ends.push(dids.len());
            }
            let keys: Vec<[u8; 32]> = dids.iter().map(|did| *did.public_key_bytes()).collect();
            let landed = store.append_logged(&batch.entries, &slices(&keys, &ends), &[])?;
            if landed.root != batch.root {
                return Err(StoreError::Corrupt(format!(
                    "the database's batch at {} has another root than its entries",
                    batch.first
                )));
            }
            appended += batch.entries.len() as u64;
        }
    }
    if appended > 0 {
        tracing::info!(
            from = local,
            entries = appended,
            "the local journal caught up with the database"
        );
    }
    Ok(local + appended)
}

/// Decides the node's role until `stop` is set: see the module's docs.
/// `lease` is the journal's; a leader renews it three times a lease.
pub fn run(ledger: Arc<Ledger>, nonces: Arc<Nonces>, lease: Duration, stop: Arc<AtomicBool>) {
    let Some(journal) = ledger.replica().cloned() else {
        return;
    };
    let renew_every = lease / 3;
    // When the lease was last renewed, on this machine's clock, from the
    // start of the renewal: past a lease without one, another node may
    // lead already.
    let mut renewed = std::time::Instant::now();
    while !stop.load(Ordering::Acquire) {
        if ledger.is_leading() {
            let attempt = std::time::Instant::now();
            match journal.renew() {
                Ok(()) => renewed = attempt,
                Err(JournalError::Fenced { .. } | JournalError::NotLeader) => ledger.step_down(),
                Err(error) => {
                    tracing::warn!(%error, "the lease could not be renewed");
                    if renewed.elapsed() >= lease {
                        tracing::warn!("no renewal for a lease: stepping down");
                        ledger.step_down();
                    }
                }
            }
            if !ledger.is_leading() {
                nonces.close();
            }
            report(&ledger, &journal);
            std::thread::sleep(renew_every.min(FOLLOW_EVERY * 5));
            continue;
        }
        nonces.close();
        if let Err(error) = ledger.follow() {
            tracing::warn!(%error, "following the journal failed");
        }
        let head = report(&ledger, &journal);
        if head.is_some_and(|head| head.lease_left_ms < 0 || head.holder == journal.holder()) {
            let attempt = std::time::Instant::now();
            take_lead(&ledger, &nonces, &journal);
            if ledger.is_leading() {
                renewed = attempt;
            }
        }
        std::thread::sleep(FOLLOW_EVERY);
    }
    // A clean stop (the writer has stopped) hands the lead over at once.
    if ledger.is_leading() {
        if let Err(error) = journal.release() {
            tracing::warn!(%error, "the lead could not be given up");
        }
        ledger.step_down();
    }
}

/// Reads the head and reports it in the node's health.
fn report(ledger: &Ledger, journal: &Journal) -> Option<agentrail_postgres::Head> {
    let head = journal.head();
    let mut health = ledger.replication_health().unwrap_or_default();
    health.database_ok = head.is_ok();
    health.synchronous_standby = journal.synchronous().waits_for_a_standby();
    match &head {
        Ok(head) => {
            health.term = head.term;
            health.head_size = head.size;
            health.leader_url = if head.lease_left_ms >= 0 {
                head.leader_url.clone()
            } else {
                String::new()
            };
        }
        Err(error) => tracing::warn!(%error, "the journal's head could not be read"),
    }
    ledger.report_replication(health);
    head.ok()
}

/// Takes the lead if the lease lapsed: catches up, starts the nonce window
/// afresh (the old leader's refusals are known only to it), then leads.
fn take_lead(ledger: &Ledger, nonces: &Nonces, journal: &Journal) {
    let head = match journal.acquire() {
        Ok(Some(head)) => head,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(%error, "the lead could not be taken");
            return;
        }
    };
    let started = ledger.now();
    let horizon = agentrail_core::Timestamp(
        started
            .0
            .saturating_sub(2 * agentrail_wire::httpsig::SIGNATURE_WINDOW_S),
    );
    let ready = ledger.follow().map_err(|e| e.to_string()).and_then(|_| {
        ledger
            .recent_nonces(horizon)
            .map_err(|error| error.to_string())
    });
    let result = ready.and_then(|recent| {
        nonces.restart(started.0, recent);
        ledger.lead(&head).map_err(|error| error.to_string())
    });
    if result.is_err() {
        nonces.close();
    }
    if let Err(error) = result {
        tracing::error!(%error, "took the lead but cannot lead; giving it up");
        if let Err(error) = journal.release() {
            tracing::warn!(%error, "the lead could not be given up");
        }
    }
}
