//! Recurring jobs. Firing a tick advances `next_run_at` with a
//! compare-and-set and enqueues the job in the same transaction, so a tick
//! fires exactly once however many instances race for it.

use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::jobs::{JobRow, NewJob, bind_new_job, insert_job_sql};
use crate::Result;

/// What to do about ticks missed while no instance was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// Drop them; resume at the next tick.
    Skip,
    /// Fire once for all of them, then resume.
    Once,
}

impl CatchUp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Once => "once",
        }
    }

    pub fn parse(text: &str) -> Self {
        if text == "once" {
            Self::Once
        } else {
            Self::Skip
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewSchedule {
    /// Unique; saving a schedule with an existing name replaces it.
    pub name: String,
    /// A cron pattern, evaluated in UTC.
    pub cron: String,
    pub queue: String,
    pub kind: String,
    pub payload: Value,
    pub org_id: Option<Uuid>,
    pub catch_up: CatchUp,
    pub next_run_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ScheduleRow {
    pub id: Uuid,
    pub name: String,
    pub cron: String,
    pub queue: String,
    pub kind: String,
    pub payload: Json<Value>,
    pub org_id: Option<Uuid>,
    pub catch_up: String,
    pub enabled: bool,
    pub next_run_at: OffsetDateTime,
    pub last_run_at: Option<OffsetDateTime>,
}

#[async_trait::async_trait]
pub trait ScheduleQueries: Send + Sync {
    /// Creates or replaces the schedule of this name.
    async fn save_schedule(
        &self,
        schedule: &NewSchedule,
        now: OffsetDateTime,
    ) -> Result<ScheduleRow>;
    /// Enabled schedules whose tick is due.
    async fn due_schedules(&self, now: OffsetDateTime) -> Result<Vec<ScheduleRow>>;
    /// Moves a schedule from `expected_next` to `next` and, when `job` is
    /// given, enqueues it — both or neither. `false` when another instance
    /// fired this tick first.
    async fn fire_schedule(
        &self,
        id: Uuid,
        expected_next: OffsetDateTime,
        next: OffsetDateTime,
        job: Option<&NewJob>,
        now: OffsetDateTime,
    ) -> Result<Option<Option<JobRow>>>;
    async fn delete_schedule(&self, name: &str) -> Result<bool>;
}

macro_rules! schedule_columns {
    () => {
        "id, name, cron, queue, kind, payload, org_id, catch_up, enabled, next_run_at, last_run_at"
    };
}

super::for_both_backends!(ScheduleQueries {
    async fn save_schedule(&self, s: &NewSchedule, now: OffsetDateTime) -> Result<ScheduleRow> {
        Ok(sqlx::query_as::<_, ScheduleRow>(concat!(
            "INSERT INTO schedules (id, name, cron, queue, kind, payload, org_id, catch_up, enabled, next_run_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, TRUE, $9, $10, $10)
             ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, queue = excluded.queue, kind = excluded.kind,
                payload = excluded.payload, org_id = excluded.org_id, catch_up = excluded.catch_up, enabled = TRUE,
                next_run_at = excluded.next_run_at, updated_at = excluded.updated_at
             RETURNING ", schedule_columns!()))
        .bind(cadre_types::new_id())
        .bind(&s.name)
        .bind(&s.cron)
        .bind(&s.queue)
        .bind(&s.kind)
        .bind(Json(&s.payload))
        .bind(s.org_id)
        .bind(s.catch_up.as_str())
        .bind(s.next_run_at)
        .bind(now)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn due_schedules(&self, now: OffsetDateTime) -> Result<Vec<ScheduleRow>> {
        Ok(sqlx::query_as::<_, ScheduleRow>(concat!(
            "SELECT ", schedule_columns!(), " FROM schedules WHERE enabled AND next_run_at <= $1 ORDER BY next_run_at"))
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn fire_schedule(
        &self,
        id: Uuid,
        expected_next: OffsetDateTime,
        next: OffsetDateTime,
        job: Option<&NewJob>,
        now: OffsetDateTime,
    ) -> Result<Option<Option<JobRow>>> {
        let mut tx = self.begin_write().await?;
        let moved = sqlx::query(
            "UPDATE schedules SET next_run_at = $3, last_run_at = CASE WHEN $4 THEN $5 ELSE last_run_at END, updated_at = $5
             WHERE id = $1 AND next_run_at = $2",
        )
        .bind(id)
        .bind(expected_next)
        .bind(next)
        .bind(job.is_some())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(None);
        }
        let row = match job {
            Some(job) => bind_new_job!(sqlx::query_as::<_, JobRow>(insert_job_sql!()), job, now).fetch_optional(&mut *tx).await?,
            None => None,
        };
        tx.commit().await?;
        Ok(Some(row))
    }

    async fn delete_schedule(&self, name: &str) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM schedules WHERE name = $1").bind(name).execute(&self.pool).await?.rows_affected() == 1)
    }
});
