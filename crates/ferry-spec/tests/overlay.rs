//! Environment overlays: tables merge key by key, arrays and scalars replace, and the demo
//! service's spec resolves in every environment.

use ferry_spec::{
    ByteSize, CanaryStep, Duration, MetricKind, Pause, SourceFile, Spec, StrategyKind, parse,
    policy,
};

fn resolve(text: &str, env: Option<&str>) -> Spec {
    let doc = parse(&SourceFile::new("ferry.toml", text)).expect("valid spec");
    doc.resolve(env).expect("environment resolves")
}

const BASE: &str = r#"
app = "demo"
image = "demo:1"
secrets = ["A", "B"]
[env]
LEVEL = "info"
MODE = "base"
[web]
port = 8080
replicas = 1
command = ["/demo", "serve"]
[web.resources]
cpus = 0.5
memory = "64Mi"
[environments.staging]
secrets = ["C"]
env = { MODE = "staging" }
web = { command = ["/demo"], resources = { memory = "128Mi" } }
[environments.production]
production = true
image = "demo:2"
"#;

#[test]
fn tables_merge_recursively() {
    let staging = resolve(BASE, Some("staging"));
    assert_eq!(staging.env.len(), 2, "LEVEL kept, MODE replaced");
    assert_eq!(
        staging
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        vec![("LEVEL", "info"), ("MODE", "staging")]
    );
    let web = staging.web.expect("web");
    assert_eq!(web.port, 8080, "untouched keys of a merged table stay");
    assert_eq!(web.resources.cpus, Some(0.5), "nested tables merge too");
    assert_eq!(web.resources.memory, Some(ByteSize::from_bytes(128 << 20)));
}

#[test]
fn arrays_and_scalars_replace() {
    let staging = resolve(BASE, Some("staging"));
    assert_eq!(
        staging
            .secrets
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        vec!["C"]
    );
    assert_eq!(
        staging.web.expect("web").command,
        Some(vec!["/demo".to_owned()])
    );
    let production = resolve(BASE, Some("production"));
    assert_eq!(production.image.as_deref(), Some("demo:2"));
}

#[test]
fn an_empty_overlay_is_the_identity() {
    let text = format!("{BASE}[environments.empty]\n");
    assert_eq!(resolve(&text, Some("empty")), resolve(&text, None));
}

#[test]
fn environments_and_production_marking() {
    let doc = parse(&SourceFile::new(
        "ferry.toml",
        format!("{BASE}[environments.live]\nproduction = true\n[environments.production]\n")
            .replace(
                "[environments.production]\nproduction = true\nimage = \"demo:2\"\n",
                "",
            ),
    ))
    .expect("valid");
    assert_eq!(doc.environments(), vec!["staging", "live", "production"]);
    assert!(doc.is_production(Some("live")));
    assert!(doc.is_production(Some("production")), "by name");
    assert!(!doc.is_production(Some("staging")));
    assert!(!doc.is_production(None));
}

#[test]
fn unknown_environment_suggests_a_defined_one() {
    let doc = parse(&SourceFile::new("ferry.toml", BASE)).expect("valid");
    let err = doc.resolve(Some("stagin")).expect_err("not defined");
    assert_eq!(err.problems[0].code, "unknown-environment");
    assert_eq!(err.problems[0].hint, "did you mean `staging`?");
}

#[test]
fn production_policy_warns_and_points_at_the_keys() {
    let doc = parse(&SourceFile::new(
        "ferry.toml",
        BASE.replace("demo:2", "demo:latest"),
    ))
    .expect("valid");
    let findings = doc.policy(Some("production"));
    let codes: Vec<_> = findings.iter().map(|p| (p.code, p.line())).collect();
    assert_eq!(
        codes,
        vec![
            ("policy-replicas", Some(10)),
            ("policy-health-check", Some(8)),
            ("policy-resources", Some(12)),
            ("policy-latest-tag", Some(21)),
        ]
    );
    assert!(findings.iter().all(|p| !p.is_error()));
    assert!(
        doc.policy(Some("staging")).is_empty(),
        "staging is not production"
    );
    assert!(policy(&doc.resolve(None).expect("base"), false).is_empty());
}

#[test]
fn the_demo_service_spec_is_valid_in_every_environment() {
    let text = include_str!("../../../examples/hello/ferry.toml");
    let doc = parse(&SourceFile::new("examples/hello/ferry.toml", text)).unwrap_or_else(|d| {
        panic!("{:#?}", d.to_records());
    });
    assert!(doc.warnings().is_empty(), "{:?}", doc.warnings());
    assert_eq!(doc.environments(), vec!["staging", "production"]);
    let base = doc.resolve(None).expect("base");
    assert_eq!(base.app.as_str(), "hello");
    let build = base.build.as_ref().expect("build");
    assert_eq!(
        (build.context.as_str(), build.dockerfile.as_str()),
        (".", "Dockerfile")
    );
    assert_eq!(base.hooks.pre_build, vec!["./build-static.sh"]);
    let web = base.web.as_ref().expect("web");
    assert_eq!(web.port, 8080);
    assert_eq!(web.replicas, 2);
    assert_eq!(
        web.health.as_ref().map(|h| h.path.as_str()),
        Some("/health")
    );
    assert_eq!(web.readiness(), Some("/health/ready"));
    assert_eq!(web.resources.memory, Some(ByteSize::from_bytes(64 << 20)));
    assert_eq!(web.resources.pids, Some(64));
    assert_eq!(base.strategy.kind, StrategyKind::Canary);
    let steps = &base.strategy.canary.as_ref().expect("canary").steps;
    assert!(matches!(steps[0], CanaryStep::Weight(w) if w.get() == 20));
    assert_eq!(
        steps[1],
        CanaryStep::Pause(Pause::For(Duration::from_secs(30)))
    );
    assert_eq!(steps[2], CanaryStep::Analysis("default".into()));
    let kinds: Vec<_> = base.analysis["default"]
        .metrics
        .iter()
        .map(|m| m.kind)
        .collect();
    assert_eq!(kinds, vec![MetricKind::SuccessRate, MetricKind::LatencyP95]);
    assert!(doc.is_production(Some("production")));
    let production = doc.resolve(Some("production")).expect("production");
    assert_eq!(production.web.as_ref().map(|w| w.replicas), Some(3));
    assert!(
        doc.policy(Some("production")).is_empty(),
        "the demo passes the production policy"
    );
    assert_eq!(
        doc.resolve(Some("staging"))
            .expect("staging")
            .web
            .map(|w| w.replicas),
        Some(1)
    );
}
