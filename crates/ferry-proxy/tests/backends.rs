//! Backend-side features through real sockets: slow start of an added backend,
//! and HTTP/2 (h2c, prior knowledge) to gRPC-style backends with streaming and trailers.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{backend, client, get};
use futures_util::StreamExt;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};

use ferry_proxy::{BackendProtocol, HumanDuration, ProxyConfig};

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

/// Requests that reached backend `new` among `n` GETs.
async fn share_of_new(proxy: SocketAddr, n: u32) -> u32 {
    let c = client();
    let mut hits = 0;
    for _ in 0..n {
        let (status, _, body) = get(&c, proxy, "/", &[]).await;
        assert_eq!(status, 200);
        hits += u32::from(body == "new");
    }
    hits
}

#[tokio::test]
async fn slow_start_ramps_an_added_backend_up_to_its_full_share() {
    const WINDOW: Duration = Duration::from_secs(3);
    const N: u32 = 400;
    let old = backend("old").await;
    let new = backend("new").await;
    let mut cfg = ProxyConfig::single(any_port(), old.addr);
    cfg.services.get_mut("app").expect("app").slow_start = Some(HumanDuration(WINDOW));
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];

    proxy
        .handle
        .add_backend("app", "default", new.addr)
        .expect("add backend");
    let added = Instant::now();
    let early = share_of_new(addr, N).await;
    // Round robin over two backends gives the new one half of the requests
    // times its slow-start share, which is at most elapsed / window (at least
    // 10 %) by the end of this batch: bound it by what that allows, plus slack
    // for chance (the ramp is a weighted coin per turn).
    let ramp = (added.elapsed().as_secs_f64() / WINDOW.as_secs_f64()).clamp(0.1, 1.0);
    let ceiling = f64::from(N) * (ramp / 2.0 + 0.08);
    assert!(
        f64::from(early) <= ceiling,
        "early in the ramp the new backend got {early} of {N} (ceiling {ceiling:.0})"
    );
    assert!(early > 0, "a ramping backend still gets some traffic");

    // After the window, plain round robin: exactly half each.
    tokio::time::sleep(WINDOW.saturating_sub(added.elapsed()) + Duration::from_millis(200)).await;
    let late = share_of_new(addr, N).await;
    assert_eq!(late, N / 2, "full share after the window");
    proxy.handle.shutdown();
    proxy.wait().await;
}

#[tokio::test]
async fn backends_of_the_first_table_do_not_slow_start() {
    let a = backend("old").await;
    let b = backend("new").await;
    let mut cfg = ProxyConfig::single(any_port(), a.addr);
    let svc = cfg.services.get_mut("app").expect("app");
    svc.slow_start = Some(HumanDuration(Duration::from_secs(60)));
    svc.pools[0].backends.push(b.addr);
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    assert_eq!(share_of_new(addr, 200).await, 100);
    proxy.handle.shutdown();
    proxy.wait().await;
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A gRPC-style HTTP/2-only backend (prior knowledge, no HTTP/1.1): `/stream`
/// sends three chunks 50 ms apart, then trailers; `/echo` streams the request
/// body back chunk by chunk as it arrives, then trailers; anything else answers
/// its protocol version and `:authority`. Counts connections.
async fn h2_backend() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let conns = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&conns);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<Incoming>| async move {
                    Ok::<_, Infallible>(h2_answer(req))
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, conns)
}

fn trailers() -> HeaderMap {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", "0".parse().expect("value"));
    t
}

fn h2_answer(req: Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/stream" => {
            let chunks = futures_util::stream::unfold(0u8, |i| async move {
                match i {
                    0..=2 => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Some((
                            Ok::<_, Infallible>(Frame::data(Bytes::from(format!("chunk{i}\n")))),
                            i + 1,
                        ))
                    }
                    3 => Some((Ok(Frame::trailers(trailers())), 4)),
                    _ => None,
                }
            });
            Response::new(BodyExt::boxed_unsync(StreamBody::new(chunks.boxed())))
        }
        "/echo" => {
            let te = req
                .headers()
                .get("te")
                .map(|v| v.to_str().unwrap_or("?").to_owned())
                .unwrap_or_default();
            let body = req.into_body();
            let frames = futures_util::stream::unfold(Some(body), |body| async move {
                let mut body = body?;
                match body.frame().await {
                    Some(Ok(f)) => match f.into_data() {
                        Ok(d) => Some((Ok::<_, Infallible>(Frame::data(d)), Some(body))),
                        Err(_) => Some((Ok(Frame::trailers(trailers())), None)),
                    },
                    _ => Some((Ok(Frame::trailers(trailers())), None)),
                }
            });
            let mut r = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames.boxed())));
            r.headers_mut()
                .insert("x-te", te.parse().expect("header value"));
            r
        }
        _ => {
            let text = format!(
                "{:?} {}",
                req.version(),
                req.uri().authority().map_or("-", |a| a.as_str())
            );
            Response::new(Full::new(Bytes::from(text)).boxed_unsync())
        }
    }
}

/// A proxy in front of one h2c backend.
async fn h2c_proxy(upstream: SocketAddr) -> ferry_proxy::RunningProxy {
    let mut cfg = ProxyConfig::single(any_port(), upstream);
    cfg.services.get_mut("app").expect("app").backend_protocol = BackendProtocol::H2c;
    ferry_proxy::start(cfg).await.expect("start")
}

#[tokio::test]
async fn http1_clients_reach_an_h2c_backend_over_one_multiplexed_connection() {
    let (upstream, conns) = h2_backend().await;
    let proxy = h2c_proxy(upstream).await;
    let addr = proxy.handle.listen_addrs()[0];
    let c = client();
    let (status, rev, body) = get(&c, addr, "/", &[("host", "grpc.test")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rev.as_deref(), Some("default"));
    assert_eq!(
        body, "HTTP/2.0 grpc.test",
        "HTTP/2 with :authority from host"
    );
    // Concurrent requests share the one HTTP/2 connection.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move { get(&c, addr, "/", &[]).await.0 }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), StatusCode::OK);
    }
    assert_eq!(
        conns.load(Ordering::SeqCst),
        1,
        "one multiplexed connection"
    );

    // A streamed response arrives chunk by chunk, not buffered to the end.
    let resp = c
        .request(
            Request::get(format!("http://{addr}/stream"))
                .body(Empty::<Bytes>::new())
                .expect("request"),
        )
        .await
        .expect("response");
    let mut body = resp.into_body();
    let started = Instant::now();
    let first = loop {
        let f = body.frame().await.expect("a frame").expect("ok");
        if let Ok(d) = f.into_data() {
            break d;
        }
    };
    assert_eq!(&first[..], b"chunk0\n");
    let first_at = started.elapsed();
    let rest = body.collect().await.expect("rest").to_bytes();
    assert_eq!(&rest[..], b"chunk1\nchunk2\n");
    assert!(
        started.elapsed() > first_at,
        "the later chunks came after the first"
    );
    proxy.handle.shutdown();
    proxy.wait().await;
}

#[tokio::test]
async fn h2c_clients_stream_both_ways_with_trailers_like_grpc() {
    let (upstream, _) = h2_backend().await;
    let proxy = h2c_proxy(upstream).await;
    let addr = proxy.handle.listen_addrs()[0];
    // An HTTP/2 client with prior knowledge on the plain listener, as gRPC clients do.
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, UnsyncBoxBody<Bytes, Infallible>>(TokioIo::new(stream))
        .await
        .expect("h2 handshake");
    tokio::spawn(conn);

    // Request body chunks go out one at a time; each must come back before the next is sent.
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let req_body =
        StreamBody::new(tokio_stream_from(rx).map(|b| Ok::<_, Infallible>(Frame::data(b))));
    let req = Request::post(format!("http://{addr}/echo"))
        .header("te", "trailers")
        .header("content-type", "application/grpc")
        .body(BodyExt::boxed_unsync(req_body))
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(
        resp.headers().get("x-te").map(|v| v.as_bytes()),
        Some(&b"trailers"[..]),
        "te: trailers reaches an HTTP/2 backend"
    );
    let mut body = resp.into_body();
    for msg in ["ping-1", "ping-2", "ping-3"] {
        tx.send(Bytes::from(msg)).await.expect("send chunk");
        let echoed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let f = body.frame().await.expect("a frame").expect("ok");
                if let Ok(d) = f.into_data() {
                    break d;
                }
            }
        })
        .await
        .expect("each chunk is echoed before the request body ends");
        assert_eq!(&echoed[..], msg.as_bytes());
    }
    drop(tx);
    let mut trailers = None;
    while let Some(f) = body.frame().await {
        if let Ok(t) = f.expect("ok").into_trailers() {
            trailers = Some(t);
        }
    }
    let trailers = trailers.expect("trailers are passed through");
    assert_eq!(
        trailers.get("grpc-status").map(|v| v.as_bytes()),
        Some(&b"0"[..])
    );
    proxy.handle.shutdown();
    proxy.wait().await;
}

/// A stream of the receiver's items.
fn tokio_stream_from(
    rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl futures_util::Stream<Item = Bytes> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) })
}
