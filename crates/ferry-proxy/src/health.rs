//! Active health checks: one task per backend, with thresholds and a startup grace.
//!
//! A backend changes state only after `healthy_threshold` consecutive passes
//! or `unhealthy_threshold` consecutive failures, so one slow check never
//! flaps it. Failed checks inside the startup grace are not counted. The task
//! holds only a weak reference and ends when the backend leaves the registry.

use std::sync::Arc;
use std::sync::Weak;
use std::sync::atomic::Ordering;

use http::{Request, Uri};

use crate::backend::{Backend, now_ms};
use crate::body::ReqBody;
use crate::config::HealthConfig;

/// Consecutive pass/fail counting with thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HealthCounter {
    healthy: bool,
    streak: u32,
}

impl HealthCounter {
    pub fn new(healthy: bool) -> Self {
        Self { healthy, streak: 0 }
    }

    /// Feeds one check result; returns whether the backend is healthy now.
    pub fn observe(&mut self, ok: bool, healthy_threshold: u32, unhealthy_threshold: u32) -> bool {
        if ok == self.healthy {
            self.streak = 0;
        } else {
            self.streak += 1;
            let needed = if ok {
                healthy_threshold
            } else {
                unhealthy_threshold
            };
            if self.streak >= needed {
                self.healthy = ok;
                self.streak = 0;
            }
        }
        self.healthy
    }
}

/// Starts the check task of `backend` if it has a health config and none runs.
pub(crate) fn ensure_task(backend: &Arc<Backend>, runtime: &tokio::runtime::Handle) {
    let configured = backend
        .health
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_some();
    if configured && !backend.health_task_running.swap(true, Ordering::AcqRel) {
        runtime.spawn(run(Arc::downgrade(backend)));
    }
}

async fn run(weak: Weak<Backend>) {
    let mut counter: Option<HealthCounter> = None;
    loop {
        let Some(backend) = weak.upgrade() else {
            return;
        };
        let cfg = backend
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(cfg) = cfg else {
            backend.set_healthy(true);
            backend.health_task_running.store(false, Ordering::Release);
            return;
        };
        let c = counter.get_or_insert_with(|| HealthCounter::new(backend.is_healthy()));
        let ok = check(&backend, &cfg).await;
        let grace_ms = u64::try_from(cfg.startup_grace.0.as_millis()).unwrap_or(u64::MAX);
        let in_grace = now_ms() < backend.added_ms.saturating_add(grace_ms);
        if ok || !in_grace {
            let was = backend.is_healthy();
            let now = c.observe(ok, cfg.healthy_threshold, cfg.unhealthy_threshold);
            if was != now {
                tracing::info!(backend = %backend.addr, healthy = now, "backend health changed");
            }
            backend.set_healthy(now);
        }
        drop(backend);
        tokio::time::sleep(cfg.interval.0).await;
    }
}

/// One check on a fresh connection, so it also proves the backend accepts connections.
async fn check(backend: &Backend, cfg: &HealthConfig) -> bool {
    let attempt = async {
        let mut sender = backend.pool.connect().await.ok()?;
        let mut req = Request::new(ReqBody::Empty);
        *req.uri_mut() = Uri::try_from(cfg.path.as_str()).ok()?;
        let headers = req.headers_mut();
        headers.insert(
            http::header::HOST,
            http::HeaderValue::from_str(backend.authority.as_str()).ok()?,
        );
        headers.insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static("ferry-health-check"),
        );
        let resp = sender.send_request(req).await.ok()?;
        let s = resp.status();
        Some(s.is_success() || s.is_redirection())
    };
    tokio::time::timeout(cfg.timeout.0, attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_prevent_flapping() {
        let mut c = HealthCounter::new(true);
        assert!(c.observe(false, 2, 3));
        assert!(c.observe(false, 2, 3));
        assert!(c.observe(true, 2, 3), "a pass resets the failure streak");
        assert!(c.observe(false, 2, 3));
        assert!(c.observe(false, 2, 3));
        assert!(!c.observe(false, 2, 3), "third consecutive failure");
        assert!(!c.observe(true, 2, 3));
        assert!(c.observe(true, 2, 3), "second consecutive pass");
    }
}
