//! ferry's data plane: a reverse proxy that routes by host and path to services,
//! splits each service's traffic exactly between revision pools by weight, and
//! can be steered live through a [`ProxyHandle`].
//!
//! It knows routes, services, revisions, weights, backends and health; it knows
//! nothing of rollouts or the store. See `docs/proxy.md` for the routes file.

mod admin;
mod backend;
mod body;
mod chunked;
mod config;
mod conn_pool;
mod duration;
mod error;
mod error_page;
mod event_stream;
mod forward;
#[doc(hidden)]
pub mod fuzzing;
mod h1;
mod handle;
pub mod handover;
mod health;
mod proxy;
mod rate_limit;
mod route_table;
mod stats;
mod tls;
mod upgrade;
mod weight;
mod ws_frame;

pub use config::{
    AdminConfig, BackendProtocol, Balance, CertificateConfig, ERROR_PAGE_STATUSES, HealthConfig,
    Limits, ListenerConfig, OutlierConfig, PoolConfig, ProxyConfig, RateLimitConfig, RetryConfig,
    RouteConfig, RoutingConfig, ServiceConfig, Sticky, Timeouts,
};
pub use duration::HumanDuration;
pub use error::Error;
pub use forward::REVISION_HEADER;
pub use handle::{DrainOutcome, ProxyHandle};
pub use proxy::{RunningProxy, serve, start, start_taking_over};
pub use stats::{BackendSnapshot, RECENT_SAMPLES, RevisionSnapshot, StatsSnapshot};
pub use weight::{SmoothWeighted, Weight};
