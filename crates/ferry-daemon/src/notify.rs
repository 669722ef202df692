//! Webhook notifications: the JSON body of a rollout event and its delivery to the
//! `[notify] webhooks` subscribed to it.
//!
//! Delivery runs in a spawned task (5 s timeout per attempt, 2 retries) so a slow or
//! broken receiver never delays or fails a rollout; a delivery that still fails is
//! recorded as a timeline note. Bodies carry names and revisions only, never secrets.
//! `https://` URLs are verified against the webpki roots plus, when the daemon is given
//! one (`ferry serve --webhook-ca`), the certificates of a PEM file (a private CA).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferry_spec::{NotifyEvent, Webhook};
use ferry_store::{RolloutId, Store};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;

/// The webhook client: plain HTTP or HTTPS, per URL.
type WebhookClient = HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>;

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
    /// The step concerned (`step-started`, `step-finished`): its 1-based number, the
    /// number of steps and its label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<StepInfo>,
    /// The traffic split after the event, for `weight-changed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<ferry_rollout::Weights>,
    /// An analysis verdict (`pass`, `fail`, `inconclusive`), for `analysis-verdict`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
}

/// A step as a webhook body names it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct StepInfo {
    /// 1-based.
    pub number: usize,
    /// How many steps the rollout has.
    pub of: usize,
    /// What the step does, e.g. `weight 20%`.
    pub label: String,
    /// How it ended (`passed`, `skipped`, `failed`, `inconclusive`), for `step-finished`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// What a per-step event adds to the body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Detail {
    pub reason: Option<String>,
    pub step: Option<StepInfo>,
    pub weights: Option<ferry_rollout::Weights>,
    pub verdict: Option<String>,
}

fn step_info(
    state: &ferry_rollout::State,
    (index, label): (usize, String),
    result: Option<String>,
) -> StepInfo {
    StepInfo {
        number: index + 1,
        of: state.steps().len(),
        label,
        result,
    }
}

/// The per-step events one `step` of the rollout machine produced, in the order they
/// happened: a manual promotion, an analysis verdict, a resumed pause, the step that
/// ended, an automatic rollback, the step that began, the new traffic split, a pause.
/// Start and end of the rollout are sent by the controller itself.
pub(crate) fn transitions(
    before: &ferry_rollout::State,
    after: &ferry_rollout::State,
    event: &ferry_rollout::Event,
    commands: &[ferry_rollout::Command],
) -> Vec<(NotifyEvent, Detail)> {
    use ferry_rollout::{Command, Event, Phase, Verdict, Weights};
    let mut out = Vec::new();
    // The splits the proxy is told, in order (several when steps pass at once).
    let new = after.plan().new.clone();
    let mut splits = commands
        .iter()
        .filter_map(|c| match c {
            Command::SetWeights { weights } => Some(*weights),
            Command::SwitchTraffic { to } if *to == new => Some(Weights::all_canary()),
            Command::SwitchTraffic { .. } => Some(Weights::all_stable()),
            _ => None,
        })
        .collect::<std::collections::VecDeque<_>>();
    let weight_changed = |weights: Weights| {
        (
            NotifyEvent::WeightChanged,
            Detail {
                weights: Some(weights),
                ..Detail::default()
            },
        )
    };
    let (was, is) = (before.phase(), after.phase());
    let paused = |p: &Phase| matches!(p, Phase::Paused { .. });
    let rolling_back = |p: &Phase| matches!(p, Phase::RollingBack { .. });
    if before.is_terminal() {
        return out;
    }
    if matches!(event, Event::Promote { .. }) && was != is {
        out.push((NotifyEvent::RolloutPromoted, Detail::default()));
    }
    if let Event::AnalysisVerdict {
        verdict, summary, ..
    } = event
    {
        let name = serde_json::to_value(verdict)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        let detail = Detail {
            reason: Some(summary.clone()),
            verdict: name,
            ..Detail::default()
        };
        out.push((NotifyEvent::AnalysisVerdict, detail.clone()));
        if *verdict == Verdict::Fail {
            out.push((NotifyEvent::AnalysisFailed, detail));
        }
    }
    if paused(&was) && !paused(&is) && !after.is_terminal() && !rolling_back(&is) {
        out.push((NotifyEvent::RolloutResumed, Detail::default()));
    }
    let current = |s: &ferry_rollout::State| s.current_step().map(|(i, _)| i);
    let (from, to) = (current(before), current(after));
    // Steps that ended in this event (several when a weight step passes at once).
    let ended = after
        .history()
        .get(before.history().len()..)
        .unwrap_or_default();
    for record in ended {
        if Some(record.step) != from {
            out.push((
                NotifyEvent::StepStarted,
                Detail {
                    step: Some(step_info(after, (record.step, record.label.clone()), None)),
                    ..Detail::default()
                },
            ));
        }
        let result = serde_json::to_value(&record.result)
            .ok()
            .and_then(|v| v.get("result").and_then(|r| r.as_str()).map(str::to_owned));
        let reason = match &record.result {
            ferry_rollout::StepResult::Failed { reason } => Some(reason.clone()),
            _ => None,
        };
        out.push((
            NotifyEvent::StepFinished,
            Detail {
                step: Some(step_info(
                    after,
                    (record.step, record.label.clone()),
                    result,
                )),
                reason,
                ..Detail::default()
            },
        ));
        // A weight step (labelled "weight N%" or "switch traffic") that passed moved
        // traffic: its split follows it.
        let moves = record.label.starts_with("weight ") || record.label == "switch traffic";
        if moves
            && record.result == ferry_rollout::StepResult::Passed
            && let Some(weights) = splits.pop_front()
        {
            out.push(weight_changed(weights));
        }
    }
    if let Phase::RollingBack { reason } = &is
        && !rolling_back(&was)
    {
        out.push((
            NotifyEvent::RollbackStarted,
            Detail {
                reason: Some(reason.clone()),
                ..Detail::default()
            },
        ));
    }
    if splits.is_empty() && !commands.is_empty() && before.weights() != after.weights() {
        splits.push_back(after.weights());
    }
    out.extend(splits.into_iter().map(weight_changed));
    if let Some(step) = after.current_step()
        && (Some(step.0) != from || ended.iter().any(|r| r.step == step.0))
        && to.is_some()
    {
        out.push((
            NotifyEvent::StepStarted,
            Detail {
                step: Some(step_info(after, step, None)),
                ..Detail::default()
            },
        ));
    }
    if paused(&is) && !paused(&was) {
        out.push((
            NotifyEvent::RolloutPaused,
            Detail {
                reason: Some(is.to_string()),
                ..Detail::default()
            },
        ));
    }
    out
}

/// The TLS settings of webhook deliveries: the webpki roots, plus the certificates of
/// `ca_file` (PEM) when given.
pub(crate) fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read the webhook CA file {}: {e}", path.display()))?;
        let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the webhook CA file {} is not PEM: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "the webhook CA file {} holds no certificate; give a PEM file with BEGIN CERTIFICATE blocks",
                path.display()
            ));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| {
                format!(
                    "the webhook CA file {} has a bad certificate: {e}",
                    path.display()
                )
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
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
    pub(crate) fn start(tls: Arc<rustls::ClientConfig>) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
            let mut http = HttpConnector::new();
            http.set_connect_timeout(Some(ATTEMPT_TIMEOUT));
            http.enforce_http(false);
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config((*tls).clone())
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            let client: WebhookClient = HyperClient::builder(TokioExecutor::new()).build(connector);
            while let Some(job) = rx.recv().await {
                deliver(&client, job).await;
            }
        });
        Self { tx }
    }
}

async fn deliver(client: &WebhookClient, job: Job) {
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

async fn post(client: &WebhookClient, url: &str, body: &[u8]) -> Result<(), String> {
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

/// The webhook receivers of the ferry binary's notify tests, shared by path: a unit test
/// cannot depend on another crate's integration-test helpers.
#[cfg(test)]
#[path = "../../ferry/tests/support/webhook.rs"]
mod test_receivers;

#[cfg(test)]
mod tests {
    use super::test_receivers::tls_receiver;
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

    /// Drives a canary (weight 20, pause until promoted, weight 50) through the machine
    /// and returns the per-step events a webhook would get, as short strings.
    fn canary_events() -> Vec<String> {
        use ferry_rollout::{Event, ReplicaId, Revision, StableRevision, State, Timestamp};
        let toml = "app = \"shop\"\nimage = \"shop:2\"\n[web]\nreplicas = 1\n\
            [strategy]\nkind = \"canary\"\n[strategy.canary]\n\
            steps = [{ weight = 20 }, { pause = \"until-promoted\" }, { weight = 50 }]\n";
        let doc =
            ferry_spec::parse(&ferry_spec::SourceFile::new("ferry.toml", toml)).expect("parses");
        let spec = doc.resolve(None).expect("resolves");
        let stable = StableRevision {
            rev: Revision::new("1").expect("rev"),
            replicas: 1,
        };
        let plan = crate::plan::plan(
            "default",
            &spec,
            Some(stable),
            Revision::new("2").expect("rev"),
        )
        .expect("plan");
        let mut state = State::new(plan).expect("state");
        let new = Revision::new("2").expect("rev");
        let id = ReplicaId::new("shop-2-1").expect("id");
        let mut seen = Vec::new();
        let mut at = 1_000u64;
        let events = [
            Event::Start,
            Event::ReplicaStarted {
                rev: new.clone(),
                id: id.clone(),
            },
            Event::ReplicaHealthy {
                rev: new.clone(),
                id: id.clone(),
            },
            Event::Tick,
            Event::Promote { full: false },
            Event::Tick,
            Event::Tick,
        ];
        for event in events {
            at += 1_000;
            let (next, commands) = ferry_rollout::step(
                state.clone(),
                event.clone(),
                Timestamp::from_unix_millis(at),
            );
            for (kind, detail) in transitions(&state, &next, &event, &commands) {
                let mut line = kind.as_str().to_owned();
                if let Some(step) = &detail.step {
                    line.push_str(&format!(" {}/{} {}", step.number, step.of, step.label));
                }
                if let Some(w) = &detail.weights {
                    line.push_str(&format!(" {}", w.canary().percent()));
                }
                seen.push(line);
            }
            state = next;
        }
        seen
    }

    #[test]
    fn canary_steps_produce_ordered_step_weight_and_pause_events() {
        let seen = canary_events();
        let expected = [
            "step-started 1/9 start 1 new replica",
            "step-finished 1/9 start 1 new replica",
            "step-started 2/9 weight 20%",
            "step-finished 2/9 weight 20%",
            "weight-changed 20",
            "step-started 3/9 pause until promoted",
            "rollout-paused",
            "rollout-promoted",
            "step-finished 3/9 pause until promoted",
            "step-started 4/9",
            "step-finished 4/9",
            "weight-changed 50",
            "weight-changed 100",
        ];
        let mut rest = seen.iter();
        for want in expected {
            assert!(
                rest.any(|line| line.starts_with(want)),
                "{want:?} missing or out of order in {seen:#?}"
            );
        }
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

    /// A store in `dir` holding revision 1 of the app `hooked` and a rollout to it; returns
    /// the store, the rollout and the revision's number.
    async fn test_store(dir: &Path) -> (Store, RolloutId, i64) {
        let db = dir.join("state.db");
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
        (store, rollout.id, revision.number)
    }

    /// The first timeline note of `rollout` containing `needle`, polled every 100 ms, 100
    /// times at most (delivery and its retries run in the background).
    async fn note_containing(store: &Store, rollout: RolloutId, needle: &str) -> Option<String> {
        for _ in 0..100 {
            let events = store.events(rollout).await.expect("events");
            let note = events
                .iter()
                .map(|e| e.message.to_string())
                .find(|m| m.contains(needle));
            if note.is_some() {
                return note;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// The body of `event` for revision `revision` of `hooked`, a rolling deploy.
    fn payload(event: NotifyEvent, revision: i64) -> Payload {
        Payload {
            event: event.as_str(),
            app: "hooked".to_owned(),
            env: "default".to_owned(),
            revision,
            from: None,
            strategy: "rolling".to_owned(),
            reason: None,
            at: rfc3339(0),
            summary: "s".to_owned(),
            step: None,
            weights: None,
            verdict: None,
        }
    }

    #[tokio::test]
    async fn https_webhooks_are_verified_against_the_given_ca_and_delivered_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, rollout, revision) = test_store(dir.path()).await;
        let (url, ca, seen) = tls_receiver(dir.path());
        let hooks = [Webhook {
            url: url.clone(),
            events: vec![],
        }];
        let queue = Queue::start(Arc::new(tls_config(Some(&ca)).expect("tls")));
        for event in [
            NotifyEvent::DeployStarted,
            NotifyEvent::StepStarted,
            NotifyEvent::DeploySucceeded,
        ] {
            send(
                &queue,
                &store,
                rollout,
                &hooks,
                event,
                &payload(event, revision),
            );
        }
        let mut got = Vec::new();
        for _ in 0..100 {
            got = seen.lock().expect("lock").clone();
            if got.len() >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let events: Vec<&str> = got.iter().filter_map(|b| b["event"].as_str()).collect();
        assert_eq!(
            events,
            ["deploy-started", "step-started", "deploy-succeeded"],
            "{got:#?}"
        );

        // Without the CA the certificate is not trusted: nothing delivered, a note says why.
        let before = seen.lock().expect("lock").len();
        let untrusting = Queue::start(Arc::new(tls_config(None).expect("tls")));
        send(
            &untrusting,
            &store,
            rollout,
            &hooks,
            NotifyEvent::DeployFailed,
            &payload(NotifyEvent::DeployFailed, revision),
        );
        let note = note_containing(&store, rollout, "deploy-failed")
            .await
            .expect("a timeline note about the untrusted certificate");
        assert!(note.to_lowercase().contains("certificate"), "{note}");
        assert_eq!(seen.lock().expect("lock").len(), before);
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let err = tls_config(Some(&empty)).expect_err("refused");
        assert!(err.contains("BEGIN CERTIFICATE"), "{err}");
        let missing = tls_config(Some(&dir.path().join("missing.pem"))).expect_err("refused");
        assert!(missing.contains("missing.pem"), "{missing}");
    }

    #[tokio::test]
    async fn failed_delivery_is_retried_then_noted_in_the_timeline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, rollout, revision) = test_store(dir.path()).await;
        let (url, count) = failing_receiver().await;
        let hooks = [Webhook {
            url: url.clone(),
            events: vec![],
        }];
        let payload = Payload {
            summary: "starting".to_owned(),
            ..payload(NotifyEvent::DeployStarted, revision)
        };
        let queue = Queue::start(Arc::new(tls_config(None).expect("tls")));
        send(
            &queue,
            &store,
            rollout,
            &hooks,
            NotifyEvent::DeployStarted,
            &payload,
        );

        // Bounded wait for the note (the retries back off 0.5 s then 1 s).
        let note = note_containing(&store, rollout, "webhook")
            .await
            .expect("a timeline note about the failed webhook");
        assert!(note.contains(&url), "{note}");
        assert!(note.contains("deploy-started"), "{note}");
        assert!(note.contains("500"), "{note}");
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
