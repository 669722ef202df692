//! What a (re)started daemon does before serving the API: close rollouts an earlier run
//! left unfinished, route the live revision's running containers again, and remove this
//! daemon's containers of every other revision.
//!
//! This is the simple half of crash safety: an interrupted rollout is not resumed (it is
//! recorded as aborted), and the proxy listener is already open while routes are
//! restored, so requests in that short window get a 404.

use std::path::Path;
use std::time::Duration;

use ferry_engine::{LABEL_APP, LABEL_ENV, LABEL_REVISION};
use ferry_rollout::ReplicaId;
use ferry_spec::Spec;
use ferry_store::{RevisionStatus, RolloutOutcome};

use crate::controller::{self, Shared};
use crate::replica::{LABEL_DAEMON, Replica};

/// A fingerprint of the state directory: the daemon's identity on the engine.
pub(crate) fn daemon_id(state_dir: &Path) -> String {
    let path = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_owned());
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.to_string_lossy().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Recovers what it can; problems are logged, never fatal (the data plane comes first).
pub(crate) async fn recover(shared: &Shared) {
    let store = &shared.store;
    match store.unfinished_rollouts().await {
        Ok(rollouts) => {
            for r in rollouts {
                // Another daemon sharing the store may be driving it: its lock says so.
                if let Ok(Some(lock)) = store.lock_status(&r.app, &r.env).await
                    && !lock.expired
                    && lock.holder != controller::lock_holder(shared)
                {
                    continue;
                }
                let reason =
                    "the daemon restarted during the rollout (resuming is not implemented yet)";
                let _ = store
                    .finish_rollout(
                        r.id,
                        RolloutOutcome::Aborted,
                        Some(reason),
                        &r.state,
                        "aborted",
                    )
                    .await;
                let _ = store
                    .release_lock(&r.app, &r.env, &controller::lock_holder(shared))
                    .await;
                if let Ok(Some(rev)) = store.revision(&r.app, &r.env, r.to_revision).await
                    && rev.status == RevisionStatus::Pending
                {
                    let _ = store
                        .set_revision_status(
                            &r.app,
                            &r.env,
                            r.to_revision,
                            RevisionStatus::Failed,
                            Some(reason),
                        )
                        .await;
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot read unfinished rollouts"),
    }
    let containers = match shared
        .engine
        .list_containers(&[(LABEL_DAEMON, shared.daemon_id.as_str())])
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot list this daemon's containers");
            return;
        }
    };
    for c in containers {
        let label = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
        let (app, env, rev) = (label(LABEL_APP), label(LABEL_ENV), label(LABEL_REVISION));
        let live = store.live_revision(&app, &env).await.ok().flatten();
        let adopted = match live.filter(|l| l.number.to_string() == rev) {
            Some(live) => adopt(shared, &c.id, &c.name, &app, &env, &rev, &live.spec).await,
            None => false,
        };
        if !adopted {
            tracing::info!(container = %c.name, "removing a container of a revision that is not live");
            let _ = shared
                .engine
                .stop_and_remove(&c.id, Duration::from_secs(10))
                .await;
        }
    }
}

/// Routes a running, healthy container of the live revision again.
async fn adopt(
    shared: &Shared,
    id: &str,
    name: &str,
    app: &str,
    env: &str,
    rev: &str,
    spec: &serde_json::Value,
) -> bool {
    let Ok(spec) = serde_json::from_value::<Spec>(spec.clone()) else {
        return false;
    };
    let Ok(status) = shared.engine.status(id).await else {
        return false;
    };
    let port = spec.web.as_ref().map_or(8080, |w| w.port);
    let Some(addr) = status.published.get(&format!("{port}/tcp")).copied() else {
        return false;
    };
    if !status.running || status.health.as_deref() == Some("unhealthy") {
        return false;
    }
    let Ok(replica_id) = ReplicaId::new(name) else {
        return false;
    };
    if controller::add_backend(&shared.proxy, &spec, rev, addr).is_err() {
        return false;
    }
    let mut apps = shared.apps.lock().unwrap_or_else(|e| e.into_inner());
    let entry = apps.entry((app.to_owned(), env.to_owned())).or_default();
    entry
        .pools
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(rev.to_owned())
        .or_default()
        .push(Replica {
            id: replica_id,
            addr: Some(addr),
            routed: true,
            task: None,
        });
    tracing::info!(container = name, %addr, "adopted a replica of the live revision");
    true
}
