#![no_main]
//! Fuzz target: the Dockerfile front end (parser, stage graph, rules) never panics.
use ferry_check::{CheckOptions, FileKind, check_source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = ferry_check::dockerfile::parse::parse(&text);
    let _ = check_source(
        FileKind::Dockerfile,
        "Dockerfile",
        &text,
        &CheckOptions::default(),
    );
});
