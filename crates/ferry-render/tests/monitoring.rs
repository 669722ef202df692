//! Prometheus and Grafana targets against the real tool: `promtool check config` and
//! `promtool check rules` accept the files, and every dashboard expression parses as PromQL
//! (checked by promtool as recording rules).

mod common;

use common::{rendered, tool_ok, tree, write};
use ferry_render::Target;

#[test]
fn promtool_accepts_the_config_and_the_alert_rules() {
    for env in ["staging", "production"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = rendered(Target::Prometheus, env);
        write(dir.path(), &r);
        let config = dir.path().join("prometheus/prometheus.yml");
        let rules = dir.path().join("prometheus/alerts.yml");
        let out = tool_ok(
            "promtool",
            &["check", "config", config.to_str().expect("utf-8")],
            "the Debian package prometheus",
        );
        assert!(out.contains("SUCCESS"), "{out}");
        let out = tool_ok(
            "promtool",
            &["check", "rules", rules.to_str().expect("utf-8")],
            "the Debian package prometheus",
        );
        assert!(out.contains("SUCCESS: 7 rules found"), "{out}");
    }
}

#[test]
fn alert_rules_cover_the_required_failures() {
    let r = rendered(Target::Prometheus, "production");
    let rules = r.get("prometheus/alerts.yml").expect("rules");
    for alert in [
        "FerryHighErrorRate",
        "FerryHighLatencyP95",
        "FerryInstanceDown",
        "FerryRolloutFailed",
        "FerryCanaryAnalysisFailed",
        "FerryTLSCertificateExpiring",
    ] {
        assert!(
            rules.contains(&format!("alert: {alert}")),
            "{alert} missing"
        );
    }
    // The demo's analysis bounds p95 at 0.3s: the alert uses the same bound.
    assert!(rules.contains("> 0.3"), "{rules}");
}

#[test]
fn every_dashboard_expression_is_valid_promql() {
    let r = rendered(Target::Grafana, "production");
    let (_, json) = &r.files[0];
    let dash: serde_json::Value = serde_json::from_str(json).expect("dashboard JSON");
    let mut exprs = Vec::new();
    let mut ids = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        ids.push(panel["id"].as_u64().expect("id"));
        assert!(panel["gridPos"]["w"].as_u64().is_some());
        for t in panel["targets"].as_array().expect("targets") {
            exprs.push(t["expr"].as_str().expect("expr").to_owned());
        }
    }
    for a in dash["annotations"]["list"].as_array().expect("annotations") {
        exprs.push(a["expr"].as_str().expect("expr").to_owned());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "panel ids are unique");
    assert!(exprs.iter().any(|e| e.contains("histogram_quantile(0.99")));
    assert!(exprs.iter().any(|e| e.contains("ferry_backend_weight")));
    // Grafana's variables are not PromQL: substitute what Grafana would.
    let rules = serde_json::json!({ "groups": [{ "name": "dashboard", "rules": exprs.iter().enumerate().map(|(i, e)| serde_json::json!({
        "record": format!("dashboard:expr{i}"),
        "expr": e.replace("$__rate_interval", "5m").replace("$env", "production"),
    })).collect::<Vec<_>>() }] });
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dashboard-rules.json");
    std::fs::write(&file, rules.to_string()).expect("write");
    tool_ok(
        "promtool",
        &["check", "rules", file.to_str().expect("utf-8")],
        "the Debian package prometheus",
    );
}

#[test]
fn monitoring_snapshot_production() {
    let mut all = tree(&rendered(Target::Prometheus, "production"));
    all.push_str(&tree(&rendered(Target::Grafana, "production")));
    insta::assert_snapshot!(all);
}

/// The alert rules behave, checked by `promtool test rules` on synthetic series: a
/// revision answering 10% 5xx fires FerryHighErrorRate (and a healthy one does not), a
/// down target fires FerryInstanceDown, a certificate ten days from expiry fires
/// FerryTLSCertificateExpiring, a rolled-back rollout fires FerryRolloutFailed and a failed
/// analysis FerryCanaryAnalysisFailed.
#[test]
fn alert_rules_fire_on_synthetic_series() {
    const TESTS: &str = r#"
rule_files: [alerts.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'ferry_http_requests_total{app="hello",env="production",revision="r2",code="200"}'
        values: '0+90x30'
      - series: 'ferry_http_requests_total{app="hello",env="production",revision="r2",code="500"}'
        values: '0+10x30'
      - series: 'ferry_http_requests_total{app="hello",env="production",revision="r1",code="200"}'
        values: '0+1000x30'
      - series: 'ferry_http_requests_total{app="hello",env="production",revision="r1",code="500"}'
        values: '0+1x30'
      - series: 'up{job="hello",instance="hello:8080"}'
        values: '0x30'
      - series: 'ferry_tls_certificate_expiry_timestamp_seconds{host="hello.example.com"}'
        values: '864000x200'
      - series: 'ferry_rollouts_total{app="hello",env="production",outcome="rolled_back"}'
        values: '0 0 0 1 1 1 1 1'
      - series: 'ferry_analysis_runs_total{app="hello",env="production",analysis="default",verdict="fail"}'
        values: '0 0 0 1 1 1 1 1'
    alert_rule_test:
      - eval_time: 15m
        alertname: FerryHighErrorRate
        exp_alerts:
          - exp_labels: {severity: critical, app: hello, env: production, revision: r2}
            exp_annotations:
              summary: "hello revision r2 answers more than 1% 5xx"
              description: "Error rate is 10% over 5 minutes."
      - eval_time: 5m
        alertname: FerryInstanceDown
        exp_alerts:
          - exp_labels: {severity: critical, app: hello, env: production, job: hello, instance: "hello:8080"}
            exp_annotations:
              summary: "hello:8080 of job hello is down"
              description: "Prometheus could not scrape it for 2 minutes."
      - eval_time: 2h
        alertname: FerryTLSCertificateExpiring
        exp_alerts:
          - exp_labels: {severity: warning, app: hello, env: production, host: hello.example.com}
            exp_annotations:
              summary: "TLS certificate for hello.example.com expires in less than 14 days"
              description: "It expires in 9d 22h 0m 0s."
      - eval_time: 2h
        alertname: FerryTLSCertificateExpiringSoon
        exp_alerts: []
      - eval_time: 5m
        alertname: FerryRolloutFailed
        exp_alerts:
          - exp_labels: {severity: warning, app: hello, env: production, outcome: rolled_back}
            exp_annotations:
              summary: "a rollout of hello ended rolled_back"
              description: "See `ferry history` for the revision and the reason."
      - eval_time: 5m
        alertname: FerryCanaryAnalysisFailed
        exp_alerts:
          - exp_labels: {severity: warning, app: hello, env: production, analysis: default, verdict: fail}
            exp_annotations:
              summary: "canary analysis default of hello failed"
              description: "The canary was judged worse than stable and rolled back."
"#;
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), &rendered(Target::Prometheus, "production"));
    let tests = dir.path().join("prometheus/alerts_test.yml");
    std::fs::write(&tests, TESTS).expect("write");
    let out = tool_ok(
        "promtool",
        &["test", "rules", tests.to_str().expect("utf-8")],
        "the Debian package prometheus",
    );
    assert!(out.contains("SUCCESS"), "{out}");
}
