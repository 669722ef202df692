//! The build context: the files of a directory, minus `.dockerignore`, as a tar archive.

use std::fs;
use std::path::{Path, PathBuf};

use crate::dockerignore::IgnoreRules;
use crate::error::EngineError;

/// Name under which a Dockerfile from outside the context is added to the archive.
const OUTSIDE_DOCKERFILE: &str = ".ferry.Dockerfile";

/// A packed build context, ready to send to the engine.
#[derive(Debug)]
pub struct PackedContext {
    /// The tar archive.
    pub tar: Vec<u8>,
    /// The Dockerfile's path inside the archive.
    pub dockerfile: String,
    /// Paths of the regular files in the archive, sorted.
    pub files: Vec<String>,
    /// Total bytes of file content.
    pub content_bytes: u64,
}

/// Packs `context` honouring its `.dockerignore`. `dockerfile` is relative to the context
/// or absolute; one outside the context is added under a private name. The Dockerfile and
/// `.dockerignore` are always sent, as the Docker CLI does.
pub fn pack(context: &Path, dockerfile: &Path) -> Result<PackedContext, EngineError> {
    let ctx_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EngineError::Context { path, source }
    };
    let context = fs::canonicalize(context).map_err(ctx_err(context))?;
    let dockerfile_path = if dockerfile.is_absolute() {
        dockerfile.to_path_buf()
    } else {
        context.join(dockerfile)
    };
    let dockerfile_path =
        fs::canonicalize(&dockerfile_path).map_err(|_| EngineError::DockerfileMissing {
            path: dockerfile_path.clone(),
        })?;
    let ignore_path = context.join(".dockerignore");
    let rules = match fs::read_to_string(&ignore_path) {
        Ok(text) => IgnoreRules::parse(&text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => IgnoreRules::default(),
        Err(e) => return Err(ctx_err(&ignore_path)(e)),
    };
    let inside = dockerfile_path
        .strip_prefix(&context)
        .ok()
        .map(|p| p.to_string_lossy().replace('\\', "/"));

    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut packed = PackedContext {
        tar: Vec::new(),
        dockerfile: inside
            .clone()
            .unwrap_or_else(|| OUTSIDE_DOCKERFILE.to_owned()),
        files: Vec::new(),
        content_bytes: 0,
    };
    let always: Vec<String> = [inside.clone(), Some(".dockerignore".to_owned())]
        .into_iter()
        .flatten()
        .collect();
    walk(
        &context,
        &context,
        &rules,
        &always,
        &mut builder,
        &mut packed,
    )?;
    if inside.is_none() {
        let data = fs::read(&dockerfile_path).map_err(ctx_err(&dockerfile_path))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder
            .append_data(&mut header, OUTSIDE_DOCKERFILE, data.as_slice())
            .map_err(ctx_err(&dockerfile_path))?;
        packed.files.push(OUTSIDE_DOCKERFILE.to_owned());
        packed.content_bytes += data.len() as u64;
    }
    packed.tar = builder.into_inner().map_err(ctx_err(&context))?;
    packed.files.sort();
    Ok(packed)
}

fn walk(
    root: &Path,
    dir: &Path,
    rules: &IgnoreRules,
    always: &[String],
    builder: &mut tar::Builder<Vec<u8>>,
    packed: &mut PackedContext,
) -> Result<(), EngineError> {
    let ctx_err = |path: PathBuf| move |source| EngineError::Context { path, source };
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)
        .map_err(ctx_err(dir.to_path_buf()))?
        .collect::<Result<_, _>>()
        .map_err(ctx_err(dir.to_path_buf()))?;
    // Sorted so the same tree always gives the same archive.
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        let meta = fs::symlink_metadata(&path).map_err(ctx_err(path.clone()))?;
        let excluded = rules.is_excluded(&rel) && !always.contains(&rel);
        if meta.is_dir() {
            let holds_always = always.iter().any(|a| a.starts_with(&format!("{rel}/")));
            if excluded && !holds_always && !rules.may_include_below(&rel) {
                continue;
            }
            if !excluded {
                append(builder, &path, &rel, &meta)?;
            }
            walk(root, &path, rules, always, builder, packed)?;
        } else if !excluded && (meta.is_file() || meta.file_type().is_symlink()) {
            append(builder, &path, &rel, &meta)?;
            if meta.is_file() {
                packed.files.push(rel);
                packed.content_bytes += meta.len();
            }
        }
    }
    Ok(())
}

fn append(
    builder: &mut tar::Builder<Vec<u8>>,
    path: &Path,
    rel: &str,
    meta: &fs::Metadata,
) -> Result<(), EngineError> {
    let ctx_err = |source| EngineError::Context {
        path: path.to_path_buf(),
        source,
    };
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    // Ownership on the build machine means nothing in the image (the Docker CLI does the same).
    header.set_uid(0);
    header.set_gid(0);
    if meta.is_file() {
        let file = fs::File::open(path).map_err(ctx_err)?;
        builder.append_data(&mut header, rel, file).map_err(ctx_err)
    } else if meta.file_type().is_symlink() {
        let target = fs::read_link(path).map_err(ctx_err)?;
        builder
            .append_link(&mut header, rel, target)
            .map_err(ctx_err)
    } else {
        builder
            .append_data(&mut header, rel, std::io::empty())
            .map_err(ctx_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tar: &[u8]) -> Vec<String> {
        let mut archive = tar::Archive::new(tar);
        let mut out: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn packs_what_dockerignore_allows_and_always_the_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("dist")).unwrap();
        fs::create_dir_all(d.join("target/debug")).unwrap();
        fs::write(d.join("Dockerfile"), "FROM scratch\n").unwrap();
        fs::write(d.join(".dockerignore"), "*\n!dist/hello\n").unwrap();
        fs::write(d.join("dist/hello"), "bin").unwrap();
        fs::write(d.join("dist/other"), "x").unwrap();
        fs::write(d.join("target/debug/big"), "x").unwrap();
        fs::write(d.join("secret.env"), "TOKEN=1").unwrap();
        let packed = pack(d, Path::new("Dockerfile")).unwrap();
        assert_eq!(packed.dockerfile, "Dockerfile");
        assert_eq!(packed.files, [".dockerignore", "Dockerfile", "dist/hello"]);
        assert_eq!(
            names(&packed.tar),
            [".dockerignore", "Dockerfile", "dist/hello"]
        );
        assert_eq!(packed.content_bytes, 14 + 13 + 3);
    }

    #[test]
    fn a_dockerfile_outside_the_context_is_added_under_a_private_name() {
        let ctx = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        fs::write(ctx.path().join("a.txt"), "a").unwrap();
        fs::write(other.path().join("Build.docker"), "FROM scratch\n").unwrap();
        let packed = pack(ctx.path(), &other.path().join("Build.docker")).unwrap();
        assert_eq!(packed.dockerfile, OUTSIDE_DOCKERFILE);
        assert_eq!(names(&packed.tar), [OUTSIDE_DOCKERFILE, "a.txt"]);
    }

    #[test]
    fn a_dockerfile_in_an_excluded_directory_is_still_sent() {
        let ctx = tempfile::tempdir().unwrap();
        fs::create_dir_all(ctx.path().join("docker")).unwrap();
        fs::write(ctx.path().join("docker/Dockerfile"), "FROM scratch\n").unwrap();
        fs::write(ctx.path().join("docker/other"), "x").unwrap();
        fs::write(ctx.path().join(".dockerignore"), "docker\n").unwrap();
        let packed = pack(ctx.path(), Path::new("docker/Dockerfile")).unwrap();
        assert_eq!(packed.dockerfile, "docker/Dockerfile");
        assert_eq!(packed.files, [".dockerignore", "docker/Dockerfile"]);
    }

    #[test]
    fn symlinks_are_archived_as_links() {
        let ctx = tempfile::tempdir().unwrap();
        fs::write(ctx.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        fs::write(ctx.path().join("a.txt"), "a").unwrap();
        std::os::unix::fs::symlink("a.txt", ctx.path().join("link")).unwrap();
        let packed = pack(ctx.path(), Path::new("Dockerfile")).unwrap();
        let mut archive = tar::Archive::new(packed.tar.as_slice());
        let link = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_str() == Some("link"))
            .expect("link archived");
        assert_eq!(link.header().entry_type(), tar::EntryType::Symlink);
        assert_eq!(link.link_name().unwrap().unwrap().to_str(), Some("a.txt"));
    }

    #[test]
    fn a_missing_dockerfile_is_a_typed_error() {
        let ctx = tempfile::tempdir().unwrap();
        let err = pack(ctx.path(), Path::new("Dockerfile")).unwrap_err();
        assert!(
            matches!(err, EngineError::DockerfileMissing { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn the_same_tree_packs_to_the_same_bytes() {
        let ctx = tempfile::tempdir().unwrap();
        fs::write(ctx.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        fs::write(ctx.path().join("b"), "b").unwrap();
        fs::write(ctx.path().join("a"), "a").unwrap();
        let one = pack(ctx.path(), Path::new("Dockerfile")).unwrap();
        let two = pack(ctx.path(), Path::new("Dockerfile")).unwrap();
        assert_eq!(one.tar, two.tar);
    }
}
