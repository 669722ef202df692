//! Deterministic fault injection: which requests fail and how late they answer.
//!
//! Both are functions of the request's sequence number, so a run is reproducible and a
//! `FAIL_RATE` of 0.1 fails exactly one request in ten, spread evenly.

use std::time::Duration;

/// Whether request number `n` (counted from 1) is answered 500 at `rate`.
///
/// Request `n` fails when `floor(n * rate)` steps up, so after `n` requests exactly
/// `floor(n * rate)` have failed.
pub fn fails(n: u64, rate: f64) -> bool {
    if rate <= 0.0 || n == 0 {
        return false;
    }
    #[expect(
        clippy::cast_precision_loss,
        reason = "request counts stay far below 2^52 in any run of the demo service"
    )]
    let (now, before) = ((n as f64 * rate).floor(), ((n - 1) as f64 * rate).floor());
    now > before
}

/// The latency added to request `n`: `base` plus a pseudo-random share of `jitter`.
pub fn latency(n: u64, base: Duration, jitter: Duration) -> Duration {
    let jitter_ms = u64::try_from(jitter.as_millis()).unwrap_or(u64::MAX);
    if jitter_ms == 0 {
        return base;
    }
    base + Duration::from_millis(splitmix64(n) % (jitter_ms + 1))
}

/// SplitMix64: a tiny, well-mixed hash of the sequence number.
fn splitmix64(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_rate_is_exact_over_a_window() {
        for rate in [0.0, 0.1, 0.25, 0.5, 1.0] {
            let failed = (1..=1000).filter(|n| fails(*n, rate)).count();
            assert_eq!(failed, (1000.0 * rate) as usize, "rate {rate}");
        }
    }

    #[test]
    fn failures_are_spread_evenly() {
        let failed: Vec<u64> = (1..=20).filter(|n| fails(*n, 0.2)).collect();
        assert_eq!(failed, vec![5, 10, 15, 20]);
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let base = Duration::from_millis(10);
        let jitter = Duration::from_millis(20);
        let all: Vec<Duration> = (0..200).map(|n| latency(n, base, jitter)).collect();
        assert!(all.iter().all(|d| *d >= base && *d <= base + jitter));
        assert!(all.iter().any(|d| *d != all[0]), "jitter never varied");
        assert_eq!(latency(7, base, Duration::ZERO), base);
    }
}
