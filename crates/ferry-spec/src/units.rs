//! Human-readable quantities of the spec: durations (`"30s"`), byte sizes (`"256Mi"`) and
//! traffic weights (0..=100), each a newtype that can only hold a valid value.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::SpecError;

/// A non-negative duration written as a sequence of `<integer><unit>` parts with units
/// `ms`, `s`, `m`, `h`, `d` (e.g. `"250ms"`, `"30s"`, `"5m"`, `"1h30m"`), or `"0"`.
///
/// Stored in whole milliseconds; displayed in canonical form (`90s` shows as `1m30s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    millis: u64,
}

impl Duration {
    /// A duration of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Self { millis }
    }

    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self {
            millis: secs.saturating_mul(1000),
        }
    }

    /// The duration in milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    /// The duration as a [`std::time::Duration`].
    pub const fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.millis)
    }
}

impl FromStr for Duration {
    type Err = SpecError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| SpecError::InvalidDuration {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("empty duration"));
        }
        if s == "0" {
            return Ok(Self::from_millis(0));
        }
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut total: u64 = 0;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return Err(err("expected a number before each unit"));
            }
            let number: u64 = s[start..i]
                .parse()
                .map_err(|_| err("number is too large"))?;
            if bytes.get(i) == Some(&b'.') {
                return Err(err(
                    "use whole numbers (write \"1m30s\" rather than \"1.5m\")",
                ));
            }
            let unit_start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let factor: u64 = match &s[unit_start..i] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "" => return Err(err("missing unit (use ms, s, m, h or d)")),
                _ => return Err(err("unknown unit (use ms, s, m, h or d)")),
            };
            let part = number
                .checked_mul(factor)
                .ok_or_else(|| err("duration is too large"))?;
            total = total
                .checked_add(part)
                .ok_or_else(|| err("duration is too large"))?;
        }
        Ok(Self::from_millis(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.millis == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.millis;
        for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
            let n = rest / size;
            if n > 0 {
                write!(f, "{n}{unit}")?;
                rest %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration such as \"250ms\", \"30s\", \"5m\", \"1h30m\" (units ms, s, m, h, d).",
            "pattern": "^(0|([0-9]+(ms|s|m|h|d))+)$"
        })
    }
}

/// A number of bytes written with an optional unit: binary `Ki`, `Mi`, `Gi`, `Ti`
/// (also `KiB`...), decimal `k`/`K`, `M`, `G`, `T` (also `KB`...), or `B`; e.g. `"256Mi"`.
///
/// Displayed with the largest unit that divides it exactly (binary first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize {
    bytes: u64,
}

impl ByteSize {
    /// A size of `bytes` bytes.
    pub const fn from_bytes(bytes: u64) -> Self {
        Self { bytes }
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.bytes
    }
}

const BINARY_UNITS: [(&str, u64); 4] = [
    ("Ti", 1 << 40),
    ("Gi", 1 << 30),
    ("Mi", 1 << 20),
    ("Ki", 1 << 10),
];
const DECIMAL_UNITS: [(&str, u64); 4] = [
    ("T", 1_000_000_000_000),
    ("G", 1_000_000_000),
    ("M", 1_000_000),
    ("K", 1_000),
];

impl FromStr for ByteSize {
    type Err = SpecError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| SpecError::InvalidByteSize {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let s = input.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        if digits.is_empty() {
            return Err(err(
                "expected a whole number followed by a unit such as Mi or Gi",
            ));
        }
        let number: u64 = digits.parse().map_err(|_| err("number is too large"))?;
        let factor: u64 = match unit.trim_start() {
            "" | "B" => 1,
            "k" | "K" | "KB" | "kB" => 1_000,
            "M" | "MB" => 1_000_000,
            "G" | "GB" => 1_000_000_000,
            "T" | "TB" => 1_000_000_000_000,
            "Ki" | "KiB" => 1 << 10,
            "Mi" | "MiB" => 1 << 20,
            "Gi" | "GiB" => 1 << 30,
            "Ti" | "TiB" => 1 << 40,
            "m" | "mb" | "g" | "gb" | "kb" | "ki" | "mi" | "gi" => {
                return Err(err("ambiguous lowercase unit (write Mi or M, Gi or G)"));
            }
            _ => return Err(err("unknown unit (use Ki, Mi, Gi, Ti, K, M, G, T or B)")),
        };
        number
            .checked_mul(factor)
            .map(Self::from_bytes)
            .ok_or_else(|| err("size is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.bytes;
        // The exact unit giving the smallest number reads best; binary wins ties.
        let best = BINARY_UNITS
            .iter()
            .chain(DECIMAL_UNITS.iter())
            .filter(|(_, size)| b != 0 && b.is_multiple_of(*size))
            .min_by_key(|(_, size)| b / size);
        match best {
            Some((unit, size)) => write!(f, "{}{unit}", b / size),
            None => write!(f, "{b}"),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A size such as \"64Mi\", \"1Gi\" or \"512M\" (binary Ki/Mi/Gi/Ti, decimal K/M/G/T, or B).",
            "pattern": "^[0-9]+ ?(B|k|K|KB|kB|M|MB|G|GB|T|TB|Ki|KiB|Mi|MiB|Gi|GiB|Ti|TiB)?$"
        })
    }
}

/// A share of traffic in percent, always within 0..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Weight(u8);

impl Weight {
    /// No traffic.
    pub const ZERO: Self = Self(0);
    /// All traffic.
    pub const FULL: Self = Self(100);

    /// A weight, if `percent` is within 0..=100.
    pub fn new(percent: i64) -> Result<Self, SpecError> {
        u8::try_from(percent)
            .ok()
            .filter(|p| *p <= 100)
            .map(Self)
            .ok_or(SpecError::WeightOutOfRange(percent))
    }

    /// The weight in percent.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl Serialize for Weight {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.0)
    }
}

impl<'de> Deserialize<'de> for Weight {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(deserializer)?;
        Self::new(n).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Weight {
    fn schema_name() -> Cow<'static, str> {
        "Weight".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "integer",
            "description": "A traffic weight in percent.",
            "minimum": 0,
            "maximum": 100
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_display_canonically() {
        for (text, millis, shown) in [
            ("250ms", 250, "250ms"),
            ("30s", 30_000, "30s"),
            ("5m", 300_000, "5m"),
            ("1h30m", 5_400_000, "1h30m"),
            ("90s", 90_000, "1m30s"),
            ("1d", 86_400_000, "24h"),
            ("0", 0, "0s"),
        ] {
            let d: Duration = text.parse().expect("valid duration");
            assert_eq!(d.as_millis(), millis, "{text}");
            assert_eq!(d.to_string(), shown, "{text}");
            assert_eq!(d.to_string().parse::<Duration>().expect("round trip"), d);
        }
        for bad in [
            "",
            "30",
            "s",
            "5 m",
            "1x",
            "-1s",
            "1.5s",
            "99999999999999999999s",
        ] {
            assert!(bad.parse::<Duration>().is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn sizes_parse_and_display_canonically() {
        for (text, bytes, shown) in [
            ("256Mi", 256 << 20, "256Mi"),
            ("1Gi", 1 << 30, "1Gi"),
            ("512M", 512_000_000, "512M"),
            ("1024Mi", 1 << 30, "1Gi"),
            ("100", 100, "100"),
            ("64MiB", 64 << 20, "64Mi"),
        ] {
            let b: ByteSize = text.parse().expect("valid size");
            assert_eq!(b.bytes(), bytes, "{text}");
            assert_eq!(b.to_string(), shown, "{text}");
        }
        for bad in ["", "Mi", "12x", "256m", "1.5Gi", "99999999999Ti"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn weights_are_bounded() {
        assert_eq!(Weight::new(0).map(Weight::get), Ok(0));
        assert_eq!(Weight::new(100).map(Weight::get), Ok(100));
        assert!(Weight::new(101).is_err());
        assert!(Weight::new(-1).is_err());
    }
}
