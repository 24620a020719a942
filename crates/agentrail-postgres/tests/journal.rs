//! The journal against a real PostgreSQL (a private primary and its
//! synchronous standby from `scripts/postgres`): the lease, the term's
//! fence, reads cut at any index, and a database of another log refused.

use std::time::Duration;

use agentrail_postgres::cluster::Cluster;
use agentrail_postgres::{Journal, JournalError};

const LEASE: Duration = Duration::from_millis(300);

fn journal(url: &str, holder: &str) -> Journal {
    Journal::connect(
        url,
        "test.log/1",
        holder,
        &format!("http://{holder}"),
        LEASE,
    )
    .unwrap()
}

fn root(n: u8) -> [u8; 32] {
    [n; 32]
}

#[test]
fn one_leader_at_a_time_and_a_fenced_writer_is_refused_by_the_database() {
    let database = Cluster::start().unwrap();
    let a = journal(database.url(), "a");
    let b = journal(database.url(), "b");

    // Nobody leads yet: a takes the lead, b cannot while a's lease runs.
    let head = a.acquire().unwrap().expect("a free lease");
    assert_eq!((head.term, head.size), (1, 0));
    assert!(b.acquire().unwrap().is_none());
    assert!(matches!(
        b.append(1, 0, &[b"x".as_slice()], &root(9)),
        Err(JournalError::NotLeader)
    ));

    a.append(1, 0, &[b"e0".as_slice(), b"e1", b"e2"], &root(1))
        .unwrap();
    a.append(1, 3, &[b"e3".as_slice()], &root(2)).unwrap();
    // A batch that would fork the journal (not at the head's size).
    assert!(a.append(1, 2, &[b"fork".as_slice()], &root(7)).is_err());

    // Reads from any index, cut inside a batch.
    let batches = b.read(1).unwrap();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].first, 1);
    assert_eq!(batches[0].entries, vec![b"e1".to_vec(), b"e2".to_vec()]);
    assert_eq!(batches[0].root, root(1));
    assert_eq!(batches[1].first, 3);
    assert!(b.read(4).unwrap().is_empty());
    assert_eq!(b.root_at(3).unwrap(), Some(root(1)));
    assert_eq!(b.root_at(4).unwrap(), Some(root(2)));
    assert_eq!(b.root_at(2).unwrap(), None, "no batch ends at 2");

    // a goes quiet: its lease lapses and b takes the lead in term 2.
    std::thread::sleep(LEASE + Duration::from_millis(200));
    let head = b.acquire().unwrap().expect("a lapsed lease");
    assert_eq!((head.term, head.size, head.root), (2, 4, root(2)));
    assert_eq!(head.holder, "b");

    // a's next batch, at the right size, is refused: its term is over.
    match a.append(1, 4, &[b"late".as_slice()], &root(3)) {
        Err(JournalError::Fenced { ours: 1, head: 2 }) => {}
        other => panic!("a fenced writer's batch: {other:?}"),
    }
    assert!(a.term().is_none(), "a knows it no longer leads");
    assert!(matches!(a.renew(), Err(JournalError::NotLeader)));
    b.append(2, 4, &[b"e4".as_slice()], &root(4)).unwrap();
    // A batch applied in a term its node no longer leads in is refused,
    // even when the node leads again later.
    assert!(matches!(
        b.append(1, 5, &[b"old".as_slice()], &root(5)),
        Err(JournalError::Fenced { ours: 1, head: 2 })
    ));
    b.renew().unwrap();
    assert_eq!(a.head().unwrap().size, 5);
    assert_eq!(a.read(4).unwrap()[0].entries, vec![b"e4".to_vec()]);

    // A clean stop hands the lead over at once.
    b.release().unwrap();
    let head = a.acquire().unwrap().expect("a released lease");
    assert_eq!((head.term, head.size), (3, 5));
}

#[test]
fn a_database_of_another_log_is_refused() {
    let database = Cluster::start().unwrap();
    journal(database.url(), "a");
    match Journal::connect(database.url(), "other.log/2", "c", "http://c", LEASE) {
        Err(JournalError::OtherLog { found, expected }) => {
            assert_eq!(
                (found.as_str(), expected.as_str()),
                ("test.log/1", "other.log/2")
            );
        }
        other => panic!("another log's database: {other:?}"),
    }
}

#[test]
fn no_reachable_host_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://agentrail@127.0.0.1:{port}/agentrail");
    match Journal::connect(&url, "test.log/1", "a", "http://a", LEASE) {
        Err(JournalError::Unreachable(message)) => {
            assert!(message.contains("no writable database"))
        }
        other => panic!("no database: {other:?}"),
    }
}
