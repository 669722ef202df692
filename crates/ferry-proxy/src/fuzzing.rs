//! Entry points for the fuzz targets in `fuzz/` (not an API): each feeds
//! arbitrary bytes to one parser of the HTTP/1.1 fast path and panics when an
//! invariant breaks, so libFuzzer reports the input.
//!
//! The first input byte carries flags (splits, context), the rest is the
//! message; see each function.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;

use crate::chunked::Chunked;
use crate::config::{
    Balance, PoolConfig, ProxyConfig, RouteConfig, RoutingConfig, ServiceConfig, Sticky,
};
use crate::error_page::ErrorPages;
use crate::forward::ConnInfo;
use crate::h1::{self, Framing, ParsedResponse, Planned, ResponseContext};
use crate::proxy::Shared;
use crate::route_table::BackendSettings;
use crate::weight::Weight;

/// The revision named in fuzzed responses.
const REVISION: &[u8] = b"v2";

/// `data[0] % 16` split lengths follow (each a byte; 0 feeds an empty slice
/// before one byte), then the body. Feeding the body in those pieces must give
/// what one feed of the whole body gives; no feed claims more than it got, and
/// once the body is done nothing more is consumed.
pub fn chunked(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (lengths, body) = rest.split_at(usize::from(n % 16).min(rest.len()));

    let mut whole = Chunked::new();
    let expected = whole.feed(body).map(|n| (n, whole.is_done()));
    if let Ok((n, done)) = expected {
        assert!(n <= body.len());
        assert!(done || n == body.len(), "stopped early without being done");
        if done && n < body.len() {
            assert_eq!(whole.feed(&body[n..]), Ok(0), "consumed after done");
        }
    }

    let mut split = Chunked::new();
    let mut pos = 0;
    let mut consumed = 0;
    let mut k = 0;
    let got = loop {
        if pos == body.len() {
            break Ok((consumed, split.is_done()));
        }
        let len = lengths.get(k % lengths.len().max(1)).copied().unwrap_or(0);
        k += 1;
        let was_done = split.is_done();
        if len == 0 {
            match split.feed(&[]) {
                Ok(0) => {}
                Ok(n) => panic!("an empty feed consumed {n}"),
                Err(e) => break Err(e),
            }
        }
        let end = (pos + usize::from(len).max(1)).min(body.len());
        let piece = &body[pos..end];
        match split.feed(piece) {
            Err(e) => break Err(e),
            Ok(n) => {
                assert!(n <= piece.len(), "consumed {n} of {}", piece.len());
                if was_done {
                    assert_eq!(n, 0, "consumed after done");
                }
                if n < piece.len() {
                    assert!(split.is_done(), "stopped early without being done");
                }
                consumed += n;
            }
        }
        pos = end;
    };
    assert_eq!(got, expected, "the result depends on the split");
}

/// `data[0]`'s bits: head method, client close, draining, security headers,
/// tls, a sticky cookie to set; the rest is a backend's response.
pub fn response(data: &[u8]) {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let bit = |i: u8| flags & (1 << i) != 0;
    let draining = AtomicBool::new(bit(2));
    let cookie = ("ferry-sticky".to_owned(), 42u64);
    let cx = ResponseContext {
        head_method: bit(0),
        close: bit(1),
        draining: &draining,
        revision: REVISION,
        set_cookie: bit(5).then_some(&cookie),
        security: bit(3),
        tls: bit(4),
    };
    let mut out = Vec::new();
    let h = match h1::parse_response(input, &cx, &mut out) {
        ParsedResponse::Head(h) => h,
        ParsedResponse::Interim(n) => {
            assert!(n <= input.len());
            return;
        }
        ParsedResponse::Partial | ParsedResponse::Invalid => return,
    };
    assert!(h.head_len <= input.len());
    assert!(
        out.ends_with(b"\r\n\r\n"),
        "head does not end with CRLFCRLF"
    );

    // The head the client gets is one complete, valid response head.
    let mut slots = vec![httparse::EMPTY_HEADER; 512];
    let mut resp = httparse::Response::new(&mut slots);
    let parsed = resp.parse(&out);
    assert_eq!(
        parsed,
        Ok(httparse::Status::Complete(out.len())),
        "rewritten head: {:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(resp.code, Some(h.status));
    let fields: &[httparse::Header<'_>] = resp.headers;
    let named = |name: &'static str| {
        fields
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value)
    };
    assert_eq!(
        named("x-ferry-revision").collect::<Vec<_>>(),
        [REVISION],
        "one x-ferry-revision"
    );
    for hop in ["keep-alive", "upgrade", "proxy-connection", "te", "trailer"] {
        assert_eq!(named(hop).count(), 0, "{hop} forwarded");
    }
    let connection: Vec<&[u8]> = named("connection").collect();
    let want: &[&[u8]] = if h.close { &[b"close"] } else { &[] };
    assert_eq!(connection, want, "connection is only our close");
    if cx.set_cookie.is_some() {
        assert!(named("set-cookie").any(|v| v.starts_with(b"ferry-sticky=42;")));
    }
    if cx.security {
        for name in [
            "x-content-type-options",
            "x-frame-options",
            "referrer-policy",
        ] {
            assert!(named(name).count() > 0, "{name} missing");
        }
    }

    // The client frames the body as the proxy relays it.
    let lengths: Vec<&[u8]> = named("content-length").collect();
    let codings: Vec<&[u8]> = named("transfer-encoding").collect();
    // The fields form one list, whose empty elements do not count (RFC 9110
    // §5.6.1): `chunked,` is chunked, and so are `chunked` then `,`.
    let last_chunked = codings
        .iter()
        .flat_map(|v| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .rfind(|t| !t.is_empty())
        .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
    match h.framing {
        Framing::Empty => {}
        Framing::Length(n) => {
            assert!(codings.is_empty(), "a length and a coding");
            assert_eq!(
                lengths.len(),
                1,
                "length framing without one content-length"
            );
            assert_eq!(number(lengths[0]), Some(n));
        }
        Framing::Chunked => {
            assert!(lengths.is_empty(), "chunked with a content-length");
            assert!(last_chunked, "chunked framing, but the client is not told");
        }
        Framing::Close => {
            assert!(lengths.is_empty(), "read-to-close with a content-length");
            assert!(
                !last_chunked,
                "read-to-close, but the client is told chunked"
            );
            assert!(h.close);
        }
    }
}

/// The shared state `request` plans with: two services, one with cookie
/// stickiness and preview routing over two revisions, one with header
/// stickiness and header hashing. Backends are never connected to.
pub(crate) fn shared() -> &'static Shared {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = RUNTIME.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime")
        });
        let backend = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let pool = |revision: &str, weight, port| PoolConfig {
            revision: revision.to_owned(),
            weight: Weight::new(weight).expect("a weight"),
            backends: vec![backend(port), backend(port + 1)],
        };
        let mut web = ServiceConfig::new(vec![pool("v1", 90, 9001), pool("v2", 10, 9003)]);
        web.sticky = Some(Sticky::Cookie("ferry-sticky".to_owned()));
        web.preview = Some("x-ferry-preview".to_owned());
        let mut api = ServiceConfig::new(vec![pool("a1", 100, 9101)]);
        api.sticky = Some(Sticky::Header("x-user".to_owned()));
        api.balance = Balance::HashHeader("x-user".to_owned());
        // Only the limits and timeouts of this config matter: the table is `routing`.
        let config = ProxyConfig::single(backend(0), backend(1));
        let routing = RoutingConfig {
            routes: vec![
                RouteConfig {
                    hosts: vec!["example.com".to_owned(), "*.example.com".to_owned()],
                    path_prefix: "/".to_owned(),
                    service: "web".to_owned(),
                },
                RouteConfig {
                    hosts: Vec::new(),
                    path_prefix: "/api".to_owned(),
                    service: "api".to_owned(),
                },
            ],
            services: BTreeMap::from([("web".to_owned(), web), ("api".to_owned(), api)]),
        };
        let settings = BackendSettings {
            connect_timeout: config.timeouts.connect.0,
            idle_timeout: config.timeouts.idle.0,
            threads: 0,
        };
        let pages = ErrorPages::load(&config.error_pages).expect("no error pages");
        let shared =
            Shared::new(&config, settings, pages, runtime.handle().clone()).expect("state");
        shared.apply(routing).expect("a valid table");
        shared
    })
}

/// `data[0]`'s bits: tls, an IPv6 client; the rest is a client's request.
pub fn request(data: &[u8]) {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let ip = if flags & 2 != 0 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7))
    } else {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))
    };
    let info = ConnInfo {
        peer: SocketAddr::new(ip, 40000),
        tls: flags & 1 != 0,
    };
    let mut out = Vec::new();
    let Planned::Forward(f) = h1::plan(shared(), info, input, &mut out, None) else {
        return;
    };
    assert!(f.head_len <= input.len());

    // What the client sent, as the proxy parsed it.
    let mut slots = vec![httparse::EMPTY_HEADER; h1::MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    assert!(matches!(req.parse(input), Ok(httparse::Status::Complete(n)) if n == f.head_len));
    let client_named: Vec<&[u8]> = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
        .collect();

    // The upstream head is one complete, valid request head.
    let mut up_slots = vec![httparse::EMPTY_HEADER; h1::MAX_HEADERS + 8];
    let mut up = httparse::Request::new(&mut up_slots);
    assert_eq!(
        up.parse(&out),
        Ok(httparse::Status::Complete(out.len())),
        "upstream head: {:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(up.method, req.method);
    assert_eq!(up.path, req.path);
    assert_eq!(up.version, Some(1));
    let fields: &[httparse::Header<'_>] = up.headers;
    let count = |name: &str| {
        fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .count()
    };
    for one in ["host", "x-forwarded-for", "x-forwarded-proto"] {
        assert_eq!(
            count(one),
            1,
            "{one} not exactly once: {:?}",
            String::from_utf8_lossy(&out)
        );
    }
    // The client's request ids pass unchanged (several if it sent several); a
    // request without one gets exactly one.
    let client_ids = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("x-request-id"))
        .count();
    assert_eq!(
        count("x-request-id"),
        client_ids.max(1),
        "x-request-id: {:?}",
        String::from_utf8_lossy(&out)
    );
    for hop in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "transfer-encoding",
        "proxy-authorization",
    ] {
        assert_eq!(count(hop), 0, "{hop} forwarded");
    }
    for f in fields.iter() {
        assert!(
            !client_named
                .iter()
                .any(|n| n.eq_ignore_ascii_case(f.name.as_bytes())),
            "{} was named in connection: {:?}",
            f.name,
            String::from_utf8_lossy(&out)
        );
    }
    // The backend frames the body as the proxy sends it.
    let lengths: Vec<Option<u64>> = fields
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("content-length"))
        .map(|f| number(f.value))
        .collect();
    if f.body_len > 0 || !lengths.is_empty() {
        assert_eq!(lengths, [Some(f.body_len)], "body framing");
    }
}

/// A content-length value as a number.
fn number(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    /// The entry points hold on ordinary messages (the fuzz targets run them on
    /// arbitrary ones; this keeps the harness itself from rotting).
    #[test]
    fn entry_points_accept_ordinary_messages() {
        super::chunked(b"\x02\x03\x075;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-t: 1\r\n\r\nNEXT");
        super::chunked(b"\x01\x00g\r\n");
        super::response(b"\x3fHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\nConnection: x-a\r\nX-A: 1\r\n\r\n");
        super::response(b"\x00HTTP/1.0 200 OK\r\nKeep-Alive: 5\r\n\r\n");
        super::request(b"\x00GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, x-secret\r\nX-Secret: 1\r\nX-Forwarded-For: 10.0.0.1\r\nCookie: ferry-sticky=123\r\n\r\n");
        super::request(b"\x03POST /api/x HTTP/1.1\r\nHost: api.test:8080\r\nContent-Length: 3\r\nx-user: bob\r\nTE: trailers\r\nX-Request-Id: abc\r\n\r\nabc");
    }
}
