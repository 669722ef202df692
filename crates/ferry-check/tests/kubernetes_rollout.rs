//! An Argo Rollout's pod template counts for selectors and pod-level rules.

use ferry_check::{CheckOptions, FileKind, check_sources};

const ROLLOUT: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
  namespace: shop
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: shop:1.2.3
          securityContext:
            privileged: true
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector:
    app: web
  ports:
    - port: 80
      targetPort: 8080
"#;

#[test]
fn a_service_selecting_a_rollouts_pods_is_not_orphaned() {
    let report = check_sources(
        &[(FileKind::Kubernetes, "rollout.yaml", ROLLOUT)],
        &CheckOptions::default(),
    );
    let rules: Vec<&str> = report.findings.iter().map(|f| f.rule).collect();
    assert!(!rules.contains(&"K8S031"), "{rules:?}");
    // The template is checked like a Deployment's: the privileged container is reported.
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.message.contains("privileged")),
        "{:#?}",
        report.findings
    );
}
