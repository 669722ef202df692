#![no_main]
//! Fuzz target h1_chunked: the proxy's chunked-body framer never panics, gives the
//! same result however the input is split into reads, never claims more than it
//! was fed and consumes nothing once the body is done (`ferry_proxy::fuzzing::chunked`).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ferry_proxy::fuzzing::chunked(data));
