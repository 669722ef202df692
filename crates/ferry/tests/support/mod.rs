//! Shared by the tests that run `ferry serve` as a child process: running ferry, building
//! the demo image, and a daemon guard that stops it and removes the app's containers and
//! network whatever happens.

#![allow(dead_code, reason = "each test binary uses a subset of these helpers")]
#![allow(clippy::unwrap_used, reason = "test setup failures should panic")]

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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

    /// Starts `ferry serve` with its proxy on `listen` (a restarted daemon keeps its
    /// address) and the API on a free port; returns once it printed its ready line (after
    /// its recovery), with the proxy's address.
    pub fn start_on(&mut self, state: &Path, listen: &str) -> SocketAddr {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["serve", "--listen", listen, "--api", "127.0.0.1:0"])
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
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.clean();
    }
}
