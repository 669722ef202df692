//! Kubernetes objects found in YAML documents, schema validation and name/label syntax.

use crate::finding::{Finding, Span};
use crate::schema::{Rules, Validator};
use crate::yaml::{Node, Stream};
use crate::{CheckOptions, Severity};
use serde_json::Value;
use std::sync::OnceLock;

static SCHEMA: &str = include_str!("../../schema/kubernetes.json");

/// The Kubernetes version whose OpenAPI schemas are embedded.
pub const KUBERNETES_VERSION: &str = "1.34.0";

fn schema() -> &'static Value {
    static S: OnceLock<Value> = OnceLock::new();
    S.get_or_init(|| serde_json::from_str(SCHEMA).unwrap_or(Value::Null))
}

/// Kinds whose objects live outside namespaces.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "StorageClass",
    "CustomResourceDefinition",
    "PriorityClass",
    "IngressClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
    "RuntimeClass",
    "PodSecurityPolicy",
    "CSIDriver",
    "VolumeAttachment",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
];

/// One Kubernetes object.
#[derive(Debug, Clone)]
pub struct Object<'a> {
    /// Index of the file it came from.
    pub file: usize,
    /// The document root.
    pub root: &'a Node,
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.name` (empty when missing).
    pub name: String,
    /// Effective namespace (`default` when not given); `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
}

impl Object<'_> {
    /// Span to report object-level findings on: the name, else the kind, else the document.
    pub fn span(&self) -> Span {
        self.root
            .path(&["metadata", "name"])
            .or_else(|| self.root.get("kind"))
            .map_or(self.root.span(), Node::span)
    }
}

/// Extracts objects from a stream; documents without apiVersion/kind that look like
/// objects are reported.
pub(crate) fn objects<'a>(
    stream: &'a Stream,
    file: usize,
    out: &mut Vec<Finding>,
) -> Vec<Object<'a>> {
    let mut objs = Vec::new();
    for doc in &stream.documents {
        let root = &doc.root;
        if root.as_map().is_none() {
            continue;
        }
        let api = root.get("apiVersion").and_then(Node::as_str);
        let kind = root.get("kind").and_then(Node::as_str);
        let (Some(api), Some(kind)) = (api, kind) else {
            if root.get("metadata").is_some() || root.get("spec").is_some() {
                out.push(Finding::new(
                    "K8S007",
                    root.span(),
                    "document has metadata/spec but no apiVersion or kind",
                ));
            }
            continue;
        };
        if kind.ends_with("List") {
            // v1 List and typed lists (RoleBindingList, ...): check each item as an object.
            if let Some(items) = root.get("items").and_then(Node::as_seq) {
                for item in items {
                    if let Some(o) = object(item, file) {
                        objs.push(o);
                    }
                }
            }
            continue;
        }
        let name = root
            .path(&["metadata", "name"])
            .and_then(Node::as_str)
            .unwrap_or("")
            .to_string();
        let namespace = (!CLUSTER_SCOPED.contains(&kind)).then(|| {
            root.path(&["metadata", "namespace"])
                .and_then(Node::as_str)
                .unwrap_or("default")
                .to_string()
        });
        objs.push(Object {
            file,
            root,
            api_version: api.to_string(),
            kind: kind.to_string(),
            name,
            namespace,
        });
    }
    objs
}

fn object(root: &Node, file: usize) -> Option<Object<'_>> {
    let api = root.get("apiVersion").and_then(Node::as_str)?;
    let kind = root.get("kind").and_then(Node::as_str)?;
    let name = root
        .path(&["metadata", "name"])
        .and_then(Node::as_str)
        .unwrap_or("")
        .to_string();
    let namespace = (!CLUSTER_SCOPED.contains(&kind)).then(|| {
        root.path(&["metadata", "namespace"])
            .and_then(Node::as_str)
            .unwrap_or("default")
            .to_string()
    });
    Some(Object {
        file,
        root,
        api_version: api.to_string(),
        kind: kind.to_string(),
        name,
        namespace,
    })
}

/// DNS-1123 subdomain: lowercase alphanumerics, `-` and `.`, at most 253 characters,
/// starting and ending alphanumeric.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// DNS-1123 label (or DNS-1035 when `letter_first`): ≤ 63 lowercase alphanumerics and `-`,
/// alphanumeric at both ends.
fn is_dns_label(s: &str, letter_first: bool) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.ends_with('-')
        && s.chars().next().is_some_and(|c| {
            if letter_first {
                c.is_ascii_lowercase()
            } else {
                c.is_ascii_alphanumeric()
            }
        })
}

fn is_label_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// A label key: optional DNS-subdomain prefix and `/`, then a name of at most 63 characters.
pub fn is_label_key(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(s),
    }
}

/// A label value: empty, or at most 63 alphanumerics, `-`, `_`, `.`, alphanumeric at both ends.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_label_name(s)
}

fn check_labels(node: Option<&Node>, what: &str, out: &mut Vec<Finding>) {
    let Some(m) = node.and_then(Node::as_map) else {
        return;
    };
    for (k, v) in m {
        let Some(key) = k.as_str() else { continue };
        if !is_label_key(key) {
            out.push(Finding::new("K8S005", k.span(), format!("invalid {what} key `{key}`")).with_hint("keys are `[prefix/]name`, name ≤ 63 chars of [A-Za-z0-9-_.], alphanumeric at both ends"));
        }
        if let Some(val) = v.as_str()
            && !v.is_null()
            && !is_label_value(val)
        {
            out.push(
                Finding::new(
                    "K8S005",
                    v.span(),
                    format!("invalid {what} value `{val}` for `{key}`"),
                )
                .with_hint("values are ≤ 63 chars of [A-Za-z0-9-_.], alphanumeric at both ends"),
            );
        }
    }
}

fn crd_schema(o: &Object<'_>, opts: &CheckOptions) -> Option<Value> {
    let (group, version) = match o.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", o.api_version.as_str()),
    };
    let file = format!("{}_{version}.json", o.kind.to_ascii_lowercase());
    for dir in &opts.crd_schema_dirs {
        for p in [dir.join(group).join(&file), dir.join(&file)] {
            if let Ok(text) = std::fs::read_to_string(&p)
                && let Ok(v) = serde_json::from_str::<Value>(&text)
            {
                return Some(compact(&v));
            }
        }
    }
    None
}

/// Converts a plain JSON schema (as published for CRDs) to the compact form.
fn compact(s: &Value) -> Value {
    let Some(m) = s.as_object() else {
        return Value::Object(Default::default());
    };
    let mut out = serde_json::Map::new();
    if let Some(t) = m.get("type") {
        out.insert(
            "t".into(),
            if t.is_array() {
                t.clone()
            } else {
                Value::Array(vec![t.clone()])
            },
        );
    }
    if let Some(Value::Object(p)) = m.get("properties") {
        out.insert(
            "p".into(),
            Value::Object(p.iter().map(|(k, v)| (k.clone(), compact(v))).collect()),
        );
    }
    if let Some(r) = m.get("required") {
        out.insert("r".into(), r.clone());
    }
    match m.get("additionalProperties") {
        Some(Value::Bool(false)) => {
            out.insert("ap".into(), Value::Bool(false));
        }
        Some(v @ Value::Object(_)) => {
            out.insert("ap".into(), compact(v));
        }
        _ => {}
    }
    if let Some(i) = m.get("items").filter(|i| i.is_object()) {
        out.insert("i".into(), compact(i));
    }
    if let Some(e) = m.get("enum") {
        out.insert("e".into(), e.clone());
    }
    let any: Vec<Value> = ["oneOf", "anyOf"]
        .iter()
        .filter_map(|k| m.get(*k)?.as_array())
        .flatten()
        .map(compact)
        .collect();
    if !any.is_empty() {
        out.insert("any".into(), Value::Array(any));
    }
    Value::Object(out)
}

/// Schema validation, names and labels.
pub(crate) fn validate(o: &Object<'_>, opts: &CheckOptions, out: &mut Vec<Finding>) {
    let rules = Rules {
        unknown: "K8S001",
        type_: "K8S002",
        required: "K8S003",
        quantity: "K8S004",
    };
    let empty = serde_json::Map::new();
    let defs = schema()
        .get("defs")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let key = format!("{}/{}", o.api_version, o.kind);
    let def = schema()
        .get("kinds")
        .and_then(|k| k.get(&key))
        .and_then(Value::as_str);
    let kustomize = o.api_version.starts_with("kustomize.config.k8s.io/");
    match def {
        Some(d) => {
            let s = serde_json::json!({ "ref": d });
            Validator { defs, rules }.validate(&s, o.root, &mut Vec::new(), out);
        }
        None if kustomize => {}
        None => match crd_schema(o, opts) {
            Some(s) => Validator { defs, rules }.validate(&s, o.root, &mut Vec::new(), out),
            None => {
                let builtin = [
                    "v1",
                    "apps/v1",
                    "batch/v1",
                    "networking.k8s.io/v1",
                    "policy/v1",
                    "autoscaling/v2",
                    "rbac.authorization.k8s.io/v1",
                ]
                .contains(&o.api_version.as_str())
                    || !o.api_version.contains('.');
                let msg = if builtin {
                    format!(
                        "`{}` `{}` is not part of Kubernetes {KUBERNETES_VERSION}",
                        o.api_version, o.kind
                    )
                } else {
                    format!(
                        "no schema for `{}` `{}` (custom resource); it was not validated",
                        o.api_version, o.kind
                    )
                };
                let f = Finding::new(
                    "K8S006",
                    o.root.get("kind").map_or(o.root.span(), Node::span),
                    msg,
                )
                .with_hint(
                    "pass a schema directory (crd_schema_dirs) holding `<kind>_<version>.json`",
                );
                out.push(if builtin {
                    f.with_severity(Severity::Error)
                } else {
                    f
                });
            }
        },
    }
    let name_node = o.root.path(&["metadata", "name"]);
    if let Some(n) = name_node
        && let Some(name) = n.as_str()
        && !name.contains("{{")
    {
        // Services (and Namespaces) need a DNS-1035/1123 label: no dots, ≤ 63 characters.
        let label_only = matches!(o.kind.as_str(), "Service" | "Namespace");
        if label_only && !is_dns_label(name, o.kind == "Service") {
            out.push(
                Finding::new("K8S005", n.span(), format!("invalid {} name `{name}`", o.kind))
                    .with_hint("use ≤ 63 lowercase alphanumerics and `-`, no dots (a Service name must start with a letter)"),
            );
        } else if !is_dns_subdomain(name) {
            out.push(
                Finding::new("K8S005", n.span(), format!("invalid object name `{name}`"))
                    .with_hint("names are lowercase alphanumerics, `-` and `.`, ≤ 253 characters"),
            );
        }
    }
    let generate = o.root.path(&["metadata", "generateName"]).is_some();
    if name_node.is_none() && !generate && !o.api_version.starts_with("kustomize.config.k8s.io/") {
        let at = o.root.get("metadata").map_or(o.root.span(), Node::span);
        out.push(
            Finding::new("K8S003", at, format!("{} has no `metadata.name`", o.kind))
                .with_hint("every object needs metadata.name (or metadata.generateName)"),
        );
    }
    check_labels(o.root.path(&["metadata", "labels"]), "label", out);
    if let Some(t) = super::workload::template(o) {
        check_labels(
            t.meta.and_then(|m| m.get("labels")),
            "pod template label",
            out,
        );
    }
    check_labels(
        o.root.path(&["spec", "selector", "matchLabels"]),
        "selector label",
        out,
    );
}
