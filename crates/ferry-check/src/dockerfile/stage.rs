//! Build stages: ARG resolution (global defaults, per-stage redeclaration, `--build-arg`)
//! and the stage graph that decides which stages reach the `--target` image.

use super::parse::{Args, Dockerfile, Instruction, words};
use std::collections::BTreeMap;

/// One `FROM` stage.
#[derive(Debug, Clone)]
pub struct Stage {
    /// 0-based position.
    pub index: usize,
    /// `AS name`, lowercased (BuildKit compares stage names case-insensitively).
    pub name: Option<String>,
    /// Index of the FROM instruction.
    pub from: usize,
    /// Indexes of the instructions in the stage (after FROM).
    pub body: std::ops::Range<usize>,
    /// The base image after ARG expansion, as written in FROM.
    pub base: String,
    /// Whether every variable in the base could be resolved.
    pub base_resolved: bool,
    /// The stage this one is built FROM, if it is a stage.
    pub parent: Option<usize>,
    /// Stages used via `COPY --from` or `RUN --mount=from=`.
    pub uses: Vec<usize>,
}

/// The stages of a Dockerfile and which reach the target.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Stages in order.
    pub stages: Vec<Stage>,
    /// The target stage (`--target`, or the last one).
    pub target: Option<usize>,
    /// `reaches[i]`: stage `i` contributes to the target image.
    pub reaches: Vec<bool>,
    /// Global ARG values (defaults overridden by build args).
    pub global_args: BTreeMap<String, Option<String>>,
}

impl Graph {
    /// The target stage followed by its FROM-parents (what the final image inherits).
    pub fn target_chain(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut cur = self.target;
        while let Some(i) = cur {
            if out.contains(&i) {
                break;
            }
            out.push(i);
            cur = self.stages[i].parent;
        }
        out
    }

    /// Finds a stage by name or index text, looking only at stages before `before`.
    pub fn lookup(&self, reference: &str, before: usize) -> Option<usize> {
        if let Ok(n) = reference.parse::<usize>() {
            return (n < before).then_some(n);
        }
        let r = reference.to_ascii_lowercase();
        self.stages[..before.min(self.stages.len())]
            .iter()
            .find(|s| s.name.as_deref() == Some(r.as_str()))
            .map(|s| s.index)
    }
}

/// Expands `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+alt}`; the flag is false when a
/// variable had no value.
pub fn expand(s: &str, vars: &BTreeMap<String, Option<String>>) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '$' && i + 1 < chars.len() {
            if chars[i + 1] == '{' {
                if let Some(close) = chars[i + 2..].iter().position(|c| *c == '}') {
                    let inner: String = chars[i + 2..i + 2 + close].iter().collect();
                    let (name, op) = match inner.find(':') {
                        Some(p) => (&inner[..p], Some(&inner[p..])),
                        None => (inner.as_str(), None),
                    };
                    let val = vars.get(name).cloned().flatten().filter(|v| !v.is_empty());
                    match (op, val) {
                        (Some(op), None) if op.starts_with(":-") => out.push_str(&op[2..]),
                        (Some(op), Some(_)) if op.starts_with(":+") => out.push_str(&op[2..]),
                        (Some(op), None) if op.starts_with(":+") => {}
                        (_, Some(v)) => out.push_str(&v),
                        (_, None) => ok = false,
                    }
                    i += close + 3;
                    continue;
                }
            } else if chars[i + 1].is_ascii_alphabetic() || chars[i + 1] == '_' {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                match vars.get(&name).cloned().flatten() {
                    Some(v) => out.push_str(&v),
                    None => ok = false,
                }
                i = j;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    (out, ok)
}

/// `ARG a=1 b` → [("a", Some("1")), ("b", None)].
pub fn arg_decls(ins: &Instruction) -> Vec<(String, Option<String>, usize)> {
    let text = ins.args_text();
    words(&text)
        .into_iter()
        .map(|(off, w)| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(super::parse::unquote(v)), off),
            None => (w.to_string(), None, off),
        })
        .collect()
}

/// Builds the stage graph.
pub fn build(
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Graph {
    let mut g = Graph::default();
    let ins = &df.instructions;
    let first_from = ins
        .iter()
        .position(|i| i.keyword == "FROM")
        .unwrap_or(ins.len());
    for i in &ins[..first_from] {
        if i.keyword == "ARG" {
            for (k, v, _) in arg_decls(i) {
                let v = build_args.get(&k).cloned().or(v);
                g.global_args.insert(k, v);
            }
        }
    }
    // Predefined platform args are resolvable but unknown; treat as resolved placeholders.
    for k in [
        "TARGETPLATFORM",
        "TARGETOS",
        "TARGETARCH",
        "TARGETVARIANT",
        "BUILDPLATFORM",
        "BUILDOS",
        "BUILDARCH",
        "BUILDVARIANT",
    ] {
        g.global_args.entry(k.to_string()).or_insert(None);
    }
    let froms: Vec<usize> = ins
        .iter()
        .enumerate()
        .filter(|(_, i)| i.keyword == "FROM")
        .map(|(n, _)| n)
        .collect();
    for (si, &fi) in froms.iter().enumerate() {
        let end = froms.get(si + 1).copied().unwrap_or(ins.len());
        let text = match &ins[fi].args {
            Args::Shell(s) => s.clone(),
            Args::Json(v) => v.join(" "),
        };
        let w = words(&text);
        let raw = w.first().map_or("", |(_, x)| *x);
        let (base, base_resolved) = expand(raw, &g.global_args);
        let name = (w.len() == 3).then(|| w[2].1.to_ascii_lowercase());
        let mut stage = Stage {
            index: si,
            name,
            from: fi,
            body: fi + 1..end,
            base: base.clone(),
            base_resolved,
            parent: None,
            uses: Vec::new(),
        };
        stage.parent = g.lookup(&base, si);
        g.stages.push(stage);
    }
    // Uses: COPY --from and RUN --mount=...,from=...
    for si in 0..g.stages.len() {
        let mut uses = Vec::new();
        for i in g.stages[si].body.clone() {
            let instr = &ins[i];
            let mut refs = Vec::new();
            if let Some(f) = instr.flag("from").and_then(|f| f.value.clone()) {
                refs.push(f);
            }
            for f in instr.flags.iter().filter(|f| f.name == "mount") {
                if let Some(v) = &f.value {
                    for part in v.split(',') {
                        if let Some(r) = part.strip_prefix("from=") {
                            refs.push(r.to_string());
                        }
                    }
                }
            }
            for r in refs {
                let (r, _) = expand(&r, &g.global_args);
                if let Some(s) = g.lookup(&r, si) {
                    uses.push(s);
                }
            }
        }
        g.stages[si].uses = uses;
    }
    g.target = match target {
        Some(t) => g.lookup(t, g.stages.len()),
        None => g.stages.len().checked_sub(1),
    };
    g.reaches = vec![false; g.stages.len()];
    let mut todo: Vec<usize> = g.target.into_iter().collect();
    while let Some(s) = todo.pop() {
        if g.reaches[s] {
            continue;
        }
        g.reaches[s] = true;
        todo.extend(g.stages[s].parent);
        todo.extend(g.stages[s].uses.iter().copied());
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parse::parse;

    #[test]
    fn args_before_from_and_build_args() {
        let df = parse("ARG V=3.19\nARG IMG\nFROM alpine:${V} AS a\nFROM ${IMG:-debian}:12\n");
        let g = build(&df, &BTreeMap::new(), None);
        assert_eq!(g.stages[0].base, "alpine:3.19");
        assert_eq!(g.stages[1].base, "debian:12");
        let mut ba = BTreeMap::new();
        ba.insert("V".to_string(), "3.20".to_string());
        let g = build(&df, &ba, None);
        assert_eq!(g.stages[0].base, "alpine:3.20");
    }

    #[test]
    fn reachability_follows_parents_and_copy_from() {
        let df = parse(
            "FROM golang:1 AS build\nRUN go build\nFROM alpine:3 AS test\nRUN x\nFROM build AS mid\nFROM alpine:3\nCOPY --from=mid /a /a\n",
        );
        let g = build(&df, &BTreeMap::new(), None);
        assert_eq!(g.reaches, vec![true, false, true, true]);
        let g = build(&df, &BTreeMap::new(), Some("test"));
        assert_eq!(g.reaches, vec![false, true, false, false]);
    }
}
