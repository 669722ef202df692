//! `ProxyHandle`: the control surface a controller (or the admin API) uses to steer a running proxy.
//!
//! Every change builds a whole new routing table from the live one, validates
//! and compiles it, and swaps it in atomically: requests in flight keep the
//! table they started with, and an invalid change leaves the live table as it was.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::backend::now_ms;
use crate::config::{PoolConfig, RoutingConfig};
use crate::error::Error;
use crate::proxy::Shared;
use crate::stats::{BackendSnapshot, StatsSnapshot};
use crate::weight::Weight;

/// Controls a running proxy. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ProxyHandle {
    shared: Arc<Shared>,
    addrs: Arc<[SocketAddr]>,
    admin: Option<SocketAddr>,
}

/// How a drain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DrainOutcome {
    /// Requests (streams and upgraded connections included) still in flight when
    /// the drain ended: 0 means every one finished before the timeout.
    pub in_flight_left: u64,
}

impl ProxyHandle {
    pub(crate) fn new(
        shared: Arc<Shared>,
        addrs: Vec<SocketAddr>,
        admin: Option<SocketAddr>,
    ) -> Self {
        Self {
            shared,
            addrs: addrs.into(),
            admin,
        }
    }

    /// The bound address of the admin API, when configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    pub(crate) fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shared.shutdown.subscribe()
    }

    /// The bound addresses of the client listeners, in config order.
    pub fn listen_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The live routing table.
    pub fn routing(&self) -> RoutingConfig {
        self.shared.table.load().config.clone()
    }

    /// Replaces the routing table atomically; an invalid table is rejected with the
    /// reason and the live one stays.
    pub fn replace_routing(&self, routing: RoutingConfig) -> Result<(), Error> {
        self.shared.apply(routing)
    }

    /// Changes the live table with `f` and applies the result atomically.
    pub fn update(
        &self,
        f: impl FnOnce(&mut RoutingConfig) -> Result<(), Error>,
    ) -> Result<(), Error> {
        // Serialize read-modify-write so concurrent updates never lose each other.
        let _serial = self.update_lock();
        let mut routing = self.routing();
        f(&mut routing)?;
        self.shared.apply(routing)
    }

    fn update_lock(&self) -> std::sync::MutexGuard<'static, ()> {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        LOCK.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the weights of a service's revisions; revisions not named get 0.
    /// The weights must sum to 100.
    pub fn set_weights(&self, service: &str, weights: &[(&str, Weight)]) -> Result<(), Error> {
        self.update(|r| {
            let svc = r
                .services
                .get_mut(service)
                .ok_or_else(|| Error::UnknownService(service.to_owned()))?;
            for (rev, _) in weights {
                if !svc.pools.iter().any(|p| p.revision == *rev) {
                    return Err(Error::UnknownRevision {
                        service: service.to_owned(),
                        revision: (*rev).to_owned(),
                    });
                }
            }
            for p in &mut svc.pools {
                p.weight = weights
                    .iter()
                    .find(|(rev, _)| *rev == p.revision)
                    .map_or(Weight::ZERO, |(_, w)| *w);
            }
            Ok(())
        })
    }

    /// Turns maintenance mode of a service on (503 with `text`) or off (`None`).
    /// With the service's `maintenance_hold` set, requests wait while it is on, and
    /// turning it off lets them go on at once, routed by the new table.
    pub fn set_maintenance(&self, service: &str, text: Option<String>) -> Result<(), Error> {
        self.update(|r| {
            let svc = r
                .services
                .get_mut(service)
                .ok_or_else(|| Error::UnknownService(service.to_owned()))?;
            svc.maintenance = text;
            Ok(())
        })
    }

    /// Adds a backend to a revision pool, creating the pool at weight 0 if needed.
    pub fn add_backend(
        &self,
        service: &str,
        revision: &str,
        addr: SocketAddr,
    ) -> Result<(), Error> {
        self.update(|r| {
            let svc = r
                .services
                .get_mut(service)
                .ok_or_else(|| Error::UnknownService(service.to_owned()))?;
            match svc.pools.iter_mut().find(|p| p.revision == revision) {
                Some(p) => p.backends.push(addr),
                None => svc.pools.push(PoolConfig {
                    revision: revision.to_owned(),
                    weight: Weight::ZERO,
                    backends: vec![addr],
                }),
            }
            Ok(())
        })
    }

    /// Removes a backend from the table at once; requests in flight on it finish,
    /// its long-lived streams get `timeouts.stream_drain` (as in a drain).
    pub fn remove_backend(&self, addr: SocketAddr) -> Result<(), Error> {
        self.update(|r| {
            let mut found = false;
            for svc in r.services.values_mut() {
                for p in &mut svc.pools {
                    let before = p.backends.len();
                    p.backends.retain(|b| *b != addr);
                    found |= p.backends.len() != before;
                }
            }
            if found {
                Ok(())
            } else {
                Err(Error::UnknownBackend(addr))
            }
        })
    }

    /// Drains a backend: no new requests from now on, waits up to `timeout` for
    /// those in flight, then removes it from the table (its idle connections close).
    /// Its long-lived streams (upgraded connections, event streams) get
    /// `timeouts.stream_drain` from now to end, then the proxy ends them cleanly.
    pub async fn drain_backend(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<DrainOutcome, Error> {
        let backend = {
            let registry = self
                .shared
                .registry
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            registry
                .backends
                .get(&addr)
                .cloned()
                .ok_or(Error::UnknownBackend(addr))?
        };
        backend.set_draining(true);
        backend.end_streams_at(tokio::time::Instant::now() + self.shared.stream_drain);
        backend.pool.clear();
        let left = backend
            .wait_idle(tokio::time::Instant::now() + timeout)
            .await;
        backend.pool.clear();
        match self.remove_backend(addr) {
            Ok(()) | Err(Error::UnknownBackend(_)) => {}
            Err(e) => return Err(e),
        }
        Ok(DrainOutcome {
            in_flight_left: left,
        })
    }

    /// The live statistics in the Prometheus text format (as the admin API's `/metrics`).
    pub fn metrics_text(&self) -> String {
        crate::admin::metrics(self)
    }

    /// Statistics per revision and state per backend, for the analysis engine and status.
    pub fn stats_snapshot(&self) -> StatsSnapshot {
        let table = self.shared.table.load_full();
        let now = now_ms();
        let mut revisions = Vec::new();
        let mut backends = Vec::new();
        for s in &table.services {
            for p in &s.pools {
                revisions.push(p.stats.snapshot(&s.name, &p.revision));
                for b in &p.backends {
                    backends.push(BackendSnapshot {
                        service: s.name.clone(),
                        revision: p.revision.clone(),
                        addr: b.addr,
                        healthy: b.is_healthy(),
                        ejected: b.is_ejected(now),
                        draining: b.is_draining(),
                        in_flight: b.in_flight(),
                    });
                }
            }
        }
        StatsSnapshot {
            revisions,
            backends,
        }
    }

    /// Starts graceful shutdown: stop accepting, let connections finish in-flight requests.
    pub fn shutdown(&self) {
        self.shared.begin_shutdown(false);
    }

    /// Starts a graceful shutdown after the listening sockets were handed over to a
    /// successor: like [`ProxyHandle::shutdown`], but idle keep-alive connections get
    /// `timeouts.drain_idle` to send their next request, answered with
    /// `connection: close`.
    pub fn shutdown_after_handover(&self) {
        self.shared.begin_shutdown(true);
    }

    /// Copies of the listening sockets (client and admin listeners) to hand over to a
    /// successor process.
    pub fn listener_sockets(&self) -> Result<Vec<crate::handover::ListenerSockets>, Error> {
        self.shared.listener_sockets()
    }
}
