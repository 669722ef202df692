//! ferry's state store: builds, revisions, rollouts and their events, analysis verdicts,
//! deploy locks, the audit log and encrypted secrets, on SQLite or PostgreSQL.
//!
//! This is the only crate that knows SQL. Both backends run the same queries through
//! sqlx's `Any` driver: every statement uses `$N` placeholders (which SQLite accepts too),
//! times are stored as unix milliseconds and JSON documents as text, so nothing depends on
//! a dialect except the migrations, which are embedded once per backend.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferry_store::Error> {
//! let store = ferry_store::Store::open(".ferry/state.db").await?;
//! let builds = store.builds("hello", 10).await?;
//! # let _ = builds; Ok(()) }
//! ```

mod audit;
mod build;
mod error;
mod location;
mod lock;
mod revision;
mod rollout;
mod row;
mod secret;

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Connection};
use time::OffsetDateTime;

pub use audit::{AuditEntry, NewAuditEntry};
pub use build::{BuildRecord, NewBuild};
pub use error::{Error, Result};
pub use location::Backend;
pub use lock::{Lock, LockOutcome};
pub use revision::{NewRevision, Revision, RevisionStatus};
pub use rollout::{Event, NewEvent, NewRollout, Rollout, RolloutId, RolloutOutcome, Verdict};
pub use secret::{SecretEntry, SecretValue, Secrets};

use location::Location;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The source of "now" for the timestamps the store writes.
type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// A handle to the state store. Cheap to clone; clones share one connection pool.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    display: String,
    clock: Clock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("location", &self.display)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `location` and brings its schema up to date.
    ///
    /// `location` is a file path (SQLite; the file and its parent directory are created),
    /// a `sqlite:` URL, or a `postgres://` / `postgresql://` URL. Opening twice, or from
    /// two processes, is safe: migrations already applied are skipped.
    pub async fn open(location: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let mut location = Location::parse(location)?;
        location.absolutize().map_err(|source| Error::CreateDir {
            path: ".".into(),
            source,
        })?;
        if let Some(parent) = location
            .sqlite_file
            .as_deref()
            .and_then(|f| f.parent())
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|source| Error::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let connect_error = |source| Error::Connect {
            location: location.display.clone(),
            source,
        };
        // Set up on one direct connection first: it fails at once with the real cause
        // (refused, bad password) where a pool would retry until its acquire timeout.
        let mut conn = AnyConnection::connect(&location.url)
            .await
            .map_err(connect_error)?;
        let migrator = match location.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        // SQLite has no migration lock, and switching to WAL needs a moment of exclusive
        // access that the busy timeout does not wait for: processes opening one fresh file
        // at the same moment can see "database is locked", or lose the race to record a
        // migration. Such a loser waits a little and tries again; a rerun skips what the
        // winner applied. Any other failure is reported at once.
        let mut attempt: u64 = 0;
        loop {
            match prepare(&mut conn, location.backend, migrator).await {
                Ok(()) => break,
                Err(e) if location.backend == Backend::Sqlite && attempt < 100 && e.is_race() => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "retrying state store setup");
                    tokio::time::sleep(Duration::from_millis(5 + attempt.min(20) * 5)).await;
                }
                Err(e) => {
                    return Err(match e {
                        SetupError::Wal(source) => connect_error(source),
                        SetupError::Migrate(sqlx::migrate::MigrateError::VersionMissing(
                            version,
                        )) => Error::SchemaTooNew { version },
                        SetupError::Migrate(source) => Error::Migrate(source),
                    });
                }
            }
        }
        // Closing is best effort: the schema is committed either way.
        let _ = conn.close().await;
        let pool = AnyPoolOptions::new()
            .max_connections(match location.backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy(&location.url)
            .map_err(connect_error)?;
        Ok(Self {
            pool,
            backend: location.backend,
            display: location.display,
            clock: Arc::new(OffsetDateTime::now_utc),
        })
    }

    /// Replaces the clock used for the timestamps the store writes (tests inject one).
    #[must_use]
    pub fn with_clock(
        mut self,
        clock: impl Fn() -> OffsetDateTime + Send + Sync + 'static,
    ) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The location the store was opened at, with any password redacted.
    pub fn location(&self) -> &str {
        &self.display
    }

    /// Writes a consistent copy of a SQLite store to `dest` (a new file), safe while
    /// other connections read and write. PostgreSQL stores are backed up with `pg_dump`
    /// instead, so this fails with [`Error::BackupUnsupported`] there.
    ///
    /// The copy holds secrets encrypted; keep the key file elsewhere.
    pub async fn backup(&self, dest: &std::path::Path) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Err(Error::BackupUnsupported {
                backend: self.backend,
            });
        }
        let Some(dest_text) = dest.to_str() else {
            return Err(Error::UnsupportedLocation {
                location: dest.display().to_string(),
            });
        };
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| Error::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        // VACUUM INTO writes a compacted snapshot of one read transaction.
        sqlx::query("VACUUM INTO $1")
            .bind(dest_text)
            .execute(&self.pool)
            .await
            .map_err(error::query("back up state store"))?;
        Ok(())
    }

    /// Checks that the database answers (for the daemon's health endpoint).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(error::query("reach state store"))?;
        Ok(())
    }

    /// Closes every connection; pending operations finish first.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    fn now_ms(&self) -> i64 {
        row::to_ms(self.now())
    }
}

/// Why setting up a fresh connection failed.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error("failed to enable WAL mode")]
    Wal(#[source] sqlx::Error),
    #[error("failed to migrate the schema")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl SetupError {
    /// Whether the failure comes from another process setting up the same file.
    fn is_race(&self) -> bool {
        let source = match self {
            SetupError::Wal(e) => e,
            SetupError::Migrate(
                sqlx::migrate::MigrateError::Execute(e)
                | sqlx::migrate::MigrateError::ExecuteMigration(e, _),
            ) => e,
            SetupError::Migrate(_) => return false,
        };
        match source {
            sqlx::Error::Database(db) => {
                // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with any extended code.
                let busy = db
                    .code()
                    .and_then(|c| c.parse::<i32>().ok())
                    .is_some_and(|c| matches!(c & 0xff, 5 | 6));
                busy || db.is_unique_violation()
            }
            _ => false,
        }
    }
}

/// Switches a SQLite file to WAL and brings the schema up to date.
async fn prepare(
    conn: &mut AnyConnection,
    backend: Backend,
    migrator: &Migrator,
) -> Result<(), SetupError> {
    if backend == Backend::Sqlite {
        // WAL lets readers (the CLI) run while the daemon writes. The mode is a property
        // of the file, so setting it once covers every later connection.
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&mut *conn)
            .await
            .map_err(SetupError::Wal)?;
    }
    migrator.run_direct(conn).await.map_err(SetupError::Migrate)
}
