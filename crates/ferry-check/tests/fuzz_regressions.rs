//! Inputs the fuzzers found; each once made a front end panic.

use ferry_check::{CheckOptions, FileKind, check_source};

/// yaml_check: a secret-pattern column computed inside a multi-byte character.
const SECRET_COLUMN_INSIDE_CHAR: &[u8] = &[
    111, 111, 58, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 58, 47, 47, 209, 111, 58, 58, 64, 0, 0, 0, 0, 0, 0, 58, 1, 0, 0, 0,
    34, 34, 0, 32,
];

#[test]
fn secret_column_inside_a_multibyte_character_does_not_panic() {
    let text = String::from_utf8_lossy(SECRET_COLUMN_INSIDE_CHAR);
    let opts = CheckOptions::default();
    for kind in [
        FileKind::Compose,
        FileKind::Kubernetes,
        FileKind::Dockerfile,
        FileKind::Other,
    ] {
        let _ = check_source(kind, "input", &text, &opts);
    }
}
