//! What the daemon tells the engine: the closed set of events a rollout reacts to.

use serde::{Deserialize, Serialize};

use crate::{ReplicaId, Revision};

/// Identifies one run of an analysis, so a late verdict of an old run is not taken for
/// the current one. Assigned by the engine in [`crate::Command::StartAnalysis`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AnalysisRun(pub u32);

/// An analysis verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The new revision is as good as stable.
    Pass,
    /// The new revision is worse: roll back.
    Fail,
    /// Not enough evidence either way: the analysis's `on_inconclusive` policy decides.
    Inconclusive,
}

/// Something that happened, fed to [`crate::step`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// Begin the rollout.
    Start,
    /// A replica's container was created and started (not yet healthy).
    ReplicaStarted {
        /// Its revision.
        rev: Revision,
        /// Its id.
        id: ReplicaId,
    },
    /// A replica passed its health checks.
    ReplicaHealthy {
        /// Its revision.
        rev: Revision,
        /// Its id.
        id: ReplicaId,
    },
    /// A replica failed its health checks past the unhealthy threshold, or never became
    /// healthy within its startup grace.
    ReplicaUnhealthy {
        /// Its revision.
        rev: Revision,
        /// Its id.
        id: ReplicaId,
        /// What the prober saw, in plain words.
        reason: String,
    },
    /// A replica's container exited or could not be started.
    ReplicaFailed {
        /// Its revision.
        rev: Revision,
        /// Its id.
        id: ReplicaId,
        /// What happened, in plain words (exit code, engine error).
        reason: String,
    },
    /// A replica was stopped as asked (confirmation of a stop command).
    ReplicaStopped {
        /// Its revision.
        rev: Revision,
        /// Its id.
        id: ReplicaId,
    },
    /// All smoke checks passed.
    SmokePassed,
    /// A smoke check failed.
    SmokeFailed {
        /// Which check and what it got, in plain words.
        reason: String,
    },
    /// An analysis run reached a verdict.
    AnalysisVerdict {
        /// The run, as given in `StartAnalysis`.
        run: AnalysisRun,
        /// The verdict.
        verdict: Verdict,
        /// Where the full verdict is stored (e.g. an id in the store).
        reference: String,
        /// One line in plain words, e.g. "p95 latency 312 ms vs 101 ms: failed".
        summary: String,
    },
    /// Time passed (a wake-up asked for with `ScheduleWake`, or a periodic tick).
    Tick,
    /// `ferry promote`: `full` skips every remaining step; otherwise only the current
    /// pause, manual gate or analysis is ended.
    Promote {
        /// Skip all remaining steps.
        full: bool,
    },
    /// `ferry pause`.
    Pause,
    /// `ferry resume`.
    Resume,
    /// `ferry abort`: back to stable, outcome aborted.
    Abort,
    /// `ferry rollback`: back to stable, outcome rolled back. `to` must be the plan's
    /// stable revision or `None`; older revisions are a new (fast-track) rollout.
    Rollback {
        /// The revision asked for.
        to: Option<Revision>,
    },
    /// The daemon restarted and reloaded this state: same as [`crate::recover`].
    ControllerRestarted,
    /// The daemon restarted, reloaded this state and found these replicas still running
    /// and healthy (it adopted them; it removed every other container of the rollout).
    /// The state forgets what it believed of its replicas, takes these, and then either
    /// resumes (re-asserting routing first, as `recover` does) or, when resuming is not
    /// safe, rolls back; see [`crate::resumption`]. A pending rollout simply starts.
    Resumed {
        /// Replicas of the plan's new revision still running and healthy.
        new_healthy: Vec<ReplicaId>,
        /// Replicas of the plan's stable revision still running and healthy.
        stable_healthy: u32,
    },
}

impl Event {
    /// The event's kind, for notes.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Start => "start",
            Event::ReplicaStarted { .. } => "replica-started",
            Event::ReplicaHealthy { .. } => "replica-healthy",
            Event::ReplicaUnhealthy { .. } => "replica-unhealthy",
            Event::ReplicaFailed { .. } => "replica-failed",
            Event::ReplicaStopped { .. } => "replica-stopped",
            Event::SmokePassed => "smoke-passed",
            Event::SmokeFailed { .. } => "smoke-failed",
            Event::AnalysisVerdict { .. } => "analysis-verdict",
            Event::Tick => "tick",
            Event::Promote { .. } => "promote",
            Event::Pause => "pause",
            Event::Resume => "resume",
            Event::Abort => "abort",
            Event::Rollback { .. } => "rollback",
            Event::ControllerRestarted => "controller-restarted",
            Event::Resumed { .. } => "resumed",
        }
    }
}
