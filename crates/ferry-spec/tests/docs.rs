//! The user docs cannot rot: every ```toml block in docs/ferry-toml.md is a valid
//! ferry.toml, and the real JSON schema validator (`check-jsonschema`) accepts the blocks
//! and the demo spec against docs/ferry.schema.json and rejects a broken spec.

use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_spec::{SourceFile, parse};

const DOC: &str = include_str!("../../../docs/ferry-toml.md");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The ```toml blocks of the reference, with the line each starts on.
fn toml_blocks() -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in DOC.lines().enumerate() {
        match (&mut current, line.trim()) {
            (None, "```toml") => current = Some((i + 2, String::new())),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some((_, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "unclosed ```toml block");
    blocks
}

#[test]
fn every_toml_block_in_the_reference_is_a_valid_spec() {
    let blocks = toml_blocks();
    assert!(
        blocks.len() >= 15,
        "expected the reference's examples, found {}",
        blocks.len()
    );
    for (line, text) in &blocks {
        let src = SourceFile::new(format!("docs/ferry-toml.md:{line}"), text.as_str());
        let doc = parse(&src).unwrap_or_else(|d| {
            panic!(
                "block at docs/ferry-toml.md:{line} is invalid: {:#?}",
                d.to_records()
            )
        });
        assert!(
            doc.warnings().is_empty(),
            "block at line {line} has warnings: {:?}",
            doc.warnings()
        );
        for env in doc.environments() {
            doc.resolve(Some(&env)).expect("every environment resolves");
        }
    }
}

fn check_jsonschema(files: &[PathBuf]) -> std::process::Output {
    let schema = Path::new(ROOT).join("docs/ferry.schema.json");
    Command::new("check-jsonschema")
        .arg("--schemafile")
        .arg(schema)
        .args(files)
        .output()
        .expect(
            "check-jsonschema must be installed (PyPI package check-jsonschema, listed in \
             xtask/deps/pypi.txt): pip install check-jsonschema",
        )
}

#[test]
fn the_json_schema_accepts_the_examples_and_rejects_mistakes() {
    let dir = std::env::temp_dir().join(format!("ferry-spec-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut files = vec![Path::new(ROOT).join("examples/hello/ferry.toml")];
    for (i, (_, text)) in toml_blocks().iter().enumerate() {
        let path = dir.join(format!("block-{i}.toml"));
        std::fs::write(&path, text).expect("write block");
        files.push(path);
    }
    // An overlay may set one key of a table whose required keys come from the base.
    let overlay = dir.join("overlay.toml");
    let overlay_text = "app = \"x\"\nimage = \"x:1\"\n[web]\nhealth = { path = \"/h\" }\n[environments.prod.web.health]\ninterval = \"1s\"\ntimeout = \"1s\"\n";
    parse(&SourceFile::new("overlay.toml", overlay_text)).expect("the parser accepts it");
    std::fs::write(&overlay, overlay_text).expect("write overlay spec");
    files.push(overlay);
    let accepted = check_jsonschema(&files);
    assert!(
        accepted.status.success(),
        "schema rejected a valid spec:\n{}{}",
        String::from_utf8_lossy(&accepted.stdout),
        String::from_utf8_lossy(&accepted.stderr)
    );

    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "app = \"x\"\nimage = \"x:1\"\n[web]\nprot = 1\n[environments.prod]\nweb = { replicas = \"2\" }\n",
    )
    .expect("write bad spec");
    let rejected = check_jsonschema(&[bad]);
    let out = String::from_utf8_lossy(&rejected.stdout);
    assert!(
        !rejected.status.success(),
        "schema accepted a broken spec: {out}"
    );
    assert!(out.contains("'prot' was unexpected"), "{out}");
    assert!(out.contains("is not of type 'integer'"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
