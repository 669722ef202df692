//! Property tests: no input makes the parser panic, every reported span lies inside the
//! file, and valid specs round-trip through serialize → parse.

use std::collections::BTreeMap;

use ferry_spec::{
    Analysis, AppName, Build, ByteSize, Canary, CanaryStep, Duration, EnvVarName, Health, Metric,
    MetricKind, OnInconclusive, Pause, Provider, Resources, SourceFile, Spec,
    Strategy as RolloutStrategy, StrategyKind, Web, Weight, parse,
};
use proptest::prelude::*;

const DEMO: &str = include_str!("../../../examples/hello/ferry.toml");

/// Parses and, when valid, resolves every environment and runs the policy: none of it
/// may panic, and every problem must point inside the text.
fn exercise(text: &str) {
    let src = SourceFile::new("ferry.toml", text);
    match parse(&src) {
        Ok(doc) => {
            let mut envs: Vec<Option<String>> = doc.environments().into_iter().map(Some).collect();
            envs.push(None);
            envs.push(Some("no-such-env".to_owned()));
            for env in envs {
                let _ = doc.resolve(env.as_deref());
                let _ = doc.policy(env.as_deref());
                let _ = doc.is_production(env.as_deref());
            }
        }
        Err(diagnostics) => {
            assert!(!diagnostics.problems.is_empty());
            for problem in &diagnostics.problems {
                if let Some(span) = &problem.span {
                    assert!(
                        span.start <= span.end && span.end <= text.len(),
                        "{problem:?}"
                    );
                }
                assert!(!problem.hint.is_empty(), "{problem:?}");
            }
            let _ = diagnostics.to_records();
            let _ = diagnostics.render();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        exercise(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn toml_like_text_never_panics(
        lines in proptest::collection::vec(
            "(\\[[a-z_.]{1,20}\\]|\\[\\[[a-z_.]{1,20}\\]\\]|[a-z_]{1,12} = (\"[a-z0-9 /.:*-]{0,10}\"|-?[0-9]{1,4}|[0-9]\\.[0-9]|true|\\[\\]|\\{ [a-z]{1,8} = [0-9]{1,3} \\}|\\[\\{ [a-z]{1,8} = \"[a-z0-9]{0,5}\" \\}\\]))",
            0..25,
        )
    ) {
        exercise(&lines.join("\n"));
    }

    #[test]
    fn mutated_demo_spec_never_panics(at in 0usize..2000, len in 0usize..40, insert in ".{0,12}") {
        let mut text = DEMO.to_owned();
        let start = at.min(text.len());
        let end = (start + len).min(text.len());
        if text.is_char_boundary(start) && text.is_char_boundary(end) {
            text.replace_range(start..end, &insert);
        }
        exercise(&text);
    }

    #[test]
    fn valid_specs_round_trip(spec in arb_spec()) {
        let text = toml::to_string(&spec).expect("spec serializes to TOML");
        let doc = parse(&SourceFile::new("ferry.toml", text.as_str()))
            .unwrap_or_else(|d| panic!("{text}\n{:#?}", d.to_records()));
        prop_assert_eq!(doc.resolve(None).expect("resolves"), spec);
    }

    #[test]
    fn durations_round_trip(millis in 0u64..10_000_000_000) {
        let d = Duration::from_millis(millis);
        prop_assert_eq!(d.to_string().parse::<Duration>(), Ok(d));
    }

    #[test]
    fn sizes_round_trip(bytes in 0u64..(1 << 50)) {
        let b = ByteSize::from_bytes(bytes);
        prop_assert_eq!(b.to_string().parse::<ByteSize>(), Ok(b));
    }
}

fn arb_duration() -> impl proptest::strategy::Strategy<Value = Duration> {
    (1u64..100_000).prop_map(|s| Duration::from_millis(s * 250))
}

fn arb_name() -> impl proptest::strategy::Strategy<Value = AppName> {
    "[a-z][a-z0-9-]{0,10}[a-z0-9]".prop_map(|s| s.parse().expect("pattern is a DNS label"))
}

fn arb_resources() -> impl proptest::strategy::Strategy<Value = Resources> {
    (
        proptest::option::of(1u32..64),
        proptest::option::of(6u64..4096),
        proptest::option::of(1u32..4096),
    )
        .prop_map(|(cpus, mem, pids)| Resources {
            cpus: cpus.map(|c| f64::from(c) / 4.0),
            memory: mem.map(|m| ByteSize::from_bytes(m << 20)),
            pids,
        })
}

fn arb_health() -> impl proptest::strategy::Strategy<Value = Health> {
    (
        "/[a-z/]{0,10}",
        arb_duration(),
        arb_duration(),
        1u32..5,
        1u32..5,
        arb_duration(),
    )
        .prop_map(|(path, a, b, healthy, unhealthy, start)| Health {
            path,
            interval: a.max(b),
            timeout: a.min(b),
            healthy_threshold: healthy,
            unhealthy_threshold: unhealthy,
            start_period: start,
        })
}

fn arb_web() -> impl proptest::strategy::Strategy<Value = Web> {
    (
        1u16..,
        1u32..20,
        proptest::option::of(proptest::collection::vec("[a-z/-]{1,8}", 1..3)),
        proptest::option::of(arb_health()),
        proptest::option::of("/[a-z]{0,8}"),
        arb_duration(),
        arb_duration(),
        arb_resources(),
    )
        .prop_map(
            |(port, replicas, command, health, readiness_path, drain, stop, resources)| Web {
                port,
                replicas,
                command,
                health,
                readiness_path,
                drain_timeout: drain,
                stop_timeout: stop,
                resources,
                routes: Vec::new(),
            },
        )
}

fn arb_step() -> impl proptest::strategy::Strategy<Value = CanaryStep> {
    prop_oneof![
        (0i64..=100).prop_map(|w| CanaryStep::Weight(Weight::new(w).expect("in range"))),
        arb_duration().prop_map(|d| CanaryStep::Pause(Pause::For(d))),
        Just(CanaryStep::Pause(Pause::UntilPromoted)),
        Just(CanaryStep::Analysis("default".to_owned())),
    ]
}

fn default_analysis() -> Analysis {
    Analysis {
        interval: Duration::from_secs(10),
        measurements: Some(3),
        duration: None,
        failure_limit: 1,
        inconclusive_limit: 0,
        min_samples: 20,
        on_inconclusive: OnInconclusive::Rollback,
        timebox: None,
        provider: Provider::Proxy,
        prometheus: None,
        metrics: vec![Metric {
            name: "p95".to_owned(),
            kind: MetricKind::LatencyP95,
            query: None,
            max: None,
            min: None,
            max_relative: Some(1.25),
            allowed_increase: None,
            critical: false,
            command: None,
            local: false,
            url: None,
            method: None,
            body: None,
            status: None,
            body_contains: None,
            timeout: None,
        }],
    }
}

fn arb_spec() -> impl proptest::strategy::Strategy<Value = Spec> {
    (
        arb_name(),
        proptest::option::of("[a-z]{1,8}:[0-9]{1,3}"),
        proptest::option::of(arb_web()),
        proptest::collection::btree_map("E_[A-Z0-9_]{0,6}", "[ -~]{0,12}", 0..4),
        proptest::collection::vec("S_[A-Z0-9_]{0,6}", 0..3),
        proptest::collection::vec(arb_step(), 1..8),
        any::<bool>(),
    )
        .prop_map(|(app, image, web, env, secrets, mut steps, canary)| {
            // Weights never decrease in a valid canary.
            let mut highest = Weight::ZERO;
            for step in &mut steps {
                if let CanaryStep::Weight(w) = step {
                    highest = highest.max(*w);
                    *w = highest;
                }
            }
            let runs_analysis = steps.iter().any(|s| matches!(s, CanaryStep::Analysis(_)));
            let canary = canary && web.is_some();
            let mut analysis = BTreeMap::new();
            if canary && runs_analysis {
                analysis.insert("default".to_owned(), default_analysis());
            }
            let mut secrets: Vec<EnvVarName> = secrets
                .iter()
                .map(|s| s.parse().expect("valid name"))
                .collect();
            secrets.dedup();
            Spec {
                app,
                build: image.is_none().then(Build::default),
                image,
                web: web.clone().or_else(|| Some(Web::default())),
                workers: BTreeMap::new(),
                env: env
                    .into_iter()
                    .map(|(k, v)| (k.parse().expect("valid name"), v))
                    .collect(),
                secrets,
                strategy: if canary {
                    RolloutStrategy {
                        kind: StrategyKind::Canary,
                        canary: Some(Canary { steps }),
                        ..RolloutStrategy::default()
                    }
                } else {
                    RolloutStrategy::default()
                },
                analysis,
                accessories: BTreeMap::new(),
                hooks: Default::default(),
                notify: Default::default(),
                security: Default::default(),
                autoscale: None,
                check: Default::default(),
            }
        })
}
