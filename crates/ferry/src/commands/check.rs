//! `ferry check`: one pass over ferry.toml (spec problems and production policy),
//! Dockerfiles, compose files, Kubernetes manifests and secrets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferry_check::{CheckOptions, Finding, Report, Severity};
use ferry_spec::{Document, Problem, SourceFile};

use crate::cli::{CheckArgs, CheckFormat, FailOn, Global};
use crate::error::Expected;
use crate::exit;
use crate::printer::Printer;
use crate::project;

pub fn run(args: &CheckArgs, global: &Global, printer: &Printer) -> anyhow::Result<u8> {
    if let Some(rule) = &args.explain {
        let text = ferry_check::rules::explain(rule).ok_or_else(|| {
            Expected::Usage(format!(
                "no rule `{rule}`; rule ids and names are listed in docs/check.md"
            ))
        })?;
        printer.data(text)?;
        return Ok(exit::OK);
    }
    let config = project::find_config(global).ok();
    let paths = if args.paths.is_empty() {
        vec![
            config
                .as_ref()
                .and_then(|c| c.parent())
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), relative_to_cwd),
        ]
    } else {
        args.paths.clone()
    };
    for path in &paths {
        if !path.exists() {
            return Err(Expected::Usage(format!("{} does not exist", path.display())).into());
        }
    }

    // ferry.toml is checked when it lies within the checked paths (or is given).
    let spec_file = config
        .filter(|c| covered(c, &paths))
        .map(|c| relative_to_cwd(&c));
    let mut spec_findings = Vec::new();
    let mut options = CheckOptions::default();
    if let Some(path) = &spec_file {
        let text = std::fs::read_to_string(path).map_err(|source| Expected::ConfigUnreadable {
            path: path.clone(),
            source,
        })?;
        let source = SourceFile::new(path.display().to_string(), text);
        match ferry_spec::parse(&source) {
            Ok(document) => {
                apply_config(&document, global.env.as_deref(), &mut options);
                spec_findings = spec_problems(&document, global.env.as_deref());
            }
            Err(diagnostics) => spec_findings = diagnostics.problems,
        }
        // ferry.toml itself is not a file type ferry-check knows: keep it out of the walk.
    }
    options
        .build_args
        .extend(parse_build_args(&args.build_args)?);
    if args.target.is_some() {
        options.target.clone_from(&args.target);
    }

    let mut report = ferry_check::check_paths(&paths, &options)?;
    if let Some(path) = &spec_file {
        report.files_checked += 1;
        for problem in &spec_findings {
            if let Some(finding) = to_finding(path, problem, &options) {
                report.findings.push(finding);
            }
        }
        report.sort();
    }

    let format = args.format.unwrap_or(if printer.json_output() {
        CheckFormat::Json
    } else {
        CheckFormat::Human
    });
    match format {
        CheckFormat::Human => print_human(printer, &report)?,
        CheckFormat::Json => printer.json(&ferry_check::output::to_json(&report))?,
        CheckFormat::Sarif => printer.json(&ferry_check::output::to_sarif(&report))?,
        CheckFormat::Github => printer.data(ferry_check::output::to_github(&report))?,
    }
    let threshold = match args.fail_on {
        FailOn::Info => Some(Severity::Info),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Error => Some(Severity::Error),
        FailOn::Never => None,
    };
    let failed = threshold.is_some_and(|t| report.findings.iter().any(|f| f.severity >= t));
    Ok(if failed { exit::FAILED } else { exit::OK })
}

/// Findings read better with paths relative to where the user stands.
fn relative_to_cwd(path: &Path) -> PathBuf {
    let Ok(cwd) = std::env::current_dir() else {
        return path.to_path_buf();
    };
    match path.strip_prefix(&cwd) {
        Ok(rest) if rest.as_os_str().is_empty() => PathBuf::from("."),
        Ok(rest) => rest.to_path_buf(),
        Err(_) => path.to_path_buf(),
    }
}

fn covered(config: &Path, paths: &[PathBuf]) -> bool {
    let Ok(config) = config.canonicalize() else {
        return false;
    };
    paths
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .any(|p| config == p || config.starts_with(&p))
}

/// Spec problems for the base and every environment (or only `--env`), plus the
/// production policy where it applies; the same problem is reported once.
fn spec_problems(document: &Document, env: Option<&str>) -> Vec<Problem> {
    let envs: Vec<Option<String>> = match env {
        Some(e) => vec![Some(e.to_owned())],
        None => std::iter::once(None)
            .chain(document.environments().into_iter().map(Some))
            .collect(),
    };
    let mut problems = document.warnings().to_vec();
    for env in &envs {
        match document.resolve(env.as_deref()) {
            Ok(_) => problems.extend(document.policy(env.as_deref())),
            Err(diagnostics) => problems.extend(diagnostics.problems),
        }
    }
    let mut seen = std::collections::HashSet::new();
    problems.retain(|p| seen.insert((p.line(), p.column(), p.code, p.message.clone())));
    problems
}

/// `[check]` in ferry.toml configures the run.
fn apply_config(document: &Document, env: Option<&str>, options: &mut CheckOptions) {
    let Ok(spec) = document.resolve(env) else {
        return;
    };
    options.disabled_rules = spec.check.disable.clone();
    options.severity_overrides = spec
        .check
        .severity
        .iter()
        .filter_map(|(rule, s)| Some((rule.clone(), Severity::parse(s.as_str())?)))
        .collect();
    options
        .production_namespaces
        .clone_from(&spec.check.production_namespaces);
    if let Some(build) = &spec.build {
        options.target.clone_from(&build.target);
        options.build_args = build.args.clone();
    }
}

fn to_finding(path: &Path, problem: &Problem, options: &CheckOptions) -> Option<Finding> {
    let record = problem.to_record();
    let code = problem.code;
    if options
        .disabled_rules
        .iter()
        .any(|d| d.eq_ignore_ascii_case(code))
    {
        return None;
    }
    let severity = options
        .severity_overrides
        .get(code)
        .copied()
        .unwrap_or(if problem.is_error() {
            Severity::Error
        } else {
            Severity::Warning
        });
    let line = record.line.unwrap_or(1) as u32;
    let column = record.column.unwrap_or(1) as u32;
    Some(Finding {
        file: path.to_path_buf(),
        line,
        column,
        end_line: record.end_line.map_or(line, |l| l as u32),
        end_column: record.end_column.map_or(column, |c| c as u32),
        rule: code,
        severity,
        message: record.message.clone(),
        hint: Some(record.hint.clone()),
        help_url: None,
        source_template: None,
    })
}

fn parse_build_args(raw: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    raw.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| {
                    Expected::Usage(format!("--build-arg `{kv}` must be KEY=VALUE")).into()
                })
        })
        .collect()
}

fn print_human(printer: &Printer, report: &Report) -> anyhow::Result<()> {
    let mut sources: BTreeMap<PathBuf, Option<Vec<String>>> = BTreeMap::new();
    for f in &report.findings {
        let severity = match f.severity {
            Severity::Error => printer.paint("error", "31"),
            Severity::Warning => printer.paint("warning", "33"),
            Severity::Info => printer.paint("info", "36"),
        };
        printer.line(format!("{severity}[{}]: {}", f.rule, f.message))?;
        printer.line(format!(
            "  --> {}:{}:{}",
            f.file.display(),
            f.line,
            f.column
        ))?;
        let lines = sources.entry(f.file.clone()).or_insert_with(|| {
            std::fs::read_to_string(&f.file)
                .ok()
                .map(|text| text.lines().map(str::to_owned).collect())
        });
        if let Some(frame) = lines.as_deref().and_then(|l| code_frame(l, f)) {
            printer.line(frame)?;
        }
        if let Some(hint) = &f.hint {
            printer.line(format!("  = hint: {hint}"))?;
        }
        printer.line("")?;
    }
    printer.line(format!(
        "{} file(s) checked: {} error(s), {} warning(s), {} info",
        report.files_checked,
        report.count(Severity::Error),
        report.count(Severity::Warning),
        report.count(Severity::Info)
    ))?;
    Ok(())
}

/// The finding's line with a caret underline, e.g.
/// ```text
///    |
///  1 | FROM ubuntu:latest
///    |      ^^^^^^^^^^^^^
/// ```
fn code_frame(lines: &[String], f: &Finding) -> Option<String> {
    let index = usize::try_from(f.line).ok()?.checked_sub(1)?;
    let line = lines.get(index)?;
    let start = usize::try_from(f.column.max(1) - 1).ok()?;
    let width = line.chars().count();
    let end = if f.end_line == f.line && f.end_column > f.column {
        usize::try_from(f.end_column - 1).ok()?
    } else {
        width
    };
    let carets = end.min(width).saturating_sub(start).max(1);
    let gutter = " ".repeat(f.line.to_string().len());
    Some(format!(
        "{gutter} |\n{} | {}\n{gutter} | {}{}",
        f.line,
        line.replace('\t', " "),
        " ".repeat(start),
        "^".repeat(carets)
    ))
}
