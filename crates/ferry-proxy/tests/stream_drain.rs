//! Draining a backend ends its long-lived streams cleanly within `timeouts.stream_drain`:
//! WebSockets with Close frames (never inside a frame), event streams after a whole event.
//!
//! The peers here are raw sockets speaking RFC 6455 and chunked HTTP/1.1 by hand,
//! so the tests see every byte the proxy writes.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::eventually;
use ferry_proxy::{HumanDuration, ProxyConfig, RunningProxy};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};

/// The stream budget of these tests (the proxy's grace after it is 1 s).
const BUDGET: Duration = Duration::from_millis(1000);
/// A bound on every wait: generous, not a timing claim.
const BOUND: Duration = Duration::from_secs(10);

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

async fn proxy_to(backend: SocketAddr) -> RunningProxy {
    let mut cfg = ProxyConfig::single(any_port(), backend);
    cfg.timeouts.stream_drain = HumanDuration::from(BUDGET);
    ferry_proxy::start(cfg).await.expect("start")
}

/// One WebSocket frame as read off the wire (payload unmasked).
#[derive(Debug, PartialEq, Eq)]
struct WsFrame {
    opcode: u8,
    masked: bool,
    payload: Vec<u8>,
}

/// Reads one whole frame, strictly: a frame cut short is an error.
async fn read_frame(s: &mut (impl AsyncRead + Unpin)) -> std::io::Result<WsFrame> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await?;
    let masked = h[1] & 0x80 != 0;
    let len = match h[1] & 0x7f {
        126 => u64::from(s.read_u16().await?),
        127 => s.read_u64().await?,
        n => u64::from(n),
    };
    let mut mask = [0u8; 4];
    if masked {
        s.read_exact(&mut mask).await?;
    }
    let mut payload = vec![0u8; usize::try_from(len).expect("length")];
    s.read_exact(&mut payload).await?;
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Ok(WsFrame {
        opcode: h[0] & 0x0f,
        masked,
        payload,
    })
}

/// Encodes a final frame, masked (client to server) or not.
fn frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(m | n as u8),
        n if n <= 0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(k) => {
            out.extend_from_slice(&k);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

async fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        s.read_exact(&mut byte).await.expect("read head");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).to_lowercase()
}

/// A WebSocket backend: accepts one upgrade, reports every frame it reads,
/// echoes a text frame, answers a Close with a Close, and writes what the
/// test sends on its channel.
struct WsBackend {
    addr: SocketAddr,
    frames: mpsc::UnboundedReceiver<WsFrame>,
    write: mpsc::UnboundedSender<Vec<u8>>,
}

async fn ws_backend() -> WsBackend {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (frames_tx, frames) = mpsc::unbounded_channel();
    let (write, mut to_write) = mpsc::unbounded_channel::<Vec<u8>>();
    let echo = write.clone();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        read_head(&mut s).await;
        s.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        )
        .await
        .expect("write 101");
        let (mut rd, mut wr) = s.into_split();
        tokio::spawn(async move {
            while let Some(bytes) = to_write.recv().await {
                if bytes.is_empty() || wr.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            let _ = wr.shutdown().await;
        });
        while let Ok(f) = read_frame(&mut rd).await {
            match f.opcode {
                0x1 => {
                    let _ = echo.send(frame(0x1, &f.payload, None));
                }
                0x8 => {
                    let _ = echo.send(frame(0x8, &f.payload, None));
                    let _ = echo.send(Vec::new());
                }
                _ => {}
            }
            let _ = frames_tx.send(f);
        }
    });
    WsBackend {
        addr,
        frames,
        write,
    }
}

/// A WebSocket client through the proxy at `addr`, past its `101`.
async fn ws_client(addr: SocketAddr) -> TcpStream {
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(
        b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .expect("handshake");
    let head = read_head(&mut c).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    c
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

#[tokio::test]
async fn drain_ends_a_websocket_with_close_frames_and_never_cuts_a_frame() {
    let mut b = ws_backend().await;
    let proxy = proxy_to(b.addr).await;
    let addr = proxy.handle.listen_addrs()[0];
    let mut c = ws_client(addr).await;
    let mask = [7, 1, 9, 3];
    c.write_all(&frame(0x1, b"hello", Some(mask)))
        .await
        .expect("send");
    let echo = timeout(BOUND, read_frame(&mut c))
        .await
        .expect("in time")
        .expect("echo");
    assert_eq!(
        (echo.opcode, echo.masked, &echo.payload[..]),
        (1, false, &b"hello"[..])
    );

    let started = Instant::now();
    let handle = proxy.handle.clone();
    let backend_addr = b.addr;
    let drain = tokio::spawn(async move { handle.drain_backend(backend_addr, BOUND).await });
    let h = proxy.handle.clone();
    eventually("the backend drains", BOUND, || {
        h.stats_snapshot().backends.iter().all(|b| b.draining)
    })
    .await;

    // A large message each way, half of it before the budget expires and the
    // rest after: both must arrive whole, before the Close frames.
    let up_msg = pattern(100_000, 0x11);
    let down_msg = pattern(100_000, 0x22);
    let up_frame = frame(0x2, &up_msg, Some(mask));
    let down_frame = frame(0x2, &down_msg, None);
    let (up_a, up_b) = up_frame.split_at(up_frame.len() / 2);
    let (down_a, down_b) = down_frame.split_at(down_frame.len() / 2);
    sleep_until(started + Duration::from_millis(200)).await;
    c.write_all(up_a).await.expect("first half up");
    b.write.send(down_a.to_vec()).expect("first half down");
    // Inside the grace that follows the budget.
    sleep_until(started + BUDGET + Duration::from_millis(400)).await;
    c.write_all(up_b).await.expect("rest up");
    b.write.send(down_b.to_vec()).expect("rest down");

    let got = timeout(BOUND, read_frame(&mut c))
        .await
        .expect("in time")
        .expect("the whole message");
    assert_eq!((got.opcode, got.masked), (2, false));
    assert!(got.payload == down_msg, "the message arrived whole");
    let close = timeout(BOUND, read_frame(&mut c))
        .await
        .expect("in time")
        .expect("a close frame");
    let at = started.elapsed();
    assert_eq!(
        (close.opcode, close.masked, &close.payload[..]),
        (8, false, &[0x03, 0xe9][..]),
        "an unmasked Close 1001 (going away)"
    );
    assert!(
        at >= BUDGET && at < BUDGET + Duration::from_millis(1000) + Duration::from_secs(2),
        "the Close came after the budget, within its grace: {at:?}"
    );
    c.write_all(&frame(0x8, &[0x03, 0xe9], Some(mask)))
        .await
        .expect("answer the close");
    let mut rest = Vec::new();
    timeout(BOUND, c.read_to_end(&mut rest))
        .await
        .expect("the proxy closes")
        .expect("clean end");
    assert!(
        rest.is_empty(),
        "nothing after the Close: {} bytes",
        rest.len()
    );

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let f = timeout(BOUND, b.frames.recv())
            .await
            .expect("in time")
            .expect("a frame at the backend");
        seen.push(f);
    }
    assert_eq!((seen[0].opcode, &seen[0].payload[..]), (1, &b"hello"[..]));
    assert_eq!((seen[1].opcode, seen[1].masked), (2, true));
    assert!(seen[1].payload == up_msg, "the message arrived whole");
    assert_eq!(
        (seen[2].opcode, seen[2].masked, &seen[2].payload[..]),
        (8, true, &[0x03, 0xe9][..]),
        "a masked Close 1001"
    );
    let outcome = timeout(BOUND, drain)
        .await
        .expect("the drain returns")
        .expect("task")
        .expect("drain");
    assert_eq!(
        outcome.in_flight_left, 0,
        "the WebSocket ended within the drain"
    );
}

/// An event stream backend: each response is chunked `text/event-stream`; every
/// event `data: N\n\n` is written as two chunks, 60 ms apart, so a drain that
/// ends at any chunk boundary would most likely cut an event in half.
async fn sse_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                read_head(&mut s).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                            transfer-encoding: chunked\r\n\r\n";
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for i in 0..200 {
                    let first = format!("data: {i}");
                    let chunk = format!("{:x}\r\n{first}\r\n", first.len());
                    if s.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(60)).await;
                    if s.write_all(b"2\r\n\n\n\r\n").await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let _ = s.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    addr
}

/// Reads a chunked body strictly to its last chunk; calls `progress` with the
/// data so far after each chunk.
async fn read_chunked(s: &mut TcpStream, mut progress: impl FnMut(&[u8])) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut line = Vec::new();
        while !line.ends_with(b"\r\n") {
            line.push(s.read_u8().await.expect("a chunk size line"));
        }
        let size = usize::from_str_radix(
            std::str::from_utf8(&line[..line.len() - 2]).expect("ascii"),
            16,
        )
        .expect("hex size");
        let mut data = vec![0u8; size + 2];
        s.read_exact(&mut data).await.expect("chunk data");
        assert_eq!(&data[size..], b"\r\n", "chunk data ends with CRLF");
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&data[..size]);
        progress(&body);
    }
}

/// Opens an event stream through the proxy, drains its backend after the
/// first events, and checks the stream ends with its last chunk after whole events.
async fn event_stream_ends_cleanly_on_drain(extra_header: &str) {
    let backend = sse_backend().await;
    let proxy = proxy_to(backend).await;
    let addr = proxy.handle.listen_addrs()[0];
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(format!("GET /events HTTP/1.1\r\nHost: app.test\r\n{extra_header}\r\n").as_bytes())
        .await
        .expect("request");
    let head = timeout(BOUND, read_head(&mut c))
        .await
        .expect("head in time");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");

    let handle = proxy.handle.clone();
    let mut drain = None;
    let mut started = None;
    let body = timeout(
        BOUND + BOUND,
        read_chunked(&mut c, |body| {
            if drain.is_none() && body.windows(2).filter(|w| w == b"\n\n").count() >= 3 {
                started = Some(Instant::now());
                let h = handle.clone();
                drain = Some(tokio::spawn(async move {
                    h.drain_backend(backend, BOUND).await
                }));
            }
        }),
    )
    .await
    .expect("the stream ends within its budget");
    let at = started.expect("drain started").elapsed();
    assert!(
        at >= BUDGET - Duration::from_millis(50) && at < BUDGET + Duration::from_secs(3),
        "ended after the budget, within its grace: {at:?}"
    );
    let text = String::from_utf8(body).expect("utf-8");
    assert!(text.ends_with("\n\n"), "the last event is whole: {text:?}");
    let events: Vec<&str> = text
        .strip_suffix("\n\n")
        .expect("events")
        .split("\n\n")
        .collect();
    assert!(events.len() >= 3, "{text:?}");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(*e, format!("data: {i}"), "event {i} is whole, none missing");
    }
    let outcome = timeout(BOUND, drain.expect("drain"))
        .await
        .expect("the drain returns")
        .expect("task")
        .expect("drain");
    assert_eq!(outcome.in_flight_left, 0);
    // The body ended by its framing: the connection still carries a request
    // (answered 503: the only backend is gone).
    c.write_all(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .expect("next request");
    let next = timeout(BOUND, read_head(&mut c))
        .await
        .expect("answer in time");
    assert!(next.starts_with("http/1.1 503"), "{next}");
}

#[tokio::test]
async fn drain_ends_a_fast_path_event_stream_after_a_whole_event() {
    event_stream_ends_cleanly_on_drain("").await;
}

#[tokio::test]
async fn drain_ends_a_hyper_path_event_stream_after_a_whole_event() {
    // `expect` sends the request to the hyper path.
    event_stream_ends_cleanly_on_drain("Expect: 100-continue\r\n").await;
}

/// Opens a plain (non-WebSocket) upgraded tunnel, then drains or removes its
/// backend: the tunnel is shut down once the budget has passed.
async fn plain_tunnel_ends_after_the_budget(remove: bool) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let backend = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        read_head(&mut s).await;
        s.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-custom\r\nConnection: Upgrade\r\n\r\n",
        )
        .await
        .expect("101");
        // Echo until the proxy closes.
        let mut buf = [0u8; 1024];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    let proxy = proxy_to(backend).await;
    let addr = proxy.handle.listen_addrs()[0];
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(
        b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: x-custom\r\n\r\n",
    )
    .await
    .expect("handshake");
    assert!(read_head(&mut c).await.starts_with("http/1.1 101"));
    c.write_all(b"ping").await.expect("send");
    let mut echo = [0u8; 4];
    c.read_exact(&mut echo).await.expect("echo");
    assert_eq!(&echo, b"ping");
    let started = Instant::now();
    if remove {
        proxy.handle.remove_backend(backend).expect("remove");
    } else {
        let outcome = timeout(BOUND, proxy.handle.drain_backend(backend, BOUND))
            .await
            .expect("the drain returns")
            .expect("drain");
        assert_eq!(outcome.in_flight_left, 0);
    }
    let mut rest = Vec::new();
    let _ = timeout(BOUND, c.read_to_end(&mut rest))
        .await
        .expect("the tunnel is closed");
    assert!(started.elapsed() >= BUDGET, "the tunnel had its budget");
    let h = proxy.handle.clone();
    eventually("nothing in flight", BOUND, || {
        h.stats_snapshot().backends.iter().all(|b| b.in_flight == 0)
    })
    .await;
}

#[tokio::test]
async fn drain_shuts_a_plain_upgraded_tunnel_down() {
    plain_tunnel_ends_after_the_budget(false).await;
}

#[tokio::test]
async fn removing_a_backend_gives_its_tunnels_the_same_budget() {
    plain_tunnel_ends_after_the_budget(true).await;
}

#[tokio::test]
async fn proxy_shutdown_ends_a_websocket_with_a_close_frame() {
    let mut b = ws_backend().await;
    let proxy = proxy_to(b.addr).await;
    let addr = proxy.handle.listen_addrs()[0];
    let mut c = ws_client(addr).await;
    let mask = [3, 1, 4, 1];
    c.write_all(&frame(0x1, b"hi", Some(mask)))
        .await
        .expect("send");
    let echo = timeout(BOUND, read_frame(&mut c))
        .await
        .expect("in time")
        .expect("echo");
    assert_eq!(&echo.payload[..], b"hi");

    // The proxy itself stops (as the old process does after a handover).
    let started = Instant::now();
    proxy.handle.shutdown();
    let close = timeout(BOUND, read_frame(&mut c))
        .await
        .expect("in time")
        .expect("a close frame, not a cut");
    let at = started.elapsed();
    assert_eq!(
        (close.opcode, close.masked, &close.payload[..]),
        (8, false, &[0x03, 0xe9][..]),
        "an unmasked Close 1001 (going away)"
    );
    assert!(
        at >= BUDGET && at < BUDGET + Duration::from_secs(3),
        "after the stream budget: {at:?}"
    );
    let mut seen = Vec::new();
    while seen.last().is_none_or(|f: &WsFrame| f.opcode != 8) {
        let f = timeout(BOUND, b.frames.recv())
            .await
            .expect("in time")
            .expect("a frame at the backend");
        seen.push(f);
    }
    let last = seen.last().expect("a close");
    assert_eq!((last.masked, &last.payload[..]), (true, &[0x03, 0xe9][..]));
    timeout(BOUND, proxy.wait()).await.expect("the proxy stops");
}
