//! `ferry lock status|release`: the deploy lock the daemon takes per app and
//! environment, read from (or deleted in) the daemon's store.

use crate::cli::{Global, LockArgs, LockCommand};
use crate::exit;
use crate::printer::Printer;
use crate::project;

pub fn run(command: &LockCommand, global: &Global, printer: &Printer) -> anyhow::Result<u8> {
    let (args, release) = match command {
        LockCommand::Status(args) => (args, false),
        LockCommand::Release(args) => (args, true),
    };
    let project = project::load(global, printer)?;
    let location = store_location(args, &project);
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let store = ferry_store::Store::open(&location).await?;
        let app = project.spec.app.as_str();
        let env = project.env_name();
        let lock = if release {
            store.force_release_lock(app, env).await?
        } else {
            store.lock_status(app, env).await?
        };
        store.close().await;
        if printer.json_output() {
            printer.json(&serde_json::json!({
                "app": app,
                "env": env,
                "released": release && lock.is_some(),
                "lock": lock,
            }))?;
            return Ok(exit::OK);
        }
        match (lock, release) {
            (None, _) => printer.line(format!("{app} ({env}) is not locked"))?,
            (Some(l), true) => printer.line(format!(
                "released the lock of {app} ({env}) held by {} ({})",
                l.holder, l.reason
            ))?,
            (Some(l), false) => {
                printer.line(format!(
                    "{app} ({env}) is locked by {}: {}",
                    l.holder, l.reason
                ))?;
                printer.line(format!(
                    "  since {}, {} {}",
                    l.acquired_at,
                    if l.expired { "lapsed at" } else { "expires at" },
                    l.expires_at
                ))?;
            }
        }
        Ok(exit::OK)
    })
}

fn store_location(args: &LockArgs, project: &project::Project) -> String {
    if let Some(store) = &args.store {
        return store.clone();
    }
    let state = args
        .state
        .clone()
        .unwrap_or_else(|| project.dir.join(".ferry").join("daemon"));
    state.join("state.db").display().to_string()
}
