//! Kubernetes checks: multi-document YAML with positions, schema validation against the
//! embedded OpenAPI of one pinned Kubernetes version, workload security and reliability
//! rules, and cross-object reference integrity within namespaces.

mod object;
mod refs;
mod workload;

pub use object::{KUBERNETES_VERSION, is_dns_subdomain, is_label_key, is_label_value};

use crate::{CheckOptions, Finding, yaml};

/// Per-file checks: YAML syntax, duplicate keys, schema, names and labels, workload rules.
pub fn check_file(text: &str, opts: &CheckOptions) -> Vec<Finding> {
    check_stream(&yaml::load(text), opts)
}

/// [`check_file`] on an already loaded stream.
pub fn check_stream(stream: &yaml::Stream, opts: &CheckOptions) -> Vec<Finding> {
    let mut out = crate::compose::yaml_findings(stream);
    let objects = object::objects(stream, 0, &mut out);
    for o in &objects {
        object::validate(o, opts, &mut out);
        workload::check(o, opts, &mut out);
        literal_secrets(o, &mut out);
    }
    out
}

/// Secret and ConfigMap entries whose key looks like a credential and whose value is a
/// literal: committed credentials, whatever the object kind.
fn literal_secrets(o: &object::Object<'_>, out: &mut Vec<Finding>) {
    if o.kind != "Secret" && o.kind != "ConfigMap" {
        return;
    }
    for section in ["stringData", "data"] {
        let Some(m) = o.root.get(section).and_then(yaml::Node::as_map) else {
            continue;
        };
        for (k, v) in m {
            let (Some(key), Some(val)) = (k.as_str(), v.as_str()) else {
                continue;
            };
            if crate::secrets::is_secret_assignment(key, val) {
                out.push(
                    Finding::new(
                        "SEC003",
                        v.span(),
                        format!("{} `{}` holds a literal credential in `{section}.{key}` ({})", o.kind, o.name, crate::secrets::mask(val)),
                    )
                    .with_hint("keep credentials out of git: use a sealed/external secret or create the Secret at deploy time"),
                );
            }
        }
    }
}

/// Cross-object checks over several files given as (file index, text); each finding comes
/// with the index of the file it belongs to.
pub fn check_cross(files: &[(usize, &str)], opts: &CheckOptions) -> Vec<(usize, Finding)> {
    let streams: Vec<(usize, yaml::Stream)> =
        files.iter().map(|(i, t)| (*i, yaml::load(t))).collect();
    let refs: Vec<(usize, &yaml::Stream)> = streams.iter().map(|(i, s)| (*i, s)).collect();
    check_cross_streams(&refs, opts)
}

/// [`check_cross`] on already loaded streams.
pub fn check_cross_streams(
    streams: &[(usize, &yaml::Stream)],
    opts: &CheckOptions,
) -> Vec<(usize, Finding)> {
    let mut sink = Vec::new();
    let objects: Vec<object::Object<'_>> = streams
        .iter()
        .flat_map(|(i, s)| object::objects(s, *i, &mut sink))
        .collect();
    refs::check(&objects, opts)
}

/// For each line (index = 1-based line number), the Helm template named by the closest
/// preceding `# Source:` comment of the same document.
pub fn helm_sources(text: &str) -> Vec<Option<String>> {
    let mut out = vec![None];
    let mut current: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if t == "---" || t.starts_with("--- ") {
            current = None;
        } else if let Some(src) = t.strip_prefix("# Source:") {
            current = Some(src.trim().to_string());
        }
        out.push(current.clone());
    }
    out
}
