//! Kubernetes rules: a hardened bundle is clean; each mutation fires its rule at the
//! right line. Also schema strictness, CRDs, Helm `# Source:` mapping and cross-file refs.

use ferry_check::{CheckOptions, FileKind, Finding, Severity, check_source, check_sources};

fn run(text: &str) -> Vec<Finding> {
    let opts = CheckOptions::default();
    check_source(FileKind::Kubernetes, "app.yaml", text, &opts)
}

fn fired(text: &str, rule: &str) -> Vec<Finding> {
    run(text).into_iter().filter(|f| f.rule == rule).collect()
}

const GOOD: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web, tier: front}
    spec:
      serviceAccountName: web
      securityContext: {runAsNonRoot: true, runAsUser: 10001}
      topologySpreadConstraints:
        - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}
      containers:
        - name: web
          image: registry.example/web:1.4.2
          ports:
            - {name: http, containerPort: 8080}
          env:
            - name: DB_PASSWORD
              valueFrom: {secretKeyRef: {name: web-db, key: password}}
          envFrom:
            - configMapRef: {name: web-config}
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits: {memory: 256Mi}
          readinessProbe: {httpGet: {path: /ready, port: http}}
          livenessProbe: {httpGet: {path: /health, port: http}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports:
    - {name: http, port: 80, targetPort: http}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  rules:
    - host: shop.example
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: web, port: {number: 80}}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: shop}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: web}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 5
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config, namespace: shop}
data: {LOG_LEVEL: info}
---
apiVersion: v1
kind: Secret
metadata: {name: web-db, namespace: shop}
type: Opaque
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: shop}
"#;

#[test]
fn a_hardened_bundle_is_clean() {
    let f = run(GOOD);
    assert!(f.is_empty(), "{f:#?}");
}

/// (rule, from, to, line of the finding)
const CASES: &[(&str, &str, &str, u32)] = &[
    (
        "K8S001",
        "  replicas: 2\n",
        "  replicas: 2\n  replica: 3\n",
        9,
    ),
    ("K8S002", "  replicas: 2\n", "  replicas: \"2\"\n", 8),
    ("K8S003", "            pathType: Prefix\n", "", 55),
    (
        "K8S004",
        "limits: {memory: 256Mi}",
        "limits: {memory: 1Gb}",
        31,
    ),
    (
        "K8S005",
        "labels: {app: web, tier: front}",
        "labels: {app: web, tier: -front}",
        13,
    ),
    ("K8S010", "            limits: {memory: 256Mi}\n", "", 20),
    (
        "K8S011",
        "          livenessProbe: {httpGet: {path: /health, port: http}}\n",
        "",
        20,
    ),
    (
        "K8S012",
        "      securityContext: {runAsNonRoot: true, runAsUser: 10001}\n",
        "",
        19,
    ),
    (
        "K8S013",
        "            readOnlyRootFilesystem: true\n",
        "",
        20,
    ),
    (
        "K8S014",
        "            allowPrivilegeEscalation: false\n",
        "",
        20,
    ),
    (
        "K8S015",
        "capabilities: {drop: [ALL]}",
        "capabilities: {drop: [ALL], add: [SYS_ADMIN]}",
        37,
    ),
    (
        "K8S016",
        "            allowPrivilegeEscalation: false\n",
        "            allowPrivilegeEscalation: false\n            privileged: true\n",
        36,
    ),
    (
        "K8S017",
        "      serviceAccountName: web\n",
        "      serviceAccountName: web\n      volumes: [{name: h, hostPath: {path: /var/run}}]\n",
        16,
    ),
    (
        "K8S018",
        "      serviceAccountName: web\n",
        "      serviceAccountName: web\n      hostNetwork: true\n",
        16,
    ),
    (
        "K8S019",
        "registry.example/web:1.4.2",
        "registry.example/web",
        21,
    ),
    ("K8S020", "  replicas: 2\n", "  replicas: 1\n", 8),
    (
        "K8S021",
        "  selector: {matchLabels: {app: web}}\n---\napiVersion: networking",
        "  selector: {matchLabels: {app: other}}\n---\napiVersion: networking",
        4,
    ),
    (
        "K8S022",
        "  podSelector: {}\n",
        "  podSelector: {matchLabels: {app: db}}\n",
        4,
    ),
    (
        "K8S023",
        "      topologySpreadConstraints:\n        - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}\n",
        "",
        4,
    ),
    (
        "K8S030",
        "    matchLabels: {app: web}\n  template",
        "    matchLabels: {app: webb}\n  template",
        10,
    ),
    (
        "K8S031",
        "  selector: {app: web}\n",
        "  selector: {app: api}\n",
        43,
    ),
    ("K8S032", "targetPort: http}", "targetPort: grpc}", 45),
    (
        "K8S033",
        "{service: {name: web, port: {number: 80}}}",
        "{service: {name: web, port: {number: 8080}}}",
        57,
    ),
    (
        "K8S034",
        "kind: Deployment, name: web}",
        "kind: Deployment, name: webapp}",
        77,
    ),
    (
        "K8S035",
        "configMapRef: {name: web-config}",
        "configMapRef: {name: web-cfg}",
        28,
    ),
    (
        "K8S036",
        "  selector: {matchLabels: {app: web}}\n---\napiVersion: networking",
        "  selector: {matchLabels: {app: other}}\n---\napiVersion: networking",
        64,
    ),
    (
        "SEC003",
        "              valueFrom: {secretKeyRef: {name: web-db, key: password}}",
        "              value: hunter2hunter2",
        26,
    ),
    (
        "YML002",
        "  replicas: 2\n",
        "  replicas: 2\n  replicas: 3\n",
        9,
    ),
];

#[test]
fn every_kubernetes_rule_fires_on_its_fixture_at_the_right_line() {
    let prod = CheckOptions {
        production_namespaces: vec!["shop".into()],
        ..CheckOptions::default()
    };
    let mut problems = Vec::new();
    for (rule, from, to, line) in CASES {
        assert!(GOOD.contains(from), "fixture for {rule} does not apply");
        let text = GOOD.replacen(from, to, 1);
        let opts = if *rule == "K8S020" {
            &prod
        } else {
            &CheckOptions::default()
        };
        let f: Vec<Finding> = check_source(FileKind::Kubernetes, "app.yaml", &text, opts)
            .into_iter()
            .filter(|f| f.rule == *rule)
            .collect();
        if f.is_empty() {
            problems.push(format!("{rule} did not fire; all: {:#?}", run(&text)));
        } else if f[0].line != *line {
            problems.push(format!("{rule}: expected line {line}, got {}", f[0].line));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn every_kubernetes_rule_has_a_fixture() {
    for r in ferry_check::rules::RULES
        .iter()
        .filter(|r| r.id.starts_with("K8S"))
    {
        if !["K8S006", "K8S007"].contains(&r.id) {
            assert!(
                CASES.iter().any(|(id, _, _, _)| *id == r.id),
                "no fixture for {}",
                r.id
            );
        }
    }
}

#[test]
fn unknown_field_has_exact_column_and_suggestion() {
    let text = GOOD.replacen("          readinessProbe:", "          readinesProbe:", 1);
    let f = fired(&text, "K8S001");
    assert_eq!((f[0].line, f[0].column, f[0].end_column), (32, 11, 24));
    assert_eq!(f[0].hint.as_deref(), Some("did you mean `readinessProbe`?"));
}

#[test]
fn custom_resources_are_reported_unless_a_schema_is_given() {
    let text = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 3, colour: red}\n";
    let f = fired(text, "K8S006");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Warning);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("example.com")).expect("mkdir");
    std::fs::write(
        dir.path().join("example.com/widget_v1.json"),
        r#"{"type":"object","properties":{"apiVersion":{"type":"string"},"kind":{"type":"string"},"metadata":{"type":"object"},"spec":{"type":"object","additionalProperties":false,"properties":{"size":{"type":"integer"}}}}}"#,
    )
    .expect("write");
    let opts = CheckOptions {
        crd_schema_dirs: vec![dir.path().to_path_buf()],
        ..CheckOptions::default()
    };
    let f = check_source(FileKind::Kubernetes, "w.yaml", text, &opts);
    assert!(!f.iter().any(|f| f.rule == "K8S006"), "{f:#?}");
    let unknown: Vec<_> = f.iter().filter(|f| f.rule == "K8S001").collect();
    assert_eq!(unknown.len(), 1);
    assert_eq!((unknown[0].line, unknown[0].column), (4, 17));
}

#[test]
fn removed_apis_are_errors() {
    let f = fired(
        "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: x}\n",
        "K8S006",
    );
    assert_eq!(f[0].severity, Severity::Error);
}

#[test]
fn helm_source_comments_map_findings_to_templates() {
    let text = "---\n# Source: app/templates/deploy.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template: {}\n";
    let f = fired(text, "K8S003");
    assert_eq!(
        f[0].source_template.as_deref(),
        Some("app/templates/deploy.yaml")
    );
}

#[test]
fn references_across_files_and_provability() {
    let deploy = GOOD.split("---\n").next().expect("first doc");
    // Alone: the ConfigMap/Secret/ServiceAccount may live elsewhere → warnings.
    let alone = run(deploy);
    let refs: Vec<_> = alone.iter().filter(|f| f.rule == "K8S035").collect();
    assert_eq!(refs.len(), 3, "{refs:#?}");
    assert!(refs.iter().all(|f| f.severity == Severity::Warning));
    // With the rest of the bundle in another file: resolved.
    let rest: String = GOOD
        .split("---\n")
        .skip(1)
        .collect::<Vec<_>>()
        .join("---\n");
    let r = check_sources(
        &[
            (FileKind::Kubernetes, "deploy.yaml", deploy),
            (FileKind::Kubernetes, "rest.yaml", &rest),
        ],
        &CheckOptions::default(),
    );
    assert!(
        r.findings.iter().all(|f| f.rule != "K8S035"),
        "{:#?}",
        r.findings
    );
    // Same file defines ConfigMaps in the namespace but not this one → provably missing.
    let text = GOOD.replacen(
        "configMapRef: {name: web-config}",
        "configMapRef: {name: web-cfg}",
        1,
    );
    let f = fired(&text, "K8S035");
    assert_eq!(f[0].severity, Severity::Error);
}

#[test]
fn literal_credentials_in_secret_manifests_are_reported_masked() {
    let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  DB_PASSWORD: hunter2hunter2\n  username: app\n";
    let f = fired(text, "SEC003");
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].line, f[0].column), (5, 16));
    assert!(!f[0].message.contains("hunter2"));
}

#[test]
fn objects_without_kind_are_reported_plain_values_are_not() {
    assert_eq!(
        fired("metadata: {name: x}\nspec: {replicas: 2}\n", "K8S007").len(),
        1
    );
    assert!(run("replicaCount: 2\nimage: {tag: 1.0}\n").is_empty());
}

#[test]
fn object_names_follow_their_kinds_rules() {
    let svc =
        "apiVersion: v1\nkind: Service\nmetadata: {name: web.v2}\nspec: {ports: [{port: 80}]}\n";
    assert_eq!(fired(svc, "K8S005")[0].line, 3);
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web.v2}\n";
    assert!(fired(cm, "K8S005").is_empty());
    let unnamed = "apiVersion: v1\nkind: ConfigMap\nmetadata: {labels: {a: b}}\n";
    assert_eq!(fired(unnamed, "K8S003").len(), 1);
}
