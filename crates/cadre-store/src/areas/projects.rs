//! Projects: groupings of tasks with their own workflow states. Every org
//! has a default `Inbox`, which cannot be deleted. Deletion is soft.

use cadre_types::Tenant;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Counted, Page};
use crate::{Result, StoreError};

#[derive(Debug, Clone)]
pub struct NewProject {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub workflow_states: Vec<String>,
    pub auto_run: bool,
    pub require_review: bool,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProjectRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub description: String,
    pub workflow_states: Json<Vec<String>>,
    pub auto_run: bool,
    pub require_review: bool,
    pub is_default: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Default)]
pub struct ProjectPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub workflow_states: Option<Vec<String>>,
    pub auto_run: Option<bool>,
    pub require_review: Option<bool>,
}

#[async_trait::async_trait]
pub trait ProjectQueries: Send + Sync {
    /// The org a live project belongs to, so authorization can decide
    /// whether the caller may see it. Callers must authorize before use.
    async fn project_org(&self, id: Uuid) -> Result<Option<Uuid>>;
    async fn create_project(&self, tenant: Tenant, project: &NewProject) -> Result<ProjectRow>;
    /// Live projects of the org, oldest first, and how many there are.
    async fn projects(&self, tenant: Tenant, page: Page) -> Result<(Vec<ProjectRow>, u64)>;
    async fn project(&self, tenant: Tenant, id: Uuid) -> Result<ProjectRow>;
    async fn update_project(
        &self,
        tenant: Tenant,
        id: Uuid,
        patch: &ProjectPatch,
        at: OffsetDateTime,
    ) -> Result<ProjectRow>;
    /// Soft-deletes; the default project is a `default_project` conflict.
    async fn delete_project(&self, tenant: Tenant, id: Uuid, at: OffsetDateTime) -> Result<()>;
}

macro_rules! project_columns {
    () => {
        "id, org_id, name, description, workflow_states, auto_run, require_review, is_default, created_at, updated_at"
    };
}

super::for_both_backends!(ProjectQueries {
    async fn project_org(&self, id: Uuid) -> Result<Option<Uuid>> {
        Ok(sqlx::query_scalar("SELECT org_id FROM projects WHERE id = $1 AND deleted_at IS NULL")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn create_project(&self, tenant: Tenant, p: &NewProject) -> Result<ProjectRow> {
        Ok(sqlx::query_as::<_, ProjectRow>(concat!(
            "INSERT INTO projects (id, org_id, name, description, workflow_states, auto_run, require_review, is_default, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, FALSE, $8, $8) RETURNING ", project_columns!()))
        .bind(p.id)
        .bind(tenant.org_id())
        .bind(&p.name)
        .bind(&p.description)
        .bind(Json(&p.workflow_states))
        .bind(p.auto_run)
        .bind(p.require_review)
        .bind(p.at)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn projects(&self, tenant: Tenant, page: Page) -> Result<(Vec<ProjectRow>, u64)> {
        let rows = sqlx::query_as::<_, Counted<ProjectRow>>(concat!(
            "SELECT ", project_columns!(), ", COUNT(*) OVER () AS total FROM projects
             WHERE org_id = $1 AND deleted_at IS NULL
             ORDER BY created_at, id LIMIT $2 OFFSET $3"))
        .bind(tenant.org_id())
        .bind(i64::from(page.page_size))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        super::paged(rows, || sqlx::query_scalar("SELECT COUNT(*) FROM projects WHERE org_id = $1 AND deleted_at IS NULL")
                .bind(tenant.org_id())
                .fetch_one(&self.pool)).await
    }

    async fn project(&self, tenant: Tenant, id: Uuid) -> Result<ProjectRow> {
        Ok(sqlx::query_as::<_, ProjectRow>(concat!(
            "SELECT ", project_columns!(), " FROM projects WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL"))
        .bind(tenant.org_id())
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn update_project(&self, tenant: Tenant, id: Uuid, p: &ProjectPatch, at: OffsetDateTime) -> Result<ProjectRow> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query_as::<_, ProjectRow>(concat!(
            "UPDATE projects SET name = COALESCE($3, name), description = COALESCE($4, description),
                    workflow_states = COALESCE($5, workflow_states), auto_run = COALESCE($6, auto_run),
                    require_review = COALESCE($7, require_review), updated_at = $8
             WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING ", project_columns!()))
        .bind(tenant.org_id())
        .bind(id)
        .bind(p.name.as_deref())
        .bind(p.description.as_deref())
        .bind(p.workflow_states.as_ref().map(Json))
        .bind(p.auto_run)
        .bind(p.require_review)
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        if p.auto_run == Some(true) {
            // Turning auto-run on starts whatever is ready already.
            let job = super::tasks::ready_job(tenant.org_id(), serde_json::json!({ "projectId": id }));
            super::jobs::bind_new_job!(sqlx::query(super::jobs::insert_job_sql!()), job, at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(row)
    }

    async fn delete_project(&self, tenant: Tenant, id: Uuid, at: OffsetDateTime) -> Result<()> {
        let is_default: Option<bool> = sqlx::query_scalar("SELECT is_default FROM projects WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL")
            .bind(tenant.org_id())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match is_default {
            None => Err(StoreError::NotFound),
            Some(true) => Err(StoreError::Conflict { constraint: "default_project".to_owned() }),
            Some(false) => {
                sqlx::query("UPDATE projects SET deleted_at = $3 WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL")
                    .bind(tenant.org_id())
                    .bind(id)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }
    }
});
