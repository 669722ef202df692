//! Decisions over a series of verdicts: limits, measurements needed, time box and policies.

use std::time::Duration;

use ferry_analysis::{
    Analysis, AnalysisConfig, ArmSample, Decision, InconclusivePolicy, MetricKind, MetricRule,
    Observation, Verdict, judge,
};

fn config() -> AnalysisConfig {
    AnalysisConfig {
        metrics: vec![MetricRule {
            max_relative: Some(1.5),
            allowed_increase: 0.01,
            ..MetricRule::new(MetricKind::ErrorRate)
        }],
        min_samples: 200,
        time_box: Some(Duration::from_secs(300)),
        ..AnalysisConfig::default()
    }
}

fn verdict(cfg: &AnalysisConfig, canary: (u64, u64), stable: (u64, u64)) -> Verdict {
    let arm = |(requests, errors)| ArmSample {
        requests,
        errors,
        ..ArmSample::default()
    };
    judge(
        cfg,
        &Observation {
            canary: arm(canary),
            stable: arm(stable),
        },
    )
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(1_000_000 + s)
}

#[test]
fn first_failure_rolls_back_with_the_reason() {
    let cfg = config();
    let mut analysis = Analysis::new(&cfg, secs(0));
    let d = analysis.record(verdict(&cfg, (400, 40), (4000, 0)), secs(30));
    let Decision::Rollback { reason } = d else {
        panic!("expected a rollback, got {d:?}")
    };
    assert!(
        reason
            .starts_with("analysis failed 1 of 1 measurements (limit 1): error rate: canary 10.0%"),
        "{reason}"
    );
    // Terminal decisions stick.
    let again = analysis.record(verdict(&cfg, (400, 0), (4000, 0)), secs(60));
    assert!(matches!(again, Decision::Rollback { .. }));
    assert_eq!(analysis.history().len(), 1);
}

#[test]
fn failure_limit_tolerates_earlier_failures() {
    let cfg = AnalysisConfig {
        failure_limit: 2,
        measurements: 3,
        ..config()
    };
    let mut analysis = Analysis::new(&cfg, secs(0));
    let bad = || verdict(&cfg, (400, 40), (4000, 0));
    let good = || verdict(&cfg, (400, 0), (4000, 0));
    assert_eq!(analysis.record(bad(), secs(30)), Decision::Continue);
    assert_eq!(analysis.record(good(), secs(60)), Decision::Continue);
    assert!(matches!(
        analysis.record(bad(), secs(90)),
        Decision::Rollback { .. }
    ));
    assert_eq!(analysis.tally(), (1, 2));
}

#[test]
fn promotes_after_the_needed_passing_measurements() {
    let cfg = AnalysisConfig {
        measurements: 3,
        ..config()
    };
    let mut analysis = Analysis::new(&cfg, secs(0));
    for i in 1..=2 {
        assert_eq!(
            analysis.record(verdict(&cfg, (400, 1), (4000, 10)), secs(30 * i)),
            Decision::Continue
        );
    }
    assert_eq!(
        analysis.record(verdict(&cfg, (400, 1), (4000, 10)), secs(90)),
        Decision::Promote
    );
}

#[test]
fn low_traffic_holds_until_the_time_box_then_each_policy_applies() {
    for (policy, expect) in [
        (InconclusivePolicy::Pause, "pause"),
        (InconclusivePolicy::Rollback, "rollback"),
        (InconclusivePolicy::Promote, "promote"),
    ] {
        let cfg = AnalysisConfig {
            on_inconclusive: policy,
            ..config()
        };
        let mut analysis = Analysis::new(&cfg, secs(0));
        // Ten measurements of 20 requests each: never enough, never a failure.
        for i in 1..10 {
            let d = analysis.record(verdict(&cfg, (20, 20), (2000, 0)), secs(30 * i));
            assert_eq!(d, Decision::Continue, "measurement {i} with {policy:?}");
        }
        let d = analysis.record(verdict(&cfg, (20, 20), (2000, 0)), secs(300));
        let got = match &d {
            Decision::Pause { reason } | Decision::Rollback { reason } => {
                assert!(
                    reason.starts_with("analysis did not conclude within 5m (0 of 1 passing measurements); last: inconclusive"),
                    "{reason}"
                );
                if matches!(d, Decision::Pause { .. }) {
                    "pause"
                } else {
                    "rollback"
                }
            }
            Decision::Promote => "promote",
            Decision::Continue => "continue",
        };
        assert_eq!(got, expect);
    }
}

#[test]
fn poll_ends_a_wait_without_verdicts() {
    let cfg = config();
    let mut analysis = Analysis::new(&cfg, secs(0));
    assert_eq!(analysis.poll(secs(299)), Decision::Continue);
    assert!(matches!(analysis.poll(secs(300)), Decision::Pause { .. }));
    assert!(analysis.decision().is_terminal());
}

#[test]
fn inconclusive_limit_counts_consecutive_measurements() {
    let cfg = AnalysisConfig {
        inconclusive_limit: 3,
        on_inconclusive: InconclusivePolicy::Rollback,
        time_box: None,
        measurements: 2,
        ..config()
    };
    let mut analysis = Analysis::new(&cfg, secs(0));
    let thin = || verdict(&cfg, (20, 0), (2000, 0));
    let good = || verdict(&cfg, (400, 0), (4000, 0));
    assert_eq!(analysis.record(thin(), secs(30)), Decision::Continue);
    assert_eq!(analysis.record(thin(), secs(60)), Decision::Continue);
    assert_eq!(analysis.record(good(), secs(90)), Decision::Continue); // resets the streak
    assert_eq!(analysis.record(thin(), secs(120)), Decision::Continue);
    assert_eq!(analysis.record(thin(), secs(150)), Decision::Continue);
    let d = analysis.record(thin(), secs(180));
    let Decision::Rollback { reason } = d else {
        panic!("expected a rollback, got {d:?}")
    };
    assert!(
        reason.starts_with("analysis inconclusive for 3 measurements in a row (limit 3)"),
        "{reason}"
    );
}

#[test]
fn accumulating_windows_reaches_min_samples() {
    let cfg = config();
    let window = || Observation {
        canary: ArmSample {
            requests: 50,
            errors: 0,
            ..ArmSample::default()
        },
        stable: ArmSample {
            requests: 500,
            errors: 0,
            ..ArmSample::default()
        },
    };
    let mut total = window();
    assert_eq!(
        judge(&cfg, &total).outcome,
        ferry_analysis::VerdictOutcome::Inconclusive
    );
    for _ in 0..3 {
        total.absorb(window());
    }
    assert_eq!(total.canary.requests, 200);
    assert_eq!(
        judge(&cfg, &total).outcome,
        ferry_analysis::VerdictOutcome::Pass
    );
}

#[test]
fn decision_serializes_with_a_tag() {
    let d = Decision::Rollback { reason: "x".into() };
    assert_eq!(
        serde_json::to_string(&d).expect("serializable"),
        r#"{"decision":"rollback","reason":"x"}"#
    );
}
