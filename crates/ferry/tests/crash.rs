//! Crash safety against the real Docker engine: `kill -9` of `ferry serve` in the middle
//! of a rollout, then a restart with the same state directory and proxy address. The
//! interrupted rollout resumes from its persisted state (a canary in its pause keeps its
//! replicas and weights and completes on `ferry promote`; a rolling deploy caught while a
//! replica was starting removes the half-started one, starts it again and finishes) or,
//! when the canary's container was lost meanwhile, rolls back with the reason; no orphan
//! container is left, and the deploy lock is re-owned, then released.
//!
//! A load loop of fresh connections runs through the proxy across the whole restart. The
//! data plane dies with the daemon, so requests fail while no process listens (counted
//! and printed); from the moment the new daemon is ready, none may fail.

#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::{
    Daemon, DemoSpec, Sample, app_containers, deploy_ok, docker, docker_test, ferry, free_addr,
    get, history, recorded_load, status, text, timeline, wait_containers, wait_status,
};

const IMAGE: &str = "ferry-crash-test:hello";

/// A spec of the demo for `app` in `dir/<name>/ferry.toml` (2 replicas, `VERSION` =
/// `name`).
fn write_spec(dir: &Path, app: &str, name: &str, env_extra: &str, strategy: &str) -> PathBuf {
    DemoSpec::new(app, IMAGE)
        .strategy(strategy)
        .version(name)
        .env(env_extra)
        .write(&dir.join(name))
}

/// Starts the daemon on `listen`, deploys v1 (rolling) and waits for it, then starts the
/// deploy of v2 (`v2_env` lines in its `[env]`, `v2_strategy` its `[strategy]`) without
/// waiting; returns the proxy's address and v2's spec.
fn deploy_v1_then_start_v2(
    daemon: &mut Daemon,
    dir: &Path,
    state: &Path,
    listen: &str,
    app: &str,
    v2_env: &str,
    v2_strategy: &str,
) -> (SocketAddr, PathBuf) {
    let proxy = daemon.start_on(state, listen);
    let v1 = write_spec(dir, app, "v1", "", "kind = \"rolling\"");
    let v2 = write_spec(dir, app, "v2", v2_env, v2_strategy);
    deploy_ok(&v1, state, &[]);
    deploy_ok(&v2, state, &["--detach"]);
    (proxy, v2)
}

/// The load loop of a restart: one loop of fresh connections until `stop` (at most 80 s).
fn load(proxy: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Sample>> {
    recorded_load(
        proxy,
        stop,
        1,
        Duration::from_millis(5),
        Duration::from_secs(80),
    )
}

/// What went wrong with one request, if anything: any answer but a 200 counts.
fn error(s: &Sample) -> Option<String> {
    match s.code {
        Some(200) => None,
        Some(code) => Some(format!("{code}: {}", s.body)),
        None => Some(s.body.clone()),
    }
}

fn lock_of(spec: &Path, state: &Path) -> serde_json::Value {
    let out = ferry(
        &[
            "--config",
            spec.to_str().unwrap(),
            "--output",
            "json",
            "lock",
            "status",
            "--state",
            state.to_str().unwrap(),
        ],
        state,
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["lock"].clone()
}

/// The requests of a restart: failed while no daemon process ran (from the kill to the
/// new process's spawn), and every failure from the spawn on, split at the ready line.
struct Restart {
    without_process: usize,
    starting: Vec<String>,
    after_ready: Vec<String>,
    served_after_ready: usize,
}

fn restart_failures(
    samples: &[Sample],
    killed: Instant,
    spawned: Instant,
    ready: Instant,
) -> Restart {
    let failed = |from: Instant, to: Option<Instant>| -> Vec<String> {
        samples
            .iter()
            .filter(|s| s.at >= from && to.is_none_or(|t| s.at < t))
            .filter_map(error)
            .collect()
    };
    Restart {
        without_process: failed(killed, Some(spawned)).len(),
        starting: failed(spawned, Some(ready)),
        after_ready: failed(ready, None),
        served_after_ready: samples.iter().filter(|s| s.at >= ready).count(),
    }
}

/// Checks a restart's failures: none after the ready line, and while the new process
/// started only refused connections (nothing listened yet), never an HTTP error: once
/// its proxy accepts, it serves the routing table saved by the killed daemon.
fn check_restart(r: &Restart) {
    assert!(
        r.served_after_ready > 50,
        "only {} requests after the restart",
        r.served_after_ready
    );
    assert!(
        r.after_ready.is_empty(),
        "{} of {} requests failed after the new daemon was ready: {:?}",
        r.after_ready.len(),
        r.served_after_ready,
        r.after_ready
    );
    assert!(
        r.starting.iter().all(|e| !e.starts_with(char::is_numeric)),
        "an HTTP error while the new daemon started (routing not in place): {:?}",
        r.starting
    );
}

#[test]
fn docker_kill9_during_a_canary_pause_resumes_and_promote_completes_it() {
    const APP: &str = "crashcanary";
    let started = Instant::now();
    let (tmp, state, mut daemon) = docker_test(APP, IMAGE);
    let listen = free_addr();
    let (proxy, v2) = deploy_v1_then_start_v2(
        &mut daemon,
        tmp.path(),
        &state,
        &listen,
        APP,
        "",
        "kind = \"canary\"\n[strategy.canary]\nsteps = [{ weight = 50 }, { pause = \"until-promoted\" }]",
    );
    let paused = |s: &serde_json::Value| {
        s["rollout"]["phase"]
            .as_str()
            .is_some_and(|p| p.contains("until promoted"))
    };
    let s = wait_status(&v2, &state, Duration::from_secs(60), paused);
    assert!(paused(&s), "{s}");
    let mut before: Vec<String> = app_containers(APP).into_iter().map(|c| c.0).collect();
    before.sort();
    assert_eq!(before.len(), 3, "two of v1 and one canary: {before:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(proxy, stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    daemon.kill9();
    let killed = Instant::now();
    std::thread::sleep(Duration::from_millis(300)); // a supervisor's restart delay
    let spawned = Instant::now();
    let proxy_again = daemon.start_on(&state, &listen);
    let ready = Instant::now();
    assert_eq!(proxy_again, proxy);

    // The rollout resumed where it was: paused, the canary at 50%, the same containers.
    let s = status(&v2, &state);
    assert!(paused(&s), "{s}");
    assert_eq!(s["canary"], 2, "{s}");
    assert_eq!(s["stable"], 1, "{s}");
    assert_eq!(s["rollout"]["weights"]["canary"], 50, "{s}");
    let mut after: Vec<String> = app_containers(APP).into_iter().map(|c| c.0).collect();
    after.sort();
    assert_eq!(
        after, before,
        "the running replicas were adopted, none replaced"
    );
    let lock = lock_of(&v2, &state);
    assert!(
        lock["holder"]
            .as_str()
            .is_some_and(|h| h.starts_with("ferry-daemon:")),
        "the new daemon re-owned the lock: {lock}"
    );
    assert_eq!(lock["expired"], false, "{lock}");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let (code, body) = get(proxy, "/", None).unwrap();
        assert_eq!(code, 200, "{body}");
        seen.insert(if body.contains("v2") { "v2" } else { "v1" });
    }
    assert_eq!(seen.len(), 2, "both revisions serve at 50% again: {seen:?}");

    let out = ferry(&["--config", v2.to_str().unwrap(), "promote"], &state, "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = wait_status(&v2, &state, Duration::from_secs(60), |s| {
        s["rollout"]["finished"] == true
    });
    assert_eq!(s["rollout"]["outcome"]["outcome"], "promoted", "{s}");
    assert_eq!(s["stable"], 2, "{s}");
    let left = wait_containers(APP, "2", 2, Duration::from_secs(30));
    stop.store(true, Ordering::Relaxed);
    let samples = loader.join().unwrap();
    assert_eq!(left.len(), 2, "only v2's two replicas are left: {left:?}");
    assert!(
        left.iter()
            .all(|(_, rev, st)| rev == "2" && st == "running"),
        "{left:?}"
    );
    assert_eq!(
        lock_of(&v2, &state),
        serde_json::Value::Null,
        "lock released"
    );
    let notes = timeline(&state, APP);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("the daemon restarted: resuming")),
        "{notes:?}"
    );
    let r = restart_failures(&samples, killed, spawned, ready);
    check_restart(&r);
    daemon.clean_and_check();
    eprintln!(
        "kill -9 during a canary pause: {} requests refused in the {:.2}s without a daemon \
         process, {} refused in the {:.2}s the new one took to bind and recover, 0 of {} \
         failed after its ready line; resumed and promoted in {:.1}s overall",
        r.without_process,
        spawned.duration_since(killed).as_secs_f64(),
        r.starting.len(),
        ready.duration_since(spawned).as_secs_f64(),
        r.served_after_ready,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn docker_kill9_while_a_rolling_deploy_starts_a_replica_ends_consistent() {
    const APP: &str = "crashrolling";
    let started = Instant::now();
    let (tmp, state, mut daemon) = docker_test(APP, IMAGE);
    let listen = free_addr();
    // v2's health answers 503 for 5 s after start: the daemon dies while it starts.
    let (proxy, v2) = deploy_v1_then_start_v2(
        &mut daemon,
        tmp.path(),
        &state,
        &listen,
        APP,
        "READY_DELAY_MS = \"5000\"",
        "kind = \"rolling\"",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let half = loop {
        let c: Vec<_> = app_containers(APP)
            .into_iter()
            .filter(|(_, rev, st)| rev == "2" && st == "running")
            .collect();
        if !c.is_empty() || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(half.len(), 1, "one v2 replica starting: {half:?}");
    let half_id = text(&docker(&["inspect", "-f", "{{.Id}}", &half[0].0]).stdout)
        .trim()
        .to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(proxy, stop.clone());
    daemon.kill9();
    let killed = Instant::now();
    std::thread::sleep(Duration::from_millis(300)); // a supervisor's restart delay
    let spawned = Instant::now();
    daemon.start_on(&state, &listen);
    let ready = Instant::now();
    let adopted = docker(&["inspect", &half_id]).status.success();
    // The half-started replica was removed (not healthy when the daemon came back) and
    // started again, or adopted had it become healthy meanwhile; either way the rollout
    // goes on and finishes.
    let s = wait_status(&v2, &state, Duration::from_secs(60), |s| {
        s["rollout"]["finished"] == true
    });
    let outcome = s["rollout"]["outcome"]["outcome"].as_str().unwrap_or("");
    assert!(
        outcome == "promoted" || outcome == "rolled-back",
        "the rollout finished one way or the other: {s}"
    );
    let live = if outcome == "promoted" { "2" } else { "1" };
    assert_eq!(s["stable"].to_string(), live, "{s}");
    let left = wait_containers(APP, live, 2, Duration::from_secs(30));
    stop.store(true, Ordering::Relaxed);
    let samples = loader.join().unwrap();
    assert!(
        left.len() == 2
            && left
                .iter()
                .all(|(_, rev, st)| rev == live && st == "running"),
        "no orphan: only the live revision's two replicas run: {left:?}"
    );
    for _ in 0..10 {
        let (code, body) = get(proxy, "/", None).unwrap();
        assert_eq!(code, 200, "{body}");
        assert!(body.contains(&format!("v{live}")), "{body}");
    }
    assert_eq!(
        lock_of(&v2, &state),
        serde_json::Value::Null,
        "lock released"
    );
    let history = history(&v2, &state);
    let expected = if live == "2" { "live" } else { "failed" };
    assert_eq!(history[0]["status"], expected, "{history}");
    let notes = timeline(&state, APP);
    assert!(
        notes.iter().any(|n| n.contains("the daemon restarted")),
        "the timeline says why the rollout went on (or back): {notes:?}"
    );
    let r = restart_failures(&samples, killed, spawned, ready);
    check_restart(&r);
    daemon.clean_and_check();
    eprintln!(
        "kill -9 while a rolling deploy started a replica: the half-started replica was {}; \
         {outcome}; {} requests refused in the {:.2}s without a daemon process, {} in the \
         {:.2}s the new one took to bind and recover, 0 of {} failed after; {:.1}s overall",
        if adopted {
            "adopted (healthy by then)"
        } else {
            "removed and started again"
        },
        r.without_process,
        spawned.duration_since(killed).as_secs_f64(),
        r.starting.len(),
        ready.duration_since(spawned).as_secs_f64(),
        r.served_after_ready,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn docker_kill9_then_the_canary_lost_rolls_back_with_the_reason() {
    const APP: &str = "crashlost";
    let (tmp, state, mut daemon) = docker_test(APP, IMAGE);
    let listen = free_addr();
    let (proxy, v2) = deploy_v1_then_start_v2(
        &mut daemon,
        tmp.path(),
        &state,
        &listen,
        APP,
        "",
        "kind = \"canary\"\n[strategy.canary]\nsteps = [{ weight = 50 }, { pause = \"10m\" }]",
    );
    let s = wait_status(&v2, &state, Duration::from_secs(60), |s| {
        s["rollout"]["phase"]
            .as_str()
            .is_some_and(|p| p.contains("pause step"))
    });
    assert_eq!(s["rollout"]["weights"]["canary"], 50, "{s}");

    // The daemon dies, and while it is down the canary's container goes too.
    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(proxy, stop.clone());
    daemon.kill9();
    let killed = Instant::now();
    let canary: Vec<String> = app_containers(APP)
        .into_iter()
        .filter(|(_, rev, _)| rev == "2")
        .map(|c| c.0)
        .collect();
    assert_eq!(canary.len(), 1, "{canary:?}");
    let out = docker(&["rm", "-f", &canary[0]]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let spawned = Instant::now();
    daemon.start_on(&state, &listen);
    let ready = Instant::now();

    let s = wait_status(&v2, &state, Duration::from_secs(60), |s| {
        s["rollout"]["finished"] == true
    });
    assert_eq!(s["rollout"]["outcome"]["outcome"], "rolled-back", "{s}");
    assert_eq!(s["stable"], 1, "{s}");
    let left = wait_containers(APP, "1", 2, Duration::from_secs(30));
    assert!(
        left.len() == 2
            && left
                .iter()
                .all(|(_, rev, st)| rev == "1" && st == "running"),
        "only v1's two replicas run: {left:?}"
    );
    for _ in 0..10 {
        let (code, body) = get(proxy, "/", None).unwrap();
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("v1"), "{body}");
    }
    stop.store(true, Ordering::Relaxed);
    let samples = loader.join().unwrap();
    assert_eq!(
        lock_of(&v2, &state),
        serde_json::Value::Null,
        "lock released"
    );
    let history = history(&v2, &state);
    assert_eq!(history[0]["status"], "failed", "{history}");
    assert!(
        history[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no replica of 2 survived")),
        "{history}"
    );
    assert_eq!(history[1]["status"], "live", "{history}");
    let r = restart_failures(&samples, killed, spawned, ready);
    assert!(
        r.after_ready.is_empty(),
        "{} of {} requests failed after the new daemon was ready: {:?}",
        r.after_ready.len(),
        r.served_after_ready,
        r.after_ready
    );
    daemon.clean_and_check();
    eprintln!(
        "kill -9, canary container lost meanwhile: rolled back with the reason; {} requests \
         failed while no daemon ran, {} while the new one started ({} of them HTTP errors; \
         its saved table still named the lost canary), 0 of {} after its ready line",
        r.without_process,
        r.starting.len(),
        r.starting
            .iter()
            .filter(|e| e.starts_with(char::is_numeric))
            .count(),
        r.served_after_ready
    );
}
