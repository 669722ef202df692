//! Shared by the tests that run `ferry serve` as a child process: running ferry, building
//! the demo image, writing its ferry.toml, a daemon guard that stops it and removes the
//! app's containers and network whatever happens, plain HTTP requests, bounded load loops
//! through the proxy, polling `ferry status` and webhook receivers (`webhook`).

#![allow(dead_code, reason = "each test binary uses a subset of these helpers")]
#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub mod webhook;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs ferry against the daemon state in `state`, with `stdin` piped in.
pub fn ferry(args: &[&str], state: &Path, stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env_remove("FERRY_OUTPUT")
        .env_remove("FERRY_ENV")
        .env_remove("FERRY_CONFIG")
        .env_remove("FERRY_API")
        .env_remove("FERRY_TOKEN")
        .env("FERRY_STATE_DIR", state)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferry runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI is installed")
}

/// Builds the demo service's static binary and its FROM scratch image as `image`.
pub fn build_demo_image(image: &str) {
    let hello = repo_root().join("examples/hello");
    let hook = Command::new(hello.join("build-static.sh"))
        .output()
        .expect("build-static.sh runs");
    assert!(hook.status.success(), "{}", text(&hook.stderr));
    let out = docker(&["build", "-q", "-t", image, hello.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "docker build of the demo failed (is the Docker engine running?): {}",
        text(&out.stderr)
    );
}

/// Builds `tag` as a FROM `base` image with one more label, so a deploy of it runs a
/// different image than `base` (nothing else changes).
pub fn derived_image(base: &str, tag: &str, label: &str) {
    let mut child = Command::new("docker")
        .args(["build", "-q", "-t", tag, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the docker CLI is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("FROM {base}\nLABEL ferry.test={label}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// A ferry.toml of the demo service (`examples/hello`: web port 8080, `/health` checked
/// every second) for one test app. [`DemoSpec::new`] has what most tests share (2
/// replicas, 5 s drain and stop timeouts, a rolling deploy, no `[env]`); the other methods
/// change one part each, and [`DemoSpec::write`] puts it in a folder.
#[derive(Clone)]
pub struct DemoSpec {
    app: String,
    image: String,
    top_level: String,
    replicas: u32,
    drain_timeout: String,
    stop_timeout: String,
    strategy: String,
    env: Vec<String>,
    tail: String,
}

impl DemoSpec {
    /// The spec of `app` running `image`; an empty `image` leaves the key out (the deploy
    /// then passes `--image`).
    pub fn new(app: &str, image: &str) -> Self {
        DemoSpec {
            app: app.to_owned(),
            image: image.to_owned(),
            top_level: String::new(),
            replicas: 2,
            drain_timeout: "5s".to_owned(),
            stop_timeout: "5s".to_owned(),
            strategy: "kind = \"rolling\"".to_owned(),
            env: Vec::new(),
            tail: String::new(),
        }
    }

    /// More top-level keys (`secrets = [...]`), written right after `app` and `image`.
    pub fn top_level(mut self, lines: &str) -> Self {
        self.top_level = format!("{lines}\n");
        self
    }

    /// `[web] replicas`.
    pub fn replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas;
        self
    }

    /// `[web] drain_timeout` and `stop_timeout`, e.g. `"2s"`.
    pub fn timeouts(mut self, drain: &str, stop: &str) -> Self {
        self.drain_timeout = drain.to_owned();
        self.stop_timeout = stop.to_owned();
        self
    }

    /// The lines of `[strategy]` (sub-tables such as `[strategy.canary]` may follow).
    pub fn strategy(mut self, lines: &str) -> Self {
        self.strategy = lines.to_owned();
        self
    }

    /// `VERSION` in `[env]`: the demo answers with it, so a test tells revisions apart.
    pub fn version(self, version: &str) -> Self {
        self.env(&format!("VERSION = \"{version}\""))
    }

    /// More lines of `[env]` (an empty string adds none).
    pub fn env(mut self, lines: &str) -> Self {
        if !lines.is_empty() {
            self.env.push(lines.to_owned());
        }
        self
    }

    /// TOML written after everything else (`[analysis.x]`, `[hooks]`, `[notify]`...).
    pub fn tail(mut self, toml: &str) -> Self {
        self.tail = toml.to_owned();
        self
    }

    /// The spec's text.
    pub fn toml(&self) -> String {
        let image = if self.image.is_empty() {
            String::new()
        } else {
            format!("image = \"{}\"\n", self.image)
        };
        let env = if self.env.is_empty() {
            String::new()
        } else {
            format!("\n[env]\n{}\n", self.env.join("\n"))
        };
        format!(
            r#"app = "{app}"
{image}{top_level}
[web]
port = 8080
replicas = {replicas}
drain_timeout = "{drain}"
stop_timeout = "{stop}"

[web.health]
path = "/health"
interval = "1s"
timeout = "1s"

[strategy]
{strategy}
{env}{tail}"#,
            app = self.app,
            top_level = self.top_level,
            replicas = self.replicas,
            drain = self.drain_timeout,
            stop = self.stop_timeout,
            strategy = self.strategy,
            tail = self.tail,
        )
    }

    /// Writes the spec to `dir/ferry.toml` (creating `dir`, replacing an earlier spec);
    /// returns its path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("ferry.toml");
        std::fs::write(&path, self.toml()).unwrap();
        path
    }
}

/// What a Docker test of `app` starts from: a temporary folder, the daemon's state
/// directory in it (`state`, not created yet), a [`Daemon`] guard that has removed what an
/// earlier run of `app` left, and the demo image built as `image`. Bind them in this order
/// (`let (tmp, state, mut daemon) = ...`): the guard then drops first and stops the daemon
/// before its folder goes.
pub fn docker_test(app: &'static str, image: &str) -> (tempfile::TempDir, PathBuf, Daemon) {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let daemon = Daemon::new(app);
    build_demo_image(image);
    (tmp, state, daemon)
}

/// `ferry deploy` of `spec` with `extra` arguments, against the daemon state in `state`;
/// its output, whether it succeeded or not.
pub fn deploy(spec: &Path, state: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--config", spec.to_str().unwrap(), "deploy"];
    args.extend_from_slice(extra);
    ferry(&args, state, "")
}

/// [`deploy`], asserting that it succeeded (the message shows its stdout and stderr).
pub fn deploy_ok(spec: &Path, state: &Path, extra: &[&str]) -> Output {
    let out = deploy(spec, state, extra);
    assert!(
        out.status.success(),
        "deploy {}: {}{}",
        spec.display(),
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// The timeline lines (`text` of each note) of every rollout of `app` in the daemon's
/// store under `state`, oldest rollout first.
pub fn timelines(state: &Path, app: &str) -> Vec<Vec<String>> {
    let db = state.join("state.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = ferry_store::Store::open(db.to_str().unwrap())
            .await
            .unwrap();
        let mut rollouts = store.rollouts(app, "default").await.unwrap();
        rollouts.reverse();
        let mut all = Vec::new();
        for r in rollouts {
            let events = store.events(r.id).await.unwrap();
            all.push(
                events
                    .iter()
                    .filter_map(|e| e.message["text"].as_str().map(str::to_owned))
                    .collect(),
            );
        }
        store.close().await;
        all
    })
}

/// A `ferry serve` child for `app` (environment `default`); dropping it stops the daemon
/// and removes the app's containers and network.
pub struct Daemon {
    app: &'static str,
    child: Option<Child>,
}

impl Daemon {
    /// A guard for `app` that has first removed what an earlier run may have left.
    pub fn new(app: &'static str) -> Self {
        let mut daemon = Daemon { app, child: None };
        daemon.clean();
        daemon
    }

    /// Starts `ferry serve` on free loopback ports with its state in `state`; returns the
    /// proxy's address.
    pub fn start(&mut self, state: &Path) -> SocketAddr {
        self.start_on(state, "127.0.0.1:0")
    }

    /// [`Daemon::start`] with extra environment variables for `ferry serve`.
    pub fn start_with_env(&mut self, state: &Path, env: &[(&str, &str)]) -> SocketAddr {
        self.spawn_with(state, "127.0.0.1:0", &[], env)
    }

    /// Starts `ferry serve` with its proxy on `listen` (a restarted daemon keeps its
    /// address) and the API on a free port; returns once it printed its ready line (after
    /// its recovery), with the proxy's address.
    pub fn start_on(&mut self, state: &Path, listen: &str) -> SocketAddr {
        self.spawn(state, listen, &[])
    }

    fn spawn(&mut self, state: &Path, listen: &str, extra: &[&str]) -> SocketAddr {
        self.spawn_with(state, listen, extra, &[])
    }

    fn spawn_with(
        &mut self,
        state: &Path,
        listen: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> SocketAddr {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["serve", "--listen", listen, "--api", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
            .env("FERRY_STATE_DIR", state)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ferry serve starts");
        let stdout = child.stdout.take().unwrap();
        self.child = Some(child);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line.split("proxy on http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no proxy address in {line:?}"))
    }

    /// `kill -9` of the daemon: no shutdown, its containers keep running.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-KILL", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Starts `ferry serve --takeover` with the same state: it takes the listening
    /// sockets over from the running daemon, which drains and exits. Returns the new
    /// daemon's proxy address (printed once it serves the API) and the old child.
    pub fn take_over(&mut self, state: &Path) -> (SocketAddr, Child) {
        let old = self.child.take().expect("a daemon to take over");
        let proxy = self.spawn(state, "127.0.0.1:0", &["--takeover"]);
        (proxy, old)
    }

    /// The ids of the app's containers, running or not.
    pub fn containers(&self) -> Vec<String> {
        let label = format!("label=ferry.app={}", self.app);
        text(&docker(&["ps", "-aq", "--filter", &label]).stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Stops the daemon (SIGTERM, then SIGKILL after 10 s) and removes the app's
    /// containers and network.
    pub fn clean(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let ids = self.containers();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            docker(&args);
        }
        docker(&["network", "rm", &format!("ferry-{}-default", self.app)]);
    }

    /// [`Daemon::clean`], then asserts that none of the app's containers is left.
    pub fn clean_and_check(&mut self) {
        self.clean();
        assert!(self.containers().is_empty(), "containers left behind");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.clean();
    }
}

/// One GET on a fresh connection: the status code and the body.
pub fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Result<(u16, String), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).map_err(|e| e.to_string())?;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {raw:?}"))?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    Ok((status, body.unwrap_or_default()))
}

/// A load loop on fresh connections until `stop` (at most 60 s): successes and failures.
pub fn load(proxy: SocketAddr, stop: Arc<AtomicBool>) -> JoinHandle<(u32, Vec<String>)> {
    load_for(
        proxy,
        stop,
        Duration::from_secs(60),
        Duration::from_millis(5),
    )
}

/// [`load`] for at most `limit`, `pause` between two requests: the 200s counted, every
/// other answer (`code: body`) or error kept.
pub fn load_for(
    proxy: SocketAddr,
    stop: Arc<AtomicBool>,
    limit: Duration,
    pause: Duration,
) -> JoinHandle<(u32, Vec<String>)> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        let (mut ok, mut failed) = (0u32, Vec::new());
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            match get(proxy, "/", None) {
                Ok((200, _)) => ok += 1,
                Ok((code, body)) => failed.push(format!("{code}: {body}")),
                Err(e) => failed.push(e),
            }
            std::thread::sleep(pause);
        }
        (ok, failed)
    })
}

/// One request of a recorded load: when it ended, how long it took, its status (`None`: no
/// answer) and body.
pub struct Sample {
    pub at: Instant,
    pub took: Duration,
    pub code: Option<u16>,
    pub body: String,
}

impl Sample {
    /// Whether the user saw a failure (no answer or a 5xx).
    pub fn failed(&self) -> bool {
        self.code.is_none_or(|c| c >= 500)
    }

    /// Whether the demo's `version` answered (its body names it), or it failed by
    /// `FAIL_RATE` (only a canary injects failures in these tests).
    pub fn from(&self, version: &str) -> bool {
        self.body.contains(&format!("(version {version})")) || self.body.contains("injected")
    }
}

/// `threads` load loops on fresh connections to `/` until `stop` (each at most `limit`),
/// `pause` between two requests of a loop; every request recorded, in the order they ended.
pub fn recorded_load(
    proxy: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: usize,
    pause: Duration,
    limit: Duration,
) -> JoinHandle<Vec<Sample>> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        let loops: Vec<JoinHandle<Vec<Sample>>> = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut samples = Vec::new();
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let sent = Instant::now();
                        let (code, body) = match get(proxy, "/", None) {
                            Ok((code, body)) => (Some(code), body),
                            Err(e) => (None, e),
                        };
                        samples.push(Sample {
                            at: Instant::now(),
                            took: sent.elapsed(),
                            code,
                            body,
                        });
                        std::thread::sleep(pause);
                    }
                    samples
                })
            })
            .collect();
        let mut all: Vec<Sample> = loops.into_iter().flat_map(|l| l.join().unwrap()).collect();
        all.sort_by_key(|s| s.at);
        all
    })
}

/// `ferry status --output json` of the app in `spec`.
pub fn status(spec: &Path, state: &Path) -> serde_json::Value {
    let out = ferry(
        &[
            "--config",
            spec.to_str().unwrap(),
            "--output",
            "json",
            "status",
        ],
        state,
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Polls the status until `done` holds (at most `limit`); returns the last status.
pub fn wait_status(
    spec: &Path,
    state: &Path,
    limit: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let s = status(spec, state);
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `ferry history --output json` of the app in `spec`, newest revision first.
pub fn history(spec: &Path, state: &Path) -> serde_json::Value {
    let out = ferry(
        &[
            "--config",
            spec.to_str().unwrap(),
            "--output",
            "json",
            "history",
        ],
        state,
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A free loopback address for a proxy that must keep it across a daemon restart.
pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// `docker ps` of the app: (name, revision label, state) of every container.
pub fn app_containers(app: &str) -> Vec<(String, String, String)> {
    let label = format!("label=ferry.app={app}");
    let out = docker(&[
        "ps",
        "-a",
        "--filter",
        &label,
        "--format",
        "{{.Names}} {{.Label \"ferry.revision\"}} {{.State}}",
    ]);
    text(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace().map(str::to_owned);
            Some((parts.next()?, parts.next()?, parts.next()?))
        })
        .collect()
}

/// Waits (at most `limit`) until the app's containers are exactly `count` running ones of
/// revision `rev`; returns what is there.
pub fn wait_containers(
    app: &str,
    rev: &str,
    count: usize,
    limit: Duration,
) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + limit;
    loop {
        let c = app_containers(app);
        let settled = c.len() == count && c.iter().all(|(_, r, s)| r == rev && s == "running");
        if settled || Instant::now() > deadline {
            return c;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The timeline notes of the app's newest rollout (environment `default`), read from the
/// daemon's SQLite store in `state`.
pub fn timeline(state: &Path, app: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let db = state.join("state.db");
        let store = ferry_store::Store::open(db.to_str().unwrap())
            .await
            .unwrap();
        let rollouts = store.rollouts(app, "default").await.unwrap();
        let events = store.events(rollouts[0].id).await.unwrap();
        store.close().await;
        events
            .iter()
            .filter_map(|e| e.message["text"].as_str().map(str::to_owned))
            .collect()
    })
}
