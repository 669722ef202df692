//! Deploy hooks (`hooks.pre_deploy`, `hooks.post_deploy`): each command runs once, in
//! order, in a one-off hardened container of the revision's image with the app's env,
//! secrets (as files) and network; it is removed once it exits.
//!
//! Design note. `pre_deploy` runs before any replica of the new revision starts, so a
//! failing migration leaves traffic and replicas untouched; its exit code and last lines
//! of output become the failure reason. `post_deploy` runs after the new revision is
//! live; a failure is recorded and notified, never rolled back. Every line ferry records
//! from a hook has the app's secret values redacted.

use std::sync::Arc;

use ferry_spec::Spec;

use crate::controller::{Shared, error_chain};
use crate::replica;
use crate::worker::ROLE_HOOK;

/// How many lines of a hook's output the timeline keeps.
pub(crate) const OUTPUT_LINES: usize = 20;

/// Which list of hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    PreDeploy,
    PostDeploy,
}

impl Stage {
    pub(crate) fn key(self) -> &'static str {
        match self {
            Stage::PreDeploy => "pre_deploy",
            Stage::PostDeploy => "post_deploy",
        }
    }

    fn commands(self, spec: &Spec) -> &[String] {
        match self {
            Stage::PreDeploy => &spec.hooks.pre_deploy,
            Stage::PostDeploy => &spec.hooks.post_deploy,
        }
    }
}

/// One hook that ran (or could not run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ran {
    /// The command as written in ferry.toml.
    pub command: String,
    /// Its exit code; `None` when it could not start or timed out.
    pub exit_code: Option<i64>,
    /// Its last lines of output, secrets redacted.
    pub output: Vec<String>,
    /// Why it did not finish, when it did not.
    pub error: Option<String>,
}

impl Ran {
    pub(crate) fn ok(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// One timeline line: what ran, how it ended, its last output.
    pub(crate) fn describe(&self, stage: Stage) -> String {
        let end = match (&self.exit_code, &self.error) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(e)) => format!("did not finish: {e}"),
            (None, None) => "did not finish".to_owned(),
        };
        let output = if self.output.is_empty() {
            "no output".to_owned()
        } else {
            format!("last output: {}", self.output.join(" | "))
        };
        format!("{} hook `{}` {end}; {output}", stage.key(), self.command)
    }
}

/// Where the hooks run.
pub(crate) struct Context<'a> {
    pub shared: &'a Arc<Shared>,
    pub env: &'a str,
    pub revision: &'a str,
    pub rollout: i64,
    pub image: &'a str,
    pub spec: &'a Spec,
}

/// Runs the stage's commands in order, stopping at the first that fails (then the last
/// one returned).
pub(crate) async fn run(cx: &Context<'_>, stage: Stage) -> Vec<Ran> {
    let commands = stage.commands(cx.spec);
    let secrets = crate::secret::values(cx.shared, cx.env, cx.spec).await;
    let mut done = Vec::new();
    for (index, command) in commands.iter().enumerate() {
        let ran = run_one(cx, stage, index + 1, command, &secrets).await;
        let ok = ran.ok();
        done.push(ran);
        if !ok {
            break;
        }
    }
    done
}

async fn run_one(
    cx: &Context<'_>,
    stage: Stage,
    index: usize,
    command: &str,
    secrets: &[String],
) -> Ran {
    let failed = |error: String| Ran {
        command: command.to_owned(),
        exit_code: None,
        output: Vec::new(),
        error: Some(error),
    };
    let Some(argv) = ferry_spec::hook_argv(command) else {
        return failed("the command is empty or its quotes are unbalanced".to_owned());
    };
    let app = cx.spec.app.as_str();
    let name = format!(
        "ferry-{app}-{}-{ROLE_HOOK}-r{}-{}-{}{index}",
        cx.env,
        cx.revision,
        cx.rollout,
        match stage {
            Stage::PreDeploy => "pre",
            Stage::PostDeploy => "post",
        }
    );
    let mut container = replica::container_spec(
        &cx.shared.daemon_id,
        &name,
        cx.image,
        cx.env,
        cx.revision,
        cx.spec,
    );
    container.identity.role = ROLE_HOOK.to_owned();
    container.command = Some(argv);
    container.publish = None;
    container.aliases = Vec::new();
    if let Err(e) = crate::secret::inject(cx.shared, cx.env, cx.spec, &mut container).await {
        return failed(e);
    }
    // A container of this name left by an earlier daemon would block the create.
    let _ = cx.shared.engine.remove(&name, true).await;
    if let Some(net) = &container.network {
        let _guard = cx.shared.networks.lock().await;
        let mut labels = container.identity.labels();
        labels.retain(|k, _| k == ferry_engine::LABEL_APP || k == ferry_engine::LABEL_ENV);
        if let Err(e) = cx.shared.engine.ensure_network(net, &labels).await {
            return failed(error_chain(&e));
        }
    }
    let timeout = cx.spec.hooks.timeout.as_std();
    let tail = |lines: &[String]| -> Vec<String> {
        let skip = lines.len().saturating_sub(OUTPUT_LINES);
        lines[skip..]
            .iter()
            .map(|l| crate::secret::redact(l, secrets))
            .collect()
    };
    match cx.shared.engine.run_once(&container, timeout).await {
        Ok(done) => Ran {
            command: command.to_owned(),
            exit_code: Some(done.exit_code),
            output: tail(&done.output),
            error: None,
        },
        Err(ferry_engine::EngineError::OneOffTimeout { output, .. }) => Ran {
            command: command.to_owned(),
            exit_code: None,
            output: tail(&output),
            error: Some(format!(
                "still running after {} (hooks.timeout); stopped",
                cx.spec.hooks.timeout
            )),
        },
        Err(e) => failed(error_chain(&e)),
    }
}
