#![no_main]
//! Fuzz target h1_request: the HTTP/1.1 fast path's request planning never panics,
//! and a forwarded request's upstream head is valid, with one Host,
//! x-forwarded-for and x-forwarded-proto, a request id, no hop-by-hop or
//! connection-named fields and the body's length (`ferry_proxy::fuzzing::request`).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ferry_proxy::fuzzing::request(data));
