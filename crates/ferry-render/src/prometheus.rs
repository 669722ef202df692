//! The Prometheus target: a scrape configuration (ferry's `/metrics` and the app's) and
//! alert rules on ferry's metric contract. (In Kubernetes the rendered pods carry the
//! conventional `prometheus.io/*` annotations instead; Debian's Prometheus build has no
//! Kubernetes discovery, so no such job is rendered here.)

use ferry_spec::MetricKind;
use serde_json::{Value, json};

use crate::app::App;
use crate::metrics::{
    ANALYSIS_RUNS_TOTAL, REQUEST_DURATION, REQUESTS_TOTAL, ROLLOUTS_TOTAL, TLS_CERT_EXPIRY,
};
use crate::{Error, Rendered, yaml};

/// Error-rate alert threshold when no analysis states one.
const DEFAULT_ERROR_RATE: f64 = 0.05;
/// p95 latency alert threshold (seconds) when no analysis states one.
const DEFAULT_P95_SECONDS: f64 = 0.5;

/// The strictest bound the spec's analyses put on a metric kind, if any.
fn threshold(app: &App<'_>, kind: MetricKind) -> Option<f64> {
    app.spec
        .analysis
        .values()
        .flat_map(|a| a.metrics.iter())
        .filter_map(|m| match (m.kind, kind) {
            (MetricKind::SuccessRate, MetricKind::ErrorRate) => m.min.map(|min| 1.0 - min),
            (k, want) if k == want => m.max,
            _ => None,
        })
        .reduce(f64::min)
}

/// The label matchers of this app (and environment).
fn matchers(app: &App<'_>) -> String {
    match &app.env {
        Some(env) => format!("app=\"{}\",env=\"{env}\"", app.name),
        None => format!("app=\"{}\"", app.name),
    }
}

fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The alert rules (a Prometheus rule file as a JSON tree).
pub(crate) fn rules(app: &App<'_>) -> Value {
    let m = matchers(app);
    let error_rate = round(threshold(app, MetricKind::ErrorRate).unwrap_or(DEFAULT_ERROR_RATE));
    let p95 = round(threshold(app, MetricKind::LatencyP95).unwrap_or(DEFAULT_P95_SECONDS));
    let env = app.env_name().to_owned();
    let labels = |severity: &str| json!({ "severity": severity, "app": app.name, "env": env });
    json!({
        "groups": [{
            "name": format!("ferry-{}", app.name),
            "rules": [
                {
                    "alert": "FerryHighErrorRate",
                    "expr": format!(
                        "sum by (revision) (rate({REQUESTS_TOTAL}{{{m},code=~\"5..\"}}[5m])) / sum by (revision) (rate({REQUESTS_TOTAL}{{{m}}}[5m])) > {error_rate}"
                    ),
                    "for": "5m",
                    "labels": labels("critical"),
                    "annotations": {
                        "summary": format!("{} revision {{{{ $labels.revision }}}} answers more than {}% 5xx", app.name, error_rate * 100.0),
                        "description": "Error rate is {{ $value | humanizePercentage }} over 5 minutes.",
                    },
                },
                {
                    "alert": "FerryHighLatencyP95",
                    "expr": format!(
                        "histogram_quantile(0.95, sum by (le, revision) (rate({REQUEST_DURATION}_bucket{{{m}}}[5m]))) > {p95}"
                    ),
                    "for": "10m",
                    "labels": labels("warning"),
                    "annotations": {
                        "summary": format!("{} revision {{{{ $labels.revision }}}} p95 latency above {p95}s", app.name),
                        "description": "p95 latency is {{ $value | humanizeDuration }}.",
                    },
                },
                {
                    "alert": "FerryInstanceDown",
                    "expr": format!("up{{job=~\"ferry|{}\"}} == 0", app.name),
                    "for": "2m",
                    "labels": labels("critical"),
                    "annotations": {
                        "summary": "{{ $labels.instance }} of job {{ $labels.job }} is down",
                        "description": "Prometheus could not scrape it for 2 minutes.",
                    },
                },
                {
                    "alert": "FerryRolloutFailed",
                    "expr": format!("increase({ROLLOUTS_TOTAL}{{{m},outcome=~\"rolled_back|aborted\"}}[15m]) > 0"),
                    "labels": labels("warning"),
                    "annotations": {
                        "summary": format!("a rollout of {} ended {{{{ $labels.outcome }}}}", app.name),
                        "description": "See `ferry history` for the revision and the reason.",
                    },
                },
                {
                    "alert": "FerryCanaryAnalysisFailed",
                    "expr": format!("increase({ANALYSIS_RUNS_TOTAL}{{{m},verdict=\"fail\"}}[15m]) > 0"),
                    "labels": labels("warning"),
                    "annotations": {
                        "summary": format!("canary analysis {{{{ $labels.analysis }}}} of {} failed", app.name),
                        "description": "The canary was judged worse than stable and rolled back.",
                    },
                },
                {
                    "alert": "FerryTLSCertificateExpiring",
                    "expr": format!("({TLS_CERT_EXPIRY} - time()) < 14 * 86400"),
                    "for": "1h",
                    "labels": labels("warning"),
                    "annotations": {
                        "summary": "TLS certificate for {{ $labels.host }} expires in less than 14 days",
                        "description": "It expires in {{ $value | humanizeDuration }}.",
                    },
                },
                {
                    "alert": "FerryTLSCertificateExpiringSoon",
                    "expr": format!("({TLS_CERT_EXPIRY} - time()) < 3 * 86400"),
                    "for": "10m",
                    "labels": labels("critical"),
                    "annotations": {
                        "summary": "TLS certificate for {{ $labels.host }} expires in less than 3 days",
                        "description": "It expires in {{ $value | humanizeDuration }}.",
                    },
                },
            ],
        }],
    })
}

fn config(app: &App<'_>) -> Result<Value, Error> {
    let web = app.web("prometheus")?;
    let env = app.env_name().to_owned();
    Ok(json!({
        "global": {
            "scrape_interval": "15s",
            "evaluation_interval": "15s",
            "external_labels": { "env": env },
        },
        "rule_files": ["alerts.yml"],
        "scrape_configs": [
            {
                "job_name": "ferry",
                "metrics_path": "/metrics",
                "static_configs": [{
                    "targets": [app.opts.ferry_metrics_address],
                    "labels": { "env": env },
                }],
            },
            {
                "job_name": app.name,
                "metrics_path": "/metrics",
                "static_configs": [{
                    "targets": [format!("{}:{}", app.name, web.port)],
                    "labels": { "app": app.name, "env": env },
                }],
            },
        ],
    }))
}

pub(crate) fn render(app: &App<'_>, out: &mut Rendered) -> Result<(), Error> {
    out.file("prometheus/prometheus.yml", yaml::file(&[config(app)?]));
    out.file("prometheus/alerts.yml", yaml::file(&[rules(app)]));
    Ok(())
}
