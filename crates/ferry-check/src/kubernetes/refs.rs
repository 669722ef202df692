//! Cross-object reference integrity within namespaces: selectors, Services, Ingresses,
//! HPAs, PDBs, NetworkPolicies, and ConfigMap/Secret/PVC/ServiceAccount references.
//!
//! A reference to an object that is absent is an error when the referencing file itself
//! defines other objects of that kind in the namespace (a self-contained bundle, so the
//! target is provably missing from it), and a warning otherwise (it may live outside the
//! checked set).

use super::object::Object;
use super::workload::{Template, replicas, template};
use crate::finding::Finding;
use crate::yaml::Node;
use crate::{CheckOptions, Severity};

struct Pods<'a> {
    obj: usize,
    ns: &'a str,
    labels: Vec<(&'a str, &'a str)>,
    template: Template<'a>,
}

/// Does a LabelSelector (`matchLabels` + `matchExpressions`) select `labels`? `{}` selects all.
fn selects(selector: &Node, labels: &[(&str, &str)]) -> bool {
    let get = |k: &str| labels.iter().find(|(lk, _)| *lk == k).map(|(_, v)| *v);
    if let Some(m) = selector.get("matchLabels").and_then(Node::as_map) {
        for (k, v) in m {
            if get(k.as_str().unwrap_or("")) != v.as_str() {
                return false;
            }
        }
    }
    if let Some(exprs) = selector.get("matchExpressions").and_then(Node::as_seq) {
        for e in exprs {
            let key = e.get("key").and_then(Node::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Node::as_seq)
                .map(|s| s.iter().filter_map(Node::as_str).collect())
                .unwrap_or_default();
            let ok = match e.get("operator").and_then(Node::as_str).unwrap_or("") {
                "In" => get(key).is_some_and(|v| values.contains(&v)),
                "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
                "Exists" => get(key).is_some(),
                "DoesNotExist" => get(key).is_none(),
                _ => true,
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

/// A plain map selector (Service, ReplicationController).
fn selects_map(selector: &Node, labels: &[(&str, &str)]) -> bool {
    selector.as_map().is_some_and(|m| {
        m.iter().all(|(k, v)| {
            labels
                .iter()
                .any(|(lk, lv)| Some(*lk) == k.as_str() && Some(*lv) == v.as_str())
        })
    })
}

fn is_empty_map(n: &Node) -> bool {
    n.as_map().is_some_and(<[_]>::is_empty) || n.is_null()
}

pub(crate) fn check(objs: &[Object<'_>], _opts: &CheckOptions) -> Vec<(usize, Finding)> {
    let mut out: Vec<(usize, Finding)> = Vec::new();
    let pods: Vec<Pods<'_>> = objs
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            let t = template(o)?;
            Some(Pods {
                obj: i,
                ns: o.namespace.as_deref()?,
                labels: t.labels(),
                template: t,
            })
        })
        .collect();
    let find = |kind: &str, ns: &str, name: &str| {
        objs.iter()
            .find(|o| o.kind == kind && o.namespace.as_deref() == Some(ns) && o.name == name)
    };
    let bundle_has = |file: usize, kind: &str, ns: &str| {
        objs.iter()
            .any(|o| o.file == file && o.kind == kind && o.namespace.as_deref() == Some(ns))
    };
    let missing = |o: &Object<'_>,
                   node: &Node,
                   kind: &str,
                   name: &str,
                   rule: &'static str|
     -> Finding {
        let ns = o.namespace.as_deref().unwrap_or("default");
        if bundle_has(o.file, kind, ns) {
            Finding::new(
                rule,
                node.span(),
                format!("{kind} `{name}` does not exist in namespace `{ns}`"),
            )
        } else {
            Finding::new(rule, node.span(), format!("{kind} `{name}` is not in the checked files (namespace `{ns}`)"))
                .with_severity(Severity::Warning)
                .with_hint("check it together with the manifests that define it, or ignore if it is created elsewhere")
        }
    };
    // Workload selector vs its own template labels.
    for p in &pods {
        let o = &objs[p.obj];
        let Some(sel) = o.root.path(&["spec", "selector"]) else {
            continue;
        };
        let ok = if o.kind == "ReplicationController" {
            selects_map(sel, &p.labels)
        } else {
            selects(sel, &p.labels)
        };
        if !ok {
            out.push((
                o.file,
                Finding::new(
                    "K8S030",
                    sel.span(),
                    format!(
                        "{} `{}` selector does not match its pod template labels",
                        o.kind, o.name
                    ),
                )
                .with_hint(
                    "make spec.selector.matchLabels a subset of spec.template.metadata.labels",
                ),
            ));
        }
    }
    for o in objs {
        let Some(ns) = o.namespace.as_deref() else {
            continue;
        };
        let in_ns = || pods.iter().filter(move |p| p.ns == ns);
        match o.kind.as_str() {
            "Service" => {
                let Some(sel) = o
                    .root
                    .path(&["spec", "selector"])
                    .filter(|s| !is_empty_map(s))
                else {
                    continue;
                };
                let selected: Vec<&Pods<'_>> =
                    in_ns().filter(|p| selects_map(sel, &p.labels)).collect();
                if selected.is_empty() {
                    out.push((
                        o.file,
                        Finding::new(
                            "K8S031",
                            sel.span(),
                            format!(
                                "Service `{}` selects no pod template in namespace `{ns}`",
                                o.name
                            ),
                        ),
                    ));
                    continue;
                }
                let ports: Vec<(Option<&str>, i64)> = selected
                    .iter()
                    .flat_map(|p| p.template.containers(false))
                    .flat_map(|c| c.get("ports").and_then(Node::as_seq).unwrap_or(&[]).iter())
                    .map(|p| {
                        (
                            p.get("name").and_then(Node::as_str),
                            p.get("containerPort").and_then(Node::as_i64).unwrap_or(-1),
                        )
                    })
                    .collect();
                for sp in o
                    .root
                    .path(&["spec", "ports"])
                    .and_then(Node::as_seq)
                    .unwrap_or(&[])
                {
                    let Some(tp) = sp.get("targetPort") else {
                        continue;
                    };
                    if let Some(n) = tp.as_i64() {
                        if !ports.is_empty() && !ports.iter().any(|(_, p)| *p == n) {
                            out.push((o.file, Finding::new("K8S032", tp.span(), format!("targetPort {n} matches no containerPort of the selected pods")).with_severity(Severity::Warning)));
                        }
                    } else if let Some(name) = tp.as_str()
                        && !ports.iter().any(|(pn, _)| *pn == Some(name))
                    {
                        out.push((o.file, Finding::new("K8S032", tp.span(), format!("targetPort `{name}` names no container port of the selected pods"))));
                    }
                }
            }
            "Ingress" => {
                let mut backends: Vec<&Node> = Vec::new();
                if let Some(b) = o.root.path(&["spec", "defaultBackend"]) {
                    backends.push(b);
                }
                for rule in o
                    .root
                    .path(&["spec", "rules"])
                    .and_then(Node::as_seq)
                    .unwrap_or(&[])
                {
                    for path in rule
                        .path(&["http", "paths"])
                        .and_then(Node::as_seq)
                        .unwrap_or(&[])
                    {
                        if let Some(b) = path.get("backend") {
                            backends.push(b);
                        }
                    }
                }
                for b in backends {
                    let Some(svc) = b.get("service") else {
                        continue;
                    };
                    let Some(name_node) = svc.get("name") else {
                        continue;
                    };
                    let Some(name) = name_node.as_str() else {
                        continue;
                    };
                    match find("Service", ns, name) {
                        None => {
                            out.push((o.file, missing(o, name_node, "Service", name, "K8S033")))
                        }
                        Some(s) => {
                            let sports = s
                                .root
                                .path(&["spec", "ports"])
                                .and_then(Node::as_seq)
                                .unwrap_or(&[]);
                            if let Some(pn) = svc.path(&["port", "number"]) {
                                let n = pn.as_i64();
                                if !sports
                                    .iter()
                                    .any(|p| p.get("port").and_then(Node::as_i64) == n)
                                {
                                    out.push((
                                        o.file,
                                        Finding::new(
                                            "K8S033",
                                            pn.span(),
                                            format!(
                                                "Service `{name}` has no port {}",
                                                pn.as_str().unwrap_or("?")
                                            ),
                                        ),
                                    ));
                                }
                            }
                            if let Some(pn) = svc.path(&["port", "name"])
                                && !sports
                                    .iter()
                                    .any(|p| p.get("name").and_then(Node::as_str) == pn.as_str())
                            {
                                out.push((
                                    o.file,
                                    Finding::new(
                                        "K8S033",
                                        pn.span(),
                                        format!(
                                            "Service `{name}` has no port named `{}`",
                                            pn.as_str().unwrap_or("?")
                                        ),
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
            "HorizontalPodAutoscaler" => {
                let Some(t) = o.root.path(&["spec", "scaleTargetRef"]) else {
                    continue;
                };
                let (Some(kind), Some(name_node)) =
                    (t.get("kind").and_then(Node::as_str), t.get("name"))
                else {
                    continue;
                };
                let name = name_node.as_str().unwrap_or("");
                if find(kind, ns, name).is_none() {
                    out.push((o.file, missing(o, name_node, kind, name, "K8S034")));
                }
            }
            "PodDisruptionBudget" | "NetworkPolicy" => {
                let key = if o.kind == "NetworkPolicy" {
                    "podSelector"
                } else {
                    "selector"
                };
                let Some(sel) = o.root.path(&["spec", key]) else {
                    continue;
                };
                if is_empty_map(sel) {
                    continue;
                }
                if !pods.is_empty() && !in_ns().any(|p| selects(sel, &p.labels)) {
                    out.push((
                        o.file,
                        Finding::new(
                            "K8S036",
                            sel.span(),
                            format!(
                                "{} `{}` selects no pod template in namespace `{ns}`",
                                o.kind, o.name
                            ),
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    // Per workload: PDB, NetworkPolicy coverage, references.
    for p in &pods {
        let o = &objs[p.obj];
        let ns = p.ns;
        let selected_by = |kind: &str, key: &str| {
            objs.iter().any(|x| {
                x.kind == kind
                    && x.namespace.as_deref() == Some(ns)
                    && x.root
                        .path(&["spec", key])
                        .is_some_and(|s| selects(s, &p.labels))
            })
        };
        if replicas(o).is_some_and(|r| r > 1) && !selected_by("PodDisruptionBudget", "selector") {
            out.push((
                o.file,
                Finding::new(
                    "K8S021",
                    o.span(),
                    format!(
                        "{} `{}` has several replicas but no PodDisruptionBudget selects it",
                        o.kind, o.name
                    ),
                )
                .with_hint("add a PodDisruptionBudget with maxUnavailable: 1"),
            ));
        }
        if !matches!(o.kind.as_str(), "Job" | "CronJob")
            && !selected_by("NetworkPolicy", "podSelector")
        {
            out.push((
                o.file,
                Finding::new(
                    "K8S022",
                    o.span(),
                    format!(
                        "no NetworkPolicy in namespace `{ns}` selects the pods of {} `{}`",
                        o.kind, o.name
                    ),
                )
                .with_hint(
                    "add a default-deny NetworkPolicy and allow only the traffic the service needs",
                ),
            ));
        }
        references(o, &p.template, &find, &missing, &mut out);
    }
    out
}

type FindFn<'f, 'a> = dyn Fn(&str, &str, &str) -> Option<&'f Object<'a>> + 'f;
type MissingFn<'f> = dyn Fn(&Object<'_>, &Node, &str, &str, &'static str) -> Finding + 'f;

fn references<'f, 'a>(
    o: &Object<'_>,
    t: &Template<'_>,
    find: &FindFn<'f, 'a>,
    missing: &MissingFn<'f>,
    out: &mut Vec<(usize, Finding)>,
) {
    let ns = o.namespace.as_deref().unwrap_or("default");
    let optional = |n: &Node| n.get("optional").and_then(Node::as_bool) == Some(true);
    let claim_templates: Vec<&str> = o
        .root
        .path(&["spec", "volumeClaimTemplates"])
        .and_then(Node::as_seq)
        .map(|s| {
            s.iter()
                .filter_map(|c| c.path(&["metadata", "name"]).and_then(Node::as_str))
                .collect()
        })
        .unwrap_or_default();
    let mut refs: Vec<(&str, &Node)> = Vec::new();
    for v in t.spec.get("volumes").and_then(Node::as_seq).unwrap_or(&[]) {
        if let Some(c) = v.get("configMap").filter(|c| !optional(c)) {
            refs.extend(c.get("name").map(|n| ("ConfigMap", n)));
        }
        if let Some(s) = v.get("secret").filter(|c| !optional(c)) {
            refs.extend(s.get("secretName").map(|n| ("Secret", n)));
        }
        if let Some(p) = v.get("persistentVolumeClaim") {
            refs.extend(p.get("claimName").map(|n| ("PersistentVolumeClaim", n)));
        }
        for src in v
            .path(&["projected", "sources"])
            .and_then(Node::as_seq)
            .unwrap_or(&[])
        {
            if let Some(c) = src.get("configMap").filter(|c| !optional(c)) {
                refs.extend(c.get("name").map(|n| ("ConfigMap", n)));
            }
            if let Some(s) = src.get("secret").filter(|c| !optional(c)) {
                refs.extend(s.get("name").map(|n| ("Secret", n)));
            }
        }
    }
    for c in t.containers(true) {
        for e in c.get("env").and_then(Node::as_seq).unwrap_or(&[]) {
            if let Some(r) = e
                .path(&["valueFrom", "configMapKeyRef"])
                .filter(|r| !optional(r))
            {
                refs.extend(r.get("name").map(|n| ("ConfigMap", n)));
            }
            if let Some(r) = e
                .path(&["valueFrom", "secretKeyRef"])
                .filter(|r| !optional(r))
            {
                refs.extend(r.get("name").map(|n| ("Secret", n)));
            }
        }
        for e in c.get("envFrom").and_then(Node::as_seq).unwrap_or(&[]) {
            if let Some(r) = e.get("configMapRef").filter(|r| !optional(r)) {
                refs.extend(r.get("name").map(|n| ("ConfigMap", n)));
            }
            if let Some(r) = e.get("secretRef").filter(|r| !optional(r)) {
                refs.extend(r.get("name").map(|n| ("Secret", n)));
            }
        }
    }
    if let Some(sa) = t
        .spec
        .get("serviceAccountName")
        .or_else(|| t.spec.get("serviceAccount"))
        && sa.as_str() != Some("default")
    {
        refs.push(("ServiceAccount", sa));
    }
    for (kind, node) in refs {
        let Some(name) = node.as_str() else { continue };
        if name.contains("{{")
            || (kind == "PersistentVolumeClaim" && claim_templates.contains(&name))
        {
            continue;
        }
        if find(kind, ns, name).is_none() {
            out.push((o.file, missing(o, node, kind, name, "K8S035")));
        }
    }
}
