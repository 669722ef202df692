//! Findings and reports: what a check produces, independent of any output format.

use serde::Serialize;
use std::path::PathBuf;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A hint worth knowing; never fails a build by default.
    Info,
    /// A practice that should be fixed.
    Warning,
    /// Broken input or a problem that will bite in production.
    Error,
}

impl Severity {
    /// Lowercase name (`error`, `warning`, `info`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// Parses `error`, `warning`/`warn` or `info`/`note`.
    pub fn parse(s: &str) -> Option<Severity> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Some(Severity::Error),
            "warning" | "warn" => Some(Severity::Warning),
            "info" | "note" => Some(Severity::Info),
            _ => None,
        }
    }
}

/// A 1-based position in a file; columns count characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column (characters).
    pub column: u32,
}

impl Pos {
    /// Builds a position from 1-based line and column.
    pub fn new(line: u32, column: u32) -> Pos {
        Pos { line, column }
    }
}

/// A region of a file: `start` inclusive, `end` exclusive (the column after the last character).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Span {
    /// First character.
    pub start: Pos,
    /// One past the last character.
    pub end: Pos,
}

impl Span {
    /// A span from `start` to `end`.
    pub fn new(start: Pos, end: Pos) -> Span {
        Span { start, end }
    }

    /// A span covering `len` characters on one line.
    pub fn on_line(line: u32, column: u32, len: u32) -> Span {
        Span::new(Pos::new(line, column), Pos::new(line, column + len.max(1)))
    }
}

/// One problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The file, as given or as found while walking.
    pub file: PathBuf,
    /// 1-based first line.
    pub line: u32,
    /// 1-based first column.
    pub column: u32,
    /// 1-based last line.
    pub end_line: u32,
    /// 1-based column one past the last character.
    pub end_column: u32,
    /// Stable rule id, e.g. `DF001` (see [`crate::rules`]).
    pub rule: &'static str,
    /// Severity after overrides.
    pub severity: Severity,
    /// What is wrong, in one sentence. Never contains a secret value.
    pub message: String,
    /// How to fix it, when there is something specific to say.
    pub hint: Option<String>,
    /// Documentation for the rule.
    pub help_url: Option<String>,
    /// For rendered Helm output: the chart template the object came from (`# Source:`).
    pub source_template: Option<String>,
}

impl Finding {
    /// A finding for `rule` at `span` with the rule's default severity.
    pub fn new(rule: &'static str, span: Span, message: impl Into<String>) -> Finding {
        let severity = crate::rules::lookup(rule).map_or(Severity::Warning, |r| r.severity);
        Finding {
            file: PathBuf::new(),
            line: span.start.line,
            column: span.start.column,
            end_line: span.end.line,
            end_column: span.end.column,
            rule,
            severity,
            message: message.into(),
            hint: None,
            help_url: Some(crate::rules::help_url(rule)),
            source_template: None,
        }
    }

    /// Adds a fix hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Finding {
        self.hint = Some(hint.into());
        self
    }

    /// Overrides the severity (used by rules whose severity depends on certainty).
    pub fn with_severity(mut self, severity: Severity) -> Finding {
        self.severity = severity;
        self
    }
}

/// The result of checking a set of files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// All findings, sorted by file, line, column, rule.
    pub findings: Vec<Finding>,
    /// Number of files that were recognised and checked.
    pub files_checked: usize,
}

impl Report {
    /// The highest severity present, if any finding exists.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// Number of findings at exactly `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// Sorts findings into their stable order.
    pub fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            (&a.file, a.line, a.column, a.rule, &a.message)
                .cmp(&(&b.file, b.line, b.column, b.rule, &b.message))
        });
    }
}
