//! The Kubernetes target against the real tools: every overlay builds with `kubectl
//! kustomize` and every resource passes `kubernetes-validate --strict` for Kubernetes 1.37
//! (Argo's CRDs have no schema there and are reported as skipped, by name).

mod common;

use common::{rendered, tool, tool_ok, tree, write};
use ferry_render::Target;

const KUBERNETES_VERSION: &str = "1.37.0";

#[test]
fn every_overlay_builds_with_kustomize_and_validates_strictly() {
    for env in ["staging", "production"] {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), &rendered(Target::K8s, env));
        let overlay = dir.path().join("overlays").join(env);
        let built = tool_ok(
            "kubectl",
            &["kustomize", overlay.to_str().expect("utf-8")],
            "kubectl",
        );
        let out_file = dir.path().join("built.yaml");
        std::fs::write(&out_file, &built).expect("write");
        let out = tool(
            "kubernetes-validate",
            &[
                "--strict",
                "-k",
                KUBERNETES_VERSION,
                out_file.to_str().expect("utf-8"),
            ],
            "the PyPI package kubernetes-validate",
        );
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("{report}");
        assert!(
            out.status.success(),
            "kubernetes-validate failed for {env}:\n{report}"
        );
        assert!(
            built.contains(&format!("namespace: hello-{env}")),
            "{built}"
        );
        // Argo's CRDs are skipped by the tool: say so by name, never silently.
        for kind in ["Rollout", "AnalysisTemplate"] {
            assert!(
                report.contains(&format!("Couldn't find schema for kind {kind}")),
                "expected kubernetes-validate to report {kind} as skipped:\n{report}"
            );
            eprintln!(
                "note: {kind} (argoproj.io CRD) is not schema-validated by kubernetes-validate"
            );
        }
        validate_rollout_pod_template(dir.path(), &built);
    }
}

/// The Rollout's pod template is a core PodTemplateSpec: validate it strictly by placing it
/// in a Deployment, so the part of the CRD that carries the hardening is checked too.
fn validate_rollout_pod_template(dir: &std::path::Path, built: &str) {
    let docs = yaml_docs(built);
    let rollout = docs
        .iter()
        .find(|d| d["kind"] == "Rollout")
        .expect("the canary demo renders a Rollout");
    let deployment = serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": rollout["metadata"],
        "spec": {
            "selector": rollout["spec"]["selector"],
            "template": rollout["spec"]["template"],
        },
    });
    let file = dir.join("rollout-template.json");
    std::fs::write(&file, deployment.to_string()).expect("write");
    tool_ok(
        "kubernetes-validate",
        &[
            "--strict",
            "-k",
            KUBERNETES_VERSION,
            file.to_str().expect("utf-8"),
        ],
        "the PyPI package kubernetes-validate",
    );
}

fn yaml_docs(text: &str) -> Vec<serde_json::Value> {
    // kubectl prints YAML; the validator's Python can convert it to JSON for us.
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, yaml, json; print(json.dumps(list(yaml.safe_load_all(sys.stdin))))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .expect("python3 with PyYAML (installed with kubernetes-validate)");
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn k8s_tree_snapshot_staging() {
    insta::assert_snapshot!(tree(&rendered(Target::K8s, "staging")));
}

#[test]
fn k8s_tree_snapshot_production() {
    insta::assert_snapshot!(tree(&rendered(Target::K8s, "production")));
}

#[test]
fn rendering_is_deterministic() {
    for target in Target::ALL {
        let a = rendered(target, "production");
        let b = rendered(target, "production");
        assert_eq!(a, b, "{target} differs between two renders");
    }
}

#[test]
fn every_yaml_file_starts_with_the_generated_header() {
    for target in Target::ALL {
        for (path, content) in rendered(target, "staging").files {
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                assert!(
                    content.starts_with(&format!("# {}", ferry_render::HEADER)),
                    "{} lacks the header",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn rolling_strategy_renders_a_hardened_deployment() {
    let mut spec = common::hello();
    spec.strategy.kind = ferry_spec::StrategyKind::Rolling;
    let r = ferry_render::render(Target::K8s, &spec, Some("staging"), &common::options())
        .expect("renders");
    let deployment = r.get("base/deployment.yaml").expect("a Deployment");
    for needle in [
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        "runAsNonRoot: true",
        "type: RuntimeDefault",
        "- ALL",
        "automountServiceAccountToken: false",
    ] {
        assert!(
            deployment.contains(needle),
            "missing {needle}:\n{deployment}"
        );
    }
    assert!(r.get("base/rollout.yaml").is_none());
}

#[test]
fn secret_values_never_appear_and_external_secret_is_optional() {
    let mut opts = common::options();
    let plain = ferry_render::render(Target::K8s, &common::hello(), Some("staging"), &opts)
        .expect("renders");
    assert!(
        plain
            .files
            .iter()
            .all(|(_, c)| !c.contains("kind: Secret\n"))
    );
    assert!(plain.notes.iter().any(|n| n.contains("hello-secrets")));
    opts.external_secret_store = Some("vault".to_owned());
    let ext = ferry_render::render(Target::K8s, &common::hello(), Some("staging"), &opts)
        .expect("renders");
    let es = ext
        .get("base/externalsecret.yaml")
        .expect("an ExternalSecret");
    assert!(es.contains("key: hello/SESSION_KEY"), "{es}");
}

#[test]
fn unknown_analysis_in_a_step_is_an_error() {
    let mut spec = common::hello();
    spec.analysis.clear();
    let err = ferry_render::render(Target::K8s, &spec, Some("staging"), &common::options())
        .expect_err("the step names a missing analysis");
    assert!(err.to_string().contains("\"default\""), "{err}");
}

#[test]
fn optional_quota_and_base_without_environment_validate() {
    let opts = ferry_render::RenderOptions {
        quota: true,
        rollouts: ferry_render::RolloutsMode::None,
        ..common::options()
    };
    let r = ferry_render::render(Target::K8s, &common::hello(), None, &opts).expect("renders");
    assert!(r.get("base/resourcequota.yaml").is_some());
    assert!(
        r.files.iter().all(|(p, _)| p.starts_with("base")),
        "no overlay without --env"
    );
    assert!(
        r.notes.iter().any(|n| n.contains("rolling update")),
        "{:?}",
        r.notes
    );
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), &r);
    let built = tool_ok(
        "kubectl",
        &[
            "kustomize",
            dir.path().join("base").to_str().expect("utf-8"),
        ],
        "kubectl",
    );
    assert!(
        built.contains("image: registry.example.com/hello:3f2a1c9"),
        "{built}"
    );
    let file = dir.path().join("built.yaml");
    std::fs::write(&file, built).expect("write");
    tool_ok(
        "kubernetes-validate",
        &[
            "--strict",
            "--quiet",
            "-k",
            KUBERNETES_VERSION,
            file.to_str().expect("utf-8"),
        ],
        "the PyPI package kubernetes-validate",
    );
}

/// Checks checkov reports that are deliberate choices, each with its reason.
const CHECKOV_ACCEPTED: [(&str, &str); 5] = [
    (
        "CKV_K8S_15",
        "ferry's images are immutable git-SHA tags: IfNotPresent keeps pods starting while the registry is down",
    ),
    (
        "CKV_K8S_35",
        "secrets reach the app as environment variables: that is ferry's contract with the app",
    ),
    (
        "CKV_K8S_43",
        "the demo's accessory (postgres:17) is a third-party tag; ferry's own image is pinned by digest below",
    ),
    (
        "CKV_K8S_8",
        "worker roles have no health settings in ferry.toml, so no liveness probe",
    ),
    (
        "CKV_K8S_9",
        "worker roles have no health settings in ferry.toml, so no readiness probe",
    ),
];

/// An independent scanner (Checkov) on the built production overlay: nothing fails beyond
/// the documented choices above. (Checkov does not know Argo's Rollout and skips it; the
/// same pod template is scanned in the Deployment rendered with `--rollouts none`.)
#[test]
fn checkov_finds_nothing_beyond_documented_choices() {
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let opts = ferry_render::RenderOptions {
        image: Some(format!("registry.example.com/hello@{digest}")),
        rollouts: ferry_render::RolloutsMode::None,
        ..common::options()
    };
    let r = ferry_render::render(
        Target::K8s,
        &common::hello_for("production"),
        Some("production"),
        &opts,
    )
    .expect("renders");
    // Not a dot-directory: checkov silently skips hidden directories.
    let dir = tempfile::Builder::new()
        .prefix("ferry-render-checkov-")
        .tempdir()
        .expect("tempdir");
    write(dir.path(), &r);
    let built = tool_ok(
        "kubectl",
        &[
            "kustomize",
            dir.path()
                .join("overlays/production")
                .to_str()
                .expect("utf-8"),
        ],
        "kubectl",
    );
    let scan = dir.path().join("scan");
    std::fs::create_dir_all(&scan).expect("mkdir");
    std::fs::write(scan.join("built.yaml"), built).expect("write");
    let skip: Vec<&str> = CHECKOV_ACCEPTED.iter().map(|(id, _)| *id).collect();
    let out = tool(
        "checkov",
        &[
            "-d",
            scan.to_str().expect("utf-8"),
            "--framework",
            "kubernetes",
            "--compact",
            "--quiet",
            "--skip-download",
            "--skip-check",
            &skip.join(","),
        ],
        "the PyPI package checkov",
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "checkov found problems ({}):\n{report}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let passed: u32 = report
        .split("Passed checks: ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no checkov summary in:\n{report}"));
    assert!(
        passed > 100,
        "checkov scanned too little ({passed} checks):\n{report}"
    );
}

/// Every strategy, with and without Argo, with and without routes and accessories: each
/// overlay builds and validates strictly (a matrix over the shapes a spec can take).
#[test]
fn every_strategy_shape_builds_and_validates() {
    use ferry_spec::{BlueGreen, StrategyKind};
    let mut cases = Vec::new();
    for kind in [
        StrategyKind::Rolling,
        StrategyKind::BlueGreen,
        StrategyKind::Canary,
    ] {
        for (rollouts, bare) in [
            (ferry_render::RolloutsMode::Auto, false),
            (ferry_render::RolloutsMode::None, false),
            (ferry_render::RolloutsMode::Auto, true),
        ] {
            let mut spec = common::hello_for("staging");
            spec.strategy.kind = kind;
            if kind == StrategyKind::BlueGreen {
                spec.strategy.blue_green = Some(BlueGreen {
                    auto_promote: false,
                    ..BlueGreen::default()
                });
            }
            if bare {
                // No routes, accessories, workers, secrets or autoscaling: the minimal app.
                let web = spec.web.as_mut().expect("web");
                web.routes.clear();
                web.health = None;
                spec.accessories.clear();
                spec.workers.clear();
                spec.secrets.clear();
                spec.autoscale = None;
            }
            let opts = ferry_render::RenderOptions {
                rollouts,
                ..common::options()
            };
            let r = ferry_render::render(Target::K8s, &spec, Some("staging"), &opts)
                .unwrap_or_else(|e| panic!("{kind:?} {rollouts:?} bare={bare}: {e}"));
            cases.push((format!("{kind:?}-{rollouts:?}-bare{bare}"), r));
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut all = String::new();
    for (name, r) in &cases {
        let root = dir.path().join(name);
        write(&root, r);
        all.push_str(&tool_ok(
            "kubectl",
            &[
                "kustomize",
                root.join("overlays/staging").to_str().expect("utf-8"),
            ],
            "kubectl",
        ));
        all.push_str("---\n");
        let rollout = r.get("base/rollout.yaml");
        let argo = !name.starts_with("Rolling") && !name.contains("-None-");
        assert_eq!(rollout.is_some(), argo, "{name}");
        if name.starts_with("BlueGreen") && argo {
            let text = rollout.expect("rollout");
            assert!(text.contains("previewService: hello-preview"), "{text}");
            assert!(text.contains("autoPromotionEnabled: false"), "{text}");
            assert!(r.get("base/service-preview.yaml").is_some(), "{name}");
        }
    }
    let file = dir.path().join("all.yaml");
    std::fs::write(&file, all).expect("write");
    tool_ok(
        "kubernetes-validate",
        &[
            "--strict",
            "--quiet",
            "-k",
            KUBERNETES_VERSION,
            file.to_str().expect("utf-8"),
        ],
        "the PyPI package kubernetes-validate",
    );
}

/// The PromQL of the translated AnalysisTemplates parses (promtool checks it as recording
/// rules once Argo's `{{args.*}}` placeholders are filled in, as Argo does at run time).
#[test]
fn analysis_template_queries_are_valid_promql() {
    let r = rendered(Target::K8s, "production");
    let text = r
        .get("base/analysistemplate-hello-default.yaml")
        .expect("the demo's canary runs the default analysis");
    let docs = yaml_rust2::YamlLoader::load_from_str(text).expect("yaml");
    let metrics = docs[0]["spec"]["metrics"].as_vec().expect("metrics");
    let mut rules = Vec::new();
    for (i, m) in metrics.iter().enumerate() {
        let q = m["provider"]["prometheus"]["query"]
            .as_str()
            .expect("query");
        assert!(q.contains("{{args.canary-hash}}"), "{q}");
        let q = q
            .replace("{{args.app}}", "hello")
            .replace("{{args.canary-hash}}", "6d4b9c7f8")
            .replace("{{args.stable-hash}}", "5c8f7d6b4");
        rules.push(serde_json::json!({ "record": format!("analysis:q{i}"), "expr": q }));
    }
    // sample-size + errors + errors-increase + p95 + p95-relative
    assert_eq!(rules.len(), 5);
    let file = tempfile::tempdir().expect("tempdir");
    let path = file.path().join("analysis-rules.json");
    std::fs::write(
        &path,
        serde_json::json!({ "groups": [{ "name": "analysis", "rules": rules }] }).to_string(),
    )
    .expect("write");
    tool_ok(
        "promtool",
        &["check", "rules", path.to_str().expect("utf-8")],
        "the Debian package prometheus",
    );
}
