//! The rollout state machine: [`step`] applies one event, [`recover`] resumes after a crash.
//!
//! Design note. The state is the whole truth about a rollout: the plan, the compiled
//! actions, where the rollout is, the traffic split, and what is known of each
//! revision's replicas. The daemon persists the state returned by `step` *before* it
//! executes the returned commands; every command is idempotent. So after a crash at any
//! point the persisted state is at most one step ahead of the world, and `recover`
//! re-asserts that state (routing first, then replicas, analyses and wake-ups), changing
//! only the progress deadline (health was not watched meanwhile). Pauses that expired
//! while the daemon was down are decided by the next `Tick`, which `recover` schedules
//! immediately.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::program::{Action, Program, compile};
use crate::time::human_duration;
use crate::{
    AnalysisName, AnalysisRun, Command, Error, Event, InconclusivePolicy, Outcome, Plan, ReplicaId,
    Revision, Stop, Strategy, Timestamp, Verdict, Weight, Weights,
};

/// Where a rollout is, as `ferry status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum Phase {
    /// Planned, not started.
    Pending,
    /// Moving through its steps.
    Progressing {
        /// Index of the current step (see [`State::steps`]).
        step: usize,
    },
    /// Waiting: a pause step, a manual gate, `ferry pause`, or an inconclusive analysis.
    Paused {
        /// Index of the current step.
        step: usize,
        /// Why.
        reason: PauseReason,
        /// When the pause ends by itself, if it does.
        until: Option<Timestamp>,
    },
    /// Past the last step: scaling the new revision to full size and moving all traffic.
    Promoting {
        /// Index of the current step.
        step: usize,
    },
    /// The new revision is live and stable.
    Completed,
    /// Traffic is back on stable; waiting for stable to be back at full size.
    RollingBack {
        /// Why, in plain words.
        reason: String,
    },
    /// Rolled back.
    RolledBack {
        /// Why, in plain words.
        reason: String,
    },
    /// Aborted.
    Aborted {
        /// Why, in plain words.
        reason: String,
    },
}

/// Why a rollout is paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PauseReason {
    /// A timed pause step.
    Step,
    /// A `pause = "until-promoted"` step, or blue-green with `auto_promote = false`.
    UntilPromoted,
    /// `ferry pause`.
    User,
    /// An analysis was inconclusive and its policy is `pause`.
    Inconclusive {
        /// The analysis.
        analysis: AnalysisName,
    },
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Pending => f.write_str("pending"),
            Phase::Progressing { step } => write!(f, "progressing (step {})", step + 1),
            Phase::Paused { step, reason, .. } => {
                let why = match reason {
                    PauseReason::Step => "pause step".to_owned(),
                    PauseReason::UntilPromoted => "until promoted".to_owned(),
                    PauseReason::User => "by user".to_owned(),
                    PauseReason::Inconclusive { analysis } => {
                        format!("analysis {analysis} inconclusive")
                    }
                };
                write!(f, "paused at step {} ({why})", step + 1)
            }
            Phase::Promoting { step } => write!(f, "promoting (step {})", step + 1),
            Phase::Completed => f.write_str("completed"),
            Phase::RollingBack { .. } => f.write_str("rolling back"),
            Phase::RolledBack { .. } => f.write_str("rolled back"),
            Phase::Aborted { .. } => f.write_str("aborted"),
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum StepResult {
    /// Done as planned.
    Passed,
    /// Skipped by `ferry promote`.
    Skipped,
    /// The rollout was rolled back or aborted during this step.
    Failed {
        /// Why.
        reason: String,
    },
    /// Its analysis was inconclusive (the policy decided what followed).
    Inconclusive {
        /// Where the verdict is stored.
        reference: String,
    },
}

/// One entry of the rollout's step history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Index of the step.
    pub step: usize,
    /// What the step was.
    pub label: String,
    /// How it ended.
    pub result: StepResult,
    /// When.
    pub at: Timestamp,
}

/// Replica counts per revision, as the engine knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaCounts {
    /// Replicas of the new revision wanted now.
    pub new_target: u32,
    /// Healthy replicas of the new revision.
    pub new_healthy: u32,
    /// Replicas of the new revision started but not yet healthy.
    pub new_starting: u32,
    /// Replicas of the stable revision wanted now.
    pub stable_target: u32,
    /// Healthy replicas of the stable revision.
    pub stable_healthy: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
enum Status {
    Pending,
    Running,
    RollingBack { reason: String, aborted: bool },
    Completed,
    RolledBack { reason: String },
    Aborted { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum ManualPause {
    User,
    Inconclusive { analysis: AnalysisName },
}

/// What the engine knows of one revision's replicas.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Pool {
    /// Replicas wanted.
    target: u32,
    /// Healthy replicas known only by count (the stable ones from before the rollout).
    untracked: u32,
    starting: BTreeSet<ReplicaId>,
    healthy: BTreeSet<ReplicaId>,
}

impl Pool {
    fn healthy_count(&self) -> u32 {
        self.untracked
            .saturating_add(u32::try_from(self.healthy.len()).unwrap_or(u32::MAX))
    }

    fn scale_down(&mut self, total: u32) {
        self.target = total;
        while self.healthy_count() > total {
            if self.untracked > 0 {
                self.untracked -= 1;
            } else if self.healthy.pop_last().is_none() {
                break;
            }
        }
        if self.healthy_count() >= total {
            self.starting.clear();
        }
    }

    /// Forgets a replica; whether it was known.
    fn remove(&mut self, id: &ReplicaId) -> bool {
        self.starting.remove(id) | self.healthy.remove(id)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Arm {
    New,
    Stable,
}

/// The persisted state of one rollout. Serialize it before executing the commands that
/// came with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    plan: Plan,
    program: Program,
    status: Status,
    /// Index of the current action.
    cursor: usize,
    /// When the current action was entered; `None` before.
    entered_at: Option<Timestamp>,
    /// The current action's outside condition (smoke, analysis, promotion) is resolved.
    step_done: Option<StepResult>,
    /// The analysis run of the current action.
    step_run: Option<AnalysisRun>,
    background: Option<AnalysisRun>,
    next_run: u32,
    pause: Option<ManualPause>,
    weights: Weights,
    new_pool: Pool,
    stable_pool: Pool,
    failed: BTreeSet<ReplicaId>,
    deadline: Option<Timestamp>,
    marked_stable: bool,
    started_at: Option<Timestamp>,
    finished_at: Option<Timestamp>,
    history: Vec<StepRecord>,
}

/// Applies one event at time `now`: the new state, and the commands to execute (in order,
/// after persisting the state). Never panics; an event that makes no sense in the
/// current phase is ignored with a `RecordEvent` note.
pub fn step(mut state: State, event: Event, now: Timestamp) -> (State, Vec<Command>) {
    let mut out = Vec::new();
    state.handle(event, now, &mut out);
    (state, out)
}

/// After a daemon restart: the commands that re-assert `state` in the world (routing
/// first), and the state. Only the progress deadline of a wait for health changes: it
/// starts afresh, since nobody watched health meanwhile. Idempotent: recovering the
/// recovered state gives the same state and commands. It schedules a `Tick` for `now`, so
/// pauses that expired while the daemon was down are decided at once.
pub fn recover(state: State, now: Timestamp) -> (State, Vec<Command>) {
    step(state, Event::ControllerRestarted, now)
}

impl State {
    /// A pending rollout of `plan`; refused when the plan is invalid.
    pub fn new(plan: Plan) -> Result<Self, Error> {
        let program = compile(&plan)?;
        let stable_pool = Pool {
            target: plan.stable.as_ref().map_or(0, |s| s.replicas),
            untracked: plan.stable.as_ref().map_or(0, |s| s.replicas),
            ..Pool::default()
        };
        // A warm rollback target's replicas run already: known by count, like stable's.
        let new_pool = Pool {
            target: plan.new_running,
            untracked: plan.new_running,
            ..Pool::default()
        };
        Ok(Self {
            plan,
            program,
            status: Status::Pending,
            cursor: 0,
            entered_at: None,
            step_done: None,
            step_run: None,
            background: None,
            next_run: 1,
            pause: None,
            weights: Weights::all_stable(),
            new_pool,
            stable_pool,
            failed: BTreeSet::new(),
            deadline: None,
            marked_stable: false,
            started_at: None,
            finished_at: None,
            history: Vec::new(),
        })
    }

    /// The plan being rolled out.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The current traffic split.
    pub fn weights(&self) -> Weights {
        self.weights
    }

    /// The steps of this rollout, in order, as short labels.
    pub fn steps(&self) -> Vec<String> {
        self.program.actions.iter().map(Action::label).collect()
    }

    /// The current step's index and label, while the rollout runs.
    pub fn current_step(&self) -> Option<(usize, String)> {
        if self.status != Status::Running {
            return None;
        }
        self.current_action().map(|a| (self.cursor, a.label()))
    }

    /// One line for a plain (non-TTY) live view, e.g.
    /// `step 3/9 pause 5m: paused at step 3 (pause step); stable 80% / new 20%;
    /// new 1/1 healthy, stable 5/5 healthy`.
    pub fn summary(&self) -> String {
        let c = self.replicas();
        let at = self.current_step().map_or_else(String::new, |(i, label)| {
            format!("step {}/{} {label}: ", i + 1, self.program.actions.len())
        });
        format!(
            "{at}{}; {}; new {}/{} healthy, stable {}/{} healthy",
            self.phase(),
            self.weights,
            c.new_healthy,
            c.new_target,
            c.stable_healthy,
            c.stable_target
        )
    }

    /// Index of the step the promotion tail starts at (what a full promote jumps to).
    pub fn promotion_step(&self) -> usize {
        self.program.tail
    }

    /// Steps done so far and how they ended.
    pub fn history(&self) -> &[StepRecord] {
        &self.history
    }

    /// Replica counts per revision.
    pub fn replicas(&self) -> ReplicaCounts {
        let len = |s: &BTreeSet<ReplicaId>| u32::try_from(s.len()).unwrap_or(u32::MAX);
        ReplicaCounts {
            new_target: self.new_pool.target,
            new_healthy: self.new_pool.healthy_count(),
            new_starting: len(&self.new_pool.starting),
            stable_target: self.stable_pool.target,
            stable_healthy: self.stable_pool.healthy_count(),
        }
    }

    /// When the rollout started and finished.
    pub fn times(&self) -> (Option<Timestamp>, Option<Timestamp>) {
        (self.started_at, self.finished_at)
    }

    /// How the rollout ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        match &self.status {
            Status::Completed => Some(Outcome::Promoted),
            Status::RolledBack { reason } => Some(Outcome::RolledBack {
                reason: reason.clone(),
            }),
            Status::Aborted { reason } => Some(Outcome::Aborted {
                reason: reason.clone(),
            }),
            _ => None,
        }
    }

    /// Whether the rollout is over (completed, rolled back or aborted).
    pub fn is_terminal(&self) -> bool {
        self.outcome().is_some()
    }

    /// The highest share of traffic the new revision may have given the steps taken so
    /// far: the invariant `weights().canary() <= weight_ceiling()` always holds.
    pub fn weight_ceiling(&self) -> Weight {
        match self.status {
            Status::Pending
            | Status::RollingBack { .. }
            | Status::RolledBack { .. }
            | Status::Aborted { .. } => Weight::ZERO,
            Status::Completed => Weight::FULL,
            Status::Running => {
                let upto = if self.entered_at.is_some() {
                    self.cursor + 1
                } else {
                    self.cursor
                };
                self.program
                    .actions
                    .iter()
                    .take(upto)
                    .filter_map(Action::weight)
                    .max()
                    .unwrap_or(Weight::ZERO)
            }
        }
    }

    /// Where the rollout is.
    pub fn phase(&self) -> Phase {
        match &self.status {
            Status::Pending => Phase::Pending,
            Status::Completed => Phase::Completed,
            Status::RollingBack { reason, .. } => Phase::RollingBack {
                reason: reason.clone(),
            },
            Status::RolledBack { reason } => Phase::RolledBack {
                reason: reason.clone(),
            },
            Status::Aborted { reason } => Phase::Aborted {
                reason: reason.clone(),
            },
            Status::Running => {
                let step = self.cursor;
                if let Some(p) = &self.pause {
                    let reason = match p {
                        ManualPause::User => PauseReason::User,
                        ManualPause::Inconclusive { analysis } => PauseReason::Inconclusive {
                            analysis: analysis.clone(),
                        },
                    };
                    return Phase::Paused {
                        step,
                        reason,
                        until: None,
                    };
                }
                if let (Some(entered), None) = (self.entered_at, &self.step_done) {
                    match self.program.actions.get(step) {
                        Some(Action::Pause { duration }) => {
                            return Phase::Paused {
                                step,
                                reason: PauseReason::Step,
                                until: Some(entered.after(*duration)),
                            };
                        }
                        Some(Action::AwaitPromotion) => {
                            return Phase::Paused {
                                step,
                                reason: PauseReason::UntilPromoted,
                                until: None,
                            };
                        }
                        _ => {}
                    }
                }
                if step >= self.program.tail {
                    Phase::Promoting { step }
                } else {
                    Phase::Progressing { step }
                }
            }
        }
    }

    fn handle(&mut self, event: Event, now: Timestamp, out: &mut Vec<Command>) {
        let kind = event.kind();
        match event {
            Event::Start => self.on_start(now, out),
            Event::ReplicaStarted { rev, id } => self.on_replica_started(kind, &rev, id, out),
            Event::ReplicaHealthy { rev, id } => {
                self.on_replica_healthy(kind, &rev, id, now, out);
            }
            Event::ReplicaUnhealthy { rev, id, reason } => {
                self.on_replica_lost(kind, &rev, id, "turned unhealthy", &reason, now, out);
            }
            Event::ReplicaFailed { rev, id, reason } => {
                self.on_replica_lost(kind, &rev, id, "failed", &reason, now, out);
            }
            Event::ReplicaStopped { rev, id } => self.on_replica_stopped(&rev, &id, out),
            Event::SmokePassed => self.on_smoke(kind, None, now, out),
            Event::SmokeFailed { reason } => self.on_smoke(kind, Some(reason), now, out),
            Event::AnalysisVerdict {
                run,
                verdict,
                reference,
                summary,
            } => self.on_verdict(kind, run, verdict, reference, &summary, now, out),
            Event::Tick => self.on_tick(now, out),
            Event::Promote { full } => self.on_promote(kind, full, now, out),
            Event::Pause => self.on_pause(kind, out),
            Event::Resume => self.on_resume(kind, now, out),
            Event::Abort => self.on_abort(kind, now, out),
            Event::Rollback { to } => self.on_rollback(kind, to, now, out),
            Event::ControllerRestarted => {
                self.refresh_deadline_after_restart(now);
                self.recovery_commands(now, out);
            }
            Event::Resumed {
                new_healthy,
                stable_healthy,
            } => self.on_resumed(new_healthy, stable_healthy, now, out),
        }
    }

    // ----- helpers ------------------------------------------------------------------

    fn note(&self, kind: &str, why: &str, out: &mut Vec<Command>) {
        out.push(Command::RecordEvent {
            text: format!("ignored {kind} while {}: {why}", self.phase()),
        });
    }

    fn record(text: String, out: &mut Vec<Command>) {
        out.push(Command::RecordEvent { text });
    }

    fn arm(&self, rev: &Revision) -> Option<Arm> {
        if *rev == self.plan.new {
            Some(Arm::New)
        } else if self.plan.stable.as_ref().is_some_and(|s| s.rev == *rev) {
            Some(Arm::Stable)
        } else {
            None
        }
    }

    fn stable_rev(&self) -> Option<Revision> {
        self.plan.stable.as_ref().map(|s| s.rev.clone())
    }

    fn set_weights(&mut self, weights: Weights, out: &mut Vec<Command>) {
        self.weights = weights;
        out.push(Command::SetWeights { weights });
    }

    fn arm_deadline(&mut self, now: Timestamp, out: &mut Vec<Command>) -> Timestamp {
        let at = now.after(self.plan.progress_deadline);
        self.deadline = Some(at);
        out.push(Command::ScheduleWake { at });
        at
    }

    fn current_action(&self) -> Option<&Action> {
        self.program.actions.get(self.cursor)
    }

    fn push_history(&mut self, result: StepResult, now: Timestamp) {
        if let Some(action) = self.current_action() {
            let label = action.label();
            self.history.push(StepRecord {
                step: self.cursor,
                label,
                result,
                at: now,
            });
        }
    }

    // ----- the interpreter ----------------------------------------------------------

    /// Runs actions until one has to wait.
    fn advance(&mut self, now: Timestamp, out: &mut Vec<Command>) {
        // Each pass either returns or moves the cursor forward, so this ends.
        while self.status == Status::Running && self.pause.is_none() {
            let Some(action) = self.current_action().cloned() else {
                self.complete(now, out);
                return;
            };
            if self.entered_at.is_none() {
                self.entered_at = Some(now);
                self.step_done = None;
                self.enter(&action, now, out);
            }
            if !self.satisfied(&action, now) {
                return;
            }
            let result = self.step_done.take().unwrap_or(StepResult::Passed);
            self.push_history(result, now);
            self.cursor += 1;
            self.entered_at = None;
            self.step_run = None;
            self.deadline = None;
        }
    }

    fn enter(&mut self, action: &Action, now: Timestamp, out: &mut Vec<Command>) {
        let total_steps = self.program.actions.len();
        Self::record(
            format!("step {}/{total_steps}: {}", self.cursor + 1, action.label()),
            out,
        );
        let new = self.plan.new.clone();
        match action {
            Action::ScaleNew { total } => {
                self.new_pool.target = self.new_pool.target.max(*total);
                if self.new_pool.healthy_count() < *total {
                    out.push(Command::StartReplicas {
                        rev: new.clone(),
                        total: self.new_pool.target,
                    });
                    let deadline = self.arm_deadline(now, out);
                    out.push(Command::WaitHealthy {
                        rev: new,
                        count: *total,
                        deadline,
                    });
                }
            }
            Action::ScaleStable { total } => {
                self.stable_pool.scale_down(*total);
                if let Some(rev) = self.stable_rev() {
                    out.push(Command::StopReplicas {
                        rev,
                        which: Stop::DownTo(*total),
                    });
                }
            }
            Action::SetWeight { canary } => {
                self.set_weights(Weights::with_canary(*canary), out);
            }
            Action::Switch => {
                self.weights = Weights::all_canary();
                out.push(Command::SwitchTraffic { to: new });
            }
            Action::Smoke => {
                let checks = match &self.plan.strategy {
                    Strategy::BlueGreen { smoke_checks, .. } => smoke_checks.clone(),
                    _ => Vec::new(),
                };
                out.push(Command::RunSmoke { rev: new, checks });
                self.arm_deadline(now, out);
            }
            Action::Analysis { analysis, .. } => {
                let run = AnalysisRun(self.next_run);
                self.next_run = self.next_run.saturating_add(1);
                self.step_run = Some(run);
                out.push(Command::StartAnalysis {
                    run,
                    name: analysis.name.clone(),
                    step: Some(self.cursor),
                });
            }
            Action::Pause { duration } => {
                out.push(Command::ScheduleWake {
                    at: now.after(*duration),
                });
            }
            Action::AwaitPromotion => {
                Self::record("waiting for `ferry promote`".to_owned(), out);
            }
            Action::MarkStable => {
                self.marked_stable = true;
                if let Some(run) = self.background.take() {
                    out.push(Command::StopAnalysis { run });
                }
                out.push(Command::MarkStable { rev: new });
            }
        }
    }

    fn satisfied(&mut self, action: &Action, now: Timestamp) -> bool {
        match action {
            Action::ScaleNew { total } => self.new_pool.healthy_count() >= *total,
            Action::Smoke | Action::Analysis { .. } | Action::AwaitPromotion => {
                self.step_done.is_some()
            }
            Action::Pause { duration } => {
                self.step_done.is_some()
                    || self.entered_at.is_some_and(|at| now >= at.after(*duration))
            }
            Action::ScaleStable { .. }
            | Action::SetWeight { .. }
            | Action::Switch
            | Action::MarkStable => true,
        }
    }

    fn complete(&mut self, now: Timestamp, out: &mut Vec<Command>) {
        if let Some(run) = self.background.take() {
            out.push(Command::StopAnalysis { run });
        }
        self.status = Status::Completed;
        self.finished_at = Some(now);
        self.deadline = None;
        Self::record(
            format!(
                "revision {} of {} ({}) is live on all traffic",
                self.plan.new, self.plan.app, self.plan.env
            ),
            out,
        );
        let window = self.plan.warm_window();
        if let (Some(stable), false) = (&self.plan.stable, window.is_zero())
            && stable.replicas > 0
        {
            Self::record(
                format!(
                    "revision {} stays up out of traffic for {}: `ferry rollback` switches \
                     back to it at once",
                    stable.rev,
                    human_duration(window)
                ),
                out,
            );
        }
        out.push(Command::Finish {
            outcome: Outcome::Promoted,
        });
    }

    /// Traffic back to stable at once, then tear the new revision down.
    fn begin_rollback(
        &mut self,
        reason: String,
        aborted: bool,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        if self.status != Status::Running {
            return;
        }
        self.set_weights(Weights::all_stable(), out);
        if let Some(run) = self.step_run.take() {
            out.push(Command::StopAnalysis { run });
        }
        if let Some(run) = self.background.take() {
            out.push(Command::StopAnalysis { run });
        }
        out.push(Command::StopReplicas {
            rev: self.plan.new.clone(),
            which: Stop::All,
        });
        self.new_pool = Pool::default();
        if self.marked_stable {
            self.marked_stable = false;
            if let Some(rev) = self.stable_rev() {
                out.push(Command::MarkStable { rev });
            }
        }
        self.push_history(
            StepResult::Failed {
                reason: reason.clone(),
            },
            now,
        );
        let verb = if aborted { "aborting" } else { "rolling back" };
        Self::record(format!("{verb}: {reason}"), out);
        self.pause = None;
        self.entered_at = None;
        self.step_done = None;
        self.deadline = None;
        self.status = Status::RollingBack { reason, aborted };
        if let Some(stable) = self.plan.stable.clone()
            && self.stable_pool.healthy_count() < stable.replicas
        {
            self.stable_pool.target = stable.replicas;
            out.push(Command::StartReplicas {
                rev: stable.rev,
                total: stable.replicas,
            });
            self.arm_deadline(now, out);
        }
        self.check_rollback_done(now, out);
    }

    fn check_rollback_done(&mut self, now: Timestamp, out: &mut Vec<Command>) {
        if let Status::RollingBack { .. } = self.status
            && self.stable_pool.healthy_count() >= self.stable_pool.target
        {
            self.end_rollback(now, out);
        }
    }

    fn end_rollback(&mut self, now: Timestamp, out: &mut Vec<Command>) {
        let Status::RollingBack { reason, aborted } = self.status.clone() else {
            return;
        };
        self.deadline = None;
        self.pause = None;
        self.finished_at = Some(now);
        let outcome = if aborted {
            self.status = Status::Aborted {
                reason: reason.clone(),
            };
            Outcome::Aborted { reason }
        } else {
            self.status = Status::RolledBack {
                reason: reason.clone(),
            };
            Outcome::RolledBack { reason }
        };
        let back_to = self.stable_rev().map_or_else(
            || "no revision (first deploy)".to_owned(),
            |r| r.to_string(),
        );
        Self::record(format!("traffic is on {back_to}"), out);
        out.push(Command::Finish { outcome });
    }

    // ----- events -------------------------------------------------------------------

    fn on_start(&mut self, now: Timestamp, out: &mut Vec<Command>) {
        if self.status != Status::Pending {
            self.note("start", "the rollout has already started", out);
            return;
        }
        self.status = Status::Running;
        self.started_at = Some(now);
        let from = self
            .stable_rev()
            .map_or_else(|| "nothing (first deploy)".to_owned(), |r| r.to_string());
        Self::record(
            format!(
                "rolling out {} of {} ({}) over {from}: {}, {} replica(s), {} step(s)",
                self.plan.new,
                self.plan.app,
                self.plan.env,
                self.plan.strategy_name(),
                self.plan.replicas,
                self.program.actions.len()
            ),
            out,
        );
        if let (Some(_), Some(analysis)) = (&self.plan.stable, &self.plan.background_analysis) {
            let run = AnalysisRun(self.next_run);
            self.next_run = self.next_run.saturating_add(1);
            self.background = Some(run);
            out.push(Command::StartAnalysis {
                run,
                name: analysis.name.clone(),
                step: None,
            });
        }
        self.advance(now, out);
    }

    fn on_replica_started(
        &mut self,
        kind: &str,
        rev: &Revision,
        id: ReplicaId,
        out: &mut Vec<Command>,
    ) {
        let active = matches!(self.status, Status::Running | Status::RollingBack { .. });
        match self.arm(rev) {
            Some(Arm::New) if self.status == Status::Running => {
                if !self.new_pool.healthy.contains(&id) && !self.failed.contains(&id) {
                    self.new_pool.starting.insert(id);
                }
            }
            Some(Arm::New) if self.status != Status::Pending => {
                self.stop_late_replica(id, out);
            }
            Some(Arm::Stable) if active => {
                if !self.stable_pool.healthy.contains(&id) {
                    self.stable_pool.starting.insert(id);
                }
            }
            None => self.note(kind, &format!("{rev} is not part of this rollout"), out),
            _ => self.note(kind, "no replica is expected now", out),
        }
    }

    fn stop_late_replica(&self, id: ReplicaId, out: &mut Vec<Command>) {
        Self::record(
            format!(
                "stopping replica {id} of {}: the rollout no longer wants it",
                self.plan.new
            ),
            out,
        );
        out.push(Command::StopReplicas {
            rev: self.plan.new.clone(),
            which: Stop::Ids(vec![id]),
        });
    }

    fn on_replica_healthy(
        &mut self,
        kind: &str,
        rev: &Revision,
        id: ReplicaId,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        match self.arm(rev) {
            Some(Arm::New) if self.status == Status::Running => {
                if self.failed.contains(&id) {
                    self.note(kind, &format!("replica {id} has already failed"), out);
                    return;
                }
                self.new_pool.starting.remove(&id);
                if self.new_pool.healthy.insert(id) && self.deadline.is_some() {
                    // Progress: the deadline counts from the last replica that came up.
                    self.arm_deadline(now, out);
                }
                self.advance(now, out);
            }
            Some(Arm::New) if self.status != Status::Pending => {
                self.stop_late_replica(id, out);
            }
            Some(Arm::Stable)
                if matches!(self.status, Status::Running | Status::RollingBack { .. }) =>
            {
                self.stable_pool.starting.remove(&id);
                self.stable_pool.healthy.insert(id);
                self.check_rollback_done(now, out);
            }
            None => self.note(kind, &format!("{rev} is not part of this rollout"), out),
            _ => self.note(kind, "no replica is expected now", out),
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one event's fields, passed through"
    )]
    fn on_replica_lost(
        &mut self,
        kind: &str,
        rev: &Revision,
        id: ReplicaId,
        what: &str,
        reason: &str,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let active = matches!(self.status, Status::Running | Status::RollingBack { .. });
        match self.arm(rev) {
            Some(Arm::New) if self.status == Status::Running => {
                self.new_pool.remove(&id);
                if !self.failed.insert(id.clone()) {
                    self.note(
                        kind,
                        &format!("replica {id} was already counted as failed"),
                        out,
                    );
                    return;
                }
                let failures = u32::try_from(self.failed.len()).unwrap_or(u32::MAX);
                let limit = self.plan.max_failed_replicas;
                if failures > limit {
                    let reason = format!(
                        "replica {id} of {rev} {what}: {reason} \
                         ({failures} failed replica(s), {limit} tolerated)"
                    );
                    self.begin_rollback(reason, false, now, out);
                } else {
                    Self::record(
                        format!(
                            "replica {id} of {rev} {what}: {reason}; replacing it \
                             ({failures} of {limit} tolerated failures)"
                        ),
                        out,
                    );
                    out.push(Command::StopReplicas {
                        rev: rev.clone(),
                        which: Stop::Ids(vec![id]),
                    });
                    out.push(Command::StartReplicas {
                        rev: rev.clone(),
                        total: self.new_pool.target,
                    });
                }
            }
            Some(Arm::New) if self.status != Status::Pending => {
                self.stop_late_replica(id, out);
            }
            Some(Arm::Stable) if active => {
                if !self.stable_pool.remove(&id) && self.stable_pool.untracked > 0 {
                    self.stable_pool.untracked -= 1;
                }
                Self::record(
                    format!("stable replica {id} of {rev} {what}: {reason}"),
                    out,
                );
                if self.stable_pool.target > 0 {
                    out.push(Command::StartReplicas {
                        rev: rev.clone(),
                        total: self.stable_pool.target,
                    });
                }
            }
            None => self.note(kind, &format!("{rev} is not part of this rollout"), out),
            _ => self.note(kind, "no replica is expected now", out),
        }
    }

    fn on_replica_stopped(&mut self, rev: &Revision, id: &ReplicaId, out: &mut Vec<Command>) {
        if self.is_terminal() {
            // A confirmation of the teardown; the final state stays as it was recorded.
            return;
        }
        match self.arm(rev) {
            Some(Arm::New) => {
                let was_live = self.new_pool.remove(id);
                if was_live && self.status == Status::Running && self.new_pool.target > 0 {
                    out.push(Command::StartReplicas {
                        rev: rev.clone(),
                        total: self.new_pool.target,
                    });
                }
            }
            Some(Arm::Stable) => {
                self.stable_pool.remove(id);
            }
            None => {}
        }
    }

    fn on_smoke(
        &mut self,
        kind: &str,
        failure: Option<String>,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let awaited = self.status == Status::Running
            && self.entered_at.is_some()
            && self.step_done.is_none()
            && matches!(self.current_action(), Some(Action::Smoke));
        if !awaited {
            self.note(kind, "no smoke check is running", out);
            return;
        }
        match failure {
            None => {
                self.step_done = Some(StepResult::Passed);
                self.deadline = None;
                self.advance(now, out);
            }
            Some(reason) => {
                self.begin_rollback(format!("smoke check failed: {reason}"), false, now, out);
            }
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one event's fields, passed through"
    )]
    fn on_verdict(
        &mut self,
        kind: &str,
        run: AnalysisRun,
        verdict: Verdict,
        reference: String,
        summary: &str,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        if self.status != Status::Running {
            self.note(kind, "no analysis is awaited", out);
            return;
        }
        let step_analysis = match self.current_action() {
            Some(Action::Analysis { analysis, purpose }) => Some((analysis.clone(), *purpose)),
            _ => None,
        };
        let inconclusive_pause = matches!(self.pause, Some(ManualPause::Inconclusive { .. }));
        if self.step_run == Some(run) && self.step_done.is_none() && !inconclusive_pause {
            let Some((analysis, purpose)) = step_analysis else {
                return;
            };
            let name = &analysis.name;
            match verdict {
                Verdict::Pass => {
                    Self::record(format!("{purpose} analysis {name} passed: {summary}"), out);
                    self.step_done = Some(StepResult::Passed);
                    self.advance(now, out);
                }
                Verdict::Fail => {
                    let reason = format!(
                        "{purpose} analysis {name} failed: {summary} (verdict {reference})"
                    );
                    self.begin_rollback(reason, false, now, out);
                }
                Verdict::Inconclusive => match analysis.on_inconclusive {
                    InconclusivePolicy::Pause => {
                        self.push_history(StepResult::Inconclusive { reference }, now);
                        self.pause = Some(ManualPause::Inconclusive {
                            analysis: name.clone(),
                        });
                        Self::record(
                            format!(
                                "paused: {purpose} analysis {name} was inconclusive ({summary}); \
                                 `ferry resume` runs it again, `ferry promote` skips it"
                            ),
                            out,
                        );
                    }
                    InconclusivePolicy::Rollback => {
                        let reason = format!(
                            "{purpose} analysis {name} was inconclusive ({summary}) and its \
                             policy is to roll back (verdict {reference})"
                        );
                        self.begin_rollback(reason, false, now, out);
                    }
                    InconclusivePolicy::Promote => {
                        Self::record(
                            format!(
                                "{purpose} analysis {name} was inconclusive ({summary}); \
                                 its policy is to go on"
                            ),
                            out,
                        );
                        self.step_done = Some(StepResult::Inconclusive { reference });
                        self.advance(now, out);
                    }
                },
            }
        } else if self.background == Some(run) {
            let Some(analysis) = self.plan.background_analysis.clone() else {
                return;
            };
            let name = &analysis.name;
            let roll_back = match verdict {
                Verdict::Fail => true,
                Verdict::Inconclusive => analysis.on_inconclusive == InconclusivePolicy::Rollback,
                Verdict::Pass => false,
            };
            if roll_back {
                let reason = format!(
                    "background analysis {name} {}: {summary} (verdict {reference})",
                    if verdict == Verdict::Fail {
                        "failed"
                    } else {
                        "was inconclusive"
                    }
                );
                self.begin_rollback(reason, false, now, out);
            } else {
                Self::record(
                    format!("background analysis {name}: {verdict:?} ({summary})"),
                    out,
                );
            }
        } else {
            self.note(kind, &format!("analysis run {} is not awaited", run.0), out);
        }
    }

    fn on_tick(&mut self, now: Timestamp, out: &mut Vec<Command>) {
        match self.status {
            Status::Running => {
                if self.pause.is_none() && self.deadline.is_some_and(|d| now >= d) {
                    let waiting = match self.current_action() {
                        Some(Action::Smoke) => "smoke checks to answer".to_owned(),
                        _ => format!(
                            "{} of {} replica(s) of {} healthy",
                            self.new_pool.healthy_count(),
                            self.new_pool.target,
                            self.plan.new
                        ),
                    };
                    let reason = format!(
                        "no progress within the progress deadline of {}: {waiting}",
                        human_duration(self.plan.progress_deadline)
                    );
                    self.begin_rollback(reason, false, now, out);
                } else {
                    self.advance(now, out);
                }
            }
            Status::RollingBack { .. } if self.deadline.is_some_and(|d| now >= d) => {
                Self::record(
                    format!(
                        "stable revision only has {} of {} replica(s) healthy after the \
                         progress deadline; finishing the rollback anyway",
                        self.stable_pool.healthy_count(),
                        self.stable_pool.target
                    ),
                    out,
                );
                self.end_rollback(now, out);
            }
            _ => {}
        }
    }

    fn on_promote(&mut self, kind: &str, full: bool, now: Timestamp, out: &mut Vec<Command>) {
        if self.status != Status::Running {
            self.note(kind, "nothing is in progress to promote", out);
            return;
        }
        if full {
            if matches!(self.plan.strategy, Strategy::Rolling { .. }) {
                self.note(kind, "a rolling update has no steps to skip", out);
                return;
            }
            if self.cursor >= self.program.tail {
                self.note(kind, "already promoting", out);
                return;
            }
            if let Some(run) = self.step_run.take() {
                out.push(Command::StopAnalysis { run });
            }
            // Every step between here and the promotion tail is recorded as skipped.
            for index in self.cursor..self.program.tail {
                if let Some(action) = self.program.actions.get(index) {
                    self.history.push(StepRecord {
                        step: index,
                        label: action.label(),
                        result: StepResult::Skipped,
                        at: now,
                    });
                }
            }
            Self::record(
                format!(
                    "promoted: skipping to step {} ({})",
                    self.program.tail + 1,
                    self.program
                        .actions
                        .get(self.program.tail)
                        .map(Action::label)
                        .unwrap_or_default()
                ),
                out,
            );
            self.cursor = self.program.tail;
            self.entered_at = None;
            self.step_done = None;
            self.deadline = None;
            self.pause = None;
            self.advance(now, out);
            return;
        }
        if let Some(ManualPause::Inconclusive { .. }) = self.pause {
            self.pause = None;
            self.step_done = Some(StepResult::Skipped);
            Self::record(
                "promoted: skipping the inconclusive analysis".to_owned(),
                out,
            );
            self.advance(now, out);
            return;
        }
        let skippable = self.entered_at.is_some()
            && self.step_done.is_none()
            && matches!(
                self.current_action(),
                Some(
                    Action::Pause { .. }
                        | Action::AwaitPromotion
                        | Action::Analysis { .. }
                        | Action::Smoke
                )
            );
        if skippable {
            if let Some(run) = self.step_run.take() {
                out.push(Command::StopAnalysis { run });
            }
            self.pause = None;
            self.step_done = Some(StepResult::Skipped);
            self.deadline = None;
            Self::record(format!("promoted: step {} skipped", self.cursor + 1), out);
            self.advance(now, out);
        } else if self.pause == Some(ManualPause::User) {
            self.pause = None;
            Self::record("promoted: resuming".to_owned(), out);
            self.resume_deadline(now, out);
            self.advance(now, out);
        } else {
            self.note(
                kind,
                "the current step waits for replicas to be healthy, which promote cannot skip",
                out,
            );
        }
    }

    fn resume_deadline(&mut self, now: Timestamp, out: &mut Vec<Command>) {
        if self.deadline.is_some() {
            // The time spent paused does not count against the deadline.
            self.arm_deadline(now, out);
        }
    }

    fn on_pause(&mut self, kind: &str, out: &mut Vec<Command>) {
        if !matches!(self.status, Status::Pending | Status::Running) {
            self.note(kind, "the rollout is over", out);
        } else if self.pause.is_some() {
            self.note(kind, "already paused", out);
        } else {
            self.pause = Some(ManualPause::User);
            Self::record("paused by user; `ferry resume` goes on".to_owned(), out);
        }
    }

    fn on_resume(&mut self, kind: &str, now: Timestamp, out: &mut Vec<Command>) {
        if !matches!(self.status, Status::Pending | Status::Running) {
            self.note(kind, "the rollout is over", out);
            return;
        }
        match self.pause.take() {
            Some(ManualPause::User) => {
                Self::record("resumed by user".to_owned(), out);
                if self.status == Status::Running {
                    self.resume_deadline(now, out);
                    self.advance(now, out);
                }
            }
            Some(ManualPause::Inconclusive { analysis }) => {
                Self::record(format!("resumed: running analysis {analysis} again"), out);
                self.entered_at = None;
                self.step_done = None;
                self.step_run = None;
                self.advance(now, out);
            }
            None => {
                let why = match self.phase() {
                    Phase::Paused { .. } => "this pause step ends with `ferry promote`",
                    _ => "the rollout is not paused",
                };
                self.note(kind, why, out);
            }
        }
    }

    fn on_abort(&mut self, kind: &str, now: Timestamp, out: &mut Vec<Command>) {
        match self.status {
            Status::Pending => {
                self.status = Status::RollingBack {
                    reason: "aborted before it started".to_owned(),
                    aborted: true,
                };
                self.end_rollback(now, out);
            }
            Status::Running if !self.marked_stable => {
                self.begin_rollback("aborted by user".to_owned(), true, now, out);
            }
            Status::Running => self.note(
                kind,
                "the new revision is already promoted; `ferry rollback` returns to the old one \
                 while it is warm",
                out,
            ),
            _ => self.note(kind, "the rollout is over", out),
        }
    }

    fn on_rollback(
        &mut self,
        kind: &str,
        to: Option<Revision>,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        if let Some(to) = &to
            && Some(to) != self.plan.stable.as_ref().map(|s| &s.rev)
        {
            self.note(
                kind,
                &format!(
                    "{to} is not this rollout's stable revision; roll back to it with a \
                     new (fast-track) rollout"
                ),
                out,
            );
            return;
        }
        match self.status {
            Status::Pending => {
                self.status = Status::RollingBack {
                    reason: "rolled back before it started".to_owned(),
                    aborted: false,
                };
                self.end_rollback(now, out);
            }
            Status::Running => {
                self.begin_rollback("rollback requested by user".to_owned(), false, now, out);
            }
            _ => self.note(
                kind,
                "the rollout is over; start a new rollout to go back",
                out,
            ),
        }
    }

    /// Health reports stopped while the controller was down, so a wait for health gets
    /// a fresh deadline instead of failing on the first tick after a long outage.
    /// Idempotent: recovering twice at the same time gives the same deadline.
    fn refresh_deadline_after_restart(&mut self, now: Timestamp) {
        if let Some(deadline) = self.deadline {
            self.deadline = Some(deadline.max(now.after(self.plan.progress_deadline)));
        }
    }

    /// After a restart, with the replicas the daemon found: forget what the state believed
    /// of its replicas, take what survived, then resume or roll back.
    fn on_resumed(
        &mut self,
        new_healthy: Vec<ReplicaId>,
        stable_healthy: u32,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        if self.status == Status::Pending {
            Self::record(
                "the daemon restarted before the rollout started; starting it".to_owned(),
                out,
            );
            self.on_start(now, out);
            return;
        }
        if matches!(self.status, Status::Running | Status::RollingBack { .. }) {
            let alive: BTreeSet<ReplicaId> = new_healthy
                .into_iter()
                .filter(|id| !self.failed.contains(id))
                .collect();
            if self.status == Status::Running {
                self.new_pool.starting.clear();
                self.new_pool.healthy = alive;
                self.new_pool.untracked = 0;
            }
            self.stable_pool.starting.clear();
            self.stable_pool.healthy.clear();
            self.stable_pool.untracked = stable_healthy;
        }
        match resumption(self) {
            Resumption::Resume => {
                let c = self.replicas();
                if self.status == Status::Running {
                    Self::record(
                        format!(
                            "the daemon restarted: resuming with {} healthy replica(s) of {} and                              {} of the stable revision",
                            c.new_healthy, self.plan.new, c.stable_healthy
                        ),
                        out,
                    );
                }
                self.refresh_deadline_after_restart(now);
                self.recovery_commands(now, out);
            }
            Resumption::RollBack { reason } => {
                self.begin_rollback(reason, false, now, out);
            }
        }
    }

    /// What `recover` emits: the state re-asserted, routing first.
    fn recovery_commands(&self, now: Timestamp, out: &mut Vec<Command>) {
        let new = self.plan.new.clone();
        let stable = self.plan.stable.clone();
        Self::record(format!("controller restarted while {}", self.phase()), out);
        match &self.status {
            Status::Pending => {}
            Status::Running => {
                out.push(Command::SetWeights {
                    weights: self.weights,
                });
                if self.marked_stable {
                    out.push(Command::MarkStable { rev: new.clone() });
                }
                if let Some(stable) = &stable
                    && self.stable_pool.target < stable.replicas
                {
                    out.push(Command::StopReplicas {
                        rev: stable.rev.clone(),
                        which: Stop::DownTo(self.stable_pool.target),
                    });
                }
                if self.new_pool.target > 0 {
                    out.push(Command::StartReplicas {
                        rev: new.clone(),
                        total: self.new_pool.target,
                    });
                }
                if let (Some(run), Some(a)) = (self.background, &self.plan.background_analysis) {
                    out.push(Command::StartAnalysis {
                        run,
                        name: a.name.clone(),
                        step: None,
                    });
                }
                if let (Some(entered), None) = (self.entered_at, &self.step_done) {
                    match self.current_action() {
                        Some(Action::ScaleNew { total }) => {
                            if let Some(deadline) = self.deadline {
                                out.push(Command::WaitHealthy {
                                    rev: new.clone(),
                                    count: *total,
                                    deadline,
                                });
                            }
                        }
                        Some(Action::Smoke) => {
                            if let Strategy::BlueGreen { smoke_checks, .. } = &self.plan.strategy {
                                out.push(Command::RunSmoke {
                                    rev: new.clone(),
                                    checks: smoke_checks.clone(),
                                });
                            }
                        }
                        Some(Action::Analysis { analysis, .. }) => {
                            let inconclusive =
                                matches!(self.pause, Some(ManualPause::Inconclusive { .. }));
                            if let (Some(run), false) = (self.step_run, inconclusive) {
                                out.push(Command::StartAnalysis {
                                    run,
                                    name: analysis.name.clone(),
                                    step: Some(self.cursor),
                                });
                            }
                        }
                        Some(Action::Pause { duration }) => {
                            out.push(Command::ScheduleWake {
                                at: entered.after(*duration),
                            });
                        }
                        _ => {}
                    }
                }
                if let Some(at) = self.deadline {
                    out.push(Command::ScheduleWake { at });
                }
                out.push(Command::ScheduleWake { at: now });
            }
            Status::RollingBack { .. } => {
                out.push(Command::SetWeights {
                    weights: Weights::all_stable(),
                });
                out.push(Command::StopReplicas {
                    rev: new,
                    which: Stop::All,
                });
                if let Some(stable) = &stable {
                    out.push(Command::MarkStable {
                        rev: stable.rev.clone(),
                    });
                    out.push(Command::StartReplicas {
                        rev: stable.rev.clone(),
                        total: self.stable_pool.target,
                    });
                }
                if let Some(at) = self.deadline {
                    out.push(Command::ScheduleWake { at });
                }
                out.push(Command::ScheduleWake { at: now });
            }
            Status::Completed => {
                out.push(Command::SetWeights {
                    weights: Weights::all_canary(),
                });
                out.push(Command::MarkStable { rev: new });
                // A warm old revision is the daemon's to stop when its window ends.
                if let Some(stable) = stable.filter(|_| self.plan.warm_window().is_zero()) {
                    out.push(Command::StopReplicas {
                        rev: stable.rev.clone(),
                        which: Stop::All,
                    });
                }
                out.push(Command::Finish {
                    outcome: Outcome::Promoted,
                });
            }
            Status::RolledBack { .. } | Status::Aborted { .. } => {
                out.push(Command::SetWeights {
                    weights: Weights::all_stable(),
                });
                out.push(Command::StopReplicas {
                    rev: new,
                    which: Stop::All,
                });
                if let Some(stable) = &stable {
                    out.push(Command::MarkStable {
                        rev: stable.rev.clone(),
                    });
                }
                if let Some(outcome) = self.outcome() {
                    out.push(Command::Finish { outcome });
                }
            }
        }
    }
}

/// What a restarted daemon does with an interrupted rollout it reloaded (see
/// [`Event::Resumed`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "resumption", rename_all = "kebab-case")]
pub enum Resumption {
    /// Go on from the persisted state: routing, replicas, analyses and timers are
    /// re-asserted (a rollback or a finished rollout is completed the same way).
    Resume,
    /// Resuming is not safe: traffic back to stable, the new revision removed.
    RollBack {
        /// Why, in plain words (recorded as the rollout's reason).
        reason: String,
    },
}

/// Whether `state`, with the replicas it now knows of (after [`Event::Resumed`] took the
/// survivors), can resume. Every phase resumes — a pause keeps its persisted deadline, a
/// wait for health starts the missing replicas, an analysis or smoke check runs again —
/// except one: the new revision carried traffic, was not yet marked stable, and none of
/// its replicas survived. Its share would silently fall to stable while the rollout
/// believes it is measured (a pause or an analysis judging a canary that serves nothing),
/// so the rollout rolls back and says why.
pub fn resumption(state: &State) -> Resumption {
    if state.status != Status::Running || state.marked_stable {
        return Resumption::Resume;
    }
    let canary = state.weights.canary();
    if canary > Weight::ZERO && state.new_pool.healthy_count() == 0 {
        return Resumption::RollBack {
            reason: format!(
                "the daemon restarted and no replica of {} survived while it served {canary} of                  the traffic",
                state.plan.new
            ),
        };
    }
    Resumption::Resume
}

/// How long the current timed wait has left, for the live view.
pub fn remaining(until: Timestamp, now: Timestamp) -> Duration {
    until.since(now)
}
