//! Output formats over a [`Report`]: SARIF 2.1.0, GitHub workflow commands, JSON and plain
//! text. Formatters return values; printing is the caller's job.

use crate::rules::{self, RULES};
use crate::{Finding, Report, Severity};
use serde_json::{Value, json};

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

fn uri(f: &Finding) -> String {
    let s = f.file.to_string_lossy().replace('\\', "/");
    let s = s.strip_prefix("./").unwrap_or(&s).to_string();
    s.replace('%', "%25").replace(' ', "%20")
}

/// Metadata of one rule as JSON (also used by `--explain`).
pub fn rule_json(r: &rules::Rule) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "severity": r.severity.as_str(),
        "summary": r.summary,
        "help_url": rules::help_url(r.id),
        "hadolint": r.hadolint,
        "equivalents": r.others,
    })
}

/// SARIF 2.1.0 log with one run, full rule metadata and one result per finding.
pub fn to_sarif(report: &Report) -> Value {
    let rules_json: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "shortDescription": { "text": r.summary },
                "fullDescription": { "text": r.summary },
                "helpUri": rules::help_url(r.id),
                "help": { "text": format!("{} See {}", r.summary, rules::help_url(r.id)) },
                "defaultConfiguration": { "level": sarif_level(r.severity) },
                "properties": { "hadolint": r.hadolint, "equivalents": r.others },
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut text = f.message.clone();
            if let Some(h) = &f.hint {
                text.push_str(" Hint: ");
                text.push_str(h);
            }
            let mut result = json!({
                "ruleId": f.rule,
                "level": sarif_level(f.severity),
                "message": { "text": text },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(f) },
                        "region": {
                            "startLine": f.line.max(1),
                            "startColumn": f.column.max(1),
                            "endLine": f.end_line.max(f.line).max(1),
                            "endColumn": f.end_column.max(1),
                        }
                    }
                }],
            });
            if let Some(idx) = RULES.iter().position(|r| r.id == f.rule) {
                result["ruleIndex"] = json!(idx);
            }
            if let Some(src) = &f.source_template {
                result["properties"] = json!({ "helmSource": src });
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "ferry",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/ferry",
                "rules": rules_json,
            }},
            "results": results,
        }]
    })
}

fn gh_escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_escape_prop(s: &str) -> String {
    gh_escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub Actions workflow commands (`::error file=...,line=...::message`), one per line.
pub fn to_github(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let cmd = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        let mut msg = f.message.clone();
        if let Some(h) = &f.hint {
            msg.push_str(" (hint: ");
            msg.push_str(h);
            msg.push(')');
        }
        let mut props = format!(
            "file={},line={},col={}",
            gh_escape_prop(&f.file.to_string_lossy()),
            f.line,
            f.column
        );
        if f.end_line > f.line {
            props.push_str(&format!(",endLine={}", f.end_line));
        } else if f.end_column > f.column {
            props.push_str(&format!(",endColumn={}", f.end_column));
        }
        let title =
            rules::lookup(f.rule).map_or(f.rule.to_string(), |r| format!("{} {}", r.id, r.name));
        props.push_str(&format!(",title={}", gh_escape_prop(&title)));
        out.push_str(&format!("::{cmd} {props}::{}\n", gh_escape_data(&msg)));
    }
    out
}

/// The report as JSON: findings, files checked and counts per severity.
pub fn to_json(report: &Report) -> Value {
    json!({
        "files_checked": report.files_checked,
        "summary": {
            "error": report.count(Severity::Error),
            "warning": report.count(Severity::Warning),
            "info": report.count(Severity::Info),
        },
        "findings": report.findings,
    })
}

/// One line per finding (`file:line:col: severity RULE message`), then a summary line.
pub fn to_text(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(&format!(
            "{}:{}:{}: {} {} {}\n",
            f.file.display(),
            f.line,
            f.column,
            f.severity.as_str(),
            f.rule,
            f.message
        ));
        if let Some(h) = &f.hint {
            out.push_str(&format!("    hint: {h}\n"));
        }
    }
    out.push_str(&format!(
        "{} files checked: {} errors, {} warnings, {} info\n",
        report.files_checked,
        report.count(Severity::Error),
        report.count(Severity::Warning),
        report.count(Severity::Info)
    ));
    out
}
