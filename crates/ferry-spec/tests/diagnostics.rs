//! Every kind of problem is reported with its stable code at the exact line:column.

use ferry_spec::{Diagnostics, SourceFile, parse};

const HEAD: &str = "app = \"demo\"\nimage = \"demo:1\"\n[web]\nport = 8080\n";

fn diagnose(text: &str) -> Diagnostics {
    match parse(&SourceFile::new("ferry.toml", text)) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(d) => d,
    }
}

/// (code, line, column) of every problem, in file order.
fn found(text: &str) -> Vec<(&'static str, usize, usize)> {
    diagnose(text)
        .problems
        .iter()
        .map(|p| (p.code, p.line().unwrap_or(0), p.column().unwrap_or(0)))
        .collect()
}

fn assert_one(text: &str, code: &str, line: usize, column: usize) {
    let all = found(text);
    assert!(
        all.contains(&(code, line, column)),
        "expected {code} at {line}:{column}, found {all:?}"
    );
}

#[test]
fn unknown_key_wrong_type_and_bad_duration_are_all_reported_in_one_pass() {
    let text = include_str!("fixtures/three-problems.toml");
    let diagnostics = diagnose(text);
    let all: Vec<_> = diagnostics
        .problems
        .iter()
        .map(|p| (p.code, p.line().unwrap_or(0), p.column().unwrap_or(0)))
        .collect();
    assert_eq!(
        all,
        vec![
            ("unknown-key", 6, 1),
            ("invalid-type", 7, 13),
            ("invalid-duration", 8, 18),
        ]
    );
    let unknown = &diagnostics.problems[0];
    assert_eq!(unknown.hint, "did you mean `port`?");
    assert!(diagnostics.problems.iter().all(|p| !p.hint.is_empty()));
    assert_eq!(diagnostics.to_string(), "ferry.toml: 3 errors");
    let records = diagnostics.to_records();
    assert_eq!(records[2].end_line, Some(8));
    assert_eq!(records[2].end_column, Some(28));
    assert_eq!(records[0].file.as_deref(), Some("ferry.toml"));
}

#[test]
fn human_rendering_shows_file_line_column_label_and_hint() {
    let d = diagnose(
        "app = \"demo\"\nimage = \"demo:1\"\n[web]\nport = 8080\nhealth = { path = \"/h\", interval = \"5 sec\" }\n",
    );
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
    let mut out = String::new();
    handler.render_report(&mut out, &d).expect("renders");
    assert!(out.contains("ferry.toml:5:"), "{out}");
    assert!(out.contains("invalid-duration"), "{out}");
    assert!(out.contains("help: write a number with a unit"), "{out}");
    let reports = d.render();
    assert_eq!(reports.len(), 1);
    let mut one = String::new();
    handler
        .render_report(&mut one, reports[0].as_ref())
        .expect("renders");
    assert!(one.contains("[ferry.toml:5:"), "{one}");
}

#[test]
fn toml_syntax_errors_are_located() {
    assert_one("app = \"demo\"\nimage = demo\n", "invalid-toml", 2, 9);
    assert_one("app = \"demo\"\napp = \"again\"\n", "duplicate-key", 2, 1);
}

#[test]
fn missing_required_keys_point_at_their_table() {
    let text = format!("{HEAD}[web.health]\ninterval = \"5s\"\n");
    assert_one(&text, "missing-key", 5, 6);
    assert_one("image = \"x:1\"\n[web]\n", "missing-key", 1, 1);
}

#[test]
fn build_and_image_conflict() {
    assert_one(
        "app = \"demo\"\nimage = \"demo:1\"\n[build]\n[web]\n",
        "conflicting-keys",
        2,
        1,
    );
}

#[test]
fn neither_build_nor_image_is_a_warning_since_deploy_image_can_stand_in() {
    let doc = parse(&SourceFile::new("ferry.toml", "app = \"demo\"\n[web]\n"))
        .expect("a warning alone does not fail");
    let codes: Vec<_> = doc.warnings().iter().map(|p| p.code).collect();
    assert_eq!(codes, vec!["no-image"]);
    let spec = doc.resolve(None).expect("resolves");
    assert!(spec.image.is_none() && spec.build.is_none());
}

#[test]
fn values_are_checked_where_written() {
    assert_one(
        "app = \"Demo_App\"\nimage = \"x:1\"\n[web]\n",
        "invalid-name",
        1,
        8,
    );
    assert_one(
        &format!("{HEAD}[web.resources]\nmemory = \"64mb\"\n"),
        "invalid-size",
        6,
        11,
    );
    assert_one(
        &format!("{HEAD}[web.resources]\nmemory = \"1Mi\"\n"),
        "out-of-range",
        6,
        11,
    );
    assert_one(&format!("{HEAD}replicas = -1\n"), "out-of-range", 5, 12);
    assert_one(
        "app = \"demo\"\nimage = \"x:1\"\n[web]\nport = 0\n",
        "out-of-range",
        4,
        8,
    );
    assert_one(
        &format!("{HEAD}readiness_path = \"ready\"\n"),
        "invalid-path",
        5,
        19,
    );
    assert_one(
        &format!("{HEAD}[env]\n\"BAD-NAME\" = \"x\"\n"),
        "invalid-env-name",
        6,
        2,
    );
    assert_one(&format!("{HEAD}secrets = [\"OK\"]\n"), "unknown-key", 5, 1);
    assert_one(
        &format!("secrets = [\"1BAD\"]\n{HEAD}"),
        "invalid-env-name",
        1,
        13,
    );
    assert_one(
        &format!("{HEAD}[[web.routes]]\nhosts = [\"Bad Host\"]\n"),
        "invalid-host",
        6,
        11,
    );
    assert_one(
        &format!("{HEAD}[accessories.db]\nimage = \"postgres:16\"\nvolumes = [\"data\"]\n"),
        "invalid-volume",
        7,
        13,
    );
    assert_one(
        &format!("{HEAD}[[notify.webhooks]]\nurl = \"ftp://x\"\nevents = [\"deploy-sucess\"]\n"),
        "invalid-url",
        6,
        8,
    );
    assert_one(
        &format!("{HEAD}[[notify.webhooks]]\nurl = \"https://x\"\nevents = [\"deploy-sucess\"]\n"),
        "invalid-value",
        7,
        12,
    );
}

#[test]
fn enum_values_suggest_the_closest_variant() {
    let d = diagnose(&format!("{HEAD}[strategy]\nkind = \"canery\"\n"));
    let p = d
        .problems
        .iter()
        .find(|p| p.code == "invalid-value")
        .expect("reported");
    assert_eq!((p.line(), p.column()), (Some(6), Some(9)));
    assert_eq!(p.hint, "did you mean \"canary\"?");
}

#[test]
fn canary_steps_are_validated() {
    let text = format!(
        "{HEAD}[strategy]\nkind = \"canary\"\n[strategy.canary]\nsteps = [\n  {{ weight = 50 }},\n  {{ weight = 20 }},\n  {{ analysis = \"defualt\" }},\n  {{ pause = \"later\" }},\n  {{ wieght = 1 }},\n  {{ weight = 101 }},\n]\n[analysis.default]\nmetrics = [{{ name = \"ok\", kind = \"success-rate\", min = 0.99 }}]\n"
    );
    let all = found(&text);
    for expected in [
        ("decreasing-weight", 10, 14),
        ("undefined-analysis", 11, 17),
        ("invalid-duration", 12, 14),
        ("unknown-key", 13, 5),
        ("out-of-range", 14, 14),
    ] {
        assert!(all.contains(&expected), "missing {expected:?} in {all:?}");
    }
    let d = diagnose(&text);
    let undefined = d
        .problems
        .iter()
        .find(|p| p.code == "undefined-analysis")
        .expect("reported");
    assert_eq!(undefined.hint, "did you mean \"default\"?");
    let typo = d
        .problems
        .iter()
        .find(|p| p.code == "unknown-key")
        .expect("reported");
    assert_eq!(typo.hint, "did you mean `weight`?");
}

#[test]
fn canary_without_steps_is_an_error() {
    assert_one(
        &format!("{HEAD}[strategy]\nkind = \"canary\"\n"),
        "missing-key",
        6,
        9,
    );
}

#[test]
fn analysis_rules() {
    let text = format!(
        "{HEAD}[analysis.a]\nmeasurements = 3\nduration = \"5m\"\nprovider = \"prometheus\"\nmetrics = [\n  {{ name = \"q\", kind = \"query\", max = 1.0 }},\n  {{ name = \"s\", kind = \"success-rate\" }},\n  {{ name = \"e\", kind = \"error-rate\", max = 5.0 }},\n]\n"
    );
    let all = found(&text);
    for expected in [
        ("unused-analysis", 5, 11),
        ("conflicting-keys", 7, 1),
        ("missing-key", 8, 13),
        ("missing-key", 10, 3),
        ("missing-threshold", 11, 3),
        ("out-of-range", 12, 44),
    ] {
        assert!(all.contains(&expected), "missing {expected:?} in {all:?}");
    }
}

#[test]
fn overlay_problems_are_reported_at_the_overlay() {
    let text = format!(
        "{HEAD}[environments.production]\nproduction = \"yes\"\nweb = {{ replicas = \"3\", porrt = 1 }}\n[environments.Bad]\n"
    );
    let all = found(&text);
    for expected in [
        ("invalid-type", 6, 15),
        ("invalid-type", 7, 21),
        ("unknown-key", 7, 25),
        ("invalid-name", 8, 15),
    ] {
        assert!(all.contains(&expected), "missing {expected:?} in {all:?}");
    }
    let d = diagnose(&text);
    let quoted = d
        .problems
        .iter()
        .find(|p| p.line() == Some(7) && p.code == "invalid-type")
        .expect("reported");
    assert_eq!(quoted.hint, "remove the quotes: replicas = 3");
    assert!(
        quoted.message.ends_with("(environment `production`)"),
        "{}",
        quoted.message
    );
}

#[test]
fn base_problems_are_reported_once_despite_overlays() {
    let text = format!("{HEAD}prot = 1\n[environments.a]\n[environments.b]\n");
    assert_eq!(found(&text), vec![("unknown-key", 5, 1)]);
}

#[test]
fn warnings_do_not_reject_the_spec() {
    let src = SourceFile::new(
        "ferry.toml",
        format!(
            "{HEAD}[env]\nDB_PASSWORD = \"hunter2\"\n[web.health]\npath = \"/h\"\ninterval = \"1s\"\ntimeout = \"5s\"\n"
        ),
    );
    let doc = parse(&src).expect("valid despite warnings");
    let codes: Vec<_> = doc
        .warnings()
        .iter()
        .map(|p| (p.code, p.line(), p.column()))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("plaintext-secret", Some(6), Some(1)),
            ("timeout-exceeds-interval", Some(10), Some(12)),
        ]
    );
}

#[test]
fn secrets_and_env_cannot_share_a_name() {
    assert_one(
        &format!("secrets = [\"TOKEN\"]\n{HEAD}[env]\nTOKEN = \"\"\n"),
        "duplicate-name",
        7,
        1,
    );
}

#[test]
fn keys_at_the_wrong_level_name_their_section() {
    let d = diagnose("app = \"demo\"\nimage = \"demo:1\"\nport = 8080\n[web]\n");
    assert_eq!(d.problems[0].code, "unknown-key");
    assert_eq!(d.problems[0].hint, "`port` belongs in [web]; move it there");
}

#[test]
fn fractional_durations_get_a_specific_reason() {
    let d = diagnose(&format!("{HEAD}drain_timeout = \"1.5m\"\n"));
    assert!(
        d.problems[0].message.contains("1m30s"),
        "{}",
        d.problems[0].message
    );
}
