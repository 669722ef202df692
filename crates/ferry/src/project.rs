//! Finding, reading and parsing the project's ferry.toml, and printing its problems.

use std::path::{Path, PathBuf};

use ferry_spec::{Diagnostics, Document, SourceFile, Spec};
use miette::{GraphicalReportHandler, GraphicalTheme};

use crate::cli::Global;
use crate::error::Expected;
use crate::printer::Printer;

/// A parsed ferry.toml and the environment the command works on.
#[derive(Debug)]
pub struct Project {
    /// Path of ferry.toml.
    pub config_path: PathBuf,
    /// The directory holding ferry.toml; relative paths in the spec start here.
    pub dir: PathBuf,
    pub document: Document,
    /// The spec with the environment's overlay merged in.
    pub spec: Spec,
    pub env: Option<String>,
}

impl Project {
    /// The environment name used in labels, tags and records.
    pub fn env_name(&self) -> &str {
        self.env.as_deref().unwrap_or("default")
    }
}

/// `--config` when given, otherwise ferry.toml found upward from the current directory.
pub fn find_config(global: &Global) -> Result<PathBuf, Expected> {
    if let Some(path) = &global.config {
        return Ok(path.clone());
    }
    let start = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    start
        .ancestors()
        .map(|dir| dir.join("ferry.toml"))
        .find(|candidate| candidate.is_file())
        .ok_or(Expected::ConfigNotFound { start })
}

/// Reads and parses ferry.toml; problems are printed and become `InvalidConfig`.
pub fn load_document(global: &Global, printer: &Printer) -> anyhow::Result<(PathBuf, Document)> {
    let path = find_config(global)?;
    let text = std::fs::read_to_string(&path).map_err(|source| Expected::ConfigUnreadable {
        path: path.clone(),
        source,
    })?;
    let source = SourceFile::new(display_path(&path), text);
    match ferry_spec::parse(&source) {
        Ok(document) => Ok((path, document)),
        Err(diagnostics) => {
            print_problems(printer, &diagnostics)?;
            Err(invalid(&diagnostics).into())
        }
    }
}

/// Loads ferry.toml and resolves the environment chosen with `--env`.
pub fn load(global: &Global, printer: &Printer) -> anyhow::Result<Project> {
    let (config_path, document) = load_document(global, printer)?;
    let env = global.env.clone();
    check_env_exists(&document, env.as_deref())?;
    let spec = match document.resolve(env.as_deref()) {
        Ok(spec) => spec,
        Err(diagnostics) => {
            print_problems(printer, &diagnostics)?;
            return Err(invalid(&diagnostics).into());
        }
    };
    let dir = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    Ok(Project {
        config_path,
        dir,
        document,
        spec,
        env,
    })
}

/// An unknown `--env` is a usage error that lists the environments that exist.
pub fn check_env_exists(document: &Document, env: Option<&str>) -> Result<(), Expected> {
    let Some(env) = env else { return Ok(()) };
    let known = document.environments();
    if known.iter().any(|e| e == env) {
        return Ok(());
    }
    let listing = if known.is_empty() {
        "ferry.toml defines no [environments.*]".to_owned()
    } else {
        format!("known environments: {}", known.join(", "))
    };
    Err(Expected::Usage(format!(
        "environment `{env}` is not defined in ferry.toml ({listing})"
    )))
}

fn invalid(diagnostics: &Diagnostics) -> Expected {
    Expected::InvalidConfig {
        path: diagnostics.source().name().to_owned(),
        count: diagnostics.error_count(),
    }
}

/// Paths relative to the current directory read better in diagnostics.
fn display_path(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// Prints problems: JSON records with `--output json`, else miette reports with
/// the source snippet, label and hint.
pub fn print_problems(printer: &Printer, diagnostics: &Diagnostics) -> anyhow::Result<()> {
    if printer.json_output() {
        let records = serde_json::to_value(diagnostics.to_records())?;
        return printer.json(&serde_json::json!({
            "valid": !diagnostics.has_errors(),
            "problems": records,
        }));
    }
    printer.diagnostic_text(&render_reports(printer, diagnostics));
    Ok(())
}

pub fn render_reports(printer: &Printer, diagnostics: &Diagnostics) -> String {
    let theme = if printer.color() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    for report in diagnostics.render() {
        let _ = handler.render_report(&mut out, report.as_ref());
    }
    out
}
