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

/// One `.gitignore` rule, relative to the directory holding the file.
#[derive(Debug, Clone)]
struct Ignore {
    base: PathBuf,
    pattern: String,
    anchored: bool,
    dir_only: bool,
    negated: bool,
}

fn read_gitignore(dir: &Path) -> Vec<Ignore> {
    let Ok(text) = std::fs::read_to_string(dir.join(".gitignore")) else {
        return Vec::new();
    };
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (negated, l) = match l.strip_prefix('!') {
                Some(r) => (true, r),
                None => (false, l),
            };
            let dir_only = l.ends_with('/');
            let l = l.trim_end_matches('/');
            let anchored = l.trim_start_matches("**/").contains('/') && !l.starts_with("**/");
            let pattern = l.trim_start_matches('/').to_string();
            Ignore {
                base: dir.to_path_buf(),
                pattern,
                anchored,
                dir_only,
                negated,
            }
        })
        .collect()
}

/// Glob match: `*` and `?` stay within a path segment, `**` crosses segments.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) if p.get(1) == Some(&b'*') => {
            let rest = p[2..].strip_prefix(b"/").unwrap_or(&p[2..]);
            (0..=s.len()).any(|i| glob(rest, &s[i..]))
        }
        (Some(b'*'), _) => (0..=s.len())
            .take_while(|&i| i == 0 || s[i - 1] != b'/')
            .any(|i| glob(&p[1..], &s[i..])),
        (Some(b'?'), Some(c)) if *c != b'/' => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

fn ignored(rules: &[Ignore], path: &Path, is_dir: bool) -> bool {
    let mut result = false;
    for r in rules {
        if r.dir_only && !is_dir {
            continue;
        }
        let Ok(rel) = path.strip_prefix(&r.base) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        let hit = if r.anchored {
            glob(r.pattern.as_bytes(), rel.as_bytes())
        } else {
            let name = rel.rsplit('/').next().unwrap_or(&rel);
            glob(
                r.pattern.trim_start_matches("**/").as_bytes(),
                name.as_bytes(),
            )
        };
        if hit {
            result = !r.negated;
        }
    }
    result
}

fn walk_dir(dir: &Path, inherited: &[Ignore], out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut rules = inherited.to_vec();
    rules.extend(read_gitignore(dir));
    let mut entries: Vec<_> = rd.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        let Ok(ft) = e.file_type() else { continue };
        if ignored(&rules, &p, ft.is_dir()) {
            continue;
        }
        if ft.is_dir() {
            if !SKIP_DIRS.contains(&name.as_ref()) && !name.starts_with('.') {
                walk_dir(&p, &rules, out);
            }
        } else if ft.is_file() {
            out.push(p);
        }
    }
}

pub(crate) fn check_paths(paths: &[PathBuf], opts: &CheckOptions) -> Result<Report, Error> {
    // (path, given explicitly)
    let mut found: Vec<(PathBuf, bool)> = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|source| Error::Read {
            path: p.clone(),
            source,
        })?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk_dir(p, &[], &mut files);
            found.extend(files.into_iter().map(|f| (f, false)));
        } else {
            found.push((p.clone(), true));
        }
    }
    let read_all = par_map(&found, |(path, explicit)| match read(path) {
        Ok(text) => {
            let kind = classify(path, &text).or(explicit.then_some(FileKind::Other));
            Ok(kind.map(|k| load(k, path.clone(), text)))
        }
        // A file that vanished or is unreadable while walking is skipped; one given
        // explicitly is an error.
        Err(e) if *explicit => Err(e),
        Err(_) => Ok(None),
    });
    let mut loaded = Vec::new();
    for r in read_all {
        if let Some(l) = r? {
            loaded.push(l);
        }
    }
    Ok(check_loaded(loaded, opts))
}

/// Maps `f` over `items` on all cores, pulling work from a shared counter so one large file
/// does not hold up a whole chunk; results keep the input order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len())
        .max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut local = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    local.push((i, f(item)));
                }
                if let Ok(mut r) = results.lock() {
                    r.extend(local);
                }
            });
        }
    });
    let mut out = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
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
    // Kubernetes files are loaded once and kept for the cross-object pass.
    let checked: Vec<(Vec<Finding>, Option<crate::yaml::Stream>)> = par_map(&files, |f| {
        if f.kind == FileKind::Kubernetes {
            let stream = crate::yaml::load(&f.text);
            let mut v = crate::kubernetes::check_stream(&stream, opts);
            v.extend(crate::secrets::scan(&f.text, f.kind));
            (v, Some(stream))
        } else {
            (
                crate::raw_findings(f.kind, &f.text, opts, f.has_dockerignore, false),
                None,
            )
        }
    });
    let (mut per_file, streams): (Vec<Vec<Finding>>, Vec<Option<crate::yaml::Stream>>) =
        checked.into_iter().unzip();
    let k8s: Vec<(usize, &crate::yaml::Stream)> = streams
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
        .collect();
    let mut cross: Vec<Vec<Finding>> = vec![Vec::new(); files.len()];
    for (idx, finding) in crate::kubernetes::check_cross_streams(&k8s, opts) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitignore_globs() {
        assert!(glob(b"*.yaml", b"a.yaml"));
        assert!(!glob(b"*.yaml", b"dir/a.yaml"));
        assert!(glob(b"build/**/x", b"build/a/b/x"));
        assert!(glob(b"**/x", b"x"));
        assert!(glob(b"te?t", b"test"));
    }

    #[test]
    fn walking_honours_gitignore() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("charts/out")).expect("mkdir");
        std::fs::write(
            root.join(".gitignore"),
            "out/\n*.generated.yaml\n!keep.generated.yaml\n",
        )
        .expect("write");
        for f in [
            "charts/out/a.yaml",
            "charts/b.generated.yaml",
            "charts/keep.generated.yaml",
            "charts/c.yaml",
        ] {
            std::fs::write(root.join(f), "x").expect("write");
        }
        let mut files = Vec::new();
        walk_dir(root, &[], &mut files);
        let names: Vec<String> = files
            .iter()
            .map(|p| {
                p.strip_prefix(root)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            names,
            vec![".gitignore", "charts/c.yaml", "charts/keep.generated.yaml"]
        );
    }
}
