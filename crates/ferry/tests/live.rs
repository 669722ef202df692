//! The live view of real deploys through `ferry serve` (real Docker engine): NDJSON events
//! with `--output json` ending in a `result` object, one plain line per change when piped
//! (never a progress bar or a control character), `ferry status --watch` piped seeing the
//! rollout go live, `ferry rollback` waiting until the earlier revision is back, and a
//! failed deploy's events ending in a result that is not ok.

#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{Daemon, build_demo_image, ferry, text};

const APP: &str = "livetest";
const IMAGE: &str = "ferry-live-test:hello";

fn write_spec(dir: &Path, version: &str) -> PathBuf {
    write_spec_with(dir, version, "")
}

/// The demo's spec in `dir/<version>/ferry.toml`; `web_extra` lines go into `[web]`.
fn write_spec_with(dir: &Path, version: &str, web_extra: &str) -> PathBuf {
    let dir = dir.join(version);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ferry.toml");
    std::fs::write(
        &path,
        format!(
            r#"app = "{APP}"
image = "{IMAGE}"

[web]
port = 8080
replicas = 2
drain_timeout = "2s"
stop_timeout = "5s"
{web_extra}

[web.health]
path = "/health"
interval = "1s"
timeout = "1s"

[strategy]
kind = "rolling"

[env]
VERSION = "{version}"
"#
        ),
    )
    .unwrap();
    path
}

/// No progress bar, cursor movement or carriage return: plain text only.
fn assert_plain(what: &str, output: &str) {
    assert!(
        !output.contains('\r') && !output.contains('\u{1b}'),
        "{what} holds control characters (a progress bar?): {output:?}"
    );
}

#[test]
fn docker_deploy_shows_ndjson_events_and_plain_lines_and_status_watch_sees_the_change() {
    let state = tempfile::tempdir().unwrap();
    let specs = tempfile::tempdir().unwrap();
    build_demo_image(IMAGE);
    let mut daemon = Daemon::new(APP);
    daemon.start(state.path());
    let v1 = write_spec(specs.path(), "v1");
    let v2 = write_spec(specs.path(), "v2");

    // v1 with --output json: every stdout line is one JSON event, the last the result.
    let out = ferry(
        &[
            "--config",
            v1.to_str().unwrap(),
            "--output",
            "json",
            "deploy",
        ],
        state.path(),
        "",
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_plain("deploy --output json stdout", &stdout);
    assert_plain("deploy --output json stderr", &text(&out.stderr));
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l:?}")))
        .collect();
    assert_eq!(events[0]["event"], "accepted", "{stdout}");
    assert_eq!(events[0]["revision"], 1);
    let statuses: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "status").collect();
    assert!(!statuses.is_empty(), "no status event: {stdout}");
    for s in &statuses {
        assert_eq!(s["rollout"]["revision"], 1, "{s}");
        assert!(s["rollout"]["weights"]["canary"].is_u64(), "{s}");
        assert!(s["rollout"]["replicas"]["new_healthy"].is_u64(), "{s}");
    }
    // The events follow the rollout: some before it ended, the finished one last.
    assert_eq!(statuses[0]["rollout"]["finished"], false, "{stdout}");
    assert_eq!(
        statuses.last().unwrap()["rollout"]["finished"],
        true,
        "{stdout}"
    );
    let result = events.last().unwrap();
    assert_eq!(result["event"], "result", "{stdout}");
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["revision"], 1);
    assert_eq!(result["stable"], 1);
    assert_eq!(result["outcome"]["outcome"], "promoted", "{result}");
    assert!(
        result["urls"][0]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );

    // `status --watch` piped: one line per change, running while v2 deploys.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["--config", v1.to_str().unwrap()])
        .args(["status", "--watch", "--timeout", "120s"])
        .env_remove("FERRY_OUTPUT")
        .env_remove("FERRY_API")
        .env_remove("FERRY_TOKEN")
        .env("FERRY_STATE_DIR", state.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = mpsc::channel::<String>();
    let reader = BufReader::new(watch.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("status --watch prints the current status");
    assert!(first.contains("rollout 1"), "{first}");

    // v2, piped: plain lines, one per change, and where it is live.
    let out = ferry(
        &["--config", v2.to_str().unwrap(), "deploy"],
        state.path(),
        "",
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_plain("deploy stdout", &stdout);
    assert_plain("deploy stderr", &text(&out.stderr));
    let all: Vec<&str> = stdout.lines().collect();
    assert!(
        all[0].starts_with("deploying livetest (default) revision 2"),
        "{stdout}"
    );
    let progress: Vec<&&str> = all.iter().filter(|l| l.starts_with('[')).collect();
    assert!(
        progress.len() >= 2,
        "one line per change expected: {stdout}"
    );
    for line in &progress {
        assert!(
            line.contains("rollout 2 (revision 1 → revision 2, rolling)"),
            "{line}"
        );
        assert!(line.contains("healthy"), "{line}");
    }
    let mut unique = progress.clone();
    unique.dedup_by(|a, b| a.split_once(']').map(|x| x.1) == b.split_once(']').map(|x| x.1));
    assert_eq!(
        unique.len(),
        progress.len(),
        "a line repeats without a change: {stdout}"
    );
    assert!(progress.last().unwrap().contains("completed"), "{stdout}");
    assert!(
        all.last()
            .unwrap()
            .starts_with("revision 2 of livetest (default) is live at http://"),
        "{stdout}"
    );

    // The watcher saw the same rollout go live, without a bar.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = vec![first];
    while !seen.last().unwrap().contains("rollout 2") || !seen.last().unwrap().contains("completed")
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("status --watch never showed rollout 2 completed: {seen:#?}"),
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    for line in &seen {
        assert_plain("status --watch", line);
    }

    // A bounded watch ends by itself with exit 0.
    let started = Instant::now();
    let out = ferry(
        &[
            "--config",
            v2.to_str().unwrap(),
            "status",
            "--watch",
            "--timeout",
            "2s",
        ],
        state.path(),
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        text(&out.stdout).contains("rollout 2"),
        "{}",
        text(&out.stdout)
    );

    // `ferry rollback` waits until revision 1 is live again, with its progress.
    let out = ferry(
        &["--config", v2.to_str().unwrap(), "rollback"],
        state.path(),
        "",
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_plain("rollback stdout", &stdout);
    assert!(
        stdout.contains("rollout 3 (revision 2 → revision 1"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("revision 1 of livetest (default) is live at"),
        "{stdout}"
    );
    let status = ferry(
        &[
            "--config",
            v2.to_str().unwrap(),
            "--output",
            "json",
            "status",
        ],
        state.path(),
        "",
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["stable"], 1, "{status}");

    // A revision (3: a rollback records none) that crashes on start, with --output json:
    // the events still end in a result object, not ok, with the reason; exit 1, and
    // revision 1 keeps serving.
    let crash = write_spec_with(specs.path(), "crash", "command = [\"crash-on-start\"]");
    let out = ferry(
        &[
            "--config",
            crash.to_str().unwrap(),
            "--output",
            "json",
            "deploy",
        ],
        state.path(),
        "",
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert_plain("failed deploy stdout", &stdout);
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "result", "{stdout}");
    assert_eq!(last["ok"], false, "{last}");
    assert_eq!(last["revision"], 3, "{last}");
    assert_eq!(last["stable"], 1, "{last}");
    assert_eq!(last["outcome"]["outcome"], "rolled-back", "{last}");
    assert!(
        text(&out.stderr).contains("revision 3 was rolled back"),
        "{}",
        text(&out.stderr)
    );
}
