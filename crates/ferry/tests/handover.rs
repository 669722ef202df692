//! Zero-drop restarts: a new `ferry proxy` / `ferry serve` process takes the listening
//! sockets over from the running one (socket handover) under continuous load, and not one
//! request fails — keep-alive clients of the old process are told `connection: close`
//! and requests in flight there finish.

#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::{Daemon, build_demo_image, ferry, text};

/// A loopback HTTP/1.1 backend with keep-alive: `/slow` answers after 1.5 s, anything
/// else at once, with `ok`.
fn backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve_backend(stream));
        }
    });
    addr
}

fn serve_backend(stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
        }
        if request_line.contains(" /slow ") {
            std::thread::sleep(Duration::from_millis(1500));
        }
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

/// One response read off a connection.
struct Answer {
    status: u16,
    close: bool,
}

/// Sends one GET on `stream` and reads the response (a `content-length` body).
fn exchange(stream: &mut BufReader<TcpStream>, path: &str, close: bool) -> Result<Answer, String> {
    let connection = if close { "Connection: close\r\n" } else { "" };
    stream
        .get_mut()
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: app\r\n{connection}\r\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut status_line = String::new();
    match stream.read_line(&mut status_line) {
        Ok(0) => return Err("connection closed before a response".into()),
        Ok(_) => {}
        Err(e) => return Err(format!("read: {e}")),
    }
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {status_line:?}"))?;
    let (mut length, mut close) = (None, false);
    loop {
        let mut header = String::new();
        if stream.read_line(&mut header).map_err(|e| e.to_string())? == 0 {
            return Err("connection closed in the headers".into());
        }
        if header == "\r\n" {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
        if lower.starts_with("connection:") && lower.contains("close") {
            close = true;
        }
    }
    let length = length.ok_or("a response without content-length")?;
    let mut body = vec![0u8; length];
    stream
        .read_exact(&mut body)
        .map_err(|e| format!("body: {e}"))?;
    Ok(Answer { status, close })
}

fn connect(addr: SocketAddr) -> Result<BufReader<TcpStream>, String> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .map_err(|e| e.to_string())?;
    Ok(BufReader::new(stream))
}

/// What a load loop saw.
#[derive(Default)]
struct Tally {
    ok: u32,
    failed: Vec<String>,
    /// Responses that carried `connection: close` on a keep-alive connection.
    closed_gracefully: u32,
}

/// A client loop until `stop` (at most 90 s): on one keep-alive connection, reconnecting
/// after `connection: close`, or on a fresh connection per request.
fn load(addr: SocketAddr, keep_alive: bool, stop: Arc<AtomicBool>) -> JoinHandle<Tally> {
    std::thread::spawn(move || {
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(90);
        let mut tally = Tally::default();
        let mut conn: Option<BufReader<TcpStream>> = None;
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let result = match conn.take() {
                Some(c) => Ok(c),
                None => connect(addr),
            }
            .and_then(|mut c| {
                let answer = exchange(&mut c, "/", !keep_alive)?;
                if keep_alive && !answer.close {
                    conn = Some(c);
                }
                Ok(answer)
            });
            match result {
                Ok(a) if a.status == 200 => {
                    tally.ok += 1;
                    if keep_alive && a.close {
                        tally.closed_gracefully += 1;
                    }
                }
                Ok(a) => tally.failed.push(format!(
                    "{:.2}s: status {}",
                    t0.elapsed().as_secs_f64(),
                    a.status
                )),
                Err(e) => tally
                    .failed
                    .push(format!("{:.2}s: {e}", t0.elapsed().as_secs_f64())),
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        tally
    })
}

/// Children this test started; killed (by their own pid) if the test fails midway.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `ferry proxy` in quick mode with a handover socket; returns the child and the
/// address it printed.
fn start_proxy(upstream: SocketAddr, socket: &Path, takeover: bool) -> (Child, SocketAddr) {
    let to = upstream.to_string();
    let mut args = vec![
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--to",
        &to,
        "--handover",
        socket.to_str().unwrap(),
    ];
    if takeover {
        args.push("--takeover");
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(&args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ferry proxy starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no listening address in {line:?}"));
    (child, addr)
}

/// Waits (at most `limit`) for `child` to exit; its exit code.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Starts the keep-alive and fresh-connection load loops.
fn start_load(addr: SocketAddr, stop: &Arc<AtomicBool>) -> Vec<(bool, JoinHandle<Tally>)> {
    [true, true, true, false, false]
        .into_iter()
        .map(|keep_alive| (keep_alive, load(addr, keep_alive, Arc::clone(stop))))
        .collect()
}

/// Joins the load loops: (ok, failures, graceful closes per keep-alive loop).
fn finish_load(loops: Vec<(bool, JoinHandle<Tally>)>) -> (u32, Vec<String>, Vec<u32>) {
    let (mut ok, mut failed, mut closes) = (0, Vec::new(), Vec::new());
    for (keep_alive, l) in loops {
        let t = l.join().unwrap();
        ok += t.ok;
        failed.extend(t.failed);
        if keep_alive {
            closes.push(t.closed_gracefully);
        }
    }
    (ok, failed, closes)
}

/// A request in flight on a keep-alive connection of the old process: `/slow` sent
/// after one quick exchange on the same connection.
fn in_flight_slow(addr: SocketAddr, sent: Arc<AtomicU32>) -> JoinHandle<Result<Answer, String>> {
    std::thread::spawn(move || {
        let mut c = connect(addr)?;
        exchange(&mut c, "/", false)?;
        sent.store(1, Ordering::Release);
        exchange(&mut c, "/slow", false)
    })
}

fn wait_flag(flag: &AtomicU32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while flag.load(Ordering::Acquire) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The slow request is on its way to the backend.
    std::thread::sleep(Duration::from_millis(100));
}

#[test]
fn proxy_handover_under_load_loses_no_request() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("handover.sock");
    let upstream = backend();
    let mut children = Children(Vec::new());

    let (first, addr) = start_proxy(upstream, &socket, false);
    children.0.push(first);
    // A second proxy on the same handover socket without --takeover is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["proxy", "--listen", "127.0.0.1:0", "--to"])
        .arg(upstream.to_string())
        .arg("--handover")
        .arg(&socket)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--takeover"),
        "{}",
        text(&out.stderr)
    );

    let stop = Arc::new(AtomicBool::new(false));
    let loops = start_load(addr, &stop);
    let started = Instant::now();
    let mut slow_results = Vec::new();
    for round in 0..2 {
        std::thread::sleep(Duration::from_millis(800));
        let sent = Arc::new(AtomicU32::new(0));
        let slow = in_flight_slow(addr, Arc::clone(&sent));
        wait_flag(&sent);
        let (next, next_addr) = start_proxy(upstream, &socket, true);
        assert_eq!(
            next_addr, addr,
            "round {round}: the successor listens where the old one did"
        );
        let mut old = std::mem::replace(&mut children.0[0], next);
        // The old process drains and exits by itself.
        assert_eq!(
            wait_exit(&mut old, Duration::from_secs(40)),
            Some(0),
            "round {round}: the old proxy did not exit cleanly after the handover"
        );
        slow_results.push(slow.join().unwrap());
    }
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::Relaxed);
    let (ok, failed, closes) = finish_load(loops);
    let elapsed = started.elapsed().as_secs_f64();

    for (round, slow) in slow_results.into_iter().enumerate() {
        let answer =
            slow.unwrap_or_else(|e| panic!("round {round}: the in-flight request failed: {e}"));
        assert_eq!(answer.status, 200, "round {round}");
        assert!(
            answer.close,
            "round {round}: the old process answered its in-flight request without connection: close"
        );
    }
    assert!(
        failed.is_empty(),
        "{} of {} requests failed, the first: {:?}",
        failed.len(),
        ok + failed.len() as u32,
        &failed[..failed.len().min(10)]
    );
    assert!(ok > 100, "the load loops sent only {ok} requests");
    // Every keep-alive client was moved off each old process by `connection: close`.
    assert!(
        closes.iter().all(|&c| c >= 2),
        "keep-alive loops saw connection: close {closes:?} times (2 handovers)"
    );
    // The last successor still serves, and stops on SIGTERM.
    let mut c = connect(addr).unwrap();
    assert_eq!(exchange(&mut c, "/", true).unwrap().status, 200);
    let last = &mut children.0[0];
    Command::new("kill")
        .args(["-TERM", &last.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(wait_exit(last, Duration::from_secs(20)), Some(0));
    assert!(
        !socket.exists(),
        "the last proxy removes its handover socket"
    );
    eprintln!(
        "proxy handover x2 under load: {ok} requests, 0 failed, {closes:?} graceful closes per keep-alive client, {elapsed:.1}s"
    );
}

const APP: &str = "handover-demo";
const IMAGE: &str = "ferry-handover-demo:test";

fn write_spec(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("ferry.toml");
    std::fs::write(
        &path,
        format!(
            r#"app = "{APP}"
image = "{IMAGE}"

[web]
port = 8080
replicas = 2
drain_timeout = "5s"
stop_timeout = "5s"

[web.health]
path = "/health"
interval = "1s"
timeout = "1s"

[strategy]
kind = "rolling"

[env]
VERSION = "v1"
"#
        ),
    )
    .unwrap();
    path
}

fn status(spec: &Path, state: &Path) -> serde_json::Value {
    let out = ferry(
        &[
            "--config",
            spec.to_str().unwrap(),
            "--output",
            "json",
            "status",
        ],
        state,
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn docker_daemon_takeover_under_load_loses_no_request() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mut daemon = Daemon::new(APP);
    build_demo_image(IMAGE);
    let spec = write_spec(&tmp.path().join("app"));
    let proxy = daemon.start(&state);
    let out = ferry(&["--config", spec.to_str().unwrap(), "deploy"], &state, "");
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let before = status(&spec, &state);
    let containers_before = {
        let mut c = daemon.containers();
        c.sort();
        c
    };
    assert_eq!(containers_before.len(), 2, "{containers_before:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let loops = start_load(proxy, &stop);
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(1000));
    let (new_proxy, mut old) = daemon.take_over(&state);
    assert_eq!(
        new_proxy, proxy,
        "the new daemon serves where the old one did"
    );
    assert_eq!(
        wait_exit(&mut old, Duration::from_secs(60)),
        Some(0),
        "the old daemon did not exit cleanly after the handover"
    );
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    let (ok, failed, closes) = finish_load(loops);
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed, the first: {:?}",
        failed.len(),
        ok + failed.len() as u32,
        &failed[..failed.len().min(10)]
    );
    assert!(ok > 100, "the load loops sent only {ok} requests");
    assert!(
        closes.iter().all(|&c| c >= 1),
        "keep-alive loops saw connection: close {closes:?} times"
    );

    // The new daemon answers the API and the deployment is unchanged.
    let after = status(&spec, &state);
    // (The last rollout's progress is held in memory and not carried over, as on any
    // restart; the deployment itself is.)
    for key in ["stable", "canary", "urls"] {
        assert_eq!(after[key], before[key], "{key}: {before} vs {after}");
    }
    let mut containers_after = daemon.containers();
    containers_after.sort();
    assert_eq!(containers_after, containers_before, "containers changed");
    eprintln!(
        "daemon takeover under load: {ok} requests, 0 failed, {closes:?} graceful closes per keep-alive client, {elapsed:.1}s"
    );
}
