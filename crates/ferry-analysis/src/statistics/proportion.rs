//! Tests on counts: is the canary's error proportion larger than the stable's, or larger than
//! an absolute limit?
//!
//! With plenty of errors on both sides the pooled two-proportion z-test is accurate and cheap;
//! when an expected cell count falls below 10 (few errors — the usual case for a healthy
//! service, and exactly when a canary's first errors matter) its normal approximation is not
//! trustworthy and Fisher's exact test is used instead. Both follow SciPy's definitions so the
//! reference tests can compare them.

use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF};
use statrs::function::factorial::ln_binomial;

use super::mann_whitney::{Alternative, standard_normal};

/// Below this smallest expected cell count the z-test's normal approximation is not trusted
/// and Fisher's exact test is used. Cochran's classic rule says 5; 10 is more careful, and
/// Fisher's test costs little exactly when counts are small.
pub const FISHER_BELOW: f64 = 10.0;

/// Which test produced a proportion p-value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProportionMethod {
    /// Fisher's exact test on the 2×2 table.
    FisherExact,
    /// The pooled two-proportion z-test.
    ZTest,
}

/// The result of comparing two proportions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProportionTest {
    /// The p-value for the requested alternative, in `0..=1`.
    pub p_value: f64,
    /// The test used.
    pub method: ProportionMethod,
    /// The z statistic when the z-test was used.
    pub z: Option<f64>,
}

/// Compares `x1` successes out of `n1` with `x2` out of `n2` (alternative stated for the
/// first), with Fisher's exact test when any expected cell count is below [`FISHER_BELOW`] and the z-test
/// otherwise. `None` when a count exceeds its total or a total is zero.
pub fn compare_proportions(
    x1: u64,
    n1: u64,
    x2: u64,
    n2: u64,
    alternative: Alternative,
) -> Option<ProportionTest> {
    if n1 == 0 || n2 == 0 || x1 > n1 || x2 > n2 {
        return None;
    }
    let total = (n1 + n2) as f64;
    let events = (x1 + x2) as f64;
    let non_events = total - events;
    let smallest_expected = [n1 as f64, n2 as f64]
        .iter()
        .flat_map(|n| [n * events / total, n * non_events / total])
        .fold(f64::INFINITY, f64::min);
    if smallest_expected < FISHER_BELOW {
        let p_value = fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative)?;
        return Some(ProportionTest {
            p_value,
            method: ProportionMethod::FisherExact,
            z: None,
        });
    }
    let (z, p_value) = two_proportion_z(x1, n1, x2, n2, alternative)?;
    Some(ProportionTest {
        p_value,
        method: ProportionMethod::ZTest,
        z: Some(z),
    })
}

/// The pooled two-proportion z-test: `(z, p-value)`. Its two-sided p-value equals that of a
/// chi-squared test of independence without continuity correction.
pub fn two_proportion_z(
    x1: u64,
    n1: u64,
    x2: u64,
    n2: u64,
    alternative: Alternative,
) -> Option<(f64, f64)> {
    if n1 == 0 || n2 == 0 || x1 > n1 || x2 > n2 {
        return None;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let (p1, p2) = (x1 as f64 / n1f, x2 as f64 / n2f);
    let pooled = (x1 + x2) as f64 / (n1f + n2f);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f)).sqrt();
    if se == 0.0 || !se.is_finite() {
        // Both arms all-success or all-failure: identical, no evidence of a difference.
        return Some((0.0, 1.0));
    }
    let z = (p1 - p2) / se;
    let normal = standard_normal();
    let p = match alternative {
        Alternative::Greater => normal.sf(z),
        Alternative::Less => normal.cdf(z),
        Alternative::TwoSided => 2.0 * normal.sf(z.abs()),
    };
    Some((z, p.clamp(0.0, 1.0)))
}

/// Fisher's exact test of a 2×2 table `[[a, b], [c, d]]`. `Greater` means the odds ratio
/// `(a d) / (b c)` exceeds 1 (the first row has the larger share in the first column); the
/// two-sided p-value sums every table at most as likely as the observed one, as SciPy does.
/// `None` when the table is empty.
pub fn fisher_exact(table: [[u64; 2]; 2], alternative: Alternative) -> Option<f64> {
    let [[a, b], [c, d]] = table;
    let row1 = a.checked_add(b)?;
    let col1 = a.checked_add(c)?;
    let total = row1.checked_add(c.checked_add(d)?)?;
    if total == 0 {
        return None;
    }
    // Cell `a` follows a hypergeometric law given the margins.
    let low = (row1 + col1).saturating_sub(total);
    let high = row1.min(col1);
    let ln_denominator = ln_binomial(total, row1);
    let ln_pmf =
        |x: u64| ln_binomial(col1, x) + ln_binomial(total - col1, row1 - x) - ln_denominator;
    let sum = |from: u64, to: u64| -> f64 { (from..=to).map(|x| ln_pmf(x).exp()).sum() };
    let p = match alternative {
        Alternative::Greater => sum(a, high),
        Alternative::Less => sum(low, a),
        Alternative::TwoSided => {
            // Relative tolerance so that tables equally likely up to rounding count.
            let limit = ln_pmf(a) + 1e-7;
            (low..=high)
                .map(ln_pmf)
                .filter(|&l| l <= limit)
                .map(f64::exp)
                .sum()
        }
    };
    Some(p.clamp(0.0, 1.0))
}

/// One-sided exact binomial test: `P(X >= k)` for `X ~ Binomial(n, p0)` — the p-value of
/// "the true proportion exceeds `p0`" after observing `k` events in `n` trials. `None` when
/// `k > n` or `p0` is not a probability.
pub fn binomial_at_least(k: u64, n: u64, p0: f64) -> Option<f64> {
    if k > n || !(0.0..=1.0).contains(&p0) {
        return None;
    }
    if k == 0 {
        return Some(1.0);
    }
    let law = Binomial::new(p0, n).ok()?;
    Some(law.sf(k - 1).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fisher_tea_tasting() {
        // The lady tasting tea: [[3, 1], [1, 3]] gives one-sided p = 17/70.
        let p = fisher_exact([[3, 1], [1, 3]], Alternative::Greater).expect("table");
        assert!((p - 17.0 / 70.0).abs() < 1e-12);
        let two = fisher_exact([[3, 1], [1, 3]], Alternative::TwoSided).expect("table");
        assert!((two - 34.0 / 70.0).abs() < 1e-12);
    }

    #[test]
    fn small_counts_use_fisher_and_large_use_z() {
        let few = compare_proportions(10, 200, 0, 200, Alternative::Greater).expect("counts");
        assert_eq!(few.method, ProportionMethod::FisherExact);
        assert!(few.p_value < 0.01);
        let many =
            compare_proportions(500, 10_000, 450, 10_000, Alternative::Greater).expect("counts");
        assert_eq!(many.method, ProportionMethod::ZTest);
    }

    #[test]
    fn degenerate_counts() {
        assert!(compare_proportions(0, 0, 0, 10, Alternative::Greater).is_none());
        assert!(compare_proportions(11, 10, 0, 10, Alternative::Greater).is_none());
        assert_eq!(
            two_proportion_z(0, 10, 0, 10, Alternative::Greater),
            Some((0.0, 1.0))
        );
        assert_eq!(fisher_exact([[0, 0], [0, 0]], Alternative::TwoSided), None);
        assert_eq!(binomial_at_least(0, 10, 0.1), Some(1.0));
        assert!(binomial_at_least(11, 10, 0.1).is_none());
    }
}
