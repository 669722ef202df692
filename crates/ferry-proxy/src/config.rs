//! The proxy's configuration: listeners, TLS, timeouts and the routing table, loadable from TOML.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;
use crate::error::Error;
use crate::weight::Weight;

/// Everything the proxy needs to run: where to listen and how to route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Client-facing listeners.
    pub listeners: Vec<ListenerConfig>,
    /// Serving threads, each with its own single-threaded runtime and its own
    /// SO_REUSEPORT socket per listener; 0 serves on the caller's tokio runtime.
    #[serde(default)]
    pub threads: usize,
    /// Certificates served on TLS listeners, chosen by SNI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateConfig>,
    /// The admin API listener (JSON, bearer token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminConfig>,
    /// Timeouts for clients and upstreams.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// A file where every applied routing table is saved (JSON, written atomically);
    /// when it exists at start, it replaces the file's `routes` and `services`, so a
    /// restarted proxy serves the last table its controller set before it accepts traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_file: Option<PathBuf>,
    /// Size limits on requests.
    #[serde(default)]
    pub limits: Limits,
    /// Routes from host and path prefix to a service, tried most specific first.
    pub routes: Vec<RouteConfig>,
    /// Services by name.
    pub services: BTreeMap<String, ServiceConfig>,
    /// Bodies of the responses the proxy generates itself, by status code
    /// (`"503" = "/etc/ferry/503.html"`; see [`ERROR_PAGE_STATUSES`]). Read when the
    /// config is loaded and when the proxy starts, not when the routing table changes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_pages: BTreeMap<String, PathBuf>,
}

/// The statuses of proxy-generated responses whose body `error_pages` may replace.
pub const ERROR_PAGE_STATUSES: [u16; 7] = [404, 413, 429, 431, 502, 503, 504];

/// One client-facing listener.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Address to bind, e.g. `0.0.0.0:443`; port 0 picks a free port.
    pub addr: SocketAddr,
    /// Terminate TLS here with the `certificates` (HTTP/2 and HTTP/1.1 by ALPN).
    #[serde(default)]
    pub tls: bool,
    /// Answer every request with a permanent redirect to `https://` on this port
    /// instead of proxying (for a plain listener next to a TLS one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_https_port: Option<u16>,
}

/// A certificate and key (PEM files) for some hosts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// Host names (exact or `*.example.com`) this certificate serves; the first
    /// certificate is also the default when the client sends no matching SNI.
    pub hosts: Vec<String>,
    /// PEM file with the certificate chain.
    pub cert: PathBuf,
    /// PEM file with the private key.
    pub key: PathBuf,
}

/// The admin API listener.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address to bind (keep it on loopback).
    pub addr: SocketAddr,
    /// Bearer token required on every request.
    pub token: String,
}

/// Timeouts (human-readable durations).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Connecting to a backend.
    pub connect: HumanDuration,
    /// Reading a client's request headers (slowloris protection).
    pub header_read: HumanDuration,
    /// Waiting for a backend's response headers.
    pub upstream_response: HumanDuration,
    /// Keeping idle backend connections in the pool.
    pub idle: HumanDuration,
    /// How long graceful shutdown waits for in-flight requests.
    pub shutdown: HumanDuration,
    /// After a socket handover, how long an idle keep-alive client connection of the
    /// old process waits for its next request (answered with `connection: close`)
    /// before it is closed.
    pub drain_idle: HumanDuration,
    /// When a backend drains or leaves the table, how long its long-lived streams
    /// (WebSocket and other upgraded connections, `text/event-stream` responses)
    /// may go on before the proxy ends them: WebSockets with Close frames (1001),
    /// event streams after a whole event. Counted from the start of the drain.
    pub stream_drain: HumanDuration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3).into(),
            header_read: Duration::from_secs(10).into(),
            upstream_response: Duration::from_secs(60).into(),
            idle: Duration::from_secs(60).into(),
            shutdown: Duration::from_secs(30).into(),
            drain_idle: Duration::from_secs(2).into(),
            stream_drain: Duration::from_secs(5).into(),
        }
    }
}

/// Request size limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request head (request line and headers) in bytes; larger gets 431.
    pub max_header_bytes: usize,
    /// Largest request body in bytes: a larger `content-length` gets 413 at once, a
    /// chunked body 413 when it passes the limit on its way (the connection closes).
    pub max_body_bytes: u64,
    /// Per-client-IP rate limit; over it, 429 with `retry-after`. Off when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitConfig>,
    /// Add HSTS (on TLS), `x-content-type-options`, `x-frame-options` and
    /// `referrer-policy` to responses that lack them.
    pub security_headers: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 * 1024,
            max_body_bytes: 100 * 1024 * 1024,
            rate_limit: None,
            security_headers: false,
        }
    }
}

/// A token bucket per client IP: `requests` per `per`, bursts up to `requests`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests allowed per period (and the burst size).
    pub requests: u32,
    /// The period.
    pub per: HumanDuration,
}

/// A route: requests whose host and path match go to `service`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Hosts matched exactly or, as `*.example.com`, any subdomain; empty matches any host.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Path prefix, matched on segment boundaries (`/api` matches `/api` and `/api/x`, not `/apix`).
    #[serde(default = "default_prefix")]
    pub path_prefix: String,
    /// The service that serves the route.
    pub service: String,
}

fn default_prefix() -> String {
    "/".to_owned()
}

/// A service: revision pools with weights summing to 100.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Revision pools; weights must sum to 100.
    pub pools: Vec<PoolConfig>,
    /// How to choose a backend inside a pool.
    #[serde(default)]
    pub balance: Balance,
    /// Keep a client on one revision while weights change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<Sticky>,
    /// Preview routing: a request with this header or cookie naming a revision of the
    /// service goes to that revision (even at weight 0). Off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    /// Active health checks; without them backends are healthy unless ejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthConfig>,
    /// Passive outlier ejection.
    #[serde(default)]
    pub outlier: OutlierConfig,
    /// Retries on another backend.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Maintenance mode: every request gets 503 with this text, no backend is asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<String>,
    /// While `maintenance` is set, hold new requests (no backend chosen) for up to
    /// this long instead of answering 503 at once: when a table without
    /// `maintenance` for the service is applied they are routed and forwarded by
    /// it; when the time passes (or the proxy shuts down) they get the 503.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_hold: Option<HumanDuration>,
    /// Slow start: a backend added to a running table takes a share of its pool's
    /// traffic that grows from small to full over this window (Envoy's slow start).
    /// Off when absent; backends of the first table start at full share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_start: Option<HumanDuration>,
    /// The protocol spoken to the service's backends.
    #[serde(default, skip_serializing_if = "BackendProtocol::is_default")]
    pub backend_protocol: BackendProtocol,
}

/// The protocol spoken to backends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendProtocol {
    /// HTTP/1.1 over pooled keep-alive connections.
    #[default]
    Http1,
    /// HTTP/2 over cleartext TCP with prior knowledge (gRPC-style backends): one
    /// multiplexed connection per serving thread and backend.
    H2c,
}

impl BackendProtocol {
    fn is_default(&self) -> bool {
        *self == BackendProtocol::Http1
    }
}

/// One revision's pool of backends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// The revision name reported in `x-ferry-revision` and in statistics.
    pub revision: String,
    /// Share of the service's traffic in percent.
    pub weight: Weight,
    /// Backend addresses (`ip:port`).
    pub backends: Vec<SocketAddr>,
}

/// Backend choice inside a pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Balance {
    /// Each backend in turn.
    #[default]
    RoundRobin,
    /// The backend with the fewest requests in flight.
    LeastConn,
    /// Consistent (rendezvous) hash of the client IP.
    HashClientIp,
    /// Consistent (rendezvous) hash of a request header (round robin when absent).
    HashHeader(String),
}

/// Which key keeps a client on one revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Sticky {
    /// A cookie of this name; the proxy sets it with a random key when absent.
    Cookie(String),
    /// A request header of this name (weighted round robin when absent).
    Header(String),
    /// The client IP address.
    ClientIp,
}

/// Active health checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Path requested with GET; 2xx and 3xx count as passing.
    pub path: String,
    /// Time between checks.
    #[serde(default = "default_interval")]
    pub interval: HumanDuration,
    /// Time a check may take.
    #[serde(default = "default_check_timeout")]
    pub timeout: HumanDuration,
    /// Consecutive passes that make an unhealthy backend healthy.
    #[serde(default = "default_healthy_threshold")]
    pub healthy_threshold: u32,
    /// Consecutive failures that make a healthy backend unhealthy.
    #[serde(default = "default_unhealthy_threshold")]
    pub unhealthy_threshold: u32,
    /// After a backend is added, failed checks are not counted for this long.
    #[serde(default = "default_grace")]
    pub startup_grace: HumanDuration,
    /// Whether a newly added backend takes traffic before its first passing checks.
    #[serde(default = "default_true")]
    pub start_healthy: bool,
}

fn default_interval() -> HumanDuration {
    Duration::from_secs(5).into()
}
fn default_check_timeout() -> HumanDuration {
    Duration::from_secs(2).into()
}
fn default_healthy_threshold() -> u32 {
    2
}
fn default_unhealthy_threshold() -> u32 {
    3
}
fn default_grace() -> HumanDuration {
    Duration::ZERO.into()
}
fn default_true() -> bool {
    true
}

/// Passive outlier ejection, in Envoy's manner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutlierConfig {
    /// Consecutive 5xx responses or connect failures that eject a backend (0 disables).
    pub consecutive_failures: u32,
    /// Ejection time; the n-th ejection of a backend lasts `base_ejection × n`.
    pub base_ejection: HumanDuration,
    /// Upper bound of one ejection.
    pub max_ejection: HumanDuration,
    /// Largest share of a pool (percent) ejected at once; the last available
    /// backend of a pool is never ejected.
    pub max_ejected_percent: u32,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection: Duration::from_secs(30).into(),
            max_ejection: Duration::from_secs(300).into(),
            max_ejected_percent: 50,
        }
    }
}

/// Retries of requests that failed before reaching a backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Total attempts per request, the first included.
    pub attempts: u32,
    /// Retry budget: each request earns this share (percent) of a retry, each retry
    /// spends one (3 in progress are always allowed), so retries stay under this
    /// share of requests over time and cannot snowball into an overload when a
    /// whole revision fails, while a burst (a backend dying with requests in
    /// flight) is retried from what recent traffic earned (at most 1,000 at once).
    pub budget_percent: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            attempts: 3,
            budget_percent: 20,
        }
    }
}

/// The dynamic part of the configuration: routes and services.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Routes, tried most specific first.
    pub routes: Vec<RouteConfig>,
    /// Services by name.
    pub services: BTreeMap<String, ServiceConfig>,
}

impl ProxyConfig {
    /// Parses a routes file (see `docs/proxy.md`); the table is validated too.
    pub fn from_toml_str(s: &str) -> Result<Self, Error> {
        let config: ProxyConfig = toml::from_str(s).map_err(Error::ConfigParse)?;
        config.routing().validate()?;
        crate::error_page::ErrorPages::load(&config.error_pages)?;
        if config.admin.as_ref().is_some_and(|a| a.token.len() < 16) {
            return Err(Error::InvalidTable(
                "admin token must be at least 16 characters".to_owned(),
            ));
        }
        Ok(config)
    }

    /// One plain listener forwarding everything to one upstream.
    pub fn single(listen: SocketAddr, upstream: SocketAddr) -> Self {
        Self::weighted(
            listen,
            vec![("default".to_owned(), Weight::FULL, vec![upstream])],
        )
    }

    /// One plain listener forwarding everything to one service split between
    /// revisions: `(revision, weight, backends)`.
    pub fn weighted(listen: SocketAddr, pools: Vec<(String, Weight, Vec<SocketAddr>)>) -> Self {
        let service = ServiceConfig::new(
            pools
                .into_iter()
                .map(|(revision, weight, backends)| PoolConfig {
                    revision,
                    weight,
                    backends,
                })
                .collect(),
        );
        Self {
            listeners: vec![ListenerConfig {
                addr: listen,
                tls: false,
                redirect_https_port: None,
            }],
            threads: 0,
            state_file: None,
            certificates: Vec::new(),
            admin: None,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            routes: vec![RouteConfig {
                hosts: Vec::new(),
                path_prefix: "/".to_owned(),
                service: "app".to_owned(),
            }],
            services: BTreeMap::from([("app".to_owned(), service)]),
            error_pages: BTreeMap::new(),
        }
    }

    /// The quick mode of `ferry proxy --listen ADDR --to [REVISION@WEIGHT=]ADDR[,ADDR...]`:
    /// one service, one pool per target. Revisions default to `r1`, `r2`...;
    /// targets without a weight share what the weighted ones leave (the first
    /// ones take the rounding remainder).
    pub fn quick(listen: SocketAddr, targets: &[String]) -> Result<Self, Error> {
        if targets.is_empty() {
            return Err(Error::InvalidTable(
                "at least one --to target is needed".into(),
            ));
        }
        let mut parsed = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            let bad = |why: &str| {
                Error::InvalidTable(format!(
                    "target {t:?}: {why} (expected [REVISION@WEIGHT=]ADDR[,ADDR...], e.g. v2@10=127.0.0.1:9002)"
                ))
            };
            let (head, addrs) = match t.split_once('=') {
                Some((h, a)) => (Some(h), a),
                None => (None, t.as_str()),
            };
            let (revision, weight) = match head {
                None => (format!("r{}", i + 1), None),
                Some(h) => match h.split_once('@') {
                    Some((r, w)) => {
                        let w: u32 = w.parse().map_err(|_| bad("weight is not a number"))?;
                        let w = Weight::new(w).ok_or_else(|| bad("weight is above 100"))?;
                        (r.to_owned(), Some(w))
                    }
                    None => (h.to_owned(), None),
                },
            };
            let backends = addrs
                .split(',')
                .map(|a| {
                    a.trim()
                        .parse::<SocketAddr>()
                        .map_err(|_| bad(&format!("{a:?} is not ip:port")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            parsed.push((revision, weight, backends));
        }
        let fixed: u32 = parsed.iter().filter_map(|p| p.1).map(Weight::get).sum();
        let open =
            u32::try_from(parsed.iter().filter(|p| p.1.is_none()).count()).unwrap_or(u32::MAX);
        let rest = 100u32.saturating_sub(fixed);
        if let (Some(share), Some(mut extra)) = (rest.checked_div(open), rest.checked_rem(open)) {
            for p in parsed.iter_mut().filter(|p| p.1.is_none()) {
                let w = share + u32::from(extra > 0);
                extra = extra.saturating_sub(1);
                p.1 = Weight::new(w);
            }
        }
        let pools = parsed
            .into_iter()
            .map(|(r, w, b)| (r, w.unwrap_or(Weight::ZERO), b))
            .collect();
        let config = Self::weighted(listen, pools);
        config.routing().validate()?;
        Ok(config)
    }

    /// The routing table part.
    pub fn routing(&self) -> RoutingConfig {
        RoutingConfig {
            routes: self.routes.clone(),
            services: self.services.clone(),
        }
    }
}

impl ServiceConfig {
    /// A service with these pools and default balancing, health and retries.
    pub fn new(pools: Vec<PoolConfig>) -> Self {
        Self {
            pools,
            balance: Balance::default(),
            sticky: None,
            preview: None,
            health: None,
            outlier: OutlierConfig::default(),
            retry: RetryConfig::default(),
            maintenance: None,
            maintenance_hold: None,
            slow_start: None,
            backend_protocol: BackendProtocol::default(),
        }
    }
}

impl RoutingConfig {
    /// Checks every invariant of a routing table, reporting all problems at once.
    pub fn validate(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        for (i, route) in self.routes.iter().enumerate() {
            if !self.services.contains_key(&route.service) {
                problems.push(format!(
                    "route {i} names unknown service {:?}",
                    route.service
                ));
            }
            if !route.path_prefix.starts_with('/') {
                problems.push(format!(
                    "route {i} path_prefix {:?} must start with '/'",
                    route.path_prefix
                ));
            }
            for host in &route.hosts {
                let bare = host.strip_prefix("*.").unwrap_or(host);
                if bare.is_empty() || bare.contains(['*', '/', ' ', ':']) {
                    problems.push(format!(
                        "route {i} host {host:?} must be a name or *.suffix without port"
                    ));
                }
            }
        }
        let mut seen_backends = BTreeMap::new();
        for (name, service) in &self.services {
            if service.pools.is_empty() {
                problems.push(format!("service {name:?} has no pools"));
            }
            let sum: u32 = service.pools.iter().map(|p| p.weight.get()).sum();
            if !service.pools.is_empty() && sum != 100 {
                problems.push(format!("service {name:?} weights sum to {sum}, not 100"));
            }
            let mut revisions = std::collections::BTreeSet::new();
            for pool in &service.pools {
                if pool.revision.is_empty() || !pool.revision.chars().all(|c| c.is_ascii_graphic())
                {
                    problems.push(format!(
                        "service {name:?} has a revision name {:?} that is empty or not printable ASCII",
                        pool.revision
                    ));
                }
                if !revisions.insert(pool.revision.as_str()) {
                    problems.push(format!(
                        "service {name:?} lists revision {:?} twice",
                        pool.revision
                    ));
                }
                for b in &pool.backends {
                    if let Some(other) =
                        seen_backends.insert(*b, (name.clone(), pool.revision.clone()))
                    {
                        problems.push(format!(
                            "backend {b} appears twice (service {:?} revision {:?} and service {name:?} revision {:?})",
                            other.0, other.1, pool.revision
                        ));
                    }
                }
            }
            if let Some(h) = &service.health {
                if !h.path.starts_with('/') {
                    problems.push(format!("service {name:?} health path must start with '/'"));
                }
                if h.healthy_threshold == 0 || h.unhealthy_threshold == 0 {
                    problems.push(format!(
                        "service {name:?} health thresholds must be at least 1"
                    ));
                }
                if h.interval.0.is_zero() || h.timeout.0.is_zero() {
                    problems.push(format!(
                        "service {name:?} health interval and timeout must be positive"
                    ));
                }
            }
            if service.outlier.max_ejected_percent > 100 {
                problems.push(format!("service {name:?} max_ejected_percent is above 100"));
            }
            if service.retry.attempts == 0 {
                problems.push(format!(
                    "service {name:?} retry attempts must be at least 1"
                ));
            }
            if let Some(p) = &service.preview
                && http::HeaderName::from_bytes(p.as_bytes()).is_err()
            {
                problems.push(format!(
                    "service {name:?} preview {p:?} is not a valid header name"
                ));
            }
            let header = match &service.sticky {
                Some(Sticky::Header(h)) => Some(h),
                _ => None,
            };
            let hash_header = match &service.balance {
                Balance::HashHeader(h) => Some(h),
                _ => None,
            };
            for h in header.into_iter().chain(hash_header) {
                if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    problems.push(format!(
                        "service {name:?} header {h:?} is not a valid header name"
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidTable(problems.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_weights_not_summing_to_100_and_names_all_problems() {
        let mut c = ProxyConfig::single(
            "127.0.0.1:1".parse().expect("addr"),
            "127.0.0.1:2".parse().expect("addr"),
        );
        c.services.get_mut("app").expect("app").pools[0].weight = Weight::new(90).expect("weight");
        c.routes[0].service = "nope".into();
        let err = c.routing().validate().expect_err("invalid").to_string();
        assert!(err.contains("sum to 90"), "{err}");
        assert!(err.contains("unknown service \"nope\""), "{err}");
    }

    #[test]
    fn quick_targets_parse_and_share_the_rest() {
        let listen = "127.0.0.1:8080".parse().expect("addr");
        let c = ProxyConfig::quick(
            listen,
            &[
                "v1@90=127.0.0.1:9001,127.0.0.1:9003".into(),
                "v2@10=127.0.0.1:9002".into(),
            ],
        )
        .expect("valid");
        let pools = &c.services["app"].pools;
        assert_eq!(
            (
                pools[0].revision.as_str(),
                pools[0].weight.get(),
                pools[0].backends.len()
            ),
            ("v1", 90, 2)
        );
        assert_eq!(
            (pools[1].revision.as_str(), pools[1].weight.get()),
            ("v2", 10)
        );
        let c = ProxyConfig::quick(
            listen,
            &[
                "127.0.0.1:1".into(),
                "b=127.0.0.1:2".into(),
                "127.0.0.1:3".into(),
            ],
        )
        .expect("valid");
        let w: Vec<u32> = c.services["app"]
            .pools
            .iter()
            .map(|p| p.weight.get())
            .collect();
        assert_eq!(w, vec![34, 33, 33]);
        assert_eq!(c.services["app"].pools[1].revision, "b");
        for bad in [
            "v1@x=127.0.0.1:1",
            "v1@101=127.0.0.1:1",
            "v1=nowhere",
            "v1@60=127.0.0.1:1",
        ] {
            assert!(ProxyConfig::quick(listen, &[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err =
            ProxyConfig::from_toml_str("listeners = []\nroutes = []\nservices = {}\nbogus = 1\n")
                .expect_err("unknown key");
        assert!(format!("{:?}", err).contains("bogus"));
    }
}
