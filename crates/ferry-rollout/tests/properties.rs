//! Property tests: random plans under random event sequences, and random rollouts driven
//! to their end through a simulated daemon that crashes and recovers at random points.

mod common;

use std::time::Duration;

use common::*;
use ferry_rollout::*;
use proptest::prelude::*;
use proptest::strategy::Strategy;

fn arb_analysis() -> impl Strategy<Value = AnalysisRef> {
    (
        prop::sample::select(vec!["a", "b"]),
        prop::sample::select(vec![
            InconclusivePolicy::Pause,
            InconclusivePolicy::Rollback,
            InconclusivePolicy::Promote,
        ]),
    )
        .prop_map(|(name, on_inconclusive)| AnalysisRef {
            on_inconclusive,
            ..analysis(name)
        })
}

fn arb_step() -> impl Strategy<Value = CanaryStep> {
    prop_oneof![
        3 => (0u32..=100).prop_map(|p| CanaryStep::Weight(w(p))),
        1 => (0u64..=180).prop_map(|s| CanaryStep::Pause(Duration::from_secs(s))),
        1 => Just(CanaryStep::PauseUntilPromoted),
        1 => arb_analysis().prop_map(CanaryStep::Analysis),
    ]
}

fn arb_strategy() -> impl Strategy<Value = ferry_rollout::Strategy> {
    prop_oneof![
        (0u32..3, 0u32..3)
            .prop_filter("must progress", |(s, u)| s + u > 0)
            .prop_map(|(s, u)| ferry_rollout::Strategy::Rolling {
                max_surge: Budget::Count(s),
                max_unavailable: Budget::Count(u),
            }),
        (1u32..=100, 0u32..=100).prop_map(|(s, u)| ferry_rollout::Strategy::Rolling {
            max_surge: Budget::Percent(s),
            max_unavailable: Budget::Percent(u),
        }),
        (
            any::<bool>(),
            any::<bool>(),
            0u64..=180,
            prop::option::of(arb_analysis()),
            prop::option::of(arb_analysis()),
        )
            .prop_map(|(smoke, auto_promote, delay, pre, post)| {
                ferry_rollout::Strategy::BlueGreen {
                    smoke_checks: if smoke {
                        vec![SmokeCheck {
                            path: "/".to_owned(),
                            expect_status: 200,
                            body_contains: None,
                        }]
                    } else {
                        vec![]
                    },
                    auto_promote,
                    scale_down_delay: Duration::from_secs(delay),
                    pre_promotion_analysis: pre,
                    post_promotion_analysis: post,
                }
            }),
        prop::collection::vec(arb_step(), 0..7).prop_map(|mut steps| {
            // Weights must not decrease: sort the weight steps in place.
            let mut weights: Vec<Weight> = steps
                .iter()
                .filter_map(|s| match s {
                    CanaryStep::Weight(w) => Some(*w),
                    _ => None,
                })
                .collect();
            weights.sort();
            let mut it = weights.into_iter();
            for s in &mut steps {
                if let CanaryStep::Weight(w) = s {
                    *w = it.next().unwrap_or(Weight::FULL);
                }
            }
            ferry_rollout::Strategy::Canary { steps }
        }),
    ]
}

fn arb_plan() -> impl Strategy<Value = Plan> {
    (
        arb_strategy(),
        0u32..5,
        1u32..6,
        0u32..3,
        prop::option::of(arb_analysis()),
        prop_oneof![Just(0u64), Just(60)],
    )
        .prop_map(
            |(strategy, stable, replicas, max_failed, background, warm)| {
                let mut p = plan(strategy, stable, replicas);
                p.max_failed_replicas = max_failed;
                p.background_analysis = background;
                p.keep_warm = Duration::from_secs(warm);
                p
            },
        )
}

fn arb_id() -> impl Strategy<Value = ReplicaId> {
    (0u8..8).prop_map(|i| ReplicaId::new(format!("r{i}")).expect("valid id"))
}

fn arb_rev() -> impl Strategy<Value = Revision> {
    prop_oneof![3 => Just(rev("v2")), 2 => Just(rev("v1")), 1 => Just(rev("v3"))]
}

fn arb_event() -> impl Strategy<Value = (Event, u64)> {
    let event = prop_oneof![
        1 => Just(Event::Start),
        2 => (arb_rev(), arb_id()).prop_map(|(rev, id)| Event::ReplicaStarted { rev, id }),
        6 => (arb_rev(), arb_id()).prop_map(|(rev, id)| Event::ReplicaHealthy { rev, id }),
        1 => (arb_rev(), arb_id()).prop_map(|(rev, id)| Event::ReplicaUnhealthy {
            rev, id, reason: "probe failed".to_owned() }),
        1 => (arb_rev(), arb_id()).prop_map(|(rev, id)| Event::ReplicaFailed {
            rev, id, reason: "exit 1".to_owned() }),
        1 => (arb_rev(), arb_id()).prop_map(|(rev, id)| Event::ReplicaStopped { rev, id }),
        1 => Just(Event::SmokePassed),
        1 => Just(Event::SmokeFailed { reason: "503".to_owned() }),
        3 => (0u32..5, prop::sample::select(vec![Verdict::Pass, Verdict::Fail, Verdict::Inconclusive]))
            .prop_map(|(run, verdict)| Event::AnalysisVerdict {
                run: AnalysisRun(run), verdict, reference: "ref".to_owned(), summary: "s".to_owned() }),
        4 => Just(Event::Tick),
        1 => any::<bool>().prop_map(|full| Event::Promote { full }),
        1 => Just(Event::Pause),
        1 => Just(Event::Resume),
        1 => Just(Event::Abort),
        1 => prop::option::of(prop_oneof![Just(rev("v1")), Just(rev("v3"))])
            .prop_map(|to| Event::Rollback { to }),
        1 => Just(Event::ControllerRestarted),
    ];
    (
        event,
        prop_oneof![3 => Just(0u64), 2 => 0u64..120_000, 1 => 0u64..1_000_000],
    )
}

fn check_recover_is_idempotent(state: &State, now: Timestamp) {
    let (once, cmds1) = recover(state.clone(), now);
    let (twice, cmds2) = recover(once.clone(), now);
    assert_eq!(twice, once, "recovering twice changes nothing more");
    assert_eq!(cmds1, cmds2, "recover must repeat the same commands");
    // Only the progress deadline may move; phase, weights and replicas stay.
    assert_eq!(once.phase(), state.phase());
    assert_eq!(once.weights(), state.weights());
    assert_eq!(once.replicas(), state.replicas());
    assert_eq!(once.history(), state.history());
    if matches!(
        state.phase(),
        Phase::RolledBack { .. } | Phase::Aborted { .. }
    ) {
        assert_eq!(&once, state);
        assert!(
            !cmds1
                .iter()
                .any(|c| matches!(c, Command::StartReplicas { .. })),
            "recovering a rolled back rollout starts nothing: {cmds1:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any event in any order: no panic, and the invariants hold after every step.
    #[test]
    fn invariants_hold_under_random_events(
        plan in arb_plan(),
        events in prop::collection::vec(arb_event(), 0..80),
    ) {
        let mut state = State::new(plan).unwrap();
        let mut now = 1_000_000u64;
        for (event, dt) in events {
            now += dt;
            let at = Timestamp::from_unix_millis(now);
            let before = state.clone();
            let ceiling_before = before.weight_ceiling();
            let is_recovery = event == Event::ControllerRestarted;
            let (after, cmds) = step(state, event, at);

            let w = after.weights();
            prop_assert_eq!(u32::from(w.stable()) + u32::from(w.canary()), 100);
            prop_assert!(w.canary() <= after.weight_ceiling(),
                "canary {} above what the steps allow ({})", w.canary(), after.weight_ceiling());
            let ceiling = ceiling_before.max(after.weight_ceiling());
            for c in &cmds {
                if let Command::SetWeights { weights } = c {
                    prop_assert!(weights.canary() <= ceiling, "{:?} above {}", weights, ceiling);
                }
            }
            if let Some(outcome) = before.outcome() {
                prop_assert_eq!(after.outcome(), Some(outcome.clone()), "terminal stays terminal");
                prop_assert_eq!(&after, &before, "a terminal state never changes");
                if !outcome.is_success() {
                    prop_assert!(!cmds.iter().any(|c| matches!(c, Command::StartReplicas { .. })),
                        "no start after a rollback: {:?}", cmds);
                }
                if !is_recovery {
                    let finished = cmds.iter().any(|c| matches!(c, Command::Finish { .. }));
                    prop_assert!(!finished, "Finish repeated outside recovery");
                }
            }
            if matches!(after.phase(), Phase::RolledBack { .. } | Phase::Aborted { .. }) {
                prop_assert_eq!(w.canary(), Weight::ZERO);
            }
            let finishes = cmds.iter().filter(|c| matches!(c, Command::Finish { .. })).count();
            if before.outcome().is_none() {
                prop_assert_eq!(finishes, usize::from(after.outcome().is_some()),
                    "one Finish exactly when the rollout ends");
            }
            check_recover_is_idempotent(&after, at);
            let json = serde_json::to_string(&after).unwrap();
            let back: State = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(&back, &after);
            state = after;
        }
    }

    /// A cooperative world with random failures, answers and crashes: every rollout ends,
    /// and ends consistent — all on the new revision, or all back on the old one.
    #[test]
    fn every_rollout_ends_consistent_even_across_crashes(
        plan in arb_plan(),
        crashes_left in 0u32..4,
        smoke_ok in any::<bool>(),
        verdicts in prop::collection::vec(
            prop::sample::select(vec![Verdict::Pass, Verdict::Pass, Verdict::Fail, Verdict::Inconclusive]), 2),
        crash_at in prop::collection::btree_set(0usize..40, 0..4),
        abort_at in prop::option::of(0usize..40),
    ) {
        let stable = plan.stable.as_ref().map_or(0, |s| s.replicas) as usize;
        let replicas = plan.replicas as usize;
        let surge_bound = match plan.strategy {
            ferry_rollout::Strategy::Rolling { max_surge: Budget::Count(s), .. }
                if stable == replicas && plan.keep_warm.is_zero() => Some(replicas + s as usize),
            _ => None,
        };
        // The old revision stays up after promotion when the plan keeps it warm.
        let warm_after = if plan.warm_window().is_zero() { 0 } else { stable };
        let mut sim = Sim::new(plan);
        sim.crashes_left = crashes_left;
        sim.smoke = Some(if smoke_ok { Ok(()) } else { Err("GET /: 503".to_owned()) });
        sim.verdicts.insert("a".to_owned(), verdicts[0]);
        sim.verdicts.insert("b".to_owned(), verdicts[1]);
        sim.start();
        for i in 0..60 {
            if sim.state.is_terminal() {
                break;
            }
            let event = match sim.state.phase() {
                Phase::Paused {
                    reason: PauseReason::UntilPromoted | PauseReason::Inconclusive { .. },
                    ..
                } => Event::Promote { full: false },
                _ => {
                    sim.now += MIN;
                    Event::Tick
                }
            };
            if crash_at.contains(&i) {
                sim.crash_during(event);
                continue;
            }
            if abort_at == Some(i) {
                sim.run(Event::Abort);
                continue;
            }
            sim.run(event);
        }
        prop_assert!(sim.state.is_terminal(), "did not end: {:?}", sim.state.phase());
        match sim.outcome.clone() {
            Some(Outcome::Promoted) => {
                prop_assert_eq!(sim.live_count("v2"), replicas);
                prop_assert_eq!(sim.live_count("v1"), warm_after);
                prop_assert_eq!(sim.state.weights(), Weights::all_canary());
            }
            Some(_) => {
                prop_assert_eq!(sim.live_count("v2"), 0);
                prop_assert_eq!(sim.live_count("v1"), stable);
                prop_assert_eq!(sim.state.weights(), Weights::all_stable());
            }
            None => prop_assert!(false, "no Finish command"),
        }
        if let Some(bound) = surge_bound {
            prop_assert!(sim.max_live <= bound, "{} replicas live, bound {}", sim.max_live, bound);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `kill -9` at random points: the step's state was persisted, its commands were lost,
    /// and some containers died with the daemon. The restarted daemon sends `Resumed` with
    /// the survivors; every rollout still ends, all on the new revision at full size or
    /// all back on the old one at its original size.
    #[test]
    fn every_rollout_ends_consistent_when_resumed_after_kill9(
        plan in arb_plan(),
        smoke_ok in any::<bool>(),
        verdicts in prop::collection::vec(
            prop::sample::select(vec![Verdict::Pass, Verdict::Pass, Verdict::Fail, Verdict::Inconclusive]), 2),
        kill_at in prop::collection::btree_set(0usize..40, 1..4),
        lose_every in 0usize..4,
    ) {
        let stable = plan.stable.as_ref().map_or(0, |s| s.replicas) as usize;
        let replicas = plan.replicas as usize;
        // The old revision stays up after promotion when the plan keeps it warm.
        let warm_after = if plan.warm_window().is_zero() { 0 } else { stable };
        let mut sim = Sim::new(plan);
        sim.smoke = Some(if smoke_ok { Ok(()) } else { Err("GET /: 503".to_owned()) });
        sim.verdicts.insert("a".to_owned(), verdicts[0]);
        sim.verdicts.insert("b".to_owned(), verdicts[1]);
        sim.start();
        for i in 0..60 {
            if sim.state.is_terminal() {
                break;
            }
            let event = match sim.state.phase() {
                Phase::Paused {
                    reason: PauseReason::UntilPromoted | PauseReason::Inconclusive { .. },
                    ..
                } => Event::Promote { full: false },
                _ => {
                    sim.now += MIN;
                    Event::Tick
                }
            };
            if kill_at.contains(&i) {
                let (state, _lost) = step(sim.state.clone(), event, sim.now());
                sim.state = state;
                // Containers die with the daemon only while the rollout still runs: a
                // finished rollout's revision is no longer the rollout's to repair.
                let lose = lose_every > 0 && !sim.state.is_terminal();
                let mut n = 0usize;
                sim.kill_and_resume(|_| {
                    n += 1;
                    !(lose && n.is_multiple_of(lose_every + 1))
                });
                continue;
            }
            sim.run(event);
        }
        prop_assert!(sim.state.is_terminal(), "did not end: {:?}", sim.state.phase());
        match sim.outcome.clone() {
            Some(Outcome::Promoted) => {
                prop_assert_eq!(sim.live_count("v2"), replicas);
                // Old replicas lost in a crash are not started again just to be kept
                // warm; without a warm window none is left.
                prop_assert!(sim.live_count("v1") <= warm_after,
                    "{} old replicas left, warm window keeps {}", sim.live_count("v1"), warm_after);
                prop_assert_eq!(sim.state.weights(), Weights::all_canary());
            }
            Some(_) => {
                prop_assert_eq!(sim.live_count("v2"), 0);
                prop_assert_eq!(sim.live_count("v1"), stable);
                prop_assert_eq!(sim.state.weights(), Weights::all_stable());
            }
            None => prop_assert!(false, "no Finish command"),
        }
    }
}
