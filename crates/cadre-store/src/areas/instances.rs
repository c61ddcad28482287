//! The registry of running Cadre processes. Each one registers at start,
//! heartbeats while alive, and deregisters on a clean stop; an instance whose
//! heartbeat is stale is dead, and its leased work can be rescued.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;

/// What a process says about itself when it registers.
#[derive(Debug, Clone)]
pub struct InstanceIn {
    pub id: Uuid,
    pub hostname: String,
    pub pid: i64,
    pub version: String,
    /// `api`, `worker`, or `api,worker`.
    pub roles: String,
    pub started_at: OffsetDateTime,
}

/// A registered process.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InstanceRow {
    pub id: Uuid,
    pub hostname: String,
    pub pid: i64,
    pub version: String,
    pub roles: String,
    pub started_at: OffsetDateTime,
    pub heartbeat_at: OffsetDateTime,
}

#[async_trait::async_trait]
pub trait InstanceQueries: Send + Sync {
    /// Records a starting process.
    async fn register(&self, instance: &InstanceIn) -> Result<()>;
    /// Marks the process alive at `now`; `false` when it is no longer
    /// registered (another instance reaped it during a long pause).
    async fn heartbeat(&self, id: Uuid, now: OffsetDateTime) -> Result<bool>;
    /// Removes a process that is stopping cleanly.
    async fn deregister(&self, id: Uuid) -> Result<()>;
    /// Processes whose last heartbeat is at or after `since`, oldest first.
    async fn list_live(&self, since: OffsetDateTime) -> Result<Vec<InstanceRow>>;
    /// Removes processes whose last heartbeat is before `before`; returns
    /// their ids so their work can be rescued.
    async fn reap(&self, before: OffsetDateTime) -> Result<Vec<Uuid>>;
}

super::for_both_backends!(InstanceQueries {
    async fn register(&self, i: &InstanceIn) -> Result<()> {
        sqlx::query(
            "INSERT INTO instances (id, hostname, pid, version, roles, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(i.id)
        .bind(&i.hostname)
        .bind(i.pid)
        .bind(&i.version)
        .bind(&i.roles)
        .bind(i.started_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn heartbeat(&self, id: Uuid, now: OffsetDateTime) -> Result<bool> {
        let done = sqlx::query("UPDATE instances SET heartbeat_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn deregister(&self, id: Uuid) -> Result<()> {
        sqlx::query("DELETE FROM instances WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    async fn list_live(&self, since: OffsetDateTime) -> Result<Vec<InstanceRow>> {
        Ok(sqlx::query_as::<_, InstanceRow>(
            "SELECT id, hostname, pid, version, roles, started_at, heartbeat_at
             FROM instances WHERE heartbeat_at >= $1 ORDER BY started_at, id",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn reap(&self, before: OffsetDateTime) -> Result<Vec<Uuid>> {
        Ok(sqlx::query_scalar::<_, Uuid>("DELETE FROM instances WHERE heartbeat_at < $1 RETURNING id")
            .bind(before)
            .fetch_all(&self.pool)
            .await?)
    }
});
