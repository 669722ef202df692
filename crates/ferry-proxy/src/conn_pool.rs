//! Keep-alive HTTP/1.1 connections to one backend: a LIFO stack of idle connections.
//!
//! Connecting happens before anything is written, so a connect failure hands
//! the request back untouched and it can go to another backend whatever its
//! method or body. A connection goes back to the stack only after its response
//! body was read to the end; one taken from the stack that turns out closed
//! (the backend timed it out) is skipped, and a request it could not send is
//! retried on a fresh connection.

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::backend::now_ms;
use crate::body::ReqBody;

/// One HTTP/1.1 connection's sending half.
pub(crate) type Sender = SendRequest<ReqBody>;

/// Why a request did not get a response.
#[derive(Debug)]
pub(crate) enum SendError {
    /// Connecting failed; nothing was sent and the request is handed back.
    Connect(io::Error, Request<ReqBody>),
    /// The request failed; the request is handed back when nothing of it was sent.
    Request(hyper::Error, Option<Request<ReqBody>>),
}

/// The idle connections of one backend.
#[derive(Debug)]
pub(crate) struct ConnPool {
    addr: SocketAddr,
    connect_timeout: Duration,
    idle_timeout_ms: u64,
    max_idle: usize,
    idle: Mutex<Vec<(Sender, u64)>>,
}

impl ConnPool {
    pub fn new(addr: SocketAddr, connect_timeout: Duration, idle_timeout: Duration) -> Self {
        Self {
            addr,
            connect_timeout,
            idle_timeout_ms: u64::try_from(idle_timeout.as_millis()).unwrap_or(u64::MAX),
            max_idle: 1024,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take_idle(&self) -> Option<Sender> {
        let now = now_ms();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((s, since)) = idle.pop() {
            if !s.is_closed() && now.saturating_sub(since) < self.idle_timeout_ms {
                return Some(s);
            }
        }
        None
    }

    /// Returns a connection whose last response was read to the end.
    pub fn put(&self, s: Sender) {
        if s.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push((s, now_ms()));
        }
    }

    /// Closes every idle connection (a drained or removed backend).
    pub fn clear(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Opens a new connection.
    pub async fn connect(&self) -> io::Result<Sender> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender)
    }

    /// Sends `req` on an idle connection or a new one.
    pub async fn send(
        &self,
        mut req: Request<ReqBody>,
    ) -> Result<(Response<Incoming>, Sender), SendError> {
        loop {
            let (mut sender, reused) = match self.take_idle() {
                Some(s) => (s, true),
                None => match self.connect().await {
                    Ok(s) => (s, false),
                    Err(e) => return Err(SendError::Connect(e, req)),
                },
            };
            if reused && sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok((resp, sender)),
                Err(mut e) => match e.take_message() {
                    // A stale idle connection: nothing was sent, try the next one.
                    Some(r) if reused => req = r,
                    message => return Err(SendError::Request(e.into_error(), message)),
                },
            }
        }
    }
}
