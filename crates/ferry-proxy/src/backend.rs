//! A backend: its pooled upstream client, in-flight count, drain flag, health and ejection state.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use crate::config::{BackendProtocol, HealthConfig, OutlierConfig};
use crate::conn_pool::{ConnPool, Sender};

/// Milliseconds since the first call (a monotonic clock cheap enough to store in atomics).
pub(crate) fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// One upstream address and everything the proxy knows about it.
#[derive(Debug)]
pub(crate) struct Backend {
    pub addr: SocketAddr,
    pub authority: http::uri::Authority,
    pub pool: ConnPool,
    in_flight: AtomicU64,
    draining: AtomicBool,
    healthy: AtomicBool,
    consecutive_failures: AtomicU32,
    ejections: AtomicU32,
    ejected_until_ms: AtomicU64,
    /// Signalled whenever `in_flight` drops to zero.
    idle: Notify,
    /// When its long-lived streams (WebSocket and other upgrades, event streams)
    /// must end: set once, when the backend starts draining or leaves the table.
    streams_end: watch::Sender<Option<tokio::time::Instant>>,
    pub added_ms: u64,
    /// When its slow-start ramp began (ms), `u64::MAX` when it takes a full share.
    ramp_from_ms: AtomicU64,
    /// The active health check settings of the service that owns it.
    pub health: Mutex<Option<HealthConfig>>,
    pub health_task_running: AtomicBool,
}

impl Backend {
    pub fn new(
        addr: SocketAddr,
        protocol: BackendProtocol,
        settings: crate::route_table::BackendSettings,
        healthy: bool,
        ramp: bool,
    ) -> Self {
        let authority = addr
            .to_string()
            .parse()
            .expect("a socket address is a valid authority");
        Self {
            addr,
            authority,
            pool: ConnPool::new(
                addr,
                protocol,
                settings.connect_timeout,
                settings.idle_timeout,
                settings.threads,
            ),
            in_flight: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            healthy: AtomicBool::new(healthy),
            consecutive_failures: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
            idle: Notify::new(),
            streams_end: watch::Sender::new(None),
            added_ms: now_ms(),
            ramp_from_ms: AtomicU64::new(if ramp { now_ms() } else { u64::MAX }),
            health: Mutex::new(None),
            health_task_running: AtomicBool::new(false),
        }
    }

    /// Whether the backend may take a new request now.
    pub fn available(&self, now_ms: u64) -> bool {
        self.healthy.load(Ordering::Relaxed)
            && !self.draining.load(Ordering::Relaxed)
            && !self.is_ejected(now_ms)
    }

    pub fn is_ejected(&self, now_ms: u64) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) > now_ms
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn set_healthy(&self, healthy: bool) {
        let was = self.healthy.swap(healthy, Ordering::Relaxed);
        if healthy && !was && self.ramp_from_ms.load(Ordering::Relaxed) != u64::MAX {
            // A backend that slow-starts begins its ramp when it first passes checks.
            self.ramp_from_ms.store(now_ms(), Ordering::Relaxed);
        }
    }

    /// Its share of traffic under slow start over `window`: 1.0 outside a ramp.
    pub fn slow_start_factor(&self, window: Option<Duration>, now_ms: u64) -> f64 {
        let from = self.ramp_from_ms.load(Ordering::Relaxed);
        match window {
            Some(w) if from != u64::MAX => slow_start_factor(now_ms.saturating_sub(from), w),
            _ => 1.0,
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn set_draining(&self, draining: bool) {
        // SeqCst with the in-flight count: a request either sees the drain flag
        // after counting itself, or the drain sees its count (no lost request).
        self.draining.store(draining, Ordering::SeqCst);
    }

    /// Gives its long-lived streams until `deadline` to end on their own (the
    /// first deadline set stays: a later removal does not extend a drain's).
    pub fn end_streams_at(&self, deadline: tokio::time::Instant) {
        self.streams_end.send_if_modified(|d| {
            if d.is_some() {
                return false;
            }
            *d = Some(deadline);
            true
        });
    }

    /// The signal a long-lived stream of this backend waits on.
    pub fn streams_end(&self) -> StreamsEnd {
        StreamsEnd(self.streams_end.subscribe())
    }

    /// Counts a request as in flight until the returned guard drops.
    pub fn start_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight {
            backend: Arc::clone(self),
            conn: None,
        }
    }

    /// Waits until no request is in flight or `deadline` passes; returns the count left.
    pub async fn wait_idle(&self, deadline: tokio::time::Instant) -> u64 {
        loop {
            let notified = self.idle.notified();
            let n = self.in_flight();
            if n == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.in_flight();
            }
        }
    }

    /// Feeds one request outcome to passive outlier detection. `others_available`
    /// and `ejected_in_pool` describe the rest of its pool right now.
    pub fn record_outcome(
        &self,
        ok: bool,
        cfg: &OutlierConfig,
        pool_size: usize,
        ejected_in_pool: usize,
        others_available: usize,
        now_ms: u64,
    ) {
        if ok {
            if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
                self.consecutive_failures.store(0, Ordering::Relaxed);
            }
            return;
        }
        let n = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if cfg.consecutive_failures == 0 || n < cfg.consecutive_failures || self.is_ejected(now_ms)
        {
            return;
        }
        if !ejection_allowed(
            pool_size,
            ejected_in_pool,
            others_available,
            cfg.max_ejected_percent,
        ) {
            return;
        }
        let k = self.ejections.fetch_add(1, Ordering::Relaxed) + 1;
        let d = ejection_duration(cfg.base_ejection.0, cfg.max_ejection.0, k);
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.ejected_until_ms
            .store(now_ms.saturating_add(ms), Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        tracing::warn!(backend = %self.addr, ejection = k, duration_ms = ms, "backend ejected");
    }
}

/// After a draining backend's stream budget expires, how long a stream may take
/// to reach a clean end (the end of a WebSocket frame, of an event) before it is cut.
pub(crate) const STREAM_GRACE: Duration = Duration::from_secs(1);

/// Resolves when a backend's long-lived streams must end (see [`Backend::end_streams_at`]).
#[derive(Clone, Debug)]
pub(crate) struct StreamsEnd(watch::Receiver<Option<tokio::time::Instant>>);

impl StreamsEnd {
    /// Waits until the backend drains and its streams' budget has passed; never
    /// resolves for a backend that does not drain.
    pub async fn expired(mut self) {
        let deadline = match self.0.wait_for(Option::is_some).await {
            Ok(d) => *d,
            Err(_) => None,
        };
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    }
}

/// The smallest share a slow-starting backend gets (Envoy's `min_weight_percent` default).
pub(crate) const SLOW_START_MIN: f64 = 0.1;

/// The share of its full weight a backend gets `elapsed_ms` into a slow-start
/// `window`: linear from [`SLOW_START_MIN`] to 1.0 (Envoy's ramp with aggression 1).
pub(crate) fn slow_start_factor(elapsed_ms: u64, window: Duration) -> f64 {
    let w = window.as_millis();
    if w == 0 || u128::from(elapsed_ms) >= w {
        return 1.0;
    }
    let f = elapsed_ms as f64 / w as f64;
    f.max(SLOW_START_MIN)
}

/// Whether one more backend of a pool may be ejected: never beyond
/// `max_percent` of the pool (though always one of a pool of two or more),
/// and never the last available backend.
pub(crate) fn ejection_allowed(
    pool_size: usize,
    ejected: usize,
    others_available: usize,
    max_percent: u32,
) -> bool {
    if others_available == 0 {
        return false;
    }
    let cap = (pool_size * max_percent as usize / 100).max(1);
    ejected < cap
}

/// The n-th ejection lasts `base × n`, at most `max`.
pub(crate) fn ejection_duration(base: Duration, max: Duration, n: u32) -> Duration {
    base.saturating_mul(n).min(max)
}

/// Counts one request in flight on a backend until dropped, and holds the
/// connection it uses until the response has been read to the end.
#[derive(Debug)]
pub struct InFlight {
    backend: Arc<Backend>,
    conn: Option<Sender>,
}

impl InFlight {
    /// Attaches the connection carrying the response.
    pub(crate) fn with_conn(mut self, conn: Sender) -> Self {
        self.conn = Some(conn);
        self
    }

    /// The response was read to the end: its connection can carry the next request.
    pub(crate) fn finish(mut self) {
        if let Some(conn) = self.conn.take()
            && !self.backend.is_draining()
        {
            self.backend.pool.put(conn);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.backend.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.backend.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ejection_cap_and_last_backend() {
        assert!(!ejection_allowed(1, 0, 0, 100), "the only backend stays");
        assert!(
            ejection_allowed(2, 0, 1, 10),
            "one of two is always allowed"
        );
        assert!(!ejection_allowed(2, 1, 1, 50));
        assert!(ejection_allowed(10, 4, 5, 50));
        assert!(!ejection_allowed(10, 5, 5, 50));
    }

    #[test]
    fn slow_start_ramps_linearly_from_a_floor_to_full() {
        let w = Duration::from_secs(30);
        assert!((slow_start_factor(0, w) - SLOW_START_MIN).abs() < 1e-9);
        assert!((slow_start_factor(1_500, w) - SLOW_START_MIN).abs() < 1e-9);
        assert!((slow_start_factor(15_000, w) - 0.5).abs() < 1e-9);
        assert!((slow_start_factor(27_000, w) - 0.9).abs() < 1e-9);
        assert!((slow_start_factor(30_000, w) - 1.0).abs() < 1e-9);
        assert!((slow_start_factor(u64::MAX, w) - 1.0).abs() < 1e-9);
        assert!((slow_start_factor(0, Duration::ZERO) - 1.0).abs() < 1e-9);
        let mut last = 0.0;
        for ms in (0..=31_000).step_by(500) {
            let f = slow_start_factor(ms, w);
            assert!(f >= last, "monotonic at {ms}");
            last = f;
        }
    }

    #[test]
    fn ejection_grows_then_caps() {
        let b = Duration::from_secs(30);
        let m = Duration::from_secs(100);
        assert_eq!(ejection_duration(b, m, 1), b);
        assert_eq!(ejection_duration(b, m, 3), Duration::from_secs(90));
        assert_eq!(ejection_duration(b, m, 4), m);
    }
}
