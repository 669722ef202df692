//! Verdicts on fixed measurements: the rules a canary is held to, in plain words.

use ferry_analysis::{
    AnalysisConfig, ArmSample, MetricKind, MetricOutcome, MetricRule, Observation, VerdictOutcome,
    judge,
};

fn rule(kind: MetricKind) -> MetricRule {
    MetricRule::new(kind)
}

fn config(metrics: Vec<MetricRule>) -> AnalysisConfig {
    AnalysisConfig {
        metrics,
        ..AnalysisConfig::default()
    }
}

fn arm(requests: u64, errors: u64, latencies_ms: Vec<f64>) -> ArmSample {
    ArmSample {
        requests,
        errors,
        latencies_ms,
        ..ArmSample::default()
    }
}

/// 201 latencies whose p95 (the 191st value) is exactly `p95`.
fn latencies_with_p95(p95: f64) -> Vec<f64> {
    (0..=200).map(|i| f64::from(i) * p95 / 190.0).collect()
}

#[test]
fn slow_canary_fails_the_relative_p95_rule_in_plain_words() {
    let cfg = config(vec![MetricRule {
        max_relative: Some(1.2),
        ..rule(MetricKind::LatencyP95)
    }]);
    let obs = Observation {
        canary: arm(201, 0, latencies_with_p95(312.0)),
        stable: arm(201, 0, latencies_with_p95(101.0)),
    };
    let verdict = judge(&cfg, &obs);
    let m = &verdict.metrics[0];
    assert_eq!(m.outcome, MetricOutcome::Fail);
    assert_eq!(
        m.explanation,
        "p95 latency: canary 312 ms vs stable 101 ms (+209%, p < 0.001) — above 1.2× stable: failed"
    );
    assert_eq!(m.canary_samples, 201);
    let shift = m.shift.as_ref().expect("latency has a shift estimate");
    assert!(shift.estimate > 0.0 && shift.lower > 0.0);
    assert_eq!(verdict.outcome, VerdictOutcome::Fail);
    assert_eq!(verdict.score, 0.0);
}

#[test]
fn error_rate_above_the_floor_fails_and_says_why() {
    let cfg = config(vec![MetricRule {
        max_relative: Some(1.5),
        allowed_increase: 0.01,
        ..rule(MetricKind::ErrorRate)
    }]);
    let obs = Observation {
        canary: arm(400, 20, vec![]),
        stable: arm(4000, 0, vec![]),
    };
    let verdict = judge(&cfg, &obs);
    let m = &verdict.metrics[0];
    assert_eq!(m.outcome, MetricOutcome::Fail, "{}", m.explanation);
    assert_eq!(
        m.explanation,
        "error rate: canary 5.0% vs stable 0.0% (+5.0 pp, p < 0.001) — above stable by more \
         than the allowed 1.0 pp: failed"
    );
    assert_eq!(
        m.test.as_deref(),
        Some("fisher exact test + exact binomial test against the limit")
    );
}

#[test]
fn significant_but_tiny_difference_passes_thanks_to_the_floor() {
    let cfg = config(vec![MetricRule {
        max_relative: Some(1.1),
        allowed_increase: 0.005,
        ..rule(MetricKind::ErrorRate)
    }]);
    let obs = Observation {
        canary: arm(200_000, 2_400, vec![]),
        stable: arm(200_000, 2_000, vec![]),
    };
    let verdict = judge(&cfg, &obs);
    let m = &verdict.metrics[0];
    let difference = ferry_analysis::statistics::compare_proportions(
        2_400,
        200_000,
        2_000,
        200_000,
        ferry_analysis::statistics::Alternative::Greater,
    )
    .expect("counts");
    assert!(difference.p_value < 1e-6, "the difference is significant");
    assert_eq!(m.outcome, MetricOutcome::Pass, "{}", m.explanation);
    assert_eq!(verdict.outcome, VerdictOutcome::Pass);
    // Without the floor the same data fails.
    let strict = config(vec![MetricRule {
        max_relative: Some(1.1),
        ..rule(MetricKind::ErrorRate)
    }]);
    assert_eq!(judge(&strict, &obs).outcome, VerdictOutcome::Fail);
}

#[test]
fn low_traffic_is_inconclusive_never_fail_nor_pass() {
    let cfg = config(vec![
        rule(MetricKind::ErrorRate),
        rule(MetricKind::LatencyP95),
    ]);
    // Every canary request failed, but there are only 50 of them.
    let obs = Observation {
        canary: arm(50, 50, vec![900.0; 50]),
        stable: arm(5000, 0, latencies_with_p95(100.0)),
    };
    let verdict = judge(&cfg, &obs);
    assert_eq!(verdict.outcome, VerdictOutcome::Inconclusive);
    for m in &verdict.metrics {
        assert_eq!(m.outcome, MetricOutcome::Inconclusive);
    }
    assert_eq!(
        verdict.metrics[0].explanation,
        "error rate: too few samples (canary 50, stable 5000; need 200 in each): holding"
    );
}

#[test]
fn unequal_but_not_significant_passes() {
    let cfg = config(vec![MetricRule {
        max_relative: Some(1.0),
        ..rule(MetricKind::ErrorRate)
    }]);
    let obs = Observation {
        canary: arm(300, 4, vec![]),
        stable: arm(3000, 30, vec![]),
    };
    let verdict = judge(&cfg, &obs);
    let m = &verdict.metrics[0];
    assert_eq!(m.outcome, MetricOutcome::Pass);
    assert!(
        m.explanation
            .ends_with("above 1× stable but not significantly: passed"),
        "{}",
        m.explanation
    );
}

#[test]
fn critical_failure_zeroes_the_score() {
    let cfg = config(vec![
        MetricRule {
            critical: true,
            max: Some(0.01),
            ..rule(MetricKind::ErrorRate)
        },
        rule(MetricKind::LatencyP50),
        rule(MetricKind::LatencyP95),
        rule(MetricKind::LatencyP99),
    ]);
    let same = latencies_with_p95(100.0);
    let obs = Observation {
        canary: arm(1000, 100, same.clone()),
        stable: arm(1000, 0, same),
    };
    let verdict = judge(&cfg, &obs);
    assert_eq!(verdict.metrics[0].outcome, MetricOutcome::Fail);
    assert_eq!(
        verdict.metrics[0].test.as_deref(),
        Some("exact binomial test against the limit")
    );
    assert!(
        verdict.metrics[1..]
            .iter()
            .all(|m| m.outcome == MetricOutcome::Pass)
    );
    assert_eq!(verdict.outcome, VerdictOutcome::Fail);
    assert_eq!(verdict.score, 0.0);
    assert!(
        verdict
            .summary
            .contains("critical metric error rate failed")
    );
}

#[test]
fn weighted_score_gives_marginal() {
    let mut cfg = config(vec![
        MetricRule {
            max: Some(0.01),
            ..rule(MetricKind::ErrorRate)
        },
        MetricRule {
            weight: 4.0,
            ..rule(MetricKind::LatencyP50)
        },
    ]);
    cfg.pass_score = 90.0;
    cfg.marginal_score = 75.0;
    let same = latencies_with_p95(100.0);
    let obs = Observation {
        canary: arm(1000, 100, same.clone()),
        stable: arm(1000, 0, same),
    };
    let verdict = judge(&cfg, &obs);
    assert_eq!(verdict.score, 80.0);
    assert_eq!(verdict.outcome, VerdictOutcome::Marginal);
}

#[test]
fn absolute_bounds_need_no_stable_arm() {
    // Blue-green post-promotion: there is no concurrent stable revision.
    let cfg = config(vec![MetricRule {
        max: Some(250.0),
        ..rule(MetricKind::LatencyP99)
    }]);
    let obs = Observation {
        canary: arm(201, 0, latencies_with_p95(400.0)),
        stable: ArmSample::default(),
    };
    let verdict = judge(&cfg, &obs);
    let m = &verdict.metrics[0];
    assert_eq!(m.outcome, MetricOutcome::Fail, "{}", m.explanation);
    assert!(
        m.explanation.contains("above the 250 ms limit: failed"),
        "{}",
        m.explanation
    );
    assert_eq!(m.stable, None);
}

#[test]
fn identical_arms_pass() {
    let cfg = config(vec![
        MetricRule {
            max_relative: Some(1.5),
            allowed_increase: 0.01,
            ..rule(MetricKind::ErrorRate)
        },
        MetricRule {
            max_relative: Some(1.2),
            ..rule(MetricKind::LatencyP95)
        },
        rule(MetricKind::SuccessRate),
    ]);
    let lat = latencies_with_p95(120.0);
    let obs = Observation {
        canary: arm(201, 3, lat.clone()),
        stable: arm(201, 3, lat),
    };
    let verdict = judge(&cfg, &obs);
    assert_eq!(
        verdict.outcome,
        VerdictOutcome::Pass,
        "{}",
        verdict.explain()
    );
    assert_eq!(verdict.score, 100.0);
}

#[test]
fn nan_and_infinite_latencies_are_ignored_with_a_note() {
    let cfg = config(vec![rule(MetricKind::LatencyP50)]);
    let mut canary = latencies_with_p95(100.0);
    canary.extend([f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
    let obs = Observation {
        canary: arm(204, 0, canary),
        stable: arm(201, 0, latencies_with_p95(100.0)),
    };
    let verdict = judge(&cfg, &obs);
    let m = &verdict.metrics[0];
    assert_eq!(m.canary_samples, 201);
    assert_eq!(
        m.notes,
        vec!["3 non-finite canary latency samples ignored".to_owned()]
    );
    assert_eq!(m.outcome, MetricOutcome::Pass);
}

#[test]
fn throughput_and_custom_metrics() {
    let cfg = config(vec![
        MetricRule {
            min_relative: Some(0.8),
            ..rule(MetricKind::Throughput)
        },
        MetricRule {
            name: Some("queue depth".into()),
            direction: Some(ferry_analysis::Direction::LowerIsBetter),
            max: Some(10.0),
            ..rule(MetricKind::Custom)
        },
    ]);
    let mut canary = arm(500, 0, vec![]);
    canary.throughput = Some(30.0);
    canary.custom.insert("queue depth".into(), vec![12.0]);
    let mut stable = arm(500, 0, vec![]);
    stable.throughput = Some(50.0);
    stable.custom.insert("queue depth".into(), vec![3.0]);
    let verdict = judge(&cfg, &Observation { canary, stable });
    assert_eq!(verdict.metrics[0].outcome, MetricOutcome::Fail);
    assert_eq!(
        verdict.metrics[0].explanation,
        "throughput: canary 30.0 req/s vs stable 50.0 req/s (-40%) — below 0.8× stable: failed"
    );
    assert_eq!(verdict.metrics[1].outcome, MetricOutcome::Fail);
    assert!(
        verdict.metrics[1]
            .explanation
            .starts_with("queue depth: canary 12 vs stable 3")
    );
}

#[test]
fn verdict_serializes_for_the_store() {
    let cfg = config(vec![rule(MetricKind::ErrorRate)]);
    let obs = Observation {
        canary: arm(300, 0, vec![]),
        stable: arm(300, 0, vec![]),
    };
    let verdict = judge(&cfg, &obs);
    let json = serde_json::to_value(&verdict).expect("serializable");
    assert_eq!(json["outcome"], "pass");
    assert_eq!(json["metrics"][0]["kind"], "error-rate");
    let back: ferry_analysis::Verdict = serde_json::from_value(json).expect("round trip");
    assert_eq!(back, verdict);
}

#[test]
fn config_validation_reports_every_problem() {
    let cfg = AnalysisConfig {
        metrics: vec![
            MetricRule {
                max_relative: Some(-1.0),
                ..rule(MetricKind::LatencyP95)
            },
            rule(MetricKind::Custom),
        ],
        measurements: Some(0),
        marginal_score: 99.0,
        ..AnalysisConfig::default()
    };
    let problems = cfg.validate().expect_err("invalid");
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 5, "{text:#?}");
    assert!(text.iter().any(|t| t.contains("metrics[0].max_relative")));
    assert!(text.iter().any(|t| t.contains("metrics[1].direction")));
    assert!(config(vec![rule(MetricKind::ErrorRate)]).validate().is_ok());
}

#[test]
fn a_change_that_rounds_away_shows_as_plus_zero() {
    let cfg = config(vec![
        rule(MetricKind::LatencyP95),
        rule(MetricKind::ErrorRate),
    ]);
    let obs = Observation {
        canary: arm(1000, 10, latencies_with_p95(99.8)),
        stable: arm(1001, 10, latencies_with_p95(100.0)),
    };
    let verdict = judge(&cfg, &obs);
    assert!(
        verdict.metrics[0]
            .explanation
            .starts_with("p95 latency: canary 99.8 ms vs stable 100 ms (+0%,"),
        "{}",
        verdict.metrics[0].explanation
    );
    assert!(
        verdict.metrics[1]
            .explanation
            .starts_with("error rate: canary 1.0% vs stable 1.0% (+0.0 pp,"),
        "{}",
        verdict.metrics[1].explanation
    );
}
