//! Seeded simulations of whole measurements: how often an equal canary is wrongly failed, and
//! how reliably a 5% error rate, a doubled p95 and a slow tail are caught, at the traffic of a
//! 10% canary step (canary 200–400 requests, stable ten times more).

use ferry_analysis::{
    AnalysisConfig, ArmSample, MetricKind, MetricRule, Observation, VerdictOutcome, judge,
};

mod common;
use common::Rng;

/// The configuration from docs/analysis.md.
fn docs_config() -> AnalysisConfig {
    AnalysisConfig {
        metrics: vec![
            MetricRule {
                max_relative: Some(1.5),
                allowed_increase: 0.01,
                ..MetricRule::new(MetricKind::ErrorRate)
            },
            MetricRule {
                max_relative: Some(1.2),
                ..MetricRule::new(MetricKind::LatencyP95)
            },
        ],
        min_samples: 200,
        ..AnalysisConfig::default()
    }
}

struct Arm {
    requests: u64,
    error_rate: f64,
    median_ms: f64,
    added_ms: f64,
    /// Share of requests that get `tail_ms` more.
    tail_share: f64,
    tail_ms: f64,
}

impl Arm {
    fn healthy(requests: u64) -> Self {
        Self {
            requests,
            error_rate: 0.002,
            median_ms: 80.0,
            added_ms: 0.0,
            tail_share: 0.0,
            tail_ms: 0.0,
        }
    }

    fn draw(&self, rng: &mut Rng) -> ArmSample {
        let latencies_ms = (0..self.requests)
            .map(|_| {
                let tail = if rng.next_f64() < self.tail_share {
                    self.tail_ms
                } else {
                    0.0
                };
                rng.latency(self.median_ms) + self.added_ms + tail
            })
            .collect();
        ArmSample {
            requests: self.requests,
            errors: rng.binomial(self.requests, self.error_rate),
            latencies_ms,
            ..ArmSample::default()
        }
    }
}

/// Runs `trials` measurements and counts the failed verdicts.
#[expect(
    clippy::print_stderr,
    reason = "reports the measured rate to the test log"
)]
fn failures(label: &str, seed: u64, trials: u32, canary: &Arm, stable: &Arm) -> u32 {
    let cfg = docs_config();
    let mut rng = Rng(seed);
    let failed = (0..trials)
        .filter(|_| {
            let obs = Observation {
                canary: canary.draw(&mut rng),
                stable: stable.draw(&mut rng),
            };
            judge(&cfg, &obs).outcome == VerdictOutcome::Fail
        })
        .count() as u32;
    // The measured rate, for docs/analysis.md (visible with --no-capture).
    eprintln!("{label}: {failed} of {trials} measurements failed");
    failed
}

#[test]
fn equal_canaries_are_almost_never_failed() {
    let failed = failures("equal", 1, 400, &Arm::healthy(250), &Arm::healthy(2500));
    assert!(failed <= 2, "{failed} of 400 equal canaries failed");
}

#[test]
fn five_percent_errors_are_caught() {
    let canary = Arm {
        error_rate: 0.05,
        ..Arm::healthy(250)
    };
    let stable = Arm {
        error_rate: 0.0,
        ..Arm::healthy(2500)
    };
    // At 250 canary requests a single measurement needs 8 errors to be sure the rate is
    // above stable + 1 pp: it catches about nine in ten; twice the traffic catches all.
    let failed = failures("5% errors, 250 requests", 2, 200, &canary, &stable);
    assert!(
        failed >= 170,
        "only {failed} of 200 canaries with 5% errors failed"
    );
    let more = Arm {
        requests: 500,
        ..canary
    };
    let failed = failures("5% errors, 500 requests", 5, 200, &more, &stable);
    assert!(
        failed >= 196,
        "only {failed} of 200 canaries with 5% errors failed"
    );
}

#[test]
fn doubled_p95_is_caught() {
    // Log-normal(80 ms, 0.5): p95 ≈ 182 ms; adding 182 ms doubles it.
    let canary = Arm {
        added_ms: 182.0,
        ..Arm::healthy(250)
    };
    let failed = failures("2x p95", 3, 200, &canary, &Arm::healthy(2500));
    assert!(
        failed >= 198,
        "only {failed} of 200 canaries with 2× p95 failed"
    );
}

#[test]
fn a_slow_tail_alone_is_caught_by_the_tail_test() {
    // 15% of requests 400 ms slower: the median barely moves, p95 more than doubles.
    let canary = Arm {
        tail_share: 0.15,
        tail_ms: 400.0,
        ..Arm::healthy(250)
    };
    let failed = failures("slow tail", 4, 200, &canary, &Arm::healthy(2500));
    assert!(
        failed >= 180,
        "only {failed} of 200 canaries with a slow tail failed"
    );
}

#[test]
fn hodges_lehmann_interval_covers_the_true_shift() {
    // Latencies shifted by exactly 20 ms: the 95% interval should contain 20 about 95% of
    // the time.
    let mut rng = Rng(6);
    let trials = 300;
    let covered = (0..trials)
        .filter(|_| {
            let stable = rng.sample(300, 80.0, None);
            let canary: Vec<f64> = rng
                .sample(120, 80.0, None)
                .into_iter()
                .map(|v| v + 20.0)
                .collect();
            let shift = ferry_analysis::statistics::hodges_lehmann(&canary, &stable, 0.95)
                .expect("non-empty");
            shift.lower <= 20.0 && 20.0 <= shift.upper
        })
        .count();
    eprintln!("95% Hodges-Lehmann interval covered the true shift in {covered} of {trials}");
    assert!(
        (270..=298).contains(&covered),
        "the 95% interval covered the true shift in {covered} of {trials} trials"
    );
}
