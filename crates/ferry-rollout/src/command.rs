//! What the engine asks the daemon to do: the closed set of commands.
//!
//! Every command is idempotent — the daemon may receive it again after a crash
//! (see [`crate::recover`]) — and must be executed in the order given, after the new
//! state has been persisted.

use serde::{Deserialize, Serialize};

use crate::{AnalysisName, AnalysisRun, ReplicaId, Revision, SmokeCheck, Timestamp, Weights};

/// Which replicas to stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stop {
    /// These replicas.
    Ids(Vec<ReplicaId>),
    /// Any replicas, until only this many run (the daemon picks, drains, then stops).
    DownTo(u32),
    /// Every replica of the revision, including ones still starting.
    All,
}

/// How a rollout ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// The new revision serves all traffic and is the stable one.
    Promoted,
    /// Traffic went back to the stable revision by itself or on `ferry rollback`.
    RolledBack {
        /// Why, in plain words.
        reason: String,
    },
    /// Traffic went back to the stable revision on `ferry abort`.
    Aborted {
        /// Why, in plain words.
        reason: String,
    },
}

impl Outcome {
    /// Whether the new revision went live (exit code 0 for `ferry deploy`).
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Promoted)
    }
}

/// Something for the daemon to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    /// Make `total` replicas of `rev` exist (starting or running, counted by label);
    /// start only the missing ones. Report each with `ReplicaStarted`, then
    /// `ReplicaHealthy` / `ReplicaUnhealthy` / `ReplicaFailed`.
    StartReplicas {
        /// The revision.
        rev: Revision,
        /// The total wanted, not a number to add.
        total: u32,
    },
    /// Stop replicas of `rev`; proxied ones only after the proxy drained them.
    StopReplicas {
        /// The revision.
        rev: Revision,
        /// Which ones.
        which: Stop,
    },
    /// Informational: the rollout now waits for `count` healthy replicas of `rev` until
    /// `deadline`; the health prober must report on them.
    WaitHealthy {
        /// The revision.
        rev: Revision,
        /// How many must be healthy.
        count: u32,
        /// When the rollout gives up (progress deadline).
        deadline: Timestamp,
    },
    /// Set the proxy's split between the plan's stable revision and its new revision.
    SetWeights {
        /// The split; always sums to 100.
        weights: Weights,
    },
    /// Blue-green: move all traffic to `to` in one routing table update.
    SwitchTraffic {
        /// The revision that gets all traffic.
        to: Revision,
    },
    /// Run the smoke checks against `rev`'s preview route; answer `SmokePassed` or
    /// `SmokeFailed`.
    RunSmoke {
        /// The revision under test.
        rev: Revision,
        /// The checks.
        checks: Vec<SmokeCheck>,
    },
    /// Start (or, if already running after a restart, keep running) an analysis run;
    /// answer with `AnalysisVerdict` carrying the same `run`.
    StartAnalysis {
        /// The run's identity.
        run: AnalysisRun,
        /// The analysis table.
        name: AnalysisName,
        /// The step it belongs to; `None` for background analysis.
        step: Option<usize>,
    },
    /// Stop an analysis run; its verdict is no longer wanted.
    StopAnalysis {
        /// The run.
        run: AnalysisRun,
    },
    /// Send a `Tick` at (or soon after) this time.
    ScheduleWake {
        /// When.
        at: Timestamp,
    },
    /// Append a line to the rollout's timeline (history, live view, notifications).
    RecordEvent {
        /// The line, in plain words.
        text: String,
    },
    /// Record `rev` as the app's stable revision (the target of the next rollback).
    MarkStable {
        /// The revision.
        rev: Revision,
    },
    /// The rollout is over. `recover` repeats it for a finished rollout (the daemon may
    /// have died before recording it): record the outcome once, release the lock.
    Finish {
        /// How it ended.
        outcome: Outcome,
    },
}
