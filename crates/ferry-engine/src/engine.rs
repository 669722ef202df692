//! The connection to the Docker engine.

use std::time::Duration;

use bollard::Docker;

use crate::error::{EngineError, api};

/// Long enough for any build or followed log stream; bollard's default (2 minutes) would
/// cut those off.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// A connected Docker engine client, its API version negotiated.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) docker: Docker,
    api_version: String,
}

/// The engine endpoint in use: `DOCKER_HOST` or the default local socket.
pub fn endpoint() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned())
}

impl Engine {
    /// Connects to the local engine (`DOCKER_HOST` or the default socket) and negotiates
    /// the API version, so old engines (API 1.41) work. Fails with
    /// [`EngineError::Unreachable`] when nothing answers.
    pub async fn connect() -> Result<Self, EngineError> {
        let unreachable = |source| EngineError::Unreachable {
            endpoint: endpoint(),
            source,
        };
        let docker = Docker::connect_with_local_defaults()
            .map_err(unreachable)?
            .with_timeout(REQUEST_TIMEOUT);
        Self::negotiate(docker, &endpoint()).await
    }

    /// Connects to the engine at `endpoint` (`unix:///path/to/docker.sock`,
    /// `tcp://host:port` or `http://host:port`) and negotiates the API version.
    pub async fn connect_to(endpoint: &str) -> Result<Self, EngineError> {
        let unreachable = |source| EngineError::Unreachable {
            endpoint: endpoint.to_owned(),
            source,
        };
        let timeout = REQUEST_TIMEOUT.as_secs();
        let docker = if let Some(path) = endpoint.strip_prefix("unix://") {
            Docker::connect_with_socket(path, timeout, bollard::API_DEFAULT_VERSION)
        } else {
            Docker::connect_with_http(endpoint, timeout, bollard::API_DEFAULT_VERSION)
        }
        .map_err(unreachable)?;
        Self::negotiate(docker, endpoint).await
    }

    async fn negotiate(docker: Docker, endpoint: &str) -> Result<Self, EngineError> {
        let docker = docker.negotiate_version().await.map_err(|e| match e {
            bollard::errors::Error::DockerResponseServerError { .. } => api("negotiate version")(e),
            e => EngineError::Unreachable {
                endpoint: endpoint.to_owned(),
                source: e,
            },
        })?;
        let v = docker.client_version();
        let api_version = format!("{}.{}", v.major_version, v.minor_version);
        Ok(Self {
            docker,
            api_version,
        })
    }

    /// The negotiated API version, e.g. `1.41`.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// The engine's own version, e.g. `20.10.24+dfsg1`.
    pub async fn server_version(&self) -> Result<String, EngineError> {
        let v = self.docker.version().await.map_err(api("version"))?;
        Ok(v.version.unwrap_or_default())
    }

    /// The underlying bollard client, for calls this crate does not wrap yet.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }
}
