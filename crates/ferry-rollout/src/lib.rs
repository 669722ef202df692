//! ferry-rollout: the rollout engine as a pure state machine.
//!
//! A rollout is a [`State`] built from a [`Plan`]. The daemon feeds it [`Event`]s with
//! [`step`], persists the returned state, then executes the returned [`Command`]s in
//! order. No I/O, no clock, no randomness: time is passed in, so every strategy can be
//! tested exhaustively, and [`recover`] rebuilds the world from a persisted state after a
//! crash.
//!
//! ```
//! use ferry_rollout::*;
//!
//! let plan = Plan::new(
//!     "web", "production",
//!     Some(StableRevision { rev: Revision::new("v1")?, replicas: 2 }),
//!     Revision::new("v2")?, 2,
//!     Strategy::Canary { steps: vec![CanaryStep::Weight(Weight::new(20)?)] },
//! );
//! let now = Timestamp::from_unix_millis(0);
//! let (state, commands) = step(State::new(plan)?, Event::Start, now);
//! assert!(commands.iter().any(|c| matches!(c, Command::StartReplicas { total: 1, .. })));
//! assert_eq!(state.weights().canary(), Weight::ZERO); // no traffic before health
//! # Ok::<(), ferry_rollout::Error>(())
//! ```

mod command;
mod error;
mod event;
mod name;
mod plan;
mod program;
mod state;
mod time;
mod weight;

pub use command::{Command, Outcome, Stop};
pub use error::Error;
pub use event::{AnalysisRun, Event, Verdict};
pub use name::{AnalysisName, ReplicaId, Revision};
pub use plan::{
    AnalysisRef, Budget, CanaryStep, InconclusivePolicy, Plan, SmokeCheck, StableRevision, Strategy,
};
pub use state::{
    PauseReason, Phase, ReplicaCounts, Resumption, State, StepRecord, StepResult, recover,
    remaining, resumption, step,
};
pub use time::{Timestamp, human_duration};
pub use weight::{Weight, Weights};

/// The user guide's examples run as doctests, so docs/rollouts.md cannot drift.
#[doc = include_str!("../../../docs/rollouts.md")]
#[cfg(doctest)]
pub struct RolloutsGuide;
