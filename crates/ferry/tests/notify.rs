//! `ferry serve` POSTs a JSON body per rollout event to the spec's `[notify]` webhooks:
//! a receiver subscribed to two events sees `deploy-started` then `deploy-succeeded`; an
//! https receiver (its CA given with `--webhook-ca`) sees a canary's per-step events in
//! order.

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
webhooks = [{{ url = "http://{hook}/hook", events = ["deploy-started", "deploy-succeeded"] }}]
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

/// An HTTPS receiver on 127.0.0.1 with a fresh self-signed certificate (written to
/// `dir/ca.pem`): records each POSTed JSON body and answers 200.
fn tls_receiver(dir: &Path) -> (String, PathBuf, Arc<Mutex<Vec<serde_json::Value>>>) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ck.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let bodies = seen.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().take(200) {
            let Ok(tcp) = tcp else { continue };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut reader = BufReader::new(rustls::StreamOwned::new(conn, tcp));
            let mut length = 0usize;
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
            if length == 0 || reader.read_exact(&mut body).is_err() {
                continue;
            }
            if let Ok(value) = serde_json::from_slice(&body) {
                bodies.lock().unwrap().push(value);
            }
            let stream = reader.get_mut();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
    });
    (format!("https://127.0.0.1:{port}/hook"), ca, seen)
}

#[test]
fn docker_https_webhook_receives_a_canarys_step_events_in_order() {
    const APP: &str = "notifytls";
    const IMAGE: &str = "ferry-notifytls-test:hello";
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mut daemon = Daemon::new(APP);
    build_demo_image(IMAGE);
    let (url, ca, seen) = tls_receiver(tmp.path());
    let dir = tmp.path().join("app");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("ferry.toml");
    let write = |version: &str| {
        std::fs::write(
            &spec,
            format!(
                r#"app = "{APP}"
image = "{IMAGE}"

[env]
VERSION = "{version}"

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
kind = "canary"

[strategy.canary]
steps = [{{ weight = 20 }}, {{ weight = 60 }}]

[notify]
webhooks = [{{ url = "{url}" }}]
"#
            ),
        )
        .unwrap();
    };
    daemon.start_with_env(&state, &[("FERRY_WEBHOOK_CA", ca.to_str().unwrap())]);
    let config = spec.to_str().unwrap();
    write("v1");
    let out = ferry(&["--config", config, "deploy"], &state, "");
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    write("v2");
    let out = ferry(&["--config", config, "deploy"], &state, "");
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // Delivery is in the background: wait (bounded) for revision 2's success.
    let done = |bodies: &[serde_json::Value]| {
        bodies
            .iter()
            .any(|b| b["revision"] == 2 && b["event"] == "deploy-succeeded")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(&seen.lock().unwrap()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let bodies = seen.lock().unwrap().clone();
    let lines: Vec<String> = bodies
        .iter()
        .filter(|b| b["revision"] == 2)
        .map(|b| {
            let mut line = b["event"].as_str().unwrap_or("?").to_owned();
            if let Some(label) = b["step"]["label"].as_str() {
                line.push_str(&format!(
                    " {}/{} {label}",
                    b["step"]["number"], b["step"]["of"]
                ));
            }
            if let Some(w) = b["weights"]["canary"].as_u64() {
                line.push_str(&format!(" {w}"));
            }
            line
        })
        .collect();
    let expected = [
        "deploy-started",
        "step-started 1/",
        "step-finished 1/",
        "step-started 2/8 weight 20%",
        "step-finished 2/8 weight 20%",
        "weight-changed 20",
        "step-started 4/8 weight 60%",
        "step-finished 4/8 weight 60%",
        "weight-changed 60",
        "weight-changed 100",
        "deploy-succeeded",
    ];
    let mut rest = lines.iter();
    for want in expected {
        assert!(
            rest.any(|line| line.starts_with(want)),
            "{want:?} missing or out of order in {lines:#?}"
        );
    }
    assert_eq!(
        lines.first().map(String::as_str),
        Some("deploy-started"),
        "{lines:#?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("deploy-succeeded"),
        "{lines:#?}"
    );
    let steps: Vec<&String> = lines.iter().filter(|l| l.starts_with("step-")).collect();
    assert!(
        steps.iter().any(|l| l.contains("weight 20%"))
            && steps.iter().any(|l| l.contains("weight 60%")),
        "{lines:#?}"
    );
}
