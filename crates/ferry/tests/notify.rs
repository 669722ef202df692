//! `ferry serve` POSTs a JSON body per rollout event to the spec's `[notify]` webhooks:
//! a receiver in the test sees `deploy-started` then `deploy-succeeded` for the revision.

#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Daemon, build_demo_image, ferry, text};

const APP: &str = "notifytest";
const IMAGE: &str = "ferry-notify-test:hello";

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
    let mut daemon = Daemon::new(APP);
    build_demo_image(IMAGE);
    let (hook, seen) = receiver();
    let spec = write_spec(&tmp.path().join("app"), hook);
    let config = spec.to_str().unwrap();
    daemon.start(&state);

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
