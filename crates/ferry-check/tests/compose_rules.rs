//! Compose rules: positive and negative fixtures, exact positions, schema findings.

use ferry_check::{CheckOptions, FileKind, Finding, check_source};

fn run(text: &str) -> Vec<Finding> {
    check_source(
        FileKind::Compose,
        "compose.yaml",
        text,
        &CheckOptions::default(),
    )
}

fn fired(text: &str, rule: &str) -> Vec<Finding> {
    run(text).into_iter().filter(|f| f.rule == rule).collect()
}

const GOOD: &str = "services:
  web:
    image: nginx:1.27
    restart: unless-stopped
    healthcheck:
      test: [\"CMD\", \"curl\", \"-f\", \"http://localhost\"]
    deploy:
      resources:
        limits: {memory: 256M, cpus: '0.5'}
    depends_on:
      db: {condition: service_healthy}
    networks: [front]
    environment:
      DB_PASSWORD: ${DB_PASSWORD}
  db:
    image: postgres:16
    restart: unless-stopped
    mem_limit: 1g
    healthcheck:
      test: [\"CMD\", \"pg_isready\"]
    ports: [\"127.0.0.1:5432:5432\"]
    volumes: [\"data:/var/lib/postgresql/data\"]
networks:
  front: {}
volumes:
  data:
";

#[test]
fn a_good_file_is_clean() {
    let f = run(GOOD);
    assert!(f.is_empty(), "{f:#?}");
}

/// (rule, replacement applied to GOOD, expected line)
const CASES: &[(&str, &str, &str, u32)] = &[
    (
        "CP001",
        "    networks: [front]\n",
        "    restrat: always\n    networks: [front]\n",
        12,
    ),
    ("CP002", "mem_limit: 1g", "mem_limit: [1]", 18),
    (
        "CP003",
        "    healthcheck:\n      test: [\"CMD\", \"pg_isready\"]\n",
        "",
        15,
    ),
    ("CP004", "    mem_limit: 1g\n", "", 15),
    ("CP005", "postgres:16", "postgres", 16),
    (
        "CP006",
        "    mem_limit: 1g\n",
        "    mem_limit: 1g\n    privileged: true\n",
        19,
    ),
    (
        "CP007",
        "    mem_limit: 1g\n",
        "    mem_limit: 1g\n    network_mode: host\n",
        19,
    ),
    (
        "CP008",
        "      db: {condition: service_healthy}",
        "      - db",
        11,
    ),
    ("CP009", "127.0.0.1:5432:5432", "5432:5432", 21),
    ("CP010", "networks: [front]", "networks: [back]", 12),
    (
        "CP011",
        "    restart: unless-stopped\n    mem_limit",
        "    mem_limit",
        15,
    ),
    ("SEC003", "${DB_PASSWORD}", "hunter2hunter2", 14),
    (
        "YML002",
        "    mem_limit: 1g\n",
        "    mem_limit: 1g\n    mem_limit: 2g\n",
        19,
    ),
];

#[test]
fn every_compose_rule_fires_on_its_fixture_at_the_right_line() {
    for (rule, from, to, line) in CASES {
        assert!(GOOD.contains(from), "fixture for {rule} does not apply");
        let text = GOOD.replacen(from, to, 1);
        let f = fired(&text, rule);
        assert!(
            !f.is_empty(),
            "{rule} did not fire on:\n{text}\nall: {:#?}",
            run(&text)
        );
        assert_eq!(f[0].line, *line, "{rule}: {f:#?}");
        assert!(fired(GOOD, rule).is_empty());
    }
}

#[test]
fn unknown_key_suggests_the_right_one() {
    let text = GOOD.replacen(
        "    networks: [front]\n",
        "    helthcheck: {}\n    networks: [front]\n",
        1,
    );
    let f = fired(&text, "CP001");
    assert_eq!((f[0].line, f[0].column), (12, 5));
    assert_eq!(f[0].hint.as_deref(), Some("did you mean `healthcheck`?"));
}

#[test]
fn secrets_are_never_echoed() {
    let text = GOOD.replacen("${DB_PASSWORD}", "hunter2hunter2", 1);
    for f in run(&text) {
        assert!(!f.message.contains("hunter2"), "{f:?}");
    }
}

#[test]
fn yaml_syntax_error_is_one_finding() {
    let f = run("services:\n  web: [\n");
    assert_eq!(f.iter().filter(|f| f.rule == "YML001").count(), 1);
}

#[test]
fn a_compose_file_needs_services() {
    assert_eq!(fired("volumes:\n  data: {}\n", "CP012").len(), 1);
    assert!(fired("include:\n  - other.yaml\n", "CP012").is_empty());
}
