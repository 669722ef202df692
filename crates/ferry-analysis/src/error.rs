//! The errors of the analysis crate.

/// Everything that can go wrong while configuring an analysis or reading a provider's answer.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// An analysis setting is out of range or contradicts another.
    #[error("invalid analysis setting `{field}`: {reason}")]
    InvalidConfig {
        /// The setting, e.g. `pass_score` or `metrics[1].max_relative`.
        field: String,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// A query template names a placeholder ferry does not know.
    #[error(
        "unknown placeholder `{{{{{name}}}}}` in query (known: {{{{app}}}}, {{{{env}}}}, {{{{revision}}}}, {{{{stable}}}}, {{{{interval}}}})"
    )]
    UnknownPlaceholder {
        /// The placeholder's name as written.
        name: String,
    },
    /// A query template opens `{{` without closing it.
    #[error("unclosed `{{{{` in query at byte {offset}")]
    UnclosedPlaceholder {
        /// Byte offset of the opening braces.
        offset: usize,
    },
    /// A placeholder's value cannot be put where the placeholder stands without changing
    /// the query's meaning.
    #[error("cannot put {name} into the query: {reason}")]
    UnsafePlaceholderValue {
        /// The placeholder.
        name: String,
        /// Why, and how to write the template instead.
        reason: String,
    },
    /// The provider's body is not the JSON it should be.
    #[error("prometheus response is not valid JSON")]
    PrometheusJson(#[source] serde_json::Error),
    /// Prometheus answered with `"status": "error"`.
    #[error("prometheus query failed ({error_type}): {message}")]
    PrometheusQuery {
        /// Prometheus' `errorType`, e.g. `bad_data`.
        error_type: String,
        /// Prometheus' `error` message.
        message: String,
    },
    /// The response is JSON but not a result ferry can turn into samples.
    #[error("unexpected prometheus response: {reason}")]
    PrometheusShape {
        /// What was expected and what was found.
        reason: String,
    },
}
