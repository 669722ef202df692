//! Secrets for replicas: the values the spec names, read from the daemon's store with
//! its key file and handed to the engine as 0600 files under `/run/secrets`.

use ferry_engine::{ContainerSpec, Secret, SecretMode};
use ferry_spec::Spec;

use crate::controller::Shared;

/// The key file that encrypts the secrets in the store, inside the state directory.
pub const SECRET_KEY_FILE: &str = "secret.key";

/// The host directory holding the replicas' secret files, inside the state directory.
const SECRET_FILES_DIR: &str = "secrets";

/// The names the spec lists that are not set for `app` in `env`.
pub(crate) async fn missing(
    shared: &Shared,
    app: &str,
    env: &str,
    spec: &Spec,
) -> Result<Vec<String>, ferry_store::Error> {
    let secrets = shared
        .store
        .secrets(&shared.state_dir.join(SECRET_KEY_FILE))?;
    let set = secrets.list(app, env).await?;
    Ok(spec
        .secrets
        .iter()
        .map(|n| n.as_str().to_owned())
        .filter(|n| !set.iter().any(|e| &e.name == n))
        .collect())
}

/// Why a deploy with unset secrets is refused, and how to set them.
pub(crate) fn missing_message(app: &str, env: &str, missing: &[String]) -> String {
    let commands = missing
        .iter()
        .map(|n| format!("`ferry secrets set {n} --env {env}`"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "the spec of {app} lists secrets that are not set in {env}: {}; set each (the value is read from stdin) with {commands}",
        missing.join(", ")
    )
}

/// Adds the values of the secrets the spec lists to `container`, as files.
pub(crate) async fn inject(
    shared: &Shared,
    env: &str,
    spec: &Spec,
    container: &mut ContainerSpec,
) -> Result<(), String> {
    if spec.secrets.is_empty() {
        return Ok(());
    }
    let app = spec.app.as_str();
    let secrets = shared
        .store
        .secrets(&shared.state_dir.join(SECRET_KEY_FILE))
        .map_err(|e| format!("open the secrets: {e}"))?;
    let values = secrets
        .get_all(app, env)
        .await
        .map_err(|e| format!("read the secrets: {e}"))?;
    let mut missing = Vec::new();
    for name in &spec.secrets {
        let name = name.as_str();
        match values.iter().find(|(n, _)| n == name) {
            Some((_, value)) => {
                let Some(text) = value.expose_str() else {
                    return Err(format!("the secret {name} is not UTF-8 text"));
                };
                container.secrets.push(Secret::new(name, text));
            }
            None => missing.push(name.to_owned()),
        }
    }
    if !missing.is_empty() {
        return Err(missing_message(app, env, &missing));
    }
    container.secret_mode = SecretMode::Files {
        dir: shared.state_dir.join(SECRET_FILES_DIR),
    };
    Ok(())
}

/// The values of the secrets the spec lists, to redact them from output ferry records
/// (hook and worker output in the timeline). Unreadable secrets give no value.
pub(crate) async fn values(shared: &Shared, env: &str, spec: &Spec) -> Vec<String> {
    if spec.secrets.is_empty() {
        return Vec::new();
    }
    let Ok(secrets) = shared
        .store
        .secrets(&shared.state_dir.join(SECRET_KEY_FILE))
    else {
        return Vec::new();
    };
    let Ok(all) = secrets.get_all(spec.app.as_str(), env).await else {
        return Vec::new();
    };
    all.iter()
        .filter(|(name, _)| spec.secrets.iter().any(|n| n.as_str() == name))
        .filter_map(|(_, value)| value.expose_str().map(str::to_owned))
        .filter(|v| !v.is_empty())
        .collect()
}

/// `line` with every occurrence of a secret value replaced by `[redacted]`.
pub(crate) fn redact(line: &str, values: &[String]) -> String {
    let mut out = line.to_owned();
    for value in values {
        for part in std::iter::once(value.as_str()).chain(value.lines()) {
            if part.trim().len() >= 3 && out.contains(part) {
                out = out.replace(part, "[redacted]");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_values_and_their_lines() {
        let values = vec!["hunter22".to_owned(), "line one\nline two".to_owned()];
        assert_eq!(
            redact("password=hunter22 ok", &values),
            "password=[redacted] ok"
        );
        assert_eq!(redact("got line two", &values), "got [redacted]");
        assert_eq!(redact("nothing here", &values), "nothing here");
    }
}
