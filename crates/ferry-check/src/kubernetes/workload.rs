//! Pod-level security and reliability rules for workloads (Pod Security Standards
//! "restricted", kube-linter, kube-score and Polaris practices).

use super::object::Object;
use crate::finding::Finding;
use crate::yaml::Node;
use crate::{CheckOptions, Severity};

/// A pod template: its metadata and its spec.
pub(crate) struct Template<'a> {
    pub meta: Option<&'a Node>,
    pub spec: &'a Node,
}

impl<'a> Template<'a> {
    /// Template labels as (key, value).
    pub fn labels(&self) -> Vec<(&'a str, &'a str)> {
        self.meta
            .and_then(|m| m.get("labels"))
            .and_then(Node::as_map)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?, v.as_str()?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// All containers (init containers first).
    pub fn containers(&self, include_init: bool) -> Vec<&'a Node> {
        let mut v = Vec::new();
        let keys: &[&str] = if include_init {
            &["initContainers", "containers"]
        } else {
            &["containers"]
        };
        for k in keys {
            if let Some(s) = self.spec.get(k).and_then(Node::as_seq) {
                v.extend(s.iter());
            }
        }
        v
    }
}

/// The pod template of a workload object (the object itself for a Pod).
pub(crate) fn template<'a>(o: &Object<'a>) -> Option<Template<'a>> {
    let r = o.root;
    match o.kind.as_str() {
        "Pod" => Some(Template {
            meta: r.get("metadata"),
            spec: r.get("spec")?,
        }),
        // An Argo Rollout carries a Deployment's pod template.
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job"
        | "Rollout" => {
            let t = r.path(&["spec", "template"])?;
            Some(Template {
                meta: t.get("metadata"),
                spec: t.get("spec")?,
            })
        }
        "CronJob" => {
            let t = r.path(&["spec", "jobTemplate", "spec", "template"])?;
            Some(Template {
                meta: t.get("metadata"),
                spec: t.get("spec")?,
            })
        }
        _ => None,
    }
}

/// Declared replicas for scalable workloads (default 1); `None` for others.
pub(crate) fn replicas(o: &Object<'_>) -> Option<i64> {
    matches!(
        o.kind.as_str(),
        "Deployment" | "StatefulSet" | "ReplicaSet" | "ReplicationController" | "Rollout"
    )
    .then(|| {
        o.root
            .path(&["spec", "replicas"])
            .and_then(Node::as_i64)
            .unwrap_or(1)
    })
}

fn is_true(n: Option<&Node>) -> bool {
    n.and_then(Node::as_bool) == Some(true)
}

fn image_untagged_or_latest(image: &str) -> Option<&'static str> {
    if image.contains('@') || image.contains("{{") || image.contains('$') {
        return None;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        None => Some("has no tag"),
        Some((_, "latest")) => Some("uses `latest`"),
        _ => None,
    }
}

const DANGEROUS_CAPS: &[&str] = &[
    "ALL",
    "SYS_ADMIN",
    "NET_ADMIN",
    "SYS_PTRACE",
    "SYS_MODULE",
    "SYS_RAWIO",
    "DAC_READ_SEARCH",
    "BPF",
    "PERFMON",
];

pub(crate) fn check(o: &Object<'_>, opts: &CheckOptions, out: &mut Vec<Finding>) {
    let Some(t) = template(o) else { return };
    let batch = matches!(o.kind.as_str(), "Job" | "CronJob");
    let pod_sc = t.spec.get("securityContext");
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if let Some(n) = t.spec.get(key).filter(|n| n.as_bool() == Some(true)) {
            out.push(
                Finding::new(
                    "K8S018",
                    n.span(),
                    format!(
                        "`{key}: true` shares the host's namespace with `{}`",
                        o.name
                    ),
                )
                .with_hint(format!("remove `{key}`")),
            );
        }
    }
    if let Some(vols) = t.spec.get("volumes").and_then(Node::as_seq) {
        for v in vols {
            if let Some((k, _)) = v.entry("hostPath") {
                out.push(
                    Finding::new(
                        "K8S017",
                        k.span(),
                        "hostPath volume exposes the node's file system",
                    )
                    .with_hint("use an emptyDir, a PVC or a projected volume"),
                );
            }
        }
    }
    for c in t.containers(true) {
        let is_init = t
            .spec
            .get("initContainers")
            .and_then(Node::as_seq)
            .is_some_and(|s| s.iter().any(|x| std::ptr::eq(x, c)));
        let cname = c.get("name").and_then(Node::as_str).unwrap_or("?");
        let at = c.get("name").map_or(c.span(), Node::span);
        let sc = c.get("securityContext");
        let sc_get = |k: &str| sc.and_then(|s| s.get(k));
        if let Some(img) = c.get("image")
            && let Some(why) = img.as_str().and_then(image_untagged_or_latest)
        {
            out.push(
                Finding::new(
                    "K8S019",
                    img.span(),
                    format!("image of container `{cname}` {why}"),
                )
                .with_hint("pin a version tag or digest"),
            );
        }
        if is_true(sc_get("privileged")) {
            out.push(Finding::new(
                "K8S016",
                sc_get("privileged").map_or(at, Node::span),
                format!("container `{cname}` is privileged"),
            ));
        }
        let res = c.get("resources");
        let missing: Vec<&str> = [
            ("requests", "cpu"),
            ("requests", "memory"),
            ("limits", "memory"),
        ]
        .iter()
        .filter(|(a, b)| res.and_then(|r| r.path(&[a, b])).is_none())
        .map(|(a, b)| {
            if *a == "requests" {
                if *b == "cpu" {
                    "cpu request"
                } else {
                    "memory request"
                }
            } else {
                "memory limit"
            }
        })
        .collect();
        if !missing.is_empty() {
            out.push(Finding::new("K8S010", at, format!("container `{cname}` has no {}", missing.join(", "))).with_hint("set resources.requests.cpu, resources.requests.memory and resources.limits.memory"));
        }
        if !is_init && !batch {
            let probes: Vec<&str> = ["readinessProbe", "livenessProbe"]
                .into_iter()
                .filter(|p| c.get(p).is_none())
                .collect();
            if !probes.is_empty() {
                out.push(
                    Finding::new(
                        "K8S011",
                        at,
                        format!("container `{cname}` has no {}", probes.join(" or ")),
                    )
                    .with_hint(
                        "add an HTTP or exec probe so traffic and restarts follow real health",
                    ),
                );
            }
        }
        let non_root = sc_get("runAsNonRoot").and_then(Node::as_bool).or_else(|| {
            pod_sc
                .and_then(|s| s.get("runAsNonRoot"))
                .and_then(Node::as_bool)
        });
        let uid = sc_get("runAsUser").and_then(Node::as_i64).or_else(|| {
            pod_sc
                .and_then(|s| s.get("runAsUser"))
                .and_then(Node::as_i64)
        });
        if non_root != Some(true) && uid.is_none_or(|u| u == 0) {
            out.push(
                Finding::new("K8S012", at, format!("container `{cname}` may run as root"))
                    .with_hint("set securityContext.runAsNonRoot: true (and a non-zero runAsUser)"),
            );
        }
        if sc_get("readOnlyRootFilesystem").and_then(Node::as_bool) != Some(true) {
            out.push(Finding::new("K8S013", at, format!("container `{cname}` has a writable root filesystem")).with_hint("set securityContext.readOnlyRootFilesystem: true and mount an emptyDir for scratch space"));
        }
        if sc_get("allowPrivilegeEscalation").and_then(Node::as_bool) != Some(false) {
            out.push(
                Finding::new(
                    "K8S014",
                    at,
                    format!("container `{cname}` allows privilege escalation"),
                )
                .with_hint("set securityContext.allowPrivilegeEscalation: false"),
            );
        }
        let caps = sc_get("capabilities");
        let drops_all = caps
            .and_then(|c| c.get("drop"))
            .and_then(Node::as_seq)
            .is_some_and(|d| d.iter().any(|x| x.as_str() == Some("ALL")));
        if !drops_all {
            out.push(
                Finding::new(
                    "K8S015",
                    at,
                    format!("container `{cname}` does not drop all capabilities"),
                )
                .with_hint(
                    "set securityContext.capabilities.drop: [ALL] and add back only what is needed",
                ),
            );
        }
        if let Some(adds) = caps.and_then(|c| c.get("add")).and_then(Node::as_seq) {
            for a in adds {
                if let Some(cap) = a
                    .as_str()
                    .filter(|c| DANGEROUS_CAPS.contains(&c.trim_start_matches("CAP_")))
                {
                    out.push(Finding::new(
                        "K8S015",
                        a.span(),
                        format!("container `{cname}` adds dangerous capability `{cap}`"),
                    ));
                }
            }
        }
        // Hard-coded secrets in env values.
        if let Some(env) = c.get("env").and_then(Node::as_seq) {
            for e in env {
                let (Some(name), Some(v)) = (e.get("name").and_then(Node::as_str), e.get("value"))
                else {
                    continue;
                };
                if let Some(val) = v.as_str()
                    && crate::secrets::is_secret_assignment(name, val)
                {
                    out.push(
                            Finding::new("SEC003", v.span(), format!("env `{name}` of container `{cname}` has a hard-coded secret value ({})", crate::secrets::mask(val)))
                                .with_hint("use valueFrom.secretKeyRef"),
                        );
                }
            }
        }
    }
    if let (Some(r), Some(ns)) = (replicas(o), o.namespace.as_deref()) {
        if r == 1
            && matches!(o.kind.as_str(), "Deployment" | "StatefulSet")
            && opts.is_production_namespace(ns)
        {
            let at = o
                .root
                .path(&["spec", "replicas"])
                .map_or(o.span(), Node::span);
            out.push(
                Finding::new(
                    "K8S020",
                    at,
                    format!(
                        "{} `{}` in production namespace `{ns}` has a single replica",
                        o.kind, o.name
                    ),
                )
                .with_hint("run at least 2 replicas with a PodDisruptionBudget"),
            );
        }
        if r > 1 {
            let aff = t.spec.path(&["affinity", "podAntiAffinity"]).is_some();
            let spread = t
                .spec
                .get("topologySpreadConstraints")
                .and_then(Node::as_seq)
                .is_some_and(|s| !s.is_empty());
            if !aff && !spread {
                out.push(
                    Finding::new("K8S023", o.span(), format!("{} `{}` has {r} replicas but no pod anti-affinity or topology spread", o.kind, o.name))
                        .with_severity(Severity::Info)
                        .with_hint("add topologySpreadConstraints over kubernetes.io/hostname so one node failure does not take every replica"),
                );
            }
        }
    }
}
