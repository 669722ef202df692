//! `ferry config validate|show|schema`.

use ferry_spec::Diagnostics;

use crate::cli::{ConfigCommand, Global};
use crate::error::Expected;
use crate::exit;
use crate::printer::Printer;
use crate::project;

pub fn run(command: &ConfigCommand, global: &Global, printer: &Printer) -> anyhow::Result<u8> {
    match command {
        ConfigCommand::Validate { strict } => validate(global, printer, *strict),
        ConfigCommand::Show => show(global, printer),
        ConfigCommand::Schema => {
            printer.json(&ferry_spec::json_schema())?;
            Ok(exit::OK)
        }
    }
}

/// Validates the base spec and every environment overlay (or only `--env`),
/// then applies the production policy to production environments.
fn validate(global: &Global, printer: &Printer, strict: bool) -> anyhow::Result<u8> {
    let (path, document) = project::load_document(global, printer)?;
    project::check_env_exists(&document, global.env.as_deref())?;
    let envs: Vec<Option<String>> = match &global.env {
        Some(env) => vec![Some(env.clone())],
        None => std::iter::once(None)
            .chain(document.environments().into_iter().map(Some))
            .collect(),
    };
    let mut problems = document.warnings().to_vec();
    let mut checked = Vec::new();
    for env in &envs {
        match document.resolve(env.as_deref()) {
            Ok(_) => {
                for mut problem in document.policy(env.as_deref()) {
                    if strict {
                        problem = problem.into_error();
                    }
                    problems.push(problem);
                }
            }
            Err(diagnostics) => problems.extend(diagnostics.problems),
        }
        checked.push(env.clone().unwrap_or_else(|| "base".to_owned()));
    }
    dedup(&mut problems);
    let diagnostics = Diagnostics::new(document.source_arc(), problems);
    let errors = diagnostics.error_count();
    let warnings = diagnostics.problems.len() - errors;
    if printer.json_output() {
        printer.json(&serde_json::json!({
            "file": path.display().to_string(),
            "valid": errors == 0,
            "environments": checked,
            "errors": errors,
            "warnings": warnings,
            "problems": diagnostics.to_records(),
        }))?;
    } else {
        if !diagnostics.problems.is_empty() {
            printer.diagnostic_text(&project::render_reports(printer, &diagnostics));
        }
        if errors == 0 {
            printer.line(format!(
                "{} is valid ({}; {warnings} warning(s))",
                path.display(),
                checked.join(", ")
            ))?;
        }
    }
    if errors > 0 {
        return Err(Expected::InvalidConfig {
            path: path.display().to_string(),
            count: errors,
        }
        .into());
    }
    Ok(exit::OK)
}

/// The same problem found in the base and in each overlay is reported once.
fn dedup(problems: &mut Vec<ferry_spec::Problem>) {
    let mut seen = std::collections::HashSet::new();
    problems.retain(|p| {
        seen.insert(format!(
            "{:?}{:?}{}{}",
            p.line(),
            p.column(),
            p.code,
            p.message
        ))
    });
}

fn show(global: &Global, printer: &Printer) -> anyhow::Result<u8> {
    let project = project::load(global, printer)?;
    if printer.json_output() {
        printer.json(&serde_json::to_value(&project.spec)?)?;
    } else {
        let text = toml::to_string_pretty(&project.spec)?;
        printer.data(format!(
            "# {} merged for environment `{}` (secrets: names only)\n{text}",
            project.config_path.display(),
            project.env_name()
        ))?;
    }
    Ok(exit::OK)
}
