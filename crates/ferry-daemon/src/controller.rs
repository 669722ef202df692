//! The rollout controller: feeds events to the `ferry-rollout` state machine, persists
//! each new state before acting on it, and executes the commands against the engine
//! and the proxy.
//!
//! Design note. One task per running rollout owns its `State`. Replica tasks (start,
//! health wait, drain and stop), wake-up timers and API calls (promote, abort...) send
//! `Event`s into the rollout's channel; the task steps the machine, persists the state
//! and its timeline notes in one store transaction, then executes the commands in order.
//! Replicas of an app+env outlive rollouts (the stable revision's replicas serve the
//! next rollout), so they are tracked per app+env, not per rollout.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_engine::Engine;
use ferry_proxy::{PoolConfig, ProxyHandle, RouteConfig, RoutingConfig, ServiceConfig};
use ferry_rollout::{
    Command, Event, Outcome, ReplicaId, Revision, State, Stop, Timestamp, Verdict, Weights,
};
use ferry_spec::Spec;
use ferry_store::{NewEvent, RevisionStatus, RolloutId, RolloutOutcome, Store};
use tokio::sync::mpsc;

use crate::protocol::RolloutStatus;
use crate::replica::{self, Replica};

/// Replicas of one app+env, by revision name.
pub(crate) type Pools = BTreeMap<String, Vec<Replica>>;

/// What the daemon knows about one app+env.
#[derive(Default)]
pub(crate) struct AppState {
    /// The latest rollout's status.
    pub status: Option<RolloutStatus>,
    /// The running rollout's event channel.
    pub events: Option<mpsc::UnboundedSender<Event>>,
    /// Its replicas.
    pub pools: Arc<Mutex<Pools>>,
    /// Counts the changes of `status`: long-polling clients wait on it (`?since=`).
    pub changes: tokio::sync::watch::Sender<u64>,
    /// Revisions kept warm after a promotion, by revision name (see [`crate::warm`]).
    pub warm: BTreeMap<String, crate::warm::Warm>,
    /// Why the reconciler holds the live revision degraded (its replicas keep failing),
    /// until it runs its full replica count again.
    pub degraded: Option<String>,
}

impl AppState {
    /// Marks a change of the status, waking the clients waiting for one.
    pub fn changed(&self) {
        self.changes.send_modify(|v| *v += 1);
    }

    /// The status change counter.
    pub fn version(&self) -> u64 {
        *self.changes.borrow()
    }
}

/// Everything the controller and the API share.
pub(crate) struct Shared {
    /// This daemon's identity on the engine (see [`replica::LABEL_DAEMON`]).
    pub daemon_id: String,
    pub proxy: ProxyHandle,
    pub engine: Engine,
    pub store: Store,
    pub apps: Mutex<HashMap<(String, String), AppState>>,
    /// Serializes network creation: replicas starting at once would otherwise create
    /// two networks of the same name (the engine allows that).
    pub networks: tokio::sync::Mutex<()>,
    /// The (absolute) state directory: the secrets key file and the replicas' secret files.
    pub state_dir: std::path::PathBuf,
    /// TLS settings of `https://` webhooks.
    pub webhook_tls: Arc<rustls::ClientConfig>,
}

/// One rollout being driven.
pub(crate) struct Rollout {
    pub shared: Arc<Shared>,
    pub id: RolloutId,
    pub revision: i64,
    pub from: Option<i64>,
    pub env: String,
    pub spec: Spec,
    pub image: String,
    /// The plan's stable revision's image and spec: a rollback that must start stable
    /// replicas again (they were scaled down, or lost in a crash) starts these.
    pub stable: Option<(String, Spec)>,
    pub pools: Arc<Mutex<Pools>>,
    pub tx: mpsc::UnboundedSender<Event>,
    /// A rollback to an earlier, good revision: a failure does not mark it failed.
    pub rollback: bool,
    /// Running analysis tasks, by run (aborted by `StopAnalysis` and at the end).
    pub analyses: Mutex<HashMap<u32, tokio::task::AbortHandle>>,
    /// The latest analysis verdict explanations, for the status.
    pub explanations: Arc<Mutex<Vec<String>>>,
}

/// How long the deploy lock lasts without a heartbeat (a crashed daemon's lock lapses).
pub(crate) const LOCK_TTL: Duration = Duration::from_secs(60);

/// The holder name of this daemon's deploy locks.
pub(crate) fn lock_holder(shared: &Shared) -> String {
    format!("ferry-daemon:{}", shared.daemon_id)
}

/// Now, for the engine.
pub(crate) fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp::from_unix_millis(ms)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The phase's kebab-case name, as stored.
fn phase_name(state: &State) -> String {
    serde_json::to_value(state.phase())
        .ok()
        .and_then(|v| v.get("phase").and_then(|p| p.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

impl Rollout {
    fn app(&self) -> &str {
        self.spec.app.as_str()
    }

    fn key(&self) -> (String, String) {
        (self.app().to_owned(), self.env.clone())
    }

    /// Publishes the status; `done` once the rollout's end is recorded and its lock
    /// released, so a client seeing `finished` can deploy again at once.
    pub(crate) fn publish_status(&self, state: &State, done: bool) {
        let status = RolloutStatus {
            id: self.id.get(),
            from: self.from,
            revision: self.revision,
            strategy: state.plan().strategy_name().to_owned(),
            phase: state.phase().to_string(),
            step: state.current_step(),
            steps: state.steps(),
            weights: state.weights(),
            replicas: state.replicas(),
            finished: done,
            outcome: state.outcome(),
            summary: state.summary(),
            analysis: lock(&self.explanations).clone(),
        };
        let mut apps = lock(&self.shared.apps);
        let entry = apps.entry(self.key()).or_default();
        entry.status = Some(status);
        if done {
            entry.events = None;
        }
        entry.changed();
    }

    /// Drives the rollout from `state`, beginning with `first` (`Start` for a new
    /// rollout, `Resumed` for one a restarted daemon reloaded), until it finishes (or its
    /// channel closes, or its state can no longer be persisted).
    pub async fn run(self, mut state: State, mut rx: mpsc::UnboundedReceiver<Event>, first: Event) {
        let heartbeat = {
            let (store, app, env, holder) = (
                self.shared.store.clone(),
                self.app().to_owned(),
                self.env.clone(),
                lock_holder(&self.shared),
            );
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(LOCK_TTL / 3).await;
                    if let Err(e) = store.renew_lock(&app, &env, &holder, LOCK_TTL).await {
                        tracing::warn!(error = %e, "cannot renew the deploy lock");
                    }
                }
            })
        };
        let notify = crate::notify::Queue::start(self.shared.webhook_tls.clone());
        // A rollout that never got past pending (new, or interrupted during its hooks)
        // runs its preparation: hooks are meant to be idempotent (migrations are).
        let fresh = matches!(state.phase(), ferry_rollout::Phase::Pending);
        if fresh {
            let event = if self.rollback {
                ferry_spec::NotifyEvent::RollbackStarted
            } else {
                ferry_spec::NotifyEvent::DeployStarted
            };
            self.notify(&notify, event, &state, None);
        }
        match if fresh {
            self.prepare(&notify, &state).await
        } else {
            Ok(())
        } {
            Ok(()) => self.drive(&mut state, &mut rx, &notify, first).await,
            Err(reason) => self.fail_before_traffic(&state, reason, &notify).await,
        }
        heartbeat.abort();
        for (_, task) in lock(&self.analyses).drain() {
            task.abort();
        }
    }

    async fn drive(
        &self,
        state: &mut State,
        rx: &mut mpsc::UnboundedReceiver<Event>,
        notify: &crate::notify::Queue,
        first: Event,
    ) {
        let mut pending = vec![first];
        loop {
            let event = match pending.pop() {
                Some(e) => e,
                None => match rx.recv().await {
                    Some(e) => e,
                    None => break,
                },
            };
            tracing::debug!(rollout = %self.id, event = event.kind(), "rollout event");
            let (before, seen) = (state.clone(), event.clone());
            let (next, commands) = ferry_rollout::step(state.clone(), event, now());
            let notes: Vec<NewEvent> = commands
                .iter()
                .filter_map(|c| match c {
                    Command::RecordEvent { text } => Some(NewEvent {
                        kind: "note".to_owned(),
                        message: serde_json::json!({ "text": text }),
                    }),
                    _ => None,
                })
                .collect();
            let state_json = serde_json::to_value(&next).unwrap_or(serde_json::Value::Null);
            // Persist before acting: after a crash the store is at most one step ahead of
            // the world. A state that cannot be stored is never acted on: the driver
            // stops, and the next daemon start resumes from the last stored state.
            if !self.persist(&state_json, &phase_name(&next), &notes).await {
                return;
            }
            *state = next;
            self.publish_status(state, false);
            for (event, detail) in crate::notify::transitions(&before, state, &seen, &commands) {
                self.notify_with(notify, event, state, detail);
            }
            let mut finished = false;
            for command in commands {
                if let Some(outcome) = self.execute(command, state).await {
                    self.settle_workers(&outcome).await;
                    self.finish(&outcome, &state_json, state).await;
                    if outcome.is_success() {
                        self.after_promotion(state);
                    }
                    let (event, reason) = match &outcome {
                        Outcome::Promoted if self.rollback => {
                            (ferry_spec::NotifyEvent::RollbackSucceeded, None)
                        }
                        Outcome::Promoted => (ferry_spec::NotifyEvent::DeploySucceeded, None),
                        Outcome::RolledBack { reason } => {
                            (ferry_spec::NotifyEvent::DeployFailed, Some(reason.clone()))
                        }
                        Outcome::Aborted { reason } => (
                            ferry_spec::NotifyEvent::RolloutAborted,
                            Some(reason.clone()),
                        ),
                    };
                    self.notify(notify, event, state, reason);
                    if outcome.is_success() && !self.rollback {
                        self.post_deploy(notify, state).await;
                    }
                    finished = true;
                }
            }
            if finished {
                if let Err(e) = self
                    .shared
                    .store
                    .release_lock(self.app(), &self.env, &lock_holder(&self.shared))
                    .await
                {
                    tracing::warn!(error = %e, "cannot release the deploy lock");
                }
                self.publish_status(state, true);
                break;
            }
        }
    }

    /// Stores the rollout's new state with its timeline notes, retrying a store that
    /// fails for a while (about 30 s); false when it could not, or the rollout was
    /// finished meanwhile (by `ferry lock release` and another daemon, say).
    async fn persist(&self, state: &serde_json::Value, phase: &str, notes: &[NewEvent]) -> bool {
        let mut wait = Duration::from_millis(100);
        for attempt in 1..=8 {
            match self
                .shared
                .store
                .advance_rollout(self.id, state, phase, notes)
                .await
            {
                Ok(_) => return true,
                Err(
                    e @ (ferry_store::Error::RolloutFinished { .. }
                    | ferry_store::Error::RolloutNotFound { .. }),
                ) => {
                    tracing::error!(rollout = %self.id, error = %e, "the rollout is no longer running; not acting on it");
                    return false;
                }
                Err(e) => {
                    tracing::error!(rollout = %self.id, attempt, error = %e, "cannot persist rollout state; retrying before acting");
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(8));
        }
        tracing::error!(rollout = %self.id, "giving up: the rollout's state cannot be stored, so it is not acted on; restart the daemon to resume it");
        lock(&self.shared.apps)
            .entry(self.key())
            .or_default()
            .events = None;
        false
    }

    /// The old revision stays warm for the plan's window (the engine left it running),
    /// and images of revisions older than the retained ones are pruned.
    fn after_promotion(&self, state: &State) {
        let plan = state.plan();
        let window = plan.warm_window();
        if let Some(stable) = &plan.stable
            && stable.replicas > 0
            && !window.is_zero()
        {
            let web = self.spec.web.clone().unwrap_or_default();
            crate::warm::keep(
                &self.shared,
                self.app(),
                &self.env,
                stable.rev.as_str(),
                window,
                (web.drain_timeout.as_std(), web.stop_timeout.as_std()),
            );
        }
        let web = self.spec.web.clone().unwrap_or_default();
        let settle =
            web.drain_timeout.as_std() + web.stop_timeout.as_std() + Duration::from_secs(10);
        tokio::spawn(crate::retention::prune(
            self.shared.clone(),
            self.app().to_owned(),
            self.env.clone(),
            self.spec.strategy.retain_images,
            self.id,
            settle,
        ));
    }

    /// Queues `event` for the spec's webhooks subscribed to it.
    fn notify(
        &self,
        queue: &crate::notify::Queue,
        event: ferry_spec::NotifyEvent,
        state: &State,
        reason: Option<String>,
    ) {
        let detail = crate::notify::Detail {
            reason,
            ..Default::default()
        };
        self.notify_with(queue, event, state, detail);
    }

    /// Queues `event` with its details for the spec's webhooks subscribed to it.
    fn notify_with(
        &self,
        queue: &crate::notify::Queue,
        event: ferry_spec::NotifyEvent,
        state: &State,
        detail: crate::notify::Detail,
    ) {
        let webhooks = &self.spec.notify.webhooks;
        if crate::notify::subscribers(webhooks, event).is_empty() {
            return;
        }
        let payload = crate::notify::Payload {
            event: event.as_str(),
            app: self.app().to_owned(),
            env: self.env.clone(),
            revision: self.revision,
            from: self.from,
            strategy: state.plan().strategy_name().to_owned(),
            reason: detail.reason,
            at: crate::notify::rfc3339(now().unix_millis()),
            summary: state.summary(),
            step: detail.step,
            weights: detail.weights,
            verdict: detail.verdict,
        };
        crate::notify::send(
            queue,
            &self.shared.store,
            self.id,
            webhooks,
            event,
            &payload,
        );
    }

    /// Appends a line to the rollout's timeline.
    async fn note(&self, text: &str) {
        if let Err(e) = self
            .shared
            .store
            .append_event(self.id, "note", &serde_json::json!({ "text": text }))
            .await
        {
            tracing::warn!(rollout = %self.id, error = %e, "cannot record a timeline note");
        }
    }

    fn hook_context(&self) -> (String, i64) {
        (self.revision.to_string(), self.id.get())
    }

    /// Before any traffic moves: the `pre_deploy` hooks (not for rollbacks: they run an
    /// earlier, already migrated image), then the new revision's workers. An error is
    /// the reason the rollout fails.
    async fn prepare(&self, queue: &crate::notify::Queue, state: &State) -> Result<(), String> {
        let (revision, rollout) = self.hook_context();
        if !self.rollback && !self.spec.hooks.pre_deploy.is_empty() {
            let cx = crate::hook::Context {
                shared: &self.shared,
                env: &self.env,
                revision: &revision,
                rollout,
                image: &self.image,
                spec: &self.spec,
            };
            let ran = crate::hook::run(&cx, crate::hook::Stage::PreDeploy).await;
            for r in &ran {
                self.note(&r.describe(crate::hook::Stage::PreDeploy)).await;
            }
            if let Some(failed) = ran.last().filter(|r| !r.ok()) {
                let reason = failed.describe(crate::hook::Stage::PreDeploy);
                self.notify(
                    queue,
                    ferry_spec::NotifyEvent::HookFailed,
                    state,
                    Some(reason.clone()),
                );
                return Err(format!("{reason}; no traffic moved"));
            }
        }
        if !self.spec.workers.is_empty() {
            let release = crate::worker::Release {
                app: self.app(),
                env: &self.env,
                revision: &revision,
                rollout,
                image: &self.image,
                spec: &self.spec,
            };
            match crate::worker::start(&self.shared, &release).await {
                Ok(n) => {
                    self.note(&format!(
                        "started {n} worker container(s) of revision {revision}"
                    ))
                    .await;
                }
                Err(reason) => {
                    let secrets = crate::secret::values(&self.shared, &self.env, &self.spec).await;
                    let notes = crate::worker::stop(
                        &self.shared,
                        self.app(),
                        &self.env,
                        |r| r == revision,
                        &secrets,
                    )
                    .await;
                    for n in &notes {
                        self.note(n).await;
                    }
                    return Err(format!("{reason}; no traffic moved"));
                }
            }
        }
        Ok(())
    }

    /// Ends a rollout whose preparation failed: no replica of the new revision was
    /// started and no traffic moved; recorded as failed with `reason`.
    async fn fail_before_traffic(
        &self,
        state: &State,
        reason: String,
        queue: &crate::notify::Queue,
    ) {
        let outcome = Outcome::RolledBack {
            reason: reason.clone(),
        };
        let state_json = serde_json::to_value(state).unwrap_or(serde_json::Value::Null);
        self.finish(&outcome, &state_json, state).await;
        let event = if self.rollback {
            ferry_spec::NotifyEvent::RolloutAborted
        } else {
            ferry_spec::NotifyEvent::DeployFailed
        };
        self.notify(queue, event, state, Some(reason.clone()));
        if let Err(e) = self
            .shared
            .store
            .release_lock(self.app(), &self.env, &lock_holder(&self.shared))
            .await
        {
            tracing::warn!(error = %e, "cannot release the deploy lock");
        }
        self.publish_status(state, true);
        let mut apps = lock(&self.shared.apps);
        if let Some(status) = apps.get_mut(&self.key()).and_then(|e| e.status.as_mut()) {
            status.phase = "failed before traffic moved".to_owned();
            status.summary = format!("failed before traffic moved: {reason}");
            status.outcome = Some(outcome);
        }
    }

    /// Workers follow the outcome: once the new revision is live the other revisions'
    /// workers stop; otherwise the new revision's workers stop. Each stop is a timeline note.
    async fn settle_workers(&self, outcome: &Outcome) {
        let revision = self.revision.to_string();
        let secrets = crate::secret::values(&self.shared, &self.env, &self.spec).await;
        let promoted = outcome.is_success();
        let notes = crate::worker::stop(
            &self.shared,
            self.app(),
            &self.env,
            |r| (r == revision) != promoted,
            &secrets,
        )
        .await;
        for n in &notes {
            self.note(n).await;
        }
    }

    /// After the new revision is live: the `post_deploy` hooks. A failure is a timeline
    /// note and a `hook-failed` notification; nothing is rolled back.
    async fn post_deploy(&self, queue: &crate::notify::Queue, state: &State) {
        if self.spec.hooks.post_deploy.is_empty() {
            return;
        }
        let (revision, rollout) = self.hook_context();
        let cx = crate::hook::Context {
            shared: &self.shared,
            env: &self.env,
            revision: &revision,
            rollout,
            image: &self.image,
            spec: &self.spec,
        };
        let ran = crate::hook::run(&cx, crate::hook::Stage::PostDeploy).await;
        for r in &ran {
            self.note(&r.describe(crate::hook::Stage::PostDeploy)).await;
        }
        if let Some(failed) = ran.last().filter(|r| !r.ok()) {
            let reason = format!(
                "{} (the revision stays live: post_deploy failures roll nothing back)",
                failed.describe(crate::hook::Stage::PostDeploy)
            );
            self.notify(
                queue,
                ferry_spec::NotifyEvent::HookFailed,
                state,
                Some(reason),
            );
        }
    }

    async fn finish(&self, outcome: &Outcome, state_json: &serde_json::Value, state: &State) {
        let store = &self.shared.store;
        let (stored, reason) = match outcome {
            Outcome::Promoted => (RolloutOutcome::Succeeded, None),
            Outcome::RolledBack { reason } => (RolloutOutcome::Failed, Some(reason.as_str())),
            Outcome::Aborted { reason } => (RolloutOutcome::Aborted, Some(reason.as_str())),
        };
        if let Err(e) = store
            .finish_rollout(self.id, stored, reason, state_json, &phase_name(state))
            .await
        {
            tracing::error!(rollout = %self.id, error = %e, "cannot record the rollout's end");
        }
        if !outcome.is_success() && !self.rollback {
            let status = match store.revision(self.app(), &self.env, self.revision).await {
                Ok(Some(r)) if r.status == RevisionStatus::Live => RevisionStatus::RolledBack,
                _ => RevisionStatus::Failed,
            };
            if status == RevisionStatus::RolledBack
                && let Some(from) = self.from
            {
                let _ = store
                    .set_revision_status(self.app(), &self.env, from, RevisionStatus::Live, None)
                    .await;
            }
            if let Err(e) = store
                .set_revision_status(self.app(), &self.env, self.revision, status, reason)
                .await
            {
                tracing::error!(error = %e, "cannot record the revision's status");
            }
        }
    }

    /// Executes one command; returns the outcome for `Finish`.
    async fn execute(&self, command: Command, state: &State) -> Option<Outcome> {
        match command {
            Command::StartReplicas { rev, total } => self.start_replicas(&rev, total),
            Command::StopReplicas { rev, which } => self.stop_replicas(&rev, &which),
            Command::SetWeights { weights } => self.set_weights(state, weights),
            Command::SwitchTraffic { to } => self.switch(&to),
            Command::RunSmoke { rev, checks } => {
                let addr = lock(&self.pools)
                    .get(rev.as_str())
                    .and_then(|p| p.iter().find(|r| r.routed).and_then(|r| r.addr));
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let event = match addr {
                        Some(addr) => smoke(addr, &checks).await,
                        None => Event::SmokeFailed {
                            reason: format!("no healthy replica of {rev} to check"),
                        },
                    };
                    let _ = tx.send(event);
                });
            }
            Command::StartAnalysis { run, name, step } => {
                self.start_analysis(state, run, &name, step)
            }
            Command::StopAnalysis { run } => {
                if let Some(task) = lock(&self.analyses).remove(&run.0) {
                    task.abort();
                }
            }
            Command::ScheduleWake { at } => {
                let tx = self.tx.clone();
                let wait =
                    Duration::from_millis(at.unix_millis().saturating_sub(now().unix_millis()));
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = tx.send(Event::Tick);
                });
            }
            Command::MarkStable { rev } => {
                if let Ok(number) = rev.as_str().parse::<i64>()
                    && let Err(e) = self
                        .shared
                        .store
                        .set_revision_status(
                            self.app(),
                            &self.env,
                            number,
                            RevisionStatus::Live,
                            None,
                        )
                        .await
                {
                    tracing::error!(error = %e, "cannot mark the revision live");
                }
            }
            Command::Finish { outcome } => return Some(outcome),
            Command::WaitHealthy { .. } | Command::RecordEvent { .. } => {}
        }
        None
    }

    /// Starts measuring `[analysis.<name>]`; the task answers with `AnalysisVerdict`.
    fn start_analysis(
        &self,
        state: &State,
        run: ferry_rollout::AnalysisRun,
        name: &ferry_rollout::AnalysisName,
        step: Option<usize>,
    ) {
        let name = name.as_str().to_owned();
        let config = match self.spec.analysis.get(&name) {
            Some(spec) => crate::analysis::config(&name, spec).and_then(|config| {
                crate::provider::Providers::new(&name, spec).map(|p| (config, p))
            }),
            None => Err(format!("the spec has no [analysis.{name}] table")),
        };
        let (config, providers) = match config {
            Ok(c) => c,
            Err(reason) => {
                // Deploys refuse these up front; this covers a recovered rollout.
                let _ = self.tx.send(Event::AnalysisVerdict {
                    run,
                    verdict: Verdict::Fail,
                    reference: String::new(),
                    summary: reason,
                });
                return;
            }
        };
        let plan = state.plan();
        let task = tokio::spawn(
            crate::analysis::Run {
                shared: self.shared.clone(),
                rollout: self.id,
                service: self.app().to_owned(),
                env: self.env.clone(),
                canary: plan.new.to_string(),
                stable: plan.stable.as_ref().map(|s| s.rev.to_string()),
                run,
                name,
                step,
                config,
                tx: self.tx.clone(),
                explanations: self.explanations.clone(),
                providers,
                image: self.image.clone(),
                spec: self.spec.clone(),
                pools: self.pools.clone(),
            }
            .measure(),
        );
        if let Some(old) = lock(&self.analyses).insert(run.0, task.abort_handle()) {
            old.abort();
        }
    }

    fn start_replicas(&self, rev: &Revision, total: u32) {
        let mut pools = lock(&self.pools);
        let pool = pools.entry(rev.as_str().to_owned()).or_default();
        let total = usize::try_from(total).unwrap_or(usize::MAX);
        let mut index = pool.len();
        while pool.len() < total {
            index += 1;
            let name = format!(
                "ferry-{}-{}-web-r{}-{}-{index}",
                self.app(),
                self.env,
                rev,
                self.id
            );
            let Ok(id) = ReplicaId::new(name.clone()) else {
                tracing::error!(%name, "replica name is not valid");
                return;
            };
            if pool.iter().any(|r| r.id == id) {
                continue;
            }
            let (image, spec) = match &self.stable {
                Some((image, spec)) if rev.as_str() != self.revision.to_string() => {
                    (image.clone(), spec.clone())
                }
                _ => (self.image.clone(), self.spec.clone()),
            };
            let task = tokio::spawn(start_one(
                self.shared.clone(),
                self.pools.clone(),
                self.tx.clone(),
                spec,
                self.env.clone(),
                image,
                rev.clone(),
                id.clone(),
                self.id,
            ));
            pool.push(Replica {
                id,
                addr: None,
                routed: false,
                task: Some(task.abort_handle()),
            });
        }
    }

    fn stop_replicas(&self, rev: &Revision, which: &Stop) {
        let chosen: Vec<Replica> = {
            let mut pools = lock(&self.pools);
            let pool = pools.entry(rev.as_str().to_owned()).or_default();
            match which {
                Stop::All => std::mem::take(pool),
                Stop::Ids(ids) => {
                    let (stop, keep) = std::mem::take(pool)
                        .into_iter()
                        .partition(|r| ids.contains(&r.id));
                    *pool = keep;
                    stop
                }
                Stop::DownTo(n) => {
                    // Stop replicas not yet serving first, then the newest.
                    pool.sort_by_key(|r| r.routed);
                    pool.reverse();
                    let keep = usize::try_from(*n).unwrap_or(usize::MAX).min(pool.len());
                    pool.split_off(keep)
                }
            }
        };
        let web = self.spec.web.clone().unwrap_or_default();
        for replica in chosen {
            if let Some(task) = &replica.task {
                task.abort();
            }
            let shared = self.shared.clone();
            let tx = self.tx.clone();
            let rev = rev.clone();
            let drain = web.drain_timeout.as_std();
            let stop = web.stop_timeout.as_std();
            tokio::spawn(async move {
                if let (true, Some(addr)) = (replica.routed, replica.addr)
                    && let Err(e) = shared.proxy.drain_backend(addr, drain).await
                {
                    tracing::warn!(%addr, error = %e, "drain failed");
                }
                let name = replica.id.as_str();
                if let Err(e) = shared.engine.stop_and_remove(name, stop).await
                    && !matches!(e, ferry_engine::EngineError::NotFound { .. })
                {
                    tracing::warn!(container = name, error = %e, "stop failed");
                }
                let _ = tx.send(Event::ReplicaStopped {
                    rev,
                    id: replica.id,
                });
            });
        }
    }

    /// Sets the proxy's split between the plan's stable and new revisions (all to the one
    /// that has backends when the other has none).
    pub(crate) fn set_weights(&self, state: &State, weights: Weights) {
        let plan = state.plan();
        let stable = plan.stable.as_ref().map(|s| s.rev.to_string());
        let new = plan.new.to_string();
        let app = self.app().to_owned();
        let result = self.shared.proxy.update(|r| {
            let Some(svc) = r.services.get_mut(&app) else {
                return Ok(());
            };
            let has = |name: &Option<String>| {
                name.as_ref()
                    .is_some_and(|n| svc.pools.iter().any(|p| &p.revision == n))
            };
            let (has_stable, has_new) = (has(&stable), has(&Some(new.clone())));
            let (ws, wn) = match (has_stable, has_new) {
                (true, true) => (
                    u32::from(weights.stable().percent()),
                    u32::from(weights.canary().percent()),
                ),
                (true, false) => (100, 0),
                (false, true) => (0, 100),
                (false, false) => return Ok(()),
            };
            for p in &mut svc.pools {
                let w = if Some(&p.revision) == stable.as_ref() {
                    ws
                } else if p.revision == new {
                    wn
                } else {
                    0
                };
                p.weight = ferry_proxy::Weight::new(w).unwrap_or(ferry_proxy::Weight::ZERO);
            }
            Ok(())
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot set weights");
        }
    }

    fn switch(&self, to: &Revision) {
        let app = self.app().to_owned();
        let result = self.shared.proxy.update(|r| {
            if let Some(svc) = r.services.get_mut(&app)
                && svc.pools.iter().any(|p| p.revision == to.as_str())
            {
                for p in &mut svc.pools {
                    p.weight = if p.revision == to.as_str() {
                        ferry_proxy::Weight::FULL
                    } else {
                        ferry_proxy::Weight::ZERO
                    };
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot switch traffic");
        }
    }
}

/// The routes of `spec`'s app: its `web.routes`, or a catch-all.
pub(crate) fn routes(spec: &Spec) -> Vec<RouteConfig> {
    let app = spec.app.as_str().to_owned();
    let web = spec.web.clone().unwrap_or_default();
    if web.routes.is_empty() {
        return vec![RouteConfig {
            hosts: Vec::new(),
            path_prefix: "/".to_owned(),
            service: app,
        }];
    }
    web.routes
        .iter()
        .map(|r| RouteConfig {
            hosts: r.hosts.clone(),
            path_prefix: r.path_prefix.clone(),
            service: app.clone(),
        })
        .collect()
}

/// Adds `addr` to the pool of `revision` of the app's service, creating the service
/// (all traffic to this first pool) and its routes when missing.
pub(crate) fn add_backend(
    proxy: &ProxyHandle,
    spec: &Spec,
    revision: &str,
    addr: SocketAddr,
) -> Result<(), ferry_proxy::Error> {
    let app = spec.app.as_str().to_owned();
    proxy.update(|r: &mut RoutingConfig| {
        let svc = r
            .services
            .entry(app.clone())
            .or_insert_with(|| ServiceConfig::new(Vec::new()));
        // Blue-green preview routing: a request with this header naming a revision reaches
        // it before the switch (pre-promotion analysis traffic, manual checks).
        svc.preview = spec
            .strategy
            .blue_green
            .as_ref()
            .and_then(|b| b.preview_header.clone());
        let first = svc
            .pools
            .iter()
            .all(|p| p.backends.is_empty() && p.weight.get() == 0)
            && svc.pools.iter().all(|p| p.revision == revision);
        match svc.pools.iter_mut().find(|p| p.revision == revision) {
            // Idempotent: after a takeover the inherited table already routes it.
            Some(p) if p.backends.contains(&addr) => {}
            Some(p) => p.backends.push(addr),
            None => svc.pools.push(PoolConfig {
                revision: revision.to_owned(),
                weight: ferry_proxy::Weight::ZERO,
                backends: vec![addr],
            }),
        }
        if first && let Some(p) = svc.pools.iter_mut().find(|p| p.revision == revision) {
            p.weight = ferry_proxy::Weight::FULL;
        }
        if !r.routes.iter().any(|route| route.service == app) {
            r.routes.extend(routes(spec));
        }
        Ok(())
    })
}

/// Drops pools that carry no traffic and have no backends (left by finished rollouts).
pub(crate) fn prune_pools(proxy: &ProxyHandle, app: &str) {
    let _ = proxy.update(|r| {
        if let Some(svc) = r.services.get_mut(app) {
            svc.pools
                .retain(|p| p.weight.get() > 0 || !p.backends.is_empty());
        }
        Ok(())
    });
}

/// Creates and starts the container of replica `name` of `rev` (its secrets injected, a
/// leftover of the same name removed, the app's network ensured): its container id and
/// published address, or why not. The start path of rollouts and of the reconciler.
pub(crate) async fn launch(
    shared: &Shared,
    spec: &Spec,
    env: &str,
    image: &str,
    rev: &str,
    name: &str,
    rollout: Option<RolloutId>,
) -> Result<(String, SocketAddr), String> {
    let mut container = replica::container_spec(&shared.daemon_id, name, image, env, rev, spec);
    if let Some(rollout) = rollout {
        container
            .labels
            .insert(replica::LABEL_ROLLOUT.to_owned(), rollout.get().to_string());
    }
    crate::secret::inject(shared, env, spec, &mut container).await?;
    // A container of this name left by an earlier daemon would block the create.
    let _ = shared.engine.remove(name, true).await;
    if let Some(net) = &container.network {
        let _guard = shared.networks.lock().await;
        let mut labels = container.identity.labels();
        labels.retain(|k, _| k == ferry_engine::LABEL_APP || k == ferry_engine::LABEL_ENV);
        shared
            .engine
            .ensure_network(net, &labels)
            .await
            .map_err(|e| error_chain(&e))?;
    }
    let running = shared
        .engine
        .run(&container)
        .await
        .map_err(|e| error_chain(&e))?;
    let addr = running
        .host_addr
        .ok_or_else(|| "the engine published no port".to_owned())?;
    Ok((running.id, addr))
}

/// Waits (at most 120 s) until the replica started by [`launch`] is healthy.
pub(crate) async fn wait_healthy(
    shared: &Shared,
    spec: &Spec,
    container: &str,
    addr: SocketAddr,
) -> Result<(), String> {
    let wait = replica::health_wait(spec, addr, Duration::from_secs(120));
    shared
        .engine
        .wait_healthy(container, &wait)
        .await
        .map(|_| ())
        .map_err(|e| error_chain(&e))
}

#[expect(
    clippy::too_many_arguments,
    reason = "one spawned task's whole context"
)]
async fn start_one(
    shared: Arc<Shared>,
    pools: Arc<Mutex<Pools>>,
    tx: mpsc::UnboundedSender<Event>,
    spec: Spec,
    env: String,
    image: String,
    rev: Revision,
    id: ReplicaId,
    rollout: RolloutId,
) {
    let name = id.as_str().to_owned();
    let (container, addr) = match launch(
        &shared,
        &spec,
        &env,
        &image,
        rev.as_str(),
        &name,
        Some(rollout),
    )
    .await
    {
        Ok(started) => started,
        Err(reason) => {
            let _ = tx.send(Event::ReplicaFailed { rev, id, reason });
            return;
        }
    };
    set_replica(&pools, rev.as_str(), &id, |r| r.addr = Some(addr));
    let _ = tx.send(Event::ReplicaStarted {
        rev: rev.clone(),
        id: id.clone(),
    });
    match wait_healthy(&shared, &spec, &container, addr).await {
        Ok(()) => {
            // Stopped meanwhile: the stop task owns it now.
            let still_wanted = lock(&pools)
                .get(rev.as_str())
                .is_some_and(|p| p.iter().any(|r| r.id == id));
            if !still_wanted {
                return;
            }
            if let Err(e) = add_backend(&shared.proxy, &spec, rev.as_str(), addr) {
                let _ = tx.send(Event::ReplicaFailed {
                    rev,
                    id,
                    reason: format!("the proxy refused the backend: {e}"),
                });
                return;
            }
            set_replica(&pools, rev.as_str(), &id, |r| {
                r.routed = true;
                r.task = None;
            });
            let _ = tx.send(Event::ReplicaHealthy { rev, id });
        }
        Err(reason) => {
            let _ = tx.send(Event::ReplicaUnhealthy { rev, id, reason });
        }
    }
}

fn set_replica(pools: &Mutex<Pools>, rev: &str, id: &ReplicaId, f: impl FnOnce(&mut Replica)) {
    if let Some(r) = lock(pools)
        .get_mut(rev)
        .and_then(|p| p.iter_mut().find(|r| &r.id == id))
    {
        f(r);
    }
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Runs the smoke checks against one backend of the revision.
async fn smoke(addr: SocketAddr, checks: &[ferry_rollout::SmokeCheck]) -> Event {
    for check in checks {
        match crate::client::get_plain(addr, &check.path).await {
            Ok((status, body)) => {
                if status != check.expect_status {
                    return Event::SmokeFailed {
                        reason: format!(
                            "GET {} answered {status}, expected {}",
                            check.path, check.expect_status
                        ),
                    };
                }
                if let Some(needle) = &check.body_contains
                    && !body.contains(needle.as_str())
                {
                    return Event::SmokeFailed {
                        reason: format!("GET {} body does not contain {needle:?}", check.path),
                    };
                }
            }
            Err(e) => {
                return Event::SmokeFailed {
                    reason: format!("GET {} failed: {e}", check.path),
                };
            }
        }
    }
    Event::SmokePassed
}
