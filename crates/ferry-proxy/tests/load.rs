//! The proxy issue's load cases, literally: exact weights over 20,000 requests, and a
//! backend killed under continuous GETs (no client-visible error, re-admitted after it
//! comes back). Real sockets, the proxy on its own serving threads.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{backend, backend_on, client, eventually, get};
use ferry_proxy::{HealthConfig, HumanDuration, ProxyConfig, Weight};

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

fn w(p: u32) -> Weight {
    Weight::new(p).expect("weight")
}

fn ms(n: u64) -> HumanDuration {
    Duration::from_millis(n).into()
}

/// Sends `total` GETs over `conns` keep-alive connections and counts the
/// revisions that answered (every answer must be a 200 whose body names the
/// revision in the header).
async fn split(addr: SocketAddr, total: u32, conns: u32) -> HashMap<String, u32> {
    let mut tasks = Vec::new();
    for _ in 0..conns {
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut counts: HashMap<String, u32> = HashMap::new();
            for _ in 0..total / conns {
                let (status, rev, body) = get(&c, addr, "/", &[]).await;
                assert_eq!(status, 200);
                let rev = rev.expect("x-ferry-revision");
                assert_eq!(rev, body, "the header names the revision that served");
                *counts.entry(rev).or_default() += 1;
            }
            counts
        }));
    }
    let mut counts: HashMap<String, u32> = HashMap::new();
    for t in tasks {
        for (k, v) in t.await.expect("client task") {
            *counts.entry(k).or_default() += v;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_90_10_and_1_99_hold_within_a_point_over_20000_requests() {
    let v1 = backend("v1").await;
    let v2 = backend("v2").await;
    let mut cfg = ProxyConfig::weighted(
        any_port(),
        vec![
            ("v1".into(), w(90), vec![v1.addr]),
            ("v2".into(), w(10), vec![v2.addr]),
        ],
    );
    cfg.threads = 2;
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    for (a, b) in [(90u32, 10u32), (1, 99)] {
        proxy
            .handle
            .set_weights("app", &[("v1", w(a)), ("v2", w(b))])
            .expect("weights");
        let counts = split(addr, 20_000, 8).await;
        let n1 = counts.get("v1").copied().unwrap_or(0);
        let n2 = counts.get("v2").copied().unwrap_or(0);
        assert_eq!(n1 + n2, 20_000);
        // Smooth weighted round robin is exact per 100 consecutive choices; the bound
        // the issue asks for is ±1 percentage point (±200 requests).
        let share = f64::from(n1) * 100.0 / 20_000.0;
        assert!(
            (share - f64::from(a)).abs() <= 1.0,
            "{a}/{b}: v1 got {share:.2} % ({n1} of 20000)"
        );
        eprintln!("{a}/{b}: v1 {n1}, v2 {n2}");
    }
    proxy.handle.shutdown();
    proxy.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_under_load_costs_no_request_and_is_readmitted() {
    let a = backend("a").await;
    let b = backend("b").await;
    let b_addr = b.addr;
    let mut cfg = ProxyConfig::single(any_port(), a.addr);
    let svc = cfg.services.get_mut("app").expect("app");
    svc.pools[0].backends.push(b_addr);
    svc.health = Some(HealthConfig {
        path: "/healthz".into(),
        interval: ms(100),
        timeout: ms(500),
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        startup_grace: ms(0),
        start_healthy: true,
    });
    // Ejections last a second here (30 s by default), so re-admission fits the test.
    svc.outlier.base_ejection = ms(1000);
    cfg.threads = 2;
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];

    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let served_by_b = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (stop, failed, ok, by_b) = (
            stop.clone(),
            failed.clone(),
            ok.clone(),
            served_by_b.clone(),
        );
        workers.push(tokio::spawn(async move {
            let c = client();
            while !stop.load(Ordering::Relaxed) {
                let req = http::Request::get(format!("http://{addr}/"))
                    .body(http_body_util::Empty::<bytes::Bytes>::new())
                    .expect("request");
                match c.request(req).await {
                    Ok(r) if r.status() == 200 => {
                        use http_body_util::BodyExt;
                        match r.into_body().collect().await {
                            Ok(body) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                if body.to_bytes() == "b" {
                                    by_b.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            Err(_) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    other => {
                        eprintln!("failed: {:?}", other.map(|r| r.status()));
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let o = ok.clone();
    eventually("load is running", Duration::from_secs(20), || {
        o.load(Ordering::Relaxed) >= 500
    })
    .await;
    assert!(served_by_b.load(Ordering::Relaxed) > 0, "b served before");

    // The crash: b stops accepting and every open connection to it is cut.
    b.kill();
    drop(b);
    let h = proxy.handle.clone();
    let unavailable = move |x: SocketAddr| {
        h.stats_snapshot()
            .backends
            .iter()
            .find(|s| s.addr == x)
            .is_some_and(|s| !s.healthy || s.ejected)
    };
    eventually("b is taken out", Duration::from_secs(10), || {
        unavailable(b_addr)
    })
    .await;
    let before = ok.load(Ordering::Relaxed);
    eventually("load goes on without b", Duration::from_secs(20), || {
        ok.load(Ordering::Relaxed) >= before + 500
    })
    .await;

    // It comes back on the same address: active checks re-admit it.
    let listener = tokio::net::TcpListener::bind(b_addr)
        .await
        .expect("rebind b's address");
    let _b_again = backend_on(listener, "b");
    let from_b = served_by_b.load(Ordering::Relaxed);
    eventually("b serves again", Duration::from_secs(20), || {
        served_by_b.load(Ordering::Relaxed) > from_b + 50
    })
    .await;

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker");
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("{ok} requests answered, {failed} failed");
    assert_eq!(failed, 0, "no client saw an error ({ok} answered)");
    proxy.handle.shutdown();
    proxy.wait().await;
}
