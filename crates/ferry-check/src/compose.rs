//! Docker Compose checks: the compose-spec schema (unknown keys, types) and production
//! rules (healthchecks, limits, image tags, privileges, secrets, dependencies, references).

use crate::schema::{Rules, Validator};
use crate::yaml::{self, Node, Value as Y};
use crate::{CheckOptions, Finding, Severity};
use serde_json::Value;
use std::sync::OnceLock;

static SCHEMA: &str = include_str!("../schema/compose.json");

fn schema() -> &'static Value {
    static S: OnceLock<Value> = OnceLock::new();
    S.get_or_init(|| serde_json::from_str(SCHEMA).unwrap_or(Value::Null))
}

/// Images of services that keep state; they deserve health-gated dependencies and must
/// not be published on every interface.
const STATEFUL: &[&str] = &[
    "postgres",
    "postgis",
    "mysql",
    "mariadb",
    "mongo",
    "redis",
    "valkey",
    "keydb",
    "rabbitmq",
    "elasticsearch",
    "opensearch",
    "kafka",
    "zookeeper",
    "cassandra",
    "etcd",
    "nats",
    "minio",
    "clickhouse",
    "couchdb",
    "influxdb",
    "mssql",
    "timescale",
];

fn is_stateful(image: &str) -> bool {
    let name = image.rsplit('/').next().unwrap_or(image);
    let name = name.split([':', '@']).next().unwrap_or(name);
    STATEFUL.iter().any(|s| name.contains(s))
}

/// YAML syntax and duplicate-key findings shared by compose and Kubernetes.
pub(crate) fn yaml_findings(stream: &yaml::Stream) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some((pos, msg)) = &stream.error {
        out.push(Finding::new(
            "YML001",
            crate::Span::on_line(pos.line.max(1), pos.column.max(1), 1),
            format!("YAML syntax error: {msg}"),
        ));
    }
    for d in &stream.duplicates {
        out.push(
            Finding::new(
                "YML002",
                d.span,
                format!(
                    "duplicate key `{}` (first on line {}); the later value silently wins",
                    d.key, d.first_line
                ),
            )
            .with_hint("remove or merge one of the two keys"),
        );
    }
    out
}

/// Checks a compose file.
pub fn check(text: &str, _opts: &CheckOptions) -> Vec<Finding> {
    let stream = yaml::load(text);
    let mut out = yaml_findings(&stream);
    for doc in &stream.documents {
        check_doc(&doc.root, &mut out);
    }
    out
}

fn check_doc(root: &Node, out: &mut Vec<Finding>) {
    if root.as_map().is_none() {
        if !root.is_null() {
            out.push(Finding::new(
                "CP002",
                root.span(),
                "a compose file must be a mapping",
            ));
        }
        return;
    }
    if let (Some(defs), Some(root_schema)) = (
        schema().get("defs").and_then(Value::as_object),
        schema().get("root"),
    ) {
        let v = Validator {
            defs,
            rules: Rules {
                unknown: "CP001",
                type_: "CP002",
                required: "CP002",
                quantity: "CP002",
            },
        };
        v.validate(root_schema, root, &mut Vec::new(), out);
    }
    let Some(services) = root.get("services").and_then(Node::as_map) else {
        if root.get("services").is_none() && root.get("include").is_none() {
            out.push(Finding::new("CP012", root.span(), "no `services` defined"));
        }
        return;
    };
    let declared = |section: &str| -> Vec<String> {
        root.get(section)
            .and_then(Node::as_map)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, _)| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let networks = declared("networks");
    let volumes = declared("volumes");
    let secrets = declared("secrets");
    let configs = declared("configs");
    let names: Vec<&str> = services.iter().filter_map(|(k, _)| k.as_str()).collect();
    let image_of = |name: &str| {
        services
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .and_then(|(_, s)| s.get("image"))
            .and_then(Node::as_str)
    };
    let depended: Vec<String> = services
        .iter()
        .flat_map(|(_, s)| dep_names(s).into_iter().map(|(n, _, _)| n))
        .collect();
    for (key, svc) in services {
        let Some(name) = key.as_str() else { continue };
        if svc.as_map().is_none() {
            continue;
        }
        let ks = key.span();
        let image = svc.get("image").and_then(Node::as_str);
        let stateful = image.is_some_and(is_stateful);
        // Rules
        let hc = svc.get("healthcheck");
        let hc_disabled = hc.and_then(|h| h.get("disable")).and_then(Node::as_bool) == Some(true);
        if hc.is_none() || hc_disabled {
            let serves = depended.iter().any(|d| d == name) || svc.get("ports").is_some();
            let f = Finding::new("CP003", ks, format!("service `{name}` has no healthcheck"))
                .with_hint("add `healthcheck: {test: [\"CMD\", ...], interval: 10s, retries: 3}` so restarts and depends_on can tell when it is ready");
            out.push(if serves {
                f
            } else {
                f.with_severity(Severity::Info)
            });
        }
        let mem_limit = svc.get("mem_limit").is_some()
            || svc.path(&["deploy", "resources", "limits"]).is_some();
        if !mem_limit {
            out.push(
                Finding::new(
                    "CP004",
                    ks,
                    format!("service `{name}` has no memory/CPU limit"),
                )
                .with_hint("set `deploy.resources.limits` (memory, cpus)"),
            );
        }
        if let (Some(img), Some(node)) = (image, svc.get("image"))
            && svc.get("build").is_none()
            && !img.contains('$')
            && !img.contains('@')
        {
            let last = img.rsplit('/').next().unwrap_or(img);
            match last.split_once(':') {
                None => out.push(
                    Finding::new("CP005", node.span(), format!("image `{img}` has no tag"))
                        .with_hint("pin a version tag or digest"),
                ),
                Some((_, "latest")) => out.push(
                    Finding::new("CP005", node.span(), format!("image `{img}` uses `latest`"))
                        .with_hint("pin a version tag or digest"),
                ),
                _ => {}
            }
        }
        if let Some(p) = svc.get("privileged").filter(|p| p.as_bool() == Some(true)) {
            out.push(
                Finding::new(
                    "CP006",
                    p.span(),
                    format!("service `{name}` runs privileged"),
                )
                .with_hint("grant only the capabilities it needs with cap_add"),
            );
        }
        if let Some(n) = svc.get("network_mode") {
            match n.as_str() {
                Some("host") => out.push(Finding::new(
                    "CP007",
                    n.span(),
                    format!("service `{name}` uses the host network"),
                )),
                Some(m) if m.starts_with("service:") => {
                    let target = &m["service:".len()..];
                    if !names.contains(&target) {
                        out.push(Finding::new(
                            "CP010",
                            n.span(),
                            format!("network_mode refers to undefined service `{target}`"),
                        ));
                    }
                }
                _ => {}
            }
        }
        if svc.get("restart").is_none() && svc.path(&["deploy", "restart_policy"]).is_none() {
            out.push(
                Finding::new(
                    "CP011",
                    ks,
                    format!("service `{name}` has no restart policy"),
                )
                .with_hint("set `restart: unless-stopped` (or deploy.restart_policy)"),
            );
        }
        environment(svc, out);
        for (dep, cond, span) in dep_names(svc) {
            if !names.contains(&dep.as_str()) {
                out.push(Finding::new(
                    "CP010",
                    span,
                    format!("depends_on refers to undefined service `{dep}`"),
                ));
                continue;
            }
            if image_of(&dep).is_some_and(is_stateful) && cond.as_deref() != Some("service_healthy")
            {
                out.push(
                    Finding::new("CP008", span, format!("`{name}` depends on stateful service `{dep}` without `condition: service_healthy`"))
                        .with_hint(format!("use `depends_on: {{{dep}: {{condition: service_healthy}}}}` and give `{dep}` a healthcheck")),
                );
            }
        }
        if stateful {
            published_ports(name, svc, out);
        }
        // References to top-level sections.
        refs(svc.get("networks"), &networks, "network", &["default"], out);
        refs(svc.get("secrets"), &secrets, "secret", &[], out);
        refs(svc.get("configs"), &configs, "config", &[], out);
        if let Some(vols) = svc.get("volumes").and_then(Node::as_seq) {
            for v in vols {
                let src = match v.as_str() {
                    Some(s) => s.split(':').next().map(str::to_string),
                    None => v
                        .get("type")
                        .and_then(Node::as_str)
                        .filter(|t| *t == "volume")
                        .and(v.get("source").and_then(Node::as_str))
                        .map(str::to_string),
                };
                if let Some(src) = src {
                    let named = !src.is_empty()
                        && !src.starts_with(['/', '.', '~', '$'])
                        && !src.contains('/')
                        && v.as_str().is_some_and(|s| s.contains(':'))
                        || v.as_map().is_some();
                    if named
                        && !src.is_empty()
                        && !src.starts_with(['/', '.', '~', '$'])
                        && !volumes.contains(&src)
                    {
                        out.push(Finding::new(
                            "CP010",
                            v.span(),
                            format!("volume `{src}` is not declared under top-level `volumes`"),
                        ));
                    }
                }
            }
        }
    }
}

/// depends_on entries: (service, condition, span of the name).
fn dep_names(svc: &Node) -> Vec<(String, Option<String>, crate::Span)> {
    match svc.get("depends_on").map(|d| &d.value) {
        Some(Y::Seq(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(|s| (s.to_string(), None, i.span())))
            .collect(),
        Some(Y::Map(m)) => m
            .iter()
            .filter_map(|(k, v)| {
                k.as_str().map(|s| {
                    (
                        s.to_string(),
                        v.get("condition")
                            .and_then(Node::as_str)
                            .map(str::to_string),
                        k.span(),
                    )
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn refs(
    node: Option<&Node>,
    declared: &[String],
    what: &str,
    implicit: &[&str],
    out: &mut Vec<Finding>,
) {
    let Some(node) = node else { return };
    let items: Vec<(&str, &Node)> = match &node.value {
        Y::Seq(s) => s
            .iter()
            .filter_map(|i| {
                i.as_str()
                    .or_else(|| i.get("source").and_then(Node::as_str))
                    .map(|n| (n, i))
            })
            .collect(),
        Y::Map(m) => m
            .iter()
            .filter_map(|(k, _)| k.as_str().map(|n| (n, k)))
            .collect(),
        Y::Scalar { .. } => Vec::new(),
    };
    for (name, n) in items {
        if !declared.iter().any(|d| d == name) && !implicit.contains(&name) && !name.contains('$') {
            out.push(Finding::new(
                "CP010",
                n.span(),
                format!("{what} `{name}` is not declared under top-level `{what}s`"),
            ));
        }
    }
}

fn environment(svc: &Node, out: &mut Vec<Finding>) {
    let Some(env) = svc.get("environment") else {
        return;
    };
    let pairs: Vec<(String, String, crate::Span)> = match &env.value {
        Y::Map(m) => m
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.as_str()?.to_string(),
                    v.as_str().unwrap_or("").to_string(),
                    v.span(),
                ))
            })
            .collect(),
        Y::Seq(s) => s
            .iter()
            .filter_map(|i| {
                let t = i.as_str()?;
                let (k, v) = t.split_once('=')?;
                Some((k.to_string(), v.to_string(), i.span()))
            })
            .collect(),
        Y::Scalar { .. } => Vec::new(),
    };
    for (k, v, span) in pairs {
        if crate::secrets::is_secret_assignment(&k, &v) {
            out.push(
                Finding::new(
                    "SEC003",
                    span,
                    format!(
                        "environment variable `{k}` has a hard-coded secret value ({})",
                        crate::secrets::mask(&v)
                    ),
                )
                .with_hint("use `secrets:` or `${VAR}` interpolation from an untracked .env file"),
            );
        }
    }
}

fn published_ports(name: &str, svc: &Node, out: &mut Vec<Finding>) {
    let Some(ports) = svc.get("ports").and_then(Node::as_seq) else {
        return;
    };
    for p in ports {
        let exposed_everywhere = match (&p.value, p.as_str()) {
            (Y::Scalar { .. }, Some(s)) => {
                let parts: Vec<&str> = s.split(':').collect();
                // "5432" publishes a random host port on all interfaces too.
                parts.len() == 1
                    || parts.len() == 2
                    || (parts.len() == 3 && matches!(parts[0], "0.0.0.0" | "" | "[::]" | "::"))
            }
            (Y::Map(_), _) => p
                .get("host_ip")
                .and_then(Node::as_str)
                .is_none_or(|h| h == "0.0.0.0" || h == "::"),
            _ => false,
        };
        if exposed_everywhere {
            out.push(
                Finding::new("CP009", p.span(), format!("database service `{name}` is published on all interfaces"))
                    .with_hint("remove the port (services reach it over the compose network) or bind it to 127.0.0.1"),
            );
        }
    }
}
