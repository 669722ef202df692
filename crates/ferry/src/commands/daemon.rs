//! `ferry serve` (the daemon in the foreground) and its thin clients: `ferry deploy`,
//! `status`, `history`, `promote`, `pause`, `resume`, `abort` and `rollback`.

use std::path::PathBuf;
use std::time::Duration;

use ferry_daemon::protocol::{AppStatus, DeployRequest, PromoteRequest, RevisionDetail};
use ferry_daemon::{Client, DaemonError};

use super::build;
use super::live::{self, Target};
use crate::cli::{
    DaemonArgs, DeployArgs, Global, HistoryArgs, PromoteArgs, ServeArgs, StatusArgs, StopArgs,
};
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
        takeover: args.takeover,
        webhook_ca: args.webhook_ca.clone(),
    };
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let pid_file = config.state_dir.join(PID_FILE);
        let result = ferry_daemon::serve(config, |started| {
            // For `ferry serve stop`; written once the daemon listens.
            let _ = std::fs::write(&pid_file, format!("{}\n", std::process::id()));
            let _ = printer.line(format!(
                "ferry daemon: proxy on http://{}/, API on http://{} (token in {})",
                started.proxy,
                started.api,
                started.token_file.display()
            ));
        })
        .await;
        if read_pid(&pid_file) == Some(std::process::id()) {
            let _ = std::fs::remove_file(&pid_file);
        }
        match result {
            Ok(()) => Ok(exit::OK),
            Err(DaemonError::Engine(e)) if e.is_unreachable() => {
                Err(Expected::EngineUnreachable { source: e.into() }.into())
            }
            Err(e) => Err(e.into()),
        }
    })
}

/// The file in the state directory holding the running daemon's process id.
const PID_FILE: &str = "daemon.pid";

fn read_pid(path: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether `pid` is a live (not zombie) `ferry serve` process.
fn is_ferry_daemon(pid: u32) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let cmdline = std::fs::read(proc.join("cmdline")).unwrap_or_default();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let zombie = std::fs::read_to_string(proc.join("stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true);
    !zombie && args.contains(&b"serve".as_slice())
}

/// `ferry serve stop [--remove-containers]`: SIGTERM to the daemon of the state directory
/// (it finishes the requests in flight), then optionally its containers and networks.
pub fn stop(args: &StopArgs, global: &Global, printer: &Printer) -> anyhow::Result<u8> {
    let state = args
        .state
        .clone()
        .unwrap_or_else(|| default_state_dir(global));
    let pid_file = state.join(PID_FILE);
    match read_pid(&pid_file) {
        Some(pid) if is_ferry_daemon(pid) => {
            let sent = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .map_err(|e| Expected::Failed(format!("cannot run `kill`: {e}")))?;
            if !sent.success() {
                return Err(
                    Expected::Failed(format!("cannot signal the daemon (pid {pid})")).into(),
                );
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while is_ferry_daemon(pid) {
                if std::time::Instant::now() > deadline {
                    return Err(Expected::Failed(format!(
                        "the daemon (pid {pid}) did not stop within 60 s; `kill -9 {pid}` ends it \
                         (a restart recovers its state)"
                    ))
                    .into());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = std::fs::remove_file(&pid_file);
            printer.line(format!("stopped the ferry daemon (pid {pid})"))?;
        }
        _ => {
            let _ = std::fs::remove_file(&pid_file);
            printer.line(format!(
                "no ferry daemon is running for {}",
                state.display()
            ))?;
        }
    }
    if args.remove_containers {
        let runtime = super::runtime()?;
        let removed = runtime.block_on(remove_daemon_containers(&state))?;
        if removed.is_empty() {
            printer.line("no containers of this daemon to remove")?;
        } else {
            printer.line(format!("removed {}", removed.join(", ")))?;
        }
    }
    Ok(exit::OK)
}

/// Stops and removes every container labelled with this state directory's daemon id,
/// then the networks of their app+env.
async fn remove_daemon_containers(state: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let engine = build::connect().await?;
    let id = ferry_daemon::daemon_id(state);
    let containers = engine
        .list_containers(&[(ferry_daemon::LABEL_DAEMON, id.as_str())])
        .await?;
    let mut removed = Vec::new();
    let mut networks = std::collections::BTreeSet::new();
    for c in containers {
        if let (Some(app), Some(env)) = (
            c.labels.get(ferry_engine::LABEL_APP),
            c.labels.get(ferry_engine::LABEL_ENV),
        ) {
            networks.insert(ferry_engine::network_name(app, env));
        }
        engine
            .stop_and_remove(&c.id, Duration::from_secs(10))
            .await?;
        removed.push(c.name);
    }
    for network in networks {
        engine.remove_network(&network).await?;
    }
    Ok(removed)
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
    let mut child = std::process::Command::new("setsid")
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
    std::fs::write(state.join(PID_FILE), format!("{pid}\n"))?;
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
        // `setsid` execs in place: the child exiting is the daemon exiting.
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || std::time::Instant::now() > deadline {
            let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            let what = exited.map_or_else(
                || "did not answer within 30 s".to_owned(),
                |s| format!("exited ({s})"),
            );
            return Err(Expected::Failed(format!(
                "the started daemon {what}; last lines of {}:\n  {}",
                log_path.display(),
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
            None if project.spec.build.is_none() => {
                return Err(Expected::Usage(format!(
                    "{} names neither `image` nor `[build]`: nothing to deploy; pass \
                     `ferry deploy --image REF`, or add `image = \"registry/app:tag\"` or \
                     `[build]` (context = \".\") to it",
                    project.config_path.display()
                ))
                .into());
            }
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

/// Follows the rollout live until it ends; 0 when the new revision is fully live.
async fn follow(
    client: &Client,
    app: &str,
    env: &str,
    rollout: i64,
    printer: &Printer,
) -> anyhow::Result<u8> {
    let ended = match live::follow(client, app, env, Target::Rollout(rollout), printer).await {
        Ok(ended) => ended?,
        Err(e) => return daemon_failure(e, printer),
    };
    let r = &ended.rollout;
    let promoted = r.outcome.as_ref().is_some_and(|o| o.is_success());
    let urls = ended.status.urls.join(", ");
    result_event(&ended, promoted, printer)?;
    if promoted {
        printer.line(format!(
            "revision {} of {app} ({env}) is live at {urls} ({} s)",
            r.revision,
            ended.elapsed.as_secs()
        ))?;
        return Ok(exit::OK);
    }
    Err(Expected::Failed(match &r.outcome {
        Some(ferry_rollout::Outcome::RolledBack { reason })
        | Some(ferry_rollout::Outcome::Aborted { reason }) => {
            format!("revision {} was rolled back: {reason}", r.revision)
        }
        _ => format!("revision {} did not go live", r.revision),
    })
    .into())
}

/// The last NDJSON event of a followed rollout (`--output json` only).
fn result_event(ended: &live::Ended, ok: bool, printer: &Printer) -> anyhow::Result<()> {
    if !printer.json_output() {
        return Ok(());
    }
    let r = &ended.rollout;
    printer.event(&serde_json::json!({
        "event": "result",
        "ok": ok,
        "rollout": r.id,
        "revision": r.revision,
        "from": r.from,
        "strategy": r.strategy,
        "outcome": r.outcome,
        "stable": ended.status.stable,
        "urls": ended.status.urls,
        "elapsed_ms": u64::try_from(ended.elapsed.as_millis()).unwrap_or(u64::MAX),
    }))
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
    for w in &status.warm {
        printer.line(format!(
            "  warm:    revision {} ({} replica(s) out of traffic until {}; `ferry rollback` \
             switches back at once)",
            w.revision, w.replicas, w.until
        ))?;
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

pub fn status(args: &StatusArgs, global: &Global, printer: &Printer) -> anyhow::Result<u8> {
    let (project, client) = match load_client(&args.daemon, global, printer)? {
        Ok(pc) => pc,
        Err(code) => return Ok(code),
    };
    let runtime = super::runtime()?;
    let app = project.spec.app.as_str();
    let env = project.env_name();
    runtime.block_on(async {
        if args.watch {
            return match live::watch(&client, app, env, args.timeout, printer).await {
                Ok(shown) => shown.map(|()| exit::OK),
                Err(e) => daemon_failure(e, printer),
            };
        }
        match client.status(app, env).await {
            Ok(s) => {
                print_status(&s, printer)?;
                Ok(exit::OK)
            }
            Err(e) => daemon_failure(e, printer),
        }
    })
}

pub fn history(args: &HistoryArgs, global: &Global, printer: &Printer) -> anyhow::Result<u8> {
    let (project, client) = match load_client(&args.daemon, global, printer)? {
        Ok(pc) => pc,
        Err(code) => return Ok(code),
    };
    let runtime = super::runtime()?;
    runtime.block_on(async {
        if let Some(number) = args.rev {
            return match client
                .revision(project.spec.app.as_str(), project.env_name(), number)
                .await
            {
                Ok(detail) => {
                    print_revision(&detail, printer)?;
                    Ok(exit::OK)
                }
                Err(e) => daemon_failure(e, printer),
            };
        }
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

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// `ferry history --rev N`.
fn print_revision(detail: &RevisionDetail, printer: &Printer) -> anyhow::Result<()> {
    if printer.json_output() {
        return printer.json(&serde_json::to_value(detail)?);
    }
    let r = &detail.revision;
    let none = || "unknown".to_owned();
    printer.line(format!("revision {} of {} ({})", r.number, r.app, r.env))?;
    printer.line(format!("  status:    {}", r.status))?;
    if let Some(reason) = &r.reason {
        printer.line(format!("  reason:    {reason}"))?;
    }
    printer.line(format!("  image:     {}", r.image))?;
    printer.line(format!(
        "  image id:  {}",
        r.image_id.clone().unwrap_or_else(none)
    ))?;
    printer.line(format!(
        "  digest:    {}",
        r.image_digest.clone().unwrap_or_else(none)
    ))?;
    printer.line(format!("  spec hash: {}", r.spec_hash))?;
    printer.line(format!(
        "  git sha:   {}",
        r.git_sha.clone().unwrap_or_else(none)
    ))?;
    printer.line(format!("  by:        {}", r.created_by))?;
    printer.line(format!("  created:   {}", rfc3339(r.created_at)))?;
    if detail.rollouts.is_empty() {
        printer.line("  no rollout recorded")?;
    }
    for record in &detail.rollouts {
        let o = &record.rollout;
        let from = o
            .from_revision
            .map_or_else(|| "none".to_owned(), |f| format!("revision {f}"));
        let outcome = o
            .outcome
            .map_or_else(|| "unfinished".to_owned(), |x| x.to_string());
        printer.line(format!(
            "  rollout {} ({}, from {from}, by {}): {outcome}{}",
            o.id.get(),
            o.strategy,
            o.created_by,
            o.reason
                .as_ref()
                .map_or_else(String::new, |why| format!(" ({why})"))
        ))?;
        let finished = o.finished_at.map_or_else(|| "-".to_owned(), rfc3339);
        printer.line(format!(
            "    started {}, finished {finished}",
            rfc3339(o.started_at)
        ))?;
        for event in &record.events {
            let message = match event.message.get("text").and_then(|t| t.as_str()) {
                Some(text) => text.to_owned(),
                None => event.message.to_string(),
            };
            let message = message.replace('\n', "\n      ");
            printer.line(format!(
                "    {} {}: {message}",
                rfc3339(event.at),
                event.kind
            ))?;
        }
        for verdict in &record.verdicts {
            let text = verdict.explanation.replace('\n', "\n      ");
            printer.line(format!(
                "    analysis (step {}, {}): {text}",
                verdict.step,
                rfc3339(verdict.at)
            ))?;
        }
    }
    Ok(())
}

/// `promote`, `pause`, `resume`, `abort`, `rollback`: one POST to the running rollout.
/// `rollback` then follows the rollback live until it is done (unless `--detach`); the
/// others do with `--wait`.
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
    let app = project.spec.app.as_str();
    let env = project.env_name();
    let wait = if action == "rollback" {
        !args.detach
    } else {
        args.wait
    };
    let runtime = super::runtime()?;
    runtime.block_on(async {
        // What runs before the action tells which rollout to follow after it.
        let before = match client.status(app, env).await {
            Ok(s) => s.rollout,
            Err(e) => return daemon_failure(e, printer),
        };
        let body = PromoteRequest {
            full: args.full,
            to: args.to,
        };
        let ack = match client.action(app, env, action, &body).await {
            Ok(ack) => ack,
            Err(e) => return daemon_failure(e, printer),
        };
        if printer.json_output() {
            printer.event(&serde_json::json!({
                "event": "accepted",
                "message": ack.message,
                "rollout": ack.rollout,
                "revision": ack.revision,
                "warm": ack.warm,
            }))?;
        } else {
            printer.line(&ack.message)?;
        }
        if !wait {
            return Ok(exit::OK);
        }
        let running = before.as_ref().filter(|r| !r.finished).map(|r| r.id);
        let target = match (running, ack.rollout) {
            (Some(id), _) => Target::Rollout(id),
            // A rollback with nothing running starts a new rollout: the ack names it.
            (None, Some(id)) => Target::Rollout(id),
            (None, None) => Target::After(before.as_ref().map(|r| r.id)),
        };
        let ended = match live::follow(&client, app, env, target, printer).await {
            Ok(ended) => ended?,
            Err(e) => return daemon_failure(e, printer),
        };
        let r = &ended.rollout;
        let returned = if running.is_some() && (action == "rollback" || action == "abort") {
            // The running rollout was sent back or aborted: its end is what was asked.
            r.outcome.is_some()
        } else {
            r.outcome.as_ref().is_some_and(|o| o.is_success())
        };
        result_event(&ended, returned, printer)?;
        let urls = ended.status.urls.join(", ");
        let live = ended
            .status
            .stable
            .map_or_else(|| "no revision".to_owned(), |s| format!("revision {s}"));
        if returned {
            printer.line(format!(
                "{live} of {app} ({env}) is live at {urls} ({} s)",
                ended.elapsed.as_secs()
            ))?;
            return Ok(exit::OK);
        }
        Err(Expected::Failed(match &r.outcome {
            Some(ferry_rollout::Outcome::RolledBack { reason })
            | Some(ferry_rollout::Outcome::Aborted { reason }) => {
                format!(
                    "rollout {} ended without going live: {reason} ({live} serves)",
                    r.id
                )
            }
            _ => format!("rollout {} did not go live ({live} serves)", r.id),
        })
        .into())
    })
}
