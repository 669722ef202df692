//! What a (re)started daemon does before serving the API: route the live revision's
//! running containers again, resume the rollouts an earlier run left unfinished (or roll
//! them back when that is not safe), and remove this daemon's containers that nothing
//! references any more (leftover hook containers included; the running workers of a
//! revision it serves or rolls keep running, unrouted).
//!
//! Design note. The store holds each rollout's state as persisted before its commands
//! ran, and every container carries the labels of its app, environment, revision, daemon
//! and rollout. On start, before the API answers:
//! 1. each unfinished rollout whose lock this daemon holds (same state directory, so
//!    the same holder name) or that nobody holds any more is re-owned by taking its lock
//!    again; one whose state or spec no longer reads is *abandoned*: recorded aborted with
//!    the reason, its revision failed;
//! 2. the containers of the live revision, and of the resumed rollouts' stable and new
//!    revisions, that are running and healthy are adopted (routed again, at the weights
//!    the persisted state says); every other container of this daemon — half-created,
//!    unhealthy, or of a revision nothing references — is removed;
//! 3. each resumed rollout's driver starts with `Event::Resumed` carrying the survivors:
//!    `ferry_rollout` decides per phase whether it goes on (timers re-armed from the
//!    persisted deadlines, missing replicas started again) or rolls back.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferry_engine::{LABEL_APP, LABEL_ENV, LABEL_REVISION, LABEL_ROLE};
use ferry_proxy::RoutingConfig;
use ferry_rollout::{Event, ReplicaId, State};
use ferry_spec::Spec;
use ferry_store::{RevisionStatus, Rollout, RolloutOutcome};
use tokio::sync::mpsc;

use crate::controller::{self, Shared};
use crate::replica::{LABEL_DAEMON, Replica};

/// A fingerprint of the state directory: the daemon's identity on the engine.
pub fn daemon_id(state_dir: &Path) -> String {
    let path = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_owned());
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.to_string_lossy().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// An interrupted rollout that can be driven again.
struct Resumable {
    row: Rollout,
    state: State,
    spec: Spec,
    image: String,
    stable: Option<(String, Spec)>,
}

/// What [`load`] reads back for a rollout: its state, its revision's spec and image, and
/// the stable revision's image and spec.
#[derive(Debug)]
struct Loaded {
    state: State,
    spec: Spec,
    image: String,
    stable: Option<(String, Spec)>,
}

/// Reads what driving `row` again needs: its persisted state and its revision's spec
/// (and the stable revision's, for a rollback). The error says why it cannot resume.
fn load(
    row: &Rollout,
    revision: Option<&ferry_store::Revision>,
    stable: Option<&ferry_store::Revision>,
) -> Result<Loaded, String> {
    let state: State = serde_json::from_value(row.state.clone()).map_err(|e| {
        format!("the daemon restarted and the rollout's stored state no longer reads ({e})")
    })?;
    let revision = revision.ok_or_else(|| {
        format!(
            "the daemon restarted and revision {} is no longer in the store",
            row.to_revision
        )
    })?;
    let spec: Spec = serde_json::from_value(revision.spec.clone()).map_err(|e| {
        format!(
            "the daemon restarted and the stored spec of revision {} no longer reads ({e})",
            row.to_revision
        )
    })?;
    if state.plan().new.as_str() != row.to_revision.to_string() {
        return Err(format!(
            "the daemon restarted and the stored state is not of revision {}",
            row.to_revision
        ));
    }
    let stable = stable.and_then(|s| {
        serde_json::from_value::<Spec>(s.spec.clone())
            .ok()
            .map(|spec| (s.image.clone(), spec))
    });
    Ok(Loaded {
        state,
        spec,
        image: revision.image.clone(),
        stable,
    })
}

/// What becomes of one container of this daemon after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fate {
    /// Of a revision the restarted daemon serves or rolls: adopt it when healthy.
    Adopt {
        /// Demand a healthy report (a rollout's revision) rather than just "running and
        /// not unhealthy" (the live revision, which may be restarting by its policy).
        strict: bool,
    },
    /// Referenced by nothing: remove it.
    Remove,
}

/// The revisions a resumed rollout rolls: (new, stable).
type Rolling = BTreeMap<(String, String), (String, Option<String>)>;

/// The fate of a container of `app`/`env`/`rev` given the live revisions and the
/// revisions (new and stable) of the rollouts being resumed, by app+env.
fn fate(
    app: &str,
    env: &str,
    rev: &str,
    live: &BTreeMap<(String, String), String>,
    rolling: &Rolling,
) -> Fate {
    let key = (app.to_owned(), env.to_owned());
    let (new, stable) = rolling
        .get(&key)
        .map_or((None, None), |(n, s)| (Some(n), s.as_ref()));
    if new.is_some_and(|n| n == rev) {
        Fate::Adopt { strict: true }
    } else if live.get(&key).is_some_and(|l| l == rev) || stable.is_some_and(|s| s == rev) {
        Fate::Adopt { strict: false }
    } else {
        Fate::Remove
    }
}

/// Recovers what it can; problems are logged, never fatal (the data plane comes first).
pub(crate) async fn recover(shared: &Arc<Shared>) {
    let store = &shared.store;
    let holder = controller::lock_holder(shared);
    let mut resumable = Vec::new();
    match store.unfinished_rollouts().await {
        Ok(rollouts) => {
            let (rollouts, older) = newest_per_app(rollouts);
            for r in older {
                let reason = "the daemon restarted and a later rollout of the same app and \
                              environment was started after this one";
                abandon(shared, &r, reason).await;
            }
            for r in rollouts {
                // Another daemon sharing the store may be driving it: its lock says so.
                match store
                    .acquire_lock(&r.app, &r.env, &holder, "rollout", controller::LOCK_TTL)
                    .await
                {
                    Ok(outcome) if outcome.acquired() => {}
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::error!(error = %e, rollout = %r.id, "cannot take the deploy lock; not resuming");
                        continue;
                    }
                }
                let revision = store
                    .revision(&r.app, &r.env, r.to_revision)
                    .await
                    .ok()
                    .flatten();
                let stable = match r.from_revision {
                    Some(n) => store.revision(&r.app, &r.env, n).await.ok().flatten(),
                    None => None,
                };
                match load(&r, revision.as_ref(), stable.as_ref()) {
                    Ok(l) => resumable.push(Resumable {
                        row: r,
                        state: l.state,
                        spec: l.spec,
                        image: l.image,
                        stable: l.stable,
                    }),
                    Err(reason) => abandon(shared, &r, &reason).await,
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
            Vec::new()
        }
    };
    let mut live = BTreeMap::new();
    let mut specs: BTreeMap<(String, String, String), Spec> = BTreeMap::new();
    let mut rolling = Rolling::new();
    for r in &resumable {
        let key = (r.row.app.clone(), r.row.env.clone());
        let plan = r.state.plan();
        let new = plan.new.to_string();
        specs.insert((key.0.clone(), key.1.clone(), new.clone()), r.spec.clone());
        let mut stable_rev = None;
        if let (Some(stable), Some((_, spec))) = (&plan.stable, &r.stable) {
            specs.insert(
                (key.0.clone(), key.1.clone(), stable.rev.to_string()),
                spec.clone(),
            );
            stable_rev = Some(stable.rev.to_string());
        }
        rolling.insert(key, (new, stable_rev));
    }
    for c in &containers {
        let label = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
        let key = (label(LABEL_APP), label(LABEL_ENV));
        if live.contains_key(&key) {
            continue;
        }
        if let Ok(Some(l)) = store.live_revision(&key.0, &key.1).await {
            let spec_key = (key.0.clone(), key.1.clone(), l.number.to_string());
            if let Ok(spec) = serde_json::from_value::<Spec>(l.spec.clone()) {
                specs.entry(spec_key).or_insert(spec);
            }
            // Known to the reconciler even when none of its replicas survived.
            lock_apps(shared).entry(key.clone()).or_default();
            live.insert(key, l.number.to_string());
        }
    }
    let mut adopted_addrs = BTreeSet::new();
    for c in containers {
        let label = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
        let (app, env, rev) = (label(LABEL_APP), label(LABEL_ENV), label(LABEL_REVISION));
        let role = label(LABEL_ROLE);
        let fate = fate(&app, &env, &rev, &live, &rolling);
        let worker = role != crate::worker::ROLE_WEB && role != crate::worker::ROLE_HOOK;
        // A worker of a revision still served or rolled keeps running; nothing routes to it.
        if worker
            && matches!(fate, Fate::Adopt { .. })
            && shared.engine.status(&c.id).await.is_ok_and(|s| s.running)
        {
            tracing::info!(container = %c.name, "kept a running worker");
            continue;
        }
        let adopted = match fate {
            Fate::Adopt { .. } if role == crate::worker::ROLE_HOOK || worker => None,
            Fate::Adopt { strict } => match specs.get(&(app.clone(), env.clone(), rev.clone())) {
                Some(spec) => adopt(shared, &c.id, &c.name, &app, &env, &rev, spec, strict).await,
                None => None,
            },
            Fate::Remove => None,
        };
        if let Some(addr) = adopted {
            adopted_addrs.insert(addr);
        } else {
            // Not routed: nothing to drain. Removed before any rollout resumes, so a
            // replica started again under the same name cannot be caught by this.
            tracing::info!(container = %c.name, "removing a container nothing uses after the restart");
            if let Err(e) = shared.engine.remove(&c.id, true).await
                && !matches!(e, ferry_engine::EngineError::NotFound { .. })
            {
                tracing::warn!(container = %c.name, error = %e, "cannot remove");
            }
        }
    }
    // The table the proxy started with (saved by the last run) routed what ran then:
    // keep only what was adopted.
    let live_by_app: BTreeMap<String, String> = live
        .iter()
        .map(|((app, _), rev)| (app.clone(), rev.clone()))
        .collect();
    if let Err(e) = shared.proxy.update(|r| {
        prune(r, &adopted_addrs, &live_by_app);
        Ok(())
    }) {
        tracing::error!(error = %e, "cannot drop the backends that did not survive the restart");
    }
    for r in resumable {
        resume(shared, r);
    }
}

/// Drops from `routing` every backend not in `adopted`, the pools left without backends
/// and the services (and their routes) left without pools. When the remaining pools of a
/// service no longer carry all the traffic, the live revision's pool (or else the first)
/// takes it all; a resumed rollout then sets its own split.
fn prune(
    routing: &mut RoutingConfig,
    adopted: &BTreeSet<SocketAddr>,
    live: &BTreeMap<String, String>,
) {
    for (name, svc) in &mut routing.services {
        for pool in &mut svc.pools {
            pool.backends.retain(|b| adopted.contains(b));
        }
        svc.pools.retain(|p| !p.backends.is_empty());
        let sum: u32 = svc.pools.iter().map(|p| p.weight.get()).sum();
        if sum != 100 && !svc.pools.is_empty() {
            let main = svc
                .pools
                .iter()
                .position(|p| live.get(name) == Some(&p.revision))
                .unwrap_or(0);
            for (i, p) in svc.pools.iter_mut().enumerate() {
                p.weight = if i == main {
                    ferry_proxy::Weight::FULL
                } else {
                    ferry_proxy::Weight::ZERO
                };
            }
        }
    }
    routing.services.retain(|_, svc| !svc.pools.is_empty());
    let services = &routing.services;
    routing.routes.retain(|r| services.contains_key(&r.service));
}

/// Splits unfinished rollouts into the newest of each app+env (to resume) and older
/// ones (only possible when a driver gave up on a failing store and a later deploy ran):
/// one rollout per app+env at a time, also after a restart.
fn newest_per_app(rollouts: Vec<Rollout>) -> (Vec<Rollout>, Vec<Rollout>) {
    let mut newest: BTreeMap<(String, String), Rollout> = BTreeMap::new();
    let mut older = Vec::new();
    for r in rollouts {
        let key = (r.app.clone(), r.env.clone());
        match newest.remove(&key) {
            Some(kept) if kept.id.get() > r.id.get() => {
                older.push(r);
                newest.insert(key, kept);
            }
            Some(kept) => {
                older.push(kept);
                newest.insert(key, r);
            }
            None => {
                newest.insert(key, r);
            }
        }
    }
    (newest.into_values().collect(), older)
}

/// Records `row` as aborted with `reason`, its revision (if still pending) as failed,
/// and releases its lock.
async fn abandon(shared: &Shared, row: &Rollout, reason: &str) {
    let store = &shared.store;
    tracing::warn!(rollout = %row.id, reason, "abandoning an interrupted rollout");
    let _ = store
        .finish_rollout(
            row.id,
            RolloutOutcome::Aborted,
            Some(reason),
            &row.state,
            "aborted",
        )
        .await;
    let _ = store
        .release_lock(&row.app, &row.env, &controller::lock_holder(shared))
        .await;
    if let Ok(Some(rev)) = store.revision(&row.app, &row.env, row.to_revision).await
        && rev.status == RevisionStatus::Pending
    {
        let _ = store
            .set_revision_status(
                &row.app,
                &row.env,
                row.to_revision,
                RevisionStatus::Failed,
                Some(reason),
            )
            .await;
    }
}

/// Starts driving an interrupted rollout again from its persisted state, with the
/// replicas adopted for it; its traffic split is restored before this returns.
fn resume(shared: &Arc<Shared>, r: Resumable) {
    let key = (r.row.app.clone(), r.row.env.clone());
    let (tx, rx) = mpsc::unbounded_channel();
    let pools = {
        let mut apps = shared.apps.lock().unwrap_or_else(|e| e.into_inner());
        let entry = apps.entry(key).or_default();
        entry.events = Some(tx.clone());
        entry.pools.clone()
    };
    let plan = r.state.plan().clone();
    let (new_healthy, stable_healthy) = {
        let pools = pools.lock().unwrap_or_else(|e| e.into_inner());
        let new: Vec<ReplicaId> = pools
            .get(plan.new.as_str())
            .map(|p| p.iter().map(|x| x.id.clone()).collect())
            .unwrap_or_default();
        let stable = plan
            .stable
            .as_ref()
            .and_then(|s| pools.get(s.rev.as_str()))
            .map_or(0, Vec::len);
        (new, u32::try_from(stable).unwrap_or(u32::MAX))
    };
    tracing::info!(
        rollout = %r.row.id,
        phase = %r.state.phase(),
        new = new_healthy.len(),
        stable = stable_healthy,
        "resuming an interrupted rollout"
    );
    let driver = controller::Rollout {
        shared: shared.clone(),
        id: r.row.id,
        revision: r.row.to_revision,
        from: r.row.from_revision,
        env: r.row.env.clone(),
        spec: r.spec,
        image: r.image,
        stable: r.stable,
        pools,
        tx,
        rollback: r.row.created_by == "ferry rollback",
        analyses: Default::default(),
        explanations: Default::default(),
    };
    // Routing first: the persisted split, before the daemon says it is ready; and the
    // status, so `ferry status` shows the rollout as soon as the API answers.
    driver.set_weights(&r.state, r.state.weights());
    driver.publish_status(&r.state, false);
    tokio::spawn(driver.run(
        r.state,
        rx,
        Event::Resumed {
            new_healthy,
            stable_healthy,
        },
    ));
}

fn lock_apps(
    shared: &Shared,
) -> std::sync::MutexGuard<'_, std::collections::HashMap<(String, String), controller::AppState>> {
    shared.apps.lock().unwrap_or_else(|e| e.into_inner())
}

/// Routes a running, healthy container again and records it as a replica of `rev`.
#[expect(clippy::too_many_arguments, reason = "one container's identity")]
async fn adopt(
    shared: &Shared,
    id: &str,
    name: &str,
    app: &str,
    env: &str,
    rev: &str,
    spec: &Spec,
    strict: bool,
) -> Option<SocketAddr> {
    let status = shared.engine.status(id).await.ok()?;
    let port = spec.web.as_ref().map_or(8080, |w| w.port);
    let addr = status.published.get(&format!("{port}/tcp")).copied()?;
    if !status.running {
        return None;
    }
    let healthy = match status.health.as_deref() {
        Some("healthy") => true,
        Some("unhealthy") => false,
        Some(_) => !strict,
        None => !strict || probe(spec, addr).await,
    };
    if !healthy {
        return None;
    }
    let replica_id = ReplicaId::new(name).ok()?;
    if let Err(e) = controller::add_backend(&shared.proxy, spec, rev, addr) {
        tracing::warn!(container = name, error = %e, "the proxy refused the adopted backend");
        return None;
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
    tracing::info!(container = name, %addr, revision = rev, "adopted a replica after the restart");
    Some(addr)
}

/// One HTTP probe of the replica's readiness (or health) path, for images without a
/// Docker HEALTHCHECK: a 2xx or 3xx within 3 s counts as healthy.
async fn probe(spec: &Spec, addr: SocketAddr) -> bool {
    let web = spec.web.clone().unwrap_or_default();
    let path = web
        .readiness_path
        .clone()
        .or_else(|| web.health.as_ref().map(|h| h.path.clone()))
        .unwrap_or_else(|| "/".to_owned());
    matches!(
        tokio::time::timeout(
            Duration::from_secs(3),
            crate::client::get_plain(addr, &path)
        )
        .await,
        Ok(Ok((200..=399, _)))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_json() -> serde_json::Value {
        let doc = ferry_spec::parse(&ferry_spec::SourceFile::new(
            "ferry.toml",
            "app = \"web\"\nimage = \"web:1\"\n[web]\n[strategy]\nkind = \"canary\"\n\
             [strategy.canary]\nsteps = [{ weight = 50 }, { pause = \"until-promoted\" }]\n",
        ))
        .expect("parses");
        serde_json::to_value(doc.resolve(None).expect("resolves")).expect("serialises")
    }

    fn revision(number: i64, spec: serde_json::Value) -> ferry_store::Revision {
        let at = time::OffsetDateTime::UNIX_EPOCH;
        ferry_store::Revision {
            app: "web".to_owned(),
            env: "prod".to_owned(),
            number,
            image: format!("web:{number}"),
            image_id: None,
            image_digest: None,
            git_sha: None,
            spec,
            spec_hash: String::new(),
            created_by: "ferry deploy".to_owned(),
            status: RevisionStatus::Pending,
            reason: None,
            created_at: at,
            updated_at: at,
        }
    }

    fn row(state: serde_json::Value) -> Rollout {
        let at = time::OffsetDateTime::UNIX_EPOCH;
        Rollout {
            id: ferry_store::RolloutId::new(7),
            app: "web".to_owned(),
            env: "prod".to_owned(),
            from_revision: Some(1),
            to_revision: 2,
            strategy: "canary".to_owned(),
            state,
            phase: "paused".to_owned(),
            created_by: "ferry deploy".to_owned(),
            started_at: at,
            updated_at: at,
            finished_at: None,
            outcome: None,
            reason: None,
        }
    }

    fn state() -> serde_json::Value {
        let spec: Spec = serde_json::from_value(spec_json()).expect("spec");
        let stable = ferry_rollout::StableRevision {
            rev: ferry_rollout::Revision::new("1").expect("rev"),
            replicas: 1,
        };
        let plan = crate::plan::plan(
            "prod",
            &spec,
            Some(stable),
            ferry_rollout::Revision::new("2").expect("rev"),
        )
        .expect("plan");
        serde_json::to_value(State::new(plan).expect("state")).expect("json")
    }

    #[test]
    fn only_the_newest_unfinished_rollout_of_an_app_resumes() {
        let with = |id: i64, env: &str| {
            let mut r = row(serde_json::Value::Null);
            r.id = ferry_store::RolloutId::new(id);
            r.env = env.to_owned();
            r
        };
        let (keep, older) =
            newest_per_app(vec![with(3, "prod"), with(5, "prod"), with(4, "staging")]);
        let ids = |v: &[Rollout]| v.iter().map(|r| r.id.get()).collect::<Vec<_>>();
        assert_eq!(ids(&keep), vec![5, 4]);
        assert_eq!(ids(&older), vec![3]);
    }

    #[test]
    fn a_rollout_with_a_readable_state_and_spec_resumes() {
        let Loaded {
            state,
            spec,
            image,
            stable,
        } = load(
            &row(state()),
            Some(&revision(2, spec_json())),
            Some(&revision(1, spec_json())),
        )
        .expect("resumes");
        assert_eq!(state.plan().new.as_str(), "2");
        assert_eq!(spec.app.as_str(), "web");
        assert_eq!(image, "web:2");
        assert_eq!(stable.map(|s| s.0).as_deref(), Some("web:1"));
    }

    #[test]
    fn a_rollout_that_cannot_be_read_back_is_abandoned_with_the_reason() {
        let err = load(
            &row(serde_json::json!({"plan": 1})),
            Some(&revision(2, spec_json())),
            None,
        )
        .unwrap_err();
        assert!(err.contains("stored state no longer reads"), "{err}");
        let err = load(&row(state()), None, None).unwrap_err();
        assert!(
            err.contains("revision 2 is no longer in the store"),
            "{err}"
        );
        let err = load(
            &row(state()),
            Some(&revision(2, serde_json::json!({"app": 3}))),
            None,
        )
        .unwrap_err();
        assert!(err.contains("stored spec of revision 2"), "{err}");
        let mut other = row(state());
        other.to_revision = 5;
        let err = load(&other, Some(&revision(5, spec_json())), None).unwrap_err();
        assert!(err.contains("not of revision 5"), "{err}");
    }

    #[test]
    fn the_saved_table_keeps_only_adopted_backends_and_stays_valid() {
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let pool = |rev: &str, weight: u32, ports: &[u16]| ferry_proxy::PoolConfig {
            revision: rev.to_owned(),
            weight: ferry_proxy::Weight::new(weight).expect("weight"),
            backends: ports.iter().map(|p| addr(*p)).collect(),
        };
        let route = |service: &str| ferry_proxy::RouteConfig {
            hosts: Vec::new(),
            path_prefix: format!("/{service}"),
            service: service.to_owned(),
        };
        let mut routing = RoutingConfig {
            routes: vec![route("web"), route("gone")],
            services: BTreeMap::from([
                (
                    "web".to_owned(),
                    ferry_proxy::ServiceConfig::new(vec![
                        pool("1", 50, &[1001, 1002]),
                        pool("2", 50, &[2001]),
                    ]),
                ),
                (
                    "gone".to_owned(),
                    ferry_proxy::ServiceConfig::new(vec![pool("4", 100, &[4001])]),
                ),
            ]),
        };
        let live = BTreeMap::from([("web".to_owned(), "1".to_owned())]);
        // The canary's replica did not survive; one stable replica did.
        prune(&mut routing, &BTreeSet::from([addr(1002)]), &live);
        assert_eq!(routing.routes, vec![route("web")]);
        assert_eq!(routing.services.len(), 1);
        assert_eq!(routing.services["web"].pools, vec![pool("1", 100, &[1002])]);
        routing.validate().expect("a valid table");
        // Everything survived: nothing changes.
        let mut full = RoutingConfig {
            routes: vec![route("web")],
            services: BTreeMap::from([(
                "web".to_owned(),
                ferry_proxy::ServiceConfig::new(vec![
                    pool("1", 50, &[1001]),
                    pool("2", 50, &[2001]),
                ]),
            )]),
        };
        let before = full.clone();
        prune(&mut full, &BTreeSet::from([addr(1001), addr(2001)]), &live);
        assert_eq!(full, before);
    }

    #[test]
    fn containers_are_adopted_only_when_something_references_their_revision() {
        let key = ("web".to_owned(), "prod".to_owned());
        let live = BTreeMap::from([(key.clone(), "1".to_owned())]);
        let rolling = Rolling::from([(key, ("2".to_owned(), Some("1".to_owned())))]);
        let none = BTreeMap::new();
        assert_eq!(
            fate("web", "prod", "2", &live, &rolling),
            Fate::Adopt { strict: true }
        );
        assert_eq!(
            fate("web", "prod", "1", &live, &none),
            Fate::Adopt { strict: false }
        );
        // The stable revision of a rollout past `mark stable` is no longer live, but
        // it is still held warm (blue-green) or being drained.
        let promoted = BTreeMap::from([(("web".to_owned(), "prod".to_owned()), "2".to_owned())]);
        assert_eq!(
            fate("web", "prod", "1", &promoted, &rolling),
            Fate::Adopt { strict: false }
        );
        // An abandoned revision (an older rollout's, or a rolled-back one).
        assert_eq!(fate("web", "prod", "3", &live, &rolling), Fate::Remove);
        assert_eq!(fate("web", "prod", "2", &live, &none), Fate::Remove);
        // Another environment's containers do not ride on this one's revisions.
        assert_eq!(fate("web", "staging", "1", &live, &rolling), Fate::Remove);
    }
}
