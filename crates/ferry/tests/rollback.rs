//! Revisions and rollback against the real Docker engine, under a loopback load loop:
//! a blue-green deploy returns once the new revision has all traffic and keeps the old
//! one warm; `ferry rollback` to it is one switch that starts no container; after the
//! warm window it is a cold, health-gated start; image retention removes only old images
//! ferry built, never one in use or one it did not build.

#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::{Daemon, DemoSpec, deploy_ok, docker, docker_test, ferry, get, status, text};

/// Each scenario has its own app (and so its own containers and network), one image.
const IMAGE: &str = "ferry-rollback-test:hello";

/// A spec of the demo for `app` in `dir/<name>/ferry.toml`; `image` may be empty (the
/// deploy then passes `--image`), `strategy` goes into `[strategy]`.
fn write_spec(dir: &Path, app: &str, name: &str, image: &str, strategy: &str) -> PathBuf {
    DemoSpec::new(app, image)
        .strategy(strategy)
        .version(name)
        .write(&dir.join(name))
}

/// A deploy that must succeed, and how long `ferry deploy` took.
fn deploy(spec: &Path, state: &Path, extra: &[&str]) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let out = deploy_ok(spec, state, extra);
    (out, started.elapsed())
}

/// A load loop on fresh connections until `stop` (at most 80 s): successes, failures.
fn load(proxy: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u32, Vec<String>)> {
    support::load_for(
        proxy,
        stop,
        Duration::from_secs(80),
        Duration::from_millis(5),
    )
}

/// Every request of 20 is answered 200 by `version`.
fn assert_serves(proxy: SocketAddr, version: &str) {
    for _ in 0..20 {
        let (code, body) = get(proxy, "/", None).unwrap();
        assert_eq!(code, 200, "{body}");
        assert!(body.contains(version), "expected {version}: {body}");
    }
}

fn ids(daemon: &Daemon) -> BTreeSet<String> {
    daemon.containers().into_iter().collect()
}

/// Polls until `done` holds (at most 60 s); whether it did.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    done()
}

fn rollback(spec: &Path, state: &Path) -> (serde_json::Value, Duration) {
    let started = Instant::now();
    let out = ferry(
        &[
            "--config",
            spec.to_str().unwrap(),
            "--output",
            "json",
            "rollback",
        ],
        state,
        "",
    );
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let events: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["event"], "accepted", "{events:?}");
    // Exit 0 came once the rollout back was over: its target is live.
    let last = events.last().unwrap();
    assert_eq!(last["event"], "result", "{events:?}");
    assert_eq!(last["ok"], true, "{events:?}");
    assert_eq!(last["outcome"]["outcome"], "promoted", "{events:?}");
    assert_eq!(last["revision"], events[0]["revision"], "{events:?}");
    assert_eq!(last["stable"], events[0]["revision"], "{events:?}");
    (events[0].clone(), took)
}

#[test]
fn docker_warm_rollback_after_blue_green_is_one_switch_starting_no_container() {
    const APP: &str = "rbwarm";
    let (tmp, state, mut daemon) = docker_test(APP, IMAGE);
    let proxy = daemon.start(&state);
    // v1's own strategy keeps v2 warm 3 s after a rollback to v1.
    let v1 = write_spec(
        tmp.path(),
        APP,
        "v1",
        IMAGE,
        "kind = \"blue-green\"\n[strategy.blue_green]\nscale_down_delay = \"3s\"",
    );
    let v2 = write_spec(
        tmp.path(),
        APP,
        "v2",
        IMAGE,
        "kind = \"blue-green\"\n[strategy.blue_green]\nscale_down_delay = \"5m\"",
    );
    deploy(&v1, &state, &[]);

    // The blue-green deploy returns once v2 has all traffic, not after scale_down_delay.
    let (out, took) = deploy(&v2, &state, &[]);
    assert!(
        took < Duration::from_secs(300),
        "deploy waited out scale_down_delay ({took:?}): {}",
        text(&out.stdout)
    );
    assert_serves(proxy, "v2");
    let s = status(&v2, &state);
    assert_eq!(s["stable"], 2, "{s}");
    assert_eq!(s["warm"][0]["revision"], 1, "{s}");
    assert_eq!(s["warm"][0]["replicas"], 2, "{s}");
    let before = ids(&daemon);
    assert_eq!(before.len(), 4, "v1's set is still running, warm");

    // Warm rollback under load: one switch, no container started, no request lost.
    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(proxy, stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    let (accepted, took) = rollback(&v2, &state);
    assert_eq!(accepted["warm"], true, "{accepted}");
    assert_eq!(accepted["revision"], 1, "{accepted}");
    assert_serves(proxy, "v1");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = loader.join().unwrap();
    assert!(
        failed.is_empty(),
        "{} failed of {}: {failed:?}",
        failed.len(),
        ok
    );
    assert!(ok > 20, "the load loop sent only {ok} requests");
    let after = ids(&daemon);
    assert!(
        after.is_subset(&before),
        "the warm rollback started containers: before {before:?}, after {after:?}"
    );
    let s = status(&v1, &state);
    assert_eq!(s["stable"], 1, "{s}");

    // v2 is now the warm one, for v1's scale_down_delay (3 s); then the controller
    // drains and stops it, leaving v1's two replicas.
    assert_eq!(s["warm"][0]["revision"], 2, "{s}");
    assert!(
        eventually(|| ids(&daemon).len() == 2),
        "v2 still runs after its warm window: {:?}",
        ids(&daemon)
    );
    assert!(
        eventually(|| status(&v1, &state)["warm"]
            .as_array()
            .is_some_and(Vec::is_empty)),
        "status still lists a warm revision"
    );
    assert_serves(proxy, "v1");
    daemon.clean_and_check();
    eprintln!(
        "warm rollback: `ferry rollback` returned in {:.2}s, no container started, {ok} requests, 0 failed",
        took.as_secs_f64()
    );
}

#[test]
fn docker_cold_rollback_after_the_warm_window_starts_health_gated_replicas() {
    const APP: &str = "rbcold";
    let (tmp, state, mut daemon) = docker_test(APP, IMAGE);
    let proxy = daemon.start(&state);
    let v1 = write_spec(tmp.path(), APP, "v1", IMAGE, "kind = \"rolling\"");
    let v2 = write_spec(
        tmp.path(),
        APP,
        "v2",
        IMAGE,
        "kind = \"blue-green\"\n[strategy.blue_green]\nscale_down_delay = \"2s\"",
    );
    deploy(&v1, &state, &[]);
    deploy(&v2, &state, &[]);
    // After scale_down_delay the controller has stopped v1: only v2's set runs.
    assert!(
        eventually(|| ids(&daemon).len() == 2
            && status(&v2, &state)["warm"]
                .as_array()
                .is_some_and(Vec::is_empty)),
        "v1 was not stopped after its warm window: {:?}",
        ids(&daemon)
    );
    let before = ids(&daemon);

    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(proxy, stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    let (accepted, took) = rollback(&v2, &state);
    assert_eq!(accepted["warm"], false, "{accepted}");
    assert_serves(proxy, "v1");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = loader.join().unwrap();
    assert!(
        failed.is_empty(),
        "{} failed of {}: {failed:?}",
        failed.len(),
        ok
    );
    // New containers of v1 were started (and health-gated: the rollout only finished
    // once they were healthy, and no request failed meanwhile).
    let after = ids(&daemon);
    assert!(
        after.difference(&before).count() >= 2,
        "the cold rollback started no container: before {before:?}, after {after:?}"
    );
    // v1's spec is rolling with no keep_warm: v2 is stopped at once.
    assert!(eventually(|| ids(&daemon).len() == 2), "{:?}", ids(&daemon));
    assert_eq!(status(&v1, &state)["stable"], 1);
    daemon.clean_and_check();
    eprintln!(
        "cold rollback: `ferry rollback` returned in {:.2}s, {ok} requests, 0 failed",
        took.as_secs_f64()
    );
}

/// Builds `tag` FROM the demo image with `labels` (distinct labels make distinct images;
/// a per-run nonce keeps the build cache from handing back an image, and its creation
/// time, from an earlier run).
fn derived_image(tag: &str, labels: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut dockerfile = format!("FROM {IMAGE}\nLABEL test.nonce=\"{nonce}\"\n");
    for (k, v) in labels {
        dockerfile.push_str(&format!("LABEL {k}=\"{v}\"\n"));
    }
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    let out = docker(&["build", "-q", "-t", tag, dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn image_exists(tag: &str) -> bool {
    docker(&["image", "inspect", tag]).status.success()
}

/// Removes the scenario's images, whatever is left of them.
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        for tag in &self.0 {
            docker(&["rmi", "-f", tag]);
        }
    }
}

#[test]
fn docker_pruning_keeps_the_last_revisions_and_removes_only_old_ferry_images() {
    const APP: &str = "rbprune";
    let (tmp, state, mut daemon) = docker_test(APP, IMAGE);
    let tags: Vec<String> = (1..=4).map(|i| format!("{APP}:v{i}")).collect();
    let never = format!("{APP}:never-deployed");
    let foreign = format!("{APP}-foreign:1");
    let _images = Images(
        tags.iter()
            .cloned()
            .chain([never.clone(), foreign.clone()])
            .collect(),
    );
    // Images as `ferry build` labels them, one never deployed, and one ferry did not
    // build (no dev.ferry.app label).
    derived_image(&never, &[("dev.ferry.app", APP), ("test.n", "0")]);
    for (i, tag) in tags.iter().enumerate() {
        derived_image(
            tag,
            &[("dev.ferry.app", APP), ("test.n", &(i + 1).to_string())],
        );
    }
    derived_image(&foreign, &[("test.n", "foreign")]);
    let proxy = daemon.start(&state);

    // The spec names no image: `--image` stands in. Without it: a clear usage error.
    let spec = write_spec(
        tmp.path(),
        APP,
        "app",
        "",
        "kind = \"rolling\"\nretain_images = 2",
    );
    let out = ferry(&["--config", spec.to_str().unwrap(), "deploy"], &state, "");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--image"),
        "{}",
        text(&out.stderr)
    );
    for tag in &tags {
        deploy(&spec, &state, &["--image", tag]);
    }
    assert_serves(proxy, "app");
    // Revisions 4 and 3 are retained; 1, 2 and the never-deployed image are pruned; the
    // foreign image stays.
    assert!(
        eventually(|| !image_exists(&tags[0]) && !image_exists(&tags[1]) && !image_exists(&never)),
        "old ferry images were not pruned"
    );
    assert!(image_exists(&tags[2]) && image_exists(&tags[3]));
    assert!(
        image_exists(&foreign),
        "an image ferry did not build was removed"
    );
    assert!(image_exists(IMAGE), "the unlabelled base image was removed");

    // The pruning is in the timeline of the rollout that caused it (noted just after the
    // removals).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let notes = || -> Vec<String> {
        runtime.block_on(async {
            let store = ferry_store::Store::open(state.join("state.db").to_str().unwrap())
                .await
                .unwrap();
            let mut notes = Vec::new();
            for r in store.rollouts(APP, "default").await.unwrap() {
                for e in store.events(r.id).await.unwrap() {
                    notes.push(e.message.to_string());
                }
            }
            store.close().await;
            notes
        })
    };
    let removal = |image: &str| {
        notes()
            .iter()
            .any(|n| n.contains("removed") && n.contains(image))
    };
    assert!(
        eventually(|| removal(&format!("{APP}:v1")) && removal(&format!("{APP}:v2"))),
        "{:?}",
        notes()
    );
    daemon.clean_and_check();
}
