//! The routing table: an immutable snapshot compiled from a [`RoutingConfig`], and request → backend selection.
//!
//! A table is compiled (and so validated) before it is swapped in; backends
//! and per-revision statistics live in a registry outside the table so their
//! health, ejection, in-flight counts and numbers survive swaps.

use std::collections::HashMap;
use std::hash::{BuildHasher, DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, HeaderName};

use crate::backend::Backend;
use crate::config::{Balance, RoutingConfig, ServiceConfig, Sticky};
use crate::error::Error;
use crate::stats::RevisionStats;
use crate::weight::SmoothWeighted;

/// Resolution of sticky buckets: weights are percent, so 100 buckets per point.
const BUCKETS: u64 = 10_000;

/// Backends and statistics that outlive any one table.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub backends: HashMap<SocketAddr, Arc<Backend>>,
    pub stats: HashMap<(String, String), Arc<RevisionStats>>,
}

/// Settings needed to create backends.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BackendSettings {
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    /// Serving threads (each gets its own idle connections per backend).
    pub threads: usize,
}

#[derive(Debug)]
enum HostMatch {
    Any,
    Exact(String),
    /// `*.example.com` stored as `.example.com`.
    Suffix(String),
}

#[derive(Debug)]
struct Route {
    host: HostMatch,
    prefix: String,
    service: usize,
}

/// One compiled, immutable routing table.
#[derive(Debug)]
pub(crate) struct RouteTable {
    pub config: RoutingConfig,
    routes: Vec<Route>,
    pub services: Vec<Service>,
}

/// A compiled service.
#[derive(Debug)]
pub(crate) struct Service {
    pub name: String,
    pub pools: Vec<Pool>,
    pub config: ServiceConfig,
    slow_start: Option<Duration>,
    swrr: Mutex<SmoothWeighted>,
    preview: Option<HeaderName>,
    sticky_header: Option<HeaderName>,
    hash_header: Option<HeaderName>,
}

/// A compiled revision pool.
#[derive(Debug)]
pub(crate) struct Pool {
    pub revision: String,
    pub revision_header: http::HeaderValue,
    pub weight: u32,
    pub backends: Vec<Arc<Backend>>,
    pub stats: Arc<RevisionStats>,
    rr: AtomicUsize,
}

/// What a request offers for choosing its revision and backend.
#[derive(Debug)]
pub(crate) struct Client<'a> {
    pub ip: IpAddr,
    pub headers: Headers<'a>,
}

/// A request's headers as either HTTP/1 path holds them: hyper's map, or the
/// fast path's parsed slice (see `h1`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Headers<'a> {
    Map(&'a HeaderMap),
    Raw(&'a [httparse::Header<'a>]),
}

impl<'a> Headers<'a> {
    /// The first value of header `name`.
    pub fn get(self, name: &HeaderName) -> Option<&'a [u8]> {
        match self {
            Headers::Map(m) => m.get(name).map(http::HeaderValue::as_bytes),
            Headers::Raw(r) => r
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name.as_str()))
                .map(|h| h.value),
        }
    }

    /// The value of cookie `name` from the request's `cookie` headers.
    pub fn cookie(self, name: &str) -> Option<&'a str> {
        let find = |v: &'a [u8]| {
            std::str::from_utf8(v)
                .ok()?
                .split(';')
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.trim())
        };
        match self {
            Headers::Map(m) => m
                .get_all(http::header::COOKIE)
                .iter()
                .find_map(|v| find(v.as_bytes())),
            Headers::Raw(r) => r
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
                .find_map(|h| find(h.value)),
        }
    }
}

/// The choice of a pool for a request.
#[derive(Debug)]
pub(crate) struct PoolChoice {
    pub pool: usize,
    /// A sticky cookie to set on the response (name, key) when the client had none.
    pub set_cookie: Option<(String, u64)>,
}

impl RouteTable {
    /// Validates and compiles `config`, reusing and creating backends and stats in
    /// `registry`. New backends of services with slow start ramp up when `ramp`
    /// (a table applied to a running proxy, not the first one).
    pub fn compile(
        config: RoutingConfig,
        registry: &mut Registry,
        settings: BackendSettings,
        ramp: bool,
    ) -> Result<Self, Error> {
        config.validate()?;
        let names: Vec<&String> = config.services.keys().collect();
        let mut services = Vec::with_capacity(names.len());
        for (name, sc) in &config.services {
            let mut pools = Vec::with_capacity(sc.pools.len());
            for pc in &sc.pools {
                let start_healthy = sc.health.as_ref().is_none_or(|h| h.start_healthy);
                let backends = pc
                    .backends
                    .iter()
                    .map(|addr| {
                        let protocol = sc.backend_protocol;
                        let fresh = || {
                            Arc::new(Backend::new(
                                *addr,
                                protocol,
                                settings,
                                start_healthy,
                                ramp && sc.slow_start.is_some(),
                            ))
                        };
                        let b = registry.backends.entry(*addr).or_insert_with(fresh);
                        if b.pool.protocol() != protocol {
                            // Same address, other protocol: a new backend (new connections).
                            *b = fresh();
                        }
                        Arc::clone(b)
                    })
                    .collect();
                let stats = Arc::clone(
                    registry
                        .stats
                        .entry((name.clone(), pc.revision.clone()))
                        .or_insert_with(|| Arc::new(RevisionStats::new(settings.threads + 1))),
                );
                pools.push(Pool {
                    revision: pc.revision.clone(),
                    revision_header: http::HeaderValue::from_str(&pc.revision).map_err(|_| {
                        Error::InvalidTable(format!(
                            "revision {:?} is not a header value",
                            pc.revision
                        ))
                    })?,
                    weight: pc.weight.get(),
                    backends,
                    stats,
                    rr: AtomicUsize::new(0),
                });
            }
            let weights: Vec<u32> = pools.iter().map(|p| p.weight).collect();
            let header = |h: &str| HeaderName::from_bytes(h.as_bytes()).ok();
            services.push(Service {
                name: name.clone(),
                pools,
                config: sc.clone(),
                slow_start: sc.slow_start.map(|d| d.0).filter(|d| !d.is_zero()),
                swrr: Mutex::new(SmoothWeighted::new(&weights)),
                preview: sc.preview.as_deref().and_then(header),
                sticky_header: match &sc.sticky {
                    Some(Sticky::Header(h)) => header(h),
                    _ => None,
                },
                hash_header: match &sc.balance {
                    Balance::HashHeader(h) => header(h),
                    _ => None,
                },
            });
        }
        let mut routes: Vec<Route> = Vec::new();
        for rc in &config.routes {
            let service = names
                .iter()
                .position(|n| **n == rc.service)
                .ok_or_else(|| Error::InvalidTable(format!("unknown service {:?}", rc.service)))?;
            let prefix = rc.path_prefix.clone();
            if rc.hosts.is_empty() {
                routes.push(Route {
                    host: HostMatch::Any,
                    prefix: prefix.clone(),
                    service,
                });
            }
            for h in &rc.hosts {
                let h = h.to_ascii_lowercase();
                let host = match h.strip_prefix('*') {
                    Some(suffix) => HostMatch::Suffix(suffix.to_owned()),
                    None => HostMatch::Exact(h),
                };
                routes.push(Route {
                    host,
                    prefix: prefix.clone(),
                    service,
                });
            }
        }
        // Most specific first: exact hosts, then longer wildcard suffixes, then any host;
        // within a host class, longer prefixes first. The sort is stable, so ties keep file order.
        routes.sort_by_key(|r| {
            let host_rank = match &r.host {
                HostMatch::Exact(_) => (0, 0),
                HostMatch::Suffix(s) => (1, usize::MAX - s.len()),
                HostMatch::Any => (2, 0),
            };
            (host_rank, usize::MAX - r.prefix.len())
        });
        Ok(Self {
            config,
            routes,
            services,
        })
    }

    /// The index in `services` of the service serving `host` (lowercase, no port)
    /// and `path`.
    pub fn route_index(&self, host: &str, path: &str) -> Option<usize> {
        self.routes
            .iter()
            .find(|r| {
                let host_ok = match &r.host {
                    HostMatch::Any => true,
                    HostMatch::Exact(h) => h == host,
                    HostMatch::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
                };
                host_ok && prefix_matches(&r.prefix, path)
            })
            .map(|r| r.service)
    }
}

/// Prefixes match on segment boundaries.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" || prefix.ends_with('/') {
        return path.starts_with(prefix);
    }
    path.starts_with(prefix)
        && matches!(
            path.as_bytes().get(prefix.len()),
            None | Some(b'/') | Some(b'?')
        )
}

/// Round robin under slow start: each backend in turn is taken with
/// probability equal to its slow-start share (1.0 outside a ramp), so a
/// ramping backend gets that fraction of the requests that would land on it;
/// the first usable one is taken when every draw says no.
fn slow_start_pick<'a>(
    in_turn: impl Iterator<Item = &'a Arc<Backend>>,
    usable: impl Fn(&Arc<Backend>) -> bool,
    factor: impl Fn(&Backend) -> f64,
    mut coin: impl FnMut() -> f64,
) -> Option<Arc<Backend>> {
    let mut first = None;
    for b in in_turn.filter(|b| usable(b)) {
        let f = factor(b);
        if f >= 1.0 || coin() < f {
            return Some(Arc::clone(b));
        }
        first.get_or_insert(b);
    }
    first.cloned()
}

/// A uniform draw in `[0, 1)` from a per-thread xorshift generator (not for secrets).
fn unit_random() -> f64 {
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new(
            std::collections::hash_map::RandomState::new().build_hasher().finish() | 1,
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// A stable hash (fixed keys, so the same key maps the same way across restarts).
pub(crate) fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h = DefaultHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

/// The pool whose cumulative weight range holds `bucket` (pools laid out in
/// declared order). Raising the last pool's weight only grows its range, so a
/// sticky client on it stays there.
pub(crate) fn bucket_pool(weights: &[u32], key_hash: u64) -> Option<usize> {
    let bucket = key_hash % BUCKETS;
    let mut upper = 0u64;
    for (i, w) in weights.iter().enumerate() {
        upper += u64::from(*w) * (BUCKETS / 100);
        if bucket < upper {
            return Some(i);
        }
    }
    None
}

impl Service {
    fn pool_available(&self, i: usize, now_ms: u64) -> bool {
        self.pools[i].backends.iter().any(|b| b.available(now_ms))
    }

    /// The revision pool for a request: preview, then stickiness, then weighted round robin.
    pub fn choose_pool(
        &self,
        client: &Client<'_>,
        now_ms: u64,
        new_key: impl FnOnce() -> u64,
    ) -> Option<PoolChoice> {
        if let Some(h) = &self.preview {
            let wanted = client
                .headers
                .get(h)
                .and_then(|v| std::str::from_utf8(v).ok())
                .or_else(|| client.headers.cookie(h.as_str()));
            if let Some(rev) = wanted
                && let Some(pool) = self.pools.iter().position(|p| p.revision == rev)
            {
                return Some(PoolChoice {
                    pool,
                    set_cookie: None,
                });
            }
        }
        let mut set_cookie = None;
        let key_hash = match &self.config.sticky {
            None => None,
            Some(Sticky::ClientIp) => Some(stable_hash(&[client.ip.to_string().as_bytes()])),
            Some(Sticky::Header(_)) => self
                .sticky_header
                .as_ref()
                .and_then(|h| client.headers.get(h))
                .map(|v| stable_hash(&[v])),
            Some(Sticky::Cookie(name)) => match client.headers.cookie(name) {
                Some(v) => Some(stable_hash(&[v.as_bytes()])),
                None => {
                    let key = new_key();
                    set_cookie = Some((name.clone(), key));
                    Some(stable_hash(&[key.to_string().as_bytes()]))
                }
            },
        };
        if let Some(kh) = key_hash {
            let weights: Vec<u32> = self.pools.iter().map(|p| p.weight).collect();
            if let Some(pool) = bucket_pool(&weights, kh)
                && self.pool_available(pool, now_ms)
            {
                return Some(PoolChoice { pool, set_cookie });
            }
        }
        let pool = if self.pools.len() == 1 {
            0
        } else {
            let mut swrr = self.swrr.lock().unwrap_or_else(|e| e.into_inner());
            match swrr.pick_among(|i| self.pool_available(i, now_ms)) {
                Some(i) => i,
                // No pool with weight has a backend: any pool with one (weight-0 pools included).
                None => (0..self.pools.len()).find(|i| self.pool_available(*i, now_ms))?,
            }
        };
        Some(PoolChoice { pool, set_cookie })
    }

    /// A backend of pool `pool` for a request, skipping `exclude` (tried already).
    pub fn choose_backend(
        &self,
        pool: usize,
        client: &Client<'_>,
        exclude: &[SocketAddr],
        now_ms: u64,
    ) -> Option<Arc<Backend>> {
        let p = &self.pools[pool];
        let n = p.backends.len();
        if n == 0 {
            return None;
        }
        let usable = |b: &Arc<Backend>| b.available(now_ms) && !exclude.contains(&b.addr);
        let hash_key: Option<Vec<u8>> = match &self.config.balance {
            Balance::HashClientIp => Some(client.ip.to_string().into_bytes()),
            Balance::HashHeader(_) => self
                .hash_header
                .as_ref()
                .and_then(|h| client.headers.get(h))
                .map(<[u8]>::to_vec),
            _ => None,
        };
        if let Some(key) = hash_key {
            // Rendezvous hashing: removing a backend only moves the keys it held.
            return p
                .backends
                .iter()
                .filter(|b| usable(b))
                .max_by_key(|b| stable_hash(&[&key, b.addr.to_string().as_bytes()]))
                .cloned();
        }
        if n == 1 && self.slow_start.is_none() {
            // One backend: no turn to take (and no shared counter to bump).
            return p.backends.first().filter(|b| usable(b)).cloned();
        }
        let start = p.rr.fetch_add(1, Ordering::Relaxed);
        let in_turn = (0..n).map(|k| &p.backends[(start + k) % n]);
        match (&self.config.balance, self.slow_start) {
            (Balance::LeastConn, None) => in_turn
                .filter(|b| usable(b))
                .min_by_key(|b| b.in_flight())
                .cloned(),
            // Weighted least request: in flight over the slow-start share.
            (Balance::LeastConn, Some(w)) => in_turn
                .filter(|b| usable(b))
                .map(|b| {
                    let load = (b.in_flight() + 1) as f64 / b.slow_start_factor(Some(w), now_ms);
                    (b, load)
                })
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(b, _)| Arc::clone(b)),
            (_, None) => in_turn.into_iter().find(|b| usable(b)).cloned(),
            (_, Some(w)) => slow_start_pick(
                in_turn,
                usable,
                |b| b.slow_start_factor(Some(w), now_ms),
                unit_random,
            ),
        }
    }

    /// Outlier bookkeeping for one response from `backend` in `pool`.
    pub fn record_outcome(&self, pool: usize, backend: &Backend, ok: bool, now_ms: u64) {
        if ok {
            backend.record_outcome(true, &self.config.outlier, 0, 0, 0, now_ms);
            return;
        }
        let p = &self.pools[pool];
        let ejected = p.backends.iter().filter(|b| b.is_ejected(now_ms)).count();
        let others = p
            .backends
            .iter()
            .filter(|b| b.addr != backend.addr && b.available(now_ms))
            .count();
        backend.record_outcome(
            false,
            &self.config.outlier,
            p.backends.len(),
            ejected,
            others,
            now_ms,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn backends(n: u16) -> Vec<Arc<Backend>> {
        let settings = BackendSettings {
            connect_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            threads: 0,
        };
        (1..=n)
            .map(|p| {
                let addr = SocketAddr::from(([127, 0, 0, 1], p));
                Arc::new(Backend::new(
                    addr,
                    crate::config::BackendProtocol::Http1,
                    settings,
                    true,
                    false,
                ))
            })
            .collect()
    }

    #[test]
    fn slow_start_pick_takes_a_ramping_backend_by_its_share() {
        let b = backends(2);
        // Backend 1 (port 1) ramps at 25 %; the draws are injected and cycle evenly.
        let factor = |x: &Backend| if x.addr.port() == 1 { 0.25 } else { 1.0 };
        let mut draws = (0..100u32).map(|i| f64::from(i) / 100.0).cycle();
        let mut on_ramping = 0;
        for turn in 0..200usize {
            let in_turn = (0..2).map(|k| &b[(turn + k) % 2]);
            let got = slow_start_pick(in_turn, |_| true, factor, || draws.next().unwrap_or(0.0))
                .expect("a backend");
            on_ramping += u32::from(got.addr.port() == 1);
        }
        // Its turn comes 100 times; a quarter of the draws accept it.
        assert_eq!(on_ramping, 25);
        // The only usable backend is taken whatever the draw.
        let only = slow_start_pick(b.iter().take(1), |_| true, factor, || 0.99).expect("one");
        assert_eq!(only.addr.port(), 1);
        assert!(slow_start_pick(b.iter(), |_| false, factor, || 0.0).is_none());
    }

    #[test]
    fn prefixes_match_on_segments() {
        assert!(prefix_matches("/", "/anything"));
        assert!(prefix_matches("/api", "/api"));
        assert!(prefix_matches("/api", "/api/x"));
        assert!(!prefix_matches("/api", "/apix"));
        assert!(prefix_matches("/api/", "/api/x"));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            "a=1; ferry=42 ; b=2".parse().expect("header"),
        );
        assert_eq!(Headers::Map(&h).cookie("ferry"), Some("42"));
        assert_eq!(Headers::Map(&h).cookie("c"), None);
        let raw = [
            httparse::Header {
                name: "Cookie",
                value: b"x=0",
            },
            httparse::Header {
                name: "cookie",
                value: b"a=1; ferry=42 ; b=2",
            },
        ];
        assert_eq!(Headers::Raw(&raw).cookie("ferry"), Some("42"));
        assert_eq!(Headers::Raw(&raw).cookie("c"), None);
        assert_eq!(
            Headers::Raw(&raw).get(&http::header::COOKIE),
            Some(&b"x=0"[..])
        );
    }

    proptest! {
        #[test]
        fn sticky_buckets_move_only_onto_a_rising_last_pool(key in any::<u64>(), low in 0u32..=100, rise in 0u32..=100) {
            let high = (low + rise).min(100);
            let before = bucket_pool(&[100 - low, low], key).expect("weights sum to 100");
            let after = bucket_pool(&[100 - high, high], key).expect("weights sum to 100");
            // A client on the canary stays; a client may only move stable → canary.
            prop_assert!(!(before == 1 && after == 0));
        }
    }
}
