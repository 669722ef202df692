//! The admin API: bearer token, table replacement with validation, weights, drain, stats and metrics.

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::{backend, client, get};
use ferry_proxy::{AdminConfig, ProxyConfig, Weight};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const TOKEN: &str = "test-token-0123456789";

async fn call(
    admin: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value, String) {
    let c: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://{admin}{path}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = c
        .request(
            req.body(Full::new(Bytes::from(body.to_owned())))
                .expect("req"),
        )
        .await
        .expect("resp");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        text,
    )
}

#[tokio::test]
async fn admin_api_requires_the_token_and_validates_tables() {
    let v1 = backend("v1").await;
    let v2 = backend("v2").await;
    let mut cfg = ProxyConfig::weighted(
        "127.0.0.1:0".parse().expect("addr"),
        vec![
            ("v1".into(), Weight::FULL, vec![v1.addr]),
            ("v2".into(), Weight::ZERO, vec![v2.addr]),
        ],
    );
    cfg.admin = Some(AdminConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        token: TOKEN.into(),
    });
    let proxy = ferry_proxy::start(cfg).await.expect("start");
    let admin = proxy.handle.admin_addr().expect("admin listener");
    let addr = proxy.handle.listen_addrs()[0];
    let before = proxy.handle.routing();

    let weights = r#"{"v1": 0, "v2": 100}"#;
    for token in [None, Some("wrong-token-0123456789")] {
        let (status, body, _) = call(admin, "PUT", "/services/app/weights", token, weights).await;
        assert_eq!(status, 401);
        assert_eq!(body["error"], "missing or wrong bearer token");
        let (status, _, _) = call(admin, "GET", "/stats", token, "").await;
        assert_eq!(status, 401);
    }
    assert_eq!(
        proxy.handle.routing(),
        before,
        "nothing changed without the token"
    );

    // An invalid table: weights summing to 60, and a route to an unknown service.
    let mut bad = serde_json::to_value(&before).expect("json");
    bad["services"]["app"]["pools"][0]["weight"] = 60.into();
    bad["routes"][0]["service"] = "ghost".into();
    let (status, body, _) = call(admin, "PUT", "/routes", Some(TOKEN), &bad.to_string()).await;
    assert_eq!(status, 400);
    let reason = body["error"].as_str().expect("reason");
    assert!(
        reason.contains("sum to 60") && reason.contains("ghost"),
        "{reason}"
    );
    assert_eq!(proxy.handle.routing(), before, "the live table stays");
    let (status, _, _) = call(admin, "PUT", "/routes", Some(TOKEN), "{not json").await;
    assert_eq!(status, 400);
    let (status, _, _) = call(
        admin,
        "PUT",
        "/services/app/weights",
        Some(TOKEN),
        r#"{"v3": 100}"#,
    )
    .await;
    assert_eq!(status, 404);

    let (status, _, _) = call(admin, "PUT", "/services/app/weights", Some(TOKEN), weights).await;
    assert_eq!(status, 200);
    assert_eq!(get(&client(), addr, "/", &[]).await.2, "v2");

    let (status, stats, _) = call(admin, "GET", "/stats", Some(TOKEN), "").await;
    assert_eq!(status, 200);
    let v2_stats = stats["revisions"]
        .as_array()
        .expect("revisions")
        .iter()
        .find(|r| r["revision"] == "v2")
        .expect("v2");
    assert_eq!(v2_stats["requests"], 1);
    let (status, _, metrics) = call(admin, "GET", "/metrics", Some(TOKEN), "").await;
    assert_eq!(status, 200);
    assert!(
        metrics
            .contains("ferry_proxy_requests_total{service=\"app\",revision=\"v2\",code=\"2xx\"} 1"),
        "{metrics}"
    );

    let (status, _, _) = call(
        admin,
        "PUT",
        "/services/app/maintenance",
        Some(TOKEN),
        r#"{"text": "paused"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(get(&client(), addr, "/", &[]).await.0, 503);
    let (status, _, _) = call(
        admin,
        "PUT",
        "/services/app/maintenance",
        Some(TOKEN),
        r#"{"text": null}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(get(&client(), addr, "/", &[]).await.2, "v2");

    let drain = format!(r#"{{"addr": "{}", "timeout_ms": 5000}}"#, v1.addr);
    let (status, outcome, _) = call(admin, "POST", "/backends/drain", Some(TOKEN), &drain).await;
    assert_eq!(status, 200);
    assert_eq!(outcome["in_flight_left"], 0);
    let (_, routes, _) = call(admin, "GET", "/routes", Some(TOKEN), "").await;
    assert_eq!(
        routes["services"]["app"]["pools"][0]["backends"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn documented_routes_file_parses_and_runs() {
    let doc = include_str!("../../../docs/proxy.md");
    let start = doc
        .find("```toml\n")
        .expect("a toml example in docs/proxy.md")
        + "```toml\n".len();
    let end = start + doc[start..].find("```").expect("closing fence");
    let mut cfg =
        ProxyConfig::from_toml_str(&doc[start..end]).expect("the documented example is valid");
    // Same file, free ports, no saved state, and no TLS material on disk here.
    cfg.state_file = None;
    cfg.listeners.retain(|l| !l.tls);
    for l in &mut cfg.listeners {
        l.addr = "127.0.0.1:0".parse().expect("addr");
        l.redirect_https_port = None;
    }
    if let Some(a) = &mut cfg.admin {
        a.addr = "127.0.0.1:0".parse().expect("addr");
    }
    let proxy = ferry_proxy::start(cfg)
        .await
        .expect("start the documented example");
    // Its backends are not running here: the proxy answers for them.
    let (status, _, _) = get(
        &client(),
        proxy.handle.listen_addrs()[0],
        "/",
        &[("host", "app.example.com")],
    )
    .await;
    assert!(status == 502 || status == 503, "{status}");
}
