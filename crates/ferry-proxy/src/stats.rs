//! Per-revision request statistics that the canary analysis reads.
//!
//! Counts, an HDR histogram of latencies (quantiles since the revision
//! appeared) and a bounded ring of the most recent raw samples (the recent
//! window, for rank tests), sharded per serving thread. Statistics survive routing table swaps:
//! they are keyed by service and revision, not by table.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// How many recent latency samples each revision keeps.
pub const RECENT_SAMPLES: usize = 4096;

/// Live statistics of one revision, kept in one shard per serving thread so
/// recording a response never contends with another thread; a snapshot merges them.
#[derive(Debug)]
pub struct RevisionStats {
    shards: Box<[Mutex<Shard>]>,
}

#[derive(Debug, Default)]
struct Shard {
    requests: u64,
    /// Responses by status class: index 0 is 1xx, 4 is 5xx.
    by_class: [u64; 5],
    /// Created on the first response (a shard's histogram is ~200 KiB).
    histogram: Option<Histogram<u64>>,
    /// Recent samples: (microseconds since the process's epoch when recorded, latency µs).
    recent: VecDeque<(u64, u64)>,
}

impl Default for RevisionStats {
    fn default() -> Self {
        Self::new(1)
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 1 hour at 3 significant digits: bounded memory (~200 KiB).
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds are valid")
}

/// Microseconds since the first call (orders recent samples across shards).
fn now_us() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(std::time::Instant::now);
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

impl RevisionStats {
    /// Statistics with `shards` shards (one per serving thread, plus one for any other thread).
    pub fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1)).map(|_| Mutex::default()).collect(),
        }
    }

    /// Records one response: its status and the time to its headers.
    pub fn record(&self, status: u16, latency: Duration) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let stamp = now_us();
        let i = crate::conn_pool::thread_slot() % self.shards.len();
        let mut s = self.shards[i].lock().unwrap_or_else(|e| e.into_inner());
        s.requests += 1;
        s.by_class[class] += 1;
        s.histogram
            .get_or_insert_with(new_histogram)
            .saturating_record(micros);
        if s.recent.len() == RECENT_SAMPLES {
            s.recent.pop_front();
        }
        s.recent.push_back((stamp, micros));
    }

    /// A consistent-enough copy for reporting.
    pub fn snapshot(&self, service: &str, revision: &str) -> RevisionSnapshot {
        let mut requests = 0;
        let mut by_class = [0u64; 5];
        let mut histogram: Option<Histogram<u64>> = None;
        let mut recent: Vec<(u64, u64)> = Vec::new();
        for shard in &self.shards {
            let s = shard.lock().unwrap_or_else(|e| e.into_inner());
            requests += s.requests;
            for (total, n) in by_class.iter_mut().zip(s.by_class) {
                *total += n;
            }
            if let Some(h) = &s.histogram {
                match &mut histogram {
                    Some(all) => {
                        // Same bounds everywhere, so adding cannot fail.
                        let _ = all.add(h);
                    }
                    None => histogram = Some(h.clone()),
                }
            }
            recent.extend(s.recent.iter().copied());
        }
        recent.sort_unstable_by_key(|(stamp, _)| *stamp);
        let skip = recent.len().saturating_sub(RECENT_SAMPLES);
        let q = |p: f64| histogram.as_ref().map_or(0, |h| h.value_at_quantile(p));
        RevisionSnapshot {
            service: service.to_owned(),
            revision: revision.to_owned(),
            requests,
            status_2xx: by_class[1],
            status_3xx: by_class[2],
            status_4xx: by_class[3],
            status_5xx: by_class[4],
            latency_p50_us: q(0.50),
            latency_p95_us: q(0.95),
            latency_p99_us: q(0.99),
            latency_max_us: histogram.as_ref().map_or(0, Histogram::max),
            recent_latencies_us: recent[skip..].iter().map(|(_, us)| *us).collect(),
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

    #[test]
    fn shards_merge_counts_quantiles_and_recent_order() {
        let s = std::sync::Arc::new(RevisionStats::new(3));
        let threads: Vec<_> = (1..=2)
            .map(|slot| {
                let s = std::sync::Arc::clone(&s);
                std::thread::spawn(move || {
                    crate::conn_pool::set_thread_slot(slot);
                    for i in 0..3000u64 {
                        s.record(200, Duration::from_micros(slot as u64 * 1000 + i % 10));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        s.record(500, Duration::from_micros(7));
        let snap = s.snapshot("web", "v1");
        assert_eq!(snap.requests, 6001);
        assert_eq!(snap.status_2xx, 6000);
        assert_eq!(snap.status_5xx, 1);
        assert_eq!(snap.recent_latencies_us.len(), RECENT_SAMPLES);
        assert_eq!(
            snap.recent_latencies_us.last().copied(),
            Some(7),
            "newest last"
        );
        assert!(snap.latency_max_us >= 2009 && snap.latency_p50_us >= 1000);
    }
}
