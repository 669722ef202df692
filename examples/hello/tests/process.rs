//! The hello binary as a process: startup delay, graceful SIGTERM, crash on purpose,
//! configuration errors, the `healthcheck` and `migrate` subcommands.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test on any error"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const HELLO: &str = env!("CARGO_BIN_EXE_hello");

struct Hello {
    child: Child,
    addr: SocketAddr,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Hello {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts hello on a free port and waits for its "listening on" line.
fn spawn(env: &[(&str, &str)]) -> Hello {
    let mut cmd = Command::new(HELLO);
    cmd.env_clear()
        .env("PORT", "0")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn hello");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read the first line");
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let addr = SocketAddr::from(([127, 0, 0, 1], addr.port()));
    Hello {
        child,
        addr,
        stdout,
    }
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "hello did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -TERM failed");
}

#[test]
fn serves_after_the_startup_delay_and_exits_0_on_sigterm_after_in_flight_requests() {
    let started = Instant::now();
    let mut hello = spawn(&[("STARTUP_DELAY_MS", "200"), ("VERSION", "p1")]);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "listened before the delay"
    );
    assert!(get(hello.addr, "/").contains("(version p1)"));

    // A slow request sent before SIGTERM arrives still gets its answer.
    let mut slow = TcpStream::connect(hello.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        slow,
        "GET /slow?ms=500 HTTP/1.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    sigterm(&hello.child);
    let mut answer = String::new();
    slow.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let status = wait_exit(&mut hello.child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    hello.stdout.read_to_string(&mut rest).unwrap();
    assert!(
        rest.contains("draining") && rest.contains("stopped"),
        "{rest}"
    );
}

#[test]
fn crash_after_exits_with_status_1() {
    let mut hello = spawn(&[("CRASH_AFTER_S", "0.3")]);
    let status = wait_exit(&mut hello.child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(1));
}

#[test]
fn bad_configuration_exits_2_naming_every_variable() {
    let out = Command::new(HELLO)
        .env_clear()
        .env("PORT", "eighty")
        .env("FAIL_RATE", "1.5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PORT") && err.contains("FAIL_RATE"), "{err}");
}

#[test]
fn healthcheck_subcommand_exit_codes() {
    let hello = spawn(&[]);
    let url = format!("http://{}/health", hello.addr);
    let ok = Command::new(HELLO)
        .args(["healthcheck", &url])
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let sick = spawn(&[("HEALTH", "fail")]);
    let url = format!("http://{}/health", sick.addr);
    let bad = Command::new(HELLO)
        .args(["healthcheck", &url])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("503"));
    // The default URL uses $PORT.
    let default = Command::new(HELLO)
        .arg("healthcheck")
        .env("PORT", hello.addr.port().to_string())
        .output()
        .unwrap();
    assert_eq!(default.status.code(), Some(0), "{default:?}");
    let usage = Command::new(HELLO).arg("bogus").output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn migrate_subcommand_lists_secret_files_and_fails_on_request() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("DB_PASSWORD"), "s3cret").unwrap();
    let ok = Command::new(HELLO)
        .arg("migrate")
        .env("VERSION", "v7")
        .env("SECRETS_DIR", dir.path())
        .env_remove("MIGRATE")
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        out.contains("hello migrate v7: applying migrations"),
        "{out}"
    );
    assert!(out.contains("readable: [DB_PASSWORD]"), "{out}");
    assert!(!out.contains("s3cret"), "{out}");
    let bad = Command::new(HELLO)
        .arg("migrate")
        .env("MIGRATE", "fail")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("migration 0002 failed"));
}
