//! Commands that need no Docker engine: config validate/show/schema and check.

#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn ferry_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("FERRY_OUTPUT")
        .env_remove("FERRY_ENV")
        .env_remove("FERRY_CONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("ferry runs")
}

fn ferry(dir: &Path, args: &[&str]) -> Output {
    ferry_env(dir, args, &[])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn project(toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ferry.toml"), toml).unwrap();
    dir
}

#[test]
fn validate_reports_every_problem_with_its_location_and_a_hint() {
    let out = ferry(&fixture("three-problems"), &["config", "validate"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    insta::assert_snapshot!(stderr);
    for location in ["ferry.toml:7:9", "ferry.toml:8:1", "ferry.toml:12:13"] {
        assert!(stderr.contains(location), "{location} missing in\n{stderr}");
    }
    assert!(stderr.contains("did you mean `replicas`?"));
}

#[test]
fn validate_json_lists_the_problems_as_records() {
    let out = ferry(
        &fixture("three-problems"),
        &["config", "validate", "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], false);
    let codes: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["invalid-type", "unknown-key", "invalid-duration"]);
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| !p["hint"].as_str().unwrap().is_empty())
    );
}

#[test]
fn the_demo_spec_is_valid_in_every_environment() {
    let out = ferry(
        &repo_root(),
        &[
            "--config",
            "examples/hello/ferry.toml",
            "config",
            "validate",
            "--strict",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("base, staging, production"));
}

const POLICY: &str = r#"
app = "shop"
image = "shop:latest"
secrets = ["DB_PASSWORD"]

[web]
port = 8080

[environments.production]
production = true
"#;

#[test]
fn production_policy_warns_and_strict_makes_it_fail() {
    let dir = project(POLICY);
    let relaxed = ferry(dir.path(), &["config", "validate"]);
    assert_eq!(relaxed.status.code(), Some(0), "{}", text(&relaxed.stderr));
    let warnings = text(&relaxed.stderr);
    assert!(warnings.contains("latest"), "{warnings}");
    assert!(warnings.contains("replicas"), "{warnings}");

    let strict = ferry(
        dir.path(),
        &["config", "validate", "--strict", "--output", "json"],
    );
    assert_eq!(strict.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&strict.stdout).unwrap();
    assert!(report["errors"].as_u64().unwrap() >= 3, "{report}");
}

#[test]
fn show_merges_the_environment_and_never_prints_secret_values() {
    let dir = project(
        r#"
app = "shop"
image = "shop:1.2.3"
secrets = ["DB_PASSWORD"]

[web]
port = 8080
replicas = 2

[env]
LOG_LEVEL = "info"

[environments.production]
production = true
web = { replicas = 4 }
env = { LOG_LEVEL = "warn" }
"#,
    );
    let out = ferry_env(
        dir.path(),
        &["--env", "production", "config", "show", "--output", "json"],
        &[("DB_PASSWORD", "hunter2-very-secret")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("hunter2"));
    let spec: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(spec["web"]["replicas"], 4);
    assert_eq!(spec["web"]["port"], 8080, "tables merge");
    assert_eq!(spec["env"]["LOG_LEVEL"], "warn");
    assert_eq!(spec["secrets"][0], "DB_PASSWORD");

    let human = ferry(dir.path(), &["config", "show"]);
    assert!(human.status.success());
    assert!(text(&human.stdout).contains("replicas = 2"));
}

#[test]
fn an_unknown_environment_is_a_usage_error_listing_the_known_ones() {
    let dir = project(POLICY);
    let out = ferry(dir.path(), &["--env", "prod", "config", "show"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("known environments: production"));
}

#[test]
fn a_missing_ferry_toml_is_a_usage_error_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let out = ferry(dir.path(), &["config", "show"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("ferry init"));
}

#[test]
fn the_schema_command_prints_the_checked_in_schema() {
    let dir = tempfile::tempdir().unwrap();
    let out = ferry(dir.path(), &["config", "schema"]);
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checked_in: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("docs/ferry.schema.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(printed, checked_in);
}

#[test]
fn init_output_is_a_valid_spec() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("go.mod"), "module example.com/x\n").unwrap();
    let out = ferry(dir.path(), &["init", "--name", "api"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let valid = ferry(dir.path(), &["config", "validate", "--strict"]);
    assert_eq!(valid.status.code(), Some(0), "{}", text(&valid.stderr));
}

#[test]
fn check_reports_spec_and_dockerfile_findings_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("three-problems").join("ferry.toml"),
        dir.path().join("ferry.toml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM ubuntu:latest\nRUN apt-get update && apt-get install -y curl\nCMD python app.py\n",
    )
    .unwrap();
    let out = ferry(dir.path(), &["check", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let at = |file: &str, rule: &str| {
        findings.iter().find(|f| {
            f["file"].as_str().unwrap().ends_with(file) && f["rule"].as_str().unwrap() == rule
        })
    };
    let unknown = at("ferry.toml", "unknown-key").expect("the spec problem is a finding");
    assert_eq!(
        (unknown["line"].as_u64(), unknown["column"].as_u64()),
        (Some(8), Some(1))
    );
    assert!(at("Dockerfile", "DF001").is_some(), "latest tag: {report}");
    assert_eq!(report["files_checked"], 2);

    let never = ferry(dir.path(), &["check", "--fail-on", "never", "-q"]);
    assert_eq!(never.status.code(), Some(0));

    let sarif = ferry(dir.path(), &["check", "--format", "sarif"]);
    let sarif: serde_json::Value = serde_json::from_slice(&sarif.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");

    let github = ferry(dir.path(), &["check", "--format", "github"]);
    assert!(
        text(&github.stdout).contains("::error file="),
        "{}",
        text(&github.stdout)
    );
}

#[test]
fn check_config_in_ferry_toml_disables_rules() {
    let dir = project(
        r#"
app = "shop"

[build]

[web]
port = 8080

[check]
disable = ["DF001"]
"#,
    );
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM ubuntu:latest\nUSER 10001\n",
    )
    .unwrap();
    let out = ferry(
        dir.path(),
        &["check", "--output", "json", "--fail-on", "never"],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["rule"] != "DF001"),
        "{report}"
    );
}

#[test]
fn render_writes_a_kustomize_tree_and_prints_single_files() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = ferry(
        &repo_root(),
        &[
            "--config",
            "examples/hello/ferry.toml",
            "--env",
            "production",
            "render",
            "k8s",
            "--out",
            out_dir.path().to_str().unwrap(),
            "--image",
            "hello:3f2a9c1",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out_dir.path().join("base/kustomization.yaml").is_file());
    assert!(
        out_dir
            .path()
            .join("overlays/production/kustomization.yaml")
            .is_file()
    );

    let compose = ferry(
        &repo_root(),
        &["--config", "examples/hello/ferry.toml", "render", "compose"],
    );
    assert!(compose.status.success(), "{}", text(&compose.stderr));
    assert!(text(&compose.stdout).contains("services:"));

    let gitops_without_env = ferry(
        &repo_root(),
        &[
            "--config",
            "examples/hello/ferry.toml",
            "render",
            "k8s",
            "--gitops",
            out_dir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(gitops_without_env.status.code(), Some(2));
    assert!(text(&gitops_without_env.stderr).contains("--env"));
}

#[test]
fn check_explains_a_rule() {
    let dir = tempfile::tempdir().unwrap();
    let out = ferry(dir.path(), &["check", "--explain", "DF001"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("base-image-tag"));
    let unknown = ferry(dir.path(), &["check", "--explain", "NOPE999"]);
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn broken_specs_get_located_diagnostics() {
    let dir = fixture("broken");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let out = ferry(&dir, &["--config", &name, "config", "validate"]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        insta::assert_snapshot!(name.clone(), text(&out.stderr));
    }
}

#[test]
fn show_of_the_demo_spec() {
    let out = ferry(
        &repo_root(),
        &[
            "--config",
            "examples/hello/ferry.toml",
            "--env",
            "production",
            "config",
            "show",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    insta::assert_snapshot!(text(&out.stdout));
}
