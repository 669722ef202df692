//! Rollouts with their persisted state, their event timeline and analysis verdicts.
//!
//! The controller persists a rollout's state before acting on it, so after a crash
//! [`Store::unfinished_rollouts`] tells it what to resume. Events and verdicts are
//! append-only and listed in the order they were appended.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::Store;
use crate::error::{Error, Result, query};
use crate::row;

/// A rollout's id in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RolloutId(i64);

impl RolloutId {
    /// The id as a number (for APIs and URLs).
    pub fn get(self) -> i64 {
        self.0
    }

    /// An id from a number given back by a client; the store checks it exists on use.
    pub fn new(id: i64) -> Self {
        Self(id)
    }
}

impl std::fmt::Display for RolloutId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// How a rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutOutcome {
    /// The new revision took all traffic.
    Succeeded,
    /// It failed (unhealthy, crashed, failed analysis) and traffic went back to stable.
    Failed,
    /// A user aborted it.
    Aborted,
    /// A rollback to an earlier revision replaced it.
    RolledBack,
}

impl RolloutOutcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
            Self::RolledBack => "rolled-back",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "aborted" => Self::Aborted,
            "rolled-back" => Self::RolledBack,
            other => {
                return Err(Error::Corrupt {
                    column: "rollouts.outcome",
                    detail: format!("unknown outcome `{other}`"),
                });
            }
        })
    }
}

impl std::fmt::Display for RolloutOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rollout to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRollout {
    /// The app name.
    pub app: String,
    /// The environment.
    pub env: String,
    /// The revision serving traffic before, if any.
    pub from_revision: Option<i64>,
    /// The revision being rolled out.
    pub to_revision: i64,
    /// The strategy name (`rolling`, `blue-green`, `canary`).
    pub strategy: String,
    /// The rollout engine's initial state, serialised.
    pub state: serde_json::Value,
    /// The initial phase name.
    pub phase: String,
    /// Who started it.
    pub created_by: String,
}

/// A recorded rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// Its id.
    pub id: RolloutId,
    /// The app name.
    pub app: String,
    /// The environment.
    pub env: String,
    /// The revision serving traffic before, if any.
    pub from_revision: Option<i64>,
    /// The revision being rolled out.
    pub to_revision: i64,
    /// The strategy name.
    pub strategy: String,
    /// The rollout engine's state as last persisted.
    pub state: serde_json::Value,
    /// The phase as last persisted.
    pub phase: String,
    /// Who started it.
    pub created_by: String,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When its state last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When it finished; `None` while it runs.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// How it ended; `None` while it runs.
    pub outcome: Option<RolloutOutcome>,
    /// Why it ended that way, when there is a reason.
    pub reason: Option<String>,
}

const INSERT_EVENT: &str = "INSERT INTO rollout_events (rollout_id, at_ms, kind, message_json) \
                            VALUES ($1, $2, $3, $4) \
                            RETURNING id, rollout_id, at_ms, kind, message_json";

const COLUMNS: &str = "id, app, env, from_revision, to_revision, strategy, state_json, phase, \
                       created_by, started_at_ms, updated_at_ms, finished_at_ms, outcome, reason";

impl Rollout {
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Self {
            id: RolloutId(row::get(row, "id")?),
            app: row::get(row, "app")?,
            env: row::get(row, "env")?,
            from_revision: row::get(row, "from_revision")?,
            to_revision: row::get(row, "to_revision")?,
            strategy: row::get(row, "strategy")?,
            state: row::json(row, "state_json")?,
            phase: row::get(row, "phase")?,
            created_by: row::get(row, "created_by")?,
            started_at: row::time(row, "started_at_ms")?,
            updated_at: row::time(row, "updated_at_ms")?,
            finished_at: row::opt_time(row, "finished_at_ms")?,
            outcome: row::get::<Option<String>>(row, "outcome")?
                .as_deref()
                .map(RolloutOutcome::parse)
                .transpose()?,
            reason: row::get(row, "reason")?,
        })
    }
}

/// An event to append to a rollout's timeline with [`Store::advance_rollout`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Its kind, e.g. `step-started`.
    pub kind: String,
    /// Its details.
    pub message: serde_json::Value,
}

/// One entry of a rollout's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its position in the store, increasing in append order (use it to follow a timeline).
    pub seq: i64,
    /// The rollout it belongs to.
    pub rollout: RolloutId,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Its kind, e.g. `step-started`, `weight-set`, `health-failed`.
    pub kind: String,
    /// Its details.
    pub message: serde_json::Value,
}

impl Event {
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Self {
            seq: row::get(row, "id")?,
            rollout: RolloutId(row::get(row, "rollout_id")?),
            at: row::time(row, "at_ms")?,
            kind: row::get(row, "kind")?,
            message: row::json(row, "message_json")?,
        })
    }
}

/// The result of one analysis run during a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Its position in the store, increasing in recording order.
    pub seq: i64,
    /// The rollout it belongs to.
    pub rollout: RolloutId,
    /// The index of the rollout step that ran the analysis.
    pub step: i64,
    /// The verdict with its measurements.
    pub verdict: serde_json::Value,
    /// When it was reached.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl Verdict {
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Self {
            seq: row::get(row, "id")?,
            rollout: RolloutId(row::get(row, "rollout_id")?),
            step: row::get(row, "step")?,
            verdict: row::json(row, "verdict_json")?,
            at: row::time(row, "at_ms")?,
        })
    }
}

impl Store {
    /// Records the start of a rollout.
    pub async fn create_rollout(&self, new: &NewRollout) -> Result<Rollout> {
        let sql = format!(
            "INSERT INTO rollouts (app, env, from_revision, to_revision, strategy, state_json, \
             phase, created_by, started_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&new.app)
            .bind(&new.env)
            .bind(new.from_revision)
            .bind(new.to_revision)
            .bind(&new.strategy)
            .bind(new.state.to_string())
            .bind(&new.phase)
            .bind(&new.created_by)
            .bind(self.now_ms())
            .fetch_one(&self.pool)
            .await
            .map_err(query("create rollout"))?;
        Rollout::from_row(&row)
    }

    /// Persists a running rollout's new state and phase.
    ///
    /// Fails with [`Error::RolloutFinished`] once the rollout has finished, so a stale
    /// controller cannot resurrect it.
    pub async fn update_rollout_state(
        &self,
        id: RolloutId,
        state: &serde_json::Value,
        phase: &str,
    ) -> Result<Rollout> {
        Ok(self.advance_rollout(id, state, phase, &[]).await?.0)
    }

    /// Persists a running rollout's new state and phase together with the events that
    /// describe the change, in one transaction: after a crash the timeline and the state
    /// agree.
    pub async fn advance_rollout(
        &self,
        id: RolloutId,
        state: &serde_json::Value,
        phase: &str,
        events: &[NewEvent],
    ) -> Result<(Rollout, Vec<Event>)> {
        let now = self.now_ms();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query("begin rollout transaction"))?;
        let sql = format!(
            "UPDATE rollouts SET state_json = $1, phase = $2, updated_at_ms = $3 \
             WHERE id = $4 AND finished_at_ms IS NULL RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(state.to_string())
            .bind(phase)
            .bind(now)
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(query("update rollout state"))?;
        let Some(row) = row else {
            tx.rollback()
                .await
                .map_err(query("roll back rollout transaction"))?;
            return Err(self.not_running(id).await);
        };
        let rollout = Rollout::from_row(&row)?;
        let mut appended = Vec::with_capacity(events.len());
        for event in events {
            let row = sqlx::query(INSERT_EVENT)
                .bind(id.0)
                .bind(now)
                .bind(&event.kind)
                .bind(event.message.to_string())
                .fetch_one(&mut *tx)
                .await
                .map_err(query("append rollout event"))?;
            appended.push(Event::from_row(&row)?);
        }
        tx.commit()
            .await
            .map_err(query("commit rollout transaction"))?;
        Ok((rollout, appended))
    }

    /// Marks a running rollout finished with its outcome, final state and phase.
    pub async fn finish_rollout(
        &self,
        id: RolloutId,
        outcome: RolloutOutcome,
        reason: Option<&str>,
        state: &serde_json::Value,
        phase: &str,
    ) -> Result<Rollout> {
        let sql = format!(
            "UPDATE rollouts SET outcome = $1, reason = $2, state_json = $3, phase = $4, \
             updated_at_ms = $5, finished_at_ms = $5 \
             WHERE id = $6 AND finished_at_ms IS NULL RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(outcome.as_str())
            .bind(reason)
            .bind(state.to_string())
            .bind(phase)
            .bind(self.now_ms())
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(query("finish rollout"))?;
        match row {
            Some(row) => Rollout::from_row(&row),
            None => Err(self.not_running(id).await),
        }
    }

    /// Why an update matched no running rollout.
    async fn not_running(&self, id: RolloutId) -> Error {
        match self.rollout(id).await {
            Ok(Some(_)) => Error::RolloutFinished { id: id.0 },
            Ok(None) => Error::RolloutNotFound { id: id.0 },
            Err(e) => e,
        }
    }

    /// One rollout, if it exists.
    pub async fn rollout(&self, id: RolloutId) -> Result<Option<Rollout>> {
        let sql = format!("SELECT {COLUMNS} FROM rollouts WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(query("read rollout"))?;
        row.as_ref().map(Rollout::from_row).transpose()
    }

    /// The rollouts of `app`/`env`, newest first.
    pub async fn rollouts(&self, app: &str, env: &str) -> Result<Vec<Rollout>> {
        let sql =
            format!("SELECT {COLUMNS} FROM rollouts WHERE app = $1 AND env = $2 ORDER BY id DESC");
        let rows = sqlx::query(&sql)
            .bind(app)
            .bind(env)
            .fetch_all(&self.pool)
            .await
            .map_err(query("list rollouts"))?;
        rows.iter().map(Rollout::from_row).collect()
    }

    /// Every rollout that has not finished, oldest first: what a restarted daemon resumes.
    pub async fn unfinished_rollouts(&self) -> Result<Vec<Rollout>> {
        let sql =
            format!("SELECT {COLUMNS} FROM rollouts WHERE finished_at_ms IS NULL ORDER BY id");
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(query("list unfinished rollouts"))?;
        rows.iter().map(Rollout::from_row).collect()
    }

    /// Appends an event to a rollout's timeline.
    pub async fn append_event(
        &self,
        rollout: RolloutId,
        kind: &str,
        message: &serde_json::Value,
    ) -> Result<Event> {
        let row = sqlx::query(INSERT_EVENT)
            .bind(rollout.0)
            .bind(self.now_ms())
            .bind(kind)
            .bind(message.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(|source| match &source {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                    Error::RolloutNotFound { id: rollout.0 }
                }
                _ => Error::Query {
                    action: "append rollout event",
                    source,
                },
            })?;
        Event::from_row(&row)
    }

    /// A rollout's timeline in append order.
    pub async fn events(&self, rollout: RolloutId) -> Result<Vec<Event>> {
        self.events_after(rollout, 0).await
    }

    /// The events of a rollout appended after the one with `seq` (0 for all), in order:
    /// poll with the last seen `seq` to follow a timeline.
    pub async fn events_after(&self, rollout: RolloutId, seq: i64) -> Result<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT id, rollout_id, at_ms, kind, message_json FROM rollout_events \
             WHERE rollout_id = $1 AND id > $2 ORDER BY id",
        )
        .bind(rollout.0)
        .bind(seq)
        .fetch_all(&self.pool)
        .await
        .map_err(query("list rollout events"))?;
        rows.iter().map(Event::from_row).collect()
    }

    /// Records the verdict of the analysis run by step `step` of a rollout.
    pub async fn record_verdict(
        &self,
        rollout: RolloutId,
        step: i64,
        verdict: &serde_json::Value,
    ) -> Result<Verdict> {
        let row = sqlx::query(
            "INSERT INTO analysis_verdicts (rollout_id, step, verdict_json, at_ms) \
             VALUES ($1, $2, $3, $4) RETURNING id, rollout_id, step, verdict_json, at_ms",
        )
        .bind(rollout.0)
        .bind(step)
        .bind(verdict.to_string())
        .bind(self.now_ms())
        .fetch_one(&self.pool)
        .await
        .map_err(|source| match &source {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                Error::RolloutNotFound { id: rollout.0 }
            }
            _ => Error::Query {
                action: "record analysis verdict",
                source,
            },
        })?;
        Verdict::from_row(&row)
    }

    /// A rollout's analysis verdicts in recording order.
    pub async fn verdicts(&self, rollout: RolloutId) -> Result<Vec<Verdict>> {
        let rows = sqlx::query(
            "SELECT id, rollout_id, step, verdict_json, at_ms FROM analysis_verdicts \
             WHERE rollout_id = $1 ORDER BY id",
        )
        .bind(rollout.0)
        .fetch_all(&self.pool)
        .await
        .map_err(query("list analysis verdicts"))?;
        rows.iter().map(Verdict::from_row).collect()
    }
}
