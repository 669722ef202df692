//! Randomized, bounded end-to-end traffic through the proxy, to catch framing and
//! connection-pooling bugs that single-case tests miss: many keep-alive client
//! connections, pipelined pairs, every response framing, bodies in random pieces,
//! a backend that drops keep-alive connections, weight changes and a drain.
//!
//! Heavy on purpose (over 100 MiB through loopback per mixed-traffic test): the bugs it
//! looks for (a body byte left on a pooled connection, a response handed to the
//! wrong request, a request sent twice) show up only under many interleavings.
//!
//! Deterministic per seed: what every connection sends, every body byte, every
//! chunk size and which responses the backend closes after all derive from the
//! seed and the request id (`FERRY_STRESS_SEED` overrides it; a failure prints
//! it). Scheduling is not deterministic, which is the point. Each scenario runs
//! with the proxy on the test's runtime (`threads = 0`) and on two serving
//! threads of its own (`threads = 2`, SO_REUSEPORT, as in production).
//!
//! Every read and write is bounded by [`IO_LIMIT`] and every scenario by
//! [`SCENARIO_LIMIT`], so a hang fails instead of blocking.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_proxy::{ProxyConfig, Weight};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// The longest any single read or write may take.
const IO_LIMIT: Duration = Duration::from_secs(15);

mod common;

use common::wire::{Framing, Resp, Wire, invalid};
/// The longest a whole scenario may take.
const SCENARIO_LIMIT: Duration = Duration::from_secs(120);
/// Concurrent client connections per scenario (each reconnects after a close).
const CLIENTS: u64 = 32;
/// Requests per client (48, not more, keeps the file near a minute on two busy cores).
const REQUESTS: u64 = 48;

fn seed() -> u64 {
    std::env::var("FERRY_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f3a7)
}

// ---------------------------------------------------------------------------
// Randomness and body patterns.
// ---------------------------------------------------------------------------

/// SplitMix64: small, fast, good enough to pick sizes and fill bodies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `n` bytes derived from `seed`: two requests' bodies differ in their first bytes.
fn pattern(n: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed);
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        v.extend_from_slice(&r.next().to_le_bytes());
    }
    v.truncate(n);
    v
}

/// The seed of a response body: the request id and the backend that answers.
fn body_seed(id: u64, backend: &str) -> u64 {
    mix(id) ^ fnv(backend.as_bytes())
}

// ---------------------------------------------------------------------------
// What a request asks for: the path encodes it, the backend answers from it.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// GET, a small `content-length` response.
    Small,
    /// GET, 256 KiB to 2 MiB with `content-length`.
    Large,
    /// GET, a chunked response in random chunk sizes.
    Chunked,
    /// The same with trailer fields.
    ChunkedTrailers,
    /// HEAD of a `content-length` response.
    Head,
    /// POST with a `content-length` body (0 to 1 MiB) in random pieces.
    PostLength,
    /// POST with a chunked body (the proxy hands the connection to hyper).
    PostChunked,
    /// GET answered 204.
    NoContent,
    /// GET answered without length: the body ends when the backend closes.
    CloseDelimited,
    /// GET with `connection: close` from the client.
    ClientClose,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::Small => "small",
            Kind::Large => "large",
            Kind::Chunked => "chunked",
            Kind::ChunkedTrailers => "trailers",
            Kind::Head => "head",
            Kind::PostLength => "post",
            Kind::PostChunked => "postchunked",
            Kind::NoContent => "nocontent",
            Kind::CloseDelimited => "closedelim",
            Kind::ClientClose => "clientclose",
        }
    }

    fn method(self) -> &'static str {
        match self {
            Kind::Head => "HEAD",
            Kind::PostLength | Kind::PostChunked => "POST",
            _ => "GET",
        }
    }

    fn has_body(self) -> bool {
        matches!(self, Kind::PostLength | Kind::PostChunked)
    }

    /// May be the first of a pipelined pair: no request body (a client writing a
    /// second body while not reading the first response could block itself) and
    /// the connection stays open after it.
    fn pipelines(self) -> bool {
        matches!(
            self,
            Kind::Small
                | Kind::Large
                | Kind::Chunked
                | Kind::ChunkedTrailers
                | Kind::Head
                | Kind::NoContent
        )
    }
}

/// One planned request.
#[derive(Clone, Copy, Debug)]
struct Plan {
    id: u64,
    kind: Kind,
    /// Body size (request body for POSTs, response body otherwise).
    n: usize,
}

/// Which requests a scenario sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mix {
    /// Every kind.
    All,
    /// GETs and HEADs only.
    Gets,
}

/// Picks the next request.
fn pick(rng: &mut Rng, id: u64, kinds: Mix) -> Plan {
    let with_bodies = kinds != Mix::Gets;
    let roll = rng.range(0, 99);
    let kind = match roll {
        0..=24 => Kind::Small,
        25..=28 => Kind::Large,
        29..=38 => Kind::Chunked,
        39..=44 => Kind::ChunkedTrailers,
        45..=54 => Kind::Head,
        55..=71 if with_bodies => Kind::PostLength,
        72..=79 if with_bodies => Kind::PostChunked,
        55..=79 => Kind::Small,
        80..=87 => Kind::NoContent,
        88..=95 => Kind::CloseDelimited,
        _ => Kind::ClientClose,
    };
    let n = match kind {
        Kind::Large => rng.range(256 << 10, 2 << 20),
        // Mostly small bodies, a quarter up to 1 MiB.
        Kind::PostLength | Kind::PostChunked if rng.chance(25) => rng.range(0, 1 << 20),
        Kind::PostLength | Kind::PostChunked => rng.range(0, 16 << 10),
        Kind::Chunked | Kind::ChunkedTrailers | Kind::CloseDelimited => rng.range(0, 96 << 10),
        _ => rng.range(0, 4096),
    };
    Plan {
        id,
        kind,
        n: usize::try_from(n).expect("size"),
    }
}

fn path_of(p: &Plan) -> String {
    format!("/{}/{}/{}", p.kind.tag(), p.id, p.n)
}

fn parse_path(path: &str) -> Option<(&str, u64, usize)> {
    let mut parts = path.trim_start_matches('/').split('/');
    let tag = parts.next()?;
    let id = parts.next()?.parse().ok()?;
    let n = parts.next()?.parse().ok()?;
    Some((tag, id, n))
}

// ---------------------------------------------------------------------------
// The backend: a raw HTTP/1.1 server answering from the request path.
// ---------------------------------------------------------------------------

struct Backend {
    addr: SocketAddr,
    /// Requests answered, by id.
    seen: Arc<Mutex<HashMap<u64, u32>>>,
    served: Arc<AtomicU64>,
    /// Keep-alive connections closed by churn.
    churned: Arc<AtomicU64>,
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Backend {
    /// Stops accepting and cuts every connection.
    fn kill(&self) {
        for t in self.tasks.lock().expect("lock").drain(..) {
            t.abort();
        }
    }

    fn seen(&self) -> HashMap<u64, u32> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts a backend named `name`. With `churn`, it closes about one keep-alive
/// connection in ten right after a response, without saying so.
async fn backend(name: &'static str, churn: bool) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let served = Arc::new(AtomicU64::new(0));
    let tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
    let churned = Arc::new(AtomicU64::new(0));
    let (s, n, t, k) = (seen.clone(), served.clone(), tasks.clone(), churned.clone());
    let accept = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (s, n, k) = (s.clone(), n.clone(), k.clone());
            let conn = tokio::spawn(async move {
                if let Err(e) =
                    serve(Wire::with_limit(stream, IO_LIMIT), name, churn, &s, &n, &k).await
                    && e.kind() == io::ErrorKind::InvalidData
                {
                    panic!("backend {name}: {e}");
                }
            });
            t.lock().expect("lock").push(conn.abort_handle());
        }
    });
    tasks.lock().expect("lock").push(accept.abort_handle());
    Backend {
        addr,
        seen,
        served,
        churned,
        tasks,
    }
}

async fn serve(
    mut wire: Wire,
    name: &'static str,
    churn: bool,
    seen: &Mutex<HashMap<u64, u32>>,
    served: &AtomicU64,
    churned: &AtomicU64,
) -> io::Result<()> {
    let mut nth = 0u64;
    while let Some(head) = wire.head().await? {
        nth += 1;
        let mut parts = head.start.split(' ');
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let body = if head.has_token("transfer-encoding", "chunked") {
            wire.chunked().await?
        } else if let Some(len) = head.get("content-length") {
            let len = len.parse().map_err(|_| invalid("content-length"))?;
            wire.exact(len).await?
        } else {
            Vec::new()
        };
        let (tag, id, n) =
            parse_path(&target).ok_or_else(|| invalid(format!("target {target:?}")))?;
        if tag == "stale" && nth > 1 {
            // The idle keep-alive close that crosses a request in flight: the
            // request was not read, let alone acted on.
            let _ = wire.stream.shutdown().await;
            return Ok(());
        }
        *seen.lock().expect("lock").entry(id).or_default() += 1;
        served.fetch_add(1, Ordering::SeqCst);
        let seed = body_seed(id, name);
        let mut rng = Rng(seed ^ 0xc0ff_ee00);
        let common = format!("x-id: {id}\r\nx-backend: {name}\r\n");
        let churn_close = churn && mix(id ^ 0xc4).is_multiple_of(10);
        let mut close_after = churn_close;
        match (method.as_str(), tag) {
            ("POST", "post" | "postchunked") => {
                let text = if body.len() == n && body == pattern(n, mix(id)) {
                    format!("ok {id} {n}")
                } else {
                    format!("bad body: {} bytes, wanted {n}", body.len())
                };
                let status = if text.starts_with("ok") {
                    "200 OK"
                } else {
                    "500 Bad Body"
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\n{common}content-length: {}\r\n\r\n{text}",
                    text.len()
                );
                wire.write(reply.as_bytes()).await?;
            }
            ("HEAD", "head") => {
                let reply = format!("HTTP/1.1 200 OK\r\n{common}content-length: {n}\r\n\r\n");
                wire.write(reply.as_bytes()).await?;
            }
            ("GET", "nocontent") => {
                let reply = format!("HTTP/1.1 204 No Content\r\n{common}\r\n");
                wire.write(reply.as_bytes()).await?;
            }
            ("GET", "small" | "large" | "clientclose" | "stale") => {
                let reply = format!("HTTP/1.1 200 OK\r\n{common}content-length: {n}\r\n\r\n");
                let data = pattern(n, seed);
                // Sometimes head and body together, sometimes the body in pieces.
                if rng.chance(50) {
                    let mut all = reply.into_bytes();
                    all.extend_from_slice(&data);
                    wire.write(&all).await?;
                } else {
                    wire.write(reply.as_bytes()).await?;
                    let mut rest = &data[..];
                    while !rest.is_empty() {
                        let k = usize::try_from(rng.range(1, 256 << 10))
                            .unwrap_or(1)
                            .min(rest.len());
                        wire.write(&rest[..k]).await?;
                        rest = &rest[k..];
                    }
                }
            }
            ("GET", "chunked" | "trailers") => {
                let mut out =
                    format!("HTTP/1.1 200 OK\r\n{common}transfer-encoding: chunked\r\n\r\n")
                        .into_bytes();
                let data = pattern(n, seed);
                let mut rest = &data[..];
                while !rest.is_empty() {
                    let k = usize::try_from(rng.range(1, 24 << 10))
                        .unwrap_or(1)
                        .min(rest.len());
                    let ext = if rng.chance(10) { ";x=y" } else { "" };
                    out.extend_from_slice(format!("{k:x}{ext}\r\n").as_bytes());
                    out.extend_from_slice(&rest[..k]);
                    out.extend_from_slice(b"\r\n");
                    rest = &rest[k..];
                    if rng.chance(30) {
                        wire.write(&out).await?;
                        out.clear();
                    }
                }
                out.extend_from_slice(b"0\r\n");
                if tag == "trailers" {
                    out.extend_from_slice(
                        format!("x-sum: {}\r\nx-more: 1\r\n", fnv(&data)).as_bytes(),
                    );
                }
                out.extend_from_slice(b"\r\n");
                wire.write(&out).await?;
            }
            ("GET", "closedelim") => {
                let mut out = format!("HTTP/1.1 200 OK\r\n{common}\r\n").into_bytes();
                out.extend_from_slice(&pattern(n, seed));
                wire.write(&out).await?;
                close_after = true;
            }
            _ => return Err(invalid(format!("unexpected {method} {target}"))),
        }
        if close_after {
            if churn_close {
                churned.fetch_add(1, Ordering::SeqCst);
            }
            let _ = wire.stream.shutdown().await;
            return Ok(());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The client: runs a connection's plan and checks every response.
// ---------------------------------------------------------------------------

/// What one client connection saw.
#[derive(Default, Debug)]
struct Tally {
    /// Ids answered correctly, with the backend that answered.
    ok: Vec<(u64, String)>,
    /// Ids of requests with a body answered 502 (allowed only with churn).
    post_502: Vec<u64>,
    /// POSTs sent.
    posts: u64,
}

/// The request bytes: head, and the body split in random pieces.
fn request_bytes(p: &Plan, rng: &mut Rng) -> Vec<Vec<u8>> {
    let path = path_of(p);
    let method = p.kind.method();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: app.test\r\nx-id: {}\r\n",
        p.id
    );
    if p.kind == Kind::ClientClose {
        head.push_str("Connection: close\r\n");
    }
    let body = if p.kind.has_body() {
        pattern(p.n, mix(p.id))
    } else {
        Vec::new()
    };
    let mut pieces = Vec::new();
    match p.kind {
        Kind::PostLength => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", p.n));
            let mut first = head.into_bytes();
            let mut rest = &body[..];
            // Sometimes part of the body comes with the head.
            if rng.chance(50) {
                let k = usize::try_from(rng.range(0, 8192))
                    .unwrap_or(0)
                    .min(rest.len());
                first.extend_from_slice(&rest[..k]);
                rest = &rest[k..];
            }
            pieces.push(first);
            while !rest.is_empty() {
                let k = usize::try_from(rng.range(1, 128 << 10))
                    .unwrap_or(1)
                    .min(rest.len());
                pieces.push(rest[..k].to_vec());
                rest = &rest[k..];
            }
        }
        Kind::PostChunked => {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            pieces.push(head.into_bytes());
            let mut rest = &body[..];
            while !rest.is_empty() {
                let k = usize::try_from(rng.range(1, 64 << 10))
                    .unwrap_or(1)
                    .min(rest.len());
                let mut c = format!("{k:x}\r\n").into_bytes();
                c.extend_from_slice(&rest[..k]);
                c.extend_from_slice(b"\r\n");
                pieces.push(c);
                rest = &rest[k..];
            }
            pieces.push(b"0\r\n\r\n".to_vec());
        }
        _ => {
            head.push_str("\r\n");
            pieces.push(head.into_bytes());
        }
    }
    pieces
}

/// Which revision each backend name belongs to.
type Revisions = &'static [(&'static str, &'static str)];

/// Checks one response against its plan; returns the backend that answered.
fn check(p: &Plan, r: &Resp, revisions: Revisions) -> Result<String, String> {
    let backend = r.head.get("x-backend").unwrap_or_default().to_owned();
    let want_rev = revisions
        .iter()
        .find(|(b, _)| *b == backend)
        .map(|(_, rev)| *rev)
        .ok_or_else(|| format!("unknown backend {backend:?}"))?;
    let rev = r.head.get("x-ferry-revision");
    if rev != Some(want_rev) {
        return Err(format!(
            "revision {rev:?} from backend {backend:?}, wanted {want_rev:?}"
        ));
    }
    if r.head.get("x-id") != Some(p.id.to_string().as_str()) {
        return Err(format!(
            "the response of request {:?} (mixed up)",
            r.head.get("x-id")
        ));
    }
    let seed = body_seed(p.id, &backend);
    let want_status = if p.kind == Kind::NoContent { 204 } else { 200 };
    if r.status != want_status {
        return Err(format!("status {} (wanted {want_status})", r.status));
    }
    let framing_ok = match p.kind {
        Kind::Small | Kind::Large | Kind::ClientClose | Kind::PostLength | Kind::PostChunked => {
            r.framing == Framing::Length
        }
        Kind::Chunked | Kind::ChunkedTrailers => r.framing == Framing::Chunked,
        // hyper (after a chunked POST took the connection there) may re-frame it.
        Kind::CloseDelimited => matches!(r.framing, Framing::Close | Framing::Chunked),
        Kind::Head | Kind::NoContent => r.framing == Framing::NoBody,
    };
    if !framing_ok {
        return Err(format!("framing {:?}", r.framing));
    }
    match p.kind {
        Kind::Head => {
            // hyper may leave out the length of a HEAD response; when sent it must be the GET's.
            if let Some(len) = r.head.get("content-length")
                && len != p.n.to_string()
            {
                return Err(format!("HEAD content-length {len}, wanted {}", p.n));
            }
        }
        Kind::NoContent => {
            if r.head.get("content-length").is_some_and(|l| l != "0")
                || r.head.get("transfer-encoding").is_some()
            {
                return Err("a 204 with body framing".to_owned());
            }
        }
        Kind::PostLength | Kind::PostChunked => {
            let want = format!("ok {} {}", p.id, p.n);
            if r.body != want.as_bytes() {
                return Err(format!("body {:?}", String::from_utf8_lossy(&r.body)));
            }
        }
        _ => {
            if r.body.len() != p.n {
                return Err(format!("body of {} bytes, wanted {}", r.body.len(), p.n));
            }
            if r.body != pattern(p.n, seed) {
                let at = r
                    .body
                    .iter()
                    .zip(pattern(p.n, seed))
                    .position(|(a, b)| *a != b);
                return Err(format!("body differs from byte {at:?}"));
            }
        }
    }
    Ok(backend)
}

/// What the clients of a scenario send, and to where.
#[derive(Clone, Copy)]
struct Traffic {
    addr: SocketAddr,
    seed: u64,
    kinds: Mix,
    /// The backend closes connections (a POST may get 502).
    churn: bool,
    revisions: Revisions,
}

/// Runs client connection `conn`'s `REQUESTS` requests, reconnecting after each close.
async fn run_client(t: Traffic, conn: u64, progress: Arc<AtomicU64>) -> Result<Tally, String> {
    let Traffic {
        addr,
        seed,
        kinds,
        churn,
        revisions,
    } = t;
    let mut rng = Rng(mix(seed ^ conn));
    let plans: Vec<Plan> = (0..REQUESTS)
        .map(|i| pick(&mut rng, conn * 100_000 + i, kinds))
        .collect();
    let mut tally = Tally::default();
    let mut wire: Option<Wire> = None;
    let mut i = 0;
    while i < plans.len() {
        let w = match &mut wire {
            Some(w) => w,
            None => {
                let s = tokio::time::timeout(IO_LIMIT, TcpStream::connect(addr))
                    .await
                    .map_err(|_| "connect timed out".to_owned())?
                    .map_err(|e| format!("connect: {e}"))?;
                wire.insert(Wire::with_limit(s, IO_LIMIT))
            }
        };
        // Sometimes two requests in one write, before reading either response.
        let pair = plans[i].kind.pipelines() && i + 1 < plans.len() && rng.chance(20);
        let batch = &plans[i..i + if pair { 2 } else { 1 }];
        if pair {
            let mut bytes = Vec::new();
            for p in batch {
                for piece in request_bytes(p, &mut rng) {
                    bytes.extend_from_slice(&piece);
                }
            }
            // A pipelined second request never has a body (see `Kind::pipelines`).
            w.write(&bytes)
                .await
                .map_err(|e| format!("request {}: write: {e}", batch[0].id))?;
        } else {
            let p = &batch[0];
            if p.kind.has_body() {
                tally.posts += 1;
            }
            for piece in request_bytes(p, &mut rng) {
                if let Err(e) = w.write(&piece).await {
                    // The proxy may give up on a body it will not forward (a 502
                    // with churn) and close: the response says what happened.
                    if !(churn && p.kind.has_body()) {
                        return Err(format!("request {} ({p:?}): write: {e}", p.id));
                    }
                    break;
                }
                if rng.chance(30) {
                    tokio::task::yield_now().await;
                }
            }
        }
        if pair {
            tally.posts += u64::from(batch[1].kind.has_body());
        }
        let mut closed = false;
        for p in batch {
            let r = w
                .response(p.kind.method())
                .await
                .map_err(|e| format!("request {} ({p:?}): {e}", p.id))?;
            progress.fetch_add(1, Ordering::Relaxed);
            if churn && p.kind.has_body() && r.status == 502 {
                tally.post_502.push(p.id);
            } else {
                let backend = check(p, &r, revisions)
                    .map_err(|e| format!("request {} ({p:?}): {e}; head {:?}", p.id, r.head))?;
                tally.ok.push((p.id, backend));
            }
            let expected_close = matches!(p.kind, Kind::ClientClose)
                || (p.kind == Kind::CloseDelimited && r.framing == Framing::Close);
            if p.kind == Kind::ClientClose && !r.head.has_token("connection", "close") {
                return Err(format!("request {}: connection: close not echoed", p.id));
            }
            if r.closes() {
                if !expected_close && r.status != 502 {
                    return Err(format!(
                        "request {} ({p:?}): unexpected close; head {:?}",
                        p.id, r.head
                    ));
                }
                if !w.closes().await {
                    return Err(format!("request {}: announced a close, then did not", p.id));
                }
                closed = true;
                break;
            }
        }
        if closed {
            wire = None;
            // Only the last of a batch may close (see `Kind::pipelines`).
        }
        i += batch.len();
    }
    Ok(tally)
}

// ---------------------------------------------------------------------------
// Scenarios.
// ---------------------------------------------------------------------------

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

fn w(p: u32) -> Weight {
    Weight::new(p).expect("weight")
}

/// Runs `CLIENTS` connections; returns every tally, failing on the first error.
async fn load(
    addr: SocketAddr,
    mix: Mix,
    churn: bool,
    revisions: Revisions,
    progress: Arc<AtomicU64>,
) -> Vec<Tally> {
    let seed = seed();
    let traffic = Traffic {
        addr,
        seed,
        kinds: mix,
        churn,
        revisions,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for conn in 0..CLIENTS {
        tasks.spawn(run_client(traffic, conn, progress.clone()));
    }
    let mut tallies = Vec::new();
    while let Some(t) = tasks.join_next().await {
        match t.expect("client task") {
            Ok(t) => tallies.push(t),
            Err(e) => panic!("FERRY_STRESS_SEED={seed}: {e}"),
        }
    }
    tallies
}

const DEFAULT: Revisions = &[("app", "default")];

/// A scenario's counts, shown with `--no-capture`.
#[expect(
    clippy::print_stderr,
    reason = "the record of a stress run, for whoever runs it"
)]
fn report(line: &str) {
    eprintln!("stress: {line}");
}

/// The proxy's debug log on stderr when `FERRY_STRESS_LOG` is set (for a failure's reproduction).
fn log() {
    if std::env::var_os("FERRY_STRESS_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("ferry_proxy=debug")
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// Scenarios 1 and 2: mixed traffic to one backend, optionally one that churns.
async fn mixed_traffic(threads: usize, mix: Mix, churn: bool) {
    log();
    let b = backend("app", churn).await;
    let mut cfg = ProxyConfig::single(any_port(), b.addr);
    cfg.threads = threads;
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let tallies = tokio::time::timeout(
        SCENARIO_LIMIT,
        load(addr, mix, churn, DEFAULT, Arc::default()),
    )
    .await
    .unwrap_or_else(|_| panic!("FERRY_STRESS_SEED={}: the scenario hung", seed()));
    let seen = b.seen();
    let ok: Vec<u64> = tallies
        .iter()
        .flat_map(|t| t.ok.iter().map(|o| o.0))
        .collect();
    let failed: Vec<u64> = tallies.iter().flat_map(|t| t.post_502.clone()).collect();
    let posts: u64 = tallies.iter().map(|t| t.posts).sum();
    assert_eq!(
        (ok.len() + failed.len()) as u64,
        CLIENTS * REQUESTS,
        "every request got a response"
    );
    for id in &ok {
        assert_eq!(
            seen.get(id),
            Some(&1),
            "request {id} reached the backend once"
        );
    }
    for id in &failed {
        // The backend closed the connection without reading it: never processed.
        assert_eq!(
            seen.get(id),
            None,
            "request {id} answered 502 was not processed"
        );
    }
    assert_eq!(
        b.served.load(Ordering::SeqCst),
        ok.len() as u64,
        "no request reached the backend twice or unanswered"
    );
    let churned = b.churned.load(Ordering::SeqCst);
    report(&format!(
        "threads {threads}, churn {churn}: {} answered, {} POSTs, {} of them 502, {churned} connections churned",
        ok.len(),
        posts,
        failed.len()
    ));
    if churn {
        // About one response in ten ends its connection.
        assert!(
            churned * 20 > CLIENTS * REQUESTS,
            "the backend closed few connections: {churned}"
        );
        // A POST the proxy writes onto a pooled connection in the same instant
        // the backend closes it cannot be retried: the proxy cannot tell whether
        // the backend read and acted on it before closing (RFC 9110 §9.2.2), so
        // it answers 502. The pool drops connections already seen closed, so
        // this is a narrow race, not the rule: the backend's write of the
        // response and its close are two system calls, and a POST waiting on the
        // proxy's thread may take the connection between them. Measured (32 x 60
        // requests): 0 to 4 of about 480 POSTs, the most with serving threads,
        // which run beside the backend. The bound is 1% of all requests: 1% of
        // the POSTs alone would be exceeded by chance at this sample size.
        assert!(
            failed.len() as u64 * 100 <= CLIENTS * REQUESTS,
            "{} of {posts} POSTs failed: more than 1% of all requests",
            failed.len()
        );
    } else {
        assert!(failed.is_empty());
    }
    proxy.handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_traffic_is_framed_and_pooled_correctly() {
    mixed_traffic(0, Mix::All, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_traffic_is_framed_and_pooled_correctly_on_serving_threads() {
    mixed_traffic(2, Mix::All, false).await;
}

// With POSTs, GETs fail: a POST whose body does not come whole with its head
// (and every chunked one) hands its client connection to hyper, and there a GET
// on a pooled connection the backend just closed gets 502 when the service has
// one backend (`hyper_path_retries_a_get_the_backend_closed_on`, the smallest
// reproduction). GETs alone stay on the fast path, which retries them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_closing_keep_alive_connections_fails_no_get() {
    mixed_traffic(0, Mix::All, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_closing_keep_alive_connections_fails_no_get_on_serving_threads() {
    mixed_traffic(2, Mix::All, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_closing_keep_alive_connections_fails_no_get_of_gets_alone() {
    mixed_traffic(0, Mix::Gets, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_closing_keep_alive_connections_fails_no_get_of_gets_alone_on_serving_threads() {
    mixed_traffic(2, Mix::Gets, true).await;
}

const TWO_REVISIONS: Revisions = &[("v1a", "v1"), ("v1b", "v1"), ("v2", "v2")];

/// Scenario 3: 50/50 between two revisions, then 20/80 and one v1 backend drained
/// and killed while the load runs.
async fn weights_and_drain(threads: usize) {
    log();
    let v1a = backend("v1a", false).await;
    let v1b = backend("v1b", false).await;
    let v2 = backend("v2", false).await;
    let mut cfg = ProxyConfig::weighted(
        any_port(),
        vec![
            ("v1".into(), w(50), vec![v1a.addr, v1b.addr]),
            ("v2".into(), w(50), vec![v2.addr]),
        ],
    );
    cfg.threads = threads;
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let progress = Arc::new(AtomicU64::new(0));
    let run = tokio::spawn(load(
        addr,
        Mix::Gets,
        false,
        TWO_REVISIONS,
        progress.clone(),
    ));
    let total = CLIENTS * REQUESTS;
    let deadline = tokio::time::Instant::now() + SCENARIO_LIMIT;
    while progress.load(Ordering::Relaxed) < total / 3 {
        assert!(
            tokio::time::Instant::now() < deadline && !run.is_finished(),
            "the load stopped early"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy
        .handle
        .set_weights("app", &[("v1", w(20)), ("v2", w(80))])
        .expect("weights");
    let outcome = proxy
        .handle
        .drain_backend(v1a.addr, Duration::from_secs(20))
        .await
        .expect("drain");
    assert_eq!(outcome.in_flight_left, 0, "the drain finished its requests");
    let drained_at = v1a.served.load(Ordering::SeqCst);
    v1a.kill();
    let done_at_drain = progress.load(Ordering::Relaxed);
    let tallies = tokio::time::timeout(SCENARIO_LIMIT, run)
        .await
        .unwrap_or_else(|_| panic!("FERRY_STRESS_SEED={}: the scenario hung", seed()))
        .expect("load");
    assert!(
        done_at_drain < total,
        "the drain happened while the load ran"
    );
    let ok: Vec<(u64, String)> = tallies.into_iter().flat_map(|t| t.ok).collect();
    assert_eq!(ok.len() as u64, total, "no failed request");
    assert_eq!(
        v1a.served.load(Ordering::SeqCst),
        drained_at,
        "a drained backend gets no new request"
    );
    let mut by_backend: HashMap<&str, u64> = HashMap::new();
    for (_, b) in &ok {
        *by_backend.entry(b.as_str()).or_default() += 1;
    }
    assert!(
        by_backend.len() == 3,
        "every backend answered some: {by_backend:?}"
    );
    let seen: Vec<HashMap<u64, u32>> = [&v1a, &v1b, &v2].iter().map(|b| b.seen()).collect();
    for (id, backend) in &ok {
        let i = TWO_REVISIONS
            .iter()
            .position(|(b, _)| b == backend)
            .expect("known backend");
        assert_eq!(seen[i].get(id), Some(&1), "{id} answered once by {backend}");
    }
    let served: u64 = [&v1a, &v1b, &v2]
        .iter()
        .map(|b| b.served.load(Ordering::SeqCst))
        .sum();
    assert_eq!(served, total, "no request reached a backend twice");
    proxy.handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_change_and_drain_under_load_fail_no_get() {
    weights_and_drain(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_change_and_drain_under_load_fail_no_get_on_serving_threads() {
    weights_and_drain(2).await;
}

// ---------------------------------------------------------------------------
// The smallest reproduction of what the churn scenario found on the hyper path.
// ---------------------------------------------------------------------------

/// Sends `first` then a GET of `/stale/..` on one client connection; the backend
/// answers the first request on each of its connections and closes (without
/// answering) when a second one arrives, as a backend whose keep-alive timeout
/// fires just as the proxy reuses the connection. RFC 9112 §9.3.1 lets a client
/// retry an idempotent request then, and a proxy with one backend must retry
/// on a new connection to it.
async fn stale_get_after(first: &[u8], first_method: &str) -> Resp {
    let b = backend("app", false).await;
    let proxy = ferry_proxy::start(ProxyConfig::single(any_port(), b.addr))
        .await
        .expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let mut c = Wire::with_limit(TcpStream::connect(addr).await.expect("connect"), IO_LIMIT);
    c.write(first).await.expect("write");
    let r = c.response(first_method).await.expect("first response");
    assert_eq!(r.status, 200, "{r:?}");
    c.write(b"GET /stale/2/10 HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .expect("write");
    c.response("GET").await.expect("second response")
}

#[tokio::test]
async fn fast_path_retries_a_get_the_backend_closed_on() {
    let r = stale_get_after(b"GET /small/1/10 HTTP/1.1\r\nHost: app.test\r\n\r\n", "GET").await;
    assert_eq!((r.status, r.body.len()), (200, 10), "{r:?}");
}

#[tokio::test]
async fn hyper_path_retries_a_get_the_backend_closed_on() {
    // A chunked request body hands the client connection to hyper.
    let first =
        b"POST /post/1/3 HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n";
    let mut req = first.to_vec();
    req.extend_from_slice(&pattern(3, mix(1)));
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    let r = stale_get_after(&req, "POST").await;
    assert_eq!((r.status, r.body.len()), (200, 10), "{r:?}");
}
