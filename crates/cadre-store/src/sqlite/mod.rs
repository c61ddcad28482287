//! The embedded SQLite backend: one file in the data directory, WAL mode,
//! `synchronous=FULL` (a committed step survives power loss), foreign keys on.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use crate::{ConnectOptions, Result, StoreError};

pub(crate) struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// Write transactions of this process take turns here before asking
    /// SQLite for its one write lock: waiting in line is cheaper than
    /// SQLite's busy handler, which sleeps in growing steps (up to 100 ms)
    /// between retries.
    write_turn: Arc<tokio::sync::Mutex<()>>,
    pub(crate) events: crate::areas::events::EventSink,
}

/// A write transaction holding this process's write turn until it ends.
/// Derefs to the connection, like `sqlx::Transaction`.
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl WriteTx {
    pub(crate) async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

impl SqliteStore {
    pub(crate) const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

    /// Write transactions take the write lock up front: a deferred
    /// transaction that reads, then writes, fails at once with SQLITE_BUSY
    /// when another writer got in between, instead of waiting its turn.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx> {
        let turn = self.write_turn.clone().lock_owned().await;
        Ok(WriteTx {
            tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
            _turn: turn,
        })
    }

    /// Reads a live task for a write (the IMMEDIATE transaction already excludes other writers).
    pub(crate) const LOCK_TASK: &'static str = concat!(
        "SELECT ",
        crate::areas::tasks::task_columns!(),
        " FROM tasks WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL"
    );

    /// Serializes changes within one organization (its members, its task
    /// dependency graph). The IMMEDIATE
    /// transaction already holds the only write lock, so this only reads.
    pub(crate) const LOCK_ORG: &'static str = "SELECT id FROM orgs WHERE id = $1";

    /// Serializes changes to one org's dependency graph (see `LOCK_ORG`).
    pub(crate) const LOCK_GRAPH: &'static str = "SELECT $1";

    /// SQLite plans the recursive graph queries well as they are.
    pub(crate) const GRAPH_SETTINGS: &'static [&'static str] = &[];

    /// Claims the next ready jobs of a queue fairly, as the PostgreSQL
    /// claim does (lanes per org, ranked after what each lane already runs,
    /// per-org limit $6); the IMMEDIATE transaction makes it exclusive.
    pub(crate) const CLAIM_JOBS: &'static str = concat!(
        "WITH RECURSIVE lanes(lane) AS (
            SELECT (SELECT COALESCE(org_id, X'00000000000000000000000000000000') FROM jobs
                    WHERE queue = $1 AND state IN ('available', 'failed') AND run_at <= $2
                    ORDER BY COALESCE(org_id, X'00000000000000000000000000000000') LIMIT 1)
            UNION ALL
            SELECT (SELECT COALESCE(j.org_id, X'00000000000000000000000000000000') FROM jobs j
                    WHERE j.queue = $1 AND j.state IN ('available', 'failed') AND j.run_at <= $2
                      AND COALESCE(j.org_id, X'00000000000000000000000000000000') > lanes.lane
                    ORDER BY COALESCE(j.org_id, X'00000000000000000000000000000000') LIMIT 1)
            FROM lanes WHERE lanes.lane IS NOT NULL
         ), candidates AS (
            SELECT j.id, j.priority, j.run_at, l.lane,
                   (SELECT COUNT(*) FROM jobs r
                    WHERE r.queue = $1 AND r.state = 'running' AND COALESCE(r.org_id, X'00000000000000000000000000000000') = l.lane)
                   + ROW_NUMBER() OVER (PARTITION BY l.lane ORDER BY j.priority DESC, j.run_at, j.id) AS turn
            FROM lanes l JOIN jobs j ON j.id IN (
                SELECT k.id FROM jobs k
                WHERE k.queue = $1 AND k.state IN ('available', 'failed') AND k.run_at <= $2
                  AND COALESCE(k.org_id, X'00000000000000000000000000000000') = l.lane
                ORDER BY k.priority DESC, k.run_at, k.id LIMIT $3)
            WHERE l.lane IS NOT NULL
         ), picked AS (
            SELECT id FROM candidates WHERE turn <= $6 OR lane = X'00000000000000000000000000000000'
            ORDER BY turn, priority DESC, run_at, id LIMIT $3
         )
         UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_epoch = lease_epoch + 1,
                lease_until = $4, instance_id = $5, updated_at = $2
         WHERE id IN (SELECT id FROM picked)
         RETURNING ",
        crate::areas::jobs::job_columns!()
    );

    /// An agent's execution counts and totals (binds: org, agent, since);
    /// only the duration arithmetic differs between the databases.
    pub(crate) const AGENT_METRICS: &'static str =
        "SELECT COUNT(*) AS executions,
                CAST(COALESCE(SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END), 0) AS BIGINT) AS completed,
                CAST(COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT) AS failed,
                CAST(COALESCE(SUM(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END), 0) AS BIGINT) AS cancelled,
                CAST(COALESCE(SUM(steps), 0) AS BIGINT) AS steps,
                CAST(COALESCE(SUM(tokens_in), 0) AS BIGINT) AS tokens_in,
                CAST(COALESCE(SUM(tokens_out), 0) AS BIGINT) AS tokens_out,
                CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS cost_nanos,
                CAST(AVG((julianday(finished_at) - julianday(started_at)) * 86400000.0) AS REAL) AS avg_duration_ms
         FROM executions WHERE org_id = $1 AND agent_id = $2 AND ($3 IS NULL OR created_at >= $3)";

    /// An org's executions per UTC day since `$2` (timestamps are stored as
    /// RFC 3339 text in UTC, so the day is the first ten characters).
    pub(crate) const DAILY_USAGE: &'static str =
        "SELECT substr(created_at, 1, 10) AS day,
                COUNT(*) AS executions,
                CAST(COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT) AS failed,
                CAST(COALESCE(SUM(tokens_in + tokens_out), 0) AS BIGINT) AS tokens,
                CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS cost_nanos
         FROM executions WHERE org_id = $1 AND created_at >= $2
         GROUP BY day ORDER BY day";

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
        Ok(Self {
            pool,
            write_turn: Arc::default(),
            events: crate::areas::events::EventSink::default(),
        })
    }
}

#[async_trait::async_trait]
impl crate::store::Backend for SqliteStore {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn commit_lanes(&self) -> usize {
        1
    }

    fn event_sink(&self) -> &crate::areas::events::EventSink {
        &self.events
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
