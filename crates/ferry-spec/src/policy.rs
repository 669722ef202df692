//! The production policy: what an environment marked production must have. Findings are
//! warnings; the CLI turns them into errors under `--strict`.

use crate::diagnostic::Problem;
use crate::spec::Spec;

/// Checks `spec` against the production policy when `production` is true (no findings
/// otherwise): at least 2 web replicas, a health check, CPU/memory/pids limits on every
/// role, and an image tag other than `latest`. Findings carry a key `path` but no span;
/// [`crate::Document::policy`] adds the place in the file.
pub fn policy(spec: &Spec, production: bool) -> Vec<Problem> {
    let mut findings = Vec::new();
    if !production {
        return findings;
    }
    if let Some(web) = &spec.web {
        if web.replicas < 2 {
            findings.push(
                Problem::warning(
                    "policy-replicas",
                    format!(
                        "production runs {} web replica; a single failure is an outage",
                        web.replicas
                    ),
                    "set `replicas = 2` or more under [web] (or in this environment's overlay)",
                )
                .with_path("web.replicas"),
            );
        }
        if web.health.is_none() {
            findings.push(
                Problem::warning(
                    "policy-health-check",
                    "production web role has no health check, so bad instances keep receiving traffic",
                    "add [web.health] with `path = \"/health\"`",
                )
                .with_path("web.health"),
            );
        }
        if !web.resources.is_fully_limited() {
            findings.push(
                Problem::warning(
                    "policy-resources",
                    format!("production web role lacks limits: {}", missing_limits(&web.resources)),
                    "set cpus, memory and pids under [web.resources], e.g. cpus = 0.5, memory = \"256Mi\", pids = 256",
                )
                .with_path("web.resources"),
            );
        }
    }
    for (name, worker) in &spec.workers {
        if !worker.resources.is_fully_limited() {
            findings.push(
                Problem::warning(
                    "policy-resources",
                    format!(
                        "production worker `{name}` lacks limits: {}",
                        missing_limits(&worker.resources)
                    ),
                    format!("set cpus, memory and pids under [workers.{name}.resources]"),
                )
                .with_path(format!("workers.{name}.resources")),
            );
        }
    }
    if let Some(image) = &spec.image
        && image_tag(image).is_none_or(|tag| tag == "latest")
    {
        findings.push(
                Problem::warning(
                    "policy-latest-tag",
                    format!("production image \"{image}\" is not pinned (no tag, or `latest`)"),
                    "use an immutable tag such as the git SHA, e.g. \"registry/app:3f2c1ab\", or a digest",
                )
                .with_path("image"),
            );
    }
    findings
}

/// The tag of an image reference, if any (a digest counts as pinned).
fn image_tag(image: &str) -> Option<&str> {
    if let Some((_, digest)) = image.split_once('@') {
        return Some(digest);
    }
    // A colon after the last '/' separates the tag (a colon before it is a registry port).
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map(|(_, tag)| tag)
}

fn missing_limits(r: &crate::spec::Resources) -> String {
    let mut missing = Vec::new();
    if r.cpus.is_none() {
        missing.push("cpus");
    }
    if r.memory.is_none() {
        missing.push("memory");
    }
    if r.pids.is_none() {
        missing.push("pids");
    }
    missing.join(", ")
}

#[cfg(test)]
mod tests {
    use super::image_tag;

    #[test]
    fn image_tags_are_found_after_the_last_slash() {
        assert_eq!(image_tag("nginx"), None);
        assert_eq!(image_tag("nginx:latest"), Some("latest"));
        assert_eq!(image_tag("localhost:5000/app"), None);
        assert_eq!(image_tag("localhost:5000/app:1.2"), Some("1.2"));
        assert_eq!(image_tag("app@sha256:abc"), Some("sha256:abc"));
    }
}
