//! One module per subcommand; `dispatch` wires parsed arguments to them.

mod completions;
mod healthcheck;
mod init;

use crate::cli::{Cli, Command};
use crate::printer::Printer;

/// Runs the command and returns its exit code; errors carry their own code.
pub fn dispatch(cli: Cli, printer: &Printer) -> anyhow::Result<u8> {
    let global = &cli.global;
    let _ = global;
    match &cli.command {
        Command::Init(args) => init::run(args, printer),
        Command::Healthcheck(args) => healthcheck::run(args, printer),
        Command::Completions(args) => completions::run(args, printer),
        _ => anyhow::bail!("not wired yet"),
    }
}
