//! What to measure and how strictly to judge it: the typed form of `[analysis.<name>]`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::AnalysisError;

/// The settings of one analysis (`[analysis.<name>]` in ferry.toml, mapped by the CLI).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// The metrics to judge.
    pub metrics: Vec<MetricRule>,
    /// Requests (or latency samples) needed in each arm before a metric is judged; below it
    /// the metric is inconclusive: the step holds, it never fails nor passes on thin data.
    pub min_samples: u64,
    /// How often the daemon takes a measurement (the pure core only reports it).
    pub interval: Duration,
    /// Conclusive measurements to take before concluding (pass, fail within the limit, or
    /// marginal within the limit); exclusive with `duration`. When neither is set, 3.
    pub measurements: Option<u32>,
    /// Measure for this long, then conclude; exclusive with `measurements`.
    pub duration: Option<Duration>,
    /// Failed measurements tolerated: one more rolls back (0: the first failure does).
    pub failure_limit: u32,
    /// Marginal measurements tolerated: one more applies `on_inconclusive`. Measurements
    /// with too few samples do not count here: they hold until the time box ends.
    pub inconclusive_limit: u32,
    /// What to do when the analysis cannot conclude: too many marginal measurements, or
    /// the time box ended first (e.g. traffic too low to reach `min_samples`).
    pub on_inconclusive: InconclusivePolicy,
    /// How long the analysis may go on without concluding; `None` waits indefinitely.
    pub time_box: Option<Duration>,
    /// Score (0–100) at or above which a measurement passes.
    pub pass_score: f64,
    /// Score at or above which a measurement that does not pass is marginal rather than failed.
    pub marginal_score: f64,
    /// Significance level of every test (one-sided): a difference counts only when its
    /// p-value is below this.
    pub significance: f64,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        Self {
            metrics: Vec::new(),
            min_samples: 200,
            interval: Duration::from_secs(30),
            measurements: None,
            duration: None,
            failure_limit: 0,
            inconclusive_limit: 0,
            on_inconclusive: InconclusivePolicy::Pause,
            time_box: Some(Duration::from_secs(600)),
            pass_score: 95.0,
            marginal_score: 75.0,
            significance: 0.01,
        }
    }
}

/// What to do with an analysis that stays inconclusive past its limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InconclusivePolicy {
    /// Hold the rollout where it is until a person promotes or aborts it.
    Pause,
    /// Treat it as a failure: traffic back to stable.
    Rollback,
    /// Treat it as a success.
    Promote,
}

/// What a metric measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricKind {
    /// Share of requests that did not fail (non-5xx), 0–1.
    SuccessRate,
    /// Share of requests that failed, 0–1.
    ErrorRate,
    /// Median latency, ms.
    LatencyP50,
    /// 95th percentile latency, ms.
    LatencyP95,
    /// 99th percentile latency, ms.
    LatencyP99,
    /// Requests per second.
    Throughput,
    /// A value supplied by a provider under the rule's `name` (e.g. a Prometheus query;
    /// ferry.toml calls this kind `query`).
    #[serde(alias = "query")]
    Custom,
    /// A check run by a provider (a command's exit code, an HTTP answer): passes or fails
    /// on its own, keyed by the rule's `name`; `min_samples` does not apply.
    Check,
}

impl MetricKind {
    /// The direction in which this kind of metric improves.
    pub fn natural_direction(self) -> Option<Direction> {
        match self {
            Self::SuccessRate | Self::Throughput => Some(Direction::HigherIsBetter),
            Self::ErrorRate | Self::LatencyP50 | Self::LatencyP95 | Self::LatencyP99 => {
                Some(Direction::LowerIsBetter)
            }
            Self::Check => Some(Direction::HigherIsBetter),
            Self::Custom => None,
        }
    }

    /// The latency quantile this kind measures, if it is a latency.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Self::LatencyP50 => Some(0.5),
            Self::LatencyP95 => Some(0.95),
            Self::LatencyP99 => Some(0.99),
            _ => None,
        }
    }

    /// How the metric is named in explanations.
    pub fn label(self) -> &'static str {
        match self {
            Self::SuccessRate => "success rate",
            Self::ErrorRate => "error rate",
            Self::LatencyP50 => "p50 latency",
            Self::LatencyP95 => "p95 latency",
            Self::LatencyP99 => "p99 latency",
            Self::Throughput => "throughput",
            Self::Custom => "custom metric",
            Self::Check => "check",
        }
    }
}

/// Which way a metric gets better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Smaller values are better (latency, errors).
    LowerIsBetter,
    /// Larger values are better (success rate, throughput).
    HigherIsBetter,
}

/// One metric and its bounds.
///
/// Bounds: `max`/`min` are absolute; `max_relative`/`min_relative` are multiples of the
/// stable revision's value over the same window. A rule with no bound gets a relative bound
/// of 1× stable in its bad direction (any significant worsening beyond `allowed_increase`
/// fails).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricRule {
    /// Display name; also the key of a custom metric's values. Defaults to the kind's label.
    pub name: Option<String>,
    /// What is measured.
    pub kind: MetricKind,
    /// The canary fails above this absolute value.
    pub max: Option<f64>,
    /// The canary fails below this absolute value.
    pub min: Option<f64>,
    /// The canary fails above this multiple of stable (e.g. 1.2).
    pub max_relative: Option<f64>,
    /// The canary fails below this multiple of stable (e.g. 0.9).
    pub min_relative: Option<f64>,
    /// Which way is better; required for custom metrics, implied for the others.
    pub direction: Option<Direction>,
    /// Effect-size floor for relative bounds, in the metric's unit (0.01 = one percentage
    /// point of error rate, 20 = 20 ms): the canary must be worse than stable by more than
    /// this to fail, so significant but negligible differences pass.
    pub allowed_increase: f64,
    /// A failure of a critical metric fails the whole measurement (score 0).
    pub critical: bool,
    /// Weight of the metric in the score.
    pub weight: f64,
}

impl Default for MetricRule {
    fn default() -> Self {
        Self::new(MetricKind::ErrorRate)
    }
}

impl MetricRule {
    /// A rule of `kind` with no explicit bound, weight 1, not critical.
    pub fn new(kind: MetricKind) -> Self {
        Self {
            name: None,
            kind,
            max: None,
            min: None,
            max_relative: None,
            min_relative: None,
            direction: None,
            allowed_increase: 0.0,
            critical: false,
            weight: 1.0,
        }
    }

    /// The name used in results and explanations.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.kind.label().to_owned())
    }

    /// The direction in force: explicit, else the kind's natural one.
    pub fn effective_direction(&self) -> Option<Direction> {
        self.direction.or(self.kind.natural_direction())
    }

    /// Whether the rule compares with stable (and so needs samples from both arms).
    pub fn is_relative(&self) -> bool {
        if self.kind == MetricKind::Check {
            return false;
        }
        self.max_relative.is_some()
            || self.min_relative.is_some()
            || (self.max.is_none() && self.min.is_none())
    }
}

impl AnalysisConfig {
    /// Checks every setting and reports all problems at once.
    pub fn validate(&self) -> Result<(), Vec<AnalysisError>> {
        let mut problems = Vec::new();
        let mut bad = |field: String, reason: &str| {
            problems.push(AnalysisError::InvalidConfig {
                field,
                reason: reason.to_owned(),
            });
        };
        if self.metrics.is_empty() {
            bad("metrics".into(), "at least one metric is needed");
        }
        if self.measurements == Some(0) {
            bad("measurements".into(), "must be at least 1");
        }
        if self.measurements.is_some() && self.duration.is_some() {
            bad(
                "duration".into(),
                "`measurements` and `duration` both say when the analysis ends; keep one",
            );
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            bad("duration".into(), "must be longer than zero");
        }
        if !(0.0..=100.0).contains(&self.pass_score) {
            bad("pass_score".into(), "must be between 0 and 100");
        }
        if !(0.0..=100.0).contains(&self.marginal_score) || self.marginal_score > self.pass_score {
            bad(
                "marginal_score".into(),
                "must be between 0 and 100 and not above pass_score",
            );
        }
        if !(self.significance > 0.0 && self.significance < 0.5) {
            bad(
                "significance".into(),
                "must be above 0 and below 0.5 (e.g. 0.01)",
            );
        }
        if self.interval.is_zero() {
            bad("interval".into(), "must be longer than zero");
        }
        for (i, rule) in self.metrics.iter().enumerate() {
            let field = |name: &str| format!("metrics[{i}].{name}");
            for (name, value) in [("max", rule.max), ("min", rule.min)] {
                if value.is_some_and(|v| !v.is_finite()) {
                    bad(field(name), "must be a finite number");
                }
            }
            for (name, value) in [
                ("max_relative", rule.max_relative),
                ("min_relative", rule.min_relative),
            ] {
                if value.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
                    bad(
                        field(name),
                        "must be a positive multiple of stable, e.g. 1.2",
                    );
                }
            }
            if let (Some(min), Some(max)) = (rule.min, rule.max)
                && min > max
            {
                bad(field("min"), "is above max");
            }
            if !(rule.allowed_increase.is_finite() && rule.allowed_increase >= 0.0) {
                bad(field("allowed_increase"), "must be a non-negative number");
            }
            if !(rule.weight.is_finite() && rule.weight > 0.0) {
                bad(field("weight"), "must be a positive number");
            }
            if rule.kind == MetricKind::Check && rule.name.as_deref().is_none_or(str::is_empty) {
                bad(field("name"), "a check needs a name");
            }
            if rule.kind == MetricKind::Custom {
                if rule.name.as_deref().is_none_or(str::is_empty) {
                    bad(field("name"), "a custom metric needs a name");
                }
                let unbounded = rule.max.is_none()
                    && rule.min.is_none()
                    && rule.max_relative.is_none()
                    && rule.min_relative.is_none();
                if unbounded && rule.direction.is_none() {
                    bad(
                        field("direction"),
                        "a custom metric without bounds needs \"lower-is-better\" or \"higher-is-better\"",
                    );
                }
            }
            let is_rate = matches!(rule.kind, MetricKind::SuccessRate | MetricKind::ErrorRate);
            if is_rate {
                for (name, value) in [("max", rule.max), ("min", rule.min)] {
                    if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                        bad(
                            field(name),
                            "a rate is a fraction between 0 and 1 (0.01 = 1%)",
                        );
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}
