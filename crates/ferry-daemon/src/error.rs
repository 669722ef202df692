//! The daemon's errors: one enum, lowercase fragments, causes kept as sources.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can go wrong in the daemon or its client.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The state directory or a file in it could not be created, read or written.
    #[error("cannot use state file {}", path.display())]
    StateFile {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be opened or written.
    #[error("state store failed")]
    Store(#[from] ferry_store::Error),
    /// The Docker engine could not be reached or refused a call.
    #[error("docker engine failed")]
    Engine(#[from] ferry_engine::EngineError),
    /// The proxy could not start or refused a routing change.
    #[error("proxy failed")]
    Proxy(#[from] ferry_proxy::Error),
    /// The API listener could not be bound.
    #[error("cannot listen for the API on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The webhook CA file (`--webhook-ca`) cannot be used.
    #[error("{0}")]
    WebhookCa(String),
    /// The spec cannot be turned into a rollout plan.
    #[error("invalid rollout plan: {0}")]
    Plan(String),
    /// No daemon answers at the API address.
    #[error("no ferry daemon answers at {addr}")]
    Unreachable {
        /// The API address tried.
        addr: String,
        /// The connection error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The daemon answered with an error.
    #[error("the daemon refused the request ({status}): {message}")]
    Api {
        /// The HTTP status code.
        status: u16,
        /// The daemon's message.
        message: String,
    },
    /// The daemon's answer could not be read.
    #[error("unexpected answer from the daemon: {0}")]
    Protocol(String),
}

impl DaemonError {
    /// Whether the daemon could not be reached at all (exit code 3 in the CLI).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, DaemonError::Unreachable { .. })
    }
}
