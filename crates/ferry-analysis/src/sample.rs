//! What a provider measured for each arm over one window.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One arm's measurements (canary or stable) over a window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArmSample {
    /// Requests completed in the window.
    pub requests: u64,
    /// Of those, requests that failed (5xx or connection error).
    pub errors: u64,
    /// Per-request latencies in milliseconds (all of them or a uniform sample).
    pub latencies_ms: Vec<f64>,
    /// Requests per second over the window, as the provider computed it.
    pub throughput: Option<f64>,
    /// Values of custom metrics, keyed by the rule's name: one value (e.g. from a Prometheus
    /// query) or many (one per request or per series).
    pub custom: BTreeMap<String, Vec<f64>>,
    /// Outcomes of checks (a command, an HTTP call) run against this arm in the window,
    /// keyed by the rule's name.
    pub checks: BTreeMap<String, CheckRun>,
}

/// What one check did: whether it passed and, in a few words, why (an exit code and the
/// tail of its output, or an HTTP status).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckRun {
    /// The check's own verdict.
    pub passed: bool,
    /// What it saw, for the explanation.
    pub detail: String,
}

impl ArmSample {
    /// Adds a later window's measurements to this one, so that a low-traffic step can keep
    /// collecting until it has enough samples. Throughput takes the later window's value.
    pub fn absorb(&mut self, later: ArmSample) {
        self.requests = self.requests.saturating_add(later.requests);
        self.errors = self.errors.saturating_add(later.errors);
        self.latencies_ms.extend(later.latencies_ms);
        if later.throughput.is_some() {
            self.throughput = later.throughput;
        }
        for (name, values) in later.custom {
            self.custom.entry(name).or_default().extend(values);
        }
        // A check's latest run is what it says now.
        self.checks.extend(later.checks);
    }
}

/// Both arms measured over the same window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Observation {
    /// The new revision.
    pub canary: ArmSample,
    /// The revision serving the rest of the traffic at the same time.
    pub stable: ArmSample,
}

impl Observation {
    /// Adds a later window to this one; see [`ArmSample::absorb`].
    pub fn absorb(&mut self, later: Observation) {
        self.canary.absorb(later.canary);
        self.stable.absorb(later.stable);
    }
}

/// Keeps the finite values of a sample and counts the others, so that NaN and infinities
/// never reach a test and the result can say how many were ignored.
pub(crate) fn finite(values: &[f64]) -> (Vec<f64>, usize) {
    let kept: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let dropped = values.len() - kept.len();
    (kept, dropped)
}
