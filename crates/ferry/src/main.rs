//! The `ferry` binary: argument parsing, wiring and printing. The work itself
//! lives in the library crates (see ARCHITECTURE.md).

mod cli;
mod commands;
mod error;
mod exit;
mod printer;
mod project;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::printer::Printer;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.global.verbose);
    let printer = Printer::new(&cli.global);
    match commands::dispatch(cli, &printer) {
        Ok(code) => exit::code(code),
        Err(err) if is_broken_pipe(&err) => exit::code(exit::OK),
        Err(err) => {
            report(&printer, &err);
            exit::code(error::exit_code_of(&err))
        }
    }
}

/// Prints an error with its causes and, for expected errors, a hint.
fn report(printer: &Printer, err: &anyhow::Error) {
    if let Some(expected @ error::Expected::InvalidConfig { .. }) =
        err.downcast_ref::<error::Expected>()
    {
        // The problems were already printed with their locations.
        printer.error(expected.to_string());
        return;
    }
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        text.push_str(&format!("\n  caused by: {cause}"));
    }
    printer.error(text);
    if let Some(hint) = err
        .downcast_ref::<error::Expected>()
        .and_then(error::Expected::hint)
    {
        printer.hint(hint);
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<printer::StdoutClosed>().is_some()
}

/// Diagnostics (not user output) on stderr, filtered by -v or RUST_LOG.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,ferry=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}
