//! Health, ejection, retries, draining, streaming and upgrades through real sockets.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{backend, client, dead_addr, eventually, get};
use ferry_proxy::{HealthConfig, HumanDuration, ProxyConfig, Weight};
use http_body_util::{BodyExt, Empty};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

fn w(p: u32) -> Weight {
    Weight::new(p).expect("weight")
}

fn ms(n: u64) -> HumanDuration {
    Duration::from_millis(n).into()
}

#[tokio::test]
async fn consecutive_5xx_eject_a_backend_then_it_is_readmitted() {
    let good = backend("good").await;
    let bad = backend("bad").await;
    let mut cfg = ProxyConfig::single(any_port(), good.addr);
    let svc = cfg.services.get_mut("app").expect("app");
    svc.pools[0].backends.push(bad.addr);
    svc.outlier.consecutive_failures = 3;
    // Long enough that the checks below finish well inside the ejection on a loaded machine.
    svc.outlier.base_ejection = ms(3000);
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let c = client();
    // `/fail` answers 500 on every backend: both collect failures, but only one
    // of the two may be ejected at a time (never the last available one).
    for _ in 0..10 {
        get(&c, addr, "/fail", &[]).await;
    }
    let snap = proxy.handle.stats_snapshot();
    assert_eq!(
        snap.backends.iter().filter(|b| b.ejected).count(),
        1,
        "{snap:?}"
    );
    let ejected = snap
        .backends
        .iter()
        .find(|b| b.ejected)
        .expect("one ejected")
        .addr;
    let (survivor, survivor_name) = if ejected == good.addr {
        (bad.addr, "bad")
    } else {
        (good.addr, "good")
    };
    for _ in 0..10 {
        let (status, _, body) = get(&c, addr, "/", &[]).await;
        assert_eq!(
            (status.as_u16(), body.as_str()),
            (200, survivor_name),
            "the ejected backend gets nothing"
        );
    }
    let _ = survivor;
    // The ejection expires: both take traffic again.
    let handle = proxy.handle.clone();
    eventually("the ejection expires", Duration::from_secs(30), || {
        handle.stats_snapshot().backends.iter().all(|b| !b.ejected)
    })
    .await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..4 {
        seen.insert(get(&c, addr, "/", &[]).await.2);
    }
    assert_eq!(seen.len(), 2, "re-admitted: {seen:?}");
    assert!(
        proxy
            .handle
            .stats_snapshot()
            .revision("app", "default")
            .expect("stats")
            .status_5xx
            >= 10
    );
}

#[tokio::test]
async fn connect_failures_are_retried_on_another_backend() {
    let live = backend("live").await;
    let dead = dead_addr().await;
    let mut cfg = ProxyConfig::single(any_port(), live.addr);
    cfg.services.get_mut("app").expect("app").pools[0]
        .backends
        .push(dead);
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let c = client();
    for _ in 0..50 {
        let (status, _, body) = get(&c, addr, "/", &[]).await;
        assert_eq!((status.as_u16(), body.as_str()), (200, "live"));
    }
    let snap = proxy.handle.stats_snapshot();
    assert!(
        snap.backends.iter().any(|b| b.addr == dead && b.ejected),
        "the dead backend is ejected: {snap:?}"
    );
}

#[tokio::test]
async fn a_post_with_a_body_is_not_retried_after_it_was_sent() {
    let b = backend("b").await;
    let proxy = ferry_proxy::start(ProxyConfig::single(any_port(), b.addr))
        .await
        .expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let c: hyper_util::client::legacy::Client<_, http_body_util::Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let resp = c
        .request(
            http::Request::post(format!("http://{addr}/echo"))
                .body(http_body_util::Full::new(Bytes::from_static(b"payload")))
                .expect("req"),
        )
        .await
        .expect("resp");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.into_body().collect().await.expect("body").to_bytes(),
        "payload"
    );
    assert_eq!(b.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn active_checks_honour_thresholds_both_ways() {
    let a = backend("a").await;
    let b = backend("b").await;
    let mut cfg = ProxyConfig::single(any_port(), a.addr);
    let svc = cfg.services.get_mut("app").expect("app");
    svc.pools[0].backends.push(b.addr);
    svc.health = Some(HealthConfig {
        path: "/healthz".into(),
        interval: ms(50),
        timeout: ms(1000),
        healthy_threshold: 2,
        unhealthy_threshold: 3,
        startup_grace: ms(0),
        start_healthy: true,
    });
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let h = proxy.handle.clone();
    let healthy = move |x: SocketAddr| {
        h.stats_snapshot()
            .backends
            .iter()
            .find(|s| s.addr == x)
            .expect("backend")
            .healthy
    };
    b.healthy.store(false, Ordering::SeqCst);
    eventually("b is marked unhealthy", Duration::from_secs(10), || {
        !healthy(b.addr)
    })
    .await;
    let c = client();
    for _ in 0..10 {
        assert_eq!(get(&c, addr, "/", &[]).await.2, "a");
    }
    b.healthy.store(true, Ordering::SeqCst);
    eventually("b is healthy again", Duration::from_secs(10), || {
        healthy(b.addr)
    })
    .await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..4 {
        seen.insert(get(&c, addr, "/", &[]).await.2);
    }
    assert_eq!(seen.len(), 2);
    assert!(healthy(a.addr));
}

#[tokio::test]
async fn a_backend_starting_unhealthy_gets_traffic_only_after_passing() {
    let a = backend("a").await;
    a.healthy.store(false, Ordering::SeqCst);
    let mut cfg = ProxyConfig::single(any_port(), a.addr);
    cfg.services.get_mut("app").expect("app").health = Some(HealthConfig {
        path: "/healthz".into(),
        interval: ms(50),
        timeout: ms(1000),
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        startup_grace: ms(0),
        start_healthy: false,
    });
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let (status, _, body) = get(&client(), addr, "/", &[]).await;
    assert_eq!(status, 503, "{body}");
    a.healthy.store(true, Ordering::SeqCst);
    let h = proxy.handle.clone();
    eventually("a passes its checks", Duration::from_secs(10), || {
        h.stats_snapshot().backends[0].healthy
    })
    .await;
    assert_eq!(get(&client(), addr, "/", &[]).await.0, 200);
}

#[tokio::test]
async fn streaming_responses_are_not_buffered() {
    let b = backend("b").await;
    let proxy = ferry_proxy::start(ProxyConfig::single(any_port(), b.addr))
        .await
        .expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let resp = client()
        .request(
            http::Request::get(format!("http://{addr}/stream"))
                .body(Empty::<Bytes>::new())
                .expect("req"),
        )
        .await
        .expect("resp");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    // The backend sends its second chunk only after we are released below, so
    // receiving the first one here proves the proxy forwarded it on its own.
    let first = body
        .frame()
        .await
        .expect("a frame")
        .expect("ok")
        .into_data()
        .expect("data");
    assert_eq!(first, "first\n");
    let in_flight = proxy.handle.stats_snapshot().backends[0].in_flight;
    assert_eq!(in_flight, 1, "an open stream counts as in flight");
    b.release.notify_one();
    let rest = body.collect().await.expect("rest").to_bytes();
    assert_eq!(rest, "second\n");
    let h = proxy.handle.clone();
    eventually("the stream is released", Duration::from_secs(5), || {
        h.stats_snapshot().backends[0].in_flight == 0
    })
    .await;
}

#[tokio::test]
async fn websocket_upgrade_passes_through_and_echoes() {
    let b = backend("b").await;
    let proxy = ferry_proxy::start(ProxyConfig::single(any_port(), b.addr))
        .await
        .expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .expect("write");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        s.read_exact(&mut byte).await.expect("read head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(head.contains("x-ferry-revision: default"), "{head}");
    // A masked text frame "hello" (RFC 6455 §5.2); the backend echoes bytes verbatim.
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | 5];
    frame.extend_from_slice(&mask);
    frame.extend(b"hello".iter().enumerate().map(|(i, c)| c ^ mask[i % 4]));
    s.write_all(&frame).await.expect("send frame");
    let mut echoed = vec![0u8; frame.len()];
    s.read_exact(&mut echoed).await.expect("read echo");
    assert_eq!(echoed, frame);
    assert_eq!(
        proxy.handle.stats_snapshot().backends[0].in_flight,
        1,
        "an upgraded connection is in flight"
    );
    drop(s);
    let h = proxy.handle.clone();
    eventually("the tunnel closes", Duration::from_secs(5), || {
        h.stats_snapshot().backends[0].in_flight == 0
    })
    .await;
}

#[tokio::test]
async fn no_failed_request_while_weights_change_and_a_backend_drains() {
    let v1a = backend("v1").await;
    let v1b = backend("v1").await;
    let v2 = backend("v2").await;
    let cfg = ProxyConfig::weighted(
        any_port(),
        vec![
            ("v1".into(), w(100), vec![v1a.addr, v1b.addr]),
            ("v2".into(), w(0), vec![v2.addr]),
        ],
    );
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let failures = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (failures, done) = (failures.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            let c = client();
            for i in 0..125 {
                let path = if i % 10 == 0 { "/slow" } else { "/" };
                let req = http::Request::get(format!("http://{addr}{path}"))
                    .body(Empty::<Bytes>::new())
                    .expect("req");
                match c.request(req).await {
                    Ok(r) if r.status() == 200 => {
                        if r.into_body().collect().await.is_err() {
                            failures.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    _ => {
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let d = done.clone();
    eventually("load is running", Duration::from_secs(20), || {
        d.load(Ordering::SeqCst) >= 200
    })
    .await;
    for weight in [10, 25, 50] {
        proxy
            .handle
            .set_weights("app", &[("v1", w(100 - weight)), ("v2", w(weight))])
            .expect("weights");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let outcome = proxy
        .handle
        .drain_backend(v1a.addr, Duration::from_secs(10))
        .await
        .expect("drain");
    assert_eq!(
        outcome.in_flight_left, 0,
        "the drain finished its in-flight requests"
    );
    let hits_after_drain = v1a.hits.load(Ordering::SeqCst);
    v1a.kill();
    proxy
        .handle
        .set_weights("app", &[("v2", w(100))])
        .expect("weights");
    for w in workers {
        w.await.expect("worker");
    }
    assert_eq!(done.load(Ordering::SeqCst), 2000);
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "no client saw a failure"
    );
    assert_eq!(
        v1a.hits.load(Ordering::SeqCst),
        hits_after_drain,
        "a drained backend gets no new request"
    );
    assert!(v2.hits.load(Ordering::SeqCst) > 0);
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_and_stops_accepting() {
    let b = backend("b").await;
    let proxy = ferry_proxy::start(ProxyConfig::single(any_port(), b.addr))
        .await
        .expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let slow = tokio::spawn(async move { get(&client(), addr, "/slow", &[]).await });
    let bb = b.hits.clone();
    eventually(
        "the slow request reached the backend",
        Duration::from_secs(5),
        || bb.load(Ordering::SeqCst) == 1,
    )
    .await;
    proxy.handle.shutdown();
    let (status, _, body) = slow.await.expect("slow request");
    assert_eq!((status.as_u16(), body.as_str()), (200, "b"));
    proxy.wait().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}
