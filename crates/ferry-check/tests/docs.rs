//! docs/check.md carries the generated rule table; it must match the rule catalogue.
//! Set FERRY_UPDATE_SNAPSHOTS=1 to regenerate it.

use ferry_check::rules::RULES;

fn table() -> String {
    let mut t = String::from(
        "| id | name | default | what it checks | hadolint | other tools |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for r in RULES {
        t.push_str(&format!(
            "| <a id=\"{}\"></a>`{}` | {} | {} | {} | {} | {} |\n",
            r.id.to_ascii_lowercase(),
            r.id,
            r.name,
            r.severity.as_str(),
            r.summary.replace('|', "\\|"),
            r.hadolint.join(", "),
            r.others
                .iter()
                .map(|o| o.to_string())
                .chain(
                    ferry_check::rules::BUILDKIT
                        .iter()
                        .filter(|(_, id)| *id == r.id)
                        .map(|(b, _)| format!("buildkit:{b}"))
                )
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    t
}

#[test]
fn docs_rule_table_matches_the_catalogue() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/check.md");
    let doc = std::fs::read_to_string(path).expect("docs/check.md");
    let (start, end) = ("<!-- rules:start -->\n", "<!-- rules:end -->");
    let a = doc.find(start).expect("start marker") + start.len();
    let b = doc.find(end).expect("end marker");
    let want = table();
    if std::env::var_os("FERRY_UPDATE_SNAPSHOTS").is_some() {
        let new = format!("{}{}{}", &doc[..a], want, &doc[b..]);
        std::fs::write(path, new).expect("write");
        return;
    }
    assert_eq!(
        &doc[a..b],
        want,
        "rule table drifted; rerun with FERRY_UPDATE_SNAPSHOTS=1"
    );
}

#[test]
fn rule_ids_are_unique_and_well_formed() {
    let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n);
    for r in RULES {
        let family = r.id.trim_end_matches(|c: char| c.is_ascii_digit());
        assert!(
            ["DF", "CP", "K8S", "YML", "SEC", "FER"].contains(&family),
            "{}",
            r.id
        );
        assert_eq!(r.id.len() - family.len(), 3, "{}", r.id);
    }
}
