//! Waiting until a container is healthy: the image's HEALTHCHECK when it has one,
//! otherwise ferry's own HTTP probe, with thresholds and a startup grace.

use std::net::SocketAddr;
use std::time::Duration;

use bollard::models::HealthStatusEnum;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::engine::Engine;
use crate::error::EngineError;

/// How many lines of output a failure report keeps.
const REPORT_LINES: usize = 20;

/// ferry's own HTTP probe, for images without a HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProbe {
    /// Where to send the probe (the published host port or the container's network address).
    pub addr: SocketAddr,
    /// The path, e.g. `/health`.
    pub path: String,
    /// Time between probes.
    pub interval: Duration,
    /// Timeout of one probe.
    pub timeout: Duration,
    /// Consecutive successes needed to be healthy.
    pub healthy_threshold: u32,
    /// Consecutive failures (after the grace) that make it unhealthy.
    pub unhealthy_threshold: u32,
    /// Failures during this time after the wait starts do not count.
    pub startup_grace: Duration,
}

impl HttpProbe {
    /// A probe of `path` on `addr` with ferry's defaults (every 500 ms, 2 s timeout,
    /// 1 success, 3 failures, 10 s grace).
    pub fn new(addr: SocketAddr, path: impl Into<String>) -> Self {
        Self {
            addr,
            path: path.into(),
            interval: Duration::from_millis(500),
            timeout: Duration::from_secs(2),
            healthy_threshold: 1,
            unhealthy_threshold: 3,
            startup_grace: Duration::from_secs(10),
        }
    }
}

/// How to wait for health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthWait {
    /// Give up after this long.
    pub timeout: Duration,
    /// The probe used when the container has no Docker HEALTHCHECK. Without either, a
    /// running container counts as healthy.
    pub probe: Option<HttpProbe>,
}

/// How health was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthSource {
    /// The image's HEALTHCHECK reported healthy.
    DockerHealthcheck,
    /// ferry's HTTP probe succeeded.
    HttpProbe,
    /// Neither exists: the container is running.
    Running,
}

/// Why a container is not healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnhealthyReason {
    /// The container stopped.
    Exited {
        /// Its exit code.
        exit_code: i64,
        /// Whether the kernel killed it for exceeding its memory limit.
        oom_killed: bool,
    },
    /// The Docker HEALTHCHECK reported unhealthy.
    HealthcheckFailed {
        /// Consecutive failed checks.
        failing_streak: i64,
    },
    /// ferry's probe failed `unhealthy_threshold` times in a row after the grace.
    ProbeFailed {
        /// The last probe error or status.
        last_error: String,
    },
    /// Not healthy within the timeout.
    Timeout {
        /// How long was waited.
        waited: Duration,
    },
}

/// A failed health wait, with the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhealthy {
    /// The container.
    pub container: String,
    /// Why.
    pub reason: UnhealthyReason,
    /// The last health check outputs (Docker HEALTHCHECK) or probe errors.
    pub health_output: Vec<String>,
    /// The last lines of the container's own output.
    pub logs: Vec<String>,
}

impl std::fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "container {} is not healthy: ", self.container)?;
        match &self.reason {
            UnhealthyReason::Exited {
                exit_code,
                oom_killed: true,
            } => write!(
                f,
                "killed for exceeding its memory limit (exit code {exit_code})"
            ),
            UnhealthyReason::Exited { exit_code, .. } => {
                write!(f, "exited with code {exit_code}")
            }
            UnhealthyReason::HealthcheckFailed { failing_streak } => {
                write!(f, "its HEALTHCHECK failed {failing_streak} times in a row")
            }
            UnhealthyReason::ProbeFailed { last_error } => {
                write!(f, "the HTTP probe kept failing ({last_error})")
            }
            UnhealthyReason::Timeout { waited } => {
                write!(f, "not healthy after {:.1}s", waited.as_secs_f64())
            }
        }?;
        if let Some(last) = self.health_output.last() {
            write!(f, "; last check: {}", last.trim())?;
        }
        Ok(())
    }
}

/// One HTTP GET: `Ok(status)` for any 2xx, `Err(why)` otherwise.
pub async fn http_probe(addr: SocketAddr, path: &str, timeout: Duration) -> Result<u16, String> {
    let attempt = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: ferry-probe\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut head = Vec::new();
        let mut buf = [0u8; 512];
        while !head.windows(2).any(|w| w == b"\r\n") {
            let n = stream
                .read(&mut buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head);
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "no HTTP status line in the answer".to_owned())?;
        if (200..300).contains(&status) {
            Ok(status)
        } else {
            Err(format!("status {status}"))
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {:.1}s", timeout.as_secs_f64())))
}

/// Probe bookkeeping: thresholds over consecutive results (pure).
#[derive(Debug, Default)]
struct ProbeCounter {
    successes: u32,
    failures: u32,
}

impl ProbeCounter {
    fn record(&mut self, ok: bool, counts: bool) {
        if ok {
            self.successes += 1;
            self.failures = 0;
        } else {
            self.successes = 0;
            if counts {
                self.failures += 1;
            }
        }
    }
}

impl Engine {
    /// Waits until `container` is healthy, or reports why it is not.
    pub async fn wait_healthy(
        &self,
        container: &str,
        wait: &HealthWait,
    ) -> Result<HealthSource, EngineError> {
        let started = Instant::now();
        let deadline = started + wait.timeout;
        let mut counter = ProbeCounter::default();
        let mut probe_errors: Vec<String> = Vec::new();
        loop {
            let inspect = self
                .docker
                .inspect_container(
                    container,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
                .map_err(crate::container::not_found_or(
                    "container",
                    container,
                    format!("inspect container {container}"),
                ))?;
            let state = inspect.state.unwrap_or_default();
            let running = state.running.unwrap_or(false) && !state.restarting.unwrap_or(false);
            let health = state.health.clone();
            let health_log: Vec<String> = health
                .as_ref()
                .and_then(|h| h.log.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|r| {
                    let out = r.output.unwrap_or_default();
                    let code = r.exit_code.unwrap_or(-1);
                    format!("exit {code}: {}", out.trim())
                })
                .collect();
            if !running
                && (state.status.is_some_and(|s| s.to_string() != "created")
                    || started.elapsed() > Duration::from_secs(1))
            {
                return Err(self
                    .unhealthy(
                        container,
                        UnhealthyReason::Exited {
                            exit_code: state.exit_code.unwrap_or(-1),
                            oom_killed: state.oom_killed.unwrap_or(false),
                        },
                        health_log,
                    )
                    .await);
            }
            let status = health.and_then(|h| h.status.map(|s| (s, h.failing_streak)));
            match status {
                Some((HealthStatusEnum::HEALTHY, _)) => return Ok(HealthSource::DockerHealthcheck),
                Some((HealthStatusEnum::UNHEALTHY, streak)) => {
                    return Err(self
                        .unhealthy(
                            container,
                            UnhealthyReason::HealthcheckFailed {
                                failing_streak: streak.unwrap_or(0),
                            },
                            health_log,
                        )
                        .await);
                }
                Some((HealthStatusEnum::STARTING, _)) => {}
                _ => match &wait.probe {
                    None if running => return Ok(HealthSource::Running),
                    None => {}
                    Some(probe) => {
                        let result = http_probe(probe.addr, &probe.path, probe.timeout).await;
                        let in_grace = started.elapsed() < probe.startup_grace;
                        if let Err(e) = &result {
                            probe_errors.push(e.clone());
                            if probe_errors.len() > REPORT_LINES {
                                probe_errors.remove(0);
                            }
                        }
                        counter.record(result.is_ok(), !in_grace);
                        if counter.successes >= probe.healthy_threshold.max(1) {
                            return Ok(HealthSource::HttpProbe);
                        }
                        if counter.failures >= probe.unhealthy_threshold.max(1) {
                            let last_error = probe_errors.last().cloned().unwrap_or_default();
                            return Err(self
                                .unhealthy(
                                    container,
                                    UnhealthyReason::ProbeFailed { last_error },
                                    probe_errors,
                                )
                                .await);
                        }
                    }
                },
            }
            let now = Instant::now();
            if now >= deadline {
                let output = if probe_errors.is_empty() {
                    health_log
                } else {
                    probe_errors
                };
                return Err(self
                    .unhealthy(
                        container,
                        UnhealthyReason::Timeout {
                            waited: started.elapsed(),
                        },
                        output,
                    )
                    .await);
            }
            let pause = wait
                .probe
                .as_ref()
                .map_or(Duration::from_millis(250), |p| p.interval)
                .min(deadline - now);
            tokio::time::sleep(pause).await;
        }
    }

    async fn unhealthy(
        &self,
        container: &str,
        reason: UnhealthyReason,
        mut health_output: Vec<String>,
    ) -> EngineError {
        let skip = health_output.len().saturating_sub(REPORT_LINES);
        health_output.drain(..skip);
        EngineError::Unhealthy(Box::new(Unhealthy {
            container: container.to_owned(),
            reason,
            health_output,
            logs: self.tail_logs(container, REPORT_LINES).await,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_failures_do_not_count_but_reset_successes() {
        let mut c = ProbeCounter::default();
        c.record(false, false);
        c.record(false, false);
        assert_eq!(c.failures, 0);
        c.record(true, true);
        c.record(false, true);
        assert_eq!((c.successes, c.failures), (0, 1));
        c.record(true, true);
        assert_eq!((c.successes, c.failures), (1, 0));
    }

    #[tokio::test]
    async fn http_probe_reports_status_and_refusals() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for status in ["200 OK", "503 Service Unavailable"] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await.unwrap();
                let resp = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                s.write_all(resp.as_bytes()).await.unwrap();
            }
        });
        assert_eq!(
            http_probe(addr, "/health", Duration::from_secs(5)).await,
            Ok(200)
        );
        assert_eq!(
            http_probe(addr, "/health", Duration::from_secs(5)).await,
            Err("status 503".to_owned())
        );
        server.await.unwrap();
        let refused = http_probe(addr, "/health", Duration::from_secs(5)).await;
        assert!(refused.unwrap_err().contains("connect"));
    }
}
