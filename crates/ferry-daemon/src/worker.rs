//! Worker roles (`[workers.<name>]`): containers of a revision's image, rolled with the
//! web role but never proxied.
//!
//! Design note. A rollout starts the new revision's workers before any traffic moves and
//! waits until each runs (healthy, when its image has a HEALTHCHECK); a worker that does
//! not start fails the rollout before traffic moves. The old revision's workers stop
//! only once the new revision is live, each with the stop signal and timeout it was
//! created with; a rollout that rolls back or is aborted stops the new workers instead,
//! so the old ones never stopped. Workers are found by label (app, env, role, revision,
//! daemon), so what a rollout left is visible to the next one and to a restarted daemon.

use std::sync::Arc;
use std::time::Duration;

use ferry_engine::{
    ContainerSpec, HealthSource, HealthWait, LABEL_APP, LABEL_ENV, LABEL_REVISION, LABEL_ROLE,
};
use ferry_spec::{Spec, Worker};

use crate::controller::{Shared, error_chain};
use crate::replica::{self, LABEL_DAEMON};

/// The role label of `pre_deploy`/`post_deploy` hook containers (never a worker name:
/// role names are DNS labels, and `hook` is reserved here).
pub(crate) const ROLE_HOOK: &str = "hook";
/// The role label of proxied replicas.
pub(crate) const ROLE_WEB: &str = "web";
/// A label recording a worker's stop signal (for the timeline's stop notes).
const LABEL_STOP_SIGNAL: &str = "ferry.stop-signal";

/// How long a new worker may take to run (and be healthy, with a HEALTHCHECK).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a worker without a HEALTHCHECK must keep running to count as started.
const SETTLE: Duration = Duration::from_secs(2);

/// Where a revision's workers come from.
pub(crate) struct Release<'a> {
    pub app: &'a str,
    pub env: &'a str,
    pub revision: &'a str,
    /// The rollout starting them (part of the container names).
    pub rollout: i64,
    pub image: &'a str,
    pub spec: &'a Spec,
}

/// The hardened container spec of worker `name` of `role`.
pub(crate) fn container_spec(
    daemon: &str,
    name: &str,
    release: &Release<'_>,
    role: &str,
    worker: &Worker,
) -> ContainerSpec {
    let mut c = replica::container_spec(
        daemon,
        name,
        release.image,
        release.env,
        release.revision,
        release.spec,
    );
    c.identity.role = role.to_owned();
    c.command = worker.command.clone();
    c.resources = replica::resources(&worker.resources);
    c.stop_timeout = worker.stop_timeout.as_std();
    c.stop_signal = worker.stop_signal.clone();
    c.labels.insert(
        LABEL_STOP_SIGNAL.to_owned(),
        worker
            .stop_signal
            .clone()
            .unwrap_or_else(|| "the image's (SIGTERM by default)".to_owned()),
    );
    c.publish = None;
    c.aliases = Vec::new();
    c
}

/// Starts every worker of the release and waits until each runs (healthy, with a
/// HEALTHCHECK). On failure the reason names the worker; what started stays for
/// [`stop`] to remove.
pub(crate) async fn start(shared: &Arc<Shared>, release: &Release<'_>) -> Result<usize, String> {
    let mut tasks = tokio::task::JoinSet::new();
    for (role, worker) in &release.spec.workers {
        for index in 1..=worker.replicas {
            let name = format!(
                "ferry-{}-{}-{}-r{}-{}-{index}",
                release.app,
                release.env,
                role.as_str(),
                release.revision,
                release.rollout
            );
            let mut container =
                container_spec(&shared.daemon_id, &name, release, role.as_str(), worker);
            let shared = shared.clone();
            let (env, spec) = (release.env.to_owned(), release.spec.clone());
            tasks.spawn(async move {
                crate::secret::inject(&shared, &env, &spec, &mut container)
                    .await
                    .map_err(|e| format!("worker {name}: {e}"))?;
                start_one(&shared, &container).await
            });
        }
    }
    let mut started = 0;
    let mut failure = None;
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => started += 1,
            Ok(Err(reason)) => {
                failure.get_or_insert(reason);
            }
            Err(e) => {
                failure.get_or_insert(format!("a worker start task failed: {e}"));
            }
        }
    }
    match failure {
        Some(reason) => Err(reason),
        None => Ok(started),
    }
}

async fn start_one(shared: &Shared, container: &ContainerSpec) -> Result<(), String> {
    let name = container.name.as_str();
    // A container of this name left by an earlier daemon would block the create.
    let _ = shared.engine.remove(name, true).await;
    if let Some(net) = &container.network {
        let _guard = shared.networks.lock().await;
        let mut labels = container.identity.labels();
        labels.retain(|k, _| k == LABEL_APP || k == LABEL_ENV);
        shared
            .engine
            .ensure_network(net, &labels)
            .await
            .map_err(|e| format!("worker {name}: {}", error_chain(&e)))?;
    }
    let running = shared
        .engine
        .run(container)
        .await
        .map_err(|e| format!("worker {name} did not start: {}", error_chain(&e)))?;
    let wait = HealthWait {
        timeout: START_TIMEOUT,
        probe: None,
    };
    let source = shared
        .engine
        .wait_healthy(&running.id, &wait)
        .await
        .map_err(|e| format!("worker {name} did not become healthy: {}", error_chain(&e)))?;
    if source == HealthSource::Running {
        // Without a health check, "running" must last a moment: a crash on start counts.
        tokio::time::sleep(SETTLE).await;
        let status = shared
            .engine
            .status(&running.id)
            .await
            .map_err(|e| format!("worker {name}: {}", error_chain(&e)))?;
        if !status.running {
            let output = shared.engine.tail_logs(&running.id, 5).await;
            return Err(format!(
                "worker {name} exited with code {} right after starting; last output: {}",
                status.exit_code,
                output.join(" | ")
            ));
        }
    }
    Ok(())
}

/// Stops and removes this daemon's worker containers of `app` in `env` whose revision
/// `select` picks, each with its own stop signal and timeout, all at once. Returns one
/// timeline line per container (its exit code and last output, secrets redacted).
pub(crate) async fn stop(
    shared: &Arc<Shared>,
    app: &str,
    env: &str,
    select: impl Fn(&str) -> bool,
    secrets: &[String],
) -> Vec<String> {
    let labels = [
        (LABEL_APP, app),
        (LABEL_ENV, env),
        (LABEL_DAEMON, shared.daemon_id.as_str()),
    ];
    let containers = match shared.engine.list_containers(&labels).await {
        Ok(c) => c,
        Err(e) => return vec![format!("cannot list the workers: {}", error_chain(&e))],
    };
    let mut tasks = tokio::task::JoinSet::new();
    for c in containers {
        let label = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
        let (role, revision) = (label(LABEL_ROLE), label(LABEL_REVISION));
        if role == ROLE_WEB || role == ROLE_HOOK || role.is_empty() || !select(&revision) {
            continue;
        }
        let signal = label(LABEL_STOP_SIGNAL);
        let shared = shared.clone();
        let secrets = secrets.to_vec();
        tasks.spawn(async move {
            let stopped = shared.engine.stop_as_configured(&c.id).await;
            let exit = shared.engine.status(&c.id).await.map(|s| s.exit_code);
            let output: Vec<String> = shared
                .engine
                .tail_logs(&c.id, 3)
                .await
                .iter()
                .map(|l| crate::secret::redact(l, &secrets))
                .collect();
            let _ = shared.engine.remove(&c.id, true).await;
            match (stopped, exit) {
                (Ok(()), Ok(code)) => format!(
                    "stopped worker {} (role {role}, revision {revision}) with {signal}: exit code {code}; last output: {}",
                    c.name,
                    output.join(" | ")
                ),
                (Err(e), _) | (_, Err(e)) => format!(
                    "worker {} (role {role}, revision {revision}) removed after a failed stop: {}",
                    c.name,
                    error_chain(&e)
                ),
            }
        });
    }
    let mut notes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(note) = done {
            notes.push(note);
        }
    }
    notes.sort();
    notes
}
