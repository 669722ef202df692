//! Image builds: one row per `ferry build`, newest first when listed.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::Store;
use crate::error::{Result, query};
use crate::row;

/// A build to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBuild {
    /// The app name from ferry.toml.
    pub app: String,
    /// The environment the build was made for, if any.
    pub env: Option<String>,
    /// The image reference it was tagged with, e.g. `hello:3f2a9c1`.
    pub tag: String,
    /// The engine's image id (`sha256:...`).
    pub image_id: String,
    /// The git commit the build context came from (with `-dirty` when modified).
    pub git_sha: Option<String>,
    /// The image size in bytes.
    pub size_bytes: u64,
    /// The number of layers.
    pub layers: u64,
    /// How long the build took, in milliseconds.
    pub duration_ms: u64,
    /// Build steps served from the cache.
    pub cache_reused: u64,
    /// Build steps in total.
    pub cache_total: u64,
}

/// A recorded build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// The store's id for the build, increasing in recording order.
    pub id: i64,
    /// The app name.
    pub app: String,
    /// The environment, if any.
    pub env: Option<String>,
    /// The image reference.
    pub tag: String,
    /// The engine's image id.
    pub image_id: String,
    /// The git commit.
    pub git_sha: Option<String>,
    /// The image size in bytes.
    pub size_bytes: u64,
    /// The number of layers.
    pub layers: u64,
    /// How long the build took, in milliseconds.
    pub duration_ms: u64,
    /// Build steps served from the cache.
    pub cache_reused: u64,
    /// Build steps in total.
    pub cache_total: u64,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

const COLUMNS: &str = "id, app, env, tag, image_id, git_sha, size_bytes, layers, duration_ms, \
                       cache_reused, cache_total, created_at_ms";

impl BuildRecord {
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Self {
            id: row::get(row, "id")?,
            app: row::get(row, "app")?,
            env: row::get(row, "env")?,
            tag: row::get(row, "tag")?,
            image_id: row::get(row, "image_id")?,
            git_sha: row::get(row, "git_sha")?,
            size_bytes: row::count(row, "size_bytes")?,
            layers: row::count(row, "layers")?,
            duration_ms: row::count(row, "duration_ms")?,
            cache_reused: row::count(row, "cache_reused")?,
            cache_total: row::count(row, "cache_total")?,
            created_at: row::time(row, "created_at_ms")?,
        })
    }
}

impl Store {
    /// Records a finished build and returns it as stored.
    pub async fn record_build(&self, build: &NewBuild) -> Result<BuildRecord> {
        let sql = format!(
            "INSERT INTO builds (app, env, tag, image_id, git_sha, size_bytes, layers, \
             duration_ms, cache_reused, cache_total, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&build.app)
            .bind(build.env.as_deref())
            .bind(&build.tag)
            .bind(&build.image_id)
            .bind(build.git_sha.as_deref())
            .bind(row::to_i64("size_bytes", build.size_bytes)?)
            .bind(row::to_i64("layers", build.layers)?)
            .bind(row::to_i64("duration_ms", build.duration_ms)?)
            .bind(row::to_i64("cache_reused", build.cache_reused)?)
            .bind(row::to_i64("cache_total", build.cache_total)?)
            .bind(self.now_ms())
            .fetch_one(&self.pool)
            .await
            .map_err(query("record build"))?;
        BuildRecord::from_row(&row)
    }

    /// The latest `limit` builds of `app`, newest first.
    pub async fn builds(&self, app: &str, limit: u32) -> Result<Vec<BuildRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM builds WHERE app = $1 ORDER BY id DESC LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(app)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(query("list builds"))?;
        rows.iter().map(BuildRecord::from_row).collect()
    }
}
