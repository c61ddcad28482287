//! Tasks as the engine needs them: a row to work on and the outputs work
//! produced. (The work graph adds inputs, dependencies, versions and locks.)

use cadre_types::Tenant;
use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;

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
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
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

#[async_trait::async_trait]
pub trait TaskQueries: Send + Sync {
    /// The org of a live task, for authorization.
    async fn task_org(&self, id: Uuid) -> Result<Option<Uuid>>;
    async fn create_task(&self, tenant: Tenant, task: &NewTask) -> Result<TaskRow>;
    /// A live task of the org.
    async fn task(&self, tenant: Tenant, id: Uuid) -> Result<TaskRow>;
    async fn task_outputs(&self, tenant: Tenant, task_id: Uuid) -> Result<Vec<OutputRow>>;
}

macro_rules! task_columns {
    () => {
        "id, org_id, project_id, parent_id, title, description, status, priority, assignee_type, assignee_id, author_type, author_id, version, created_at, updated_at"
    };
}

/// Inserts a task (binds: id, org, project, parent, title, description,
/// status, priority, assignee type, assignee id, author type, author id, at).
pub(crate) const INSERT_TASK: &str = concat!(
    "INSERT INTO tasks (id, org_id, project_id, parent_id, title, description, status, priority,
                        assignee_type, assignee_id, author_type, author_id, version, created_at, updated_at)
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $13
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
    };
}
pub(crate) use bind_task;

super::for_both_backends!(TaskQueries {
    async fn task_org(&self, id: Uuid) -> Result<Option<Uuid>> {
        Ok(sqlx::query_scalar("SELECT org_id FROM tasks WHERE id = $1 AND deleted_at IS NULL")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn create_task(&self, tenant: Tenant, task: &NewTask) -> Result<TaskRow> {
        Ok(bind_task!(sqlx::query_as::<_, TaskRow>(INSERT_TASK), tenant.org_id(), task)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn task(&self, tenant: Tenant, id: Uuid) -> Result<TaskRow> {
        Ok(sqlx::query_as::<_, TaskRow>(concat!(
            "SELECT ", task_columns!(), " FROM tasks WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL"))
        .bind(tenant.org_id())
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn task_outputs(&self, tenant: Tenant, task_id: Uuid) -> Result<Vec<OutputRow>> {
        Ok(sqlx::query_as::<_, OutputRow>(
            "SELECT id, task_id, kind, label, content, execution_id, created_at FROM task_outputs
             WHERE org_id = $1 AND task_id = $2 ORDER BY created_at, id")
        .bind(tenant.org_id())
        .bind(task_id)
        .fetch_all(&self.pool)
        .await?)
    }
});
