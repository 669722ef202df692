//! check_paths: classification by name and content, errors for missing paths, cross-file
//! Kubernetes references.

use ferry_check::{CheckOptions, Error, FileKind, check_paths, classify};
use std::path::Path;

#[test]
fn files_are_classified_by_name_and_content() {
    let k8s = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n";
    assert_eq!(
        classify(Path::new("Dockerfile"), ""),
        Some(FileKind::Dockerfile)
    );
    assert_eq!(
        classify(Path::new("api.Dockerfile"), ""),
        Some(FileKind::Dockerfile)
    );
    assert_eq!(
        classify(Path::new("Containerfile"), ""),
        Some(FileKind::Dockerfile)
    );
    assert_eq!(
        classify(
            Path::new("build-image"),
            "# comment\nARG X=1\nFROM alpine:3\n"
        ),
        Some(FileKind::Dockerfile)
    );
    assert_eq!(
        classify(Path::new("docker-compose.prod.yml"), ""),
        Some(FileKind::Compose)
    );
    assert_eq!(
        classify(Path::new("stack.yaml"), "services:\n  web: {image: x:1}\n"),
        Some(FileKind::Compose)
    );
    assert_eq!(
        classify(Path::new("deploy.yaml"), k8s),
        Some(FileKind::Kubernetes)
    );
    assert_eq!(classify(Path::new("values.yaml"), "replicas: 2\n"), None);
    assert_eq!(classify(Path::new("notes.txt"), "hello\n"), None);
}

#[test]
fn a_missing_path_is_an_error_naming_it() {
    let err =
        check_paths(&["/nonexistent/ferry".into()], &CheckOptions::default()).expect_err("missing");
    assert!(matches!(err, Error::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/ferry"));
}

#[test]
fn explicit_other_files_get_the_secrets_scan_and_findings_are_sorted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = dir.path().join("app.env");
    std::fs::write(&env, "LOG=info\nAPI_TOKEN=abcd1234efgh5678\n").expect("write");
    std::fs::write(dir.path().join("Dockerfile"), "FROM debian\nUSER root\n").expect("write");
    let r = check_paths(
        &[env.clone(), dir.path().to_path_buf()],
        &CheckOptions::default(),
    )
    .expect("check");
    assert_eq!(r.files_checked, 2);
    assert!(
        r.findings
            .iter()
            .any(|f| f.file == env && f.rule == "SEC003" && f.line == 2)
    );
    let keys: Vec<_> = r
        .findings
        .iter()
        .map(|f| (f.file.clone(), f.line, f.column))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn options_disable_and_override() {
    let text = "FROM debian\nUSER root\n";
    let mut opts = CheckOptions::default();
    opts.disabled_rules.push("base-image-tag".into());
    opts.severity_overrides
        .insert("DF002".into(), ferry_check::Severity::Error);
    let f = ferry_check::check_source(FileKind::Dockerfile, "Dockerfile", text, &opts);
    assert!(f.iter().all(|f| f.rule != "DF001"));
    assert!(
        f.iter()
            .any(|f| f.rule == "DF002" && f.severity == ferry_check::Severity::Error)
    );
}
