//! Static checks for Dockerfiles, compose files, Kubernetes manifests and hard-coded secrets.
//!
//! A pure library: no network, no printing. [`check_paths`] reads files and walks
//! directories; [`check_source`] checks text already in memory. Output formatters
//! ([`output`]) turn a [`Report`] into SARIF, GitHub annotations or JSON.

pub mod compose;
pub mod dockerfile;
mod finding;
pub mod kubernetes;
mod options;
pub mod output;
pub mod rules;
mod schema;
pub mod secrets;
mod suppression;
mod walk;
pub mod yaml;

pub use schema::is_quantity;

pub use finding::{Finding, Pos, Report, Severity, Span};
pub use options::CheckOptions;
pub use walk::classify;

use std::path::{Path, PathBuf};

/// Errors of a check run. Problems *in* checked files are findings, not errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A path given explicitly could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A CRD schema file could not be loaded.
    #[error("invalid schema file {path}: {reason}")]
    Schema {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// The kind of file a source is checked as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A Dockerfile / Containerfile.
    Dockerfile,
    /// A Docker Compose file.
    Compose,
    /// Kubernetes manifests (one or more YAML documents).
    Kubernetes,
    /// Any other text file: only the secrets detector runs.
    Other,
}

/// Checks one in-memory source. `name` is used as the finding's file. Never panics and never
/// fails: syntax problems are findings. Suppressions and options are applied.
pub fn check_source(kind: FileKind, name: &str, text: &str, opts: &CheckOptions) -> Vec<Finding> {
    check_text(kind, Path::new(name), text, opts, None)
}

/// Checks sources together, so Kubernetes cross-object references are resolved across all
/// of them. Each item is `(kind, name, text)`.
pub fn check_sources(sources: &[(FileKind, &str, &str)], opts: &CheckOptions) -> Report {
    let files: Vec<walk::Loaded> = sources
        .iter()
        .map(|(k, n, t)| walk::Loaded {
            kind: *k,
            path: PathBuf::from(n),
            text: (*t).to_string(),
            has_dockerignore: None,
        })
        .collect();
    walk::check_loaded(files, opts)
}

/// Reads and checks files and directories. Directories are walked (skipping `.git`,
/// `target`, `node_modules` and hidden directories) and files are classified by name and
/// content ([`classify`]); files given explicitly are always checked.
pub fn check_paths(paths: &[PathBuf], opts: &CheckOptions) -> Result<Report, Error> {
    walk::check_paths(paths, opts)
}

pub(crate) fn check_text(
    kind: FileKind,
    path: &Path,
    text: &str,
    opts: &CheckOptions,
    has_dockerignore: Option<bool>,
) -> Vec<Finding> {
    let raw = raw_findings(kind, text, opts, has_dockerignore, true);
    finish(path, text, kind, raw, opts)
}

/// Findings before suppressions; `cross` adds Kubernetes cross-object checks within the file.
pub(crate) fn raw_findings(
    kind: FileKind,
    text: &str,
    opts: &CheckOptions,
    has_dockerignore: Option<bool>,
    cross: bool,
) -> Vec<Finding> {
    let mut raw = match kind {
        FileKind::Dockerfile => dockerfile::check(text, opts, has_dockerignore),
        FileKind::Compose => compose::check(text, opts),
        FileKind::Kubernetes => {
            let mut v = kubernetes::check_file(text, opts);
            if cross {
                v.extend(
                    kubernetes::check_cross(&[(0, text)], opts)
                        .into_iter()
                        .map(|(_, f)| f),
                );
            }
            v
        }
        FileKind::Other => Vec::new(),
    };
    raw.extend(secrets::scan(text, kind));
    raw
}

/// Applies suppressions, disabled rules and severity overrides, and stamps the file name.
pub(crate) fn finish(
    path: &Path,
    text: &str,
    kind: FileKind,
    raw: Vec<Finding>,
    opts: &CheckOptions,
) -> Vec<Finding> {
    let extent: Box<dyn Fn(u32) -> u32> = match kind {
        FileKind::Dockerfile => {
            let ends = dockerfile::instruction_extents(text);
            Box::new(move |l| ends.iter().find(|(a, _)| *a == l).map_or(l, |(_, b)| *b))
        }
        _ => Box::new(|l| l),
    };
    let sups = suppression::parse(text, &*extent);
    let helm = kubernetes::helm_sources(text);
    let mut out = suppression::apply(raw, &sups);
    out.retain(|f| !opts.is_disabled(f.rule));
    // Alias expansion can report the same problem twice at the anchor.
    let mut seen = std::collections::HashSet::new();
    out.retain(|f| seen.insert((f.line, f.column, f.rule, f.message.clone())));
    for f in &mut out {
        f.file = path.to_path_buf();
        if let Some(s) = opts.severity_for(f.rule) {
            f.severity = s;
        }
        if f.source_template.is_none() {
            f.source_template = helm.get(f.line as usize).cloned().flatten();
        }
    }
    out
}
