//! A small simulated daemon: executes the engine's commands against an in-memory world
//! (replicas, weights, analyses) and feeds the resulting events back, deterministically.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the simulator"
)]
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a bad fixture should fail loudly"
)]

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use ferry_rollout::*;

pub fn rev(s: &str) -> Revision {
    Revision::new(s).unwrap()
}

pub fn w(p: u32) -> Weight {
    Weight::new(p).unwrap()
}

pub fn analysis(name: &str) -> AnalysisRef {
    AnalysisRef::new(AnalysisName::new(name).unwrap())
}

pub fn plan(strategy: Strategy, stable: u32, replicas: u32) -> Plan {
    let stable = (stable > 0).then(|| StableRevision {
        rev: rev("v1"),
        replicas: stable,
    });
    let mut p = Plan::new("web", "production", stable, rev("v2"), replicas, strategy);
    p.progress_deadline = Duration::from_secs(60);
    p
}

pub const MIN: u64 = 60_000;

/// How a simulated replica of a revision behaves when started.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Behaviour {
    Healthy,
    /// Exits right after start.
    Crashes,
    /// Starts but never reports health.
    Silent,
}

pub struct Sim {
    pub state: State,
    pub now: u64,
    pub live: BTreeMap<Revision, Vec<ReplicaId>>,
    pub behaviour: BTreeMap<Revision, Behaviour>,
    /// How many more starts of the new revision crash before it behaves.
    pub crashes_left: u32,
    pub smoke: Option<Result<(), String>>,
    pub verdicts: BTreeMap<String, Verdict>,
    pub queue: VecDeque<Event>,
    pub log: Vec<Command>,
    pub weights_seen: Vec<Weights>,
    pub max_live: usize,
    pub min_live_healthy_old_plus_new: usize,
    pub outcome: Option<Outcome>,
    pub started_analyses: Vec<(AnalysisRun, AnalysisName, Option<usize>)>,
    next_id: u32,
}

impl Sim {
    pub fn new(plan: Plan) -> Self {
        let mut live = BTreeMap::new();
        if let Some(s) = &plan.stable {
            live.insert(
                s.rev.clone(),
                (0..s.replicas)
                    .map(|i| ReplicaId::new(format!("{}-old{i}", s.rev)).unwrap())
                    .collect(),
            );
        }
        let state = State::new(plan).unwrap();
        Self {
            state,
            now: 1_000_000,
            live,
            behaviour: BTreeMap::new(),
            crashes_left: 0,
            smoke: Some(Ok(())),
            verdicts: BTreeMap::new(),
            queue: VecDeque::new(),
            log: Vec::new(),
            weights_seen: Vec::new(),
            max_live: 0,
            min_live_healthy_old_plus_new: usize::MAX,
            outcome: None,
            started_analyses: Vec::new(),
            next_id: 0,
        }
    }

    pub fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.now)
    }

    /// Sends one event and returns the commands it produced (and executes them).
    pub fn send(&mut self, event: Event) -> Vec<Command> {
        let state = self.state.clone();
        let (state, cmds) = step(state, event, self.now());
        self.state = state;
        for c in &cmds {
            self.execute(c.clone());
        }
        self.log.extend(cmds.iter().cloned());
        cmds
    }

    /// Sends an event, then every event the world produces in answer, until quiet.
    pub fn run(&mut self, event: Event) -> Vec<Command> {
        let mut all = self.send(event);
        while let Some(e) = self.queue.pop_front() {
            all.extend(self.send(e));
        }
        all
    }

    /// The daemon persists the state for `event`, then dies before executing any of its
    /// commands; it restarts from the persisted JSON and executes what `recover` asks.
    pub fn crash_during(&mut self, event: Event) -> Vec<Command> {
        let (state, _lost) = step(self.state.clone(), event, self.now());
        let json = serde_json::to_string(&state).unwrap();
        let restored: State = serde_json::from_str(&json).unwrap();
        let (state, cmds) = recover(restored, self.now());
        self.state = state;
        for c in &cmds {
            self.execute(c.clone());
        }
        self.log.extend(cmds.iter().cloned());
        let mut all = cmds;
        while let Some(e) = self.queue.pop_front() {
            all.extend(self.send(e));
        }
        all
    }

    /// The daemon is killed (`kill -9`): events in flight are lost, the containers for
    /// which `survives` is false are gone (half-created ones the new daemon removed); the
    /// new daemon reloads the persisted JSON and sends `Resumed` with the survivors.
    pub fn kill_and_resume(
        &mut self,
        mut survives: impl FnMut(&ReplicaId) -> bool,
    ) -> Vec<Command> {
        self.queue.clear();
        for list in self.live.values_mut() {
            list.retain(|id| survives(id));
        }
        let json = serde_json::to_string(&self.state).unwrap();
        self.state = serde_json::from_str(&json).unwrap();
        let plan = self.state.plan().clone();
        let new_healthy = self.live.get(&plan.new).cloned().unwrap_or_default();
        let stable_healthy = plan
            .stable
            .as_ref()
            .and_then(|s| self.live.get(&s.rev))
            .map_or(0, |l| u32::try_from(l.len()).unwrap());
        self.run(Event::Resumed {
            new_healthy,
            stable_healthy,
        })
    }

    pub fn start(&mut self) -> Vec<Command> {
        self.run(Event::Start)
    }

    /// Moves the clock and ticks.
    pub fn advance(&mut self, ms: u64) -> Vec<Command> {
        self.now += ms;
        self.run(Event::Tick)
    }

    pub fn live_count(&self, r: &str) -> usize {
        self.live.get(&rev(r)).map_or(0, Vec::len)
    }

    fn behaviour_of(&mut self, r: &Revision) -> Behaviour {
        if *r == self.state.plan().new && self.crashes_left > 0 {
            self.crashes_left -= 1;
            return Behaviour::Crashes;
        }
        self.behaviour.get(r).copied().unwrap_or(Behaviour::Healthy)
    }

    fn execute(&mut self, cmd: Command) {
        match cmd {
            Command::StartReplicas { rev, total } => {
                let have = self.live.get(&rev).map_or(0, Vec::len);
                for _ in have..total as usize {
                    self.next_id += 1;
                    let id = ReplicaId::new(format!("{rev}-r{}", self.next_id)).unwrap();
                    self.queue.push_back(Event::ReplicaStarted {
                        rev: rev.clone(),
                        id: id.clone(),
                    });
                    match self.behaviour_of(&rev) {
                        Behaviour::Healthy => {
                            self.live.entry(rev.clone()).or_default().push(id.clone());
                            self.queue.push_back(Event::ReplicaHealthy {
                                rev: rev.clone(),
                                id,
                            });
                        }
                        Behaviour::Crashes => self.queue.push_back(Event::ReplicaFailed {
                            rev: rev.clone(),
                            id,
                            reason: "exited with code 1".to_owned(),
                        }),
                        Behaviour::Silent => {
                            self.live.entry(rev.clone()).or_default().push(id.clone());
                        }
                    }
                }
            }
            Command::StopReplicas { rev, which } => {
                let list = self.live.entry(rev.clone()).or_default();
                let stopped: Vec<ReplicaId> = match which {
                    Stop::All => std::mem::take(list),
                    Stop::DownTo(n) => {
                        let keep = (n as usize).min(list.len());
                        list.split_off(keep)
                    }
                    Stop::Ids(ids) => {
                        let gone: Vec<_> =
                            list.iter().filter(|i| ids.contains(i)).cloned().collect();
                        list.retain(|i| !ids.contains(i));
                        gone
                    }
                };
                for id in stopped {
                    self.queue.push_back(Event::ReplicaStopped {
                        rev: rev.clone(),
                        id,
                    });
                }
            }
            Command::SetWeights { weights } => self.weights_seen.push(weights),
            Command::SwitchTraffic { to } => {
                let weights = if to == self.state.plan().new {
                    Weights::all_canary()
                } else {
                    Weights::all_stable()
                };
                self.weights_seen.push(weights);
            }
            Command::RunSmoke { .. } => match self.smoke.clone() {
                Some(Ok(())) => self.queue.push_back(Event::SmokePassed),
                Some(Err(reason)) => self.queue.push_back(Event::SmokeFailed { reason }),
                None => {}
            },
            Command::StartAnalysis { run, name, step } => {
                self.started_analyses.push((run, name.clone(), step));
                if let Some(v) = self.verdicts.get(name.as_str()) {
                    self.queue.push_back(Event::AnalysisVerdict {
                        run,
                        verdict: *v,
                        reference: format!("verdict-{}", run.0),
                        summary: format!("error rate 0.1% vs 0.1%: {v:?}"),
                    });
                }
            }
            Command::Finish { outcome } => self.outcome = Some(outcome),
            Command::StopAnalysis { .. }
            | Command::ScheduleWake { .. }
            | Command::RecordEvent { .. }
            | Command::MarkStable { .. }
            | Command::WaitHealthy { .. } => {}
        }
        let total: usize = self.live.values().map(Vec::len).sum();
        self.max_live = self.max_live.max(total);
    }
}

/// Commands of one kind, for assertions.
pub fn starts(cmds: &[Command]) -> Vec<(String, u32)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::StartReplicas { rev, total } => Some((rev.to_string(), *total)),
            _ => None,
        })
        .collect()
}

pub fn canary_weights(ws: &[Weights]) -> Vec<u8> {
    ws.iter().map(|w| w.canary().percent()).collect()
}

pub fn texts(cmds: &[Command]) -> Vec<String> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::RecordEvent { text } => Some(text.clone()),
            _ => None,
        })
        .collect()
}
