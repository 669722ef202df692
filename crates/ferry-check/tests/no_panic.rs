//! Property tests: arbitrary input never panics the Dockerfile, compose, Kubernetes or
//! secrets front ends, and every finding has a sane position.

use ferry_check::{CheckOptions, FileKind, check_source};
use proptest::prelude::*;

fn sane(kind: FileKind, text: &str) {
    let lines = text.split('\n').count() as u32 + 1;
    for f in check_source(kind, "x", text, &CheckOptions::default()) {
        assert!(f.line >= 1 && f.column >= 1, "{f:?}");
        assert!(f.line <= lines + 1 && f.end_line >= f.line, "{f:?}");
    }
}

/// Dockerfile-ish fragments, so generated text reaches deep parser states.
fn dockerfile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("FROM alpine:3 AS a\n".to_string()),
        Just("FROM ${IMG:-x}\n".to_string()),
        Just("ARG A=1\n".to_string()),
        Just("RUN <<EOF\n".to_string()),
        Just("RUN <<-'X' <<Y cat\n".to_string()),
        Just("EOF\n".to_string()),
        Just("\tX\n".to_string()),
        Just("COPY --from=a --chmod=755 <<EOF /x\n".to_string()),
        Just("RUN apt-get install -y x | tee \\\n".to_string()),
        Just("# escape=`\n".to_string()),
        Just("ONBUILD ONBUILD RUN\n".to_string()),
        Just("CMD [\"a\", 1]\n".to_string()),
        Just("\\\n".to_string()),
        Just("`\n".to_string()),
        Just("HEALTHCHECK --interval=5s CMD x\n".to_string()),
        "[ -~\t\u{e9}\u{1F600}]{0,30}\n",
    ];
    prop::collection::vec(piece, 0..25).prop_map(|v| v.concat())
}

fn yaml_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("apiVersion: apps/v1\n".to_string()),
        Just("kind: Deployment\n".to_string()),
        Just("---\n".to_string()),
        Just("services:\n".to_string()),
        Just("  web:\n".to_string()),
        Just("    image: x\n".to_string()),
        Just("a: &x [1, {b: *x}]\n".to_string()),
        Just("<<: *x\n".to_string()),
        Just("  - {".to_string()),
        Just("]\n".to_string()),
        Just("spec: {template: {spec: {containers: [{name: c}]}}}\n".to_string()),
        Just("  key: \"unterminated\n".to_string()),
        Just("|\n  block\n".to_string()),
        "[ -~\t]{0,30}\n",
    ];
    prop::collection::vec(piece, 0..25).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn dockerfile_never_panics(text in dockerfile_text()) {
        sane(FileKind::Dockerfile, &text);
    }

    #[test]
    fn dockerfile_arbitrary_unicode_never_panics(text in "\\PC{0,200}") {
        sane(FileKind::Dockerfile, &text);
    }

    #[test]
    fn kubernetes_never_panics(text in yaml_text()) {
        sane(FileKind::Kubernetes, &text);
    }

    #[test]
    fn compose_never_panics(text in yaml_text()) {
        sane(FileKind::Compose, &text);
    }

    #[test]
    fn yaml_arbitrary_unicode_never_panics(text in "\\PC{0,200}") {
        sane(FileKind::Kubernetes, &text);
        sane(FileKind::Other, &text);
    }
}

#[test]
fn alias_bombs_are_refused_not_expanded() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let f = check_source(
        FileKind::Compose,
        "bomb.yaml",
        &text,
        &CheckOptions::default(),
    );
    assert!(f.iter().any(|f| f.rule == "YML001"), "{f:?}");
}
