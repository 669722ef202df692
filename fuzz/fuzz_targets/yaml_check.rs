#![no_main]
//! Fuzz target: the YAML loader and the compose and Kubernetes checks never panic.
use ferry_check::{CheckOptions, FileKind, check_source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = ferry_check::yaml::load(&text);
    let opts = CheckOptions::default();
    let _ = check_source(FileKind::Compose, "compose.yaml", &text, &opts);
    let _ = check_source(FileKind::Kubernetes, "k8s.yaml", &text, &opts);
});
