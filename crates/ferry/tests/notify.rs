//! `ferry serve` POSTs a JSON body per rollout event to the spec's `[notify]` webhooks:
//! a receiver subscribed to two events sees `deploy-started` then `deploy-succeeded`; an
//! https receiver (its CA given with `--webhook-ca`) sees a canary's per-step events in
//! order.

#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::webhook::{receiver, tls_receiver};
use support::{DemoSpec, deploy_ok, docker_test};

const APP: &str = "notifytest";
const IMAGE: &str = "ferry-notify-test:hello";

/// A rolling spec of the demo (one replica, no `VERSION`) in `dir/ferry.toml` whose only
/// webhook, at `hook`, is subscribed to `deploy-started` and `deploy-succeeded`.
fn write_spec(dir: &Path, hook: SocketAddr) -> PathBuf {
    DemoSpec::new(APP, IMAGE)
        .replicas(1)
        .timeouts("1s", "2s")
        .tail(&format!(
            r#"
[notify]
webhooks = [{{ url = "http://{hook}/hook", events = ["deploy-started", "deploy-succeeded"] }}]
"#
        ))
        .write(dir)
}

#[test]
fn docker_daemon_posts_start_and_success_to_webhooks() {
    let (tmp, state, mut daemon) = docker_test(APP, IMAGE);
    let (hook, seen) = receiver();
    let spec = write_spec(&tmp.path().join("app"), hook);
    daemon.start(&state);

    deploy_ok(&spec, &state, &[]);

    // Delivery is in the background: wait (bounded) for both events.
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let bodies = seen.lock().unwrap().clone();
    let events: Vec<&str> = bodies.iter().filter_map(|b| b["event"].as_str()).collect();
    assert_eq!(
        events,
        ["deploy-started", "deploy-succeeded"],
        "{bodies:#?}"
    );
    for body in &bodies {
        assert_eq!(body["_request"], "POST /hook HTTP/1.1", "{body}");
        assert_eq!(body["app"], APP, "{body}");
        assert_eq!(body["env"], "default", "{body}");
        assert_eq!(body["revision"], 1, "{body}");
        assert_eq!(body["strategy"], "rolling", "{body}");
        let at = body["at"].as_str().unwrap_or_default();
        assert!(at.ends_with('Z') && at.contains('T'), "{body}");
        assert!(body["summary"].is_string(), "{body}");
    }
    assert!(bodies[0].get("reason").is_none(), "{bodies:#?}");
}

#[test]
fn docker_https_webhook_receives_a_canarys_step_events_in_order() {
    const APP: &str = "notifytls";
    const IMAGE: &str = "ferry-notifytls-test:hello";
    let (tmp, state, mut daemon) = docker_test(APP, IMAGE);
    let (url, ca, seen) = tls_receiver(tmp.path());
    let dir = tmp.path().join("app");
    // A two-step canary (20%, 60%) whose only webhook, the receiver, gets every event.
    let spec = DemoSpec::new(APP, IMAGE)
        .replicas(1)
        .timeouts("1s", "2s")
        .strategy(
            "kind = \"canary\"\n\n[strategy.canary]\nsteps = [{ weight = 20 }, { weight = 60 }]",
        )
        .tail(&format!("\n[notify]\nwebhooks = [{{ url = \"{url}\" }}]\n"));
    daemon.start_with_env(&state, &[("FERRY_WEBHOOK_CA", ca.to_str().unwrap())]);
    deploy_ok(&spec.clone().version("v1").write(&dir), &state, &[]);
    deploy_ok(&spec.version("v2").write(&dir), &state, &[]);

    // Delivery is in the background: wait (bounded) for revision 2's success.
    let done = |bodies: &[serde_json::Value]| {
        bodies
            .iter()
            .any(|b| b["revision"] == 2 && b["event"] == "deploy-succeeded")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(&seen.lock().unwrap()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let bodies = seen.lock().unwrap().clone();
    let lines: Vec<String> = bodies
        .iter()
        .filter(|b| b["revision"] == 2)
        .map(|b| {
            let mut line = b["event"].as_str().unwrap_or("?").to_owned();
            if let Some(label) = b["step"]["label"].as_str() {
                line.push_str(&format!(
                    " {}/{} {label}",
                    b["step"]["number"], b["step"]["of"]
                ));
            }
            if let Some(w) = b["weights"]["canary"].as_u64() {
                line.push_str(&format!(" {w}"));
            }
            line
        })
        .collect();
    let expected = [
        "deploy-started",
        "step-started 1/",
        "step-finished 1/",
        "step-started 2/8 weight 20%",
        "step-finished 2/8 weight 20%",
        "weight-changed 20",
        "step-started 4/8 weight 60%",
        "step-finished 4/8 weight 60%",
        "weight-changed 60",
        "weight-changed 100",
        "deploy-succeeded",
    ];
    let mut rest = lines.iter();
    for want in expected {
        assert!(
            rest.any(|line| line.starts_with(want)),
            "{want:?} missing or out of order in {lines:#?}"
        );
    }
    assert_eq!(
        lines.first().map(String::as_str),
        Some("deploy-started"),
        "{lines:#?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("deploy-succeeded"),
        "{lines:#?}"
    );
    let steps: Vec<&String> = lines.iter().filter(|l| l.starts_with("step-")).collect();
    assert!(
        steps.iter().any(|l| l.contains("weight 20%"))
            && steps.iter().any(|l| l.contains("weight 60%")),
        "{lines:#?}"
    );
}
