//! Image retention: after a successful rollout, the images of the app's last N revisions
//! (per environment, `strategy.retain_images`) are kept for `ferry rollback`; older images
//! that ferry built for the app are removed.
//!
//! Only images labelled `dev.ferry.app=<app>` (what `ferry build` sets) are candidates, so
//! an image ferry did not build is never touched; only images older than every retained
//! one go (a newer build may be about to be deployed); an image any container on the
//! engine uses (running or stopped) is kept; nothing is forced. What was removed is noted in the
//! rollout's timeline.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ferry_engine::{LABEL_APP, LABEL_ENV, LABEL_REVISION};
use ferry_store::RolloutId;

use crate::controller::Shared;

/// The label `ferry build` puts on every image it builds.
pub(crate) const LABEL_BUILT_FOR: &str = "dev.ferry.app";

/// Prunes the app's old images once the replaced replicas have stopped (at most
/// `settle` later); problems are logged (a failed prune never fails a rollout).
pub(crate) async fn prune(
    shared: Arc<Shared>,
    app: String,
    env: String,
    retain: u32,
    rollout: RolloutId,
    settle: Duration,
) {
    if retain == 0 {
        return;
    }
    wait_for_old_replicas(&shared, &app, &env, settle).await;
    match prune_images(&shared, &app, retain).await {
        Ok(removed) if removed.is_empty() => {}
        Ok(removed) => {
            let text = format!(
                "removed {} old image(s) of {app} (keeping the images of the last {retain} \
                 revision(s) per environment): {}",
                removed.len(),
                removed.join(", ")
            );
            tracing::info!(%app, %env, "{text}");
            if let Err(e) = shared
                .store
                .append_event(rollout, "note", &serde_json::json!({ "text": text }))
                .await
            {
                tracing::warn!(error = %e, "cannot record the image pruning");
            }
        }
        Err(e) => tracing::warn!(%app, error = %e, "cannot prune old images"),
    }
}

/// Waits (at most `settle`) until every container of `app`/`env` belongs to the live
/// revision or a warm one: the replaced replicas drain and stop after the rollout ends,
/// and their image is in use until then.
async fn wait_for_old_replicas(shared: &Shared, app: &str, env: &str, settle: Duration) {
    let deadline = tokio::time::Instant::now() + settle;
    loop {
        let mut keep: BTreeSet<String> = shared
            .apps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(app.to_owned(), env.to_owned()))
            .map(|e| e.warm.keys().cloned().collect())
            .unwrap_or_default();
        if let Ok(Some(live)) = shared.store.live_revision(app, env).await {
            keep.insert(live.number.to_string());
        }
        let others = shared
            .engine
            .list_containers(&[(LABEL_APP, app), (LABEL_ENV, env)])
            .await
            .map(|list| {
                list.iter()
                    .filter(|c| {
                        c.labels
                            .get(LABEL_REVISION)
                            .is_none_or(|rev| !keep.contains(rev))
                    })
                    .count()
            })
            .unwrap_or(0);
        if others == 0 || tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Removes the app's ferry-built images that no retained revision and no container uses;
/// returns what was removed (tags, or the id of an untagged image).
async fn prune_images(shared: &Shared, app: &str, retain: u32) -> Result<Vec<String>, String> {
    let engine = &shared.engine;
    let revisions = shared
        .store
        .app_revisions(app)
        .await
        .map_err(|e| e.to_string())?;
    // Newest first within each environment: keep the first `retain` of each, and any
    // revision that is live.
    let mut kept_refs = BTreeSet::new();
    let mut per_env: std::collections::BTreeMap<&str, u32> = Default::default();
    for r in &revisions {
        let seen = per_env.entry(r.env.as_str()).or_default();
        if *seen < retain || r.status == ferry_store::RevisionStatus::Live {
            kept_refs.insert(r.image.clone());
            if let Some(id) = &r.image_id {
                kept_refs.insert(id.clone());
            }
        }
        *seen += 1;
    }
    let mut kept_ids = BTreeSet::new();
    for reference in &kept_refs {
        if let Ok(info) = engine.inspect_image(reference).await {
            kept_ids.insert(info.id);
        }
    }
    let in_use: BTreeSet<String> = engine
        .list_containers(&[])
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|c| c.image_id)
        .collect();
    let candidates = engine
        .list_images(&[(LABEL_BUILT_FOR, app)])
        .await
        .map_err(|e| e.to_string())?;
    // Only images older than every retained one: a newer build may be about to be
    // deployed. (Creation times are in seconds: a tie is kept.)
    let Some(oldest_kept) = candidates
        .iter()
        .filter(|i| kept_ids.contains(&i.id))
        .map(|i| i.created)
        .min()
    else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for image in candidates {
        if image.labels.get(LABEL_BUILT_FOR).map(String::as_str) != Some(app)
            || kept_ids.contains(&image.id)
            || in_use.contains(&image.id)
            || image.created >= oldest_kept
        {
            continue;
        }
        // By tag, so an image with several tags goes without forcing; the last tag
        // removed deletes the image.
        let names = if image.tags.is_empty() || image.tags.iter().all(|t| t == "<none>:<none>") {
            vec![image.id.clone()]
        } else {
            image.tags.clone()
        };
        for name in names {
            match engine.remove_image(&name, false).await {
                Ok(()) => removed.push(name),
                // In use meanwhile, or referenced by a child image: kept.
                Err(e) if e.engine_status() == Some(409) => {}
                Err(e) if matches!(e.engine_status(), Some(404)) => {}
                Err(e) => tracing::warn!(image = %name, error = %e, "cannot remove an old image"),
            }
        }
    }
    Ok(removed)
}
