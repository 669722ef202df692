//! The crate's error type for values that fail their invariants (durations, sizes, names).

/// Why a single value could not be turned into one of the spec's checked types.
///
/// The span-aware parser turns these into [`crate::Problem`]s with a location and a hint;
/// the `FromStr` impls of the newtypes return them directly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A duration string such as `"30s"` or `"1h30m"` could not be parsed.
    #[error("invalid duration {input:?}: {reason}")]
    InvalidDuration {
        /// The text that was given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A byte size such as `"256Mi"` could not be parsed.
    #[error("invalid size {input:?}: {reason}")]
    InvalidByteSize {
        /// The text that was given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A traffic weight outside 0..=100.
    #[error("weight {0} is out of range 0..=100")]
    WeightOutOfRange(i64),
    /// A name that is not a DNS label (lowercase letters, digits, `-`, at most 63 characters).
    #[error("invalid name {input:?}: {reason}")]
    InvalidName {
        /// The text that was given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An environment variable name that is not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("invalid environment variable name {0:?}")]
    InvalidEnvName(String),
    /// A volume mount that is not `name:/absolute/path`.
    #[error("invalid volume {0:?}: expected \"name:/absolute/path\"")]
    InvalidVolume(String),
}
