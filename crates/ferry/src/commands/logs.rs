//! `ferry logs`: the output of the app's containers on the local engine, each line
//! prefixed with its container, merged as it comes with `--follow`.

use futures_util::StreamExt;
use futures_util::stream::select_all;

use ferry_engine::{LABEL_APP, LABEL_ENV, LABEL_REVISION, LABEL_ROLE, LogStream};

use super::build;
use crate::cli::{Global, LogsArgs};
use crate::error::Expected;
use crate::exit;
use crate::printer::Printer;
use crate::project;

pub fn run(args: &LogsArgs, global: &Global, printer: &Printer) -> anyhow::Result<u8> {
    let project = project::load(global, printer)?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let engine = build::connect().await?;
        let app = project.spec.app.as_str();
        let env = project.env_name();
        let mut labels = vec![(LABEL_APP, app), (LABEL_ENV, env), (LABEL_ROLE, args.role.as_str())];
        if let Some(rev) = &args.rev {
            labels.push((LABEL_REVISION, rev.as_str()));
        }
        let containers = engine.list_containers(&labels).await?;
        if containers.is_empty() {
            return Err(Expected::Failed(format!(
                "no `{}` container of {app} ({env}){} on this engine",
                args.role,
                args.rev
                    .as_ref()
                    .map(|r| format!(" at revision {r}"))
                    .unwrap_or_default()
            ))
            .into());
        }
        let streams = containers.iter().map(|c| {
            let name = c.name.clone();
            engine
                .logs(&c.id, args.follow, Some(args.tail))
                .map(move |line| (name.clone(), line))
                .boxed()
        });
        let mut merged = select_all(streams);
        while let Some((name, line)) = merged.next().await {
            let line = line?;
            let text = line.text.trim_end_matches('\n');
            if printer.json_output() {
                printer.event(&serde_json::json!({
                    "container": name,
                    "stream": match line.stream { LogStream::Stdout => "stdout", LogStream::Stderr => "stderr" },
                    "line": text,
                }))?;
            } else {
                for part in text.split('\n') {
                    printer.data(format!("{} | {part}", printer.paint(&name, "36")))?;
                }
            }
        }
        Ok(exit::OK)
    })
}
