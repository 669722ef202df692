//! The proxy's error type: every expected failure the library reports.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can go wrong when configuring, starting or steering the proxy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The routes file is not valid TOML or does not match the documented schema.
    #[error("invalid proxy config")]
    ConfigParse(#[source] toml::de::Error),
    /// A routing table breaks an invariant (weights, unknown service, duplicate backend...).
    /// The live table is left unchanged.
    #[error("invalid routing table: {0}")]
    InvalidTable(String),
    /// A listener could not be bound.
    #[error("failed to bind listener {addr}")]
    Bind {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A certificate or key file could not be read or parsed.
    #[error("failed to load tls material from {path}: {reason}")]
    Tls {
        /// The file that failed.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// Entries of `error_pages` cannot be used: a status the proxy does not generate,
    /// or a file that cannot be read or is larger than 1 MiB (each named with its key).
    #[error("invalid error_pages: {0}")]
    ErrorPages(String),
    /// The named service does not exist in the live routing table.
    #[error("unknown service {0}")]
    UnknownService(String),
    /// The named revision is not a pool of the service.
    #[error("unknown revision {revision} in service {service}")]
    UnknownRevision {
        /// The service that was addressed.
        service: String,
        /// The revision that is not one of its pools.
        revision: String,
    },
    /// The backend address is not part of the live routing table.
    #[error("unknown backend {0}")]
    UnknownBackend(SocketAddr),
    /// The routing state file could not be read or written.
    #[error("failed to read or write routing state {path}")]
    State {
        /// The state file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Handing the listening sockets over to another process, or taking them over,
    /// failed; a running process keeps serving.
    #[error("socket handover through {path} failed: {reason}")]
    Handover {
        /// The handover socket.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The handover socket could not be used.
    #[error("socket handover through {path} failed")]
    HandoverIo {
        /// The handover socket.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An I/O error outside a specific listener (accepting, admin API).
    #[error("proxy i/o error")]
    Io(#[source] std::io::Error),
}
