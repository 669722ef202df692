//! Canary analysis end to end: `ferry serve` with the demo image on the real Docker engine,
//! real load through ferry's proxy, and the verdicts of `[analysis.<name>]` steps driving
//! the rollout. A canary failing 5% of its requests is rolled back by the error-rate rule
//! (and the failures users saw are counted against what its weight and exposure allow); a
//! canary twice as slow at p95 is rolled back by a rule relative to stable; ten canaries
//! identical to stable are all promoted; with too little traffic the step holds, then each
//! `on_inconclusive` policy does what it says.
//!
//! Heavy because each scenario starts containers and sends a few thousand requests; the
//! intervals are short (1–2 s) so the whole file stays under a few minutes.

#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::{
    Daemon, Sample, build_demo_image, ferry, get, history, recorded_load, status, text, wait_status,
};

const IMAGE: &str = "ferry-analysis-test:hello";

/// One revision of the demo: its version, fault injection and rollout.
struct Revision<'a> {
    version: &'a str,
    /// `[env]` lines beyond `VERSION` (FAIL_RATE, LATENCY_MS, ...).
    env: &'a str,
    /// `None`: a rolling first deploy; `Some(weight)`: a canary at `weight`% then the
    /// analysis `[analysis.canary]` given by `analysis`.
    canary: Option<u8>,
    /// The body of `[analysis.canary]`.
    analysis: &'a str,
}

/// Writes `dir/<version>/ferry.toml` for `app` and returns its path.
fn write_spec(dir: &Path, app: &str, rev: &Revision) -> PathBuf {
    let dir = dir.join(rev.version);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ferry.toml");
    let (strategy, analysis) = match rev.canary {
        None => ("kind = \"rolling\"".to_owned(), String::new()),
        Some(weight) => (
            format!(
                "kind = \"canary\"\n[strategy.canary]\n\
                 steps = [{{ weight = {weight} }}, {{ analysis = \"canary\" }}]"
            ),
            format!("\n[analysis.canary]\n{}\n", rev.analysis),
        ),
    };
    std::fs::write(
        &path,
        format!(
            r#"app = "{app}"
image = "{IMAGE}"

[web]
port = 8080
replicas = 1
drain_timeout = "2s"
stop_timeout = "2s"

[web.health]
path = "/health"
interval = "1s"
timeout = "1s"

[strategy]
{strategy}

[env]
VERSION = "{version}"
{env}
{analysis}"#,
            version = rev.version,
            env = rev.env,
        ),
    )
    .unwrap();
    path
}

fn deploy(spec: &Path, state: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--config", spec.to_str().unwrap(), "deploy"];
    args.extend_from_slice(extra);
    ferry(&args, state, "")
}

fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Starts a daemon for `app` with its state in `tmp` and deploys `v1` of the demo with
/// `env`, rolling; returns the guard and the proxy's address.
fn start_with_v1(app: &'static str, tmp: &Path, env: &str) -> (Daemon, std::net::SocketAddr) {
    let mut daemon = Daemon::new(app);
    build_demo_image(IMAGE);
    let proxy = daemon.start(&tmp.join("state"));
    let v1 = write_spec(
        tmp,
        app,
        &Revision {
            version: "v1",
            env,
            canary: None,
            analysis: "",
        },
    );
    assert_ok(&deploy(&v1, &tmp.join("state"), &[]));
    (daemon, proxy)
}

/// The smallest `k` with P(X <= k) >= `confidence` for X ~ Binomial(`n`, `p`).
fn binomial_upper(n: usize, p: f64, confidence: f64) -> usize {
    // pmf(k + 1) = pmf(k) * (n - k) / (k + 1) * p / (1 - p), from pmf(0) = (1 - p)^n.
    #[expect(clippy::cast_precision_loss, reason = "request counts far below 2^52")]
    let nf = n as f64;
    let mut pmf = (1.0 - p).powf(nf);
    let mut cdf = pmf;
    let mut k = 0;
    while cdf < confidence && k < n {
        #[expect(clippy::cast_precision_loss, reason = "request counts far below 2^52")]
        let kf = k as f64;
        pmf *= (nf - kf) / (kf + 1.0) * p / (1.0 - p);
        cdf += pmf;
        k += 1;
    }
    k
}

#[test]
fn binomial_upper_bound_matches_known_quantiles() {
    // Reference values: scipy.stats.binom.ppf(0.999, n, p).
    assert_eq!(binomial_upper(1000, 0.01, 0.999), 21);
    assert_eq!(binomial_upper(100, 0.5, 0.999), 65);
    assert_eq!(binomial_upper(10, 0.0, 0.999), 0);
}

/// The samples from the first to the last answered by (or failed in) the canary `version`.
fn exposure<'a>(samples: &'a [Sample], version: &str) -> &'a [Sample] {
    let first = samples.iter().position(|x| x.from(version) || x.failed());
    let last = samples.iter().rposition(|x| x.from(version) || x.failed());
    match (first, last) {
        (Some(a), Some(b)) => &samples[a..=b],
        _ => &[],
    }
}

/// The `q` quantile of the request latencies, in ms (nearest rank).
fn quantile_ms(samples: &[&Sample], q: f64) -> f64 {
    let mut took: Vec<f64> = samples
        .iter()
        .map(|s| s.took.as_secs_f64() * 1000.0)
        .collect();
    if took.is_empty() {
        return f64::NAN;
    }
    took.sort_by(f64::total_cmp);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a short vector"
    )]
    let i = ((q * took.len() as f64).ceil() as usize).clamp(1, took.len()) - 1;
    took[i]
}

const ERROR_RULES: &str = r#"interval = "2s"
min_samples = 100
measurements = 3
timebox = "40s"
on_inconclusive = "promote"
metrics = [{ name = "error rate", kind = "error-rate", max_relative = 1.5, allowed_increase = 0.01 }]"#;

#[test]
fn docker_canary_failing_5_percent_is_rolled_back_by_the_error_rate_rule_within_its_exposure() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let (mut daemon, proxy) = start_with_v1("an-errors", tmp.path(), "FAIL_RATE = \"0\"");
    // With on_inconclusive = "promote", anything but a failed error-rate measurement
    // would promote the canary: only the rule can roll it back.
    let spec = write_spec(
        tmp.path(),
        "an-errors",
        &Revision {
            version: "v2",
            env: "FAIL_RATE = \"0.05\"",
            canary: Some(20),
            analysis: ERROR_RULES,
        },
    );
    let stop = Arc::new(AtomicBool::new(false));
    let loader = recorded_load(
        proxy,
        stop.clone(),
        4,
        Duration::from_millis(1),
        Duration::from_secs(80),
    );
    let started = Instant::now();
    let out = deploy(&spec, &state, &[]);
    let took = started.elapsed();
    let rolled_back = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let samples = loader.join().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}{stderr}", text(&out.stdout));
    assert!(stderr.contains("rolled back"), "{stderr}");
    assert!(stderr.contains("error rate: canary"), "{stderr}");
    assert!(stderr.contains("failed"), "{stderr}");

    let s = status(&spec, &state);
    assert_eq!(s["stable"], 1, "{s}");
    let h = history(&spec, &state);
    assert_eq!(h[0]["status"], "failed", "{h}");
    assert!(
        h[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("error rate")),
        "{h}"
    );
    assert!(
        samples
            .iter()
            .filter(|x| x.at > rolled_back)
            .all(|x| !x.failed() && x.from("v1")),
        "after the rollback every answer comes from v1"
    );

    // What users saw: every failure is the canary's, and no more than its share of the
    // traffic over its exposure times 5%, within sampling noise.
    let during = exposure(&samples, "v2");
    let failed: Vec<&Sample> = during.iter().filter(|x| x.failed()).collect();
    assert!(
        failed.iter().all(|x| x.body.contains("injected")),
        "a failure that is not the canary's injected 500"
    );
    let canary_served = during.iter().filter(|x| x.from("v2")).count();
    let bound = binomial_upper(during.len(), 0.20 * 0.05, 0.999);
    assert!(during.len() > 200, "only {} requests", during.len());
    assert!(
        failed.len() <= bound,
        "{} failed of {} requests during the canary's exposure (bound {bound})",
        failed.len(),
        during.len()
    );
    let exposed = during.last().unwrap().at - during[0].at;
    daemon.clean();
    assert!(daemon.containers().is_empty(), "containers left behind");
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let (share, expected) = (
        100.0 * canary_served as f64 / during.len() as f64,
        0.01 * during.len() as f64,
    );
    eprintln!(
        "5% failing canary at weight 20: rolled back after {:.1}s of deploy; exposure \
         {:.1}s, {} requests, {canary_served} to the canary ({share:.1}%), {} failed \
         (expected {:.1} = 20% x {} x 5%; bound {bound} = binomial 99.9% quantile)",
        took.as_secs_f64(),
        exposed.as_secs_f64(),
        during.len(),
        failed.len(),
        expected,
        during.len(),
    );
}

/// Both rules of the latency and equal-canary scenarios: the error rate, and p95 latency
/// at most 1.2× stable's over the same window.
const LATENCY_RULES: &str = r#"interval = "2s"
min_samples = 100
measurements = 2
timebox = "40s"
on_inconclusive = "promote"
metrics = [
  { name = "error rate", kind = "error-rate", max_relative = 1.5, allowed_increase = 0.01 },
  { name = "p95 latency", kind = "latency-p95", max_relative = 1.2 },
]"#;

#[test]
fn docker_canary_twice_as_slow_at_p95_is_rolled_back_by_the_relative_latency_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    // Stable answers in 20–40 ms (p95 ≈ 39 ms), the canary in 60–80 ms (p95 ≈ 79 ms).
    let (mut daemon, proxy) = start_with_v1(
        "an-latency",
        tmp.path(),
        "LATENCY_MS = \"20\"\nLATENCY_JITTER_MS = \"20\"",
    );
    let spec = write_spec(
        tmp.path(),
        "an-latency",
        &Revision {
            version: "v2",
            env: "LATENCY_MS = \"60\"\nLATENCY_JITTER_MS = \"20\"",
            canary: Some(50),
            analysis: LATENCY_RULES,
        },
    );
    let stop = Arc::new(AtomicBool::new(false));
    let loader = recorded_load(
        proxy,
        stop.clone(),
        8,
        Duration::ZERO,
        Duration::from_secs(80),
    );
    let out = deploy(&spec, &state, &[]);
    stop.store(true, Ordering::Relaxed);
    let samples = loader.join().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}{stderr}", text(&out.stdout));
    assert!(stderr.contains("rolled back"), "{stderr}");
    // The latency rule decided, and says so with both arms' values; the error rate passed.
    assert!(stderr.contains("p95 latency: canary"), "{stderr}");
    assert!(stderr.contains("above 1.2× stable: failed"), "{stderr}");
    assert!(!stderr.contains("error rate: canary"), "{stderr}");
    let s = status(&spec, &state);
    assert_eq!(s["stable"], 1, "{s}");
    let explained = s["rollout"]["analysis"].to_string();
    assert!(explained.contains("p95 latency"), "{s}");
    assert!(explained.contains("error rate"), "{s}");
    let h = history(&spec, &state);
    assert_eq!(h[0]["status"], "failed", "{h}");
    assert!(
        h[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("p95 latency")),
        "{h}"
    );
    // `ferry history --rev 2` shows the revision in full: its rollout's outcome, the
    // timeline, and the stored verdicts in the words `ferry status` uses, with values.
    assert_eq!(h[0]["number"], 2, "{h}");
    let config = spec.to_str().unwrap();
    let out = ferry(&["--config", config, "history", "--rev", "2"], &state, "");
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}{}", text(&out.stderr));
    assert!(shown.contains("revision 2 of an-latency"), "{shown}");
    assert!(shown.contains("spec hash:"), "{shown}");
    assert!(shown.contains("(canary, from revision 1"), "{shown}");
    assert!(shown.contains("failed ("), "{shown}");
    assert!(shown.contains("analysis (step"), "{shown}");
    assert!(shown.contains("p95 latency: canary"), "{shown}");
    assert!(shown.contains("above 1.2× stable: failed"), "{shown}");
    assert!(shown.contains("error rate: canary"), "{shown}");
    assert!(shown.contains(" ms vs stable "), "{shown}");
    let out = ferry(
        &[
            "--config", config, "--output", "json", "history", "--rev", "2",
        ],
        &state,
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let detail: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(detail["revision"]["number"], 2, "{detail}");
    let rollout = &detail["rollouts"][0];
    assert_eq!(rollout["rollout"]["strategy"], "canary", "{detail}");
    assert_eq!(rollout["rollout"]["outcome"], "failed", "{detail}");
    assert!(
        rollout["events"].as_array().is_some_and(|e| e.len() > 2),
        "{detail}"
    );
    let verdicts = rollout["verdicts"].as_array().expect("verdicts");
    let failed = verdicts.last().expect("a verdict");
    assert_eq!(failed["verdict"]["outcome"], "fail", "{detail}");
    assert!(
        failed["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("p95 latency: canary")),
        "{detail}"
    );
    let metrics = failed["verdict"]["metrics"].to_string();
    assert!(metrics.contains("p95"), "{metrics}");
    // An unknown revision: exit 1, naming the revisions there are.
    let out = ferry(&["--config", config, "history", "--rev", "9"], &state, "");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no revision 9"), "{stderr}");
    assert!(stderr.contains("known revisions: 1, 2"), "{stderr}");
    assert!(samples.iter().all(|x| !x.failed()), "no request failed");
    let during = exposure(&samples, "v2");
    let canary: Vec<&Sample> = during.iter().filter(|x| x.from("v2")).collect();
    let stable: Vec<&Sample> = during.iter().filter(|x| x.from("v1")).collect();
    assert!(canary.len() > 100 && stable.len() > 100, "too few requests");
    daemon.clean();
    assert!(daemon.containers().is_empty(), "containers left behind");
    let reason = h[0]["reason"].as_str().unwrap_or_default().to_owned();
    eprintln!(
        "2x p95 canary at weight 50: client-side p95 canary {:.0} ms vs stable {:.0} ms over \
         {} + {} requests; {reason}",
        quantile_ms(&canary, 0.95),
        quantile_ms(&stable, 0.95),
        canary.len(),
        stable.len()
    );
}

#[test]
fn docker_ten_canaries_identical_to_stable_are_all_promoted() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let app = "an-equal";
    // A real latency distribution on both arms (5–15 ms), identical code and settings.
    let env = "LATENCY_MS = \"5\"\nLATENCY_JITTER_MS = \"10\"";
    let (mut daemon, proxy) = start_with_v1(app, tmp.path(), env);
    let versions: Vec<String> = (2..=11).map(|n| format!("v{n}")).collect();
    // Only passing measurements may promote: an inconclusive analysis rolls back here.
    let rules = LATENCY_RULES
        .replace("interval = \"2s\"", "interval = \"1s\"")
        .replace("min_samples = 100", "min_samples = 50")
        .replace(
            "on_inconclusive = \"promote\"",
            "on_inconclusive = \"rollback\"",
        );
    assert!(rules.contains("\"rollback\""), "{rules}");
    let stop = Arc::new(AtomicBool::new(false));
    let loader = recorded_load(
        proxy,
        stop.clone(),
        4,
        Duration::ZERO,
        Duration::from_secs(240),
    );
    let started = Instant::now();
    for version in &versions {
        let spec = write_spec(
            tmp.path(),
            app,
            &Revision {
                version,
                env,
                canary: Some(50),
                analysis: &rules,
            },
        );
        let out = deploy(&spec, &state, &[]);
        assert_ok(&out);
        let s = status(&spec, &state);
        let last = s["rollout"]["analysis"].as_array().and_then(|a| a.last());
        assert!(
            last.and_then(|l| l.as_str())
                .is_some_and(|l| l.starts_with("analysis canary: passed: score 100")),
            "{s}"
        );
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let samples = loader.join().unwrap();
    let last = write_spec(
        tmp.path(),
        app,
        &Revision {
            version: "v11",
            env,
            canary: Some(50),
            analysis: &rules,
        },
    );
    let h = history(&last, &state);
    assert_eq!(h.as_array().unwrap().len(), 11, "{h}");
    assert_eq!(h[0]["status"], "live", "{h}");
    for rev in h.as_array().unwrap().iter().skip(1) {
        assert_eq!(rev["status"], "superseded", "{h}");
    }
    let (code, body) = get(proxy, "/", None).unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("(version v11)"), "{body}");
    let failed = samples.iter().filter(|x| x.failed()).count();
    assert_eq!(failed, 0, "no request fails while equal canaries roll");
    daemon.clean();
    assert!(daemon.containers().is_empty(), "containers left behind");
    eprintln!(
        "10 canaries identical to stable: 10 promoted, 0 rolled back, {:.1}s in all \
         ({:.1}s each), {} requests, 0 failed",
        took.as_secs_f64(),
        took.as_secs_f64() / 10.0,
        samples.len()
    );
}

/// A trickle of traffic far below `min_samples` and a short time box.
fn thin_rules(policy: &str) -> String {
    format!(
        r#"interval = "1s"
min_samples = 100
measurements = 2
timebox = "5s"
on_inconclusive = "{policy}"
metrics = [{{ name = "error rate", kind = "error-rate", max_relative = 1.5, allowed_increase = 0.01 }}]"#
    )
}

fn phase(s: &serde_json::Value) -> String {
    s["rollout"]["phase"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn docker_low_traffic_holds_the_step_then_each_inconclusive_policy_applies() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let app = "an-thin";
    let (mut daemon, proxy) = start_with_v1(app, tmp.path(), "");
    // About 4 requests a second, 2 per arm at weight 50: 10 in the 5 s time box.
    let stop = Arc::new(AtomicBool::new(false));
    let loader = recorded_load(
        proxy,
        stop.clone(),
        1,
        Duration::from_millis(250),
        Duration::from_secs(120),
    );
    let spec = |version: &str, policy: &str| {
        write_spec(
            tmp.path(),
            app,
            &Revision {
                version,
                env: "",
                canary: Some(50),
                analysis: &thin_rules(policy),
            },
        )
    };
    let wait = Duration::from_secs(30);

    // pause: the step holds while samples are missing, then the rollout pauses at the
    // analysis until a person decides; `ferry resume` measures again, `ferry promote`
    // goes on.
    let v2 = spec("v2", "pause");
    assert_ok(&deploy(&v2, &state, &["--detach"]));
    let s = wait_status(&v2, &state, wait, |s| {
        s["rollout"]["analysis"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    });
    let explained = s["rollout"]["analysis"].to_string();
    assert!(explained.contains("too few samples"), "{s}");
    assert!(explained.contains("holding"), "{s}");
    assert!(phase(&s).starts_with("progressing"), "{s}");
    assert_eq!(s["rollout"]["step"][1], "canary analysis canary", "{s}");
    assert_eq!(s["rollout"]["weights"]["canary"], 50, "{s}");
    assert_eq!(s["rollout"]["finished"], false, "{s}");
    assert_eq!(
        (s["stable"].clone(), s["canary"].clone()),
        (1.into(), 2.into())
    );
    let s = wait_status(&v2, &state, wait, |s| phase(s).contains("inconclusive"));
    assert!(phase(&s).contains("analysis canary inconclusive"), "{s}");
    std::thread::sleep(Duration::from_secs(2));
    let s = status(&v2, &state);
    assert!(phase(&s).contains("inconclusive"), "still paused: {s}");
    assert_eq!(s["rollout"]["finished"], false, "{s}");
    assert_eq!(s["rollout"]["weights"]["canary"], 50, "{s}");
    let out = ferry(&["--config", v2.to_str().unwrap(), "resume"], &state, "");
    assert_ok(&out);
    let s = wait_status(&v2, &state, wait, |s| !phase(s).contains("paused"));
    assert!(phase(&s).starts_with("progressing"), "measuring again: {s}");
    assert_eq!(s["rollout"]["step"][1], "canary analysis canary", "{s}");
    let s = wait_status(&v2, &state, wait, |s| phase(s).contains("inconclusive"));
    assert!(phase(&s).contains("analysis canary inconclusive"), "{s}");
    let out = ferry(&["--config", v2.to_str().unwrap(), "promote"], &state, "");
    assert_ok(&out);
    let s = wait_status(&v2, &state, wait, |s| s["rollout"]["finished"] == true);
    assert_eq!(s["stable"], 2, "promoted by hand: {s}");

    // rollback: the same wait, then traffic back to stable and exit 1.
    let v3 = spec("v3", "rollback");
    let out = deploy(&v3, &state, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}{stderr}", text(&out.stdout));
    assert!(stderr.contains("rolled back"), "{stderr}");
    assert!(stderr.contains("did not conclude within 5s"), "{stderr}");
    let s = status(&v3, &state);
    assert_eq!(s["stable"], 2, "{s}");

    // promote: the same wait, then the canary goes on and is promoted.
    let v4 = spec("v4", "promote");
    let started = Instant::now();
    assert_ok(&deploy(&v4, &state, &[]));
    let took = started.elapsed();
    let s = status(&v4, &state);
    assert_eq!(s["stable"], 4, "{s}");
    stop.store(true, Ordering::Relaxed);
    let samples = loader.join().unwrap();
    assert!(samples.iter().all(|x| !x.failed()), "no request failed");
    let h = history(&v4, &state);
    assert_eq!(h[0]["status"], "live", "{h}");
    assert_eq!(h[1]["status"], "failed", "{h}");
    assert_eq!(h[2]["status"], "superseded", "{h}");
    daemon.clean();
    assert!(daemon.containers().is_empty(), "containers left behind");
    eprintln!(
        "low traffic ({} requests in all): held below min_samples; pause, resume, promote; \
         rollback; promote after the 5s time box ({:.1}s deploy)",
        samples.len(),
        took.as_secs_f64()
    );
}
