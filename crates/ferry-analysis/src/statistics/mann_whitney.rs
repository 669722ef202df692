//! The Mann–Whitney U rank-sum test: does one sample tend to hold larger values than another?
//!
//! It is the test Kayenta uses for latency: it makes no assumption on the shape of the
//! distribution (latencies are skewed and multi-modal), only that the two arms were sampled
//! independently. The computation follows SciPy's `mannwhitneyu` so that the reference tests
//! can compare the two to 1e-6: U of the first sample, average ranks for ties, the tie-corrected
//! normal approximation with a continuity correction, and the exact null distribution for small
//! samples without ties.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

/// Which difference a test looks for, stated for the first sample (`x`, the canary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Alternative {
    /// The samples differ in either direction.
    TwoSided,
    /// The first sample tends to be larger (for latency: the canary is slower).
    Greater,
    /// The first sample tends to be smaller.
    Less,
}

/// How the p-value of a rank test is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// SciPy's rule: exact when one sample has at most 8 values and there are no ties,
    /// otherwise the normal approximation.
    Auto,
    /// The exact null distribution (falls back to the normal approximation when there are
    /// ties, for which the exact distribution does not hold, or when it would be too large).
    Exact,
    /// The tie-corrected normal approximation with a continuity correction.
    Asymptotic,
}

/// The p-value method that was actually used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MethodUsed {
    /// The exact null distribution of U.
    Exact,
    /// The normal approximation.
    Asymptotic,
}

/// The result of a Mann–Whitney U test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MannWhitney {
    /// U of the first sample: the number of pairs (x, y) with x > y, ties counting one half.
    pub u1: f64,
    /// U of the second sample (`n1 * n2 - u1`).
    pub u2: f64,
    /// The p-value for the requested alternative, in `0..=1`.
    pub p_value: f64,
    /// The standardised statistic when the normal approximation was used.
    pub z: Option<f64>,
    /// How the p-value was computed.
    pub method: MethodUsed,
    /// Whether some values appear more than once across both samples.
    pub ties: bool,
}

/// The largest `n1 * n2` for which the exact distribution is computed (one `f64` per value of U).
const EXACT_LIMIT: usize = 1_000_000;

/// Mann–Whitney U test of `x` against `y`. Non-finite values are ignored; `None` when either
/// sample has no finite value.
pub fn mann_whitney_u(
    x: &[f64],
    y: &[f64],
    alternative: Alternative,
    method: Method,
) -> Option<MannWhitney> {
    let x: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
    let y: Vec<f64> = y.iter().copied().filter(|v| v.is_finite()).collect();
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let ranked = rank(&x, &y);
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let u1 = ranked.rank_sum_x - n1f * (n1f + 1.0) / 2.0;
    let u2 = n1f * n2f - u1;
    let ties = ranked.tie_sizes.iter().any(|&t| t > 1);

    let (u, factor) = match alternative {
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    };
    let wants_exact = match method {
        // Exact unless both samples are large (SciPy: both above 8), and never with ties.
        Method::Auto => !(ties || n1 > 8 && n2 > 8),
        Method::Exact => !ties,
        Method::Asymptotic => false,
    };
    let exact = wants_exact && n1.saturating_mul(n2) <= EXACT_LIMIT;
    let (p, z, used) = if exact {
        (exact_sf(n1.min(n2), n1.max(n2), u), None, MethodUsed::Exact)
    } else {
        let z = asymptotic_z(u, n1f, n2f, &ranked.tie_sizes);
        (standard_normal().sf(z), Some(z), MethodUsed::Asymptotic)
    };
    let p_value = (p * factor).clamp(0.0, 1.0);
    Some(MannWhitney {
        u1,
        u2,
        p_value: if p_value.is_nan() { 1.0 } else { p_value },
        z,
        method: used,
        ties,
    })
}

/// The standard normal distribution.
pub(crate) fn standard_normal() -> Normal {
    Normal::standard()
}

/// Ranks of the pooled sample: what the test needs from them.
struct Ranked {
    /// Sum of the (average) ranks of the first sample.
    rank_sum_x: f64,
    /// Size of every group of equal values (1 for a value that is not tied).
    tie_sizes: Vec<usize>,
}

fn rank(x: &[f64], y: &[f64]) -> Ranked {
    let mut pooled: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum_x = 0.0;
    let mut tie_sizes = Vec::new();
    let mut start = 0;
    while start < pooled.len() {
        let mut end = start + 1;
        // `==` rather than total order so that -0.0 and 0.0 tie, as they do in SciPy.
        while end < pooled.len() && pooled[end].0 == pooled[start].0 {
            end += 1;
        }
        // Ranks are 1-based: the group occupies ranks start+1 ..= end.
        let average = (start + 1 + end) as f64 / 2.0;
        let in_x = pooled[start..end].iter().filter(|p| p.1).count();
        rank_sum_x += average * in_x as f64;
        tie_sizes.push(end - start);
        start = end;
    }
    Ranked {
        rank_sum_x,
        tie_sizes,
    }
}

fn asymptotic_z(u: f64, n1: f64, n2: f64, tie_sizes: &[usize]) -> f64 {
    let n = n1 + n2;
    let mu = n1 * n2 / 2.0;
    let tie_term: f64 = tie_sizes
        .iter()
        .map(|&t| {
            let t = t as f64;
            t * t * t - t
        })
        .sum();
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    let sigma = variance.max(0.0).sqrt();
    // SciPy subtracts 0.5 whatever the alternative: the survival function is always used,
    // and this adds the probability mass at U itself.
    let numerator = u - mu - 0.5;
    if sigma == 0.0 {
        // All values equal: no evidence of any difference (SciPy gets -inf, so p = 1).
        return if numerator > 0.0 {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        };
    }
    numerator / sigma
}

/// Number of arrangements giving each value of U (index = U) for samples of sizes `m <= n`.
///
/// The generating function of U is the Gaussian binomial coefficient
/// `prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i)`; multiplying by one factor and dividing by the
/// other keeps every intermediate polynomial that of a smaller Gaussian binomial, so after
/// each full step the coefficients are counts again, none above `C(m + n, m)`. The steps
/// subtract, so in floating point small tail counts would drown in the rounding of large
/// ones: the counts are exact integers (`i128`) whenever `C(m + n, m)` leaves headroom.
pub(crate) fn exact_counts<T>(m: usize, n: usize) -> Vec<T>
where
    T: Copy + Default + From<u8> + std::ops::AddAssign + std::ops::SubAssign,
{
    let max_u = m * n;
    let mut c = vec![T::default(); max_u + 1];
    c[0] = T::from(1);
    for i in 1..=m {
        let shift = n + i;
        if shift <= max_u {
            for k in (shift..=max_u).rev() {
                let lower = c[k - shift];
                c[k] -= lower;
            }
        }
        for k in i..=max_u {
            let lower = c[k - i];
            c[k] += lower;
        }
    }
    c
}

/// Whether the exact counts for sizes `m` and `n` fit `i128` with room to spare
/// (`C(m + n, m)` below 2^120).
pub(crate) fn exact_fits(m: usize, n: usize) -> bool {
    statrs::function::factorial::ln_binomial((m + n) as u64, m as u64)
        < 120.0 * std::f64::consts::LN_2
}

/// `P(U >= u)` under the null hypothesis for samples of sizes `m <= n`.
fn exact_sf(m: usize, n: usize, u: f64) -> f64 {
    // SciPy truncates U to an integer before looking it up.
    let start = u.max(0.0) as usize;
    if start > m * n {
        return 0.0;
    }
    if exact_fits(m, n) {
        let counts = exact_counts::<i128>(m, n);
        let total: i128 = counts.iter().sum();
        let tail: i128 = counts[start..].iter().sum();
        tail as f64 / total as f64
    } else {
        let counts = exact_counts::<f64>(m, n);
        let total: f64 = counts.iter().sum();
        counts[start..].iter().sum::<f64>() / total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_counts_are_gaussian_binomials() {
        // U for sizes 2 and 2: arrangements of ranks give counts 1,1,2,1,1 (total C(4,2) = 6).
        assert_eq!(exact_counts::<i128>(2, 2), vec![1, 1, 2, 1, 1]);
        let c = exact_counts::<i128>(3, 5);
        assert_eq!(c.iter().sum::<i128>(), 56);
        let f = exact_counts::<f64>(3, 5);
        assert!(c.iter().zip(&f).all(|(&a, &b)| a as f64 == b));
        // Symmetric distribution.
        for k in 0..c.len() {
            assert_eq!(c[k], c[c.len() - 1 - k]);
        }
    }

    #[test]
    fn complete_separation_small_exact() {
        let x = [10.0, 11.0, 12.0];
        let y = [1.0, 2.0, 3.0];
        let r = mann_whitney_u(&x, &y, Alternative::Greater, Method::Auto).expect("samples");
        assert_eq!(r.u1, 9.0);
        assert_eq!(r.method, MethodUsed::Exact);
        assert!((r.p_value - 1.0 / 20.0).abs() < 1e-15);
        let two = mann_whitney_u(&x, &y, Alternative::TwoSided, Method::Auto).expect("samples");
        assert!((two.p_value - 0.1).abs() < 1e-15);
    }

    #[test]
    fn empty_and_constant_inputs() {
        assert!(mann_whitney_u(&[], &[1.0], Alternative::TwoSided, Method::Auto).is_none());
        assert!(mann_whitney_u(&[f64::NAN], &[1.0], Alternative::TwoSided, Method::Auto).is_none());
        let r = mann_whitney_u(&[5.0; 20], &[5.0; 20], Alternative::Greater, Method::Auto)
            .expect("samples");
        assert_eq!(r.p_value, 1.0);
    }
}
