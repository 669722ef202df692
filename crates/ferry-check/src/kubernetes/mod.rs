//! Kubernetes checks.
use crate::{CheckOptions, Finding};
/// Per-file checks.
pub fn check_file(_text: &str, _opts: &CheckOptions) -> Vec<Finding> {
    Vec::new()
}
/// Cross-object checks over several files: (file index, text).
pub fn check_cross(_files: &[(usize, &str)], _opts: &CheckOptions) -> Vec<(usize, Finding)> {
    Vec::new()
}
/// For each 1-based line index, the Helm `# Source:` template in effect.
pub fn helm_sources(_text: &str) -> Vec<Option<String>> {
    Vec::new()
}
