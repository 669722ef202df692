//! Per-client-IP rate limiting: a token bucket per address (pure core plus a bounded table).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::config::RateLimitConfig;

/// Most addresses tracked at once; beyond it, full buckets are forgotten.
const MAX_TRACKED: usize = 100_000;

/// One client's bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Bucket {
    tokens: f64,
    last_ms: u64,
}

impl Bucket {
    fn full(capacity: f64, now_ms: u64) -> Self {
        Self {
            tokens: capacity,
            last_ms: now_ms,
        }
    }

    /// Takes one token, or says how many seconds until one is there.
    pub fn take(&mut self, capacity: f64, per_ms: f64, now_ms: u64) -> Result<(), u64> {
        let refill = capacity / per_ms;
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64;
        self.tokens = (self.tokens + elapsed * refill).min(capacity);
        self.last_ms = now_ms;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait_ms = (1.0 - self.tokens) / refill;
            Err(((wait_ms / 1000.0).ceil() as u64).max(1))
        }
    }
}

/// Buckets by client address.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    capacity: f64,
    per_ms: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    pub fn new(cfg: &RateLimitConfig) -> Option<Self> {
        let per_ms = cfg.per.0.as_millis() as f64;
        (cfg.requests > 0 && per_ms > 0.0).then(|| Self {
            capacity: f64::from(cfg.requests),
            per_ms,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// `Err(retry_after_seconds)` when `ip` is over its rate.
    pub fn check(&self, ip: IpAddr, now_ms: u64) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&ip) {
            let (capacity, per_ms) = (self.capacity, self.per_ms);
            buckets.retain(|_, b| {
                let mut probe = *b;
                probe.take(capacity, per_ms, now_ms).is_ok() && probe.tokens + 1.0 < capacity
            });
        }
        buckets
            .entry(ip)
            .or_insert_with(|| Bucket::full(self.capacity, now_ms))
            .take(self.capacity, self.per_ms, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refills() {
        let mut b = Bucket::full(3.0, 0);
        for _ in 0..3 {
            assert_eq!(b.take(3.0, 60_000.0, 0), Ok(()));
        }
        assert_eq!(b.take(3.0, 60_000.0, 0), Err(20), "one token per 20 s");
        assert_eq!(b.take(3.0, 60_000.0, 10_000), Err(10));
        assert_eq!(b.take(3.0, 60_000.0, 20_000), Ok(()));
    }
}
