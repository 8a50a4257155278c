//! A client connection's idle timeout (ALB's: closed once no byte moved either way for the listener's idle
//! timeout, unless a request waits for its target). One lazily re-armed timer per connection, not one per
//! request: the socket only notes when bytes last moved, and the timer, when it fires, either closes the
//! connection or sleeps until the new deadline. The same timer keeps a request's deadline for its target's
//! answer (504 past it). An HTTP/2 connection multiplexes requests: each of them keeps its own deadline, and
//! the connection is not idle while any waits for its target.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// When a connection's bytes last moved, and the deadline of a request waiting for its target's answer.
pub(crate) struct Activity {
    start: Instant,
    /// Milliseconds since `start` of the last read or write that moved bytes.
    last_ms: AtomicU64,
    /// Milliseconds since `start` by which the waiting request must have its answer; `u64::MAX` when no
    /// request waits (the connection may be idle then).
    deadline_ms: AtomicU64,
    /// Set by the connection's timer when the waiting request's deadline passed.
    expired: AtomicBool,
    /// Several requests may wait at once (HTTP/2): each keeps its own deadline; `deadline_ms` is unused.
    multiplexed: bool,
    /// With `multiplexed`: how many requests wait for their target (the connection is not idle meanwhile).
    streams_waiting: AtomicUsize,
}

impl Activity {
    /// A connection carrying one request at a time (HTTP/1.1).
    pub fn new() -> Arc<Self> {
        Self::with_multiplexing(false)
    }

    /// A connection carrying concurrent requests (HTTP/2).
    pub fn multiplexed() -> Arc<Self> {
        Self::with_multiplexing(true)
    }

    fn with_multiplexing(multiplexed: bool) -> Arc<Self> {
        Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            deadline_ms: AtomicU64::new(u64::MAX),
            expired: AtomicBool::new(false),
            multiplexed,
            streams_waiting: AtomicUsize::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn touch(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    fn deadline(&self) -> Option<Instant> {
        match self.deadline_ms.load(Ordering::Relaxed) {
            u64::MAX => None,
            ms => Some(self.at(ms)),
        }
    }

    /// Runs `fut`, a request's wait for its target, for at most `timeout` (`None` past it). The connection's
    /// timer ([`serve_until_idle`]) keeps that time, so a request arms no timer of its own; the connection
    /// is not idle meanwhile. On a multiplexed connection the request runs in a task of its own, which the
    /// connection's timer cannot wake: it arms its own timer instead.
    pub async fn within<F: Future>(&self, timeout: Duration, fut: F) -> Option<F::Output> {
        if self.multiplexed {
            self.streams_waiting.fetch_add(1, Ordering::Relaxed);
            let _waiting = StreamWaiting(self);
            return tokio::time::timeout(timeout, fut).await.ok();
        }
        let deadline = self.now_ms().saturating_add(timeout.as_millis() as u64).min(u64::MAX - 1);
        self.expired.store(false, Ordering::Relaxed);
        self.deadline_ms.store(deadline, Ordering::Relaxed);
        let _waiting = Waiting(self);
        tokio::pin!(fut);
        std::future::poll_fn(|cx| {
            if self.expired.load(Ordering::Relaxed) {
                return Poll::Ready(None);
            }
            fut.as_mut().poll(cx).map(Some)
        })
        .await
    }
}

/// Ends a request's wait (answered, timed out or dropped): the connection's idle time counts from here.
struct Waiting<'a>(&'a Activity);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.deadline_ms.store(u64::MAX, Ordering::Relaxed);
        self.0.touch();
    }
}

/// Ends one request's wait on a multiplexed connection.
struct StreamWaiting<'a>(&'a Activity);

impl Drop for StreamWaiting<'_> {
    fn drop(&mut self) {
        self.0.streams_waiting.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// The client's socket, noting on [`Activity`] each read or write that moved bytes.
pub(crate) struct ClientIo<T> {
    io: T,
    activity: Arc<Activity>,
}

impl<T> ClientIo<T> {
    pub fn new(io: T, activity: Arc<Activity>) -> Self {
        ClientIo { io, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ClientIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ClientIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Drives `conn` until it ends or stays idle past `timeout()` (read again at each expiry, so a changed
/// listener applies to established connections); an idle connection is dropped, which closes it. Also ends
/// the wait of a request past its deadline ([`Activity::within`]): the request future runs inside `conn`, so
/// it is polled again right here and sees it expired.
pub(crate) async fn serve_until_idle<F: Future>(conn: F, activity: &Activity, timeout: impl Fn() -> Duration) {
    tokio::pin!(conn);
    let sleep = tokio::time::sleep(timeout());
    tokio::pin!(sleep);
    std::future::poll_fn(|cx| loop {
        if conn.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        // A request waiting with an earlier deadline than the timer's (a shorter timeout applied meanwhile).
        if let Some(d) = activity.deadline() {
            if d < sleep.deadline() {
                sleep.as_mut().reset(d);
            }
        }
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let now = Instant::now();
        match activity.deadline() {
            Some(d) if d <= now => {
                activity.expired.store(true, Ordering::Relaxed);
                sleep.as_mut().reset(now + timeout());
                // Poll `conn` again: the waiting request answers (504) now.
            }
            Some(d) => sleep.as_mut().reset(d),
            None if activity.streams_waiting.load(Ordering::Relaxed) > 0 => sleep.as_mut().reset(now + timeout()),
            None => {
                let deadline = activity.at(activity.last_ms.load(Ordering::Relaxed)) + timeout();
                if deadline <= now {
                    return Poll::Ready(());
                }
                sleep.as_mut().reset(deadline);
            }
        }
    })
    .await
}
