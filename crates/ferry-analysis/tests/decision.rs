//! Decisions over a series of verdicts: limits, measurements needed, time box and policies.

use std::time::Duration;

use ferry_analysis::{
    Analysis, AnalysisConfig, ArmSample, Decision, InconclusivePolicy, MetricKind, MetricRule,
    Observation, Verdict, VerdictOutcome, judge,
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

/// A marginal verdict: two equally weighted metrics, one failing.
fn marginal(cfg: &AnalysisConfig) -> Verdict {
    let two = AnalysisConfig {
        metrics: vec![
            MetricRule {
                max: Some(0.01),
                ..MetricRule::new(MetricKind::ErrorRate)
            },
            MetricRule::new(MetricKind::SuccessRate),
        ],
        pass_score: 90.0,
        marginal_score: 50.0,
        ..cfg.clone()
    };
    let v = verdict(&two, (400, 40), (4000, 400));
    assert_eq!(v.outcome, VerdictOutcome::Marginal, "{}", v.explain());
    v
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(1_000_000 + s)
}

#[test]
fn the_reason_counts_judged_measurements_and_windows_held_for_samples() {
    let cfg = config();
    let mut analysis = Analysis::new(&cfg, secs(0));
    // Too few samples twice: held, not judged.
    for i in 1..=2 {
        let d = analysis.record(verdict(&cfg, (5, 0), (5, 0)), secs(30 * i));
        assert_eq!(d, Decision::Continue);
    }
    let d = analysis.record(verdict(&cfg, (400, 40), (4000, 0)), secs(90));
    let Decision::Rollback { reason } = d else {
        panic!("expected a rollback, got {d:?}")
    };
    assert!(
        reason.starts_with(
            "analysis failed 1 of 1 judged measurements (0 tolerated, 2 windows held for \
             samples): error rate"
        ),
        "{reason}"
    );
    assert_eq!(analysis.history().len(), 3);
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
        reason.starts_with(
            "analysis failed 1 of 1 judged measurements (0 tolerated): error rate: canary 10.0%"
        ),
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
        failure_limit: 1,
        measurements: Some(4),
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
    assert_eq!(analysis.tally(), (1, 2, 0));
}

#[test]
fn promotes_after_the_measurements_default_three() {
    let cfg = config();
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
fn a_tolerated_failure_still_counts_as_a_measurement() {
    let cfg = AnalysisConfig {
        failure_limit: 1,
        measurements: Some(2),
        ..config()
    };
    let mut analysis = Analysis::new(&cfg, secs(0));
    assert_eq!(
        analysis.record(verdict(&cfg, (400, 40), (4000, 0)), secs(30)),
        Decision::Continue
    );
    assert_eq!(
        analysis.record(verdict(&cfg, (400, 0), (4000, 0)), secs(60)),
        Decision::Promote
    );
}

#[test]
fn duration_goal_promotes_once_time_has_passed() {
    let cfg = AnalysisConfig {
        duration: Some(Duration::from_secs(120)),
        ..config()
    };
    let mut analysis = Analysis::new(&cfg, secs(0));
    let good = || verdict(&cfg, (400, 0), (4000, 0));
    for i in 1..4 {
        assert_eq!(analysis.record(good(), secs(30 * i)), Decision::Continue);
    }
    assert_eq!(analysis.record(good(), secs(120)), Decision::Promote);
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
        // Measurements of 20 requests each, all failing: never enough, never a failure.
        for i in 1..10 {
            let d = analysis.record(verdict(&cfg, (20, 20), (2000, 0)), secs(30 * i));
            assert_eq!(d, Decision::Continue, "measurement {i} with {policy:?}");
        }
        let d = analysis.record(verdict(&cfg, (20, 20), (2000, 0)), secs(300));
        let got = match &d {
            Decision::Pause { reason } | Decision::Rollback { reason } => {
                assert!(
                    reason.starts_with(
                        "analysis did not conclude within 5m (0 of 10 measurements had enough \
                         samples); last: inconclusive"
                    ),
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
    assert_eq!(
        analysis.time_left(secs(120)),
        Some(Duration::from_secs(180))
    );
    assert_eq!(analysis.poll(secs(299)), Decision::Continue);
    assert!(matches!(analysis.poll(secs(300)), Decision::Pause { .. }));
    assert!(analysis.decision().is_terminal());
}

#[test]
fn inconclusive_limit_counts_marginal_measurements() {
    let cfg = AnalysisConfig {
        inconclusive_limit: 1,
        on_inconclusive: InconclusivePolicy::Rollback,
        time_box: None,
        measurements: Some(5),
        ..config()
    };
    let mut analysis = Analysis::new(&cfg, secs(0));
    let thin = || verdict(&cfg, (20, 0), (2000, 0));
    assert_eq!(
        analysis.record(marginal(&cfg), secs(30)),
        Decision::Continue
    );
    // Low traffic does not count toward the limit.
    for i in 2..20 {
        assert_eq!(analysis.record(thin(), secs(30 * i)), Decision::Continue);
    }
    let d = analysis.record(marginal(&cfg), secs(900));
    let Decision::Rollback { reason } = d else {
        panic!("expected a rollback, got {d:?}")
    };
    assert!(
        reason.starts_with("analysis was marginal in 2 measurements (1 tolerated)"),
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
    assert_eq!(judge(&cfg, &total).outcome, VerdictOutcome::Inconclusive);
    for _ in 0..3 {
        total.absorb(window());
    }
    assert_eq!(total.canary.requests, 200);
    assert_eq!(judge(&cfg, &total).outcome, VerdictOutcome::Pass);
}

#[test]
fn decision_serializes_with_a_tag() {
    let d = Decision::Rollback { reason: "x".into() };
    assert_eq!(
        serde_json::to_string(&d).expect("serializable"),
        r#"{"decision":"rollback","reason":"x"}"#
    );
}

#[test]
fn a_check_decides_alone_without_samples_and_holds_when_it_did_not_run() {
    use ferry_analysis::{CheckRun, MetricOutcome};
    let cfg = AnalysisConfig {
        metrics: vec![MetricRule {
            name: Some("smoke".into()),
            ..MetricRule::new(MetricKind::Check)
        }],
        min_samples: 200,
        ..AnalysisConfig::default()
    };
    assert!(cfg.validate().is_ok());
    let with = |run: Option<CheckRun>| {
        let mut obs = Observation::default();
        if let Some(run) = run {
            obs.canary.checks.insert("smoke".into(), run);
        }
        judge(&cfg, &obs)
    };
    let passed = with(Some(CheckRun {
        passed: true,
        detail: "exit 0".into(),
    }));
    assert_eq!(passed.outcome, VerdictOutcome::Pass, "{}", passed.explain());
    assert_eq!(passed.metrics[0].explanation, "smoke: exit 0: passed");
    let failed = with(Some(CheckRun {
        passed: false,
        detail: "exit 3, output: boom".into(),
    }));
    assert_eq!(failed.outcome, VerdictOutcome::Fail);
    assert_eq!(failed.metrics[0].outcome, MetricOutcome::Fail);
    assert!(failed.explain().contains("exit 3, output: boom: failed"));
    let missing = with(None);
    assert_eq!(missing.outcome, VerdictOutcome::Inconclusive);
    let unnamed = AnalysisConfig {
        metrics: vec![MetricRule::new(MetricKind::Check)],
        ..AnalysisConfig::default()
    };
    assert!(unnamed.validate().is_err(), "a check needs a name");
}
