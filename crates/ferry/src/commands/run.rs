//! `ferry run` and `ferry down`: build the image and run the web role hardened and
//! healthy on the local engine, or remove what `run` started.

use std::time::Duration;

use ferry_engine::{
    ContainerSpec, Engine, EngineError, HealthWait, HttpProbe, Identity, LABEL_APP, LABEL_ENV,
    LABEL_ROLE, Publish, Resources, Secret, SecretMode,
};

use super::build;
use crate::cli::{Global, RunArgs};
use crate::error::Expected;
use crate::exit;
use crate::printer::Printer;
use crate::project::{self, Project};

/// Marks containers started by `ferry run` (as opposed to a deploy).
const LABEL_RUN: &str = "ferry.run";

pub fn run(args: &RunArgs, global: &Global, printer: &Printer) -> anyhow::Result<u8> {
    let project = project::load(global, printer)?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let engine = build::connect().await?;
        let web = project.spec.web.clone().ok_or_else(|| {
            Expected::Usage("ferry.toml has no [web] section: nothing to run".to_owned())
        })?;
        let secrets = secret_values(&project)?;
        let image = match &project.spec.image {
            Some(image) => image.clone(),
            None => {
                let built = build::build(&project, &args.build, &engine, printer).await?;
                build::record_build(&project, &built).await?;
                printer.status(format!(
                    "built {} ({}, {} layer(s), {}/{} step(s) cached)",
                    built.tag,
                    build::human_size(built.report.size_bytes),
                    built.report.layers,
                    built.report.steps_cached,
                    built.report.steps_total
                ));
                built.tag
            }
        };
        let revision = image.rsplit(':').next().unwrap_or("unknown").to_owned();
        let app = project.spec.app.as_str();
        let env = project.env_name();
        remove_run_containers(&engine, &project).await?;

        let identity = Identity {
            app: app.to_owned(),
            env: env.to_owned(),
            role: "web".to_owned(),
            revision: revision.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let name = format!("ferry-{app}-{env}-web");
        let mut spec = ContainerSpec::new(&name, &image, identity);
        spec.labels.insert(LABEL_RUN.to_owned(), "true".to_owned());
        spec.command = web.command.clone();
        spec.env = project
            .spec
            .env
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
            .collect();
        spec.secrets = secrets;
        spec.secret_mode = SecretMode::Files {
            dir: project.dir.join(".ferry").join("secrets"),
        };
        spec.resources = resources(&web.resources);
        let security = &project.spec.security;
        spec.allow_root = security.allow_root;
        spec.read_only_root = security.read_only_root_fs;
        spec.cap_add = security.cap_add.clone();
        spec.user = security.user.clone();
        spec.tmpfs = security
            .tmpfs
            .iter()
            .map(|path| (path.clone(), "rw,noexec,nosuid,nodev,size=64m".to_owned()))
            .collect();
        spec.stop_timeout = web.stop_timeout.as_std();
        spec.network = Some(ferry_engine::network_name(app, env));
        spec.aliases = vec![app.to_owned()];
        spec.publish = Some(Publish {
            host_port: args.port,
            ..Publish::loopback(web.port)
        });

        printer.status(format!(
            "starting {name} from {image} (hardened: non-root, read-only root, no capabilities)"
        ));
        let running = engine.run(&spec).await.map_err(|err| match err {
            EngineError::RootRefused { .. } => Expected::Failed(format!(
                "{err}; set `security.allow_root = true` in ferry.toml to allow it explicitly"
            ))
            .into(),
            err => anyhow::Error::new(err),
        })?;
        let addr = running
            .host_addr
            .ok_or_else(|| anyhow::anyhow!("the engine published no port for {name}"))?;
        let probe = web.health.as_ref().map(|h| HttpProbe {
            addr,
            path: h.path.clone(),
            interval: h.interval.as_std().min(Duration::from_secs(1)),
            timeout: h.timeout.as_std(),
            healthy_threshold: h.healthy_threshold.max(1),
            unhealthy_threshold: h.unhealthy_threshold.max(1),
            startup_grace: h.start_period.as_std(),
        });
        let grace = web
            .health
            .as_ref()
            .map_or(Duration::ZERO, |h| h.start_period.as_std());
        let wait = HealthWait {
            timeout: Duration::from_secs(60) + grace,
            probe,
        };
        let spinner = printer.spinner(format!("waiting for {name} to be healthy"));
        let health = engine.wait_healthy(&running.id, &wait).await;
        if let Some(bar) = &spinner {
            bar.finish_and_clear();
        }
        let source = match health {
            Ok(source) => source,
            Err(err) => {
                // Nothing half-applied: an unhealthy container does not stay behind.
                let _ = engine.remove(&running.id, true).await;
                return Err(Expected::Failed(format!("{err}; the container was removed")).into());
            }
        };
        let url = format!("http://{addr}/");
        if printer.json_output() {
            // NDJSON: the build's progress events came before this one.
            printer.event(&serde_json::json!({
                "event": "healthy",
                "app": app,
                "env": env,
                "container": name,
                "image": image,
                "revision": revision,
                "user": running.user,
                "url": url,
                "healthy_by": format!("{source:?}"),
            }))?;
        } else {
            printer.line(format!("{app} is healthy at {url}"))?;
            printer.line(format!(
                "  container {name}, image {image}, user {}",
                running.user
            ))?;
            printer.line(format!(
                "  remove it with: ferry --config {} down",
                project.config_path.display()
            ))?;
        }
        Ok(exit::OK)
    })
}

pub fn down(global: &Global, printer: &Printer) -> anyhow::Result<u8> {
    let project = project::load(global, printer)?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let engine = build::connect().await?;
        let removed = remove_run_containers(&engine, &project).await?;
        let network = ferry_engine::network_name(project.spec.app.as_str(), project.env_name());
        // The network may still be used by other containers of the app: then it stays.
        let _ = engine.remove_network(&network).await;
        if printer.json_output() {
            printer.json(&serde_json::json!({ "removed": removed }))?;
        } else if removed.is_empty() {
            printer.line(format!(
                "nothing to remove: no container of {} ({}) started by `ferry run`",
                project.spec.app.as_str(),
                project.env_name()
            ))?;
        } else {
            printer.line(format!("removed {}", removed.join(", ")))?;
        }
        Ok(exit::OK)
    })
}

/// Stops (gracefully) and removes the containers `ferry run` started for the app+env.
async fn remove_run_containers(engine: &Engine, project: &Project) -> anyhow::Result<Vec<String>> {
    let app = project.spec.app.as_str();
    let env = project.env_name();
    let containers = engine
        .list_containers(&[
            (LABEL_APP, app),
            (LABEL_ENV, env),
            (LABEL_ROLE, "web"),
            (LABEL_RUN, "true"),
        ])
        .await?;
    let stop_timeout = project
        .spec
        .web
        .as_ref()
        .map_or(Duration::from_secs(10), |w| w.stop_timeout.as_std());
    let mut removed = Vec::new();
    for container in containers {
        engine.stop_and_remove(&container.id, stop_timeout).await?;
        removed.push(container.name);
    }
    Ok(removed)
}

fn resources(spec: &ferry_spec::Resources) -> Resources {
    let defaults = Resources::default();
    Resources {
        memory_bytes: spec.memory.map_or(defaults.memory_bytes, |m| m.bytes()),
        nano_cpus: spec
            .cpus
            .map_or(defaults.nano_cpus, |c| (c * 1_000_000_000.0).round() as u64),
        pids: spec.pids.unwrap_or(defaults.pids),
    }
}

/// Secret values come from the deploying environment (same variable names); they are
/// handed to the container as files and never printed.
fn secret_values(project: &Project) -> anyhow::Result<Vec<Secret>> {
    let mut missing = Vec::new();
    let mut secrets = Vec::new();
    for name in &project.spec.secrets {
        match std::env::var(name.as_str()) {
            Ok(value) => secrets.push(Secret::new(name.as_str(), value)),
            Err(_) => missing.push(name.as_str().to_owned()),
        }
    }
    if !missing.is_empty() {
        return Err(Expected::Usage(format!(
            "secret(s) {} have no value: export them in the environment that runs ferry",
            missing.join(", ")
        ))
        .into());
    }
    Ok(secrets)
}
