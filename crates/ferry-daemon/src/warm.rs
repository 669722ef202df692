//! Revisions kept warm: after a promotion the old revision's replicas keep running, out
//! of traffic, for the plan's warm window (blue-green `scale_down_delay`, rolling/canary
//! `keep_warm`), so `ferry rollback` is one switch instead of a start.
//!
//! Design note. A warm revision belongs to its app+env, not to a rollout (the rollout has
//! ended). Each has a timer task; whoever removes its entry from [`AppState::warm`] under
//! the apps lock owns its replicas: the timer (which then drains and stops them), or a
//! rollback claiming them (which aborts the timer and switches traffic to them). A daemon
//! restart forgets warm revisions: recovery removes every container that is not live.

use std::sync::Arc;
use std::time::Duration;

use ferry_rollout::Timestamp;

use crate::controller::{self, Pools, Shared};
use crate::protocol::WarmRevision;
use crate::replica::Replica;

/// One revision kept warm.
pub(crate) struct Warm {
    /// When its replicas are stopped.
    pub until: Timestamp,
    /// The timer that stops them.
    pub task: tokio::task::AbortHandle,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps `rev` of `app`/`env` warm for `window`, then drains and stops its replicas
/// (each within `drain` and `stop`).
pub(crate) fn keep(
    shared: &Arc<Shared>,
    app: &str,
    env: &str,
    rev: &str,
    window: Duration,
    (drain, stop): (Duration, Duration),
) {
    let key = (app.to_owned(), env.to_owned());
    let mut apps = lock(&shared.apps);
    let entry = apps.entry(key.clone()).or_default();
    let pools = entry.pools.clone();
    let until = controller::now().after(window);
    let task = tokio::spawn({
        let shared = shared.clone();
        let rev = rev.to_owned();
        async move {
            tokio::time::sleep(window).await;
            let Some(replicas) = claim(&shared, &key, &pools, &rev) else {
                return;
            };
            tracing::info!(app = %key.0, env = %key.1, revision = %rev, "warm window over: stopping the old revision");
            stop_all(&shared, replicas, drain, stop).await;
            controller::prune_pools(&shared.proxy, &key.0);
        }
    });
    if let Some(old) = entry.warm.insert(
        rev.to_owned(),
        Warm {
            until,
            task: task.abort_handle(),
        },
    ) {
        old.task.abort();
    }
    entry.changed();
}

/// Takes `rev` out of the warm set (its timer no longer stops it) and its replicas out of
/// the pools; `None` when it was not warm (any more).
fn claim(
    shared: &Shared,
    key: &(String, String),
    pools: &std::sync::Mutex<Pools>,
    rev: &str,
) -> Option<Vec<Replica>> {
    let mut apps = lock(&shared.apps);
    let entry = apps.get_mut(key)?;
    entry.warm.remove(rev)?;
    entry.changed();
    Some(lock(pools).remove(rev).unwrap_or_default())
}

/// A rollback to `rev`: if it is warm, cancels its timer; returns how many routed
/// replicas of it run (0 when none: a cold start).
pub(crate) fn take_for_rollback(shared: &Shared, app: &str, env: &str, rev: &str) -> u32 {
    let mut apps = lock(&shared.apps);
    let Some(entry) = apps.get_mut(&(app.to_owned(), env.to_owned())) else {
        return 0;
    };
    if let Some(warm) = entry.warm.remove(rev) {
        warm.task.abort();
        entry.changed();
    }
    let routed = lock(&entry.pools)
        .get(rev)
        .map_or(0, |p| p.iter().filter(|r| r.routed).count());
    u32::try_from(routed).unwrap_or(u32::MAX)
}

/// The warm revisions of `app`/`env`, for the status.
pub(crate) fn list(shared: &Shared, app: &str, env: &str) -> Vec<WarmRevision> {
    let apps = lock(&shared.apps);
    let Some(entry) = apps.get(&(app.to_owned(), env.to_owned())) else {
        return Vec::new();
    };
    let pools = lock(&entry.pools);
    entry
        .warm
        .iter()
        .filter_map(|(rev, warm)| {
            Some(WarmRevision {
                revision: rev.parse().ok()?,
                replicas: pools
                    .get(rev)
                    .map_or(0, |p| p.iter().filter(|r| r.routed).count()),
                until: crate::notify::rfc3339(warm.until.unix_millis()),
            })
        })
        .collect()
}

/// Drains each replica in the proxy, then stops and removes its container.
async fn stop_all(shared: &Shared, replicas: Vec<Replica>, drain: Duration, stop: Duration) {
    let mut tasks = Vec::new();
    for replica in replicas {
        if let Some(task) = &replica.task {
            task.abort();
        }
        let proxy = shared.proxy.clone();
        let engine = shared.engine.clone();
        tasks.push(tokio::spawn(async move {
            if let (true, Some(addr)) = (replica.routed, replica.addr)
                && let Err(e) = proxy.drain_backend(addr, drain).await
            {
                tracing::warn!(%addr, error = %e, "drain failed");
            }
            let name = replica.id.as_str();
            if let Err(e) = engine.stop_and_remove(name, stop).await
                && !matches!(e, ferry_engine::EngineError::NotFound { .. })
            {
                tracing::warn!(container = name, error = %e, "stop failed");
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}
