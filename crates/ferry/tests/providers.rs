//! Analysis providers end to end, against the real Docker engine and real peers: a real
//! Prometheus server (Debian package, started here on a free loopback port) scraping
//! `ferry serve`'s `/metrics` with the API token judges canaries with a PromQL error-rate
//! query; command checks (a one-off container of the new image) and HTTP checks gate a
//! blue-green switch; a post-promotion analysis switches back to the warm old set; a
//! background analysis rolls a canary back during a pause.

#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::{DemoSpec, deploy_ok, docker_test, get, load_for, status, text};

const IMAGE: &str = "ferry-providers-test:hello";

/// A spec of the demo for `app` in `dir/<name>/ferry.toml`: `strategy` lines go into
/// `[strategy]`, `env` lines into `[env]`, `tail` after everything.
fn write_spec(dir: &Path, app: &str, name: &str, strategy: &str, env: &str, tail: &str) -> PathBuf {
    DemoSpec::new(app, IMAGE)
        .replicas(1)
        .timeouts("2s", "2s")
        .strategy(strategy)
        .version(name)
        .env(env)
        .tail(tail)
        .write(&dir.join(name))
}

/// Deploys `spec` under load (one loop of fresh connections, at most 85 s); returns the
/// exit code, stdout+stderr, and the load's (ok, failed) counts.
fn deploy_under_load(
    spec: &Path,
    state: &Path,
    proxy: SocketAddr,
) -> (Option<i32>, String, (u32, u32)) {
    let stop = Arc::new(AtomicBool::new(false));
    let loader = load_for(
        proxy,
        stop.clone(),
        Duration::from_secs(85),
        Duration::from_millis(3),
    );
    let out = support::deploy(spec, state, &[]);
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = loader.join().unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    (
        out.status.code(),
        all,
        (ok, u32::try_from(failed.len()).unwrap()),
    )
}

/// A Prometheus server started for one test; killed (by its pid) when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second with the bearer token in
    /// `token_file`; waits until it is ready.
    fn start(target: SocketAddr, token_file: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: ferry\n    metrics_path: /metrics\n\
                 \x20   authorization:\n      type: Bearer\n      credentials_file: {}\n\
                 \x20   static_configs:\n      - targets: [\"{target}\"]\n",
                token_file.display()
            ),
        )
        .unwrap();
        // A free port: bound, read, released, then given to Prometheus.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the prometheus server runs (Debian package `prometheus`, see xtask/deps)");
        let mut server = Self {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = get(addr, "/-/ready", None) {
                break;
            }
            if let Ok(Some(exit)) = server.child.try_wait() {
                panic!("prometheus exited at start: {exit}");
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within 30 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }

    /// The value of an instant query's first series, if any.
    fn value(&self, promql: &str) -> Option<f64> {
        let encoded: String = promql
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let (code, body) = get(self.addr, &format!("/api/v1/query?query={encoded}"), None).ok()?;
        assert_eq!(code, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        json["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ERROR_SHARE: &str = r#"sum(rate(ferry_proxy_requests_total{service="{{app}}",revision="{{revision}}",code="5xx"}[{{interval}}])) / sum(rate(ferry_proxy_requests_total{service="{{app}}",revision="{{revision}}"}[{{interval}}]))"#;

#[test]
fn docker_prometheus_query_rolls_back_a_failing_canary_and_promotes_a_healthy_one() {
    const APP: &str = "provprom";
    let started = Instant::now();
    let (tmp, state, mut daemon) = docker_test(APP, IMAGE);
    let proxy = daemon.start(&state);
    let api: SocketAddr = std::fs::read_to_string(state.join("api-addr"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let token = std::fs::read_to_string(state.join("token")).unwrap();
    // /metrics is behind the token like the rest of the API.
    assert_eq!(get(api, "/metrics", None).unwrap().0, 401);

    let v1 = write_spec(tmp.path(), APP, "v1", "kind = \"rolling\"", "", "");
    deploy_ok(&v1, &state, &[]);
    let (code, metrics) = get(api, "/metrics", Some(token.trim())).unwrap();
    assert_eq!(code, 200, "{metrics}");
    assert!(
        metrics.contains(&format!(
            "ferry_proxy_requests_total{{service=\"{APP}\",revision=\"1\",code=\"2xx\"}}"
        )),
        "{metrics}"
    );

    let prometheus = Prometheus::start(api, &state.join("token"));
    let canary = |name: &str, fail_rate: &str| {
        write_spec(
            tmp.path(),
            APP,
            name,
            "kind = \"canary\"\n[strategy.canary]\nsteps = [{ weight = 50 }, { analysis = \"prom\" }]",
            &format!("FAIL_RATE = \"{fail_rate}\""),
            &format!(
                r#"
[analysis.prom]
provider = "prometheus"
prometheus = {{ url = "http://{}" }}
interval = "3s"
measurements = 2
min_samples = 20
timebox = "45s"
on_inconclusive = "rollback"
metrics = [{{ name = "5xx share", kind = "query", max = 0.1, query = '{ERROR_SHARE}' }}]
"#,
                prometheus.addr
            ),
        )
    };

    // v2 fails 40% of its requests: the PromQL share of 5xx is far above 0.1.
    let failing = canary("v2", "0.4");
    let (code, output, (ok, failed)) = deploy_under_load(&failing, &state, proxy);
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("rolled back"), "{output}");
    assert!(output.contains("5xx share"), "{output}");
    // Prometheus really scraped ferry: the target is up and saw v2's errors.
    assert_eq!(prometheus.value("up{job=\"ferry\"}"), Some(1.0));
    let v2_errors = prometheus
        .value(&format!(
            "ferry_proxy_requests_total{{service=\"{APP}\",revision=\"2\",code=\"5xx\"}}"
        ))
        .unwrap_or(0.0);
    assert!(v2_errors > 0.0, "prometheus saw no 5xx of revision 2");
    let s = status(&failing, &state);
    assert_eq!(s["stable"], 1, "{s}");
    let explained = s["rollout"]["analysis"].to_string();
    assert!(
        explained.contains("5xx share: canary 0.")
            && explained.contains("above the 0.1 limit: failed"),
        "{s}"
    );
    for _ in 0..10 {
        let (code, body) = get(proxy, "/", None).unwrap();
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("v1"), "{body}");
    }
    eprintln!("failing canary: {ok} ok, {failed} failed requests while judged by prometheus");

    // v3 fails nothing: two passing measurements (share 0 ≤ 0.1) promote it.
    let healthy = canary("v3", "0");
    let (code, output, (ok, failed)) = deploy_under_load(&healthy, &state, proxy);
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(failed, 0, "no request fails during a healthy canary");
    let s = status(&healthy, &state);
    assert_eq!(s["stable"], 3, "{s}");
    let explained = s["rollout"]["analysis"].to_string();
    assert!(
        explained.contains("5xx share: canary 0 ") && explained.contains("passed"),
        "{s}"
    );
    eprintln!(
        "healthy canary promoted by prometheus verdicts: {ok} requests, 0 failed; scenario took {:?}",
        started.elapsed()
    );
    drop(prometheus);
    daemon.clean_and_check();
}

/// A blue-green spec of the demo for `app` with analyses in `strategy_extra` and `tail`.
fn blue_green(
    dir: &Path,
    app: &str,
    name: &str,
    env: &str,
    blue_green_extra: &str,
    tail: &str,
) -> PathBuf {
    write_spec(
        dir,
        app,
        name,
        &format!(
            "kind = \"blue-green\"\n[strategy.blue_green]\nscale_down_delay = \"60s\"\n{blue_green_extra}"
        ),
        env,
        tail,
    )
}

#[test]
fn docker_checks_gate_a_blue_green_switch_and_post_promotion_switches_back() {
    const APP: &str = "provbg";
    let started = Instant::now();
    let (tmp, state, mut daemon) = docker_test(APP, IMAGE);
    let proxy = daemon.start(&state);
    let v1 = write_spec(tmp.path(), APP, "v1", "kind = \"rolling\"", "", "");
    deploy_ok(&v1, &state, &[]);

    // The gate: the demo's own `healthcheck` in a one-off container of the new image calls
    // a new replica by its name on the app network; an HTTP check reads the new set's `/`.
    let gate = |name: &str, path: &str| {
        format!(
            r#"
[analysis.gate]
interval = "1s"
measurements = 1
metrics = [
  {{ name = "selftest", kind = "command", command = ["healthcheck", "{{{{canary_url}}}}{path}"], timeout = "30s" }},
  {{ name = "home", kind = "http", url = "/", body_contains = "{name}" }},
]
"#
        )
    };
    let v2 = blue_green(
        tmp.path(),
        APP,
        "v2",
        "",
        "pre_promotion_analysis = \"gate\"",
        &gate("v2", "/health"),
    );
    let (code, output, (_, failed)) = deploy_under_load(&v2, &state, proxy);
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(failed, 0, "{output}");
    let s = status(&v2, &state);
    assert_eq!(s["stable"], 2, "{s}");
    let explained = s["rollout"]["analysis"].to_string();
    assert!(
        explained
            .contains("selftest: exit 0, output: healthy: http://ferry-provbg-default-web-r2-"),
        "{s}"
    );
    assert!(
        explained.contains("home: GET http://127.0.0.1:")
            && explained.contains("answered 200: passed"),
        "{s}"
    );

    // v3's gate calls a path the demo does not serve: the command exits 1, the switch
    // never happens, and no user request ever reaches v3.
    let v3 = blue_green(
        tmp.path(),
        APP,
        "v3",
        "",
        "pre_promotion_analysis = \"gate\"",
        &gate("v3", "/nope"),
    );
    let (code, output, (ok, failed)) = deploy_under_load(&v3, &state, proxy);
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("pre-promotion analysis gate failed"),
        "{output}"
    );
    assert_eq!(failed, 0, "{output}");
    let s = status(&v3, &state);
    assert_eq!(s["stable"], 2, "{s}");
    let explained = s["rollout"]["analysis"].to_string();
    assert!(
        explained.contains("selftest: exit 1, output: http://ferry-provbg-default-web-r3-")
            && explained.contains("/nope"),
        "{s}"
    );
    for _ in 0..10 {
        let (code, body) = get(proxy, "/", None).unwrap();
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("v2"), "{body}");
    }
    eprintln!("failed gate: {ok} requests under load during the deploy, 0 failed, none reached v3");

    // v4 passes no gate but fails half its requests once live: the post-promotion
    // analysis switches traffic back to the warm v2.
    let after = r#"
[analysis.after]
interval = "2s"
measurements = 3
min_samples = 20
timebox = "40s"
on_inconclusive = "rollback"
metrics = [{ name = "errors", kind = "error-rate", max = 0.1 }]
"#;
    let v4 = blue_green(
        tmp.path(),
        APP,
        "v4",
        "FAIL_RATE = \"0.5\"",
        "post_promotion_analysis = \"after\"",
        after,
    );
    let (code, output, (ok, failed)) = deploy_under_load(&v4, &state, proxy);
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("post-promotion analysis after failed"),
        "{output}"
    );
    let s = status(&v4, &state);
    assert_eq!(s["stable"], 2, "{s}");
    assert!(
        s["rollout"]["analysis"]
            .to_string()
            .contains("above the 10.0% limit: failed"),
        "{s}"
    );
    for _ in 0..10 {
        let (code, body) = get(proxy, "/", None).unwrap();
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("v2"), "{body}");
    }
    eprintln!(
        "post-promotion: v4 switched back to v2 after {failed} failed of {} requests; scenario took {:?}",
        ok + failed,
        started.elapsed()
    );
    daemon.clean_and_check();
}

#[test]
fn docker_background_analysis_rolls_a_canary_back_during_a_pause() {
    const APP: &str = "provbgr";
    let (tmp, state, mut daemon) = docker_test(APP, IMAGE);
    let proxy = daemon.start(&state);
    let v1 = write_spec(tmp.path(), APP, "v1", "kind = \"rolling\"", "", "");
    deploy_ok(&v1, &state, &[]);
    // No analysis step at all: only the background analysis watches the 50% canary
    // while it pauses for a minute.
    let v2 = write_spec(
        tmp.path(),
        APP,
        "v2",
        "kind = \"canary\"\nanalysis = \"watch\"\n[strategy.canary]\nsteps = [{ weight = 50 }, { pause = \"60s\" }]",
        "FAIL_RATE = \"0.5\"",
        r#"
[analysis.watch]
interval = "2s"
measurements = 2
min_samples = 20
metrics = [{ name = "errors", kind = "error-rate", max = 0.1 }]
"#,
    );
    let begun = Instant::now();
    let (code, output, (ok, failed)) = deploy_under_load(&v2, &state, proxy);
    let took = begun.elapsed();
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("background analysis watch failed"),
        "{output}"
    );
    assert!(
        took < Duration::from_secs(60),
        "rolled back only after the pause: {took:?}"
    );
    let s = status(&v2, &state);
    assert_eq!(s["stable"], 1, "{s}");
    eprintln!(
        "background analysis: rolled back during the pause; {failed} of {} requests failed",
        ok + failed
    );
    daemon.clean_and_check();
}
