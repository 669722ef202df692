//! `ferry serve` (the daemon in the foreground) and its thin clients: `ferry deploy`,
//! `status`, `history`, `promote`, `pause`, `resume`, `abort` and `rollback`.

use std::path::PathBuf;
use std::time::Duration;

use ferry_daemon::protocol::{AppStatus, DeployRequest, PromoteRequest};
use ferry_daemon::{Client, DaemonError};

use super::build;
use crate::cli::{DaemonArgs, DeployArgs, Global, PromoteArgs, ServeArgs};
use crate::error::Expected;
use crate::exit;
use crate::printer::Printer;
use crate::project::{self, Project};

/// `<dir of ferry.toml>/.ferry/daemon`, or `./.ferry/daemon` without a ferry.toml.
fn default_state_dir(global: &Global) -> PathBuf {
    let base = project::find_config(global)
        .ok()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    base.join(".ferry").join("daemon")
}

fn state_dir(args: &DaemonArgs, global: &Global) -> PathBuf {
    args.state
        .clone()
        .unwrap_or_else(|| default_state_dir(global))
}

pub fn serve(args: &ServeArgs, global: &Global, printer: &Printer) -> anyhow::Result<u8> {
    let state = args
        .state
        .clone()
        .unwrap_or_else(|| default_state_dir(global));
    let config = ferry_daemon::Config {
        listen: args.listen,
        api: args.api,
        state_dir: state,
        store: args.store.clone(),
    };
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let result = ferry_daemon::serve(config, |started| {
            let _ = printer.line(format!(
                "ferry daemon: proxy on http://{}/, API on http://{} (token in {})",
                started.proxy,
                started.api,
                started.token_file.display()
            ));
        })
        .await;
        match result {
            Ok(()) => Ok(exit::OK),
            Err(DaemonError::Engine(e)) if e.is_unreachable() => {
                Err(Expected::EngineUnreachable { source: e.into() }.into())
            }
            Err(e) => Err(e.into()),
        }
    })
}

/// A client of the daemon for this project: API address and token from the flags,
/// `FERRY_API` / `FERRY_TOKEN`, or the files the daemon wrote into its state directory.
fn client(args: &DaemonArgs, global: &Global) -> Result<Client, String> {
    let state = state_dir(args, global);
    let api = args.api.clone().unwrap_or_else(|| {
        std::fs::read_to_string(state.join(ferry_daemon::API_ADDR_FILE))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| ferry_daemon::DEFAULT_API.to_owned())
    });
    let token = match std::env::var("FERRY_TOKEN") {
        Ok(t) if !t.is_empty() => t,
        _ => ferry_daemon::token::read(&state).map_err(|_| {
            format!(
                "no ferry daemon token in {} (is a daemon running for this project?)",
                state.display()
            )
        })?,
    };
    Ok(Client::new(&api, token))
}

/// Exit 3 with a hint naming `ferry serve` when no daemon answers; other errors fail.
fn daemon_failure(err: DaemonError, printer: &Printer) -> anyhow::Result<u8> {
    if err.is_unreachable() {
        unreachable_daemon(&err.to_string(), printer)
    } else {
        Err(Expected::Failed(err.to_string()).into())
    }
}

fn unreachable_daemon(message: &str, printer: &Printer) -> anyhow::Result<u8> {
    printer.error(message);
    printer.hint(
        "start the daemon with `ferry serve` (in another terminal or as a service; \
         see docs/deploy.md), pass `ferry deploy --start-daemon`, or point --api / \
         FERRY_API at a running one",
    );
    Ok(exit::UNREACHABLE)
}

fn load_client(
    args: &DaemonArgs,
    global: &Global,
    printer: &Printer,
) -> anyhow::Result<Result<(Project, Client), u8>> {
    let project = project::load(global, printer)?;
    match client(args, global) {
        Ok(c) => Ok(Ok((project, c))),
        Err(message) => Ok(Err(unreachable_daemon(&message, printer)?)),
    }
}

/// Starts `ferry serve` for this project in the background, detached from the terminal
/// (`setsid`), and waits until its API answers.
async fn start_daemon(
    args: &DeployArgs,
    global: &Global,
    project: &Project,
    printer: &Printer,
) -> anyhow::Result<Client> {
    let state = state_dir(&args.daemon, global);
    std::fs::create_dir_all(&state)?;
    let log_path = state.join("daemon.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let exe = std::env::current_exe()?;
    // A stale address file would point the client at a dead daemon.
    let _ = std::fs::remove_file(state.join(ferry_daemon::API_ADDR_FILE));
    let child = std::process::Command::new("setsid")
        .arg(exe)
        .arg("--config")
        .arg(&project.config_path)
        .args(["serve", "--api", "127.0.0.1:0", "--listen"])
        .arg(args.daemon_listen.to_string())
        .arg("--state")
        .arg(&state)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .map_err(|e| Expected::Failed(format!("cannot start `ferry serve`: {e}")))?;
    let pid = child.id();
    std::fs::write(state.join("daemon.pid"), format!("{pid}\n"))?;
    printer.status(format!(
        "started a ferry daemon for this project (pid {pid}, log {})",
        log_path.display()
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(client) = client(&args.daemon, global)
            && client
                .status(project.spec.app.as_str(), project.env_name())
                .await
                .is_ok()
        {
            return Ok(client);
        }
        if std::time::Instant::now() > deadline {
            let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            return Err(Expected::Failed(format!(
                "the started daemon did not answer within 30 s; last log lines:\n  {}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n  ")
            ))
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn deploy(args: &DeployArgs, global: &Global, printer: &Printer) -> anyhow::Result<u8> {
    let project = project::load(global, printer)?;
    let app = project.spec.app.as_str().to_owned();
    let env = project.env_name().to_owned();
    let runtime = super::runtime()?;
    runtime.block_on(async {
        // Fail (or start a daemon) before building when nobody is listening.
        let mut down = None;
        let mut found = None;
        match client(&args.daemon, global) {
            Ok(c) => match c.status(&app, &env).await {
                Ok(_) => found = Some(c),
                Err(e) if e.is_unreachable() => down = Some(e.to_string()),
                Err(e) => return daemon_failure(e, printer),
            },
            Err(message) => down = Some(message),
        }
        let client = match (found, down) {
            (Some(c), _) => c,
            (None, _) if args.start_daemon => start_daemon(args, global, &project, printer).await?,
            (None, message) => return unreachable_daemon(&message.unwrap_or_default(), printer),
        };
        let image = match args.image.clone().or_else(|| project.spec.image.clone()) {
            Some(image) => image,
            None => {
                let engine = build::connect().await?;
                let built = build::build(&project, &args.build, &engine, printer).await?;
                build::record_build(&project, &built).await?;
                printer.status(format!("built {}", built.tag));
                built.tag
            }
        };
        let request = DeployRequest {
            app: app.clone(),
            env: env.clone(),
            image: image.clone(),
            spec: serde_json::to_value(&project.spec)?,
            git_sha: None,
            created_by: std::env::var("USER").ok(),
        };
        let accepted = match client.deploy(&request).await {
            Ok(a) => a,
            Err(e) => return daemon_failure(e, printer),
        };
        let from = accepted.from.map_or_else(
            || "first deploy".to_owned(),
            |f| format!("from revision {f}"),
        );
        if printer.json_output() {
            printer.event(&serde_json::json!({
                "event": "accepted",
                "rollout": accepted.rollout,
                "revision": accepted.revision,
                "from": accepted.from,
                "strategy": accepted.strategy,
                "image": image,
            }))?;
        } else {
            printer.line(format!(
                "deploying {app} ({env}) revision {} ({from}, {}) from {image}",
                accepted.revision, accepted.strategy
            ))?;
        }
        if args.detach {
            return Ok(exit::OK);
        }
        follow(&client, &app, &env, accepted.rollout, printer).await
    })
}

/// Polls the status until the rollout ends, printing each change; 0 when promoted.
async fn follow(
    client: &Client,
    app: &str,
    env: &str,
    rollout: i64,
    printer: &Printer,
) -> anyhow::Result<u8> {
    let mut last = String::new();
    loop {
        let status = match client.status(app, env).await {
            Ok(s) => s,
            Err(e) => return daemon_failure(e, printer),
        };
        if let Some(r) = status.rollout.filter(|r| r.id == rollout) {
            if r.summary != last {
                if printer.json_output() {
                    printer.event(&serde_json::json!({ "event": "progress", "rollout": r }))?;
                } else {
                    printer.line(&r.summary)?;
                }
                last = r.summary.clone();
            }
            if r.finished {
                return match r.outcome {
                    Some(o) if o.is_success() => {
                        if !printer.json_output() {
                            printer.line(format!(
                                "revision {} of {app} is live at {}",
                                r.revision,
                                status.urls.join(", ")
                            ))?;
                        }
                        Ok(exit::OK)
                    }
                    Some(ferry_rollout::Outcome::RolledBack { reason })
                    | Some(ferry_rollout::Outcome::Aborted { reason }) => Err(Expected::Failed(
                        format!("revision {} was rolled back: {reason}", r.revision),
                    )
                    .into()),
                    _ => Err(
                        Expected::Failed(format!("revision {} did not go live", r.revision)).into(),
                    ),
                };
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn print_status(status: &AppStatus, printer: &Printer) -> anyhow::Result<()> {
    if printer.json_output() {
        return printer.json(&serde_json::to_value(status)?);
    }
    printer.line(format!("{} ({})", status.app, status.env))?;
    printer.line(format!("  urls:    {}", status.urls.join(", ")))?;
    printer.line(format!(
        "  stable:  {}",
        status
            .stable
            .map_or_else(|| "none".to_owned(), |s| format!("revision {s}"))
    ))?;
    if let Some(c) = status.canary {
        printer.line(format!("  canary:  revision {c}"))?;
    }
    if let Some(r) = &status.rollout {
        printer.line(format!(
            "  rollout {} to revision {} ({}): {}",
            r.id, r.revision, r.strategy, r.summary
        ))?;
        printer.line(format!("  weights: {}", r.weights))?;
        for verdict in &r.analysis {
            printer.line(format!("  analysis: {verdict}"))?;
        }
    }
    Ok(())
}

pub fn status(args: &DaemonArgs, global: &Global, printer: &Printer) -> anyhow::Result<u8> {
    let (project, client) = match load_client(args, global, printer)? {
        Ok(pc) => pc,
        Err(code) => return Ok(code),
    };
    let runtime = super::runtime()?;
    runtime.block_on(async {
        match client
            .status(project.spec.app.as_str(), project.env_name())
            .await
        {
            Ok(s) => {
                print_status(&s, printer)?;
                Ok(exit::OK)
            }
            Err(e) => daemon_failure(e, printer),
        }
    })
}

pub fn history(args: &DaemonArgs, global: &Global, printer: &Printer) -> anyhow::Result<u8> {
    let (project, client) = match load_client(args, global, printer)? {
        Ok(pc) => pc,
        Err(code) => return Ok(code),
    };
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let revisions = match client
            .history(project.spec.app.as_str(), project.env_name())
            .await
        {
            Ok(r) => r,
            Err(e) => return daemon_failure(e, printer),
        };
        if printer.json_output() {
            printer.json(&serde_json::to_value(&revisions)?)?;
            return Ok(exit::OK);
        }
        if revisions.is_empty() {
            printer.line("no revisions yet")?;
        }
        for r in &revisions {
            printer.line(format!(
                "#{:<4} {:<12} {:<40} {}{}",
                r.number,
                r.status,
                r.image,
                r.created_by,
                r.reason
                    .as_ref()
                    .map_or_else(String::new, |why| format!("  ({why})"))
            ))?;
        }
        Ok(exit::OK)
    })
}

/// `promote`, `pause`, `resume`, `abort`, `rollback`: one POST to the running rollout.
pub fn action(
    action: &str,
    args: &PromoteArgs,
    global: &Global,
    printer: &Printer,
) -> anyhow::Result<u8> {
    let (project, client) = match load_client(&args.daemon, global, printer)? {
        Ok(pc) => pc,
        Err(code) => return Ok(code),
    };
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let body = PromoteRequest {
            full: args.full,
            to: args.to,
        };
        match client
            .action(project.spec.app.as_str(), project.env_name(), action, &body)
            .await
        {
            Ok(ack) => {
                if printer.json_output() {
                    printer.json(&serde_json::to_value(&ack)?)?;
                } else {
                    printer.line(ack.message)?;
                }
                Ok(exit::OK)
            }
            Err(e) => daemon_failure(e, printer),
        }
    })
}
