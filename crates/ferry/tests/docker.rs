//! The CLI against the real Docker engine: the README's main job (`ferry run` of the
//! demo), build records, build failures and an unreachable engine.

#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ferry(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("FERRY_OUTPUT")
        .env_remove("FERRY_ENV")
        .env_remove("FERRY_CONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("ferry runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    text(&out.stdout)
}

fn http_get(url: &str) -> String {
    let rest = url.trim_start_matches("http://");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    use std::io::{Read, Write};
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    body
}

#[test]
fn docker_run_serves_the_demo_hardened_and_down_removes_it() {
    let state = tempfile::tempdir().unwrap();
    let db = state.path().join("state.db");
    let db = db.to_str().unwrap();
    let config = "examples/hello/ferry.toml";
    let env = [("FERRY_STATE", db)];
    let out = ferry(
        &repo_root(),
        &[
            "--config", config, "--env", "staging", "--output", "json", "run",
        ],
        &env,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // NDJSON: build progress events, then the final `healthy` event.
    let stdout = text(&out.stdout);
    let last = stdout.lines().last().unwrap();
    let report: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(report["event"], "healthy");
    assert!(
        stdout.lines().any(|l| l.contains("\"event\":\"step\"")),
        "{stdout}"
    );
    let url = report["url"].as_str().unwrap().to_owned();
    let container = report["container"].as_str().unwrap().to_owned();
    assert_eq!(container, "ferry-hello-staging-web");

    let response = http_get(&url);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("hello from"), "{response}");

    let inspect = docker(&[
        "inspect",
        "--format",
        "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}} {{.Config.User}} {{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{index .Config.Labels \"ferry.app\"}}",
        &container,
    ]);
    assert!(
        inspect.starts_with("true [ALL] [no-new-privileges]"),
        "{inspect}"
    );
    assert!(inspect.contains("65532"), "non-root: {inspect}");
    assert!(
        inspect.contains(&(64 * 1024 * 1024).to_string()),
        "memory limit: {inspect}"
    );
    assert!(inspect.trim_end().ends_with("hello"), "{inspect}");

    let builds = ferry(
        &repo_root(),
        &["--config", config, "builds", "--output", "json"],
        &env,
    );
    let builds: serde_json::Value = serde_json::from_slice(&builds.stdout).unwrap();
    assert_eq!(builds.as_array().unwrap().len(), 1, "{builds}");
    assert_eq!(builds[0]["env"], "staging");

    let logs = ferry(
        &repo_root(),
        &[
            "--config", config, "--env", "staging", "logs", "--tail", "20",
        ],
        &env,
    );
    assert!(logs.status.success(), "{}", text(&logs.stderr));
    let logs = text(&logs.stdout);
    assert!(
        logs.contains("ferry-hello-staging-web | hello") && logs.contains("listening on"),
        "{logs}"
    );

    let down = ferry(
        &repo_root(),
        &["--config", config, "--env", "staging", "down"],
        &env,
    );
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(text(&down.stdout).contains("removed ferry-hello-staging-web"));
    assert!(
        docker(&["ps", "-aq", "--filter", "name=ferry-hello-staging-web"])
            .trim()
            .is_empty()
    );
}

#[test]
fn docker_build_failure_names_the_failing_step_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ferry.toml"),
        "app = \"broken\"\n\n[build]\n\n[web]\nport = 8080\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY does-not-exist /x\n",
    )
    .unwrap();
    let db = dir.path().join("state.db");
    let out = ferry(
        dir.path(),
        &["build"],
        &[("FERRY_STATE", db.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("failed at step 2/"), "{stderr}");
    assert!(stderr.contains("COPY does-not-exist /x"), "{stderr}");
}

#[test]
fn an_unreachable_engine_exits_3_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ferry.toml"),
        "app = \"x\"\n\n[build]\n\n[web]\nport = 8080\n",
    )
    .unwrap();
    let out = ferry(
        dir.path(),
        &["build"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("DOCKER_HOST"));
}

#[test]
fn lock_status_and_release_read_the_daemon_store() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ferry.toml"),
        "app = \"shop\"\nimage = \"shop:1.0.0\"\n\n[web]\nport = 8080\n",
    )
    .unwrap();
    let store = dir.path().join("daemon-state.db");
    let store = store.to_str().unwrap();
    let status = ferry(dir.path(), &["lock", "status", "--store", store], &[]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    assert!(text(&status.stdout).contains("shop (default) is not locked"));

    // A lock left by a crashed deploy, taken through the store the daemon uses.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let s = ferry_store::Store::open(store).await.unwrap();
        s.acquire_lock(
            "shop",
            "default",
            "daemon:test",
            "rollout 7",
            std::time::Duration::from_secs(600),
        )
        .await
        .unwrap();
        s.close().await;
    });
    let held = ferry(dir.path(), &["lock", "status", "--store", store], &[]);
    assert!(
        text(&held.stdout).contains("locked by daemon:test: rollout 7"),
        "{}",
        text(&held.stdout)
    );
    let released = ferry(
        dir.path(),
        &["lock", "release", "--store", store, "--output", "json"],
        &[],
    );
    let released: serde_json::Value = serde_json::from_slice(&released.stdout).unwrap();
    assert_eq!(released["released"], true);
    let after = ferry(dir.path(), &["lock", "status", "--store", store], &[]);
    assert!(text(&after.stdout).contains("is not locked"));
}
