#![no_main]
//! Fuzz target h1_response: the HTTP/1.1 fast path's response head rewrite never
//! panics, and the client gets one valid head with one x-ferry-revision, no
//! hop-by-hop fields and the framing the body is relayed by
//! (`ferry_proxy::fuzzing::response`).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ferry_proxy::fuzzing::response(data));
