//! ferry-engine: ferry's access to the Docker engine (API 1.41 and later, via bollard).
//!
//! Image builds with progress and cache reuse ([`Engine::build`]), image inspection and
//! clean-up, hardened containers ([`ContainerSpec`], [`Engine::run`]), networks per app and
//! environment, health waits ([`Engine::wait_healthy`]) and logs. The library never prints:
//! progress goes to a callback, failures are typed [`EngineError`]s.

mod build;
mod container;
mod context;
mod dockerignore;
mod engine;
mod error;
mod events;
mod health;
mod image;
mod network;
mod status;

pub use build::{BuildEvent, BuildFailure, BuildProgress, BuildReport, BuildRequest};
pub use container::{
    ContainerInfo, ContainerSpec, Healthcheck, Identity, LABEL_APP, LABEL_ENV, LABEL_REVISION,
    LABEL_ROLE, LABEL_SECRETS_DIR, LABEL_VERSION, LogLine, LogRotation, LogStream, Publish,
    Resources, Restart, RunningContainer, SECRETS_MOUNT, Secret, SecretMode, is_root_user,
};
pub use context::{PackedContext, pack};
pub use dockerignore::IgnoreRules;
pub use engine::{Engine, endpoint};
pub use error::EngineError;
pub use events::{ContainerEvent, ContainerEventKind};
pub use health::{HealthSource, HealthWait, HttpProbe, Unhealthy, UnhealthyReason, http_probe};
pub use image::{ImageInfo, ImageSummary};
pub use network::network_name;
pub use status::{ContainerStatus, OneOff};
