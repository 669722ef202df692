//! The analysis keys beyond canary steps: checks (`command`, `http`), blue-green pre- and
//! post-promotion analyses and background analysis are parsed, and their mistakes are
//! reported at the exact line:column.

use ferry_spec::{CheckMethod, MetricKind, SourceFile, parse};

const HEAD: &str = "app = \"demo\"\nimage = \"demo:1\"\n[web]\nport = 8080\n";

/// (code, line, column) of every problem, in file order.
fn found(text: &str) -> Vec<(&'static str, usize, usize)> {
    match parse(&SourceFile::new("ferry.toml", text)) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(d) => d
            .problems
            .iter()
            .map(|p| (p.code, p.line().unwrap_or(0), p.column().unwrap_or(0)))
            .collect(),
    }
}

#[test]
fn checks_and_the_new_analysis_places_parse() {
    let text = format!(
        "{HEAD}[strategy]\nkind = \"blue-green\"\nanalysis = \"bg\"\n\
         [strategy.blue_green]\npre_promotion_analysis = \"gate\"\npost_promotion_analysis = \"bg\"\n\
         [analysis.gate]\nmetrics = [\n\
         {{ name = \"self\", kind = \"command\", command = [\"/app\", \"check\"], timeout = \"2m\" }},\n\
         {{ name = \"local\", kind = \"command\", command = [\"./e2e.sh\"], local = true }},\n\
         {{ name = \"home\", kind = \"http\", url = \"/\", method = \"POST\", body = \"{{}}\", status = 201, body_contains = \"ok\" }},\n\
         ]\n[analysis.bg]\nmetrics = [{{ name = \"e\", kind = \"error-rate\", max = 0.01 }}]\n"
    );
    let doc = parse(&SourceFile::new("ferry.toml", &text)).expect("valid spec");
    assert!(doc.warnings().is_empty(), "{:?}", doc.warnings());
    let spec = doc.resolve(None).expect("resolves");
    assert_eq!(spec.strategy.analysis.as_deref(), Some("bg"));
    let bg = spec.strategy.blue_green.as_ref().expect("blue_green");
    assert_eq!(bg.pre_promotion_analysis.as_deref(), Some("gate"));
    assert_eq!(bg.post_promotion_analysis.as_deref(), Some("bg"));
    let gate = &spec.analysis["gate"].metrics;
    assert_eq!(gate[0].kind, MetricKind::Command);
    assert_eq!(
        gate[0].command.as_deref(),
        Some(&["/app".to_owned(), "check".to_owned()][..])
    );
    assert!(gate[1].local);
    assert_eq!(gate[2].kind, MetricKind::Http);
    assert_eq!(gate[2].method, Some(CheckMethod::Post));
    assert_eq!(gate[2].status, Some(201));
}

#[test]
fn check_mistakes_are_reported_where_they_are() {
    let text = format!(
        "{HEAD}[strategy]\nanalysis = \"bgx\"\n\
         [strategy.blue_green]\npre_promotion_analysis = \"nope\"\n\
         [analysis.bg]\nmetrics = [\n\
         {{ name = \"a\", kind = \"command\" }},\n\
         {{ name = \"b\", kind = \"http\", url = \"ftp://x\", max = 1 }},\n\
         {{ name = \"c\", kind = \"error-rate\", max = 0.1, url = \"/\" }},\n\
         {{ name = \"d\", kind = \"http\", url = \"/\", status = 42 }},\n\
         ]\n"
    );
    let all = found(&text);
    for expected in [
        ("undefined-analysis", 6, 13),
        ("undefined-analysis", 8, 27),
        ("unused-analysis", 9, 11),
        ("missing-key", 11, 1),
        ("invalid-url", 12, 37),
        ("invalid-key", 12, 47),
        ("invalid-key", 13, 47),
        ("out-of-range", 14, 50),
    ] {
        assert!(all.contains(&expected), "missing {expected:?} in {all:?}");
    }
}
