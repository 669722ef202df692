//! What a rollout is asked to do: the app, the revisions, the replica count and the strategy.
//!
//! The CLI maps the `[strategy]` and `[analysis.*]` tables of ferry.toml onto these types;
//! the engine depends on nothing else in the workspace.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{AnalysisName, Error, Revision, Weight};

/// The revision serving traffic before the rollout, and how many replicas it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StableRevision {
    /// The revision.
    pub rev: Revision,
    /// How many healthy replicas of it serve now.
    pub replicas: u32,
}

/// One rollout to perform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The app's name (for messages only).
    pub app: String,
    /// The environment's name (for messages only).
    pub env: String,
    /// The revision serving now; `None` on the first deploy, which skips every step.
    pub stable: Option<StableRevision>,
    /// The revision to roll out.
    pub new: Revision,
    /// How many replicas of the new revision run once it is promoted (at least 1).
    pub replicas: u32,
    /// How traffic moves from stable to new.
    pub strategy: Strategy,
    /// An analysis that runs for the whole rollout, from start until promotion; a
    /// failing verdict rolls the rollout back at any step.
    pub background_analysis: Option<AnalysisRef>,
    /// How long the rollout may wait for replicas to become healthy (or smoke checks to
    /// answer) without progress before it is rolled back. Pauses and analyses do not count.
    pub progress_deadline: Duration,
    /// How many replicas of the new revision may fail (exit, or turn unhealthy) before
    /// the rollout is rolled back: a circuit breaker instead of endless restarts. Each
    /// failed replica is replaced while the limit is not reached.
    pub max_failed_replicas: u32,
    /// Rolling and canary: how long the old revision stays up, out of traffic, once the
    /// new one is promoted, so a rollback is an instant switch. Zero (the default) stops
    /// it at once; rolling with a window keeps every old replica running (traffic still
    /// moves batch by batch), so the update needs room for both sets, as blue-green does.
    /// Blue-green uses its own `scale_down_delay`.
    #[serde(default)]
    pub keep_warm: Duration,
    /// Healthy replicas of the new revision that already run and are routed (out of
    /// traffic): a rollback to a revision kept warm. No replica is started for them, so a
    /// warm rollback is a single switch.
    #[serde(default)]
    pub new_running: u32,
}

/// How traffic moves from the stable revision to the new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Strategy {
    /// Replace replicas in batches, each batch gated on health.
    Rolling {
        /// How many replicas above `replicas` may run during the update.
        max_surge: Budget,
        /// How many replicas below `replicas` may be missing during the update.
        max_unavailable: Budget,
    },
    /// Bring the whole new revision up next to the old one, check it, switch all traffic
    /// at once, and keep the old one warm for an instant rollback.
    BlueGreen {
        /// HTTP checks run against the new revision through its preview route before
        /// the switch. Empty: no smoke checks.
        smoke_checks: Vec<SmokeCheck>,
        /// Switch as soon as the checks pass; `false` waits for `ferry promote`.
        auto_promote: bool,
        /// How long the old revision stays up after the switch.
        scale_down_delay: Duration,
        /// An analysis that must pass before the switch.
        pre_promotion_analysis: Option<AnalysisRef>,
        /// An analysis that must pass after the switch, while the old revision is warm.
        post_promotion_analysis: Option<AnalysisRef>,
    },
    /// Shift traffic in ordered steps.
    Canary {
        /// The steps, in order. After the last one the new revision is promoted.
        steps: Vec<CanaryStep>,
    },
}

/// A replica budget for rolling updates: a count, or a percentage of `replicas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Budget {
    /// A number of replicas.
    Count(u32),
    /// A percentage of the replica count: rounded up for surge, down for unavailability
    /// (as Kubernetes does).
    Percent(u32),
}

impl Budget {
    fn resolve(self, replicas: u32, round_up: bool) -> Result<u32, Error> {
        match self {
            Budget::Count(n) => Ok(n),
            Budget::Percent(p) if p > 100 => Err(Error::InvalidPercent(p)),
            Budget::Percent(p) => {
                let scaled = u64::from(replicas) * u64::from(p);
                let n = if round_up {
                    scaled.div_ceil(100)
                } else {
                    scaled / 100
                };
                Ok(u32::try_from(n).unwrap_or(u32::MAX))
            }
        }
    }
}

/// One step of a canary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CanaryStep {
    /// Send this share of traffic to the new revision (after enough of its replicas are
    /// healthy to carry it).
    Weight(Weight),
    /// Wait this long.
    Pause(Duration),
    /// Wait until `ferry promote`.
    PauseUntilPromoted,
    /// Run an analysis and wait for its verdict.
    Analysis(AnalysisRef),
}

/// A reference to an `[analysis.<name>]` table, with what to do when it cannot decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalysisRef {
    /// The analysis table's name.
    pub name: AnalysisName,
    /// What an inconclusive verdict does.
    pub on_inconclusive: InconclusivePolicy,
}

impl AnalysisRef {
    /// A reference that pauses on an inconclusive verdict (the default).
    pub fn new(name: AnalysisName) -> Self {
        Self {
            name,
            on_inconclusive: InconclusivePolicy::Pause,
        }
    }
}

/// What an inconclusive analysis verdict does to the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InconclusivePolicy {
    /// Pause the rollout: `ferry resume` runs the analysis again, `ferry promote` skips it.
    Pause,
    /// Roll back.
    Rollback,
    /// Treat as passed.
    Promote,
}

/// A declarative smoke check against the new revision's preview route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeCheck {
    /// Request path, e.g. `/healthz`.
    pub path: String,
    /// The status code expected.
    pub expect_status: u16,
    /// Text the response body must contain, if any.
    pub body_contains: Option<String>,
}

impl Plan {
    /// A plan with the defaults a user gets from a minimal ferry.toml: a 10-minute
    /// progress deadline and no failed replica tolerated.
    pub fn new(
        app: impl Into<String>,
        env: impl Into<String>,
        stable: Option<StableRevision>,
        new: Revision,
        replicas: u32,
        strategy: Strategy,
    ) -> Self {
        Self {
            app: app.into(),
            env: env.into(),
            stable,
            new,
            replicas,
            strategy,
            background_analysis: None,
            progress_deadline: Duration::from_secs(600),
            max_failed_replicas: 0,
            keep_warm: Duration::ZERO,
            new_running: 0,
        }
    }

    /// How long the old revision stays warm after promotion: blue-green's
    /// `scale_down_delay`, otherwise `keep_warm`. The rollout ends when the new revision
    /// is promoted; the daemon stops the old one when this window ends.
    pub fn warm_window(&self) -> Duration {
        match &self.strategy {
            Strategy::BlueGreen {
                scale_down_delay, ..
            } => *scale_down_delay,
            _ => self.keep_warm,
        }
    }

    /// Whether the new revision's replicas all run already (a warm rollback): the
    /// rollout is the promotion tail alone, one switch.
    pub fn new_is_warm(&self) -> bool {
        self.new_running >= self.replicas
    }

    /// Checks the plan as a whole: every problem a user can fix in ferry.toml.
    pub fn validate(&self) -> Result<(), Error> {
        if self.replicas == 0 {
            return Err(Error::NoReplicas);
        }
        if self.progress_deadline.is_zero() {
            return Err(Error::ZeroDeadline);
        }
        if let Some(stable) = &self.stable
            && stable.rev == self.new
        {
            return Err(Error::SameRevision(self.new.to_string()));
        }
        match &self.strategy {
            Strategy::Rolling {
                max_surge,
                max_unavailable,
            } => {
                let (surge, unavailable) = self.rolling_budgets(*max_surge, *max_unavailable)?;
                if surge == 0 && unavailable == 0 {
                    return Err(Error::RollingCannotProgress {
                        replicas: self.replicas,
                    });
                }
            }
            Strategy::Canary { steps } => {
                let mut previous = Weight::ZERO;
                for (i, step) in steps.iter().enumerate() {
                    if let CanaryStep::Weight(w) = step {
                        if *w < previous {
                            return Err(Error::WeightsNotMonotonic {
                                step: i + 1,
                                weight: w.percent(),
                                previous: previous.percent(),
                            });
                        }
                        previous = *w;
                    }
                }
            }
            Strategy::BlueGreen { .. } => {}
        }
        Ok(())
    }

    /// Surge and unavailability as replica counts.
    pub(crate) fn rolling_budgets(
        &self,
        max_surge: Budget,
        max_unavailable: Budget,
    ) -> Result<(u32, u32), Error> {
        let surge = max_surge.resolve(self.replicas, true)?;
        let unavailable = max_unavailable
            .resolve(self.replicas, false)?
            .min(self.replicas);
        Ok((surge, unavailable))
    }

    /// The same plan as a fast track, for `ferry rollback` to an earlier revision: no
    /// pauses, no analyses, no smoke checks, no manual gate. Health gates stay.
    pub fn into_fast_track(mut self) -> Self {
        self.background_analysis = None;
        self.strategy = match self.strategy {
            Strategy::Canary { .. } => Strategy::Canary { steps: Vec::new() },
            Strategy::BlueGreen {
                scale_down_delay, ..
            } => Strategy::BlueGreen {
                smoke_checks: Vec::new(),
                auto_promote: true,
                scale_down_delay,
                pre_promotion_analysis: None,
                post_promotion_analysis: None,
            },
            rolling @ Strategy::Rolling { .. } => rolling,
        };
        self
    }

    /// The strategy's name as ferry.toml spells it.
    pub fn strategy_name(&self) -> &'static str {
        match self.strategy {
            Strategy::Rolling { .. } => "rolling",
            Strategy::BlueGreen { .. } => "blue-green",
            Strategy::Canary { .. } => "canary",
        }
    }
}
