//! `ferry completions SHELL`: shell completion scripts from the clap grammar.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::exit;
use crate::printer::Printer;

pub fn run(args: &CompletionsArgs, printer: &Printer) -> anyhow::Result<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "ferry", &mut out);
    printer.data(String::from_utf8_lossy(&out))?;
    Ok(exit::OK)
}
