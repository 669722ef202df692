//! Every strategy's happy path and each failure path, driven through a simulated daemon.

mod common;

use std::time::Duration;

use common::*;
use ferry_rollout::*;

fn rolling(surge: u32, unavailable: u32) -> Strategy {
    Strategy::Rolling {
        max_surge: Budget::Count(surge),
        max_unavailable: Budget::Count(unavailable),
    }
}

fn blue_green(auto_promote: bool) -> Strategy {
    Strategy::BlueGreen {
        smoke_checks: vec![SmokeCheck {
            path: "/healthz".to_owned(),
            expect_status: 200,
            body_contains: Some("ok".to_owned()),
        }],
        auto_promote,
        scale_down_delay: Duration::from_secs(300),
        pre_promotion_analysis: None,
        post_promotion_analysis: None,
    }
}

fn canary(steps: Vec<CanaryStep>) -> Strategy {
    Strategy::Canary { steps }
}

fn standard_canary() -> Strategy {
    canary(vec![
        CanaryStep::Weight(w(20)),
        CanaryStep::Pause(Duration::from_secs(300)),
        CanaryStep::Analysis(analysis("default")),
        CanaryStep::PauseUntilPromoted,
        CanaryStep::Weight(w(50)),
    ])
}

fn reason_of(sim: &Sim) -> String {
    match &sim.outcome {
        Some(Outcome::RolledBack { reason } | Outcome::Aborted { reason }) => reason.clone(),
        other => panic!("expected a rollback, got {other:?}"),
    }
}

/// The rollback contract: the first command answering the failure moves all traffic back.
fn assert_traffic_back_first(cmds: &[Command]) {
    let first = cmds
        .iter()
        .find(|c| !matches!(c, Command::RecordEvent { .. }))
        .expect("commands");
    assert_eq!(
        first,
        &Command::SetWeights {
            weights: Weights::all_stable()
        },
        "{cmds:#?}"
    );
}

// ----- rolling ------------------------------------------------------------------------

#[test]
fn rolling_with_surge_never_exceeds_replicas_plus_surge() {
    let mut sim = Sim::new(plan(rolling(1, 0), 3, 3));
    sim.start();
    assert_eq!(sim.outcome, Some(Outcome::Promoted));
    assert!(sim.max_live <= 4, "max live {}", sim.max_live);
    assert_eq!(sim.live_count("v2"), 3);
    assert_eq!(sim.live_count("v1"), 0);
    assert_eq!(sim.state.weights(), Weights::all_canary());
    assert!(sim.log.contains(&Command::MarkStable { rev: rev("v2") }));
    let ws = canary_weights(&sim.weights_seen);
    assert!(ws.windows(2).all(|p| p[0] <= p[1]), "{ws:?}");
    assert_eq!(ws.last(), Some(&100));
}

#[test]
fn rolling_with_unavailability_only_never_runs_extra_replicas() {
    let mut sim = Sim::new(plan(rolling(0, 1), 3, 3));
    sim.start();
    assert_eq!(sim.outcome, Some(Outcome::Promoted));
    assert!(sim.max_live <= 3, "max live {}", sim.max_live);
}

#[test]
fn rolling_percent_budgets_resolve_like_kubernetes() {
    let strategy = Strategy::Rolling {
        max_surge: Budget::Percent(25),
        max_unavailable: Budget::Percent(25),
    };
    let mut sim = Sim::new(plan(strategy, 4, 4));
    sim.start();
    assert_eq!(sim.outcome, Some(Outcome::Promoted));
    assert!(sim.max_live <= 5, "max live {}", sim.max_live);
}

#[test]
fn rolling_batch_waits_for_health_before_moving_on() {
    let mut sim = Sim::new(plan(rolling(1, 0), 3, 3));
    sim.behaviour.insert(rev("v2"), Behaviour::Silent);
    sim.start();
    assert_eq!(starts(&sim.log), vec![("v2".to_owned(), 1)]);
    assert_eq!(
        sim.live_count("v1"),
        3,
        "no old replica stops before a new one is healthy"
    );
    assert!(matches!(sim.state.phase(), Phase::Progressing { .. }));
}

#[test]
fn rolling_failure_restores_the_stable_replicas_it_had_stopped() {
    let mut sim = Sim::new(plan(rolling(0, 1), 3, 3));
    sim.behaviour.insert(rev("v2"), Behaviour::Crashes);
    let cmds = sim.start();
    assert_eq!(sim.live_count("v2"), 0);
    assert_eq!(sim.live_count("v1"), 3, "stable is back at full size");
    assert!(matches!(sim.state.phase(), Phase::RolledBack { .. }));
    assert!(
        reason_of(&sim).contains("exited with code 1"),
        "{}",
        reason_of(&sim)
    );
    assert!(starts(&cmds).contains(&("v1".to_owned(), 3)));
    assert_eq!(sim.state.weights(), Weights::all_stable());
}

#[test]
fn circuit_breaker_tolerates_the_configured_failures_then_rolls_back() {
    let mut p = plan(rolling(1, 0), 2, 2);
    p.max_failed_replicas = 2;
    let mut sim = Sim::new(p.clone());
    sim.crashes_left = 2;
    sim.start();
    assert_eq!(
        sim.outcome,
        Some(Outcome::Promoted),
        "two crashes are tolerated"
    );

    let mut sim = Sim::new(p);
    sim.crashes_left = 3;
    sim.start();
    let reason = reason_of(&sim);
    assert!(
        reason.contains("3 failed replica(s), 2 tolerated"),
        "{reason}"
    );
    assert_eq!(sim.live_count("v2"), 0);
}

#[test]
fn a_full_promote_cannot_break_rolling_budgets() {
    let mut sim = Sim::new(plan(rolling(1, 0), 3, 3));
    sim.behaviour.insert(rev("v2"), Behaviour::Silent);
    sim.start();
    let cmds = sim.run(Event::Promote { full: true });
    assert!(texts(&cmds)[0].contains("no steps to skip"), "{cmds:?}");
    assert!(starts(&cmds).is_empty());
}

// ----- blue-green ---------------------------------------------------------------------

#[test]
fn blue_green_switches_at_once_and_keeps_the_old_revision_warm() {
    let mut sim = Sim::new(plan(blue_green(true), 2, 2));
    let cmds = sim.start();
    assert!(sim.log.contains(&Command::SwitchTraffic { to: rev("v2") }));
    assert!(
        sim.log
            .iter()
            .any(|c| matches!(c, Command::RunSmoke { checks, .. } if checks.len() == 1))
    );
    // Traffic never split: all on v1, then all on v2.
    assert!(
        sim.weights_seen
            .iter()
            .all(|w| w.canary() == Weight::FULL || w.canary() == Weight::ZERO)
    );
    assert_eq!(sim.state.weights(), Weights::all_canary());
    // The rollout ends at the switch; the old set stays up for the daemon to stop when
    // scale_down_delay ends (or to switch back to on `ferry rollback`).
    assert_eq!(sim.outcome, Some(Outcome::Promoted));
    assert_eq!(sim.state.phase(), Phase::Completed);
    assert_eq!(sim.live_count("v1"), 2, "old revision kept warm");
    assert_eq!(sim.state.replicas().stable_healthy, 2);
    assert!(
        texts(&cmds)
            .iter()
            .any(|t| t.contains("v1 stays up out of traffic for 5m")),
        "{cmds:?}"
    );
    assert!(
        !sim.log
            .iter()
            .any(|c| matches!(c, Command::StopReplicas { rev: r, .. } if *r == rev("v1")))
    );
}

#[test]
fn blue_green_without_scale_down_delay_stops_the_old_set_at_once() {
    let Strategy::BlueGreen {
        smoke_checks,
        auto_promote,
        ..
    } = blue_green(true)
    else {
        unreachable!()
    };
    let strategy = Strategy::BlueGreen {
        smoke_checks,
        auto_promote,
        scale_down_delay: Duration::ZERO,
        pre_promotion_analysis: None,
        post_promotion_analysis: None,
    };
    let mut sim = Sim::new(plan(strategy, 2, 2));
    sim.start();
    assert_eq!(sim.outcome, Some(Outcome::Promoted));
    assert_eq!(sim.live_count("v1"), 0);
}

#[test]
fn rolling_and_canary_keep_the_old_revision_warm_when_asked() {
    let mut p = plan(rolling(1, 0), 3, 3);
    p.keep_warm = Duration::from_secs(120);
    let mut sim = Sim::new(p);
    sim.start();
    assert_eq!(sim.outcome, Some(Outcome::Promoted));
    assert_eq!(sim.live_count("v1"), 3, "no old replica stopped");
    assert_eq!(sim.live_count("v2"), 3);
    // Traffic still moved batch by batch, never back.
    let canary: Vec<u8> = sim
        .weights_seen
        .iter()
        .map(|w| w.canary().percent())
        .collect();
    assert!(
        canary.len() > 2 && canary.windows(2).all(|p| p[0] < p[1]),
        "{canary:?}"
    );
    assert_eq!(canary.last(), Some(&100), "{canary:?}");

    let mut p = plan(standard_canary(), 2, 2);
    p.keep_warm = Duration::from_secs(120);
    let mut sim = Sim::new(p.into_fast_track());
    sim.start();
    assert_eq!(sim.outcome, Some(Outcome::Promoted));
    assert_eq!(sim.live_count("v1"), 2);

    // Without a window the old replicas are gone at the end, as before.
    let mut sim = Sim::new(plan(rolling(1, 0), 3, 3));
    sim.start();
    assert_eq!(sim.live_count("v1"), 0);
}

#[test]
fn rollback_to_a_warm_revision_is_one_switch_and_starts_nothing() {
    for strategy in [blue_green(true), rolling(1, 0), standard_canary()] {
        // v2 is the warm earlier revision, v1 the live one.
        let mut p = plan(strategy.clone(), 2, 2).into_fast_track();
        p.new_running = 2;
        let mut sim = Sim::new(p);
        sim.live.insert(
            rev("v2"),
            vec![
                ReplicaId::new("v2-warm0").unwrap(),
                ReplicaId::new("v2-warm1").unwrap(),
            ],
        );
        let cmds = sim.start();
        assert!(starts(&cmds).is_empty(), "{strategy:?}: {cmds:?}");
        assert_eq!(sim.outcome, Some(Outcome::Promoted), "{strategy:?}");
        assert_eq!(sim.state.weights(), Weights::all_canary());
        assert!(cmds.contains(&Command::MarkStable { rev: rev("v2") }));
        // Every traffic change is a full switch: no intermediate split.
        assert!(
            sim.weights_seen.iter().all(|w| w.canary() == Weight::FULL),
            "{strategy:?}: {:?}",
            sim.weights_seen
        );
        assert_eq!(sim.live_count("v2"), 2);
    }
}

#[test]
fn blue_green_waits_for_the_whole_new_revision_before_smoke() {
    let mut sim = Sim::new(plan(blue_green(true), 3, 3));
    sim.behaviour.insert(rev("v2"), Behaviour::Silent);
    sim.start();
    let ids: Vec<ReplicaId> = sim.live[&rev("v2")].clone();
    assert_eq!(ids.len(), 3);
    for id in &ids[..2] {
        let cmds = sim.run(Event::ReplicaHealthy {
            rev: rev("v2"),
            id: id.clone(),
        });
        assert!(!cmds.iter().any(|c| matches!(c, Command::RunSmoke { .. })));
    }
    let cmds = sim.run(Event::ReplicaHealthy {
        rev: rev("v2"),
        id: ids[2].clone(),
    });
    assert!(cmds.iter().any(|c| matches!(c, Command::RunSmoke { .. })));
}

#[test]
fn blue_green_manual_promotion_waits_for_promote() {
    let mut sim = Sim::new(plan(blue_green(false), 2, 2));
    sim.start();
    assert!(matches!(
        sim.state.phase(),
        Phase::Paused {
            reason: PauseReason::UntilPromoted,
            until: None,
            ..
        }
    ));
    assert_eq!(sim.state.weights(), Weights::all_stable());
    assert!(
        !sim.log
            .iter()
            .any(|c| matches!(c, Command::SwitchTraffic { .. }))
    );
    let cmds = sim.run(Event::Promote { full: false });
    assert!(cmds.contains(&Command::SwitchTraffic { to: rev("v2") }));
}

#[test]
fn blue_green_smoke_failure_rolls_back_before_any_switch() {
    let mut sim = Sim::new(plan(blue_green(true), 2, 2));
    sim.smoke = Some(Err("GET /healthz: expected 200, got 503".to_owned()));
    let cmds = sim.start();
    assert!(
        !cmds
            .iter()
            .any(|c| matches!(c, Command::SwitchTraffic { .. }))
    );
    assert!(reason_of(&sim).contains("smoke check failed: GET /healthz: expected 200, got 503"));
    assert_eq!(sim.live_count("v2"), 0);
    assert_eq!(sim.live_count("v1"), 2);
}

#[test]
fn blue_green_post_promotion_analysis_failure_switches_back() {
    let strategy = Strategy::BlueGreen {
        smoke_checks: vec![],
        auto_promote: true,
        scale_down_delay: Duration::from_secs(30),
        pre_promotion_analysis: Some(analysis("pre")),
        post_promotion_analysis: Some(analysis("post")),
    };
    let mut sim = Sim::new(plan(strategy, 2, 2));
    sim.verdicts.insert("pre".to_owned(), Verdict::Pass);
    sim.verdicts.insert("post".to_owned(), Verdict::Fail);
    sim.start();
    assert!(sim.log.contains(&Command::SwitchTraffic { to: rev("v2") }));
    assert!(reason_of(&sim).contains("post-promotion analysis post failed"));
    assert_eq!(sim.state.weights(), Weights::all_stable());
    assert_eq!(sim.live_count("v1"), 2);
    assert!(!sim.log.contains(&Command::MarkStable { rev: rev("v2") }));
}

// ----- canary -------------------------------------------------------------------------

#[test]
fn canary_walks_its_steps_in_order() {
    let mut sim = Sim::new(plan(standard_canary(), 5, 5));
    sim.verdicts.insert("default".to_owned(), Verdict::Pass);
    sim.start();
    assert_eq!(canary_weights(&sim.weights_seen), vec![20]);
    assert_eq!(
        sim.live_count("v2"),
        1,
        "20% of 5 replicas needs one canary"
    );
    let Phase::Paused {
        reason: PauseReason::Step,
        until: Some(until),
        ..
    } = sim.state.phase()
    else {
        panic!("{:?}", sim.state.phase())
    };
    assert_eq!(until, Timestamp::from_unix_millis(sim.now + 5 * MIN));

    sim.advance(5 * MIN - 1);
    assert!(sim.started_analyses.is_empty(), "still pausing");
    sim.advance(1);
    assert_eq!(sim.started_analyses.len(), 1);
    assert!(matches!(
        sim.state.phase(),
        Phase::Paused {
            reason: PauseReason::UntilPromoted,
            ..
        }
    ));
    sim.run(Event::Resume); // resume does not end a promotion gate
    assert!(matches!(sim.state.phase(), Phase::Paused { .. }));

    sim.run(Event::Promote { full: false });
    assert_eq!(sim.outcome, Some(Outcome::Promoted));
    assert_eq!(canary_weights(&sim.weights_seen), vec![20, 50, 100]);
    assert_eq!(sim.live_count("v2"), 5);
    assert_eq!(sim.live_count("v1"), 0);
    let results: Vec<_> = sim
        .state
        .history()
        .iter()
        .map(|r| r.result.clone())
        .collect();
    assert!(
        results
            .iter()
            .all(|r| *r == StepResult::Passed || *r == StepResult::Skipped)
    );
}

#[test]
fn canary_weight_moves_only_after_its_replicas_are_healthy() {
    let mut sim = Sim::new(plan(canary(vec![CanaryStep::Weight(w(40))]), 5, 5));
    sim.behaviour.insert(rev("v2"), Behaviour::Silent);
    sim.start();
    assert_eq!(starts(&sim.log), vec![("v2".to_owned(), 2)]);
    assert!(sim.weights_seen.is_empty());
    let ids = sim.live[&rev("v2")].clone();
    sim.run(Event::ReplicaHealthy {
        rev: rev("v2"),
        id: ids[0].clone(),
    });
    assert!(sim.weights_seen.is_empty());
    let cmds = sim.run(Event::ReplicaHealthy {
        rev: rev("v2"),
        id: ids[1].clone(),
    });
    assert!(cmds.contains(&Command::SetWeights {
        weights: Weights::with_canary(w(40))
    }));
}

#[test]
fn canary_analysis_failure_moves_traffic_back_first_then_tears_down() {
    let mut sim = Sim::new(plan(standard_canary(), 5, 5));
    sim.verdicts.insert("default".to_owned(), Verdict::Fail);
    sim.start();
    let all = sim.advance(5 * MIN);
    // The commands answering the verdict come after the analysis was started.
    let started = all
        .iter()
        .position(|c| matches!(c, Command::StartAnalysis { .. }))
        .unwrap();
    let cmds = &all[started + 1..];
    assert_traffic_back_first(cmds);
    let stop_at = cmds
        .iter()
        .position(|c| {
            matches!(
                c,
                Command::StopReplicas {
                    which: Stop::All,
                    ..
                }
            )
        })
        .expect("teardown");
    let weights_at = cmds
        .iter()
        .position(|c| matches!(c, Command::SetWeights { .. }))
        .unwrap();
    assert!(weights_at < stop_at);
    let reason = reason_of(&sim);
    assert!(
        reason.contains("canary analysis default failed"),
        "{reason}"
    );
    assert!(reason.contains("verdict-1"), "{reason}");
    assert_eq!(sim.live_count("v2"), 0);
    assert_eq!(sim.state.weights().canary(), Weight::ZERO);
    assert!(matches!(
        sim.state.history().last().map(|r| &r.result),
        Some(StepResult::Failed { .. })
    ));
}

#[test]
fn inconclusive_analysis_pauses_and_resume_runs_it_again() {
    let mut sim = Sim::new(plan(
        canary(vec![
            CanaryStep::Weight(w(20)),
            CanaryStep::Analysis(analysis("default")),
        ]),
        2,
        2,
    ));
    sim.verdicts
        .insert("default".to_owned(), Verdict::Inconclusive);
    sim.start();
    assert!(matches!(
        sim.state.phase(),
        Phase::Paused {
            reason: PauseReason::Inconclusive { .. },
            ..
        }
    ));
    sim.verdicts.insert("default".to_owned(), Verdict::Pass);
    sim.run(Event::Resume);
    assert_eq!(sim.started_analyses.len(), 2);
    assert_ne!(
        sim.started_analyses[0].0, sim.started_analyses[1].0,
        "a fresh run id"
    );
    assert_eq!(sim.outcome, Some(Outcome::Promoted));
}

#[test]
fn inconclusive_analysis_can_be_skipped_with_promote() {
    let mut sim = Sim::new(plan(
        canary(vec![
            CanaryStep::Weight(w(20)),
            CanaryStep::Analysis(analysis("default")),
        ]),
        2,
        2,
    ));
    sim.verdicts
        .insert("default".to_owned(), Verdict::Inconclusive);
    sim.start();
    sim.run(Event::Promote { full: false });
    assert_eq!(sim.outcome, Some(Outcome::Promoted));
}

#[test]
fn inconclusive_policies_rollback_and_promote_do_what_they_say() {
    for (policy, promoted) in [
        (InconclusivePolicy::Rollback, false),
        (InconclusivePolicy::Promote, true),
    ] {
        let mut a = analysis("default");
        a.on_inconclusive = policy;
        let mut sim = Sim::new(plan(
            canary(vec![CanaryStep::Weight(w(20)), CanaryStep::Analysis(a)]),
            2,
            2,
        ));
        sim.verdicts
            .insert("default".to_owned(), Verdict::Inconclusive);
        sim.start();
        assert_eq!(
            sim.outcome == Some(Outcome::Promoted),
            promoted,
            "{policy:?}: {:?}",
            sim.outcome
        );
    }
}

#[test]
fn full_promote_skips_every_remaining_step_but_not_health() {
    let mut sim = Sim::new(plan(standard_canary(), 4, 4));
    sim.start();
    let cmds = sim.run(Event::Promote { full: true });
    assert!(
        texts(&cmds)
            .iter()
            .any(|t| t.starts_with("promoted: skipping"))
    );
    assert!(
        sim.started_analyses.is_empty(),
        "the analysis step was skipped"
    );
    assert_eq!(canary_weights(&sim.weights_seen), vec![20, 100]);
    assert_eq!(sim.outcome, Some(Outcome::Promoted));
    let skipped: Vec<&str> = sim
        .state
        .history()
        .iter()
        .filter(|r| r.result == StepResult::Skipped)
        .map(|r| r.label.as_str())
        .collect();
    assert_eq!(
        skipped,
        vec![
            "pause 5m",
            "canary analysis default",
            "pause until promoted",
            "start 2 new replica(s), wait healthy",
            "weight 50%"
        ]
    );
    assert_eq!(sim.state.current_step(), None);
}

#[test]
fn abort_returns_to_stable_with_outcome_aborted() {
    let mut sim = Sim::new(plan(standard_canary(), 3, 3));
    sim.start();
    let cmds = sim.run(Event::Abort);
    assert_traffic_back_first(&cmds);
    assert_eq!(
        sim.outcome,
        Some(Outcome::Aborted {
            reason: "aborted by user".to_owned()
        })
    );
    assert_eq!(sim.live_count("v2"), 0);
    assert!(matches!(sim.state.phase(), Phase::Aborted { .. }));
}

#[test]
fn user_pause_holds_traffic_until_resume() {
    let mut sim = Sim::new(plan(canary(vec![CanaryStep::Weight(w(50))]), 2, 2));
    sim.behaviour.insert(rev("v2"), Behaviour::Silent);
    sim.start();
    sim.run(Event::Pause);
    let id = sim.live[&rev("v2")][0].clone();
    sim.run(Event::ReplicaHealthy { rev: rev("v2"), id });
    assert!(sim.weights_seen.is_empty(), "paused: no traffic moves");
    assert!(matches!(
        sim.state.phase(),
        Phase::Paused {
            reason: PauseReason::User,
            ..
        }
    ));
    sim.advance(10 * MIN); // the deadline does not run while paused
    assert_eq!(sim.outcome, None);
    let cmds = sim.run(Event::Resume);
    assert!(cmds.contains(&Command::SetWeights {
        weights: Weights::with_canary(w(50))
    }));
}

#[test]
fn progress_deadline_rolls_back_a_revision_that_never_gets_healthy() {
    let mut sim = Sim::new(plan(canary(vec![CanaryStep::Weight(w(50))]), 2, 2));
    sim.behaviour.insert(rev("v2"), Behaviour::Silent);
    let cmds = sim.start();
    let deadline = Timestamp::from_unix_millis(sim.now + MIN);
    assert!(cmds.contains(&Command::ScheduleWake { at: deadline }));
    sim.advance(MIN - 1);
    assert_eq!(sim.outcome, None);
    let cmds = sim.advance(1);
    assert_traffic_back_first(&cmds);
    let reason = reason_of(&sim);
    assert!(
        reason.contains("progress deadline of 1m: 0 of 1 replica(s) of v2 healthy"),
        "{reason}"
    );
}

#[test]
fn background_analysis_failure_rolls_back_at_any_step() {
    let mut p = plan(standard_canary(), 3, 3);
    p.background_analysis = Some(analysis("background"));
    let mut sim = Sim::new(p);
    sim.start();
    let (run, _, step) = sim.started_analyses[0].clone();
    assert_eq!(step, None);
    let cmds = sim.run(Event::AnalysisVerdict {
        run,
        verdict: Verdict::Fail,
        reference: "v-9".to_owned(),
        summary: "5xx rate 4.8% vs 0.0%".to_owned(),
    });
    assert_traffic_back_first(&cmds);
    assert!(reason_of(&sim).contains("background analysis background failed: 5xx rate 4.8%"));
}

#[test]
fn a_stale_verdict_is_ignored() {
    let mut sim = Sim::new(plan(standard_canary(), 3, 3));
    sim.start();
    let cmds = sim.run(Event::AnalysisVerdict {
        run: AnalysisRun(7),
        verdict: Verdict::Fail,
        reference: "old".to_owned(),
        summary: "old".to_owned(),
    });
    assert!(
        texts(&cmds)[0].starts_with("ignored analysis-verdict"),
        "{cmds:?}"
    );
    assert_eq!(sim.outcome, None);
}

#[test]
fn first_deploy_skips_steps_and_goes_live() {
    let mut sim = Sim::new(plan(standard_canary(), 0, 2));
    sim.start();
    assert_eq!(sim.outcome, Some(Outcome::Promoted));
    assert_eq!(canary_weights(&sim.weights_seen), vec![100]);
    assert!(sim.started_analyses.is_empty());
}

#[test]
fn first_deploy_failure_leaves_nothing_running() {
    let mut sim = Sim::new(plan(blue_green(true), 0, 2));
    sim.behaviour.insert(rev("v2"), Behaviour::Crashes);
    sim.start();
    assert!(matches!(sim.state.phase(), Phase::RolledBack { .. }));
    assert_eq!(sim.live_count("v2"), 0);
}

// ----- ignored and late events --------------------------------------------------------

#[test]
fn events_that_make_no_sense_are_noted_not_obeyed() {
    let mut sim = Sim::new(plan(standard_canary(), 2, 2));
    let before = sim.state.clone();
    for e in [
        Event::Promote { full: true },
        Event::Resume,
        Event::SmokePassed,
        Event::Tick,
    ] {
        sim.run(e);
    }
    assert_eq!(sim.state, before);
    assert!(
        texts(&sim.log).iter().all(|t| t.starts_with("ignored")),
        "{:?}",
        sim.log
    );

    sim.start();
    let cmds = sim.run(Event::Rollback {
        to: Some(rev("v0")),
    });
    assert!(texts(&cmds)[0].contains("v0 is not this rollout's stable revision"));
    assert_eq!(sim.outcome, None);
    let cmds = sim.run(Event::ReplicaHealthy {
        rev: rev("v9"),
        id: ReplicaId::new("x").unwrap(),
    });
    assert!(texts(&cmds)[0].contains("v9 is not part of this rollout"));
}

#[test]
fn a_late_replica_after_rollback_is_stopped_not_kept() {
    let mut sim = Sim::new(plan(standard_canary(), 2, 2));
    sim.start();
    sim.run(Event::Abort);
    let id = ReplicaId::new("late").unwrap();
    for e in [
        Event::ReplicaStarted {
            rev: rev("v2"),
            id: id.clone(),
        },
        Event::ReplicaHealthy {
            rev: rev("v2"),
            id: id.clone(),
        },
    ] {
        let cmds = sim.send(e);
        assert!(cmds.contains(&Command::StopReplicas {
            rev: rev("v2"),
            which: Stop::Ids(vec![id.clone()])
        }));
        assert!(starts(&cmds).is_empty());
    }
    let cmds = sim.run(Event::Promote { full: true });
    assert!(texts(&cmds)[0].starts_with("ignored promote while aborted"));
}

#[test]
fn abort_and_rollback_after_promotion_change_nothing() {
    let mut sim = Sim::new(plan(blue_green(true), 2, 2));
    sim.start();
    let cmds = sim.run(Event::Abort);
    assert!(texts(&cmds)[0].contains("the rollout is over"), "{cmds:?}");
    let cmds = sim.run(Event::Rollback { to: None });
    assert!(texts(&cmds)[0].contains("start a new rollout"), "{cmds:?}");
    assert_eq!(sim.state.phase(), Phase::Completed);
}

// ----- persistence and recovery -------------------------------------------------------

#[test]
fn recovery_reasserts_routing_first_and_resumes() {
    let mut sim = Sim::new(plan(standard_canary(), 5, 5));
    sim.verdicts.insert("default".to_owned(), Verdict::Pass);
    sim.start();
    // The daemon dies during the 5-minute pause; it comes back 10 minutes later.
    let saved = serde_json::to_string(&sim.state).unwrap();
    let restored: State = serde_json::from_str(&saved).unwrap();
    assert_eq!(restored, sim.state);
    sim.now += 10 * MIN;
    let (state, cmds) = recover(restored, sim.now());
    assert_eq!(state, sim.state, "recover does not change the state");
    let first = cmds
        .iter()
        .find(|c| !matches!(c, Command::RecordEvent { .. }))
        .unwrap();
    assert_eq!(
        first,
        &Command::SetWeights {
            weights: Weights::with_canary(w(20))
        }
    );
    assert!(cmds.contains(&Command::StartReplicas {
        rev: rev("v2"),
        total: 1
    }));
    assert!(cmds.contains(&Command::ScheduleWake { at: sim.now() }));
    // The pause expired while the daemon was down: the next tick moves on.
    sim.run(Event::Tick);
    assert_eq!(sim.started_analyses.len(), 1);
}

#[test]
fn recovery_during_an_analysis_keeps_the_same_run() {
    let mut sim = Sim::new(plan(standard_canary(), 2, 2));
    sim.start();
    sim.advance(5 * MIN);
    let (run, name, _) = sim.started_analyses[0].clone();
    let (_, cmds) = recover(sim.state.clone(), sim.now());
    assert!(cmds.contains(&Command::StartAnalysis {
        run,
        name,
        step: Some(3)
    }));
}

#[test]
fn recovery_of_a_rollback_finishes_the_rollback() {
    let mut sim = Sim::new(plan(standard_canary(), 2, 2));
    sim.start();
    sim.run(Event::Abort);
    let (state, cmds) = recover(sim.state.clone(), sim.now());
    assert_eq!(state, sim.state);
    assert_traffic_back_first(&cmds);
    assert!(starts(&cmds).is_empty());
    assert!(cmds.contains(&Command::Finish {
        outcome: Outcome::Aborted {
            reason: "aborted by user".to_owned()
        }
    }));
}

#[test]
fn recovery_mid_rolling_rollback_waits_for_stable_again() {
    let mut sim = Sim::new(plan(rolling(0, 2), 3, 3));
    sim.behaviour.insert(rev("v1"), Behaviour::Silent);
    sim.behaviour.insert(rev("v2"), Behaviour::Crashes);
    sim.start();
    assert!(matches!(sim.state.phase(), Phase::RollingBack { .. }));
    let (_, cmds) = recover(sim.state.clone(), sim.now());
    assert!(starts(&cmds).contains(&("v1".to_owned(), 3)));
    // Stable never comes back healthy: the deadline ends the rollback anyway.
    sim.advance(MIN);
    assert!(matches!(sim.state.phase(), Phase::RolledBack { .. }));
}

// ----- resuming after kill -9 (Event::Resumed) ------------------------------------------

#[test]
fn resume_in_a_timed_pause_keeps_the_canary_and_its_deadline() {
    let mut sim = Sim::new(plan(standard_canary(), 2, 2));
    sim.verdicts.insert("default".to_owned(), Verdict::Pass);
    sim.start();
    assert!(matches!(
        sim.state.phase(),
        Phase::Paused {
            reason: PauseReason::Step,
            ..
        }
    ));
    let Phase::Paused { until, .. } = sim.state.phase() else {
        unreachable!()
    };
    sim.now += MIN; // down for a minute, inside the 5-minute pause
    assert_eq!(resumption(&sim.state), Resumption::Resume);
    let cmds = sim.kill_and_resume(|_| true);
    let first = cmds
        .iter()
        .find(|c| !matches!(c, Command::RecordEvent { .. }))
        .unwrap();
    assert_eq!(
        first,
        &Command::SetWeights {
            weights: Weights::with_canary(w(20))
        },
        "routing first"
    );
    assert!(
        cmds.contains(&Command::ScheduleWake { at: until.unwrap() }),
        "the pause ends when it was persisted to end: {cmds:?}"
    );
    assert!(starts(&cmds).contains(&("v2".to_owned(), 1)), "{cmds:?}");
    assert_eq!(
        sim.live_count("v2"),
        1,
        "the surviving canary is kept, none added"
    );
    assert!(texts(&cmds).iter().any(|t| t.contains("resuming")));
    assert!(matches!(sim.state.phase(), Phase::Paused { .. }));
    // The rest of the rollout goes on as if nothing happened.
    sim.advance(5 * MIN);
    sim.run(Event::Promote { full: false });
    assert_eq!(sim.outcome, Some(Outcome::Promoted));
    assert_eq!(sim.live_count("v1"), 0);
    assert_eq!(sim.live_count("v2"), 2);
}

#[test]
fn resume_until_promoted_waits_for_promote() {
    let mut sim = Sim::new(plan(
        canary(vec![
            CanaryStep::Weight(w(50)),
            CanaryStep::PauseUntilPromoted,
        ]),
        2,
        2,
    ));
    sim.start();
    sim.kill_and_resume(|_| true);
    assert!(matches!(
        sim.state.phase(),
        Phase::Paused {
            reason: PauseReason::UntilPromoted,
            ..
        }
    ));
    assert_eq!(sim.state.weights().canary(), w(50));
    sim.advance(10 * MIN);
    assert_eq!(sim.outcome, None, "still waiting for promote");
    sim.run(Event::Promote { full: false });
    assert_eq!(sim.outcome, Some(Outcome::Promoted));
}

#[test]
fn resume_rolls_back_a_canary_with_traffic_whose_replicas_all_died() {
    let mut sim = Sim::new(plan(standard_canary(), 2, 2));
    sim.start();
    let cmds = sim.kill_and_resume(|id| !id.as_str().starts_with("v2"));
    assert_traffic_back_first(&cmds);
    let reason = reason_of(&sim);
    assert!(
        reason.contains("no replica of v2 survived") && reason.contains("20%"),
        "{reason}"
    );
    assert_eq!(sim.live_count("v1"), 2);
}

#[test]
fn resume_rolls_back_and_restarts_stable_when_nothing_survived() {
    let mut sim = Sim::new(plan(standard_canary(), 2, 2));
    sim.start();
    let cmds = sim.kill_and_resume(|_| false);
    assert_traffic_back_first(&cmds);
    assert!(starts(&cmds).contains(&("v1".to_owned(), 2)), "{cmds:?}");
    assert!(matches!(sim.outcome, Some(Outcome::RolledBack { .. })));
    assert_eq!(sim.live_count("v1"), 2);
    assert_eq!(sim.live_count("v2"), 0);
}

#[test]
fn resume_mid_start_keeps_the_healthy_and_restarts_the_half_created() {
    // Rolling 2 -> 2 with surge 2: both new replicas start at once; one was healthy,
    // the other half-created when the daemon died.
    let mut sim = Sim::new(plan(rolling(2, 0), 2, 2));
    sim.behaviour.insert(rev("v2"), Behaviour::Silent);
    sim.start();
    assert!(matches!(sim.state.phase(), Phase::Progressing { .. }));
    let ids = sim.live.get(&rev("v2")).cloned().unwrap();
    assert_eq!(ids.len(), 2);
    sim.run(Event::ReplicaHealthy {
        rev: rev("v2"),
        id: ids[0].clone(),
    });
    assert_eq!(sim.state.replicas().new_healthy, 1);
    sim.behaviour.insert(rev("v2"), Behaviour::Healthy);
    let healthy = ids[0].clone();
    let cmds = sim.kill_and_resume(|id| !id.as_str().starts_with("v2") || *id == healthy);
    assert!(starts(&cmds).contains(&("v2".to_owned(), 2)), "{cmds:?}");
    assert_eq!(
        sim.outcome,
        Some(Outcome::Promoted),
        "{:?}",
        texts(&sim.log)
    );
    assert_eq!(sim.live_count("v2"), 2);
    assert_eq!(sim.live_count("v1"), 0);
}

#[test]
fn resume_of_a_pending_rollout_starts_it() {
    let mut sim = Sim::new(plan(rolling(1, 0), 2, 2));
    let cmds = sim.kill_and_resume(|_| true);
    assert!(texts(&cmds)[0].contains("before the rollout started"));
    assert_eq!(sim.outcome, Some(Outcome::Promoted));
}

#[test]
fn resume_after_promotion_neither_rolls_back_nor_stops_the_warm_old_set() {
    // Blue-green ends at the switch; the old set stays warm for the daemon to stop.
    let mut sim = Sim::new(plan(blue_green(true), 2, 2));
    sim.start();
    assert_eq!(sim.state.phase(), Phase::Completed);
    let cmds = sim.kill_and_resume(|_| true);
    assert!(
        !texts(&cmds).iter().any(|t| t.contains("rolling back")),
        "{cmds:?}"
    );
    assert_eq!(sim.outcome, Some(Outcome::Promoted));
    assert_eq!(sim.live_count("v2"), 2);
    assert_eq!(
        sim.live_count("v1"),
        2,
        "the warm old set is the daemon's to stop"
    );
}

#[test]
fn resume_mid_rollback_finishes_it_and_a_finished_rollout_is_finished_again() {
    let mut sim = Sim::new(plan(rolling(0, 2), 3, 3));
    sim.behaviour.insert(rev("v1"), Behaviour::Silent);
    sim.behaviour.insert(rev("v2"), Behaviour::Crashes);
    sim.start();
    assert!(matches!(sim.state.phase(), Phase::RollingBack { .. }));
    assert_eq!(resumption(&sim.state), Resumption::Resume);
    sim.behaviour.insert(rev("v1"), Behaviour::Healthy);
    let cmds = sim.kill_and_resume(|_| false);
    assert!(starts(&cmds).contains(&("v1".to_owned(), 3)), "{cmds:?}");
    assert!(matches!(sim.outcome, Some(Outcome::RolledBack { .. })));
    let mut done = Sim::new(plan(rolling(1, 0), 2, 2));
    done.start();
    done.outcome = None;
    done.kill_and_resume(|_| true);
    assert_eq!(done.outcome, Some(Outcome::Promoted), "Finish is repeated");
}

// ----- plans --------------------------------------------------------------------------

#[test]
fn plans_that_cannot_work_are_refused_with_a_reason() {
    let err = State::new(plan(rolling(0, 0), 2, 2)).unwrap_err();
    assert!(
        err.to_string()
            .contains("max_surge and max_unavailable both 0"),
        "{err}"
    );
    let err = State::new(plan(
        canary(vec![CanaryStep::Weight(w(50)), CanaryStep::Weight(w(20))]),
        2,
        2,
    ))
    .unwrap_err();
    assert_eq!(
        err,
        Error::WeightsNotMonotonic {
            step: 2,
            weight: 20,
            previous: 50
        }
    );
    assert_eq!(
        State::new(plan(blue_green(true), 2, 0)).unwrap_err(),
        Error::NoReplicas
    );
    let mut p = plan(blue_green(true), 2, 2);
    p.new = rev("v1");
    assert_eq!(
        State::new(p).unwrap_err(),
        Error::SameRevision("v1".to_owned())
    );
    let strategy = Strategy::Rolling {
        max_surge: Budget::Percent(150),
        max_unavailable: Budget::Count(1),
    };
    assert_eq!(
        State::new(plan(strategy, 2, 2)).unwrap_err(),
        Error::InvalidPercent(150)
    );
}

#[test]
fn fast_track_drops_pauses_and_analyses_but_keeps_health_gates() {
    let mut p = plan(standard_canary(), 2, 2);
    p.background_analysis = Some(analysis("bg"));
    let mut sim = Sim::new(p.into_fast_track());
    sim.behaviour.insert(rev("v2"), Behaviour::Silent);
    sim.start();
    assert!(sim.started_analyses.is_empty());
    assert!(sim.weights_seen.is_empty(), "still waits for health");
    for id in sim.live[&rev("v2")].clone() {
        sim.run(Event::ReplicaHealthy { rev: rev("v2"), id });
    }
    assert_eq!(sim.outcome, Some(Outcome::Promoted));
}

#[test]
fn status_views_describe_the_rollout() {
    let mut sim = Sim::new(plan(standard_canary(), 5, 5));
    assert_eq!(sim.state.phase(), Phase::Pending);
    sim.start();
    let steps = sim.state.steps();
    assert_eq!(steps[0], "start 1 new replica(s), wait healthy");
    assert_eq!(steps[1], "weight 20%");
    assert_eq!(steps[2], "pause 5m");
    assert_eq!(
        sim.state.phase().to_string(),
        "paused at step 3 (pause step)"
    );
    let counts = sim.state.replicas();
    assert_eq!((counts.new_healthy, counts.stable_healthy), (1, 5));
    assert_eq!(sim.state.weight_ceiling(), w(20));
    assert_eq!(sim.state.current_step(), Some((2, "pause 5m".to_owned())));
    assert_eq!(
        sim.state.summary(),
        "step 3/11 pause 5m: paused at step 3 (pause step); stable 80% / new 20%; \
         new 1/1 healthy, stable 5/5 healthy"
    );
    let json = serde_json::to_value(sim.state.phase()).unwrap();
    assert_eq!(json["phase"], "paused");
    assert_eq!(json["reason"]["kind"], "step");
}

#[test]
fn a_verdict_that_arrives_while_paused_is_kept_for_resume() {
    let mut sim = Sim::new(plan(
        canary(vec![
            CanaryStep::Weight(w(20)),
            CanaryStep::Analysis(analysis("default")),
        ]),
        2,
        2,
    ));
    sim.start();
    let (run, name, step) = sim.started_analyses[0].clone();
    sim.run(Event::Pause);
    // The daemon restarts while paused: the analysis keeps running under the same run.
    let (_, cmds) = recover(sim.state.clone(), sim.now());
    assert!(cmds.contains(&Command::StartAnalysis { run, name, step }));
    sim.run(Event::AnalysisVerdict {
        run,
        verdict: Verdict::Pass,
        reference: "v-1".to_owned(),
        summary: "fine".to_owned(),
    });
    assert_eq!(sim.outcome, None, "still paused");
    sim.run(Event::Resume);
    assert_eq!(sim.outcome, Some(Outcome::Promoted));
}

#[test]
fn a_failed_verdict_rolls_back_even_while_paused() {
    let mut sim = Sim::new(plan(
        canary(vec![
            CanaryStep::Weight(w(20)),
            CanaryStep::Analysis(analysis("default")),
        ]),
        2,
        2,
    ));
    sim.start();
    let (run, _, _) = sim.started_analyses[0].clone();
    sim.run(Event::Pause);
    let cmds = sim.run(Event::AnalysisVerdict {
        run,
        verdict: Verdict::Fail,
        reference: "v-1".to_owned(),
        summary: "p95 312 ms vs 101 ms".to_owned(),
    });
    assert_traffic_back_first(&cmds);
    assert!(matches!(sim.state.phase(), Phase::RolledBack { .. }));
}

#[test]
fn a_long_outage_does_not_fail_a_health_wait_on_the_first_tick() {
    let mut sim = Sim::new(plan(canary(vec![CanaryStep::Weight(w(50))]), 2, 2));
    sim.behaviour.insert(rev("v2"), Behaviour::Silent);
    sim.start();
    sim.now += 10 * MIN; // the daemon was down for longer than the deadline
    let (state, cmds) = recover(sim.state.clone(), sim.now());
    let fresh = Timestamp::from_unix_millis(sim.now + MIN);
    assert!(cmds.contains(&Command::ScheduleWake { at: fresh }));
    sim.state = state;
    sim.run(Event::Tick);
    assert_eq!(
        sim.outcome, None,
        "health gets a fresh deadline after a restart"
    );
    let id = sim.live[&rev("v2")][0].clone();
    sim.run(Event::ReplicaHealthy { rev: rev("v2"), id });
    assert_eq!(sim.state.weights(), Weights::with_canary(w(50)));
    // The tail waits for the second replica, which never comes: its deadline ends it.
    sim.advance(MIN);
    assert!(matches!(sim.state.phase(), Phase::RolledBack { .. }));
}
