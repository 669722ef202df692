//! The metric contract between ferry's proxy and everything rendered here: the metric
//! names and labels the alert rules, dashboards and Argo analyses query, and the PromQL
//! each analysis metric kind stands for.
//!
//! The proxy exports these names; docs/render.md documents them for users.

use ferry_spec::MetricKind;

/// Requests served, by `app`, `env`, `revision` and status `code`.
pub const REQUESTS_TOTAL: &str = "ferry_http_requests_total";
/// Request latency histogram (seconds), by `app`, `env`, `revision`; `_bucket` has `le`.
pub const REQUEST_DURATION: &str = "ferry_http_request_duration_seconds";
/// Traffic weight (0..=100) of each revision behind the proxy, by `app`, `env`, `revision`.
pub const BACKEND_WEIGHT: &str = "ferry_backend_weight";
/// Finished rollouts by `app`, `env` and `outcome` (`succeeded`, `rolled_back`, `aborted`).
pub const ROLLOUTS_TOTAL: &str = "ferry_rollouts_total";
/// Finished analysis runs by `app`, `env`, `analysis` and `verdict` (`pass`, `fail`,
/// `inconclusive`).
pub const ANALYSIS_RUNS_TOTAL: &str = "ferry_analysis_runs_total";
/// Expiry (Unix seconds) of each certificate the proxy serves, by `host`.
pub const TLS_CERT_EXPIRY: &str = "ferry_tls_certificate_expiry_timestamp_seconds";

/// Label matchers selecting one app's (and optionally one revision's) requests.
#[derive(Debug, Clone, Copy)]
pub struct Selector<'a> {
    /// The `app` label.
    pub app: &'a str,
    /// The `revision` label, or none for all revisions.
    pub revision: Option<&'a str>,
}

impl Selector<'_> {
    fn matchers(&self, extra: &str) -> String {
        let mut m = format!("app=\"{}\"", self.app);
        if let Some(rev) = self.revision {
            m.push_str(&format!(",revision=\"{rev}\""));
        }
        if !extra.is_empty() {
            m.push(',');
            m.push_str(extra);
        }
        m
    }
}

/// The PromQL for a built-in metric kind over a `window` such as `"1m"`; `None` for
/// [`MetricKind::Query`], whose query the user writes, and for the checks (`command`,
/// `http`), which only `ferry serve` runs.
pub fn query(kind: MetricKind, sel: Selector<'_>, window: &str) -> Option<String> {
    let all = sel.matchers("");
    let rate = |m: &str| format!("sum(rate({REQUESTS_TOTAL}{{{m}}}[{window}]))");
    let quantile = |q: &str| {
        format!(
            "histogram_quantile({q}, sum by (le) (rate({REQUEST_DURATION}_bucket{{{all}}}[{window}])))"
        )
    };
    Some(match kind {
        MetricKind::ErrorRate => {
            format!("{} / {}", rate(&sel.matchers("code=~\"5..\"")), rate(&all))
        }
        MetricKind::SuccessRate => {
            format!("{} / {}", rate(&sel.matchers("code!~\"5..\"")), rate(&all))
        }
        MetricKind::LatencyP50 => quantile("0.5"),
        MetricKind::LatencyP95 => quantile("0.95"),
        MetricKind::LatencyP99 => quantile("0.99"),
        MetricKind::Throughput => rate(&all),
        MetricKind::Query | MetricKind::Command | MetricKind::Http => return None,
    })
}

/// Requests a revision served during `window` (the sample size of a measurement).
pub fn sample_size(sel: Selector<'_>, window: &str) -> String {
    format!(
        "sum(increase({REQUESTS_TOTAL}{{{}}}[{window}]))",
        sel.matchers("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_rate_divides_5xx_by_all_requests_of_the_revision() {
        let q = query(
            MetricKind::ErrorRate,
            Selector {
                app: "shop",
                revision: Some("r2"),
            },
            "1m",
        );
        assert_eq!(
            q.as_deref(),
            Some(
                "sum(rate(ferry_http_requests_total{app=\"shop\",revision=\"r2\",code=~\"5..\"}[1m])) / \
                 sum(rate(ferry_http_requests_total{app=\"shop\",revision=\"r2\"}[1m]))"
            )
        );
        assert_eq!(
            query(
                MetricKind::Query,
                Selector {
                    app: "a",
                    revision: None
                },
                "1m"
            ),
            None
        );
    }
}
