#![no_main]
//! Fuzz target dockerfile_parse (owner fills in the parser call).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = data;
});
