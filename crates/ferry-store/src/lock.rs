//! Deploy locks: at most one holder per app+env, with an expiry so a crashed holder's
//! lock frees itself.
//!
//! Acquiring is one upsert statement that only overwrites an expired lock or the
//! caller's own, so the database decides the single winner under any concurrency.
//! A holder renews (heartbeats) by acquiring again or calling [`Store::renew_lock`].

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::Store;
use crate::error::{Error, Result, query};
use crate::row;

/// A lock on an app+env.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// The app name.
    pub app: String,
    /// The environment.
    pub env: String,
    /// Who holds it (e.g. `deploy:alice@host:pid`).
    pub holder: String,
    /// Why it is held.
    pub reason: String,
    /// When the holder first took it.
    #[serde(with = "time::serde::rfc3339")]
    pub acquired_at: OffsetDateTime,
    /// When it lapses unless renewed.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Whether it had lapsed when it was read (anyone may then take it over).
    pub expired: bool,
}

impl Lock {
    fn from_row(row: &AnyRow, now_ms: i64) -> Result<Self> {
        let expires_ms: i64 = row::get(row, "expires_at_ms")?;
        Ok(Self {
            app: row::get(row, "app")?,
            env: row::get(row, "env")?,
            holder: row::get(row, "holder")?,
            reason: row::get(row, "reason")?,
            acquired_at: row::time(row, "acquired_at_ms")?,
            expires_at: row::from_ms("locks.expires_at_ms", expires_ms)?,
            expired: expires_ms <= now_ms,
        })
    }
}

/// The result of trying to take a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "lock", rename_all = "kebab-case")]
pub enum LockOutcome {
    /// The caller holds the lock now (newly, or renewed if it already held it).
    Acquired(Lock),
    /// Someone else holds it and it has not expired.
    Held(Lock),
}

impl LockOutcome {
    /// Whether the caller got the lock.
    pub fn acquired(&self) -> bool {
        matches!(self, Self::Acquired(_))
    }

    /// The lock as it stands after the attempt.
    pub fn lock(&self) -> &Lock {
        match self {
            Self::Acquired(lock) | Self::Held(lock) => lock,
        }
    }
}

const COLUMNS: &str = "app, env, holder, reason, acquired_at_ms, expires_at_ms";

fn ttl_ms(ttl: Duration) -> Result<i64> {
    i64::try_from(ttl.as_millis()).map_err(|_| Error::OutOfRange { field: "lock ttl" })
}

impl Store {
    /// Takes the lock on `app`/`env` for `ttl`, unless another holder has it unexpired.
    ///
    /// Exactly one of any number of concurrent callers with different holders wins. A
    /// caller that already holds the lock renews it (its `acquired_at` is kept).
    pub async fn acquire_lock(
        &self,
        app: &str,
        env: &str,
        holder: &str,
        reason: &str,
        ttl: Duration,
    ) -> Result<LockOutcome> {
        let ttl = ttl_ms(ttl)?;
        // A lock released between our failed upsert and the read of the winner is
        // simply tried again; two rounds are plenty in practice, a few more are cheap.
        for _ in 0..5 {
            let now = self.now_ms();
            let sql = format!(
                "INSERT INTO locks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (app, env) DO UPDATE SET \
                   holder = excluded.holder, \
                   reason = excluded.reason, \
                   acquired_at_ms = CASE WHEN locks.holder = excluded.holder \
                       AND locks.expires_at_ms > $5 THEN locks.acquired_at_ms \
                       ELSE excluded.acquired_at_ms END, \
                   expires_at_ms = excluded.expires_at_ms \
                 WHERE locks.expires_at_ms <= $5 OR locks.holder = excluded.holder \
                 RETURNING {COLUMNS}"
            );
            let won = sqlx::query(&sql)
                .bind(app)
                .bind(env)
                .bind(holder)
                .bind(reason)
                .bind(now)
                .bind(now.saturating_add(ttl))
                .fetch_optional(&self.pool)
                .await
                .map_err(query("acquire lock"))?;
            if let Some(row) = won {
                return Ok(LockOutcome::Acquired(Lock::from_row(&row, now)?));
            }
            if let Some(current) = self.lock_status(app, env).await? {
                return Ok(LockOutcome::Held(current));
            }
        }
        Err(Error::LockChurn {
            app: app.to_owned(),
            env: env.to_owned(),
        })
    }

    /// Extends the lock by `ttl` from now if `holder` still holds it (even if it lapsed
    /// and nobody took it over). `None` means the holder lost the lock.
    pub async fn renew_lock(
        &self,
        app: &str,
        env: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lock>> {
        let now = self.now_ms();
        let sql = format!(
            "UPDATE locks SET expires_at_ms = $1 WHERE app = $2 AND env = $3 AND holder = $4 \
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(now.saturating_add(ttl_ms(ttl)?))
            .bind(app)
            .bind(env)
            .bind(holder)
            .fetch_optional(&self.pool)
            .await
            .map_err(query("renew lock"))?;
        row.as_ref().map(|r| Lock::from_row(r, now)).transpose()
    }

    /// Releases the lock if `holder` holds it; returns whether it did.
    pub async fn release_lock(&self, app: &str, env: &str, holder: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM locks WHERE app = $1 AND env = $2 AND holder = $3")
            .bind(app)
            .bind(env)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(query("release lock"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Releases the lock whoever holds it (`ferry lock release`); returns what was removed.
    pub async fn force_release_lock(&self, app: &str, env: &str) -> Result<Option<Lock>> {
        let now = self.now_ms();
        let sql = format!("DELETE FROM locks WHERE app = $1 AND env = $2 RETURNING {COLUMNS}");
        let row = sqlx::query(&sql)
            .bind(app)
            .bind(env)
            .fetch_optional(&self.pool)
            .await
            .map_err(query("force release lock"))?;
        row.as_ref().map(|r| Lock::from_row(r, now)).transpose()
    }

    /// The lock on `app`/`env`, if any (an expired one is returned with `expired` set).
    pub async fn lock_status(&self, app: &str, env: &str) -> Result<Option<Lock>> {
        let now = self.now_ms();
        let sql = format!("SELECT {COLUMNS} FROM locks WHERE app = $1 AND env = $2");
        let row = sqlx::query(&sql)
            .bind(app)
            .bind(env)
            .fetch_optional(&self.pool)
            .await
            .map_err(query("read lock"))?;
        row.as_ref().map(|r| Lock::from_row(r, now)).transpose()
    }
}
