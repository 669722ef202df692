//! Webhook notifications: the JSON body of a rollout event and its delivery to the
//! `[notify] webhooks` subscribed to it.
//!
//! Delivery runs in a spawned task (5 s timeout per attempt, 2 retries) so a slow or
//! broken receiver never delays or fails a rollout; a delivery that still fails is
//! recorded as a timeline note. Bodies carry names and revisions only, never secrets.

use std::time::Duration;

use bytes::Bytes;
use ferry_spec::{NotifyEvent, Webhook};
use ferry_store::{RolloutId, Store};
use http_body_util::Full;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;

/// How long one delivery attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per webhook and event (the first plus two retries).
const ATTEMPTS: u32 = 3;

/// The JSON body POSTed to a webhook.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Payload {
    /// The event's ferry.toml spelling (`deploy-started`...).
    pub event: &'static str,
    pub app: String,
    pub env: String,
    pub revision: i64,
    /// The revision serving before this rollout, if any.
    pub from: Option<i64>,
    pub strategy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it happened, RFC 3339 in UTC.
    pub at: String,
    /// One line for humans.
    pub summary: String,
}

/// The webhooks subscribed to `event`: those listing it, and those listing none.
pub(crate) fn subscribers(webhooks: &[Webhook], event: NotifyEvent) -> Vec<&Webhook> {
    webhooks
        .iter()
        .filter(|w| w.events.is_empty() || w.events.contains(&event))
        .collect()
}

/// `unix_millis` as RFC 3339 in UTC (seconds precision).
pub(crate) fn rfc3339(unix_millis: u64) -> String {
    let secs = i64::try_from(unix_millis / 1000).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// Queues `payload` for every webhook subscribed to `event`; `queue` delivers in the
/// background, in order. Failures end up in the rollout's timeline, never here.
pub(crate) fn send(
    queue: &Queue,
    store: &Store,
    rollout: RolloutId,
    webhooks: &[Webhook],
    event: NotifyEvent,
    payload: &Payload,
) {
    for hook in subscribers(webhooks, event) {
        let body = match serde_json::to_vec(payload) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a webhook body");
                return;
            }
        };
        let job = Job {
            url: hook.url.clone(),
            body,
            event: payload.event,
            store: store.clone(),
            rollout,
        };
        if queue.tx.send(job).is_err() {
            tracing::warn!("the webhook queue is closed");
        }
    }
}

/// One delivery to do.
struct Job {
    url: String,
    body: Vec<u8>,
    event: &'static str,
    store: Store,
    rollout: RolloutId,
}

/// A rollout's delivery queue: one background task delivers its jobs in order, so a
/// receiver sees `deploy-started` before `deploy-succeeded`.
pub(crate) struct Queue {
    tx: tokio::sync::mpsc::UnboundedSender<Job>,
}

impl Queue {
    /// Starts the delivery task (it ends when the queue is dropped and drained).
    pub(crate) fn start() -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
            let mut connector = HttpConnector::new();
            connector.set_connect_timeout(Some(ATTEMPT_TIMEOUT));
            let client: HyperClient<HttpConnector, Full<Bytes>> =
                HyperClient::builder(TokioExecutor::new()).build(connector);
            while let Some(job) = rx.recv().await {
                deliver(&client, job).await;
            }
        });
        Self { tx }
    }
}

async fn deliver(client: &HyperClient<HttpConnector, Full<Bytes>>, job: Job) {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
        match tokio::time::timeout(ATTEMPT_TIMEOUT, post(client, &job.url, &job.body)).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => last = e,
            Err(_) => last = format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
        }
    }
    tracing::warn!(url = %job.url, event = job.event, error = %last, "webhook delivery failed");
    let text = format!(
        "webhook {} not notified of {} after {ATTEMPTS} attempts: {last}",
        job.url, job.event
    );
    if let Err(e) = job
        .store
        .append_event(job.rollout, "note", &serde_json::json!({ "text": text }))
        .await
    {
        tracing::warn!(error = %e, "cannot record the webhook failure");
    }
}

async fn post(
    client: &HyperClient<HttpConnector, Full<Bytes>>,
    url: &str,
    body: &[u8],
) -> Result<(), String> {
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, "ferry")
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| format!("bad url: {e}"))?;
    let response = client.request(request).await.map_err(|e| {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(events: Vec<NotifyEvent>) -> Webhook {
        Webhook {
            url: "http://127.0.0.1:9/hook".to_owned(),
            events,
        }
    }

    #[test]
    fn empty_event_list_subscribes_to_everything() {
        let hooks = [hook(vec![]), hook(vec![NotifyEvent::DeployFailed])];
        assert_eq!(subscribers(&hooks, NotifyEvent::DeployStarted).len(), 1);
        assert_eq!(subscribers(&hooks, NotifyEvent::DeployFailed).len(), 2);
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20Z");
    }

    /// A receiver answering 500 to everything, counting the requests it got.
    async fn failing_receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
            }
        });
        (format!("http://{addr}/hook"), count)
    }

    #[tokio::test]
    async fn failed_delivery_is_retried_then_noted_in_the_timeline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("state.db");
        let store = Store::open(db.to_str().expect("utf-8 path"))
            .await
            .expect("store");
        let revision = store
            .next_revision(&ferry_store::NewRevision {
                app: "hooked".to_owned(),
                env: "default".to_owned(),
                image: "img".to_owned(),
                image_id: None,
                image_digest: None,
                git_sha: None,
                spec: serde_json::json!({}),
                spec_hash: "h".to_owned(),
                created_by: "test".to_owned(),
            })
            .await
            .expect("revision");
        let rollout = store
            .create_rollout(&ferry_store::NewRollout {
                app: "hooked".to_owned(),
                env: "default".to_owned(),
                from_revision: None,
                to_revision: revision.number,
                strategy: "rolling".to_owned(),
                state: serde_json::json!({}),
                phase: "pending".to_owned(),
                created_by: "test".to_owned(),
            })
            .await
            .expect("rollout");
        let (url, count) = failing_receiver().await;
        let hooks = [Webhook {
            url: url.clone(),
            events: vec![],
        }];
        let payload = Payload {
            event: NotifyEvent::DeployStarted.as_str(),
            app: "hooked".to_owned(),
            env: "default".to_owned(),
            revision: revision.number,
            from: None,
            strategy: "rolling".to_owned(),
            reason: None,
            at: rfc3339(0),
            summary: "starting".to_owned(),
        };
        let queue = Queue::start();
        send(
            &queue,
            &store,
            rollout.id,
            &hooks,
            NotifyEvent::DeployStarted,
            &payload,
        );

        // Bounded wait for the note (the retries back off 0.5 s then 1 s).
        let mut note = None;
        for _ in 0..100 {
            let events = store.events(rollout.id).await.expect("events");
            note = events
                .iter()
                .map(|e| e.message.to_string())
                .find(|m| m.contains("webhook"));
            if note.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let note = note.expect("a timeline note about the failed webhook");
        assert!(note.contains(&url), "{note}");
        assert!(note.contains("deploy-started"), "{note}");
        assert!(note.contains("500"), "{note}");
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
