//! Canary analysis: judges a new revision against the stable one serving at the same time,
//! with real statistics, and turns a series of verdicts into a rollout decision.
//!
//! Design: a pure core. Providers (ferry's proxy, Prometheus) turn traffic into an
//! [`Observation`] per interval; [`judge`] turns it into a [`Verdict`] (per-metric tests,
//! score, plain-words explanations); [`Analysis`] accumulates verdicts and, with the time
//! passed in by the caller, decides to continue, promote, roll back or pause. Nothing here
//! performs I/O or reads a clock; the Prometheus module only builds queries and parses
//! answers.

mod config;
mod decision;
mod error;
mod judge;
pub mod prometheus;
mod sample;
pub mod statistics;

pub use config::{AnalysisConfig, Direction, InconclusivePolicy, MetricKind, MetricRule};
pub use decision::{Analysis, DEFAULT_MEASUREMENTS, Decision, Measurement};
pub use error::AnalysisError;
pub use judge::{Bound, MetricOutcome, MetricResult, Threshold, Verdict, VerdictOutcome, judge};
pub use sample::{ArmSample, CheckRun, Observation};
