//! GitOps: write one environment's rendered kustomize tree into a GitOps repository and
//! commit it. Rendering is deterministic, so a release that changes only the image changes
//! only the `newTag`/`digest` line of the environment's overlay — a one-line, reviewable
//! promotion commit.
//!
//! This is the crate's only I/O: it writes files and runs the `git` CLI.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::{Error, Rendered};

/// Where and how [`gitops_update`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitopsOptions {
    /// The directory inside the repository holding `base/` and `overlays/`. Default `deploy`.
    pub path: PathBuf,
    /// Commit the change (`git add` + `git commit`). Default true.
    pub commit: bool,
}

impl Default for GitopsOptions {
    fn default() -> Self {
        Self {
            path: PathBuf::from("deploy"),
            commit: true,
        }
    }
}

/// What [`gitops_update`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitopsOutcome {
    /// Files written because their content changed (relative to the repository).
    pub changed: Vec<PathBuf>,
    /// Whether the only change is the image of the environment's overlay.
    pub promotion_only: bool,
    /// The commit made, when committing and something changed.
    pub commit: Option<String>,
    /// The commit message used (or that would be used).
    pub message: String,
}

fn is_image_line(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("newTag:") || t.starts_with("digest:") || t.starts_with("newName:")
}

/// The image set by an overlay, for the commit message.
fn image_of(overlay: &str) -> String {
    let value = |key: &str| {
        overlay
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().trim_matches('"').to_owned())
    };
    let name = value("newName:").unwrap_or_default();
    match (value("digest:"), value("newTag:")) {
        (Some(d), _) => format!("{name}@{d}"),
        (None, Some(t)) => format!("{name}:{t}"),
        (None, None) => name,
    }
}

fn git(repo: &Path, args: &[&str]) -> Result<String, Error> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .map_err(|source| Error::Io {
            action: "run git in",
            path: repo.to_owned(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(Error::Git {
            args: args.join(" "),
            repo: repo.to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Writes the rendered `base/` and `overlays/<env>/` of `rendered` (a `ferry render k8s
/// --env <env>` result) under `opts.path` in the repository at `repo_dir`, and commits the
/// files that changed.
///
/// # Errors
/// [`Error::NoOverlay`] when `rendered` has no overlay for `env`; [`Error::Io`] when a file
/// cannot be read or written; [`Error::Git`] when git fails (e.g. not a repository).
pub fn gitops_update(
    repo_dir: &Path,
    env: &str,
    rendered: &Rendered,
    opts: &GitopsOptions,
) -> Result<GitopsOutcome, Error> {
    let overlay_rel = PathBuf::from(format!("overlays/{env}/kustomization.yaml"));
    let Some(new_overlay) = rendered
        .files
        .iter()
        .find(|(p, _)| *p == overlay_rel)
        .map(|(_, c)| c.clone())
    else {
        return Err(Error::NoOverlay(opts.path.join(&overlay_rel)));
    };
    let mut changed = Vec::new();
    let mut overlay_diff_is_image_only = true;
    for (rel, content) in &rendered.files {
        // Only this environment's tree; and never a path escaping the directory.
        let ours = rel.starts_with("base") || rel.starts_with(format!("overlays/{env}"));
        let safe = rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !ours || !safe {
            continue;
        }
        let rel_repo = opts.path.join(rel);
        let path = repo_dir.join(&rel_repo);
        let old = match std::fs::read_to_string(&path) {
            Ok(old) => Some(old),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(Error::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        if old.as_deref() == Some(content.as_str()) {
            continue;
        }
        if *rel == overlay_rel {
            overlay_diff_is_image_only = old.as_deref().is_some_and(|old| {
                let (a, b): (Vec<&str>, Vec<&str>) =
                    (old.lines().collect(), content.lines().collect());
                a.len() == b.len()
                    && a.iter()
                        .zip(&b)
                        .all(|(x, y)| x == y || (is_image_line(x) && is_image_line(y)))
            });
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                action: "create",
                path: dir.to_owned(),
                source,
            })?;
        }
        std::fs::write(&path, content).map_err(|source| Error::Io {
            action: "write",
            path: path.clone(),
            source,
        })?;
        changed.push(rel_repo);
    }
    let promotion_only = changed.len() == 1
        && changed[0] == opts.path.join(&overlay_rel)
        && overlay_diff_is_image_only;
    let image = image_of(&new_overlay);
    let message = if promotion_only {
        format!("ferry: promote {env} to {image}")
    } else {
        format!(
            "ferry: render {env} manifests ({} file{} changed, image {image})",
            changed.len(),
            if changed.len() == 1 { "" } else { "s" }
        )
    };
    let mut commit = None;
    if opts.commit && !changed.is_empty() {
        let mut add: Vec<&str> = vec!["add", "--"];
        let paths: Vec<String> = changed
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        add.extend(paths.iter().map(String::as_str));
        git(repo_dir, &add)?;
        // A fresh CI runner may have no identity: commit as ferry rather than fail.
        let mut args: Vec<&str> = Vec::new();
        if git(repo_dir, &["config", "user.email"]).is_err() {
            args.extend(["-c", "user.name=ferry", "-c", "user.email=ferry@localhost"]);
        }
        args.extend(["commit", "--quiet", "-m", &message, "--"]);
        args.extend(paths.iter().map(String::as_str));
        git(repo_dir, &args)?;
        commit = Some(git(repo_dir, &["rev-parse", "HEAD"])?);
    }
    Ok(GitopsOutcome {
        changed,
        promotion_only,
        commit,
        message,
    })
}
