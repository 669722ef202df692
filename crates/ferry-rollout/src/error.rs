//! The one error type of the rollout engine: why a plan or a value was refused.

use thiserror::Error;

/// Why a rollout plan, or one of the values it is built from, was refused.
///
/// The state machine itself never fails: events that make no sense in a phase are
/// ignored with a recorded note. Only building a plan can fail.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// A revision name was empty, too long, or held characters other than
    /// ASCII letters, digits, `.`, `_` and `-` (or did not start with a letter or digit).
    #[error("invalid revision {value:?}: {why}")]
    InvalidRevision {
        /// The rejected text.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// An analysis or replica name was empty, too long or held unsupported characters.
    #[error("invalid name {value:?}: {why}")]
    InvalidName {
        /// The rejected text.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A traffic weight was above 100.
    #[error("invalid weight {0}: a weight is a percentage from 0 to 100")]
    InvalidWeight(u32),
    /// Stable and canary weights did not add up to 100.
    #[error("weights {stable}/{canary} do not add up to 100")]
    WeightsDoNotSum {
        /// The stable share.
        stable: u8,
        /// The canary share.
        canary: u8,
    },
    /// The plan asked for zero replicas of the new revision.
    #[error("a rollout needs at least one replica of the new revision")]
    NoReplicas,
    /// The new revision is the one already stable.
    #[error("revision {0} is already the stable revision")]
    SameRevision(String),
    /// A rolling update with `max_surge = 0` and `max_unavailable = 0` can never move.
    #[error(
        "rolling update cannot progress with max_surge and max_unavailable both 0 \
         for {replicas} replicas: allow at least one extra or one missing replica"
    )]
    RollingCannotProgress {
        /// The replica count the budgets were resolved against.
        replicas: u32,
    },
    /// A percentage budget (`max_surge`, `max_unavailable`) above 100%.
    #[error("invalid percentage {0}%: budgets are from 0% to 100%")]
    InvalidPercent(u32),
    /// Canary weights went down between two steps.
    #[error(
        "canary step {step} sets weight {weight}% after an earlier step set {previous}%: \
         weights must not decrease"
    )]
    WeightsNotMonotonic {
        /// The 1-based step number that lowers the weight.
        step: usize,
        /// The weight it asks for.
        weight: u8,
        /// The highest weight set before it.
        previous: u8,
    },
    /// The progress deadline was zero.
    #[error("the progress deadline must be longer than zero")]
    ZeroDeadline,
}
