//! Turns a spanned TOML tree into a [`Spec`], collecting every problem on the way instead
//! of stopping at the first: each decoder reads all of its keys, reports what is wrong
//! where it was written, and only then gives up on the value.

use std::collections::BTreeMap;
use std::ops::Range;
use std::str::FromStr;

use crate::diagnostic::Problem;
use crate::error::SpecError;
use crate::names::{AppName, EnvVarName, RoleName, VolumeMount};
use crate::node::{Entry, Kind, Node};
use crate::spec::*;
use crate::units::{ByteSize, Duration, Weight};

/// The problems collected while decoding.
#[derive(Debug, Default)]
pub(crate) struct Cx {
    pub problems: Vec<Problem>,
}

impl Cx {
    fn push(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    fn error_at(
        &mut self,
        code: &'static str,
        span: &Range<usize>,
        path: &str,
        message: String,
        label: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.push(
            Problem::error(code, message, hint)
                .at(span.clone(), label)
                .with_path(path),
        );
    }

    fn warn_at(
        &mut self,
        code: &'static str,
        span: &Range<usize>,
        path: &str,
        message: String,
        label: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.push(
            Problem::warning(code, message, hint)
                .at(span.clone(), label)
                .with_path(path),
        );
    }
}

/// Joins a dotted key path.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Shows a path for messages; the root has none.
fn shown(path: &str) -> String {
    if path.is_empty() {
        "the top level".to_owned()
    } else {
        format!("`{path}`")
    }
}

/// The closest candidate to `word`, if it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Where a value was written: its dotted path and the span of the key naming it.
#[derive(Debug, Clone)]
pub(crate) struct Place<'a> {
    pub path: &'a str,
    pub key_span: &'a Range<usize>,
}

/// Something a TOML value can be decoded into.
pub(crate) trait Decode: Sized {
    /// What a value must look like ("a string", "a duration such as \"30s\"").
    const EXPECTED: &'static str;

    /// Decodes `node`, pushing problems to `cx`; `None` when it is unusable.
    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self>;
}

fn type_error(node: &Node, at: &Place<'_>, expected: &str, cx: &mut Cx) {
    let key = at.path.rsplit('.').next().unwrap_or(at.path);
    let hint = match &node.kind {
        Kind::String(s) if s.parse::<f64>().is_ok() && expected.contains("number") => {
            format!("remove the quotes: {key} = {s}")
        }
        Kind::String(s) if (s == "true" || s == "false") && expected.contains("boolean") => {
            format!("remove the quotes: {key} = {s}")
        }
        Kind::Integer(i) if expected.contains("string") => {
            format!("quote the value: {key} = \"{i}\"")
        }
        _ => format!("write {expected} here"),
    };
    cx.error_at(
        "invalid-type",
        &node.span,
        at.path,
        format!(
            "{} must be {expected}, found {}",
            shown(at.path),
            node.kind.type_name()
        ),
        format!("expected {expected}"),
        hint,
    );
}

impl Decode for String {
    const EXPECTED: &'static str = "a string";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        match &node.kind {
            Kind::String(s) => Some(s.clone()),
            _ => {
                type_error(node, at, Self::EXPECTED, cx);
                None
            }
        }
    }
}

impl Decode for bool {
    const EXPECTED: &'static str = "a boolean (true or false)";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        match &node.kind {
            Kind::Bool(b) => Some(*b),
            _ => {
                type_error(node, at, Self::EXPECTED, cx);
                None
            }
        }
    }
}

macro_rules! decode_unsigned {
    ($($t:ty),*) => {$(
        impl Decode for $t {
            const EXPECTED: &'static str = "a whole number";

            fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
                match &node.kind {
                    Kind::Integer(i) => match <$t>::try_from(*i) {
                        Ok(v) => Some(v),
                        Err(_) => {
                            cx.error_at(
                                "out-of-range",
                                &node.span,
                                at.path,
                                format!("{} is {i}, outside 0..={}", shown(at.path), <$t>::MAX),
                                "out of range",
                                format!("use a whole number between 0 and {}", <$t>::MAX),
                            );
                            None
                        }
                    },
                    _ => {
                        type_error(node, at, Self::EXPECTED, cx);
                        None
                    }
                }
            }
        }
    )*};
}
decode_unsigned!(u16, u32, u64);

impl Decode for f64 {
    const EXPECTED: &'static str = "a number";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let value = match &node.kind {
            Kind::Float(f) => *f,
            #[expect(clippy::cast_precision_loss, reason = "spec numbers are small")]
            Kind::Integer(i) => *i as f64,
            _ => {
                type_error(node, at, Self::EXPECTED, cx);
                return None;
            }
        };
        if value.is_finite() {
            Some(value)
        } else {
            cx.error_at(
                "invalid-value",
                &node.span,
                at.path,
                format!("{} must be a finite number", shown(at.path)),
                "not a finite number",
                "write a plain number such as 0.5",
            );
            None
        }
    }
}

/// Decodes a string through `FromStr`, reporting failures with `code` and `hint`.
fn decode_parsed<T: FromStr<Err = SpecError>>(
    node: &Node,
    at: &Place<'_>,
    cx: &mut Cx,
    expected: &str,
    code: &'static str,
    hint: &str,
) -> Option<T> {
    let Kind::String(s) = &node.kind else {
        type_error(node, at, expected, cx);
        return None;
    };
    match s.parse() {
        Ok(v) => Some(v),
        Err(e) => {
            cx.error_at(
                code,
                &node.span,
                at.path,
                format!("{} is {e}", shown(at.path)).replace("is invalid", "is an invalid"),
                "invalid value",
                hint,
            );
            None
        }
    }
}

const DURATION_HINT: &str =
    "write a number with a unit (ms, s, m, h, d), e.g. \"250ms\", \"30s\", \"5m\" or \"1h30m\"";

impl Decode for Duration {
    const EXPECTED: &'static str = "a duration string such as \"30s\"";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        if let Kind::Integer(_) | Kind::Float(_) = node.kind {
            cx.error_at(
                "invalid-duration",
                &node.span,
                at.path,
                format!("{} is a bare number; durations need a unit", shown(at.path)),
                "no unit",
                DURATION_HINT,
            );
            return None;
        }
        decode_parsed(
            node,
            at,
            cx,
            Self::EXPECTED,
            "invalid-duration",
            DURATION_HINT,
        )
    }
}

impl Decode for ByteSize {
    const EXPECTED: &'static str = "a size string such as \"256Mi\"";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        decode_parsed(
            node,
            at,
            cx,
            Self::EXPECTED,
            "invalid-size",
            "write a whole number with a unit, e.g. \"64Mi\", \"1Gi\" or \"512M\"",
        )
    }
}

impl Decode for Weight {
    const EXPECTED: &'static str = "a whole number between 0 and 100";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let Kind::Integer(i) = node.kind else {
            type_error(node, at, Self::EXPECTED, cx);
            return None;
        };
        match Weight::new(i) {
            Ok(w) => Some(w),
            Err(e) => {
                cx.error_at(
                    "out-of-range",
                    &node.span,
                    at.path,
                    format!("{}: {e}", shown(at.path)),
                    "not a percentage",
                    "a weight is a percentage of traffic, 0 to 100",
                );
                None
            }
        }
    }
}

const NAME_HINT: &str = "use lowercase letters, digits and '-', starting with a letter (at most 63 characters), e.g. \"my-app\"";

impl Decode for AppName {
    const EXPECTED: &'static str = "a name such as \"my-app\"";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        decode_parsed(node, at, cx, Self::EXPECTED, "invalid-name", NAME_HINT)
    }
}

impl Decode for VolumeMount {
    const EXPECTED: &'static str = "a volume such as \"data:/var/lib/data\"";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        decode_parsed(
            node,
            at,
            cx,
            Self::EXPECTED,
            "invalid-volume",
            "write \"name:/absolute/path\", e.g. \"pgdata:/var/lib/postgresql/data\"",
        )
    }
}

impl Decode for EnvVarName {
    const EXPECTED: &'static str = "a variable name such as \"DATABASE_URL\"";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        decode_parsed(
            node,
            at,
            cx,
            Self::EXPECTED,
            "invalid-env-name",
            ENV_NAME_HINT,
        )
    }
}

const ENV_NAME_HINT: &str =
    "use letters, digits and '_', not starting with a digit, e.g. DATABASE_URL";

impl<T: Decode> Decode for Vec<T> {
    const EXPECTED: &'static str = "an array";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let Kind::Array(items) = &node.kind else {
            type_error(node, at, Self::EXPECTED, cx);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = join(at.path, &i.to_string());
            match T::decode(
                item,
                &Place {
                    path: &path,
                    key_span: &item.span,
                },
                cx,
            ) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

/// Keys of a map-like table (`env`, `workers`, `analysis`...), checked where written.
pub(crate) trait MapKey: Ord + Sized {
    fn decode_key(entry: &Entry, path: &str, cx: &mut Cx) -> Option<Self>;
}

impl MapKey for String {
    fn decode_key(entry: &Entry, _: &str, _: &mut Cx) -> Option<Self> {
        Some(entry.key.clone())
    }
}

impl MapKey for RoleName {
    fn decode_key(entry: &Entry, path: &str, cx: &mut Cx) -> Option<Self> {
        match entry.key.parse() {
            Ok(name) => Some(name),
            Err(e) => {
                cx.error_at(
                    "invalid-name",
                    &entry.key_span,
                    path,
                    format!("{e}"),
                    "invalid name",
                    NAME_HINT,
                );
                None
            }
        }
    }
}

impl MapKey for EnvVarName {
    fn decode_key(entry: &Entry, path: &str, cx: &mut Cx) -> Option<Self> {
        match entry.key.parse() {
            Ok(name) => Some(name),
            Err(e) => {
                cx.error_at(
                    "invalid-env-name",
                    &entry.key_span,
                    path,
                    format!("{e}"),
                    "invalid variable name",
                    ENV_NAME_HINT,
                );
                None
            }
        }
    }
}

impl<K: MapKey, V: Decode> Decode for BTreeMap<K, V> {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let Some(entries) = node.entries() else {
            type_error(node, at, Self::EXPECTED, cx);
            return None;
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for entry in entries {
            let path = join(at.path, &entry.key);
            let key = K::decode_key(entry, &path, cx);
            let value = V::decode(
                &entry.value,
                &Place {
                    path: &path,
                    key_span: &entry.key_span,
                },
                cx,
            );
            match (key, value) {
                (Some(k), Some(v)) => {
                    out.insert(k, v);
                }
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }
}

/// Decodes closed string enums, with "did you mean" for near misses.
macro_rules! decode_enum {
    ($t:ty, $what:literal, [$($text:literal => $variant:expr),* $(,)?]) => {
        impl Decode for $t {
            const EXPECTED: &'static str = $what;

            fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
                const ALL: &[&str] = &[$($text),*];
                let Kind::String(s) = &node.kind else {
                    type_error(node, at, Self::EXPECTED, cx);
                    return None;
                };
                match s.as_str() {
                    $($text => Some($variant),)*
                    other => {
                        let hint = match did_you_mean(other, ALL) {
                            Some(close) => format!("did you mean \"{close}\"?"),
                            None => format!("use one of: {}", quoted(ALL)),
                        };
                        cx.error_at(
                            "invalid-value",
                            &node.span,
                            at.path,
                            format!("{} is \"{other}\", which is not one of {}", shown(at.path), quoted(ALL)),
                            "unknown value",
                            hint,
                        );
                        None
                    }
                }
            }
        }
    };
}

fn quoted(options: &[&str]) -> String {
    options
        .iter()
        .map(|o| format!("\"{o}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

decode_enum!(StrategyKind, "a strategy kind", [
    "rolling" => StrategyKind::Rolling,
    "blue-green" => StrategyKind::BlueGreen,
    "canary" => StrategyKind::Canary,
]);
decode_enum!(OnInconclusive, "an action", [
    "pause" => OnInconclusive::Pause,
    "rollback" => OnInconclusive::Rollback,
    "promote" => OnInconclusive::Promote,
]);
decode_enum!(Provider, "a metrics provider", [
    "proxy" => Provider::Proxy,
    "prometheus" => Provider::Prometheus,
]);
decode_enum!(MetricKind, "a metric kind", [
    "success-rate" => MetricKind::SuccessRate,
    "error-rate" => MetricKind::ErrorRate,
    "latency-p50" => MetricKind::LatencyP50,
    "latency-p95" => MetricKind::LatencyP95,
    "latency-p99" => MetricKind::LatencyP99,
    "throughput" => MetricKind::Throughput,
    "query" => MetricKind::Query,
    "command" => MetricKind::Command,
    "http" => MetricKind::Http,
]);
decode_enum!(CheckMethod, "an HTTP method", [
    "GET" => CheckMethod::Get,
    "POST" => CheckMethod::Post,
]);
decode_enum!(Severity, "a severity", [
    "error" => Severity::Error,
    "warning" => Severity::Warning,
    "info" => Severity::Info,
]);
decode_enum!(NotifyEvent, "an event name", [
    "build-finished" => NotifyEvent::BuildFinished,
    "deploy-started" => NotifyEvent::DeployStarted,
    "deploy-succeeded" => NotifyEvent::DeploySucceeded,
    "deploy-failed" => NotifyEvent::DeployFailed,
    "rollout-paused" => NotifyEvent::RolloutPaused,
    "rollout-promoted" => NotifyEvent::RolloutPromoted,
    "rollout-aborted" => NotifyEvent::RolloutAborted,
    "analysis-failed" => NotifyEvent::AnalysisFailed,
    "rollback-started" => NotifyEvent::RollbackStarted,
    "rollback-succeeded" => NotifyEvent::RollbackSucceeded,
    "step-started" => NotifyEvent::StepStarted,
    "step-finished" => NotifyEvent::StepFinished,
    "weight-changed" => NotifyEvent::WeightChanged,
    "analysis-verdict" => NotifyEvent::AnalysisVerdict,
    "rollout-resumed" => NotifyEvent::RolloutResumed,
    "hook-failed" => NotifyEvent::HookFailed,
]);

/// Reads the keys of one table, remembering which are known so that the rest can be
/// reported as unknown.
pub(crate) struct Fields<'a> {
    entries: &'a [Entry],
    path: &'a str,
    key_span: &'a Range<usize>,
    known: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    /// Starts reading `node` as a table, or reports that it is not one.
    pub fn new(node: &'a Node, at: &Place<'a>, cx: &mut Cx) -> Option<Self> {
        match node.entries() {
            Some(entries) => Some(Self {
                entries,
                path: at.path,
                key_span: at.key_span,
                known: Vec::new(),
            }),
            None => {
                type_error(node, at, "a table", cx);
                None
            }
        }
    }

    fn entry(&mut self, key: &'static str) -> Option<&'a Entry> {
        self.known.push(key);
        self.entries.iter().find(|e| e.key == key)
    }

    /// The span of `key`'s key, when present.
    pub fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.key_span.clone())
    }

    /// The span of `key`'s value, when present.
    pub fn value_span(&self, key: &str) -> Option<Range<usize>> {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.span.clone())
    }

    /// An optional key; `None` when absent or invalid (invalid values are reported).
    pub fn opt<T: Decode>(&mut self, key: &'static str, cx: &mut Cx) -> Option<T> {
        let entry = self.entry(key)?;
        let path = join(self.path, key);
        T::decode(
            &entry.value,
            &Place {
                path: &path,
                key_span: &entry.key_span,
            },
            cx,
        )
    }

    /// An optional key with a default.
    pub fn or<T: Decode>(&mut self, key: &'static str, cx: &mut Cx, default: T) -> T {
        self.opt(key, cx).unwrap_or(default)
    }

    /// A required key; a missing one is reported with an example line.
    pub fn req<T: Decode>(&mut self, key: &'static str, example: &str, cx: &mut Cx) -> Option<T> {
        if self.entries.iter().any(|e| e.key == key) {
            return self.opt(key, cx);
        }
        self.known.push(key);
        let path = join(self.path, key);
        cx.error_at(
            "missing-key",
            self.key_span,
            &path,
            format!("{} is missing the required key `{key}`", shown(self.path)),
            format!("`{key}` is required here"),
            format!("add `{example}`"),
        );
        None
    }

    /// Reports every key that was not asked for.
    pub fn finish(self, cx: &mut Cx) {
        for entry in self.entries {
            if self.known.contains(&entry.key.as_str()) {
                continue;
            }
            let misplaced = if self.path.is_empty() {
                home_of(&entry.key)
            } else {
                None
            };
            let hint = match (did_you_mean(&entry.key, &self.known), misplaced) {
                (_, Some(section)) => {
                    format!("`{}` belongs in {section}; move it there", entry.key)
                }
                (Some(close), None) => format!("did you mean `{close}`?"),
                (None, None) if self.known.is_empty() => "remove this key".to_owned(),
                (None, None) => format!("known keys here: {}", self.known.join(", ")),
            };
            cx.error_at(
                "unknown-key",
                &entry.key_span,
                &join(self.path, &entry.key),
                format!("unknown key `{}` in {}", entry.key, shown(self.path)),
                "unknown key",
                hint,
            );
        }
    }
}

/// The section a top-level key probably belongs to, for keys written at the wrong level.
fn home_of(key: &str) -> Option<&'static str> {
    Some(match key {
        "port" | "replicas" | "command" | "health" | "readiness_path" | "drain_timeout"
        | "stop_timeout" | "resources" | "routes" => "[web]",
        "context" | "dockerfile" | "target" | "args" => "[build]",
        "kind" | "steps" | "rolling" | "blue_green" | "canary" => "[strategy]",
        "pre_build" | "pre_deploy" | "post_deploy" => "[hooks]",
        "webhooks" => "[notify]",
        "production" => "an [environments.<name>] table",
        "metrics" | "measurements" | "failure_limit" => "an [analysis.<name>] table",
        "min_replicas" | "max_replicas" | "cpu_percent" | "memory_percent" => "[autoscale]",
        _ => return None,
    })
}

/// Reports a value outside a range (the value has already decoded).
fn range_error(cx: &mut Cx, span: Option<Range<usize>>, path: &str, message: String, hint: &str) {
    if let Some(span) = span {
        cx.error_at("out-of-range", &span, path, message, "out of range", hint);
    }
}

/// Reports a path that does not start with `/`.
fn check_path(cx: &mut Cx, fields: &Fields<'_>, key: &str, value: Option<&str>) {
    if let (Some(value), Some(span)) = (value, fields.value_span(key))
        && !value.starts_with('/')
    {
        cx.error_at(
            "invalid-path",
            &span,
            &join(fields.path, key),
            format!(
                "{} must start with '/', found \"{value}\"",
                shown(&join(fields.path, key))
            ),
            "not an absolute path",
            format!("write \"/{}\"", value.trim_start_matches('/')),
        );
    }
}

/// Reports a URL that is not http(s).
fn check_url(cx: &mut Cx, fields: &Fields<'_>, key: &str, value: Option<&str>) {
    if let (Some(value), Some(span)) = (value, fields.value_span(key)) {
        let rest = value
            .strip_prefix("http://")
            .or_else(|| value.strip_prefix("https://"));
        if rest.is_none_or(str::is_empty) {
            cx.error_at(
                "invalid-url",
                &span,
                &join(fields.path, key),
                format!(
                    "{} must be an http:// or https:// URL",
                    shown(&join(fields.path, key))
                ),
                "not an http(s) URL",
                "write a full URL such as \"https://hooks.example.com/ferry\"",
            );
        }
    }
}

/// Reports an empty string where a value is needed.
fn check_non_empty(cx: &mut Cx, fields: &Fields<'_>, key: &str, value: Option<&str>) {
    if let (Some(""), Some(span)) = (value, fields.value_span(key)) {
        cx.error_at(
            "invalid-value",
            &span,
            &join(fields.path, key),
            format!("{} cannot be empty", shown(&join(fields.path, key))),
            "empty",
            "give a value or remove the key",
        );
    }
}

impl Decode for Build {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let context = f.or("context", cx, ".".to_owned());
        let dockerfile = f.or("dockerfile", cx, "Dockerfile".to_owned());
        let target = f.opt("target", cx);
        let args = f.or("args", cx, BTreeMap::<String, String>::new());
        check_non_empty(cx, &f, "context", Some(&context));
        check_non_empty(cx, &f, "dockerfile", Some(&dockerfile));
        f.finish(cx);
        Some(Self {
            context,
            dockerfile,
            target,
            args,
        })
    }
}

impl Decode for Health {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let defaults = Health::new("/");
        let path: Option<String> = f.req("path", "path = \"/health\"", cx);
        let interval = f.or("interval", cx, defaults.interval);
        let timeout = f.or("timeout", cx, defaults.timeout);
        let healthy_threshold = f.or("healthy_threshold", cx, defaults.healthy_threshold);
        let unhealthy_threshold = f.or("unhealthy_threshold", cx, defaults.unhealthy_threshold);
        let start_period = f.or("start_period", cx, defaults.start_period);
        check_path(cx, &f, "path", path.as_deref());
        for (key, value) in [
            ("healthy_threshold", healthy_threshold),
            ("unhealthy_threshold", unhealthy_threshold),
        ] {
            if value == 0 {
                range_error(
                    cx,
                    f.value_span(key),
                    &join(at.path, key),
                    format!("`{}` must be at least 1", join(at.path, key)),
                    "use 1 or more",
                );
            }
        }
        if interval.as_millis() == 0 {
            range_error(
                cx,
                f.value_span("interval"),
                &join(at.path, "interval"),
                "the health check interval must be positive".into(),
                "use e.g. \"5s\"",
            );
        }
        if timeout.as_millis() == 0 {
            range_error(
                cx,
                f.value_span("timeout"),
                &join(at.path, "timeout"),
                "the health check timeout must be positive".into(),
                "use e.g. \"2s\"",
            );
        }
        if timeout > interval
            && let Some(span) = f.value_span("timeout").or_else(|| f.value_span("interval"))
        {
            cx.warn_at(
                "timeout-exceeds-interval",
                &span,
                &join(at.path, "timeout"),
                format!(
                    "the health check timeout ({timeout}) is longer than its interval ({interval})"
                ),
                "longer than the interval",
                "make the timeout shorter than the interval so probes do not overlap",
            );
        }
        f.finish(cx);
        Some(Self {
            path: path?,
            interval,
            timeout,
            healthy_threshold,
            unhealthy_threshold,
            start_period,
        })
    }
}

impl Decode for Resources {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let cpus: Option<f64> = f.opt("cpus", cx);
        let memory: Option<ByteSize> = f.opt("memory", cx);
        let pids: Option<u32> = f.opt("pids", cx);
        if cpus.is_some_and(|c| c <= 0.0) {
            range_error(
                cx,
                f.value_span("cpus"),
                &join(at.path, "cpus"),
                "`cpus` must be more than 0".into(),
                "use a fraction of cores such as 0.5, or remove the limit",
            );
        }
        // Docker refuses memory limits below 6 MiB.
        if memory.is_some_and(|m| m.bytes() < 6 << 20) {
            range_error(
                cx,
                f.value_span("memory"),
                &join(at.path, "memory"),
                "`memory` must be at least 6Mi (the smallest limit Docker accepts)".into(),
                "use e.g. \"64Mi\"",
            );
        }
        if pids == Some(0) {
            range_error(
                cx,
                f.value_span("pids"),
                &join(at.path, "pids"),
                "`pids` must be at least 1".into(),
                "use e.g. 64",
            );
        }
        f.finish(cx);
        Some(Self { cpus, memory, pids })
    }
}

/// Whether `host` is an exact host name or a one-level wildcard `*.example.com`.
fn valid_host(host: &str) -> bool {
    let name = host.strip_prefix("*.").unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

impl Decode for Route {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let hosts: Vec<String> = f.or("hosts", cx, Vec::new());
        let path_prefix = f.or("path_prefix", cx, "/".to_owned());
        let tls: Option<Tls> = f.opt("tls", cx);
        check_path(cx, &f, "path_prefix", Some(&path_prefix));
        if let Some((
            _,
            Node {
                kind: Kind::Array(items),
                ..
            },
        )) = node.lookup("hosts")
        {
            for (host, item) in hosts.iter().zip(items) {
                if !valid_host(host) {
                    cx.error_at(
                        "invalid-host",
                        &item.span,
                        &join(at.path, "hosts"),
                        format!("\"{host}\" is not a host name"),
                        "invalid host",
                        "write a lowercase host such as \"api.example.com\" or a wildcard such as \"*.example.com\"",
                    );
                }
            }
        }
        if tls.is_some()
            && hosts.is_empty()
            && let Some(span) = f.key_span("tls")
        {
            cx.error_at(
                "missing-key",
                &span,
                &join(at.path, "hosts"),
                "a route with TLS needs `hosts` to choose the certificate for".into(),
                "TLS without hosts",
                "add `hosts = [\"app.example.com\"]` to this route",
            );
        }
        f.finish(cx);
        Some(Self {
            hosts,
            path_prefix,
            tls,
        })
    }
}

impl Decode for Tls {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let cert = f.req("cert", "cert = \"certs/app.pem\"", cx);
        let key = f.req("key", "key = \"certs/app-key.pem\"", cx);
        f.finish(cx);
        Some(Self {
            cert: cert?,
            key: key?,
        })
    }
}

impl Decode for Web {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let d = Web::default();
        let port = f.or("port", cx, d.port);
        let replicas = f.or("replicas", cx, d.replicas);
        let command = f.opt("command", cx);
        let health: Option<Health> = f.opt("health", cx);
        let readiness_path: Option<String> = f.opt("readiness_path", cx);
        let drain_timeout = f.or("drain_timeout", cx, d.drain_timeout);
        let stop_timeout = f.or("stop_timeout", cx, d.stop_timeout);
        let resources = f.or("resources", cx, d.resources);
        let routes = f.or("routes", cx, Vec::new());
        if port == 0 {
            range_error(
                cx,
                f.value_span("port"),
                &join(at.path, "port"),
                "`port` must be between 1 and 65535".into(),
                "use the port the process listens on, e.g. 8080",
            );
        }
        if replicas == 0 {
            range_error(
                cx,
                f.value_span("replicas"),
                &join(at.path, "replicas"),
                "the web role needs at least 1 replica".into(),
                "use 1 or more (2 or more in production)",
            );
        }
        check_path(cx, &f, "readiness_path", readiness_path.as_deref());
        check_command(cx, &f, "command", command.as_ref());
        f.finish(cx);
        Some(Self {
            port,
            replicas,
            command,
            health,
            readiness_path,
            drain_timeout,
            stop_timeout,
            resources,
            routes,
        })
    }
}

/// Reports an empty command array (it would run nothing).
fn check_command(cx: &mut Cx, fields: &Fields<'_>, key: &str, command: Option<&Vec<String>>) {
    if let (Some(command), Some(span)) = (command, fields.value_span(key))
        && command.is_empty()
    {
        cx.error_at(
                "invalid-value",
                &span,
                &join(fields.path, key),
                format!("{} is empty", shown(&join(fields.path, key))),
                "empty command",
                "give the program and its arguments, e.g. [\"/app\", \"--serve\"], or remove the key to use the image's command",
            );
    }
}

impl Decode for Worker {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let command = f.opt("command", cx);
        let replicas = f.or("replicas", cx, 1);
        let resources = f.or("resources", cx, Resources::default());
        let stop_signal: Option<String> = f.opt("stop_signal", cx);
        let stop_timeout = f.or("stop_timeout", cx, Duration::from_secs(10));
        check_command(cx, &f, "command", command.as_ref());
        if let (Some(signal), Some(span)) = (&stop_signal, f.value_span("stop_signal"))
            && !STOP_SIGNALS.contains(&signal.as_str())
        {
            cx.error_at(
                "invalid-value",
                &span,
                &join(at.path, "stop_signal"),
                format!(
                    "{} is not a stop signal ferry knows",
                    shown(&join(at.path, "stop_signal"))
                ),
                "unknown signal",
                format!("use one of {}", STOP_SIGNALS.join(", ")),
            );
        }
        f.finish(cx);
        Some(Self {
            command,
            replicas,
            resources,
            stop_signal,
            stop_timeout,
        })
    }
}

impl Decode for Rolling {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let max_surge = f.or("max_surge", cx, 1);
        let max_unavailable = f.or("max_unavailable", cx, 0);
        if max_surge == 0
            && max_unavailable == 0
            && let Some(span) = f
                .value_span("max_surge")
                .or_else(|| f.value_span("max_unavailable"))
        {
            cx.error_at(
                    "out-of-range",
                    &span,
                    &join(at.path, "max_surge"),
                    "`max_surge` and `max_unavailable` cannot both be 0: the rollout could never progress".into(),
                    "both 0",
                    "set max_surge = 1 (zero downtime) or max_unavailable = 1",
                );
        }
        f.finish(cx);
        Some(Self {
            max_surge,
            max_unavailable,
        })
    }
}

impl Decode for SmokeCheck {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let path: Option<String> = f.req("path", "path = \"/health\"", cx);
        let status: u16 = f.or("status", cx, 200);
        let body_contains = f.opt("body_contains", cx);
        check_path(cx, &f, "path", path.as_deref());
        if !(100..=599).contains(&status) {
            range_error(
                cx,
                f.value_span("status"),
                &join(at.path, "status"),
                format!("{status} is not an HTTP status code"),
                "use a status between 100 and 599, e.g. 200",
            );
        }
        f.finish(cx);
        Some(Self {
            path: path?,
            status,
            body_contains,
        })
    }
}

impl Decode for BlueGreen {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let d = BlueGreen::default();
        let smoke = f.or("smoke", cx, d.smoke);
        let auto_promote = f.or("auto_promote", cx, d.auto_promote);
        let scale_down_delay = f.or("scale_down_delay", cx, d.scale_down_delay);
        let preview_header: Option<String> = f.opt("preview_header", cx);
        let pre_promotion_analysis = f.opt("pre_promotion_analysis", cx);
        let post_promotion_analysis = f.opt("post_promotion_analysis", cx);
        if let (Some(header), Some(span)) = (&preview_header, f.value_span("preview_header")) {
            let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            if header.is_empty() || !header.bytes().all(token) {
                cx.error_at(
                    "invalid-value",
                    &span,
                    &join(at.path, "preview_header"),
                    format!("\"{header}\" is not an HTTP header name"),
                    "invalid header name",
                    "use letters, digits and '-', e.g. \"X-Ferry-Preview\"",
                );
            }
        }
        f.finish(cx);
        Some(Self {
            smoke,
            auto_promote,
            scale_down_delay,
            preview_header,
            pre_promotion_analysis,
            post_promotion_analysis,
        })
    }
}

impl Decode for Pause {
    const EXPECTED: &'static str = "a duration or \"until-promoted\"";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        if let Kind::String(s) = &node.kind
            && s == "until-promoted"
        {
            return Some(Self::UntilPromoted);
        }
        let duration = Duration::decode(node, at, cx)?;
        Some(Self::For(duration))
    }
}

impl Decode for CanaryStep {
    const EXPECTED: &'static str = "a step table such as { weight = 20 }";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let Some(entries) = node.entries() else {
            type_error(node, at, Self::EXPECTED, cx);
            return None;
        };
        const KINDS: &[&str] = &["weight", "pause", "analysis"];
        let hint = "write exactly one of { weight = 20 }, { pause = \"5m\" }, { pause = \"until-promoted\" }, { analysis = \"name\" }";
        if entries.len() != 1 {
            cx.error_at(
                "invalid-step",
                &node.span,
                at.path,
                format!("a canary step has exactly one key, found {}", entries.len()),
                "one key per step",
                hint,
            );
            // Still check the keys so typos are reported too.
        }
        let mut result = None;
        for entry in entries {
            let path = join(at.path, &entry.key);
            let place = Place {
                path: &path,
                key_span: &entry.key_span,
            };
            let step = match entry.key.as_str() {
                "weight" => Weight::decode(&entry.value, &place, cx).map(Self::Weight),
                "pause" => Pause::decode(&entry.value, &place, cx).map(Self::Pause),
                "analysis" => String::decode(&entry.value, &place, cx).map(Self::Analysis),
                other => {
                    let hint = match did_you_mean(other, KINDS) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => hint.to_owned(),
                    };
                    cx.error_at(
                        "unknown-key",
                        &entry.key_span,
                        &path,
                        format!("unknown canary step `{other}`"),
                        "unknown step",
                        hint,
                    );
                    None
                }
            };
            result = result.or(step);
        }
        if entries.len() == 1 { result } else { None }
    }
}

impl Decode for Canary {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let steps: Option<Vec<CanaryStep>> =
            f.req("steps", "steps = [{ weight = 20 }, { pause = \"5m\" }]", cx);
        if let Some(steps) = &steps
            && steps.is_empty()
        {
            range_error(
                cx,
                f.value_span("steps"),
                &join(at.path, "steps"),
                "a canary needs at least one step".into(),
                "add steps such as [{ weight = 20 }, { pause = \"5m\" }, { weight = 50 }]",
            );
        }
        // Weights only grow: traffic moves towards the canary until promotion. Checked on
        // the written steps so that it is reported even when another step is invalid.
        if let Some((
            _,
            Node {
                kind: Kind::Array(items),
                ..
            },
        )) = node.lookup("steps")
        {
            let mut highest: Option<i64> = None;
            for (i, item) in items.iter().enumerate() {
                let Some(Entry {
                    value:
                        Node {
                            kind: Kind::Integer(w),
                            span,
                        },
                    ..
                }) = item
                    .entries()
                    .and_then(|e| e.iter().find(|e| e.key == "weight"))
                else {
                    continue;
                };
                if let Some(prev) = highest.filter(|prev| w < prev) {
                    cx.error_at(
                        "decreasing-weight",
                        span,
                        &format!("{}.steps.{i}.weight", at.path),
                        format!("canary weight {w} is lower than an earlier step's {prev}"),
                        "weight goes down",
                        format!("weights never decrease; use {prev} or more, or end the steps (the last step promotes to 100%)"),
                    );
                }
                highest = highest.max(Some(*w));
            }
        }
        f.finish(cx);
        Some(Self { steps: steps? })
    }
}

impl Decode for Strategy {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let kind = f.or("kind", cx, StrategyKind::Rolling);
        let rolling = f.or("rolling", cx, Rolling::default());
        let blue_green = f.opt("blue_green", cx);
        let canary = f.opt("canary", cx);
        let d = Strategy::default();
        let keep_warm = f.or("keep_warm", cx, d.keep_warm);
        let retain_images = f.or("retain_images", cx, d.retain_images);
        let analysis = f.opt("analysis", cx);
        if kind == StrategyKind::Canary && f.key_span("canary").is_none() {
            let span = f.value_span("kind").unwrap_or_else(|| at.key_span.clone());
            cx.error_at(
                "missing-key",
                &span,
                &join(at.path, "canary"),
                "`kind = \"canary\"` needs a `[strategy.canary]` table with its steps".into(),
                "canary without steps",
                "add [strategy.canary] with steps = [{ weight = 20 }, { pause = \"5m\" }, { weight = 50 }]",
            );
        }
        f.finish(cx);
        Some(Self {
            kind,
            rolling,
            blue_green,
            canary,
            keep_warm,
            retain_images,
            analysis,
        })
    }
}

impl Decode for Prometheus {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let url: Option<String> = f.req("url", "url = \"http://127.0.0.1:9090\"", cx);
        check_url(cx, &f, "url", url.as_deref());
        f.finish(cx);
        Some(Self { url: url? })
    }
}

impl Decode for Metric {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let name: Option<String> = f.req("name", "name = \"success-rate\"", cx);
        let kind: Option<MetricKind> = f.req("kind", "kind = \"success-rate\"", cx);
        let query: Option<String> = f.opt("query", cx);
        let max: Option<f64> = f.opt("max", cx);
        let min: Option<f64> = f.opt("min", cx);
        let max_relative: Option<f64> = f.opt("max_relative", cx);
        let allowed_increase: Option<f64> = f.opt("allowed_increase", cx);
        let critical = f.or("critical", cx, false);
        let command: Option<Vec<String>> = f.opt("command", cx);
        let local = f.or("local", cx, false);
        let url: Option<String> = f.opt("url", cx);
        let method: Option<CheckMethod> = f.opt("method", cx);
        let body: Option<String> = f.opt("body", cx);
        let status: Option<u16> = f.opt("status", cx);
        let body_contains: Option<String> = f.opt("body_contains", cx);
        let timeout: Option<Duration> = f.opt("timeout", cx);
        let bounds = ["max", "min", "max_relative", "allowed_increase"];
        let is_check = kind.is_some_and(MetricKind::is_check);
        // Keys that belong to one kind only, so a misplaced one is not silently ignored.
        let only_for: [(&str, &[MetricKind]); 8] = [
            ("command", &[MetricKind::Command]),
            ("local", &[MetricKind::Command]),
            ("url", &[MetricKind::Http]),
            ("method", &[MetricKind::Http]),
            ("body", &[MetricKind::Http]),
            ("status", &[MetricKind::Http]),
            ("body_contains", &[MetricKind::Http]),
            ("timeout", &[MetricKind::Command, MetricKind::Http]),
        ];
        if let Some(kind) = kind {
            for (key, kinds) in only_for {
                if let Some(span) = f.key_span(key)
                    && !kinds.contains(&kind)
                {
                    let wanted: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                    cx.error_at(
                        "invalid-key",
                        &span,
                        &join(at.path, key),
                        format!(
                            "`{key}` belongs to metrics of kind {}, not \"{}\"",
                            quoted(&wanted),
                            kind.as_str()
                        ),
                        "not for this kind",
                        format!("remove `{key}`, or set kind = \"{}\"", wanted[0]),
                    );
                }
            }
            if is_check {
                for key in bounds {
                    if let Some(span) = f.key_span(key) {
                        cx.error_at(
                            "invalid-key",
                            &span,
                            &join(at.path, key),
                            format!(
                                "a \"{}\" check passes or fails by itself; `{key}` has nothing to bound",
                                kind.as_str()
                            ),
                            "not for a check",
                            format!("remove `{key}`"),
                        );
                    }
                }
            }
        }
        if kind == Some(MetricKind::Command) && f.key_span("command").is_none() {
            cx.error_at(
                "missing-key",
                at.key_span,
                &join(at.path, "command"),
                "a metric of kind \"command\" needs a `command`".into(),
                "`command` is required here",
                "add `command = [\"/app\", \"selftest\"]` (exit 0 passes)",
            );
        }
        check_command(cx, &f, "command", command.as_ref());
        if kind == Some(MetricKind::Http) && f.key_span("url").is_none() {
            cx.error_at(
                "missing-key",
                at.key_span,
                &join(at.path, "url"),
                "a metric of kind \"http\" needs a `url`".into(),
                "`url` is required here",
                "add `url = \"/health\"` (a path is requested from the new revision) or a full http:// URL",
            );
        }
        if let (Some(url), Some(span)) = (&url, f.value_span("url")) {
            let valid = url.starts_with('/')
                || url
                    .strip_prefix("http://")
                    .is_some_and(|rest| !rest.is_empty());
            if !valid {
                cx.error_at(
                    "invalid-url",
                    &span,
                    &join(at.path, "url"),
                    format!("\"{url}\" is neither a path nor an http:// URL"),
                    "not a path or http:// URL",
                    "write a path such as \"/health\" (requested from the new revision) or \"http://127.0.0.1:9000/check\"; https is not supported for checks",
                );
            }
        }
        if let Some(status) = status
            && !(100..=599).contains(&status)
        {
            range_error(
                cx,
                f.value_span("status"),
                &join(at.path, "status"),
                format!("{status} is not an HTTP status code"),
                "use a code between 100 and 599, e.g. 200",
            );
        }
        if timeout.is_some_and(|t| t.as_millis() == 0) {
            range_error(
                cx,
                f.value_span("timeout"),
                &join(at.path, "timeout"),
                "`timeout` must be positive".into(),
                "use e.g. \"30s\"",
            );
        }
        if kind.is_some() && !is_check && bounds.iter().all(|b| f.key_span(b).is_none()) {
            cx.error_at(
                "missing-threshold",
                at.key_span,
                at.path,
                format!("metric {} has no threshold", name.as_deref().map_or_else(|| shown(at.path), |n| format!("\"{n}\""))),
                "nothing to judge",
                "add `min`, `max`, `max_relative` or `allowed_increase`, e.g. min = 0.99 for a success rate",
            );
        }
        if kind == Some(MetricKind::Query) && query.is_none() && f.key_span("query").is_none() {
            cx.error_at(
                "missing-key",
                at.key_span,
                &join(at.path, "query"),
                "a metric of kind \"query\" needs a PromQL `query`".into(),
                "`query` is required here",
                "add `query = \"sum(rate(http_requests_total{code!~\\\"5..\\\"}[1m]))\"`",
            );
        }
        if matches!(kind, Some(MetricKind::SuccessRate | MetricKind::ErrorRate)) {
            for (key, value) in [("min", min), ("max", max)] {
                if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                    range_error(
                        cx,
                        f.value_span(key),
                        &join(at.path, key),
                        "a rate is a fraction between 0 and 1".into(),
                        "write e.g. 0.99 for 99%",
                    );
                }
            }
        }
        if max_relative.is_some_and(|r| r <= 0.0) {
            range_error(
                cx,
                f.value_span("max_relative"),
                &join(at.path, "max_relative"),
                "`max_relative` must be more than 0".into(),
                "write e.g. 1.2 to allow at most 1.2 × the stable value",
            );
        }
        if let (Some(lo), Some(hi)) = (min, max)
            && lo > hi
        {
            range_error(
                cx,
                f.value_span("min"),
                &join(at.path, "min"),
                format!("`min` ({lo}) is above `max` ({hi}): no value can pass"),
                "make min at most max",
            );
        }
        f.finish(cx);
        Some(Self {
            name: name?,
            kind: kind?,
            query,
            max,
            min,
            max_relative,
            allowed_increase,
            critical,
            command,
            local,
            url,
            method,
            body,
            status,
            body_contains,
            timeout,
        })
    }
}

impl Decode for Analysis {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let interval: Duration = f.or("interval", cx, Duration::from_secs(30));
        let measurements: Option<u32> = f.opt("measurements", cx);
        let duration: Option<Duration> = f.opt("duration", cx);
        let failure_limit = f.or("failure_limit", cx, 0);
        let inconclusive_limit = f.or("inconclusive_limit", cx, 0);
        let min_samples = f.or("min_samples", cx, 50);
        let on_inconclusive = f.or("on_inconclusive", cx, OnInconclusive::Pause);
        let timebox = f.opt("timebox", cx);
        let provider = f.or("provider", cx, Provider::Proxy);
        let prometheus = f.opt("prometheus", cx);
        let metrics: Option<Vec<Metric>> = f.req(
            "metrics",
            "metrics = [{ name = \"success\", kind = \"success-rate\", min = 0.99 }]",
            cx,
        );
        if let (Some(_), Some(span)) = (f.key_span("measurements"), f.key_span("duration")) {
            cx.error_at(
                "conflicting-keys",
                &span,
                &join(at.path, "duration"),
                "`measurements` and `duration` both say when the analysis ends".into(),
                "conflicts with `measurements`",
                "keep only one of `measurements` and `duration`",
            );
        }
        if measurements == Some(0) {
            range_error(
                cx,
                f.value_span("measurements"),
                &join(at.path, "measurements"),
                "`measurements` must be at least 1".into(),
                "use e.g. 3",
            );
        }
        if interval.as_millis() == 0 {
            range_error(
                cx,
                f.value_span("interval"),
                &join(at.path, "interval"),
                "the analysis interval must be positive".into(),
                "use e.g. \"30s\"",
            );
        }
        if provider == Provider::Prometheus && f.key_span("prometheus").is_none() {
            let span = f
                .value_span("provider")
                .unwrap_or_else(|| at.key_span.clone());
            cx.error_at(
                "missing-key",
                &span,
                &join(at.path, "prometheus"),
                "`provider = \"prometheus\"` needs a `prometheus` table with its `url`".into(),
                "no Prometheus server given",
                "add `prometheus = { url = \"http://127.0.0.1:9090\" }`",
            );
        }
        if let Some(metrics) = &metrics {
            if metrics.is_empty() {
                range_error(
                    cx,
                    f.value_span("metrics"),
                    &join(at.path, "metrics"),
                    "an analysis needs at least one metric".into(),
                    "add e.g. { name = \"success\", kind = \"success-rate\", min = 0.99 }",
                );
            }
            if provider == Provider::Proxy {
                for (i, metric) in metrics.iter().enumerate() {
                    if metric.kind == MetricKind::Query
                        && let Some((_, value)) = node.lookup(&format!("metrics.{i}.kind"))
                    {
                        cx.error_at(
                                "invalid-value",
                                &value.span,
                                &format!("{}.metrics.{i}.kind", at.path),
                                "metrics of kind \"query\" need the prometheus provider".into(),
                                "needs Prometheus",
                                "set `provider = \"prometheus\"` with a `prometheus.url`, or use a built-in kind such as \"success-rate\"",
                            );
                    }
                }
            }
        }
        f.finish(cx);
        Some(Self {
            interval,
            measurements,
            duration,
            failure_limit,
            inconclusive_limit,
            min_samples,
            on_inconclusive,
            timebox,
            provider,
            prometheus,
            metrics: metrics?,
        })
    }
}

impl Decode for Accessory {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let image: Option<String> = f.req("image", "image = \"postgres:16\"", cx);
        let port: Option<u16> = f.opt("port", cx);
        let env = f.or("env", cx, BTreeMap::new());
        let secrets = f.or("secrets", cx, Vec::new());
        let volumes = f.or("volumes", cx, Vec::new());
        let command = f.opt("command", cx);
        check_non_empty(cx, &f, "image", image.as_deref());
        if port == Some(0) {
            range_error(
                cx,
                f.value_span("port"),
                &join(at.path, "port"),
                "`port` must be between 1 and 65535".into(),
                "use the port the accessory listens on",
            );
        }
        check_command(cx, &f, "command", command.as_ref());
        f.finish(cx);
        Some(Self {
            image: image?,
            port,
            env,
            secrets,
            volumes,
            command,
        })
    }
}

impl Decode for Hooks {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let pre_build = f.or("pre_build", cx, Vec::new());
        let pre_deploy: Vec<String> = f.or("pre_deploy", cx, Vec::new());
        let post_deploy: Vec<String> = f.or("post_deploy", cx, Vec::new());
        let timeout = f.or("timeout", cx, Hooks::default().timeout);
        for (key, commands) in [("pre_deploy", &pre_deploy), ("post_deploy", &post_deploy)] {
            if let (Some(bad), Some(span)) = (
                commands.iter().find(|c| hook_argv(c).is_none()),
                f.value_span(key),
            ) {
                cx.error_at(
                    "invalid-value",
                    &span,
                    &join(at.path, key),
                    format!(
                        "{} has a command that is empty or has unbalanced quotes: {bad:?}",
                        shown(&join(at.path, key))
                    ),
                    "bad command",
                    "write the program and its arguments, e.g. \"/app migrate --check\" (run without a shell)",
                );
            }
        }
        f.finish(cx);
        Some(Self {
            pre_build,
            pre_deploy,
            post_deploy,
            timeout,
        })
    }
}

impl Decode for Webhook {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let url: Option<String> = f.req("url", "url = \"https://hooks.example.com/ferry\"", cx);
        let events = f.or("events", cx, Vec::new());
        check_url(cx, &f, "url", url.as_deref());
        f.finish(cx);
        Some(Self { url: url?, events })
    }
}

impl Decode for Notify {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let webhooks = f.or("webhooks", cx, Vec::new());
        f.finish(cx);
        Some(Self { webhooks })
    }
}

impl Decode for Security {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let d = Security::default();
        let allow_root = f.or("allow_root", cx, d.allow_root);
        let read_only_root_fs = f.or("read_only_root_fs", cx, d.read_only_root_fs);
        let no_new_privileges = f.or("no_new_privileges", cx, d.no_new_privileges);
        let cap_add: Vec<String> = f.or("cap_add", cx, d.cap_add);
        let tmpfs: Vec<String> = f.or("tmpfs", cx, d.tmpfs);
        let user = f.opt("user", cx);
        if let Some((
            _,
            Node {
                kind: Kind::Array(items),
                ..
            },
        )) = node.lookup("tmpfs")
        {
            for (path, item) in tmpfs.iter().zip(items) {
                if !path.starts_with('/') {
                    cx.error_at(
                        "invalid-path",
                        &item.span,
                        &join(at.path, "tmpfs"),
                        format!("tmpfs mount \"{path}\" must be an absolute path"),
                        "not absolute",
                        "write e.g. \"/tmp\"",
                    );
                }
            }
        }
        f.finish(cx);
        Some(Self {
            allow_root,
            read_only_root_fs,
            no_new_privileges,
            cap_add,
            tmpfs,
            user,
        })
    }
}

impl Decode for Autoscale {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let min_replicas: u32 = f.or("min_replicas", cx, 1);
        let max_replicas: Option<u32> = f.req("max_replicas", "max_replicas = 10", cx);
        let cpu_percent: Option<u32> = f.opt("cpu_percent", cx);
        let memory_percent: Option<u32> = f.opt("memory_percent", cx);
        if min_replicas == 0 {
            range_error(
                cx,
                f.value_span("min_replicas"),
                &join(at.path, "min_replicas"),
                "`min_replicas` must be at least 1".into(),
                "use 1 or more",
            );
        }
        if let Some(max) = max_replicas.filter(|max| *max < min_replicas) {
            range_error(
                cx,
                f.value_span("max_replicas"),
                &join(at.path, "max_replicas"),
                format!("`max_replicas` ({max}) is below `min_replicas` ({min_replicas})"),
                "make max_replicas at least min_replicas",
            );
        }
        for key in ["cpu_percent", "memory_percent"] {
            let value = if key == "cpu_percent" {
                cpu_percent
            } else {
                memory_percent
            };
            if value == Some(0) {
                range_error(
                    cx,
                    f.value_span(key),
                    &join(at.path, key),
                    format!("`{key}` must be at least 1"),
                    "use a target utilisation such as 70",
                );
            }
        }
        if cpu_percent.is_none()
            && memory_percent.is_none()
            && f.key_span("cpu_percent").is_none()
            && f.key_span("memory_percent").is_none()
        {
            cx.error_at(
                "missing-key",
                at.key_span,
                &join(at.path, "cpu_percent"),
                "autoscaling needs a target: `cpu_percent` or `memory_percent`".into(),
                "no target utilisation",
                "add `cpu_percent = 70`",
            );
        }
        f.finish(cx);
        Some(Self {
            min_replicas,
            max_replicas: max_replicas?,
            cpu_percent,
            memory_percent,
        })
    }
}

impl Decode for CheckConfig {
    const EXPECTED: &'static str = "a table";

    fn decode(node: &Node, at: &Place<'_>, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, at, cx)?;
        let disable = f.or("disable", cx, Vec::new());
        let severity = f.or("severity", cx, BTreeMap::new());
        let production_namespaces = f.or("production_namespaces", cx, Vec::new());
        f.finish(cx);
        Some(Self {
            disable,
            severity,
            production_namespaces,
        })
    }
}

/// Names that suggest a secret value was put in plain `env`.
fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "API_KEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
    ]
    .iter()
    .any(|needle| upper.contains(needle))
}

/// Decodes a whole spec (base, or base merged with an overlay).
pub(crate) fn decode_spec(root: &Node, cx: &mut Cx) -> Option<Spec> {
    let top = 0..0;
    let at = Place {
        path: "",
        key_span: &top,
    };
    let mut f = Fields::new(root, &at, cx)?;
    let app: Option<AppName> = f.req("app", "app = \"my-app\"", cx);
    let build: Option<Build> = f.opt("build", cx);
    let image: Option<String> = f.opt("image", cx);
    let web: Option<Web> = f.opt("web", cx);
    let workers: BTreeMap<RoleName, Worker> = f.or("workers", cx, BTreeMap::new());
    let env: BTreeMap<EnvVarName, String> = f.or("env", cx, BTreeMap::new());
    let secrets: Vec<EnvVarName> = f.or("secrets", cx, Vec::new());
    let strategy: Strategy = f.or("strategy", cx, Strategy::default());
    let analysis: BTreeMap<String, Analysis> = f.or("analysis", cx, BTreeMap::new());
    let accessories = f.or("accessories", cx, BTreeMap::new());
    let hooks = f.or("hooks", cx, Hooks::default());
    let notify = f.or("notify", cx, Notify::default());
    let security = f.or("security", cx, Security::default());
    let autoscale: Option<Autoscale> = f.opt("autoscale", cx);
    let check = f.or("check", cx, CheckConfig::default());

    match (f.key_span("build"), f.key_span("image")) {
        (Some(_), Some(image_span)) => cx.error_at(
            "conflicting-keys",
            &image_span,
            "image",
            "`build` and `image` are both set".into(),
            "conflicts with `build`",
            "keep `build` to build from a Dockerfile, or `image` to deploy a prebuilt image, not both",
        ),
        // Not an error: `ferry deploy --image REF` supplies the image (and `ferry build`,
        // `ferry run` and a deploy without --image say so clearly).
        (None, None) => cx.warn_at(
            "no-image",
            &top,
            "build",
            "the spec has neither `build` nor `image`: only `ferry deploy --image REF` can deploy it".into(),
            "nothing to build or deploy",
            "add `[build]` (with context = \".\") to build from a Dockerfile, or `image = \"registry/app:tag\"`",
        ),
        _ => {}
    }
    check_non_empty(cx, &f, "image", image.as_deref());

    if web.is_none()
        && f.key_span("web").is_none()
        && workers.is_empty()
        && f.key_span("workers").is_none()
    {
        cx.error_at(
            "missing-key",
            &top,
            "web",
            "the spec has no role to run: neither `[web]` nor `[workers.<name>]`".into(),
            "nothing to run",
            "add `[web]` with `port = 8080` for a service behind the proxy",
        );
    }

    if strategy.kind != StrategyKind::Rolling
        && web.is_none()
        && f.key_span("web").is_none()
        && let Some((_, kind)) = root.lookup("strategy.kind")
    {
        cx.error_at(
            "invalid-value",
            &kind.span,
            "strategy.kind",
            format!(
                "the {} strategy shifts traffic, which needs a `[web]` role",
                strategy.kind.as_str()
            ),
            "needs a web role",
            "add `[web]`, or use kind = \"rolling\"",
        );
    }

    // Canary analysis steps must name a defined analysis. Checked on the written steps
    // so that it is reported even when another step is invalid.
    let mut used = Vec::new();
    let defined: Vec<&str> = match root.lookup("analysis") {
        Some((_, node)) => node
            .entries()
            .unwrap_or_default()
            .iter()
            .map(|e| e.key.as_str())
            .collect(),
        None => Vec::new(),
    };
    if let Some((
        _,
        Node {
            kind: Kind::Array(steps),
            ..
        },
    )) = root.lookup("strategy.canary.steps")
    {
        for (i, step) in steps.iter().enumerate() {
            let Some(Entry {
                value:
                    Node {
                        kind: Kind::String(name),
                        span,
                    },
                ..
            }) = step
                .entries()
                .and_then(|e| e.iter().find(|e| e.key == "analysis"))
            else {
                continue;
            };
            used.push(name.clone());
            if defined.contains(&name.as_str()) {
                continue;
            }
            let hint = match did_you_mean(name, &defined) {
                Some(close) => format!("did you mean \"{close}\"?"),
                None if defined.is_empty() => format!("define it in an [analysis.{name}] table"),
                None => format!(
                    "define [analysis.{name}], or use one of: {}",
                    quoted(&defined)
                ),
            };
            cx.error_at(
                "undefined-analysis",
                span,
                &format!("strategy.canary.steps.{i}.analysis"),
                format!("canary step runs analysis \"{name}\", which is not defined"),
                "no such analysis",
                hint,
            );
        }
    }
    // The other places that name an analysis: background, blue-green before and after
    // the switch.
    for (key, what) in [
        ("strategy.analysis", "background analysis"),
        (
            "strategy.blue_green.pre_promotion_analysis",
            "pre-promotion analysis",
        ),
        (
            "strategy.blue_green.post_promotion_analysis",
            "post-promotion analysis",
        ),
    ] {
        let Some((
            _,
            Node {
                kind: Kind::String(name),
                span,
            },
        )) = root.lookup(key)
        else {
            continue;
        };
        used.push(name.clone());
        if defined.contains(&name.as_str()) {
            continue;
        }
        let hint = match did_you_mean(name, &defined) {
            Some(close) => format!("did you mean \"{close}\"?"),
            None if defined.is_empty() => format!("define it in an [analysis.{name}] table"),
            None => format!(
                "define [analysis.{name}], or use one of: {}",
                quoted(&defined)
            ),
        };
        cx.error_at(
            "undefined-analysis",
            span,
            key,
            format!("{what} \"{name}\" is not defined"),
            "no such analysis",
            hint,
        );
    }
    for name in analysis.keys() {
        if !used.contains(name)
            && let Some((span, _)) = root.lookup(&format!("analysis.{name}"))
        {
            cx.warn_at(
                "unused-analysis",
                &span,
                &format!("analysis.{name}"),
                format!("analysis \"{name}\" is never run"),
                "unused",
                format!("add {{ analysis = \"{name}\" }} to strategy.canary.steps, name it in strategy.analysis or strategy.blue_green.pre_promotion_analysis/post_promotion_analysis, or remove it"),
            );
        }
    }

    for name in &secrets {
        if env.contains_key(name)
            && let Some((span, _)) = root.lookup(&format!("env.{name}"))
        {
            cx.error_at(
                "duplicate-name",
                &span,
                &format!("env.{name}"),
                format!("`{name}` is both a plain env variable and a secret"),
                "also listed in `secrets`",
                "keep it only in `secrets` (values never belong in ferry.toml)",
            );
        }
    }
    for (name, value) in &env {
        if looks_secret(name.as_str())
            && !value.is_empty()
            && let Some((span, _)) = root.lookup(&format!("env.{name}"))
        {
            cx.warn_at(
                "plaintext-secret",
                &span,
                &format!("env.{name}"),
                format!("`{name}` looks like a secret but is in plain `env`"),
                "plain-text value",
                format!(
                    "move it to `secrets = [\"{name}\"]` and set it with `ferry secrets set {name}`"
                ),
            );
        }
    }

    f.finish(cx);
    Some(Spec {
        app: app?,
        build,
        image,
        web,
        workers,
        env,
        secrets,
        strategy,
        analysis,
        accessories,
        hooks,
        notify,
        security,
        autoscale,
        check,
    })
}
