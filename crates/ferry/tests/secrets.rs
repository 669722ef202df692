//! `ferry secrets set|list|rm`: values in through stdin, encrypted at rest, never listed;
//! and `ferry serve` delivering them to replicas as `/run/secrets/NAME` files (not in
//! `docker inspect`), refusing a deploy whose listed secret is not set.

#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const APP: &str = "secretstest";
const IMAGE: &str = "ferry-secrets-test:hello";
const VALUE: &str = "s3cr3t-Value-9f2c71";

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

fn start_daemon(cleanup: &mut Cleanup, state: &Path) -> SocketAddr {
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
    line.split("proxy on http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no proxy address in {line:?}"))
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
    let mut cleanup = Cleanup { daemon: None };
    cleanup.run();
    build_demo_image();
    let spec = write_spec(&tmp.path().join("app"));
    let config = spec.to_str().unwrap();
    let proxy = start_daemon(&mut cleanup, &state);

    // Not set yet: refused, naming the secret and the command.
    let out = ferry(&["--config", config, "deploy"], &state, "");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}{stderr}", text(&out.stdout));
    assert!(stderr.contains("API_TOKEN"), "{stderr}");
    assert!(stderr.contains("ferry secrets set API_TOKEN"), "{stderr}");
    assert!(containers().is_empty());

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

    let ids = containers();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let inspect = docker(&["inspect", &ids[0]]);
    assert!(inspect.status.success());
    let inspect = text(&inspect.stdout);
    assert!(inspect.contains("/run/secrets"), "{inspect}");
    assert!(!inspect.contains(VALUE), "docker inspect shows the value");
}
