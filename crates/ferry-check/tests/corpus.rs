//! The real-world corpus (../shared/corpus beside the repository) parses without syntax
//! findings and without panics.

use ferry_check::{CheckOptions, FileKind, check_paths, check_source};
use std::path::PathBuf;

pub fn corpus() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    assert!(
        p.join("index.tsv").exists(),
        "the shared corpus must be at {} (CI lays shared/ beside the clone)",
        p.display()
    );
    p
}

#[test]
fn every_corpus_dockerfile_parses_without_syntax_findings() {
    let dir = corpus().join("dockerfile");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("corpus dir") {
        let path = e.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let findings = check_source(
            FileKind::Dockerfile,
            &path.to_string_lossy(),
            &text,
            &CheckOptions::default(),
        );
        let syntax: Vec<_> = findings
            .iter()
            .filter(|f| f.rule == "DF000" || f.rule == "DF031")
            .collect();
        assert!(syntax.is_empty(), "{}: {syntax:?}", path.display());
        n += 1;
    }
    assert_eq!(n, 34);
}

#[test]
fn whole_corpus_is_classified_and_checked() {
    let report = check_paths(&[corpus()], &CheckOptions::default()).expect("check");
    // 34 Dockerfiles + 8 compose files + the Kubernetes files that are Kubernetes objects.
    assert!(
        report.files_checked >= 34 + 8 + 25,
        "checked only {}",
        report.files_checked
    );
    let syntax: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.rule == "DF000" || f.rule == "DF031")
        .collect();
    assert!(syntax.is_empty(), "{syntax:?}");
}

#[test]
fn valid_corpus_manifests_have_no_schema_or_syntax_errors() {
    let report = check_paths(
        &[corpus().join("k8s"), corpus().join("compose")],
        &CheckOptions::default(),
    )
    .expect("check");
    let bad: Vec<_> = report
        .findings
        .iter()
        .filter(|f| {
            [
                "K8S001", "K8S002", "K8S004", "K8S005", "CP001", "CP002", "YML001", "YML002",
            ]
            .contains(&f.rule)
        })
        // The raw Helm template is Go-template text, not YAML: one syntax finding is right.
        .filter(|f| !f.file.to_string_lossy().contains("helm-chart__templates"))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    let helm: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.file.to_string_lossy().contains("helm-chart__templates"))
        .collect();
    assert_eq!(
        helm.iter().filter(|f| f.rule == "YML001").count(),
        1,
        "{helm:#?}"
    );
}

#[test]
fn helm_rendered_corpus_file_maps_findings_to_templates() {
    let report = check_paths(
        &[corpus().join("k8s/zegl__kube-score__score__testdata__linenumbers-helm.yaml")],
        &CheckOptions::default(),
    )
    .expect("check");
    assert!(!report.findings.is_empty());
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.source_template.as_deref() == Some("app1/templates/deployment.yaml")),
        "{:#?}",
        report.findings
    );
}
