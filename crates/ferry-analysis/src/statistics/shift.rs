//! The Hodges–Lehmann estimate of how far one sample is shifted from another, with a
//! distribution-free confidence interval.
//!
//! The estimate is the median of all pairwise differences `x_i - y_j`; the interval is the
//! pair of order statistics of those differences that the Mann–Whitney test's critical value
//! points at (Hollander & Wolfe). Both arms can hold tens of thousands of requests, so the
//! `n1 * n2` differences are never materialised: the k-th smallest is found by bisecting on
//! the bit pattern of `f64` (an exact total order) while counting differences below a
//! candidate with two pointers over the sorted samples — `O((n1 + n2) * 64)`.

use serde::{Deserialize, Serialize};
use statrs::distribution::ContinuousCDF;

use super::mann_whitney::{exact_counts, exact_fits, standard_normal};

/// A shift estimate of the first sample relative to the second, in the samples' unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shift {
    /// Median of all pairwise differences (first minus second).
    pub estimate: f64,
    /// Lower bound of the confidence interval.
    pub lower: f64,
    /// Upper bound of the confidence interval.
    pub upper: f64,
    /// Two-sided confidence level of the interval, e.g. 0.95.
    pub confidence: f64,
}

/// Hodges–Lehmann shift of `x` relative to `y` with a two-sided `confidence` interval.
/// Non-finite values are ignored; `None` when either sample is empty or `confidence` is not
/// strictly between 0 and 1. When the samples are too small for the requested confidence,
/// the interval widens to the full range of differences.
pub fn hodges_lehmann(x: &[f64], y: &[f64], confidence: f64) -> Option<Shift> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return None;
    }
    let mut x: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
    let mut y: Vec<f64> = y.iter().copied().filter(|v| v.is_finite()).collect();
    if x.is_empty() || y.is_empty() {
        return None;
    }
    x.sort_by(f64::total_cmp);
    y.sort_by(f64::total_cmp);
    let pairs = (x.len() as u128) * (y.len() as u128);
    let differences = Differences { x: &x, y: &y };
    let estimate = if pairs % 2 == 1 {
        differences.kth(pairs.div_ceil(2))
    } else {
        let a = differences.kth(pairs / 2);
        let b = differences.kth(pairs / 2 + 1);
        a / 2.0 + b / 2.0
    };
    let c = critical_rank(x.len(), y.len(), confidence).min(pairs);
    Some(Shift {
        estimate,
        lower: differences.kth(c),
        upper: differences.kth(pairs + 1 - c),
        confidence,
    })
}

/// The largest pairwise shift rank `c` (1-based) such that `[D(c), D(n1 n2 + 1 - c)]` covers
/// the true shift with at least `confidence`: `P(U <= c - 1) <= (1 - confidence) / 2` under
/// the null distribution of U — exact for small samples, normal approximation otherwise.
/// At least 1 (the full range of differences) when the samples are too small.
fn critical_rank(n1: usize, n2: usize, confidence: f64) -> u128 {
    let half_alpha = (1.0 - confidence) / 2.0;
    let (m, n) = (n1.min(n2), n1.max(n2));
    if m.saturating_mul(n) <= EXACT_PAIRS && exact_fits(m, n) {
        let counts = exact_counts::<i128>(m, n);
        let total = counts.iter().sum::<i128>() as f64;
        let mut cumulative: i128 = 0;
        let mut c: u128 = 0;
        for &count in &counts {
            cumulative += count;
            if cumulative as f64 / total > half_alpha {
                break;
            }
            c += 1;
        }
        return c.max(1);
    }
    let (n1, n2) = (n1 as f64, n2 as f64);
    let z = standard_normal().inverse_cdf(1.0 - half_alpha);
    let critical = (n1 * n2 / 2.0 - z * (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt()).round();
    if critical.is_finite() && critical >= 1.0 {
        critical as u128
    } else {
        1
    }
}

/// Up to this many pairs the interval uses the exact null distribution of U.
const EXACT_PAIRS: usize = 10_000;

/// The implicit sorted matrix of pairwise differences of two sorted samples.
struct Differences<'a> {
    x: &'a [f64],
    y: &'a [f64],
}

impl Differences<'_> {
    /// Number of pairs with `x_i - y_j <= d`, the difference computed exactly as in `kth`.
    fn count_at_most(&self, d: f64) -> u128 {
        let mut count = 0u128;
        // For a fixed x_i, x_i - y_j decreases as j grows, so the qualifying j form a suffix;
        // its start only moves right as x_i grows.
        let mut j = 0;
        for &xi in self.x {
            while j < self.y.len() && xi - self.y[j] > d {
                j += 1;
            }
            count += (self.y.len() - j) as u128;
        }
        count
    }

    /// The k-th smallest (1-based) pairwise difference.
    fn kth(&self, k: u128) -> f64 {
        let (Some(&x_min), Some(&x_max), Some(&y_min), Some(&y_max)) =
            (self.x.first(), self.x.last(), self.y.first(), self.y.last())
        else {
            return f64::NAN;
        };
        let mut lo = order_key(x_min - y_max);
        let mut hi = order_key(x_max - y_min);
        // Invariant: count_at_most(hi) >= k; find the smallest such key.
        while lo < hi {
            let mid = ((i128::from(lo) + i128::from(hi)).div_euclid(2)) as i64;
            if self.count_at_most(from_order_key(mid)) >= k {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        from_order_key(hi)
    }
}

/// Maps an `f64` to an `i64` whose integer order is the float's total order.
fn order_key(v: f64) -> i64 {
    let bits = v.to_bits() as i64;
    if bits < 0 { bits ^ i64::MAX } else { bits }
}

fn from_order_key(key: i64) -> f64 {
    let bits = if key < 0 { key ^ i64::MAX } else { key };
    f64::from_bits(bits as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_median(x: &[f64], y: &[f64]) -> f64 {
        let mut d: Vec<f64> = x
            .iter()
            .flat_map(|a| y.iter().map(move |b| a - b))
            .collect();
        d.sort_by(f64::total_cmp);
        let n = d.len();
        if n % 2 == 1 {
            d[n / 2]
        } else {
            d[n / 2 - 1] / 2.0 + d[n / 2] / 2.0
        }
    }

    #[test]
    fn matches_brute_force() {
        let x = [12.5, 3.0, 7.25, 9.0, 15.0, 3.0, -2.0];
        let y = [1.0, 4.5, 2.0, 8.0, 3.0, 0.0];
        let s = hodges_lehmann(&x, &y, 0.9).expect("samples");
        assert_eq!(s.estimate, brute_median(&x, &y));
        assert!(s.lower <= s.estimate && s.estimate <= s.upper);
    }

    #[test]
    fn pure_shift_is_recovered() {
        let y: Vec<f64> = (0..300).map(|i| f64::from(i % 37) * 1.5 + 20.0).collect();
        let x: Vec<f64> = y.iter().map(|v| v + 50.0).collect();
        let s = hodges_lehmann(&x, &y, 0.95).expect("samples");
        assert_eq!(s.estimate, 50.0);
        assert!(s.lower > 0.0 && s.upper < 100.0);
    }

    #[test]
    fn exact_critical_rank_matches_tables() {
        // Hollander & Wolfe: for m = n = 10 at 95%, C = 24 (U's lower 2.5% point is 23).
        assert_eq!(critical_rank(10, 10, 0.95), 24);
        // Too small for 95%: the full range.
        assert_eq!(critical_rank(2, 2, 0.95), 1);
        // The normal approximation for large samples stays close to exact.
        let exact = critical_rank(60, 150, 0.95) as f64;
        let (m, n) = (60.0f64, 150.0f64);
        let z = 1.959_963_984_540_054;
        let approx = (m * n / 2.0 - z * (m * n * (m + n + 1.0) / 12.0).sqrt()).round();
        assert!(
            (exact - approx).abs() <= 1.0,
            "exact {exact} vs approx {approx}"
        );
    }

    #[test]
    fn order_key_round_trips_and_orders() {
        let values = [
            f64::NEG_INFINITY,
            -3.5,
            -0.0,
            0.0,
            1e-300,
            2.0,
            f64::INFINITY,
        ];
        for w in values.windows(2) {
            assert!(order_key(w[0]) < order_key(w[1]));
        }
        for v in values {
            assert_eq!(from_order_key(order_key(v)).to_bits(), v.to_bits());
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert!(hodges_lehmann(&[], &[1.0], 0.95).is_none());
        assert!(hodges_lehmann(&[1.0], &[1.0], 1.0).is_none());
        assert!(hodges_lehmann(&[f64::NAN], &[1.0], 0.95).is_none());
    }
}
