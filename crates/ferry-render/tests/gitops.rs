//! GitOps in a real temporary git repository: the first render commits the tree; a new
//! image commits a one-line change of the overlay; an unchanged render commits nothing.
//! Argo CD Applications: auto-sync outside production, manual in production.

mod common;

use std::process::Command;

use common::{hello_for, options, tree};
use ferry_render::{GitopsOptions, RenderOptions, Target, gitops_update, render};

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git is installed");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn k8s(image: &str) -> ferry_render::Rendered {
    let opts = RenderOptions {
        image: Some(image.to_owned()),
        ..options()
    };
    render(
        Target::K8s,
        &hello_for("production"),
        Some("production"),
        &opts,
    )
    .expect("renders")
}

#[test]
fn a_promotion_changes_only_the_image_line_and_commits_it() {
    let repo = tempfile::tempdir().expect("tempdir");
    git(repo.path(), &["init", "--quiet"]);
    let opts = GitopsOptions::default();

    let first = gitops_update(
        repo.path(),
        "production",
        &k8s("registry.example.com/hello:v1"),
        &opts,
    )
    .expect("first render");
    assert!(!first.promotion_only);
    assert!(first.commit.is_some());
    assert!(first.changed.len() > 5, "{:?}", first.changed);

    let again = gitops_update(
        repo.path(),
        "production",
        &k8s("registry.example.com/hello:v1"),
        &opts,
    )
    .expect("same render");
    assert!(again.changed.is_empty() && again.commit.is_none());

    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let promo = gitops_update(
        repo.path(),
        "production",
        &k8s(&format!("registry.example.com/hello@{digest}")),
        &opts,
    )
    .expect("promotion");
    assert!(promo.promotion_only, "{promo:?}");
    assert_eq!(
        promo.message,
        format!("ferry: promote production to registry.example.com/hello@{digest}")
    );
    let stat = git(repo.path(), &["show", "--numstat", "--format=%s", "HEAD"]);
    assert_eq!(
        stat.trim(),
        format!(
            "{}\n\n1\t1\tdeploy/overlays/production/kustomization.yaml",
            promo.message
        ),
        "exactly one line replaced in one file"
    );
    let diff = git(repo.path(), &["show", "--format=", "-U0", "HEAD"]);
    assert!(
        diff.contains("-    newTag: v1") && diff.contains(&format!("+    digest: {digest}")),
        "{diff}"
    );
}

#[test]
fn gitops_outside_a_repository_is_a_git_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = gitops_update(
        dir.path(),
        "production",
        &k8s("hello:v1"),
        &GitopsOptions::default(),
    )
    .expect_err("not a repository");
    assert!(err.to_string().contains("git add"), "{err}");
    let missing = gitops_update(
        dir.path(),
        "staging",
        &k8s("hello:v1"),
        &GitopsOptions::default(),
    )
    .expect_err("no staging overlay in a production render");
    assert!(matches!(missing, ferry_render::Error::NoOverlay(_)));
}

#[test]
fn argocd_syncs_automatically_except_in_production() {
    let r = render(Target::Argocd, &common::hello(), None, &options()).expect("renders");
    let staging = r.get("argocd/hello-staging.yaml").expect("staging app");
    let production = r
        .get("argocd/hello-production.yaml")
        .expect("production app");
    assert!(
        staging.contains("automated:") && staging.contains("selfHeal: true"),
        "{staging}"
    );
    assert!(!production.contains("automated:"), "{production}");
    assert!(
        production.contains("path: deploy/overlays/production"),
        "{production}"
    );
    insta::assert_snapshot!(tree(&r));
}

#[test]
fn a_spec_change_is_a_render_commit_and_commit_false_only_writes() {
    let repo = tempfile::tempdir().expect("tempdir");
    git(repo.path(), &["init", "--quiet"]);
    let opts = GitopsOptions::default();
    gitops_update(repo.path(), "production", &k8s("hello:v1"), &opts).expect("first render");

    let mut spec = hello_for("production");
    spec.web.as_mut().expect("web").replicas = 5;
    let r = render(
        Target::K8s,
        &spec,
        Some("production"),
        &RenderOptions {
            image: Some("hello:v1".to_owned()),
            ..options()
        },
    )
    .expect("renders");
    let dry = gitops_update(
        repo.path(),
        "production",
        &r,
        &GitopsOptions {
            commit: false,
            ..opts.clone()
        },
    )
    .expect("write only");
    assert!(!dry.promotion_only && dry.commit.is_none(), "{dry:?}");
    assert!(
        dry.message
            .starts_with("ferry: render production manifests (1 file changed"),
        "{}",
        dry.message
    );
    let status = git(repo.path(), &["status", "--porcelain"]);
    assert_eq!(
        status.trim(),
        "M deploy/overlays/production/kustomization.yaml"
    );
    assert_eq!(
        git(repo.path(), &["rev-list", "--count", "HEAD"]).trim(),
        "1"
    );
}
