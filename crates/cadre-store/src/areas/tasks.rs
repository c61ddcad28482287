//! Tasks: the nodes of the work graph, with their inputs, outputs, versions
//! and edit locks. Dependencies between tasks live in [`super::task_graph`].
//!
//! Every change to a task goes through one transaction that checks the
//! edit lock and the expected version, applies the change, bumps the
//! version, stores a snapshot of the new state and writes a domain event.

use cadre_types::Tenant;
use serde_json::{Value, json};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Page;
use super::events::Actor;
use super::jobs::NewJob;
use crate::{Result, StoreError};

/// The job that looks for tasks an auto-run project should start
/// (payload `{"taskIds": [...]}` or `{"projectId"}`).
pub const READY_JOB: &str = "task.ready.v1";

/// A [`READY_JOB`] for `payload`.
pub fn ready_job(org: Uuid, payload: Value) -> NewJob {
    NewJob {
        org_id: Some(org),
        max_attempts: 10,
        backoff_base: std::time::Duration::from_millis(250),
        ..NewJob::new(super::jobs::DEFAULT_QUEUE, READY_JOB, payload)
    }
}

#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: Uuid,
    pub project_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub title: String,
    pub description: String,
    pub status: String,
    pub priority: i64,
    /// `("agent" | "user", id)`.
    pub assignee: Option<(String, Uuid)>,
    /// `("human" | "agent", id)`.
    pub author: (String, Option<Uuid>),
    pub supervisor_id: Option<Uuid>,
    pub due_at: Option<OffsetDateTime>,
    /// Canvas position `{"x", "y"}`.
    pub position: Option<Value>,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub project_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub title: String,
    pub description: String,
    pub status: String,
    pub priority: i64,
    pub assignee_type: Option<String>,
    pub assignee_id: Option<Uuid>,
    pub author_type: String,
    pub author_id: Option<Uuid>,
    pub supervisor_id: Option<Uuid>,
    pub due_at: Option<OffsetDateTime>,
    pub position: Option<Json<Value>>,
    pub lock_holder_type: Option<String>,
    pub lock_holder_id: Option<Uuid>,
    pub lock_expires_at: Option<OffsetDateTime>,
    pub auto_run_execution_id: Option<Uuid>,
    pub last_error: Option<String>,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl TaskRow {
    /// The edit lock, if one is live at `now`.
    pub fn live_lock(&self, now: OffsetDateTime) -> Option<(&str, Option<Uuid>, OffsetDateTime)> {
        match (&self.lock_holder_type, self.lock_expires_at) {
            (Some(kind), Some(until)) if until > now => {
                Some((kind.as_str(), self.lock_holder_id, until))
            }
            _ => None,
        }
    }
}

/// A change to a task's fields; `None` leaves a field as it is, and the
/// nested options clear (`Some(None)`) or set a nullable one.
#[derive(Debug, Clone, Default)]
pub struct TaskPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub status: Option<String>,
    pub priority: Option<i64>,
    pub parent_id: Option<Option<Uuid>>,
    pub assignee: Option<Option<(String, Uuid)>>,
    pub supervisor_id: Option<Option<Uuid>>,
    pub due_at: Option<Option<OffsetDateTime>>,
    pub position: Option<Option<Value>>,
}

/// Who writes, what version they saw (`None`: any) and when.
#[derive(Debug, Clone)]
pub struct TaskWrite {
    pub actor: Actor,
    pub expected_version: Option<i64>,
    pub at: OffsetDateTime,
}

/// Filters of a project's task list.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub status: Option<String>,
    /// `(type, id)`; type `none` lists unassigned tasks.
    pub assignee: Option<(String, Option<Uuid>)>,
    /// `Some(None)`: top-level tasks only.
    pub parent_id: Option<Option<Uuid>>,
    /// Case-insensitive text in the title or description.
    pub q: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewInput {
    pub id: Uuid,
    /// `text | file | task_output | url`.
    pub kind: String,
    pub label: String,
    /// Where it goes among the task's inputs (appended when `None`).
    pub position: Option<i64>,
    pub content: Value,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct InputRow {
    pub id: Uuid,
    pub task_id: Uuid,
    pub kind: String,
    pub label: String,
    pub position: i64,
    pub content: Json<Value>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct NewOutput {
    pub id: Uuid,
    pub task_id: Uuid,
    /// `text | structured | file | url`.
    pub kind: String,
    pub label: String,
    pub content: Value,
    pub execution_id: Option<Uuid>,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutputRow {
    pub id: Uuid,
    pub task_id: Uuid,
    pub kind: String,
    pub label: String,
    pub content: Json<Value>,
    pub execution_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskVersionRow {
    pub task_id: Uuid,
    pub version: i64,
    pub snapshot: Json<Value>,
    pub change_type: String,
    pub summary: String,
    pub actor_type: String,
    pub actor_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

#[async_trait::async_trait]
pub trait TaskQueries: Send + Sync {
    /// The org of a live task, for authorization.
    async fn task_org(&self, id: Uuid) -> Result<Option<Uuid>>;
    /// Creates a task at version 1 with its inputs, and queues an auto-run
    /// check when its project runs agents by itself.
    async fn create_task(
        &self,
        tenant: Tenant,
        task: &NewTask,
        inputs: &[NewInput],
        actor: &Actor,
    ) -> Result<TaskRow>;
    /// A live task of the org.
    async fn task(&self, tenant: Tenant, id: Uuid) -> Result<TaskRow>;
    /// A task of the org, deleted or not (executions outlive their task).
    async fn task_any(&self, tenant: Tenant, id: Uuid) -> Result<TaskRow>;
    /// Live tasks of a project, highest priority first, then oldest.
    async fn tasks(
        &self,
        tenant: Tenant,
        project_id: Uuid,
        filter: &TaskFilter,
        page: Page,
    ) -> Result<(Vec<TaskRow>, u64)>;
    /// Live direct children of a task, oldest first.
    async fn children(&self, tenant: Tenant, id: Uuid) -> Result<Vec<TaskRow>>;
    async fn update_task(
        &self,
        tenant: Tenant,
        id: Uuid,
        patch: &TaskPatch,
        write: &TaskWrite,
    ) -> Result<TaskRow>;
    /// Soft-deletes the task and removes its dependency edges; executions,
    /// traces, outputs and versions stay readable.
    async fn delete_task(&self, tenant: Tenant, id: Uuid, write: &TaskWrite) -> Result<()>;
    async fn task_inputs(&self, tenant: Tenant, task_id: Uuid) -> Result<Vec<InputRow>>;
    async fn add_input(
        &self,
        tenant: Tenant,
        task_id: Uuid,
        input: &NewInput,
        write: &TaskWrite,
    ) -> Result<InputRow>;
    async fn delete_input(
        &self,
        tenant: Tenant,
        task_id: Uuid,
        input_id: Uuid,
        write: &TaskWrite,
    ) -> Result<()>;
    /// Live outputs, oldest first.
    async fn task_outputs(&self, tenant: Tenant, task_id: Uuid) -> Result<Vec<OutputRow>>;
    /// The outputs the task had while `version` was its current version.
    async fn task_outputs_at(
        &self,
        tenant: Tenant,
        task_id: Uuid,
        version: i64,
    ) -> Result<Vec<OutputRow>>;
    async fn add_output(
        &self,
        tenant: Tenant,
        task_id: Uuid,
        output: &NewOutput,
        write: &TaskWrite,
    ) -> Result<OutputRow>;
    async fn delete_output(
        &self,
        tenant: Tenant,
        task_id: Uuid,
        output_id: Uuid,
        write: &TaskWrite,
    ) -> Result<()>;
    /// Newest first.
    async fn task_versions(&self, tenant: Tenant, task_id: Uuid) -> Result<Vec<TaskVersionRow>>;
    async fn task_version(
        &self,
        tenant: Tenant,
        task_id: Uuid,
        version: i64,
    ) -> Result<TaskVersionRow>;
    /// Makes the task's fields and inputs what they were at `version`, as a
    /// new version (outputs, the record of work done, stay).
    async fn rollback_task(
        &self,
        tenant: Tenant,
        task_id: Uuid,
        version: i64,
        write: &TaskWrite,
    ) -> Result<TaskRow>;
    /// Takes or renews the edit lock until `until`; [`StoreError::Locked`]
    /// when someone else holds a live one.
    async fn lock_task(
        &self,
        tenant: Tenant,
        task_id: Uuid,
        holder: &Actor,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TaskRow>;
    /// Releases the lock if `holder` has it (or it has expired); another
    /// holder's live lock is [`StoreError::Locked`].
    async fn unlock_task(
        &self,
        tenant: Tenant,
        task_id: Uuid,
        holder: &Actor,
        now: OffsetDateTime,
    ) -> Result<TaskRow>;
}

macro_rules! task_columns {
    () => {
        "id, org_id, project_id, parent_id, title, description, status, priority, assignee_type, assignee_id, author_type, author_id, supervisor_id, due_at, position, lock_holder_type, lock_holder_id, lock_expires_at, auto_run_execution_id, last_error, version, created_at, updated_at"
    };
}
pub(crate) use task_columns;

/// [`task_columns`] qualified with the alias `t`.
macro_rules! task_columns_of_t {
    () => {
        "t.id, t.org_id, t.project_id, t.parent_id, t.title, t.description, t.status, t.priority, t.assignee_type, t.assignee_id, t.author_type, t.author_id, t.supervisor_id, t.due_at, t.position, t.lock_holder_type, t.lock_holder_id, t.lock_expires_at, t.auto_run_execution_id, t.last_error, t.version, t.created_at, t.updated_at"
    };
}
pub(crate) use task_columns_of_t;

macro_rules! input_columns {
    () => {
        "id, task_id, kind, label, position, content, created_at"
    };
}

macro_rules! output_columns {
    () => {
        "id, task_id, kind, label, content, execution_id, created_at"
    };
}

/// Inserts a task at version 1 (binds: id, org, project, parent, title,
/// description, status, priority, assignee type, assignee id, author type,
/// author id, at, supervisor, due, position) when its project is live.
pub(crate) const INSERT_TASK: &str = concat!(
    "INSERT INTO tasks (id, org_id, project_id, parent_id, title, description, status, priority,
                        assignee_type, assignee_id, author_type, author_id, supervisor_id, due_at, position,
                        version, created_at, updated_at)
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $14, $15, $16, 1, $13, $13
     WHERE EXISTS (SELECT 1 FROM projects WHERE id = $3 AND org_id = $2 AND deleted_at IS NULL)
     RETURNING ",
    task_columns!()
);

/// Inserts an output (binds: id, org, task, kind, label, content, execution, at).
pub(crate) const INSERT_OUTPUT: &str =
    "INSERT INTO task_outputs (id, org_id, task_id, kind, label, content, execution_id, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

macro_rules! bind_task {
    ($query:expr, $org:expr, $t:expr) => {
        $query
            .bind($t.id)
            .bind($org)
            .bind($t.project_id)
            .bind($t.parent_id)
            .bind(&$t.title)
            .bind(&$t.description)
            .bind(&$t.status)
            .bind($t.priority)
            .bind($t.assignee.as_ref().map(|a| a.0.as_str()))
            .bind($t.assignee.as_ref().map(|a| a.1))
            .bind(&$t.author.0)
            .bind($t.author.1)
            .bind($t.at)
            .bind($t.supervisor_id)
            .bind($t.due_at)
            .bind($t.position.as_ref().map(Json))
    };
}
pub(crate) use bind_task;

/// The state a version keeps: the task's fields and its inputs.
pub fn snapshot(task: &TaskRow, inputs: &[InputRow]) -> Value {
    json!({
        "title": task.title,
        "description": task.description,
        "status": task.status,
        "priority": task.priority,
        "parentId": task.parent_id,
        "assignee": task.assignee_type.as_ref().zip(task.assignee_id).map(|(t, id)| json!({ "type": t, "id": id })),
        "supervisorId": task.supervisor_id,
        "dueAt": task.due_at.map(cadre_types::time::rfc3339),
        "position": task.position.as_ref().map(|p| &p.0),
        "inputs": inputs,
    })
}

/// Inserts the version row for the task's current state (in `$tx`) and
/// evaluates to the task row.
macro_rules! store_version {
    ($tx:ident, $org:expr, $id:expr, $change:expr, $summary:expr, $actor:expr, $at:expr) => {
        async {
            let task = sqlx::query_as::<_, $crate::areas::tasks::TaskRow>(concat!(
                "SELECT ",
                $crate::areas::tasks::task_columns!(),
                " FROM tasks WHERE org_id = $1 AND id = $2"
            ))
            .bind($org)
            .bind($id)
            .fetch_one(&mut *$tx)
            .await?;
            $crate::areas::tasks::record_version!(
                $tx, $org, &task, $change, $summary, $actor, $at
            )?;
            Ok::<_, $crate::StoreError>(task)
        }
        .await
    };
}
pub(crate) use store_version;

/// Inserts the version row for `$task`, the task's current row, with its
/// inputs (in `$tx`). Evaluates to `Result<()>`.
macro_rules! record_version {
    ($tx:ident, $org:expr, $task:expr, $change:expr, $summary:expr, $actor:expr, $at:expr) => {
        async {
            let task: &$crate::areas::tasks::TaskRow = $task;
            let inputs = sqlx::query_as::<_, $crate::areas::tasks::InputRow>(
                "SELECT id, task_id, kind, label, position, content, created_at FROM task_inputs
                 WHERE org_id = $1 AND task_id = $2 ORDER BY position, id")
                .bind($org)
                .bind(task.id)
                .fetch_all(&mut *$tx)
                .await?;
            sqlx::query(
                "INSERT INTO task_versions (task_id, version, org_id, snapshot, change_type, summary, actor_type, actor_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                .bind(task.id)
                .bind(task.version)
                .bind($org)
                .bind(sqlx::types::Json($crate::areas::tasks::snapshot(task, &inputs)))
                .bind($change)
                .bind($summary)
                .bind(&$actor.kind)
                .bind($actor.id)
                .bind($at)
                .execute(&mut *$tx)
                .await?;
            Ok::<(), $crate::StoreError>(())
        }
        .await
    };
}
pub(crate) use record_version;

/// Bumps the task's version, stores the new state as that version and
/// writes a `task_updated` event (in `$tx`); evaluates to the task row.
macro_rules! new_version {
    ($out:ident, $tx:ident, $org:expr, $id:expr, $change:expr, $summary:expr, $actor:expr, $at:expr) => {
        async {
            // The bump returns the row, so the version needs no read back.
            let task = sqlx::query_as::<_, $crate::areas::tasks::TaskRow>(concat!(
                "UPDATE tasks SET version = version + 1, updated_at = $3 WHERE org_id = $1 AND id = $2 RETURNING ",
                $crate::areas::tasks::task_columns!()))
                .bind($org)
                .bind($id)
                .bind($at)
                .fetch_one(&mut *$tx)
                .await?;
            $crate::areas::tasks::record_version!($tx, $org, &task, $change, $summary, $actor, $at)?;
            $crate::areas::events::emit!($out, $tx, $org, "task_updated", "task", $id, $actor,
                serde_json::json!({ "taskId": $id, "projectId": task.project_id, "version": task.version,
                                    "change": $change, "summary": $summary, "status": task.status }), $at)?;
            Ok::<_, $crate::StoreError>(task)
        }
        .await
    };
}
pub(crate) use new_version;

/// Locks the live task row for a write and checks the edit lock and the
/// expected version; evaluates to `Result<TaskRow>` (the row before the
/// write).
macro_rules! guard_task {
    ($tx:ident, $org:expr, $id:expr, $write:expr) => {
        async {
            let row = sqlx::query_as::<_, TaskRow>(Self::LOCK_TASK)
                .bind($org)
                .bind($id)
                .fetch_optional(&mut *$tx)
                .await?;
            let Some(row) = row else {
                return Err(StoreError::NotFound);
            };
            if let Some((kind, holder, until)) = row.live_lock($write.at) {
                if !$write.actor.is(kind, holder) {
                    return Err(StoreError::Locked {
                        holder_type: kind.to_owned(),
                        holder_id: holder,
                        expires_at: until,
                    });
                }
            }
            if let Some(expected) = $write.expected_version {
                if expected != row.version {
                    return Err(StoreError::Stale {
                        current: row.version,
                    });
                }
            }
            Ok::<TaskRow, StoreError>(row)
        }
        .await
    };
}

/// Ids of the live tasks that depend on `task` (in `$tx`).
macro_rules! downstream_ids {
    ($tx:ident, $org:expr, $task:expr) => {
        sqlx::query_scalar::<_, Uuid>(
            "WITH down AS MATERIALIZED (SELECT task_id FROM task_dependencies WHERE org_id = $1 AND depends_on = $2)
             SELECT t.id FROM down JOIN tasks t ON t.id = down.task_id WHERE t.deleted_at IS NULL ORDER BY t.id",
        )
        .bind($org)
        .bind($task)
        .fetch_all(&mut *$tx)
    };
}
pub(crate) use downstream_ids;

/// Queues an auto-run check of `ids` (in `$tx`) when there is any.
macro_rules! queue_ready_check {
    ($tx:ident, $org:expr, $ids:expr, $at:expr) => {
        async {
            let ids: Vec<Uuid> = $ids;
            if !ids.is_empty() {
                let job = $crate::areas::tasks::ready_job($org, serde_json::json!({ "taskIds": ids }));
                $crate::areas::jobs::bind_new_job!(sqlx::query($crate::areas::jobs::insert_job_sql!()), job, $at)
                    .execute(&mut *$tx)
                    .await?;
            }
            Ok::<(), $crate::StoreError>(())
        }
        .await
    };
}
pub(crate) use queue_ready_check;

/// Inserts one input of a task at `position` (in `$tx`).
macro_rules! insert_input {
    ($tx:ident, $org:expr, $task:expr, $input:expr, $position:expr) => {
        sqlx::query(
            "INSERT INTO task_inputs (id, org_id, task_id, kind, label, position, content, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind($input.id)
        .bind($org)
        .bind($task)
        .bind(&$input.kind)
        .bind(&$input.label)
        .bind($position)
        .bind(Json(&$input.content))
        .bind($input.at)
        .execute(&mut *$tx)
        .await
    };
}

fn describe(patch: &TaskPatch) -> String {
    let mut fields = Vec::new();
    for (set, name) in [
        (patch.title.is_some(), "title"),
        (patch.description.is_some(), "description"),
        (patch.status.is_some(), "status"),
        (patch.priority.is_some(), "priority"),
        (patch.parent_id.is_some(), "parent"),
        (patch.assignee.is_some(), "assignee"),
        (patch.supervisor_id.is_some(), "supervisor"),
        (patch.due_at.is_some(), "due date"),
        (patch.position.is_some(), "position"),
    ] {
        if set {
            fields.push(name);
        }
    }
    if fields.is_empty() {
        "no change".to_owned()
    } else {
        format!("changed {}", fields.join(", "))
    }
}

/// Whether `status` is the last workflow state of `states` (work is done).
pub fn is_final(status: &str, states: &[String]) -> bool {
    states.last().is_some_and(|last| last == status)
}

super::for_both_backends!(TaskQueries {
    async fn task_org(&self, id: Uuid) -> Result<Option<Uuid>> {
        Ok(sqlx::query_scalar("SELECT org_id FROM tasks WHERE id = $1 AND deleted_at IS NULL")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn create_task(&self, tenant: Tenant, task: &NewTask, inputs: &[NewInput], actor: &Actor) -> Result<TaskRow> {
        let org = tenant.org_id();
        let mut tx = self.begin_write().await?;
        let mut out = Vec::new();
        if let Some(parent) = task.parent_id {
            let same: Option<Uuid> = sqlx::query_scalar("SELECT project_id FROM tasks WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL")
                .bind(org)
                .bind(parent)
                .fetch_optional(&mut *tx)
                .await?;
            if same.is_none() {
                return Err(StoreError::NotFound);
            }
        }
        let auto_run: Option<bool> = sqlx::query_scalar("SELECT auto_run FROM projects WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL")
            .bind(org)
            .bind(task.project_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(auto_run) = auto_run else {
            return Err(StoreError::NotFound);
        };
        bind_task!(sqlx::query(INSERT_TASK), org, task).execute(&mut *tx).await?;
        for (i, input) in inputs.iter().enumerate() {
            insert_input!(tx, org, task.id, input, i64::try_from(i).unwrap_or(i64::MAX))?;
        }
        let row = store_version!(tx, org, task.id, "created", "created", actor, task.at)?;
        super::events::emit!(out, tx, org, "task_created", "task", task.id, actor,
            json!({ "taskId": task.id, "projectId": task.project_id, "parentId": task.parent_id, "title": task.title, "status": task.status }), task.at)?;
        let agent_assigned = task.assignee.as_ref().is_some_and(|a| a.0 == "agent");
        if auto_run && agent_assigned {
            queue_ready_check!(tx, org, vec![task.id], task.at)?;
        }
        tx.commit().await?;
        self.events.send(out);
        Ok(row)
    }

    async fn task(&self, tenant: Tenant, id: Uuid) -> Result<TaskRow> {
        Ok(sqlx::query_as::<_, TaskRow>(concat!(
            "SELECT ", task_columns!(), " FROM tasks WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL"))
        .bind(tenant.org_id())
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn task_any(&self, tenant: Tenant, id: Uuid) -> Result<TaskRow> {
        Ok(sqlx::query_as::<_, TaskRow>(concat!(
            "SELECT ", task_columns!(), " FROM tasks WHERE org_id = $1 AND id = $2"))
        .bind(tenant.org_id())
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn tasks(&self, tenant: Tenant, project_id: Uuid, f: &TaskFilter, page: Page) -> Result<(Vec<TaskRow>, u64)> {
        // Only the filters given reach the SQL, so the indexes on
        // (project, [status,] priority, created) serve the order and the
        // page stops early; the total is a separate count.
        let filtered = |select: &str| {
            let mut q = sqlx::QueryBuilder::new(select);
            q.push(" FROM tasks WHERE org_id = ").push_bind(tenant.org_id());
            q.push(" AND project_id = ").push_bind(project_id);
            q.push(" AND deleted_at IS NULL");
            if let Some(status) = &f.status {
                q.push(" AND status = ").push_bind(status.clone());
            }
            match &f.assignee {
                Some((kind, _)) if kind == "none" => {
                    q.push(" AND assignee_type IS NULL");
                }
                Some((kind, id)) => {
                    q.push(" AND assignee_type = ").push_bind(kind.clone());
                    q.push(" AND assignee_id = ").push_bind(*id);
                }
                None => {}
            }
            match f.parent_id {
                Some(Some(parent)) => {
                    q.push(" AND parent_id = ").push_bind(parent);
                }
                Some(None) => {
                    q.push(" AND parent_id IS NULL");
                }
                None => {}
            }
            if let Some(text) = &f.q {
                let pattern = format!("%{}%", like_escape(&text.to_lowercase()));
                q.push(" AND (LOWER(title) LIKE ").push_bind(pattern.clone());
                q.push(" ESCAPE '\\' OR LOWER(description) LIKE ").push_bind(pattern);
                q.push(" ESCAPE '\\')");
            }
            q
        };
        let mut rows = filtered(concat!("SELECT ", task_columns!()));
        rows.push(" ORDER BY priority DESC, created_at, id LIMIT ")
            .push_bind(i64::from(page.page_size))
            .push(" OFFSET ")
            .push_bind(page.offset());
        let rows = rows.build_query_as::<TaskRow>().fetch_all(&self.pool).await?;
        let total: i64 = filtered("SELECT COUNT(*)").build_query_scalar().fetch_one(&self.pool).await?;
        Ok((rows, u64::try_from(total).unwrap_or(0)))
    }

    async fn children(&self, tenant: Tenant, id: Uuid) -> Result<Vec<TaskRow>> {
        Ok(sqlx::query_as::<_, TaskRow>(concat!(
            "SELECT ", task_columns!(), " FROM tasks WHERE org_id = $1 AND parent_id = $2 AND deleted_at IS NULL
             ORDER BY created_at, id"))
        .bind(tenant.org_id())
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn update_task(&self, tenant: Tenant, id: Uuid, p: &TaskPatch, w: &TaskWrite) -> Result<TaskRow> {
        let org = tenant.org_id();
        let mut tx = self.begin_write().await?;
        let mut out = Vec::new();
        let before = guard_task!(tx, org, id, w)?;
        if let Some(Some(parent)) = p.parent_id {
            // The new parent must be a live task of the same org that is not
            // this task or one of its descendants.
            let ancestors: Vec<Uuid> = sqlx::query_scalar(
                "WITH RECURSIVE up(id, depth) AS (
                     SELECT id, 0 FROM tasks WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL
                     UNION SELECT t.parent_id, up.depth + 1 FROM tasks t JOIN up ON t.id = up.id WHERE t.parent_id IS NOT NULL)
                 SELECT id FROM up ORDER BY depth")
                .bind(org)
                .bind(parent)
                .fetch_all(&mut *tx)
                .await?;
            if ancestors.is_empty() {
                return Err(StoreError::NotFound);
            }
            if ancestors.contains(&id) {
                // id, …, its would-be parent, id again: each the parent of the next.
                let mut path: Vec<Uuid> = ancestors.iter().take_while(|a| **a != id).copied().collect();
                path.reverse();
                path.insert(0, id);
                path.push(id);
                return Err(StoreError::Cycle { path });
            }
        }
        let (set_parent, parent) = split(p.parent_id);
        let (set_assignee, assignee) = split(p.assignee.clone());
        let (set_supervisor, supervisor) = split(p.supervisor_id);
        let (set_due, due) = split(p.due_at);
        let (set_position, position) = split(p.position.clone());
        sqlx::query(
            "UPDATE tasks SET title = COALESCE($3, title), description = COALESCE($4, description),
                    status = COALESCE($5, status), priority = COALESCE($6, priority),
                    parent_id = CASE WHEN $7 THEN $8 ELSE parent_id END,
                    assignee_type = CASE WHEN $9 THEN $10 ELSE assignee_type END,
                    assignee_id = CASE WHEN $9 THEN $11 ELSE assignee_id END,
                    supervisor_id = CASE WHEN $12 THEN $13 ELSE supervisor_id END,
                    due_at = CASE WHEN $14 THEN $15 ELSE due_at END,
                    position = CASE WHEN $16 THEN $17 ELSE position END
             WHERE org_id = $1 AND id = $2")
            .bind(org)
            .bind(id)
            .bind(p.title.as_deref())
            .bind(p.description.as_deref())
            .bind(p.status.as_deref())
            .bind(p.priority)
            .bind(set_parent)
            .bind(parent)
            .bind(set_assignee)
            .bind(assignee.as_ref().map(|a| a.0.as_str()))
            .bind(assignee.as_ref().map(|a| a.1))
            .bind(set_supervisor)
            .bind(supervisor)
            .bind(set_due)
            .bind(due)
            .bind(set_position)
            .bind(position.as_ref().map(Json))
            .execute(&mut *tx)
            .await?;
        let summary = describe(p);
        let task = new_version!(out, tx, org, id, "updated", summary.as_str(), &w.actor, w.at)?;
        // What may have become ready: this task (assignee or status moved),
        // and what depends on it once it is done.
        let mut check = Vec::new();
        if task.assignee_type.as_deref() == Some("agent") && (p.assignee.is_some() || p.status.is_some()) {
            check.push(id);
        }
        if task.status != before.status {
            check.extend(downstream_ids!(tx, org, id).await?);
        }
        queue_ready_check!(tx, org, check, w.at)?;
        tx.commit().await?;
        self.events.send(out);
        Ok(task)
    }

    async fn delete_task(&self, tenant: Tenant, id: Uuid, w: &TaskWrite) -> Result<()> {
        let org = tenant.org_id();
        let mut tx = self.begin_write().await?;
        let mut out = Vec::new();
        let before = guard_task!(tx, org, id, w)?;
        // Work that waited on this task no longer does.
        let downstream = downstream_ids!(tx, org, id).await?;
        sqlx::query("DELETE FROM task_dependencies WHERE org_id = $1 AND (task_id = $2 OR depends_on = $2)")
            .bind(org)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE tasks SET deleted_at = $3, updated_at = $3 WHERE org_id = $1 AND id = $2")
            .bind(org)
            .bind(id)
            .bind(w.at)
            .execute(&mut *tx)
            .await?;
        super::events::emit!(out, tx, org, "task_deleted", "task", id, &w.actor,
            json!({ "taskId": id, "projectId": before.project_id }), w.at)?;
        queue_ready_check!(tx, org, downstream, w.at)?;
        tx.commit().await?;
        self.events.send(out);
        Ok(())
    }

    async fn task_inputs(&self, tenant: Tenant, task_id: Uuid) -> Result<Vec<InputRow>> {
        Ok(sqlx::query_as::<_, InputRow>(concat!("SELECT ", input_columns!(), " FROM task_inputs WHERE org_id = $1 AND task_id = $2 ORDER BY position, id"))
        .bind(tenant.org_id())
        .bind(task_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn add_input(&self, tenant: Tenant, task_id: Uuid, input: &NewInput, w: &TaskWrite) -> Result<InputRow> {
        let org = tenant.org_id();
        let mut tx = self.begin_write().await?;
        let mut out = Vec::new();
        guard_task!(tx, org, task_id, w)?;
        let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position) + 1, 0) FROM task_inputs WHERE org_id = $1 AND task_id = $2")
            .bind(org)
            .bind(task_id)
            .fetch_one(&mut *tx)
            .await?;
        let position = input.position.map_or(next, |p| p.clamp(0, next));
        sqlx::query("UPDATE task_inputs SET position = position + 1 WHERE org_id = $1 AND task_id = $2 AND position >= $3")
            .bind(org)
            .bind(task_id)
            .bind(position)
            .execute(&mut *tx)
            .await?;
        insert_input!(tx, org, task_id, input, position)?;
        let summary = format!("added input {}", input.label);
        new_version!(out, tx, org, task_id, "input_added", summary.as_str(), &w.actor, w.at)?;
        let row = sqlx::query_as::<_, InputRow>(concat!("SELECT ", input_columns!(), " FROM task_inputs WHERE id = $1"))
            .bind(input.id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        self.events.send(out);
        Ok(row)
    }

    async fn delete_input(&self, tenant: Tenant, task_id: Uuid, input_id: Uuid, w: &TaskWrite) -> Result<()> {
        let org = tenant.org_id();
        let mut tx = self.begin_write().await?;
        let mut out = Vec::new();
        guard_task!(tx, org, task_id, w)?;
        let label: Option<String> = sqlx::query_scalar("DELETE FROM task_inputs WHERE org_id = $1 AND task_id = $2 AND id = $3 RETURNING label")
            .bind(org)
            .bind(task_id)
            .bind(input_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(label) = label else {
            return Err(StoreError::NotFound);
        };
        let summary = format!("removed input {label}");
        new_version!(out, tx, org, task_id, "input_removed", summary.as_str(), &w.actor, w.at)?;
        tx.commit().await?;
        self.events.send(out);
        Ok(())
    }

    async fn task_outputs(&self, tenant: Tenant, task_id: Uuid) -> Result<Vec<OutputRow>> {
        Ok(sqlx::query_as::<_, OutputRow>(concat!("SELECT ", output_columns!(), " FROM task_outputs
             WHERE org_id = $1 AND task_id = $2 AND deleted_at IS NULL ORDER BY created_at, id"))
        .bind(tenant.org_id())
        .bind(task_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn task_outputs_at(&self, tenant: Tenant, task_id: Uuid, version: i64) -> Result<Vec<OutputRow>> {
        // Version v was current from its own time until the next version's.
        let until: Option<OffsetDateTime> = sqlx::query_scalar(
            "SELECT created_at FROM task_versions WHERE org_id = $1 AND task_id = $2 AND version = $3 + 1")
            .bind(tenant.org_id())
            .bind(task_id)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?;
        Ok(sqlx::query_as::<_, OutputRow>(concat!("SELECT ", output_columns!(), " FROM task_outputs
             WHERE org_id = $1 AND task_id = $2 AND ($3 IS NULL OR created_at < $3)
               AND (deleted_at IS NULL OR ($3 IS NOT NULL AND deleted_at >= $3))
             ORDER BY created_at, id"))
        .bind(tenant.org_id())
        .bind(task_id)
        .bind(until)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn add_output(&self, tenant: Tenant, task_id: Uuid, o: &NewOutput, w: &TaskWrite) -> Result<OutputRow> {
        let org = tenant.org_id();
        let mut tx = self.begin_write().await?;
        let mut out = Vec::new();
        guard_task!(tx, org, task_id, w)?;
        sqlx::query(INSERT_OUTPUT)
            .bind(o.id)
            .bind(org)
            .bind(task_id)
            .bind(&o.kind)
            .bind(&o.label)
            .bind(Json(&o.content))
            .bind(o.execution_id)
            .bind(o.at)
            .execute(&mut *tx)
            .await?;
        let summary = format!("added output {}", o.label);
        new_version!(out, tx, org, task_id, "output_added", summary.as_str(), &w.actor, w.at)?;
        let row = sqlx::query_as::<_, OutputRow>(concat!("SELECT ", output_columns!(), " FROM task_outputs WHERE id = $1"))
            .bind(o.id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        self.events.send(out);
        Ok(row)
    }

    async fn delete_output(&self, tenant: Tenant, task_id: Uuid, output_id: Uuid, w: &TaskWrite) -> Result<()> {
        let org = tenant.org_id();
        let mut tx = self.begin_write().await?;
        let mut out = Vec::new();
        guard_task!(tx, org, task_id, w)?;
        let label: Option<String> = sqlx::query_scalar(
            "UPDATE task_outputs SET deleted_at = $4 WHERE org_id = $1 AND task_id = $2 AND id = $3 AND deleted_at IS NULL RETURNING label")
            .bind(org)
            .bind(task_id)
            .bind(output_id)
            .bind(w.at)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(label) = label else {
            return Err(StoreError::NotFound);
        };
        let summary = format!("removed output {label}");
        new_version!(out, tx, org, task_id, "output_removed", summary.as_str(), &w.actor, w.at)?;
        tx.commit().await?;
        self.events.send(out);
        Ok(())
    }

    async fn task_versions(&self, tenant: Tenant, task_id: Uuid) -> Result<Vec<TaskVersionRow>> {
        Ok(sqlx::query_as::<_, TaskVersionRow>(
            "SELECT task_id, version, snapshot, change_type, summary, actor_type, actor_id, created_at FROM task_versions
             WHERE org_id = $1 AND task_id = $2 ORDER BY version DESC")
        .bind(tenant.org_id())
        .bind(task_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn task_version(&self, tenant: Tenant, task_id: Uuid, version: i64) -> Result<TaskVersionRow> {
        Ok(sqlx::query_as::<_, TaskVersionRow>(
            "SELECT task_id, version, snapshot, change_type, summary, actor_type, actor_id, created_at FROM task_versions
             WHERE org_id = $1 AND task_id = $2 AND version = $3")
        .bind(tenant.org_id())
        .bind(task_id)
        .bind(version)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn rollback_task(&self, tenant: Tenant, task_id: Uuid, version: i64, w: &TaskWrite) -> Result<TaskRow> {
        let org = tenant.org_id();
        let mut tx = self.begin_write().await?;
        let mut out = Vec::new();
        let before = guard_task!(tx, org, task_id, w)?;
        let snapshot: Json<Value> = sqlx::query_scalar(
            "SELECT snapshot FROM task_versions WHERE org_id = $1 AND task_id = $2 AND version = $3")
            .bind(org)
            .bind(task_id)
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let s = &snapshot.0;
        let text = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_owned);
        let id_of = |v: Option<&Value>| v.and_then(Value::as_str).and_then(|t| Uuid::parse_str(t).ok());
        let assignee = s.get("assignee").filter(|a| !a.is_null());
        let due = text("dueAt").and_then(|t| OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok());
        // A parent deleted since is not restored.
        let parent = match id_of(s.get("parentId")) {
            Some(p) => sqlx::query_scalar::<_, Uuid>("SELECT id FROM tasks WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL")
                .bind(org)
                .bind(p)
                .fetch_optional(&mut *tx)
                .await?,
            None => None,
        };
        sqlx::query(
            "UPDATE tasks SET title = $3, description = $4, status = $5, priority = $6, parent_id = $7,
                    assignee_type = $8, assignee_id = $9, supervisor_id = $10, due_at = $11, position = $12
             WHERE org_id = $1 AND id = $2")
            .bind(org)
            .bind(task_id)
            .bind(text("title").unwrap_or(before.title))
            .bind(text("description").unwrap_or(before.description))
            .bind(text("status").unwrap_or(before.status.clone()))
            .bind(s.get("priority").and_then(Value::as_i64).unwrap_or(before.priority))
            .bind(parent)
            .bind(assignee.and_then(|a| a.get("type")).and_then(Value::as_str))
            .bind(id_of(assignee.and_then(|a| a.get("id"))))
            .bind(id_of(s.get("supervisorId")))
            .bind(due)
            .bind(s.get("position").filter(|p| !p.is_null()).map(Json))
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM task_inputs WHERE org_id = $1 AND task_id = $2")
            .bind(org)
            .bind(task_id)
            .execute(&mut *tx)
            .await?;
        let inputs: Vec<InputRow> = s.get("inputs").cloned().map(serde_json::from_value).transpose()
            .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))?
            .unwrap_or_default();
        for i in &inputs {
            let input = NewInput { id: i.id, kind: i.kind.clone(), label: i.label.clone(), position: None, content: i.content.0.clone(), at: i.created_at };
            insert_input!(tx, org, task_id, &input, i.position)?;
        }
        let summary = format!("rolled back to version {version}");
        let task = new_version!(out, tx, org, task_id, "rollback", summary.as_str(), &w.actor, w.at)?;
        if task.status != before.status {
            let downstream = downstream_ids!(tx, org, task_id).await?;
            queue_ready_check!(tx, org, downstream, w.at)?;
        }
        tx.commit().await?;
        self.events.send(out);
        Ok(task)
    }

    async fn lock_task(&self, tenant: Tenant, task_id: Uuid, holder: &Actor, until: OffsetDateTime, now: OffsetDateTime) -> Result<TaskRow> {
        let org = tenant.org_id();
        let mut tx = self.begin_write().await?;
        let mut out = Vec::new();
        let write = TaskWrite { actor: holder.clone(), expected_version: None, at: now };
        guard_task!(tx, org, task_id, &write)?;
        let row = sqlx::query_as::<_, TaskRow>(concat!(
            "UPDATE tasks SET lock_holder_type = $3, lock_holder_id = $4, lock_expires_at = $5
             WHERE org_id = $1 AND id = $2 RETURNING ", task_columns!()))
            .bind(org)
            .bind(task_id)
            .bind(&holder.kind)
            .bind(holder.id)
            .bind(until)
            .fetch_one(&mut *tx)
            .await?;
        super::events::emit!(out, tx, org, "task_locked", "task", task_id, holder,
            json!({ "taskId": task_id, "projectId": row.project_id, "expiresAt": cadre_types::time::rfc3339(until) }), now)?;
        tx.commit().await?;
        self.events.send(out);
        Ok(row)
    }

    async fn unlock_task(&self, tenant: Tenant, task_id: Uuid, holder: &Actor, now: OffsetDateTime) -> Result<TaskRow> {
        let org = tenant.org_id();
        let mut tx = self.begin_write().await?;
        let mut out = Vec::new();
        let write = TaskWrite { actor: holder.clone(), expected_version: None, at: now };
        let before = guard_task!(tx, org, task_id, &write)?;
        let row = sqlx::query_as::<_, TaskRow>(concat!(
            "UPDATE tasks SET lock_holder_type = NULL, lock_holder_id = NULL, lock_expires_at = NULL
             WHERE org_id = $1 AND id = $2 RETURNING ", task_columns!()))
            .bind(org)
            .bind(task_id)
            .fetch_one(&mut *tx)
            .await?;
        if before.live_lock(now).is_some() {
            super::events::emit!(out, tx, org, "task_unlocked", "task", task_id, holder,
                json!({ "taskId": task_id, "projectId": row.project_id }), now)?;
        }
        tx.commit().await?;
        self.events.send(out);
        Ok(row)
    }
});

/// `(was the field given, its new value)` for a nullable field's patch.
fn split<T>(field: Option<Option<T>>) -> (bool, Option<T>) {
    match field {
        Some(value) => (true, value),
        None => (false, None),
    }
}

/// Escapes LIKE's wildcards (the queries use `ESCAPE '\'`).
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
