//! A minimal command line over the library, for benchmarks and manual checks (the real CLI
//! is `ferry check`). Usage: `ferry-check [--format text|json|sarif|github] [--runs N] PATHS...`; with
//! `--runs N` the check repeats N times and the in-process min/median time goes to stderr.
#![expect(clippy::print_stdout, reason = "an example binary prints its report")]
#![expect(clippy::print_stderr, reason = "an example binary prints its errors")]

use ferry_check::{CheckOptions, check_paths, output};
use std::path::PathBuf;

fn main() -> std::process::ExitCode {
    let mut format = "text".to_string();
    let mut runs = 1usize;
    let mut paths = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--format" => format = args.next().unwrap_or_default(),
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).unwrap_or(1),
            _ => paths.push(PathBuf::from(a)),
        }
    }
    let opts = CheckOptions::default();
    let mut report = None;
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let t0 = std::time::Instant::now();
        let result = check_paths(&paths, &opts);
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        match result {
            Ok(r) => report = Some(r),
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let Some(report) = report else {
        return std::process::ExitCode::from(2);
    };
    if runs > 1 {
        times.sort_by(f64::total_cmp);
        eprintln!(
            "in-process over {runs} runs: min {:.2} ms, median {:.2} ms",
            times[0],
            times[times.len() / 2]
        );
    }
    match format.as_str() {
        "json" => println!("{}", output::to_json(&report)),
        "sarif" => println!("{}", output::to_sarif(&report)),
        "github" => print!("{}", output::to_github(&report)),
        _ => print!("{}", output::to_text(&report)),
    }
    if report.max_severity() == Some(ferry_check::Severity::Error) {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    }
}
