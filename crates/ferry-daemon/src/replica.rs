//! Replicas: one hardened container per replica per revision, labelled, on the app's
//! network, published on loopback; started, health-gated, drained and removed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use ferry_engine::{ContainerSpec, HealthWait, HttpProbe, Identity, Publish, Resources};
use ferry_spec::Spec;

/// The label marking containers a ferry daemon started for a deploy.
pub const LABEL_DEPLOY: &str = "ferry.deploy";
/// The label naming the daemon (a fingerprint of its state directory) that owns a
/// container: a restarted daemon adopts or removes only its own containers.
pub const LABEL_DAEMON: &str = "ferry.daemon";
/// The label naming the rollout (its id in the store) that started a container: a
/// restarted daemon tells the replicas of an interrupted rollout from older ones.
pub const LABEL_ROLLOUT: &str = "ferry.rollout";

/// One replica the daemon knows about.
#[derive(Debug)]
pub(crate) struct Replica {
    /// The replica id (also the container name).
    pub id: ferry_rollout::ReplicaId,
    /// The published address, once known.
    pub addr: Option<SocketAddr>,
    /// Whether it was added to the proxy.
    pub routed: bool,
    /// The task starting it, aborted when it is stopped early.
    pub task: Option<tokio::task::AbortHandle>,
}

/// The hardened container spec of replica `name` of `revision`.
pub(crate) fn container_spec(
    daemon: &str,
    name: &str,
    image: &str,
    env: &str,
    revision: &str,
    spec: &Spec,
) -> ContainerSpec {
    let app = spec.app.as_str();
    let web = spec.web.clone().unwrap_or_default();
    let identity = Identity {
        app: app.to_owned(),
        env: env.to_owned(),
        role: "web".to_owned(),
        revision: revision.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let mut c = ContainerSpec::new(name, image, identity);
    c.labels.insert(LABEL_DEPLOY.to_owned(), "true".to_owned());
    c.labels.insert(LABEL_DAEMON.to_owned(), daemon.to_owned());
    c.command = web.command.clone();
    c.env = spec
        .env
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
        .collect::<BTreeMap<_, _>>();
    c.resources = resources(&web.resources);
    let security = &spec.security;
    c.allow_root = security.allow_root;
    c.read_only_root = security.read_only_root_fs;
    c.cap_add = security.cap_add.clone();
    c.user = security.user.clone();
    c.tmpfs = security
        .tmpfs
        .iter()
        .map(|path| (path.clone(), "rw,noexec,nosuid,nodev,size=64m".to_owned()))
        .collect();
    c.stop_timeout = web.stop_timeout.as_std();
    c.network = Some(ferry_engine::network_name(app, env));
    c.aliases = vec![app.to_owned()];
    c.publish = Some(Publish::loopback(web.port));
    c
}

/// The engine's limits for the spec's `resources` (the engine's defaults where unset).
pub(crate) fn resources(spec: &ferry_spec::Resources) -> Resources {
    let defaults = Resources::default();
    Resources {
        memory_bytes: spec.memory.map_or(defaults.memory_bytes, |m| m.bytes()),
        nano_cpus: spec.cpus.map_or(defaults.nano_cpus, |cpus| {
            // cpus is validated positive and small; rounding to whole nanocpus is exact enough.
            (cpus * 1_000_000_000.0).round().max(0.0) as u64
        }),
        pids: spec.pids.unwrap_or(defaults.pids),
    }
}

/// How to wait for a replica at `addr` to become healthy.
pub(crate) fn health_wait(spec: &Spec, addr: SocketAddr, timeout: Duration) -> HealthWait {
    let web = spec.web.clone().unwrap_or_default();
    let probe = web.health.as_ref().map(|h| HttpProbe {
        addr,
        path: web.readiness_path.clone().unwrap_or_else(|| h.path.clone()),
        interval: h.interval.as_std().min(Duration::from_secs(1)),
        timeout: h.timeout.as_std(),
        healthy_threshold: h.healthy_threshold.max(1),
        unhealthy_threshold: h.unhealthy_threshold.max(1),
        startup_grace: h.start_period.as_std(),
    });
    HealthWait { timeout, probe }
}
