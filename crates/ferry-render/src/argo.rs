//! Argo's custom resources, typed (k8s-openapi has no CRDs): Argo Rollouts' `Rollout` and
//! `AnalysisTemplate` translated from ferry's strategy and analyses, and Argo CD
//! `Application`s, one per environment.
//!
//! Translation of analyses: each ferry metric bound becomes one Argo metric with a
//! Prometheus provider running the same PromQL ferry's analysis would (see
//! [`crate::metrics`]), the canary and stable revisions being the pods' template hashes.
//! `min_samples` becomes a metric that is inconclusive (neither success nor failure) while
//! the canary has served too few requests, so Argo pauses like ferry does by default.

use std::collections::BTreeMap;

use ferry_spec::{Analysis, CanaryStep, MetricKind, Pause, StrategyKind};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use crate::app::{App, secs};
use crate::metrics::{self, Selector};
use crate::{Error, Rendered, yaml};

/// `argoproj.io/v1alpha1`, the API group and version of every Argo resource rendered.
const API_VERSION: &str = "argoproj.io/v1alpha1";

/// An Argo Rollouts `Rollout`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Rollout {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: RolloutSpec,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RolloutSpec {
    pub replicas: i32,
    pub revision_history_limit: i32,
    pub progress_deadline_seconds: i32,
    pub selector: LabelSelector,
    pub template: PodTemplateSpec,
    pub strategy: RolloutStrategy,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RolloutStrategy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStrategy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreenStrategy>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CanaryStrategy {
    pub canary_service: String,
    pub stable_service: String,
    pub max_surge: IntOrString,
    pub max_unavailable: IntOrString,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_routing: Option<TrafficRouting>,
    pub steps: Vec<RolloutStep>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TrafficRouting {
    pub nginx: NginxRouting,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NginxRouting {
    pub stable_ingress: String,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RolloutStep {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_weight: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<RolloutPause>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<RolloutAnalysis>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RolloutPause {
    /// Absent: wait until promoted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RolloutAnalysis {
    pub templates: Vec<TemplateRef>,
    pub args: Vec<AnalysisArg>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TemplateRef {
    pub template_name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AnalysisArg {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ArgValueFrom>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ArgValueFrom {
    /// `Latest` (the canary) or `Stable`.
    pub pod_template_hash_value: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BlueGreenStrategy {
    pub active_service: String,
    pub preview_service: String,
    pub auto_promotion_enabled: bool,
    pub scale_down_delay_seconds: i64,
}

/// An Argo Rollouts `AnalysisTemplate`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AnalysisTemplate {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: AnalysisTemplateSpec,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AnalysisTemplateSpec {
    pub args: Vec<ArgDecl>,
    pub metrics: Vec<AnalysisMetric>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ArgDecl {
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AnalysisMetric {
    pub name: String,
    pub interval: String,
    pub count: u32,
    pub failure_limit: u32,
    pub inconclusive_limit: u32,
    pub success_condition: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
    pub provider: MetricProvider,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct MetricProvider {
    pub prometheus: PrometheusProvider,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PrometheusProvider {
    pub address: String,
    pub query: String,
}

/// The Argo placeholders standing for ferry's query variables.
const ARG_APP: &str = "{{args.app}}";
const ARG_CANARY: &str = "{{args.canary-hash}}";
const ARG_STABLE: &str = "{{args.stable-hash}}";

/// The template name of a ferry analysis.
pub(crate) fn template_name(app: &App<'_>, analysis: &str) -> String {
    format!("{}-{}", app.name, analysis.replace('_', "-").to_lowercase())
}

/// The Rollout `strategy` for the spec's canary or blue-green settings.
pub(crate) fn strategy(app: &App<'_>, has_ingress: bool) -> Result<RolloutStrategy, Error> {
    let spec = app.spec;
    match spec.strategy.kind {
        StrategyKind::BlueGreen => {
            let bg = spec.strategy.blue_green.clone().unwrap_or_default();
            if !bg.smoke.is_empty() {
                app.note(
                    "blue-green smoke checks are run by ferry's own deploys; the Argo Rollout \
                     relies on readiness probes before the switch",
                );
            }
            Ok(RolloutStrategy {
                canary: None,
                blue_green: Some(BlueGreenStrategy {
                    active_service: app.name.clone(),
                    preview_service: format!("{}-preview", app.name),
                    auto_promotion_enabled: bg.auto_promote,
                    scale_down_delay_seconds: i64::try_from(secs(bg.scale_down_delay, 0))
                        .unwrap_or(i64::MAX),
                }),
            })
        }
        _ => {
            let steps = spec
                .strategy
                .canary
                .as_ref()
                .map(|c| c.steps.as_slice())
                .unwrap_or_default();
            let mut out = Vec::new();
            for step in steps {
                out.push(match step {
                    CanaryStep::Weight(w) => RolloutStep {
                        set_weight: Some(i32::from(w.get())),
                        ..RolloutStep::default()
                    },
                    CanaryStep::Pause(Pause::For(d)) => RolloutStep {
                        pause: Some(RolloutPause {
                            duration: Some(format!("{}s", secs(*d, 1))),
                        }),
                        ..RolloutStep::default()
                    },
                    CanaryStep::Pause(Pause::UntilPromoted) => RolloutStep {
                        pause: Some(RolloutPause::default()),
                        ..RolloutStep::default()
                    },
                    CanaryStep::Analysis(name) => {
                        if !spec.analysis.contains_key(name) {
                            return Err(Error::UnknownAnalysis(name.clone()));
                        }
                        RolloutStep {
                            analysis: Some(RolloutAnalysis {
                                templates: vec![TemplateRef {
                                    template_name: template_name(app, name),
                                }],
                                args: vec![
                                    AnalysisArg {
                                        name: "app".to_owned(),
                                        value: Some(app.name.clone()),
                                        value_from: None,
                                    },
                                    AnalysisArg {
                                        name: "canary-hash".to_owned(),
                                        value: None,
                                        value_from: Some(ArgValueFrom {
                                            pod_template_hash_value: "Latest",
                                        }),
                                    },
                                    AnalysisArg {
                                        name: "stable-hash".to_owned(),
                                        value: None,
                                        value_from: Some(ArgValueFrom {
                                            pod_template_hash_value: "Stable",
                                        }),
                                    },
                                ],
                            }),
                            ..RolloutStep::default()
                        }
                    }
                });
            }
            let rolling = &spec.strategy.rolling;
            Ok(RolloutStrategy {
                canary: Some(CanaryStrategy {
                    canary_service: format!("{}-canary", app.name),
                    stable_service: app.name.clone(),
                    max_surge: IntOrString::Int(i32::try_from(rolling.max_surge).unwrap_or(1)),
                    max_unavailable: IntOrString::Int(
                        i32::try_from(rolling.max_unavailable).unwrap_or(0),
                    ),
                    traffic_routing: has_ingress.then(|| TrafficRouting {
                        nginx: NginxRouting {
                            stable_ingress: app.name.clone(),
                        },
                    }),
                    steps: out,
                }),
                blue_green: None,
            })
        }
    }
}

fn fmt_num(x: f64) -> String {
    let s = format!("{x}");
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

/// The analysis templates of every analysis a canary step runs (sorted by name).
pub(crate) fn analysis_templates(app: &App<'_>) -> Vec<AnalysisTemplate> {
    let used: Vec<&String> = app
        .spec
        .strategy
        .canary
        .iter()
        .flat_map(|c| c.steps.iter())
        .filter_map(|s| match s {
            CanaryStep::Analysis(name) => Some(name),
            _ => None,
        })
        .collect();
    app.spec
        .analysis
        .iter()
        .filter(|(name, _)| used.contains(name))
        .map(|(name, analysis)| analysis_template(app, name, analysis))
        .collect()
}

fn analysis_template(app: &App<'_>, name: &str, analysis: &Analysis) -> AnalysisTemplate {
    let interval_s = secs(analysis.interval, 1);
    let count = analysis
        .measurements
        .unwrap_or_else(|| match analysis.duration {
            Some(d) => u32::try_from((secs(d, 1) / interval_s).max(1)).unwrap_or(u32::MAX),
            None => 3,
        });
    // A rate window shorter than a minute sees too few scrapes to be meaningful.
    let window = format!("{}s", interval_s.max(60));
    let canary = Selector {
        app: ARG_APP,
        revision: Some(ARG_CANARY),
    };
    let stable = Selector {
        app: ARG_APP,
        revision: Some(ARG_STABLE),
    };
    let address = analysis
        .prometheus
        .as_ref()
        .map_or_else(|| app.opts.prometheus_url.clone(), |p| p.url.clone());
    let base = |metric_name: String, query: String, success: String, failure: Option<String>| {
        AnalysisMetric {
            name: metric_name,
            interval: format!("{interval_s}s"),
            count,
            failure_limit: analysis.failure_limit,
            inconclusive_limit: analysis.inconclusive_limit,
            success_condition: success,
            failure_condition: failure,
            provider: MetricProvider {
                prometheus: PrometheusProvider {
                    address: address.clone(),
                    query,
                },
            },
        }
    };
    let mut out = vec![base(
        "sample-size".to_owned(),
        metrics::sample_size(canary, &window),
        format!("result[0] >= {}", analysis.min_samples),
        // Never a failure: too few requests is inconclusive, as in ferry's own analysis.
        Some("false".to_owned()),
    )];
    for metric in &analysis.metrics {
        let metric_name = metric.name.replace(['_', ' '], "-").to_lowercase();
        let canary_q = match metric.kind {
            MetricKind::Query => metric.query.as_deref().map(|q| user_query(q, ARG_CANARY)),
            kind => metrics::query(kind, canary, &window),
        };
        let stable_q = match metric.kind {
            MetricKind::Query => metric.query.as_deref().map(|q| user_query(q, ARG_STABLE)),
            kind => metrics::query(kind, stable, &window),
        };
        let (Some(canary_q), Some(stable_q)) = (canary_q, stable_q) else {
            continue;
        };
        let mut bounds = Vec::new();
        if let Some(max) = metric.max {
            bounds.push(format!("result[0] <= {}", fmt_num(max)));
        }
        if let Some(min) = metric.min {
            bounds.push(format!("result[0] >= {}", fmt_num(min)));
        }
        if !bounds.is_empty() {
            out.push(base(
                metric_name.clone(),
                canary_q.clone(),
                bounds.join(" && "),
                None,
            ));
        }
        if let Some(rel) = metric.max_relative {
            out.push(base(
                format!("{metric_name}-relative"),
                format!("({canary_q}) / ({stable_q})"),
                format!("result[0] <= {}", fmt_num(rel)),
                None,
            ));
        }
        if let Some(inc) = metric.allowed_increase {
            out.push(base(
                format!("{metric_name}-increase"),
                format!("({canary_q}) - ({stable_q})"),
                format!("result[0] <= {}", fmt_num(inc)),
                None,
            ));
        }
    }
    AnalysisTemplate {
        api_version: API_VERSION,
        kind: "AnalysisTemplate",
        metadata: ObjectMeta {
            name: Some(template_name(app, name)),
            labels: Some(app.labels("web")),
            ..ObjectMeta::default()
        },
        spec: AnalysisTemplateSpec {
            args: ["app", "canary-hash", "stable-hash"]
                .into_iter()
                .map(|n| ArgDecl { name: n.to_owned() })
                .collect(),
            metrics: out,
        },
    }
}

/// A user's query template with ferry's variables replaced by Argo's arguments.
fn user_query(template: &str, revision: &str) -> String {
    let mut q = template.to_owned();
    for (from, to) in [
        ("app", ARG_APP),
        ("revision", revision),
        ("stable", ARG_STABLE),
    ] {
        q = q.replace(&format!("{{{{{from}}}}}"), to);
        q = q.replace(&format!("{{{{ {from} }}}}"), to);
    }
    q
}

/// An Argo CD `Application`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Application {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: ApplicationSpec,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct ApplicationSpec {
    project: String,
    source: AppSource,
    destination: AppDestination,
    sync_policy: SyncPolicy,
    revision_history_limit: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct AppSource {
    #[serde(rename = "repoURL")]
    repo_url: String,
    target_revision: String,
    path: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct AppDestination {
    server: String,
    namespace: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct SyncPolicy {
    #[serde(skip_serializing_if = "Option::is_none")]
    automated: Option<Automated>,
    sync_options: Vec<String>,
    retry: Retry,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Automated {
    prune: bool,
    self_heal: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Retry {
    limit: i64,
    backoff: Backoff,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Backoff {
    duration: String,
    factor: i64,
    max_duration: String,
}

/// Whether an environment is held to the production policy (manual sync).
pub(crate) fn is_production(env: &str) -> bool {
    env == "production" || env == "prod" || env.starts_with("prod-") || env.ends_with("-prod")
}

/// One Argo CD Application per environment: auto-sync with prune and self-heal outside
/// production; production syncs only by hand, so a promotion is a reviewed, deliberate act.
pub(crate) fn render_applications(app: &App<'_>, out: &mut Rendered) -> Result<(), Error> {
    let envs: Vec<String> = match &app.env {
        Some(env) => vec![env.clone()],
        None => app.opts.environments.clone(),
    };
    for env in envs {
        let production = is_production(&env);
        let application = Application {
            api_version: API_VERSION,
            kind: "Application",
            metadata: ObjectMeta {
                name: Some(format!("{}-{env}", app.name)),
                namespace: Some("argocd".to_owned()),
                labels: Some(BTreeMap::from([
                    ("app.kubernetes.io/part-of".to_owned(), app.name.clone()),
                    (
                        "app.kubernetes.io/managed-by".to_owned(),
                        "ferry".to_owned(),
                    ),
                    ("ferry.dev/environment".to_owned(), env.clone()),
                ])),
                // Deleting the Application deletes what it deployed, in order.
                finalizers: Some(vec!["resources-finalizer.argocd.argoproj.io".to_owned()]),
                ..ObjectMeta::default()
            },
            spec: ApplicationSpec {
                project: "default".to_owned(),
                source: AppSource {
                    repo_url: app.opts.gitops_repo_url.clone(),
                    target_revision: "HEAD".to_owned(),
                    path: format!("{}/overlays/{env}", app.opts.gitops_path),
                },
                destination: AppDestination {
                    server: "https://kubernetes.default.svc".to_owned(),
                    namespace: app
                        .opts
                        .namespace
                        .clone()
                        .unwrap_or_else(|| format!("{}-{env}", app.name)),
                },
                sync_policy: SyncPolicy {
                    automated: (!production).then_some(Automated {
                        prune: true,
                        self_heal: true,
                    }),
                    sync_options: vec![
                        "CreateNamespace=false".to_owned(),
                        "PrunePropagationPolicy=foreground".to_owned(),
                        "PruneLast=true".to_owned(),
                    ],
                    retry: Retry {
                        limit: 5,
                        backoff: Backoff {
                            duration: "10s".to_owned(),
                            factor: 2,
                            max_duration: "3m".to_owned(),
                        },
                    },
                },
                revision_history_limit: 10,
            },
        };
        let value = yaml::to_value("Argo CD Application", &application)?;
        out.file(
            format!("argocd/{}-{env}.yaml", app.name),
            yaml::file(&[value]),
        );
    }
    out.note(
        "Argo CD: non-production environments auto-sync with prune and self-heal; \
         production syncs only when someone presses Sync (or `argocd app sync`)",
    );
    Ok(())
}
