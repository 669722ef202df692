//! `ferry build` and `ferry builds`: pre-build hooks, git-derived tags, OCI labels,
//! the engine build with live progress, and the build record in the store.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ferry_engine::{BuildEvent, BuildReport, BuildRequest, Engine, EngineError};
use ferry_store::{NewBuild, Store};

use crate::cli::{BuildArgs, BuildsArgs, Global};
use crate::error::Expected;
use crate::exit;
use crate::printer::Printer;
use crate::project::{self, Project};

/// A finished build: the engine's report plus what ferry decided around it.
#[derive(Debug)]
pub struct Built {
    pub tag: String,
    pub git_sha: Option<String>,
    pub report: BuildReport,
}

pub fn run(args: &BuildArgs, global: &Global, printer: &Printer) -> anyhow::Result<u8> {
    let project = project::load(global, printer)?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let engine = connect().await?;
        let built = build(&project, args, &engine, printer).await?;
        let record = record_build(&project, &built).await?;
        if printer.json_output() {
            printer.event(&serde_json::json!({
                "event": "built",
                "tag": built.tag,
                "image_id": built.report.image_id,
                "git_sha": built.git_sha,
                "size_bytes": built.report.size_bytes,
                "layers": built.report.layers,
                "duration_ms": built.report.duration.as_millis() as u64,
                "steps_total": built.report.steps_total,
                "steps_cached": built.report.steps_cached,
                "tags": built.report.tags,
                "build_id": record,
            }))?;
        } else {
            print_summary(printer, &built)?;
        }
        Ok(exit::OK)
    })
}

pub fn list(args: &BuildsArgs, global: &Global, printer: &Printer) -> anyhow::Result<u8> {
    let project = project::load(global, printer)?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let store = open_store(&project).await?;
        let builds = store.builds(project.spec.app.as_str(), args.limit).await?;
        if printer.json_output() {
            printer.json(&serde_json::to_value(&builds)?)?;
            return Ok(exit::OK);
        }
        if builds.is_empty() {
            printer.line(format!(
                "no builds recorded for {}",
                project.spec.app.as_str()
            ))?;
        }
        for b in &builds {
            printer.line(format!(
                "#{:<4} {:<28} {:>9}  {} layer(s)  cache {}/{}  {:.1}s  {}",
                b.id,
                b.tag,
                human_size(b.size_bytes),
                b.layers,
                b.cache_reused,
                b.cache_total,
                b.duration_ms as f64 / 1000.0,
                short_id(&b.image_id),
            ))?;
        }
        Ok(exit::OK)
    })
}

/// Connects to the Docker engine; unreachable → exit code 3.
pub async fn connect() -> anyhow::Result<Engine> {
    Engine::connect().await.map_err(|err| {
        if err.is_unreachable() {
            Expected::EngineUnreachable { source: err.into() }.into()
        } else {
            anyhow::Error::new(err)
        }
    })
}

/// The store beside ferry.toml (`.ferry/state.db`), or `FERRY_STATE` (a path or a
/// `postgres://` URL).
pub async fn open_store(project: &Project) -> anyhow::Result<Store> {
    let location = match std::env::var("FERRY_STATE") {
        Ok(value) if !value.is_empty() => value,
        _ => project
            .dir
            .join(".ferry")
            .join("state.db")
            .display()
            .to_string(),
    };
    Ok(Store::open(&location).await?)
}

pub async fn record_build(project: &Project, built: &Built) -> anyhow::Result<i64> {
    let store = open_store(project).await?;
    let record = store
        .record_build(&NewBuild {
            app: project.spec.app.as_str().to_owned(),
            env: project.env.clone(),
            tag: built.tag.clone(),
            image_id: built.report.image_id.clone(),
            git_sha: built.git_sha.clone(),
            size_bytes: built.report.size_bytes,
            layers: built.report.layers as u64,
            duration_ms: built.report.duration.as_millis() as u64,
            cache_reused: u64::from(built.report.steps_cached),
            cache_total: u64::from(built.report.steps_total),
        })
        .await?;
    store.close().await;
    Ok(record.id)
}

/// Runs the hooks and builds the image of `project`.
pub async fn build(
    project: &Project,
    args: &BuildArgs,
    engine: &Engine,
    printer: &Printer,
) -> anyhow::Result<Built> {
    let app = project.spec.app.as_str();
    let Some(spec_build) = &project.spec.build else {
        return Err(Expected::Usage(format!(
            "ferry.toml deploys the prebuilt image `{}`; there is nothing to build \
             (add a [build] section to build from a Dockerfile)",
            project.spec.image.as_deref().unwrap_or("?")
        ))
        .into());
    };
    if !args.no_hooks {
        run_hooks(&project.dir, &project.spec.hooks.pre_build, printer)?;
    }
    let context = project.dir.join(&spec_build.context);
    let git = git_state(&context);
    let tag_suffix = match &git {
        Some(g) => g.sha_tag(),
        None => format!("build-{}", time::OffsetDateTime::now_utc().unix_timestamp()),
    };
    let tag = format!("{app}:{tag_suffix}");
    let mut tags = vec![tag.clone()];
    for extra in &args.tags {
        tags.push(if extra.contains(':') {
            extra.clone()
        } else {
            format!("{app}:{extra}")
        });
    }
    let mut labels = BTreeMap::new();
    labels.insert("org.opencontainers.image.title".to_owned(), app.to_owned());
    labels.insert(
        "org.opencontainers.image.version".to_owned(),
        tag_suffix.clone(),
    );
    if let Some(g) = &git {
        labels.insert(
            "org.opencontainers.image.revision".to_owned(),
            g.sha.clone(),
        );
        if let Some(created) = &g.commit_time {
            labels.insert(
                "org.opencontainers.image.created".to_owned(),
                created.clone(),
            );
        }
        if let Some(source) = &g.remote {
            labels.insert("org.opencontainers.image.source".to_owned(), source.clone());
        }
    }
    labels.insert("dev.ferry.app".to_owned(), app.to_owned());
    let request = BuildRequest {
        context: context.clone(),
        dockerfile: PathBuf::from(&spec_build.dockerfile),
        tags: tags.clone(),
        labels,
        build_args: spec_build.args.clone(),
        target: spec_build.target.clone(),
        no_cache: false,
    };
    printer.status(format!("building {tag} from {}", context.display()));
    let spinner = printer.spinner(format!("building {tag}"));
    let result = engine
        .build(&request, |event| {
            show_event(printer, spinner.as_ref(), &event)
        })
        .await;
    if let Some(bar) = &spinner {
        bar.finish_and_clear();
    }
    match result {
        Ok(report) => Ok(Built {
            tag,
            git_sha: git.map(|g| g.sha_tag()),
            report,
        }),
        Err(EngineError::BuildFailed(failure)) => {
            if !failure.output.is_empty() {
                printer.status(format!(
                    "output of the failing step:\n  {}",
                    failure.output.join("\n  ")
                ));
            }
            Err(Expected::Failed(failure.to_string()).into())
        }
        Err(err) if err.is_unreachable() => {
            Err(Expected::EngineUnreachable { source: err.into() }.into())
        }
        Err(err) => Err(err.into()),
    }
}

fn show_event(printer: &Printer, spinner: Option<&indicatif::ProgressBar>, event: &BuildEvent) {
    if printer.json_output() {
        let value = match event {
            BuildEvent::Context { files, bytes } => {
                serde_json::json!({"event": "context", "files": files, "bytes": bytes})
            }
            BuildEvent::Step {
                n,
                total,
                instruction,
            } => {
                serde_json::json!({"event": "step", "n": n, "total": total, "instruction": instruction})
            }
            BuildEvent::Cached { n } => serde_json::json!({"event": "cached", "n": n}),
            BuildEvent::Output { line } => serde_json::json!({"event": "output", "line": line}),
            BuildEvent::Failed { step, message } => {
                serde_json::json!({"event": "failed", "step": step, "message": message})
            }
        };
        let _ = printer.event(&value);
        return;
    }
    let text = match event {
        BuildEvent::Context { files, bytes } => {
            format!("context: {files} file(s), {}", human_size(*bytes))
        }
        BuildEvent::Step {
            n,
            total,
            instruction,
        } => format!("step {n}/{total}: {instruction}"),
        BuildEvent::Cached { n } => format!("step {n}: cached"),
        BuildEvent::Output { line } => format!("  {line}"),
        BuildEvent::Failed { step, message } => match step {
            Some(n) => format!("step {n} failed: {message}"),
            None => format!("build failed: {message}"),
        },
    };
    match spinner {
        // On a terminal the spinner shows the current step; output lines scroll above it.
        Some(bar) => match event {
            BuildEvent::Step { .. } | BuildEvent::Context { .. } => bar.set_message(text),
            _ => bar.println(text),
        },
        None => printer.status(text),
    }
}

fn print_summary(printer: &Printer, built: &Built) -> anyhow::Result<()> {
    let r = &built.report;
    printer.line(format!("built {} ({})", built.tag, short_id(&r.image_id)))?;
    printer.line(format!(
        "  size {}, {} layer(s), {}/{} step(s) from cache, {:.1}s",
        human_size(r.size_bytes),
        r.layers,
        r.steps_cached,
        r.steps_total,
        r.duration.as_secs_f64()
    ))?;
    if r.tags.len() > 1 {
        printer.line(format!("  tags: {}", r.tags.join(", ")))?;
    }
    Ok(())
}

/// Runs shell hooks in `dir`, their output on stderr; the first failure stops.
pub fn run_hooks(dir: &Path, hooks: &[String], printer: &Printer) -> anyhow::Result<()> {
    for hook in hooks {
        printer.status(format!("hook: {hook}"));
        let stderr = std::io::stderr().as_fd().try_clone_to_owned()?;
        let status = Command::new("sh")
            .arg("-c")
            .arg(hook)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(stderr))
            .status()
            .map_err(|e| Expected::Failed(format!("cannot run hook `{hook}`: {e}")))?;
        if !status.success() {
            return Err(Expected::Failed(format!(
                "pre-build hook `{hook}` failed ({status}); nothing was built"
            ))
            .into());
        }
    }
    Ok(())
}

#[derive(Debug)]
struct GitState {
    sha: String,
    dirty: bool,
    commit_time: Option<String>,
    remote: Option<String>,
}

impl GitState {
    fn sha_tag(&self) -> String {
        let short: String = self.sha.chars().take(12).collect();
        if self.dirty {
            format!("{short}-dirty")
        } else {
            short
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The commit of the build context, whether the context has changes, and its time.
fn git_state(context: &Path) -> Option<GitState> {
    let sha = git(context, &["rev-parse", "HEAD"]).filter(|s| !s.is_empty())?;
    let dirty = git(
        context,
        &["status", "--porcelain", "--untracked-files=no", "--", "."],
    )
    .is_some_and(|s| !s.is_empty());
    Some(GitState {
        sha,
        dirty,
        commit_time: git(context, &["show", "-s", "--format=%cI", "HEAD"]),
        remote: git(context, &["remote", "get-url", "origin"]).filter(|s| !s.is_empty()),
    })
}

pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn short_id(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}
