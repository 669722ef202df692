//! The audit log: who did what, when, to which app+env. Append-only.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::Store;
use crate::error::{Result, query};
use crate::row;

/// An action to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAuditEntry {
    /// Who did it (a user, a token name, `daemon`).
    pub actor: String,
    /// What was done, e.g. `deploy`, `rollback`, `secrets.set`, `lock.release`.
    pub action: String,
    /// The app, when the action concerns one.
    pub app: Option<String>,
    /// The environment, when the action concerns one.
    pub env: Option<String>,
    /// Details (never secret values: `secrets.set` records the name only).
    pub detail: Option<serde_json::Value>,
}

/// A recorded action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its position in the log, increasing in recording order.
    pub seq: i64,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who did it.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// The app, if any.
    pub app: Option<String>,
    /// The environment, if any.
    pub env: Option<String>,
    /// Details, if any.
    pub detail: Option<serde_json::Value>,
}

const COLUMNS: &str = "id, at_ms, actor, action, app, env, detail_json";

impl AuditEntry {
    fn from_row(row: &AnyRow) -> Result<Self> {
        let detail = match row::get::<Option<String>>(row, "detail_json")? {
            Some(_) => Some(row::json(row, "detail_json")?),
            None => None,
        };
        Ok(Self {
            seq: row::get(row, "id")?,
            at: row::time(row, "at_ms")?,
            actor: row::get(row, "actor")?,
            action: row::get(row, "action")?,
            app: row::get(row, "app")?,
            env: row::get(row, "env")?,
            detail,
        })
    }
}

impl Store {
    /// Appends an entry to the audit log.
    pub async fn audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry> {
        let sql = format!(
            "INSERT INTO audit_log (at_ms, actor, action, app, env, detail_json) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(self.now_ms())
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(entry.app.as_deref())
            .bind(entry.env.as_deref())
            .bind(entry.detail.as_ref().map(ToString::to_string))
            .fetch_one(&self.pool)
            .await
            .map_err(query("append audit entry"))?;
        AuditEntry::from_row(&row)
    }

    /// The latest `limit` audit entries, newest first; only those about `app` when given.
    pub async fn audit_log(&self, app: Option<&str>, limit: u32) -> Result<Vec<AuditEntry>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log WHERE ($1 IS NULL OR app = $1) \
             ORDER BY id DESC LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(app)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(query("read audit log"))?;
        rows.iter().map(AuditEntry::from_row).collect()
    }
}
