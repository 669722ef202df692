//! Problems found in a ferry.toml, and their rendering: miette diagnostics with source
//! snippets for people, flat records for `--output json`.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, SourceCode};
use serde::Serialize;

use crate::source::{Position, SourceFile};
use crate::spec::Severity;

/// One problem: what is wrong, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error (the spec is rejected), warning or info.
    pub severity: Severity,
    /// A stable kebab-case code, e.g. `unknown-key`, `invalid-duration`.
    pub code: &'static str,
    /// What is wrong, as one sentence fragment.
    pub message: String,
    /// The text shown under the offending key or value.
    pub label: String,
    /// How to fix it. Always present.
    pub hint: String,
    /// Byte range in the file, when the problem has a place.
    pub span: Option<Range<usize>>,
    /// The dotted key path concerned (e.g. `web.health.interval`), when known.
    pub path: Option<String>,
    /// Where the span starts and ends (1-based), once located in a file.
    pub location: Option<(Position, Position)>,
    /// The file's name, once located.
    pub file: Option<String>,
}

impl Problem {
    /// An error with no place yet.
    pub fn error(code: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
            label: String::new(),
            hint: hint.into(),
            span: None,
            path: None,
            location: None,
            file: None,
        }
    }

    /// A warning with no place yet.
    pub fn warning(
        code: &'static str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, message, hint)
        }
    }

    /// The same problem as an error (the CLI's `--strict` turns policy warnings into errors).
    #[must_use]
    pub fn into_error(mut self) -> Self {
        self.severity = Severity::Error;
        self
    }

    /// Sets the place.
    #[must_use]
    pub fn at(mut self, span: Range<usize>, label: impl Into<String>) -> Self {
        self.span = Some(span);
        self.label = label.into();
        self
    }

    /// Sets the dotted key path.
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Resolves line and column against the file the span points into.
    #[must_use]
    pub fn located(mut self, src: &SourceFile) -> Self {
        self.file = Some(src.name().to_owned());
        // The TOML tokenizer can report spans past the end of the text (e.g. at EOF);
        // clamp them so that every consumer can slice the text safely.
        if let Some(span) = &mut self.span {
            let text = src.text();
            let clamp = |mut at: usize| {
                at = at.min(text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                at
            };
            span.start = clamp(span.start);
            span.end = clamp(span.end).max(span.start);
        }
        self.location = self.span.as_ref().map(|span| src.range(span));
        self
    }

    /// 1-based line of the start, once located.
    pub fn line(&self) -> Option<usize> {
        self.location.map(|(start, _)| start.line)
    }

    /// 1-based column of the start, once located.
    pub fn column(&self) -> Option<usize> {
        self.location.map(|(start, _)| start.column)
    }

    /// Whether this problem rejects the spec.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The flat record for JSON output.
    pub fn to_record(&self) -> ProblemRecord {
        let (start, end) = self.location.unzip();
        ProblemRecord {
            file: self.file.clone(),
            line: start.map(|p| p.line),
            column: start.map(|p| p.column),
            end_line: end.map(|p| p.line),
            end_column: end.map(|p| p.column),
            severity: self.severity,
            code: self.code,
            message: self.message.clone(),
            hint: self.hint.clone(),
            path: self.path.clone(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl miette::Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Info => miette::Severity::Advice,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.hint))
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span.clone()?;
        let label = (!self.label.is_empty()).then(|| self.label.clone());
        Some(Box::new(std::iter::once(
            LabeledSpan::new_primary_with_span(label, span.start..span.end),
        )))
    }
}

/// A flat, serializable problem for `--output json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProblemRecord {
    /// The file's name.
    pub file: Option<String>,
    /// 1-based start line.
    pub line: Option<usize>,
    /// 1-based start column.
    pub column: Option<usize>,
    /// 1-based end line.
    pub end_line: Option<usize>,
    /// 1-based end column.
    pub end_column: Option<usize>,
    /// `error`, `warning` or `info`.
    pub severity: Severity,
    /// Stable kebab-case code.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// The dotted key path, when known.
    pub path: Option<String>,
}

/// Every problem found in one file, in file order. Renders through miette with a snippet
/// per problem (each problem is a `related()` diagnostic sharing the file's source).
#[derive(Debug, Clone)]
pub struct Diagnostics {
    /// The problems, sorted by position.
    pub problems: Vec<Problem>,
    source: Arc<SourceFile>,
    named: NamedSource<String>,
}

impl Diagnostics {
    /// Collects `problems` found in `source`, locating and sorting them.
    pub fn new(source: Arc<SourceFile>, problems: Vec<Problem>) -> Self {
        let mut problems: Vec<Problem> = problems.into_iter().map(|p| p.located(&source)).collect();
        problems.sort_by_key(|p| {
            (
                p.span.as_ref().map_or(usize::MAX, |s| s.start),
                std::cmp::Reverse(p.severity),
            )
        });
        let named = NamedSource::new(source.name(), source.text().to_owned()).with_language("toml");
        Self {
            problems,
            source,
            named,
        }
    }

    /// The file the problems are in.
    pub fn source(&self) -> &SourceFile {
        &self.source
    }

    /// Number of errors (as opposed to warnings).
    pub fn error_count(&self) -> usize {
        self.problems.iter().filter(|p| p.is_error()).count()
    }

    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    /// One miette report per problem, each carrying the file's source for its snippet.
    pub fn render(&self) -> Vec<miette::Report> {
        self.problems
            .iter()
            .map(|p| miette::Report::new(p.clone()).with_source_code(self.named.clone()))
            .collect()
    }

    /// Flat records for `--output json`.
    pub fn to_records(&self) -> Vec<ProblemRecord> {
        self.problems.iter().map(Problem::to_record).collect()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.error_count();
        let warnings = self.problems.len() - errors;
        write!(
            f,
            "{}: {errors} error{}",
            self.source.name(),
            plural(errors)
        )?;
        if warnings > 0 {
            write!(f, ", {warnings} warning{}", plural(warnings))?;
        }
        Ok(())
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl std::error::Error for Diagnostics {}

impl miette::Diagnostic for Diagnostics {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("ferry::spec"))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(
            "each problem below names its place and a fix; `ferry config validate` re-checks the file",
        ))
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.named)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        Some(Box::new(
            self.problems.iter().map(|p| p as &dyn miette::Diagnostic),
        ))
    }
}
