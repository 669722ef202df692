//! Deploy hooks and worker roles on the real engine: `pre_deploy` runs once in a one-off
//! container of the new image before traffic moves (and a failing one moves none), and
//! `[workers.<name>]` containers roll with the release, the old ones stopped with their
//! own stop signal.

#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use support::{
    DemoSpec, deploy, deploy_ok, derived_image, docker, docker_test, ferry, get, load, text,
    timelines,
};

const SECRET: &str = "pg-pass-7f3a91";

struct Release<'a> {
    app: &'a str,
    image: &'a str,
    version: &'a str,
    migrate: &'a str,
    worker: bool,
}

/// The release's spec in `dir/ferry.toml`: one web replica, the `DB_PASSWORD` secret, a
/// `pre_deploy` hook running the demo's `migrate` (`MIGRATE` says whether it fails) and,
/// with `worker`, a `mailer` worker stopped with SIGINT.
fn write_spec(dir: &Path, r: &Release<'_>) -> PathBuf {
    let worker = if r.worker {
        "\n[workers.mailer]\ncommand = [\"worker\"]\nstop_signal = \"SIGINT\"\nstop_timeout = \"5s\"\n"
    } else {
        ""
    };
    DemoSpec::new(r.app, r.image)
        .top_level("secrets = [\"DB_PASSWORD\"]")
        .replicas(1)
        .timeouts("2s", "2s")
        .version(r.version)
        .env(&format!("MIGRATE = \"{}\"", r.migrate))
        .tail(&format!(
            "\n[hooks]\npre_deploy = [\"migrate\"]\ntimeout = \"30s\"\n{worker}"
        ))
        .write(dir)
}

/// `ferry secrets set DB_PASSWORD` (to [`SECRET`]) for the app of `spec`.
fn set_secret(spec: &Path, state: &Path) {
    let set = ferry(
        &[
            "--config",
            spec.to_str().unwrap(),
            "secrets",
            "set",
            "DB_PASSWORD",
        ],
        state,
        &format!("{SECRET}\n"),
    );
    assert!(set.status.success(), "{}", text(&set.stderr));
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `docker ps` lines (`name revision image state`) of the app's containers of `role`.
fn role_containers(app: &str, role: &str) -> Vec<String> {
    let out = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=ferry.app={app}"),
        "--filter",
        &format!("label=ferry.role={role}"),
        "--format",
        "{{.Names}} {{.Label \"ferry.revision\"}} {{.Image}} {{.State}}",
    ]);
    text(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn docker_pre_deploy_hook_runs_once_in_the_new_image_and_workers_roll() {
    const APP: &str = "hookroll";
    const V1: &str = "ferry-hookroll-test:v1";
    const V2: &str = "ferry-hookroll-test:v2";
    let (tmp, state, mut daemon) = docker_test(APP, V1);
    derived_image(V1, V2, "v2");
    let dir = tmp.path().join("app");
    let release = |image, version| Release {
        app: APP,
        image,
        version,
        migrate: "ok",
        worker: true,
    };
    let spec = write_spec(&dir, &release(V1, "v1"));
    daemon.start(&state);
    set_secret(&spec, &state);

    deploy_ok(&spec, &state, &[]);
    let workers = role_containers(APP, "mailer");
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert!(
        workers[0].contains(" 1 ferry-hookroll-test:v1 running"),
        "{workers:?}"
    );

    let since = unix_now();
    let spec = write_spec(&dir, &release(V2, "v2"));
    deploy_ok(&spec, &state, &[]);
    let until = unix_now() + 1;

    // The hook ran in exactly one container, created from the new image, now removed.
    let created = docker(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        &format!("label=ferry.app={APP}"),
        "--filter",
        "label=ferry.role=hook",
        "--filter",
        "event=create",
        "--format",
        "{{.Actor.Attributes.image}}",
    ]);
    let images: Vec<String> = text(&created.stdout).lines().map(str::to_owned).collect();
    assert_eq!(images, [V2], "{}", text(&created.stderr));
    assert!(role_containers(APP, "hook").is_empty());

    // Its output is in the timeline: the new env, the secret as a file, never its value.
    let timeline = timelines(&state, APP).pop().unwrap().join("\n");
    assert!(
        timeline.contains("pre_deploy hook `migrate` exited with code 0")
            && timeline.contains("hello migrate v2: applying migrations")
            && timeline.contains("secret files readable: [DB_PASSWORD]"),
        "{timeline}"
    );
    assert!(!timeline.contains(SECRET), "{timeline}");

    // The worker rolled: only the new one runs, labelled with its role and revision; the
    // old one got SIGINT (its stop signal) and exited cleanly.
    let workers = role_containers(APP, "mailer");
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert!(
        workers[0].contains(" 2 ferry-hookroll-test:v2 running"),
        "{workers:?}"
    );
    let stopped = timeline
        .lines()
        .find(|l| l.starts_with("stopped worker") && l.contains("revision 1"))
        .unwrap_or_else(|| panic!("no stop note for the old worker in {timeline}"));
    assert!(
        stopped.contains("with SIGINT: exit code 0") && stopped.contains("signal 2"),
        "{stopped}"
    );
    let web = role_containers(APP, "web");
    assert_eq!(web.len(), 1, "{web:?}");
    assert!(
        web[0].contains(" 2 ferry-hookroll-test:v2 running"),
        "{web:?}"
    );
}

#[test]
fn docker_failing_pre_deploy_hook_aborts_before_any_traffic_moves() {
    const APP: &str = "hookfail";
    const IMAGE: &str = "ferry-hookfail-test:hello";
    let (tmp, state, mut daemon) = docker_test(APP, IMAGE);
    let dir = tmp.path().join("app");
    let release = |version, migrate| Release {
        app: APP,
        image: IMAGE,
        version,
        migrate,
        worker: true,
    };
    let spec = write_spec(&dir, &release("v1", "ok"));
    let config = spec.to_str().unwrap();
    let proxy = daemon.start(&state);
    set_secret(&spec, &state);
    deploy_ok(&spec, &state, &[]);

    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load(proxy, stop.clone());
    let spec = write_spec(&dir, &release("v2", "fail"));
    let out = deploy(&spec, &state, &[]);
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = traffic.join().unwrap();

    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("pre_deploy hook `migrate` exited with code 1")
            && err.contains("migration 0002 failed"),
        "{err}"
    );
    assert!(
        failed.is_empty(),
        "{} failed requests: {failed:?}",
        failed.len()
    );
    assert!(ok > 0, "the load loop got no answer");
    let (code, body) = get(proxy, "/", None).unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("v1"), "{body}");

    // Nothing of revision 2 was left running: no replica, no worker, no hook container.
    for role in ["web", "mailer", "hook"] {
        let left: Vec<String> = role_containers(APP, role)
            .into_iter()
            .filter(|c| !c.contains(" 1 "))
            .collect();
        assert!(left.is_empty(), "{role}: {left:?}");
    }
    assert_eq!(role_containers(APP, "mailer").len(), 1);

    let history = ferry(
        &["--config", config, "--output", "json", "history"],
        &state,
        "",
    );
    let revisions: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    let second = revisions
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["number"] == 2)
        .unwrap_or_else(|| panic!("{revisions:#}"));
    assert_eq!(second["status"], "failed", "{second:#}");
    assert!(
        second["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("pre_deploy hook `migrate`"),
        "{second:#}"
    );
    let timeline = timelines(&state, APP).pop().unwrap().join("\n");
    assert!(timeline.contains("migration 0002 failed"), "{timeline}");
    assert!(!timeline.contains(SECRET), "{timeline}");
}

#[test]
fn docker_failing_post_deploy_hook_is_noted_and_the_revision_stays_live() {
    const APP: &str = "hookpost";
    const IMAGE: &str = "ferry-hookpost-test:hello";
    let (tmp, state, mut daemon) = docker_test(APP, IMAGE);
    let dir = tmp.path().join("app");
    let spec = write_spec(
        &dir,
        &Release {
            app: APP,
            image: IMAGE,
            version: "v1",
            migrate: "fail",
            worker: false,
        },
    );
    // The same release, with its hook after the rollout instead of before it.
    let text_of_spec = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(
        &spec,
        text_of_spec.replace("pre_deploy = [\"migrate\"]", "post_deploy = [\"migrate\"]"),
    )
    .unwrap();
    let proxy = daemon.start(&state);
    set_secret(&spec, &state);

    // The rollout succeeds: a post_deploy hook runs after the revision is live.
    deploy_ok(&spec, &state, &[]);

    // Its failure lands in the timeline (it may finish after `ferry deploy` returned)...
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let timeline = loop {
        let timeline = timelines(&state, APP).pop().unwrap_or_default().join("\n");
        if timeline.contains("post_deploy hook `migrate`") {
            break timeline;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no post_deploy note within 60 s: {timeline}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    assert!(
        timeline.contains("post_deploy hook `migrate` exited with code 1")
            && timeline.contains("migration 0002 failed"),
        "{timeline}"
    );
    assert!(!timeline.contains(SECRET), "{timeline}");
    // ...rolls nothing back, and leaves no hook container behind.
    let (code, body) = get(proxy, "/", None).unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("version v1"), "{body}");
    let live = support::status(&spec, &state);
    assert_eq!(live["stable"], 1, "{live}");
    assert!(role_containers(APP, "hook").is_empty());
}
