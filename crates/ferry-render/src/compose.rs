//! The compose target: one production compose file. Every container is hardened (read-only
//! root, all capabilities dropped, no-new-privileges, non-root, CPU/memory/pids limits,
//! rotated logs); accessories live on an internal network with named volumes, and the app
//! starts only once they are healthy.

use serde_json::{Map, Value, json};

use crate::app::{App, Limits, secs};
use crate::{Error, Rendered, yaml};

/// Capabilities database-style accessory images need to drop root themselves on start
/// (chown the data directory, then switch user). Everything else stays dropped.
const ACCESSORY_CAPS: [&str; 5] = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"];

/// Health checks for well-known accessory images (their own CLI tools, no curl needed).
fn accessory_health(image: &str) -> Option<Vec<String>> {
    let repo = image.rsplit('/').next().unwrap_or(image);
    let repo = repo.split([':', '@']).next().unwrap_or(repo);
    let cmd: &[&str] = match repo {
        "postgres" | "postgis" => &["CMD-SHELL", "pg_isready -U \"$${POSTGRES_USER:-postgres}\""],
        "redis" | "valkey" => &["CMD", "redis-cli", "ping"],
        "mysql" | "mariadb" => &["CMD", "mysqladmin", "ping", "-h", "127.0.0.1"],
        _ => return None,
    };
    Some(cmd.iter().map(|s| (*s).to_owned()).collect())
}

fn logging() -> Value {
    json!({ "driver": "json-file", "options": { "max-size": "10m", "max-file": "5" } })
}

fn limits_json(limits: Limits) -> Value {
    json!({
        "limits": {
            "cpus": format!("{}", limits.cpus),
            "memory": format!("{}M", limits.memory_mib()),
        },
        "reservations": {
            "cpus": format!("{}", limits.cpus / 2.0),
            "memory": format!("{}M", limits.memory_mib().div_ceil(2)),
        },
    })
}

fn hardening(app: &App<'_>, service: &mut Map<String, Value>, limits: Limits) {
    service.insert("pids_limit".into(), json!(limits.pids));
    let sec = &app.spec.security;
    let (uid, gid) = app.user();
    service.insert("user".into(), json!(format!("{uid}:{gid}")));
    service.insert("read_only".into(), json!(sec.read_only_root_fs));
    if sec.read_only_root_fs && !sec.tmpfs.is_empty() {
        service.insert("tmpfs".into(), json!(sec.tmpfs));
    }
    service.insert("cap_drop".into(), json!(["ALL"]));
    if !sec.cap_add.is_empty() {
        service.insert("cap_add".into(), json!(sec.cap_add));
    }
    if sec.no_new_privileges {
        service.insert("security_opt".into(), json!(["no-new-privileges:true"]));
    }
}

fn environment(
    env: &std::collections::BTreeMap<ferry_spec::EnvVarName, String>,
    secrets: &[ferry_spec::EnvVarName],
) -> Value {
    let mut m = Map::new();
    for (k, v) in env {
        // `$` would be interpolated by compose: escape it so values pass through verbatim.
        m.insert(k.as_str().to_owned(), json!(v.replace('$', "$$")));
    }
    for s in secrets {
        // Taken from the deploying shell's environment; compose refuses to start without it.
        m.insert(
            s.as_str().to_owned(),
            json!(format!(
                "${{{0}:?set {0} in the environment (ferry secrets)}}",
                s.as_str()
            )),
        );
    }
    Value::Object(m)
}

pub(crate) fn render(app: &App<'_>, out: &mut Rendered) -> Result<(), Error> {
    let web = app.web("compose")?;
    let image = app.image.full();
    let mut services = Map::new();
    let mut depends = Map::new();
    let mut volumes = Map::new();
    for (name, acc) in &app.spec.accessories {
        let mut s = Map::new();
        s.insert("image".into(), json!(acc.image));
        if let Some(cmd) = &acc.command {
            s.insert("command".into(), json!(cmd));
        }
        s.insert("environment".into(), environment(&acc.env, &acc.secrets));
        s.insert("restart".into(), json!("unless-stopped"));
        s.insert("networks".into(), json!(["backend"]));
        s.insert("logging".into(), logging());
        s.insert(
            "deploy".into(),
            json!({ "resources": limits_json(Limits::of(&ferry_spec::Resources::default())) }),
        );
        s.insert("cap_drop".into(), json!(["ALL"]));
        s.insert("cap_add".into(), json!(ACCESSORY_CAPS));
        s.insert("security_opt".into(), json!(["no-new-privileges:true"]));
        s.insert("pids_limit".into(), json!(crate::app::DEFAULT_PIDS));
        if !acc.volumes.is_empty() {
            s.insert(
                "volumes".into(),
                json!(
                    acc.volumes
                        .iter()
                        .map(|v| format!("{}:{}", v.name, v.path))
                        .collect::<Vec<_>>()
                ),
            );
            for v in &acc.volumes {
                volumes.insert(v.name.as_str().to_owned(), json!({}));
            }
        }
        let condition = match accessory_health(&acc.image) {
            Some(test) => {
                s.insert(
                    "healthcheck".into(),
                    json!({ "test": test, "interval": "5s", "timeout": "3s", "retries": 10, "start_period": "10s" }),
                );
                "service_healthy"
            }
            None => {
                app.note(format!(
                    "accessory {name}: no health check known for image {}; the app waits only \
                     for it to start",
                    acc.image
                ));
                "service_started"
            }
        };
        depends.insert(name.as_str().to_owned(), json!({ "condition": condition }));
        services.insert(name.as_str().to_owned(), Value::Object(s));
    }
    if !app.spec.accessories.is_empty() {
        app.note(format!(
            "compose: accessories keep {} so their images can switch to their own user",
            ACCESSORY_CAPS.join(", ")
        ));
    }

    let mut w = Map::new();
    w.insert("image".into(), json!(image));
    if let Some(cmd) = &web.command {
        w.insert("command".into(), json!(cmd));
    }
    w.insert(
        "environment".into(),
        environment(&app.spec.env, &app.spec.secrets),
    );
    let last = u32::from(web.port) + web.replicas.max(1) - 1;
    let published = if web.replicas > 1 {
        format!("{}-{last}", web.port)
    } else {
        web.port.to_string()
    };
    w.insert("ports".into(), json!([format!("{published}:{}", web.port)]));
    if let Some(h) = &web.health {
        // No `test`: the image's own HEALTHCHECK command runs (scratch images have no curl),
        // with the spec's timings.
        w.insert(
            "healthcheck".into(),
            json!({
                "interval": format!("{}s", secs(h.interval, 1)),
                "timeout": format!("{}s", secs(h.timeout, 1)),
                "retries": h.unhealthy_threshold.max(1),
                "start_period": format!("{}s", secs(h.start_period, 0)),
            }),
        );
        app.note("compose: the web health check runs the image's HEALTHCHECK command with the spec's timings");
    }
    w.insert("restart".into(), json!("unless-stopped"));
    w.insert(
        "stop_grace_period".into(),
        json!(format!(
            "{}s",
            secs(web.drain_timeout, 0) + secs(web.stop_timeout, 1)
        )),
    );
    w.insert(
        "deploy".into(),
        json!({ "replicas": web.replicas, "resources": limits_json(Limits::of(&web.resources)) }),
    );
    w.insert("logging".into(), logging());
    w.insert("networks".into(), json!(["frontend", "backend"]));
    if !depends.is_empty() {
        w.insert("depends_on".into(), Value::Object(depends.clone()));
    }
    w.insert(
        "labels".into(),
        json!({ "prometheus.io/scrape": "true", "prometheus.io/port": web.port.to_string() }),
    );
    hardening(app, &mut w, Limits::of(&web.resources));
    // Named after the app, so other containers and Prometheus reach it at `<app>:<port>`.
    services.insert(app.name.clone(), Value::Object(w));

    for (name, worker) in &app.spec.workers {
        let mut s = Map::new();
        s.insert("image".into(), json!(image));
        if let Some(cmd) = &worker.command {
            s.insert("command".into(), json!(cmd));
        }
        s.insert(
            "environment".into(),
            environment(&app.spec.env, &app.spec.secrets),
        );
        s.insert("restart".into(), json!("unless-stopped"));
        s.insert(
            "deploy".into(),
            json!({ "replicas": worker.replicas, "resources": limits_json(Limits::of(&worker.resources)) }),
        );
        s.insert("logging".into(), logging());
        s.insert("networks".into(), json!(["backend"]));
        if !depends.is_empty() {
            s.insert("depends_on".into(), Value::Object(depends.clone()));
        }
        hardening(app, &mut s, Limits::of(&worker.resources));
        services.insert(name.as_str().to_owned(), Value::Object(s));
    }

    // No top-level `name`: docker-compose 1.x rejects it; the project name comes from
    // `-p` or the directory, as with every compose file.
    let mut file = Map::new();
    file.insert("services".into(), Value::Object(services));
    file.insert(
        "networks".into(),
        // The backend network has no route out: accessories cannot reach the internet.
        json!({ "frontend": {}, "backend": { "internal": true } }),
    );
    if !volumes.is_empty() {
        file.insert("volumes".into(), Value::Object(volumes));
    }
    let name = match &app.env {
        Some(env) => format!("compose.{env}.yaml"),
        None => "compose.yaml".to_owned(),
    };
    out.file(name, yaml::file(&[Value::Object(file)]));
    Ok(())
}
