//! Client-side limits: slowloris header timeout, oversized heads (431) and bodies (413).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{backend, client, get};
use ferry_proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

/// Sends `req` and returns the status code of the first response line.
async fn raw_status(addr: SocketAddr, req: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(req).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(2).any(|w| w == b"\r\n") {
        let n = s.read(&mut buf).await.expect("read");
        assert!(n > 0, "connection closed without a response");
        got.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&got);
    line.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code")
}

#[tokio::test]
async fn slow_header_senders_are_cut_at_the_header_timeout_and_others_are_served() {
    let b = backend("b").await;
    let mut cfg = ProxyConfig::single(any_port(), b.addr);
    cfg.timeouts.header_read = Duration::from_millis(300).into();
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];

    let slow = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = slow.into_split();
    // One byte every 50 ms of a head that never ends, for at most 10 s.
    let writer = tokio::spawn(async move {
        wr.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .ok();
        for _ in 0..200 {
            if wr.write_all(b"a").await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    // Meanwhile a normal client is served.
    let (status, _, body) = get(&client(), addr, "/", &[]).await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "b"));
    let mut buf = [0u8; 512];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => continue, // a 408 before the close is fine
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(closed, "the slow connection was not closed");
    writer.abort();
    assert_eq!(
        b.hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the slow request never reached the backend"
    );
}

#[tokio::test]
async fn oversized_head_gets_431_and_oversized_body_gets_413() {
    let b = backend("b").await;
    let mut cfg = ProxyConfig::single(any_port(), b.addr);
    cfg.limits.max_header_bytes = 16 * 1024;
    cfg.limits.max_body_bytes = 1000;
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];

    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    assert_eq!(raw_status(addr, big.as_bytes()).await, 431);

    let post = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n{}",
        "b".repeat(2000)
    );
    assert_eq!(raw_status(addr, post.as_bytes()).await, 413);

    let ok = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{}",
        "c".repeat(10)
    );
    assert_eq!(raw_status(addr, ok.as_bytes()).await, 200);
    assert_eq!(
        b.hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "only the valid request reached the backend"
    );
}

#[tokio::test]
async fn over_the_rate_limit_gets_429_with_retry_after_and_security_headers_are_added() {
    let b = backend("b").await;
    let mut cfg = ProxyConfig::single(any_port(), b.addr);
    cfg.limits.rate_limit = Some(ferry_proxy::RateLimitConfig {
        requests: 3,
        per: Duration::from_secs(60).into(),
    });
    cfg.limits.security_headers = true;
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let c = client();
    for _ in 0..3 {
        let resp = c
            .request(
                http::Request::get(format!("http://{addr}/"))
                    .body(http_body_util::Empty::new())
                    .expect("req"),
            )
            .await
            .expect("resp");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        assert_eq!(resp.headers()["x-frame-options"], "DENY");
        assert!(
            resp.headers().get("strict-transport-security").is_none(),
            "HSTS only over TLS"
        );
    }
    let resp = c
        .request(
            http::Request::get(format!("http://{addr}/"))
                .body(http_body_util::Empty::new())
                .expect("req"),
        )
        .await
        .expect("resp");
    assert_eq!(resp.status(), 429);
    assert_eq!(
        resp.headers()["retry-after"],
        "20",
        "one request per 20 s comes back"
    );
    assert_eq!(b.hits.load(std::sync::atomic::Ordering::SeqCst), 3);
}

/// A backend that reads the whole request body, then answers with its length.
async fn body_counting_backend() -> SocketAddr {
    use http_body_util::{BodyExt, Full};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let n = req.into_body().collect().await.map(|b| b.to_bytes().len());
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            bytes::Bytes::from(format!("{n:?}")),
                        )))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_gets_413_on_its_way() {
    let upstream = body_counting_backend().await;
    let mut cfg = ProxyConfig::single(any_port(), upstream);
    cfg.limits.max_body_bytes = 1000;
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let chunked = |parts: &[usize]| {
        let mut req =
            b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for n in parts {
            req.extend_from_slice(format!("{n:x}\r\n").as_bytes());
            req.extend_from_slice(&vec![b'z'; *n]);
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"0\r\n\r\n");
        req
    };
    // No content-length to check up front: the limit applies as the body streams.
    assert_eq!(raw_status(addr, &chunked(&[600, 600])).await, 413);
    assert_eq!(raw_status(addr, &chunked(&[500, 500])).await, 200);
}

#[tokio::test]
async fn a_complete_head_over_a_small_limit_gets_431_on_both_paths() {
    let b = backend("b").await;
    let mut cfg = ProxyConfig::single(any_port(), b.addr);
    cfg.limits.max_header_bytes = 1024;
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let pad = "a".repeat(2000);
    // HTTP/1.1: the fast path; HTTP/1.0: hyper's path.
    for version in ["1.1", "1.0"] {
        let big = format!("GET / HTTP/{version}\r\nHost: x\r\nX-Big: {pad}\r\n\r\n");
        assert_eq!(
            raw_status(addr, big.as_bytes()).await,
            431,
            "HTTP/{version}"
        );
        let small = format!("GET / HTTP/{version}\r\nHost: x\r\nX-Small: 1\r\n\r\n");
        assert_eq!(
            raw_status(addr, small.as_bytes()).await,
            200,
            "HTTP/{version}"
        );
    }
    assert_eq!(
        b.hits.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "only the small heads reached the backend"
    );
}
