//! Percentile estimates of a latency sample (linear interpolation, NumPy's default).

/// The `q`-th quantile (`0.0..=1.0`) of an already sorted, finite sample, interpolating
/// linearly between the two nearest order statistics (Hyndman–Fan type 7, the default of
/// NumPy and R). `None` when the sample is empty or `q` is outside `0..=1`.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let position = q * (sorted.len() - 1) as f64;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    let fraction = position - lower as f64;
    let (a, b) = (sorted[lower], sorted[upper]);
    // NumPy's lerp: from the nearer end, so that t = 0 and t = 1 give a and b exactly.
    let difference = b - a;
    let value = if fraction < 0.5 {
        a + difference * fraction
    } else {
        b - difference * (1.0 - fraction)
    };
    // `b - a` overflows for huge values of opposite sign; rounding may also step outside.
    let value = if value.is_finite() {
        value
    } else {
        a * (1.0 - fraction) + b * fraction
    };
    Some(value.clamp(a.min(b), a.max(b)))
}

/// The `q`-th quantile of an unsorted finite sample; see [`quantile_sorted`].
pub fn quantile(sample: &[f64], q: f64) -> Option<f64> {
    let mut sorted = sample.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile_sorted(&sorted, q)
}

/// The median of a finite sample.
pub fn median(sample: &[f64]) -> Option<f64> {
    quantile(sample, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_linear_interpolation() {
        // numpy.percentile([1, 2, 3, 4, 10], [50, 95, 99]) == [3.0, 8.8, 9.76]
        let s = [4.0, 1.0, 10.0, 3.0, 2.0];
        assert_eq!(quantile(&s, 0.5), Some(3.0));
        assert!((quantile(&s, 0.95).expect("non-empty") - 8.8).abs() < 1e-12);
        assert!((quantile(&s, 0.99).expect("non-empty") - 9.76).abs() < 1e-12);
    }

    #[test]
    fn empty_and_out_of_range() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[1.0], 1.5), None);
        assert_eq!(quantile(&[7.0], 0.99), Some(7.0));
        assert_eq!(median(&[1.0, 2.0]), Some(1.5));
    }
}
