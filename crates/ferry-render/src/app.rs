//! What every renderer derives from the spec the same way: names, labels, the image, the
//! namespace, resource limits in each platform's units, and the notes about defaults chosen.

use std::cell::RefCell;
use std::collections::BTreeMap;

use ferry_spec::{Resources, Spec, StrategyKind, Web};

use crate::{Error, RenderOptions, RolloutsMode};

/// The user id containers run as when `security.user` is unset: the conventional
/// "nonroot" id of distroless images, so `runAsNonRoot` can be verified by the kubelet.
pub(crate) const DEFAULT_UID: i64 = 65532;

/// CPU limit when the spec sets none (a limit is part of the hardened profile).
pub(crate) const DEFAULT_CPUS: f64 = 0.5;
/// Memory limit when the spec sets none, in bytes (256 MiB).
pub(crate) const DEFAULT_MEMORY: u64 = 256 * 1024 * 1024;
/// Process limit when the spec sets none.
pub(crate) const DEFAULT_PIDS: u32 = 256;

/// The image reference split the way kustomize and GitOps promotions need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRef {
    /// Registry and repository, without tag or digest.
    pub name: String,
    /// The tag, if any.
    pub tag: Option<String>,
    /// The digest (`sha256:…`), if any.
    pub digest: Option<String>,
}

impl ImageRef {
    pub(crate) fn parse(reference: &str) -> Self {
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest.to_owned())),
            None => (reference, None),
        };
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (
                rest[..slash + i].to_owned(),
                Some(rest[slash + i + 1..].to_owned()),
            ),
            None => (rest.to_owned(), None),
        };
        Self { name, tag, digest }
    }

    /// The full reference (`name:tag@digest`).
    pub(crate) fn full(&self) -> String {
        let mut s = self.name.clone();
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest);
        }
        s
    }
}

/// The spec plus everything derived from it once.
pub(crate) struct App<'a> {
    pub spec: &'a Spec,
    pub opts: &'a RenderOptions,
    /// The app's name.
    pub name: String,
    /// The environment, when rendering for one.
    pub env: Option<String>,
    /// The image deployed.
    pub image: ImageRef,
    /// The namespace of this rendering (base: `<app>`, environment: `<app>-<env>`).
    pub namespace: String,
    /// Defaults chosen for the user, reported as notes.
    pub notes: RefCell<Vec<String>>,
}

impl<'a> App<'a> {
    /// `runtime`: whether the target runs containers (k8s, compose, ECS), which is when
    /// notes about the image, user and limits apply.
    pub(crate) fn new(
        spec: &'a Spec,
        env: Option<&str>,
        opts: &'a RenderOptions,
        runtime: bool,
    ) -> Result<Self, Error> {
        if let Some(env) = env {
            check_label(env)?;
        }
        for env in &opts.environments {
            check_label(env)?;
        }
        let name = spec.app.as_str().to_owned();
        let mut notes = Vec::new();
        let image = match opts.image.as_deref().or(spec.image.as_deref()) {
            Some(image) => ImageRef::parse(image),
            None => {
                if runtime {
                    notes.push(format!(
                        "no image given: rendered {name}:unreleased; pass --image with the tag \
                     `ferry build` printed (or a digest)"
                    ));
                }
                ImageRef {
                    name: name.clone(),
                    tag: Some("unreleased".to_owned()),
                    digest: None,
                }
            }
        };
        let namespace = match (&opts.namespace, env) {
            (Some(ns), _) => ns.clone(),
            (None, Some(env)) => format!("{name}-{env}"),
            (None, None) => name.clone(),
        };
        if runtime && spec.security.user.is_none() {
            notes.push(format!(
                "security.user is unset: containers run as uid/gid {DEFAULT_UID} so the \
                 non-root policy can be enforced; set security.user to your image's user"
            ));
        }
        if let Some(web) = &spec.web
            && runtime
            && !web.resources.is_fully_limited()
        {
            notes.push(format!(
                "web.resources is incomplete: defaults applied (cpus {DEFAULT_CPUS}, memory \
                 256Mi, pids {DEFAULT_PIDS}) so every container is limited"
            ));
        }
        Ok(Self {
            spec,
            opts,
            name,
            env: env.map(str::to_owned),
            image,
            namespace,
            notes: RefCell::new(notes),
        })
    }

    /// Records a note for the user.
    pub(crate) fn note(&self, note: impl Into<String>) {
        self.notes.borrow_mut().push(note.into());
    }

    /// The web role, which every runtime target needs.
    pub(crate) fn web(&self, target: &'static str) -> Result<&'a Web, Error> {
        self.spec.web.as_ref().ok_or(Error::NoWebRole(target))
    }

    /// The environment's name, or `base`.
    pub(crate) fn env_name(&self) -> &str {
        self.env.as_deref().unwrap_or("base")
    }

    /// Whether canary/blue-green render as an Argo Rollout.
    pub(crate) fn uses_argo_rollout(&self) -> bool {
        self.opts.rollouts == RolloutsMode::Auto && self.spec.strategy.kind != StrategyKind::Rolling
    }

    /// Labels that select a role's pods (stable across releases).
    pub(crate) fn selector(&self, component: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), self.name.clone()),
            (
                "app.kubernetes.io/component".to_owned(),
                component.to_owned(),
            ),
        ])
    }

    /// The recommended labels of every object of a role.
    pub(crate) fn labels(&self, component: &str) -> BTreeMap<String, String> {
        let mut labels = self.selector(component);
        labels.insert("app.kubernetes.io/part-of".to_owned(), self.name.clone());
        labels.insert(
            "app.kubernetes.io/managed-by".to_owned(),
            "ferry".to_owned(),
        );
        labels
    }

    /// The Secret holding the app's secret values (referenced, never rendered with values).
    pub(crate) fn secret_name(&self) -> String {
        format!("{}-secrets", self.name)
    }

    /// The ConfigMap holding `env`.
    pub(crate) fn config_name(&self) -> String {
        format!("{}-env", self.name)
    }

    /// `(uid, gid)` the containers run as.
    pub(crate) fn user(&self) -> (i64, i64) {
        let parse = |s: &str| s.trim().parse::<i64>().ok();
        match self.spec.security.user.as_deref() {
            Some(user) => match user.split_once(':') {
                Some((u, g)) => (
                    parse(u).unwrap_or(DEFAULT_UID),
                    parse(g).unwrap_or(DEFAULT_UID),
                ),
                None => {
                    let uid = parse(user).unwrap_or(DEFAULT_UID);
                    (uid, uid)
                }
            },
            None => (DEFAULT_UID, DEFAULT_UID),
        }
    }
}

fn check_label(env: &str) -> Result<(), Error> {
    let ok = !env.is_empty()
        && env.len() <= 40
        && env.starts_with(|c: char| c.is_ascii_lowercase())
        && !env.ends_with('-')
        && env
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidEnvironment(env.to_owned()))
    }
}

/// Limits with the defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    pub cpus: f64,
    pub memory: u64,
    pub pids: u32,
}

impl Limits {
    pub(crate) fn of(resources: &Resources) -> Self {
        Self {
            cpus: resources.cpus.unwrap_or(DEFAULT_CPUS),
            memory: resources.memory.map_or(DEFAULT_MEMORY, |m| m.bytes()),
            pids: resources.pids.unwrap_or(DEFAULT_PIDS),
        }
    }

    /// CPU in Kubernetes millicores (`"500m"`).
    pub(crate) fn millicores(&self) -> String {
        format!("{}m", (self.cpus * 1000.0).round().max(1.0) as u64)
    }

    /// Memory as a Kubernetes quantity (`"256Mi"` when exact, else bytes).
    pub(crate) fn memory_quantity(&self) -> String {
        const MI: u64 = 1024 * 1024;
        if self.memory.is_multiple_of(MI) {
            format!("{}Mi", self.memory / MI)
        } else {
            self.memory.to_string()
        }
    }

    /// Memory in MiB, rounded up (compose and ECS units).
    pub(crate) fn memory_mib(&self) -> u64 {
        self.memory.div_ceil(1024 * 1024)
    }
}

/// Whole seconds of a duration, rounded up, at least `min`.
pub(crate) fn secs(d: ferry_spec::Duration, min: u64) -> u64 {
    d.as_millis().div_ceil(1000).max(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_into_name_tag_and_digest() {
        let r = ImageRef::parse("registry.local:5000/team/shop:3f2a1c9");
        assert_eq!(r.name, "registry.local:5000/team/shop");
        assert_eq!(r.tag.as_deref(), Some("3f2a1c9"));
        assert_eq!(r.digest, None);
        let d = ImageRef::parse("shop@sha256:abc");
        assert_eq!(
            (d.name.as_str(), d.tag, d.digest.as_deref()),
            ("shop", None, Some("sha256:abc"))
        );
        assert_eq!(ImageRef::parse("registry.local:5000/shop").tag, None);
        assert_eq!(r.full(), "registry.local:5000/team/shop:3f2a1c9");
    }
}
