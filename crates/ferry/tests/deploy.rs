//! `ferry serve` and `ferry deploy` against the real Docker engine: rolling deploys, a
//! canary held for `ferry promote` and a crashing revision rolled back, all under
//! continuous load with zero failed requests; status and history as JSON, the API's
//! bearer token, and a clear exit 3 when no daemon runs. The canary analysis scenario
//! counts the failures a failing canary causes before its analysis rolls it back.

#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::{Sample, get, load, recorded_load, status, wait_status};

const APP: &str = "deploytest";
const IMAGE: &str = "ferry-deploy-test:hello";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ferry(args: &[&str], state: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env_remove("FERRY_OUTPUT")
        .env_remove("FERRY_ENV")
        .env_remove("FERRY_CONFIG")
        .env_remove("FERRY_API")
        .env_remove("FERRY_TOKEN")
        .env("FERRY_STATE_DIR", state)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("ferry runs")
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI is installed")
}

/// The containers the test's app has on the engine.
fn containers() -> Vec<String> {
    let label = format!("label=ferry.app={APP}");
    text(&docker(&["ps", "-aq", "--filter", &label]).stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Kills the daemon and removes every container and the network the test created,
/// whatever happened.
struct Cleanup {
    daemon: Option<Child>,
}

impl Cleanup {
    fn run(&mut self) {
        self.stop_daemon();
        let ids = containers();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            docker(&args);
        }
        let network = format!("ferry-{APP}-default");
        docker(&["network", "rm", &network]);
    }

    /// SIGTERM to the daemon; its containers stay.
    fn stop_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.run();
    }
}

/// Builds the demo image (static binary by its hook, then a FROM scratch build).
fn build_demo_image() {
    let hello = repo_root().join("examples/hello");
    let hook = Command::new(hello.join("build-static.sh"))
        .output()
        .expect("build-static.sh runs");
    assert!(hook.status.success(), "{}", text(&hook.stderr));
    let out = docker(&[
        "build",
        "-q",
        "-t",
        IMAGE,
        hello.to_str().expect("utf-8 path"),
    ]);
    assert!(
        out.status.success(),
        "docker build of the demo failed (is the Docker engine running?): {}",
        text(&out.stderr)
    );
}

fn write_spec(dir: &Path, version: &str) -> PathBuf {
    write_spec_with(dir, version, version, "", "kind = \"rolling\"")
}

/// A spec of the demo in `dir/<name>/ferry.toml`: `web_extra` lines go into `[web]`,
/// `strategy` into `[strategy]`.
fn write_spec_with(
    dir: &Path,
    name: &str,
    version: &str,
    web_extra: &str,
    strategy: &str,
) -> PathBuf {
    let dir = dir.join(name);
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
drain_timeout = "5s"
stop_timeout = "5s"
{web_extra}

[web.health]
path = "/health"
interval = "1s"
timeout = "1s"

[strategy]
{strategy}

[env]
VERSION = "{version}"
"#
        ),
    )
    .unwrap();
    path
}

/// Starts `ferry serve` on free loopback ports; returns the proxy and API addresses.
fn start_daemon(cleanup: &mut Cleanup, state: &Path) -> (SocketAddr, SocketAddr) {
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
    let proxy: SocketAddr = line
        .split("proxy on http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no proxy address in {line:?}"));
    let api: SocketAddr = std::fs::read_to_string(state.join("api-addr"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    (proxy, api)
}

#[test]
fn docker_canary_promote_crashing_revision_and_rollback_lose_no_request() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mut cleanup = Cleanup { daemon: None };
    cleanup.run();
    build_demo_image();
    let (proxy, _api) = start_daemon(&mut cleanup, &state);
    let v1 = write_spec(tmp.path(), "v1");
    let canary = write_spec_with(
        tmp.path(),
        "canary",
        "v2",
        "",
        "kind = \"canary\"\n[strategy.canary]\nsteps = [{ weight = 50 }, { pause = \"until-promoted\" }]",
    );
    let crash = write_spec_with(
        tmp.path(),
        "crash",
        "v3",
        "command = [\"crash-on-start\"]",
        "kind = \"rolling\"",
    );
    let out = ferry(&["--config", v1.to_str().unwrap(), "deploy"], &state);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(proxy, stop.clone());

    // Canary: 50% once healthy, then it waits for `ferry promote`.
    let out = ferry(
        &["--config", canary.to_str().unwrap(), "deploy", "--detach"],
        &state,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = wait_status(&canary, &state, Duration::from_secs(60), |s| {
        s["rollout"]["phase"]
            .as_str()
            .is_some_and(|p| p.contains("until promoted"))
    });
    assert_eq!(s["canary"], 2, "{s}");
    assert_eq!(s["stable"], 1, "{s}");
    assert_eq!(s["rollout"]["weights"]["canary"], 50, "{s}");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let (code, body) = get(proxy, "/", None).unwrap();
        assert_eq!(code, 200);
        seen.insert(if body.contains("v2") { "v2" } else { "v1" });
    }
    assert_eq!(seen.len(), 2, "both revisions serve at 50%: {seen:?}");
    // One rollout per app+env: a second deploy is refused while the canary waits...
    let out = ferry(&["--config", v1.to_str().unwrap(), "deploy"], &state);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("in progress"),
        "{}",
        text(&out.stderr)
    );
    // ...and so is one through a second daemon sharing the store: the store's lock.
    let other_state = tmp.path().join("other");
    let mut other = Cleanup { daemon: None };
    let db = state.join("state.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0"])
        .args(["--store", db.to_str().unwrap()])
        .env("FERRY_STATE_DIR", &other_state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("a second ferry serve starts");
    let stdout = child.stdout.take().unwrap();
    other.daemon = Some(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let out = ferry(&["--config", v1.to_str().unwrap(), "deploy"], &other_state);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("is locked by"),
        "{}",
        text(&out.stderr)
    );
    other.stop_daemon();
    assert_eq!(
        status(&canary, &state)["canary"],
        2,
        "the first rollout still runs"
    );
    let out = ferry(&["--config", canary.to_str().unwrap(), "promote"], &state);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = wait_status(&canary, &state, Duration::from_secs(60), |s| {
        s["rollout"]["finished"] == true
    });
    assert_eq!(s["stable"], 2, "{s}");
    assert_eq!(s["rollout"]["outcome"]["outcome"], "promoted", "{s}");

    // A revision whose containers exit at once: rolled back, exit 1, v2 keeps serving.
    let out = ferry(&["--config", crash.to_str().unwrap(), "deploy"], &state);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("rolled back"), "{stderr}");
    let s = status(&crash, &state);
    assert_eq!(s["stable"], 2, "{s}");

    // `ferry rollback` with nothing running: a fast-track rollout back to revision 1.
    let out = ferry(&["--config", crash.to_str().unwrap(), "rollback"], &state);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = wait_status(&crash, &state, Duration::from_secs(60), |s| {
        s["rollout"]["revision"] == 1 && s["rollout"]["finished"] == true
    });
    assert_eq!(s["stable"], 1, "{s}");
    let (code, body) = get(proxy, "/", None).unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("v1"), "{body}");

    // `ferry abort` during a canary pause: back to stable, outcome aborted.
    let out = ferry(
        &["--config", canary.to_str().unwrap(), "deploy", "--detach"],
        &state,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_status(&canary, &state, Duration::from_secs(60), |s| {
        s["rollout"]["phase"]
            .as_str()
            .is_some_and(|p| p.contains("until promoted"))
    });
    let out = ferry(&["--config", canary.to_str().unwrap(), "abort"], &state);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = wait_status(&canary, &state, Duration::from_secs(60), |s| {
        s["rollout"]["finished"] == true
    });
    assert_eq!(s["rollout"]["outcome"]["outcome"], "aborted", "{s}");
    assert_eq!(s["stable"], 1, "{s}");
    let (code, body) = get(proxy, "/", None).unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("v1"), "{body}");
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = loader.join().unwrap();
    assert!(
        failed.is_empty(),
        "{} failed of {}: {failed:?}",
        failed.len(),
        ok
    );
    let out = ferry(
        &[
            "--config",
            crash.to_str().unwrap(),
            "--output",
            "json",
            "history",
        ],
        &state,
    );
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Revisions, newest first: 4 (aborted canary), 3 (crashed), 2, 1 (live again).
    assert_eq!(history[0]["status"], "failed", "{history}");
    assert_eq!(history[1]["status"], "failed", "{history}");
    assert_eq!(history[2]["status"], "superseded", "{history}");
    assert_eq!(history[3]["status"], "live", "{history}");
    assert!(
        history[1]["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{history}"
    );
    cleanup.run();
    assert!(containers().is_empty(), "containers left behind");
    eprintln!(
        "canary, promote, a crashing revision and a rollback: {ok} requests under load, 0 failed"
    );
}

#[test]
fn docker_two_rolling_deploys_under_load_lose_no_request() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mut cleanup = Cleanup { daemon: None };
    cleanup.run(); // leftovers of an earlier, interrupted run
    build_demo_image();

    let (proxy, api) = start_daemon(&mut cleanup, &state);

    // The API wants the token: 401 with a JSON error without it.
    let (code, body) = get(api, "/v1/health", None).unwrap();
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("\"error\""), "{body}");
    let token = std::fs::read_to_string(state.join("token")).unwrap();
    let (code, _) = get(api, "/v1/health", Some(token.trim())).unwrap();
    assert_eq!(code, 200);

    let v1 = write_spec(tmp.path(), "v1");
    let v2 = write_spec(tmp.path(), "v2");
    let out = ferry(&["--config", v1.to_str().unwrap(), "deploy"], &state);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let (code, body) = get(proxy, "/", None).unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("v1"), "{body}");

    // Load for the whole second deploy: every request must succeed.
    let stop = Arc::new(AtomicBool::new(false));
    let load = load(proxy, stop.clone());
    let out = ferry(&["--config", v2.to_str().unwrap(), "deploy"], &state);
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = load.join().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        failed.is_empty(),
        "{} failed of {}: {failed:?}",
        failed.len(),
        ok
    );
    assert!(ok > 20, "the load loop sent only {ok} requests");
    for _ in 0..10 {
        let (code, body) = get(proxy, "/", None).unwrap();
        assert_eq!(code, 200);
        assert!(body.contains("v2"), "{body}");
    }

    let out = ferry(
        &[
            "--config",
            v2.to_str().unwrap(),
            "--output",
            "json",
            "status",
        ],
        &state,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["stable"], 2, "{status}");
    assert_eq!(status["canary"], serde_json::Value::Null, "{status}");
    assert_eq!(status["rollout"]["finished"], true, "{status}");
    assert_eq!(status["urls"][0], format!("http://{proxy}/"), "{status}");
    // The old replicas are drained, then stopped, after traffic left them.
    let deadline = Instant::now() + Duration::from_secs(30);
    while containers().len() != 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(containers().len(), 2, "only the two replicas of v2 run");

    let out = ferry(
        &[
            "--config",
            v2.to_str().unwrap(),
            "--output",
            "json",
            "history",
        ],
        &state,
    );
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(history[0]["status"], "live", "{history}");
    assert_eq!(history[1]["status"], "superseded", "{history}");

    cleanup.run();
    assert!(containers().is_empty(), "containers left behind");
    eprintln!(
        "two deploys, {ok} requests under load, 0 failed, {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn deploy_without_a_daemon_exits_3_naming_ferry_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path(), "v1");
    let state = tmp.path().join("state");
    // No token: no daemon was ever started here.
    let out = ferry(&["--config", spec.to_str().unwrap(), "deploy"], &state);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("ferry serve"),
        "{}",
        text(&out.stderr)
    );
    // A token and an address, but nobody listening.
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("token"), "x".repeat(64)).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    std::fs::write(state.join("api-addr"), addr.to_string()).unwrap();
    let out = ferry(&["--config", spec.to_str().unwrap(), "status"], &state);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no ferry daemon answers"), "{stderr}");
    assert!(stderr.contains("ferry serve"), "{stderr}");
}

#[test]
fn docker_restarted_daemon_routes_the_live_revision_then_blue_green() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mut cleanup = Cleanup { daemon: None };
    cleanup.run();
    build_demo_image();
    let (_, _) = start_daemon(&mut cleanup, &state);
    let v1 = write_spec(tmp.path(), "v1");
    let v2 = write_spec(tmp.path(), "v2");
    let out = ferry(&["--config", v1.to_str().unwrap(), "deploy"], &state);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A graceful stop leaves the replicas running; the next daemon routes them again.
    cleanup.stop_daemon();
    assert_eq!(containers().len(), 2);
    let (proxy, _) = start_daemon(&mut cleanup, &state);
    let (code, body) = get(proxy, "/", None).unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("v1"), "{body}");
    assert_eq!(status(&v1, &state)["stable"], 1);

    // And the next deploy is a rolling update from the adopted revision.
    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(proxy, stop.clone());
    let out = ferry(&["--config", v2.to_str().unwrap(), "deploy"], &state);
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = loader.join().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("from revision 1"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        failed.is_empty(),
        "{} failed of {}: {failed:?}",
        failed.len(),
        ok
    );

    // Blue-green: the full new set, smoke checks against it, one switch, old set warm
    // for 2 s, then removed.
    let v3 = write_spec_with(
        tmp.path(),
        "v3",
        "v3",
        "",
        "kind = \"blue-green\"\n[strategy.blue_green]\nscale_down_delay = \"2s\"\n\
         smoke = [{ path = \"/health\", status = 200 }, { path = \"/\", body_contains = \"v3\" }]",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(proxy, stop.clone());
    let out = ferry(&["--config", v3.to_str().unwrap(), "deploy"], &state);
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = loader.join().unwrap();
    assert!(
        text(&out.stdout).contains("blue-green"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        failed.is_empty(),
        "{} failed of {}: {failed:?}",
        failed.len(),
        ok
    );
    let (code, body) = get(proxy, "/", None).unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("v3"), "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while containers().len() != 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(containers().len(), 2, "only the blue-green's new set runs");
    cleanup.run();
    assert!(containers().is_empty(), "containers left behind");
}

/// A canary spec of the demo with `FAIL_RATE` and the `errors` analysis after a 50% step.
fn analysis_spec(dir: &Path, name: &str, version: &str, fail_rate: &str) -> PathBuf {
    let path = write_spec_with(
        dir,
        name,
        version,
        "",
        "kind = \"canary\"\n[strategy.canary]\nsteps = [{ weight = 50 }, { analysis = \"errors\" }]",
    );
    let mut spec = std::fs::read_to_string(&path).unwrap();
    spec.push_str(&format!(
        r#"FAIL_RATE = "{fail_rate}"

[analysis.errors]
interval = "2s"
min_samples = 50
measurements = 2
timebox = "30s"
on_inconclusive = "rollback"
metrics = [{{ name = "error rate", kind = "error-rate", max_relative = 1.5, allowed_increase = 0.02 }}]
"#
    ));
    std::fs::write(&path, spec).unwrap();
    path
}

#[test]
fn docker_canary_analysis_rolls_back_a_failing_revision_and_promotes_a_healthy_one() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mut cleanup = Cleanup { daemon: None };
    cleanup.run();
    build_demo_image();
    let (proxy, _api) = start_daemon(&mut cleanup, &state);
    let v1 = write_spec(tmp.path(), "v1");
    let out = ferry(&["--config", v1.to_str().unwrap(), "deploy"], &state);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // v2 fails every 5th request: the analysis sees it against v1 and rolls back.
    let failing = analysis_spec(tmp.path(), "failing", "v2", "0.2");
    let stop = Arc::new(AtomicBool::new(false));
    let loader = recorded_load(
        proxy,
        stop.clone(),
        1,
        Duration::from_millis(2),
        Duration::from_secs(80),
    );
    let out = ferry(&["--config", failing.to_str().unwrap(), "deploy"], &state);
    let rolled_back = Instant::now();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}{stderr}", text(&out.stdout));
    assert!(stderr.contains("rolled back"), "{stderr}");
    assert!(stderr.contains("error rate"), "{stderr}");
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let samples = loader.join().unwrap();
    let s = status(&failing, &state);
    assert_eq!(s["stable"], 1, "{s}");
    let explained = s["rollout"]["analysis"].to_string();
    assert!(explained.contains("error rate"), "{s}");
    for _ in 0..20 {
        let (code, body) = get(proxy, "/", None).unwrap();
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("v1"), "{body}");
    }
    assert!(
        samples
            .iter()
            .filter(|x| x.at > rolled_back)
            .all(|x| !x.failed() && !x.from("v2")),
        "after the rollback every response comes from v1"
    );
    let canary: Vec<&Sample> = {
        let first = samples.iter().position(|x| x.from("v2") || x.failed());
        let last = samples.iter().rposition(|x| x.from("v2") || x.failed());
        match (first, last) {
            (Some(a), Some(b)) => samples[a..=b].iter().collect(),
            _ => Vec::new(),
        }
    };
    let failed = canary.iter().filter(|x| x.failed()).count();
    let during = canary.len();
    assert!(during > 0, "the canary served no request");
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let bound = 0.5 * 0.2 * during as f64 * 2.0 + 10.0;
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let failed_f = failed as f64;
    assert!(
        failed_f <= bound,
        "{failed} failed of {during} during the canary (bound {bound})"
    );
    let out = ferry(
        &[
            "--config",
            failing.to_str().unwrap(),
            "--output",
            "json",
            "history",
        ],
        &state,
    );
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(history[0]["status"], "failed", "{history}");
    assert!(
        history[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("error rate")),
        "{history}"
    );

    // v3 fails nothing: two passing measurements promote it.
    let healthy = analysis_spec(tmp.path(), "healthy", "v3", "0");
    let stop = Arc::new(AtomicBool::new(false));
    let loader = recorded_load(
        proxy,
        stop.clone(),
        1,
        Duration::from_millis(2),
        Duration::from_secs(80),
    );
    let out = ferry(&["--config", healthy.to_str().unwrap(), "deploy"], &state);
    stop.store(true, Ordering::Relaxed);
    let healthy_samples = loader.join().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let s = status(&healthy, &state);
    assert_eq!(s["stable"], 3, "{s}");
    assert!(
        s["rollout"]["analysis"].to_string().contains("passed"),
        "{s}"
    );
    let healthy_failed = healthy_samples.iter().filter(|x| x.failed()).count();
    assert_eq!(
        healthy_failed, 0,
        "no request fails during a healthy canary"
    );
    cleanup.run();
    assert!(containers().is_empty(), "containers left behind");
    eprintln!(
        "canary analysis: {failed} of {during} requests failed during the failing canary \
         (bound {bound:.0}); rolled back; the healthy canary promoted with {} requests, 0 failed",
        healthy_samples.len()
    );
}
