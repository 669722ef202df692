//! The CI targets: a GitHub Actions workflow and a GitLab CI pipeline running
//! check → test → build → deploy staging → smoke → (manual approval) → production, calling
//! only ferry commands that exist. `ferry deploy` talks to the environment's ferry daemon,
//! whose address and token come from CI secrets (`FERRY_API`, `FERRY_TOKEN`).

use serde_json::{Map, Value, json};

use crate::app::App;
use crate::argo::is_production;
use crate::{Error, Rendered, yaml};

/// A shell line telling whoever reads the log where the deploy goes.
const DEPLOY_NOTE: &str =
    "# ferry deploy hands the rollout to the environment's `ferry serve` (FERRY_API, FERRY_TOKEN).";

/// The smoke test over HTTPS (curl is on every hosted runner; `ferry healthcheck` speaks
/// plain HTTP only, for HEALTHCHECKs inside scratch images).
fn smoke_command(url: &str) -> String {
    format!("curl --fail --silent --show-error --max-time 10 --retry 5 --retry-all-errors {url}")
}

fn smoke_url(app: &App<'_>, env: &str) -> String {
    let host = app
        .spec
        .web
        .as_ref()
        .and_then(|w| {
            w.routes
                .iter()
                .flat_map(|r| r.hosts.iter())
                .find(|h| !h.starts_with('*'))
        })
        .cloned()
        .unwrap_or_else(|| format!("{}.example.invalid", app.name));
    let path = app
        .spec
        .web
        .as_ref()
        .and_then(|w| w.health.as_ref())
        .map_or("/", |h| h.path.as_str())
        .to_owned();
    if is_production(env) {
        format!("https://{host}{path}")
    } else {
        format!("https://{env}.{host}{path}")
    }
}

pub(crate) fn render_github(app: &App<'_>, out: &mut Rendered) -> Result<(), Error> {
    let install = json!({
        "name": "Install ferry",
        // Self-hosted runners may have ferry already; otherwise build it from its repository.
        "run": "command -v ferry || cargo install --locked --git \"$FERRY_GIT_URL\" ferry",
        "env": { "FERRY_GIT_URL": "${{ vars.FERRY_GIT_URL }}" },
    });
    let checkout = json!({ "uses": "actions/checkout@v4" });
    let mut jobs = Map::new();
    jobs.insert("check".into(), json!({
        "runs-on": "ubuntu-latest",
        "permissions": { "contents": "read", "security-events": "write" },
        "steps": [
            checkout, install,
            { "name": "ferry check (SARIF)", "run": "ferry check --format sarif > ferry.sarif" },
            { "name": "Upload findings", "if": "always()", "uses": "github/codeql-action/upload-sarif@v3", "with": { "sarif_file": "ferry.sarif", "category": "ferry" } },
        ],
    }));
    let envs = &app.opts.environments;
    let validate: Vec<String> = envs
        .iter()
        .map(|e| format!("ferry config validate --env {e}"))
        .collect();
    jobs.insert("test".into(), json!({
        "runs-on": "ubuntu-latest",
        "needs": ["check"],
        "steps": [checkout, install, { "name": "Validate the spec for every environment", "run": validate.join("\n") }],
    }));
    jobs.insert("build".into(), json!({
        "runs-on": "ubuntu-latest",
        "needs": ["test"],
        "permissions": { "contents": "read", "packages": "write" },
        "steps": [checkout, install, { "name": "ferry build (tagged by git SHA)", "run": "ferry build" }],
    }));
    let mut previous = "build".to_owned();
    for env in envs {
        let deploy = format!("deploy-{env}");
        let mut job = json!({
            "runs-on": "ubuntu-latest",
            "needs": [previous],
            "if": "github.ref == 'refs/heads/main'",
            // Production: required reviewers on this GitHub environment are the manual gate.
            "environment": { "name": env, "url": smoke_url(app, env).trim_end_matches('/').to_owned() },
            "concurrency": { "group": format!("deploy-{env}"), "cancel-in-progress": false },
            "steps": [checkout, install, {
                "name": format!("ferry deploy --env {env}"),
                "env": {
                    "FERRY_API": "${{ secrets.FERRY_API }}",
                    "FERRY_TOKEN": "${{ secrets.FERRY_TOKEN }}",
                },
                "run": format!("{DEPLOY_NOTE}\nferry deploy --env {env}"),
            }],
        });
        if !is_production(env) {
            job["steps"].as_array_mut().expect("steps").push(json!({
                "name": format!("Smoke test {env}"),
                "run": smoke_command(&smoke_url(app, env)),
            }));
        }
        jobs.insert(deploy.clone(), job);
        previous = deploy;
    }
    let workflow = json!({
        "name": format!("ferry {}", app.name),
        "on": { "push": { "branches": ["main"] }, "pull_request": {}, "workflow_dispatch": {} },
        "permissions": { "contents": "read" },
        "jobs": Value::Object(jobs),
    });
    out.file(".github/workflows/ferry.yml", yaml::file(&[workflow]));
    out.note(
        "GitHub: protect the production environment with required reviewers; that is the \
         manual approval before production",
    );
    Ok(())
}

pub(crate) fn render_gitlab(app: &App<'_>, out: &mut Rendered) -> Result<(), Error> {
    let envs = &app.opts.environments;
    let mut stages = vec!["check".to_owned(), "test".to_owned(), "build".to_owned()];
    let mut doc = Map::new();
    doc.insert("default".into(), json!({
        "before_script": ["command -v ferry || cargo install --locked --git \"$FERRY_GIT_URL\" ferry"],
        "interruptible": true,
    }));
    doc.insert(
        "check".into(),
        json!({
            "stage": "check",
            "script": ["ferry check --format sarif > ferry.sarif"],
            "artifacts": { "when": "always", "paths": ["ferry.sarif"], "expire_in": "30 days" },
        }),
    );
    doc.insert("test".into(), json!({
        "stage": "test",
        "script": envs.iter().map(|e| format!("ferry config validate --env {e}")).collect::<Vec<_>>(),
    }));
    doc.insert(
        "build".into(),
        json!({ "stage": "build", "script": ["ferry build"] }),
    );
    let mut previous = "build".to_owned();
    for env in envs {
        let stage = format!("deploy-{env}");
        stages.push(stage.clone());
        let production = is_production(env);
        let mut job = json!({
            "stage": stage,
            "needs": [previous],
            "resource_group": stage,
            "interruptible": false,
            "environment": { "name": env, "url": smoke_url(app, env).trim_end_matches('/').to_owned() },
            "script": [DEPLOY_NOTE, format!("ferry deploy --env {env}")],
            "rules": [if production {
                json!({ "if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", "when": "manual" })
            } else {
                json!({ "if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" })
            }],
        });
        if production {
            // A manual job that blocks the pipeline until someone approves it.
            job["allow_failure"] = json!(false);
        }
        doc.insert(stage.clone(), job);
        previous = stage.clone();
        if !production {
            let smoke = format!("smoke-{env}");
            stages.push(smoke.clone());
            doc.insert(
                smoke.clone(),
                json!({
                    "stage": smoke,
                    "needs": [stage],
                    "script": [smoke_command(&smoke_url(app, env))],
                    "rules": [{ "if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" }],
                }),
            );
            previous = smoke;
        }
    }
    doc.insert("stages".into(), json!(stages));
    out.file(".gitlab-ci.yml", yaml::file(&[Value::Object(doc)]));
    Ok(())
}
