//! Routing, weights, stickiness, preview and header handling through real sockets.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;

use common::{backend, client, get};
use ferry_proxy::{PoolConfig, ProxyConfig, RouteConfig, ServiceConfig, Sticky, Weight};

fn w(p: u32) -> Weight {
    Weight::new(p).expect("weight")
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

#[tokio::test]
async fn split_20_80_is_exact_with_one_backend_each() {
    let v1 = backend("v1").await;
    let v2 = backend("v2").await;
    let cfg = ProxyConfig::weighted(
        any_port(),
        vec![
            ("v1".into(), w(20), vec![v1.addr]),
            ("v2".into(), w(80), vec![v2.addr]),
        ],
    );
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let c = client();
    let mut counts: HashMap<String, u32> = HashMap::new();
    for _ in 0..1000 {
        let (status, rev, body) = get(&c, addr, "/", &[]).await;
        assert_eq!(status, 200);
        let rev = rev.expect("x-ferry-revision");
        assert_eq!(
            rev, body,
            "the revision header names the backend that served"
        );
        *counts.entry(rev).or_default() += 1;
    }
    assert_eq!(counts["v1"], 200);
    assert_eq!(counts["v2"], 800);
    let stats = proxy.handle.stats_snapshot();
    assert_eq!(stats.revision("app", "v1").expect("v1").requests, 200);
    assert_eq!(stats.revision("app", "v2").expect("v2").status_2xx, 800);
    proxy.handle.shutdown();
    proxy.wait().await;
}

#[tokio::test]
async fn routes_by_exact_host_wildcard_and_prefix() {
    let api = backend("api").await;
    let web = backend("web").await;
    let shop = backend("shop").await;
    let mut cfg = ProxyConfig::single(any_port(), web.addr);
    cfg.services.insert(
        "api".into(),
        ServiceConfig::new(vec![PoolConfig {
            revision: "a1".into(),
            weight: w(100),
            backends: vec![api.addr],
        }]),
    );
    cfg.services.insert(
        "shop".into(),
        ServiceConfig::new(vec![PoolConfig {
            revision: "s1".into(),
            weight: w(100),
            backends: vec![shop.addr],
        }]),
    );
    cfg.routes.push(RouteConfig {
        hosts: vec![],
        path_prefix: "/api".into(),
        service: "api".into(),
    });
    cfg.routes.push(RouteConfig {
        hosts: vec!["*.shop.test".into(), "shop.test".into()],
        path_prefix: "/".into(),
        service: "shop".into(),
    });
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let c = client();
    assert_eq!(get(&c, addr, "/api/users", &[]).await.2, "api");
    assert_eq!(
        get(&c, addr, "/apix", &[]).await.2,
        "web",
        "prefixes match whole segments"
    );
    assert_eq!(
        get(&c, addr, "/", &[("host", "eu.shop.test:8080")]).await.2,
        "shop"
    );
    assert_eq!(get(&c, addr, "/", &[("host", "shop.test")]).await.2, "shop");
    assert_eq!(
        get(&c, addr, "/", &[("host", "notshop.test")]).await.2,
        "web"
    );
}

#[tokio::test]
async fn forwarded_headers_set_and_hop_by_hop_removed() {
    let b = backend("b").await;
    let proxy = ferry_proxy::start(ProxyConfig::single(any_port(), b.addr))
        .await
        .expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let (status, _, body) = get(
        &client(),
        addr,
        "/headers",
        &[
            ("host", "app.test"),
            ("x-forwarded-for", "10.9.8.7"),
            ("connection", "x-private"),
            ("x-private", "secret"),
            ("keep-alive", "timeout=5"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body.contains("x-forwarded-for: 10.9.8.7, 127.0.0.1\n"),
        "{body}"
    );
    assert!(body.contains("x-forwarded-proto: http\n"), "{body}");
    assert!(body.contains("x-forwarded-host: app.test\n"), "{body}");
    assert!(
        body.contains("host: app.test\n"),
        "the client's host is preserved: {body}"
    );
    assert!(body.contains("x-request-id: "), "{body}");
    assert!(
        !body.contains("x-private"),
        "headers named in connection are hop-by-hop: {body}"
    );
    assert!(!body.contains("keep-alive: timeout"), "{body}");
}

#[tokio::test]
async fn no_available_backend_gets_503_with_a_short_body() {
    let b = backend("b").await;
    let proxy = ferry_proxy::start(ProxyConfig::single(any_port(), b.addr))
        .await
        .expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let outcome = proxy
        .handle
        .drain_backend(b.addr, std::time::Duration::from_secs(5))
        .await
        .expect("drain");
    assert_eq!(outcome.in_flight_left, 0);
    let (status, _, body) = get(&client(), addr, "/", &[]).await;
    assert_eq!(status, 503);
    assert_eq!(body, "503 no healthy backend for service \"app\"\n");
}

#[tokio::test]
async fn unknown_host_and_path_gets_404() {
    let b = backend("b").await;
    let mut cfg = ProxyConfig::single(any_port(), b.addr);
    cfg.routes[0].hosts = vec!["only.test".into()];
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let (status, _, _) = get(
        &client(),
        proxy.handle.listen_addrs()[0],
        "/",
        &[("host", "other.test")],
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn sticky_clients_stay_on_the_canary_while_its_weight_rises() {
    let v1 = backend("v1").await;
    let v2 = backend("v2").await;
    let mut cfg = ProxyConfig::weighted(
        any_port(),
        vec![
            ("v1".into(), w(90), vec![v1.addr]),
            ("v2".into(), w(10), vec![v2.addr]),
        ],
    );
    cfg.services.get_mut("app").expect("app").sticky = Some(Sticky::Header("x-user".into()));
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let c = client();
    let users: Vec<String> = (0..300).map(|i| format!("user-{i}")).collect();
    let mut on_canary = std::collections::HashSet::new();
    for weight in [10, 20, 30, 40, 50] {
        proxy
            .handle
            .set_weights("app", &[("v1", w(100 - weight)), ("v2", w(weight))])
            .expect("weights");
        let mut now_canary = std::collections::HashSet::new();
        for u in &users {
            // Twice: the same user gets the same revision at the same weights.
            let first = get(&c, addr, "/", &[("x-user", u)])
                .await
                .1
                .expect("revision");
            let again = get(&c, addr, "/", &[("x-user", u)])
                .await
                .1
                .expect("revision");
            assert_eq!(first, again, "{u} flipped at weight {weight}");
            if first == "v2" {
                now_canary.insert(u.clone());
            }
        }
        assert!(
            on_canary.is_subset(&now_canary),
            "a canary user went back to stable at weight {weight}"
        );
        assert!(
            now_canary.len() > on_canary.len() || weight == 10,
            "raising the weight adds users"
        );
        on_canary = now_canary;
    }
    let share = on_canary.len() as f64 / users.len() as f64;
    assert!(
        (0.35..0.65).contains(&share),
        "about half the users at 50%: {share}"
    );
}

#[tokio::test]
async fn sticky_cookie_is_set_and_honoured() {
    let v1 = backend("v1").await;
    let v2 = backend("v2").await;
    let mut cfg = ProxyConfig::weighted(
        any_port(),
        vec![
            ("v1".into(), w(50), vec![v1.addr]),
            ("v2".into(), w(50), vec![v2.addr]),
        ],
    );
    cfg.services.get_mut("app").expect("app").sticky = Some(Sticky::Cookie("ferry_sticky".into()));
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let c = client();
    let resp = c
        .request(
            http::Request::get(format!("http://{addr}/"))
                .body(http_body_util::Empty::new())
                .expect("req"),
        )
        .await
        .expect("resp");
    let cookie = resp
        .headers()
        .get("set-cookie")
        .expect("sticky cookie set")
        .to_str()
        .expect("ascii")
        .to_owned();
    let first_rev = resp
        .headers()
        .get("x-ferry-revision")
        .expect("rev")
        .to_str()
        .expect("ascii")
        .to_owned();
    let pair = cookie.split(';').next().expect("name=value").to_owned();
    for _ in 0..20 {
        let (_, rev, _) = get(&c, addr, "/", &[("cookie", &pair)]).await;
        assert_eq!(rev.as_deref(), Some(first_rev.as_str()));
    }
}

#[tokio::test]
async fn preview_header_reaches_only_revisions_in_the_pool() {
    let v1 = backend("v1").await;
    let v2 = backend("v2").await;
    let mut cfg = ProxyConfig::weighted(
        any_port(),
        vec![
            ("v1".into(), w(100), vec![v1.addr]),
            ("v2".into(), w(0), vec![v2.addr]),
        ],
    );
    cfg.services.get_mut("app").expect("app").preview = Some("x-ferry-revision".into());
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let c = client();
    for _ in 0..5 {
        assert_eq!(
            get(&c, addr, "/", &[("x-ferry-revision", "v2")]).await.2,
            "v2"
        );
        assert_eq!(
            get(&c, addr, "/", &[("cookie", "x-ferry-revision=v2")])
                .await
                .2,
            "v2"
        );
        assert_eq!(
            get(&c, addr, "/", &[("x-ferry-revision", "v9")]).await.2,
            "v1",
            "unknown revisions get the weighted split"
        );
        assert_eq!(get(&c, addr, "/", &[]).await.2, "v1");
    }
    // Switched off: the header is ignored.
    proxy
        .handle
        .update(|r| {
            r.services.get_mut("app").expect("app").preview = None;
            Ok(())
        })
        .expect("update");
    assert_eq!(
        get(&c, addr, "/", &[("x-ferry-revision", "v2")]).await.2,
        "v1"
    );
}

#[tokio::test]
async fn invalid_table_is_rejected_and_live_one_stays() {
    let b = backend("b").await;
    let proxy = ferry_proxy::start(ProxyConfig::single(any_port(), b.addr))
        .await
        .expect("start");
    let before = proxy.handle.routing();
    let err = proxy
        .handle
        .set_weights("app", &[("default", w(60))])
        .expect_err("60 is not 100");
    assert!(err.to_string().contains("sum to 60"), "{err}");
    assert!(proxy.handle.set_weights("nope", &[]).is_err());
    assert_eq!(proxy.handle.routing(), before);
    assert_eq!(
        get(&client(), proxy.handle.listen_addrs()[0], "/", &[])
            .await
            .2,
        "b"
    );
}

#[tokio::test]
async fn keep_alive_pool_reuses_backend_connections() {
    let b = backend("b").await;
    let proxy = ferry_proxy::start(ProxyConfig::single(any_port(), b.addr))
        .await
        .expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let c = client();
    for path in ["/", "/headers", "/stream-free", "/"]
        .iter()
        .cycle()
        .take(100)
    {
        let (status, _, _) = get(&c, addr, path, &[]).await;
        assert_eq!(status, 200);
    }
    assert_eq!(
        b.conns.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "sequential requests share one backend connection"
    );
}

#[tokio::test]
async fn threaded_mode_splits_exactly_and_shuts_down() {
    let v1 = backend("v1").await;
    let v2 = backend("v2").await;
    let mut cfg = ProxyConfig::weighted(
        any_port(),
        vec![
            ("v1".into(), w(30), vec![v1.addr]),
            ("v2".into(), w(70), vec![v2.addr]),
        ],
    );
    cfg.threads = 2;
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    // Four clients, so connections land on both threads.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut v1 = 0u32;
            for _ in 0..250 {
                let (status, rev, _) = get(&c, addr, "/", &[]).await;
                assert_eq!(status, 200);
                v1 += u32::from(rev.as_deref() == Some("v1"));
            }
            v1
        }));
    }
    let mut total_v1 = 0;
    for t in tasks {
        total_v1 += t.await.expect("client");
    }
    assert_eq!(
        total_v1, 300,
        "30% of 1000 requests, exactly, across threads"
    );
    proxy.handle.shutdown();
    proxy.wait().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "every thread closed its listener"
    );
}

#[tokio::test]
async fn a_restarted_proxy_serves_the_last_table_it_was_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v1 = backend("v1").await;
    let v2 = backend("v2").await;
    let mut cfg = ProxyConfig::weighted(
        any_port(),
        vec![
            ("v1".into(), w(100), vec![v1.addr]),
            ("v2".into(), w(0), vec![v2.addr]),
        ],
    );
    cfg.state_file = Some(dir.path().join("routing.json"));
    let proxy = ferry_proxy::start(cfg.clone()).await.expect("start");
    proxy
        .handle
        .set_weights("app", &[("v2", w(100))])
        .expect("weights");
    proxy.handle.shutdown();
    proxy.wait().await;

    // Same file config (v1 at 100), but the saved table wins.
    let proxy = ferry_proxy::start(cfg).await.expect("restart");
    let addr = proxy.handle.listen_addrs()[0];
    assert_eq!(get(&client(), addr, "/", &[]).await.2, "v2");
}

#[tokio::test]
async fn maintenance_mode_answers_503_without_asking_backends() {
    let b = backend("b").await;
    let proxy = ferry_proxy::start(ProxyConfig::single(any_port(), b.addr))
        .await
        .expect("start");
    let addr = proxy.handle.listen_addrs()[0];
    let c = client();
    proxy
        .handle
        .set_maintenance("app", Some("back in 5 minutes".into()))
        .expect("on");
    let (status, _, body) = get(&c, addr, "/", &[]).await;
    assert_eq!(
        (status.as_u16(), body.as_str()),
        (503, "back in 5 minutes\n")
    );
    assert_eq!(b.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    proxy.handle.set_maintenance("app", None).expect("off");
    assert_eq!(get(&c, addr, "/", &[]).await.2, "b");
}

/// Collects formatted log output.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_request_is_an_access_log_event() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    // The test runtime is single-threaded, so the proxy's tasks see this default.
    let _guard = tracing::subscriber::set_default(subscriber);
    let b = backend("b").await;
    let proxy = ferry_proxy::start(ProxyConfig::single(any_port(), b.addr))
        .await
        .expect("start");
    let (status, _, _) = get(&client(), proxy.handle.listen_addrs()[0], "/some/path", &[]).await;
    assert_eq!(status, 200);
    let log = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    let line = log
        .lines()
        .find(|l| l.contains("ferry_proxy::access"))
        .unwrap_or_else(|| panic!("no access event in {log}"));
    for field in [
        "method=GET",
        "path=\"/some/path\"",
        "status=200",
        "revision=\"default\"",
        "client=127.0.0.1",
    ] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
}
