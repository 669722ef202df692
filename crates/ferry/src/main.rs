//! The `ferry` command line (being written).
use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::SUCCESS
}
