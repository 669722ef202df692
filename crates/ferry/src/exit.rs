//! The documented exit codes; the only place that knows their numbers.

use std::process::ExitCode;

/// The operation succeeded.
pub const OK: u8 = 0;
/// The operation ran and failed: findings, a failed build, a rolled-back deploy.
pub const FAILED: u8 = 1;
/// The command line or the configuration is wrong; nothing was done.
pub const USAGE: u8 = 2;
/// The Docker engine or the ferry daemon (`ferry serve`) could not be reached.
pub const UNREACHABLE: u8 = 3;

pub fn code(n: u8) -> ExitCode {
    ExitCode::from(n)
}
