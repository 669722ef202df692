//! Connections to one backend: per serving thread, a LIFO stack of idle HTTP/1.1
//! keep-alive connections, or one shared HTTP/2 (h2c, prior knowledge) connection.
//!
//! Connecting happens before anything is written, so a connect failure hands
//! the request back untouched and it can go to another backend whatever its
//! method or body. An HTTP/1.1 connection goes back to the stack only after its
//! response body was read to the end; one taken from the stack that turns out
//! closed (the backend timed it out) is skipped, and a request it could not send
//! is retried on a fresh connection.
//!
//! Why per thread: a hyper client connection is a task of the runtime that
//! opened it. With one single-threaded runtime per serving thread, a connection
//! opened on thread A and reused by a request on thread B would wake a task
//! across threads twice per request (an eventfd write and a context switch each);
//! keeping each thread's connections to itself keeps a request and its upstream
//! connection on one thread, as nginx workers do.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{TrySendError, http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use crate::backend::now_ms;
use crate::body::ReqBody;
use crate::config::BackendProtocol;

thread_local! {
    /// The serving thread's slot in every pool (0: any thread not started by the proxy).
    static SLOT: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as serving thread `i` (slots `1..=threads`).
pub(crate) fn set_thread_slot(i: usize) {
    SLOT.with(|s| s.set(i));
}

/// The current thread's slot (0 outside the proxy's serving threads).
pub(crate) fn thread_slot() -> usize {
    SLOT.with(Cell::get)
}

/// One connection's sending half.
#[derive(Debug)]
pub(crate) enum Sender {
    /// An HTTP/1.1 connection: one request at a time.
    H1(http1::SendRequest<ReqBody>),
    /// An HTTP/2 connection: a handle onto a multiplexed connection.
    H2(http2::SendRequest<ReqBody>),
}

impl Sender {
    async fn ready(&mut self) -> hyper::Result<()> {
        match self {
            Sender::H1(s) => s.ready().await,
            Sender::H2(s) => s.ready().await,
        }
    }

    async fn try_send(
        &mut self,
        req: Request<ReqBody>,
    ) -> Result<Response<Incoming>, TrySendError<Request<ReqBody>>> {
        match self {
            Sender::H1(s) => s.try_send_request(req).await,
            Sender::H2(s) => s.try_send_request(req).await,
        }
    }

    /// Sends one request (health checks).
    pub async fn send_request(
        &mut self,
        req: Request<ReqBody>,
    ) -> hyper::Result<Response<Incoming>> {
        self.ready().await?;
        self.try_send(req).await.map_err(TrySendError::into_error)
    }
}

/// Why a request did not get a response.
#[derive(Debug)]
pub(crate) enum SendError {
    /// Connecting failed; nothing was sent and the request is handed back.
    Connect(io::Error, Request<ReqBody>),
    /// The request failed; the request is handed back when nothing of it was sent.
    Request(hyper::Error, Option<Request<ReqBody>>),
    /// A reused keep-alive connection closed before any response: the backend had
    /// closed it as the request went out. It may be sent again on a new connection
    /// when it can be sent twice (bodiless and idempotent).
    Stale(hyper::Error),
}

#[derive(Debug, Default)]
struct Slot {
    /// Idle HTTP/1.1 connections with the time they were put back (ms).
    idle: Vec<(http1::SendRequest<ReqBody>, u64)>,
    /// The shared HTTP/2 connection.
    h2: Option<http2::SendRequest<ReqBody>>,
    /// Idle connections of the HTTP/1.1 fast path (`h1`), with the time they were put back.
    raw: Vec<(TcpStream, u64)>,
}

/// The connections of one backend.
#[derive(Debug)]
pub(crate) struct ConnPool {
    addr: SocketAddr,
    protocol: BackendProtocol,
    connect_timeout: Duration,
    idle_timeout_ms: u64,
    max_idle: usize,
    slots: Box<[Mutex<Slot>]>,
}

impl ConnPool {
    pub fn new(
        addr: SocketAddr,
        protocol: BackendProtocol,
        connect_timeout: Duration,
        idle_timeout: Duration,
        threads: usize,
    ) -> Self {
        Self {
            addr,
            protocol,
            connect_timeout,
            idle_timeout_ms: u64::try_from(idle_timeout.as_millis()).unwrap_or(u64::MAX),
            max_idle: 1024,
            slots: (0..=threads).map(|_| Mutex::default()).collect(),
        }
    }

    pub fn protocol(&self) -> BackendProtocol {
        self.protocol
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        let i = thread_slot() % self.slots.len();
        self.slots[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take_idle(&self) -> Option<Sender> {
        let now = now_ms();
        let mut slot = self.slot();
        if self.protocol == BackendProtocol::H2c {
            return match &slot.h2 {
                Some(s) if !s.is_closed() => Some(Sender::H2(s.clone())),
                _ => {
                    slot.h2 = None;
                    None
                }
            };
        }
        while let Some((s, since)) = slot.idle.pop() {
            if !s.is_closed() && now.saturating_sub(since) < self.idle_timeout_ms {
                return Some(Sender::H1(s));
            }
        }
        None
    }

    /// Returns a connection whose last response was read to the end.
    pub fn put(&self, s: Sender) {
        // An HTTP/2 handle is a clone of the slot's shared one: dropping it is enough.
        let Sender::H1(s) = s else { return };
        if s.is_closed() {
            return;
        }
        let mut slot = self.slot();
        if slot.idle.len() < self.max_idle {
            slot.idle.push((s, now_ms()));
        }
    }

    /// Closes every idle connection (a drained or removed backend).
    pub fn clear(&self) {
        for slot in &self.slots {
            let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
            slot.idle.clear();
            slot.h2 = None;
            slot.raw.clear();
        }
    }

    /// An idle fast-path connection that still looks open, if there is one.
    ///
    /// A backend that closed an idle connection made its socket readable (end of
    /// stream): the reactor's readiness says so without a system call, and only
    /// a connection flagged readable is probed with a read.
    pub fn take_raw(&self) -> Option<TcpStream> {
        let now = now_ms();
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut slot = self.slot();
        while let Some((s, since)) = slot.raw.pop() {
            if now.saturating_sub(since) >= self.idle_timeout_ms {
                continue;
            }
            match s.poll_read_ready(&mut cx) {
                std::task::Poll::Pending => return Some(s),
                std::task::Poll::Ready(Ok(())) => {
                    // Readable while idle: closed, or bytes nobody asked for. Either way not reusable,
                    // unless the readiness was stale.
                    let mut probe = [0u8; 1];
                    if matches!(s.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
                    {
                        return Some(s);
                    }
                }
                std::task::Poll::Ready(Err(_)) => {}
            }
        }
        None
    }

    /// Returns a fast-path connection whose last response was read to the end.
    pub fn put_raw(&self, s: TcpStream) {
        let mut slot = self.slot();
        if slot.raw.len() < self.max_idle {
            slot.raw.push((s, now_ms()));
        }
    }

    /// Opens a new plain TCP connection for the fast path.
    pub async fn connect_raw(&self) -> io::Result<TcpStream> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Opens a new connection in the backend's protocol.
    pub async fn connect(&self) -> io::Result<Sender> {
        let stream = self.connect_raw().await?;
        let io = TokioIo::new(stream);
        match self.protocol {
            BackendProtocol::Http1 => {
                let (sender, conn) = http1::Builder::new()
                    .handshake(io)
                    .await
                    .map_err(io::Error::other)?;
                tokio::spawn(async move {
                    let _ = conn.with_upgrades().await;
                });
                Ok(Sender::H1(sender))
            }
            BackendProtocol::H2c => {
                let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .handshake(io)
                    .await
                    .map_err(io::Error::other)?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok(Sender::H2(sender))
            }
        }
    }

    /// A new connection, shared with later requests when it is HTTP/2.
    async fn connect_shared(&self) -> io::Result<Sender> {
        let s = self.connect().await?;
        if let Sender::H2(h2) = &s {
            self.slot().h2 = Some(h2.clone());
        }
        Ok(s)
    }

    /// Stops sharing a failed HTTP/2 connection (the next request opens a new one).
    fn forget_h2(&self, sender: &Sender) {
        if matches!(sender, Sender::H2(_)) {
            self.slot().h2 = None;
        }
    }

    /// Sends `req` on an idle connection or a new one (`fresh`: always a new one).
    pub async fn send(
        &self,
        mut req: Request<ReqBody>,
        fresh: bool,
    ) -> Result<(Response<Incoming>, Sender), SendError> {
        loop {
            let idle = if fresh { None } else { self.take_idle() };
            let (mut sender, reused) = match idle {
                Some(s) => (s, true),
                None => match self.connect_shared().await {
                    Ok(s) => (s, false),
                    Err(e) => return Err(SendError::Connect(e, req)),
                },
            };
            if reused && sender.ready().await.is_err() {
                self.forget_h2(&sender);
                continue;
            }
            match sender.try_send(req).await {
                Ok(resp) => return Ok((resp, sender)),
                Err(mut e) => match e.take_message() {
                    // A stale idle connection: nothing was sent, try the next one.
                    Some(r) if reused => {
                        self.forget_h2(&sender);
                        req = r;
                    }
                    None if reused && e.error().is_incomplete_message() => {
                        self.forget_h2(&sender);
                        return Err(SendError::Stale(e.into_error()));
                    }
                    message => return Err(SendError::Request(e.into_error(), message)),
                },
            }
        }
    }
}
