//! Per-revision request statistics that the canary analysis reads.
//!
//! Counters are atomics; latencies go to an HDR histogram (quantiles since the
//! revision appeared) and a bounded ring of the most recent raw samples (the
//! recent window, for rank tests). Statistics survive routing table swaps:
//! they are keyed by service and revision, not by table.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// How many recent latency samples each revision keeps.
pub const RECENT_SAMPLES: usize = 4096;

/// Live statistics of one revision.
#[derive(Debug)]
pub struct RevisionStats {
    requests: AtomicU64,
    /// Responses by status class: index 0 is 1xx, 4 is 5xx.
    by_class: [AtomicU64; 5],
    latency: Mutex<Latency>,
}

#[derive(Debug)]
struct Latency {
    histogram: Histogram<u64>,
    recent: VecDeque<u64>,
}

impl Default for RevisionStats {
    fn default() -> Self {
        Self {
            requests: AtomicU64::new(0),
            by_class: Default::default(),
            latency: Mutex::new(Latency {
                // 1 µs to 1 hour at 3 significant digits: bounded memory (~200 KiB).
                histogram: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                    .expect("static histogram bounds are valid"),
                recent: VecDeque::with_capacity(RECENT_SAMPLES),
            }),
        }
    }
}

impl RevisionStats {
    /// Records one response: its status and the time to its headers.
    pub fn record(&self, status: u16, latency: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut l = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        l.histogram.saturating_record(micros);
        if l.recent.len() == RECENT_SAMPLES {
            l.recent.pop_front();
        }
        l.recent.push_back(micros);
    }

    /// A consistent-enough copy for reporting.
    pub fn snapshot(&self, service: &str, revision: &str) -> RevisionSnapshot {
        let l = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let q = |p: f64| {
            if l.histogram.is_empty() {
                0
            } else {
                l.histogram.value_at_quantile(p)
            }
        };
        let c = |i: usize| self.by_class[i].load(Ordering::Relaxed);
        RevisionSnapshot {
            service: service.to_owned(),
            revision: revision.to_owned(),
            requests: self.requests.load(Ordering::Relaxed),
            status_2xx: c(1),
            status_3xx: c(2),
            status_4xx: c(3),
            status_5xx: c(4),
            latency_p50_us: q(0.50),
            latency_p95_us: q(0.95),
            latency_p99_us: q(0.99),
            latency_max_us: l.histogram.max(),
            recent_latencies_us: l.recent.iter().copied().collect(),
        }
    }
}

/// Statistics of one revision at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RevisionSnapshot {
    /// The service.
    pub service: String,
    /// The revision.
    pub revision: String,
    /// Responses sent (proxy-generated 502/503/504 included).
    pub requests: u64,
    /// 2xx responses.
    pub status_2xx: u64,
    /// 3xx responses.
    pub status_3xx: u64,
    /// 4xx responses.
    pub status_4xx: u64,
    /// 5xx responses, upstream failures included.
    pub status_5xx: u64,
    /// Median time to response headers, in microseconds.
    pub latency_p50_us: u64,
    /// 95th percentile, in microseconds.
    pub latency_p95_us: u64,
    /// 99th percentile, in microseconds.
    pub latency_p99_us: u64,
    /// Largest, in microseconds.
    pub latency_max_us: u64,
    /// The most recent raw latencies (at most [`RECENT_SAMPLES`]), oldest first.
    pub recent_latencies_us: Vec<u64>,
}

/// One backend's state at one moment (what a controller needs to decide a drain is done).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackendSnapshot {
    /// The service the backend serves.
    pub service: String,
    /// The revision pool it belongs to.
    pub revision: String,
    /// Its address.
    pub addr: std::net::SocketAddr,
    /// Whether active health checks pass.
    pub healthy: bool,
    /// Whether passive outlier detection has ejected it for now.
    pub ejected: bool,
    /// Whether it is draining (no new requests).
    pub draining: bool,
    /// Requests in flight, streams and upgraded connections included.
    pub in_flight: u64,
}

/// Statistics of every revision and backend in the live table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// Per revision.
    pub revisions: Vec<RevisionSnapshot>,
    /// Per backend.
    pub backends: Vec<BackendSnapshot>,
}

impl StatsSnapshot {
    /// The snapshot of one revision, if present.
    pub fn revision(&self, service: &str, revision: &str) -> Option<&RevisionSnapshot> {
        self.revisions
            .iter()
            .find(|r| r.service == service && r.revision == revision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_classes_and_bounds_recent_samples() {
        let s = RevisionStats::default();
        for i in 0..(RECENT_SAMPLES as u64 + 10) {
            s.record(
                if i % 10 == 0 { 503 } else { 200 },
                Duration::from_micros(100 + i),
            );
        }
        let snap = s.snapshot("web", "v1");
        assert_eq!(snap.requests, RECENT_SAMPLES as u64 + 10);
        assert_eq!(snap.status_5xx, (RECENT_SAMPLES as u64 + 10).div_ceil(10));
        assert_eq!(snap.recent_latencies_us.len(), RECENT_SAMPLES);
        assert_eq!(
            snap.recent_latencies_us.last().copied(),
            Some(100 + RECENT_SAMPLES as u64 + 9)
        );
        assert!(snap.latency_p50_us >= 100 && snap.latency_p99_us >= snap.latency_p50_us);
    }
}
