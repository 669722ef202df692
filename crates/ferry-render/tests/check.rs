//! ferry's own linter on the rendered output: `ferry check` (the ferry-check library) finds
//! nothing in the built Kubernetes overlays and the compose files of both environments,
//! beyond the documented findings below (each a deliberate choice or a known limit).

mod common;

use common::{rendered, tool_ok, write};
use ferry_check::{CheckOptions, FileKind, check_sources};
use ferry_render::Target;

fn findings(kind: FileKind, name: &str, text: &str) -> Vec<String> {
    let opts = CheckOptions {
        production_namespaces: vec!["hello-production".to_owned()],
        ..CheckOptions::default()
    };
    check_sources(&[(kind, name, text)], &opts)
        .findings
        .iter()
        .map(|f| {
            format!(
                "{}:{} {} {:?}: {}",
                f.line, f.column, f.rule, f.severity, f.message
            )
        })
        .collect()
}

/// Findings that are expected, as (rule, text the message contains, reason).
const ACCEPTED: [(&str, &str, &str); 5] = [
    (
        "K8S006",
        "argoproj.io/v1alpha1",
        "Argo CRDs have no schema offline (kubernetes-validate skips them too)",
    ),
    (
        "K8S035",
        "hello-secrets",
        "secrets are referenced, never rendered: the Secret is created out of band",
    ),
    (
        "K8S011",
        "container `mailer`",
        "worker roles have no health settings in ferry.toml",
    ),
    (
        "CP003",
        "service `mailer`",
        "worker roles have no health settings in ferry.toml",
    ),
    (
        "K8S020",
        "StatefulSet `db`",
        "accessories are single-instance by design",
    ),
];

fn accepted(finding: &str) -> bool {
    ACCEPTED
        .iter()
        .any(|(rule, text, _)| finding.contains(&format!(" {rule} ")) && finding.contains(text))
}

#[test]
fn ferry_check_finds_nothing_in_rendered_output() {
    let mut all = Vec::new();
    for env in ["staging", "production"] {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), &rendered(Target::K8s, env));
        let built = tool_ok(
            "kubectl",
            &[
                "kustomize",
                dir.path()
                    .join("overlays")
                    .join(env)
                    .to_str()
                    .expect("utf-8"),
            ],
            "kubectl",
        );
        for f in findings(FileKind::Kubernetes, &format!("k8s-{env}.yaml"), &built) {
            if !accepted(&f) {
                all.push(format!("k8s {env}: {f}"));
            }
        }
        let compose = rendered(Target::Compose, env);
        let (_, text) = &compose.files[0];
        for f in findings(FileKind::Compose, &format!("compose.{env}.yaml"), text) {
            if !accepted(&f) {
                all.push(format!("compose {env}: {f}"));
            }
        }
    }
    assert!(
        all.is_empty(),
        "ferry check findings in rendered output:\n{}",
        all.join("\n")
    );
}
