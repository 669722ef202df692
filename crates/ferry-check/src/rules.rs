//! The rule catalogue: stable ids, names, default severities and equivalents in other tools.
//!
//! Ids are `<FAMILY><NNN>`: `DF` Dockerfile, `CP` compose, `K8S` Kubernetes, `YML` YAML
//! syntax shared by compose and Kubernetes, `SEC` hard-coded secrets. An id never changes
//! meaning once released; retired ids are not reused.

use crate::finding::Severity;

/// Static description of one rule.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Stable id (`DF001`).
    pub id: &'static str,
    /// Short kebab-case name (`dockerfile/latest-tag` style without the family prefix).
    pub name: &'static str,
    /// Default severity.
    pub severity: Severity,
    /// One-line rationale.
    pub summary: &'static str,
    /// Equivalent hadolint ids (DLxxxx); their `# hadolint ignore=` pragmas suppress this rule.
    pub hadolint: &'static [&'static str],
    /// Equivalent ids in kube-linter, kube-score, Polaris or Checkov (`tool:id`).
    pub others: &'static [&'static str],
}

const fn r(
    id: &'static str,
    name: &'static str,
    severity: Severity,
    summary: &'static str,
    hadolint: &'static [&'static str],
    others: &'static [&'static str],
) -> Rule {
    Rule {
        id,
        name,
        severity,
        summary,
        hadolint,
        others,
    }
}

use Severity::{Error as E, Info as I, Warning as W};

/// Every rule ferry-check knows, in id order per family.
pub static RULES: &[Rule] = &[
    // Dockerfile
    r(
        "DF000",
        "dockerfile-syntax",
        E,
        "The instruction cannot be parsed the way BuildKit would.",
        &[],
        &[],
    ),
    r(
        "DF001",
        "base-image-tag",
        W,
        "Base images must be pinned to a tag or digest other than `latest`.",
        &["DL3006", "DL3007"],
        &["checkov:CKV_DOCKER_7"],
    ),
    r(
        "DF002",
        "last-user-root",
        W,
        "The final image should not run as root.",
        &["DL3002"],
        &["checkov:CKV_DOCKER_8"],
    ),
    r(
        "DF003",
        "apt-pin-versions",
        I,
        "Pin versions in `apt-get install` for reproducible builds.",
        &["DL3008"],
        &[],
    ),
    r(
        "DF004",
        "apt-no-install-recommends",
        W,
        "Use `--no-install-recommends` to avoid pulling unneeded packages.",
        &["DL3015"],
        &[],
    ),
    r(
        "DF005",
        "apt-lists-not-removed",
        W,
        "Remove `/var/lib/apt/lists` in the same layer as `apt-get update`.",
        &["DL3009"],
        &[],
    ),
    r(
        "DF006",
        "apt-upgrade",
        W,
        "Do not run `apt-get upgrade`/`dist-upgrade` in an image; update the base image instead.",
        &["DL3005"],
        &[],
    ),
    r(
        "DF007",
        "apk-no-cache",
        W,
        "Use `apk add --no-cache` so the index does not end up in the layer.",
        &["DL3019"],
        &[],
    ),
    r(
        "DF008",
        "apk-pin-versions",
        I,
        "Pin versions in `apk add`.",
        &["DL3018"],
        &[],
    ),
    r(
        "DF009",
        "pip-no-cache-dir",
        W,
        "Use `pip install --no-cache-dir` so the wheel cache does not end up in the layer.",
        &["DL3042"],
        &[],
    ),
    r(
        "DF010",
        "pip-pin-versions",
        I,
        "Pin versions in `pip install` (or install from a lock/requirements file).",
        &["DL3013"],
        &[],
    ),
    r(
        "DF011",
        "npm-pin-versions",
        I,
        "Pin versions in `npm install <pkg>`.",
        &["DL3016"],
        &[],
    ),
    r(
        "DF012",
        "gem-pin-versions",
        I,
        "Pin versions in `gem install`.",
        &["DL3028"],
        &[],
    ),
    r(
        "DF013",
        "dnf-yum-hygiene",
        W,
        "Use `-y` and clean the dnf/yum/microdnf cache in the same layer.",
        &["DL3030", "DL3032", "DL3038", "DL3040", "DL3036"],
        &[],
    ),
    r(
        "DF014",
        "workdir-relative",
        W,
        "WORKDIR should be an absolute path.",
        &["DL3000"],
        &[],
    ),
    r(
        "DF015",
        "add-instead-of-copy",
        W,
        "Use COPY for local files; ADD only for URLs or archives to extract.",
        &["DL3020"],
        &["checkov:CKV_DOCKER_4"],
    ),
    r(
        "DF016",
        "multiple-cmd-entrypoint",
        W,
        "Only the last CMD/ENTRYPOINT of a stage takes effect.",
        &["DL4003", "DL4004"],
        &[],
    ),
    r(
        "DF017",
        "cd-instead-of-workdir",
        W,
        "Use WORKDIR instead of `cd` in RUN.",
        &["DL3003"],
        &[],
    ),
    r(
        "DF018",
        "sudo",
        W,
        "Do not use sudo in a Dockerfile; it has unpredictable TTY and signal behaviour.",
        &["DL3004"],
        &[],
    ),
    r(
        "DF019",
        "pipefail",
        W,
        "Set `SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]` (or `set -o pipefail`) before a RUN with a pipe.",
        &["DL4006"],
        &[],
    ),
    r(
        "DF020",
        "expose-invalid",
        E,
        "EXPOSE takes ports 0-65535 with an optional /tcp or /udp.",
        &["DL3011"],
        &["checkov:CKV_DOCKER_1"],
    ),
    r(
        "DF021",
        "copy-from-unknown-stage",
        E,
        "`COPY --from` names a stage that is not defined before it.",
        &["DL3022"],
        &[],
    ),
    r(
        "DF022",
        "maintainer-deprecated",
        I,
        "MAINTAINER is deprecated; use `LABEL org.opencontainers.image.authors`.",
        &["DL4000"],
        &[],
    ),
    r(
        "DF023",
        "no-healthcheck",
        W,
        "The final stage of a service image has no HEALTHCHECK.",
        &[],
        &["checkov:CKV_DOCKER_2"],
    ),
    r(
        "DF024",
        "secret-in-env-arg",
        E,
        "ENV and ARG values are stored in the image history; do not put secrets there.",
        &[],
        &["checkov:CKV_DOCKER_10"],
    ),
    r(
        "DF025",
        "context-before-manifest",
        W,
        "The whole build context is copied before dependencies are installed, so every source change busts the dependency cache.",
        &[],
        &[],
    ),
    r(
        "DF026",
        "dev-server-cmd",
        W,
        "The image starts a development server.",
        &[],
        &[],
    ),
    r(
        "DF027",
        "no-dockerignore",
        W,
        "The build context has no .dockerignore; .git, secrets and build output end up in the context.",
        &[],
        &[],
    ),
    r(
        "DF028",
        "cmd-shell-form",
        W,
        "Use the JSON form of CMD/ENTRYPOINT so the process receives signals.",
        &["DL3025"],
        &[],
    ),
    r(
        "DF029",
        "duplicate-stage-name",
        E,
        "Stage names must be unique.",
        &["DL3024"],
        &[],
    ),
    r(
        "DF030",
        "apt-instead-of-apt-get",
        W,
        "`apt` has no stable CLI for scripts; use `apt-get`.",
        &["DL3027"],
        &[],
    ),
    r(
        "DF031",
        "unknown-instruction",
        E,
        "Unknown Dockerfile instruction.",
        &[],
        &[],
    ),
    r(
        "DF032",
        "undefined-arg-in-from",
        W,
        "FROM uses a variable that no ARG before the first FROM declares, so it expands to an empty string.",
        &[],
        &[],
    ),
    // Compose
    r(
        "CP001",
        "unknown-key",
        E,
        "Unknown key in a compose file.",
        &[],
        &[],
    ),
    r(
        "CP002",
        "wrong-type",
        E,
        "A compose value has the wrong type.",
        &[],
        &[],
    ),
    r(
        "CP003",
        "no-healthcheck",
        W,
        "The service has no healthcheck, so dependents and restarts cannot tell when it is ready.",
        &[],
        &[],
    ),
    r(
        "CP004",
        "no-resource-limits",
        W,
        "The service has no memory/CPU limit.",
        &[],
        &[],
    ),
    r(
        "CP005",
        "image-latest",
        W,
        "The image is untagged or `latest`.",
        &[],
        &[],
    ),
    r(
        "CP006",
        "privileged",
        E,
        "The service runs privileged.",
        &[],
        &[],
    ),
    r(
        "CP007",
        "host-network",
        W,
        "The service uses the host network namespace.",
        &[],
        &[],
    ),
    r(
        "CP008",
        "depends-on-not-healthy",
        W,
        "`depends_on` a stateful service without `condition: service_healthy`.",
        &[],
        &[],
    ),
    r(
        "CP009",
        "database-published",
        W,
        "A database port is published on all interfaces.",
        &[],
        &[],
    ),
    r(
        "CP010",
        "undefined-reference",
        E,
        "A service refers to a network, volume, secret or service that is not defined.",
        &[],
        &[],
    ),
    r(
        "CP011",
        "no-restart-policy",
        I,
        "The service has no restart policy.",
        &[],
        &[],
    ),
    r(
        "CP012",
        "no-services",
        E,
        "A compose file must define `services`.",
        &[],
        &[],
    ),
    // Kubernetes
    r(
        "K8S001",
        "schema-unknown-field",
        E,
        "Field not in the Kubernetes schema (strict decoding rejects it).",
        &[],
        &["kubeconform:strict"],
    ),
    r(
        "K8S002",
        "schema-type",
        E,
        "Value has the wrong type for the Kubernetes schema.",
        &[],
        &["kubeconform"],
    ),
    r(
        "K8S003",
        "schema-required",
        E,
        "Required field is missing.",
        &[],
        &["kubeconform"],
    ),
    r(
        "K8S004",
        "invalid-quantity",
        E,
        "Invalid resource quantity.",
        &[],
        &["kubeconform"],
    ),
    r(
        "K8S005",
        "invalid-name",
        E,
        "Invalid object name, label key or label value.",
        &[],
        &["kubeconform"],
    ),
    r(
        "K8S006",
        "no-schema",
        W,
        "No schema for this kind (CRD or unknown apiVersion); it was not validated.",
        &[],
        &[],
    ),
    r(
        "K8S007",
        "missing-kind",
        E,
        "A YAML document looks like a Kubernetes object but lacks apiVersion or kind.",
        &[],
        &[],
    ),
    r(
        "K8S010",
        "no-resources",
        W,
        "Container has no CPU/memory requests or no memory limit.",
        &[],
        &[
            "kube-linter:unset-cpu-requirements",
            "kube-linter:unset-memory-requirements",
            "kube-score:container-resources",
            "polaris:cpuRequestsMissing",
            "checkov:CKV_K8S_10",
            "checkov:CKV_K8S_11",
            "checkov:CKV_K8S_12",
            "checkov:CKV_K8S_13",
        ],
    ),
    r(
        "K8S011",
        "no-probes",
        W,
        "Container has no readiness or liveness probe.",
        &[],
        &[
            "kube-score:pod-probes",
            "polaris:readinessProbeMissing",
            "polaris:livenessProbeMissing",
            "checkov:CKV_K8S_8",
            "checkov:CKV_K8S_9",
        ],
    ),
    r(
        "K8S012",
        "run-as-root",
        W,
        "Container may run as root (runAsNonRoot not true).",
        &[],
        &[
            "kube-linter:run-as-non-root",
            "polaris:runAsRootAllowed",
            "checkov:CKV_K8S_23",
        ],
    ),
    r(
        "K8S013",
        "writable-root-fs",
        W,
        "Container root filesystem is writable.",
        &[],
        &[
            "kube-linter:no-read-only-root-fs",
            "polaris:notReadOnlyRootFilesystem",
            "checkov:CKV_K8S_22",
        ],
    ),
    r(
        "K8S014",
        "privilege-escalation",
        W,
        "allowPrivilegeEscalation is not false.",
        &[],
        &[
            "kube-linter:privilege-escalation-container",
            "polaris:privilegeEscalationAllowed",
            "checkov:CKV_K8S_20",
        ],
    ),
    r(
        "K8S015",
        "capabilities",
        W,
        "Capabilities are not all dropped, or dangerous ones are added.",
        &[],
        &[
            "polaris:dangerousCapabilities",
            "checkov:CKV_K8S_28",
            "checkov:CKV_K8S_37",
        ],
    ),
    r(
        "K8S016",
        "privileged",
        E,
        "Container runs privileged.",
        &[],
        &[
            "kube-linter:privileged-container",
            "polaris:privilegedContainer",
            "checkov:CKV_K8S_16",
        ],
    ),
    r(
        "K8S017",
        "host-path",
        W,
        "Pod mounts a hostPath volume.",
        &[],
        &["kube-linter:host-mounts", "checkov:CKV_K8S_27"],
    ),
    r(
        "K8S018",
        "host-namespaces",
        E,
        "Pod shares the host network, PID or IPC namespace.",
        &[],
        &[
            "kube-linter:host-network",
            "kube-linter:host-pid",
            "kube-linter:host-ipc",
            "polaris:hostNetworkSet",
            "checkov:CKV_K8S_17",
            "checkov:CKV_K8S_18",
            "checkov:CKV_K8S_19",
        ],
    ),
    r(
        "K8S019",
        "image-latest",
        W,
        "Image is untagged or `latest`.",
        &[],
        &[
            "kube-linter:latest-tag",
            "kube-score:container-image-tag",
            "polaris:tagNotSpecified",
            "checkov:CKV_K8S_14",
        ],
    ),
    r(
        "K8S020",
        "single-replica",
        W,
        "A workload in a production namespace has a single replica.",
        &[],
        &[
            "kube-score:deployment-replicas",
            "polaris:deploymentMissingReplicas",
        ],
    ),
    r(
        "K8S021",
        "no-pdb",
        W,
        "A multi-replica workload has no PodDisruptionBudget selecting it.",
        &[],
        &[
            "kube-score:pod-disruption-budget",
            "polaris:missingPodDisruptionBudget",
        ],
    ),
    r(
        "K8S022",
        "no-network-policy",
        I,
        "No NetworkPolicy selects the workload's pods.",
        &[],
        &["kube-score:pod-networkpolicy"],
    ),
    r(
        "K8S023",
        "no-spread",
        I,
        "A multi-replica workload has neither pod anti-affinity nor topology spread constraints.",
        &[],
        &[
            "kube-linter:no-anti-affinity",
            "kube-score:deployment-has-host-podantiaffinity",
            "polaris:topologySpreadConstraint",
        ],
    ),
    r(
        "K8S030",
        "selector-mismatch",
        E,
        "The workload's selector does not match its pod template labels.",
        &[],
        &["kube-linter:mismatching-selector"],
    ),
    r(
        "K8S031",
        "service-selects-nothing",
        W,
        "The Service selects no pod template in the checked set.",
        &[],
        &[
            "kube-linter:dangling-service",
            "kube-score:service-targets-pod",
        ],
    ),
    r(
        "K8S032",
        "target-port",
        E,
        "The Service targetPort matches no container port of the selected pods.",
        &[],
        &[],
    ),
    r(
        "K8S033",
        "ingress-backend",
        E,
        "The Ingress backend refers to a Service or port that does not exist.",
        &[],
        &[
            "kube-linter:dangling-ingress",
            "kube-score:ingress-targets-service",
        ],
    ),
    r(
        "K8S034",
        "hpa-target",
        E,
        "The HorizontalPodAutoscaler's scale target does not exist.",
        &[],
        &["kube-linter:dangling-horizontalpodautoscaler"],
    ),
    r(
        "K8S035",
        "missing-reference",
        E,
        "A referenced ConfigMap, Secret, PersistentVolumeClaim or ServiceAccount is not in the checked set.",
        &[],
        &["kube-linter:non-existent-service-account"],
    ),
    r(
        "K8S036",
        "selector-selects-nothing",
        W,
        "A PodDisruptionBudget or NetworkPolicy selects no pod template in its namespace.",
        &[],
        &["kube-linter:dangling-networkpolicy"],
    ),
    // YAML
    r(
        "YML001",
        "yaml-syntax",
        E,
        "The YAML cannot be parsed.",
        &[],
        &[],
    ),
    r(
        "YML002",
        "duplicate-key",
        E,
        "A mapping has the same key twice; most parsers silently keep the last one.",
        &[],
        &[],
    ),
    // Secrets
    r(
        "SEC001",
        "hardcoded-token",
        E,
        "A credential in a known token format is hard-coded.",
        &[],
        &["checkov:CKV_SECRET_2", "checkov:CKV_SECRET_6"],
    ),
    r(
        "SEC002",
        "private-key",
        E,
        "A private key is hard-coded.",
        &[],
        &["checkov:CKV_SECRET_13"],
    ),
    r(
        "SEC003",
        "hardcoded-password",
        E,
        "A password or secret is assigned a literal value.",
        &[],
        &["checkov:CKV_SECRET_6", "kube-linter:env-var-secret"],
    ),
    // Suppressions
    r(
        "FER001",
        "unused-suppression",
        I,
        "A `# ferry:ignore` comment suppresses nothing.",
        &[],
        &[],
    ),
    r(
        "FER003",
        "suppression-without-reason",
        I,
        "A `# ferry:ignore` comment gives no reason.",
        &[],
        &[],
    ),
    r(
        "FER002",
        "unknown-rule-in-suppression",
        W,
        "A `# ferry:ignore` comment names an unknown rule id.",
        &[],
        &[],
    ),
];

/// BuildKit's own Dockerfile checks (`docker build --check`) and the ferry rule each one
/// corresponds to; `# check=skip=<names>` directives suppress these ferry rules.
pub static BUILDKIT: &[(&str, &str)] = &[
    ("JSONArgsRecommended", "DF028"),
    ("MaintainerDeprecated", "DF022"),
    ("WorkdirRelativePath", "DF014"),
    ("SecretsUsedInArgOrEnv", "DF024"),
    ("MultipleInstructionsDisallowed", "DF016"),
    ("DuplicateStageName", "DF029"),
    ("ExposeInvalidFormat", "DF020"),
    ("UndefinedArgInFrom", "DF032"),
];

/// Ferry rules equivalent to a BuildKit check name (`all` for every mapped rule).
pub fn by_buildkit(name: &str) -> Vec<&'static str> {
    BUILDKIT
        .iter()
        .filter(|(b, _)| name.eq_ignore_ascii_case("all") || b.eq_ignore_ascii_case(name))
        .map(|(_, id)| *id)
        .collect()
}

/// The rule with this id (case-insensitive) or kebab name.
pub fn lookup(id: &str) -> Option<&'static Rule> {
    RULES
        .iter()
        .find(|r| r.id.eq_ignore_ascii_case(id) || r.name.eq_ignore_ascii_case(id))
}

/// Rules equivalent to a hadolint id (`DL3008`).
pub fn by_hadolint(dl: &str) -> impl Iterator<Item = &'static Rule> + '_ {
    RULES
        .iter()
        .filter(move |r| r.hadolint.iter().any(|h| h.eq_ignore_ascii_case(dl)))
}

/// Documentation anchor for a rule.
pub fn help_url(id: &str) -> String {
    format!(
        "https://example.invalid/ferry/docs/check.md#{}",
        id.to_ascii_lowercase()
    )
}

/// Text for `ferry check --explain RULE`: id, name, default severity, rationale, the
/// equivalent rules of other tools and where the documentation is. `None` for unknown ids.
pub fn explain(id: &str) -> Option<String> {
    let r = lookup(id)?;
    let mut s = format!(
        "{} {} (default: {})\n\n{}\n",
        r.id,
        r.name,
        r.severity.as_str(),
        r.summary
    );
    if !r.hadolint.is_empty() {
        s.push_str(&format!(
            "\nhadolint: {} (`# hadolint ignore={}` pragmas suppress this rule)\n",
            r.hadolint.join(", "),
            r.hadolint.join(",")
        ));
    }
    if !r.others.is_empty() {
        s.push_str(&format!("equivalents: {}\n", r.others.join(", ")));
    }
    for (b, _) in BUILDKIT.iter().filter(|(_, id)| *id == r.id) {
        s.push_str(&format!(
            "BuildKit check: {b} (`# check=skip={b}` suppresses this rule)\n"
        ));
    }
    if let Some((_, bad, good)) = crate::dockerfile::EXAMPLES
        .iter()
        .find(|(id, _, _)| *id == r.id)
    {
        s.push_str(&format!(
            "\nreported:\n{}\nfixed:\n{}",
            indent(bad),
            indent(good)
        ));
    } else if let Some((_, good)) = FIXED.iter().find(|(id, _)| *id == r.id) {
        s.push_str(&format!("\nfixed:\n{}", indent(good)));
    }
    s.push_str(&format!(
        "\nsuppress one occurrence with `# ferry:ignore {} <reason>`; docs: {}\n",
        r.id,
        help_url(r.id)
    ));
    Some(s)
}

/// A fixed example for compose, Kubernetes, YAML and secret rules (Dockerfile rules use
/// [`crate::dockerfile::EXAMPLES`], which also show the violation).
static FIXED: &[(&str, &str)] = &[
    (
        "CP001",
        "services:\n  web:\n    healthcheck:            # not `helthcheck`\n      test: [\"CMD\", \"/app\", \"health\"]\n",
    ),
    (
        "CP002",
        "services:\n  web:\n    mem_limit: 512m         # a string or a number, not a list\n",
    ),
    (
        "CP003",
        "services:\n  web:\n    healthcheck:\n      test: [\"CMD\", \"curl\", \"-f\", \"http://localhost:8080/health\"]\n      interval: 10s\n      retries: 3\n",
    ),
    (
        "CP004",
        "services:\n  web:\n    deploy:\n      resources:\n        limits: {memory: 512M, cpus: \"1.0\"}\n",
    ),
    ("CP005", "services:\n  db:\n    image: postgres:16.4\n"),
    (
        "CP006",
        "services:\n  web:\n    cap_add: [NET_BIND_SERVICE]   # instead of privileged: true\n",
    ),
    (
        "CP007",
        "services:\n  web:\n    ports: [\"8080:8080\"]        # instead of network_mode: host\n",
    ),
    (
        "CP008",
        "services:\n  web:\n    depends_on:\n      db: {condition: service_healthy}\n",
    ),
    (
        "CP009",
        "services:\n  db:\n    ports: [\"127.0.0.1:5432:5432\"]   # or no ports at all\n",
    ),
    (
        "CP010",
        "services:\n  web:\n    networks: [front]\nnetworks:\n  front: {}\n",
    ),
    ("CP011", "services:\n  web:\n    restart: unless-stopped\n"),
    (
        "CP012",
        "services:\n  web:\n    image: registry.example/web:1.4.2\n",
    ),
    (
        "K8S001",
        "spec:\n  replicas: 3               # not `replica`\n",
    ),
    (
        "K8S002",
        "spec:\n  replicas: 3               # a number, not \"3\"\n",
    ),
    (
        "K8S003",
        "spec:\n  selector:\n    matchLabels: {app: web}\n",
    ),
    (
        "K8S004",
        "resources:\n  limits: {memory: 1Gi}     # not 1Gb\n",
    ),
    (
        "K8S005",
        "metadata:\n  name: web-v2              # lowercase, `-`, no `_`\n",
    ),
    (
        "K8S006",
        "# pass crd_schema_dirs with <kind>_<version>.json for custom resources\n",
    ),
    (
        "K8S007",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-config}\n",
    ),
    (
        "K8S010",
        "resources:\n  requests: {cpu: 100m, memory: 128Mi}\n  limits: {memory: 256Mi}\n",
    ),
    (
        "K8S011",
        "readinessProbe: {httpGet: {path: /ready, port: http}}\nlivenessProbe: {httpGet: {path: /health, port: http}}\n",
    ),
    (
        "K8S012",
        "securityContext: {runAsNonRoot: true, runAsUser: 10001}\n",
    ),
    (
        "K8S013",
        "securityContext: {readOnlyRootFilesystem: true}\nvolumeMounts: [{name: tmp, mountPath: /tmp}]\n",
    ),
    (
        "K8S014",
        "securityContext: {allowPrivilegeEscalation: false}\n",
    ),
    (
        "K8S015",
        "securityContext:\n  capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}\n",
    ),
    ("K8S016", "securityContext: {privileged: false}\n"),
    (
        "K8S017",
        "volumes: [{name: data, persistentVolumeClaim: {claimName: web-data}}]\n",
    ),
    (
        "K8S018",
        "spec:\n  hostNetwork: false         # the default; use a Service for traffic\n",
    ),
    (
        "K8S019",
        "image: registry.example/web:1.4.2   # or @sha256:...\n",
    ),
    ("K8S020", "spec:\n  replicas: 2\n"),
    (
        "K8S021",
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec:\n  maxUnavailable: 1\n  selector: {matchLabels: {app: web}}\n",
    ),
    (
        "K8S022",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: default-deny}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n",
    ),
    (
        "K8S023",
        "topologySpreadConstraints:\n  - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {app: web}}}\n",
    ),
    (
        "K8S030",
        "selector: {matchLabels: {app: web}}\ntemplate:\n  metadata: {labels: {app: web}}\n",
    ),
    (
        "K8S031",
        "kind: Service\nspec:\n  selector: {app: web}       # equal to the pod template labels\n",
    ),
    (
        "K8S032",
        "ports: [{port: 80, targetPort: http}]   # `http` is a containerPort name\n",
    ),
    (
        "K8S033",
        "backend: {service: {name: web, port: {number: 80}}}   # an existing Service port\n",
    ),
    (
        "K8S034",
        "scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n",
    ),
    (
        "K8S035",
        "envFrom: [{configMapRef: {name: web-config}}]   # defined in the same set\n",
    ),
    (
        "K8S036",
        "spec:\n  selector: {matchLabels: {app: web}}   # matches a pod template\n",
    ),
    (
        "YML001",
        "key: [a, b]                 # brackets and quotes balanced\n",
    ),
    (
        "YML002",
        "env:\n  LOG_LEVEL: info            # each key once\n",
    ),
    (
        "SEC001",
        "env:\n  - name: API_TOKEN\n    valueFrom: {secretKeyRef: {name: api, key: token}}\n",
    ),
    (
        "SEC002",
        "volumes: [{name: tls, secret: {secretName: web-tls}}]\n",
    ),
    ("SEC003", "environment:\n  DB_PASSWORD: ${DB_PASSWORD}\n"),
];

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn explain_by_id_or_name_and_unknown() {
        let e = super::explain("base-image-tag").expect("known");
        assert!(e.starts_with("DF001 base-image-tag (default: warning)"));
        assert!(e.contains("DL3006, DL3007"));
        assert!(e.contains("reported:\n    FROM debian\n"), "{e}");
        assert!(super::explain("XX999").is_none());
        assert!(
            super::explain("K8S010")
                .expect("known")
                .contains("fixed:\n    resources:")
        );
    }

    #[test]
    fn every_rule_except_suppression_hygiene_has_an_example() {
        for r in super::RULES
            .iter()
            .filter(|r| !r.id.starts_with("FER") && r.id != "DF027")
        {
            let e = super::explain(r.id).expect("known");
            assert!(e.contains("fixed:"), "no example for {}", r.id);
        }
    }
}
