//! The resolved app spec: what a `ferry.toml` means once parsed, validated and merged with
//! an environment overlay. Every field has a documented default, so consumers never guess.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::names::{AppName, EnvVarName, RoleName, VolumeMount};
use crate::units::{ByteSize, Duration, Weight};

/// The app spec, resolved for one environment (or the base when none is chosen).
///
/// Exactly one of `build` and `image` is set. Secret values never appear here, only names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The application's name (a DNS label); names images, containers and services.
    pub app: AppName,
    /// Build the image from a Dockerfile. Exclusive with `image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// Deploy a prebuilt image reference (`registry/name:tag`). Exclusive with `build`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The web role: the process behind ferry's proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<Web>,
    /// Other roles: containers rolled with each release but not proxied.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub workers: BTreeMap<RoleName, Worker>,
    /// Plain configuration passed as environment variables to every role.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<EnvVarName, String>,
    /// Names of secrets given to every role as environment variables; values live in
    /// ferry's encrypted store or the deploying environment, never in this file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<EnvVarName>,
    /// How a new release replaces the running one.
    #[serde(default)]
    pub strategy: Strategy,
    /// Named analyses that canary steps run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub analysis: BTreeMap<String, Analysis>,
    /// Long-lived dependencies (database, cache) started once and never rolled.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub accessories: BTreeMap<RoleName, Accessory>,
    /// Shell commands run around builds and deploys.
    #[serde(default)]
    pub hooks: Hooks,
    /// Where deploy events are announced.
    #[serde(default)]
    pub notify: Notify,
    /// Container hardening; every relaxation is explicit.
    #[serde(default)]
    pub security: Security,
    /// Horizontal autoscaling of the web role (rendered as a Kubernetes HPA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<Autoscale>,
    /// Configuration of `ferry check`.
    #[serde(default)]
    pub check: CheckConfig,
}

/// How to build the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// The build context directory, relative to ferry.toml. Default `"."`.
    #[serde(default = "default_context")]
    pub context: String,
    /// The Dockerfile, relative to the context. Default `"Dockerfile"`.
    #[serde(default = "default_dockerfile")]
    pub dockerfile: String,
    /// The multi-stage target to build. Default: the last stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Build arguments (`ARG`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
}

fn default_context() -> String {
    ".".to_owned()
}
fn default_dockerfile() -> String {
    "Dockerfile".to_owned()
}

impl Default for Build {
    fn default() -> Self {
        Self {
            context: default_context(),
            dockerfile: default_dockerfile(),
            target: None,
            args: BTreeMap::new(),
        }
    }
}

/// The web role: served through ferry's proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Web {
    /// The port the process listens on inside the container. Default 8080.
    #[serde(default = "default_port")]
    pub port: u16,
    /// How many containers run. Default 1.
    #[serde(default = "default_one")]
    pub replicas: u32,
    /// Overrides the image's command (exec form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// The HTTP health check. None means no health check (production policy warns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// A path answering 2xx only when the instance should get traffic. Default: the
    /// health path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_path: Option<String>,
    /// How long in-flight requests may finish after an instance leaves the pool. Default 30s.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout: Duration,
    /// How long between SIGTERM and SIGKILL. Default 10s.
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout: Duration,
    /// Resource limits per container.
    #[serde(default)]
    pub resources: Resources,
    /// Host and path routes served by the proxy. Empty: every request is routed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
}

fn default_port() -> u16 {
    8080
}
fn default_one() -> u32 {
    1
}
fn default_drain_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_stop_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Default for Web {
    fn default() -> Self {
        Self {
            port: default_port(),
            replicas: 1,
            command: None,
            health: None,
            readiness_path: None,
            drain_timeout: default_drain_timeout(),
            stop_timeout: default_stop_timeout(),
            resources: Resources::default(),
            routes: Vec::new(),
        }
    }
}

impl Web {
    /// The path that decides whether an instance gets traffic: `readiness_path`, else the
    /// health path.
    pub fn readiness(&self) -> Option<&str> {
        self.readiness_path
            .as_deref()
            .or(self.health.as_ref().map(|h| h.path.as_str()))
    }
}

/// An HTTP health check: healthy when `path` answers 2xx within `timeout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// The path probed, starting with `/`. Required.
    pub path: String,
    /// Time between probes. Default 5s.
    #[serde(default = "default_health_interval")]
    pub interval: Duration,
    /// How long one probe may take. Default 2s.
    #[serde(default = "default_health_timeout")]
    pub timeout: Duration,
    /// Consecutive successes before an instance counts as healthy. Default 1.
    #[serde(default = "default_one")]
    pub healthy_threshold: u32,
    /// Consecutive failures before an instance counts as unhealthy. Default 3.
    #[serde(default = "default_unhealthy")]
    pub unhealthy_threshold: u32,
    /// Grace time after start during which failures do not count. Default 0s.
    #[serde(default)]
    pub start_period: Duration,
}

fn default_health_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_health_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_unhealthy() -> u32 {
    3
}

impl Health {
    /// A health check on `path` with the default timings.
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            interval: default_health_interval(),
            timeout: default_health_timeout(),
            healthy_threshold: 1,
            unhealthy_threshold: default_unhealthy(),
            start_period: Duration::default(),
        }
    }
}

/// Resource limits of one container. Unset means unlimited (production policy warns).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU limit in cores (e.g. 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Memory limit (e.g. "256Mi").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    /// Maximum number of processes/threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u32>,
}

impl Resources {
    /// Whether CPU, memory and pids are all limited.
    pub fn is_fully_limited(&self) -> bool {
        self.cpus.is_some() && self.memory.is_some() && self.pids.is_some()
    }
}

/// A route: requests matching one of `hosts` (any host when empty) and `path_prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Exact hosts (`"api.example.com"`) or one-level wildcards (`"*.example.com"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// The path prefix matched, starting with `/`. Default `"/"`.
    #[serde(default = "default_path_prefix")]
    pub path_prefix: String,
    /// Serve these hosts over TLS with this certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
}

fn default_path_prefix() -> String {
    "/".to_owned()
}

/// A TLS certificate and key (PEM files, relative to ferry.toml).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// The certificate chain (PEM).
    pub cert: String,
    /// The private key (PEM).
    pub key: String,
}

/// A worker role: rolled with each release, not proxied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Worker {
    /// The command (exec form). Default: the image's command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// How many containers run. Default 1.
    #[serde(default = "default_one")]
    pub replicas: u32,
    /// Resource limits per container.
    #[serde(default)]
    pub resources: Resources,
    /// The signal that asks a worker to stop (e.g. `"SIGINT"`, `"SIGQUIT"`). Default: the
    /// image's stop signal (SIGTERM unless the image says otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// How long between the stop signal and SIGKILL. Default 10s.
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout: Duration,
}

/// The stop signals a worker may name.
pub const STOP_SIGNALS: [&str; 8] = [
    "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGKILL",
];

/// The rollout strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Strategy {
    /// Which strategy runs. Default `"rolling"`.
    #[serde(default)]
    pub kind: StrategyKind,
    /// Settings of the rolling strategy.
    #[serde(default)]
    pub rolling: Rolling,
    /// Settings of the blue-green strategy (defaults when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreen>,
    /// Settings of the canary strategy; required when `kind = "canary"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// Rolling and canary: how long the old revision keeps running, out of traffic, after
    /// the new one is promoted, so `ferry rollback` is an instant switch back. Default
    /// "0s" (stopped at once). With rolling, every old replica keeps running until then,
    /// so the update needs room for both sets. Blue-green uses `scale_down_delay`.
    #[serde(default = "default_keep_warm")]
    pub keep_warm: Duration,
    /// How many revisions' images (per app and environment) the daemon keeps after a
    /// successful rollout; older images that ferry built for the app are removed, never
    /// one a container uses. Default 5; 0 keeps every image.
    #[serde(default = "default_retain_images")]
    pub retain_images: u32,
    /// Background analysis: the named `[analysis.<name>]` runs during the whole rollout,
    /// from its start until promotion; a failure rolls back at any step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<String>,
}

fn default_keep_warm() -> Duration {
    Duration::from_secs(0)
}

fn default_retain_images() -> u32 {
    5
}

impl Default for Strategy {
    fn default() -> Self {
        Self {
            kind: StrategyKind::default(),
            rolling: Rolling::default(),
            blue_green: None,
            canary: None,
            keep_warm: default_keep_warm(),
            retain_images: default_retain_images(),
            analysis: None,
        }
    }
}

/// Which rollout strategy runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyKind {
    /// Replace instances a few at a time.
    #[default]
    Rolling,
    /// Start the full new set, smoke-test it, switch all traffic at once.
    BlueGreen,
    /// Shift traffic step by step, judged by analyses.
    Canary,
}

impl StrategyKind {
    /// The spelling used in ferry.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rolling => "rolling",
            Self::BlueGreen => "blue-green",
            Self::Canary => "canary",
        }
    }
}

/// Rolling update limits, in instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rolling {
    /// How many extra instances may run above `replicas` during the update. Default 1.
    #[serde(default = "default_one")]
    pub max_surge: u32,
    /// How many instances may be missing below `replicas` during the update. Default 0.
    #[serde(default)]
    pub max_unavailable: u32,
}

impl Default for Rolling {
    fn default() -> Self {
        Self {
            max_surge: 1,
            max_unavailable: 0,
        }
    }
}

/// Blue-green settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlueGreen {
    /// Checks run against the new (preview) set before traffic switches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub smoke: Vec<SmokeCheck>,
    /// Switch traffic as soon as the smoke checks pass. Default true; false waits for
    /// `ferry promote`.
    #[serde(default = "default_true")]
    pub auto_promote: bool,
    /// How long the old set stays warm after the switch for instant rollback. Default 5m.
    #[serde(default = "default_scale_down_delay")]
    pub scale_down_delay: Duration,
    /// A request header that routes a request to the preview set (e.g. "X-Ferry-Preview").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_header: Option<String>,
    /// The named `[analysis.<name>]` judges the new set before the switch (after the smoke
    /// checks); a failure rolls back without the switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_promotion_analysis: Option<String>,
    /// The named `[analysis.<name>]` judges the new set after the switch, while the old set
    /// is still warm; a failure switches traffic back to the old set at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_promotion_analysis: Option<String>,
}

fn default_true() -> bool {
    true
}
fn default_scale_down_delay() -> Duration {
    Duration::from_secs(300)
}

impl Default for BlueGreen {
    fn default() -> Self {
        Self {
            smoke: Vec::new(),
            auto_promote: true,
            scale_down_delay: default_scale_down_delay(),
            preview_header: None,
            pre_promotion_analysis: None,
            post_promotion_analysis: None,
        }
    }
}

/// One smoke check: GET `path` on the preview set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmokeCheck {
    /// The path requested, starting with `/`.
    pub path: String,
    /// The expected status code. Default 200.
    #[serde(default = "default_status")]
    pub status: u16,
    /// Text the response body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
}

fn default_status() -> u16 {
    200
}

/// Canary settings: the ordered steps of a canary rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    /// Steps in order. Weights never decrease; reaching the end promotes to 100%.
    pub steps: Vec<CanaryStep>,
}

/// One canary step; written as a table with exactly one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CanaryStep {
    /// Send this share of traffic to the canary: `{ weight = 20 }`.
    Weight(Weight),
    /// Wait: `{ pause = "5m" }` or `{ pause = "until-promoted" }`.
    Pause(Pause),
    /// Run the named analysis; failure rolls back: `{ analysis = "default" }`.
    Analysis(String),
}

/// How long a pause step waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// A fixed time.
    For(Duration),
    /// Until `ferry promote`.
    UntilPromoted,
}

impl Serialize for Pause {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::For(d) => d.serialize(serializer),
            Self::UntilPromoted => serializer.serialize_str("until-promoted"),
        }
    }
}

impl<'de> Deserialize<'de> for Pause {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(deserializer)?;
        if s == "until-promoted" {
            Ok(Self::UntilPromoted)
        } else {
            s.parse().map(Self::For).map_err(serde::de::Error::custom)
        }
    }
}

impl JsonSchema for Pause {
    fn schema_name() -> Cow<'static, str> {
        "Pause".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let duration = generator.subschema_for::<Duration>();
        json_schema!({
            "description": "A duration, or \"until-promoted\" to wait for `ferry promote`.",
            "anyOf": [ duration, { "const": "until-promoted" } ]
        })
    }
}

/// A named analysis: measurements of metrics compared with thresholds, repeated every
/// `interval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Analysis {
    /// Time between measurements. Default 30s.
    #[serde(default = "default_analysis_interval")]
    pub interval: Duration,
    /// Take this many measurements, then conclude. Exclusive with `duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurements: Option<u32>,
    /// Measure for this long, then conclude. Exclusive with `measurements`. When neither is
    /// set, 3 measurements are taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    /// Failed measurements tolerated before the analysis fails. Default 0.
    #[serde(default)]
    pub failure_limit: u32,
    /// Inconclusive measurements tolerated before `on_inconclusive` applies. Default 0.
    #[serde(default)]
    pub inconclusive_limit: u32,
    /// Requests the canary must have served in a measurement for it to count; fewer makes
    /// the measurement inconclusive. Default 50.
    #[serde(default = "default_min_samples")]
    pub min_samples: u64,
    /// What happens when the analysis is inconclusive. Default `"pause"`.
    #[serde(default)]
    pub on_inconclusive: OnInconclusive,
    /// Upper bound on the whole analysis; when it ends without a decision (e.g. too little
    /// traffic), `on_inconclusive` applies. Default: 10 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timebox: Option<Duration>,
    /// Where metrics come from. Default `"proxy"` (ferry's own proxy).
    #[serde(default)]
    pub provider: Provider,
    /// Prometheus connection; required when `provider = "prometheus"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<Prometheus>,
    /// The metrics judged. At least one.
    pub metrics: Vec<Metric>,
}

impl Analysis {
    /// How many measurements the analysis takes: `measurements`, else `duration` divided
    /// by `interval` (rounded up, at least 1), else 3.
    pub fn planned_measurements(&self) -> u32 {
        match (self.measurements, self.duration) {
            (Some(n), _) => n,
            (None, Some(d)) => {
                let interval = self.interval.as_millis().max(1);
                u32::try_from(d.as_millis().div_ceil(interval))
                    .unwrap_or(u32::MAX)
                    .max(1)
            }
            (None, None) => 3,
        }
    }
}

fn default_analysis_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_min_samples() -> u64 {
    50
}

/// What an inconclusive analysis does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnInconclusive {
    /// Pause the rollout and wait for a human.
    #[default]
    Pause,
    /// Roll back.
    Rollback,
    /// Carry on as if it had passed.
    Promote,
}

/// Where analysis metrics come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// ferry's own proxy, which sees every request to both revisions.
    #[default]
    Proxy,
    /// A Prometheus server queried with PromQL.
    Prometheus,
}

/// A Prometheus server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Prometheus {
    /// Base URL, e.g. `"http://127.0.0.1:9090"`.
    pub url: String,
}

/// One metric and its thresholds. A measurement fails when any bound is crossed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    /// A name for reports.
    pub name: String,
    /// What is measured.
    pub kind: MetricKind,
    /// The PromQL query; required for `kind = "query"`, which needs the prometheus provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Absolute upper bound (e.g. p95 latency in seconds, error rate as a fraction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Absolute lower bound (e.g. success rate 0.99).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Upper bound relative to the stable revision: 1.2 means at most 1.2 × stable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_relative: Option<f64>,
    /// Largest allowed absolute increase over the stable revision (e.g. 0.01 error rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_increase: Option<f64>,
    /// A failed measurement of a critical metric fails the analysis at once. Default false.
    #[serde(default)]
    pub critical: bool,
    /// `kind = "command"`: the program and its arguments (exec form); exit 0 passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// `kind = "command"`: run on the daemon's host instead of in a one-off container of
    /// the new revision's image. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local: bool,
    /// `kind = "http"`: an `http://` URL, or a path starting with `/` requested from a
    /// replica of the new revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `kind = "http"`: the request method. Default `"GET"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<CheckMethod>,
    /// `kind = "http"`: the request body (with `method = "POST"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// `kind = "http"`: the expected status code. Default 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `kind = "http"`: text the response body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// `kind = "command"` or `"http"`: how long one run may take before it fails.
    /// Default 60s for a command, 10s for an HTTP call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// The method of an HTTP check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum CheckMethod {
    /// GET.
    #[default]
    Get,
    /// POST.
    Post,
}

impl CheckMethod {
    /// The method as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// What a metric measures. Rates are fractions in 0..=1, latencies are seconds,
/// throughput is requests per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MetricKind {
    /// Share of responses that are not 5xx.
    SuccessRate,
    /// Share of responses that are 5xx.
    ErrorRate,
    /// Median latency.
    LatencyP50,
    /// 95th percentile latency.
    LatencyP95,
    /// 99th percentile latency.
    LatencyP99,
    /// Requests per second.
    Throughput,
    /// A custom PromQL query.
    Query,
    /// A command whose exit code decides (0 passes): a check, not a measurement.
    Command,
    /// An HTTP call whose status (and body) decides: a check, not a measurement.
    Http,
}

impl MetricKind {
    /// The spelling used in ferry.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SuccessRate => "success-rate",
            Self::ErrorRate => "error-rate",
            Self::LatencyP50 => "latency-p50",
            Self::LatencyP95 => "latency-p95",
            Self::LatencyP99 => "latency-p99",
            Self::Throughput => "throughput",
            Self::Query => "query",
            Self::Command => "command",
            Self::Http => "http",
        }
    }

    /// Whether this kind is a check that passes or fails by itself (no thresholds).
    pub fn is_check(self) -> bool {
        matches!(self, Self::Command | Self::Http)
    }
}

/// A long-lived dependency (database, cache): started once, never rolled, not proxied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Accessory {
    /// The image reference. Required.
    pub image: String,
    /// The port it listens on, reachable by the app at `<name>:<port>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Plain environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<EnvVarName, String>,
    /// Secret names given as environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<EnvVarName>,
    /// Named volumes, `"name:/path"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeMount>,
    /// Overrides the image's command (exec form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
}

/// Commands run around a build and a deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// Shell commands (`sh -c`, in the directory of ferry.toml) run before `ferry build`
    /// builds the image; a failure stops the build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_build: Vec<String>,
    /// Commands run in order, each once in a one-off container of the new image (same
    /// env, secrets and network as the app), before any traffic moves; a non-zero exit
    /// aborts the deploy. Split into words like a shell would, but run without a shell.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_deploy: Vec<String>,
    /// Commands run like `pre_deploy` after the new revision is fully live; a failure is
    /// recorded and notified but rolls nothing back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_deploy: Vec<String>,
    /// How long one `pre_deploy` or `post_deploy` command may run. Default 5m.
    #[serde(default = "default_hook_timeout")]
    pub timeout: Duration,
}

fn default_hook_timeout() -> Duration {
    Duration::from_secs(300)
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            pre_build: Vec::new(),
            pre_deploy: Vec::new(),
            post_deploy: Vec::new(),
            timeout: default_hook_timeout(),
        }
    }
}

/// The program and arguments of a `pre_deploy`/`post_deploy` command: its words, split
/// like a POSIX shell splits them (quotes and backslashes), with no shell involved.
/// `None` when the quoting is unbalanced or there is no word.
pub fn hook_argv(command: &str) -> Option<Vec<String>> {
    shlex::split(command).filter(|words| !words.is_empty())
}

/// Notifications.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// Webhooks receiving a JSON POST per event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<Webhook>,
}

/// A webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// The URL (http or https).
    pub url: String,
    /// Events sent. Empty: all events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<NotifyEvent>,
}

/// Events a webhook can subscribe to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyEvent {
    /// A build finished (successfully or not).
    BuildFinished,
    /// A deploy started.
    DeployStarted,
    /// A deploy completed: the new revision is fully live.
    DeploySucceeded,
    /// A deploy failed.
    DeployFailed,
    /// A rollout paused (a pause step, or an inconclusive analysis).
    RolloutPaused,
    /// A rollout was promoted by hand.
    RolloutPromoted,
    /// A rollout was aborted by hand.
    RolloutAborted,
    /// An analysis failed.
    AnalysisFailed,
    /// A rollback started (automatic or by hand).
    RollbackStarted,
    /// A rollback completed.
    RollbackSucceeded,
    /// A step of the rollout started (`step` and `steps` say which).
    StepStarted,
    /// A step of the rollout finished.
    StepFinished,
    /// The traffic split between stable and new changed (`weights`).
    WeightChanged,
    /// An analysis reached a verdict, passing or not (`verdict`, `reason`).
    AnalysisVerdict,
    /// A paused rollout goes on (`ferry resume`, `ferry promote`, or a pause that ended).
    RolloutResumed,
    /// A `pre_deploy` or `post_deploy` command failed (`reason`: its exit code and output).
    HookFailed,
}

impl NotifyEvent {
    /// Every event, in the order documented.
    pub const ALL: [Self; 16] = [
        Self::BuildFinished,
        Self::DeployStarted,
        Self::DeploySucceeded,
        Self::DeployFailed,
        Self::RolloutPaused,
        Self::RolloutPromoted,
        Self::RolloutAborted,
        Self::AnalysisFailed,
        Self::RollbackStarted,
        Self::RollbackSucceeded,
        Self::StepStarted,
        Self::StepFinished,
        Self::WeightChanged,
        Self::AnalysisVerdict,
        Self::RolloutResumed,
        Self::HookFailed,
    ];

    /// The spelling used in ferry.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BuildFinished => "build-finished",
            Self::DeployStarted => "deploy-started",
            Self::DeploySucceeded => "deploy-succeeded",
            Self::DeployFailed => "deploy-failed",
            Self::RolloutPaused => "rollout-paused",
            Self::RolloutPromoted => "rollout-promoted",
            Self::RolloutAborted => "rollout-aborted",
            Self::AnalysisFailed => "analysis-failed",
            Self::RollbackStarted => "rollback-started",
            Self::RollbackSucceeded => "rollback-succeeded",
            Self::StepStarted => "step-started",
            Self::StepFinished => "step-finished",
            Self::WeightChanged => "weight-changed",
            Self::AnalysisVerdict => "analysis-verdict",
            Self::RolloutResumed => "rollout-resumed",
            Self::HookFailed => "hook-failed",
        }
    }
}

/// Container hardening. The defaults are the hardened choice; each field relaxes one thing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// Allow the container to run as root. Default false.
    #[serde(default)]
    pub allow_root: bool,
    /// Mount the root filesystem read-only. Default true.
    #[serde(default = "default_true")]
    pub read_only_root_fs: bool,
    /// Set no-new-privileges. Default true.
    #[serde(default = "default_true")]
    pub no_new_privileges: bool,
    /// Linux capabilities added back (all are dropped), e.g. `["NET_BIND_SERVICE"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Writable tmpfs mounts when the root filesystem is read-only. Default `["/tmp"]`.
    #[serde(default = "default_tmpfs")]
    pub tmpfs: Vec<String>,
    /// The user to run as (`"uid"` or `"uid:gid"`). Default: the image's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

fn default_tmpfs() -> Vec<String> {
    vec!["/tmp".to_owned()]
}

impl Default for Security {
    fn default() -> Self {
        Self {
            allow_root: false,
            read_only_root_fs: true,
            no_new_privileges: true,
            cap_add: Vec::new(),
            tmpfs: default_tmpfs(),
            user: None,
        }
    }
}

/// Horizontal autoscaling of the web role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Autoscale {
    /// Fewest replicas. Default 1.
    #[serde(default = "default_one")]
    pub min_replicas: u32,
    /// Most replicas. Required, at least `min_replicas`.
    pub max_replicas: u32,
    /// Target average CPU utilisation in percent of the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<u32>,
    /// Target average memory utilisation in percent of the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_percent: Option<u32>,
}

/// Severity of a problem or a check finding.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Informational.
    Info,
    /// Worth fixing; an error under `--strict`.
    Warning,
    /// Must be fixed.
    Error,
}

impl Severity {
    /// The spelling used in ferry.toml and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// Configuration of `ferry check`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// Rule ids never reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disable: Vec<String>,
    /// Severity overrides per rule id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub severity: BTreeMap<String, Severity>,
    /// Kubernetes namespaces held to the production policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub production_namespaces: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(measurements: Option<u32>, duration: Option<u64>) -> Analysis {
        Analysis {
            interval: Duration::from_secs(30),
            measurements,
            duration: duration.map(Duration::from_secs),
            failure_limit: 0,
            inconclusive_limit: 0,
            min_samples: 50,
            on_inconclusive: OnInconclusive::Pause,
            timebox: None,
            provider: Provider::Proxy,
            prometheus: None,
            metrics: Vec::new(),
        }
    }

    #[test]
    fn planned_measurements_follow_count_then_duration_then_default() {
        assert_eq!(analysis(Some(7), None).planned_measurements(), 7);
        assert_eq!(analysis(None, Some(300)).planned_measurements(), 10);
        assert_eq!(analysis(None, Some(301)).planned_measurements(), 11);
        assert_eq!(analysis(None, Some(1)).planned_measurements(), 1);
        assert_eq!(analysis(None, None).planned_measurements(), 3);
    }

    #[test]
    fn readiness_falls_back_to_the_health_path() {
        let mut web = Web::default();
        assert_eq!(web.readiness(), None);
        web.health = Some(Health::new("/health"));
        assert_eq!(web.readiness(), Some("/health"));
        web.readiness_path = Some("/ready".into());
        assert_eq!(web.readiness(), Some("/ready"));
    }
}
