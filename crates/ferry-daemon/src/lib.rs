//! ferry-daemon: `ferry serve` — the proxy data plane, the rollout controller, the store,
//! the Docker engine connection and the HTTP API, in one process.
//!
//! [`serve`] runs the daemon until SIGTERM or Ctrl-C; [`Client`] is the CLI's side of
//! the API. See docs/deploy.md for what is implemented and what is not yet.

mod analysis;
mod api;
mod client;
mod controller;
mod error;
mod hook;
mod notify;
mod plan;
pub mod protocol;
mod provider;
mod reconcile;
mod recovery;
mod replica;
mod retention;
mod secret;
pub mod token;
mod warm;
mod worker;

pub use secret::SECRET_KEY_FILE;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ferry_proxy::ProxyConfig;
use ferry_proxy::handover::{self, HandoverSocket, ListenerSockets};

pub use client::Client;
pub use error::DaemonError;
pub use plan::plan;
pub use recovery::daemon_id;
pub use replica::{LABEL_DAEMON, LABEL_DEPLOY, LABEL_ROLLOUT};

/// The file in the state directory holding the API's bound address (for clients).
pub const API_ADDR_FILE: &str = "api-addr";

/// The file in the state directory holding the proxy's routing table, saved on every
/// change: a daemon restarted after a crash serves it from its first connection, before
/// its recovery keeps only the backends that survived.
pub const ROUTING_FILE: &str = "routing.json";

/// The unix socket in the state directory through which a new daemon takes over the
/// listening sockets of the running one (`ferry serve --takeover`).
pub const HANDOVER_SOCKET: &str = "handover.sock";

/// The role of the API listener in a handover offer.
const ROLE_API: &str = "api";

/// The default proxy listener.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default API listener.
pub const DEFAULT_API: &str = "127.0.0.1:7878";

/// How to run the daemon.
#[derive(Debug, Clone)]
pub struct Config {
    /// The proxy's HTTP listener (port 0 picks one).
    pub listen: SocketAddr,
    /// The API's listener (port 0 picks one).
    pub api: SocketAddr,
    /// The state directory: token, API address, and the SQLite store.
    pub state_dir: PathBuf,
    /// The store location when not `<state>/state.db` (a path or `postgres://` URL).
    pub store: Option<String>,
    /// Take over the listening sockets and the routing table of the daemon running with
    /// this state directory instead of binding; it drains and exits.
    pub takeover: bool,
    /// A PEM file of CA certificates trusted for `https://` webhooks, besides the webpki
    /// roots (a private CA).
    pub webhook_ca: Option<PathBuf>,
}

/// Where a started daemon listens.
#[derive(Debug, Clone)]
pub struct Started {
    /// The proxy's listener.
    pub proxy: SocketAddr,
    /// The API's listener.
    pub api: SocketAddr,
    /// The token file.
    pub token_file: PathBuf,
}

fn state_io(path: &Path) -> impl FnOnce(std::io::Error) -> DaemonError + '_ {
    move |source| DaemonError::StateFile {
        path: path.to_owned(),
        source,
    }
}

/// Runs the daemon until SIGTERM or Ctrl-C, or until a successor takes over; `on_ready` is
/// called once everything listens. On shutdown the API stops, then the proxy finishes the
/// requests in flight. Containers keep running.
///
/// With `takeover`, the listening sockets and the live routing table come from the running
/// daemon through `<state>/handover.sock` (see `ferry_proxy::handover`): the proxy serves
/// that table from its first accepted connection; once it accepts, the old daemon stops
/// accepting and drains, and this one waits for it to exit before recovery and the API
/// (so two controllers never act at once).
pub async fn serve(config: Config, on_ready: impl FnOnce(&Started)) -> Result<(), DaemonError> {
    let dir = &config.state_dir;
    std::fs::create_dir_all(dir).map_err(state_io(dir))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(state_io(dir))?;
    }
    let token = token::load_or_create(dir)?;
    let handover_path = dir.join(HANDOVER_SOCKET);
    let (mut takeover, mut handover_socket) = if config.takeover {
        (Some(handover::take_over(&handover_path).await?), None)
    } else {
        (None, Some(HandoverSocket::bind(&handover_path, false)?))
    };
    let webhook_tls =
        Arc::new(notify::tls_config(config.webhook_ca.as_deref()).map_err(DaemonError::WebhookCa)?);
    let location = config
        .store
        .clone()
        .unwrap_or_else(|| dir.join("state.db").display().to_string());
    let store = ferry_store::Store::open(&location).await?;
    let engine = ferry_engine::Engine::connect().await?;
    // Built from a preset so new proxy settings keep their defaults; no routes until
    // the first replica of an app is healthy.
    let mut proxy_config = ProxyConfig::single(config.listen, config.listen);
    proxy_config.routes.clear();
    proxy_config.services.clear();
    proxy_config.state_file = Some(routing_file(dir));
    let shutdown_timeout = proxy_config.timeouts.shutdown.0;
    let proxy = match takeover.as_mut() {
        Some(t) => ferry_proxy::start_taking_over(proxy_config, t).await?,
        None => ferry_proxy::start(proxy_config).await?,
    };
    let handle = proxy.handle.clone();
    let proxy_addr = handle
        .listen_addrs()
        .first()
        .copied()
        .unwrap_or(config.listen);
    let bind_err = |source| DaemonError::Bind {
        addr: config.api,
        source,
    };
    let inherited = takeover
        .as_mut()
        .and_then(|t| t.take_listener(ROLE_API, config.api))
        .transpose()?
        .and_then(|mut sockets| (!sockets.is_empty()).then(|| sockets.swap_remove(0)));
    let api_socket = match inherited {
        Some(socket) => socket,
        None => tokio::net::TcpListener::bind(config.api)
            .await
            .and_then(tokio::net::TcpListener::into_std)
            .map_err(bind_err)?,
    };
    let api_copy = api_socket.try_clone().map_err(bind_err)?;
    let listener = tokio::net::TcpListener::from_std(api_socket).map_err(bind_err)?;
    let api_addr = listener.local_addr().map_err(bind_err)?;
    if let Some(t) = takeover {
        let old = t.ready().await?;
        let pid = old.pid();
        tracing::info!(
            pid,
            "took over the listening sockets; the old daemon drains"
        );
        handover_socket = Some(HandoverSocket::bind(&handover_path, true)?);
        if !old
            .exited(shutdown_timeout + std::time::Duration::from_secs(15))
            .await
        {
            tracing::warn!(pid, "the old daemon has not exited; recovering anyway");
        }
    }
    let addr_file = dir.join(API_ADDR_FILE);
    std::fs::write(&addr_file, api_addr.to_string()).map_err(state_io(&addr_file))?;
    let shared = Arc::new(controller::Shared {
        daemon_id: recovery::daemon_id(dir),
        proxy: handle.clone(),
        engine,
        store,
        apps: Mutex::new(HashMap::new()),
        networks: tokio::sync::Mutex::new(()),
        webhook_tls,
        state_dir: std::fs::canonicalize(dir).map_err(state_io(dir))?,
    });
    recovery::recover(&shared).await;
    // After the recovery (it adopts the survivors): replaces the live replicas lost while
    // the daemon was down, then those that die later.
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    // It stops with the API: after a handover the successor's reconciler takes over.
    reconcile::spawn(shared.clone(), stopping.clone());
    let router = api::router(Arc::new(api::Api {
        shared,
        token,
        stopping,
    }));
    on_ready(&Started {
        proxy: proxy_addr,
        api: api_addr,
        token_file: dir.join(token::TOKEN_FILE),
    });
    let stop = handle.clone();
    // The successor that took over, kept until this process ends (it waits for that).
    let successor = Arc::new(Mutex::new(None));
    let keep = Arc::clone(&successor);
    let config_api = config.api;
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let handed = async {
                match &handover_socket {
                    Some(socket) => {
                        socket
                            .hand_over(|| {
                                let (mut listeners, routing) = handover::proxy_offer(&stop)?;
                                listeners.push(ListenerSockets::of(
                                    ROLE_API,
                                    config_api,
                                    &[&api_copy],
                                )?);
                                Ok((listeners, routing))
                            })
                            .await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown_signal() => {
                    // Long polls answer now, so their connections close and shutdown proceeds.
                    stopping_tx.send_replace(true);
                    tracing::info!("shutting down: the proxy finishes requests in flight");
                    stop.shutdown();
                }
                s = handed => {
                    tracing::info!(pid = s.pid(), "handed over to a new daemon: the proxy finishes requests in flight");
                    stopping_tx.send_replace(true);
                    stop.shutdown_after_handover();
                    *keep.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
                }
            }
            drop(handover_socket);
        })
        .await;
    handle.shutdown();
    proxy.wait().await;
    drop(successor);
    served.map_err(|source| DaemonError::Bind {
        addr: api_addr,
        source,
    })
}

/// The saved routing table's path; a file that no longer reads as a valid table (an
/// older format, a torn write) is set aside so the proxy starts empty instead of failing.
fn routing_file(dir: &Path) -> PathBuf {
    let path = dir.join(ROUTING_FILE);
    if let Ok(bytes) = std::fs::read(&path) {
        let valid = serde_json::from_slice::<ferry_proxy::RoutingConfig>(&bytes)
            .is_ok_and(|r| r.validate().is_ok());
        if !valid {
            tracing::warn!(path = %path.display(), "the saved routing table is not valid; starting without it");
            let _ = std::fs::rename(&path, path.with_extension("json.invalid"));
        }
    }
    path
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
