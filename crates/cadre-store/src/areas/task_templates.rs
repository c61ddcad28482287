//! An org's task templates, and creating a whole task tree with its
//! dependencies in one transaction (applying any template).

use cadre_types::Tenant;
use serde_json::{Value, json};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::events::Actor;
use super::tasks::{INSERT_TASK, NewTask, TaskRow, bind_task};
use crate::{Result, StoreError};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskTemplateRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub description: String,
    /// The template as the API takes it (`{"name", "tasks": [...]}`).
    pub body: Json<Value>,
    pub created_at: OffsetDateTime,
}

#[async_trait::async_trait]
pub trait TaskTemplateQueries: Send + Sync {
    async fn template_org(&self, id: Uuid) -> Result<Option<Uuid>>;
    async fn create_template(
        &self,
        tenant: Tenant,
        id: Uuid,
        name: &str,
        description: &str,
        body: &Value,
        at: OffsetDateTime,
    ) -> Result<TaskTemplateRow>;
    /// Oldest first.
    async fn templates(&self, tenant: Tenant) -> Result<Vec<TaskTemplateRow>>;
    async fn template(&self, tenant: Tenant, id: Uuid) -> Result<TaskTemplateRow>;
    /// Creates `tasks` (parents before children) and the `(task, depends
    /// on)` edges between them in one transaction, and queues the auto-run
    /// check for those an agent is assigned to.
    async fn create_tree(
        &self,
        tenant: Tenant,
        tasks: &[NewTask],
        edges: &[(Uuid, Uuid)],
        actor: &Actor,
    ) -> Result<Vec<TaskRow>>;
}

super::for_both_backends!(TaskTemplateQueries {
    async fn template_org(&self, id: Uuid) -> Result<Option<Uuid>> {
        Ok(sqlx::query_scalar("SELECT org_id FROM task_templates WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn create_template(&self, tenant: Tenant, id: Uuid, name: &str, description: &str, body: &Value, at: OffsetDateTime) -> Result<TaskTemplateRow> {
        Ok(sqlx::query_as::<_, TaskTemplateRow>(
            "INSERT INTO task_templates (id, org_id, name, description, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             RETURNING id, org_id, name, description, body, created_at")
            .bind(id)
            .bind(tenant.org_id())
            .bind(name)
            .bind(description)
            .bind(Json(body))
            .bind(at)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn templates(&self, tenant: Tenant) -> Result<Vec<TaskTemplateRow>> {
        Ok(sqlx::query_as::<_, TaskTemplateRow>(
            "SELECT id, org_id, name, description, body, created_at FROM task_templates WHERE org_id = $1 ORDER BY created_at, id")
            .bind(tenant.org_id())
            .fetch_all(&self.pool)
            .await?)
    }

    async fn template(&self, tenant: Tenant, id: Uuid) -> Result<TaskTemplateRow> {
        Ok(sqlx::query_as::<_, TaskTemplateRow>(
            "SELECT id, org_id, name, description, body, created_at FROM task_templates WHERE org_id = $1 AND id = $2")
            .bind(tenant.org_id())
            .bind(id)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn create_tree(&self, tenant: Tenant, tasks: &[NewTask], edges: &[(Uuid, Uuid)], actor: &Actor) -> Result<Vec<TaskRow>> {
        let org = tenant.org_id();
        let mut tx = self.begin_write().await?;
        let mut out = Vec::new();
        let mut rows = Vec::with_capacity(tasks.len());
        let mut ready = Vec::new();
        for t in tasks {
            let auto_run: Option<bool> = sqlx::query_scalar(
                "SELECT auto_run FROM projects WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL")
                .bind(org)
                .bind(t.project_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(auto_run) = auto_run else {
                return Err(StoreError::NotFound);
            };
            bind_task!(sqlx::query(INSERT_TASK), org, t).execute(&mut *tx).await?;
            rows.push(super::tasks::store_version!(tx, org, t.id, "created", "created from a template", actor, t.at)?);
            super::events::emit!(out, tx, org, "task_created", "task", t.id, actor,
                json!({ "taskId": t.id, "projectId": t.project_id, "parentId": t.parent_id, "title": t.title, "status": t.status }), t.at)?;
            if auto_run && t.assignee.as_ref().is_some_and(|a| a.0 == "agent") {
                ready.push(t.id);
            }
        }
        for (task, depends_on) in edges {
            let id = cadre_types::new_id();
            let at = tasks.first().map_or_else(cadre_types::time::now, |t| t.at);
            sqlx::query("INSERT INTO task_dependencies (id, org_id, task_id, depends_on, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(id)
                .bind(org)
                .bind(task)
                .bind(depends_on)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            super::events::emit!(out, tx, org, "dependency_added", "task", *task, actor,
                json!({ "dependencyId": id, "taskId": task, "dependsOn": depends_on }), at)?;
        }
        if let Some(at) = tasks.first().map(|t| t.at) {
            super::tasks::queue_ready_check!(tx, org, ready, at)?;
        }
        tx.commit().await?;
        self.events.send(out);
        Ok(rows)
    }
});
