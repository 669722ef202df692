//! One module per subcommand; `dispatch` wires parsed arguments to them.

mod build;
mod check;
mod completions;
mod config;
mod daemon;
mod healthcheck;
mod init;
mod live;
mod lock;
mod logs;
mod proxy;
mod render;
mod run;
mod secrets;

use crate::cli::{Cli, Command, ServeCommand};
use crate::printer::Printer;

/// Runs the command and returns its exit code; errors carry their own code.
pub fn dispatch(cli: Cli, printer: &Printer) -> anyhow::Result<u8> {
    let global = &cli.global;
    match &cli.command {
        Command::Init(args) => init::run(args, printer),
        Command::Healthcheck(args) => healthcheck::run(args, printer),
        Command::Completions(args) => completions::run(args, printer),
        Command::Config(command) => config::run(command, global, printer),
        Command::Build(args) => build::run(args, global, printer),
        Command::Builds(args) => build::list(args, global, printer),
        Command::Check(args) => check::run(args, global, printer),
        Command::Run(args) => run::run(args, global, printer),
        Command::Down => run::down(global, printer),
        Command::Logs(args) => logs::run(args, global, printer),
        Command::Lock(command) => lock::run(command, global, printer),
        Command::Secrets(command) => secrets::run(command, global, printer),
        Command::Proxy(args) => proxy::run(args, printer),
        Command::Serve(args) => match &args.command {
            Some(ServeCommand::Stop(stop)) => daemon::stop(stop, global, printer),
            None => daemon::serve(args, global, printer),
        },
        Command::Deploy(args) => daemon::deploy(args, global, printer),
        Command::Status(args) => daemon::status(args, global, printer),
        Command::History(args) => daemon::history(args, global, printer),
        Command::Promote(args) => daemon::action("promote", args, global, printer),
        Command::Pause(args) => daemon::action("pause", args, global, printer),
        Command::Resume(args) => daemon::action("resume", args, global, printer),
        Command::Abort(args) => daemon::action("abort", args, global, printer),
        Command::Rollback(args) => daemon::action("rollback", args, global, printer),
        Command::Render(args) => render::run(args, global, printer),
    }
}

/// The async runtime for commands that talk to the engine, the store or the network.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
