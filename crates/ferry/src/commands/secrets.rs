//! `ferry secrets set|list|rm`: the app's encrypted secrets for an environment, kept in
//! the daemon's store and sealed with the key file `<state>/secret.key`.
//! Values go in through stdin (or a named environment variable) and never come out.

use std::io::Read;

use anyhow::Context;
use ferry_spec::EnvVarName;
use ferry_store::SecretValue;

use crate::cli::{Global, SecretStoreArgs, SecretsCommand};
use crate::error::Expected;
use crate::exit;
use crate::printer::Printer;
use crate::project;

pub fn run(command: &SecretsCommand, global: &Global, printer: &Printer) -> anyhow::Result<u8> {
    let store_args = match command {
        SecretsCommand::Set(a) => &a.store,
        SecretsCommand::List(a) => a,
        SecretsCommand::Rm(a) => &a.store,
    };
    let name = match command {
        SecretsCommand::Set(a) => Some(valid_name(&a.name)?),
        SecretsCommand::Rm(a) => Some(valid_name(&a.name)?),
        SecretsCommand::List(_) => None,
    };
    // Read the value before anything else touches stdin or the store.
    let value = match command {
        SecretsCommand::Set(a) => Some(read_value(a.from_env.as_deref())?),
        _ => None,
    };
    let project = project::load(global, printer)?;
    let (location, key_file) = locations(store_args, &project);
    let app = project.spec.app.as_str().to_owned();
    let env = project.env_name().to_owned();
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let store = ferry_store::Store::open(&location).await?;
        let secrets = store
            .secrets(&key_file)
            .with_context(|| format!("open the secrets key {}", key_file.display()))?;
        let result = match (command, name, value) {
            (SecretsCommand::Set(_), Some(name), Some(value)) => {
                secrets.set(&app, &env, &name, &value).await?;
                let listed = project.spec.secrets.iter().any(|n| n.as_str() == name);
                if printer.json_output() {
                    printer.json(&serde_json::json!({
                        "app": app, "env": env, "name": name, "set": true, "listed": listed,
                    }))?;
                } else {
                    printer.line(format!("set secret {name} of {app} ({env})"))?;
                    if !listed {
                        printer.hint(format!(
                            "ferry.toml does not list {name} in `secrets`; deploys deliver only listed secrets"
                        ));
                    }
                }
                Ok(exit::OK)
            }
            (SecretsCommand::Rm(_), Some(name), _) => {
                let removed = secrets.remove(&app, &env, &name).await?;
                if printer.json_output() {
                    printer.json(&serde_json::json!({
                        "app": app, "env": env, "name": name, "removed": removed,
                    }))?;
                    Ok(if removed { exit::OK } else { exit::FAILED })
                } else if removed {
                    printer.line(format!("removed secret {name} of {app} ({env})"))?;
                    Ok(exit::OK)
                } else {
                    Err(Expected::Failed(format!("{app} ({env}) has no secret {name}")).into())
                }
            }
            _ => {
                let entries = secrets.list(&app, &env).await?;
                if printer.json_output() {
                    printer.json(&serde_json::to_value(&entries)?)?;
                } else if entries.is_empty() {
                    printer.line(format!("{app} ({env}) has no secrets set"))?;
                } else {
                    for e in &entries {
                        let when = e
                            .updated_at
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_else(|_| e.updated_at.to_string());
                        printer.line(format!("{}  (set {when})", e.name))?;
                    }
                }
                let missing: Vec<&str> = project
                    .spec
                    .secrets
                    .iter()
                    .map(EnvVarName::as_str)
                    .filter(|n| !entries.iter().any(|e| e.name == *n))
                    .collect();
                if !missing.is_empty() {
                    printer.status(format!(
                        "listed in ferry.toml but not set: {} (ferry secrets set NAME)",
                        missing.join(", ")
                    ));
                }
                Ok(exit::OK)
            }
        };
        store.close().await;
        result
    })
}

/// Secret names follow the spec's rule: environment-variable style.
fn valid_name(name: &str) -> anyhow::Result<String> {
    name.parse::<EnvVarName>()
        .map(|n| n.as_str().to_owned())
        .map_err(|_| {
            Expected::Usage(format!(
                "invalid secret name {name:?}: use letters, digits and `_`, not starting with a digit"
            ))
            .into()
        })
}

/// The value from `--from-env VAR`, or else all of stdin minus one trailing newline
/// (so `echo value | ferry secrets set NAME` stores `value`).
fn read_value(from_env: Option<&str>) -> anyhow::Result<SecretValue> {
    let mut bytes = match from_env {
        Some(var) => std::env::var(var)
            .map_err(|_| Expected::Usage(format!("the environment variable {var} is not set")))?
            .into_bytes(),
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("read the secret's value from stdin")?;
            if buf.ends_with(b"\n") {
                buf.pop();
                if buf.ends_with(b"\r") {
                    buf.pop();
                }
            }
            buf
        }
    };
    if bytes.is_empty() {
        return Err(Expected::Usage(
            "the secret's value is empty: pipe it on stdin or use --from-env VAR".to_owned(),
        )
        .into());
    }
    let value = SecretValue::new(std::mem::take(&mut bytes));
    Ok(value)
}

/// The store location and the key file: beside the daemon's state, as `ferry serve` uses them.
fn locations(args: &SecretStoreArgs, project: &project::Project) -> (String, std::path::PathBuf) {
    let state = args
        .state
        .clone()
        .unwrap_or_else(|| project.dir.join(".ferry").join("daemon"));
    let location = args
        .store
        .clone()
        .unwrap_or_else(|| state.join("state.db").display().to_string());
    // Private like the daemon makes it: it holds the key file.
    let created = {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&state)
    };
    if let Err(e) = created {
        tracing::debug!(error = %e, "create the state directory");
    }
    (location, state.join(ferry_daemon::SECRET_KEY_FILE))
}
