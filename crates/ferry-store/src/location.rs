//! Where the store lives: a SQLite file path or URL, or a PostgreSQL URL.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The database behind a [`Store`](crate::Store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        })
    }
}

/// A parsed store location.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) backend: Backend,
    /// The URL handed to the driver (may carry a password).
    pub(crate) url: String,
    /// The SQLite file, whose parent directory is created on open.
    pub(crate) sqlite_file: Option<PathBuf>,
    /// The location for messages, password redacted.
    pub(crate) display: String,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Location")
            .field("backend", &self.backend)
            .field("display", &self.display)
            .finish_non_exhaustive()
    }
}

impl Location {
    /// Parses a file path, a `sqlite:` URL or a `postgres://` / `postgresql://` URL.
    pub(crate) fn parse(location: &str) -> Result<Self> {
        let trimmed = location.trim();
        if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
            return Ok(Self {
                backend: Backend::Postgres,
                url: trimmed.to_owned(),
                sqlite_file: None,
                display: redact_password(trimmed),
            });
        }
        if let Some(rest) = trimmed.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let (path, query) = match rest.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (rest, None),
            };
            if path.is_empty() || path == ":memory:" {
                return Err(Error::UnsupportedLocation {
                    location: trimmed.to_owned(),
                });
            }
            // Keep the caller's parameters; default to creating the file.
            let query = match query {
                Some(q) if q.split('&').any(|kv| kv.starts_with("mode=")) => q.to_owned(),
                Some(q) => format!("{q}&mode=rwc"),
                None => "mode=rwc".to_owned(),
            };
            return Ok(Self {
                backend: Backend::Sqlite,
                url: format!("sqlite://{path}?{query}"),
                sqlite_file: Some(PathBuf::from(path)),
                display: trimmed.to_owned(),
            });
        }
        if trimmed.is_empty() || trimmed.contains("://") {
            return Err(Error::UnsupportedLocation {
                location: redact_password(trimmed),
            });
        }
        let path = Path::new(location);
        let Some(text) = path.to_str() else {
            return Err(Error::UnsupportedLocation {
                location: path.display().to_string(),
            });
        };
        Ok(Self {
            backend: Backend::Sqlite,
            url: format!("sqlite://{}?mode=rwc", percent_encode_path(text)),
            sqlite_file: Some(path.to_path_buf()),
            display: path.display().to_string(),
        })
    }
}

impl Location {
    /// Makes a relative SQLite file path absolute against the current directory, so the
    /// driver's URL never mistakes its first component for a host name.
    pub(crate) fn absolutize(&mut self) -> std::io::Result<()> {
        let Some(file) = &self.sqlite_file else {
            return Ok(());
        };
        if file.is_absolute() {
            return Ok(());
        }
        let absolute = std::env::current_dir()?.join(file);
        let query = self.url.split_once('?').map_or("", |(_, q)| q).to_owned();
        let Some(text) = absolute.to_str() else {
            return Ok(());
        };
        self.url = format!("sqlite://{}?{query}", percent_encode_path(text));
        self.sqlite_file = Some(absolute);
        Ok(())
    }
}

/// Percent-encodes the characters the SQLite driver would misread in a URL path.
fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' | '?' | '#' | ' ' | '"' | '<' | '>' | '`' | '{' | '}' => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Replaces the password of `scheme://user:password@host/...` with `***`.
pub(crate) fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_path_becomes_creating_sqlite_url() {
        let loc = Location::parse("/tmp/a b/state#1.db").unwrap();
        assert_eq!(loc.backend, Backend::Sqlite);
        assert_eq!(loc.url, "sqlite:///tmp/a%20b/state%231.db?mode=rwc");
        assert_eq!(
            loc.sqlite_file.unwrap(),
            PathBuf::from("/tmp/a b/state#1.db")
        );
    }

    #[test]
    fn relative_path_is_kept_relative() {
        let loc = Location::parse(".ferry/state.db").unwrap();
        assert_eq!(loc.url, "sqlite://.ferry/state.db?mode=rwc");
    }

    #[test]
    fn relative_path_is_made_absolute_for_the_driver() {
        let mut loc = Location::parse("rel dir/state.db").unwrap();
        loc.absolutize().unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            loc.sqlite_file.as_deref(),
            Some(cwd.join("rel dir/state.db").as_path())
        );
        assert!(loc.url.starts_with("sqlite:///"), "{}", loc.url);
        assert!(
            loc.url.ends_with("/rel%20dir/state.db?mode=rwc"),
            "{}",
            loc.url
        );
        assert_eq!(loc.display, "rel dir/state.db");
    }

    #[test]
    fn sqlite_url_keeps_explicit_mode() {
        let loc = Location::parse("sqlite:///x/y.db?mode=rw").unwrap();
        assert_eq!(loc.url, "sqlite:///x/y.db?mode=rw");
        let loc = Location::parse("sqlite:y.db").unwrap();
        assert_eq!(loc.url, "sqlite://y.db?mode=rwc");
    }

    #[test]
    fn postgres_password_is_redacted_for_display() {
        let loc = Location::parse("postgres://ferry:s3cret@127.0.0.1:5432/ferry").unwrap();
        assert_eq!(loc.backend, Backend::Postgres);
        assert_eq!(loc.display, "postgres://ferry:***@127.0.0.1:5432/ferry");
        assert!(!format!("{loc:?}").contains("s3cret"));
    }

    #[test]
    fn other_schemes_and_memory_are_rejected() {
        for bad in ["mysql://x/y", "", "sqlite::memory:", "http://u:pw@h/"] {
            let err = Location::parse(bad).unwrap_err();
            assert!(matches!(err, Error::UnsupportedLocation { .. }), "{bad}");
            assert!(!err.to_string().contains("pw@"));
        }
    }
}
