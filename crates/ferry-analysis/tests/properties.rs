//! Property tests: no panics on any input, p-values in range, symmetries, and identical
//! arms never failing.

use ferry_analysis::prometheus::{QueryVars, parse_query_response, render_query};
use ferry_analysis::statistics::{
    Alternative, Method, binomial_at_least, compare_proportions, fisher_exact, hodges_lehmann,
    mann_whitney_u, quantile,
};
use ferry_analysis::{
    AnalysisConfig, ArmSample, MetricKind, MetricOutcome, MetricRule, Observation, VerdictOutcome,
    judge,
};
use proptest::prelude::*;

/// Any f64, including NaN and infinities, biased toward latency-like values.
fn any_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => 0.0f64..2000.0,
        1 => (0u32..50).prop_map(f64::from), // many ties
        1 => prop::num::f64::ANY,
    ]
}

fn finite_value() -> impl Strategy<Value = f64> {
    prop_oneof![3 => 0.0f64..2000.0, 1 => (0u32..20).prop_map(f64::from)]
}

fn alternative() -> impl Strategy<Value = Alternative> {
    prop_oneof![
        Just(Alternative::TwoSided),
        Just(Alternative::Greater),
        Just(Alternative::Less)
    ]
}

fn all_metrics() -> Vec<MetricRule> {
    [
        MetricKind::SuccessRate,
        MetricKind::ErrorRate,
        MetricKind::LatencyP50,
        MetricKind::LatencyP95,
        MetricKind::LatencyP99,
        MetricKind::Throughput,
    ]
    .into_iter()
    .map(MetricRule::new)
    .chain([
        MetricRule {
            max_relative: Some(1.2),
            max: Some(500.0),
            allowed_increase: 5.0,
            ..MetricRule::new(MetricKind::LatencyP95)
        },
        MetricRule {
            min_relative: Some(0.9),
            min: Some(0.5),
            ..MetricRule::new(MetricKind::SuccessRate)
        },
        MetricRule {
            name: Some("q".into()),
            direction: Some(ferry_analysis::Direction::HigherIsBetter),
            ..MetricRule::new(MetricKind::Custom)
        },
    ])
    .collect()
}

fn arm_strategy() -> impl Strategy<Value = ArmSample> {
    (
        0u64..3000,
        0u64..3000,
        prop::collection::vec(any_value(), 0..300),
        prop::option::of(any_value()),
        prop::collection::vec(any_value(), 0..5),
    )
        .prop_map(|(requests, errors, latencies_ms, throughput, custom)| {
            let mut arm = ArmSample {
                requests,
                errors,
                latencies_ms,
                throughput,
                ..ArmSample::default()
            };
            arm.custom.insert("q".into(), custom);
            arm
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn mann_whitney_p_in_range_and_symmetric(
        x in prop::collection::vec(any_value(), 0..60),
        y in prop::collection::vec(any_value(), 0..60),
        alt in alternative(),
    ) {
        let forward = mann_whitney_u(&x, &y, alt, Method::Auto);
        if let Some(r) = &forward {
            prop_assert!((0.0..=1.0).contains(&r.p_value), "p = {}", r.p_value);
        }
        let mirrored = match alt {
            Alternative::Greater => Alternative::Less,
            Alternative::Less => Alternative::Greater,
            Alternative::TwoSided => Alternative::TwoSided,
        };
        let backward = mann_whitney_u(&y, &x, mirrored, Method::Auto);
        match (forward, backward) {
            (Some(f), Some(b)) => {
                prop_assert_eq!(f.u1, b.u2);
                prop_assert!((f.p_value - b.p_value).abs() < 1e-12);
            }
            (None, None) => {}
            (f, b) => prop_assert!(false, "asymmetric: {:?} vs {:?}", f, b),
        }
    }

    #[test]
    fn hodges_lehmann_is_antisymmetric_and_inside_its_interval(
        x in prop::collection::vec(finite_value(), 1..80),
        y in prop::collection::vec(finite_value(), 1..80),
    ) {
        let f = hodges_lehmann(&x, &y, 0.95).expect("non-empty");
        let b = hodges_lehmann(&y, &x, 0.95).expect("non-empty");
        prop_assert!((f.estimate + b.estimate).abs() < 1e-9);
        prop_assert!(f.lower <= f.estimate && f.estimate <= f.upper);
        // Brute force for the estimate.
        let mut d: Vec<f64> = x.iter().flat_map(|a| y.iter().map(move |b| a - b)).collect();
        d.sort_by(f64::total_cmp);
        let n = d.len();
        let median = if n % 2 == 1 { d[n / 2] } else { d[n / 2 - 1] / 2.0 + d[n / 2] / 2.0 };
        prop_assert_eq!(f.estimate, median);
    }

    #[test]
    fn proportion_p_values_in_range(
        x1 in 0u64..500, n1 in 0u64..500, x2 in 0u64..500, n2 in 0u64..500,
        alt in alternative(), p0 in 0.0f64..=1.0,
    ) {
        if let Some(t) = compare_proportions(x1, n1, x2, n2, alt) {
            prop_assert!((0.0..=1.0).contains(&t.p_value));
        }
        if let Some(p) = fisher_exact([[x1, n1], [x2, n2]], alt) {
            prop_assert!((0.0..=1.0).contains(&p));
        }
        if let Some(p) = binomial_at_least(x1, n1, p0) {
            prop_assert!((0.0..=1.0).contains(&p));
        }
    }

    #[test]
    fn quantile_lies_within_the_sample(
        s in prop::collection::vec(finite_value(), 1..100), q in 0.0f64..=1.0,
    ) {
        let v = quantile(&s, q).expect("non-empty");
        let lo = s.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        prop_assert!(lo <= v && v <= hi);
    }

    #[test]
    fn judge_never_panics_and_scores_in_range(canary in arm_strategy(), stable in arm_strategy()) {
        let cfg = AnalysisConfig { metrics: all_metrics(), min_samples: 20, ..AnalysisConfig::default() };
        let verdict = judge(&cfg, &Observation { canary, stable });
        prop_assert!((0.0..=100.0).contains(&verdict.score));
        for m in &verdict.metrics {
            if let Some(p) = m.p_value {
                prop_assert!((0.0..=1.0).contains(&p));
            }
            prop_assert!(!m.explanation.is_empty());
        }
        let json = serde_json::to_string(&verdict);
        prop_assert!(json.is_ok());
    }

    #[test]
    fn identical_arms_never_fail(arm in arm_strategy(), min_samples in 0u64..50) {
        // Relative rules only: an absolute limit rightly fails two equally bad arms.
        let relative: Vec<MetricRule> = all_metrics()
            .into_iter()
            .map(|r| MetricRule { max: None, min: None, ..r })
            .collect();
        let cfg = AnalysisConfig { metrics: relative, min_samples, ..AnalysisConfig::default() };
        let verdict = judge(&cfg, &Observation { canary: arm.clone(), stable: arm });
        for m in &verdict.metrics {
            prop_assert_ne!(m.outcome, MetricOutcome::Fail, "{}", m.explanation);
        }
        prop_assert_ne!(verdict.outcome, VerdictOutcome::Fail);
    }

    #[test]
    fn judge_never_panics_on_unvalidated_rules(
        arm in arm_strategy(),
        bounds in prop::collection::vec(prop::option::of(any_value()), 4),
        allowed in any_value(),
        significance in any_value(),
        weight in any_value(),
    ) {
        let rules = all_metrics()
            .into_iter()
            .map(|r| MetricRule {
                max: bounds[0],
                min: bounds[1],
                max_relative: bounds[2],
                min_relative: bounds[3],
                allowed_increase: allowed,
                weight,
                ..r
            })
            .collect();
        let cfg = AnalysisConfig { metrics: rules, significance, ..AnalysisConfig::default() };
        let verdict = judge(&cfg, &Observation { canary: arm.clone(), stable: arm });
        prop_assert!(!verdict.summary.is_empty());
        prop_assert!((0.0..=100.0).contains(&verdict.score), "score {}", verdict.score);
    }

    #[test]
    fn prometheus_functions_never_panic(template in ".{0,80}", value in ".{0,20}", body in ".{0,200}") {
        let vars = QueryVars { app: &value, revision: &value, stable: "s", env: "e", interval: "30s" };
        let _ = render_query(&template, &vars);
        let _ = parse_query_response(&body);
    }

    #[test]
    fn quoted_values_cannot_close_their_string(value in ".{0,30}") {
        let vars = QueryVars { app: "a", revision: &value, stable: "s", env: "e", interval: "30s" };
        let q = render_query(r#"x{rev="{{revision}}"}"#, &vars).expect("quoted placeholder");
        // Walk the rendered string: the literal must end exactly at the closing quote we wrote.
        let inner = &q[7..q.len() - 2];
        let mut escaped = false;
        for ch in inner.chars() {
            prop_assert!(escaped || ch != '"', "unescaped quote in {}", q);
            escaped = !escaped && ch == '\\';
        }
        prop_assert!(!escaped, "dangling backslash in {}", q);
    }
}
