//! Output formats: SARIF validated against the official SARIF 2.1.0 schema (vendored from
//! the OASIS errata01 release) with `check-jsonschema`, GitHub annotations, JSON.

use ferry_check::{CheckOptions, FileKind, check_sources, output};
use std::process::Command;

fn sample() -> ferry_check::Report {
    check_sources(
        &[
            (
                FileKind::Dockerfile,
                "app/Dockerfile",
                "FROM debian\nRUN apt-get install -y curl\nEXPOSE 8080\nCMD run, now\n",
            ),
            (
                FileKind::Compose,
                "compose.yaml",
                "services:\n  db:\n    image: postgres\n",
            ),
        ],
        &CheckOptions::default(),
    )
}

#[test]
fn sarif_validates_against_the_official_schema() {
    let mut report = sample();
    let corpus =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    if corpus.exists() {
        let more = ferry_check::check_paths(&[corpus], &CheckOptions::default()).expect("corpus");
        report.findings.extend(more.findings);
    }
    assert!(!report.findings.is_empty());
    let sarif = output::to_sarif(&report);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("report.sarif");
    std::fs::write(&file, serde_json::to_string_pretty(&sarif).expect("json")).expect("write");
    let schema = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/sarif-schema-2.1.0.json"
    );
    let out = Command::new("check-jsonschema")
        .arg("--schemafile")
        .arg(schema)
        .arg(&file)
        .output()
        .expect("check-jsonschema must be installed: pip install check-jsonschema (listed in xtask/deps/pypi.txt)");
    assert!(
        out.status.success(),
        "SARIF does not validate:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Every result points at a rule with metadata.
    let rules = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules");
    for r in sarif["runs"][0]["results"].as_array().expect("results") {
        let idx = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[idx]["id"], r["ruleId"]);
    }
    assert!(rules.iter().any(|r| {
        r["properties"]["hadolint"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    }));
}

#[test]
fn github_annotations_are_escaped_workflow_commands() {
    let gh = output::to_github(&sample());
    let first = gh
        .lines()
        .find(|l| l.contains("DF001"))
        .expect("DF001 annotation");
    assert!(
        first.starts_with("::warning file=app/Dockerfile,line=1,col=6"),
        "{first}"
    );
    assert!(first.contains("title=DF001 base-image-tag::"), "{first}");
    for l in gh.lines() {
        assert!(
            l.starts_with("::error ") || l.starts_with("::warning ") || l.starts_with("::notice "),
            "{l}"
        );
    }
}

#[test]
fn json_has_summary_and_findings() {
    let j = output::to_json(&sample());
    assert_eq!(j["files_checked"], 2);
    let n = j["findings"].as_array().expect("findings").len() as u64;
    let s = &j["summary"];
    assert_eq!(
        s["error"].as_u64().unwrap_or(0)
            + s["warning"].as_u64().unwrap_or(0)
            + s["info"].as_u64().unwrap_or(0),
        n
    );
    assert!(j["findings"][0]["rule"].is_string());
}

/// Snapshot of SARIF results and text output for a small sample (rule metadata is covered
/// by the docs table test). Set FERRY_UPDATE_SNAPSHOTS=1 to rewrite.
#[test]
fn sarif_results_and_text_output_match_snapshot() {
    let report = sample();
    let sarif = output::to_sarif(&report);
    let got = format!(
        "{}\n---\n{}",
        serde_json::to_string_pretty(&sarif["runs"][0]["results"]).expect("json"),
        output::to_text(&report)
    );
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sample-output.snap");
    if std::env::var_os("FERRY_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &got).expect("write");
    }
    let want = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(
        got, want,
        "output changed; review and rerun with FERRY_UPDATE_SNAPSHOTS=1"
    );
}
