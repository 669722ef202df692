//! The worked example of docs/analysis.md, run: every line the document quotes must be what
//! ferry prints for the data the document describes.

use std::time::Duration;

use ferry_analysis::{
    Analysis, AnalysisConfig, ArmSample, Decision, InconclusivePolicy, MetricKind, MetricRule,
    Observation, judge,
};

/// `n` latencies spread evenly from 0 so that their p95 is exactly `p95` ms.
fn spread(n: usize, p95: f64) -> Vec<f64> {
    let scale = p95 / (0.95 * (n - 1) as f64);
    (0..n).map(|i| i as f64 * scale).collect()
}

/// `[analysis.default]` from the document.
fn default_analysis() -> AnalysisConfig {
    AnalysisConfig {
        metrics: vec![
            MetricRule {
                max_relative: Some(1.5),
                allowed_increase: 0.01,
                ..MetricRule::new(MetricKind::ErrorRate)
            },
            MetricRule {
                max_relative: Some(1.2),
                ..MetricRule::new(MetricKind::LatencyP95)
            },
        ],
        min_samples: 200,
        interval: Duration::from_secs(30),
        failure_limit: 0,
        on_inconclusive: InconclusivePolicy::Pause,
        time_box: Some(Duration::from_secs(600)),
        ..AnalysisConfig::default()
    }
}

fn arm(requests: u64, errors: u64, p95: f64) -> ArmSample {
    ArmSample {
        requests,
        errors,
        latencies_ms: spread(requests as usize, p95),
        ..ArmSample::default()
    }
}

fn docs() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/analysis.md");
    std::fs::read_to_string(path).expect("docs/analysis.md exists")
}

/// Lines the document should quote but does not.
fn missing(doc: &str, lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| !doc.contains(l.as_str()))
        .cloned()
        .collect()
}

#[test]
fn worked_example_in_the_docs_is_what_ferry_says() {
    let doc = docs();
    let cfg = default_analysis();
    assert!(cfg.validate().is_ok());
    let mut analysis = Analysis::new(&cfg, Duration::ZERO);

    // First window: the canary has served only 61 requests.
    let first = judge(
        &cfg,
        &Observation {
            canary: arm(61, 3, 290.0),
            stable: arm(588, 1, 100.0),
        },
    );
    let mut said: Vec<String> = first
        .explain()
        .lines()
        .map(|l| l.trim().to_owned())
        .collect();
    assert_eq!(
        analysis.record(first, Duration::from_secs(30)),
        Decision::Continue
    );

    // The daemon keeps the window open until both arms have enough samples.
    let second = judge(
        &cfg,
        &Observation {
            canary: arm(268, 14, 312.0),
            stable: arm(2412, 5, 101.0),
        },
    );
    said.extend(second.explain().lines().map(|l| l.trim().to_owned()));
    let decision = analysis.record(second, Duration::from_secs(120));
    let Decision::Rollback { reason } = &decision else {
        panic!("expected a rollback, got {decision:?}")
    };
    said.push(reason.clone());
    let absent = missing(&doc, &said);
    assert!(
        absent.is_empty(),
        "docs/analysis.md should quote these lines exactly:\n{}",
        absent.join("\n")
    );
}
