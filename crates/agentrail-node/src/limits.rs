//! Limits that keep one client from starving the others: open connections
//! per peer address and in all, an idle timeout on every connection, and a
//! token bucket per signing identity.
//!
//! - A connection over a limit is answered `429 Too Many Requests` (code
//!   `too_many_connections`, with `Retry-After`) and closed at once; it never
//!   reaches the HTTP stack.
//! - A connection that moves no byte in either direction for the idle
//!   timeout is closed: a client that opens a connection and stalls (or
//!   stops reading its answers) gives its slot back. A client trickling one
//!   byte per timeout keeps its connection, but only as many as its
//!   per-address limit allows.
//! - Each identity's commands draw from a bucket of `identity_burst`
//!   tokens refilled at `identity_rate_per_s`; an empty bucket is a 429
//!   `rate_limited` with `Retry-After`. Only requests whose signature
//!   verified are counted, so nobody can drain another identity's bucket by
//!   claiming its key id. The table of buckets is bounded.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use agentrail_core::Did;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// The node's limits on connections and request rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    /// Open connections in all.
    pub connections_max: usize,
    /// Open connections from one peer address.
    pub connections_per_ip_max: usize,
    /// A connection moving no byte for this long is closed.
    pub idle_timeout: Duration,
    /// Commands per second one identity may sustain.
    pub identity_rate_per_s: u32,
    /// Commands one identity may send at once after being quiet.
    pub identity_burst: u32,
}

impl Default for ServeLimits {
    /// One identity may use about an eighth of what the writer commits on
    /// this project's 2-core machine (~40,000 commands/s).
    fn default() -> ServeLimits {
        ServeLimits {
            connections_max: 4_096,
            connections_per_ip_max: 1_024,
            idle_timeout: Duration::from_secs(30),
            identity_rate_per_s: 5_000,
            identity_burst: 10_000,
        }
    }
}

/// Identities whose buckets are remembered; past it, full buckets (which
/// hold no debt) are forgotten first.
pub const IDENTITIES_TRACKED_MAX: usize = 100_000;

const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\n\
content-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 98\r\n\r\n\
{\"error\":{\"code\":\"too_many_connections\",\"message\":\"too many open connections; retry in a second\"}}";

/// Open connections, by peer address and in all.
#[derive(Debug, Default)]
struct Connections {
    total: usize,
    by_peer: HashMap<IpAddr, usize>,
}

/// A [`TcpListener`] that enforces the connection limits of
/// [`ServeLimits`] and wraps every connection in [`LimitedStream`].
#[derive(Debug)]
pub struct LimitedListener {
    listener: TcpListener,
    limits: ServeLimits,
    connections: Arc<Mutex<Connections>>,
    /// Whether a connection over the limits is answered with a plain-text
    /// 429 (not under TLS, where it would read as garbage) or just closed.
    answer_refusals: bool,
}

impl LimitedListener {
    pub fn new(listener: TcpListener, limits: ServeLimits) -> LimitedListener {
        LimitedListener {
            listener,
            limits,
            connections: Arc::default(),
            answer_refusals: true,
        }
    }

    /// The same listener closing connections over the limits without an
    /// answer (for TLS, where a plain-text 429 means nothing).
    pub fn without_refusals(mut self) -> LimitedListener {
        self.answer_refusals = false;
        self
    }

    /// A slot for a connection from `peer`, or `None` over a limit.
    fn admit(&self, peer: IpAddr) -> Option<Slot> {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let from_peer = connections.by_peer.get(&peer).copied().unwrap_or(0);
        if connections.total >= self.limits.connections_max
            || from_peer >= self.limits.connections_per_ip_max
        {
            return None;
        }
        connections.total += 1;
        connections.by_peer.insert(peer, from_peer + 1);
        Some(Slot {
            peer,
            connections: Arc::clone(&self.connections),
        })
    }
}

impl axum::serve::Listener for LimitedListener {
    type Io = LimitedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (LimitedStream, SocketAddr) {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors or a connection reset before
                    // it was accepted: wait a little rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match self.admit(peer.ip()) {
                Some(slot) => {
                    let timeout = self.limits.idle_timeout;
                    return (
                        LimitedStream {
                            stream,
                            _slot: slot,
                            idle_timeout: timeout,
                            idle: Box::pin(tokio::time::sleep(timeout)),
                            armed: false,
                        },
                        peer,
                    );
                }
                None if self.answer_refusals => {
                    tracing::debug!(%peer, "connection refused: over the limit");
                    refuse(stream);
                }
                None => tracing::debug!(%peer, "connection closed: over the limit"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Refusals being written at once; past it, a refused connection is closed
/// without an answer (a flood of connections must not grow the tasks).
const REFUSALS_IN_FLIGHT_MAX: usize = 256;
/// How long a refusal may take to write before its connection is dropped.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_millis(500);

static REFUSALS_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Answers a connection over the limits with the whole 429, then closes it.
/// A write on a fresh socket may find it not yet known writable (or take
/// part of the answer), so the answer is written by a task of its own,
/// within a timeout, off the accept loop.
fn refuse(stream: TcpStream) {
    if REFUSALS_IN_FLIGHT.fetch_add(1, Ordering::AcqRel) >= REFUSALS_IN_FLIGHT_MAX {
        REFUSALS_IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    tokio::spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, write_refusal(&stream)).await;
        // Dropping the stream closes the connection.
        drop(stream);
        REFUSALS_IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    });
}

async fn write_refusal(stream: &TcpStream) -> io::Result<()> {
    let mut rest = TOO_MANY_CONNECTIONS;
    while !rest.is_empty() {
        stream.writable().await?;
        match stream.try_write(rest) {
            Ok(written) => rest = &rest[written..],
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Holds one connection's place in the counts until it closes.
#[derive(Debug)]
struct Slot {
    peer: IpAddr,
    connections: Arc<Mutex<Connections>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        connections.total -= 1;
        let from_peer = connections
            .by_peer
            .get_mut(&self.peer)
            .expect("an open connection is counted under its peer");
        *from_peer -= 1;
        if *from_peer == 0 {
            connections.by_peer.remove(&self.peer);
        }
    }
}

/// A connection that closes itself when it moves no byte for its idle
/// timeout.
#[derive(Debug)]
pub struct LimitedStream {
    stream: TcpStream,
    _slot: Slot,
    idle_timeout: Duration,
    /// The idle timer, allocated once per connection and re-armed (not
    /// re-allocated) each time the connection starts waiting.
    idle: Pin<Box<Sleep>>,
    /// Whether the timer runs: set when an operation waits, cleared by any
    /// progress.
    armed: bool,
}

impl LimitedStream {
    /// Maps a pending operation to an error once the idle timer fires.
    fn waiting<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if !self.armed {
            let deadline = tokio::time::Instant::now() + self.idle_timeout;
            self.idle.as_mut().reset(deadline);
            self.armed = true;
        }
        match self.idle.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection was idle too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<T>(&mut self, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.armed = false;
        }
        result
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Pending => this.waiting(cx),
            ready => this.progressed(ready),
        }
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Pending => this.waiting(cx),
            ready => this.progressed(ready),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.waiting(cx),
            ready => this.progressed(ready),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// One identity's bucket, in thousandths of a command.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens_milli: u64,
    updated_ms: u64,
}

/// Token buckets per signing identity (see the module docs).
#[derive(Debug)]
pub struct IdentityLimiter {
    rate_per_s: u64,
    burst_milli: u64,
    started: Instant,
    buckets: Mutex<HashMap<Did, Bucket>>,
}

impl IdentityLimiter {
    pub fn new(limits: &ServeLimits) -> IdentityLimiter {
        IdentityLimiter {
            rate_per_s: u64::from(limits.identity_rate_per_s.max(1)),
            burst_milli: u64::from(limits.identity_burst.max(1)) * 1_000,
            started: Instant::now(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one command from `identity`'s bucket, or says how many whole
    /// seconds to wait for the next one.
    pub fn take(&self, identity: Did) -> Result<(), u32> {
        let now_ms = self.started.elapsed().as_millis() as u64;
        self.take_at(identity, now_ms)
    }

    fn take_at(&self, identity: Did, now_ms: u64) -> Result<(), u32> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= IDENTITIES_TRACKED_MAX && !buckets.contains_key(&identity) {
            let (rate, burst) = (self.rate_per_s, self.burst_milli);
            buckets.retain(|_, bucket| refilled(*bucket, now_ms, rate, burst) < burst);
            if buckets.len() >= IDENTITIES_TRACKED_MAX {
                // Every tracked identity is in debt: forgetting them all
                // errs towards letting honest clients through.
                buckets.clear();
            }
        }
        let bucket = buckets.entry(identity).or_insert(Bucket {
            tokens_milli: self.burst_milli,
            updated_ms: now_ms,
        });
        let tokens = refilled(*bucket, now_ms, self.rate_per_s, self.burst_milli);
        bucket.updated_ms = now_ms;
        if tokens >= 1_000 {
            bucket.tokens_milli = tokens - 1_000;
            return Ok(());
        }
        bucket.tokens_milli = tokens;
        // Milli-tokens refill at `rate` per millisecond.
        let wait_ms = (1_000 - tokens).div_ceil(self.rate_per_s);
        Err(u32::try_from(wait_ms.div_ceil(1_000))
            .unwrap_or(u32::MAX)
            .max(1))
    }
}

fn refilled(bucket: Bucket, now_ms: u64, rate_per_s: u64, burst_milli: u64) -> u64 {
    let elapsed = now_ms.saturating_sub(bucket.updated_ms);
    bucket
        .tokens_milli
        .saturating_add(elapsed.saturating_mul(rate_per_s))
        .min(burst_milli)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limiter = IdentityLimiter::new(&ServeLimits {
            identity_rate_per_s: 10,
            identity_burst: 3,
            ..ServeLimits::default()
        });
        let who = Did::from_public_key_bytes([7; 32]);
        for _ in 0..3 {
            assert_eq!(limiter.take_at(who, 0), Ok(()));
        }
        assert_eq!(limiter.take_at(who, 0), Err(1), "a burst of 3");
        assert_eq!(
            limiter.take_at(who, 99),
            Err(1),
            "not yet a tenth of a second"
        );
        assert_eq!(limiter.take_at(who, 100), Ok(()), "10 per second");
        assert_eq!(limiter.take_at(who, 100), Err(1));
        let other = Did::from_public_key_bytes([8; 32]);
        assert_eq!(
            limiter.take_at(other, 100),
            Ok(()),
            "buckets are per identity"
        );
        // A long pause refills to the burst, not beyond.
        for _ in 0..3 {
            assert_eq!(limiter.take_at(who, 60_000), Ok(()));
        }
        assert!(limiter.take_at(who, 60_000).is_err());
    }

    #[test]
    fn the_refusal_fits_its_content_length() {
        let text = std::str::from_utf8(TOO_MANY_CONNECTIONS).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "too_many_connections");
    }
}
