//! Deterministic data for the tests: a seeded generator so every run sees the same samples.

// Each test binary that includes this module uses only part of it.
#![allow(
    dead_code,
    reason = "shared by several test binaries, each using a part"
)]

/// SplitMix64: tiny, fast, and good enough for test data.
pub struct Rng(pub u64);

impl Rng {
    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A latency-like value: log-normal around `median` ms (log standard deviation 0.5).
    pub fn latency(&mut self, median: f64) -> f64 {
        // Box–Muller for a standard normal.
        let (u1, u2) = (self.next_f64().max(1e-12), self.next_f64());
        let n = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        median * (0.5 * n).exp()
    }

    /// `n` latencies around `median`, rounded to multiples of `round_to` when given (ties).
    pub fn sample(&mut self, n: usize, median: f64, round_to: Option<f64>) -> Vec<f64> {
        (0..n)
            .map(|_| {
                let v = self.latency(median);
                round_to.map_or(v, |r| (v / r).round() * r)
            })
            .collect()
    }

    /// Number of successes in `n` Bernoulli(`p`) trials.
    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        (0..n).filter(|_| self.next_f64() < p).count() as u64
    }
}
