//! A container's current state, waiting for it to exit, and one-off containers (hooks
//! such as database migrations) that run to completion.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bollard::query_parameters::{InspectContainerOptions, WaitContainerOptions};
use futures_util::StreamExt;

use crate::container::{ContainerSpec, Restart};
use crate::engine::Engine;
use crate::error::{EngineError, api};

/// What the engine knows about a container right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    /// Container id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// `created`, `running`, `restarting`, `exited`, `dead`, ...
    pub state: String,
    /// Whether it is running (and not restarting).
    pub running: bool,
    /// Exit code of the last run (0 while running).
    pub exit_code: i64,
    /// Whether the kernel killed it for exceeding its memory limit.
    pub oom_killed: bool,
    /// How often the engine restarted it (restart policy); a crash loop shows here.
    pub restart_count: i64,
    /// Docker health status (`starting`, `healthy`, `unhealthy`) when the image has a
    /// HEALTHCHECK.
    pub health: Option<String>,
    /// Labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Addresses on its networks, by network name.
    pub network_ips: std::collections::BTreeMap<String, IpAddr>,
    /// Published ports: `8080/tcp` → host address.
    pub published: std::collections::BTreeMap<String, SocketAddr>,
}

/// A finished one-off container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOff {
    /// Its exit code.
    pub exit_code: i64,
    /// Its output (stdout and stderr interleaved), line by line.
    pub output: Vec<String>,
}

impl Engine {
    /// The current state of a container.
    pub async fn status(&self, container: &str) -> Result<ContainerStatus, EngineError> {
        let info = self
            .docker
            .inspect_container(container, None::<InspectContainerOptions>)
            .await
            .map_err(|e| match e {
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                } => EngineError::NotFound {
                    kind: "container",
                    name: container.to_owned(),
                },
                e => api(format!("inspect container {container}"))(e),
            })?;
        let state = info.state.unwrap_or_default();
        let settings = info.network_settings.unwrap_or_default();
        let network_ips = settings
            .networks
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(net, ep)| Some((net, ep.ip_address?.parse().ok()?)))
            .collect();
        let published = settings
            .ports
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(port, bindings)| {
                let b = bindings?.into_iter().next()?;
                let ip: IpAddr = b.host_ip?.parse().ok()?;
                let host_port: u16 = b.host_port?.parse().ok()?;
                Some((port, SocketAddr::new(ip, host_port)))
            })
            .collect();
        Ok(ContainerStatus {
            id: info.id.unwrap_or_default(),
            name: info
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            state: state.status.map(|s| s.to_string()).unwrap_or_default(),
            running: state.running.unwrap_or(false) && !state.restarting.unwrap_or(false),
            exit_code: state.exit_code.unwrap_or(0),
            oom_killed: state.oom_killed.unwrap_or(false),
            restart_count: info.restart_count.unwrap_or(0),
            health: state
                .health
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none"),
            labels: info
                .config
                .and_then(|c| c.labels)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            network_ips,
            published,
        })
    }

    /// Waits until the container is not running and returns its exit code; `None` when
    /// it still runs after `timeout`.
    pub async fn wait_exit(
        &self,
        container: &str,
        timeout: Duration,
    ) -> Result<Option<i64>, EngineError> {
        let options = WaitContainerOptions {
            condition: "not-running".to_owned(),
        };
        let mut stream = self.docker.wait_container(container, Some(options));
        match tokio::time::timeout(timeout, stream.next()).await {
            Err(_) => Ok(None),
            Ok(None) => Ok(Some(self.status(container).await?.exit_code)),
            Ok(Some(Ok(resp))) => Ok(Some(resp.status_code)),
            // bollard turns a non-zero exit into an error; it is an answer here.
            Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => {
                Ok(Some(code))
            }
            Ok(Some(Err(e))) => Err(api(format!("wait for container {container}"))(e)),
        }
    }

    /// Runs `spec` to completion (never restarted, nothing published), returns its exit
    /// code and output, and removes it. Past `timeout` it is stopped and the result is
    /// an error. Hardening applies as for any container.
    pub async fn run_once(
        &self,
        spec: &ContainerSpec,
        timeout: Duration,
    ) -> Result<OneOff, EngineError> {
        let mut spec = spec.clone();
        spec.restart = Restart::No;
        spec.publish = None;
        let running = self.run(&spec).await?;
        let exit = self.wait_exit(&running.id, timeout).await;
        let exit = match exit {
            Ok(Some(code)) => code,
            Ok(None) => {
                let _ = self.stop(&running.id, spec.stop_timeout).await;
                let output = self.tail_logs(&running.id, 50).await;
                let _ = self.remove(&running.id, true).await;
                return Err(EngineError::OneOffTimeout {
                    container: spec.name.clone(),
                    timeout,
                    output,
                });
            }
            Err(e) => {
                let _ = self.remove(&running.id, true).await;
                return Err(e);
            }
        };
        let output: Vec<String> = self
            .logs(&running.id, false, None)
            .filter_map(|l| async move { l.ok() })
            .flat_map(|l| {
                futures_util::stream::iter(l.text.lines().map(str::to_owned).collect::<Vec<_>>())
            })
            .collect()
            .await;
        self.remove(&running.id, true).await?;
        Ok(OneOff {
            exit_code: exit,
            output,
        })
    }
}
