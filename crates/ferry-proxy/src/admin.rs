//! The admin API: JSON over HTTP/1.1, bearer token on every request, for status, routes, weights, drains and stats.
//!
//! Routes: `GET /status`, `GET /stats`, `GET /routes`, `PUT /routes`,
//! `PUT /services/{name}/weights` (`{"v1": 90, "v2": 10}`),
//! `PUT /services/{name}/maintenance` (`{"text": "back soon"}` or `{"text": null}`,
//! which also releases requests held by the service's `maintenance_hold`),
//! `POST /backends/drain` (`{"addr": "ip:port", "timeout_ms": 30000}`),
//! `GET /metrics` (Prometheus text). Errors are `{"error": "..."}`; an invalid
//! table is a 400 with the reason and changes nothing.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::body::ProxyBody;
use crate::config::RoutingConfig;
use crate::error::Error;
use crate::handle::ProxyHandle;
use crate::weight::Weight;

/// Largest accepted admin request body.
const MAX_BODY: usize = 1024 * 1024;

/// Serves the admin API on `listener` until the proxy shuts down.
pub(crate) async fn serve(listener: TcpListener, handle: ProxyHandle, token: Arc<str>) {
    let mut stop = handle.shutdown_signal();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let (handle, token) = (handle.clone(), Arc::clone(&token));
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let (handle, token) = (handle.clone(), Arc::clone(&token));
                async move { Ok::<_, Infallible>(answer(&handle, &token, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<ProxyBody> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(ProxyBody::text(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, msg: impl std::fmt::Display) -> Response<ProxyBody> {
    json(status, &serde_json::json!({ "error": msg.to_string() }))
}

/// Compares in time independent of where the strings differ.
fn token_matches(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn error_status(e: &Error) -> StatusCode {
    match e {
        Error::UnknownService(_) | Error::UnknownRevision { .. } | Error::UnknownBackend(_) => {
            StatusCode::NOT_FOUND
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

async fn read_json<T: for<'de> Deserialize<'de>>(
    req: Request<Incoming>,
) -> Result<T, Response<ProxyBody>> {
    let bytes: Bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("failed to read body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("invalid json: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainRequest {
    addr: SocketAddr,
    #[serde(default = "default_drain_ms")]
    timeout_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceRequest {
    /// The 503 text, or null to end maintenance.
    text: Option<String>,
}

fn default_drain_ms() -> u64 {
    30_000
}

async fn answer(handle: &ProxyHandle, token: &str, req: Request<Incoming>) -> Response<ProxyBody> {
    let authorized = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .is_some_and(|given| token_matches(given, token.as_bytes()));
    if !authorized {
        let mut r = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
        return r;
    }
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method().clone(), segments.as_slice()) {
        (Method::GET, ["status"]) => json(
            StatusCode::OK,
            &serde_json::json!({
                "listeners": handle.listen_addrs(),
                "routing": handle.routing(),
                "backends": handle.stats_snapshot().backends,
            }),
        ),
        (Method::GET, ["stats"]) => json(StatusCode::OK, &handle.stats_snapshot()),
        (Method::GET, ["routes"]) => json(StatusCode::OK, &handle.routing()),
        (Method::PUT, ["routes"]) => match read_json::<RoutingConfig>(req).await {
            Ok(routing) => match handle.replace_routing(routing) {
                Ok(()) => json(StatusCode::OK, &handle.routing()),
                Err(e) => error(error_status(&e), e),
            },
            Err(r) => r,
        },
        (Method::PUT, ["services", name, "weights"]) => {
            let name = (*name).to_owned();
            match read_json::<std::collections::BTreeMap<String, Weight>>(req).await {
                Ok(weights) => {
                    let pairs: Vec<(&str, Weight)> =
                        weights.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                    match handle.set_weights(&name, &pairs) {
                        Ok(()) => json(StatusCode::OK, &handle.routing().services.get(&name)),
                        Err(e) => error(error_status(&e), e),
                    }
                }
                Err(r) => r,
            }
        }
        (Method::PUT, ["services", name, "maintenance"]) => {
            let name = (*name).to_owned();
            match read_json::<MaintenanceRequest>(req).await {
                Ok(m) => match handle.set_maintenance(&name, m.text) {
                    Ok(()) => json(StatusCode::OK, &handle.routing().services.get(&name)),
                    Err(e) => error(error_status(&e), e),
                },
                Err(r) => r,
            }
        }
        (Method::POST, ["backends", "drain"]) => match read_json::<DrainRequest>(req).await {
            Ok(d) => match handle
                .drain_backend(d.addr, Duration::from_millis(d.timeout_ms))
                .await
            {
                Ok(outcome) => json(StatusCode::OK, &outcome),
                Err(e) => error(error_status(&e), e),
            },
            Err(r) => r,
        },
        (Method::GET, ["metrics"]) => {
            let mut r = Response::new(ProxyBody::text(metrics(handle)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        _ => error(
            StatusCode::NOT_FOUND,
            format!("no admin route {} {path}", req.method()),
        ),
    }
}

/// Prometheus text exposition of the live statistics.
pub(crate) fn metrics(handle: &ProxyHandle) -> String {
    let snap = handle.stats_snapshot();
    let mut out = String::new();
    out.push_str(
        "# HELP ferry_proxy_requests_total Responses by service, revision and status class.\n",
    );
    out.push_str("# TYPE ferry_proxy_requests_total counter\n");
    for r in &snap.revisions {
        for (class, n) in [
            ("2xx", r.status_2xx),
            ("3xx", r.status_3xx),
            ("4xx", r.status_4xx),
            ("5xx", r.status_5xx),
        ] {
            let _ = writeln!(
                out,
                "ferry_proxy_requests_total{{service=\"{}\",revision=\"{}\",code=\"{class}\"}} {n}",
                r.service, r.revision
            );
        }
    }
    out.push_str("# HELP ferry_proxy_backend_in_flight Requests in flight per backend.\n");
    out.push_str("# TYPE ferry_proxy_backend_in_flight gauge\n");
    for b in &snap.backends {
        let _ = writeln!(
            out,
            "ferry_proxy_backend_in_flight{{service=\"{}\",revision=\"{}\",backend=\"{}\"}} {}",
            b.service, b.revision, b.addr, b.in_flight
        );
    }
    out.push_str("# HELP ferry_proxy_backend_up Whether a backend takes new requests (healthy, not ejected, not draining).\n");
    out.push_str("# TYPE ferry_proxy_backend_up gauge\n");
    for b in &snap.backends {
        let up = u8::from(b.healthy && !b.ejected && !b.draining);
        let _ = writeln!(
            out,
            "ferry_proxy_backend_up{{service=\"{}\",revision=\"{}\",backend=\"{}\"}} {up}",
            b.service, b.revision, b.addr
        );
    }
    out
}
