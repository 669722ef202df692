//! Turning a series of verdicts into a rollout decision: failure and inconclusive limits,
//! the number of passing measurements needed, and the time box.
//!
//! Protocol: the daemon creates an [`Analysis`] when an analysis starts, feeds it each
//! measurement's verdict with [`Analysis::record`], and between measurements may call
//! [`Analysis::poll`] so the time box ends a wait even when no verdict comes (a provider that
//! is down). Once a terminal decision is reached it sticks: later calls return it again.
//!
//! Rules, in the order they apply to each verdict:
//! - fail: one more than `failure_limit` failures rolls back;
//! - marginal (score between the thresholds): one more than `inconclusive_limit` applies
//!   `on_inconclusive`;
//! - inconclusive (too few samples): holds — it counts toward nothing, so low traffic
//!   neither fails nor promotes a canary; only the time box ends the wait;
//! - after `measurements` conclusive measurements (pass, tolerated fail or marginal), or
//!   once `duration` has passed with at least one, the analysis promotes;
//! - when the time box ends first, `on_inconclusive` applies.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{AnalysisConfig, InconclusivePolicy};
use crate::judge::{MetricOutcome, Verdict, VerdictOutcome};

/// What the rollout should do after a measurement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    /// Keep the current step and measure again.
    Continue,
    /// The canary is healthy: go to the next step or promote.
    Promote,
    /// The canary is worse: traffic back to stable and roll back.
    Rollback {
        /// Plain-words cause, for status and history.
        reason: String,
    },
    /// Hold where we are until a person decides.
    Pause {
        /// Plain-words cause, for status and history.
        reason: String,
    },
}

impl Decision {
    /// Whether the analysis is over.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::Continue)
    }
}

/// A verdict and when it was recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Time since the caller's epoch when the verdict was recorded.
    pub at: Duration,
    /// The verdict.
    pub verdict: Verdict,
}

/// When an analysis has measured enough.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Goal {
    /// After this many conclusive measurements.
    Measurements(u32),
    /// This long after the start, given at least one conclusive measurement.
    Duration(Duration),
}

/// The state of one running analysis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    goal: Goal,
    failure_limit: u32,
    inconclusive_limit: u32,
    on_inconclusive: InconclusivePolicy,
    time_box: Option<Duration>,
    started: Duration,
    /// Measurements that passed, failed or were marginal (not those lacking samples).
    conclusive: u32,
    passes: u32,
    failures: u32,
    marginals: u32,
    history: Vec<Measurement>,
    decision: Decision,
}

/// Conclusive measurements taken when neither `measurements` nor `duration` is set.
pub const DEFAULT_MEASUREMENTS: u32 = 3;

impl Analysis {
    /// Starts an analysis at `now` (any monotonic epoch the caller keeps using).
    pub fn new(config: &AnalysisConfig, now: Duration) -> Self {
        let goal = match (config.measurements, config.duration) {
            (Some(n), _) => Goal::Measurements(n.max(1)),
            (None, Some(d)) => Goal::Duration(d),
            (None, None) => Goal::Measurements(DEFAULT_MEASUREMENTS),
        };
        Self {
            goal,
            failure_limit: config.failure_limit,
            inconclusive_limit: config.inconclusive_limit,
            on_inconclusive: config.on_inconclusive,
            time_box: config.time_box,
            started: now,
            conclusive: 0,
            passes: 0,
            failures: 0,
            marginals: 0,
            history: Vec::new(),
            decision: Decision::Continue,
        }
    }

    /// Records one measurement's verdict at `now` and returns the decision.
    pub fn record(&mut self, verdict: Verdict, now: Duration) -> Decision {
        if self.decision.is_terminal() {
            return self.decision.clone();
        }
        let outcome = verdict.outcome;
        let failing = failing_lines(&verdict);
        self.history.push(Measurement { at: now, verdict });
        match outcome {
            VerdictOutcome::Fail => {
                self.failures += 1;
                self.conclusive += 1;
                if self.failures > self.failure_limit {
                    // Windows still waiting for samples were not judged: count them apart.
                    let held = self.history.len() - self.conclusive as usize;
                    let held = match held {
                        0 => String::new(),
                        1 => ", 1 window held for samples".to_owned(),
                        n => format!(", {n} windows held for samples"),
                    };
                    self.decision = Decision::Rollback {
                        reason: format!(
                            "analysis failed {} of {} judged measurements ({} tolerated{held}): {}",
                            self.failures, self.conclusive, self.failure_limit, failing
                        ),
                    };
                    return self.decision.clone();
                }
            }
            VerdictOutcome::Pass => {
                self.passes += 1;
                self.conclusive += 1;
            }
            VerdictOutcome::Marginal => {
                self.marginals += 1;
                self.conclusive += 1;
                if self.marginals > self.inconclusive_limit {
                    let why = format!(
                        "analysis was marginal in {} measurements ({} tolerated)",
                        self.marginals, self.inconclusive_limit
                    );
                    return self.give_up(why);
                }
            }
            // Too few samples: hold, and let the time box bound the wait.
            VerdictOutcome::Inconclusive => {}
        }
        if let Goal::Measurements(n) = self.goal
            && self.conclusive >= n
        {
            self.decision = Decision::Promote;
            return self.decision.clone();
        }
        self.poll(now)
    }

    /// Checks the duration and the time box at `now` without a new verdict.
    pub fn poll(&mut self, now: Duration) -> Decision {
        if self.decision.is_terminal() {
            return self.decision.clone();
        }
        let elapsed = now.saturating_sub(self.started);
        if let Goal::Duration(d) = self.goal
            && elapsed >= d
            && self.conclusive > 0
        {
            self.decision = Decision::Promote;
            return self.decision.clone();
        }
        if let Some(limit) = self.time_box
            && elapsed >= limit
        {
            let why = format!(
                "analysis did not conclude within {} ({} of {} measurements had enough samples)",
                format_duration(limit),
                self.conclusive,
                self.history.len()
            );
            return self.give_up(why);
        }
        Decision::Continue
    }

    fn give_up(&mut self, why: String) -> Decision {
        let last = self
            .history
            .last()
            .map(|m| format!("; last: {}", m.verdict.summary))
            .unwrap_or_default();
        self.decision = match self.on_inconclusive {
            InconclusivePolicy::Pause => Decision::Pause {
                reason: format!("{why}{last}; paused as configured"),
            },
            InconclusivePolicy::Rollback => Decision::Rollback {
                reason: format!("{why}{last}; rolled back as configured"),
            },
            InconclusivePolicy::Promote => Decision::Promote,
        };
        self.decision.clone()
    }

    /// The decision reached so far (`Continue` while running).
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// Every recorded measurement, oldest first.
    pub fn history(&self) -> &[Measurement] {
        &self.history
    }

    /// Passed, failed and marginal measurements so far.
    pub fn tally(&self) -> (u32, u32, u32) {
        (self.passes, self.failures, self.marginals)
    }

    /// When the analysis started (the caller's epoch).
    pub fn started(&self) -> Duration {
        self.started
    }

    /// Time left before the time box ends at `now`; `None` without a time box.
    pub fn time_left(&self, now: Duration) -> Option<Duration> {
        self.time_box
            .map(|limit| limit.saturating_sub(now.saturating_sub(self.started)))
    }
}

fn failing_lines(verdict: &Verdict) -> String {
    let failed: Vec<&str> = verdict
        .metrics
        .iter()
        .filter(|m| m.outcome == MetricOutcome::Fail)
        .map(|m| m.explanation.as_str())
        .collect();
    if failed.is_empty() {
        verdict.summary.clone()
    } else {
        failed.join("; ")
    }
}

fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else if d.subsec_millis() == 0 {
        format!("{secs}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}
