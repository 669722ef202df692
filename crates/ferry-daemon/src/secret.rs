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
