//! Expected failures: caused outside ferry, typed, mapped to exit codes.
//! Everything else is a bug and exits 1 with its chain of causes.

use std::path::PathBuf;

use crate::exit;

/// A failure the user can fix; each variant names its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Expected {
    /// No ferry.toml was found upward from the starting directory.
    #[error(
        "no ferry.toml found in {} or any parent directory",
        start.display()
    )]
    ConfigNotFound { start: PathBuf },
    /// ferry.toml could not be read.
    #[error("cannot read {}", path.display())]
    ConfigUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// ferry.toml has problems; they were already printed.
    #[error("{path} has {count} problem(s)")]
    InvalidConfig { path: String, count: usize },
    /// Wrong command-line usage detected after parsing.
    #[error("{0}")]
    Usage(String),
    /// The Docker engine is not reachable.
    #[error("cannot reach the Docker engine")]
    EngineUnreachable {
        #[source]
        source: anyhow::Error,
    },
    /// The operation ran and failed (build failed, unhealthy container, findings).
    #[error("{0}")]
    Failed(String),
}

impl Expected {
    pub fn exit_code(&self) -> u8 {
        match self {
            Expected::ConfigNotFound { .. }
            | Expected::ConfigUnreadable { .. }
            | Expected::InvalidConfig { .. }
            | Expected::Usage(_) => exit::USAGE,
            Expected::EngineUnreachable { .. } => exit::UNREACHABLE,
            Expected::Failed(_) => exit::FAILED,
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Expected::ConfigNotFound { .. } => {
                Some("run `ferry init` to create one, or pass --config PATH")
            }
            Expected::EngineUnreachable { .. } => Some(
                "start the Docker daemon, or point DOCKER_HOST at it (e.g. unix:///var/run/docker.sock)",
            ),
            _ => None,
        }
    }
}

/// The exit code for any error returned by a command.
pub fn exit_code_of(err: &anyhow::Error) -> u8 {
    err.downcast_ref::<Expected>()
        .map_or(exit::FAILED, Expected::exit_code)
}
