//! Custom error pages: operator files that replace the bodies of the responses the
//! proxy generates itself (no route, limits, no backend, maintenance, upstream errors).
//!
//! Pages are read once, when the config is loaded and again when the proxy starts,
//! into shared bytes that both request paths (the HTTP/1.1 fast path and hyper) serve
//! as they are; the status and the headers the proxy sets (`retry-after`...) stay.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::StatusCode;

use crate::config::ERROR_PAGE_STATUSES;
use crate::error::Error;

/// Largest error page file.
pub(crate) const MAX_PAGE_BYTES: u64 = 1024 * 1024;

/// One page: its bytes and the content type its file extension names.
#[derive(Clone, Debug)]
pub(crate) struct Page {
    pub body: Bytes,
    pub content_type: &'static str,
}

/// The configured pages by status.
#[derive(Clone, Debug, Default)]
pub(crate) struct ErrorPages {
    pages: Vec<(StatusCode, Page)>,
}

impl ErrorPages {
    /// Reads and checks every page, reporting all problems at once.
    pub(crate) fn load(config: &BTreeMap<String, PathBuf>) -> Result<Self, Error> {
        let mut pages = Vec::new();
        let mut problems = Vec::new();
        for (key, path) in config {
            let status = key
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|s| ERROR_PAGE_STATUSES.contains(s))
                .and_then(|s| StatusCode::from_u16(s).ok());
            let problem = |reason: String| format!("{key:?} = {}: {reason}", path.display());
            let Some(status) = status else {
                problems.push(problem(format!(
                    "the proxy generates no such response (statuses with a page: {})",
                    ERROR_PAGE_STATUSES.map(|s| s.to_string()).join(", ")
                )));
                continue;
            };
            match read_page(path) {
                Ok(body) => pages.push((
                    status,
                    Page {
                        body,
                        content_type: content_type(path),
                    },
                )),
                Err(reason) => problems.push(problem(reason)),
            }
        }
        if problems.is_empty() {
            Ok(Self { pages })
        } else {
            Err(Error::ErrorPages(problems.join("; ")))
        }
    }

    /// The page for a proxy-generated response of this status.
    pub(crate) fn get(&self, status: StatusCode) -> Option<&Page> {
        self.pages
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, p)| p)
    }
}

fn read_page(path: &Path) -> Result<Bytes, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open the file: {e}"))?;
    let mut body = Vec::new();
    file.take(MAX_PAGE_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if body.len() as u64 > MAX_PAGE_BYTES {
        return Err("the file is larger than 1 MiB".to_owned());
    }
    Ok(Bytes::from(body))
}

/// `.html` and `.htm` are HTML, `.json` JSON, anything else plain text.
fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_follows_the_extension() {
        assert_eq!(
            content_type(Path::new("/x/503.HTML")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.json")), "application/json");
        assert_eq!(
            content_type(Path::new("a.txt")),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("noext")),
            "text/plain; charset=utf-8"
        );
    }

    #[test]
    fn bad_statuses_and_large_files_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("big.html");
        std::fs::write(&big, vec![b'x'; 1024 * 1024 + 1]).expect("write");
        let ok = dir.path().join("ok.json");
        std::fs::write(&ok, "{}").expect("write");
        let config = BTreeMap::from([
            ("200".to_owned(), ok.clone()),
            ("503".to_owned(), big.clone()),
            ("504".to_owned(), ok.clone()),
        ]);
        let err = ErrorPages::load(&config).expect_err("invalid").to_string();
        assert!(
            err.contains("\"200\"") && err.contains("no such response"),
            "{err}"
        );
        assert!(err.contains("big.html") && err.contains("1 MiB"), "{err}");
        let pages = ErrorPages::load(&BTreeMap::from([("504".to_owned(), ok)])).expect("valid");
        let page = pages.get(StatusCode::GATEWAY_TIMEOUT).expect("504 page");
        assert_eq!(
            (&page.body[..], page.content_type),
            (&b"{}"[..], "application/json")
        );
        assert!(pages.get(StatusCode::BAD_GATEWAY).is_none());
    }
}
