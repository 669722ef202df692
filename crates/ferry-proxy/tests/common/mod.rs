//! Test peers: tiny hyper backends on 127.0.0.1:0 and a keep-alive client.

#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod wire;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// A backend under test control.
pub struct TestBackend {
    pub addr: SocketAddr,
    pub name: &'static str,
    /// What `/healthz` answers.
    pub healthy: Arc<AtomicBool>,
    /// Requests served (health checks excluded).
    pub hits: Arc<AtomicU64>,
    /// Connections accepted.
    pub conns: Arc<AtomicU64>,
    /// Released by the test to let `/stream` send its second chunk.
    pub release: Arc<Notify>,
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl TestBackend {
    /// Stops accepting and cuts every open connection (a crashed container).
    pub fn kill(&self) {
        for t in self.tasks.lock().expect("lock").drain(..) {
            t.abort();
        }
    }
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn full(s: impl Into<Bytes>) -> Body {
    Full::new(s.into()).boxed_unsync()
}

/// Starts a backend that answers:
/// `/healthz` (200 or 503), `/fail` (500), `/slow` (200 after 300 ms),
/// `/headers` (the request headers as `name: value` lines), `/stream` (one
/// chunk, then another once `release` is notified), `/ws` (upgrade, then echo),
/// anything else: its name.
pub async fn backend(name: &'static str) -> TestBackend {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    backend_on(listener, name)
}

pub fn backend_on(listener: TcpListener, name: &'static str) -> TestBackend {
    let addr = listener.local_addr().expect("addr");
    let healthy = Arc::new(AtomicBool::new(true));
    let hits = Arc::new(AtomicU64::new(0));
    let release = Arc::new(Notify::new());
    let tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
    let conns = Arc::new(AtomicU64::new(0));
    let k = conns.clone();
    let (h, n, r, t) = (
        healthy.clone(),
        hits.clone(),
        release.clone(),
        tasks.clone(),
    );
    let accept = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            k.fetch_add(1, Ordering::SeqCst);
            let (h, n, r) = (h.clone(), n.clone(), r.clone());
            let svc = service_fn(move |req: Request<Incoming>| {
                let (h, n, r) = (h.clone(), n.clone(), r.clone());
                async move { Ok::<_, Infallible>(answer(name, req, &h, &n, &r).await) }
            });
            let conn = tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
            t.lock().expect("lock").push(conn.abort_handle());
        }
    });
    tasks.lock().expect("lock").push(accept.abort_handle());
    TestBackend {
        addr,
        name,
        healthy,
        hits,
        conns,
        release,
        tasks,
    }
}

async fn answer(
    name: &'static str,
    mut req: Request<Incoming>,
    healthy: &AtomicBool,
    hits: &AtomicU64,
    release: &Arc<Notify>,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if path == "/healthz" {
        let ok = healthy.load(Ordering::SeqCst);
        let mut r = Response::new(full(if ok { "ok" } else { "down" }));
        *r.status_mut() = if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return r;
    }
    hits.fetch_add(1, Ordering::SeqCst);
    match path.as_str() {
        "/fail" => {
            let mut r = Response::new(full("boom"));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Response::new(full(name))
        }
        "/headers" => {
            let mut s = String::new();
            for (k, v) in req.headers() {
                s.push_str(&format!("{}: {}\n", k, v.to_str().unwrap_or("?")));
            }
            Response::new(full(s))
        }
        "/echo" => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            Response::new(full(body))
        }
        "/stream" => {
            let release = release.clone();
            let chunks = futures_util::stream::unfold(0u8, move |state| {
                let release = release.clone();
                async move {
                    match state {
                        0 => Some((
                            Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"first\n"))),
                            1,
                        )),
                        1 => {
                            release.notified().await;
                            Some((Ok(Frame::data(Bytes::from_static(b"second\n"))), 2))
                        }
                        _ => None,
                    }
                }
            });
            let mut r = Response::new(BodyExt::boxed_unsync(StreamBody::new(chunks.boxed())));
            r.headers_mut()
                .insert("content-type", "text/event-stream".parse().expect("header"));
            r
        }
        "/ws" => {
            let on_upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(up) = on_upgrade.await {
                    let mut io = TokioIo::new(up);
                    let (mut rd, mut wr) = tokio::io::split(&mut io);
                    let _ = tokio::io::copy(&mut rd, &mut wr).await;
                }
            });
            let mut r = Response::new(full(Bytes::new()));
            *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            r.headers_mut()
                .insert("upgrade", "websocket".parse().expect("header"));
            r.headers_mut()
                .insert("connection", "Upgrade".parse().expect("header"));
            r
        }
        _ => {
            let mut r = Response::new(full(name));
            r.headers_mut()
                .insert("x-backend", name.parse().expect("header"));
            r
        }
    }
}

/// A keep-alive HTTP/1.1 client.
pub fn client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// GET `path` through `proxy`; returns status, revision header and body.
pub async fn get(
    c: &Client<HttpConnector, Empty<Bytes>>,
    proxy: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Option<String>, String) {
    let mut req = Request::get(format!("http://{proxy}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = c
        .request(req.body(Empty::new()).expect("request"))
        .await
        .expect("response");
    let status = resp.status();
    let rev = resp
        .headers()
        .get("x-ferry-revision")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, rev, String::from_utf8_lossy(&body).into_owned())
}

/// Polls `f` every 20 ms until it holds, failing after `limit` (generous: a bound, not a timing claim).
pub async fn eventually(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An address nothing listens on (bound and released).
pub async fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr")
}
