//! A plan compiled to a flat list of actions: every strategy runs on the same interpreter.
//!
//! Rolling batches, blue-green gates and canary steps all become the same few actions
//! (scale, set weights, check, wait). The list ends with the promotion tail — scale the
//! new revision to full size, move all traffic, mark it stable, stop the old one — and a
//! full `promote` jumps straight to that tail. The first deploy (no stable revision) is
//! the tail alone, as with Argo Rollouts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::human_duration;
use crate::{AnalysisRef, CanaryStep, Error, Plan, Strategy, Weight};

/// One action of a compiled rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Action {
    /// Make `total` replicas of the new revision run and wait until they are healthy.
    ScaleNew { total: u32 },
    /// Stop stable replicas down to `total` (no wait: the proxy drains them).
    ScaleStable { total: u32 },
    /// Give the new revision this share of traffic.
    SetWeight { canary: Weight },
    /// Blue-green: move all traffic to the new revision at once.
    Switch,
    /// Run the smoke checks and wait for their result.
    Smoke,
    /// Run an analysis and wait for its verdict.
    Analysis {
        analysis: AnalysisRef,
        purpose: Purpose,
    },
    /// Wait for a duration (a canary pause step).
    Pause { duration: Duration },
    /// Wait until promoted.
    AwaitPromotion,
    /// Record the new revision as the stable one.
    MarkStable,
}

impl Action {
    /// A short description for status, history and the timeline.
    pub(crate) fn label(&self) -> String {
        match self {
            Action::ScaleNew { total } => format!("start {total} new replica(s), wait healthy"),
            Action::ScaleStable { total } => format!("scale stable down to {total}"),
            Action::SetWeight { canary } => format!("weight {canary}"),
            Action::Switch => "switch traffic".to_owned(),
            Action::Smoke => "smoke checks".to_owned(),
            Action::Analysis { analysis, purpose } => {
                format!("{purpose} analysis {}", analysis.name)
            }
            Action::Pause { duration } => format!("pause {}", human_duration(*duration)),
            Action::AwaitPromotion => "pause until promoted".to_owned(),
            Action::MarkStable => "mark stable".to_owned(),
        }
    }

    /// The share of traffic the new revision has once this action has run, if it sets one.
    pub(crate) fn weight(&self) -> Option<Weight> {
        match self {
            Action::SetWeight { canary } => Some(*canary),
            Action::Switch => Some(Weight::FULL),
            _ => None,
        }
    }
}

/// Why an analysis runs, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Purpose {
    Canary,
    PrePromotion,
    PostPromotion,
}

impl std::fmt::Display for Purpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Purpose::Canary => "canary",
            Purpose::PrePromotion => "pre-promotion",
            Purpose::PostPromotion => "post-promotion",
        })
    }
}

/// A compiled plan: the actions and where the promotion tail starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Program {
    pub(crate) actions: Vec<Action>,
    /// Index of the first action of the promotion tail.
    pub(crate) tail: usize,
}

/// Compiles a validated plan.
pub(crate) fn compile(plan: &Plan) -> Result<Program, Error> {
    plan.validate()?;
    let r = plan.replicas;
    let mut actions = Vec::new();
    let blue_green = matches!(plan.strategy, Strategy::BlueGreen { .. });
    let warm = !plan.warm_window().is_zero();
    // A warm rollback target needs no steps: its replicas serve once switched to.
    let stable = plan.stable.as_ref().filter(|_| !plan.new_is_warm());
    if let Some(stable) = stable {
        match &plan.strategy {
            Strategy::Rolling {
                max_surge,
                max_unavailable,
            } => {
                let (surge, unavailable) = plan.rolling_budgets(*max_surge, *max_unavailable)?;
                rolling_batches(r, stable.replicas, surge, unavailable, &mut actions);
                if warm {
                    // Old replicas leave traffic batch by batch but keep running.
                    actions.retain(|a| !matches!(a, Action::ScaleStable { .. }));
                }
            }
            Strategy::BlueGreen {
                smoke_checks,
                auto_promote,
                pre_promotion_analysis,
                ..
            } => {
                actions.push(Action::ScaleNew { total: r });
                if !smoke_checks.is_empty() {
                    actions.push(Action::Smoke);
                }
                if let Some(a) = pre_promotion_analysis {
                    actions.push(Action::Analysis {
                        analysis: a.clone(),
                        purpose: Purpose::PrePromotion,
                    });
                }
                if !auto_promote {
                    actions.push(Action::AwaitPromotion);
                }
            }
            Strategy::Canary { steps } => {
                for step in steps {
                    if let CanaryStep::Weight(w) = step {
                        actions.push(Action::ScaleNew {
                            total: canary_replicas(*w, r),
                        });
                    }
                    actions.push(match step {
                        CanaryStep::Weight(w) => Action::SetWeight { canary: *w },
                        CanaryStep::Pause(d) => Action::Pause { duration: *d },
                        CanaryStep::PauseUntilPromoted => Action::AwaitPromotion,
                        CanaryStep::Analysis(a) => Action::Analysis {
                            analysis: a.clone(),
                            purpose: Purpose::Canary,
                        },
                    });
                }
            }
        }
    }
    let tail = actions.len();
    actions.push(Action::ScaleNew { total: r });
    if blue_green {
        actions.push(Action::Switch);
        if let (
            Some(_),
            Strategy::BlueGreen {
                post_promotion_analysis: Some(a),
                ..
            },
        ) = (&plan.stable, &plan.strategy)
        {
            actions.push(Action::Analysis {
                analysis: a.clone(),
                purpose: Purpose::PostPromotion,
            });
        }
    } else {
        actions.push(Action::SetWeight {
            canary: Weight::FULL,
        });
    }
    actions.push(Action::MarkStable);
    // With a warm window the old revision stays up after the rollout: the daemon stops
    // it when the window ends (or switches back to it on `ferry rollback`).
    if let Some(stable) = &plan.stable
        && stable.replicas > 0
        && !warm
    {
        actions.push(Action::ScaleStable { total: 0 });
    }
    Ok(Program { actions, tail })
}

/// Replicas of the new revision needed to carry `weight` of the traffic: at least one.
fn canary_replicas(weight: Weight, replicas: u32) -> u32 {
    let n = (u64::from(replicas) * u64::from(weight.percent())).div_ceil(100);
    u32::try_from(n).unwrap_or(replicas).clamp(1, replicas)
}

/// Rolling batches as Kubernetes runs them: never more than `r + surge` replicas, never
/// fewer than `r - unavailable` available; stable replicas stop before new ones start when
/// only unavailability is allowed. Stops at `new == r`, leaving the old rest to the tail.
fn rolling_batches(r: u32, stable: u32, surge: u32, unavailable: u32, out: &mut Vec<Action>) {
    let (mut new, mut old) = (0u32, stable);
    let min_available = r.saturating_sub(unavailable);
    while new < r {
        let before = (new, old);
        let old_target = if old + new > min_available {
            old.min(min_available.saturating_sub(new))
        } else {
            old
        };
        if old_target < old {
            old = old_target;
            out.push(Action::SetWeight {
                canary: Weight::proportion(new, new + old),
            });
            out.push(Action::ScaleStable { total: old });
        }
        let room = (r + surge).saturating_sub(old + new);
        let up = (r - new).min(room);
        if up > 0 {
            new += up;
            out.push(Action::ScaleNew { total: new });
            out.push(Action::SetWeight {
                canary: Weight::proportion(new, new + old),
            });
        }
        if (new, old) == before {
            // Validation rules this out; never loop forever on a bad budget.
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Budget, Revision, StableRevision};

    fn plan(strategy: Strategy, stable: u32, r: u32) -> Plan {
        Plan::new(
            "web",
            "production",
            Some(StableRevision {
                rev: Revision::new("v1").unwrap(),
                replicas: stable,
            }),
            Revision::new("v2").unwrap(),
            r,
            strategy,
        )
    }

    fn rolling(surge: u32, unavailable: u32) -> Strategy {
        Strategy::Rolling {
            max_surge: Budget::Count(surge),
            max_unavailable: Budget::Count(unavailable),
        }
    }

    fn scale_new(p: &Program) -> Vec<u32> {
        p.actions
            .iter()
            .filter_map(|a| match a {
                Action::ScaleNew { total } => Some(*total),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn rolling_with_surge_adds_one_new_replica_per_batch() {
        let p = compile(&plan(rolling(1, 0), 3, 3)).unwrap();
        assert_eq!(scale_new(&p), vec![1, 2, 3, 3]);
    }

    #[test]
    fn rolling_with_unavailability_stops_old_first() {
        let p = compile(&plan(rolling(0, 1), 3, 3)).unwrap();
        assert!(matches!(p.actions[1], Action::ScaleStable { total: 2 }));
        assert!(matches!(p.actions[2], Action::ScaleNew { total: 1 }));
    }

    #[test]
    fn rolling_budgets_hold_in_every_batch() {
        for r in 1..8 {
            for stable in 0..8 {
                for surge in 0..4 {
                    for unavailable in 0..4 {
                        if surge == 0 && unavailable == 0 {
                            continue;
                        }
                        let mut out = Vec::new();
                        rolling_batches(r, stable, surge, unavailable, &mut out);
                        let (mut new, mut old) = (0, stable);
                        for a in &out {
                            match a {
                                Action::ScaleNew { total } => new = *total,
                                Action::ScaleStable { total } => old = *total,
                                _ => {}
                            }
                            assert!(
                                new + old <= (r + surge).max(stable),
                                "{r} {stable} {surge} {unavailable}"
                            );
                            assert!(
                                new + old >= r.saturating_sub(unavailable).min(stable),
                                "{r} {stable} {surge} {unavailable}"
                            );
                        }
                        assert_eq!(new, r);
                    }
                }
            }
        }
    }

    #[test]
    fn canary_weights_bring_proportional_replicas() {
        assert_eq!(canary_replicas(Weight::new(10).unwrap(), 5), 1);
        assert_eq!(canary_replicas(Weight::new(50).unwrap(), 5), 3);
        assert_eq!(canary_replicas(Weight::new(0).unwrap(), 5), 1);
        assert_eq!(canary_replicas(Weight::FULL, 5), 5);
    }

    #[test]
    fn first_deploy_is_the_tail_alone() {
        let mut p = plan(
            Strategy::Canary {
                steps: vec![CanaryStep::PauseUntilPromoted],
            },
            0,
            2,
        );
        p.stable = None;
        let prog = compile(&p).unwrap();
        assert_eq!(prog.tail, 0);
        assert_eq!(
            prog.actions,
            vec![
                Action::ScaleNew { total: 2 },
                Action::SetWeight {
                    canary: Weight::FULL
                },
                Action::MarkStable
            ]
        );
    }
}
