//! Images: inspect, list and remove by label.

use std::collections::{BTreeMap, HashMap};

use bollard::query_parameters::{ListImagesOptions, RemoveImageOptions};

use crate::engine::Engine;
use crate::error::{EngineError, api};

/// What ferry needs to know about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The image id (`sha256:...`).
    pub id: String,
    /// Tags pointing at it.
    pub tags: Vec<String>,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Number of filesystem layers.
    pub layers: usize,
    /// Image labels.
    pub labels: BTreeMap<String, String>,
    /// The image's default user (`USER`), empty when unset (root).
    pub user: String,
    /// Whether the image declares a HEALTHCHECK (other than `NONE`).
    pub has_healthcheck: bool,
    /// Exposed ports, e.g. `8080/tcp`.
    pub exposed_ports: Vec<String>,
}

/// A short entry of an image listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// The image id.
    pub id: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Creation time, seconds since the epoch.
    pub created: i64,
}

/// Docker filters for `key=value` (or bare `key`) label selectors.
pub(crate) fn label_filters(labels: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    let values = labels
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                (*k).to_owned()
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    HashMap::from([("label".to_owned(), values)])
}

impl Engine {
    /// Inspects an image by id or reference.
    pub async fn inspect_image(&self, reference: &str) -> Result<ImageInfo, EngineError> {
        let info = self.docker.inspect_image(reference).await.map_err(|e| {
            if matches!(
                e,
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                }
            ) {
                EngineError::NotFound {
                    kind: "image",
                    name: reference.to_owned(),
                }
            } else {
                api(format!("inspect image {reference}"))(e)
            }
        })?;
        let config = info.config.unwrap_or_default();
        let has_healthcheck = config
            .healthcheck
            .and_then(|h| h.test)
            .is_some_and(|t| !t.is_empty() && t[0] != "NONE");
        Ok(ImageInfo {
            id: info.id.unwrap_or_default(),
            tags: info.repo_tags.unwrap_or_default(),
            size_bytes: info.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            layers: info.root_fs.and_then(|r| r.layers).map_or(0, |l| l.len()),
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            user: config.user.unwrap_or_default(),
            has_healthcheck,
            exposed_ports: {
                let mut ports: Vec<String> = config
                    .exposed_ports
                    .unwrap_or_default()
                    .into_keys()
                    .collect();
                ports.sort();
                ports
            },
        })
    }

    /// Lists images carrying all the given labels (`("ferry.app", "hello")`; an empty value
    /// matches any value).
    pub async fn list_images(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<ImageSummary>, EngineError> {
        let options = ListImagesOptions {
            filters: Some(label_filters(labels)),
            ..Default::default()
        };
        let images = self
            .docker
            .list_images(Some(options))
            .await
            .map_err(api("list images"))?;
        Ok(images
            .into_iter()
            .map(|i| ImageSummary {
                id: i.id,
                tags: i.repo_tags,
                labels: i.labels.into_iter().collect(),
                size_bytes: u64::try_from(i.size).unwrap_or(0),
                created: i.created,
            })
            .collect())
    }

    /// Removes an image (all its tags when given an id). `force` also untags an image
    /// used by stopped containers.
    pub async fn remove_image(&self, reference: &str, force: bool) -> Result<(), EngineError> {
        let options = RemoveImageOptions {
            force,
            noprune: false,
        };
        self.docker
            .remove_image(reference, Some(options), None)
            .await
            .map(|_| ())
            .map_err(api(format!("remove image {reference}")))
    }

    /// Keeps the `keep` newest images with the given labels (and every image in
    /// `protect`, e.g. those of revisions still running or kept warm) and removes the
    /// others. An image a container still uses is skipped, not forced. Returns the ids
    /// removed.
    pub async fn prune_images(
        &self,
        labels: &[(&str, &str)],
        keep: usize,
        protect: &[String],
    ) -> Result<Vec<String>, EngineError> {
        let mut images = self.list_images(labels).await?;
        // Newest first; the id breaks ties between images built in the same second.
        images.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
        let mut removed = Vec::new();
        for image in images.into_iter().skip(keep) {
            if protect.iter().any(|p| p == &image.id) {
                continue;
            }
            match self.remove_image(&image.id, false).await {
                Ok(()) => removed.push(image.id),
                // In use by a container (409): keep it.
                Err(e) if e.engine_status() == Some(409) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Removes every image with the given labels; returns the ids removed.
    pub async fn remove_images(
        &self,
        labels: &[(&str, &str)],
        force: bool,
    ) -> Result<Vec<String>, EngineError> {
        let mut removed = Vec::new();
        for image in self.list_images(labels).await? {
            self.remove_image(&image.id, force).await?;
            removed.push(image.id);
        }
        Ok(removed)
    }
}
