//! `ferry deploy --start-daemon`: with no daemon running, the quickstart still deploys
//! with one command by starting `ferry serve` for the project in the background.

#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ferry(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["--config", "examples/hello/ferry.toml", "--env", "staging"])
        .args(args)
        .current_dir(repo_root())
        .env("FERRY_STATE_DIR", state)
        .env("FERRY_STATE", state.join("cli-state.db"))
        .env_remove("FERRY_API")
        .env_remove("FERRY_TOKEN")
        .env_remove("FERRY_OUTPUT")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Stops the started daemon and removes what it ran, even when the test fails.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.0.join("daemon.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let ids = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                "label=ferry.app=hello",
                "--filter",
                "label=ferry.env=staging",
                "--filter",
                "label=ferry.deploy=true",
            ])
            .output()
            .map(|o| text(&o.stdout))
            .unwrap_or_default();
        for id in ids.split_whitespace() {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
        let _ = Command::new("docker")
            .args(["network", "rm", "ferry-hello-staging"])
            .output();
    }
}

#[test]
fn docker_deploy_start_daemon_deploys_with_one_command() {
    let state = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(state.path().to_path_buf());

    // Without --start-daemon: exit 3 and a hint naming the flag.
    let refused = ferry(state.path(), &["deploy"]);
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("--start-daemon"));

    let out = ferry(
        state.path(),
        &["deploy", "--start-daemon", "--daemon-listen", "127.0.0.1:0"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("started a ferry daemon"));
    assert!(
        text(&out.stdout).contains("is live at"),
        "{}",
        text(&out.stdout)
    );

    let status = ferry(state.path(), &["status", "--output", "json"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["stable"], 1);
    let url = status["urls"][0].as_str().unwrap().to_owned();
    let authority = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: hello\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("hello from"), "{response}");

    // `ferry serve stop --remove-containers` ends the daemon and removes what it ran.
    let pid = std::fs::read_to_string(state.path().join("daemon.pid")).unwrap();
    let stop = ferry(state.path(), &["serve", "stop", "--remove-containers"]);
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    let said = text(&stop.stdout);
    assert!(said.contains("stopped the ferry daemon"), "{said}");
    assert!(said.contains("removed ferry-hello-staging-web"), "{said}");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    let state_letter = stat.rsplit_once(") ").map_or("", |(_, rest)| &rest[..1]);
    assert!(
        stat.is_empty() || state_letter == "Z",
        "the daemon still runs: {stat}"
    );
    let left = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            "label=ferry.app=hello",
            "--filter",
            "label=ferry.env=staging",
        ])
        .output()
        .unwrap();
    assert_eq!(text(&left.stdout).trim(), "", "containers left behind");
    assert!(!state.path().join("daemon.pid").exists());
    let again = ferry(state.path(), &["serve", "stop"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("no ferry daemon is running"));
}
