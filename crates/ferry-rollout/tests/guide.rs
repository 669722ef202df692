//! The example of docs/rollouts.md, run as a test; a second test checks the guide still
//! shows exactly this code (CI runs nextest, which does not run doctests).

use ferry_rollout::*;
use std::time::Duration;

const GUIDE: &str = include_str!("../../../docs/rollouts.md");
const THIS_FILE: &str = include_str!("guide.rs");

#[test]
fn the_guide_example_runs() -> Result<(), ferry_rollout::Error> {
    // BEGIN GUIDE
    let plan = Plan::new(
        "web",
        "production",
        Some(StableRevision {
            rev: Revision::new("v1")?,
            replicas: 4,
        }),
        Revision::new("v2")?,
        4,
        Strategy::Canary {
            steps: vec![
                CanaryStep::Weight(Weight::new(25)?),
                CanaryStep::Pause(Duration::from_secs(300)),
            ],
        },
    );
    let t0 = Timestamp::from_unix_millis(1_700_000_000_000);
    let state = State::new(plan)?;

    // Start: one canary replica is needed for 25% of 4.
    let (state, commands) = step(state, Event::Start, t0);
    assert!(commands.contains(&Command::StartReplicas {
        rev: Revision::new("v2")?,
        total: 1
    }));

    // It becomes healthy: 25% of traffic moves, then the 5-minute pause begins.
    let healthy = Event::ReplicaHealthy {
        rev: Revision::new("v2")?,
        id: ReplicaId::new("web-v2-1")?,
    };
    let (state, commands) = step(state, healthy, t0);
    assert!(commands.contains(&Command::SetWeights {
        weights: Weights::with_canary(Weight::new(25)?)
    }));
    assert!(matches!(
        state.phase(),
        Phase::Paused {
            reason: PauseReason::Step,
            ..
        }
    ));

    // The daemon persists the state before executing commands; after a crash it
    // reloads it and asks `recover` what to re-assert (routing first).
    let saved = serde_json::to_string(&state).expect("serializable");
    let reloaded: State = serde_json::from_str(&saved).expect("round trip");
    let (state, commands) = recover(reloaded, t0);
    assert!(commands.contains(&Command::SetWeights {
        weights: state.weights()
    }));

    // A failed analysis, failed replica or `ferry abort` sends all traffic back first.
    let (state, commands) = step(state, Event::Abort, t0);
    assert_eq!(
        commands[0],
        Command::SetWeights {
            weights: Weights::all_stable()
        }
    );
    assert_eq!(
        state.outcome(),
        Some(Outcome::Aborted {
            reason: "aborted by user".into()
        })
    );
    // END GUIDE
    Ok(())
}

/// The code without layout: rustfmt may wrap lines and add trailing commas.
fn code_lines(text: &str) -> String {
    let code: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("# ") && !l.starts_with("use "))
        .collect::<String>()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    code.replace(",}", "}")
        .replace(",)", ")")
        .replace(",]", "]")
}

#[test]
fn the_guide_shows_exactly_the_tested_example() {
    let guide = GUIDE
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/rollouts.md has a rust example");
    let test = THIS_FILE
        .split("// BEGIN GUIDE")
        .nth(1)
        .and_then(|rest| rest.split("// END GUIDE").next())
        .expect("markers");
    assert_eq!(
        code_lines(guide),
        code_lines(test),
        "docs/rollouts.md and tests/guide.rs differ: keep them the same"
    );
}
