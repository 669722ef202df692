//! Developer tasks that mirror CI. `cargo xtask test` is the one test command:
//! it installs the real peers the tests use (Debian and PyPI packages listed in
//! `xtask/deps/`), starts PostgreSQL, then runs every gate CI runs and fails
//! at the end if any gate failed, naming each.
#![expect(clippy::print_stderr, reason = "a developer tool that talks on stderr")]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    match args.first().map(String::as_str) {
        Some("test") => test(&root, &args[1..]),
        Some("deps") => match install_deps(&root) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xtask: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!(
                "usage: cargo xtask test [--no-deps] [-- NEXTEST ARGS]\n       cargo xtask deps\n\n\
                 test  install test peers, start PostgreSQL, run fmt, clippy, fuzz-check and nextest\n\
                 deps  only install the test peers (Debian and PyPI packages in xtask/deps/)"
            );
            ExitCode::from(2)
        }
    }
}

fn test(root: &Path, args: &[String]) -> ExitCode {
    let skip_deps = args.iter().any(|a| a == "--no-deps");
    let extra: Vec<String> = args
        .iter()
        .skip_while(|a| *a != "--")
        .skip(1)
        .cloned()
        .collect();
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    let mut failed: Vec<&str> = Vec::new();

    if !skip_deps && let Err(e) = install_deps(root) {
        eprintln!("xtask: installing test peers failed: {e}");
        return ExitCode::FAILURE;
    }
    let pg_url = match start_postgres() {
        Ok(url) => Some(url),
        Err(e) => {
            eprintln!("xtask: PostgreSQL not available: {e}");
            failed.push("postgresql");
            None
        }
    };

    let gate = |name: &str, cmd: &mut Command| -> bool {
        eprintln!("==> {name}");
        let started = std::time::Instant::now();
        let ok = cmd.current_dir(root).status().is_ok_and(|s| s.success());
        eprintln!(
            "==> {name}: {} in {:.0}s",
            if ok { "ok" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
        ok
    };

    if !gate("fmt", cargo().args(["fmt", "--all", "--", "--check"])) {
        failed.push("fmt");
    }
    if !gate(
        "clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    ) {
        failed.push("clippy");
    }
    if root.join("fuzz/Cargo.toml").exists()
        && !gate(
            "fuzz targets compile",
            cargo().args(["check", "--manifest-path", "fuzz/Cargo.toml"]),
        )
    {
        failed.push("fuzz-check");
    }
    let mut nextest = cargo();
    nextest.args([
        "nextest",
        "run",
        "--workspace",
        "--locked",
        "--no-fail-fast",
    ]);
    if ci {
        nextest.args(["--profile", "ci"]);
    }
    nextest.args(&extra);
    if let Some(url) = &pg_url {
        nextest.env("FERRY_TEST_POSTGRES_URL", url);
    }
    if !gate("tests (nextest)", &mut nextest) {
        failed.push("tests");
    }

    if failed.is_empty() {
        eprintln!("xtask: all gates passed");
        ExitCode::SUCCESS
    } else {
        eprintln!("xtask: FAILED gates: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn read_list(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("{cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} exited with {status}"))
    }
}

/// Installs the Debian and PyPI packages in `xtask/deps/`, skipping what is there.
fn install_deps(root: &Path) -> Result<(), String> {
    let debian = read_list(&root.join("xtask/deps/debian.txt"));
    let missing: Vec<&String> = debian
        .iter()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p.as_str()])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if !missing.is_empty() {
        eprintln!("==> apt-get install {}", join(&missing));
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(missing.iter().map(|s| s.as_str()))
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    let pypi = read_list(&root.join("xtask/deps/pypi.txt"));
    if !pypi.is_empty() {
        eprintln!("==> pip install {}", pypi.join(" "));
        run(Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--root-user-action=ignore",
            ])
            .args(&pypi))?;
    }
    Ok(())
}

fn join(items: &[&String]) -> String {
    items
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Starts the Debian PostgreSQL cluster and makes sure the `ferry` role exists.
fn start_postgres() -> Result<String, String> {
    let out = Command::new("pg_lsclusters")
        .arg("--no-header")
        .output()
        .map_err(|e| format!("pg_lsclusters: {e}"))?;
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    let first = listing
        .lines()
        .next()
        .ok_or("no PostgreSQL cluster exists")?;
    let cols: Vec<&str> = first.split_whitespace().collect();
    let (version, cluster, port, status) = match cols.as_slice() {
        [v, c, p, s, ..] => (*v, *c, *p, *s),
        _ => return Err(format!("unexpected pg_lsclusters output: {first}")),
    };
    if status != "online" {
        run(Command::new("pg_ctlcluster").args([version, cluster, "start"]))?;
    }
    let sql = "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ferry') \
               THEN CREATE ROLE ferry LOGIN SUPERUSER PASSWORD 'ferry'; END IF; END $$;";
    run(
        Command::new("runuser").args(["-u", "postgres", "--", "psql", "-q", "-p", port, "-c", sql])
    )?;
    Ok(format!("postgres://ferry:ferry@127.0.0.1:{port}/postgres"))
}
