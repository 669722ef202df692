//! `ferry serve` POSTs a JSON body per rollout event to the spec's `[notify]` webhooks:
//! a receiver in the test sees `deploy-started` then `deploy-succeeded` for the revision.

#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const APP: &str = "notifytest";
const IMAGE: &str = "ferry-notify-test:hello";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs ferry with `stdin` piped in.
fn ferry(args: &[&str], state: &Path, stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env_remove("FERRY_OUTPUT")
        .env_remove("FERRY_ENV")
        .env_remove("FERRY_CONFIG")
        .env_remove("FERRY_API")
        .env_remove("FERRY_TOKEN")
        .env("FERRY_STATE_DIR", state)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferry runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI is installed")
}

fn containers() -> Vec<String> {
    let label = format!("label=ferry.app={APP}");
    text(&docker(&["ps", "-aq", "--filter", &label]).stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Kills the daemon and removes the test's containers and network, whatever happened.
struct Cleanup {
    daemon: Option<Child>,
}

impl Cleanup {
    fn run(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let ids = containers();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            docker(&args);
        }
        docker(&["network", "rm", &format!("ferry-{APP}-default")]);
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.run();
    }
}

fn build_demo_image() {
    let hello = repo_root().join("examples/hello");
    let hook = Command::new(hello.join("build-static.sh"))
        .output()
        .expect("build-static.sh runs");
    assert!(hook.status.success(), "{}", text(&hook.stderr));
    let out = docker(&["build", "-q", "-t", IMAGE, hello.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "docker build of the demo failed (is the Docker engine running?): {}",
        text(&out.stderr)
    );
}

fn write_spec(dir: &Path, hook: SocketAddr) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("ferry.toml");
    std::fs::write(
        &path,
        format!(
            r#"app = "{APP}"
image = "{IMAGE}"

[web]
port = 8080
replicas = 1
drain_timeout = "1s"
stop_timeout = "2s"

[web.health]
path = "/health"
interval = "1s"
timeout = "1s"

[strategy]
kind = "rolling"

[notify]
webhooks = [{{ url = "http://{hook}/hook" }}]
"#
        ),
    )
    .unwrap();
    path
}

fn start_daemon(cleanup: &mut Cleanup, state: &Path) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0"])
        .env("FERRY_STATE_DIR", state)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ferry serve starts");
    let stdout = child.stdout.take().unwrap();
    cleanup.daemon = Some(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert!(line.contains("proxy on http://"), "{line:?}");
}

/// A webhook receiver on 127.0.0.1: records each POSTed JSON body and answers 200.
fn receiver() -> (SocketAddr, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let bodies = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let mut value: serde_json::Value =
                serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            value["_request"] = serde_json::Value::String(request_line.trim().to_owned());
            bodies.lock().unwrap().push(value);
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (addr, seen)
}

#[test]
fn docker_daemon_posts_start_and_success_to_webhooks() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mut cleanup = Cleanup { daemon: None };
    cleanup.run();
    build_demo_image();
    let (hook, seen) = receiver();
    let spec = write_spec(&tmp.path().join("app"), hook);
    let config = spec.to_str().unwrap();
    start_daemon(&mut cleanup, &state);

    let out = ferry(&["--config", config, "deploy"], &state, "");
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // Delivery is in the background: wait (bounded) for both events.
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let bodies = seen.lock().unwrap().clone();
    let events: Vec<&str> = bodies.iter().filter_map(|b| b["event"].as_str()).collect();
    assert_eq!(
        events,
        ["deploy-started", "deploy-succeeded"],
        "{bodies:#?}"
    );
    for body in &bodies {
        assert_eq!(body["_request"], "POST /hook HTTP/1.1", "{body}");
        assert_eq!(body["app"], APP, "{body}");
        assert_eq!(body["env"], "default", "{body}");
        assert_eq!(body["revision"], 1, "{body}");
        assert_eq!(body["strategy"], "rolling", "{body}");
        let at = body["at"].as_str().unwrap_or_default();
        assert!(at.ends_with('Z') && at.contains('T'), "{body}");
        assert!(body["summary"].is_string(), "{body}");
    }
    assert!(bodies[0].get("reason").is_none(), "{bodies:#?}");
}
