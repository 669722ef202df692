//! A parsed ferry.toml: the base spec and its environment overlays, checked as a whole
//! by [`parse`] and resolved for one environment by [`Document::resolve`].
//!
//! Overlay rules: `[environments.<name>]` holds any base key (plus `production`); it is
//! merged over the base where tables merge key by key, recursively, and arrays and scalar
//! values replace the base's value whole. The base must be a complete spec on its own.

use std::sync::Arc;

use crate::decode::{Cx, decode_spec, did_you_mean};
use crate::diagnostic::{Diagnostics, Problem};
use crate::node::{Entry, Kind, Node};
use crate::policy::policy;
use crate::source::SourceFile;
use crate::spec::Spec;

/// One environment overlay.
#[derive(Debug, Clone)]
struct Overlay {
    name: String,
    production: bool,
    /// The overlay's keys, without `production`.
    node: Node,
}

/// A ferry.toml that parsed and validated, in its base form and in every environment.
#[derive(Debug, Clone)]
pub struct Document {
    source: Arc<SourceFile>,
    base: Node,
    overlays: Vec<Overlay>,
    warnings: Vec<Problem>,
}

/// Parses and validates `src`: its base spec and the spec of every environment, reporting
/// every problem found (each at the place it was written, overlays included) at once.
///
/// Warnings alone do not fail; they are kept in [`Document::warnings`].
pub fn parse(src: &SourceFile) -> Result<Document, Diagnostics> {
    let source = Arc::new(src.clone());
    let value = match toml_span::parse(src.text()) {
        Ok(value) => value,
        Err(e) => return Err(Diagnostics::new(source, vec![syntax_problem(&e)])),
    };
    let mut base = Node::from_toml(&value);
    let mut cx = Cx::default();
    let overlays = base
        .remove("environments")
        .map(|entry| read_overlays(&entry, &mut cx))
        .unwrap_or_default();

    decode_spec(&base, &mut cx);
    for overlay in &overlays {
        let mut merged = base.clone();
        merged.merge(&overlay.node);
        let mut env_cx = Cx::default();
        decode_spec(&merged, &mut env_cx);
        for mut problem in env_cx.problems {
            // Base problems show up again in every environment: report each once, and
            // name the environment of those that only it has.
            if !cx.problems.contains(&problem) {
                problem.message = format!("{} (environment `{}`)", problem.message, overlay.name);
                cx.problems.push(problem);
            }
        }
    }

    let (errors, warnings): (Vec<Problem>, Vec<Problem>) =
        cx.problems.into_iter().partition(Problem::is_error);
    if errors.is_empty() {
        let warnings = Diagnostics::new(source.clone(), warnings).problems;
        Ok(Document {
            source,
            base,
            overlays,
            warnings,
        })
    } else {
        Err(Diagnostics::new(
            source,
            errors.into_iter().chain(warnings).collect(),
        ))
    }
}

/// Reads `[environments.*]`, checking names and `production`.
fn read_overlays(entry: &Entry, cx: &mut Cx) -> Vec<Overlay> {
    let Kind::Table(envs) = &entry.value.kind else {
        cx.problems.push(
            Problem::error(
                "invalid-type",
                format!(
                    "`environments` must be a table, found {}",
                    entry.value.kind.type_name()
                ),
                "write one table per environment, e.g. [environments.staging]",
            )
            .at(entry.value.span.clone(), "expected a table")
            .with_path("environments"),
        );
        return Vec::new();
    };
    let mut overlays = Vec::new();
    for env in envs {
        let path = format!("environments.{}", env.key);
        if let Err(e) = env.key.parse::<crate::names::RoleName>() {
            cx.problems.push(
                Problem::error(
                    "invalid-name",
                    format!("environment name: {e}"),
                    "use lowercase letters, digits and '-', e.g. staging or production",
                )
                .at(env.key_span.clone(), "invalid environment name")
                .with_path(path.clone()),
            );
        }
        let mut node = env.value.clone();
        if node.entries().is_none() {
            cx.problems.push(
                Problem::error(
                    "invalid-type",
                    format!("`{path}` must be a table, found {}", node.kind.type_name()),
                    format!("write [{path}] followed by the keys it overrides"),
                )
                .at(node.span.clone(), "expected a table")
                .with_path(path),
            );
            continue;
        }
        let production = match node.remove("production") {
            None => false,
            Some(Entry {
                value:
                    Node {
                        kind: Kind::Bool(b),
                        ..
                    },
                ..
            }) => b,
            Some(other) => {
                cx.problems.push(
                    Problem::error(
                        "invalid-type",
                        format!(
                            "`{path}.production` must be a boolean (true or false), found {}",
                            other.value.kind.type_name()
                        ),
                        "write production = true",
                    )
                    .at(other.value.span, "expected a boolean")
                    .with_path(format!("{path}.production")),
                );
                false
            }
        };
        overlays.push(Overlay {
            name: env.key.clone(),
            production,
            node,
        });
    }
    overlays
}

/// Turns a TOML syntax error into a problem.
fn syntax_problem(e: &toml_span::Error) -> Problem {
    use toml_span::ErrorKind;
    let (code, hint) = match &e.kind {
        ErrorKind::DuplicateKey { .. } => ("duplicate-key", "remove one of the two definitions"),
        ErrorKind::DuplicateTable { .. } => ("duplicate-key", "merge the two tables into one"),
        ErrorKind::UnquotedString => (
            "invalid-toml",
            "put strings in double quotes: key = \"value\"",
        ),
        ErrorKind::UnterminatedString => ("invalid-toml", "close the string with a matching quote"),
        _ => (
            "invalid-toml",
            "fix the TOML syntax at this place (see https://toml.io)",
        ),
    };
    let mut span = e.span.start..e.span.end;
    if span.end < span.start {
        span.end = span.start;
    }
    Problem::error(code, format!("invalid TOML: {e}"), hint).at(span, "here")
}

impl Document {
    /// The file this document was parsed from.
    pub fn source(&self) -> &SourceFile {
        &self.source
    }

    /// The file this document was parsed from, shared (for [`Diagnostics::new`]).
    pub fn source_arc(&self) -> Arc<SourceFile> {
        self.source.clone()
    }

    /// The spec for environment `env` (the base when `None`): the overlay merged over the
    /// base and validated. Fails only for an environment that is not defined.
    pub fn resolve(&self, env: Option<&str>) -> Result<Spec, Diagnostics> {
        let node = self.merged(env)?;
        let mut cx = Cx::default();
        match decode_spec(&node, &mut cx) {
            Some(spec) if !cx.problems.iter().any(Problem::is_error) => Ok(spec),
            // parse() decoded every environment without errors, so this is unreachable in
            // practice; report rather than panic.
            _ => Err(Diagnostics::new(self.source.clone(), cx.problems)),
        }
    }

    /// The merged tree for `env`.
    fn merged(&self, env: Option<&str>) -> Result<Node, Diagnostics> {
        let mut node = self.base.clone();
        if let Some(name) = env {
            let Some(overlay) = self.overlays.iter().find(|o| o.name == name) else {
                return Err(Diagnostics::new(
                    self.source.clone(),
                    vec![self.unknown_environment(name)],
                ));
            };
            node.merge(&overlay.node);
        }
        Ok(node)
    }

    fn unknown_environment(&self, name: &str) -> Problem {
        let names = self.environments();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let hint = match did_you_mean(name, &refs) {
            Some(close) => format!("did you mean `{close}`?"),
            None if names.is_empty() => format!("add an [environments.{name}] table"),
            None => format!("defined environments: {}", names.join(", ")),
        };
        Problem::error(
            "unknown-environment",
            format!(
                "environment `{name}` is not defined in {}",
                self.source.name()
            ),
            hint,
        )
    }

    /// The names of the environments defined, in file order.
    pub fn environments(&self) -> Vec<String> {
        self.overlays.iter().map(|o| o.name.clone()).collect()
    }

    /// Whether `env` gets the production policy: it is named `production` or is marked
    /// `production = true`. The base (`None`) is not production.
    pub fn is_production(&self, env: Option<&str>) -> bool {
        env.is_some_and(|name| {
            name == "production" || self.overlays.iter().any(|o| o.name == name && o.production)
        })
    }

    /// Warnings found while parsing (the document is valid despite them).
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// The production policy for `env` (see [`policy`]), each finding located at the key it
    /// concerns. Empty when `env` is not production; unknown environments yield nothing.
    pub fn policy(&self, env: Option<&str>) -> Vec<Problem> {
        let (Ok(spec), Ok(node)) = (self.resolve(env), self.merged(env)) else {
            return Vec::new();
        };
        policy(&spec, self.is_production(env))
            .into_iter()
            .map(|mut problem| {
                // Point at the most specific key of the path that is written in the file.
                if let Some(path) = problem.path.clone() {
                    let mut parts: Vec<&str> = path.split('.').collect();
                    while !parts.is_empty() {
                        if let Some((key_span, _)) = node.lookup(&parts.join(".")) {
                            problem.span = Some(key_span);
                            problem.label = "production policy".to_owned();
                            break;
                        }
                        parts.pop();
                    }
                }
                problem.located(&self.source)
            })
            .collect()
    }
}
