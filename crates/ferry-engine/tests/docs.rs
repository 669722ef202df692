//! The `.dockerignore` examples in docs/build.md say which paths are sent and which are
//! excluded; this test holds ferry's matcher to every one of those claims.

use ferry_engine::IgnoreRules;

#[test]
fn docs_build_md_dockerignore_example_holds() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/build.md");
    let doc = std::fs::read_to_string(path).expect("docs/build.md exists");
    let blocks = fenced_blocks(&doc);
    let mut checked = 0;
    for pair in blocks.windows(2) {
        let [(lang, rules), (next_lang, claims)] = pair else {
            continue;
        };
        if lang != "gitignore" || next_lang != "text" {
            continue;
        }
        let rules = IgnoreRules::parse(rules).expect("the example parses");
        for line in claims.lines() {
            let (verdict, file) = line.split_once(':').expect("`sent:` or `excluded:` lines");
            let file = file.trim();
            let excluded = rules.is_excluded(file);
            match verdict {
                "sent" => assert!(!excluded, "docs/build.md says {file} is sent"),
                "excluded" => assert!(excluded, "docs/build.md says {file} is excluded"),
                other => panic!("unknown claim {other:?} in docs/build.md"),
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 10,
        "only {checked} claims found: did the doc's format change?"
    );
}

/// (language, body) of every fenced code block.
fn fenced_blocks(doc: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in doc.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(lang)) => current = Some((lang.trim().to_owned(), String::new())),
            (Some(_), Some(_)) => blocks.extend(current.take()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}
