//! The embedded SQLite backend: one file in the data directory, WAL mode,
//! `synchronous=FULL` (a committed step survives power loss), foreign keys on.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::{ConnectOptions, Result, StoreError};

pub(crate) struct SqliteStore {
    pub(crate) pool: SqlitePool,
}

impl SqliteStore {
    pub(crate) const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

    /// Write transactions take the write lock up front: a deferred
    /// transaction that reads, then writes, fails at once with SQLITE_BUSY
    /// when another writer got in between, instead of waiting its turn.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Serializes changes to one organization's members. The IMMEDIATE
    /// transaction already holds the only write lock, so this only reads.
    pub(crate) const LOCK_ORG: &'static str = "SELECT id FROM orgs WHERE id = $1";

    /// Claims the next ready jobs of a queue, taking each organization in
    /// turn (its oldest, highest-priority job first) so one busy org cannot
    /// starve the rest. The IMMEDIATE transaction makes the claim exclusive.
    pub(crate) const CLAIM_JOBS: &'static str = concat!(
        "WITH ranked AS (
            SELECT id, priority, run_at,
                   ROW_NUMBER() OVER (PARTITION BY org_id ORDER BY priority DESC, run_at, id) AS turn
            FROM jobs WHERE queue = $1 AND state IN ('available', 'failed') AND run_at <= $2
         ), picked AS (
            SELECT id FROM ranked ORDER BY turn, priority DESC, run_at, id LIMIT $3
         )
         UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_epoch = lease_epoch + 1,
                lease_until = $4, instance_id = $5, updated_at = $2
         WHERE id IN (SELECT id FROM picked)
         RETURNING ",
        crate::areas::jobs::job_columns!()
    );

    /// Serializes appends to one audit chain (see `LOCK_ORG`).
    pub(crate) const LOCK_AUDIT_CHAIN: &'static str = "SELECT $1";

    pub(crate) async fn connect(path: &Path, options: &ConnectOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::from_str("sqlite://")
            .map_err(StoreError::Database)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(options.sqlite_busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(StoreError::Unavailable)?;
        tracing::debug!(path = %path.display(), "opened SQLite database");
        Ok(Self { pool })
    }
}

#[async_trait::async_trait]
impl crate::store::Backend for SqliteStore {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    /// Every writer of an SQLite file is this process: the local wake-up
    /// in [`crate::Store::enqueue`] is all it takes.
    async fn announce_jobs(&self, _queue: &str) {}

    fn job_listener(
        &self,
        _wakeups: std::sync::Arc<tokio::sync::Notify>,
    ) -> Option<crate::store::JobListener> {
        None
    }
}
