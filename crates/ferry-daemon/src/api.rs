//! The HTTP API (axum, JSON, bearer token): deploy, status, history and rollout commands,
//! and `/metrics` (Prometheus text) for a scraping Prometheus.
//!
//! Errors keep the internal detail in the log and send a plain message.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ferry_rollout::{Event, Revision, StableRevision};
use ferry_spec::Spec;
use ferry_store::{NewRevision, NewRollout, RevisionStatus};
use tokio::sync::mpsc;

use crate::controller::{self, Rollout, Shared};
use crate::protocol::{
    Ack, AppStatus, DeployAccepted, DeployRequest, ErrorBody, PromoteRequest, RevisionDetail,
    RevisionTraffic, RolloutRecord, VerdictRecord,
};

/// The API's state: the shared daemon and the token.
pub(crate) struct Api {
    pub shared: Arc<Shared>,
    pub token: String,
    /// Becomes true when the daemon shuts down: long polls answer at once.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// The longest a status long poll waits for a change.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// How long it waits when `wait` is not given.
const DEFAULT_WAIT: Duration = Duration::from_secs(25);

/// An error answer: a status and a message for the client.
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{context}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{context}: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

/// The router with every endpoint behind the bearer token.
pub(crate) fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/deploy", post(deploy))
        .route("/v1/apps/{app}/{env}/status", get(status))
        .route("/v1/apps/{app}/{env}/revisions", get(revisions))
        .route("/v1/apps/{app}/{env}/revisions/{number}", get(revision))
        .route("/v1/apps/{app}/{env}/{action}", post(action))
        .layer(axum::middleware::from_fn_with_state(api.clone(), auth))
        .with_state(api)
}

async fn auth(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !crate::token::matches(given, &api.token) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (see <state>/token)",
        )
        .into_response();
    }
    next.run(request).await
}

async fn health() -> Json<Ack> {
    Json(Ack::message("ok"))
}

/// The proxy's per-revision statistics in the Prometheus text format, for a Prometheus
/// server scraping ferry (with the token as its bearer credentials).
async fn metrics(State(api): State<Arc<Api>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        api.shared.proxy.metrics_text(),
    )
        .into_response()
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// FNV-1a: a stable fingerprint of the spec, to tell config-only changes apart.
fn spec_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

async fn deploy(
    State(api): State<Arc<Api>>,
    Json(req): Json<DeployRequest>,
) -> Result<Json<DeployAccepted>, ApiError> {
    let spec: Spec = serde_json::from_value(req.spec.clone())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("invalid spec: {e}")))?;
    if spec.app.as_str() != req.app {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the spec is for app {}, not {}", spec.app.as_str(), req.app),
        ));
    }
    if !spec.secrets.is_empty() {
        let missing = crate::secret::missing(&api.shared, &req.app, &req.env, &spec)
            .await
            .map_err(|e| ApiError::internal("read the secrets", e))?;
        if !missing.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                crate::secret::missing_message(&req.app, &req.env, &missing),
            ));
        }
    }
    let shared = api.shared.clone();
    let key = (req.app.clone(), req.env.clone());
    let (tx, rx) = mpsc::unbounded_channel();
    // Claim the app+env first: one rollout at a time.
    let pools = {
        let mut apps = lock(&shared.apps);
        let entry = apps.entry(key.clone()).or_default();
        if entry.events.is_some() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("a rollout of {}/{} is in progress", req.app, req.env),
            ));
        }
        entry.events = Some(tx.clone());
        entry.pools.clone()
    };
    let release = || {
        if let Some(entry) = lock(&shared.apps).get_mut(&key) {
            entry.events = None;
        }
    };
    let result = start_rollout(&api, &req, spec, pools, tx, rx, None).await;
    if result.is_err() {
        release();
    }
    result.map(Json)
}

/// Takes the store's lock on the app+env (so two daemons on one store cannot roll out
/// one app at once), then starts the rollout; the lock is released on any failure.
async fn start_rollout(
    api: &Api,
    req: &DeployRequest,
    spec: Spec,
    pools: Arc<std::sync::Mutex<controller::Pools>>,
    tx: mpsc::UnboundedSender<Event>,
    rx: mpsc::UnboundedReceiver<Event>,
    rollback_to: Option<i64>,
) -> Result<DeployAccepted, ApiError> {
    let store = &api.shared.store;
    let holder = controller::lock_holder(&api.shared);
    let outcome = store
        .acquire_lock(&req.app, &req.env, &holder, "rollout", controller::LOCK_TTL)
        .await
        .map_err(|e| ApiError::internal("cannot take the deploy lock", e))?;
    if !outcome.acquired() {
        let lock = outcome.lock();
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{}/{} is locked by {} ({}) until {}",
                req.app, req.env, lock.holder, lock.reason, lock.expires_at
            ),
        ));
    }
    let result = start_rollout_locked(api, req, spec, pools, tx, rx, rollback_to).await;
    if result.is_err() {
        let _ = store.release_lock(&req.app, &req.env, &holder).await;
    }
    result
}

async fn start_rollout_locked(
    api: &Api,
    req: &DeployRequest,
    spec: Spec,
    pools: Arc<std::sync::Mutex<controller::Pools>>,
    tx: mpsc::UnboundedSender<Event>,
    rx: mpsc::UnboundedReceiver<Event>,
    rollback_to: Option<i64>,
) -> Result<DeployAccepted, ApiError> {
    let shared = &api.shared;
    let store = &shared.store;
    let live = store
        .live_revision(&req.app, &req.env)
        .await
        .map_err(|e| ApiError::internal("cannot read the live revision", e))?;
    // The stable revision is the live one, if this daemon routes replicas of it.
    let stable = live.as_ref().and_then(|r| {
        let routed = lock(&pools)
            .get(&r.number.to_string())
            .map_or(0, |p| p.iter().filter(|x| x.routed).count());
        let rev = Revision::new(r.number.to_string()).ok()?;
        (routed > 0).then(|| StableRevision {
            rev,
            replicas: u32::try_from(routed).unwrap_or(u32::MAX),
        })
    });
    controller::prune_pools(&shared.proxy, &req.app);
    let created_by = req
        .created_by
        .clone()
        .unwrap_or_else(|| "ferry deploy".to_owned());
    let revision = match rollback_to {
        Some(number) => store
            .revision(&req.app, &req.env, number)
            .await
            .map_err(|e| ApiError::internal("cannot read the revision", e))?
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no revision {number}")))?,
        None => store
            .next_revision(&NewRevision {
                app: req.app.clone(),
                env: req.env.clone(),
                image: req.image.clone(),
                image_id: None,
                image_digest: None,
                git_sha: req.git_sha.clone(),
                spec: req.spec.clone(),
                spec_hash: spec_hash(&req.spec.to_string()),
                created_by: created_by.clone(),
            })
            .await
            .map_err(|e| ApiError::internal("cannot record the revision", e))?,
    };
    let new = Revision::new(revision.number.to_string())
        .map_err(|e| ApiError::internal("revision name", e))?;
    let from = stable
        .as_ref()
        .and_then(|s| s.rev.as_str().parse::<i64>().ok());
    let plan = match crate::plan::plan(&req.env, &spec, stable, new) {
        // A rollback is a fast track: no pauses, analyses or smoke checks; when the
        // target's replicas still run (kept warm), one switch to them.
        Ok(plan) if rollback_to.is_some() => {
            let mut plan = plan.into_fast_track();
            plan.new_running = crate::warm::take_for_rollback(
                shared,
                &req.app,
                &req.env,
                &revision.number.to_string(),
            );
            plan
        }
        Ok(plan) => plan,
        Err(e) if rollback_to.is_some() => {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, e.to_string()));
        }
        Err(e) => {
            let reason = e.to_string();
            let _ = store
                .set_revision_status(
                    &req.app,
                    &req.env,
                    revision.number,
                    RevisionStatus::Failed,
                    Some(&reason),
                )
                .await;
            return Err(ApiError::new(StatusCode::BAD_REQUEST, reason));
        }
    };
    let strategy = plan.strategy_name().to_owned();
    // A rollback must be able to start the stable revision again: its image and spec.
    let stable_image = match (&live, from) {
        (Some(live), Some(_)) => serde_json::from_value::<Spec>(live.spec.clone())
            .ok()
            .map(|spec| (live.image.clone(), spec)),
        _ => None,
    };
    let state = ferry_rollout::State::new(plan)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let rollout = store
        .create_rollout(&NewRollout {
            app: req.app.clone(),
            env: req.env.clone(),
            from_revision: from,
            to_revision: revision.number,
            strategy: strategy.clone(),
            state: serde_json::to_value(&state).unwrap_or(serde_json::Value::Null),
            phase: "pending".to_owned(),
            created_by,
        })
        .await
        .map_err(|e| ApiError::internal("cannot record the rollout", e))?;
    let driver = Rollout {
        shared: shared.clone(),
        id: rollout.id,
        revision: revision.number,
        from,
        env: req.env.clone(),
        spec,
        image: req.image.clone(),
        stable: stable_image,
        pools,
        tx,
        rollback: rollback_to.is_some(),
        analyses: Default::default(),
        explanations: Default::default(),
    };
    tokio::spawn(driver.run(state, rx, Event::Start));
    Ok(DeployAccepted {
        rollout: rollout.id.get(),
        revision: revision.number,
        from,
        strategy,
    })
}

/// `?since=V&wait=S` of the status: wait (up to S seconds) until the version differs
/// from V.
fn long_poll(query: Option<&str>) -> Result<Option<(u64, Duration)>, ApiError> {
    let mut since = None;
    let mut wait = DEFAULT_WAIT;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = || {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("query parameter {key}={value:?} is not a whole number"),
            )
        };
        match key {
            "since" => since = Some(value.parse::<u64>().map_err(|_| bad())?),
            "wait" => wait = Duration::from_secs(value.parse::<u64>().map_err(|_| bad())?),
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("unknown query parameter {key:?} (known: since, wait)"),
                ));
            }
        }
    }
    Ok(since.map(|v| (v, wait.min(MAX_WAIT))))
}

async fn status(
    State(api): State<Arc<Api>>,
    Path((app, env)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<AppStatus>, ApiError> {
    let shared = &api.shared;
    if let Some((since, wait)) = long_poll(query.as_deref())? {
        let mut changes = lock(&shared.apps)
            .entry((app.clone(), env.clone()))
            .or_default()
            .changes
            .subscribe();
        let mut stopping = api.stopping.clone();
        tokio::select! {
            _ = changes.wait_for(|v| *v != since) => {}
            _ = stopping.wait_for(|s| *s) => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
    let live = shared
        .store
        .live_revision(&app, &env)
        .await
        .map_err(|e| ApiError::internal("cannot read the live revision", e))?;
    let (rollout, version) = lock(&shared.apps)
        .get(&(app.clone(), env.clone()))
        .map_or((None, 0), |e| (e.status.clone(), e.version()));
    let live_replicas = live
        .as_ref()
        .and_then(|l| crate::reconcile::live_replicas(shared, &app, &env, l));
    let canary = rollout.as_ref().filter(|r| !r.finished).map(|r| r.revision);
    let urls = shared
        .proxy
        .listen_addrs()
        .iter()
        .map(|a| format!("http://{a}/"))
        .collect();
    let traffic = shared
        .proxy
        .stats_snapshot()
        .revisions
        .into_iter()
        .filter(|r| r.service == app)
        .map(|r| RevisionTraffic {
            revision: r.revision,
            requests: r.requests,
            errors: r.status_5xx,
            p95_us: r.latency_p95_us,
        })
        .collect();
    let warm = crate::warm::list(shared, &app, &env);
    Ok(Json(AppStatus {
        app,
        env,
        urls,
        stable: live.map(|r| r.number),
        canary,
        rollout,
        version,
        traffic,
        warm,
        live: live_replicas,
    }))
}

async fn revisions(
    State(api): State<Arc<Api>>,
    Path((app, env)): Path<(String, String)>,
) -> Result<Json<Vec<ferry_store::Revision>>, ApiError> {
    api.shared
        .store
        .revisions(&app, &env)
        .await
        .map(Json)
        .map_err(|e| ApiError::internal("cannot list revisions", e))
}

/// One revision in full: the revision, and every rollout to it with its timeline and its
/// analysis verdicts explained in the words `ferry status` uses.
async fn revision(
    State(api): State<Arc<Api>>,
    Path((app, env, number)): Path<(String, String, i64)>,
) -> Result<Json<RevisionDetail>, ApiError> {
    let store = &api.shared.store;
    let Some(revision) = store
        .revision(&app, &env, number)
        .await
        .map_err(|e| ApiError::internal("cannot read the revision", e))?
    else {
        let known = store
            .revisions(&app, &env)
            .await
            .map_err(|e| ApiError::internal("cannot list revisions", e))?;
        let mut numbers: Vec<i64> = known.iter().map(|r| r.number).collect();
        numbers.sort_unstable();
        let known = if numbers.is_empty() {
            format!("{app} ({env}) has no revisions yet")
        } else {
            let list: Vec<String> = numbers.iter().map(i64::to_string).collect();
            format!("known revisions: {}", list.join(", "))
        };
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{app} ({env}) has no revision {number}; {known} (see `ferry history`)"),
        ));
    };
    let mut rollouts = store
        .rollouts(&app, &env)
        .await
        .map_err(|e| ApiError::internal("cannot list rollouts", e))?;
    rollouts.retain(|r| r.to_revision == number);
    rollouts.reverse();
    let mut records = Vec::with_capacity(rollouts.len());
    for rollout in rollouts {
        let events = store
            .events(rollout.id)
            .await
            .map_err(|e| ApiError::internal("cannot read the rollout's timeline", e))?;
        let verdicts = store
            .verdicts(rollout.id)
            .await
            .map_err(|e| ApiError::internal("cannot read the analysis verdicts", e))?
            .into_iter()
            .map(|v| VerdictRecord {
                step: v.step,
                at: v.at,
                explanation: serde_json::from_value::<ferry_analysis::Verdict>(v.verdict.clone())
                    .map_or_else(
                        |e| format!("(a verdict this daemon cannot read: {e})"),
                        |verdict| verdict.explain(),
                    ),
                verdict: v.verdict,
            })
            .collect();
        records.push(RolloutRecord {
            rollout,
            events,
            verdicts,
        });
    }
    Ok(Json(RevisionDetail {
        revision,
        rollouts: records,
    }))
}

async fn action(
    State(api): State<Arc<Api>>,
    Path((app, env, action)): Path<(String, String, String)>,
    body: Option<Json<PromoteRequest>>,
) -> Result<Json<Ack>, ApiError> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let full = body.full;
    let event = match action.as_str() {
        "promote" => Event::Promote { full },
        "pause" => Event::Pause,
        "resume" => Event::Resume,
        "abort" => Event::Abort,
        "rollback" => Event::Rollback { to: None },
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("unknown action {other:?}"),
            ));
        }
    };
    let (tx, running) = lock(&api.shared.apps)
        .get(&(app.clone(), env.clone()))
        .map(|e| (e.events.clone(), e.status.as_ref().map(|s| (s.id, s.from))))
        .unwrap_or_default();
    let Some(tx) = tx else {
        if action == "rollback" {
            return rollback_finished(&api, &app, &env, body.to).await.map(Json);
        }
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("no rollout of {app}/{env} is in progress"),
        ));
    };
    if body.to.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "a rollout is in progress: `ferry rollback` without --to returns to its stable revision",
        ));
    }
    tx.send(event)
        .map_err(|_| ApiError::new(StatusCode::CONFLICT, "the rollout has just ended"))?;
    let mut ack = Ack::message(format!("{action} sent to the rollout of {app}/{env}"));
    ack.rollout = running.map(|(id, _)| id);
    if action == "rollback" {
        ack.revision = running.and_then(|(_, from)| from);
    }
    Ok(Json(ack))
}

/// Who a rollback's rollout is recorded as created by.
const ROLLBACK_BY: &str = "ferry rollback";

/// `ferry rollback [--to REV]` with no rollout running: a fast-track rollout back to an
/// earlier revision (default: the last one that was live before the live one).
async fn rollback_finished(
    api: &Arc<Api>,
    app: &str,
    env: &str,
    to: Option<i64>,
) -> Result<Ack, ApiError> {
    let store = &api.shared.store;
    let live = store
        .live_revision(app, env)
        .await
        .map_err(|e| ApiError::internal("cannot read the live revision", e))?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                format!("{app}/{env} has no live revision to roll back from"),
            )
        })?;
    let revisions = store
        .revisions(app, env)
        .await
        .map_err(|e| ApiError::internal("cannot list revisions", e))?;
    let target = match to {
        Some(n) => revisions
            .into_iter()
            .find(|r| r.number == n)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no revision {n} of {app}/{env}"),
                )
            })?,
        None => {
            // The revision the live one replaced (what its deploy rolled out over), if
            // still good; else the newest good revision before it. A revision that was
            // rolled back away from is not good, and neither is one a deploy replaced
            // after a rollback: repeated rollbacks walk back through the deploys.
            let replaced = store
                .rollouts(app, env)
                .await
                .map_err(|e| ApiError::internal("cannot list rollouts", e))?
                .into_iter()
                .find(|r| {
                    r.to_revision == live.number
                        && r.outcome == Some(ferry_store::RolloutOutcome::Succeeded)
                        && r.created_by != ROLLBACK_BY
                })
                .and_then(|r| r.from_revision);
            let good = |r: &ferry_store::Revision| {
                r.number != live.number && r.status == RevisionStatus::Superseded
            };
            let by_history =
                replaced.and_then(|n| revisions.iter().find(|r| r.number == n && good(r)));
            by_history
                .cloned()
                .or_else(|| {
                    revisions
                        .iter()
                        .find(|r| r.number < live.number && good(r))
                        .cloned()
                })
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::CONFLICT,
                        format!("no earlier good revision of {app}/{env} to roll back to"),
                    )
                })?
        }
    };
    if target.number == live.number {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("revision {} is already live", target.number),
        ));
    }
    let spec: Spec = serde_json::from_value(target.spec.clone())
        .map_err(|e| ApiError::internal("the stored spec no longer reads", e))?;
    let req = DeployRequest {
        app: app.to_owned(),
        env: env.to_owned(),
        image: target.image.clone(),
        spec: target.spec.clone(),
        git_sha: target.git_sha.clone(),
        created_by: Some(ROLLBACK_BY.to_owned()),
    };
    let key = (app.to_owned(), env.to_owned());
    let (tx, rx) = mpsc::unbounded_channel();
    let pools = {
        let mut apps = lock(&api.shared.apps);
        let entry = apps.entry(key.clone()).or_default();
        if entry.events.is_some() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("a rollout of {app}/{env} is in progress"),
            ));
        }
        entry.events = Some(tx.clone());
        entry.pools.clone()
    };
    let warm_before = lock(&api.shared.apps)
        .get(&key)
        .is_some_and(|e| e.warm.contains_key(&target.number.to_string()));
    match start_rollout(api, &req, spec, pools, tx, rx, Some(target.number)).await {
        Ok(accepted) => Ok(Ack {
            message: format!(
                "rolling back {app}/{env} to revision {} (rollout {}){}",
                accepted.revision,
                accepted.rollout,
                if warm_before {
                    ": its replicas are warm, switching traffic now"
                } else {
                    ": starting its replicas"
                }
            ),
            rollout: Some(accepted.rollout),
            revision: Some(accepted.revision),
            warm: Some(warm_before),
        }),
        Err(e) => {
            if let Some(entry) = lock(&api.shared.apps).get_mut(&key) {
                entry.events = None;
            }
            Err(e)
        }
    }
}
