//! Self-healing of the live revision: replaces the replicas of an app+env's live revision
//! that died outside a rollout (removed, stopped for good, lost while the daemon was down).
//!
//! Design note. Every replica runs with the restart policy `unless-stopped`, so the engine
//! itself restarts a process that crashes or is OOM-killed, in the same container; the
//! reconciler leaves those alone. It handles what the policy cannot bring back: a container
//! that was removed (`docker rm -f`), one that stays stopped (`docker stop`, a dead engine
//! restart) for longer than [`STOPPED_GRACE`], and replicas missing after a daemon restart.
//! It wakes on the engine's container events of this daemon's containers (`die`,
//! `destroy`) and every [`POLL`] as a fallback, and per app+env:
//! 1. skips it while a rollout of this daemon drives it (the rollout owns its replicas);
//! 2. surveys the live revision's routed replicas against the engine;
//! 3. takes the app+env's deploy lock (a rollout elsewhere holds it: try later), drops
//!    each dead replica's backend from the proxy at once (it is dead: nothing to drain)
//!    and removes what is left of its container;
//! 4. starts each replacement through the rollout's own start path
//!    ([`controller::launch`], health-gated), routes it when healthy, records the event in
//!    the live revision's rollout timeline and the audit log, and releases the lock.
//!
//! A crash loop must not spin: each replica slot keeps its failures (deaths and failed
//! replacements); from the second one in [`WINDOW`] the next replacement waits
//! 2 s, 4 s, 8 s... (at most [`MAX_BACKOFF`]), and at [`DEGRADED_AFTER`] failures in the
//! window the live revision is marked degraded in `ferry status` until it runs its full
//! replica count again.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_engine::{ContainerEventKind, EngineError};
use ferry_rollout::ReplicaId;
use ferry_spec::Spec;
use ferry_store::RolloutOutcome;
use futures_util::StreamExt;

use crate::controller::{self, Shared};
use crate::protocol::LiveReplicas;
use crate::replica::{LABEL_DAEMON, Replica};

/// The fallback survey interval (events usually wake the reconciler first).
pub(crate) const POLL: Duration = Duration::from_secs(5);
/// How long a container may stay stopped (not restarting) before it counts as dead:
/// the engine's restart policy gets the first chance.
pub(crate) const STOPPED_GRACE: Duration = Duration::from_secs(10);
/// The window in which a slot's failures count.
pub(crate) const WINDOW: Duration = Duration::from_secs(600);
/// Failures in [`WINDOW`] that mark the live revision degraded.
pub(crate) const DEGRADED_AFTER: usize = 5;
/// The longest wait between two replacements of one slot.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// One replica slot's failure history.
#[derive(Debug, Clone)]
struct Slot {
    failures: VecDeque<Instant>,
    not_before: Instant,
    /// What happened to the replica that lived in it, not recorded yet.
    cause: Option<String>,
}

impl Slot {
    fn new(now: Instant) -> Self {
        Self {
            failures: VecDeque::new(),
            not_before: now,
            cause: None,
        }
    }

    /// Records a failure at `now`: the next attempt waits per [`backoff`].
    fn fail(&mut self, now: Instant) {
        while self
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > WINDOW)
        {
            self.failures.pop_front();
        }
        self.failures.push_back(now);
        self.not_before = now + backoff(self.failures.len());
    }
}

/// The wait before replacing a replica that failed `failures` times in the window: none
/// for the first, then 2 s doubling up to [`MAX_BACKOFF`].
pub(crate) fn backoff(failures: usize) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let exp = u32::try_from(failures - 2).unwrap_or(u32::MAX).min(16);
    (Duration::from_secs(2) * 2u32.pow(exp)).min(MAX_BACKOFF)
}

/// What the reconciler remembers between passes.
#[derive(Default)]
struct Memory {
    /// Slots by the name of the replica living in them.
    slots: HashMap<String, Slot>,
    /// Slots whose replica died and is not replaced yet, by app+env.
    orphans: HashMap<(String, String), Vec<Slot>>,
    /// The last exit the engine reported, by container name: (code, OOM-killed).
    exits: HashMap<String, (Option<i64>, bool)>,
    /// Since when a container is seen stopped, by name.
    stopped_since: HashMap<String, Instant>,
}

/// The reconciler of one daemon.
pub(crate) struct Reconciler {
    shared: Arc<Shared>,
    /// True once the daemon shuts down or hands over to a successor: no new replacement.
    stopping: tokio::sync::watch::Receiver<bool>,
    memory: Mutex<Memory>,
    busy: Mutex<HashSet<(String, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the reconciler: a first pass at once (replicas lost while the daemon was down),
/// then on engine events and every [`POLL`], until `stopping` turns true.
pub(crate) fn spawn(shared: Arc<Shared>, stopping: tokio::sync::watch::Receiver<bool>) {
    let r = Arc::new(Reconciler {
        shared,
        stopping,
        memory: Mutex::default(),
        busy: Mutex::default(),
    });
    tokio::spawn(r.run());
}

/// The live revision's replica counts for `ferry status`.
pub(crate) fn live_replicas(
    shared: &Shared,
    app: &str,
    env: &str,
    live: &ferry_store::Revision,
) -> Option<LiveReplicas> {
    let apps = lock(&shared.apps);
    let entry = apps.get(&(app.to_owned(), env.to_owned()))?;
    let healthy = lock(&entry.pools)
        .get(&live.number.to_string())
        .map_or(0, |p| p.iter().filter(|r| r.routed).count());
    let wanted = serde_json::from_value::<Spec>(live.spec.clone())
        .ok()
        .and_then(|s| s.web.map(|w| w.replicas))
        .unwrap_or(1);
    Some(LiveReplicas {
        revision: live.number,
        wanted,
        healthy: u32::try_from(healthy).unwrap_or(u32::MAX),
        degraded: entry.degraded.clone(),
    })
}

impl Reconciler {
    async fn run(self: Arc<Self>) {
        let daemon = self.shared.daemon_id.clone();
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = self.stopping.clone();
        loop {
            let events = self
                .shared
                .engine
                .container_events(&[(LABEL_DAEMON, daemon.as_str())], None);
            let mut events = std::pin::pin!(events);
            loop {
                tokio::select! {
                    _ = stopping.wait_for(|s| *s) => return,
                    _ = tick.tick() => self.pass(),
                    event = events.next() => match event {
                        Some(Ok(e)) => {
                            match e.kind {
                                ContainerEventKind::Die { exit_code } => {
                                    let mut m = lock(&self.memory);
                                    let exit = m.exits.entry(e.name.clone()).or_default();
                                    exit.0 = exit_code;
                                }
                                ContainerEventKind::Oom => {
                                    lock(&self.memory).exits.entry(e.name.clone()).or_default().1 = true;
                                    continue;
                                }
                                ContainerEventKind::Other(ref a) if a == "destroy" || a == "stop" => {}
                                _ => continue,
                            }
                            self.pass();
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "container events failed; polling until they resume");
                            break;
                        }
                        None => break,
                    },
                }
            }
            // The stream ended (engine restart?): keep polling, subscribe again shortly.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Surveys every app+env this daemon knows, one task per app+env at a time.
    fn pass(self: &Arc<Self>) {
        let keys: Vec<(String, String)> = lock(&self.shared.apps).keys().cloned().collect();
        for key in keys {
            if !lock(&self.busy).insert(key.clone()) {
                continue;
            }
            let me = self.clone();
            tokio::spawn(async move {
                me.heal(&key.0, &key.1).await;
                lock(&me.busy).remove(&key);
            });
        }
    }

    /// Whether a rollout of this daemon drives `app`/`env` (it owns the replicas then).
    fn rolling(&self, key: &(String, String)) -> bool {
        lock(&self.shared.apps)
            .get(key)
            .is_some_and(|e| e.events.is_some())
    }

    async fn heal(&self, app: &str, env: &str) {
        let key = (app.to_owned(), env.to_owned());
        if self.rolling(&key) {
            return;
        }
        let shared = &self.shared;
        let Ok(Some(live)) = shared.store.live_revision(app, env).await else {
            return;
        };
        let Ok(spec) = serde_json::from_value::<Spec>(live.spec.clone()) else {
            return;
        };
        let rev = live.number.to_string();
        let wanted = spec.web.as_ref().map_or(1, |w| w.replicas) as usize;
        let pools = {
            let apps = lock(&shared.apps);
            let Some(entry) = apps.get(&key) else { return };
            entry.pools.clone()
        };
        let routed: Vec<(ReplicaId, Option<SocketAddr>)> = lock(&pools)
            .get(&rev)
            .map(|p| {
                p.iter()
                    .filter(|r| r.routed)
                    .map(|r| (r.id.clone(), r.addr))
                    .collect()
            })
            .unwrap_or_default();
        // 2. Survey.
        let now = Instant::now();
        let mut dead = Vec::new();
        for (id, addr) in &routed {
            let name = id.as_str();
            match shared.engine.status(name).await {
                Err(EngineError::NotFound { .. }) => dead.push((id.clone(), *addr, "removed")),
                Err(e) => {
                    tracing::debug!(container = name, error = %e, "cannot inspect; next pass");
                    return;
                }
                Ok(s) if s.running || s.state == "restarting" => {
                    lock(&self.memory).stopped_since.remove(name);
                    let port = spec.web.as_ref().map_or(8080, |w| w.port);
                    let published = s.published.get(&format!("{port}/tcp")).copied();
                    if s.running
                        && let (Some(old), Some(new)) = (*addr, published)
                        && old != new
                    {
                        // The engine restarted it (its policy) on another host port.
                        self.moved(&pools, &spec, &rev, id, old, new);
                    }
                }
                Ok(s) => {
                    let since = *lock(&self.memory)
                        .stopped_since
                        .entry(name.to_owned())
                        .or_insert(now);
                    if now.duration_since(since) >= STOPPED_GRACE {
                        let mut m = lock(&self.memory);
                        let exit = m.exits.entry(name.to_owned()).or_default();
                        exit.0 = exit.0.or(Some(s.exit_code));
                        exit.1 |= s.oom_killed;
                        dead.push((id.clone(), *addr, "stopped"));
                    }
                }
            }
        }
        let alive = routed.len() - dead.len();
        let missing = wanted.saturating_sub(alive);
        if dead.is_empty() && missing == 0 {
            if alive >= wanted {
                self.set_degraded(&key, None);
            }
            return;
        }
        if dead.is_empty()
            && lock(&self.memory)
                .orphans
                .get(&key)
                .is_some_and(|o| o.len() >= missing && o.iter().all(|s| s.not_before > now))
        {
            return; // every missing slot is backing off
        }
        // 3. The lock: a rollout (here or in another daemon) or a deploy starting wins.
        let holder = controller::lock_holder(shared);
        match shared
            .store
            .acquire_lock(app, env, &holder, "heal", controller::LOCK_TTL)
            .await
        {
            Ok(o) if o.acquired() => {}
            _ => return,
        }
        if self.rolling(&key) || *self.stopping.borrow() {
            let _ = shared.store.release_lock(app, env, &holder).await;
            return;
        }
        let timeline = self.timeline(app, env, live.number).await;
        for (id, addr, how) in &dead {
            let name = id.as_str().to_owned();
            if let Some(pool) = lock(&pools).get_mut(&rev) {
                pool.retain(|r| &r.id != id);
            }
            if let Some(addr) = addr
                && let Err(e) = shared.proxy.remove_backend(*addr)
            {
                tracing::debug!(%addr, error = %e, "backend already gone");
            }
            if let Err(e) = shared.engine.remove(&name, true).await
                && !matches!(e, EngineError::NotFound { .. })
            {
                tracing::warn!(container = %name, error = %e, "cannot remove the dead replica");
            }
            let (text, slot) = {
                let mut m = lock(&self.memory);
                m.stopped_since.remove(&name);
                let (code, oom) = m.exits.remove(&name).unwrap_or_default();
                let mut slot = m.slots.remove(&name).unwrap_or_else(|| Slot::new(now));
                slot.fail(now);
                (describe(&name, code, oom, how), slot)
            };
            tracing::warn!(app, env, revision = %rev, "{text}");
            let mut slot = slot;
            if slot.not_before > now {
                // Backing off: say so now, not only when it is replaced.
                let wait = slot.not_before.duration_since(now).as_secs();
                let text = format!("{text}; backing off {wait}s before replacing it");
                self.record(timeline, app, env, "replica.died", &text).await;
            } else {
                slot.cause = Some(text);
            }
            lock(&self.memory)
                .orphans
                .entry(key.clone())
                .or_default()
                .push(slot);
        }
        // Replicas missing without a known death (lost while the daemon was down).
        {
            let mut m = lock(&self.memory);
            let slots = m.orphans.entry(key.clone()).or_default();
            while slots.len() < missing {
                slots.push(Slot::new(now));
            }
            slots.truncate(missing);
        }
        // 4. Replacements, health-gated, one at a time.
        let mut filled = Vec::new();
        for i in 0..missing {
            let slot = {
                let m = lock(&self.memory);
                m.orphans.get(&key).and_then(|o| o.get(i)).cloned()
            };
            let Some(mut slot) = slot else { break };
            if slot.not_before > Instant::now() {
                continue;
            }
            let stamp = controller::now().unix_millis();
            let name = format!("ferry-{app}-{env}-web-r{rev}-h{stamp}-{i}");
            let Ok(id) = ReplicaId::new(name.clone()) else {
                tracing::error!(%name, "replacement name is not valid");
                break;
            };
            match self
                .start(&spec, env, &live.image, &rev, &name, timeline)
                .await
            {
                Ok(addr) => {
                    lock(&pools).entry(rev.clone()).or_default().push(Replica {
                        id,
                        addr: Some(addr),
                        routed: true,
                        task: None,
                    });
                    let cause = slot.cause.take().unwrap_or_else(|| {
                        format!(
                            "a replica of revision {rev} was missing after the daemon restarted"
                        )
                    });
                    let text = format!("{cause}; replaced by {name} (healthy at {addr})");
                    tracing::info!(app, env, "{text}");
                    self.record(timeline, app, env, "replica.replaced", &text)
                        .await;
                    lock(&self.memory).slots.insert(name, slot);
                    filled.push(i);
                }
                Err(reason) => {
                    let _ = shared.engine.remove(&name, true).await;
                    slot.fail(Instant::now());
                    let wait = slot.not_before.saturating_duration_since(Instant::now());
                    let cause = slot
                        .cause
                        .take()
                        .map_or_else(String::new, |c| format!("{c}; "));
                    let text = format!(
                        "{cause}replacement {name} of revision {rev} failed: {reason}; {} failure(s) of this replica in {}m, next attempt in {}s",
                        slot.failures.len(),
                        WINDOW.as_secs() / 60,
                        wait.as_secs()
                    );
                    tracing::warn!(app, env, "{text}");
                    self.record(timeline, app, env, "replica.failed", &text)
                        .await;
                    if slot.failures.len() >= DEGRADED_AFTER {
                        self.set_degraded(
                            &key,
                            Some(format!(
                                "revision {rev} is degraded: a replica failed {} times in {}m; the last: {reason}",
                                slot.failures.len(),
                                WINDOW.as_secs() / 60
                            )),
                        );
                    }
                    if let Some(o) = lock(&self.memory).orphans.get_mut(&key) {
                        o[i] = slot;
                    }
                }
            }
        }
        // Slots filled are no longer orphans.
        if let Some(o) = lock(&self.memory).orphans.get_mut(&key) {
            for i in filled.iter().rev() {
                o.remove(*i);
            }
        }
        if !filled.is_empty() && alive + filled.len() >= wanted {
            self.set_degraded(&key, None);
        }
        if let Err(e) = shared.store.release_lock(app, env, &holder).await {
            tracing::warn!(error = %e, "cannot release the deploy lock");
        }
        if let Some(entry) = lock(&shared.apps).get(&key) {
            entry.changed();
        }
    }

    /// Starts one replacement through the rollout's start path; its address once healthy
    /// and routed.
    async fn start(
        &self,
        spec: &Spec,
        env: &str,
        image: &str,
        rev: &str,
        name: &str,
        rollout: Option<ferry_store::RolloutId>,
    ) -> Result<SocketAddr, String> {
        let shared = &self.shared;
        let (container, addr) =
            controller::launch(shared, spec, env, image, rev, name, rollout).await?;
        controller::wait_healthy(shared, spec, &container, addr).await?;
        controller::add_backend(&shared.proxy, spec, rev, addr)
            .map_err(|e| format!("the proxy refused the backend: {e}"))?;
        Ok(addr)
    }

    /// Re-points the proxy at a replica the engine restarted on another host port.
    fn moved(
        &self,
        pools: &Mutex<controller::Pools>,
        spec: &Spec,
        rev: &str,
        id: &ReplicaId,
        old: SocketAddr,
        new: SocketAddr,
    ) {
        tracing::info!(container = id.as_str(), %old, %new, "the engine restarted a replica on another port");
        let _ = self.shared.proxy.remove_backend(old);
        if let Err(e) = controller::add_backend(&self.shared.proxy, spec, rev, new) {
            tracing::warn!(error = %e, "cannot route the restarted replica");
            return;
        }
        if let Some(r) = lock(pools)
            .get_mut(rev)
            .and_then(|p| p.iter_mut().find(|r| &r.id == id))
        {
            r.addr = Some(new);
        }
    }

    fn set_degraded(&self, key: &(String, String), reason: Option<String>) {
        if let Some(entry) = lock(&self.shared.apps).get_mut(key)
            && entry.degraded != reason
        {
            entry.degraded = reason;
            entry.changed();
        }
    }

    /// The rollout whose timeline records what happens to the live revision: the latest
    /// one that made `revision` live.
    async fn timeline(
        &self,
        app: &str,
        env: &str,
        revision: i64,
    ) -> Option<ferry_store::RolloutId> {
        let rollouts = self.shared.store.rollouts(app, env).await.ok()?;
        rollouts
            .into_iter()
            .find(|r| r.to_revision == revision && r.outcome == Some(RolloutOutcome::Succeeded))
            .map(|r| r.id)
    }

    /// Records `text` in the timeline and the audit log.
    async fn record(
        &self,
        timeline: Option<ferry_store::RolloutId>,
        app: &str,
        env: &str,
        action: &str,
        text: &str,
    ) {
        let store = &self.shared.store;
        if let Some(id) = timeline
            && let Err(e) = store
                .append_event(id, "note", &serde_json::json!({ "text": text }))
                .await
        {
            tracing::warn!(error = %e, "cannot record the event in the timeline");
        }
        let entry = ferry_store::NewAuditEntry {
            actor: "daemon".to_owned(),
            action: action.to_owned(),
            app: Some(app.to_owned()),
            env: Some(env.to_owned()),
            detail: Some(serde_json::json!({ "text": text })),
        };
        if let Err(e) = store.audit(&entry).await {
            tracing::warn!(error = %e, "cannot record the event in the audit log");
        }
    }
}

/// "replica X exited with code 137 (OOM-killed) and was removed".
fn describe(name: &str, code: Option<i64>, oom: bool, how: &str) -> String {
    let exit = match code {
        Some(c) => format!("exited with code {c}"),
        None => "disappeared".to_owned(),
    };
    let oom = if oom { " (OOM-killed)" } else { "" };
    let how = match how {
        "removed" => "its container was removed",
        _ => "it stayed stopped (the restart policy did not bring it back)",
    };
    format!("replica {name} {exit}{oom}; {how}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_loop_backs_off_exponentially_up_to_the_cap() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(5), Duration::from_secs(16));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let t0 = Instant::now();
        let mut slot = Slot::new(t0);
        slot.fail(t0);
        slot.fail(t0 + Duration::from_secs(1));
        assert_eq!(slot.failures.len(), 2);
        assert_eq!(slot.not_before, t0 + Duration::from_secs(3));
        let later = t0 + WINDOW + Duration::from_secs(5);
        slot.fail(later);
        assert_eq!(slot.failures.len(), 1);
        assert_eq!(slot.not_before, later);
    }

    #[test]
    fn the_event_names_the_replica_its_exit_and_what_happened() {
        assert_eq!(
            describe("web-1", Some(137), true, "removed"),
            "replica web-1 exited with code 137 (OOM-killed); its container was removed"
        );
        assert!(
            describe("web-1", None, false, "stopped").contains("disappeared; it stayed stopped")
        );
    }
}
