//! The API's request and response bodies, shared by the daemon and its client.

use ferry_rollout::{Outcome, ReplicaCounts, Weights};
use serde::{Deserialize, Serialize};

/// `POST /v1/deploy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployRequest {
    /// The app name.
    pub app: String,
    /// The environment name.
    pub env: String,
    /// The image reference to deploy (already built on the daemon's engine).
    pub image: String,
    /// The resolved `ferry_spec::Spec`, as JSON.
    pub spec: serde_json::Value,
    /// The git commit, when known.
    #[serde(default)]
    pub git_sha: Option<String>,
    /// Who asked.
    #[serde(default)]
    pub created_by: Option<String>,
}

/// The answer to a deploy: the rollout started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployAccepted {
    /// The rollout's id in the store.
    pub rollout: i64,
    /// The new revision's number.
    pub revision: i64,
    /// The revision serving before, if any.
    pub from: Option<i64>,
    /// The strategy name.
    pub strategy: String,
}

/// `GET /v1/apps/{app}/{env}/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppStatus {
    /// The app name.
    pub app: String,
    /// The environment name.
    pub env: String,
    /// Where the service is reachable (the proxy's listeners).
    pub urls: Vec<String>,
    /// The stable (live) revision's number.
    pub stable: Option<i64>,
    /// The revision being rolled out, while a rollout runs.
    pub canary: Option<i64>,
    /// The latest rollout this daemon ran for the app+env.
    pub rollout: Option<RolloutStatus>,
    /// Counts the changes of the rollout's status in this daemon: pass it back as
    /// `?since=` to wait for the next change (long poll).
    #[serde(default)]
    pub version: u64,
    /// What the proxy has served per revision of the app since each revision appeared.
    #[serde(default)]
    pub traffic: Vec<RevisionTraffic>,
    /// Earlier revisions still running out of traffic after a promotion, so
    /// `ferry rollback` to them is an instant switch.
    #[serde(default)]
    pub warm: Vec<WarmRevision>,
    /// The live revision's replicas as the reconciler keeps them (absent when this
    /// daemon serves no replica of the app+env).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveReplicas>,
}

/// The live revision's replicas: how many the spec asks for, how many are routed and
/// healthy, and whether the reconciler gave up replacing them quickly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveReplicas {
    /// The live revision's number.
    pub revision: i64,
    /// The replica count its spec asks for.
    pub wanted: u32,
    /// Replicas routed by the proxy (started health-gated, not seen dead since).
    pub healthy: u32,
    /// Why the revision is degraded (its replacements keep failing), if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
}

/// The proxy's counters for one revision (cumulative: rates are differences over time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionTraffic {
    /// The revision's number, as the proxy names its pool.
    pub revision: String,
    /// Responses sent.
    pub requests: u64,
    /// 5xx responses, upstream failures included.
    pub errors: u64,
    /// 95th percentile time to response headers, in microseconds.
    pub p95_us: u64,
}

/// A revision kept warm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WarmRevision {
    /// Its number.
    pub revision: i64,
    /// How many of its replicas run (out of traffic).
    pub replicas: usize,
    /// When they are stopped (RFC 3339, UTC).
    pub until: String,
}

/// A rollout as `ferry status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolloutStatus {
    /// Its id.
    pub id: i64,
    /// The revision serving before.
    pub from: Option<i64>,
    /// The revision rolled out.
    pub revision: i64,
    /// The strategy name.
    pub strategy: String,
    /// The phase in words.
    pub phase: String,
    /// The current step: index (0-based) and label.
    pub step: Option<(usize, String)>,
    /// Every step's label.
    pub steps: Vec<String>,
    /// The traffic split between stable and new.
    pub weights: Weights,
    /// Replica counts.
    pub replicas: ReplicaCounts,
    /// Whether the rollout is over.
    pub finished: bool,
    /// How it ended.
    pub outcome: Option<Outcome>,
    /// One line for a plain live view.
    pub summary: String,
    /// The latest canary analysis verdicts explained in plain words (most recent last,
    /// at most 3): the summary line, then one indented line per metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analysis: Vec<String>,
}

/// `POST /v1/apps/{app}/{env}/promote`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PromoteRequest {
    /// Skip every remaining step.
    #[serde(default)]
    pub full: bool,
    /// rollback only: the revision to return to (default: the last good one before the
    /// live revision). Used when no rollout is running.
    #[serde(default)]
    pub to: Option<i64>,
}

/// An error answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, in plain words.
    pub error: String,
}

/// A plain acknowledgement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ack {
    /// What the daemon did.
    pub message: String,
    /// The rollout the action concerns (rollback: the rollout that was rolled back, or
    /// the new rollout back to an earlier revision), to follow it in the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<i64>,
    /// rollback: the revision traffic goes back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// rollback: whether that revision's replicas were still running (warm), so traffic
    /// switches at once without starting any container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<bool>,
}

impl Ack {
    /// An acknowledgement with only a message.
    pub fn message(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            rollout: None,
            revision: None,
            warm: None,
        }
    }
}

/// `GET /v1/apps/{app}/{env}/revisions/{n}`: one revision in full.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevisionDetail {
    /// The revision as the store records it (image, digest, spec hash, git SHA, who,
    /// when, status and failure reason).
    pub revision: ferry_store::Revision,
    /// The rollouts that took traffic to it, oldest first (a rollback to it is one too).
    pub rollouts: Vec<RolloutRecord>,
}

/// One rollout of a [`RevisionDetail`] with its timeline and analysis verdicts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolloutRecord {
    /// The rollout (strategy, outcome, reason, times).
    pub rollout: ferry_store::Rollout,
    /// Its timeline in append order.
    pub events: Vec<ferry_store::Event>,
    /// Its analysis verdicts in recording order.
    pub verdicts: Vec<VerdictRecord>,
}

/// A stored analysis verdict with its plain-words explanation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerdictRecord {
    /// The index of the rollout step that ran the analysis.
    pub step: i64,
    /// When it was reached.
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
    /// The verdict in plain words, as `ferry status` shows it: a summary line, then one
    /// line per metric.
    pub explanation: String,
    /// The verdict with its measurements: per metric the values of both arms, sample
    /// sizes, p-value, effect size, threshold and decision.
    pub verdict: serde_json::Value,
}
