//! Options that tune a check run: build args, target stage, disabled rules, severity overrides.

use crate::finding::Severity;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What the caller can change about a check run. `Default` checks everything with default
/// severities.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// `--build-arg NAME=VALUE` values, overriding ARG defaults in Dockerfiles.
    pub build_args: BTreeMap<String, String>,
    /// `--target` stage; rules about the final image apply to this stage and what it uses.
    pub target: Option<String>,
    /// Rule ids (or names) that are not reported.
    pub disabled_rules: Vec<String>,
    /// Severity per rule id (or name), replacing the default.
    pub severity_overrides: BTreeMap<String, Severity>,
    /// Namespaces treated as production (single-replica workloads there are reported).
    /// Empty means `["production", "prod"]`.
    pub production_namespaces: Vec<String>,
    /// Directories holding JSON schemas for custom resources, named `<kind>_<version>.json`
    /// (lowercase kind, e.g. `certificate_v1.json`) or `<group>/<kind>_<version>.json`.
    pub crd_schema_dirs: Vec<PathBuf>,
}

impl CheckOptions {
    pub(crate) fn is_disabled(&self, rule: &str) -> bool {
        self.disabled_rules.iter().any(|d| same_rule(d, rule))
    }

    pub(crate) fn severity_for(&self, rule: &str) -> Option<Severity> {
        self.severity_overrides
            .iter()
            .find(|(k, _)| same_rule(k, rule))
            .map(|(_, s)| *s)
    }

    /// Whether `ns` counts as a production namespace.
    pub fn is_production_namespace(&self, ns: &str) -> bool {
        if self.production_namespaces.is_empty() {
            ns == "production" || ns == "prod"
        } else {
            self.production_namespaces.iter().any(|p| p == ns)
        }
    }
}

fn same_rule(given: &str, id: &str) -> bool {
    given.eq_ignore_ascii_case(id) || crate::rules::lookup(given).is_some_and(|r| r.id == id)
}
