//! The one place that talks to the user: knows `--output`, `-q`, colors and TTYs.
//! Results go to stdout; progress, warnings and errors go to stderr. Progress
//! bars exist only when stderr is a terminal and the output is human.
//! A closed stdout becomes [`StdoutClosed`] so `main` can exit quietly.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{ColorChoice, Global, OutputFormat};

/// stdout was closed by the reader (e.g. `ferry ... | head`): not an error to report.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
pub struct StdoutClosed;

fn stdout_error(err: std::io::Error) -> anyhow::Error {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        StdoutClosed.into()
    } else {
        anyhow::Error::new(err).context("cannot write to standard output")
    }
}

#[derive(Debug, Clone)]
pub struct Printer {
    pub format: OutputFormat,
    quiet: bool,
    color: bool,
    stderr_tty: bool,
    stdout_tty: bool,
}

/// How a live view (a rollout being followed, `status --watch`) is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveMode {
    /// A progress view on stderr: stdout and stderr are terminals, output is human.
    Terminal,
    /// One plain line per change on stdout.
    Lines,
    /// One NDJSON event per change on stdout.
    Json,
    /// Nothing but the result (`-q`).
    Quiet,
}

impl Printer {
    pub fn new(global: &Global) -> Self {
        let stderr_tty = std::io::stderr().is_terminal();
        let stdout_tty = std::io::stdout().is_terminal();
        let color = match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stderr_tty && std::env::var_os("NO_COLOR").is_none(),
        };
        Printer {
            format: global.output,
            quiet: global.quiet,
            color,
            stderr_tty,
            stdout_tty,
        }
    }

    pub fn json_output(&self) -> bool {
        self.format == OutputFormat::Json
    }

    pub fn color(&self) -> bool {
        self.color
    }

    /// A result line for humans (stdout); silent with `-q` or `--output json`.
    pub fn line(&self, text: impl AsRef<str>) -> anyhow::Result<()> {
        if self.quiet || self.json_output() {
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", text.as_ref()).map_err(stdout_error)
    }

    /// Raw text to stdout regardless of `-q` (the product of the command, e.g. a schema).
    pub fn data(&self, text: impl AsRef<str>) -> anyhow::Result<()> {
        let text = text.as_ref();
        let mut out = std::io::stdout().lock();
        let newline: &[u8] = if text.ends_with('\n') { b"" } else { b"\n" };
        out.write_all(text.as_bytes())
            .and_then(|()| out.write_all(newline))
            .and_then(|()| out.flush())
            .map_err(stdout_error)
    }

    /// One JSON document (pretty) or one NDJSON event line to stdout.
    pub fn json(&self, value: &serde_json::Value) -> anyhow::Result<()> {
        self.data(serde_json::to_string_pretty(value)?)
    }

    pub fn event(&self, value: &serde_json::Value) -> anyhow::Result<()> {
        self.data(serde_json::to_string(value)?)
    }

    /// Progress narration for humans on stderr (never in JSON mode, never with -q).
    pub fn status(&self, text: impl AsRef<str>) {
        if self.quiet || self.json_output() {
            return;
        }
        let _ = writeln!(std::io::stderr().lock(), "{}", text.as_ref());
    }

    /// Pre-rendered diagnostics (miette reports) on stderr.
    pub fn diagnostic_text(&self, text: &str) {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }

    pub fn error(&self, text: impl AsRef<str>) {
        let label = self.paint("error", "31");
        let _ = writeln!(std::io::stderr().lock(), "{label}: {}", text.as_ref());
    }

    pub fn hint(&self, text: impl AsRef<str>) {
        let label = self.paint("hint", "36");
        let _ = writeln!(std::io::stderr().lock(), "  {label}: {}", text.as_ref());
    }

    pub fn paint(&self, text: &str, ansi: &str) -> String {
        if self.color {
            format!("\x1b[{ansi}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// How live views render: a progress view only when both stdout and stderr are
    /// terminals (a piped stdout gets plain lines, never bars).
    pub fn live_mode(&self) -> LiveMode {
        if self.json_output() {
            LiveMode::Json
        } else if self.quiet {
            LiveMode::Quiet
        } else if self.stderr_tty && self.stdout_tty {
            LiveMode::Terminal
        } else {
            LiveMode::Lines
        }
    }

    /// The live view's progress bar (steps done of all, elapsed, and a multi-line message
    /// below) on stderr, in [`LiveMode::Terminal`] only.
    pub fn live_bar(&self) -> Option<ProgressBar> {
        if self.live_mode() != LiveMode::Terminal {
            return None;
        }
        let bar = ProgressBar::new(1);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {prefix} [{bar:20}] {pos}/{len} steps, {elapsed}\n  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(bar)
    }

    /// A spinner on stderr when it is a terminal and output is human; `None` otherwise.
    pub fn spinner(&self, message: impl Into<String>) -> Option<ProgressBar> {
        if !self.stderr_tty || self.quiet || self.json_output() {
            return None;
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(100));
        Some(bar)
    }
}
