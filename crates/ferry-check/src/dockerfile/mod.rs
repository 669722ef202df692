//! Dockerfile checks: a BuildKit-faithful parser, the stage graph and the rules.

mod examples;
mod lint;
pub mod parse;
pub mod shell;
pub mod stage;

pub use examples::EXAMPLES;
pub use lint::secret_name;

use crate::{CheckOptions, Finding};

/// Parses and lints a Dockerfile. `has_dockerignore` is `Some(false)` when the caller looked
/// next to the file and found no `.dockerignore`.
pub fn check(text: &str, opts: &CheckOptions, has_dockerignore: Option<bool>) -> Vec<Finding> {
    let df = parse::parse(text);
    let graph = stage::build(&df, &opts.build_args, opts.target.as_deref());
    let mut out = df.errors.clone();
    if let (Some(t), None, Some(first)) = (
        opts.target.as_deref(),
        graph.target,
        df.instructions.first(),
    ) {
        let names: Vec<&str> = graph
            .stages
            .iter()
            .filter_map(|s| s.name.as_deref())
            .collect();
        out.push(
            Finding::new(
                "DF000",
                first.span(),
                format!("--target `{t}` names no stage of this Dockerfile"),
            )
            .with_hint(if names.is_empty() {
                "this Dockerfile has no named stages".to_string()
            } else {
                format!("stages: {}", names.join(", "))
            }),
        );
    }
    out.extend(lint::lint(&df, &graph, has_dockerignore));
    out
}

/// (first line, last line) of every instruction, for suppression scoping.
pub fn instruction_extents(text: &str) -> Vec<(u32, u32)> {
    parse::parse(text)
        .instructions
        .iter()
        .map(|i| (i.line, i.end_line))
        .collect()
}
