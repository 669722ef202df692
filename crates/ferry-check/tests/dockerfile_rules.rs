//! Every Dockerfile rule fires on a positive fixture and stays quiet on a negative one.

use ferry_check::{CheckOptions, FileKind, Finding, check_source};

fn run(text: &str) -> Vec<Finding> {
    check_source(
        FileKind::Dockerfile,
        "Dockerfile",
        text,
        &CheckOptions::default(),
    )
}

fn fired(text: &str, rule: &str) -> Vec<Finding> {
    run(text).into_iter().filter(|f| f.rule == rule).collect()
}

use ferry_check::dockerfile::EXAMPLES as CASES;

#[test]
fn every_rule_has_a_positive_and_a_negative_case() {
    for (rule, pos, neg) in CASES {
        assert!(
            !fired(pos, rule).is_empty(),
            "{rule} should fire on:\n{pos}\ngot {:#?}",
            run(pos)
        );
        assert!(
            fired(neg, rule).is_empty(),
            "{rule} should not fire on:\n{neg}\ngot {:#?}",
            fired(neg, rule)
        );
    }
}

#[test]
fn every_dockerfile_rule_has_a_case() {
    for r in ferry_check::rules::RULES
        .iter()
        .filter(|r| r.id.starts_with("DF"))
    {
        // DF027 needs the file system (see check_paths tests).
        if r.id != "DF027" {
            assert!(
                CASES.iter().any(|(id, _, _)| *id == r.id),
                "no fixture for {}",
                r.id
            );
        }
    }
}

#[test]
fn positions_are_exact() {
    let f = fired(
        "FROM alpine:3.20\nRUN apk add --no-cache \\\n    curl\n",
        "DF008",
    );
    assert_eq!((f[0].line, f[0].column, f[0].end_column), (3, 5, 9));
    let f = fired("FROM alpine:3.20\nEXPOSE 80 99999/tcp\n", "DF020");
    assert_eq!((f[0].line, f[0].column, f[0].end_column), (2, 11, 20));
}

#[test]
fn final_image_rules_follow_the_target_stage() {
    let text = "FROM alpine:3.20 AS debug\nUSER root\nFROM alpine:3.20 AS prod\nUSER app\n";
    assert!(fired(text, "DF002").is_empty());
    let opts = CheckOptions {
        target: Some("debug".into()),
        ..CheckOptions::default()
    };
    let f = check_source(FileKind::Dockerfile, "Dockerfile", text, &opts);
    assert!(f.iter().any(|f| f.rule == "DF002"));
}

#[test]
fn build_args_resolve_base_images() {
    let text = "ARG TAG=latest\nFROM alpine:${TAG}\n";
    assert_eq!(fired(text, "DF001").len(), 1);
    let mut opts = CheckOptions::default();
    opts.build_args.insert("TAG".into(), "3.20".into());
    let f = check_source(FileKind::Dockerfile, "Dockerfile", text, &opts);
    assert!(!f.iter().any(|f| f.rule == "DF001"));
}

#[test]
fn suppressions_ferry_and_hadolint() {
    let text = "# hadolint ignore=DL3006\nFROM debian\n";
    assert!(fired(text, "DF001").is_empty());
    let text = "FROM debian:12\n# ferry:ignore DF004,DF003 vendor image needs recommends\nRUN apt-get install -y \\\n  curl && rm -rf /var/lib/apt/lists/*\n";
    let all = run(text);
    assert!(
        all.iter().all(|f| f.rule != "DF004" && f.rule != "DF003"),
        "{all:#?}"
    );
    assert!(all.iter().all(|f| !f.rule.starts_with("FER")), "{all:#?}");
    let text = "FROM debian:12\n# ferry:ignore DF004\nRUN true\n# ferry:ignore DF999 x\nRUN true\n";
    let rules: Vec<_> = run(text).into_iter().map(|f| f.rule).collect();
    assert!(rules.contains(&"FER001"), "{rules:?}");
    assert!(rules.contains(&"FER003"), "{rules:?}");
    assert!(rules.contains(&"FER002"));
}

#[test]
fn dockerignore_is_looked_for_next_to_the_dockerfile() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("Dockerfile"), "FROM alpine:3.20\n").expect("write");
    let r = ferry_check::check_paths(&[dir.path().to_path_buf()], &CheckOptions::default())
        .expect("check");
    assert!(r.findings.iter().any(|f| f.rule == "DF027"));
    std::fs::write(dir.path().join(".dockerignore"), ".git\n").expect("write");
    let r = ferry_check::check_paths(&[dir.path().to_path_buf()], &CheckOptions::default())
        .expect("check");
    assert!(!r.findings.iter().any(|f| f.rule == "DF027"));
}

#[test]
fn onbuild_content_is_linted_but_does_not_count_as_this_stages_cmd() {
    let text =
        "FROM node:20\nCMD [\"node\"]\nONBUILD CMD [\"npm\", \"start\"]\nONBUILD RUN sudo make\n";
    assert!(fired(text, "DF016").is_empty());
    assert_eq!(fired(text, "DF018").len(), 1);
}

#[test]
fn an_unknown_target_is_reported() {
    let opts = CheckOptions {
        target: Some("prod".into()),
        ..CheckOptions::default()
    };
    let f = check_source(
        FileKind::Dockerfile,
        "Dockerfile",
        "FROM alpine:3.20 AS build\nFROM alpine:3.20 AS final\n",
        &opts,
    );
    let t: Vec<_> = f.iter().filter(|f| f.rule == "DF000").collect();
    assert_eq!(t.len(), 1, "{f:#?}");
    assert_eq!(t[0].hint.as_deref(), Some("stages: build, final"));
}

#[test]
fn buildkit_check_skip_directive_suppresses_equivalent_rules() {
    let text = "# check=skip=JSONArgsRecommended,MaintainerDeprecated\nFROM alpine:3.20\nMAINTAINER me\nCMD run now\n";
    let all = run(text);
    assert!(
        all.iter().all(|f| f.rule != "DF028" && f.rule != "DF022"),
        "{all:#?}"
    );
    let text = "# check=skip=all\nFROM node:${V}\n";
    assert!(fired(text, "DF032").is_empty());
}
