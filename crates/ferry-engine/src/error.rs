//! The one error type of ferry-engine.

use std::path::PathBuf;

use crate::build::BuildFailure;
use crate::health::Unhealthy;

/// Everything that can go wrong talking to the Docker engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The Docker engine could not be reached (socket missing, daemon stopped, permission
    /// denied). The CLI maps this to its "engine unreachable" exit code.
    #[error("cannot reach the docker engine ({endpoint})")]
    Unreachable {
        /// The socket or URL that was tried.
        endpoint: String,
        /// What the client library reported.
        #[source]
        source: bollard::errors::Error,
    },
    /// The engine answered a call with an error.
    #[error("docker engine call {call} failed")]
    Api {
        /// The operation, e.g. `create container web-1`.
        call: String,
        /// What the engine said.
        #[source]
        source: bollard::errors::Error,
    },
    /// An image, container or network does not exist.
    #[error("{kind} {name} not found")]
    NotFound {
        /// `image`, `container` or `network`.
        kind: &'static str,
        /// The name or id looked up.
        name: String,
    },
    /// Reading the build context from disk failed.
    #[error("cannot read build context at {path}")]
    Context {
        /// The file or directory that could not be read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A `.dockerignore` line is not a valid pattern.
    #[error(".dockerignore line {line}: invalid pattern {pattern:?}: {reason}")]
    IgnorePattern {
        /// 1-based line number.
        line: usize,
        /// The pattern as written.
        pattern: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The Dockerfile named in the build request does not exist.
    #[error("dockerfile {path} not found")]
    DockerfileMissing {
        /// The path that was looked for.
        path: PathBuf,
    },
    /// The build ran and failed; carries the failing step and its last output lines.
    #[error("{0}")]
    BuildFailed(BuildFailure),
    /// The container would run as root and the spec does not allow it.
    #[error(
        "container {container} would run as root (user {user:?}); run it as a non-root user or allow root explicitly"
    )]
    RootRefused {
        /// The container name.
        container: String,
        /// The effective user (empty means the image default, root).
        user: String,
    },
    /// The container spec is inconsistent.
    #[error("invalid container spec for {container}: {reason}")]
    InvalidSpec {
        /// The container name.
        container: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// Writing a secret file for a container failed.
    #[error("cannot write secret file {path}")]
    SecretFile {
        /// The file ferry tried to write.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A one-off container (a hook) did not finish in time; it was stopped.
    #[error("container {container} did not finish within {}s", timeout.as_secs())]
    OneOffTimeout {
        /// The container name.
        container: String,
        /// The time it was given.
        timeout: std::time::Duration,
        /// Its last output lines.
        output: Vec<String>,
    },
    /// The container did not become healthy.
    #[error("{0}")]
    Unhealthy(Box<Unhealthy>),
}

impl EngineError {
    /// The HTTP status of an engine error response, when the engine answered at all.
    pub fn engine_status(&self) -> Option<u16> {
        match self {
            EngineError::Api {
                source: bollard::errors::Error::DockerResponseServerError { status_code, .. },
                ..
            } => Some(*status_code),
            _ => None,
        }
    }

    /// Whether this error means the engine is not reachable at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, EngineError::Unreachable { .. })
    }
}

/// Wraps a bollard error from `call`, classifying connection failures as `Unreachable`.
pub(crate) fn api(call: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> EngineError {
    let call = call.into();
    move |source| {
        if is_connection_error(&source) {
            EngineError::Unreachable {
                endpoint: crate::engine::endpoint(),
                source,
            }
        } else {
            EngineError::Api { call, source }
        }
    }
}

fn is_connection_error(e: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as B;
    matches!(
        e,
        B::SocketNotFoundError(_)
            | B::IOError { .. }
            | B::HyperResponseError { .. }
            | B::HyperLegacyError { .. }
    )
}
