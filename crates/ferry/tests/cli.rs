//! The CLI as a user sees it: help, exit codes, init, healthcheck, completions.

#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn ferry(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(dir)
        .env_remove("FERRY_OUTPUT")
        .env_remove("FERRY_ENV")
        .env_remove("FERRY_CONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("ferry runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = ferry(dir.path(), &["--help"]);
    assert!(out.status.success());
    insta::assert_snapshot!(text(&out.stdout));
}

#[test]
fn version_names_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let out = ferry(dir.path(), &["--version"]);
    assert!(out.status.success());
    let line = text(&out.stdout);
    assert!(line.starts_with("ferry 0.1.0 ("), "{line}");
    assert!(line.trim_end().ends_with(')'), "{line}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = ferry(dir.path(), &["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn init_infers_port_and_health_from_the_dockerfile() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("shop-api");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        "FROM scratch\nEXPOSE 9000\nHEALTHCHECK CMD [\"/app\", \"probe\", \"http://127.0.0.1:9000/ready\"]\n",
    )
    .unwrap();
    let out = ferry(&app, &["init"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let toml = std::fs::read_to_string(app.join("ferry.toml")).unwrap();
    assert!(toml.contains("app = \"shop-api\""), "{toml}");
    assert!(toml.contains("port = 9000"), "{toml}");
    assert!(toml.contains("path = \"/ready\""), "{toml}");
    // A Dockerfile existed: init must not write another one.
    assert!(!app.join(".dockerignore").exists());

    let again = ferry(&app, &["init"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("--force"),
        "{}",
        text(&again.stderr)
    );
    std::fs::write(app.join("ferry.toml"), "# mine\n").unwrap();
    let forced = ferry(&app, &["init", "--force"]);
    assert!(forced.status.success());
    assert!(
        std::fs::read_to_string(app.join("ferry.toml"))
            .unwrap()
            .contains("shop-api")
    );
}

#[test]
fn init_writes_a_hardened_dockerfile_for_a_rust_project() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
    let out = ferry(dir.path(), &["init", "--name", "api", "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["language"], "Rust");
    let dockerfile = std::fs::read_to_string(dir.path().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("AS build"));
    assert!(dockerfile.contains("USER 65532:65532"));
    assert!(dockerfile.contains("HEALTHCHECK"));
    assert!(!dockerfile.contains(":latest"));
    let manifests = dockerfile.find("COPY Cargo.toml").unwrap();
    let sources = dockerfile.find("COPY . .").unwrap();
    assert!(
        manifests < sources,
        "manifests are copied before the sources"
    );
    assert!(dir.path().join(".dockerignore").exists());
}

#[test]
fn init_without_anything_to_infer_from_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = ferry(dir.path(), &["init"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no Dockerfile"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !dir.path().join("ferry.toml").exists(),
        "nothing half-written"
    );
}

/// Serves one HTTP response with `status` on a real loopback socket.
fn one_shot_server(status: u16) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            // Read the whole request head before answering.
            let mut head = Vec::new();
            let mut buf = [0u8; 256];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    format!("http://{addr}/health")
}

#[test]
fn healthcheck_follows_the_status_code() {
    let dir = tempfile::tempdir().unwrap();
    let ok = ferry(dir.path(), &["healthcheck", &one_shot_server(200)]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let failing = ferry(dir.path(), &["healthcheck", &one_shot_server(503)]);
    assert_eq!(
        failing.status.code(),
        Some(1),
        "{} {}",
        text(&failing.stdout),
        text(&failing.stderr)
    );
    assert!(text(&failing.stderr).contains("503"));

    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", closed.local_addr().unwrap());
    drop(closed);
    let refused = ferry(dir.path(), &["healthcheck", &url]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("cannot connect"));
}

#[test]
fn completions_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    let out = ferry(dir.path(), &["completions", "bash"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("_ferry"));
}

#[test]
fn a_closed_pipe_exits_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["completions", "zsh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
}

/// A keep-alive HTTP/1.1 backend answering `backend` to every request.
fn backend() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut pending = Vec::new();
                let mut buf = [0u8; 1024];
                loop {
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        let reply = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nbackend";
                        if stream.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn proxy_quick_mode_forwards_and_stops_on_sigterm() {
    use std::io::BufRead;
    let upstream = backend();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--to",
            &format!("v1@100={upstream}"),
            "--output",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let event: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(event["event"], "listening");
    let listener = event["listeners"][0].as_str().unwrap().to_owned();
    let authority = listener.trim_start_matches("http://").to_owned();

    let mut stream = std::net::TcpStream::connect(&authority).unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("x-ferry-revision: v1"),
        "{response}"
    );
    assert!(response.ends_with("backend"), "{response}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful stop exits 0: {status:?}");
}
