//! Inline suppressions: `# ferry:ignore RULE[,RULE] reason` and hadolint's `# hadolint ignore=DL3008`.
//!
//! Scope: a suppression comment on its own line applies to the next non-comment line (for a
//! Dockerfile, the whole instruction starting there); at the end of a line it applies to that
//! line. `# ferry:ignore-file RULE reason` applies to the whole file. A ferry suppression
//! without a reason still suppresses, and the missing reason is reported (FER003) so teams keep the why next to the what.

use crate::finding::{Finding, Span};
use crate::rules;

/// One parsed suppression comment.
#[derive(Debug, Clone)]
pub(crate) struct Suppression {
    /// Line of the comment (1-based).
    pub line: u32,
    pub column: u32,
    /// First and last line it applies to; `None` for the whole file.
    pub applies: Option<(u32, u32)>,
    /// Rule ids (ferry ids, already mapped from hadolint ids).
    pub rules: Vec<&'static str>,
    /// Ids that matched no rule.
    pub unknown: Vec<String>,
    pub from_hadolint: bool,
    pub has_reason: bool,
    pub used: std::cell::Cell<bool>,
}

/// Finds suppression comments in `text`. `extent` maps a line to the last line of the
/// construct starting there (a Dockerfile instruction with continuations/heredocs).
pub(crate) fn parse(text: &str, extent: &dyn Fn(u32) -> u32) -> Vec<Suppression> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let Some(hash) = find_comment(raw) else {
            continue;
        };
        let comment = raw[hash + 1..].trim();
        let line_no = i as u32 + 1;
        let own_line = raw[..hash].trim().is_empty();
        let column = raw[..hash].chars().count() as u32 + 1;
        let (ids, from_hadolint, whole_file, has_reason): (Vec<String>, bool, bool, bool) =
            if let Some(rest) = comment.strip_prefix("ferry:ignore-file") {
                let (ids, reason) = split_ids(rest);
                (ids, false, true, reason)
            } else if let Some(rest) = comment.strip_prefix("ferry:ignore") {
                let (ids, reason) = split_ids(rest);
                (ids, false, false, reason)
            } else if let Some(rest) = comment.strip_prefix("hadolint ignore=") {
                let (ids, _) = split_ids(rest);
                (ids, true, false, true)
            } else if let Some(rest) = comment.strip_prefix("hadolint global ignore=") {
                let (ids, _) = split_ids(rest);
                (ids, true, true, true)
            } else if let Some(rest) = comment.strip_prefix("check=") {
                // BuildKit's `# check=skip=A,B;error=true` directive: whole file.
                let skip = rest
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("skip="))
                    .unwrap_or("");
                let ids: Vec<String> = skip
                    .split(',')
                    .flat_map(|n| rules::by_buildkit(n.trim()))
                    .map(str::to_string)
                    .collect();
                (ids, true, true, true)
            } else {
                continue;
            };
        let mut rule_ids = Vec::new();
        let mut unknown = Vec::new();
        for id in ids {
            if let Some(r) = rules::lookup(&id).filter(|_| from_hadolint && !id.starts_with("DL")) {
                // Already a ferry id (from a BuildKit `check=skip` directive).
                rule_ids.push(r.id);
            } else if from_hadolint {
                let mapped: Vec<_> = rules::by_hadolint(&id).map(|r| r.id).collect();
                // A hadolint id with no ferry equivalent is not an error: it is simply
                // a check ferry does not have.
                rule_ids.extend(mapped);
            } else if let Some(r) = rules::lookup(&id) {
                rule_ids.push(r.id);
            } else {
                unknown.push(id);
            }
        }
        let applies = if whole_file {
            None
        } else if own_line {
            // next line that is not blank or a comment
            let mut j = i + 1;
            while j < lines.len() && {
                let t = lines[j].trim();
                t.is_empty() || t.starts_with('#')
            } {
                j += 1;
            }
            let first = j as u32 + 1;
            Some((first, extent(first).max(first)))
        } else {
            Some((line_no, extent(line_no).max(line_no)))
        };
        out.push(Suppression {
            line: line_no,
            column,
            applies,
            rules: rule_ids,
            unknown,
            from_hadolint,
            has_reason,
            used: std::cell::Cell::new(false),
        });
    }
    out
}

/// Byte index of a `#` that starts a comment (at line start or after whitespace).
fn find_comment(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    (0..bytes.len())
        .find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()))
        .filter(|&i| {
            let rest = line[i + 1..].trim_start();
            rest.starts_with("ferry:")
                || rest.starts_with("hadolint ")
                || rest.starts_with("check=")
        })
}

fn split_ids(rest: &str) -> (Vec<String>, bool) {
    let rest = rest.trim();
    let (ids, reason) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let ids = ids
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    (ids, !reason.is_empty())
}

/// Drops suppressed findings and adds findings about the suppressions themselves.
pub(crate) fn apply(findings: Vec<Finding>, sups: &[Suppression]) -> Vec<Finding> {
    let mut kept: Vec<Finding> = findings
        .into_iter()
        .filter(|f| {
            let hit = sups.iter().find(|s| {
                s.rules.contains(&f.rule)
                    && s.applies.is_none_or(|(a, b)| f.line >= a && f.line <= b)
            });
            match hit {
                Some(s) => {
                    s.used.set(true);
                    false
                }
                None => true,
            }
        })
        .collect();
    for s in sups {
        let span = Span::on_line(s.line, s.column, 1);
        for u in &s.unknown {
            kept.push(Finding::new(
                "FER002",
                span,
                format!("suppression names unknown rule `{u}`"),
            ));
        }
        if s.from_hadolint {
            continue;
        }
        if !s.used.get() && !s.rules.is_empty() {
            kept.push(
                Finding::new("FER001", span, "this suppression matches no finding").with_hint(
                    "remove the comment, or check the rule id and the line it applies to",
                ),
            );
        }
        if !s.has_reason && !s.rules.is_empty() {
            kept.push(
                Finding::new("FER003", span, "suppression has no reason").with_hint(
                    "write why after the rule ids: `# ferry:ignore DF001 pinned by renovate`",
                ),
            );
        }
    }
    kept
}
