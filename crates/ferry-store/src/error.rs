//! The store's error type: every way a store operation can fail.

use std::path::PathBuf;

/// An error from the state store.
///
/// Messages never contain secret values or database passwords.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The location is neither a file path, a `sqlite:` URL nor a `postgres://` URL.
    #[error(
        "unsupported state location `{location}`: expected a file path, a sqlite: URL or a postgres:// URL"
    )]
    UnsupportedLocation {
        /// The location as given (password redacted).
        location: String,
    },
    /// The directory that holds the SQLite file could not be created.
    #[error("failed to create state directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Connecting to the database failed.
    #[error("failed to open state store at {location}")]
    Connect {
        /// The location (password redacted).
        location: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The store was last migrated by a newer ferry, whose schema this one does not know.
    #[error(
        "the state store has schema version {version}, newer than this ferry knows: upgrade ferry"
    )]
    SchemaTooNew {
        /// The unknown schema version found in the store.
        version: i64,
    },
    /// Bringing the schema up to date failed.
    #[error("failed to migrate the state store schema")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("failed to {action}")]
    Query {
        /// What the store was doing, e.g. "record build".
        action: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A stored value could not be understood (written by a newer ferry, or edited by hand).
    #[error("invalid value in state store column {column}: {detail}")]
    Corrupt {
        /// The column.
        column: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// A value does not fit the store (e.g. a size beyond i64).
    #[error("value out of range for {field}")]
    OutOfRange {
        /// The field.
        field: &'static str,
    },
    /// No rollout has this id.
    #[error("rollout {id} not found")]
    RolloutNotFound {
        /// The rollout id.
        id: i64,
    },
    /// The rollout has already finished and can no longer change.
    #[error("rollout {id} has already finished")]
    RolloutFinished {
        /// The rollout id.
        id: i64,
    },
    /// No revision has this number.
    #[error("revision {number} of {app}/{env} not found")]
    RevisionNotFound {
        /// The app.
        app: String,
        /// The environment.
        env: String,
        /// The revision number.
        number: i64,
    },
    /// The lock was taken and released so often that its holder could not be read.
    #[error("lock on {app}/{env} kept changing hands; try again")]
    LockChurn {
        /// The app.
        app: String,
        /// The environment.
        env: String,
    },
    /// `Store::backup` was called on a backend it does not support.
    #[error(
        "backing up a {backend} store is not supported by ferry: use the database's own tools (pg_dump)"
    )]
    BackupUnsupported {
        /// The backend.
        backend: crate::Backend,
    },
    /// The secrets key file could not be read or created.
    #[error("failed to access secrets key file {}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The secrets key file is readable or writable by others than its owner.
    #[error(
        "secrets key file {} has mode {mode:o}, which lets other users read it; run `chmod 600` on it",
        path.display()
    )]
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The secrets key file does not hold a key (64 hex digits).
    #[error("secrets key file {} does not hold a key (expected 64 hex digits)", path.display())]
    KeyFileInvalid {
        /// The key file.
        path: PathBuf,
    },
    /// Encrypting a secret failed.
    #[error("failed to encrypt secret {name} of {app}/{env}")]
    Encrypt {
        /// The app.
        app: String,
        /// The environment.
        env: String,
        /// The secret's name.
        name: String,
    },
    /// A stored secret could not be decrypted: a different key file, or a tampered row.
    #[error(
        "failed to decrypt secret {name} of {app}/{env}: the key file is not the one it was stored with, or the row was altered"
    )]
    Decrypt {
        /// The app.
        app: String,
        /// The environment.
        env: String,
        /// The secret's name.
        name: String,
    },
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adapts a driver error into [`Error::Query`] with what the store was doing.
pub(crate) fn query(action: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |source| Error::Query { action, source }
}
