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
