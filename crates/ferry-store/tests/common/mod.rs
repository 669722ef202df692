//! Test harness: runs one test body against a fresh SQLite file or a fresh PostgreSQL
//! database, and cleans up after it, even when the body panics.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use ferry_store::Store;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use time::OffsetDateTime;

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// What a test body gets.
pub struct Ctx {
    /// An open store on a fresh database.
    pub store: Store,
    /// The location it was opened at (reopen it to test persistence).
    pub location: String,
    /// A private temporary directory (key files, the SQLite file).
    pub dir: PathBuf,
    /// The backend.
    pub kind: Kind,
}

const POSTGRES_ENV: &str = "FERRY_TEST_POSTGRES_URL";

/// The admin URL of the test PostgreSQL server. Fails (never skips) when it is not set.
pub fn postgres_admin_url() -> String {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{POSTGRES_ENV} is not set, so the PostgreSQL store tests cannot run: \
             run `cargo xtask test`, which starts PostgreSQL and sets it \
             (or start it yourself: see docs/store.md, \"Running the tests\")"
        ),
    }
}

/// `url` with its database name replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

fn unique_database_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "ferry_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000
    )
}

/// A fresh PostgreSQL database; returns its URL and name.
pub async fn create_postgres_database() -> (String, String) {
    let admin = postgres_admin_url();
    let name = unique_database_name();
    let mut conn = PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_ENV}: {e}"));
    sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .expect("create test database");
    conn.close().await.ok();
    (with_database(&admin, &name), name)
}

/// Drops a database made by [`create_postgres_database`].
pub async fn drop_postgres_database(name: &str) {
    let mut conn = PgConnection::connect(&postgres_admin_url())
        .await
        .expect("connect to drop test database");
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .expect("drop test database");
    conn.close().await.ok();
}

/// Runs `body` on a fresh store of `kind`, then removes the database.
pub async fn run<F, Fut>(kind: Kind, body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let tmp = tempfile::tempdir().expect("temp dir");
    let (location, pg_name) = match kind {
        Kind::Sqlite => (
            tmp.path()
                .join("state")
                .join("state.db")
                .display()
                .to_string(),
            None,
        ),
        Kind::Postgres => {
            let (url, name) = create_postgres_database().await;
            (url, Some(name))
        }
    };
    let opened = Store::open(&location).await;
    let result = match opened {
        Ok(store) => {
            let ctx = Ctx {
                store: store.clone(),
                location: location.clone(),
                dir: tmp.path().to_path_buf(),
                kind,
            };
            let result = tokio::spawn(body(ctx)).await;
            store.close().await;
            result.map_err(|e| e.into_panic())
        }
        Err(e) => Err(Box::new(format!("opening {kind:?} store failed: {e:?}"))
            as Box<dyn std::any::Any + Send>),
    };
    if let Some(name) = pg_name {
        drop_postgres_database(&name).await;
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// A clock the test moves by hand, in unix milliseconds.
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock at a fixed, whole-millisecond instant.
    pub fn new() -> Self {
        Self(Arc::new(AtomicI64::new(1_780_000_000_000)))
    }

    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(self.0.load(Ordering::SeqCst)) * 1_000_000,
        )
        .expect("valid time")
    }

    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Installs this clock into a store.
    pub fn install(&self, store: Store) -> Store {
        let me = self.clone();
        store.with_clock(move || me.now())
    }
}

/// Declares each test once per backend: `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($(
        $(#[doc = $doc:literal])*
        async fn $name:ident($ctx:ident) $body:block
    )*) => {$(
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports, reason = "not every test body uses every import")]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::run($crate::common::Kind::Sqlite, |$ctx| async move $body).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::run($crate::common::Kind::Postgres, |$ctx| async move $body).await
            }
        }
    )*};
}
