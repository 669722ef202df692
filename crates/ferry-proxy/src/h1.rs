//! The HTTP/1.1 fast path: plain HTTP/1.1 requests proxied to HTTP/1.1 backends
//! with our own codec (httparse for heads, [`Chunked`] for chunked framing), the
//! client connection and its upstream connection driven by one task.
//!
//! Why: with hyper on both sides every request crossed three tasks (server
//! dispatcher, the handler, the client connection) and built two `HeaderMap`s;
//! this path parses the head once, writes the rewritten head into a buffer and
//! streams bodies through unchanged, as nginx does. An idle keep-alive client
//! connection holds no buffer: buffers come from a per-thread free list when
//! bytes arrive and go back when the connection is idle again.
//!
//! Anything unusual leaves the fast path for hyper, with the bytes read so far
//! replayed ([`Rewind`]): another HTTP version, upgrades, `expect`, a
//! `transfer-encoding` on the request, an ambiguous `content-length`, a missing
//! or repeated `host`, a target that is not origin-form, more than
//! [`MAX_HEADERS`] headers, a head httparse rejects (hyper answers 400), and a
//! service whose backends speak h2c. The rest of that connection is hyper's.
//!
//! Semantics match `forward`: the same routing, rate limit, maintenance (and its
//! hold), limits, error pages, headers added and removed, retries (connect
//! failures for any request; a reset for bodiless idempotent ones, within the
//! retry budget), outlier reports, statistics, access log and drain behaviour.

use std::borrow::Cow;
use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes};
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::backend::{Backend, STREAM_GRACE, now_ms};
use crate::chunked::Chunked;
use crate::config::{BackendProtocol, ListenerConfig};
use crate::event_stream::{EventTail, is_event_stream};
use crate::forward::{self, ConnInfo, Counted};
use crate::proxy::{Protocols, Shared, stopped};
use crate::route_table::{Client, Headers, RouteTable};

/// Headers parsed per head; a request with more goes to hyper (which allows 100).
pub(crate) const MAX_HEADERS: usize = 64;
/// The size of pooled buffers.
const BUF_SIZE: usize = 8 * 1024;
/// Most fields accepted in a backend's response head (more: 502).
const MAX_RESPONSE_HEADERS: usize = 256;
/// Largest response head accepted from a backend.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

thread_local! {
    /// Free buffers of this serving thread.
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

fn take_buf() -> Vec<u8> {
    FREE.with(|f| f.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(BUF_SIZE))
}

fn give_buf(mut b: Vec<u8>) {
    // Grown buffers (a large head) are not kept: the free list stays small.
    if b.capacity() != BUF_SIZE {
        return;
    }
    b.clear();
    FREE.with(|f| {
        let mut f = f.borrow_mut();
        if f.len() < 1024 {
            f.push(b);
        }
    });
}

/// Bytes read from the client and not yet used, in a pooled buffer held only
/// while there are some.
#[derive(Default)]
struct Pending {
    buf: Option<Vec<u8>>,
    start: usize,
}

impl Pending {
    fn data(&self) -> &[u8] {
        self.buf.as_deref().map_or(&[], |b| &b[self.start..])
    }

    fn len(&self) -> usize {
        self.data().len()
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.buf.as_ref().is_some_and(|b| self.start >= b.len()) {
            self.release();
        }
    }

    fn release(&mut self) {
        if let Some(b) = self.buf.take() {
            give_buf(b);
        }
        self.start = 0;
    }

    /// The buffer to read more into, compacted and with room for at least 1 KiB.
    fn for_reading(&mut self) -> &mut Vec<u8> {
        let start = std::mem::take(&mut self.start);
        let b = self.buf.get_or_insert_with(take_buf);
        if start > 0 {
            b.drain(..start);
        }
        if b.capacity() - b.len() < 1024 {
            b.reserve(BUF_SIZE);
        }
        b
    }

    fn take(&mut self) -> Bytes {
        let bytes = Bytes::copy_from_slice(self.data());
        self.release();
        bytes
    }
}

/// What happens to the client connection after an exchange.
enum Next {
    KeepAlive,
    Close,
    /// Close after reading (and dropping) what the client still sends, so an
    /// unread request body does not turn the close into a reset that loses the
    /// response.
    Linger,
    /// Hand the connection, with the unread bytes, to hyper.
    Fallback,
}

/// Serves a plain HTTP/1.1 client connection.
pub(crate) async fn serve(
    shared: &Arc<Shared>,
    proto: &Protocols,
    cfg: &ListenerConfig,
    mut stream: TcpStream,
    info: ConnInfo,
) {
    let mut stop = shared.shutdown.subscribe();
    let mut pending = Pending::default();
    loop {
        if pending.len() == 0 && !idle(shared, proto, &stream, &mut stop).await {
            return;
        }
        let next = Box::pin(exchange(shared, proto, info, &mut stream, &mut pending)).await;
        match next {
            Next::KeepAlive => {}
            Next::Close => {
                let _ = stream.shutdown().await;
                return;
            }
            Next::Linger => {
                pending.release();
                Box::pin(linger(stream)).await;
                return;
            }
            Next::Fallback => {
                let prefix = pending.take();
                Box::pin(crate::proxy::serve_io(
                    shared,
                    proto,
                    cfg,
                    Rewind::new(stream, prefix),
                    info,
                    false,
                ))
                .await;
                return;
            }
        }
    }
}

/// Waits for the next request's first bytes; false when the connection should close.
async fn idle(
    shared: &Shared,
    proto: &Protocols,
    stream: &TcpStream,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        biased;
        r = stream.readable() => r.is_ok(),
        () = stopped(stop) => {
            // After a handover an idle client gets a moment to send its next request
            // (answered with `connection: close`) instead of racing our close.
            shared.handed_over.load(Ordering::Acquire)
                && matches!(
                    tokio::time::timeout(shared.drain_idle, stream.readable()).await,
                    Ok(Ok(()))
                )
        }
        // Like hyper's header read timeout, which runs while a connection waits for a head.
        () = tokio::time::sleep(proto.header_timeout) => false,
    }
}

/// Shuts down our side and drops what the client still sends, for at most a second.
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let mut total = 0usize;
        while total < 1 << 20 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

/// Reads what the socket has now, without waiting: `WouldBlock` when nothing.
///
/// Unlike `TcpStream::try_read_buf`, a read shorter than the room offered also
/// clears the socket's readiness (tokio does so in `poll_read`): the next wait for
/// the client's next request then really waits, instead of waking at once for a
/// read that finds nothing (one `recv` returning EAGAIN per request otherwise).
fn read_ready(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let read = std::pin::pin!(stream.read_buf(buf));
    match std::future::Future::poll(read, &mut cx) {
        Poll::Ready(r) => r,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

/// Reads more client bytes into `pending`; `Ok(0)` at end of stream.
async fn read_more(
    stream: &mut TcpStream,
    pending: &mut Pending,
    deadline: tokio::time::Instant,
) -> io::Result<usize> {
    let buf = pending.for_reading();
    match read_ready(stream, buf) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        r => return r,
    }
    tokio::time::timeout_at(deadline, stream.read_buf(buf))
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

/// A request the fast path forwards.
pub(crate) struct Forward {
    pub(crate) head_len: usize,
    pub(crate) body_len: u64,
    table: Arc<RouteTable>,
    service: usize,
    pool: usize,
    backend: Arc<Backend>,
    set_cookie: Option<(String, u64)>,
    idempotent: bool,
    head_method: bool,
    client_close: bool,
    log: Option<(String, String)>,
}

/// A response the proxy writes itself.
pub(crate) struct Reply {
    head_len: usize,
    body_len: u64,
    status: StatusCode,
    text: Cow<'static, str>,
    retry_after: Option<u64>,
    log: Option<(String, String)>,
    /// Close the connection after the reply.
    close: bool,
}

/// What [`plan`] decided for a request (crate-visible for `crate::fuzzing`).
pub(crate) enum Planned {
    Partial,
    Fallback,
    /// The service is in maintenance with a hold: wait (nothing consumed yet) for
    /// a table other than `table` or the deadline, then plan again.
    Hold {
        deadline: tokio::time::Instant,
        table: Arc<RouteTable>,
    },
    Reply(Reply),
    Forward(Forward),
}

/// What the request scan found in the headers.
#[derive(Default)]
struct Scan<'a> {
    host: Option<&'a [u8]>,
    content_length: Option<u64>,
    unusual: bool,
    close: bool,
    forwarded_host: bool,
    request_id: bool,
    /// Headers named in `connection`.
    named: Vec<&'a [u8]>,
}

/// Parses a request head from `input` and decides what to do with it; for a
/// request to forward, writes the upstream head into `out`. `held`: the deadline
/// of an earlier [`Planned::Hold`] of this request (its rate limit was checked then).
pub(crate) fn plan(
    shared: &Shared,
    info: ConnInfo,
    input: &[u8],
    out: &mut Vec<u8>,
    held: Option<tokio::time::Instant>,
) -> Planned {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let head_len = match req.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Planned::Partial,
        Err(_) => return Planned::Fallback,
    };
    if head_len > shared.max_header_bytes {
        // A complete head over the limit (an incomplete one is caught while reading).
        return Planned::Reply(Reply {
            head_len,
            body_len: 0,
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            text: "request header fields too large".into(),
            retry_after: None,
            log: None,
            close: true,
        });
    }
    let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
        return Planned::Fallback;
    };
    if !target.starts_with('/') {
        return Planned::Fallback;
    }
    let headers: &[httparse::Header<'_>] = req.headers;
    let mut scan = Scan::default();
    for h in headers {
        match classify(h.name) {
            Class::Host => scan.host = scan.host.or(Some(h.value)),
            Class::ContentLength => match (parse_length(h.value), scan.content_length) {
                (Some(n), None) => scan.content_length = Some(n),
                _ => scan.unusual = true,
            },
            Class::TransferEncoding | Class::Upgrade | Class::Expect => scan.unusual = true,
            Class::Connection => {
                for token in tokens(h.value) {
                    if token.eq_ignore_ascii_case(b"close") {
                        scan.close = true;
                    } else if token.eq_ignore_ascii_case(b"upgrade") || sets_itself(token) {
                        scan.unusual = true;
                    } else if !token.eq_ignore_ascii_case(b"keep-alive") {
                        scan.named.push(token);
                    }
                }
            }
            Class::ForwardedHost => scan.forwarded_host = true,
            Class::RequestId => scan.request_id = true,
            _ => {}
        }
    }
    if scan.unusual {
        return Planned::Fallback;
    }
    let body_len = scan.content_length.unwrap_or(0);
    if body_len > (input.len() - head_len) as u64 {
        // A body still on its way goes to hyper, which reads it while it may already
        // be reading the response (a backend that answers as it reads — an echo —
        // would otherwise wait on us while we wait on it). Bodies that came with the
        // head, most API requests, stay here and go out in the head's write.
        return Planned::Fallback;
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let log = tracing::enabled!(target: "ferry_proxy::access", tracing::Level::INFO)
        .then(|| (method.to_owned(), path.to_owned()));
    let reply = |status, text: Cow<'static, str>, retry_after, log| {
        Planned::Reply(Reply {
            head_len,
            body_len,
            status,
            text,
            retry_after,
            log,
            close: false,
        })
    };
    let hosts = headers
        .iter()
        .filter(|h| classify(h.name) == Class::Host)
        .map(|h| h.value);
    if let Err(why) = forward::check_host(hosts) {
        let mut r = reply(StatusCode::BAD_REQUEST, why.into(), None, log);
        if let Planned::Reply(r) = &mut r {
            // A malformed request: nothing more is read from this connection.
            r.close = true;
        }
        return r;
    }
    let host_value = scan.host.unwrap_or_default();
    if let Some(limiter) = &shared.rate_limiter
        && held.is_none()
        && let Err(retry_after) = limiter.check(info.peer.ip(), now_ms())
    {
        return reply(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests".into(),
            Some(retry_after),
            log,
        );
    }
    let Ok(host) = std::str::from_utf8(host_value) else {
        return Planned::Fallback;
    };
    let host = forward::host_without_port(host);
    let table = shared.table.load_full();
    let Some(service_index) = table.route_index(&host, path) else {
        return reply(
            StatusCode::NOT_FOUND,
            "no route for this host and path".into(),
            None,
            log,
        );
    };
    let service = &table.services[service_index];
    if service.config.backend_protocol != BackendProtocol::Http1 {
        return Planned::Fallback;
    }
    if body_len > shared.max_body_bytes {
        return reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large".into(),
            None,
            log,
        );
    }
    if let Some(deadline) =
        forward::hold_until(shared, &service.config, held, tokio::time::Instant::now())
    {
        return Planned::Hold {
            deadline,
            table: Arc::clone(&table),
        };
    }
    if let Some(text) = &service.config.maintenance {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            text.clone().into(),
            Some(30),
            log,
        );
    }
    let now = now_ms();
    let client = Client {
        ip: info.peer.ip(),
        headers: Headers::Raw(headers),
    };
    let chosen = service
        .choose_pool(&client, now, forward::random_u64)
        .and_then(|choice| {
            let backend = service.choose_backend(choice.pool, &client, &[], now)?;
            Some((choice, backend))
        });
    let Some((choice, backend)) = chosen else {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            forward::no_backend_text(service).into(),
            None,
            log,
        );
    };

    // The upstream head: request line, the client's end-to-end headers, ours.
    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut forwarded_for: Vec<&[u8]> = Vec::new();
    for h in headers {
        match classify(h.name) {
            Class::Connection | Class::HopByHop | Class::ForwardedProto => continue,
            Class::ForwardedFor => {
                if !h.value.is_empty() {
                    forwarded_for.push(h.value);
                }
                continue;
            }
            _ => {}
        }
        if scan
            .named
            .iter()
            .any(|n| n.eq_ignore_ascii_case(h.name.as_bytes()))
        {
            continue;
        }
        header_line(out, h.name.as_bytes(), h.value);
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    for prev in forwarded_for {
        out.extend_from_slice(prev);
        out.extend_from_slice(b", ");
    }
    {
        use std::io::Write;
        let _ = write!(out, "{}", info.peer.ip());
    }
    out.extend_from_slice(if info.tls {
        b"\r\nx-forwarded-proto: https\r\n"
    } else {
        b"\r\nx-forwarded-proto: http\r\n"
    });
    if !scan.forwarded_host {
        header_line(out, b"x-forwarded-host", host_value);
    }
    if !scan.request_id {
        header_line(out, b"x-request-id", &forward::request_id_bytes());
    }
    out.extend_from_slice(b"\r\n");
    Planned::Forward(Forward {
        head_len,
        body_len,
        service: service_index,
        pool: choice.pool,
        set_cookie: choice.set_cookie,
        backend,
        idempotent: forward::is_idempotent_method(method.as_bytes()),
        head_method: method == "HEAD",
        client_close: scan.close,
        log,
        table,
    })
}

/// Whether a field the client names in `connection` is one this path frames the
/// request by or writes itself (host, content-length, x-forwarded-*,
/// x-request-id): dropping it as hop-by-hop would send a body without its
/// length or a request without Host or request id, so hyper takes such a
/// request (it removes the field and then sets its own).
fn sets_itself(token: &[u8]) -> bool {
    matches!(
        std::str::from_utf8(token).map_or(Class::Other, classify),
        Class::Host
            | Class::ContentLength
            | Class::ForwardedFor
            | Class::ForwardedProto
            | Class::ForwardedHost
            | Class::RequestId
    )
}

fn header_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Header names the fast path treats specially (compared case-insensitively).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    Upgrade,
    Expect,
    /// keep-alive, proxy-connection, te, trailer, proxy-authorization.
    HopByHop,
    ForwardedFor,
    ForwardedProto,
    ForwardedHost,
    RequestId,
    Revision,
    Security,
    Other,
}

fn classify(name: &str) -> Class {
    let is = |s: &str| name.eq_ignore_ascii_case(s);
    match name.len() {
        2 if is("te") => Class::HopByHop,
        4 if is("host") => Class::Host,
        6 if is("expect") => Class::Expect,
        7 if is("upgrade") => Class::Upgrade,
        7 if is("trailer") => Class::HopByHop,
        10 if is("connection") => Class::Connection,
        10 if is("keep-alive") => Class::HopByHop,
        12 if is("x-request-id") => Class::RequestId,
        14 if is("content-length") => Class::ContentLength,
        15 if is("x-forwarded-for") => Class::ForwardedFor,
        15 if is("x-frame-options") || is("referrer-policy") => Class::Security,
        16 if is("proxy-connection") => Class::HopByHop,
        16 if is("x-ferry-revision") => Class::Revision,
        16 if is("x-forwarded-host") => Class::ForwardedHost,
        17 if is("transfer-encoding") => Class::TransferEncoding,
        17 if is("x-forwarded-proto") => Class::ForwardedProto,
        19 if is("proxy-authorization") => Class::HopByHop,
        22 if is("x-content-type-options") => Class::Security,
        25 if is("strict-transport-security") => Class::Security,
        _ => Class::Other,
    }
}

/// The comma-separated tokens of a header value, as bytes: a token that is not
/// UTF-8 (obs-text) matches nothing but does not hide the others (a value that
/// was not UTF-8 used to yield no tokens, so `connection: x-secret, \xff`
/// forwarded `x-secret`).
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// A `content-length` value: digits only (no sign, no list).
fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// One request: read its head, then answer it or forward it.
async fn exchange(
    shared: &Shared,
    proto: &Protocols,
    info: ConnInfo,
    stream: &mut TcpStream,
    pending: &mut Pending,
) -> Next {
    if pending.len() == 0 {
        // The socket looked readable: read before taking any other buffer. Readiness
        // can be stale (it is cleared only by a read that would block), and an idle
        // connection must not hold buffers while it waits.
        match read_ready(stream, pending.for_reading()) {
            Ok(0) => return Next::Close,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                pending.release();
                return Next::KeepAlive;
            }
            Err(_) => return Next::Close,
        }
    }
    let deadline = tokio::time::Instant::now() + proto.header_timeout;
    let mut out = take_buf();
    let mut held = None;
    let planned = loop {
        match plan(shared, info, pending.data(), &mut out, held) {
            Planned::Partial => {
                if pending.len() >= proto.max_header_bytes {
                    let next = reply(
                        shared,
                        info,
                        stream,
                        &mut out,
                        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        "request header fields too large",
                        None,
                        true,
                    )
                    .await;
                    give_buf(out);
                    return if matches!(next, Next::Close) {
                        Next::Linger
                    } else {
                        next
                    };
                }
                match read_more(stream, pending, deadline).await {
                    Ok(n) if n > 0 => {}
                    _ => {
                        give_buf(out);
                        return Next::Close;
                    }
                }
            }
            Planned::Fallback => {
                give_buf(out);
                return Next::Fallback;
            }
            Planned::Hold { deadline, table } => {
                held = Some(deadline);
                forward::wait_for_table(shared, &table, deadline).await;
            }
            other => break other,
        }
    };
    let next = match planned {
        Planned::Reply(r) => {
            let started = Instant::now();
            pending.consume(r.head_len);
            // Its body is not read: closing is the only way to skip it.
            let close = r.close || r.body_len > 0;
            let next = reply(
                shared,
                info,
                stream,
                &mut out,
                r.status,
                &r.text,
                r.retry_after,
                close,
            )
            .await;
            access_log(info, r.log, r.status.as_u16(), "-", started);
            if close { Next::Linger } else { next }
        }
        Planned::Forward(f) => {
            pending.consume(f.head_len);
            forward_request(shared, info, stream, pending, &mut out, f).await
        }
        Planned::Partial | Planned::Fallback | Planned::Hold { .. } => Next::Close,
    };
    give_buf(out);
    next
}

/// Writes a proxy-generated response: `text`, or the configured error page of
/// the status.
#[allow(clippy::too_many_arguments)]
async fn reply(
    shared: &Shared,
    info: ConnInfo,
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    status: StatusCode,
    text: &str,
    retry_after: Option<u64>,
    close: bool,
) -> Next {
    use std::io::Write;
    let close = close || shared.draining.load(Ordering::Relaxed);
    let page = shared.error_pages.get(status);
    let (content_type, length) = match page {
        Some(p) => (p.content_type, p.body.len()),
        None => ("text/plain; charset=utf-8", text.len() + 1),
    };
    out.clear();
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\ncontent-type: {content_type}\r\ncontent-length: {length}\r\ndate: {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        http_date(),
    );
    if let Some(s) = retry_after {
        let _ = write!(out, "retry-after: {s}\r\n");
    }
    if shared.security_headers {
        security_headers(out, info.tls, Present::default());
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let written = match page {
        // The page is written from its shared bytes, not copied into the buffer.
        Some(p) => write_all_2(stream, out, &p.body).await,
        None => {
            out.extend_from_slice(text.as_bytes());
            out.push(b'\n');
            stream.write_all(out).await
        }
    };
    match written {
        Ok(()) if !close => Next::KeepAlive,
        _ => Next::Close,
    }
}

/// Security headers the backend already set.
#[derive(Clone, Copy, Default)]
struct Present {
    hsts: bool,
    nosniff: bool,
    frame: bool,
    referrer: bool,
}

fn security_headers(out: &mut Vec<u8>, tls: bool, present: Present) {
    if tls && !present.hsts {
        out.extend_from_slice(
            b"strict-transport-security: max-age=31536000; includeSubDomains\r\n",
        );
    }
    if !present.nosniff {
        out.extend_from_slice(b"x-content-type-options: nosniff\r\n");
    }
    if !present.frame {
        out.extend_from_slice(b"x-frame-options: DENY\r\n");
    }
    if !present.referrer {
        out.extend_from_slice(b"referrer-policy: strict-origin-when-cross-origin\r\n");
    }
}

/// The current time as an HTTP date, formatted once per second per thread.
fn http_date() -> String {
    thread_local! {
        static CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = std::time::SystemTime::now();
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            *c = (secs, httpdate::fmt_http_date(now));
        }
        c.1.clone()
    })
}

fn access_log(
    info: ConnInfo,
    log: Option<(String, String)>,
    status: u16,
    revision: &str,
    started: Instant,
) {
    if let Some((method, path)) = log {
        tracing::info!(
            target: "ferry_proxy::access",
            client = %info.peer.ip(),
            %method,
            path,
            status,
            revision,
            duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "request"
        );
    }
}

/// How a response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the backend closes: the client connection closes after it too.
    Close,
}

/// A backend's response head, rewritten for the client into `out`.
pub(crate) struct ResponseHead {
    pub(crate) status: u16,
    pub(crate) head_len: usize,
    pub(crate) framing: Framing,
    /// The backend may take another request on this connection.
    reusable: bool,
    /// The client connection closes after this response.
    pub(crate) close: bool,
    /// A `text/event-stream` body: it ends early, after a whole event, when
    /// its backend drains.
    event_stream: bool,
}

pub(crate) enum ParsedResponse {
    Partial,
    Invalid,
    /// A 1xx interim response of `n` bytes, to pass on as it is.
    Interim(usize),
    Head(ResponseHead),
}

/// What `parse_response` needs to know about the request and the proxy.
pub(crate) struct ResponseContext<'a> {
    pub(crate) head_method: bool,
    /// The client asked to close.
    pub(crate) close: bool,
    /// Set once the proxy drains (read when the response arrives, which may be
    /// after a handover began).
    pub(crate) draining: &'a std::sync::atomic::AtomicBool,
    pub(crate) revision: &'a [u8],
    pub(crate) set_cookie: Option<&'a (String, u64)>,
    pub(crate) security: bool,
    pub(crate) tls: bool,
}

pub(crate) fn parse_response(
    input: &[u8],
    cx: &ResponseContext<'_>,
    out: &mut Vec<u8>,
) -> ParsedResponse {
    use std::io::Write;
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut many = Vec::new();
    let mut resp = httparse::Response::new(&mut slots);
    let mut parsed = resp.parse(input);
    if parsed == Err(httparse::Error::TooManyHeaders) {
        // Rare: a second parse with room for the most fields a backend may send.
        many.resize(MAX_RESPONSE_HEADERS, httparse::EMPTY_HEADER);
        resp = httparse::Response::new(&mut many);
        parsed = resp.parse(input);
    }
    let head_len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return ParsedResponse::Partial,
        Err(_) => return ParsedResponse::Invalid,
    };
    let (Some(version), Some(status)) = (resp.version, resp.code) else {
        return ParsedResponse::Invalid;
    };
    if status < 100 {
        // httparse takes any three digits; `000`..`099` is no status (hyper: 502 too),
        // and would be written back as a status line with fewer than three digits.
        return ParsedResponse::Invalid;
    }
    if (100..200).contains(&status) {
        // We never ask for an upgrade here: a 101 is a broken backend.
        return if status == 101 {
            ParsedResponse::Invalid
        } else {
            ParsedResponse::Interim(head_len)
        };
    }
    let headers: &[httparse::Header<'_>] = resp.headers;
    let mut length = None;
    let mut chunked = None;
    let mut reusable = version == 1;
    let mut named: Vec<&[u8]> = Vec::new();
    let mut present = Present::default();
    let mut event_stream = false;
    for h in headers {
        match classify(h.name) {
            Class::ContentLength => match (parse_length(h.value), length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return ParsedResponse::Invalid,
            },
            Class::TransferEncoding => {
                // The fields are one list: its last non-empty element decides,
                // as the client reading them will decide.
                chunked = match tokens(h.value).last() {
                    Some(t) => Some(t.eq_ignore_ascii_case(b"chunked")),
                    None => chunked.or(Some(false)),
                };
            }
            Class::Connection => {
                for token in tokens(h.value) {
                    if token.eq_ignore_ascii_case(b"close") {
                        reusable = false;
                    } else if !token.eq_ignore_ascii_case(b"keep-alive") {
                        named.push(token);
                    }
                }
            }
            Class::Other if h.name.eq_ignore_ascii_case("content-type") => {
                event_stream = is_event_stream(h.value);
            }
            _ => {}
        }
    }
    let framing = if cx.head_method || status == 204 || status == 304 {
        Framing::Empty
    } else {
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) => Framing::Close,
            (None, Some(n)) => Framing::Length(n),
            (None, None) => Framing::Close,
        }
    };
    if framing == Framing::Close || (chunked.is_some() && length.is_some()) {
        reusable = false;
    }
    let close = cx.close || framing == Framing::Close || cx.draining.load(Ordering::Relaxed);

    out.clear();
    let reason = resp.reason.unwrap_or("");
    let _ = write!(out, "HTTP/1.1 {status} {reason}\r\n");
    let mut length_written = false;
    for h in headers {
        let class = classify(h.name);
        match class {
            Class::Connection | Class::HopByHop | Class::Upgrade | Class::Revision => continue,
            // With a transfer-encoding the length is meaningless (RFC 9112 §6.3).
            Class::ContentLength if chunked.is_some() => continue,
            // Repeated equal lengths pass as one (RFC 9110 §8.6): a client that
            // rejects a repeated field would otherwise fail on our response.
            Class::ContentLength if length_written => continue,
            _ => {}
        }
        // The framing fields stay even when `connection` names them: the body is
        // relayed by them, and the client must delimit it the same way.
        let framing_field = matches!(class, Class::ContentLength | Class::TransferEncoding);
        if !framing_field
            && named
                .iter()
                .any(|n| n.eq_ignore_ascii_case(h.name.as_bytes()))
        {
            continue;
        }
        length_written |= class == Class::ContentLength;
        if class == Class::Security {
            // Only what the client gets counts: a named one is gone.
            let n = h.name;
            present.hsts |= n.eq_ignore_ascii_case("strict-transport-security");
            present.nosniff |= n.eq_ignore_ascii_case("x-content-type-options");
            present.frame |= n.eq_ignore_ascii_case("x-frame-options");
            present.referrer |= n.eq_ignore_ascii_case("referrer-policy");
        }
        header_line(out, h.name.as_bytes(), h.value);
    }
    header_line(out, b"x-ferry-revision", cx.revision);
    if let Some((name, key)) = cx.set_cookie {
        let _ = write!(
            out,
            "set-cookie: {name}={key}; Path=/; HttpOnly; SameSite=Lax\r\n"
        );
    }
    if cx.security {
        security_headers(out, cx.tls, present);
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    ParsedResponse::Head(ResponseHead {
        status,
        head_len,
        framing,
        reusable,
        close,
        event_stream,
    })
}

/// Why an exchange with a backend failed before a response head arrived.
enum Failure {
    /// Sending or reading failed. `consumed`: bytes of the client's body were
    /// used (the request cannot be sent again); `received`: the backend sent
    /// something.
    Exchange { consumed: bool, received: bool },
    /// The backend's response head is malformed or too large.
    Invalid,
    /// The client went away while its body was being read.
    Client,
}

/// Sends the head and body, then reads the response head (interim responses
/// are passed to the client on the way).
#[allow(clippy::too_many_arguments)]
async fn send(
    up: &mut TcpStream,
    head: &[u8],
    client: &mut TcpStream,
    pending: &mut Pending,
    body_len: u64,
    upbuf: &mut Vec<u8>,
    cx: &ResponseContext<'_>,
    out: &mut Vec<u8>,
) -> Result<ResponseHead, Failure> {
    let exchange_err = |consumed| Failure::Exchange {
        consumed,
        received: false,
    };
    // The head and whatever part of the body came with it, in one write.
    let first = usize::try_from(body_len).map_or(pending.len(), |n| n.min(pending.len()));
    write_all_2(up, head, &pending.data()[..first])
        .await
        .map_err(|_| exchange_err(first > 0))?;
    pending.consume(first);
    let mut left = body_len - first as u64;
    let consumed = body_len > 0;
    while left > 0 {
        let buf = pending.for_reading();
        match client.read_buf(buf).await {
            Ok(0) | Err(_) => return Err(Failure::Client),
            Ok(_) => {}
        }
        let n = usize::try_from(left).map_or(pending.len(), |l| l.min(pending.len()));
        up.write_all(&pending.data()[..n])
            .await
            .map_err(|_| exchange_err(consumed))?;
        pending.consume(n);
        left -= n as u64;
    }
    let mut received = false;
    loop {
        if !upbuf.is_empty() {
            match parse_response(upbuf, cx, out) {
                ParsedResponse::Head(h) => return Ok(h),
                ParsedResponse::Interim(n) => {
                    client
                        .write_all(&upbuf[..n])
                        .await
                        .map_err(|_| Failure::Client)?;
                    upbuf.drain(..n);
                    continue;
                }
                ParsedResponse::Invalid => return Err(Failure::Invalid),
                ParsedResponse::Partial if upbuf.len() >= MAX_RESPONSE_HEAD => {
                    return Err(Failure::Invalid);
                }
                ParsedResponse::Partial => {}
            }
        }
        if upbuf.capacity() - upbuf.len() < 1024 {
            upbuf.reserve(BUF_SIZE);
        }
        match up.read_buf(upbuf).await {
            Ok(n) if n > 0 => received = true,
            _ => return Err(Failure::Exchange { consumed, received }),
        }
    }
}

/// Writes `a` then `b` with vectored writes (one system call when they fit).
async fn write_all_2(stream: &mut TcpStream, mut a: &[u8], mut b: &[u8]) -> io::Result<()> {
    while !a.is_empty() || !b.is_empty() {
        let n = if a.is_empty() {
            stream.write(b).await?
        } else if b.is_empty() {
            stream.write(a).await?
        } else {
            stream
                .write_vectored(&[IoSlice::new(a), IoSlice::new(b)])
                .await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_a = n.min(a.len());
        a = &a[from_a..];
        b = &b[n - from_a..];
    }
    Ok(())
}

/// Forwards one request (with retries) and streams the response back.
async fn forward_request(
    shared: &Shared,
    info: ConnInfo,
    client: &mut TcpStream,
    pending: &mut Pending,
    out: &mut Vec<u8>,
    f: Forward,
) -> Next {
    let started = Instant::now();
    let service = &f.table.services[f.service];
    shared
        .retry_budget
        .earn(service.config.retry.budget_percent);
    let mut pool = f.pool;
    let mut backend = f.backend;
    let head = std::mem::take(out);
    let mut resp_head = take_buf();
    let mut upbuf = take_buf();
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut attempt = 1;
    let attempts = service.config.retry.attempts.max(1);
    let mut retry_guard = None;
    let mut fresh = false;
    let replayable = f.body_len == 0 && f.idempotent;
    let client_close = f.client_close;
    let next = loop {
        let guard = backend.start_request();
        let p = &service.pools[pool];
        let fail = |status: StatusCode| {
            p.stats.record(status.as_u16(), started.elapsed());
        };
        if backend.is_draining() {
            drop(guard);
            tried.push(backend.addr);
            match forward::next_backend(service, pool, info, &tried) {
                Some((np, nb)) => {
                    pool = np;
                    backend = nb;
                    continue;
                }
                None => break Err((StatusCode::SERVICE_UNAVAILABLE, false)),
            }
        }
        let idle = if fresh { None } else { backend.pool.take_raw() };
        fresh = false;
        let connected = match idle {
            Some(s) => Ok((s, true)),
            None => backend.pool.connect_raw().await.map(|s| (s, false)),
        };
        // Whether the failed request may go to another backend.
        let may_retry = match connected {
            Err(e) => {
                // Nothing reached the backend: any request may go elsewhere as it is.
                tracing::debug!(backend = %backend.addr, error = %e, "upstream unreachable");
                true
            }
            Ok((mut up, reused)) => {
                let cx = ResponseContext {
                    head_method: f.head_method,
                    close: client_close,
                    draining: &shared.draining,
                    revision: p.revision_header.as_bytes(),
                    set_cookie: f.set_cookie.as_ref(),
                    security: shared.security_headers,
                    tls: info.tls,
                };
                upbuf.clear();
                let sent = tokio::time::timeout(
                    shared.upstream_timeout,
                    send(
                        &mut up,
                        &head,
                        client,
                        pending,
                        f.body_len,
                        &mut upbuf,
                        &cx,
                        &mut resp_head,
                    ),
                )
                .await;
                match sent {
                    Ok(Ok(h)) => {
                        service.record_outcome(pool, &backend, h.status < 500, now_ms());
                        p.stats.record(h.status, started.elapsed());
                        let result = if h.event_stream {
                            relay_events(client, &mut up, &resp_head, &mut upbuf, &h, &backend)
                                .await
                        } else {
                            relay(client, &mut up, &resp_head, &mut upbuf, &h).await
                        };
                        let upstream_ok = result.is_ok_and(|r| r) && h.reusable;
                        if upstream_ok && !backend.is_draining() {
                            backend.pool.put_raw(up);
                        }
                        drop(guard);
                        let next = match result {
                            Err(()) => Next::Close,
                            Ok(_) if h.close => Next::Close,
                            Ok(_) => Next::KeepAlive,
                        };
                        let revision =
                            String::from_utf8_lossy(p.revision_header.as_bytes()).into_owned();
                        break Ok((next, h.status, revision));
                    }
                    Ok(Err(Failure::Client)) => {
                        drop(guard);
                        break Ok((Next::Close, 499, "-".to_owned()));
                    }
                    Ok(Err(Failure::Invalid)) => {
                        drop(guard);
                        service.record_outcome(pool, &backend, false, now_ms());
                        tracing::debug!(backend = %backend.addr, "malformed response head");
                        fail(StatusCode::BAD_GATEWAY);
                        break Err((StatusCode::BAD_GATEWAY, f.body_len > 0));
                    }
                    Err(_elapsed) => {
                        drop(guard);
                        service.record_outcome(pool, &backend, false, now_ms());
                        fail(StatusCode::GATEWAY_TIMEOUT);
                        break Err((StatusCode::GATEWAY_TIMEOUT, f.body_len > 0));
                    }
                    Ok(Err(Failure::Exchange { consumed, received })) => {
                        if reused && !received && replayable {
                            // A stale keep-alive connection the backend had closed: try a
                            // new one to the same backend (no failure to count).
                            drop(guard);
                            fresh = true;
                            continue;
                        }
                        tracing::debug!(backend = %backend.addr, "upstream request failed");
                        replayable && !consumed
                    }
                }
            }
        };
        drop(guard);
        service.record_outcome(pool, &backend, false, now_ms());
        tried.push(backend.addr);
        let again = if may_retry {
            retry(
                shared,
                service,
                pool,
                info,
                &tried,
                attempt,
                attempts,
                &mut retry_guard,
            )
        } else {
            None
        };
        match again {
            Some((np, nb)) => {
                attempt += 1;
                pool = np;
                backend = nb;
            }
            None => {
                fail(StatusCode::BAD_GATEWAY);
                // A body left unread (not sent, or sent in part) closes the connection.
                break Err((StatusCode::BAD_GATEWAY, f.body_len > 0));
            }
        }
    };
    give_buf(upbuf);
    give_buf(resp_head);
    *out = head;
    match next {
        Ok((next, status, revision)) => {
            access_log(info, f.log, status, &revision, started);
            next
        }
        Err((status, body_unread)) => {
            let text = match status {
                StatusCode::GATEWAY_TIMEOUT => "upstream response timed out".to_owned(),
                StatusCode::SERVICE_UNAVAILABLE => forward::no_backend_text(service),
                _ => "upstream request failed".to_owned(),
            };
            let next = reply(shared, info, client, out, status, &text, None, body_unread).await;
            access_log(info, f.log, status.as_u16(), "-", started);
            if body_unread { Next::Linger } else { next }
        }
    }
}

/// Another backend for a retry, when attempts and the retry budget allow one.
#[allow(clippy::too_many_arguments)]
fn retry<'s>(
    shared: &'s Shared,
    service: &crate::route_table::Service,
    pool: usize,
    info: ConnInfo,
    tried: &[SocketAddr],
    attempt: u32,
    attempts: u32,
    guard: &mut Option<Counted<'s>>,
) -> Option<(usize, Arc<Backend>)> {
    if attempt >= attempts
        || !shared
            .retry_budget
            .spend(shared.retrying.load(Ordering::Relaxed))
    {
        return None;
    }
    let next = forward::next_backend(service, pool, info, tried)?;
    if guard.is_none() {
        *guard = Some(Counted::new(&shared.retrying));
    }
    Some(next)
}

/// Writes the response head and streams the body. `Ok(true)`: the backend
/// connection ended cleanly on a message boundary; `Err`: the client
/// connection must close (the body could not be relayed whole).
async fn relay(
    client: &mut TcpStream,
    up: &mut TcpStream,
    head: &[u8],
    upbuf: &mut Vec<u8>,
    h: &ResponseHead,
) -> Result<bool, ()> {
    let mut chunked = Chunked::new();
    let mut left = match h.framing {
        Framing::Length(n) => n,
        _ => 0,
    };
    // Bytes after the head that belong to the body.
    let body_part =
        |avail: &[u8], left: &mut u64, chunked: &mut Chunked| -> Result<(usize, bool), ()> {
            match h.framing {
                Framing::Empty => Ok((0, true)),
                Framing::Length(_) => {
                    let n = usize::try_from(*left).map_or(avail.len(), |l| l.min(avail.len()));
                    *left -= n as u64;
                    Ok((n, *left == 0))
                }
                Framing::Chunked => {
                    let n = chunked.feed(avail).map_err(|_| ())?;
                    Ok((n, chunked.is_done()))
                }
                Framing::Close => Ok((avail.len(), false)),
            }
        };
    let avail = &upbuf[h.head_len..];
    let (n, mut done) = body_part(avail, &mut left, &mut chunked)?;
    let mut clean = n == avail.len();
    write_all_2(client, head, &avail[..n])
        .await
        .map_err(|_| ())?;
    while !done {
        upbuf.clear();
        match up.read_buf(upbuf).await {
            Ok(0) if h.framing == Framing::Close => return Ok(false),
            Ok(0) | Err(_) => return Err(()),
            Ok(_) => {}
        }
        let (n, d) = body_part(upbuf, &mut left, &mut chunked)?;
        done = d;
        clean = n == upbuf.len();
        client.write_all(&upbuf[..n]).await.map_err(|_| ())?;
    }
    Ok(clean)
}

/// [`relay`] for an event stream, which ends early when its backend's stream
/// budget expires: a chunked body after a whole event (or, once the grace has
/// passed, at a chunk boundary) with its last chunk, the client connection kept;
/// a close-delimited body by closing after a whole event; a length-delimited body
/// by closing at once, as it has no clean early end.
async fn relay_events(
    client: &mut TcpStream,
    up: &mut TcpStream,
    head: &[u8],
    upbuf: &mut Vec<u8>,
    h: &ResponseHead,
    backend: &Backend,
) -> Result<bool, ()> {
    const LAST_CHUNK: &[u8] = b"0\r\n\r\n";
    let mut body = EventBody {
        framing: h.framing,
        chunked: Chunked::new(),
        tail: EventTail::default(),
        left: match h.framing {
            Framing::Length(n) => n,
            _ => 0,
        },
    };
    let expired = backend.streams_end().expired();
    tokio::pin!(expired);
    let mut grace: Option<tokio::time::Instant> = None;
    let mut start = h.head_len;
    let mut head = Some(head);
    loop {
        let data = &upbuf[start..];
        let fed = body.feed(data, grace.is_some())?;
        let n = fed.len;
        match head.take() {
            Some(head) => write_all_2(client, head, &data[..n]).await,
            None => client.write_all(&data[..n]).await,
        }
        .map_err(|_| ())?;
        if fed.done {
            return Ok(n == data.len());
        }
        if fed.event_end {
            return body.end_early(client, LAST_CHUNK).await;
        }
        upbuf.clear();
        start = 0;
        let read = match grace {
            Some(g) => match tokio::time::timeout_at(g, up.read_buf(upbuf)).await {
                Ok(r) => r,
                // No clean point within the grace: a chunk boundary still ends
                // the message (the client drops the partial event), else cut.
                Err(_) if body.framing == Framing::Chunked && body.chunked.at_boundary() => {
                    client.write_all(LAST_CHUNK).await.map_err(|_| ())?;
                    return Ok(false);
                }
                Err(_) => return Err(()),
            },
            None => tokio::select! {
                biased;
                () = &mut expired => {
                    if matches!(body.framing, Framing::Length(_)) {
                        return Err(());
                    }
                    if body.at_event_end() {
                        return body.end_early(client, LAST_CHUNK).await;
                    }
                    grace = Some(tokio::time::Instant::now() + STREAM_GRACE);
                    continue;
                }
                r = up.read_buf(upbuf) => r,
            },
        };
        match read {
            Ok(0) if h.framing == Framing::Close => return Ok(false),
            Ok(0) | Err(_) => return Err(()),
            Ok(_) => {}
        }
    }
}

/// The framing and event state of an event stream's body on the fast path.
struct EventBody {
    framing: Framing,
    chunked: Chunked,
    tail: EventTail,
    left: u64,
}

/// What [`EventBody::feed`] found.
struct Fed {
    /// Bytes that belong to the body (up to an event's end, when stopping there).
    len: usize,
    /// The body ended on its own.
    done: bool,
    /// Stopped after a whole event.
    event_end: bool,
}

impl EventBody {
    /// Whether the body so far ends with a whole event at a point where it can end.
    fn at_event_end(&self) -> bool {
        match self.framing {
            Framing::Chunked => self.chunked.at_boundary() && self.tail.at_event_end(),
            Framing::Close => self.tail.at_event_end(),
            _ => false,
        }
    }

    /// Takes the body's bytes from `data`, stopping after the first whole event
    /// when `stop`.
    fn feed(&mut self, data: &[u8], stop: bool) -> Result<Fed, ()> {
        let fed = |len, done, event_end| Fed {
            len,
            done,
            event_end,
        };
        match self.framing {
            Framing::Empty => Ok(fed(0, true, false)),
            Framing::Length(_) => {
                let n = usize::try_from(self.left).map_or(data.len(), |l| l.min(data.len()));
                self.left -= n as u64;
                Ok(fed(n, self.left == 0, false))
            }
            Framing::Close if stop => Ok(match self.tail.first_event_end(data) {
                Some(n) => fed(n, false, true),
                None => fed(data.len(), false, false),
            }),
            Framing::Close => {
                self.tail.push(data);
                Ok(fed(data.len(), false, false))
            }
            Framing::Chunked => {
                // Chunk data in one piece, framing bytes one at a time, so the
                // event state is known at every chunk boundary.
                let mut pos = 0;
                while pos < data.len() {
                    if stop && self.at_event_end() {
                        return Ok(fed(pos, false, true));
                    }
                    let rest = data.len() - pos;
                    let left = self.chunked.data_left();
                    let piece =
                        left.map_or(1, |l| usize::try_from(l).map_or(rest, |l| l.min(rest)));
                    let n = self.chunked.feed(&data[pos..pos + piece]).map_err(|_| ())?;
                    if left.is_some() {
                        self.tail.push(&data[pos..pos + n]);
                    }
                    pos += n;
                    if self.chunked.is_done() {
                        return Ok(fed(pos, true, false));
                    }
                }
                Ok(fed(pos, false, stop && self.at_event_end()))
            }
        }
    }

    /// Ends the body after a whole event: the last chunk of a chunked body
    /// (the client connection stays usable), or the close of a close-delimited one.
    async fn end_early(&self, client: &mut TcpStream, last_chunk: &[u8]) -> Result<bool, ()> {
        if self.framing == Framing::Chunked {
            client.write_all(last_chunk).await.map_err(|_| ())?;
        }
        // The backend's connection is not read to the end: it is not reused.
        Ok(false)
    }
}

/// An I/O object that first yields bytes already read from it (the fast path's
/// unread bytes, when a connection moves to hyper).
pub(crate) struct Rewind<T> {
    prefix: Bytes,
    inner: T,
}

impl<T> Rewind<T> {
    pub(crate) fn new(inner: T, prefix: Bytes) -> Self {
        Self { prefix, inner }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_classes_ignore_case() {
        assert_eq!(classify("Host"), Class::Host);
        assert_eq!(classify("CONTENT-LENGTH"), Class::ContentLength);
        assert_eq!(classify("Transfer-Encoding"), Class::TransferEncoding);
        assert_eq!(classify("Keep-Alive"), Class::HopByHop);
        assert_eq!(classify("TE"), Class::HopByHop);
        assert_eq!(classify("X-Forwarded-For"), Class::ForwardedFor);
        assert_eq!(classify("x-hosts"), Class::Other);
        assert_eq!(classify("Referrer-Policy"), Class::Security);
    }

    #[test]
    fn content_length_is_digits_only() {
        assert_eq!(parse_length(b"42"), Some(42));
        assert_eq!(parse_length(b" 7 "), Some(7));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b"1,1",
            b"0x10",
            b"99999999999999999999",
        ] {
            assert_eq!(
                parse_length(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    static NOT_DRAINING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    fn cx() -> ResponseContext<'static> {
        ResponseContext {
            head_method: false,
            close: false,
            draining: &NOT_DRAINING,
            revision: b"v2",
            set_cookie: None,
            security: false,
            tls: false,
        }
    }

    fn head(input: &[u8], cx: &ResponseContext<'_>) -> (ResponseHead, String) {
        let mut out = Vec::new();
        match parse_response(input, cx, &mut out) {
            ParsedResponse::Head(h) => (h, String::from_utf8(out).unwrap()),
            _ => panic!("not a complete head"),
        }
    }

    #[test]
    fn response_heads_are_rewritten_and_framed() {
        let (h, out) = head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: x-int\r\nX-Int: 1\r\nKeep-Alive: timeout=5\r\nX-Ferry-Revision: spoofed\r\nX-App: a\r\n\r\nhello",
            &cx(),
        );
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.reusable && !h.close);
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-App: a\r\nx-ferry-revision: v2\r\n\r\n"
        );
        let (h, out) = head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n",
            &cx(),
        );
        assert_eq!(h.framing, Framing::Chunked);
        assert!(
            !h.reusable,
            "both lengths: the connection is not trusted again"
        );
        assert!(!out.contains("Content-Length"));
        let (h, out) = head(b"HTTP/1.0 200 OK\r\n\r\n", &cx());
        assert_eq!(h.framing, Framing::Close);
        assert!(!h.reusable && h.close);
        assert!(out.ends_with("connection: close\r\n\r\n"));
        let mut c = cx();
        c.head_method = true;
        let (h, _) = head(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", &c);
        assert_eq!(h.framing, Framing::Empty);
        let (h, _) = head(
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
            &cx(),
        );
        assert_eq!(h.framing, Framing::Empty);
        let mut out = Vec::new();
        assert!(matches!(
            parse_response(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200",
                &cx(),
                &mut out
            ),
            ParsedResponse::Interim(25)
        ));
        assert!(matches!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                &cx(),
                &mut out
            ),
            ParsedResponse::Invalid
        ));
    }

    #[test]
    fn security_headers_fill_in_only_what_is_missing() {
        let mut c = cx();
        c.security = true;
        c.tls = true;
        let (_, out) = head(
            b"HTTP/1.1 204 No Content\r\nX-Frame-Options: SAMEORIGIN\r\n\r\n",
            &c,
        );
        assert!(out.contains("X-Frame-Options: SAMEORIGIN"));
        assert!(!out.contains("x-frame-options: DENY"));
        assert!(out.contains("strict-transport-security"));
        assert!(out.contains("x-content-type-options: nosniff"));
    }

    // Regressions found by the h1_response and h1_request fuzz targets.

    #[test]
    fn status_below_100_is_a_bad_response() {
        let mut out = Vec::new();
        for status in ["000", "042", "099"] {
            let input = format!("HTTP/1.1 {status} OK\r\nContent-Length: 0\r\n\r\n");
            assert!(
                matches!(
                    parse_response(input.as_bytes(), &cx(), &mut out),
                    ParsedResponse::Invalid
                ),
                "{status}"
            );
        }
    }

    #[test]
    fn framing_fields_named_in_connection_stay() {
        let (h, out) = head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: content-length, x-a\r\nX-A: 1\r\n\r\nabc",
            &cx(),
        );
        assert_eq!(h.framing, Framing::Length(3));
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nx-ferry-revision: v2\r\n\r\n"
        );
        let (h, out) = head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: transfer-encoding\r\n\r\n",
            &cx(),
        );
        assert_eq!(h.framing, Framing::Chunked);
        assert!(out.contains("Transfer-Encoding: chunked\r\n"), "{out}");
    }

    #[test]
    fn transfer_codings_are_one_list() {
        let (h, _) = head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: ,\r\n\r\n",
            &cx(),
        );
        assert_eq!(h.framing, Framing::Chunked);
        let (h, _) = head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n",
            &cx(),
        );
        assert_eq!(h.framing, Framing::Chunked);
        let (h, _) = head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
            &cx(),
        );
        assert_eq!(h.framing, Framing::Close);
    }

    #[test]
    fn repeated_equal_content_lengths_pass_as_one() {
        let (h, out) = head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nContent-Length: 5\r\n\r\nhello",
            &cx(),
        );
        assert_eq!(h.framing, Framing::Length(5));
        assert_eq!(out.matches("Content-Length").count(), 1, "{out}");
    }

    #[test]
    fn security_header_named_in_connection_is_replaced() {
        let mut c = cx();
        c.security = true;
        let (_, out) = head(
            b"HTTP/1.1 204 No Content\r\nConnection: x-frame-options\r\nX-Frame-Options: ALLOWALL\r\n\r\n",
            &c,
        );
        assert!(!out.contains("ALLOWALL"), "{out}");
        assert!(out.contains("x-frame-options: DENY\r\n"), "{out}");
    }

    #[test]
    fn a_non_utf8_connection_token_hides_no_other() {
        let t: Vec<&[u8]> = tokens(b"ke\x97\x8f-alive, x-secret ,,close").collect();
        assert_eq!(t, [&b"ke\x97\x8f-alive"[..], b"x-secret", b"close"]);
        let mut out = Vec::new();
        let input = b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: \x97, x-secret\r\nX-Secret: 1\r\n\r\n";
        assert!(matches!(
            plan(crate::fuzzing::shared(), client(), input, &mut out, None),
            Planned::Forward(_)
        ));
        let out = String::from_utf8_lossy(&out);
        assert!(!out.to_ascii_lowercase().contains("x-secret"), "{out}");
    }

    fn client() -> ConnInfo {
        ConnInfo {
            peer: SocketAddr::from(([192, 0, 2, 7], 40000)),
            tls: false,
        }
    }

    #[test]
    fn fields_the_proxy_sets_named_in_connection_go_to_hyper() {
        for named in [
            "host",
            "Content-Length",
            "x-request-id",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
        ] {
            let input = format!(
                "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nConnection: {named}\r\nX-Request-Id: 1\r\n\r\nabc"
            );
            let mut out = Vec::new();
            assert!(
                matches!(
                    plan(
                        crate::fuzzing::shared(),
                        client(),
                        input.as_bytes(),
                        &mut out,
                        None
                    ),
                    Planned::Fallback
                ),
                "{named}"
            );
        }
    }
}
