//! The Kubernetes target: a kustomize tree (`base/` and `overlays/<env>/`) of typed
//! k8s-openapi objects, hardened by default (Pod Security Standards "restricted",
//! default-deny NetworkPolicy, no service account token, read-only root, all capabilities
//! dropped, limits everywhere).

use std::collections::BTreeMap;

use ferry_spec::{Accessory, Health, Resources, Worker};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment, StatefulSet,
    StatefulSetSpec,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget,
    ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapEnvSource, Container, ContainerPort,
    EmptyDirVolumeSource, EnvFromSource, EnvVar, EnvVarSource, HTTPGetAction, Lifecycle,
    LifecycleHandler, LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceQuota, ResourceQuotaSpec, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec,
    SleepAction, TopologySpreadConstraint, Volume, VolumeMount, VolumeResourceRequirements,
    WeightedPodAffinityTerm,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, IPBlock, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, NetworkPolicy, NetworkPolicyEgressRule,
    NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
    ServiceBackendPort,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde_json::{Value, json};

use crate::app::{App, Limits, secs};
use crate::argo::{self, Rollout, RolloutSpec};
use crate::{Error, Rendered, yaml};

/// The named container port every Service and probe points at.
const HTTP_PORT_NAME: &str = "http";
/// Seconds a terminating pod keeps serving while endpoints controllers and ingress
/// controllers stop sending it traffic (removal is asynchronous in Kubernetes).
const PRESTOP_SLEEP_SECONDS: i64 = 5;
/// Storage requested per accessory volume.
const ACCESSORY_STORAGE: &str = "1Gi";

fn meta(app: &App<'_>, name: &str, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(app.labels(component)),
        ..ObjectMeta::default()
    }
}

fn selector(app: &App<'_>, component: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(app.selector(component)),
        ..LabelSelector::default()
    }
}

fn i32_of(x: u64) -> i32 {
    i32::try_from(x).unwrap_or(i32::MAX)
}

fn resources(limits: Limits) -> ResourceRequirements {
    // Requests equal limits: Guaranteed QoS, so a noisy neighbour cannot starve the app
    // and the scheduler's picture matches reality.
    let q = BTreeMap::from([
        ("cpu".to_owned(), Quantity(limits.millicores())),
        ("memory".to_owned(), Quantity(limits.memory_quantity())),
    ]);
    ResourceRequirements {
        limits: Some(q.clone()),
        requests: Some(q),
        ..ResourceRequirements::default()
    }
}

/// The hardened container security context: no privilege escalation, read-only root, all
/// capabilities dropped (only the spec's `cap_add` come back), non-root, RuntimeDefault
/// seccomp. These are exactly the "restricted" Pod Security Standard's requirements.
fn container_security(app: &App<'_>) -> SecurityContext {
    let sec = &app.spec.security;
    let (uid, gid) = app.user();
    SecurityContext {
        allow_privilege_escalation: Some(!sec.no_new_privileges),
        read_only_root_filesystem: Some(sec.read_only_root_fs),
        run_as_non_root: Some(!sec.allow_root),
        run_as_user: Some(uid),
        run_as_group: Some(gid),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: (!sec.cap_add.is_empty()).then(|| sec.cap_add.clone()),
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    }
}

fn pod_security(app: &App<'_>) -> PodSecurityContext {
    let (uid, gid) = app.user();
    PodSecurityContext {
        run_as_non_root: Some(!app.spec.security.allow_root),
        run_as_user: Some(uid),
        run_as_group: Some(gid),
        fs_group: Some(gid),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// emptyDir volumes (in memory) for the writable paths of a read-only root filesystem.
fn tmpfs(app: &App<'_>, extra: &[&str]) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut paths: Vec<String> = app.spec.security.tmpfs.clone();
    paths.extend(extra.iter().map(|s| (*s).to_owned()));
    paths.sort();
    paths.dedup();
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let name = format!("tmpfs-{i}");
        volumes.push(Volume {
            name: name.clone(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".to_owned()),
                size_limit: Some(Quantity("64Mi".to_owned())),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        });
        mounts.push(VolumeMount {
            name,
            mount_path: path.clone(),
            ..VolumeMount::default()
        });
    }
    (volumes, mounts)
}

fn env_vars(app: &App<'_>) -> (Vec<EnvFromSource>, Vec<EnvVar>) {
    let from = vec![EnvFromSource {
        config_map_ref: Some(ConfigMapEnvSource {
            name: app.config_name(),
            optional: Some(false),
        }),
        ..EnvFromSource::default()
    }];
    let secrets = app
        .spec
        .secrets
        .iter()
        .map(|s| EnvVar {
            name: s.as_str().to_owned(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: app.secret_name(),
                    key: s.as_str().to_owned(),
                    optional: Some(false),
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        })
        .collect();
    (from, secrets)
}

fn http_probe(path: &str, health: &Health) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(HTTP_PORT_NAME.to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(i32_of(secs(health.interval, 1))),
        timeout_seconds: Some(i32_of(secs(health.timeout, 1))),
        ..Probe::default()
    }
}

/// Probes from the health settings: startup tolerates `start_period`, readiness uses the
/// readiness path and the healthy threshold, liveness restarts after the unhealthy
/// threshold (only once started, so slow starts are never killed).
fn probes(web: &ferry_spec::Web) -> (Option<Probe>, Option<Probe>, Option<Probe>) {
    let Some(health) = &web.health else {
        return (None, None, None);
    };
    let interval = secs(health.interval, 1);
    let startup_failures = secs(health.start_period, 0).div_ceil(interval)
        + u64::from(health.unhealthy_threshold.max(1));
    let startup = Probe {
        failure_threshold: Some(i32_of(startup_failures)),
        ..http_probe(&health.path, health)
    };
    let readiness = Probe {
        success_threshold: Some(i32_of(u64::from(health.healthy_threshold.max(1)))),
        failure_threshold: Some(i32_of(u64::from(health.unhealthy_threshold.max(1)))),
        ..http_probe(web.readiness().unwrap_or(&health.path), health)
    };
    let liveness = Probe {
        failure_threshold: Some(i32_of(u64::from(health.unhealthy_threshold.max(1)))),
        ..http_probe(&health.path, health)
    };
    (Some(startup), Some(readiness), Some(liveness))
}

fn spread(app: &App<'_>, component: &str) -> (Vec<TopologySpreadConstraint>, Affinity) {
    // ScheduleAnyway: spreading is a preference, so a single-node or single-zone cluster
    // still schedules every replica.
    let constraint = |key: &str| TopologySpreadConstraint {
        max_skew: 1,
        topology_key: key.to_owned(),
        when_unsatisfiable: "ScheduleAnyway".to_owned(),
        label_selector: Some(selector(app, component)),
        ..TopologySpreadConstraint::default()
    };
    let affinity = Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(selector(app, component)),
                        topology_key: "kubernetes.io/hostname".to_owned(),
                        ..PodAffinityTerm::default()
                    },
                },
            ]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    };
    (
        vec![
            constraint("topology.kubernetes.io/zone"),
            constraint("kubernetes.io/hostname"),
        ],
        affinity,
    )
}

fn pod_template(
    app: &App<'_>,
    component: &str,
    container: Container,
    volumes: Vec<Volume>,
    grace_seconds: i64,
    annotations: Option<BTreeMap<String, String>>,
) -> PodTemplateSpec {
    let (spread, affinity) = spread(app, component);
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(app.labels(component)),
            annotations,
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            service_account_name: Some(app.name.clone()),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            security_context: Some(pod_security(app)),
            termination_grace_period_seconds: Some(grace_seconds),
            topology_spread_constraints: Some(spread),
            affinity: Some(affinity),
            containers: vec![container],
            volumes: (!volumes.is_empty()).then_some(volumes),
            ..PodSpec::default()
        }),
    }
}

fn web_template(app: &App<'_>) -> Result<PodTemplateSpec, Error> {
    let web = app.web("k8s")?;
    let (startup, readiness, liveness) = probes(web);
    let (env_from, env) = env_vars(app);
    let (volumes, mounts) = tmpfs(app, &[]);
    let container = Container {
        name: "web".to_owned(),
        image: Some(app.name.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args: web.command.clone(),
        ports: Some(vec![ContainerPort {
            name: Some(HTTP_PORT_NAME.to_owned()),
            container_port: i32::from(web.port),
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        env_from: Some(env_from),
        env: (!env.is_empty()).then_some(env),
        resources: Some(resources(Limits::of(&web.resources))),
        security_context: Some(container_security(app)),
        startup_probe: startup,
        readiness_probe: readiness,
        liveness_probe: liveness,
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction {
                    seconds: PRESTOP_SLEEP_SECONDS,
                }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        ..Container::default()
    };
    let grace = PRESTOP_SLEEP_SECONDS
        + i64::try_from(secs(web.drain_timeout, 0) + secs(web.stop_timeout, 0))
            .unwrap_or(i64::MAX / 2);
    let annotations = BTreeMap::from([
        ("prometheus.io/scrape".to_owned(), "true".to_owned()),
        ("prometheus.io/port".to_owned(), web.port.to_string()),
        ("prometheus.io/path".to_owned(), "/metrics".to_owned()),
    ]);
    Ok(pod_template(
        app,
        "web",
        container,
        volumes,
        grace,
        Some(annotations),
    ))
}

fn web_replicas(app: &App<'_>) -> i32 {
    let replicas = app.spec.web.as_ref().map_or(1, |w| w.replicas);
    let replicas = match &app.spec.autoscale {
        Some(a) => replicas.clamp(a.min_replicas, a.max_replicas.max(a.min_replicas)),
        None => replicas,
    };
    i32::try_from(replicas).unwrap_or(i32::MAX)
}

/// Replicas in base/: with an environment the overlay patches them, so base/ holds a
/// neutral 1 and does not change between environments.
fn base_replicas(app: &App<'_>) -> i32 {
    if app.env.is_some() {
        1
    } else {
        web_replicas(app)
    }
}

fn deployment(app: &App<'_>) -> Result<Deployment, Error> {
    let rolling = &app.spec.strategy.rolling;
    Ok(Deployment {
        metadata: meta(app, &app.name, "web"),
        spec: DeploymentSpec {
            replicas: Some(base_replicas(app)),
            revision_history_limit: Some(10),
            progress_deadline_seconds: Some(600),
            selector: selector(app, "web"),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(i32_of(u64::from(rolling.max_surge)))),
                    max_unavailable: Some(IntOrString::Int(i32_of(u64::from(
                        rolling.max_unavailable,
                    )))),
                }),
            }),
            template: web_template(app)?,
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    })
}

fn rollout(app: &App<'_>, has_ingress: bool) -> Result<Rollout, Error> {
    Ok(Rollout {
        api_version: "argoproj.io/v1alpha1",
        kind: "Rollout",
        metadata: meta(app, &app.name, "web"),
        spec: RolloutSpec {
            replicas: base_replicas(app),
            revision_history_limit: 10,
            progress_deadline_seconds: 600,
            selector: selector(app, "web"),
            template: web_template(app)?,
            strategy: argo::strategy(app, has_ingress)?,
        },
    })
}

fn worker(app: &App<'_>, name: &str, worker: &Worker) -> Deployment {
    let (env_from, env) = env_vars(app);
    let (volumes, mounts) = tmpfs(app, &[]);
    let component = name;
    let container = Container {
        name: name.to_owned(),
        image: Some(app.name.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args: worker.command.clone(),
        env_from: Some(env_from),
        env: (!env.is_empty()).then_some(env),
        resources: Some(resources(Limits::of(&worker.resources))),
        security_context: Some(container_security(app)),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        ..Container::default()
    };
    let grace = app
        .spec
        .web
        .as_ref()
        .map_or(30, |w| i64::try_from(secs(w.stop_timeout, 1)).unwrap_or(30));
    Deployment {
        metadata: meta(app, &format!("{}-{name}", app.name), component),
        spec: DeploymentSpec {
            // Like the web role: the overlay patches the environment's count in.
            replicas: Some(if app.env.is_some() {
                1
            } else {
                i32_of(u64::from(worker.replicas))
            }),
            revision_history_limit: Some(10),
            selector: selector(app, component),
            template: pod_template(app, component, container, volumes, grace, None),
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

fn service(app: &App<'_>, name: &str, component: &str, port: i32, headless: bool) -> Service {
    Service {
        metadata: meta(app, name, component),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            cluster_ip: headless.then(|| "None".to_owned()),
            selector: Some(app.selector(component)),
            ports: Some(vec![ServicePort {
                name: Some(HTTP_PORT_NAME.to_owned())
                    .filter(|_| component == "web")
                    .or_else(|| Some("tcp".to_owned())),
                port: if component == "web" { 80 } else { port },
                target_port: Some(if component == "web" {
                    IntOrString::String(HTTP_PORT_NAME.to_owned())
                } else {
                    IntOrString::Int(port)
                }),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn ingress(app: &App<'_>) -> Option<Ingress> {
    let web = app.spec.web.as_ref()?;
    if web.routes.is_empty() {
        return None;
    }
    let mut rules: BTreeMap<String, Vec<HTTPIngressPath>> = BTreeMap::new();
    let mut tls_hosts: Vec<String> = Vec::new();
    for route in &web.routes {
        let backend = IngressBackend {
            service: Some(IngressServiceBackend {
                name: app.name.clone(),
                port: Some(ServiceBackendPort {
                    name: Some(HTTP_PORT_NAME.to_owned()),
                    ..ServiceBackendPort::default()
                }),
            }),
            ..IngressBackend::default()
        };
        let path = HTTPIngressPath {
            path: Some(route.path_prefix.clone()),
            path_type: "Prefix".to_owned(),
            backend,
        };
        let hosts = if route.hosts.is_empty() {
            vec![String::new()]
        } else {
            route.hosts.clone()
        };
        for host in hosts {
            if (route.tls.is_some() || app.opts.cert_manager_issuer.is_some()) && !host.is_empty() {
                tls_hosts.push(host.clone());
            }
            rules.entry(host).or_default().push(path.clone());
        }
    }
    tls_hosts.sort();
    tls_hosts.dedup();
    let mut annotations = BTreeMap::from([(
        "nginx.ingress.kubernetes.io/ssl-redirect".to_owned(),
        "true".to_owned(),
    )]);
    if let Some(issuer) = &app.opts.cert_manager_issuer {
        annotations.insert("cert-manager.io/cluster-issuer".to_owned(), issuer.clone());
    } else if !tls_hosts.is_empty() {
        app.note(format!(
            "the Ingress serves TLS from Secret {}-tls: create it from the route's cert/key \
             (kubectl create secret tls) or pass --cert-manager-issuer",
            app.name
        ));
    }
    Some(Ingress {
        metadata: ObjectMeta {
            annotations: Some(annotations),
            ..meta(app, &app.name, "web")
        },
        spec: Some(IngressSpec {
            ingress_class_name: Some(app.opts.ingress_class.clone()),
            tls: (!tls_hosts.is_empty()).then(|| {
                vec![IngressTLS {
                    hosts: Some(tls_hosts),
                    secret_name: Some(format!("{}-tls", app.name)),
                }]
            }),
            rules: Some(
                rules
                    .into_iter()
                    .map(|(host, paths)| IngressRule {
                        host: (!host.is_empty()).then_some(host),
                        http: Some(HTTPIngressRuleValue { paths }),
                    })
                    .collect(),
            ),
            ..IngressSpec::default()
        }),
        ..Ingress::default()
    })
}

fn hpa(app: &App<'_>) -> Option<HorizontalPodAutoscaler> {
    let auto = app.spec.autoscale.as_ref()?;
    let utilization = |resource: &str, percent: u32| MetricSpec {
        type_: "Resource".to_owned(),
        resource: Some(ResourceMetricSource {
            name: resource.to_owned(),
            target: MetricTarget {
                type_: "Utilization".to_owned(),
                average_utilization: Some(i32_of(u64::from(percent))),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    };
    let mut metrics = Vec::new();
    // With no target given, scale on CPU at 70%: a common, conservative default.
    let cpu = auto
        .cpu_percent
        .or(auto.memory_percent.is_none().then_some(70));
    if let Some(cpu) = cpu {
        metrics.push(utilization("cpu", cpu));
    }
    if let Some(mem) = auto.memory_percent {
        metrics.push(utilization("memory", mem));
    }
    let (api_version, kind) = if app.uses_argo_rollout() {
        ("argoproj.io/v1alpha1", "Rollout")
    } else {
        ("apps/v1", "Deployment")
    };
    Some(HorizontalPodAutoscaler {
        metadata: meta(app, &app.name, "web"),
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some(api_version.to_owned()),
                kind: kind.to_owned(),
                name: app.name.clone(),
            },
            min_replicas: Some(i32_of(u64::from(auto.min_replicas))),
            max_replicas: i32_of(u64::from(auto.max_replicas.max(auto.min_replicas))),
            metrics: Some(metrics),
            // Scale up fast, down slowly: flapping costs more than a few idle pods.
            behavior: Some(HorizontalPodAutoscalerBehavior {
                scale_up: Some(HPAScalingRules {
                    stabilization_window_seconds: Some(0),
                    select_policy: Some("Max".to_owned()),
                    policies: Some(vec![
                        HPAScalingPolicy {
                            type_: "Percent".to_owned(),
                            value: 100,
                            period_seconds: 60,
                        },
                        HPAScalingPolicy {
                            type_: "Pods".to_owned(),
                            value: 4,
                            period_seconds: 60,
                        },
                    ]),
                    ..HPAScalingRules::default()
                }),
                scale_down: Some(HPAScalingRules {
                    stabilization_window_seconds: Some(300),
                    select_policy: Some("Min".to_owned()),
                    policies: Some(vec![HPAScalingPolicy {
                        type_: "Percent".to_owned(),
                        value: 50,
                        period_seconds: 60,
                    }]),
                    ..HPAScalingRules::default()
                }),
            }),
        },
        ..HorizontalPodAutoscaler::default()
    })
}

/// At most one pod of a role evicted at a time (node drains, cluster upgrades).
fn pdb(app: &App<'_>, name: &str, component: &str) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(app, name, component),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(selector(app, component)),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".to_owned()),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

fn ns_peer(namespace: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "kubernetes.io/metadata.name".to_owned(),
                namespace.to_owned(),
            )])),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    }
}

fn tcp(port: IntOrString) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some("TCP".to_owned()),
        port: Some(port),
        ..NetworkPolicyPort::default()
    }
}

fn dns_egress() -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            pod_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "k8s-app".to_owned(),
                    "kube-dns".to_owned(),
                )])),
                ..LabelSelector::default()
            }),
            ..ns_peer("kube-system")
        }]),
        ports: Some(vec![
            NetworkPolicyPort {
                protocol: Some("UDP".to_owned()),
                port: Some(IntOrString::Int(53)),
                ..NetworkPolicyPort::default()
            },
            tcp(IntOrString::Int(53)),
        ]),
    }
}

/// Default deny for the app's pods, then: inbound only from the ingress controller (and
/// Prometheus for /metrics); outbound only to DNS, the declared accessories and HTTPS.
fn web_network_policy(app: &App<'_>) -> NetworkPolicy {
    let mut egress = vec![dns_egress()];
    for (name, acc) in &app.spec.accessories {
        let Some(port) = acc.port else { continue };
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                pod_selector: Some(selector(app, name.as_str())),
                ..NetworkPolicyPeer::default()
            }]),
            ports: Some(vec![tcp(IntOrString::Int(i32::from(port)))]),
        });
    }
    egress.push(NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: "0.0.0.0/0".to_owned(),
                except: None,
            }),
            ..NetworkPolicyPeer::default()
        }]),
        ports: Some(vec![tcp(IntOrString::Int(443))]),
    });
    let mut pod_selector = LabelSelector {
        match_labels: Some(BTreeMap::from([(
            "app.kubernetes.io/part-of".to_owned(),
            app.name.clone(),
        )])),
        ..LabelSelector::default()
    };
    // Accessories get their own, stricter policy.
    pod_selector.match_expressions = (!app.spec.accessories.is_empty()).then(|| {
        vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
                key: "app.kubernetes.io/component".to_owned(),
                operator: "NotIn".to_owned(),
                values: Some(
                    app.spec
                        .accessories
                        .keys()
                        .map(|k| k.as_str().to_owned())
                        .collect(),
                ),
            },
        ]
    });
    NetworkPolicy {
        metadata: meta(app, &app.name, "web"),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pod_selector),
            policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![
                    ns_peer(&app.opts.ingress_namespace),
                    ns_peer(&app.opts.monitoring_namespace),
                ]),
                ports: Some(vec![tcp(IntOrString::String(HTTP_PORT_NAME.to_owned()))]),
            }]),
            egress: Some(egress),
        }),
    }
}

fn accessory_network_policy(app: &App<'_>, name: &str, acc: &Accessory) -> NetworkPolicy {
    NetworkPolicy {
        metadata: meta(app, name, name),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(app, name)),
            policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    pod_selector: Some(LabelSelector {
                        match_labels: Some(BTreeMap::from([(
                            "app.kubernetes.io/part-of".to_owned(),
                            app.name.clone(),
                        )])),
                        ..LabelSelector::default()
                    }),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: acc.port.map(|p| vec![tcp(IntOrString::Int(i32::from(p)))]),
            }]),
            egress: Some(vec![dns_egress()]),
        }),
    }
}

fn accessory(app: &App<'_>, name: &str, acc: &Accessory) -> StatefulSet {
    // Accessory images often need a writable /var/run (sockets, pid files).
    let (mut volumes, mut mounts) = tmpfs(app, &["/var/run"]);
    let mut claims = Vec::new();
    for vol in &acc.volumes {
        claims.push(PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(vol.name.as_str().to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_owned(),
                        Quantity(ACCESSORY_STORAGE.to_owned()),
                    )])),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            ..PersistentVolumeClaim::default()
        });
        mounts.push(VolumeMount {
            name: vol.name.as_str().to_owned(),
            mount_path: vol.path.clone(),
            ..VolumeMount::default()
        });
    }
    mounts.sort_by(|a, b| a.mount_path.cmp(&b.mount_path));
    let mut env: Vec<EnvVar> = acc
        .env
        .iter()
        .map(|(k, v)| EnvVar {
            name: k.as_str().to_owned(),
            value: Some(v.clone()),
            ..EnvVar::default()
        })
        .collect();
    env.extend(acc.secrets.iter().map(|s| EnvVar {
        name: s.as_str().to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: app.secret_name(),
                key: s.as_str().to_owned(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }));
    let probe = acc.port.map(|p| Probe {
        tcp_socket: Some(k8s_openapi::api::core::v1::TCPSocketAction {
            port: IntOrString::Int(i32::from(p)),
            ..Default::default()
        }),
        period_seconds: Some(10),
        failure_threshold: Some(6),
        ..Probe::default()
    });
    let container = Container {
        name: name.to_owned(),
        image: Some(acc.image.clone()),
        // Third-party tags move (postgres:17 is re-pushed): re-resolve them on each start
        // unless pinned by digest. ferry's own images are immutable git-SHA tags, so they
        // use IfNotPresent and keep starting while the registry is down.
        image_pull_policy: Some(
            if acc.image.contains('@') {
                "IfNotPresent"
            } else {
                "Always"
            }
            .to_owned(),
        ),
        args: acc.command.clone(),
        ports: acc.port.map(|p| {
            vec![ContainerPort {
                name: Some("tcp".to_owned()),
                container_port: i32::from(p),
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            }]
        }),
        env: (!env.is_empty()).then_some(env),
        resources: Some(resources(Limits::of(&Resources::default()))),
        security_context: Some(container_security(app)),
        readiness_probe: probe.clone(),
        liveness_probe: probe,
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    volumes.sort_by(|a, b| a.name.cmp(&b.name));
    StatefulSet {
        metadata: meta(app, name, name),
        spec: StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(name.to_owned()),
            selector: selector(app, name),
            template: pod_template(app, name, container, volumes, 30, None),
            volume_claim_templates: (!claims.is_empty()).then_some(claims),
            ..StatefulSetSpec::default()
        },
        ..StatefulSet::default()
    }
}

/// An external-secrets `ExternalSecret` (CRD, typed here) filling the app's Secret.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalSecret {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: Value,
}

fn external_secret(app: &App<'_>, store: &str) -> ExternalSecret {
    let mut names: Vec<&str> = app.spec.secrets.iter().map(|s| s.as_str()).collect();
    for acc in app.spec.accessories.values() {
        names.extend(acc.secrets.iter().map(|s| s.as_str()));
    }
    names.sort_unstable();
    names.dedup();
    ExternalSecret {
        api_version: "external-secrets.io/v1",
        kind: "ExternalSecret",
        metadata: meta(app, &app.secret_name(), "web"),
        spec: json!({
            "refreshInterval": "1h",
            "secretStoreRef": { "kind": "ClusterSecretStore", "name": store },
            "target": { "name": app.secret_name(), "creationPolicy": "Owner" },
            "data": names.iter().map(|n| json!({
                "secretKey": n,
                "remoteRef": { "key": format!("{}/{n}", app.name) },
            })).collect::<Vec<_>>(),
        }),
    }
}

fn namespace(app: &App<'_>, name: &str) -> Namespace {
    let mut labels = app.labels("namespace");
    labels.remove("app.kubernetes.io/component");
    labels.remove("app.kubernetes.io/name");
    for mode in ["enforce", "audit", "warn"] {
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            "restricted".to_owned(),
        );
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}-version"),
            "latest".to_owned(),
        );
    }
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

fn quota(app: &App<'_>) -> (ResourceQuota, LimitRange) {
    let limits = Limits::of(&Resources::default());
    let default = BTreeMap::from([
        ("cpu".to_owned(), Quantity(limits.millicores())),
        ("memory".to_owned(), Quantity(limits.memory_quantity())),
    ]);
    (
        ResourceQuota {
            metadata: meta(app, &app.name, "namespace"),
            spec: Some(ResourceQuotaSpec {
                hard: Some(BTreeMap::from([
                    ("limits.cpu".to_owned(), Quantity("16".to_owned())),
                    ("limits.memory".to_owned(), Quantity("32Gi".to_owned())),
                    ("pods".to_owned(), Quantity("100".to_owned())),
                ])),
                ..ResourceQuotaSpec::default()
            }),
            ..ResourceQuota::default()
        },
        LimitRange {
            metadata: meta(app, &app.name, "namespace"),
            spec: Some(LimitRangeSpec {
                limits: vec![LimitRangeItem {
                    type_: "Container".to_owned(),
                    default: Some(default.clone()),
                    default_request: Some(default),
                    ..LimitRangeItem::default()
                }],
            }),
        },
    )
}

/// A kustomize `Kustomization`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Kustomization {
    api_version: &'static str,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    labels: Vec<Value>,
    resources: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<KustomizeImage>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    patches: Vec<Value>,
}

/// The `images:` entry a GitOps promotion rewrites (only `newTag`/`digest` change).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct KustomizeImage {
    name: String,
    new_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
}

/// The base resources, as (file name, object) in a stable order.
fn base_objects(app: &App<'_>, ns: &str) -> Result<Vec<(String, Value)>, Error> {
    let mut objs: Vec<(String, Value)> = Vec::new();
    let mut push = |file: String, what: &str, value: Result<Value, Error>| -> Result<(), Error> {
        objs.push((
            file,
            value.map_err(|e| match e {
                Error::Serialize { source, .. } => Error::Serialize {
                    what: what.to_owned(),
                    source,
                },
                other => other,
            })?,
        ));
        Ok(())
    };
    let v = |x: &dyn erased::Ser| x.value();
    push("namespace.yaml".into(), "Namespace", v(&namespace(app, ns)))?;
    let sa = ServiceAccount {
        metadata: meta(app, &app.name, "web"),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    };
    push("serviceaccount.yaml".into(), "ServiceAccount", v(&sa))?;
    let cm = ConfigMap {
        metadata: meta(app, &app.config_name(), "web"),
        // With an environment, the overlay patches the data in: base/ stays the same for
        // every environment, so rendering several into one GitOps tree does not churn it.
        data: Some(if app.env.is_some() {
            BTreeMap::new()
        } else {
            app.spec
                .env
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect()
        }),
        ..ConfigMap::default()
    };
    push("configmap.yaml".into(), "ConfigMap", v(&cm))?;
    let has_secrets = !app.spec.secrets.is_empty()
        || app.spec.accessories.values().any(|a| !a.secrets.is_empty());
    if has_secrets {
        match &app.opts.external_secret_store {
            Some(store) => push(
                "externalsecret.yaml".into(),
                "ExternalSecret",
                v(&external_secret(app, store)),
            )?,
            None => app.note(format!(
                "pods read Secret {} (keys: {}); create it in each namespace, or pass \
                 --external-secret-store to render an ExternalSecret",
                app.secret_name(),
                app.spec
                    .secrets
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    let ing = ingress(app);
    if app.uses_argo_rollout() {
        push(
            "rollout.yaml".into(),
            "Rollout",
            v(&rollout(app, ing.is_some())?),
        )?;
        for tpl in argo::analysis_templates(app) {
            let file = format!(
                "analysistemplate-{}.yaml",
                tpl.metadata.name.clone().unwrap_or_default()
            );
            push(file, "AnalysisTemplate", v(&tpl))?;
        }
    } else {
        if app.spec.strategy.kind != ferry_spec::StrategyKind::Rolling {
            app.note(format!(
                "strategy {} rendered as a Deployment rolling update (rollouts: none); \
                 its steps and analyses are not enforced by Kubernetes",
                app.spec.strategy.kind.as_str()
            ));
        }
        push("deployment.yaml".into(), "Deployment", v(&deployment(app)?))?;
    }
    let port = i32::from(app.web("k8s")?.port);
    push(
        "service.yaml".into(),
        "Service",
        v(&service(app, &app.name, "web", port, false)),
    )?;
    if app.uses_argo_rollout() {
        let extra = match app.spec.strategy.kind {
            ferry_spec::StrategyKind::BlueGreen => "preview",
            _ => "canary",
        };
        push(
            format!("service-{extra}.yaml"),
            "Service",
            v(&service(
                app,
                &format!("{}-{extra}", app.name),
                "web",
                port,
                false,
            )),
        )?;
    }
    if let Some(ing) = &ing {
        push("ingress.yaml".into(), "Ingress", v(ing))?;
    }
    if let Some(h) = hpa(app) {
        push("hpa.yaml".into(), "HorizontalPodAutoscaler", v(&h))?;
    }
    push(
        "pdb.yaml".into(),
        "PodDisruptionBudget",
        v(&pdb(app, &app.name, "web")),
    )?;
    push(
        "networkpolicy.yaml".into(),
        "NetworkPolicy",
        v(&web_network_policy(app)),
    )?;
    for (name, w) in &app.spec.workers {
        push(
            format!("worker-{name}.yaml"),
            "Deployment",
            v(&worker(app, name.as_str(), w)),
        )?;
        push(
            format!("worker-{name}-pdb.yaml"),
            "PodDisruptionBudget",
            v(&pdb(app, &format!("{}-{name}", app.name), name.as_str())),
        )?;
    }
    for (name, acc) in &app.spec.accessories {
        let name = name.as_str();
        push(
            format!("accessory-{name}-statefulset.yaml"),
            "StatefulSet",
            v(&accessory(app, name, acc)),
        )?;
        push(
            format!("accessory-{name}-service.yaml"),
            "Service",
            v(&service(
                app,
                name,
                name,
                i32::from(acc.port.unwrap_or(80)),
                true,
            )),
        )?;
        push(
            format!("accessory-{name}-networkpolicy.yaml"),
            "NetworkPolicy",
            v(&accessory_network_policy(app, name, acc)),
        )?;
    }
    if app.opts.quota {
        let (q, l) = quota(app);
        push("resourcequota.yaml".into(), "ResourceQuota", v(&q))?;
        push("limitrange.yaml".into(), "LimitRange", v(&l))?;
    }
    Ok(objs)
}

/// Type erasure for "anything serialisable", so the list above stays one call per object.
mod erased {
    use serde_json::Value;

    use crate::Error;

    pub(super) trait Ser {
        fn value(&self) -> Result<Value, Error>;
    }

    impl<T: serde::Serialize> Ser for T {
        fn value(&self) -> Result<Value, Error> {
            crate::yaml::to_value("a Kubernetes object", self)
        }
    }
}

/// Renders `base/` and, for an environment, `overlays/<env>/`.
pub(crate) fn render(app: &App<'_>, out: &mut Rendered) -> Result<(), Error> {
    let base_ns = app
        .opts
        .namespace
        .clone()
        .unwrap_or_else(|| app.name.clone());
    let objs = base_objects(app, &base_ns)?;
    let mut resources = Vec::new();
    for (file, value) in &objs {
        resources.push(file.clone());
        out.file(
            format!("base/{file}"),
            yaml::file(std::slice::from_ref(value)),
        );
    }
    let base = Kustomization {
        api_version: "kustomize.config.k8s.io/v1beta1",
        kind: "Kustomization",
        namespace: Some(base_ns),
        resources,
        // The image is set per environment by the overlay (the line a promotion changes).
        images: if app.env.is_some() {
            Vec::new()
        } else {
            vec![image_entry(app)]
        },
        ..Kustomization::default()
    };
    out.file(
        "base/kustomization.yaml",
        yaml::file(&[yaml::to_value("Kustomization", &base)?]),
    );
    if let Some(env) = &app.env {
        let overlay = overlay(app, env)?;
        out.file(
            format!("overlays/{env}/kustomization.yaml"),
            yaml::file(&[yaml::to_value("Kustomization", &overlay)?]),
        );
    }
    Ok(())
}

fn image_entry(app: &App<'_>) -> KustomizeImage {
    KustomizeImage {
        name: app.name.clone(),
        new_name: app.image.name.clone(),
        new_tag: app.image.tag.clone(),
        digest: app.image.digest.clone(),
    }
}

/// The overlay: the environment's namespace, label, image, replicas and configuration.
/// Everything an environment changes lives here, so `base/` can be shared.
fn overlay(app: &App<'_>, env: &str) -> Result<Kustomization, Error> {
    let (kind, api) = if app.uses_argo_rollout() {
        ("Rollout", "argoproj.io/v1alpha1")
    } else {
        ("Deployment", "apps/v1")
    };
    let replicas = json!({
        "apiVersion": api, "kind": kind,
        "metadata": { "name": app.name },
        "spec": { "replicas": web_replicas(app) },
    });
    let workers = app.spec.workers.iter().map(|(name, w)| {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": format!("{}-{name}", app.name) },
            "spec": { "replicas": w.replicas },
        })
    });
    let config = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": app.config_name() },
        "data": app.spec.env.iter().map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
    });
    let namespace = json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": { "name": app.opts.namespace.clone().unwrap_or_else(|| app.name.clone()) },
    });
    let rename_ns = json!([{ "op": "replace", "path": "/metadata/name", "value": app.namespace }]);
    let patch = |v: &Value| json!({ "patch": yaml::document(v) });
    Ok(Kustomization {
        api_version: "kustomize.config.k8s.io/v1beta1",
        kind: "Kustomization",
        namespace: Some(app.namespace.clone()),
        labels: vec![json!({
            "pairs": { "ferry.dev/environment": env },
            "includeSelectors": false,
            "includeTemplates": true,
        })],
        resources: vec!["../../base".to_owned()],
        images: vec![image_entry(app)],
        patches: [patch(&replicas), patch(&config)]
            .into_iter()
            .chain(workers.map(|w| patch(&w)))
            .chain([json!({
                "target": { "kind": "Namespace", "name": namespace["metadata"]["name"] },
                "patch": yaml::document(&rename_ns),
            })])
            .collect(),
    })
}
