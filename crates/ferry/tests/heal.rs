//! Self-healing of the live revision against the real Docker engine: a replica removed
//! behind the daemon's back (`docker rm -f`) is replaced, health-gated, while a load loop
//! runs through the proxy; a replica removed while the daemon was down is started again by
//! the restarted daemon. Both events are named in the live revision's timeline and
//! `ferry status` shows the full replica count healthy again.

#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::{
    DemoSpec, app_containers, deploy_ok, docker, docker_test, free_addr, recorded_load, status,
    text, timeline, wait_containers, wait_status,
};

const IMAGE: &str = "ferry-heal-test:hello";

/// A rolling spec of the demo for `app` with 2 replicas in `dir/ferry.toml`.
fn write_spec(dir: &Path, app: &str) -> PathBuf {
    DemoSpec::new(app, IMAGE).version("v1").write(dir)
}

fn names(c: &[(String, String, String)]) -> Vec<String> {
    let mut n: Vec<String> = c.iter().map(|c| c.0.clone()).collect();
    n.sort();
    n
}

fn healthy(s: &serde_json::Value) -> bool {
    s["live"]["healthy"] == 2 && s["live"]["wanted"] == 2
}

#[test]
fn docker_heal_replaces_a_removed_live_replica_without_failed_requests() {
    const APP: &str = "heal-rm";
    let started = Instant::now();
    let (tmp, state, mut daemon) = docker_test(APP, IMAGE);
    let proxy = daemon.start(&state);
    let spec = write_spec(tmp.path(), APP);
    deploy_ok(&spec, &state, &[]);
    let before = names(&wait_containers(APP, "1", 2, Duration::from_secs(20)));
    assert_eq!(before.len(), 2, "{before:?}");
    let s = status(&spec, &state);
    assert!(healthy(&s), "{s}");

    let stop = Arc::new(AtomicBool::new(false));
    let loader = recorded_load(
        proxy,
        stop.clone(),
        2,
        Duration::from_millis(5),
        Duration::from_secs(50),
    );
    std::thread::sleep(Duration::from_millis(500));
    let victim = before[0].clone();
    let out = docker(&["rm", "-f", &victim]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let removed = Instant::now();

    // A replacement of revision 1 appears, and the proxy routes two healthy replicas.
    let replaced = |c: &[(String, String, String)]| {
        c.len() == 2
            && c.iter()
                .all(|(n, r, st)| n != &victim && r == "1" && st == "running")
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut now = app_containers(APP);
    while !replaced(&now) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        now = app_containers(APP);
    }
    assert!(replaced(&now), "no replacement for {victim}: {now:?}");
    let s = wait_status(&spec, &state, Duration::from_secs(30), healthy);
    let took = removed.elapsed();
    assert!(healthy(&s), "{s}");
    assert!(s["live"]["degraded"].is_null(), "{s}");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let samples = loader.join().unwrap();
    let failed: Vec<&str> = samples
        .iter()
        .filter(|s| s.failed())
        .map(|s| s.body.as_str())
        .collect();
    assert!(samples.len() > 100, "only {} requests", samples.len());
    assert!(
        failed.is_empty(),
        "{} of {} requests failed while a replica was removed and replaced: {failed:?}",
        failed.len(),
        samples.len()
    );
    let notes = timeline(&state, APP);
    assert!(
        notes.iter().any(|n| n.contains(&victim)
            && n.contains("its container was removed")
            && n.contains("replaced by")),
        "the timeline names the event: {notes:?}"
    );
    daemon.clean_and_check();
    eprintln!(
        "docker rm -f of a live replica: replaced and routed {:.1}s later, 0 of {} requests \
         failed; {:.1}s overall",
        took.as_secs_f64(),
        samples.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn docker_heal_after_a_daemon_restart_starts_the_missing_replica() {
    const APP: &str = "heal-restart";
    let started = Instant::now();
    let (tmp, state, mut daemon) = docker_test(APP, IMAGE);
    let listen = free_addr();
    daemon.start_on(&state, &listen);
    let spec = write_spec(tmp.path(), APP);
    deploy_ok(&spec, &state, &[]);
    let before = names(&wait_containers(APP, "1", 2, Duration::from_secs(20)));
    assert_eq!(before.len(), 2, "{before:?}");

    daemon.kill9();
    let out = docker(&["rm", "-f", &before[1]]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let proxy = daemon.start_on(&state, &listen);

    let after = names(&wait_containers(APP, "1", 2, Duration::from_secs(40)));
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        after.contains(&before[0]),
        "the survivor was adopted: {after:?}"
    );
    assert!(!after.contains(&before[1]), "{after:?}");
    let s = wait_status(&spec, &state, Duration::from_secs(30), healthy);
    assert!(healthy(&s), "{s}");
    for _ in 0..20 {
        let (code, body) = support::get(proxy, "/", None).unwrap();
        assert_eq!(code, 200, "{body}");
    }
    let notes = timeline(&state, APP);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("missing after the daemon restarted") && n.contains("replaced by")),
        "the timeline names the event: {notes:?}"
    );
    daemon.clean_and_check();
    eprintln!(
        "a replica removed while the daemon was down: started again after the restart; {:.1}s overall",
        started.elapsed().as_secs_f64()
    );
}
