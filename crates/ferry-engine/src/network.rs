//! Networks: one bridge network per app and environment.

use std::collections::BTreeMap;

use bollard::models::NetworkCreateRequest;

use crate::engine::Engine;
use crate::error::{EngineError, api};

/// The network name ferry uses for an app in an environment.
pub fn network_name(app: &str, env: &str) -> String {
    format!("ferry-{app}-{env}")
}

impl Engine {
    /// Creates the bridge network `name` with `labels` unless it exists; returns its id.
    pub async fn ensure_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<String, EngineError> {
        let inspect = self
            .docker
            .inspect_network(
                name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await;
        match inspect {
            Ok(net) => return Ok(net.id.unwrap_or_default()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => return Err(api(format!("inspect network {name}"))(e)),
        }
        let request = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".to_owned()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        match self.docker.create_network(request).await {
            Ok(created) => Ok(created.id),
            // Another ferry process created it meanwhile.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(name.to_owned()),
            Err(e) => Err(api(format!("create network {name}"))(e)),
        }
    }

    /// Removes a network; a missing one is not an error.
    pub async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        match self.docker.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(api(format!("remove network {name}"))(e)),
        }
    }
}
