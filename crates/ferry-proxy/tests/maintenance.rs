//! Maintenance holds and custom error pages, on both request paths: the HTTP/1.1
//! fast path (plain HTTP/1.1) and hyper (h2c with prior knowledge, and HTTP/1.0,
//! which the fast path hands to hyper).

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::{backend, dead_addr};
use ferry_proxy::{PoolConfig, ProxyConfig, RateLimitConfig, RouteConfig, ServiceConfig, Weight};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A bound for every exchange: generous, so a slow machine does not fail a test.
const LIMIT: Duration = Duration::from_secs(10);

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

/// A response as the client saw it (header names lowercase).
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Which way a request reaches the proxy.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// Plain HTTP/1.1: the fast path.
    Http11,
    /// HTTP/1.0: handed to hyper.
    Http10,
    /// HTTP/2 in cleartext with prior knowledge: hyper.
    H2c,
}

const ALL: [Via; 3] = [Via::Http11, Via::Http10, Via::H2c];

/// Sends one request (`body`: sent with its content-length) on a new connection.
async fn send(proxy: SocketAddr, via: Via, method: &str, path: &str, body: &[u8]) -> Resp {
    tokio::time::timeout(LIMIT, send_inner(proxy, via, method, path, body, &[]))
        .await
        .unwrap_or_else(|_| panic!("{via:?} {method} {path}: no response in time"))
}

async fn send_inner(
    proxy: SocketAddr,
    via: Via,
    method: &str,
    path: &str,
    body: &[u8],
    extra_headers: &[(&str, String)],
) -> Resp {
    let mut stream = TcpStream::connect(proxy).await.expect("connect");
    let version = match via {
        Via::Http11 => "1.1",
        Via::Http10 => "1.0",
        Via::H2c => return h2c(stream, method, path, body).await,
    };
    let mut head = format!("{method} {path} HTTP/{version}\r\nhost: app.test\r\n");
    if !body.is_empty() {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    for (k, v) in extra_headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // One write: a body that came with its head stays on the fast path.
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).await.expect("write");
    read_response(&mut stream).await
}

/// Reads a response head and a body of its content-length.
async fn read_response(stream: &mut TcpStream) -> Resp {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(
            n > 0,
            "closed before a response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("ascii head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .expect("a content-length");
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.expect("read body");
        assert!(n > 0, "closed inside the body");
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Resp {
        status,
        headers,
        body,
    }
}

async fn h2c(stream: TcpStream, method: &str, path: &str, body: &[u8]) -> Resp {
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2c handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(format!("http://app.test{path}"))
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    let resp = sender.send_request(req).await.expect("h2 response");
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().expect("ascii").to_owned()))
        .collect();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("h2 body")
        .to_bytes()
        .to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

/// One service `app` in maintenance ("paused") that holds requests for `hold`.
fn held_config(backend: SocketAddr, hold: Duration) -> ProxyConfig {
    let mut cfg = ProxyConfig::single(any_port(), backend);
    let app = cfg.services.get_mut("app").expect("app");
    app.maintenance = Some("paused".into());
    app.maintenance_hold = Some(hold.into());
    cfg
}

/// Starts a request per way on its own task; each returns its response and when it came.
fn spawn_all(proxy: SocketAddr) -> Vec<(Via, tokio::task::JoinHandle<(Resp, Instant)>)> {
    ALL.into_iter()
        .map(|via| {
            let task = tokio::spawn(async move {
                let r = send(proxy, via, "GET", "/", b"").await;
                (r, Instant::now())
            });
            (via, task)
        })
        .collect()
}

/// How long the tests keep a service paused with requests held.
const PAUSE: Duration = Duration::from_millis(400);

#[tokio::test]
async fn held_requests_go_on_when_maintenance_ends() {
    let b = backend("b").await;
    let proxy = ferry_proxy::start(held_config(b.addr, Duration::from_secs(30)))
        .await
        .expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let tasks = spawn_all(addr);
    tokio::time::sleep(PAUSE).await;
    for (via, t) in &tasks {
        assert!(!t.is_finished(), "{via:?}: answered while paused");
    }
    assert_eq!(
        b.hits.load(Ordering::SeqCst),
        0,
        "a held request reached a backend"
    );
    let resumed = Instant::now();
    proxy.handle.set_maintenance("app", None).expect("off");
    for (via, t) in tasks {
        let (r, done) = tokio::time::timeout(LIMIT, t)
            .await
            .expect("released in time")
            .expect("task");
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"b"[..]),
            "{via:?}: {r:?}"
        );
        assert!(
            done >= resumed,
            "{via:?}: answered before maintenance ended"
        );
    }
    assert_eq!(b.hits.load(Ordering::SeqCst), 3);
    proxy.handle.shutdown();
    proxy.wait().await;
}

#[tokio::test]
async fn held_requests_are_routed_by_the_new_table() {
    let old = backend("old").await;
    let new = backend("new").await;
    let proxy = ferry_proxy::start(held_config(old.addr, Duration::from_secs(30)))
        .await
        .expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let tasks = spawn_all(addr);
    tokio::time::sleep(PAUSE).await;
    for (via, t) in &tasks {
        assert!(!t.is_finished(), "{via:?}: answered while paused");
    }
    let mut routing = proxy.handle.routing();
    let app = routing.services.get_mut("app").expect("app");
    app.maintenance = None;
    app.pools[0].backends = vec![new.addr];
    proxy.handle.replace_routing(routing).expect("new table");
    for (via, t) in tasks {
        let (r, _) = tokio::time::timeout(LIMIT, t)
            .await
            .expect("released in time")
            .expect("task");
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"new"[..]),
            "{via:?}: {r:?}"
        );
    }
    assert_eq!(old.hits.load(Ordering::SeqCst), 0);
    assert_eq!(new.hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn held_request_gets_the_maintenance_503_when_the_hold_ends() {
    let b = backend("b").await;
    let hold = Duration::from_millis(300);
    let proxy = ferry_proxy::start(held_config(b.addr, hold))
        .await
        .expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let mut tasks = Vec::new();
    for via in ALL {
        tasks.push((
            via,
            Instant::now(),
            tokio::spawn(async move { send(addr, via, "GET", "/", b"").await }),
        ));
    }
    // A new table that keeps the service in maintenance does not release them; the
    // 503 then carries its text.
    tokio::time::sleep(hold / 3).await;
    proxy
        .handle
        .set_maintenance("app", Some("still paused".into()))
        .expect("new text");
    for (via, sent, t) in tasks {
        let r = t.await.expect("task");
        assert_eq!(r.status, 503, "{via:?}: {r:?}");
        assert_eq!(r.body, b"still paused\n", "{via:?}");
        assert_eq!(r.header("retry-after"), Some("30"), "{via:?}");
        assert!(
            sent.elapsed() >= hold,
            "{via:?}: answered before the hold ended"
        );
    }
    assert_eq!(b.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn shutdown_answers_held_requests_at_once() {
    let b = backend("b").await;
    // Far longer than the bound below: only the shutdown can end these holds in time.
    let proxy = ferry_proxy::start(held_config(b.addr, Duration::from_secs(120)))
        .await
        .expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let tasks = spawn_all(addr);
    tokio::time::sleep(PAUSE).await;
    for (via, t) in &tasks {
        assert!(!t.is_finished(), "{via:?}: answered while paused");
    }
    proxy.handle.shutdown();
    for (via, t) in tasks {
        let (r, _) = tokio::time::timeout(LIMIT, t)
            .await
            .expect("released by the shutdown")
            .expect("task");
        assert_eq!(
            (r.status, r.body.as_slice()),
            (503, &b"paused\n"[..]),
            "{via:?}"
        );
    }
    tokio::time::timeout(LIMIT, proxy.wait())
        .await
        .expect("shutdown finished");
    assert_eq!(b.hits.load(Ordering::SeqCst), 0);
}

/// Page files in a temporary directory: each status gets distinct content.
struct Pages {
    /// Removed when the test ends.
    _dir: tempfile::TempDir,
    files: HashMap<u16, (std::path::PathBuf, &'static str)>,
}

fn pages() -> Pages {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = HashMap::new();
    for (status, name, ctype) in [
        (404, "404.html", "text/html; charset=utf-8"),
        (413, "413.txt", "text/plain; charset=utf-8"),
        (429, "429.json", "application/json"),
        (431, "431.html", "text/html; charset=utf-8"),
        (502, "502.json", "application/json"),
        (503, "503.html", "text/html; charset=utf-8"),
        (504, "504", "text/plain; charset=utf-8"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("<p>page {status}</p>")).expect("write page");
        files.insert(status, (path, ctype));
    }
    Pages { _dir: dir, files }
}

impl Pages {
    fn config(&self) -> std::collections::BTreeMap<String, std::path::PathBuf> {
        self.files
            .iter()
            .map(|(s, (p, _))| (s.to_string(), p.clone()))
            .collect()
    }

    #[track_caller]
    fn assert_served(&self, r: &Resp, status: u16, what: &str) {
        let (_, ctype) = &self.files[&status];
        assert_eq!(r.status, status, "{what}: {r:?}");
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            format!("<p>page {status}</p>"),
            "{what}"
        );
        assert_eq!(r.header("content-type"), Some(*ctype), "{what}");
    }
}

fn service(revision: &str, backends: Vec<SocketAddr>) -> ServiceConfig {
    ServiceConfig::new(vec![PoolConfig {
        revision: revision.into(),
        weight: Weight::FULL,
        backends,
    }])
}

fn route(prefix: &str, service: &str) -> RouteConfig {
    RouteConfig {
        hosts: Vec::new(),
        path_prefix: prefix.into(),
        service: service.into(),
    }
}

#[tokio::test]
async fn error_pages_replace_generated_bodies_on_both_paths() {
    let pages = pages();
    let ok = backend("ok").await;
    let slow = backend("slow").await;
    let mut cfg = ProxyConfig::single(any_port(), ok.addr);
    cfg.routes = vec![
        route("/ok", "app"),
        route("/fail", "app"),
        route("/slow", "slow"),
        route("/dead", "dead"),
        route("/empty", "empty"),
        route("/paused", "paused"),
    ];
    cfg.services
        .insert("slow".into(), service("s", vec![slow.addr]));
    cfg.services
        .insert("dead".into(), service("d", vec![dead_addr().await]));
    cfg.services
        .insert("empty".into(), service("e", Vec::new()));
    let mut paused = service("p", Vec::new());
    paused.maintenance = Some("paused".into());
    cfg.services.insert("paused".into(), paused);
    // The test backend answers `/slow` after 300 ms.
    cfg.timeouts.upstream_response = Duration::from_millis(100).into();
    cfg.limits.max_body_bytes = 10;
    cfg.limits.max_header_bytes = 16 * 1024;
    cfg.error_pages = pages.config();
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];

    for via in ALL {
        let what = |s: &str| format!("{via:?} {s}");
        let r = send(addr, via, "GET", "/ok", b"").await;
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]), "{via:?}");
        let r = send(addr, via, "GET", "/nowhere", b"").await;
        pages.assert_served(&r, 404, &what("no route"));
        let r = send(addr, via, "POST", "/ok", &[b'x'; 100]).await;
        pages.assert_served(&r, 413, &what("body too large"));
        let r = send(addr, via, "GET", "/dead", b"").await;
        pages.assert_served(&r, 502, &what("unreachable backend"));
        let r = send(addr, via, "GET", "/empty", b"").await;
        pages.assert_served(&r, 503, &what("no backend"));
        let r = send(addr, via, "GET", "/paused", b"").await;
        pages.assert_served(&r, 503, &what("maintenance"));
        assert_eq!(r.header("retry-after"), Some("30"), "{via:?}");
        let r = send(addr, via, "GET", "/slow", b"").await;
        pages.assert_served(&r, 504, &what("upstream timeout"));
    }
    // An oversized head on the fast path (hyper answers those itself: not customised).
    let big = "a".repeat(64 * 1024);
    let r = tokio::time::timeout(
        LIMIT,
        send_inner(addr, Via::Http11, "GET", "/ok", b"", &[("x-big", big)]),
    )
    .await
    .expect("in time");
    pages.assert_served(&r, 431, "head too large");
    // A backend's own error is never replaced.
    let r = send(addr, Via::Http11, "GET", "/fail", b"").await;
    assert_eq!((r.status, r.body.as_slice()), (500, &b"boom"[..]));
    proxy.handle.shutdown();
    proxy.wait().await;
}

#[tokio::test]
async fn rate_limit_page_on_both_paths() {
    let pages = pages();
    let b = backend("b").await;
    let mut cfg = ProxyConfig::single(any_port(), b.addr);
    cfg.limits.rate_limit = Some(RateLimitConfig {
        requests: 1,
        per: Duration::from_secs(3600).into(),
    });
    cfg.error_pages = pages.config();
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let r = send(addr, Via::Http11, "GET", "/", b"").await;
    assert_eq!(r.status, 200);
    for via in ALL {
        let r = send(addr, via, "GET", "/", b"").await;
        pages.assert_served(&r, 429, &format!("{via:?} rate limited"));
        assert!(r.header("retry-after").is_some(), "{via:?}");
    }
}

#[tokio::test]
async fn a_missing_page_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let routes_file = |status: u16, page: &std::path::Path| {
        format!(
            "[[listeners]]\naddr = \"127.0.0.1:0\"\n\n[error_pages]\n{status} = {:?}\n\n\
             [[routes]]\nservice = \"app\"\n\n[services.app]\n[[services.app.pools]]\n\
             revision = \"r1\"\nweight = 100\nbackends = [\"127.0.0.1:9\"]\n",
            page.display().to_string()
        )
    };
    let missing = dir.path().join("gone-503.html");
    let err = ProxyConfig::from_toml_str(&routes_file(503, &missing))
        .expect_err("a missing page")
        .to_string();
    assert!(
        err.contains("gone-503.html") && err.contains("\"503\""),
        "{err}"
    );
    // A config built in code is checked when the proxy starts.
    let mut cfg = ProxyConfig::single(any_port(), dead_addr().await);
    cfg.error_pages.insert("503".into(), missing);
    let err = ferry_proxy::start(cfg)
        .await
        .expect_err("a missing page")
        .to_string();
    assert!(err.contains("gone-503.html"), "{err}");
    // A status the proxy never generates is refused too.
    let page = dir.path().join("200.html");
    std::fs::write(&page, "hi").expect("write");
    let err = ProxyConfig::from_toml_str(&routes_file(200, &page))
        .expect_err("status 200")
        .to_string();
    assert!(err.contains("\"200\"") && err.contains("200.html"), "{err}");
    let ok = ProxyConfig::from_toml_str(&routes_file(502, &page)).expect("a valid page");
    assert_eq!(ok.error_pages["502"], page);
}

#[test]
fn documented_hold_and_pages_example_parses() {
    let doc = include_str!("../../../docs/proxy.md");
    let block = doc
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split_once("```").map(|(b, _)| b))
        .find(|b| b.contains("[error_pages]") && b.contains("maintenance_hold"))
        .expect("a toml example with error pages and a hold in docs/proxy.md");
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["404.html", "503.html", "504.json"] {
        std::fs::write(dir.path().join(name), "page").expect("write");
    }
    let text = block.replace("/etc/ferry/pages", &dir.path().display().to_string());
    let cfg = ProxyConfig::from_toml_str(&text).expect("the documented example is valid");
    assert_eq!(cfg.error_pages.len(), 3);
    let shop = &cfg.services["shop"];
    assert!(shop.maintenance.is_some());
    assert_eq!(
        shop.maintenance_hold.map(|h| h.0),
        Some(Duration::from_secs(20))
    );
}
