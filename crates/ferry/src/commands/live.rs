//! The live view of rollouts: `ferry deploy` (and the commands that wait for a rollout)
//! and `ferry status --watch`.
//!
//! Design note. The view is fed by the daemon's status long poll (`GET .../status?since=V`
//! answers as soon as the status changes), so each change shows when it happens, without
//! a polling delay. Three renderings, chosen by the printer: on a terminal an indicatif
//! view (phase, step i/n, weights, replicas, traffic per revision, elapsed) with the step
//! changes and analysis verdicts printed above it; otherwise one plain line per change;
//! with `--output json` one NDJSON event per change and a final `result` object. Progress
//! bars never reach JSON or a pipe.

use std::time::{Duration, Instant};

use ferry_daemon::protocol::{AppStatus, RolloutStatus};
use ferry_daemon::{Client, DaemonError};
use indicatif::ProgressBar;

use crate::printer::{LiveMode, Printer};

/// How long one long poll may wait for a change: short on a terminal so the traffic
/// figures and the spinner stay fresh, long otherwise (one request per change).
fn poll_wait(mode: LiveMode) -> Duration {
    match mode {
        LiveMode::Terminal => Duration::from_secs(1),
        LiveMode::Lines | LiveMode::Json | LiveMode::Quiet => Duration::from_secs(20),
    }
}

/// Which rollout a follow waits for.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// This rollout, until it finishes.
    Rollout(i64),
    /// The first rollout newer than this one (or any, with `None`), until it finishes:
    /// the one an action such as `ferry rollback` has just started.
    After(Option<i64>),
}

impl Target {
    fn matches(self, rollout: &RolloutStatus) -> bool {
        match self {
            Target::Rollout(id) => rollout.id == id,
            Target::After(prev) => prev.is_none_or(|p| rollout.id > p),
        }
    }
}

/// The state of one rendering: what was shown already.
pub struct View {
    mode: LiveMode,
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: String,
    last_version: Option<u64>,
    analysis_seen: Vec<String>,
    /// The rollout whose hold for a person was explained already.
    hold_explained: Option<i64>,
    /// The previous traffic counters and when they were read, for rates.
    last_traffic: Option<(Instant, Vec<ferry_daemon::protocol::RevisionTraffic>)>,
}

impl View {
    pub fn new(printer: &Printer) -> Self {
        let mode = printer.live_mode();
        View {
            mode,
            bar: printer.live_bar(),
            started: Instant::now(),
            last_line: String::new(),
            last_version: None,
            analysis_seen: Vec::new(),
            hold_explained: None,
            last_traffic: None,
        }
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// A line above the live view on a terminal, a plain line otherwise (never in JSON).
    fn note(&self, text: &str, printer: &Printer) -> anyhow::Result<()> {
        match (&self.bar, self.mode) {
            (Some(bar), _) => {
                bar.println(text);
                Ok(())
            }
            (None, LiveMode::Lines) => printer.line(text),
            _ => Ok(()),
        }
    }

    /// Shows `status` if it changed since the last call.
    pub fn update(&mut self, status: &AppStatus, printer: &Printer) -> anyhow::Result<()> {
        let changed = self.last_version != Some(status.version);
        self.last_version = Some(status.version);
        let rollout = status.rollout.as_ref();
        if self.mode == LiveMode::Json {
            if changed {
                printer.event(&serde_json::json!({
                    "event": "status",
                    "elapsed_ms": millis(self.elapsed()),
                    "stable": status.stable,
                    "canary": status.canary,
                    "rollout": rollout,
                    "traffic": status.traffic,
                }))?;
            }
            return Ok(());
        }
        let line = rollout.map_or_else(
            || {
                format!(
                    "{} ({}): stable {}, no rollout",
                    status.app,
                    status.env,
                    revision_name(status.stable)
                )
            },
            |r| match self.mode {
                // On a terminal weights and replicas live in the view below.
                LiveMode::Terminal => format!("{}: {}", step_text(r), r.phase),
                _ => plain_line(r),
            },
        );
        if line != self.last_line {
            let stamp = format!("[{:>6}]", human_elapsed(self.elapsed()));
            self.note(&format!("{stamp} {line}"), printer)?;
            self.last_line = line;
        }
        if let Some(r) = rollout
            && waits_for_a_person(r)
            && self.hold_explained != Some(r.id)
        {
            self.hold_explained = Some(r.id);
            self.note(
                "         waiting for `ferry promote` (or `ferry abort`); Ctrl-C stops \
                 watching, the rollout stays where it is",
                printer,
            )?;
        }
        if let Some(r) = rollout {
            for verdict in &r.analysis {
                if !self.analysis_seen.contains(verdict) {
                    // A verdict is a summary line, then one line per metric.
                    let indented = verdict.replace('\n', "\n           ");
                    self.note(&format!("         {indented}"), printer)?;
                    self.analysis_seen.push(verdict.clone());
                }
            }
        }
        if self.bar.is_some() {
            let rates = self.rates(status);
            if let Some(bar) = &self.bar {
                render_bar(bar, status, &rates);
            }
        }
        Ok(())
    }

    /// Requests per second and error rate per revision since the previous update.
    fn rates(&mut self, status: &AppStatus) -> Vec<String> {
        let now = Instant::now();
        let mut out = Vec::new();
        if let Some((then, before)) = &self.last_traffic {
            let secs = now.duration_since(*then).as_secs_f64();
            for t in &status.traffic {
                let prev = before.iter().find(|b| b.revision == t.revision);
                let requests = t.requests - prev.map_or(0, |p| p.requests.min(t.requests));
                let errors = t.errors - prev.map_or(0, |p| p.errors.min(t.errors));
                if t.requests == 0 {
                    continue;
                }
                #[expect(
                    clippy::cast_precision_loss,
                    reason = "a displayed rate needs no exact integer"
                )]
                let rate = if secs > 0.0 {
                    requests as f64 / secs
                } else {
                    0.0
                };
                let errors = if requests == 0 {
                    "-".to_owned()
                } else {
                    #[expect(
                        clippy::cast_precision_loss,
                        reason = "a displayed percentage needs no exact integer"
                    )]
                    let pct = errors as f64 * 100.0 / requests as f64;
                    format!("{pct:.1}%")
                };
                out.push(format!(
                    "rev {}: {rate:.1} req/s, errors {errors}, p95 {}",
                    t.revision,
                    human_micros(t.p95_us)
                ));
            }
        }
        self.last_traffic = Some((now, status.traffic.clone()));
        out
    }

    /// Clears the live view (the persistent lines stay).
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for View {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A hold that only `ferry promote`, `resume` or `abort` ends (not a timed pause).
fn waits_for_a_person(r: &RolloutStatus) -> bool {
    !r.finished
        && r.phase.starts_with("paused")
        && (r.phase.contains("until promoted")
            || r.phase.contains("by user")
            || r.phase.contains("inconclusive"))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn revision_name(rev: Option<i64>) -> String {
    rev.map_or_else(|| "none".to_owned(), |r| format!("revision {r}"))
}

/// `12.3s`, `2m05s`.
fn human_elapsed(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

fn human_micros(us: u64) -> String {
    if us >= 10_000 {
        format!("{}ms", us / 1000)
    } else {
        #[expect(
            clippy::cast_precision_loss,
            reason = "a displayed latency needs no exact integer"
        )]
        let ms = us as f64 / 1000.0;
        format!("{ms:.1}ms")
    }
}

/// `step 2/6 pause 30s`, or the phase alone between steps.
fn step_text(r: &RolloutStatus) -> String {
    match &r.step {
        Some((i, label)) => format!("step {}/{} {label}", i + 1, r.steps.len()),
        None => format!("{} steps", r.steps.len()),
    }
}

fn weights_text(r: &RolloutStatus) -> String {
    format!(
        "stable {} → canary {}",
        r.weights.stable(),
        r.weights.canary()
    )
}

fn replicas_text(r: &RolloutStatus) -> String {
    let c = &r.replicas;
    let starting = if c.new_starting > 0 {
        format!(" ({} starting)", c.new_starting)
    } else {
        String::new()
    };
    format!(
        "new {}/{} healthy{starting}, stable {}/{} healthy",
        c.new_healthy, c.new_target, c.stable_healthy, c.stable_target
    )
}

/// One line per change when not on a terminal.
fn plain_line(r: &RolloutStatus) -> String {
    let from = r
        .from
        .map_or_else(String::new, |f| format!("revision {f} → "));
    format!(
        "rollout {} ({from}revision {}, {}): {}; {}; {}; {}",
        r.id,
        r.revision,
        r.strategy,
        r.phase,
        step_text(r),
        weights_text(r),
        replicas_text(r)
    )
}

fn render_bar(bar: &ProgressBar, status: &AppStatus, rates: &[String]) {
    let Some(r) = &status.rollout else {
        bar.set_length(1);
        bar.set_position(0);
        bar.set_prefix(format!("{} ({})", status.app, status.env));
        bar.set_message(format!(
            "stable {}, no rollout{}",
            revision_name(status.stable),
            rates.iter().map(|l| format!("\n  {l}")).collect::<String>()
        ));
        return;
    };
    let total = u64::try_from(r.steps.len()).unwrap_or(0).max(1);
    let done = if r.finished {
        total
    } else {
        r.step
            .as_ref()
            .map_or(0, |(i, _)| u64::try_from(*i).unwrap_or(0))
    };
    bar.set_length(total);
    bar.set_position(done);
    bar.set_prefix(format!(
        "revision {} ({}) {}",
        r.revision,
        r.strategy,
        step_text(r)
    ));
    let mut message = format!(
        "{}\n  weights   {}\n  replicas  {}",
        r.phase,
        weights_text(r),
        replicas_text(r)
    );
    for line in rates {
        message.push_str(&format!("\n  traffic   {line}"));
    }
    bar.set_message(message);
}

/// How a followed rollout ended.
pub struct Ended {
    pub status: AppStatus,
    pub rollout: RolloutStatus,
    pub elapsed: Duration,
}

/// Follows `target` until it finishes, showing every change; errors of the daemon
/// (unreachable, stopped) come back as they are.
pub async fn follow(
    client: &Client,
    app: &str,
    env: &str,
    target: Target,
    printer: &Printer,
) -> Result<anyhow::Result<Ended>, DaemonError> {
    let mut view = View::new(printer);
    let wait = poll_wait(view.mode);
    let mut status = client.status(app, env).await?;
    loop {
        // Only the targeted rollout is shown: an older one is history.
        let current = status.rollout.clone().filter(|r| target.matches(r));
        let shown = AppStatus {
            rollout: current.clone(),
            ..status.clone()
        };
        if current.is_some()
            && let Err(e) = view.update(&shown, printer)
        {
            return Ok(Err(e));
        }
        if let Some(r) = current.filter(|r| r.finished) {
            view.finish();
            return Ok(Ok(Ended {
                status,
                rollout: r,
                elapsed: view.elapsed(),
            }));
        }
        status = client.status_after(app, env, status.version, wait).await?;
    }
}

/// `ferry status --watch`: shows every change until Ctrl-C or `timeout`.
pub async fn watch(
    client: &Client,
    app: &str,
    env: &str,
    timeout: Option<Duration>,
    printer: &Printer,
) -> Result<anyhow::Result<()>, DaemonError> {
    let mut view = View::new(printer);
    let wait = poll_wait(view.mode);
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut status = client.status(app, env).await?;
    loop {
        if let Err(e) = view.update(&status, printer) {
            return Ok(Err(e));
        }
        let wait = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    view.finish();
                    return Ok(Ok(()));
                }
                // Whole seconds on the wire; the last partial second is slept here.
                if left < Duration::from_secs(1) {
                    tokio::time::sleep(left).await;
                    continue;
                }
                wait.min(Duration::from_secs(left.as_secs()))
            }
            None => wait,
        };
        tokio::select! {
            next = client.status_after(app, env, status.version, wait) => status = next?,
            _ = tokio::signal::ctrl_c() => {
                view.finish();
                return Ok(Ok(()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout() -> RolloutStatus {
        serde_json::from_value(serde_json::json!({
            "id": 3,
            "from": 1,
            "revision": 2,
            "strategy": "canary",
            "phase": "paused at step 2 (pause step)",
            "step": [1, "pause 30s"],
            "steps": ["weight 20%", "pause 30s", "weight 100%"],
            "weights": { "stable": 80, "canary": 20 },
            "replicas": {
                "new_target": 2, "new_healthy": 1, "new_starting": 1,
                "stable_target": 2, "stable_healthy": 2
            },
            "finished": false,
            "outcome": null,
            "summary": "",
        }))
        .unwrap_or_else(|e| panic!("rollout fixture: {e}"))
    }

    #[test]
    fn a_plain_line_names_step_weights_and_replicas() {
        assert_eq!(
            plain_line(&rollout()),
            "rollout 3 (revision 1 → revision 2, canary): paused at step 2 (pause step); \
             step 2/3 pause 30s; stable 80% → canary 20%; \
             new 1/2 healthy (1 starting), stable 2/2 healthy"
        );
    }

    #[test]
    fn only_holds_for_a_person_are_explained() {
        let mut r = rollout();
        assert!(!waits_for_a_person(&r), "a timed pause ends by itself");
        r.phase = "paused at step 2 (until promoted)".to_owned();
        assert!(waits_for_a_person(&r));
        r.phase = "paused at step 3 (analysis default inconclusive)".to_owned();
        assert!(waits_for_a_person(&r));
        r.finished = true;
        assert!(!waits_for_a_person(&r));
    }

    #[test]
    fn after_targets_only_newer_rollouts() {
        let r = rollout();
        assert!(Target::After(None).matches(&r));
        assert!(Target::After(Some(2)).matches(&r));
        assert!(!Target::After(Some(3)).matches(&r));
        assert!(Target::Rollout(3).matches(&r));
        assert!(!Target::Rollout(4).matches(&r));
    }

    #[test]
    fn elapsed_and_latency_read_naturally() {
        assert_eq!(human_elapsed(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(human_elapsed(Duration::from_secs(125)), "2m05s");
        assert_eq!(human_micros(1_500), "1.5ms");
        assert_eq!(human_micros(25_000), "25ms");
    }
}
