//! Containers: a hardened-by-default spec, create and start, list, stop, remove, logs.
//!
//! Hardening is the default and every relaxation is an explicit field: a non-root user
//! (root is refused unless `allow_root`), a read-only root filesystem with a tmpfs `/tmp`,
//! all capabilities dropped, `no-new-privileges`, memory/CPU/pids limits, a restart policy
//! and rotated json-file logs. Secrets are files under `/run/secrets` bind-mounted from
//! 0600 host files owned by the container's user, so their values never appear in
//! `docker inspect`.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, HostConfigLogConfig, Mount,
    MountTypeEnum, NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, LogsOptions, RemoveContainerOptions,
    StopContainerOptions,
};
use futures_util::{Stream, StreamExt};

use crate::engine::Engine;
use crate::error::{EngineError, api};
use crate::image::label_filters;

/// Label: the app name.
pub const LABEL_APP: &str = "ferry.app";
/// Label: the environment (staging, production, ...).
pub const LABEL_ENV: &str = "ferry.env";
/// Label: the role (`web`, a worker name, `accessory`, `hook`).
pub const LABEL_ROLE: &str = "ferry.role";
/// Label: the revision number or id.
pub const LABEL_REVISION: &str = "ferry.revision";
/// Label: the ferry version that created the container.
pub const LABEL_VERSION: &str = "ferry.version";
/// Label: where the container's secret files live on the host (removed with it).
pub const LABEL_SECRETS_DIR: &str = "ferry.secrets-dir";

/// Where secret files appear inside the container.
pub const SECRETS_MOUNT: &str = "/run/secrets";

/// The identity labels every ferry container carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// App name.
    pub app: String,
    /// Environment name.
    pub env: String,
    /// Role name.
    pub role: String,
    /// Revision.
    pub revision: String,
    /// ferry's version.
    pub version: String,
}

impl Identity {
    /// The labels, keyed by the `ferry.*` names.
    pub fn labels(&self) -> BTreeMap<String, String> {
        [
            (LABEL_APP, &self.app),
            (LABEL_ENV, &self.env),
            (LABEL_ROLE, &self.role),
            (LABEL_REVISION, &self.revision),
            (LABEL_VERSION, &self.version),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect()
    }
}

/// A secret value. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    /// The name: the file name under `/run/secrets`, or the variable name in env mode.
    pub name: String,
    value: String,
}

impl Secret {
    /// A secret called `name` holding `value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }

    /// The value, for callers that must recognise it (to redact it from output); never
    /// print or log it.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({}: <redacted>)", self.name)
    }
}

/// How secrets reach the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretMode {
    /// As read-only files `/run/secrets/NAME`, from 0600 host files written under `dir`
    /// (one sub-directory per container). The default, and the only mode that keeps
    /// values out of `docker inspect`.
    Files {
        /// Host directory for the secret files (e.g. `.ferry/secrets`).
        dir: PathBuf,
    },
    /// As environment variables (visible in `docker inspect`; an explicit relaxation).
    Env,
}

/// Resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resources {
    /// Memory limit in bytes (swap is limited to the same, i.e. no swap).
    pub memory_bytes: u64,
    /// CPU limit in billionths of a CPU (`1_000_000_000` = one CPU).
    pub nano_cpus: u64,
    /// Maximum number of processes/threads.
    pub pids: u32,
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            memory_bytes: 256 * 1024 * 1024,
            nano_cpus: 1_000_000_000,
            pids: 256,
        }
    }
}

/// Restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Never restart.
    No,
    /// Restart after a non-zero exit, at most this many times.
    OnFailure(u32),
    /// Restart unless stopped by an operator.
    UnlessStopped,
    /// Always restart.
    Always,
}

/// json-file log rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRotation {
    /// Size of one file, in Docker's notation (`10m`).
    pub max_size: String,
    /// Number of files kept.
    pub max_file: u32,
}

impl Default for LogRotation {
    fn default() -> Self {
        Self {
            max_size: "10m".to_owned(),
            max_file: 3,
        }
    }
}

/// Docker HEALTHCHECK settings that override the image's. A zero duration keeps the
/// image's value (the engine's rule); durations below 1 ms are raised to 1 ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// The command (`["CMD", "/hello", "healthcheck"]`); `None` keeps the image's.
    pub test: Option<Vec<String>>,
    /// Time between checks.
    pub interval: Duration,
    /// Timeout of one check.
    pub timeout: Duration,
    /// Consecutive failures that make the container unhealthy.
    pub retries: u32,
    /// Failures during this time after start do not count.
    pub start_period: Duration,
}

fn health_nanos(d: Duration) -> i64 {
    if d.is_zero() {
        0
    } else {
        i64::try_from(d.as_nanos())
            .unwrap_or(i64::MAX)
            .max(1_000_000)
    }
}

/// A published port: container port → host address (host port 0 lets the engine pick).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    /// The container's TCP port.
    pub container_port: u16,
    /// The host address to bind (default 127.0.0.1: never exposed beyond the host).
    pub host_ip: IpAddr,
    /// The host port; 0 picks a free one.
    pub host_port: u16,
}

impl Publish {
    /// Publishes `container_port` on 127.0.0.1 at a port the engine picks.
    pub fn loopback(container_port: u16) -> Self {
        Self {
            container_port,
            host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            host_port: 0,
        }
    }
}

/// A container ferry should run. [`ContainerSpec::new`] gives the hardened defaults.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// Container name (unique on the engine).
    pub name: String,
    /// Image reference or id.
    pub image: String,
    /// Identity labels.
    pub identity: Identity,
    /// More labels.
    pub labels: BTreeMap<String, String>,
    /// Command (arguments to the entrypoint); `None` keeps the image's.
    pub command: Option<Vec<String>>,
    /// Entrypoint override.
    pub entrypoint: Option<Vec<String>>,
    /// `uid[:gid]` or a user name; `None` keeps the image's `USER`.
    pub user: Option<String>,
    /// Allow running as root (an explicit relaxation).
    pub allow_root: bool,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Secrets.
    pub secrets: Vec<Secret>,
    /// How secrets are delivered.
    pub secret_mode: SecretMode,
    /// Resource limits.
    pub resources: Resources,
    /// Read-only root filesystem (default true).
    pub read_only_root: bool,
    /// tmpfs mounts: path → mount options (default `/tmp`).
    pub tmpfs: BTreeMap<String, String>,
    /// Capabilities added back after dropping all (default none).
    pub cap_add: Vec<String>,
    /// Restart policy.
    pub restart: Restart,
    /// Log rotation.
    pub log: LogRotation,
    /// Network to attach to (created when missing), with DNS aliases on it.
    pub network: Option<String>,
    /// Aliases on `network`.
    pub aliases: Vec<String>,
    /// Published port.
    pub publish: Option<Publish>,
    /// Time between the stop signal and SIGKILL.
    pub stop_timeout: Duration,
    /// Stop signal override (default: the image's, normally SIGTERM).
    pub stop_signal: Option<String>,
    /// HEALTHCHECK override (default: the image's).
    pub healthcheck: Option<Healthcheck>,
}

impl ContainerSpec {
    /// A hardened spec for `image` named `name`.
    pub fn new(name: impl Into<String>, image: impl Into<String>, identity: Identity) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            identity,
            labels: BTreeMap::new(),
            command: None,
            entrypoint: None,
            user: None,
            allow_root: false,
            env: BTreeMap::new(),
            secrets: Vec::new(),
            secret_mode: SecretMode::Files {
                dir: PathBuf::from(".ferry/secrets"),
            },
            resources: Resources::default(),
            read_only_root: true,
            tmpfs: BTreeMap::from([(
                "/tmp".to_owned(),
                "rw,noexec,nosuid,nodev,size=64m".to_owned(),
            )]),
            cap_add: Vec::new(),
            restart: Restart::UnlessStopped,
            log: LogRotation::default(),
            network: None,
            aliases: Vec::new(),
            publish: None,
            stop_timeout: Duration::from_secs(10),
            stop_signal: None,
            healthcheck: None,
        }
    }
}

/// Whether `user` (a `USER` value) means root.
pub fn is_root_user(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or_default().trim();
    name.is_empty() || name == "0" || name == "root"
}

/// Parses a numeric `uid[:gid]` (gid defaults to uid).
fn numeric_user(user: &str) -> Option<(u32, u32)> {
    let (uid, gid) = match user.split_once(':') {
        Some((u, g)) => (u.parse().ok()?, g.parse().ok()?),
        None => {
            let u = user.parse().ok()?;
            (u, u)
        }
    };
    Some((uid, gid))
}

/// A secret file to bind-mount: host file → `/run/secrets/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecretFile {
    host_path: PathBuf,
    name: String,
}

/// The engine request for `spec` (pure): `user` is the effective user, `secret_files`
/// the already written secret files.
pub(crate) fn create_body(
    spec: &ContainerSpec,
    user: &str,
    secret_files: &[SecretFile],
    secrets_dir: Option<&Path>,
) -> ContainerCreateBody {
    let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if spec.secret_mode == SecretMode::Env {
        env.extend(
            spec.secrets
                .iter()
                .map(|s| format!("{}={}", s.name, s.value)),
        );
    }
    let mut labels: HashMap<String, String> = spec.identity.labels().into_iter().collect();
    labels.extend(spec.labels.clone());
    if let Some(dir) = secrets_dir {
        labels.insert(
            LABEL_SECRETS_DIR.to_owned(),
            dir.to_string_lossy().into_owned(),
        );
    }
    let mounts: Vec<Mount> = secret_files
        .iter()
        .map(|f| Mount {
            target: Some(format!("{SECRETS_MOUNT}/{}", f.name)),
            source: Some(f.host_path.to_string_lossy().into_owned()),
            typ: Some(MountTypeEnum::BIND),
            read_only: Some(true),
            ..Default::default()
        })
        .collect();
    let restart = match spec.restart {
        Restart::No => RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        },
        Restart::OnFailure(n) => RestartPolicy {
            name: Some(RestartPolicyNameEnum::ON_FAILURE),
            maximum_retry_count: Some(i64::from(n)),
        },
        Restart::UnlessStopped => RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        },
        Restart::Always => RestartPolicy {
            name: Some(RestartPolicyNameEnum::ALWAYS),
            maximum_retry_count: None,
        },
    };
    let memory = i64::try_from(spec.resources.memory_bytes).unwrap_or(i64::MAX);
    let (exposed_ports, port_bindings) = match spec.publish {
        Some(p) => {
            let key = format!("{}/tcp", p.container_port);
            let binding = PortBinding {
                host_ip: Some(p.host_ip.to_string()),
                host_port: Some(if p.host_port == 0 {
                    String::new()
                } else {
                    p.host_port.to_string()
                }),
            };
            (
                Some(HashMap::from([(key.clone(), HashMap::new())])),
                Some(HashMap::from([(key, Some(vec![binding]))])),
            )
        }
        None => (None, None),
    };
    let host_config = HostConfig {
        readonly_rootfs: Some(spec.read_only_root),
        tmpfs: (!spec.tmpfs.is_empty()).then(|| spec.tmpfs.clone().into_iter().collect()),
        cap_drop: Some(vec!["ALL".to_owned()]),
        cap_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.clone()),
        security_opt: Some(vec!["no-new-privileges".to_owned()]),
        memory: Some(memory),
        memory_swap: Some(memory),
        nano_cpus: Some(i64::try_from(spec.resources.nano_cpus).unwrap_or(i64::MAX)),
        pids_limit: Some(i64::from(spec.resources.pids)),
        restart_policy: Some(restart),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".to_owned()),
            config: Some(HashMap::from([
                ("max-size".to_owned(), spec.log.max_size.clone()),
                ("max-file".to_owned(), spec.log.max_file.to_string()),
            ])),
        }),
        network_mode: spec.network.clone(),
        port_bindings,
        mounts: (!mounts.is_empty()).then_some(mounts),
        init: Some(false),
        ..Default::default()
    };
    let networking_config = spec.network.as_ref().map(|net| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            net.clone(),
            EndpointSettings {
                aliases: (!spec.aliases.is_empty()).then(|| spec.aliases.clone()),
                ..Default::default()
            },
        )])),
    });
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        user: Some(user.to_owned()),
        env: Some(env),
        cmd: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        labels: Some(labels),
        exposed_ports,
        stop_signal: spec.stop_signal.clone(),
        healthcheck: spec.healthcheck.as_ref().map(|h| HealthConfig {
            test: h.test.clone(),
            interval: Some(health_nanos(h.interval)),
            timeout: Some(health_nanos(h.timeout)),
            retries: Some(i64::from(h.retries)),
            start_period: Some(health_nanos(h.start_period)),
            start_interval: None,
        }),
        stop_timeout: Some(i64::try_from(spec.stop_timeout.as_secs()).unwrap_or(i64::MAX)),
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    }
}

/// A started container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningContainer {
    /// Container id.
    pub id: String,
    /// Container name.
    pub name: String,
    /// The effective user.
    pub user: String,
    /// Host address of the published port, when one was published.
    pub host_addr: Option<SocketAddr>,
    /// The container's address on its network, when attached to one.
    pub network_ip: Option<IpAddr>,
    /// Whether the container has a Docker HEALTHCHECK (the image's or the spec's).
    pub has_healthcheck: bool,
}

/// A container as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Container id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// Image reference it was created from.
    pub image: String,
    /// The id (`sha256:...`) of the image it runs.
    pub image_id: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `running`, `exited`, ...
    pub state: String,
    /// Human status, e.g. `Up 3 minutes (healthy)`.
    pub status: String,
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A chunk of container output (usually one line, with its newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The stream.
    pub stream: LogStream,
    /// The text.
    pub text: String,
}

pub(crate) fn not_found_or(
    kind: &'static str,
    name: &str,
    call: String,
) -> impl FnOnce(bollard::errors::Error) -> EngineError {
    let name = name.to_owned();
    move |e| match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => EngineError::NotFound { kind, name },
        e => api(call)(e),
    }
}

impl Engine {
    /// Creates and starts a container from `spec`, hardened as the spec says.
    pub async fn run(&self, spec: &ContainerSpec) -> Result<RunningContainer, EngineError> {
        let image = self.inspect_image(&spec.image).await?;
        let user = spec.user.clone().unwrap_or_else(|| image.user.clone());
        if is_root_user(&user) && !spec.allow_root {
            return Err(EngineError::RootRefused {
                container: spec.name.clone(),
                user,
            });
        }
        if let Some(net) = &spec.network {
            let mut labels = spec.identity.labels();
            labels.remove(LABEL_ROLE);
            labels.remove(LABEL_REVISION);
            self.ensure_network(net, &labels).await?;
        }
        let (secret_files, secrets_dir) = match (&spec.secret_mode, spec.secrets.is_empty()) {
            (SecretMode::Files { dir }, false) => {
                let (files, dir) = write_secret_files(spec, dir, &user)?;
                (files, Some(dir))
            }
            _ => (Vec::new(), None),
        };
        let body = create_body(spec, &user, &secret_files, secrets_dir.as_deref());
        let options = CreateContainerOptions {
            name: Some(spec.name.clone()),
            platform: String::new(),
        };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(api(format!("create container {}", spec.name)));
        let created = match created {
            Ok(c) => c,
            Err(e) => {
                if let Some(dir) = &secrets_dir {
                    let _ = std::fs::remove_dir_all(dir);
                }
                return Err(e);
            }
        };
        if let Err(e) = self
            .docker
            .start_container(
                &created.id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
        {
            // Leave nothing half-made behind.
            let _ = self.remove(&created.id, true).await;
            return Err(api(format!("start container {}", spec.name))(e));
        }
        let inspect = self
            .docker
            .inspect_container(
                &created.id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(api(format!("inspect container {}", spec.name)))?;
        let settings = inspect.network_settings.unwrap_or_default();
        let host_addr = spec.publish.and_then(|p| {
            let key = format!("{}/tcp", p.container_port);
            let bindings = settings.ports.as_ref()?.get(&key)?.as_ref()?;
            bindings.iter().find_map(|b| {
                let port: u16 = b.host_port.as_ref()?.parse().ok()?;
                Some(SocketAddr::new(p.host_ip, port))
            })
        });
        let network_ip = spec.network.as_ref().and_then(|net| {
            let ip = settings.networks.as_ref()?.get(net)?.ip_address.as_ref()?;
            ip.parse().ok()
        });
        Ok(RunningContainer {
            id: created.id,
            name: spec.name.clone(),
            user,
            host_addr,
            network_ip,
            has_healthcheck: match spec.healthcheck.as_ref().and_then(|h| h.test.as_ref()) {
                Some(test) => test.first().is_some_and(|t| t != "NONE"),
                None => image.has_healthcheck,
            },
        })
    }

    /// Lists containers (running or not) carrying all the given labels.
    pub async fn list_containers(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<ContainerInfo>, EngineError> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(label_filters(labels)),
            ..Default::default()
        };
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(api("list containers"))?;
        Ok(list
            .into_iter()
            .map(|c| ContainerInfo {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .unwrap_or_default(),
                image: c.image.unwrap_or_default(),
                image_id: c.image_id.unwrap_or_default(),
                labels: c.labels.unwrap_or_default().into_iter().collect(),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                status: c.status.unwrap_or_default(),
            })
            .collect())
    }

    /// Stops a container: its stop signal (SIGTERM unless overridden), then SIGKILL after
    /// `timeout`. Stopping a stopped container is not an error.
    pub async fn stop(&self, container: &str, timeout: Duration) -> Result<(), EngineError> {
        let options = StopContainerOptions {
            t: Some(i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX)),
            signal: None,
        };
        match self.docker.stop_container(container, Some(options)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(not_found_or(
                "container",
                container,
                format!("stop container {container}"),
            )(e)),
        }
    }

    /// Stops a container with the stop signal and timeout it was created with (its own
    /// `StopSignal` and `StopTimeout`), then SIGKILL. Stopping a stopped container is not
    /// an error.
    pub async fn stop_as_configured(&self, container: &str) -> Result<(), EngineError> {
        let options = StopContainerOptions {
            t: None,
            signal: None,
        };
        match self.docker.stop_container(container, Some(options)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(not_found_or(
                "container",
                container,
                format!("stop container {container}"),
            )(e)),
        }
    }

    /// Removes a container (`force` kills it first when running) and its secret files.
    pub async fn remove(&self, container: &str, force: bool) -> Result<(), EngineError> {
        let secrets_dir = self
            .docker
            .inspect_container(
                container,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .ok()
            .and_then(|i| i.config?.labels?.remove(LABEL_SECRETS_DIR));
        let options = RemoveContainerOptions {
            force,
            v: true,
            link: false,
        };
        self.docker
            .remove_container(container, Some(options))
            .await
            .map_err(not_found_or(
                "container",
                container,
                format!("remove container {container}"),
            ))?;
        if let Some(dir) = secrets_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        Ok(())
    }

    /// Stops then removes a container, waiting up to `timeout` for it to exit.
    pub async fn stop_and_remove(
        &self,
        container: &str,
        timeout: Duration,
    ) -> Result<(), EngineError> {
        self.stop(container, timeout).await?;
        self.remove(container, true).await
    }

    /// The container's output: the last `tail` lines (all when `None`), then new output
    /// as it comes when `follow` is set.
    pub fn logs(
        &self,
        container: &str,
        follow: bool,
        tail: Option<usize>,
    ) -> impl Stream<Item = Result<LogLine, EngineError>> + use<> {
        let options = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: tail.map_or_else(|| "all".to_owned(), |n| n.to_string()),
            ..Default::default()
        };
        let call = format!("logs of container {container}");
        self.docker
            .logs(container, Some(options))
            .filter_map(move |item| {
                let call = call.clone();
                async move {
                    match item {
                        Ok(
                            bollard::container::LogOutput::StdOut { message }
                            | bollard::container::LogOutput::Console { message },
                        ) => Some(Ok(LogLine {
                            stream: LogStream::Stdout,
                            text: String::from_utf8_lossy(&message).into_owned(),
                        })),
                        Ok(bollard::container::LogOutput::StdErr { message }) => {
                            Some(Ok(LogLine {
                                stream: LogStream::Stderr,
                                text: String::from_utf8_lossy(&message).into_owned(),
                            }))
                        }
                        Ok(bollard::container::LogOutput::StdIn { .. }) => None,
                        Err(e) => Some(Err(api(call)(e))),
                    }
                }
            })
    }

    /// The last `n` lines of a container's output, joined (for failure reports).
    pub async fn tail_logs(&self, container: &str, n: usize) -> Vec<String> {
        let chunks: Vec<Result<LogLine, EngineError>> =
            self.logs(container, false, Some(n)).collect().await;
        chunks
            .into_iter()
            .filter_map(Result::ok)
            .flat_map(|l| l.text.lines().map(str::to_owned).collect::<Vec<_>>())
            .collect()
    }
}

/// Writes each secret to `<dir>/<container>/<NAME>`, mode 0600, owned by the container's
/// numeric user so it can read it and nobody else on the host can.
fn write_secret_files(
    spec: &ContainerSpec,
    dir: &Path,
    user: &str,
) -> Result<(Vec<SecretFile>, PathBuf), EngineError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

    let Some((uid, gid)) = numeric_user(user) else {
        return Err(EngineError::InvalidSpec {
            container: spec.name.clone(),
            reason: format!(
                "secret files need a numeric user (uid[:gid]) to be owned by, not {user:?}; set the user explicitly"
            ),
        });
    };
    for s in &spec.secrets {
        let valid = !s.name.is_empty()
            && s.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && !s.name.starts_with('.');
        if !valid {
            return Err(EngineError::InvalidSpec {
                container: spec.name.clone(),
                reason: format!(
                    "secret name {:?} must be letters, digits, `_`, `-` or `.`",
                    s.name
                ),
            });
        }
    }
    let base = std::path::absolute(dir).map_err(|source| EngineError::SecretFile {
        path: dir.to_path_buf(),
        source,
    })?;
    let container_dir = base.join(&spec.name);
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EngineError::SecretFile { path, source }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&container_dir)
        .map_err(err(&container_dir))?;
    // The engine (root) resolves bind sources, so the host directories stay 0700; inside
    // the container only the file's own owner and mode count.
    let mut files = Vec::new();
    for s in &spec.secrets {
        let path = container_dir.join(&s.name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(err(&path))?;
        f.write_all(s.value.as_bytes()).map_err(err(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(err(&path))?;
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).map_err(err(&path))?;
        files.push(SecretFile {
            host_path: path,
            name: s.name.clone(),
        });
    }
    Ok((files, container_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec::new(
            "hello-web-1",
            "hello:abc",
            Identity {
                app: "hello".into(),
                env: "staging".into(),
                role: "web".into(),
                revision: "3".into(),
                version: "0.1.0".into(),
            },
        )
    }

    #[test]
    fn the_default_spec_is_hardened() {
        let body = create_body(&spec(), "65532:65532", &[], None);
        let hc = body.host_config.unwrap();
        assert_eq!(hc.readonly_rootfs, Some(true));
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(hc.cap_add, None);
        assert_eq!(hc.security_opt, Some(vec!["no-new-privileges".to_owned()]));
        assert_eq!(hc.memory, Some(256 * 1024 * 1024));
        assert_eq!(hc.memory_swap, hc.memory);
        assert_eq!(hc.nano_cpus, Some(1_000_000_000));
        assert_eq!(hc.pids_limit, Some(256));
        assert!(hc.tmpfs.unwrap().contains_key("/tmp"));
        let log = hc.log_config.unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        assert_eq!(log.config.unwrap()["max-file"], "3");
        assert_eq!(
            hc.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        assert_eq!(body.user.as_deref(), Some("65532:65532"));
        assert!(
            body.healthcheck.is_none(),
            "the image's HEALTHCHECK is kept by default"
        );
        let labels = body.labels.unwrap();
        assert_eq!(labels[LABEL_APP], "hello");
        assert_eq!(labels[LABEL_REVISION], "3");
    }

    #[test]
    fn secrets_in_file_mode_never_reach_the_environment() {
        let mut s = spec();
        s.env.insert("PLAIN".into(), "1".into());
        s.secrets.push(Secret::new("DB_PASSWORD", "hunter2"));
        let files = [SecretFile {
            host_path: "/s/hello-web-1/DB_PASSWORD".into(),
            name: "DB_PASSWORD".into(),
        }];
        let body = create_body(&s, "1000", &files, Some(Path::new("/s/hello-web-1")));
        let json = serde_json::to_string(&body).unwrap();
        assert!(!json.contains("hunter2"), "{json}");
        assert_eq!(body.env.unwrap(), ["PLAIN=1"]);
        let mount = &body.host_config.unwrap().mounts.unwrap()[0];
        assert_eq!(mount.target.as_deref(), Some("/run/secrets/DB_PASSWORD"));
        assert_eq!(mount.read_only, Some(true));
        assert!(!format!("{s:?}").contains("hunter2"));

        s.secret_mode = SecretMode::Env;
        let body = create_body(&s, "1000", &[], None);
        assert!(
            body.env
                .unwrap()
                .contains(&"DB_PASSWORD=hunter2".to_owned())
        );
    }

    #[test]
    fn publish_binds_loopback_with_an_engine_chosen_port() {
        let mut s = spec();
        s.publish = Some(Publish::loopback(8080));
        s.network = Some("ferry-hello-staging".into());
        s.aliases = vec!["web".into()];
        let body = create_body(&s, "1000", &[], None);
        let hc = body.host_config.unwrap();
        let binding = &hc.port_bindings.unwrap()["8080/tcp"].clone().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some(""));
        assert_eq!(hc.network_mode.as_deref(), Some("ferry-hello-staging"));
        let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(
            endpoints["ferry-hello-staging"].aliases,
            Some(vec!["web".to_owned()])
        );
    }

    #[test]
    fn healthcheck_overrides_keep_zero_as_inherit() {
        let mut s = spec();
        s.healthcheck = Some(Healthcheck {
            test: None,
            interval: Duration::from_millis(500),
            timeout: Duration::from_micros(10),
            retries: 2,
            start_period: Duration::ZERO,
        });
        let hc = create_body(&s, "1000", &[], None).healthcheck.unwrap();
        assert_eq!(hc.interval, Some(500_000_000));
        assert_eq!(
            hc.timeout,
            Some(1_000_000),
            "raised to the engine's minimum"
        );
        assert_eq!(hc.start_period, Some(0));
        assert_eq!(hc.retries, Some(2));
    }

    #[test]
    fn root_users_are_recognised() {
        for root in ["", "0", "root", "0:0", "root:wheel"] {
            assert!(is_root_user(root), "{root:?}");
        }
        for user in ["65532:65532", "1000", "app"] {
            assert!(!is_root_user(user), "{user:?}");
        }
        assert_eq!(numeric_user("10:20"), Some((10, 20)));
        assert_eq!(numeric_user("10"), Some((10, 10)));
        assert_eq!(numeric_user("app"), None);
    }
}
