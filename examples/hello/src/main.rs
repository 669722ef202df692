//! ferry's demo service: a small HTTP server whose behaviour is set by environment variables.
//!
//! `hello` serves; `hello healthcheck [URL]` probes a running instance (exit 0 on 2xx) so a
//! FROM scratch image can declare a HEALTHCHECK; `hello migrate` is a one-off job (a
//! deploy hook) and `hello worker` a worker role, for ferry's tests and demos.
#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a service binary: its log is stdout and stderr"
)]

mod config;
mod faults;
mod healthcheck;
mod http;
mod server;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use config::Config;
use server::Server;

/// How long in-flight requests get to finish after SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => serve(),
        Some("healthcheck") => healthcheck(args.get(1).map(String::as_str)),
        Some("migrate") => migrate(),
        Some("worker") => {
            let version = std::env::var("VERSION").unwrap_or_else(|_| "dev".to_owned());
            println!("hello worker {version} started (serving /health for the HEALTHCHECK)");
            serve()
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("-V" | "--version") => {
            println!("hello {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("hello: unknown argument {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

const USAGE: &str =
    "usage: hello                     serve HTTP (configured by environment variables)
       hello healthcheck [URL]   GET URL (default http://127.0.0.1:$PORT/health); exit 0 on 2xx
       hello migrate             a one-off job: print what it does, exit 1 when MIGRATE=fail
       hello worker              a worker role: log that it started, then serve as usual

environment: VERSION, PORT (8080), FAIL_RATE (0..1), LATENCY_MS, LATENCY_JITTER_MS,
             HEALTH=fail, STARTUP_DELAY_MS, READY_DELAY_MS, CRASH_AFTER_S, ALLOC_MB";

fn healthcheck(url: Option<&str>) -> ExitCode {
    let url = url.map_or_else(
        || {
            let port = std::env::var("PORT").unwrap_or_else(|_| "8080".to_owned());
            format!("http://127.0.0.1:{port}/health")
        },
        str::to_owned,
    );
    match healthcheck::check(&url, Duration::from_secs(3)) {
        Ok(status) => {
            println!("healthy: {url} answered {status}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A pretend database migration: says which version runs it and which secret files it can
/// read (names only), then exits 0, or 1 when `MIGRATE=fail`.
fn migrate() -> ExitCode {
    let version = std::env::var("VERSION").unwrap_or_else(|_| "dev".to_owned());
    println!("hello migrate {version}: applying migrations");
    let dir = std::env::var("SECRETS_DIR").unwrap_or_else(|_| "/run/secrets".to_owned());
    let names = server::readable_secrets(std::path::Path::new(&dir));
    println!(
        "hello migrate {version}: secret files readable: [{}]",
        names.join(", ")
    );
    if std::env::var("MIGRATE").is_ok_and(|v| v.trim() == "fail") {
        eprintln!(
            "hello migrate {version}: migration 0002 failed: relation is locked (MIGRATE=fail)"
        );
        return ExitCode::FAILURE;
    }
    println!("hello migrate {version}: done");
    ExitCode::SUCCESS
}

fn serve() -> ExitCode {
    let config = match Config::from_lookup(|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hello: bad configuration: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(after) = config.crash_after {
        thread::spawn(move || {
            thread::sleep(after);
            eprintln!("hello: crashing on purpose (CRASH_AFTER_S)");
            std::process::exit(1);
        });
    }
    let _ballast = ballast(config.alloc_mb);
    // Register signals before the startup delay so an early SIGTERM is not lost.
    let mut signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hello: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !config.startup_delay.is_zero() {
        thread::sleep(config.startup_delay);
        if signals.pending().next().is_some() {
            return ExitCode::SUCCESS;
        }
    }
    let hostname = hostname();
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.port));
    let version = config.version.clone();
    let server = match Server::bind(addr, config, hostname.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hello: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = server.handle();
    thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            println!("hello: signal {sig}, draining");
            handle.shutdown();
        }
    });
    let bound = server.local_addr().unwrap_or(addr);
    println!("hello {version} on {hostname} listening on {bound}");
    if server.run(DRAIN_TIMEOUT) {
        println!("hello: stopped");
    } else {
        eprintln!("hello: drain timeout, exiting with requests in flight");
    }
    ExitCode::SUCCESS
}

/// `ALLOC_MB`: memory that is really used (every page written), held until exit.
fn ballast(mb: u32) -> Vec<u8> {
    let mut v = vec![0u8; usize::try_from(mb).unwrap_or(0) << 20];
    for byte in v.iter_mut().step_by(4096) {
        *byte = 1;
    }
    // Keep the optimiser from eliding writes nobody reads.
    std::hint::black_box(v)
}

/// The kernel's hostname (the container id in Docker), without libc.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}
