//! Judging one measurement: each metric of the canary against its bounds and the stable arm,
//! then a weighted score and an overall verdict.
//!
//! A metric fails only when three things hold at once: the canary's estimate is beyond the
//! limit (`max_relative × stable`, widened by the `allowed_increase` floor, or an absolute
//! `max`/`min`), the difference is statistically significant at the configured level, and
//! enough samples were seen in each arm. Too few samples give `Inconclusive`, never `Fail`
//! nor `Pass`: low traffic holds the rollout rather than deciding on noise.
//!
//! Tests used per bound:
//! - rates, relative: two-proportion z-test, or Fisher's exact test when an expected count
//!   is below 10, *and* an exact binomial test against the limit (intersection–union: the
//!   larger p-value counts); rates, absolute: exact binomial test against the limit;
//! - latency, relative: Mann–Whitney U (whole distribution) and a tail-proportion test
//!   (share of requests above stable's quantile), combined with a Bonferroni correction so a
//!   regression in the tail alone is caught too, *and* an exact binomial test that the
//!   canary's quantile is beyond the limit; the Hodges–Lehmann shift is reported;
//! - latency, absolute: exact binomial test on the share of requests beyond the limit;
//! - throughput and single-valued custom metrics: a plain comparison (one number per arm).

use std::cell::OnceCell;

use serde::{Deserialize, Serialize};

use crate::config::{AnalysisConfig, Direction, MetricKind, MetricRule};
use crate::sample::{ArmSample, Observation, finite};
use crate::statistics::{
    Alternative, Method, ProportionMethod, Shift, binomial_at_least, compare_proportions,
    hodges_lehmann, mann_whitney_u, quantile_sorted,
};

/// The outcome of one metric in one measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricOutcome {
    /// Within its bounds, or beyond them without statistical significance.
    Pass,
    /// Significantly beyond a bound.
    Fail,
    /// Too few samples or no data: the measurement cannot judge this metric yet.
    Inconclusive,
}

/// Which kind of bound a threshold comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bound {
    /// Absolute upper bound (`max`).
    Max,
    /// Absolute lower bound (`min`).
    Min,
    /// Upper bound relative to stable (`max_relative`).
    MaxRelative,
    /// Lower bound relative to stable (`min_relative`).
    MinRelative,
}

impl Bound {
    fn is_upper(self) -> bool {
        matches!(self, Self::Max | Self::MaxRelative)
    }

    fn is_relative(self) -> bool {
        matches!(self, Self::MaxRelative | Self::MinRelative)
    }
}

/// The bound a metric was judged against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// Kind of bound.
    pub bound: Bound,
    /// The configured value: the absolute limit, or the multiple of stable.
    pub setting: f64,
    /// The absolute value the canary was compared with (for relative bounds: the multiple of
    /// stable, widened by `allowed_increase`).
    pub limit: f64,
    /// Whether the canary's estimate lies beyond the limit.
    pub exceeded: bool,
}

/// The judgement of one metric in one measurement, with everything needed to explain it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    /// Display name.
    pub name: String,
    /// What was measured.
    pub kind: MetricKind,
    /// Pass, fail or inconclusive.
    pub outcome: MetricOutcome,
    /// Whether a failure of this metric fails the measurement.
    pub critical: bool,
    /// Weight in the score.
    pub weight: f64,
    /// The canary's value (rate as a fraction, latency in ms, throughput in req/s).
    pub canary: Option<f64>,
    /// The stable arm's value over the same window.
    pub stable: Option<f64>,
    /// Samples behind the canary's value.
    pub canary_samples: u64,
    /// Samples behind the stable arm's value.
    pub stable_samples: u64,
    /// p-value of the test behind the decision (one-sided, in the bad direction).
    pub p_value: Option<f64>,
    /// Name of that test.
    pub test: Option<String>,
    /// `canary / stable - 1` (e.g. 2.09 for +209%).
    pub relative_change: Option<f64>,
    /// `canary - stable`, in the metric's unit.
    pub difference: Option<f64>,
    /// Hodges–Lehmann shift of the canary's latency distribution, with its interval.
    pub shift: Option<Shift>,
    /// The bound that decided (the failing one, else the main one).
    pub threshold: Option<Threshold>,
    /// Remarks on the data, e.g. ignored NaN values.
    pub notes: Vec<String>,
    /// One line in plain words.
    pub explanation: String,
}

/// The overall outcome of one measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerdictOutcome {
    /// Score at or above `pass_score`.
    Pass,
    /// Score between `marginal_score` and `pass_score`: neither pass nor fail.
    Marginal,
    /// Score below `marginal_score`, or a critical metric failed.
    Fail,
    /// Some metrics cannot be judged yet and the others do not decide alone.
    Inconclusive,
}

/// The verdict of one measurement: what the daemon stores and `ferry history` shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Overall outcome.
    pub outcome: VerdictOutcome,
    /// Weighted share of passing metrics, 0–100 (0 when a critical metric failed).
    pub score: f64,
    /// Per-metric results, in the configured order.
    pub metrics: Vec<MetricResult>,
    /// One line in plain words.
    pub summary: String,
}

impl Verdict {
    /// The summary followed by one line per metric.
    pub fn explain(&self) -> String {
        let mut text = self.summary.clone();
        for metric in &self.metrics {
            text.push_str("\n  ");
            text.push_str(&metric.explanation);
        }
        text
    }
}

/// Judges one measurement of both arms against the configured metrics.
pub fn judge(config: &AnalysisConfig, observation: &Observation) -> Verdict {
    let latencies = OnceCell::new();
    let metrics: Vec<MetricResult> = config
        .metrics
        .iter()
        .map(|rule| judge_metric(config, rule, observation, &latencies))
        .collect();
    score(config, metrics)
}

fn score(config: &AnalysisConfig, metrics: Vec<MetricResult>) -> Verdict {
    let weight_of = |outcome: MetricOutcome| -> f64 {
        metrics
            .iter()
            .filter(|m| m.outcome == outcome)
            // A fold from +0.0: an empty `sum` of f64 is -0.0, which would print as "-0".
            .fold(0.0, |total, m| total + m.weight)
    };
    let (passed, failed, pending) = (
        weight_of(MetricOutcome::Pass),
        weight_of(MetricOutcome::Fail),
        weight_of(MetricOutcome::Inconclusive),
    );
    let total = passed + failed + pending;
    let count = |outcome| metrics.iter().filter(|m| m.outcome == outcome).count();
    let critical_failure = metrics
        .iter()
        .find(|m| m.critical && m.outcome == MetricOutcome::Fail);
    if total <= 0.0 {
        return Verdict {
            outcome: VerdictOutcome::Inconclusive,
            score: 0.0,
            metrics,
            summary: "inconclusive: no metric to judge".into(),
        };
    }
    // Clamped: with uneven weights the division can land a hair above 100.
    let score = (100.0 * passed / total).clamp(0.0, 100.0);
    let best_case = 100.0 * (passed + pending) / total;
    let (outcome, score, summary) = if let Some(critical) = critical_failure {
        (
            VerdictOutcome::Fail,
            0.0,
            format!("failed: score 0 — critical metric {} failed", critical.name),
        )
    } else if pending > 0.0 && best_case < config.marginal_score {
        (
            VerdictOutcome::Fail,
            score,
            format!(
                "failed: score {score:.0} — {} of {} metrics failed, too many for the rest to save",
                count(MetricOutcome::Fail),
                metrics.len()
            ),
        )
    } else if pending > 0.0 {
        (
            VerdictOutcome::Inconclusive,
            score,
            format!(
                "inconclusive: {} of {} metrics cannot be judged yet: holding",
                count(MetricOutcome::Inconclusive),
                metrics.len()
            ),
        )
    } else {
        let passed_count = count(MetricOutcome::Pass);
        let tally = format!("{passed_count} of {} metrics passed", metrics.len());
        if score >= config.pass_score {
            (
                VerdictOutcome::Pass,
                score,
                format!("passed: score {score:.0} ({tally})"),
            )
        } else if score >= config.marginal_score {
            (
                VerdictOutcome::Marginal,
                score,
                format!(
                    "marginal: score {score:.0} ({tally}; pass needs {:.0})",
                    config.pass_score
                ),
            )
        } else {
            (
                VerdictOutcome::Fail,
                score,
                format!(
                    "failed: score {score:.0} ({tally}; marginal needs {:.0})",
                    config.marginal_score
                ),
            )
        }
    };
    Verdict {
        outcome,
        score,
        metrics,
        summary,
    }
}

/// Latency samples of both arms, cleaned and sorted once per measurement and shared by all
/// latency metrics, with the results that do not depend on the quantile judged.
struct Latencies {
    canary: Vec<f64>,
    stable: Vec<f64>,
    notes: Vec<String>,
    shift: OnceCell<Option<Shift>>,
    /// Mann–Whitney p-values for "canary slower" and "canary faster".
    ranks: [OnceCell<Option<f64>>; 2],
}

impl Latencies {
    fn new(obs: &Observation) -> Self {
        let mut notes = Vec::new();
        let mut clean = |arm: &ArmSample, which: &str| {
            let (mut kept, dropped) = finite(&arm.latencies_ms);
            if dropped > 0 {
                notes.push(format!(
                    "{dropped} non-finite {which} latency samples ignored"
                ));
            }
            kept.sort_by(f64::total_cmp);
            kept
        };
        let canary = clean(&obs.canary, "canary");
        let stable = clean(&obs.stable, "stable");
        Self {
            canary,
            stable,
            notes,
            shift: OnceCell::new(),
            ranks: [OnceCell::new(), OnceCell::new()],
        }
    }

    fn shift(&self, confidence: f64) -> Option<Shift> {
        self.shift
            .get_or_init(|| hodges_lehmann(&self.canary, &self.stable, confidence))
            .clone()
    }

    fn ranks(&self, alternative: Alternative) -> Option<f64> {
        let slot = usize::from(alternative != Alternative::Greater);
        *self.ranks[slot].get_or_init(|| {
            mann_whitney_u(&self.canary, &self.stable, alternative, Method::Auto).map(|r| r.p_value)
        })
    }
}

/// The measurements of one metric in both arms, in the form its tests need.
enum Data<'a> {
    /// Event counts: (events, trials) per arm.
    Rate {
        canary: (u64, u64),
        stable: (u64, u64),
    },
    /// Sorted finite latencies per arm, and the quantile judged.
    Latency { q: f64, latencies: &'a Latencies },
    /// One number per arm (throughput, single-valued custom metrics), or many values.
    Values {
        canary: Vec<f64>,
        stable: Vec<f64>,
        samples: (u64, u64),
    },
}

impl<'a> Data<'a> {
    fn collect(
        rule: &MetricRule,
        obs: &Observation,
        latencies: &'a OnceCell<Latencies>,
    ) -> (Self, Vec<String>) {
        let (canary, stable) = (&obs.canary, &obs.stable);
        let mut notes = Vec::new();
        let data = match rule.kind {
            MetricKind::ErrorRate | MetricKind::SuccessRate => {
                let mut counts = |arm: &ArmSample, which: &str| {
                    if arm.errors > arm.requests {
                        notes.push(format!(
                            "{which} reported {} errors for {} requests; errors capped",
                            arm.errors, arm.requests
                        ));
                    }
                    let errors = arm.errors.min(arm.requests);
                    let events = if rule.kind == MetricKind::ErrorRate {
                        errors
                    } else {
                        arm.requests - errors
                    };
                    (events, arm.requests)
                };
                Data::Rate {
                    canary: counts(canary, "canary"),
                    stable: counts(stable, "stable"),
                }
            }
            MetricKind::LatencyP50 | MetricKind::LatencyP95 | MetricKind::LatencyP99 => {
                let latencies = latencies.get_or_init(|| Latencies::new(obs));
                notes.extend(latencies.notes.iter().cloned());
                Data::Latency {
                    q: rule.kind.quantile().unwrap_or(0.5),
                    latencies,
                }
            }
            MetricKind::Throughput => {
                let mut one = |arm: &ArmSample, which: &str| match arm.throughput {
                    Some(v) if v.is_finite() => vec![v],
                    Some(_) => {
                        notes.push(format!("non-finite {which} throughput ignored"));
                        Vec::new()
                    }
                    None => Vec::new(),
                };
                Data::Values {
                    canary: one(canary, "canary"),
                    stable: one(stable, "stable"),
                    samples: (canary.requests, stable.requests),
                }
            }
            MetricKind::Custom | MetricKind::Check => {
                let name = rule.display_name();
                let mut values = |arm: &ArmSample, which: &str| {
                    let raw = arm.custom.get(&name).map(Vec::as_slice).unwrap_or(&[]);
                    let (kept, dropped) = finite(raw);
                    if dropped > 0 {
                        notes.push(format!("{dropped} non-finite {which} values ignored"));
                    }
                    kept
                };
                let (c, s) = (values(canary, "canary"), values(stable, "stable"));
                let samples = (
                    canary.requests.max(c.len() as u64),
                    stable.requests.max(s.len() as u64),
                );
                Data::Values {
                    canary: c,
                    stable: s,
                    samples,
                }
            }
        };
        (data, notes)
    }

    fn sample_sizes(&self) -> (u64, u64) {
        match self {
            Data::Rate { canary, stable } => (canary.1, stable.1),
            Data::Latency { latencies, .. } => {
                (latencies.canary.len() as u64, latencies.stable.len() as u64)
            }
            Data::Values { samples, .. } => *samples,
        }
    }

    fn values(&self) -> (Option<f64>, Option<f64>) {
        let rate = |(events, n): (u64, u64)| (n > 0).then(|| events as f64 / n as f64);
        let mean =
            |v: &[f64]| (!v.is_empty()).then(|| v.iter().map(|x| x / v.len() as f64).sum::<f64>());
        match self {
            Data::Rate { canary, stable } => (rate(*canary), rate(*stable)),
            Data::Latency { q, latencies } => (
                quantile_sorted(&latencies.canary, *q),
                quantile_sorted(&latencies.stable, *q),
            ),
            Data::Values { canary, stable, .. } => (mean(canary), mean(stable)),
        }
    }

    /// p-value (one-sided, in the direction of the bound) that the canary is beyond `limit`,
    /// with the test's name.
    ///
    /// Absolute bounds: one test of the canary against the limit. Relative bounds: an
    /// intersection–union test — the canary must be significantly worse than stable (a
    /// two-sample test, which accounts for stable's own noise) *and* significantly beyond the
    /// limit (a one-sample test against `max_relative × stable` widened by the floor); the
    /// p-value is the larger of the two, which keeps the level at `significance`. Without the
    /// second test an equal canary fails whenever stable happens to look unusually good.
    fn test(&self, bound: Bound, limit: f64) -> (Option<f64>, Option<&'static str>) {
        let alternative = if bound.is_upper() {
            Alternative::Greater
        } else {
            Alternative::Less
        };
        let both = |difference: Option<f64>, beyond: Option<f64>| match (difference, beyond) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        match self {
            Data::Rate { canary, stable } => {
                let (k, n) = *canary;
                let rate_limit = limit.clamp(0.0, 1.0);
                let beyond = if bound.is_upper() {
                    binomial_at_least(k, n, rate_limit)
                } else {
                    binomial_at_least(n.saturating_sub(k), n, 1.0 - rate_limit)
                };
                if !bound.is_relative() {
                    return (beyond, Some("exact binomial test against the limit"));
                }
                let test = compare_proportions(k, n, stable.0, stable.1, alternative);
                let name = test.as_ref().map(|t| match t.method {
                    ProportionMethod::FisherExact => {
                        "fisher exact test + exact binomial test against the limit"
                    }
                    ProportionMethod::ZTest => {
                        "two-proportion z-test + exact binomial test against the limit"
                    }
                });
                (both(test.map(|t| t.p_value), beyond), name)
            }
            Data::Latency { q, latencies } => {
                let (canary, stable) = (&latencies.canary, &latencies.stable);
                let n1 = canary.len() as u64;
                // The canary's quantile is beyond the limit iff more than a (1 - q) share of
                // its requests lie beyond it (a q share, for a lower bound).
                let (k, share) = if bound.is_upper() {
                    (canary.iter().filter(|&&x| x > limit).count(), 1.0 - q)
                } else {
                    (canary.iter().filter(|&&x| x < limit).count(), *q)
                };
                let beyond = binomial_at_least(k as u64, n1, share);
                if !bound.is_relative() {
                    return (beyond, Some("exact binomial test against the limit"));
                }
                let Some(stable_q) = quantile_sorted(stable, *q) else {
                    return (None, None);
                };
                let ranks = latencies.ranks(alternative);
                let past_stable = |v: &[f64]| {
                    v.iter()
                        .filter(|&&x| {
                            if bound.is_upper() {
                                x > stable_q
                            } else {
                                x < stable_q
                            }
                        })
                        .count() as u64
                };
                let tail = compare_proportions(
                    past_stable(canary),
                    n1,
                    past_stable(stable),
                    stable.len() as u64,
                    Alternative::Greater,
                )
                .map(|t| t.p_value);
                // Whole distribution or tail: Bonferroni over the two.
                let difference = match (ranks, tail) {
                    (Some(a), Some(b)) => Some((2.0 * a.min(b)).min(1.0)),
                    (a, b) => a.or(b),
                };
                (
                    both(difference, beyond),
                    Some("mann-whitney u + tail test + exact binomial test against the limit"),
                )
            }
            Data::Values { canary, stable, .. } => {
                if bound.is_relative() && canary.len() >= 2 && stable.len() >= 2 {
                    let p = mann_whitney_u(canary, stable, alternative, Method::Auto)
                        .map(|r| r.p_value);
                    (p, Some("mann-whitney u"))
                } else {
                    (None, None)
                }
            }
        }
    }
}

fn judge_metric(
    config: &AnalysisConfig,
    rule: &MetricRule,
    obs: &Observation,
    latencies: &OnceCell<Latencies>,
) -> MetricResult {
    if rule.kind == MetricKind::Check {
        return judge_check(rule, obs);
    }
    let name = rule.display_name();
    let (data, mut notes) = Data::collect(rule, obs, latencies);
    let (canary_samples, stable_samples) = data.sample_sizes();
    let (canary, stable) = data.values();
    let needs_stable = rule.is_relative();
    let mut result = MetricResult {
        name: name.clone(),
        kind: rule.kind,
        outcome: MetricOutcome::Inconclusive,
        critical: rule.critical,
        weight: if rule.weight.is_finite() && rule.weight > 0.0 {
            rule.weight
        } else {
            notes.push("weight is not a positive number; using 1".into());
            1.0
        },
        canary,
        stable,
        canary_samples,
        stable_samples,
        p_value: None,
        test: None,
        relative_change: None,
        difference: None,
        shift: None,
        threshold: None,
        notes: Vec::new(),
        explanation: String::new(),
    };
    if let (Some(c), Some(s)) = (canary, stable) {
        result.difference = Some(c - s);
        result.relative_change = (s != 0.0).then(|| c / s - 1.0);
    }

    let min = config.min_samples;
    if canary_samples < min || (needs_stable && stable_samples < min) {
        result.explanation = if needs_stable {
            format!(
                "{name}: too few samples (canary {canary_samples}, stable {stable_samples}; \
                 need {min} in each): holding"
            )
        } else {
            format!("{name}: too few samples (canary {canary_samples}; need {min}): holding")
        };
        result.notes = notes;
        return result;
    }
    let Some(c) = canary else {
        result.explanation = format!("{name}: no canary value in this window: holding");
        result.notes = notes;
        return result;
    };
    if needs_stable && stable.is_none() {
        result.explanation =
            format!("{name}: no stable value to compare with in this window: holding");
        result.notes = notes;
        return result;
    }

    if let Data::Latency { latencies, .. } = &data {
        result.shift = latencies.shift(1.0 - 2.0 * config.significance);
    }

    let mut bounds: Vec<(Bound, f64)> = Vec::new();
    if let Some(r) = rule.max_relative {
        bounds.push((Bound::MaxRelative, r));
    }
    if let Some(r) = rule.min_relative {
        bounds.push((Bound::MinRelative, r));
    }
    if let Some(m) = rule.max {
        bounds.push((Bound::Max, m));
    }
    if let Some(m) = rule.min {
        bounds.push((Bound::Min, m));
    }
    if bounds.is_empty() {
        let direction = rule.effective_direction().unwrap_or_else(|| {
            notes.push("no bound and no direction given; assuming lower is better".into());
            Direction::LowerIsBetter
        });
        bounds.push(match direction {
            Direction::LowerIsBetter => (Bound::MaxRelative, 1.0),
            Direction::HigherIsBetter => (Bound::MinRelative, 1.0),
        });
    }

    let alpha = config.significance;
    let mut decided: Option<(Threshold, Option<f64>, Option<&'static str>)> = None;
    let mut failing = false;
    // `validate` rejects these; a judge fed an unvalidated rule still must not misbehave.
    let allowed_increase = if rule.allowed_increase.is_finite() && rule.allowed_increase >= 0.0 {
        rule.allowed_increase
    } else {
        notes.push("allowed_increase is not a non-negative number; using 0".into());
        0.0
    };
    for (bound, setting) in bounds {
        if !setting.is_finite() {
            notes.push(format!("{bound:?} bound is not a finite number; ignored"));
            continue;
        }
        let limit = match (bound, stable) {
            (Bound::Max | Bound::Min, _) => setting,
            (Bound::MaxRelative, Some(s)) => (setting * s).max(s + allowed_increase),
            (Bound::MinRelative, Some(s)) => (setting * s).min(s - allowed_increase),
            (_, None) => continue,
        };
        let exceeded = if bound.is_upper() {
            c > limit
        } else {
            c < limit
        };
        let (p, test) = data.test(bound, limit);
        let fails = exceeded && p.is_none_or(|p| p < alpha);
        let threshold = Threshold {
            bound,
            setting,
            limit,
            exceeded,
        };
        if fails && !failing {
            failing = true;
            decided = Some((threshold, p, test));
        } else if decided.is_none() {
            decided = Some((threshold, p, test));
        }
    }
    result.outcome = if failing {
        MetricOutcome::Fail
    } else {
        MetricOutcome::Pass
    };
    if let Some((threshold, p, test)) = decided {
        result.p_value = p;
        result.test = test.map(str::to_owned);
        result.threshold = Some(threshold);
    }
    result.explanation = explain(rule, &result);
    result.notes = notes;
    result
}

/// A check decides alone: it passed or it did not; it has no stable arm and no sample size.
fn judge_check(rule: &MetricRule, obs: &Observation) -> MetricResult {
    let name = rule.display_name();
    let run = obs.canary.checks.get(&name);
    let (outcome, explanation) = match run {
        None => (
            MetricOutcome::Inconclusive,
            format!("{name}: did not run in this window: holding"),
        ),
        Some(r) if r.passed => (MetricOutcome::Pass, format!("{name}: {}: passed", r.detail)),
        Some(r) => (MetricOutcome::Fail, format!("{name}: {}: failed", r.detail)),
    };
    MetricResult {
        name,
        kind: MetricKind::Check,
        outcome,
        critical: rule.critical,
        weight: if rule.weight.is_finite() && rule.weight > 0.0 {
            rule.weight
        } else {
            1.0
        },
        canary: run.map(|r| if r.passed { 1.0 } else { 0.0 }),
        stable: None,
        canary_samples: u64::from(run.is_some()),
        stable_samples: 0,
        p_value: None,
        test: None,
        relative_change: None,
        difference: None,
        shift: None,
        threshold: None,
        notes: Vec::new(),
        explanation,
    }
}

/// "p95 latency: canary 312 ms vs stable 101 ms (+209%, p < 0.001) — above 1.2× stable: failed"
fn explain(rule: &MetricRule, r: &MetricResult) -> String {
    let kind = rule.kind;
    let mut text = format!("{}: canary {}", r.name, format_value(kind, r.canary));
    let mut details = Vec::new();
    if let Some(s) = r.stable {
        text.push_str(&format!(" vs stable {}", format_value(kind, Some(s))));
        if let Some(d) = r.difference {
            let is_rate = matches!(kind, MetricKind::ErrorRate | MetricKind::SuccessRate);
            if is_rate {
                details.push(format!("{:+.1} pp", no_negative_zero(d * 100.0, 10.0)));
            } else if let Some(change) = r.relative_change {
                details.push(format!("{:+.0}%", no_negative_zero(change * 100.0, 1.0)));
            } else {
                details.push(format!("{:+}", round_for_display(d)));
            }
        }
    }
    if let Some(p) = r.p_value {
        details.push(format_p(p));
    }
    if !details.is_empty() {
        text.push_str(&format!(" ({})", details.join(", ")));
    }
    let Some(t) = &r.threshold else {
        return text;
    };
    let limit = format_value(kind, Some(t.limit));
    let setting = t.setting;
    let floor_binding = t.bound.is_relative()
        && r.stable
            .is_some_and(|s| (setting * s - t.limit).abs() > f64::EPSILON * t.limit.abs().max(1.0));
    let allowed = format_increase(kind, rule.allowed_increase);
    let phrase = match (t.bound, t.exceeded) {
        (Bound::MaxRelative, true) if floor_binding => {
            format!("above stable by more than the allowed {allowed}")
        }
        (Bound::MaxRelative, false) if floor_binding => {
            format!("within the allowed {allowed} above stable")
        }
        (Bound::MaxRelative, true) => format!("above {setting}× stable"),
        (Bound::MaxRelative, false) => format!("within {setting}× stable"),
        (Bound::MinRelative, true) if floor_binding => {
            format!("below stable by more than the allowed {allowed}")
        }
        (Bound::MinRelative, false) if floor_binding => {
            format!("within the allowed {allowed} below stable")
        }
        (Bound::MinRelative, true) => format!("below {setting}× stable"),
        (Bound::MinRelative, false) => format!("within {setting}× stable"),
        (Bound::Max, true) => format!("above the {limit} limit"),
        (Bound::Max, false) => format!("within the {limit} limit"),
        (Bound::Min, true) => format!("below the {limit} minimum"),
        (Bound::Min, false) => format!("above the {limit} minimum"),
    };
    let verdict = match r.outcome {
        MetricOutcome::Fail => "failed",
        MetricOutcome::Pass if t.exceeded => {
            return format!("{text} — {phrase} but not significantly: passed");
        }
        MetricOutcome::Pass => "passed",
        MetricOutcome::Inconclusive => "holding",
    };
    format!("{text} — {phrase}: {verdict}")
}

/// An allowed difference in the metric's unit: percentage points for rates.
fn format_increase(kind: MetricKind, v: f64) -> String {
    match kind {
        MetricKind::ErrorRate | MetricKind::SuccessRate => format!("{:.1} pp", v * 100.0),
        _ => format_value(kind, Some(v)),
    }
}

/// Rounds to `1 / scale` and turns a negative zero into a positive one, so that a change
/// that rounds away is shown as "+0%" rather than "-0%".
fn no_negative_zero(v: f64, scale: f64) -> f64 {
    (v * scale).round() / scale + 0.0
}

fn format_p(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".into()
    } else {
        format!("p = {p:.3}")
    }
}

fn round_for_display(v: f64) -> f64 {
    if v.abs() >= 100.0 {
        v.round()
    } else {
        (v * 100.0).round() / 100.0
    }
}

fn format_value(kind: MetricKind, value: Option<f64>) -> String {
    let Some(v) = value else {
        return "n/a".into();
    };
    match kind {
        MetricKind::ErrorRate | MetricKind::SuccessRate => {
            let percent = v * 100.0;
            // Two decimals below 1% ("0.21%"), one above; decided on the rounded value so
            // 0.999% reads "1.0%", not "1.00%".
            let one_decimal = (percent * 10.0).round() / 10.0;
            if percent != 0.0 && one_decimal.abs() < 1.0 {
                format!("{percent:.2}%")
            } else {
                format!("{percent:.1}%")
            }
        }
        MetricKind::LatencyP50 | MetricKind::LatencyP95 | MetricKind::LatencyP99 => {
            if v.abs() >= 100.0 {
                format!("{v:.0} ms")
            } else if v.abs() >= 1.0 {
                format!("{v:.1} ms")
            } else {
                format!("{v:.2} ms")
            }
        }
        MetricKind::Throughput => format!("{v:.1} req/s"),
        MetricKind::Custom => format!("{}", round_for_display(v)),
        MetricKind::Check if v > 0.0 => "passed".into(),
        MetricKind::Check => "failed".into(),
    }
}
