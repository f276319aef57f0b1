//! The accept loop and the connection wrapper that make queueing delay
//! measurable and slow clients cheap.
//!
//! On a CPU-bound node, requests queue before any middleware sees them: in
//! the runtime's run queue, between the moment a socket becomes readable
//! and the moment its connection task is polled. [`StampedIo`] wraps each
//! socket's waker to note when the socket was woken (for a new connection:
//! when it was accepted), and stamps each read that brings bytes with that
//! time. The request's [`Arrival`] is that stamp, so the admission layer's
//! CoDel gate sees the whole wait. (The time a connection spends in the
//! kernel's accept backlog stays invisible; the connection tasks queued
//! behind the same cores show the overload first.)
//!
//! A client refused with `Retry-After` that sends the same request again
//! (same method, URL and credentials) on the same connection before that
//! time — a naive retry loop, the 2021 "bubble" — has it held, on a
//! timer, until the time it was given; the request is then judged afresh,
//! its queueing delay counted from the end of the hold. The retry costs a
//! timer instead of a place in the run queue ahead of requests the node
//! could serve ([`Pace`]). Another request on that connection (a proxy or
//! a client's pool carrying someone else's) is not held.
//!
//! Every connection gets a header timeout (which also closes idle
//! keep-alive connections), an idle timeout on reads and writes, and a
//! bounded header buffer; the number of open connections is capped, past
//! which the node stops accepting until one closes. This module must not
//! look at requests beyond stamping them.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tower::ServiceExt;

/// When the bytes of the request being handled were first ready: a
/// request extension set by [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct Arrival(pub Instant);

impl Arrival {
    /// How long the request has waited since then.
    pub fn queue_delay(&self) -> Duration {
        self.0.elapsed()
    }
}

/// The connection a request came on, for the refusal that tells its
/// client when to come back: a request extension set by [`serve`].
#[derive(Debug, Clone)]
pub struct Pace(Arc<ConnClock>);

impl Pace {
    /// The client was told to come back in `after`: the same request sent
    /// sooner on this connection waits until then.
    pub fn hold_next(&self, after: Duration) {
        let until = self
            .0
            .now_us()
            .saturating_add(u64::try_from(after.as_micros()).unwrap_or(u64::MAX));
        self.0.hold_until_us.store(until, Ordering::Release);
    }
}

/// What makes two requests "the same request again": method, URL and the
/// credentials they carry.
fn fingerprint<B>(req: &hyper::Request<B>) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    req.method().hash(&mut h);
    req.uri().hash(&mut h);
    for name in [header::COOKIE, header::AUTHORIZATION] {
        for v in req.headers().get_all(name) {
            v.as_bytes().hash(&mut h);
        }
    }
    h.finish()
}

/// Retries held until the time their client was given, since start.
static HELD: AtomicU64 = AtomicU64::new(0);

/// Requests held because their client came back before its `Retry-After`.
pub fn held_total() -> u64 {
    HELD.load(Ordering::Relaxed)
}

/// Limits applied to every connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Longest wait for a request's headers, also between keep-alive
    /// requests.
    pub header_timeout: Duration,
    /// No byte read or written for this long closes the connection.
    pub idle_timeout: Duration,
    /// Most open connections.
    pub max_connections: usize,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

/// The stamps of one connection, shared by its socket and its requests.
#[derive(Debug)]
struct ConnClock {
    base: Instant,
    /// µs since `base` + 1 of the first wake since the last read with
    /// bytes; 0: none.
    woken_us: AtomicU64,
    /// µs since `base` of when the bytes of the latest read were ready.
    data_us: AtomicU64,
    /// The connection task's waker, woken through this clock.
    task: Mutex<Option<Waker>>,
    /// µs since `base` before which the same request again waits; 0: none.
    hold_until_us: AtomicU64,
    /// [`fingerprint`] of the latest request.
    last_request: AtomicU64,
}

impl ConnClock {
    fn new(accepted: Instant) -> Self {
        Self {
            base: accepted,
            // The accept counts as the first wake: the time until the new
            // connection's task first runs is queueing delay too.
            woken_us: AtomicU64::new(1),
            data_us: AtomicU64::new(0),
            task: Mutex::new(None),
            hold_until_us: AtomicU64::new(0),
            last_request: AtomicU64::new(0),
        }
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn set_task(&self, waker: &Waker) {
        let mut slot = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match slot.as_ref() {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    /// A read brought bytes: they were ready since the last wake, or (read
    /// without waiting) now.
    fn mark_data(&self) {
        let woken = self.woken_us.swap(0, Ordering::AcqRel);
        let ready = if woken > 0 { woken - 1 } else { self.now_us() };
        self.data_us.store(ready, Ordering::Release);
    }

    /// How long the request arriving now, of [`fingerprint`] `print`,
    /// must wait: if it repeats the previous one, whose client was told to
    /// come back later. The hold is used up either way.
    fn take_hold(&self, print: u64) -> Option<Duration> {
        let until = self.hold_until_us.swap(0, Ordering::AcqRel);
        let repeated = self.last_request.swap(print, Ordering::AcqRel) == print;
        let now = self.now_us();
        (repeated && until > now).then(|| Duration::from_micros(until - now))
    }

    fn arrival(&self) -> Arrival {
        Arrival(self.base + Duration::from_micros(self.data_us.load(Ordering::Acquire)))
    }
}

impl Wake for ConnClock {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let now = self.now_us().saturating_add(1);
        let _ = self
            .woken_us
            .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(w) = task {
            w.wake();
        }
    }
}

/// A socket that stamps its reads and closes itself when idle.
struct StampedIo {
    inner: TcpStream,
    clock: Arc<ConnClock>,
    /// Our waker, given to the socket's reads: it notes the wake time.
    waker: Waker,
    idle: Duration,
    last_activity: Instant,
    idle_timer: Pin<Box<Sleep>>,
}

impl StampedIo {
    fn new(inner: TcpStream, clock: Arc<ConnClock>, idle: Duration) -> Self {
        let now = Instant::now();
        Self {
            inner,
            waker: Waker::from(Arc::clone(&clock)),
            clock,
            idle,
            last_activity: now,
            idle_timer: Box::pin(tokio::time::sleep_until((now + idle).into())),
        }
    }

    /// Called when the socket would block: ends the connection once it has
    /// been idle for the whole idle timeout.
    fn poll_idle<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        loop {
            if self.idle_timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let deadline = self.last_activity + self.idle;
            if deadline <= Instant::now() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle for too long",
                )));
            }
            self.idle_timer.as_mut().reset(deadline.into());
        }
    }
}

impl AsyncRead for StampedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.clock.set_task(cx.waker());
        let before = buf.filled().len();
        let mut stamped = Context::from_waker(&this.waker);
        match Pin::new(&mut this.inner).poll_read(&mut stamped, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.clock.mark_data();
                    this.last_activity = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.poll_idle(cx),
            ready => ready,
        }
    }
}

impl AsyncWrite for StampedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.last_activity = Instant::now();
                Poll::Ready(Ok(n))
            }
            Poll::Pending => this.poll_idle(cx),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                this.last_activity = Instant::now();
                Poll::Ready(Ok(n))
            }
            Poll::Pending => this.poll_idle(cx),
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets
/// requests in flight finish (for at most the shutdown grace).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // Headers larger than this are refused (hyper's floor is 8 KiB).
        .max_buf_size(64 * 1024);
    // Polled at once in its own task (a signal handler it installs must be
    // in place before the first request is answered), and checked first.
    let mut shutdown = tokio::spawn(shutdown);
    loop {
        // At the connection cap, stop accepting: the kernel's backlog
        // holds newcomers until a connection closes.
        let slot = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(s) => s,
                // The semaphore is never closed; treat it as a stop.
                Err(_) => break,
            },
        };
        let (stream, addr) = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather
                    // than spin, and keep serving the connections open.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let clock = Arc::new(ConnClock::new(Instant::now()));
        let _ = stream.set_nodelay(true);
        let io = StampedIo::new(stream, Arc::clone(&clock), limits.idle_timeout);
        let router = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let mut arrival = clock.arrival();
            let hold = clock.take_hold(fingerprint(&req));
            let extensions = req.extensions_mut();
            extensions.insert(ConnectInfo(addr));
            extensions.insert(Pace(Arc::clone(&clock)));
            let router = router.clone();
            async move {
                if let Some(wait) = hold {
                    HELD.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                    // The wait was the client's due, not a queue.
                    arrival = Arrival(Instant::now());
                }
                req.extensions_mut().insert(arrival);
                router.oneshot(req.map(Body::new)).await
            }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(io), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight at the end of the shutdown grace");
    }
    Ok(())
}
