//! `ferry secrets set|list|rm`: values in through stdin, encrypted at rest, never listed;
//! and `ferry serve` delivering them to replicas as `/run/secrets/NAME` files (not in
//! `docker inspect`), refusing a deploy whose listed secret is not set.

#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{Daemon, build_demo_image, docker, ferry, text};

const APP: &str = "secretstest";
const IMAGE: &str = "ferry-secrets-test:hello";
const VALUE: &str = "s3cr3t-Value-9f2c71";

fn write_spec(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("ferry.toml");
    std::fs::write(
        &path,
        format!(
            r#"app = "{APP}"
image = "{IMAGE}"
secrets = ["API_TOKEN"]

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
"#
        ),
    )
    .unwrap();
    path
}

/// `GET /` asking for JSON: the body.
fn get_json(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    raw.split_once("\r\n\r\n").unwrap().1.to_owned()
}

#[test]
fn secrets_set_from_stdin_are_listed_by_name_and_encrypted_at_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let spec = write_spec(&tmp.path().join("app"));
    let config = spec.to_str().unwrap();

    let out = ferry(
        &["--config", config, "secrets", "set", "API_TOKEN"],
        &state,
        &format!("{VALUE}\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains(VALUE));
    assert!(!text(&out.stderr).contains(VALUE));

    let out = ferry(&["--config", config, "secrets", "list"], &state, "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert!(listed.contains("API_TOKEN"), "{listed}");
    assert!(!listed.contains(VALUE), "{listed}");

    let out = ferry(
        &["--config", config, "--output", "json", "secrets", "list"],
        &state,
        "",
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["name"], "API_TOKEN", "{json}");
    assert!(json[0]["updated_at"].is_string(), "{json}");
    assert!(!json.to_string().contains(VALUE));

    // At rest: the SQLite files hold no plaintext; the key file is private.
    for entry in std::fs::read_dir(&state).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()),
            "{} holds the plaintext",
            path.display()
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(state.join("secret.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Names follow the spec's rule; removing works once.
    let out = ferry(
        &["--config", config, "secrets", "set", "9BAD-NAME"],
        &state,
        "x",
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = ferry(
        &["--config", config, "secrets", "rm", "API_TOKEN"],
        &state,
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = ferry(
        &["--config", config, "secrets", "rm", "API_TOKEN"],
        &state,
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let out = ferry(&["--config", config, "secrets", "list"], &state, "");
    assert!(
        text(&out.stdout).contains("no secrets set"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("not set: API_TOKEN"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn docker_daemon_delivers_secrets_as_files_and_refuses_unset_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mut daemon = Daemon::new(APP);
    build_demo_image(IMAGE);
    let spec = write_spec(&tmp.path().join("app"));
    let config = spec.to_str().unwrap();
    let proxy = daemon.start(&state);

    // Not set yet: refused, naming the secret and the command.
    let out = ferry(&["--config", config, "deploy"], &state, "");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}{stderr}", text(&out.stdout));
    assert!(stderr.contains("API_TOKEN"), "{stderr}");
    assert!(stderr.contains("ferry secrets set API_TOKEN"), "{stderr}");
    assert!(daemon.containers().is_empty());

    let out = ferry(
        &["--config", config, "secrets", "set", "API_TOKEN"],
        &state,
        VALUE,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = ferry(&["--config", config, "deploy"], &state, "");
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(!text(&out.stdout).contains(VALUE));
    assert!(!text(&out.stderr).contains(VALUE));

    let body = get_json(proxy);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["secrets"], serde_json::json!(["API_TOKEN"]), "{body}");

    let ids = daemon.containers();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let inspect = docker(&["inspect", &ids[0]]);
    assert!(inspect.status.success());
    let inspect = text(&inspect.stdout);
    assert!(inspect.contains("/run/secrets"), "{inspect}");
    assert!(!inspect.contains(VALUE), "docker inspect shows the value");
}
