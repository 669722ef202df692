//! Traffic weights: a percentage per arm, and a stable/canary split that always sums to 100.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;

/// A share of traffic in percent, 0..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Weight(u8);

impl Weight {
    /// No traffic.
    pub const ZERO: Weight = Weight(0);
    /// All traffic.
    pub const FULL: Weight = Weight(100);

    /// A weight of `percent`; refused above 100.
    pub fn new(percent: u32) -> Result<Self, Error> {
        match u8::try_from(percent) {
            Ok(p) if p <= 100 => Ok(Self(p)),
            _ => Err(Error::InvalidWeight(percent)),
        }
    }

    /// The weight in percent.
    pub const fn percent(self) -> u8 {
        self.0
    }

    /// What is left for the other arm: `100 - self`.
    pub const fn complement(self) -> Weight {
        Weight(100 - self.0)
    }

    /// The share `part / whole` rounded to the nearest percent (0 when `whole` is 0).
    pub(crate) fn proportion(part: u32, whole: u32) -> Weight {
        if whole == 0 {
            return Weight::ZERO;
        }
        let part = u64::from(part.min(whole));
        let pct = (part * 100 + u64::from(whole) / 2) / u64::from(whole);
        Weight(u8::try_from(pct).unwrap_or(100).min(100))
    }
}

impl TryFrom<u32> for Weight {
    type Error = Error;
    fn try_from(value: u32) -> Result<Self, Error> {
        Self::new(value)
    }
}

impl From<Weight> for u32 {
    fn from(value: Weight) -> u32 {
        u32::from(value.0)
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

/// How the proxy splits traffic between the stable revision and the new one.
///
/// The two shares always add up to 100: the type cannot hold anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawWeights", into = "RawWeights")]
pub struct Weights {
    stable: Weight,
    canary: Weight,
}

#[derive(Serialize, Deserialize)]
struct RawWeights {
    stable: Weight,
    canary: Weight,
}

impl TryFrom<RawWeights> for Weights {
    type Error = Error;
    fn try_from(raw: RawWeights) -> Result<Self, Error> {
        if u32::from(raw.stable) + u32::from(raw.canary) != 100 {
            return Err(Error::WeightsDoNotSum {
                stable: raw.stable.percent(),
                canary: raw.canary.percent(),
            });
        }
        Ok(Self {
            stable: raw.stable,
            canary: raw.canary,
        })
    }
}

impl From<Weights> for RawWeights {
    fn from(w: Weights) -> RawWeights {
        RawWeights {
            stable: w.stable,
            canary: w.canary,
        }
    }
}

impl Weights {
    /// `canary` to the new revision, the rest to stable.
    pub const fn with_canary(canary: Weight) -> Self {
        Self {
            stable: canary.complement(),
            canary,
        }
    }

    /// Everything to the stable revision.
    pub const fn all_stable() -> Self {
        Self::with_canary(Weight::ZERO)
    }

    /// Everything to the new revision.
    pub const fn all_canary() -> Self {
        Self::with_canary(Weight::FULL)
    }

    /// The stable revision's share.
    pub const fn stable(self) -> Weight {
        self.stable
    }

    /// The new (canary) revision's share.
    pub const fn canary(self) -> Weight {
        self.canary
    }
}

impl fmt::Display for Weights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stable {} / new {}", self.stable, self.canary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_above_100_are_refused() {
        assert!(Weight::new(100).is_ok());
        assert_eq!(Weight::new(101), Err(Error::InvalidWeight(101)));
        assert!(serde_json::from_str::<Weight>("250").is_err());
    }

    #[test]
    fn weights_always_sum_to_100() {
        let w = Weights::with_canary(Weight::new(20).unwrap());
        assert_eq!(w.stable().percent(), 80);
        let err = serde_json::from_str::<Weights>(r#"{"stable":50,"canary":20}"#).unwrap_err();
        assert!(err.to_string().contains("do not add up"), "{err}");
        let back: Weights = serde_json::from_str(&serde_json::to_string(&w).unwrap()).unwrap();
        assert_eq!(back, w);
    }

    #[test]
    fn proportions_round_to_the_nearest_percent() {
        assert_eq!(Weight::proportion(1, 3).percent(), 33);
        assert_eq!(Weight::proportion(2, 3).percent(), 67);
        assert_eq!(Weight::proportion(0, 0).percent(), 0);
        assert_eq!(Weight::proportion(5, 4).percent(), 100);
    }
}
