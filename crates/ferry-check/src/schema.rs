//! A small JSON-schema validator over positioned YAML, for the compact schemas generated
//! by `schema/generate.py` (Kubernetes OpenAPI of one pinned version; the compose spec).
//!
//! Compact format: `ref` (definition name), `t` (types), `p` (properties), `r` (required),
//! `ap` (additionalProperties: `false` or a schema), `pp` (patternProperties), `i` (items),
//! `e` (enum), `any` (oneOf/anyOf), `all` (allOf), `f` (format).

use crate::finding::{Finding, Span};
use crate::yaml::{Node, Value as Y};
use serde_json::{Map, Value};

/// Which rule ids a schema reports under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    pub unknown: &'static str,
    pub type_: &'static str,
    pub required: &'static str,
    pub quantity: &'static str,
}

pub(crate) struct Validator<'a> {
    pub defs: &'a Map<String, Value>,
    pub rules: Rules,
}

const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";

/// Kubernetes resource quantity syntax (`100m`, `1Gi`, `1e3`, `0.5`).
pub fn is_quantity(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(num_len);
    if num.is_empty() || num == "." || num.matches('.').count() > 1 {
        return false;
    }
    const SUFFIXES: &[&str] = &[
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
    ];
    if SUFFIXES.contains(&suffix) {
        return true;
    }
    if let Some(exp) = suffix.strip_prefix(['e', 'E']) {
        let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        return !exp.is_empty() && exp.bytes().all(|b| b.is_ascii_digit());
    }
    false
}

fn types(s: &Value) -> Option<Vec<&str>> {
    s.get("t")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
}

fn accepts(types: &[&str], node: &Node) -> bool {
    let t = node.type_name();
    types.iter().any(|x| {
        *x == t
            || (*x == "number" && t == "integer")
            // YAML-only spellings of strings, e.g. a plain `yes` or a date, are strings to Kubernetes.
            || (*x == "string" && t == "string")
    })
}

fn pattern_matches(pattern: &str, key: &str) -> bool {
    match pattern {
        "^x-" => key.starts_with("x-"),
        "^[a-zA-Z0-9._-]+$" => {
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        }
        "^[a-z]+$" => !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase()),
        _ => !key.is_empty(),
    }
}

fn path_str(path: &[String]) -> String {
    if path.is_empty() {
        "document".to_string()
    } else {
        path.join(".")
    }
}

fn closest<'k>(key: &str, candidates: impl Iterator<Item = &'k String>) -> Option<&'k String> {
    candidates
        .map(|c| (strsim_distance(key, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn strsim_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_ascii_lowercase().chars().collect();
    let b: Vec<char> = b.to_ascii_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

impl Validator<'_> {
    fn resolve<'s>(&'s self, mut s: &'s Value) -> (&'s Value, Option<&'s str>) {
        let mut name = None;
        for _ in 0..16 {
            match s.get("ref").and_then(Value::as_str) {
                Some(r) => {
                    name = Some(r);
                    match self.defs.get(r) {
                        Some(d) => s = d,
                        None => break,
                    }
                }
                None => break,
            }
        }
        (s, name)
    }

    /// Validates `node` against schema `s`, appending findings.
    pub fn validate(&self, s: &Value, node: &Node, path: &mut Vec<String>, out: &mut Vec<Finding>) {
        let (s, name) = self.resolve(s);
        match name {
            Some(QUANTITY) => {
                if let Y::Scalar { text, .. } = &node.value {
                    if !node.is_null() && !is_quantity(text) {
                        out.push(
                            Finding::new(self.rules.quantity, node.span(), format!("`{}` is not a valid quantity: `{text}`", path_str(path)))
                                .with_hint("use a number with an optional suffix: m, k, M, G, Ki, Mi, Gi (e.g. `512Mi`, `250m`)"),
                        );
                    }
                    return;
                }
            }
            Some(INT_OR_STRING) => {
                if matches!(node.type_name(), "integer" | "string" | "null") {
                    return;
                }
            }
            _ => {}
        }
        if let Some(all) = s.get("all").and_then(Value::as_array) {
            for sub in all {
                self.validate(sub, node, path, out);
            }
        }
        if let Some(any) = s.get("any").and_then(Value::as_array) {
            let fitting: Vec<&Value> = any
                .iter()
                .filter(|alt| {
                    let (r, n) = self.resolve(alt);
                    n == Some(QUANTITY)
                        || n == Some(INT_OR_STRING)
                        || types(r).is_none_or(|t| accepts(&t, node))
                })
                .collect();
            if fitting.is_empty() {
                let expected: Vec<String> = any
                    .iter()
                    .filter_map(|a| types(self.resolve(a).0))
                    .flatten()
                    .filter(|t| *t != "null")
                    .map(str::to_string)
                    .collect();
                out.push(Finding::new(
                    self.rules.type_,
                    node.span(),
                    format!(
                        "`{}` must be {}, found {}",
                        path_str(path),
                        dedup_or(expected),
                        node.type_name()
                    ),
                ));
                return;
            }
            let mut best: Option<Vec<Finding>> = None;
            for alt in fitting {
                let mut tmp = Vec::new();
                self.validate(alt, node, path, &mut tmp);
                if tmp.is_empty() {
                    best = Some(tmp);
                    break;
                }
                if best.as_ref().is_none_or(|b| tmp.len() < b.len()) {
                    best = Some(tmp);
                }
            }
            out.extend(best.unwrap_or_default());
        }
        if let Some(t) = types(s)
            && !accepts(&t, node)
        {
            let expected: Vec<String> = t
                .iter()
                .filter(|x| **x != "null")
                .map(|x| x.to_string())
                .collect();
            let mut f = Finding::new(
                self.rules.type_,
                node.span(),
                format!(
                    "`{}` must be {}, found {}",
                    path_str(path),
                    dedup_or(expected.clone()),
                    node.type_name()
                ),
            );
            if expected.iter().any(|e| e == "string") && node.as_str().is_some() {
                f = f.with_hint("quote the value to make it a string");
            }
            out.push(f);
            return;
        }
        if let (Some(e), Some(text)) = (s.get("e").and_then(Value::as_array), node.as_str())
            && !node.is_null()
        {
            let ok = e.iter().any(|v| match v {
                Value::String(x) => x == text,
                Value::Null => false,
                other => *other == text,
            });
            if !ok {
                let allowed: Vec<String> = e
                    .iter()
                    .filter_map(|v| v.as_str().map(|s| format!("`{s}`")))
                    .collect();
                out.push(Finding::new(
                    self.rules.type_,
                    node.span(),
                    format!(
                        "`{}` is `{text}`, expected one of {}",
                        path_str(path),
                        allowed.join(", ")
                    ),
                ));
            }
        }
        match &node.value {
            Y::Map(entries) => self.object(s, node, entries, path, out),
            Y::Seq(items) => {
                if let Some(item) = s.get("i") {
                    for (n, it) in items.iter().enumerate() {
                        path.push(n.to_string());
                        self.validate(item, it, path, out);
                        path.pop();
                    }
                }
            }
            Y::Scalar { .. } => {}
        }
    }

    fn object(
        &self,
        s: &Value,
        node: &Node,
        entries: &[(Node, Node)],
        path: &mut Vec<String>,
        out: &mut Vec<Finding>,
    ) {
        let props = s.get("p").and_then(Value::as_object);
        let pattern = s.get("pp").and_then(Value::as_object);
        let additional = s.get("ap");
        if props.is_none() && pattern.is_none() && additional.is_none() {
            return;
        }
        for (k, v) in entries {
            let Some(key) = k.as_str() else { continue };
            path.push(key.to_string());
            if let Some(ps) = props.and_then(|p| p.get(key)) {
                self.validate(ps, v, path, out);
            } else if let Some((_, ps)) =
                pattern.and_then(|p| p.iter().find(|(pat, _)| pattern_matches(pat, key)))
            {
                self.validate(ps, v, path, out);
            } else {
                match additional {
                    Some(Value::Bool(false)) => {
                        let mut f = Finding::new(
                            self.rules.unknown,
                            k.span(),
                            format!(
                                "unknown field `{key}` in `{}`",
                                path_str(&path[..path.len() - 1])
                            ),
                        );
                        if let Some(c) = props.and_then(|p| closest(key, p.keys())) {
                            f = f.with_hint(format!("did you mean `{c}`?"));
                        }
                        out.push(f);
                    }
                    Some(ap @ Value::Object(_)) => self.validate(ap, v, path, out),
                    _ => {}
                }
            }
            path.pop();
        }
        if let Some(req) = s.get("r").and_then(Value::as_array) {
            for r in req.iter().filter_map(Value::as_str) {
                if node.get(r).is_none() {
                    out.push(Finding::new(
                        self.rules.required,
                        Span::new(
                            node.start,
                            crate::finding::Pos::new(node.start.line, node.start.column + 1),
                        ),
                        format!("`{}` is missing required field `{r}`", path_str(path)),
                    ));
                }
            }
        }
    }
}

fn dedup_or(mut v: Vec<String>) -> String {
    v.sort();
    v.dedup();
    match v.len() {
        0 => "something else".into(),
        1 => v[0].clone(),
        _ => {
            let last = v.pop().unwrap_or_default();
            format!("{} or {last}", v.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_quantity;

    #[test]
    fn quantities() {
        for ok in [
            "1", "100m", "0.5", "1Gi", "512Mi", "1e3", "2E-2", "+1k", "1.5G",
        ] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["1Gb", "1gi", "", "m", "1.2.3", "1 Gi", "1MB"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
