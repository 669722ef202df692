//! Revisions: what was deployed to an app+env, numbered 1, 2, 3... per app+env.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::Store;
use crate::error::{Error, Result, query};
use crate::row;

/// Where a revision stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevisionStatus {
    /// Recorded; its rollout has not finished.
    Pending,
    /// Serving all traffic.
    Live,
    /// Was live; a later revision replaced it.
    Superseded,
    /// Its rollout failed or was aborted; it never became live.
    Failed,
    /// Was live, then traffic was rolled back away from it.
    RolledBack,
}

impl RevisionStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Live => "live",
            Self::Superseded => "superseded",
            Self::Failed => "failed",
            Self::RolledBack => "rolled-back",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "pending" => Self::Pending,
            "live" => Self::Live,
            "superseded" => Self::Superseded,
            "failed" => Self::Failed,
            "rolled-back" => Self::RolledBack,
            other => {
                return Err(Error::Corrupt {
                    column: "revisions.status",
                    detail: format!("unknown status `{other}`"),
                });
            }
        })
    }
}

impl std::fmt::Display for RevisionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A revision to record; the store gives it the next number for its app+env.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRevision {
    /// The app name.
    pub app: String,
    /// The environment.
    pub env: String,
    /// The image reference deployed.
    pub image: String,
    /// The engine's image id, when known.
    pub image_id: Option<String>,
    /// The registry digest, when the image was pushed or pulled.
    pub image_digest: Option<String>,
    /// The git commit, when known.
    pub git_sha: Option<String>,
    /// The merged spec deployed (secret values never appear in it: names only).
    pub spec: serde_json::Value,
    /// A hash of the spec, to tell config-only changes apart.
    pub spec_hash: String,
    /// Who asked for it.
    pub created_by: String,
}

/// A recorded revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    /// The app name.
    pub app: String,
    /// The environment.
    pub env: String,
    /// Its number: 1 for the first revision of this app+env, then increasing by one.
    pub number: i64,
    /// The image reference.
    pub image: String,
    /// The engine's image id.
    pub image_id: Option<String>,
    /// The registry digest.
    pub image_digest: Option<String>,
    /// The git commit.
    pub git_sha: Option<String>,
    /// The merged spec snapshot.
    pub spec: serde_json::Value,
    /// The spec's hash.
    pub spec_hash: String,
    /// Who asked for it.
    pub created_by: String,
    /// Where it stands.
    pub status: RevisionStatus,
    /// Why it has that status (e.g. why it failed), when there is a reason.
    pub reason: Option<String>,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When its status last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "app, env, number, image, image_id, image_digest, git_sha, spec_json, \
                       spec_hash, created_by, status, reason, created_at_ms, updated_at_ms";

impl Revision {
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Self {
            app: row::get(row, "app")?,
            env: row::get(row, "env")?,
            number: row::get(row, "number")?,
            image: row::get(row, "image")?,
            image_id: row::get(row, "image_id")?,
            image_digest: row::get(row, "image_digest")?,
            git_sha: row::get(row, "git_sha")?,
            spec: row::json(row, "spec_json")?,
            spec_hash: row::get(row, "spec_hash")?,
            created_by: row::get(row, "created_by")?,
            status: RevisionStatus::parse(&row::get::<String>(row, "status")?)?,
            reason: row::get(row, "reason")?,
            created_at: row::time(row, "created_at_ms")?,
            updated_at: row::time(row, "updated_at_ms")?,
        })
    }
}

impl Store {
    /// Records a new revision of `app`/`env` with the next number (1 for the first) and
    /// status [`RevisionStatus::Pending`].
    ///
    /// Numbers are allocated atomically: concurrent callers get distinct, consecutive
    /// numbers, and a number is never reused.
    pub async fn next_revision(&self, new: &NewRevision) -> Result<Revision> {
        let now = self.now_ms();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query("begin revision transaction"))?;
        // Writing first makes SQLite take its write lock up front (waiting on the busy
        // timeout) and makes PostgreSQL lock the counter row: callers serialise here.
        let number: i64 = sqlx::query_scalar(
            "INSERT INTO revision_counters (app, env, last_number) VALUES ($1, $2, 1) \
             ON CONFLICT (app, env) DO UPDATE SET last_number = revision_counters.last_number + 1 \
             RETURNING last_number",
        )
        .bind(&new.app)
        .bind(&new.env)
        .fetch_one(&mut *tx)
        .await
        .map_err(query("allocate revision number"))?;
        let sql = format!(
            "INSERT INTO revisions (app, env, number, image, image_id, image_digest, git_sha, \
             spec_json, spec_hash, created_by, status, reason, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, $12) \
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&new.app)
            .bind(&new.env)
            .bind(number)
            .bind(&new.image)
            .bind(new.image_id.as_deref())
            .bind(new.image_digest.as_deref())
            .bind(new.git_sha.as_deref())
            .bind(new.spec.to_string())
            .bind(&new.spec_hash)
            .bind(&new.created_by)
            .bind(RevisionStatus::Pending.as_str())
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(query("record revision"))?;
        let revision = Revision::from_row(&row)?;
        tx.commit()
            .await
            .map_err(query("commit revision transaction"))?;
        Ok(revision)
    }

    /// Sets a revision's status and the reason for it.
    ///
    /// Setting [`RevisionStatus::Live`] marks the revision that was live until now
    /// [`RevisionStatus::Superseded`] in the same transaction: an app+env has at most one
    /// live revision at any moment.
    pub async fn set_revision_status(
        &self,
        app: &str,
        env: &str,
        number: i64,
        status: RevisionStatus,
        reason: Option<&str>,
    ) -> Result<Revision> {
        let now = self.now_ms();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(query("begin revision status transaction"))?;
        if status == RevisionStatus::Live {
            sqlx::query(
                "UPDATE revisions SET status = $1, updated_at_ms = $2 \
                 WHERE app = $3 AND env = $4 AND status = $5 AND number <> $6",
            )
            .bind(RevisionStatus::Superseded.as_str())
            .bind(now)
            .bind(app)
            .bind(env)
            .bind(RevisionStatus::Live.as_str())
            .bind(number)
            .execute(&mut *tx)
            .await
            .map_err(query("supersede live revision"))?;
        }
        let sql = format!(
            "UPDATE revisions SET status = $1, reason = $2, updated_at_ms = $3 \
             WHERE app = $4 AND env = $5 AND number = $6 RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(status.as_str())
            .bind(reason)
            .bind(now)
            .bind(app)
            .bind(env)
            .bind(number)
            .fetch_optional(&mut *tx)
            .await
            .map_err(query("update revision status"))?;
        let Some(row) = row else {
            // Undo the supersede above: the live revision stays live.
            tx.rollback()
                .await
                .map_err(query("roll back revision status"))?;
            return Err(Error::RevisionNotFound {
                app: app.to_owned(),
                env: env.to_owned(),
                number,
            });
        };
        let revision = Revision::from_row(&row)?;
        tx.commit().await.map_err(query("commit revision status"))?;
        Ok(revision)
    }

    /// The revision of `app`/`env` serving traffic, if any.
    pub async fn live_revision(&self, app: &str, env: &str) -> Result<Option<Revision>> {
        let sql =
            format!("SELECT {COLUMNS} FROM revisions WHERE app = $1 AND env = $2 AND status = $3");
        let row = sqlx::query(&sql)
            .bind(app)
            .bind(env)
            .bind(RevisionStatus::Live.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(query("read live revision"))?;
        row.as_ref().map(Revision::from_row).transpose()
    }

    /// One revision of `app`/`env`, if it exists.
    pub async fn revision(&self, app: &str, env: &str, number: i64) -> Result<Option<Revision>> {
        let sql =
            format!("SELECT {COLUMNS} FROM revisions WHERE app = $1 AND env = $2 AND number = $3");
        let row = sqlx::query(&sql)
            .bind(app)
            .bind(env)
            .bind(number)
            .fetch_optional(&self.pool)
            .await
            .map_err(query("read revision"))?;
        row.as_ref().map(Revision::from_row).transpose()
    }

    /// Every revision of `app` in every environment, newest (highest number) first
    /// within each environment.
    pub async fn app_revisions(&self, app: &str) -> Result<Vec<Revision>> {
        let sql =
            format!("SELECT {COLUMNS} FROM revisions WHERE app = $1 ORDER BY env, number DESC");
        let rows = sqlx::query(&sql)
            .bind(app)
            .fetch_all(&self.pool)
            .await
            .map_err(query("list revisions of an app"))?;
        rows.iter().map(Revision::from_row).collect()
    }

    /// Every revision of `app`/`env`, newest (highest number) first.
    pub async fn revisions(&self, app: &str, env: &str) -> Result<Vec<Revision>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM revisions WHERE app = $1 AND env = $2 ORDER BY number DESC"
        );
        let rows = sqlx::query(&sql)
            .bind(app)
            .bind(env)
            .fetch_all(&self.pool)
            .await
            .map_err(query("list revisions"))?;
        rows.iter().map(Revision::from_row).collect()
    }
}
