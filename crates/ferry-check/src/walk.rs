//! Finding files: walking directories, classifying files by name and content, and running
//! the per-file and cross-file checks (in parallel over files).

use crate::{CheckOptions, Error, FileKind, Finding, Report};
use std::path::{Path, PathBuf};

const SKIP_DIRS: &[&str] = &[
    "target",
    ".git",
    "node_modules",
    ".hg",
    ".svn",
    "vendor",
    "__pycache__",
    ".venv",
];

pub(crate) struct Loaded {
    pub kind: FileKind,
    pub path: PathBuf,
    pub text: String,
    /// Whether a `.dockerignore` sits next to a Dockerfile (`None`: unknown, in memory).
    pub has_dockerignore: Option<bool>,
}

/// Classifies a file by its name, falling back to its content for YAML files:
/// `Dockerfile`, `Dockerfile.*`, `*.Dockerfile`, `Containerfile` → Dockerfile;
/// `compose*.y(a)ml`, `docker-compose*.y(a)ml` → Compose; other YAML with a top-level
/// `services:` key → Compose; with `apiVersion:` and `kind:` → Kubernetes. Returns `None`
/// for files that are not checked when found by walking.
pub fn classify(path: &Path, text: &str) -> Option<FileKind> {
    let name = path.file_name()?.to_str()?;
    let lower = name.to_ascii_lowercase();
    if lower == "dockerfile"
        || lower == "containerfile"
        || lower.starts_with("dockerfile.")
        || lower.ends_with(".dockerfile")
        || lower.starts_with("dockerfile-")
    {
        return Some(FileKind::Dockerfile);
    }
    let is_yaml = lower.ends_with(".yaml") || lower.ends_with(".yml");
    if !is_yaml {
        return (lower.contains("dockerfile")
            || lower.contains("containerfile")
            || looks_like_dockerfile(text))
        .then_some(FileKind::Dockerfile);
    }
    if lower.starts_with("compose") || lower.starts_with("docker-compose") {
        return Some(FileKind::Compose);
    }
    let top_key = |k: &str| {
        text.lines()
            .any(|l| l.starts_with(k) && l[k.len()..].trim_start().starts_with(':'))
    };
    let any_key = |k: &str| {
        text.lines().any(|l| {
            let t = l.trim_start().trim_start_matches("- ");
            t.starts_with(k) && t[k.len()..].starts_with(':')
        })
    };
    if any_key("apiVersion") && any_key("kind") {
        return Some(FileKind::Kubernetes);
    }
    if top_key("services") {
        return Some(FileKind::Compose);
    }
    None
}

/// The first instruction line is `FROM` (or `ARG` followed later by `FROM`).
fn looks_like_dockerfile(text: &str) -> bool {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let Some(first) = lines.next() else {
        return false;
    };
    let kw = first
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    kw == "FROM"
        || (kw == "ARG"
            && text
                .lines()
                .any(|l| l.trim_start().to_ascii_uppercase().starts_with("FROM ")))
}

fn read(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn walk_dir(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            if !SKIP_DIRS.contains(&name.as_ref()) && !name.starts_with('.') {
                walk_dir(&p, out);
            }
        } else if ft.is_file() {
            out.push(p);
        }
    }
}

pub(crate) fn check_paths(paths: &[PathBuf], opts: &CheckOptions) -> Result<Report, Error> {
    let mut loaded = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|source| Error::Read {
            path: p.clone(),
            source,
        })?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk_dir(p, &mut files);
            for f in files {
                let Ok(text) = read(&f) else { continue };
                if let Some(kind) = classify(&f, &text) {
                    loaded.push(load(kind, f, text));
                }
            }
        } else {
            let text = read(p)?;
            let kind = classify(p, &text).unwrap_or(FileKind::Other);
            loaded.push(load(kind, p.clone(), text));
        }
    }
    Ok(check_loaded(loaded, opts))
}

fn load(kind: FileKind, path: PathBuf, text: String) -> Loaded {
    let has_dockerignore = (kind == FileKind::Dockerfile).then(|| {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("Dockerfile");
        dir.join(".dockerignore").exists() || dir.join(format!("{name}.dockerignore")).exists()
    });
    Loaded {
        kind,
        path,
        text,
        has_dockerignore,
    }
}

pub(crate) fn check_loaded(files: Vec<Loaded>, opts: &CheckOptions) -> Report {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len().max(1));
    let chunk = files.len().div_ceil(threads).max(1);
    let mut per_file: Vec<Vec<Finding>> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|c| {
                s.spawn(move || {
                    c.iter()
                        .map(|f| {
                            crate::raw_findings(f.kind, &f.text, opts, f.has_dockerignore, false)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    // Cross-object checks need every Kubernetes document at once.
    let k8s: Vec<(usize, &str)> = files
        .iter()
        .enumerate()
        .filter(|(_, f)| f.kind == FileKind::Kubernetes)
        .map(|(i, f)| (i, f.text.as_str()))
        .collect();
    let mut cross: Vec<Vec<Finding>> = vec![Vec::new(); files.len()];
    for (idx, finding) in crate::kubernetes::check_cross(&k8s, opts) {
        cross[idx].push(finding);
    }
    for (i, extra) in cross.into_iter().enumerate() {
        per_file[i].extend(extra);
    }
    let findings = per_file
        .into_iter()
        .zip(&files)
        .flat_map(|(raw, f)| crate::finish(&f.path, &f.text, f.kind, raw, opts))
        .collect();
    let mut report = Report {
        findings,
        files_checked: files.len(),
    };
    report.sort();
    report
}
