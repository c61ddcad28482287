//! The PostgreSQL backend, for several instances sharing one database.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::{ConnectOptions, Result, StoreError};

pub(crate) struct PgStore {
    pub(crate) pool: PgPool,
}

impl PgStore {
    pub(crate) const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// Serializes changes to one organization's members (row lock on the org).
    pub(crate) const LOCK_ORG: &'static str = "SELECT id FROM orgs WHERE id = $1 FOR UPDATE";

    /// Claims the next ready jobs of a queue, taking each organization in
    /// turn so one busy org cannot starve the rest; `SKIP LOCKED` lets many
    /// workers claim at once without waiting on each other.
    pub(crate) const CLAIM_JOBS: &'static str = concat!(
        "WITH ranked AS (
            SELECT id, priority, run_at,
                   ROW_NUMBER() OVER (PARTITION BY org_id ORDER BY priority DESC, run_at, id) AS turn
            FROM jobs WHERE queue = $1 AND state IN ('available', 'failed') AND run_at <= $2
         ), picked AS (
            SELECT j.id FROM jobs j JOIN ranked r ON r.id = j.id
            -- Repeated on `j` so that PostgreSQL re-checks them on the row it
            -- locks: a job claimed and committed by another worker since this
            -- statement's snapshot is skipped, not claimed twice.
            WHERE j.state IN ('available', 'failed') AND j.run_at <= $2
            ORDER BY r.turn, r.priority DESC, r.run_at, r.id LIMIT $3
            FOR UPDATE OF j SKIP LOCKED
         )
         UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_epoch = lease_epoch + 1,
                lease_until = $4, instance_id = $5, updated_at = $2
         WHERE id IN (SELECT id FROM picked) AND state IN ('available', 'failed')
         RETURNING ",
        crate::areas::jobs::job_columns!()
    );

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
            .connect_with(connect)
            .await
            .map_err(StoreError::Unavailable)?;
        Ok(Self { pool })
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

    async fn close(&self) {
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
