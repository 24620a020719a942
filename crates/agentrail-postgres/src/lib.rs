//! agentrail-postgres: a node's journal replicated through PostgreSQL.
//!
//! One node writes (the leader); others follow (standbys). PostgreSQL,
//! with a synchronous standby of its own, is what makes a batch durable
//! on more than one machine, orders the batches, and fences a writer whose
//! time is over. Nothing here is a consensus protocol: the database's
//! transactions are.
//!
//! # Tables
//!
//! - `agentrail_head`: one row, `(term, size, root)` of the journal, the
//!   leader's `holder` and `leader_url`, and its lease (`lease_until`, on
//!   the database's clock).
//! - `agentrail_batches`: one row per group-commit batch, `(first, term,
//!   root, entries)`: the index of its first entry, the term it was
//!   written in, the RFC 9162 root after it, and its entries verbatim.
//!
//! # Promises
//!
//! - **A batch is appended only by the leader of the head's term, at the
//!   head's size.** [`Journal::append`] moves the head with a
//!   compare-and-swap on `(term, size)` in the batch's own transaction: a
//!   writer whose term was taken over, or that would fork the journal, is
//!   refused by the database itself ([`JournalError::Fenced`]).
//! - **`Ok` means committed**, on the primary and, when the database runs
//!   `synchronous_commit = on` with a synchronous standby, on that standby
//!   too. The node signs a checkpoint only after that.
//! - **An unknown outcome is resolved by reading, never by guessing.** When
//!   the connection fails during a commit, the journal reconnects (to
//!   whichever of the configured hosts is writable), locks the head row —
//!   which waits for a transaction of ours still in flight — and reads
//!   whether the batch is there.
//! - **One leader at a time.** A node takes the lead only when the lease
//!   lapsed on the database's clock ([`Journal::acquire`]), which bumps
//!   the term and so fences the previous leader's next batch.
//! - **One log per database.** The head names the log's origin; a node of
//!   another log is refused at [`Journal::connect`].

#![forbid(unsafe_code)]

pub mod cluster;

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use postgres::config::TargetSessionAttrs;
use postgres::error::SqlState;
use postgres::{Client, Config, NoTls};

/// An RFC 9162 tree hash.
pub type Hash = [u8; 32];

/// The version of the tables this crate reads and writes.
pub const SCHEMA_VERSION: i32 = 1;
/// Most entries one batch row holds (the store's batch limit).
pub const BATCH_ENTRIES_MAX: usize = 8_192;
/// Most batch rows one [`Journal::read`] returns.
pub const READ_BATCHES_MAX: i64 = 16;
/// How long an unknown outcome is retried before it stays unknown.
pub const RESOLVE_WITHIN: Duration = Duration::from_secs(30);
/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The root of the empty tree: SHA-256 of nothing (RFC 9162, 2.1.1).
const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS agentrail_head (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    schema_version integer NOT NULL,
    origin text NOT NULL,
    term bigint NOT NULL CHECK (term >= 0),
    size bigint NOT NULL CHECK (size >= 0),
    root bytea NOT NULL CHECK (length(root) = 32),
    holder text NOT NULL,
    leader_url text NOT NULL,
    lease_until timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS agentrail_batches (
    first bigint PRIMARY KEY CHECK (first >= 0),
    term bigint NOT NULL CHECK (term > 0),
    root bytea NOT NULL CHECK (length(root) = 32),
    entries bytea[] NOT NULL CHECK (cardinality(entries) BETWEEN 1 AND 8192)
);";

/// Serializes the creation of the tables between nodes starting at once.
const SCHEMA_LOCK: i64 = 0x6167_656e_7472_6169;

/// What went wrong, classified by what the caller should do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// No configured host answered as a writable primary. Whether a batch
    /// in flight landed is unknown until one does.
    #[error("the database cannot be reached: {0}")]
    Unreachable(String),
    /// Another node took the lead: this one's term is over and its batch
    /// was refused.
    #[error("term {ours} is over: the database's head is in term {head}")]
    Fenced { ours: u64, head: u64 },
    /// This node does not lead (it never took the lease, or lost it).
    #[error("this node does not hold the lead")]
    NotLeader,
    /// The database holds the journal of another log.
    #[error("the database holds the log {found}, not {expected}")]
    OtherLog { found: String, expected: String },
    /// The tables hold what this journal never writes.
    #[error("the database's journal is damaged: {0}")]
    Corrupt(String),
    /// The database refused a statement.
    #[error("database: {0}")]
    Database(String),
    /// The caller asked for something outside the journal's bounds.
    #[error("invalid request: {0}")]
    Invalid(&'static str),
}

/// Whether a failure is the connection's (another host, or the same one
/// later, may answer) or otherwise leaves a commit's outcome to be read,
/// rather than the statement's.
fn connection_lost(error: &postgres::Error) -> bool {
    match error.code() {
        // No code: the server said nothing, the connection or a timeout
        // failed, or (not a connection's failure) a value would not encode.
        None => {
            error.is_closed()
                || std::error::Error::source(error)
                    .is_none_or(|source| source.is::<std::io::Error>())
        }
        Some(code) => [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::READ_ONLY_SQL_TRANSACTION,
            SqlState::CONNECTION_FAILURE,
            SqlState::CONNECTION_EXCEPTION,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
            // A lock held past `lock_timeout`: by a stalled writer, or by
            // this node's own transaction still in flight. Its outcome is
            // to be resolved like a lost connection's.
            SqlState::LOCK_NOT_AVAILABLE,
        ]
        .contains(code),
    }
}

fn classify(error: postgres::Error) -> JournalError {
    // The server's own words where it said something.
    let message = match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error.to_string(),
    };
    if connection_lost(&error) {
        JournalError::Unreachable(message)
    } else {
        JournalError::Database(message)
    }
}

/// The journal's head, as the database holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub term: u64,
    /// Entries committed.
    pub size: u64,
    /// The tree's root over them.
    pub root: Hash,
    /// Who holds (or last held) the lead.
    pub holder: String,
    /// Where the leader takes commands.
    pub leader_url: String,
    /// Milliseconds left on the lease (negative: lapsed).
    pub lease_left_ms: i64,
}

/// Entries of one committed batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The index of `entries[0]`.
    pub first: u64,
    /// The term the batch was written in.
    pub term: u64,
    /// The tree's root after the whole batch (also when `entries` is a
    /// suffix of it).
    pub root: Hash,
    pub entries: Vec<Vec<u8>>,
}

/// The replicated journal of one log, as one node sees it.
pub struct Journal {
    config: Config,
    client: Mutex<Option<Client>>,
    origin: String,
    holder: String,
    leader_url: Mutex<String>,
    lease: Duration,
    /// The term this node leads in; 0 while it does not.
    term: AtomicU64,
    /// What the database said at connect of its synchronous replication.
    synchronous: Synchronous,
}

/// How the database replicates a commit before it answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Synchronous {
    /// `synchronous_commit` (`on` or `remote_apply` wait for the standby's
    /// flush when one is named).
    pub commit: String,
    /// `synchronous_standby_names` (empty: no standby is waited for).
    pub standby_names: String,
}

impl Synchronous {
    /// Whether a commit waits for a synchronous standby's flush.
    pub fn waits_for_a_standby(&self) -> bool {
        !self.standby_names.trim().is_empty()
            && matches!(self.commit.as_str(), "on" | "remote_apply")
    }
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("hosts", &self.config.get_hosts().len())
            .field("origin", &self.origin)
            .field("holder", &self.holder)
            .field("term", &self.term.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Drop for Journal {
    /// The connection is closed on a thread of its own: the synchronous
    /// client drives its connection with a runtime of its own, which must
    /// not start inside another (a node's last reference to its journal
    /// may go in async code).
    fn drop(&mut self) {
        let client = self
            .client
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(client) = client {
            let _ = std::thread::spawn(move || drop(client)).join();
        }
    }
}

fn to_u64(value: i64, what: &str) -> Result<u64, JournalError> {
    u64::try_from(value).map_err(|_| JournalError::Corrupt(format!("{what} is negative")))
}

fn to_i64(value: u64) -> Result<i64, JournalError> {
    i64::try_from(value).map_err(|_| JournalError::Invalid("an index beyond 2^63"))
}

fn to_hash(bytes: &[u8], what: &str) -> Result<Hash, JournalError> {
    bytes
        .try_into()
        .map_err(|_| JournalError::Corrupt(format!("{what} is not 32 bytes")))
}

impl Journal {
    /// Connects to the database named by `url` (a `postgres://` URL or a
    /// `key=value` string; several hosts may be named, the writable one is
    /// used), creates the tables if they are missing, and checks that they
    /// hold the log `origin`. `holder` names this node in the head while it
    /// leads, `leader_url` is where it then takes commands, and `lease` is
    /// how long its lead outlives its last write or renewal.
    pub fn connect(
        url: &str,
        origin: &str,
        holder: &str,
        leader_url: &str,
        lease: Duration,
    ) -> Result<Journal, JournalError> {
        let mut config = Config::from_str(url)
            .map_err(|e| JournalError::Unreachable(format!("the database URL: {e}")))?;
        if lease < Duration::from_millis(100) {
            return Err(JournalError::Invalid("a lease of at least 100 ms"));
        }
        // A writer that stalls inside a transaction (a paused process, a
        // frozen machine) holds the head row's lock: the server ends its
        // session after a lease, so that a standby can take the lead, and
        // nobody waits for a lock longer than a lease. No statement
        // timeout: cancelling a commit that waits for the synchronous
        // standby would leave it committed locally while reported failed.
        let lease_ms = lease.as_millis();
        // After the URL's own `options` (a `search_path`, say).
        let options = format!(
            "{} -c idle_in_transaction_session_timeout={lease_ms} -c lock_timeout={lease_ms}",
            config.get_options().unwrap_or_default()
        );
        // A host that vanishes without closing the connection (a dead
        // machine, a partition) is noticed within a few leases, not after
        // the system's two hours of TCP keepalive.
        let probe = lease.max(Duration::from_secs(1));
        config
            .target_session_attrs(TargetSessionAttrs::ReadWrite)
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("agentrail")
            .keepalives(true)
            .keepalives_idle(probe)
            .keepalives_interval(probe)
            .keepalives_retries(3)
            .tcp_user_timeout(probe * 3)
            .options(options.trim_start());
        let journal = Journal {
            config,
            client: Mutex::new(None),
            origin: origin.to_owned(),
            holder: holder.to_owned(),
            leader_url: Mutex::new(leader_url.to_owned()),
            lease,
            term: AtomicU64::new(0),
            synchronous: Synchronous::default(),
        };
        journal.run(|client| {
            let mut tx = client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
            tx.batch_execute(SCHEMA)?;
            tx.execute(
                "INSERT INTO agentrail_head
                     (schema_version, origin, term, size, root, holder, leader_url, lease_until)
                 VALUES ($1, $2, 0, 0, $3, '', '', '-infinity')
                 ON CONFLICT DO NOTHING",
                &[&SCHEMA_VERSION, &origin, &EMPTY_ROOT.as_slice()],
            )?;
            tx.commit()
        })?;
        let (version, found): (i32, String) = journal.run(|client| {
            let row = client.query_one("SELECT schema_version, origin FROM agentrail_head", &[])?;
            Ok((row.get(0), row.get(1)))
        })?;
        if version != SCHEMA_VERSION {
            return Err(JournalError::Corrupt(format!(
                "the tables are of version {version}, this node reads {SCHEMA_VERSION}"
            )));
        }
        if found != origin {
            return Err(JournalError::OtherLog {
                found,
                expected: origin.to_owned(),
            });
        }
        let synchronous = journal.run(|client| {
            let commit = client.query_one("SHOW synchronous_commit", &[])?;
            let names = client.query_one("SHOW synchronous_standby_names", &[])?;
            Ok(Synchronous {
                commit: commit.get(0),
                standby_names: names.get(0),
            })
        })?;
        if !synchronous.waits_for_a_standby() {
            tracing::warn!(
                synchronous_commit = %synchronous.commit,
                synchronous_standby_names = %synchronous.standby_names,
                "the database does not wait for a synchronous standby: an acknowledged batch lives on one machine until it is replicated"
            );
        }
        let mut journal = journal;
        journal.synchronous = synchronous;
        Ok(journal)
    }

    /// Runs `work` on the connection, connecting first if there is none; a
    /// connection that failed is dropped, so the next call reconnects.
    fn run<T>(
        &self,
        work: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, JournalError> {
        let mut slot = self.client.lock().expect("client lock");
        if slot.as_ref().is_none_or(Client::is_closed) {
            *slot = None;
            *slot = Some(self.config.connect(NoTls).map_err(|e| {
                JournalError::Unreachable(format!("no writable database among the hosts: {e}"))
            })?);
        }
        let client = slot.as_mut().expect("connected");
        work(client).map_err(|error| {
            if connection_lost(&error) {
                *slot = None;
            }
            classify(error)
        })
    }

    /// Names where this node takes commands, from its next
    /// [`Journal::acquire`] on (a node learns its address once it listens).
    pub fn set_leader_url(&self, url: &str) {
        *self.leader_url.lock().expect("leader URL lock") = url.to_owned();
    }

    /// The term this node leads in, if it does.
    pub fn term(&self) -> Option<u64> {
        match self.term.load(Ordering::Acquire) {
            0 => None,
            term => Some(term),
        }
    }

    /// How the database said it replicates commits, at connect.
    pub fn synchronous(&self) -> &Synchronous {
        &self.synchronous
    }

    /// How this node is named in the head while it leads.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The head as the database holds it now.
    pub fn head(&self) -> Result<Head, JournalError> {
        let row = self.run(|client| {
            client.query_one(
                "SELECT term, size, root, holder, leader_url,
                        CASE WHEN lease_until < now() THEN -1
                             ELSE LEAST(EXTRACT(EPOCH FROM lease_until - now()) * 1000,
                                        9e15)::bigint END
                 FROM agentrail_head",
                &[],
            )
        })?;
        Ok(Head {
            term: to_u64(row.get(0), "the head's term")?,
            size: to_u64(row.get(1), "the head's size")?,
            root: to_hash(row.get(2), "the head's root")?,
            holder: row.get(3),
            leader_url: row.get(4),
            lease_left_ms: row.get(5),
        })
    }

    /// Takes the lead if the lease lapsed (or this node holds it): bumps
    /// the term, which fences the previous leader's next batch, and tells
    /// the head the new leader must catch up to before it writes. `None`
    /// while another node's lease runs.
    pub fn acquire(&self) -> Result<Option<Head>, JournalError> {
        let lease_ms = self.lease.as_secs_f64() * 1000.0;
        let leader_url = self.leader_url.lock().expect("leader URL lock").clone();
        let row = self.run(|client| {
            client.query_opt(
                "UPDATE agentrail_head
                 SET term = term + 1, holder = $1, leader_url = $2,
                     lease_until = now() + $3::float8 * interval '1 millisecond'
                 WHERE lease_until < now() OR holder = $1
                 RETURNING term, size, root",
                &[&self.holder, &leader_url, &lease_ms],
            )
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let head = Head {
            term: to_u64(row.get(0), "the head's term")?,
            size: to_u64(row.get(1), "the head's size")?,
            root: to_hash(row.get(2), "the head's root")?,
            holder: self.holder.clone(),
            leader_url,
            lease_left_ms: self.lease.as_millis() as i64,
        };
        self.term.store(head.term, Ordering::Release);
        tracing::info!(term = head.term, size = head.size, "took the lead");
        Ok(Some(head))
    }

    /// Extends this node's lease; [`JournalError::Fenced`] (and this node
    /// no longer leads) when another node took the lead.
    pub fn renew(&self) -> Result<(), JournalError> {
        let term = self.term().ok_or(JournalError::NotLeader)?;
        let lease_ms = self.lease.as_secs_f64() * 1000.0;
        let renewed = self.run(|client| {
            client.execute(
                "UPDATE agentrail_head
                 SET lease_until = now() + $2::float8 * interval '1 millisecond'
                 WHERE term = $1",
                &[&to_i64(term).unwrap_or(i64::MAX), &lease_ms],
            )
        })?;
        if renewed == 1 {
            Ok(())
        } else {
            Err(self.fenced(term))
        }
    }

    /// Gives the lead up at once (a clean shutdown), so that a standby
    /// need not wait for the lease to lapse.
    pub fn release(&self) -> Result<(), JournalError> {
        let Some(term) = self.term() else {
            return Ok(());
        };
        self.forget(term);
        self.run(|client| {
            client.execute(
                "UPDATE agentrail_head SET lease_until = '-infinity' WHERE term = $1",
                &[&to_i64(term).unwrap_or(i64::MAX)],
            )
        })?;
        tracing::info!(term, "gave the lead up");
        Ok(())
    }

    /// Forgets term `ours`, if it is still the one this node leads in (a
    /// newer term it took since stays).
    fn forget(&self, ours: u64) {
        let _ = self
            .term
            .compare_exchange(ours, 0, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Stops leading without a word to the database (which this node may
    /// not reach): batches of the term it led in are refused from now on.
    pub fn resign(&self) {
        self.term.store(0, Ordering::Release);
    }

    /// This node's term `ours` is over.
    fn fenced(&self, ours: u64) -> JournalError {
        self.forget(ours);
        let head = self.head().map(|head| head.term).unwrap_or(0);
        tracing::warn!(ours, head, "fenced: another node took the lead");
        JournalError::Fenced { ours, head }
    }

    /// Commits `entries`, applied while this node led in `term`, as the
    /// batch at `first`, whose tree root is `root`: moves the head from
    /// `(term, first)` to `(term, first + entries.len(), root)` and stores
    /// the batch, in one transaction. `Ok` once committed; an outcome the
    /// connection lost is resolved (see the crate's promises) for up to
    /// [`RESOLVE_WITHIN`]. A batch of a term this node no longer leads in
    /// is refused here, even if it leads again in a newer one.
    pub fn append(
        &self,
        term: u64,
        first: u64,
        entries: &[&[u8]],
        root: &Hash,
    ) -> Result<(), JournalError> {
        match self.term() {
            Some(current) if current == term => {}
            Some(current) => {
                return Err(JournalError::Fenced {
                    ours: term,
                    head: current,
                });
            }
            None => return Err(JournalError::NotLeader),
        }
        if entries.is_empty() || entries.len() > BATCH_ENTRIES_MAX {
            return Err(JournalError::Invalid("a batch holds 1 to 8192 entries"));
        }
        let term_i = to_i64(term)?;
        let first_i = to_i64(first)?;
        let size_i = to_i64(first + entries.len() as u64)?;
        let lease_ms = self.lease.as_secs_f64() * 1000.0;
        let written = self.run(|client| {
            let mut tx = client.transaction()?;
            let moved = tx.execute(
                "UPDATE agentrail_head
                 SET size = $3, root = $4,
                     lease_until = GREATEST(lease_until,
                                            now() + $5::float8 * interval '1 millisecond')
                 WHERE term = $1 AND size = $2",
                &[&term_i, &first_i, &size_i, &root.as_slice(), &lease_ms],
            )?;
            if moved != 1 {
                tx.rollback()?;
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO agentrail_batches (first, term, root, entries)
                 VALUES ($1, $2, $3, $4)",
                &[&first_i, &term_i, &root.as_slice(), &entries],
            )?;
            tx.commit()?;
            Ok(true)
        });
        match written {
            Ok(true) => Ok(()),
            Ok(false) => {
                let head = self.head()?;
                if head.term != term {
                    Err(self.fenced(term))
                } else {
                    Err(JournalError::Corrupt(format!(
                        "the head is at {} entries in this node's term, not {first}",
                        head.size
                    )))
                }
            }
            Err(JournalError::Unreachable(error)) => {
                tracing::warn!(%error, first, "the commit's outcome is unknown; resolving it");
                self.resolve(term, first, entries.len(), root)
            }
            Err(other) => Err(other),
        }
    }

    /// Whether the batch `(term, first, count, root)` landed: in a fresh
    /// transaction that first locks the head row, which waits for any
    /// transaction still holding it (ours, if its commit is still waiting
    /// for the standby), then reads the batch row at `first`.
    fn resolve(
        &self,
        term: u64,
        first: u64,
        count: usize,
        root: &Hash,
    ) -> Result<(), JournalError> {
        let deadline = Instant::now() + RESOLVE_WITHIN;
        let first_i = to_i64(first)?;
        loop {
            let found = self.run(|client| {
                let mut tx = client.transaction()?;
                let head = tx.query_one("SELECT term FROM agentrail_head FOR UPDATE", &[])?;
                let batch = tx.query_opt(
                    "SELECT term, root, cardinality(entries) FROM agentrail_batches
                     WHERE first = $1",
                    &[&first_i],
                )?;
                // A write, so that this commit waits for the synchronous
                // standby like any other: the batch seen here (perhaps
                // committed locally by a backend ended while it waited
                // for the standby) is on the standby once it returns.
                tx.execute("UPDATE agentrail_head SET term = term", &[])?;
                tx.commit()?;
                Ok((
                    head.get::<_, i64>(0),
                    batch.map(|row| {
                        (
                            row.get::<_, i64>(0),
                            row.get::<_, Vec<u8>>(1),
                            row.get::<_, i32>(2),
                        )
                    }),
                ))
            });
            match found {
                Ok((_, Some((batch_term, batch_root, batch_count))))
                    if batch_term == to_i64(term)?
                        && batch_root == root.as_slice()
                        && usize::try_from(batch_count).ok() == Some(count) =>
                {
                    tracing::info!(first, "the batch had landed");
                    return Ok(());
                }
                Ok((head_term, _)) => {
                    // Not there, and nothing of ours is in flight any more:
                    // it never will be.
                    let head = to_u64(head_term, "the head's term")?;
                    if head != term {
                        self.forget(term);
                        return Err(JournalError::Fenced { ours: term, head });
                    }
                    return Err(JournalError::Database(format!(
                        "the batch at {first} did not land"
                    )));
                }
                Err(JournalError::Unreachable(error)) if Instant::now() < deadline => {
                    tracing::warn!(%error, "no writable database yet; retrying");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// The tree's root after the batch that ends at `size` entries, if a
    /// committed batch ends there (the empty tree's root for 0).
    pub fn root_at(&self, size: u64) -> Result<Option<Hash>, JournalError> {
        if size == 0 {
            return Ok(Some(EMPTY_ROOT));
        }
        let size_i = to_i64(size)?;
        let row = self.run(|client| {
            client.query_opt(
                "SELECT root FROM agentrail_batches
                 WHERE first < $1::bigint AND first > $1::bigint - 8193
                   AND first + cardinality(entries) = $1::bigint",
                &[&size_i],
            )
        })?;
        row.map(|row| to_hash(row.get(0), "a batch's root"))
            .transpose()
    }

    /// Committed entries from index `from` on, batch by batch (at most
    /// [`READ_BATCHES_MAX`] batches); the first batch is cut to start at
    /// `from` when `from` falls inside it.
    pub fn read(&self, from: u64) -> Result<Vec<Batch>, JournalError> {
        let from_i = to_i64(from)?;
        let rows = self.run(|client| {
            client.query(
                "SELECT first, term, root, entries FROM agentrail_batches
                 WHERE first > $1::bigint - 8192 AND first + cardinality(entries) > $1::bigint
                 ORDER BY first LIMIT $2::bigint",
                &[&from_i, &READ_BATCHES_MAX],
            )
        })?;
        let mut batches = Vec::with_capacity(rows.len());
        let mut next = from;
        for row in rows {
            let first = to_u64(row.get(0), "a batch's first index")?;
            let mut entries: Vec<Vec<u8>> = row.get(3);
            if first > next {
                return Err(JournalError::Corrupt(format!(
                    "entries {next}..{first} are missing"
                )));
            }
            let skip = usize::try_from(next - first).unwrap_or(usize::MAX);
            if skip >= entries.len() {
                return Err(JournalError::Corrupt(format!("batches overlap at {first}")));
            }
            entries.drain(..skip);
            next += entries.len() as u64;
            batches.push(Batch {
                first: first + skip as u64,
                term: to_u64(row.get(1), "a batch's term")?,
                root: to_hash(row.get(2), "a batch's root")?,
                entries,
            });
        }
        Ok(batches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn the_empty_root_is_the_hash_of_nothing() {
        assert_eq!(EMPTY_ROOT.as_slice(), Sha256::digest(b"").as_slice());
    }
}
