//! Canary analysis runs: every interval, the proxy's per-revision statistics of the canary
//! and the stable revision become an `Observation`, `ferry-analysis` judges it, and the
//! accumulated decision answers the rollout engine's `StartAnalysis`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_analysis::{
    Analysis, AnalysisConfig, ArmSample, Decision, Direction, InconclusivePolicy, MetricKind,
    MetricRule, Observation, VerdictOutcome, judge,
};
use ferry_proxy::{RevisionSnapshot, StatsSnapshot};
use ferry_rollout::{AnalysisRun, Event, Verdict};
use ferry_store::RolloutId;
use tokio::sync::mpsc;

use crate::controller::Shared;

/// How many verdict explanations the status keeps (most recent last).
pub(crate) const KEPT_EXPLANATIONS: usize = 3;

/// The typed analysis settings of `[analysis.<name>]`; an error names what the daemon
/// cannot measure (see [`crate::provider::Providers::new`]).
pub(crate) fn config(name: &str, spec: &ferry_spec::Analysis) -> Result<AnalysisConfig, String> {
    crate::provider::Providers::new(name, spec)?;
    let mut metrics = Vec::with_capacity(spec.metrics.len());
    for metric in &spec.metrics {
        let (kind, scale) = match metric.kind {
            ferry_spec::MetricKind::SuccessRate => (MetricKind::SuccessRate, 1.0),
            ferry_spec::MetricKind::ErrorRate => (MetricKind::ErrorRate, 1.0),
            // The spec says seconds; ferry-analysis works in milliseconds.
            ferry_spec::MetricKind::LatencyP50 => (MetricKind::LatencyP50, 1000.0),
            ferry_spec::MetricKind::LatencyP95 => (MetricKind::LatencyP95, 1000.0),
            ferry_spec::MetricKind::LatencyP99 => (MetricKind::LatencyP99, 1000.0),
            ferry_spec::MetricKind::Throughput => (MetricKind::Throughput, 1.0),
            // The query's value is judged in its own unit.
            ferry_spec::MetricKind::Query => (MetricKind::Custom, 1.0),
            ferry_spec::MetricKind::Command | ferry_spec::MetricKind::Http => {
                (MetricKind::Check, 1.0)
            }
        };
        let mut rule = MetricRule::new(kind);
        rule.name = Some(metric.name.clone());
        rule.max = metric.max.map(|v| v * scale);
        rule.min = metric.min.map(|v| v * scale);
        rule.max_relative = metric.max_relative;
        rule.allowed_increase = metric.allowed_increase.map_or(0.0, |v| v * scale);
        rule.critical = metric.critical;
        if kind == MetricKind::Custom {
            // A query bounded only from below gets better as it grows; any other is taken
            // as a cost (an error rate, a latency), like the built-in kinds.
            let only_min =
                metric.min.is_some() && metric.max.is_none() && metric.max_relative.is_none();
            rule.direction = Some(if only_min {
                Direction::HigherIsBetter
            } else {
                Direction::LowerIsBetter
            });
        }
        metrics.push(rule);
    }
    let defaults = AnalysisConfig::default();
    let config = AnalysisConfig {
        metrics,
        min_samples: spec.min_samples,
        interval: spec.interval.as_std(),
        measurements: spec.measurements,
        duration: spec.duration.map(|d| d.as_std()),
        failure_limit: spec.failure_limit,
        inconclusive_limit: spec.inconclusive_limit,
        on_inconclusive: match spec.on_inconclusive {
            ferry_spec::OnInconclusive::Pause => InconclusivePolicy::Pause,
            ferry_spec::OnInconclusive::Rollback => InconclusivePolicy::Rollback,
            ferry_spec::OnInconclusive::Promote => InconclusivePolicy::Promote,
        },
        time_box: spec.timebox.map(|d| d.as_std()).or(defaults.time_box),
        ..defaults
    };
    config.validate().map_err(|problems| {
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        format!("analysis {name}: {}", text.join("; "))
    })?;
    Ok(config)
}

/// What one arm did between two snapshots: the counters' deltas and the latencies that
/// arrived meanwhile (the newest `delta` samples of the proxy's ring, so at most
/// [`ferry_proxy::RECENT_SAMPLES`] per interval).
fn arm(
    before: Option<&RevisionSnapshot>,
    after: Option<&RevisionSnapshot>,
    secs: f64,
) -> ArmSample {
    let Some(after) = after else {
        return ArmSample::default();
    };
    let (requests0, errors0) = before.map_or((0, 0), |b| (b.requests, b.status_5xx));
    let requests = after.requests.saturating_sub(requests0);
    let errors = after.status_5xx.saturating_sub(errors0);
    let new = usize::try_from(requests)
        .unwrap_or(usize::MAX)
        .min(after.recent_latencies_us.len());
    let start = after.recent_latencies_us.len() - new;
    #[expect(
        clippy::cast_precision_loss,
        reason = "latencies and counts far below 2^52"
    )]
    let latencies_ms = after.recent_latencies_us[start..]
        .iter()
        .map(|us| *us as f64 / 1000.0)
        .collect();
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let throughput = (secs > 0.0).then(|| requests as f64 / secs);
    ArmSample {
        requests,
        errors,
        latencies_ms,
        throughput,
        ..ArmSample::default()
    }
}

/// The observation of one interval between two snapshots.
pub(crate) fn observation(
    before: &StatsSnapshot,
    after: &StatsSnapshot,
    service: &str,
    canary: &str,
    stable: Option<&str>,
    interval: Duration,
) -> Observation {
    let secs = interval.as_secs_f64();
    let pick =
        |s: &StatsSnapshot, rev: Option<&str>| rev.and_then(|r| s.revision(service, r)).cloned();
    Observation {
        canary: arm(
            pick(before, Some(canary)).as_ref(),
            pick(after, Some(canary)).as_ref(),
            secs,
        ),
        stable: arm(
            pick(before, stable).as_ref(),
            pick(after, stable).as_ref(),
            secs,
        ),
    }
}

/// One analysis run's context.
pub(crate) struct Run {
    pub shared: Arc<Shared>,
    pub rollout: RolloutId,
    pub service: String,
    pub env: String,
    pub canary: String,
    pub stable: Option<String>,
    pub run: AnalysisRun,
    pub name: String,
    pub step: Option<usize>,
    pub config: AnalysisConfig,
    pub tx: mpsc::UnboundedSender<Event>,
    /// The latest verdict explanations, for the status.
    pub explanations: Arc<Mutex<Vec<String>>>,
    /// Queries and checks measured besides the proxy's statistics.
    pub providers: crate::provider::Providers,
    /// The new revision's image (command checks run in it).
    pub image: String,
    /// The spec being rolled out.
    pub spec: ferry_spec::Spec,
    /// The app+env's replicas (checks call a healthy replica of the new revision).
    pub pools: Arc<Mutex<crate::controller::Pools>>,
}

impl Run {
    /// Measures every interval until the analysis decides, then sends the verdict. A
    /// background analysis (no step) keeps measuring after a pass or a pause, with a fresh
    /// series, until the rollout stops it; only a failure ends it.
    pub(crate) async fn measure(self) {
        let mut started = Instant::now();
        let mut analysis = Analysis::new(&self.config, Duration::ZERO);
        let mut before = self.shared.proxy.stats_snapshot();
        let mut pending: Option<Observation> = None;
        let background = self.step.is_none();
        let step = self.step.and_then(|s| i64::try_from(s).ok()).unwrap_or(-1);
        loop {
            tokio::time::sleep(self.config.interval).await;
            let after = self.shared.proxy.stats_snapshot();
            let mut observation = observation(
                &before,
                &after,
                &self.service,
                &self.canary,
                self.stable.as_deref(),
                self.config.interval,
            );
            before = after;
            if !self.providers.is_empty() {
                let notes = self.provide(&mut observation).await;
                for note in notes {
                    self.note(&format!("analysis {} could not measure: {note}", self.name))
                        .await;
                }
            }
            // A window too thin to judge grows with the next one (see docs/analysis.md);
            // a query's value and a check's outcome are the latest, not a sum.
            let observation = match pending.take() {
                Some(mut earlier) => {
                    let latest = (
                        observation.canary.custom.clone(),
                        observation.stable.custom.clone(),
                    );
                    earlier.absorb(observation);
                    (earlier.canary.custom, earlier.stable.custom) = latest;
                    earlier
                }
                None => observation,
            };
            let config = self.config.clone();
            let judged = tokio::task::spawn_blocking(move || {
                let verdict = judge(&config, &observation);
                (verdict, observation)
            })
            .await;
            let judged = match judged {
                Ok((v, observation)) => {
                    if v.outcome == VerdictOutcome::Inconclusive {
                        pending = Some(observation);
                    }
                    v
                }
                Err(e) => {
                    tracing::error!(error = %e, "the analysis judge panicked");
                    let _ = self.tx.send(Event::AnalysisVerdict {
                        run: self.run,
                        verdict: Verdict::Inconclusive,
                        reference: String::new(),
                        summary: format!("the judge of analysis {} failed: {e}", self.name),
                    });
                    return;
                }
            };
            let explanation = judged.explain();
            let summary = judged.summary.clone();
            let reference = self.store(step, &judged, &explanation).await;
            {
                let mut kept = self.explanations.lock().unwrap_or_else(|e| e.into_inner());
                kept.push(format!("analysis {}: {explanation}", self.name));
                let excess = kept.len().saturating_sub(KEPT_EXPLANATIONS);
                kept.drain(..excess);
                let mut apps = self.shared.apps.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(app) = apps.get_mut(&(self.service.clone(), self.env.clone()))
                    && let Some(status) = app.status.as_mut()
                {
                    status.analysis = kept.clone();
                    app.changed();
                }
            }
            let (verdict, summary) = match analysis.record(judged, started.elapsed()) {
                Decision::Continue => continue,
                Decision::Promote => (Verdict::Pass, summary),
                Decision::Rollback { reason } => (Verdict::Fail, reason),
                Decision::Pause { reason } => (Verdict::Inconclusive, reason),
            };
            let last = verdict == Verdict::Fail || !background;
            let _ = self.tx.send(Event::AnalysisVerdict {
                run: self.run,
                verdict,
                reference,
                summary,
            });
            if last {
                return;
            }
            analysis = Analysis::new(&self.config, Duration::ZERO);
            started = Instant::now();
            pending = None;
        }
    }

    /// Adds the providers' queries and checks to `observation`; notes what failed.
    async fn provide(&self, observation: &mut Observation) -> Vec<String> {
        let replica = {
            let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            pools.get(&self.canary).and_then(|p| {
                p.iter()
                    .find(|r| r.routed)
                    .and_then(|r| r.addr.map(|a| (r.id.as_str().to_owned(), a)))
            })
        };
        let target = crate::provider::Target {
            app: &self.service,
            env: &self.env,
            canary: &self.canary,
            stable: self.stable.as_deref(),
            interval: self.config.interval,
            image: &self.image,
            spec: &self.spec,
            replica,
        };
        self.providers
            .measure(&self.shared, &target, observation)
            .await
    }

    /// A note in the rollout's timeline.
    async fn note(&self, text: &str) {
        if let Err(e) = self
            .shared
            .store
            .append_event(self.rollout, "note", &serde_json::json!({ "text": text }))
            .await
        {
            tracing::error!(error = %e, "cannot record an analysis note");
        }
    }

    /// Stores the verdict and its timeline note; returns the verdict's store reference.
    async fn store(
        &self,
        step: i64,
        verdict: &ferry_analysis::Verdict,
        explanation: &str,
    ) -> String {
        let store = &self.shared.store;
        let json = serde_json::to_value(verdict).unwrap_or(serde_json::Value::Null);
        let reference = match store.record_verdict(self.rollout, step, &json).await {
            Ok(v) => v.seq.to_string(),
            Err(e) => {
                tracing::error!(error = %e, "cannot store the analysis verdict");
                String::new()
            }
        };
        self.note(&format!("analysis {} measured: {explanation}", self.name))
            .await;
        reference
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(requests: u64, errors: u64, latencies: &[u64]) -> RevisionSnapshot {
        RevisionSnapshot {
            service: "app".into(),
            revision: "2".into(),
            requests,
            status_2xx: requests - errors,
            status_3xx: 0,
            status_4xx: 0,
            status_5xx: errors,
            latency_p50_us: 0,
            latency_p95_us: 0,
            latency_p99_us: 0,
            latency_max_us: 0,
            recent_latencies_us: latencies.to_vec(),
        }
    }

    #[test]
    fn an_arm_takes_the_deltas_and_only_the_new_latencies() {
        let before = snap(3, 1, &[1000, 2000, 3000]);
        let after = snap(5, 2, &[1000, 2000, 3000, 4000, 5000]);
        let a = arm(Some(&before), Some(&after), 2.0);
        assert_eq!((a.requests, a.errors), (2, 1));
        assert_eq!(a.latencies_ms, vec![4.0, 5.0]);
        assert_eq!(a.throughput, Some(1.0));
        let missing = arm(Some(&before), None, 2.0);
        assert_eq!(missing.requests, 0);
    }

    #[test]
    fn latency_bounds_become_milliseconds_and_queries_need_prometheus() {
        let spec: ferry_spec::Analysis = serde_json::from_value(serde_json::json!({
            "interval": "2s",
            "measurements": 2,
            "metrics": [
                { "name": "errors", "kind": "error-rate", "max_relative": 1.5 },
                { "name": "p95", "kind": "latency-p95", "max": 0.25, "allowed_increase": 0.02 }
            ]
        }))
        .unwrap();
        let mapped = config("errors", &spec).unwrap();
        assert_eq!(mapped.interval, Duration::from_secs(2));
        assert_eq!(mapped.measurements, Some(2));
        assert_eq!(mapped.metrics[0].max_relative, Some(1.5));
        assert_eq!(mapped.metrics[1].max, Some(250.0));
        assert_eq!(mapped.metrics[1].allowed_increase, 20.0);
        let query: ferry_spec::Analysis = serde_json::from_value(serde_json::json!({
            "metrics": [{ "name": "q", "kind": "query", "query": "up" }]
        }))
        .unwrap();
        let err = config("q", &query).unwrap_err();
        assert!(err.contains("query"), "{err}");
    }
}
