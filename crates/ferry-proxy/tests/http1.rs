//! HTTP/1.1 conformance end to end, with the bytes on both wires under the test's
//! control: raw TCP clients, and a scripted raw TCP backend that records exactly
//! what reached it.
//!
//! Each test states what any correct HTTP/1.1 reverse proxy must do (RFC 9110,
//! RFC 9112), not what one implementation happens to do: where the RFCs allow
//! several behaviours (re-framing a body, forwarding or answering `100 Continue`,
//! rejecting or re-framing an ambiguous request), every allowed one passes.
//! Every read is bounded (`common::wire`), so a hang fails the test instead of
//! blocking CI.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_proxy::{PoolConfig, ProxyConfig, RouteConfig, ServiceConfig, Weight};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

mod common;

use common::wire::{Framing, Req, Wire};

// ---------------------------------------------------------------------------
// The scripted raw backend.
// ---------------------------------------------------------------------------

/// What the backend does after writing a reply.
enum After {
    /// Waits for the next request on the connection.
    KeepAlive,
    /// Closes the connection.
    Close,
    /// Writes the greeting, then echoes every byte back (an upgraded tunnel).
    Tunnel(&'static [u8]),
}

/// The bytes the backend answers one request with.
struct Reply {
    bytes: Vec<u8>,
    after: After,
    delay: Duration,
}

impl Reply {
    fn raw(bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            bytes: bytes.into(),
            after: After::KeepAlive,
            delay: Duration::ZERO,
        }
    }

    /// A keep-alive `200` with `Content-Length`.
    fn ok(body: impl AsRef<[u8]>) -> Self {
        let body = body.as_ref();
        let mut bytes =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        bytes.extend_from_slice(body);
        Self::raw(bytes)
    }

    fn then_close(mut self) -> Self {
        self.after = After::Close;
        self
    }

    fn delayed(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

struct RawBackend {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Req>>>,
    accept: tokio::task::AbortHandle,
}

impl RawBackend {
    /// Every request that reached the backend, in arrival order.
    fn received(&self) -> Vec<Req> {
        self.received.lock().expect("lock").clone()
    }

    fn targets(&self) -> Vec<String> {
        self.received().into_iter().map(|r| r.target).collect()
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A backend answering each request with what `script` returns. It reads
/// requests by RFC 9112 (chunked or `Content-Length` bodies), records each
/// before answering, and sends `100 Continue` to an `Expect: 100-continue`
/// before reading the body, as a conforming server would.
async fn raw_backend(script: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> RawBackend {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let received: Arc<Mutex<Vec<Req>>> = Arc::default();
    let script = Arc::new(script);
    let rec = Arc::clone(&received);
    let accept = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (rec, script) = (Arc::clone(&rec), Arc::clone(&script));
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let _ = serve_raw(Wire::new(stream), &rec, &*script).await;
            });
        }
    });
    RawBackend {
        addr,
        received,
        accept: accept.abort_handle(),
    }
}

async fn serve_raw(
    mut wire: Wire,
    received: &Mutex<Vec<Req>>,
    script: &(dyn Fn(&Req) -> Reply + Send + Sync),
) -> io::Result<()> {
    while let Some(head) = wire.head().await? {
        if head.has_token("expect", "100-continue") {
            wire.write(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        let req = wire.request_body(head).await?;
        let reply = script(&req);
        received.lock().expect("lock").push(req);
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        wire.write(&reply.bytes).await?;
        match reply.after {
            After::KeepAlive => {}
            After::Close => {
                let _ = wire.stream.shutdown().await;
                return Ok(());
            }
            After::Tunnel(greeting) => {
                wire.write(greeting).await?;
                loop {
                    let pending = std::mem::take(&mut wire.buf);
                    wire.write(&pending).await?;
                    if wire.fill().await? == 0 {
                        return Ok(());
                    }
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

async fn start(cfg: ProxyConfig) -> (ferry_proxy::RunningProxy, SocketAddr) {
    let proxy = ferry_proxy::start(cfg).await.expect("start proxy");
    let addr = proxy.handle.listen_addrs()[0];
    (proxy, addr)
}

/// A proxy sending everything to `backend` (revision `default`).
async fn proxy_to(backend: SocketAddr) -> (ferry_proxy::RunningProxy, SocketAddr) {
    start(ProxyConfig::single(any_port(), backend)).await
}

/// A proxy sending host `app.example` to `app` and every other host to `other`.
fn host_routed(app: SocketAddr, other: SocketAddr) -> ProxyConfig {
    let mut cfg = ProxyConfig::single(any_port(), other);
    cfg.services.insert(
        "by-host".into(),
        ServiceConfig::new(vec![PoolConfig {
            revision: "h1".into(),
            weight: Weight::FULL,
            backends: vec![app],
        }]),
    );
    cfg.routes.push(RouteConfig {
        hosts: vec!["app.example".into()],
        path_prefix: "/".into(),
        service: "by-host".into(),
    });
    cfg
}

/// FNV-1a, 64 bits: a checksum that notices reordered, lost or repeated bytes.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `n` pseudo-random bytes (xorshift), different for each seed.
fn pattern(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

fn digest(data: &[u8]) -> String {
    format!("{} {:016x}", data.len(), fnv(data))
}

/// Whether a request carries both framings (what a smuggling attack relies on).
fn has_both_framings(r: &Req) -> bool {
    r.head.has("content-length") && r.head.has("transfer-encoding")
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: app.test\r\n\r\n").into_bytes()
}

/// A backend answering `200` with `you asked for <target>`.
async fn echo_target_backend() -> RawBackend {
    raw_backend(|r| Reply::ok(format!("you asked for {}", r.target))).await
}

/// Sends `bytes` on a new connection and expects `400` then the close (the
/// framing or head cannot be trusted, so the connection cannot go on).
async fn rejected_with_400(addr: SocketAddr, what: &str, bytes: &[u8]) {
    let mut c = Wire::connect(addr).await;
    c.send(bytes).await;
    let r = c.response("GET").await;
    let status = r.as_ref().map(|r| r.status).ok();
    assert_eq!(status, Some(400), "{what}: {r:?}");
    assert!(c.closes().await, "{what}: the connection stays open");
}

/// A GET on a new connection answered `200`: after it, nothing earlier is still
/// on its way to the backend.
async fn barrier(addr: SocketAddr) {
    let mut c = Wire::connect(addr).await;
    c.send(&get("/barrier")).await;
    assert_eq!(c.expect_response("GET").await.status, 200);
}

/// Sends `req` to a proxy routing `app.example` and everything else to two
/// backends, expecting `400` (RFC 9112 §3.2: a server MUST answer 400 to an
/// HTTP/1.1 request without Host, with more than one Host line, or with an
/// invalid Host value) and that neither backend sees it.
async fn host_rejected(req: &[u8]) {
    let app = echo_target_backend().await;
    let other = echo_target_backend().await;
    let (_p, addr) = start(host_routed(app.addr, other.addr)).await;
    let mut c = Wire::connect(addr).await;
    c.send(req).await;
    let r = c.response("GET").await;
    assert_eq!(r.as_ref().map(|r| r.status).ok(), Some(400), "{r:?}");
    barrier(addr).await;
    assert!(app.targets().is_empty(), "{:?}", app.received());
    assert_eq!(other.targets(), ["/barrier"], "{:?}", other.received());
}

// ---------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    // The first answer is the slowest: a proxy working on pipelined requests
    // concurrently must still answer in request order (RFC 9112 §9.3.2).
    let b = raw_backend(|r| {
        let reply = Reply::ok(format!("you asked for {}", r.target));
        if r.target == "/first" {
            reply.delayed(Duration::from_millis(150))
        } else {
            reply
        }
    })
    .await;
    let (_p, addr) = proxy_to(b.addr).await;
    let mut c = Wire::connect(addr).await;
    let paths = ["/first", "/second-one", "/3"];
    let all: Vec<u8> = paths.iter().flat_map(|p| get(p)).collect();
    c.send(&all).await;
    for p in paths {
        let r = c.expect_response("GET").await;
        assert_eq!(r.status, 200, "{p}");
        assert_eq!(r.text(), format!("you asked for {p}"));
    }
    let mut seen = b.targets();
    seen.sort();
    assert_eq!(seen, ["/3", "/first", "/second-one"]);
}

#[tokio::test]
async fn a_4_mib_content_length_body_arrives_intact() {
    let b = raw_backend(|r| Reply::ok(digest(&r.body))).await;
    let (_p, addr) = proxy_to(b.addr).await;
    let body = pattern(4 << 20, 1);
    let mut c = Wire::connect(addr).await;
    c.send(
        format!(
            "POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    for piece in body.chunks(512 * 1024) {
        c.send(piece).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = c.expect_response("POST").await;
    assert_eq!((r.status, r.text()), (200, digest(&body)));
    let got = b.received();
    assert_eq!(got.len(), 1);
    assert!(!has_both_framings(&got[0]), "{:?}", got[0].head);
}

#[tokio::test]
async fn a_chunked_request_body_with_extension_and_trailer_arrives_decoded() {
    let b = raw_backend(|r| Reply::ok(digest(&r.body))).await;
    let (_p, addr) = proxy_to(b.addr).await;
    let mut c = Wire::connect(addr).await;
    c.send(b"POST /upload HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await;
    c.send(b"5;name=value\r\nhello\r\n").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    c.send(b"8\r\n, chunky\r\n1a\r\n world of request bodies!\n\r\n")
        .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    c.send(b"0\r\nX-Trailer: t\r\n\r\n").await;
    let expected = b"hello, chunky world of request bodies!\n";
    let r = c.expect_response("POST").await;
    assert_eq!((r.status, r.text()), (200, digest(expected)));
    let got = b.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, expected);
    assert!(!has_both_framings(&got[0]), "{:?}", got[0].head);
}

#[tokio::test]
async fn a_chunked_response_with_extensions_and_trailers_is_decoded_and_the_connection_reused() {
    let b = raw_backend(|r| {
        if r.target == "/chunked" {
            Reply::raw(
                &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n\
                   4;name=value\r\nWiki\r\n5\r\npedia\r\nE;a;b=\"c d\"\r\n in\r\n\r\nchunks.\r\n\
                   0\r\nX-Checksum: 1234\r\nX-Other: yes\r\n\r\n"[..],
            )
        } else {
            Reply::ok(format!("you asked for {}", r.target))
        }
    })
    .await;
    let (_p, addr) = proxy_to(b.addr).await;
    let mut c = Wire::connect(addr).await;
    c.send(&get("/chunked")).await;
    let r = c.expect_response("GET").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "Wikipedia in\r\n\r\nchunks.");
    // The proxy must have found the end of the body (after the trailers) on both
    // connections: the next request on the same client connection is answered.
    c.send(&get("/next")).await;
    let r = c.expect_response("GET").await;
    assert_eq!((r.status, r.text().as_str()), (200, "you asked for /next"));
    assert_eq!(b.targets(), ["/chunked", "/next"]);
}

#[tokio::test]
async fn a_close_delimited_response_reaches_the_client_whole() {
    let body = pattern(100_000, 2);
    let sent = body.clone();
    let b = raw_backend(move |_| {
        let mut bytes =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
        bytes.extend_from_slice(&sent);
        Reply::raw(bytes).then_close()
    })
    .await;
    let (_p, addr) = proxy_to(b.addr).await;
    let mut c = Wire::connect(addr).await;
    c.send(&get("/")).await;
    let r = c.expect_response("GET").await;
    assert_eq!(r.status, 200);
    assert_eq!(digest(&r.body), digest(&body));
    if r.framing != Framing::Close {
        // Re-framed for the client (chunked): its connection lives on.
        c.send(&get("/again")).await;
        let r = c.expect_response("GET").await;
        assert_eq!((r.status, digest(&r.body)), (200, digest(&body)));
    }
}

#[tokio::test]
async fn head_response_with_a_length_has_no_body_and_the_connection_goes_on() {
    let b = raw_backend(|r| {
        if r.method == "HEAD" {
            Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"[..])
        } else {
            Reply::ok(pattern(1000, 3))
        }
    })
    .await;
    let (_p, addr) = proxy_to(b.addr).await;
    let mut c = Wire::connect(addr).await;
    c.send(b"HEAD /doc HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await;
    let r = c.expect_response("HEAD").await;
    assert_eq!(r.status, 200);
    // RFC 9110 §8.6: a Content-Length on a HEAD response, if any, is the GET body's length.
    for len in r.head.all("content-length") {
        assert_eq!(len, "1000", "{:?}", r.head);
    }
    c.send(&get("/doc")).await;
    let r = c.expect_response("GET").await;
    assert_eq!(
        (r.status, digest(&r.body)),
        (200, digest(&pattern(1000, 3)))
    );
    let methods: Vec<String> = b.received().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["HEAD", "GET"]);
}

#[tokio::test]
async fn responses_204_and_304_have_no_body_and_the_connection_goes_on() {
    let b = raw_backend(|r| match r.target.as_str() {
        "/204" => Reply::raw(&b"HTTP/1.1 204 No Content\r\nX-Kind: none\r\n\r\n"[..]),
        // A 304 may carry the length of the 200 it stands for (RFC 9110 §8.6).
        "/304" => Reply::raw(
            &b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 50\r\n\r\n"[..],
        ),
        _ => Reply::ok(format!("you asked for {}", r.target)),
    })
    .await;
    let (_p, addr) = proxy_to(b.addr).await;
    let mut c = Wire::connect(addr).await;
    c.send(&get("/204")).await;
    let r = c.expect_response("GET").await;
    assert_eq!(r.status, 204);
    assert!(
        !r.head.has("transfer-encoding"),
        "a 204 carries no transfer-encoding (RFC 9112 §6.1): {:?}",
        r.head
    );
    c.send(&get("/after-204")).await;
    let r = c.expect_response("GET").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "you asked for /after-204")
    );

    c.send(b"GET /304 HTTP/1.1\r\nHost: app.test\r\nIf-None-Match: \"v1\"\r\n\r\n")
        .await;
    let r = c.expect_response("GET").await;
    assert_eq!(r.status, 304);
    assert_eq!(r.head.get("etag"), Some("\"v1\""));
    c.send(&get("/after-304")).await;
    let r = c.expect_response("GET").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "you asked for /after-304")
    );
}

#[tokio::test]
async fn expect_100_continue_post_gets_its_final_response() {
    let b = raw_backend(|r| Reply::ok(&r.body)).await;
    let (_p, addr) = proxy_to(b.addr).await;
    let mut c = Wire::connect(addr).await;
    c.send(
        b"POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n",
    )
    .await;
    // RFC 9110 §10.1.1: the client may wait a while for `100 Continue`, then
    // sends the body either way. A final response before the body would be a
    // refusal, which a proxy has no reason for here.
    if let Ok(interim) = tokio::time::timeout(Duration::from_secs(1), c.head()).await {
        let interim = interim.expect("read").expect("a head, not the end");
        assert!(
            interim.start.starts_with("HTTP/1.1 100 "),
            "only 100 Continue may come before the body: {interim:?}"
        );
    }
    c.send(b"hello world").await;
    let r = c.expect_response("POST").await;
    assert_eq!((r.status, r.text().as_str()), (200, "hello world"));
    assert_eq!(b.received()[0].body, b"hello world");
}

#[tokio::test]
async fn conflicting_content_lengths_get_400_and_reach_no_backend() {
    let b = echo_target_backend().await;
    let (_p, addr) = proxy_to(b.addr).await;
    // RFC 9112 §6.3: unrecoverable framing; 400, then close.
    rejected_with_400(
        addr,
        "two lengths",
        b"POST /bad HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    )
    .await;
    barrier(addr).await;
    assert_eq!(b.targets(), ["/barrier"]);
}

#[tokio::test]
async fn content_length_with_chunked_never_reaches_a_backend_as_both() {
    let b = raw_backend(|r| Reply::ok(digest(&r.body))).await;
    let (_p, addr) = proxy_to(b.addr).await;
    // The length (4) and the chunked body (hello) disagree, and a request
    // follows. RFC 9112 §6.1: reject the message, or read it by
    // Transfer-Encoding alone; either way close the connection after the
    // response, so nothing after it is taken for a request.
    for (i, head) in [
        "POST /both HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /both HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
    ]
    .iter()
    .enumerate()
    {
        let mut c = Wire::connect(addr).await;
        c.send(
            format!("{head}5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n")
                .as_bytes(),
        )
        .await;
        let r = c.expect_response("POST").await;
        assert!(
            r.status == 400 || (r.status == 200 && r.text() == digest(b"hello")),
            "order {i}: {} {:?}",
            r.status,
            r.text()
        );
        assert!(c.closes().await, "order {i}: the connection goes on");
    }
    barrier(addr).await;
    for r in b.received() {
        assert!(!has_both_framings(&r), "{:?}", r.head);
        assert_ne!(r.target, "/smuggled");
        if r.target == "/both" {
            assert_eq!(r.body, b"hello", "{:?}", r.head);
        }
    }
    assert_eq!(b.targets().last().map(String::as_str), Some("/barrier"));
}

#[tokio::test]
async fn http_1_0_client_gets_the_whole_response_then_the_close() {
    let b = raw_backend(|r| {
        if r.target == "/chunked" {
            // HTTP/1.0 knows no chunked: the proxy must re-frame this for the client.
            Reply::raw(
                &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nchunks\r\n5\r\n, 1.0\r\n0\r\n\r\n"[..],
            )
        } else {
            Reply::ok(format!("you asked for {}", r.target))
        }
    })
    .await;
    let (_p, addr) = proxy_to(b.addr).await;
    for (path, body) in [
        ("/plain", "you asked for /plain"),
        ("/chunked", "chunks, 1.0"),
    ] {
        let mut c = Wire::connect(addr).await;
        c.send(format!("GET {path} HTTP/1.0\r\nHost: app.test\r\n\r\n").as_bytes())
            .await;
        let r = c.expect_response("GET").await;
        assert_eq!((r.status, r.text().as_str()), (200, body), "{path}");
        assert!(
            !r.head.has("transfer-encoding"),
            "no transfer-encoding to an HTTP/1.0 client (RFC 9112 §6.1): {:?}",
            r.head
        );
        if r.framing != Framing::Close {
            assert!(c.closes().await, "{path}: the connection stays open");
        }
    }
}

#[tokio::test]
async fn upgrade_after_a_plain_request_tunnels_bytes_both_ways() {
    let b = raw_backend(|r| {
        if r.head.has("upgrade") {
            Reply {
                bytes: b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                    .to_vec(),
                after: After::Tunnel(b"hello from the backend"),
                delay: Duration::ZERO,
            }
        } else {
            Reply::ok(format!("you asked for {}", r.target))
        }
    })
    .await;
    let (_p, addr) = proxy_to(b.addr).await;
    let mut c = Wire::connect(addr).await;
    c.send(&get("/before")).await;
    let r = c.expect_response("GET").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "you asked for /before")
    );

    c.send(
        b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    let r = c.expect_response("GET").await;
    assert_eq!(r.status, 101);
    assert!(r.head.has_token("upgrade", "websocket"), "{:?}", r.head);
    assert!(r.head.has_token("connection", "upgrade"), "{:?}", r.head);
    assert_eq!(
        c.exact(22).await.expect("greeting"),
        b"hello from the backend"
    );
    for msg in [&b"ping from the client"[..], b"\x00\x01binary\xff"] {
        c.send(msg).await;
        assert_eq!(c.exact(msg.len()).await.expect("echo"), msg);
    }
    let ws = b
        .received()
        .into_iter()
        .find(|r| r.target == "/ws")
        .expect("upgrade request");
    assert!(ws.head.has_token("upgrade", "websocket"), "{:?}", ws.head);
    assert!(ws.head.has_token("connection", "upgrade"), "{:?}", ws.head);
    assert_eq!(
        ws.head.get("sec-websocket-key"),
        Some("dGhlIHNhbXBsZSBub25jZQ==")
    );
}

#[tokio::test]
async fn hop_by_hop_fields_are_dropped_both_ways() {
    let b = raw_backend(|_| {
        Reply::raw(
            &b"HTTP/1.1 200 OK\r\nConnection: x-internal\r\nX-Internal: secret\r\n\
               Keep-Alive: timeout=5\r\nX-Public: yes\r\nContent-Length: 2\r\n\r\nok"[..],
        )
    })
    .await;
    let (_p, addr) = proxy_to(b.addr).await;
    let mut c = Wire::connect(addr).await;
    c.send(
        b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: x-drop\r\nX-Drop: 1\r\nX-Keep: 1\r\n\r\n",
    )
    .await;
    let r = c.expect_response("GET").await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert!(!r.head.has("x-internal"), "{:?}", r.head);
    assert!(!r.head.has("keep-alive"), "{:?}", r.head);
    assert!(
        !r.head.has_token("connection", "x-internal"),
        "{:?}",
        r.head
    );
    assert_eq!(r.head.get("x-public"), Some("yes"));
    let got = &b.received()[0];
    assert!(!got.head.has("x-drop"), "{:?}", got.head);
    assert!(
        !got.head.has_token("connection", "x-drop"),
        "{:?}",
        got.head
    );
    assert_eq!(got.head.get("x-keep"), Some("1"));
}

#[tokio::test]
async fn a_backend_closing_after_each_keep_alive_response_fails_no_request() {
    // Each answer looks reusable (no `Connection: close`), but the backend
    // closes right after it: a proxy must not fail a request for reusing it.
    let b = raw_backend(|r| Reply::ok(format!("you asked for {}", r.target)).then_close()).await;
    let (_p, addr) = proxy_to(b.addr).await;
    let mut c = Wire::connect(addr).await;
    for i in 0..20 {
        let path = format!("/n{i}");
        c.send(&get(&path)).await;
        let r = c.expect_response("GET").await;
        assert_eq!(
            (r.status, r.text()),
            (200, format!("you asked for {path}")),
            "request {i}"
        );
    }
    assert_eq!(b.received().len(), 20);
}

#[tokio::test]
async fn a_backend_dying_mid_body_ends_the_client_response_without_a_hang() {
    let b = raw_backend(|r| {
        if r.target == "/die" {
            Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789"[..])
                .then_close()
        } else {
            Reply::ok(format!("you asked for {}", r.target))
        }
    })
    .await;
    let (_p, addr) = proxy_to(b.addr).await;
    let mut c = Wire::connect(addr).await;
    c.send(&get("/die")).await;
    match c.response("GET").await {
        // An error may still be answered whole if nothing was sent yet.
        Ok(r) => assert!(r.status >= 500, "a truncated body passed as whole: {r:?}"),
        Err(e) => assert_ne!(e.kind(), io::ErrorKind::TimedOut, "the client hangs: {e}"),
    }
    let mut c = Wire::connect(addr).await;
    c.send(&get("/after")).await;
    let r = c.expect_response("GET").await;
    assert_eq!((r.status, r.text().as_str()), (200, "you asked for /after"));
}

#[tokio::test]
async fn absolute_form_target_is_routed_by_its_host_and_forwarded_in_origin_form() {
    let app = echo_target_backend().await;
    let other = echo_target_backend().await;
    let (_p, addr) = start(host_routed(app.addr, other.addr)).await;
    let mut c = Wire::connect(addr).await;
    c.send(b"GET http://app.example/path?q=1 HTTP/1.1\r\nHost: app.example\r\n\r\n")
        .await;
    let r = c.expect_response("GET").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "you asked for /path?q=1")
    );
    assert_eq!(app.targets(), ["/path?q=1"]);
    assert!(other.targets().is_empty());
}

#[tokio::test]
async fn absolute_form_target_wins_over_a_different_host_field() {
    // RFC 9112 §3.2.2: with an absolute-form target the Host field is ignored.
    let app = echo_target_backend().await;
    let other = echo_target_backend().await;
    let (_p, addr) = start(host_routed(app.addr, other.addr)).await;
    let mut c = Wire::connect(addr).await;
    c.send(b"GET http://app.example/path HTTP/1.1\r\nHost: other.example\r\n\r\n")
        .await;
    let r = c.expect_response("GET").await;
    assert_eq!((r.status, r.text().as_str()), (200, "you asked for /path"));
    assert!(other.targets().is_empty(), "routed by the Host field");
    let got = &app.received()[0];
    assert_eq!(got.target, "/path");
    assert_ne!(
        got.head.get("host"),
        Some("other.example"),
        "the backend is told a host the request was not routed by"
    );
}

#[tokio::test]
async fn a_hundred_response_fields_and_an_8_mib_body_pass_unchanged() {
    let body = pattern(8 << 20, 4);
    let sent = body.clone();
    let b = raw_backend(move |_| {
        // 97 + 2 + Content-Length: exactly 100 field lines.
        let mut head = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..97 {
            head.push_str(&format!(
                "X-Field-{i:03}: value {i} with, commas; and=signs\r\n"
            ));
        }
        head.push_str("Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n");
        head.push_str(&format!("Content-Length: {}\r\n\r\n", sent.len()));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&sent);
        Reply::raw(bytes)
    })
    .await;
    let (_p, addr) = proxy_to(b.addr).await;
    let mut c = Wire::connect(addr).await;
    c.send(&get("/big")).await;
    let r = c.expect_response("GET").await;
    assert_eq!(r.status, 200);
    for i in 0..97 {
        let name = format!("x-field-{i:03}");
        assert_eq!(
            r.head.all(&name),
            [format!("value {i} with, commas; and=signs")],
            "{name}"
        );
    }
    // Fields of one name keep their order (RFC 9110 §5.3).
    assert_eq!(r.head.all("set-cookie"), ["a=1", "b=2"]);
    assert_eq!(digest(&r.body), digest(&body));
}

#[tokio::test]
async fn upper_case_host_with_a_port_routes_like_the_lower_case_name() {
    let app = echo_target_backend().await;
    let other = echo_target_backend().await;
    let (_p, addr) = start(host_routed(app.addr, other.addr)).await;
    let mut c = Wire::connect(addr).await;
    c.send(b"GET /x HTTP/1.1\r\nHost: APP.Example:8080\r\n\r\n")
        .await;
    let r = c.expect_response("GET").await;
    assert_eq!((r.status, r.text().as_str()), (200, "you asked for /x"));
    assert_eq!(app.targets(), ["/x"]);
    assert!(other.targets().is_empty());
}

#[tokio::test]
async fn proxy_fields_reach_the_backend_once_and_the_revision_comes_back() {
    let b = echo_target_backend().await;
    let (_p, addr) = proxy_to(b.addr).await;
    let mut c = Wire::connect(addr).await;
    c.send(
        b"GET /a HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: https\r\n\r\n",
    )
    .await;
    let r = c.expect_response("GET").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.head.all("x-ferry-revision"), ["default"]);
    c.send(&get("/b")).await;
    let r = c.expect_response("GET").await;
    assert_eq!(r.head.all("x-ferry-revision"), ["default"]);

    let got = b.received();
    assert_eq!(got.len(), 2);
    // The client's chain is extended, not duplicated.
    assert_eq!(got[0].head.all("x-forwarded-for"), ["192.0.2.1, 127.0.0.1"]);
    assert_eq!(got[1].head.all("x-forwarded-for"), ["127.0.0.1"]);
    for g in &got {
        // The scheme is the proxy's to tell: the client's claim is replaced.
        assert_eq!(g.head.all("x-forwarded-proto"), ["http"], "{:?}", g.head);
        let ids = g.head.all("x-request-id");
        assert_eq!(ids.len(), 1, "{:?}", g.head);
        assert!(!ids[0].is_empty());
    }
    assert_ne!(
        got[0].head.get("x-request-id"),
        got[1].head.get("x-request-id"),
        "each request gets its own id"
    );
}

#[tokio::test]
async fn a_request_whose_final_coding_is_not_chunked_gets_400() {
    // RFC 9112 §6.3: its length cannot be determined; 400, then close.
    let b = echo_target_backend().await;
    let (_p, addr) = proxy_to(b.addr).await;
    for te in ["gzip", "chunked, gzip"] {
        let req = format!(
            "POST /te HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: {te}\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        );
        rejected_with_400(addr, te, req.as_bytes()).await;
    }
    barrier(addr).await;
    assert_eq!(b.targets(), ["/barrier"]);
}

#[tokio::test]
async fn malformed_request_field_lines_never_reach_the_backend() {
    let b = echo_target_backend().await;
    let (_p, addr) = proxy_to(b.addr).await;
    // RFC 9112 §5.1: whitespace between a field name and the colon gets 400.
    rejected_with_400(
        addr,
        "space before colon",
        b"GET /space HTTP/1.1\r\nHost: app.test\r\nX-Bad : 1\r\n\r\n",
    )
    .await;
    // RFC 9112 §5.2: an obs-fold is rejected with 400 or replaced by spaces.
    let mut c = Wire::connect(addr).await;
    c.send(b"GET /fold HTTP/1.1\r\nHost: app.test\r\nX-Folded: a\r\n  b\r\n\r\n")
        .await;
    let r = c.expect_response("GET").await;
    assert!(matches!(r.status, 200 | 400), "{r:?}");
    barrier(addr).await;
    for got in b.received() {
        assert!(!got.head.has_malformed_line(), "{:?}", got.head);
        assert_ne!(got.target, "/space");
        if got.target == "/fold" {
            let v = got.head.get("x-folded").expect("the folded field");
            assert!(v.starts_with('a') && v.ends_with('b'), "{v:?}");
        }
    }
}

#[tokio::test]
async fn an_overflowing_chunk_size_is_not_wrapped_into_a_small_one() {
    // RFC 9112 §7.1: large chunk sizes must not overflow. 2^64 + 1 wrapped is 1,
    // which would make `x` the body and the rest a request of its own.
    let b = raw_backend(|r| Reply::ok(digest(&r.body))).await;
    let (_p, addr) = proxy_to(b.addr).await;
    let mut c = Wire::connect(addr).await;
    c.send(
        b"POST /up HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n\
          10000000000000001\r\nx\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n",
    )
    .await;
    match c.response("POST").await {
        Ok(r) => assert!(r.status >= 400, "accepted: {r:?}"),
        Err(e) => assert_ne!(e.kind(), io::ErrorKind::TimedOut, "the client hangs: {e}"),
    }
    barrier(addr).await;
    assert_eq!(b.targets(), ["/barrier"], "a request body was accepted");
}

#[tokio::test]
async fn an_http_1_1_request_without_host_gets_400() {
    host_rejected(b"GET /none HTTP/1.1\r\n\r\n").await;
}

#[tokio::test]
async fn a_request_with_two_host_lines_gets_400() {
    host_rejected(b"GET /two HTTP/1.1\r\nHost: app.example\r\nHost: other.example\r\n\r\n").await;
}

#[tokio::test]
async fn a_request_with_an_invalid_host_gets_400() {
    host_rejected(b"GET /bad HTTP/1.1\r\nHost: app example\r\n\r\n").await;
}

#[tokio::test]
async fn a_response_with_length_and_chunked_is_read_by_chunked() {
    // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; a proxy that
    // forwards the response removes the length first (or answers 502 instead).
    // Trusting the 3 would cut `hello` and leave `lo...` to pass for the next response.
    let b = raw_backend(|r| {
        if r.target == "/both" {
            Reply::raw(
                &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
                   5\r\nhello\r\n0\r\n\r\n"[..],
            )
            .then_close()
        } else {
            Reply::ok(format!("you asked for {}", r.target))
        }
    })
    .await;
    let (_p, addr) = proxy_to(b.addr).await;
    let mut c = Wire::connect(addr).await;
    c.send(&get("/both")).await;
    let r = c.expect_response("GET").await;
    assert!(
        (r.status, r.text().as_str()) == (200, "hello") || r.status == 502,
        "{r:?}"
    );
    c.send(&get("/next")).await;
    match c.response("GET").await {
        Ok(r) => assert_eq!((r.status, r.text().as_str()), (200, "you asked for /next")),
        // The proxy may close the client connection after such a response.
        Err(e) => assert_ne!(e.kind(), io::ErrorKind::TimedOut, "{e}"),
    }
}

#[tokio::test]
async fn a_response_with_conflicting_lengths_becomes_502() {
    // RFC 9112 §6.3: a proxy discards such a response and answers 502.
    let b = raw_backend(|r| {
        if r.target == "/two" {
            Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"[..])
        } else {
            Reply::ok(format!("you asked for {}", r.target))
        }
    })
    .await;
    let (_p, addr) = proxy_to(b.addr).await;
    let mut c = Wire::connect(addr).await;
    c.send(&get("/two")).await;
    match c.response("GET").await {
        Ok(r) => assert_eq!(r.status, 502, "{r:?}"),
        Err(e) => panic!("no 502 but {e}"),
    }
    barrier(addr).await;
}
