//! The durable job queue's storage: enqueue (deduplicated by unique key),
//! fair claiming with leases, fenced writes, retries, rescue and clean-up.
//!
//! Every write a worker makes after claiming carries the [`Lease`] it got;
//! once the lease has been rescued and claimed again its epoch is stale and
//! the write is refused with [`StoreError::StaleLease`].

use std::time::Duration;

use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Result, StoreError};

macro_rules! job_columns {
    () => {
        "id, queue, kind, payload, org_id, priority, state, run_at, attempts, max_attempts, backoff_base_ms, timeout_secs, unique_key, lease_until, lease_epoch, instance_id, last_error, created_at, updated_at, finished_at"
    };
}
pub(crate) use job_columns;

/// Inserts a job (binds: id, queue, kind, payload, org_id, priority, run_at,
/// max_attempts, backoff_base_ms, timeout_secs, unique_key, now); a pending
/// job with the same unique key makes it a no-op returning nothing.
macro_rules! insert_job_sql {
    () => {
        concat!(
            "INSERT INTO jobs (id, queue, kind, payload, org_id, priority, state, run_at, attempts, max_attempts,
                               backoff_base_ms, timeout_secs, unique_key, lease_epoch, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'available', $7, 0, $8, $9, $10, $11, 0, $12, $12)
             ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL AND state IN ('available', 'running', 'failed')
             DO NOTHING
             RETURNING ",
            $crate::areas::jobs::job_columns!()
        )
    };
}
pub(crate) use insert_job_sql;

/// Binds a [`NewJob`] to [`insert_job_sql`].
macro_rules! bind_new_job {
    ($query:expr, $job:expr, $now:expr) => {
        $query
            .bind(cadre_types::new_id())
            .bind(&$job.queue)
            .bind(&$job.kind)
            .bind(Json(&$job.payload))
            .bind($job.org_id)
            .bind($job.priority)
            .bind($job.run_at)
            .bind($job.max_attempts.max(1))
            .bind($crate::areas::jobs::millis($job.backoff_base))
            .bind(i64::try_from($job.timeout.as_secs()).unwrap_or(i64::MAX))
            .bind(&$job.unique_key)
            .bind($now)
    };
}
pub(crate) use bind_new_job;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Available,
    Running,
    /// Failed, and will be retried at `run_at`.
    Failed,
    Completed,
    /// Out of attempts; kept with its last error.
    Dead,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Running => "running",
            Self::Failed => "failed",
            Self::Completed => "completed",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Available,
            Self::Running,
            Self::Failed,
            Self::Completed,
            Self::Dead,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// The queue workers take by default, and the engine's.
pub const DEFAULT_QUEUE: &str = "default";

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: String,
    /// What the payload is, with its version (`agent_step.v1`).
    pub kind: String,
    pub payload: Value,
    pub org_id: Option<Uuid>,
    /// Higher runs first.
    pub priority: i64,
    pub run_at: OffsetDateTime,
    pub max_attempts: i64,
    /// First retry delay; doubled per attempt, with jitter.
    pub backoff_base: Duration,
    pub timeout: Duration,
    /// While a job with this key is pending or running, enqueueing another
    /// returns it instead.
    pub unique_key: Option<String>,
}

impl NewJob {
    /// A job with the defaults: now, priority 0, 5 attempts, 1 s backoff,
    /// 5 minute timeout.
    pub fn new(queue: &str, kind: &str, payload: Value) -> Self {
        Self {
            queue: queue.to_owned(),
            kind: kind.to_owned(),
            payload,
            org_id: None,
            priority: 0,
            run_at: cadre_types::time::now(),
            max_attempts: 5,
            backoff_base: Duration::from_secs(1),
            timeout: Duration::from_secs(300),
            unique_key: None,
        }
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct JobRow {
    pub id: Uuid,
    pub queue: String,
    pub kind: String,
    pub payload: Json<Value>,
    pub org_id: Option<Uuid>,
    pub priority: i64,
    pub state: String,
    pub run_at: OffsetDateTime,
    pub attempts: i64,
    pub max_attempts: i64,
    pub backoff_base_ms: i64,
    pub timeout_secs: i64,
    pub unique_key: Option<String>,
    pub lease_until: Option<OffsetDateTime>,
    pub lease_epoch: i64,
    pub instance_id: Option<Uuid>,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

impl JobRow {
    pub fn state(&self) -> Option<JobState> {
        JobState::parse(&self.state)
    }

    /// The lease this claim holds.
    pub fn lease(&self) -> Lease {
        Lease {
            job_id: self.id,
            epoch: self.lease_epoch,
        }
    }
}

/// Proof of a claim: the job and the epoch it was claimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub job_id: Uuid,
    pub epoch: i64,
}

/// The delay before retry `attempt` (1-based): `base × 2^(attempt−1)`,
/// at most an hour, scaled by `jitter` in [0, 1] to between half and all of it.
pub fn backoff(base: Duration, attempt: i64, jitter: f64) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    let delay = base
        .saturating_mul(2u32.saturating_pow(exp))
        .min(Duration::from_secs(3600));
    delay.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

#[async_trait::async_trait]
pub trait JobQueries: Send + Sync {
    /// Inserts a job; returns it and whether it is new (`false`: a pending
    /// job with the same unique key already existed and is returned). Use
    /// [`crate::Store::enqueue`], which also wakes the workers.
    async fn insert_job(&self, job: &NewJob) -> Result<(JobRow, bool)>;
    /// Inserts many jobs in one transaction; returns how many were new.
    async fn insert_jobs(&self, jobs: &[NewJob]) -> Result<u64>;
    /// Claims up to `limit` ready jobs of `queue` for `instance`, taking
    /// organizations in turn; with `per_org`, an org's jobs are not claimed
    /// while it already has that many running in this queue (system jobs,
    /// with no org, are not limited). Concurrent claimers on PostgreSQL read
    /// the running count at the same moment, so a burst can pass the limit
    /// by the number of claims racing.
    async fn claim(
        &self,
        queue: &str,
        limit: u32,
        lease: Duration,
        instance: Uuid,
        now: OffsetDateTime,
        per_org: Option<u32>,
    ) -> Result<Vec<JobRow>>;
    /// Extends a lease.
    async fn heartbeat_job(&self, lease: Lease, until: OffsetDateTime) -> Result<()>;
    async fn complete_job(&self, lease: Lease, now: OffsetDateTime) -> Result<()>;
    /// Completes many jobs in one statement; returns the ids completed (a
    /// job whose lease is stale is left out).
    async fn complete_jobs(&self, leases: &[Lease], now: OffsetDateTime) -> Result<Vec<Uuid>>;
    /// Records a failure: `failed` to run again at `retry_at`, or `dead`
    /// when out of attempts or when `retry_at` is `None` (not worth
    /// retrying). Returns the new state.
    async fn fail_job(
        &self,
        lease: Lease,
        error: &str,
        retry_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<JobState>;
    /// Gives a claimed job back (shutdown before it finished): available
    /// again at once, the attempt not counted.
    async fn release_job(&self, lease: Lease, now: OffsetDateTime) -> Result<()>;
    /// Makes running jobs whose lease expired available again.
    async fn rescue_expired(&self, now: OffsetDateTime) -> Result<u64>;
    /// Makes the running jobs of a dead instance available again.
    async fn rescue_instance(&self, instance: Uuid, now: OffsetDateTime) -> Result<u64>;
    /// Cancels a job that has not finished.
    async fn cancel_job(&self, id: Uuid, now: OffsetDateTime) -> Result<()>;
    /// Makes a failed or dead job available now.
    async fn retry_job_now(&self, id: Uuid, now: OffsetDateTime) -> Result<()>;
    /// Deletes finished jobs (completed, dead, cancelled) finished before `before`.
    async fn purge_jobs(&self, before: OffsetDateTime) -> Result<u64>;
    async fn job(&self, id: Uuid) -> Result<Option<JobRow>>;
    /// The newest jobs, optionally of one state and queue (operator view).
    async fn list_jobs(
        &self,
        state: Option<JobState>,
        queue: Option<&str>,
        limit: u32,
    ) -> Result<Vec<JobRow>>;
    /// Ready-or-waiting jobs of a queue and the oldest `run_at` among them.
    async fn queue_depth(&self, queue: &str) -> Result<(u64, Option<OffsetDateTime>)>;
}

/// Rows per multi-row INSERT in [`JobQueries::insert_jobs`].
const INSERT_CHUNK: usize = 1000;

pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

super::for_both_backends!(JobQueries {
    async fn insert_job(&self, job: &NewJob) -> Result<(JobRow, bool)> {
        let now = cadre_types::time::now();
        let inserted = bind_new_job!(sqlx::query_as::<_, JobRow>(insert_job_sql!()), job, now)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = inserted {
            return Ok((row, true));
        }
        let existing = sqlx::query_as::<_, JobRow>(concat!(
            "SELECT ", job_columns!(), " FROM jobs
             WHERE queue = $1 AND unique_key = $2 AND state IN ('available', 'running', 'failed')"))
        .bind(&job.queue)
        .bind(&job.unique_key)
        .fetch_one(&self.pool)
        .await?;
        Ok((existing, false))
    }

    async fn insert_jobs(&self, jobs: &[NewJob]) -> Result<u64> {
        let now = cadre_types::time::now();
        let mut tx = self.begin_write().await?;
        let mut created = 0;
        // Multi-row INSERTs: 12 binds a row stays under both backends'
        // parameter limits at this chunk size.
        for chunk in jobs.chunks(INSERT_CHUNK) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO jobs (id, queue, kind, payload, org_id, priority, state, run_at, attempts, max_attempts,
                                   backoff_base_ms, timeout_secs, unique_key, lease_epoch, created_at, updated_at) ",
            );
            insert.push_values(chunk, |mut row, job| {
                row.push_bind(cadre_types::new_id())
                    .push_bind(&job.queue)
                    .push_bind(&job.kind)
                    .push_bind(Json(&job.payload))
                    .push_bind(job.org_id)
                    .push_bind(job.priority)
                    .push("'available'")
                    .push_bind(job.run_at)
                    .push("0")
                    .push_bind(job.max_attempts.max(1))
                    .push_bind(millis(job.backoff_base))
                    .push_bind(i64::try_from(job.timeout.as_secs()).unwrap_or(i64::MAX))
                    .push_bind(&job.unique_key)
                    .push("0")
                    .push_bind(now)
                    .push_bind(now);
            });
            insert.push(
                " ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL AND state IN ('available', 'running', 'failed')
                  DO NOTHING RETURNING id",
            );
            created += insert.build().fetch_all(&mut *tx).await?.len() as u64;
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn claim(&self, queue: &str, limit: u32, lease: Duration, instance: Uuid, now: OffsetDateTime, per_org: Option<u32>) -> Result<Vec<JobRow>> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query_as::<_, JobRow>(Self::CLAIM_JOBS)
            .bind(queue)
            .bind(now)
            .bind(i64::from(limit))
            .bind(now + lease)
            .bind(instance)
            .bind(per_org.map_or(i64::MAX, i64::from))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
    }

    async fn heartbeat_job(&self, lease: Lease, until: OffsetDateTime) -> Result<()> {
        let done = sqlx::query("UPDATE jobs SET lease_until = $3 WHERE id = $1 AND lease_epoch = $2 AND state = 'running'")
            .bind(lease.job_id)
            .bind(lease.epoch)
            .bind(until)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::StaleLease) }
    }

    async fn complete_job(&self, lease: Lease, now: OffsetDateTime) -> Result<()> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'completed', lease_until = NULL, finished_at = $3, updated_at = $3, last_error = NULL
             WHERE id = $1 AND lease_epoch = $2 AND state = 'running'",
        )
        .bind(lease.job_id)
        .bind(lease.epoch)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::StaleLease) }
    }

    async fn complete_jobs(&self, leases: &[Lease], now: OffsetDateTime) -> Result<Vec<Uuid>> {
        self.complete_many(leases, now).await
    }

    async fn fail_job(&self, lease: Lease, error: &str, retry_at: Option<OffsetDateTime>, now: OffsetDateTime) -> Result<JobState> {
        let state: Option<String> = sqlx::query_scalar(
            "UPDATE jobs SET
                state = CASE WHEN attempts >= max_attempts OR $3 IS NULL THEN 'dead' ELSE 'failed' END,
                finished_at = CASE WHEN attempts >= max_attempts OR $3 IS NULL THEN $4 ELSE NULL END,
                run_at = COALESCE($3, run_at),
                lease_until = NULL, last_error = $5, updated_at = $4
             WHERE id = $1 AND lease_epoch = $2 AND state = 'running'
             RETURNING state",
        )
        .bind(lease.job_id)
        .bind(lease.epoch)
        .bind(retry_at)
        .bind(now)
        .bind(error.chars().take(4000).collect::<String>())
        .fetch_optional(&self.pool)
        .await?;
        state.and_then(|s| JobState::parse(&s)).ok_or(StoreError::StaleLease)
    }

    async fn release_job(&self, lease: Lease, now: OffsetDateTime) -> Result<()> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'available', lease_until = NULL, instance_id = NULL, updated_at = $3,
                    attempts = attempts - 1
             WHERE id = $1 AND lease_epoch = $2 AND state = 'running'",
        )
        .bind(lease.job_id)
        .bind(lease.epoch)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::StaleLease) }
    }

    async fn rescue_expired(&self, now: OffsetDateTime) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE jobs SET state = 'available', lease_until = NULL, instance_id = NULL, updated_at = $1
             WHERE state = 'running' AND lease_until < $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn rescue_instance(&self, instance: Uuid, now: OffsetDateTime) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE jobs SET state = 'available', lease_until = NULL, instance_id = NULL, updated_at = $2
             WHERE state = 'running' AND instance_id = $1",
        )
        .bind(instance)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn cancel_job(&self, id: Uuid, now: OffsetDateTime) -> Result<()> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', lease_until = NULL, finished_at = $2, updated_at = $2
             WHERE id = $1 AND state IN ('available', 'running', 'failed')",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::NotFound) }
    }

    async fn retry_job_now(&self, id: Uuid, now: OffsetDateTime) -> Result<()> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'available', run_at = $2, finished_at = NULL, updated_at = $2,
                    max_attempts = CASE WHEN attempts >= max_attempts THEN attempts + 1 ELSE max_attempts END
             WHERE id = $1 AND state IN ('failed', 'dead')",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::NotFound) }
    }

    async fn purge_jobs(&self, before: OffsetDateTime) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM jobs WHERE state IN ('completed', 'dead', 'cancelled') AND finished_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn job(&self, id: Uuid) -> Result<Option<JobRow>> {
        Ok(sqlx::query_as::<_, JobRow>(concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn list_jobs(&self, state: Option<JobState>, queue: Option<&str>, limit: u32) -> Result<Vec<JobRow>> {
        Ok(sqlx::query_as::<_, JobRow>(concat!(
            "SELECT ", job_columns!(), " FROM jobs
             WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR queue = $2)
             ORDER BY created_at DESC, id DESC LIMIT $3"))
        .bind(state.map(JobState::as_str))
        .bind(queue)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn queue_depth(&self, queue: &str) -> Result<(u64, Option<OffsetDateTime>)> {
        let (count, oldest): (i64, Option<OffsetDateTime>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(run_at) FROM jobs WHERE queue = $1 AND state IN ('available', 'failed')",
        )
        .bind(queue)
        .fetch_one(&self.pool)
        .await?;
        Ok((u64::try_from(count).unwrap_or(0), oldest))
    }
});

impl crate::postgres::PgStore {
    async fn complete_many(&self, leases: &[Lease], now: OffsetDateTime) -> Result<Vec<Uuid>> {
        let (ids, epochs): (Vec<Uuid>, Vec<i64>) =
            leases.iter().map(|l| (l.job_id, l.epoch)).unzip();
        // The commit does not wait for the WAL flush: a completion lost to
        // a database crash only means the job runs again (at-least-once),
        // and its lease still fences. Claims keep full durability — a lost
        // claim could hand out the same epoch twice.
        Ok(sqlx::query_scalar(
            "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))
             UPDATE jobs SET state = 'completed', lease_until = NULL, finished_at = $3, updated_at = $3, last_error = NULL
             FROM UNNEST($1::uuid[], $2::int8[]) AS done(id, epoch), relaxed
             WHERE jobs.id = done.id AND jobs.lease_epoch = done.epoch AND jobs.state = 'running'
             RETURNING jobs.id",
        )
        .bind(ids)
        .bind(epochs)
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }
}

impl crate::sqlite::SqliteStore {
    /// One transaction (one WAL sync) with an UPDATE per job: statements are
    /// in-process calls here, the commit is what costs.
    async fn complete_many(&self, leases: &[Lease], now: OffsetDateTime) -> Result<Vec<Uuid>> {
        let mut tx = self.begin_write().await?;
        let mut done = Vec::with_capacity(leases.len());
        for lease in leases {
            let id: Option<Uuid> = sqlx::query_scalar(
                "UPDATE jobs SET state = 'completed', lease_until = NULL, finished_at = $3, updated_at = $3, last_error = NULL
                 WHERE id = $1 AND lease_epoch = $2 AND state = 'running' RETURNING id",
            )
            .bind(lease.job_id)
            .bind(lease.epoch)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            done.extend(id);
        }
        tx.commit().await?;
        Ok(done)
    }
}
