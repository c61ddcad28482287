//! Reachability and schema state, for `/health/detailed` and `cadre migrate`.

use std::time::Duration;

use crate::Result;

/// The schema as applied, against what this binary embeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersion {
    /// Highest migration applied successfully; `None` on an empty database.
    pub applied: Option<i64>,
    /// Highest migration this binary carries.
    pub latest: i64,
}

#[async_trait::async_trait]
pub trait HealthQueries: Send + Sync {
    /// Round-trips a trivial query; returns how long it took.
    async fn ping(&self) -> Result<Duration>;
    /// Which migrations are applied.
    async fn schema_version(&self) -> Result<SchemaVersion>;
    /// Applies pending migrations; returns the version afterwards.
    async fn migrate(&self) -> Result<i64>;
}

super::for_both_backends!(HealthQueries {
    async fn ping(&self) -> Result<Duration> {
        let started = std::time::Instant::now();
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(started.elapsed())
    }

    async fn schema_version(&self) -> Result<SchemaVersion> {
        let latest = Self::MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        // Before the first migration the bookkeeping table does not exist.
        let applied = sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MAX(version) FROM _sqlx_migrations WHERE success",
        )
        .fetch_one(&self.pool)
        .await
        .ok()
        .flatten();
        Ok(SchemaVersion { applied, latest })
    }

    async fn migrate(&self) -> Result<i64> {
        Self::MIGRATOR.run(&self.pool).await?;
        Ok(self.schema_version().await?.applied.unwrap_or(0))
    }
});
