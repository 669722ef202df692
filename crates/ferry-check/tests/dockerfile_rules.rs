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

/// (rule, positive, negative)
const CASES: &[(&str, &str, &str)] = &[
    (
        "DF000",
        "FROM alpine:3.20\nCOPY onlyone\n",
        "FROM alpine:3.20\nCOPY a /b\n",
    ),
    ("DF001", "FROM debian\n", "FROM debian:12-slim\n"),
    (
        "DF001",
        "FROM debian:latest\n",
        "FROM debian@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
    ),
    (
        "DF002",
        "FROM alpine:3.20\nUSER root\n",
        "FROM alpine:3.20\nUSER root\nRUN true\nUSER app\n",
    ),
    (
        "DF003",
        "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*\n",
        "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl=7.88.1-10 && rm -rf /var/lib/apt/lists/*\n",
    ),
    (
        "DF004",
        "FROM debian:12\nRUN apt-get install -y curl=1\n",
        "FROM debian:12\nRUN apt-get install -y --no-install-recommends curl=1\n",
    ),
    (
        "DF005",
        "FROM debian:12\nRUN apt-get install -y curl=1\n",
        "FROM debian:12\nRUN apt-get install -y curl=1 && rm -rf /var/lib/apt/lists/*\n",
    ),
    (
        "DF006",
        "FROM debian:12\nRUN apt-get update && apt-get upgrade -y\n",
        "FROM debian:12\nRUN apt-get update\n",
    ),
    (
        "DF007",
        "FROM alpine:3.20\nRUN apk add curl=8.0\n",
        "FROM alpine:3.20\nRUN apk add --no-cache curl=8.0\n",
    ),
    (
        "DF008",
        "FROM alpine:3.20\nRUN apk add --no-cache curl\n",
        "FROM alpine:3.20\nRUN apk add --no-cache curl=8.0\n",
    ),
    (
        "DF009",
        "FROM python:3.12\nRUN pip install -r requirements.txt\n",
        "FROM python:3.12\nRUN pip install --no-cache-dir -r requirements.txt\n",
    ),
    (
        "DF010",
        "FROM python:3.12\nRUN pip install --no-cache-dir flask\n",
        "FROM python:3.12\nRUN pip install --no-cache-dir flask==3.0.0\n",
    ),
    (
        "DF011",
        "FROM node:20\nRUN npm install -g typescript\n",
        "FROM node:20\nRUN npm install -g typescript@5.4.0\n",
    ),
    (
        "DF012",
        "FROM ruby:3.3\nRUN gem install rails\n",
        "FROM ruby:3.3\nRUN gem install rails -v 7.1.0\n",
    ),
    (
        "DF013",
        "FROM fedora:40\nRUN dnf install -y git\n",
        "FROM fedora:40\nRUN dnf install -y git && dnf clean all\n",
    ),
    (
        "DF014",
        "FROM alpine:3.20\nWORKDIR app\n",
        "FROM alpine:3.20\nWORKDIR /app\n",
    ),
    (
        "DF015",
        "FROM alpine:3.20\nADD . /app\n",
        "FROM alpine:3.20\nADD https://example.invalid/x.tgz /x\n",
    ),
    (
        "DF016",
        "FROM alpine:3.20\nCMD [\"a\"]\nCMD [\"b\"]\n",
        "FROM alpine:3.20\nCMD [\"b\"]\n",
    ),
    (
        "DF017",
        "FROM alpine:3.20\nRUN cd /tmp && make\n",
        "FROM alpine:3.20\nWORKDIR /tmp\nRUN make\n",
    ),
    (
        "DF018",
        "FROM alpine:3.20\nRUN sudo make install\n",
        "FROM alpine:3.20\nRUN make install\n",
    ),
    (
        "DF019",
        "FROM alpine:3.20\nRUN wget -O - https://x | tar xz\n",
        "FROM alpine:3.20\nSHELL [\"/bin/ash\", \"-eo\", \"pipefail\", \"-c\"]\nRUN wget -O - https://x | tar xz\n",
    ),
    (
        "DF020",
        "FROM alpine:3.20\nEXPOSE 80000\n",
        "FROM alpine:3.20\nEXPOSE 8080/tcp 53/udp 9000-9010\n",
    ),
    (
        "DF021",
        "FROM alpine:3.20\nCOPY --from=build /a /a\n",
        "FROM alpine:3.20 AS build\nFROM alpine:3.20\nCOPY --from=build /a /a\n",
    ),
    (
        "DF022",
        "FROM alpine:3.20\nMAINTAINER me\n",
        "FROM alpine:3.20\nLABEL org.opencontainers.image.authors=me\n",
    ),
    (
        "DF023",
        "FROM alpine:3.20\nEXPOSE 8080\nCMD [\"/app\"]\n",
        "FROM alpine:3.20\nEXPOSE 8080\nHEALTHCHECK CMD [\"/app\", \"health\"]\nCMD [\"/app\"]\n",
    ),
    (
        "DF024",
        "FROM alpine:3.20\nENV DB_PASSWORD=hunter22\n",
        "FROM alpine:3.20\nENV DB_PASSWORD_FILE=/run/secrets/db\n",
    ),
    (
        "DF025",
        "FROM node:20\nWORKDIR /app\nCOPY . .\nRUN npm ci\n",
        "FROM node:20\nWORKDIR /app\nCOPY package.json package-lock.json ./\nRUN npm ci\nCOPY . .\n",
    ),
    (
        "DF026",
        "FROM python:3.12\nCMD [\"python\", \"manage.py\", \"runserver\", \"0.0.0.0:8000\"]\n",
        "FROM python:3.12\nCMD [\"gunicorn\", \"app.wsgi\"]\n",
    ),
    (
        "DF028",
        "FROM alpine:3.20\nCMD /app --port 80\n",
        "FROM alpine:3.20\nCMD [\"/app\", \"--port\", \"80\"]\n",
    ),
    (
        "DF029",
        "FROM alpine:3.20 AS a\nFROM alpine:3.20 AS a\n",
        "FROM alpine:3.20 AS a\nFROM alpine:3.20 AS b\n",
    ),
    (
        "DF030",
        "FROM debian:12\nRUN apt install -y curl\n",
        "FROM debian:12\nRUN apt-get install -y --no-install-recommends curl=1 && rm -rf /var/lib/apt/lists/*\n",
    ),
    (
        "DF031",
        "FROM alpine:3.20\nCOPPY a b\n",
        "FROM alpine:3.20\nCOPY a b\n",
    ),
];

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
