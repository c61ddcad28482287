//! The PostgreSQL backend, for several instances sharing one database.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::{ConnectOptions, Result, StoreError};

pub(crate) struct PgStore {
    pub(crate) pool: PgPool,
    /// Where batches of engine steps are committed (see
    /// [`COMMIT_CONNECTIONS`]).
    pub(crate) commits: PgPool,
    pub(crate) events: crate::areas::events::EventSink,
}

/// Connections of the pool that commits batches of engine steps, and so
/// how many batches the engine keeps in flight. Two: with one statement a
/// batch, fewer batches in flight grow each batch, and 64 concurrent
/// executions ran 1,842–2,574 steps/s with two, 1,552–2,078 with three or
/// four and 1,413–1,472 with eight, whose batches of one or two steps cost
/// PostgreSQL twice the CPU per step (docs/benchmarks.md).
///
/// Its sessions use generic plans: the batch statement's text is the same
/// whatever the batch's size (rows go in as arrays), so PostgreSQL's
/// default would plan it anew for each batch, 0.4 ms of a one-step batch's
/// 1 ms. A pool of its own keeps that setting off the rest of the
/// application's statements, and a step's commit never waits behind API
/// queries for a connection.
const COMMIT_CONNECTIONS: u32 = 2;

impl PgStore {
    pub(crate) const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// Reads a live task for a write, locking its row.
    pub(crate) const LOCK_TASK: &'static str = concat!(
        "SELECT ",
        crate::areas::tasks::task_columns!(),
        " FROM tasks WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL FOR NO KEY UPDATE"
    );

    /// Serializes changes within one organization (its members, its task
    /// dependency graph): a row lock on the org.
    /// (`NO KEY UPDATE`: inserts that reference the org — every tenant
    /// row's foreign key — are not blocked by it.)
    pub(crate) const LOCK_ORG: &'static str = "SELECT id FROM orgs WHERE id = $1 FOR NO KEY UPDATE";

    /// Serializes changes to one org's dependency graph (a transaction
    /// advisory lock: nothing else in the org waits for it).
    pub(crate) const LOCK_GRAPH: &'static str =
        "SELECT pg_advisory_xact_lock(hashtextextended('graph:' || $1::text, 0))";

    /// Run before the recursive graph queries: with statistics that lag a
    /// growing edge table (before autovacuum analyzes it) the planner scans
    /// every edge on each step of the walk — 680 ms instead of 4 ms around a
    /// task of a 1,000-node DAG, 55 ms instead of under 1 ms for a cycle
    /// check. The walks always have an index to use.
    /// Bitmap scans go too: a stale estimate of the live-task partial
    /// indexes made the planner read every live task through them.
    pub(crate) const GRAPH_SETTINGS: &'static [&'static str] = &[
        "SET LOCAL enable_seqscan = off",
        "SET LOCAL enable_bitmapscan = off",
    ];

    /// Claims the next ready jobs of a queue fairly: lanes (one per org,
    /// system jobs in the nil lane) are found with a loose index scan, each
    /// lane offers its best `limit` jobs ranked after the jobs it already has
    /// running, and the lowest ranks win — so one busy org cannot starve the
    /// rest and no lane passes the per-org limit ($6). `SKIP LOCKED` lets
    /// many workers claim at once without waiting on each other.
    pub(crate) const CLAIM_JOBS: &'static str = concat!(
        "WITH RECURSIVE lanes(lane) AS (
            SELECT (SELECT COALESCE(org_id, '00000000-0000-0000-0000-000000000000'::uuid) FROM jobs
                    WHERE queue = $1 AND state IN ('available', 'failed') AND run_at <= $2
                    ORDER BY COALESCE(org_id, '00000000-0000-0000-0000-000000000000'::uuid) LIMIT 1)
            UNION ALL
            SELECT (SELECT COALESCE(j.org_id, '00000000-0000-0000-0000-000000000000'::uuid) FROM jobs j
                    WHERE j.queue = $1 AND j.state IN ('available', 'failed') AND j.run_at <= $2
                      AND COALESCE(j.org_id, '00000000-0000-0000-0000-000000000000'::uuid) > lanes.lane
                    ORDER BY COALESCE(j.org_id, '00000000-0000-0000-0000-000000000000'::uuid) LIMIT 1)
            FROM lanes WHERE lanes.lane IS NOT NULL
         ), candidates AS (
            SELECT c.id, c.priority, c.run_at, l.lane,
                   r.running + ROW_NUMBER() OVER (PARTITION BY l.lane ORDER BY c.priority DESC, c.run_at, c.id) AS turn
            FROM lanes l
            CROSS JOIN LATERAL (
                SELECT COUNT(*) AS running FROM jobs r
                WHERE r.queue = $1 AND r.state = 'running'
                  AND COALESCE(r.org_id, '00000000-0000-0000-0000-000000000000'::uuid) = l.lane) r
            CROSS JOIN LATERAL (
                SELECT j.id, j.priority, j.run_at FROM jobs j
                WHERE j.queue = $1 AND j.state IN ('available', 'failed') AND j.run_at <= $2
                  AND COALESCE(j.org_id, '00000000-0000-0000-0000-000000000000'::uuid) = l.lane
                ORDER BY j.priority DESC, j.run_at, j.id LIMIT $3) c
            WHERE l.lane IS NOT NULL
         ), ranked AS (
            -- A few times the batch, so claimers racing for the same jobs
            -- still find unlocked ones, and a small, well-estimated set that
            -- the planner joins by primary key instead of scanning `jobs`.
            SELECT id, turn, priority, run_at FROM candidates
            WHERE turn <= $6 OR lane = '00000000-0000-0000-0000-000000000000'::uuid
            ORDER BY turn, priority DESC, run_at, id LIMIT $3 * 4
         ), picked AS (
            SELECT j.id FROM ranked c JOIN jobs j ON j.id = c.id
            -- Repeated on `j` so that PostgreSQL re-checks them on the row it
            -- locks: a job claimed and committed by another worker since this
            -- statement's snapshot is skipped, not claimed twice.
            WHERE j.state IN ('available', 'failed') AND j.run_at <= $2
            ORDER BY c.turn, c.priority DESC, c.run_at, c.id LIMIT $3
            FOR UPDATE OF j SKIP LOCKED
         )
         UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_epoch = lease_epoch + 1,
                lease_until = $4, instance_id = $5, updated_at = $2
         WHERE id IN (SELECT id FROM picked) AND state IN ('available', 'failed')
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
                CAST(AVG(EXTRACT(EPOCH FROM finished_at - started_at) * 1000) AS DOUBLE PRECISION) AS avg_duration_ms
         FROM executions WHERE org_id = $1 AND agent_id = $2 AND ($3 IS NULL OR created_at >= $3)";

    /// An org's executions per UTC day since `$2`.
    pub(crate) const DAILY_USAGE: &'static str =
        "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
                COUNT(*) AS executions,
                CAST(COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT) AS failed,
                CAST(COALESCE(SUM(tokens_in + tokens_out), 0) AS BIGINT) AS tokens,
                CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS cost_nanos
         FROM executions WHERE org_id = $1 AND created_at >= $2
         GROUP BY day ORDER BY day";

    /// Serializes appends to one audit chain, including the platform chain
    /// that has no org row to lock.
    pub(crate) const LOCK_AUDIT_CHAIN: &'static str =
        "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))";

    pub(crate) async fn connect(url: &str, options: &ConnectOptions) -> Result<Self> {
        let mut connect = PgConnectOptions::from_str(url).map_err(StoreError::Database)?;
        if let Some(schema) = &options.pg_schema {
            ensure_schema(connect.clone(), schema).await?;
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(StoreError::Unavailable)?;
        let commits = PgPoolOptions::new()
            .max_connections(COMMIT_CONNECTIONS)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect.options([("plan_cache_mode", "force_generic_plan")]));
        Ok(Self {
            pool,
            commits,
            events: crate::areas::events::EventSink::default(),
        })
    }
}

/// Creates the schema if it is missing. Its name is an identifier, which
/// cannot be a bind parameter, so it is restricted to a safe alphabet.
async fn ensure_schema(connect: PgConnectOptions, schema: &str) -> Result<()> {
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(StoreError::Database(sqlx::Error::Configuration(
            format!("invalid PostgreSQL schema name {schema:?}: use a-z, 0-9 and _").into(),
        )));
    }
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(connect)
        .await
        .map_err(StoreError::Unavailable)?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {schema}"
    )))
    .execute(&pool)
    .await?;
    pool.close().await;
    Ok(())
}

#[async_trait::async_trait]
impl crate::store::Backend for PgStore {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn commit_lanes(&self) -> usize {
        COMMIT_CONNECTIONS as usize
    }

    fn event_sink(&self) -> &crate::areas::events::EventSink {
        &self.events
    }

    async fn close(&self) {
        self.commits.close().await;
        self.pool.close().await;
    }

    async fn announce_jobs(&self, queue: &str) {
        if let Err(e) = sqlx::query("SELECT pg_notify('cadre_jobs', $1)")
            .bind(queue)
            .execute(&self.pool)
            .await
        {
            // Workers elsewhere still find the job on their next poll.
            tracing::debug!(error = %e, "could not announce a new job");
        }
    }

    fn job_listener(
        &self,
        wakeups: std::sync::Arc<tokio::sync::Notify>,
    ) -> Option<crate::store::JobListener> {
        let pool = self.pool.clone();
        Some(Box::pin(async move {
            let mut delay = std::time::Duration::from_millis(100);
            loop {
                match listen(&pool, &wakeups).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "job notifications interrupted; reconnecting (workers poll meanwhile)");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(std::time::Duration::from_secs(10));
                    }
                }
            }
        }))
    }
}

/// Relays `NOTIFY cadre_jobs` to local waiters until the connection fails.
async fn listen(
    pool: &PgPool,
    wakeups: &tokio::sync::Notify,
) -> std::result::Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen("cadre_jobs").await?;
    loop {
        listener.recv().await?;
        wakeups.notify_waiters();
    }
}
