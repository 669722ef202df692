//! `ferry render`: files for other platforms from the same spec, printed or written
//! under `--out`, or committed into a GitOps repository.

use std::path::Path;

use ferry_render::{GitopsOptions, RenderOptions, RolloutsMode, Target};

use crate::cli::{Global, RenderArgs, RenderTarget, RolloutsChoice};
use crate::error::Expected;
use crate::exit;
use crate::printer::Printer;
use crate::project;

pub fn run(args: &RenderArgs, global: &Global, printer: &Printer) -> anyhow::Result<u8> {
    let project = project::load(global, printer)?;
    let target = match args.target {
        RenderTarget::K8s => Target::K8s,
        RenderTarget::Argocd => Target::Argocd,
        RenderTarget::Compose => Target::Compose,
        RenderTarget::Prometheus => Target::Prometheus,
        RenderTarget::Grafana => Target::Grafana,
        RenderTarget::GithubActions => Target::GithubActions,
        RenderTarget::GitlabCi => Target::GitlabCi,
        RenderTarget::Ecs => Target::Ecs,
    };
    let mut options = RenderOptions {
        image: args.image.clone(),
        namespace: args.namespace.clone(),
        rollouts: match args.rollouts {
            RolloutsChoice::Argo => RolloutsMode::Auto,
            RolloutsChoice::None => RolloutsMode::None,
        },
        cert_manager_issuer: args.cert_issuer.clone(),
        ..RenderOptions::default()
    };
    let envs = project.document.environments();
    if !envs.is_empty() {
        options.environments = envs;
    }
    let rendered = ferry_render::render(target, &project.spec, project.env.as_deref(), &options)
        .map_err(|e| Expected::Usage(format!("cannot render {}: {e}", target.as_str())))?;

    if let Some(repo) = &args.gitops {
        return gitops(args, &project, repo, &rendered, printer);
    }
    for note in &rendered.notes {
        printer.status(format!("note: {note}"));
    }
    match &args.out {
        Some(dir) => {
            for (path, content) in &rendered.files {
                let full = dir.join(path);
                if let Some(parent) = full.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&full, content)?;
            }
            if printer.json_output() {
                printer.json(&serde_json::json!({
                    "target": target.as_str(),
                    "out": dir.display().to_string(),
                    "files": rendered.files.iter().map(|(p, _)| p.display().to_string()).collect::<Vec<_>>(),
                    "notes": rendered.notes,
                }))?;
            } else {
                printer.line(format!(
                    "wrote {} file(s) for {} under {}",
                    rendered.files.len(),
                    target.as_str(),
                    dir.display()
                ))?;
            }
        }
        None if printer.json_output() => {
            printer.json(&serde_json::json!({
                "target": target.as_str(),
                "files": rendered.files.iter().map(|(p, c)| serde_json::json!({
                    "path": p.display().to_string(),
                    "content": c,
                })).collect::<Vec<_>>(),
                "notes": rendered.notes,
            }))?;
        }
        None => {
            let several = rendered.files.len() > 1;
            for (path, content) in &rendered.files {
                if several {
                    printer.data(format!("# ---- {} ----", path.display()))?;
                }
                printer.data(content)?;
            }
        }
    }
    Ok(exit::OK)
}

fn gitops(
    args: &RenderArgs,
    project: &project::Project,
    repo: &Path,
    rendered: &ferry_render::Rendered,
    printer: &Printer,
) -> anyhow::Result<u8> {
    if args.target != RenderTarget::K8s {
        return Err(Expected::Usage("--gitops works with `ferry render k8s`".to_owned()).into());
    }
    let Some(env) = project.env.as_deref() else {
        return Err(Expected::Usage(
            "--gitops updates one environment's overlay: pass --env NAME".to_owned(),
        )
        .into());
    };
    let outcome = ferry_render::gitops_update(
        repo,
        env,
        rendered,
        &GitopsOptions {
            commit: args.commit,
            ..GitopsOptions::default()
        },
    )
    .map_err(|e| Expected::Failed(format!("GitOps update of {} failed: {e}", repo.display())))?;
    if printer.json_output() {
        printer.json(&serde_json::json!({
            "changed": outcome.changed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "promotion_only": outcome.promotion_only,
            "commit": outcome.commit,
            "message": outcome.message,
        }))?;
    } else if outcome.changed.is_empty() {
        printer.line(format!(
            "{}: overlay `{env}` already up to date",
            repo.display()
        ))?;
    } else {
        printer.line(format!(
            "{}: {} file(s) changed{}",
            repo.display(),
            outcome.changed.len(),
            if outcome.promotion_only {
                " (image only: a promotion)"
            } else {
                ""
            }
        ))?;
        match &outcome.commit {
            Some(commit) => printer.line(format!("committed {commit}: {}", outcome.message))?,
            None => printer.line(format!(
                "not committed (pass --commit): {}",
                outcome.message
            ))?,
        }
    }
    Ok(exit::OK)
}
