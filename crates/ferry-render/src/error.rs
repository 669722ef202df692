//! The crate's error type.

/// Why a spec could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target name is not one of [`crate::Target::ALL`].
    #[error(
        "unknown render target {0:?} (expected one of k8s, argocd, compose, prometheus, grafana, github-actions, gitlab-ci, ecs)"
    )]
    UnknownTarget(String),
    /// The spec has no `[web]` role, which every target renders around.
    #[error("the spec has no [web] role; add one to render {0}")]
    NoWebRole(&'static str),
    /// A canary step names an analysis the spec does not define.
    #[error("canary step runs analysis {0:?}, which is not defined under [analysis]")]
    UnknownAnalysis(String),
    /// An environment name is not a DNS label.
    #[error("invalid environment name {0:?}: use lowercase letters, digits and '-'")]
    InvalidEnvironment(String),
    /// A value could not be serialised (a bug: rendered types always serialise).
    #[error("failed to serialise {what}")]
    Serialize {
        /// What was being serialised.
        what: String,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A file of the GitOps repository could not be read or written.
    #[error("failed to {action} {path}")]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `git` failed in the GitOps repository.
    #[error("git {args} failed in {repo}: {stderr}")]
    Git {
        /// The git arguments.
        args: String,
        /// The repository.
        repo: std::path::PathBuf,
        /// What git printed on stderr.
        stderr: String,
    },
    /// The GitOps repository has no rendered tree for this environment to promote.
    #[error("{0} has no kustomization to update; render it first with `ferry render k8s --gitops`")]
    NoOverlay(std::path::PathBuf),
}
