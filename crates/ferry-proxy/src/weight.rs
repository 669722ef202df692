//! Revision weights and the smooth weighted round robin that splits traffic exactly.
//!
//! Smooth weighted round robin (nginx's algorithm) is periodic with period
//! `sum(weights)`: over any window of that many consecutive picks, every
//! entry is picked exactly `weight` times. With weights summing to 100 that
//! makes a 20/80 split exact per hundred requests, even with one replica per
//! revision, which random choice never is.

use std::fmt;

/// A traffic weight in percent: an integer in `0..=100`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "u32", into = "u32")]
pub struct Weight(u8);

impl Weight {
    /// The full share.
    pub const FULL: Weight = Weight(100);
    /// No traffic (a revision reachable only through preview routing).
    pub const ZERO: Weight = Weight(0);

    /// A weight if `percent` is at most 100.
    pub fn new(percent: u32) -> Option<Self> {
        u8::try_from(percent).ok().filter(|p| *p <= 100).map(Weight)
    }

    /// The weight in percent.
    pub fn get(self) -> u32 {
        u32::from(self.0)
    }
}

impl TryFrom<u32> for Weight {
    type Error = String;
    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Weight::new(value).ok_or_else(|| format!("weight {value} is above 100"))
    }
}

impl From<Weight> for u32 {
    fn from(w: Weight) -> u32 {
        w.get()
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Smooth weighted round robin over a fixed list of weights.
#[derive(Clone, Debug)]
pub struct SmoothWeighted {
    weights: Vec<i64>,
    current: Vec<i64>,
}

impl SmoothWeighted {
    /// A selector over `weights` (entries with weight 0 are never picked).
    pub fn new(weights: &[u32]) -> Self {
        Self {
            weights: weights.iter().map(|w| i64::from(*w)).collect(),
            current: vec![0; weights.len()],
        }
    }

    /// The next index, or `None` when every weight is zero.
    pub fn pick(&mut self) -> Option<usize> {
        self.pick_among(|_| true)
    }

    /// The next index among the entries `eligible` accepts.
    ///
    /// Ineligible entries keep their state, so when all entries are eligible
    /// the sequence is the exact periodic one; while some are not (a pool
    /// with no healthy backend), their share goes to the others in proportion.
    pub fn pick_among(&mut self, eligible: impl Fn(usize) -> bool) -> Option<usize> {
        let mut total = 0;
        let mut best: Option<usize> = None;
        for i in 0..self.weights.len() {
            let w = self.weights[i];
            if w == 0 || !eligible(i) {
                continue;
            }
            self.current[i] += w;
            total += w;
            if best.is_none_or(|b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        let chosen = best?;
        self.current[chosen] -= total;
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn weights_summing_to_100() -> impl Strategy<Value = Vec<u32>> {
        proptest::collection::vec(0u32..=100, 1..6).prop_filter_map("needs a positive sum", |raw| {
            let sum: u32 = raw.iter().sum();
            if sum == 0 {
                return None;
            }
            // Scale to 100 and give the rounding remainder to the first entry.
            let mut scaled: Vec<u32> = raw.iter().map(|w| w * 100 / sum).collect();
            let s: u32 = scaled.iter().sum();
            scaled[0] += 100 - s;
            Some(scaled)
        })
    }

    proptest! {
        #[test]
        fn every_window_of_100_is_exact(weights in weights_summing_to_100(), skip in 0usize..250) {
            let mut swrr = SmoothWeighted::new(&weights);
            for _ in 0..skip {
                swrr.pick();
            }
            let mut counts = vec![0u32; weights.len()];
            for _ in 0..100 {
                let i = swrr.pick().expect("weights sum to 100");
                counts[i] += 1;
            }
            prop_assert_eq!(counts, weights);
        }

        #[test]
        fn weight_rejects_above_100(p in 0u32..1000) {
            prop_assert_eq!(Weight::new(p).is_some(), p <= 100);
        }
    }

    #[test]
    fn zero_weights_pick_nothing() {
        assert_eq!(SmoothWeighted::new(&[0, 0]).pick(), None);
        assert_eq!(SmoothWeighted::new(&[]).pick(), None);
    }

    #[test]
    fn ineligible_share_goes_to_the_rest() {
        let mut swrr = SmoothWeighted::new(&[50, 50]);
        for _ in 0..10 {
            assert_eq!(swrr.pick_among(|i| i == 1), Some(1));
        }
    }
}
