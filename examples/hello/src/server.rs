//! The HTTP server: accept loop, one thread per connection, routes and graceful shutdown.
//!
//! Shutdown protocol: `Handle::shutdown` sets a flag and wakes the accept loop with a
//! connection to itself; the listener is closed at once (new connections are refused),
//! idle keep-alive connections notice the flag within `POLL` and close, and a request in
//! flight is answered (with `Connection: close`) before its connection ends. `run` returns
//! when every connection is gone or the drain timeout passed.

use std::io::{self, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::faults;
use crate::http::{self, ReadError, Request, Response};

/// How often an idle connection checks for shutdown.
const POLL: Duration = Duration::from_millis(200);
/// Idle keep-alive connections are closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A started request must complete within this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for `/slow?ms=`.
const MAX_SLOW: Duration = Duration::from_secs(300);

struct Shared {
    config: Config,
    hostname: String,
    started: Instant,
    requests: AtomicU64,
    stopping: AtomicBool,
    connections: Mutex<usize>,
    all_closed: Condvar,
    wake_addr: SocketAddr,
}

/// A bound server, not yet serving.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

/// Controls a running server from another thread.
#[derive(Clone)]
pub struct Handle(Arc<Shared>);

impl Handle {
    /// Begins a graceful shutdown; `Server::run` returns once in-flight work is done.
    pub fn shutdown(&self) {
        self.0.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept; failure means the listener is already gone.
        let _ = TcpStream::connect_timeout(&self.0.wake_addr, Duration::from_secs(1));
    }

    /// The address the server listens on (loopback when bound to all interfaces).
    #[cfg(test)]
    pub fn addr(&self) -> SocketAddr {
        self.0.wake_addr
    }
}

impl Server {
    /// Binds `addr`; the clock for `READY_DELAY_MS` starts now.
    pub fn bind(addr: SocketAddr, config: Config, hostname: String) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let mut wake_addr = listener.local_addr()?;
        if wake_addr.ip().is_unspecified() {
            wake_addr.set_ip(match wake_addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        let shared = Arc::new(Shared {
            config,
            hostname,
            started: Instant::now(),
            requests: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            connections: Mutex::new(0),
            all_closed: Condvar::new(),
            wake_addr,
        });
        Ok(Self { listener, shared })
    }

    /// The address actually bound (with the real port when asked for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle to shut the server down.
    pub fn handle(&self) -> Handle {
        Handle(Arc::clone(&self.shared))
    }

    /// Serves until `Handle::shutdown`, then drains for at most `drain_timeout`.
    /// Returns whether every connection finished within the drain timeout.
    pub fn run(self, drain_timeout: Duration) -> bool {
        for stream in self.listener.incoming() {
            if let Ok(stream) = stream {
                self.spawn_connection(stream);
            }
            if self.shared.stopping.load(Ordering::SeqCst) {
                break;
            }
        }
        // Connections already in the backlog completed their handshake before shutdown
        // began; serve them (a request sent before shutdown gets its answer) instead of
        // resetting them when the listener closes.
        if self.listener.set_nonblocking(true).is_ok() {
            while let Ok((stream, _)) = self.listener.accept() {
                if stream.set_nonblocking(false).is_ok() {
                    self.spawn_connection(stream);
                }
            }
        }
        drop(self.listener);
        let deadline = Instant::now() + drain_timeout;
        let mut open = lock(&self.shared.connections);
        while *open > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            open = match self.shared.all_closed.wait_timeout(open, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }
}

impl Server {
    fn spawn_connection(&self, stream: TcpStream) {
        let shared = Arc::clone(&self.shared);
        *lock(&shared.connections) += 1;
        let guard = ConnectionGuard(Arc::clone(&shared));
        // On spawn failure the closure, and with it the guard, is dropped.
        let _ = thread::Builder::new()
            .name("conn".to_owned())
            .spawn(move || {
                let _guard = guard;
                serve_connection(&shared, stream);
            });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Counts a connection out when its thread ends, however it ends.
struct ConnectionGuard(Arc<Shared>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut open = lock(&self.0.connections);
        *open = open.saturating_sub(1);
        if *open == 0 {
            self.0.all_closed.notify_all();
        }
    }
}

fn serve_connection(shared: &Shared, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut idle_since = Instant::now();
    loop {
        if reader.buffer().is_empty() {
            // Wait for the next request without consuming it, so shutdown is noticed.
            let _ = reader.get_ref().set_read_timeout(Some(POLL));
            match reader.get_ref().peek(&mut [0u8; 1]) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {
                    if idle_since.elapsed() > IDLE_TIMEOUT {
                        return;
                    }
                    // A request already in the socket when shutdown began is still served.
                    if shared.stopping.load(Ordering::SeqCst)
                        && !has_pending_bytes(reader.get_ref())
                    {
                        return;
                    }
                    continue;
                }
                Err(_) => return,
            }
        }
        let _ = reader.get_ref().set_read_timeout(Some(REQUEST_TIMEOUT));
        let mut started = false;
        let req = match http::read_request(&mut reader, &mut started) {
            Ok(req) => req,
            Err(ReadError::Bad(status, why)) => {
                let _ =
                    Response::text(status, format!("{why}\n")).write_to(&mut writer, false, false);
                return;
            }
            Err(ReadError::Closed | ReadError::Io) => return,
        };
        let keep_alive = req.keep_alive() && !shared.stopping.load(Ordering::SeqCst);
        let head_only = req.method == "HEAD";
        let written = match route(shared, &req) {
            Reply::Full(mut resp) => {
                add_identity(shared, &mut resp.headers);
                // Decide on keep-alive after the (possibly slow) handler: a shutdown that
                // began meanwhile closes this connection after the answer.
                let keep = keep_alive && !shared.stopping.load(Ordering::SeqCst);
                resp.write_to(&mut writer, keep, head_only).map(|()| keep)
            }
            Reply::Stream { chunks, interval } => {
                write_stream(shared, &mut writer, chunks, interval, keep_alive, head_only)
                    .map(|()| keep_alive && !shared.stopping.load(Ordering::SeqCst))
            }
        };
        match written {
            Ok(true) => idle_since = Instant::now(),
            Ok(false) | Err(_) => return,
        }
    }
}

fn has_pending_bytes(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let pending = matches!(stream.peek(&mut [0u8; 1]), Ok(n) if n > 0);
    let _ = stream.set_nonblocking(false);
    pending
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn add_identity(shared: &Shared, headers: &mut Vec<(&'static str, String)>) {
    headers.push(("X-Version", shared.config.version.clone()));
    headers.push(("X-Hostname", shared.hostname.clone()));
}

enum Reply {
    Full(Response),
    Stream { chunks: u32, interval: Duration },
}

fn route(shared: &Shared, req: &Request) -> Reply {
    let read_only = matches!(req.method.as_str(), "GET" | "HEAD");
    if !read_only && req.path != "/echo" {
        let mut resp = Response::text(405, "method not allowed\n");
        resp.headers.push(("Allow", "GET, HEAD".to_owned()));
        return Reply::Full(resp);
    }
    let cfg = &shared.config;
    let ready = shared.started.elapsed() >= cfg.ready_delay;
    let health = |ok: bool, why: &str| {
        if ok {
            Response::text(200, "ok\n")
        } else {
            Response::text(503, format!("{why}\n"))
        }
    };
    let resp = match req.path.as_str() {
        "/" => index(shared, req),
        "/health" | "/healthz" => {
            if cfg.health_fail {
                health(false, "unhealthy: HEALTH=fail")
            } else {
                health(ready, "not ready yet: READY_DELAY_MS")
            }
        }
        "/health/ready" | "/readyz" => {
            if cfg.health_fail {
                health(false, "not ready: HEALTH=fail")
            } else {
                health(ready, "not ready yet: READY_DELAY_MS")
            }
        }
        "/health/live" | "/livez" => health(!cfg.health_fail, "not live: HEALTH=fail"),
        "/slow" => {
            let ms = req.query_param("ms").and_then(|v| v.parse::<u64>().ok());
            let wait = Duration::from_millis(ms.unwrap_or(1000)).min(MAX_SLOW);
            thread::sleep(wait);
            Response::text(200, format!("slept {} ms\n", wait.as_millis()))
        }
        "/stream" => {
            let chunks = req.query_param("chunks").and_then(|v| v.parse().ok());
            let interval = req.query_param("interval_ms").and_then(|v| v.parse().ok());
            return Reply::Stream {
                chunks: chunks.unwrap_or(5).min(10_000),
                interval: Duration::from_millis(interval.unwrap_or(100)).min(MAX_SLOW),
            };
        }
        "/echo" => {
            let mut resp = Response::text(200, String::new());
            resp.body.clone_from(&req.body);
            if let Some(ct) = req.header("content-type") {
                resp.headers = vec![("Content-Type", ct.to_owned())];
            } else {
                resp.headers = vec![("Content-Type", "application/octet-stream".to_owned())];
            }
            resp
        }
        _ => Response::text(404, format!("no route for {}\n", req.path)),
    };
    Reply::Full(resp)
}

fn index(shared: &Shared, req: &Request) -> Response {
    let cfg = &shared.config;
    let n = shared.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let delay = faults::latency(n, cfg.latency, cfg.latency_jitter);
    if !delay.is_zero() {
        thread::sleep(delay);
    }
    let wants_json = req
        .header("accept")
        .is_some_and(|a| a.contains("application/json"));
    if faults::fails(n, cfg.fail_rate) {
        return if wants_json {
            Response::json(
                500,
                "{\"error\":\"injected failure (FAIL_RATE)\"}".to_owned(),
            )
        } else {
            Response::text(500, "injected failure (FAIL_RATE)\n")
        };
    }
    if wants_json {
        Response::json(
            200,
            format!(
                "{{\"version\":{},\"hostname\":{},\"request\":{n},\"secrets\":[{}]}}",
                http::json_string(&cfg.version),
                http::json_string(&shared.hostname),
                readable_secrets(&cfg.secrets_dir)
                    .iter()
                    .map(|s| http::json_string(s))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        )
    } else {
        Response::text(
            200,
            format!("hello from {} (version {})\n", shared.hostname, cfg.version),
        )
    }
}

/// Names (never values) of the secret files this process can read: shows that secrets
/// mounted as files reach the service with the right ownership.
pub(crate) fn readable_secrets(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            std::fs::File::open(e.path()).is_ok_and(|f| f.metadata().is_ok_and(|m| m.is_file()))
        })
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

fn write_stream(
    shared: &Shared,
    w: &mut TcpStream,
    chunks: u32,
    interval: Duration,
    keep_alive: bool,
    head_only: bool,
) -> io::Result<()> {
    let conn = if keep_alive { "keep-alive" } else { "close" };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\
         X-Version: {}\r\nX-Hostname: {}\r\nConnection: {conn}\r\n\r\n",
        shared.config.version, shared.hostname
    );
    w.write_all(head.as_bytes())?;
    w.flush()?;
    if head_only {
        return Ok(());
    }
    for i in 1..=chunks {
        if i > 1 {
            thread::sleep(interval);
        }
        let data = format!("chunk {i}/{chunks}\n");
        write!(w, "{:x}\r\n{data}\r\n", data.len())?;
        w.flush()?;
    }
    w.write_all(b"0\r\n\r\n")?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    struct Running {
        handle: Handle,
        thread: thread::JoinHandle<bool>,
    }

    impl Running {
        fn stop(self) -> bool {
            self.handle.shutdown();
            self.thread.join().unwrap()
        }
    }

    fn start(config: Config) -> Running {
        let server = Server::bind("127.0.0.1:0".parse().unwrap(), config, "box-1".into()).unwrap();
        let handle = server.handle();
        let thread = thread::spawn(move || server.run(Duration::from_secs(10)));
        Running { handle, thread }
    }

    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
    }

    /// Reads one response (Content-Length or chunked) from `r`.
    fn read_reply(r: &mut impl BufRead) -> Reply {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            if h.trim().is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        if reply.header("transfer-encoding") == Some("chunked") {
            loop {
                let mut size = String::new();
                r.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0; n + 2];
                r.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                reply.body.extend_from_slice(&chunk[..n]);
            }
        } else {
            let len: usize = reply.header("content-length").unwrap().parse().unwrap();
            reply.body = vec![0; len];
            r.read_exact(&mut reply.body).unwrap();
        }
        reply
    }

    fn send(addr: SocketAddr, raw: &str) -> Reply {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        read_reply(&mut BufReader::new(s))
    }

    fn get(addr: SocketAddr, path: &str) -> Reply {
        send(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        )
    }

    fn config(f: impl FnOnce(&mut Config)) -> Config {
        let mut c = Config {
            version: "v7".into(),
            ..Config::default()
        };
        f(&mut c);
        c
    }

    #[test]
    fn index_reports_version_and_hostname_as_text_and_json() {
        let srv = start(config(|_| {}));
        let addr = srv.handle.addr();
        let text = get(addr, "/");
        assert_eq!(text.status, 200);
        assert_eq!(text.text(), "hello from box-1 (version v7)\n");
        assert_eq!(text.header("x-version"), Some("v7"));
        let json = send(
            addr,
            "GET / HTTP/1.1\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(json.header("content-type"), Some("application/json"));
        assert_eq!(
            json.text(),
            r#"{"version":"v7","hostname":"box-1","request":2,"secrets":[]}"#
        );
        assert!(srv.stop());
    }

    #[test]
    fn index_lists_readable_secret_names_but_never_values() {
        let dir = std::env::temp_dir().join(format!("hello-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("DB_PASSWORD"), "hunter2").unwrap();
        std::fs::write(dir.join("API_KEY"), "k").unwrap();
        let d = dir.clone();
        let srv = start(config(move |c| c.secrets_dir = d));
        let r = send(
            srv.handle.addr(),
            "GET / HTTP/1.1\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        );
        assert!(
            r.text()
                .ends_with(r#""secrets":["API_KEY","DB_PASSWORD"]}"#),
            "{}",
            r.text()
        );
        assert!(!r.text().contains("hunter2"));
        assert!(srv.stop());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn health_endpoints_follow_health_and_ready_delay() {
        let ok = start(config(|_| {}));
        for path in ["/health", "/health/ready", "/health/live"] {
            assert_eq!(get(ok.handle.addr(), path).status, 200, "{path}");
        }
        assert!(ok.stop());

        let failing = start(config(|c| c.health_fail = true));
        for path in ["/health", "/health/ready", "/health/live"] {
            assert_eq!(get(failing.handle.addr(), path).status, 503, "{path}");
        }
        assert!(failing.stop());

        let warming = start(config(|c| c.ready_delay = Duration::from_secs(600)));
        let addr = warming.handle.addr();
        assert_eq!(get(addr, "/health/ready").status, 503);
        assert_eq!(get(addr, "/health").status, 503);
        assert_eq!(get(addr, "/health/live").status, 200);
        assert_eq!(get(addr, "/").status, 200);
        assert!(warming.stop());
    }

    #[test]
    fn fail_rate_answers_that_share_of_index_requests_with_500() {
        let srv = start(config(|c| c.fail_rate = 0.25));
        let statuses: Vec<u16> = (0..8).map(|_| get(srv.handle.addr(), "/").status).collect();
        assert_eq!(statuses, [200, 200, 200, 500, 200, 200, 200, 500]);
        // Health is not affected by FAIL_RATE.
        assert_eq!(get(srv.handle.addr(), "/health").status, 200);
        assert!(srv.stop());
    }

    #[test]
    fn latency_is_added_to_index_requests_only() {
        let srv = start(config(|c| {
            c.latency = Duration::from_millis(80);
            c.latency_jitter = Duration::from_millis(20);
        }));
        let addr = srv.handle.addr();
        let t = Instant::now();
        assert_eq!(get(addr, "/").status, 200);
        // A lower bound only: sleeping never finishes early, however loaded the machine.
        assert!(
            t.elapsed() >= Duration::from_millis(80),
            "{:?}",
            t.elapsed()
        );
        let t = Instant::now();
        assert_eq!(get(addr, "/slow?ms=30").text(), "slept 30 ms\n");
        assert!(t.elapsed() >= Duration::from_millis(30));
        assert!(srv.stop());
    }

    #[test]
    fn echo_returns_the_body_plain_and_chunked() {
        let srv = start(config(|_| {}));
        let addr = srv.handle.addr();
        let r = send(
            addr,
            "POST /echo HTTP/1.1\r\nContent-Type: text/x-test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        );
        assert_eq!((r.status, r.text().as_str()), (200, "hello"));
        assert_eq!(r.header("content-type"), Some("text/x-test"));
        let r = send(
            addr,
            "PUT /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
        );
        assert_eq!(r.text(), "abc");
        assert!(srv.stop());
    }

    #[test]
    fn stream_sends_several_chunks() {
        let srv = start(config(|_| {}));
        let r = get(srv.handle.addr(), "/stream?chunks=3&interval_ms=10");
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert_eq!(r.text(), "chunk 1/3\nchunk 2/3\nchunk 3/3\n");
        assert!(srv.stop());
    }

    #[test]
    fn keep_alive_serves_several_requests_on_one_connection() {
        let srv = start(config(|_| {}));
        let mut s = TcpStream::connect(srv.handle.addr()).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        for i in 1..=3 {
            s.write_all(b"GET /slow?ms=1 HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            let reply = read_reply(&mut r);
            assert_eq!(reply.status, 200, "request {i}");
            assert_eq!(reply.header("connection"), Some("keep-alive"));
        }
        // Pipelined requests are answered in order.
        s.write_all(b"GET /health HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n")
            .unwrap();
        assert_eq!(read_reply(&mut r).status, 200);
        assert_eq!(read_reply(&mut r).status, 404);
        drop((s, r));
        assert!(srv.stop());
    }

    #[test]
    fn bad_requests_get_4xx_and_methods_are_checked() {
        let srv = start(config(|_| {}));
        let addr = srv.handle.addr();
        assert_eq!(send(addr, "NONSENSE\r\n\r\n").status, 400);
        assert_eq!(
            send(addr, "DELETE / HTTP/1.1\r\nConnection: close\r\n\r\n").status,
            405
        );
        assert_eq!(get(addr, "/missing").status, 404);
        assert!(srv.stop());
    }

    #[test]
    fn sigterm_style_shutdown_finishes_in_flight_requests_then_refuses_new_ones() {
        let srv = start(config(|_| {}));
        let addr = srv.handle.addr();
        // An idle keep-alive connection must not hold the shutdown up.
        let idle = TcpStream::connect(addr).unwrap();
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        slow.write_all(b"GET /slow?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        srv.handle.shutdown();
        let reply = read_reply(&mut BufReader::new(slow));
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("connection"), Some("close"));
        assert!(srv.thread.join().unwrap(), "drain did not finish");
        assert!(
            TcpStream::connect(addr).is_err(),
            "still accepting after shutdown"
        );
        drop(idle);
    }

    #[test]
    fn healthcheck_subcommand_probe_reports_2xx_and_failures() {
        let ok = start(config(|_| {}));
        let url = format!("http://{}/health", ok.handle.addr());
        assert_eq!(
            crate::healthcheck::check(&url, Duration::from_secs(5)),
            Ok(200)
        );
        assert!(ok.stop());
        assert!(matches!(
            crate::healthcheck::check(&url, Duration::from_secs(5)),
            Err(crate::healthcheck::CheckError::Io(_))
        ));
        let failing = start(config(|c| c.health_fail = true));
        let url = format!("http://{}/health", failing.handle.addr());
        assert_eq!(
            crate::healthcheck::check(&url, Duration::from_secs(5)),
            Err(crate::healthcheck::CheckError::Status(503))
        );
        assert!(failing.stop());
    }
}
