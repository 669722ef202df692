#![no_main]
//! Fuzz target spec_parse: the ferry.toml parser, overlay resolution and policy never
//! panic, and every problem's span lies inside the input.
use ferry_spec::{SourceFile, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(&SourceFile::new("ferry.toml", text)) {
        Ok(doc) => {
            let _ = doc.resolve(None);
            for env in doc.environments() {
                let _ = doc.resolve(Some(&env));
                let _ = doc.policy(Some(&env));
            }
        }
        Err(diagnostics) => {
            for problem in &diagnostics.problems {
                if let Some(span) = &problem.span {
                    assert!(span.start <= span.end && span.end <= text.len());
                }
            }
            let _ = diagnostics.to_records();
        }
    }
});
