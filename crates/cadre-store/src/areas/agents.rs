//! Agents and their immutable versions. Every change bumps the version and
//! stores a snapshot in the same transaction; deletion is soft, so the
//! executions and versions of a deleted agent stay readable.

use cadre_types::Tenant;
use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Counted, Page};
use crate::Result;

/// An agent's editable definition (what a version snapshots).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentSpec {
    pub name: String,
    pub kind: String,
    pub role: String,
    pub description: String,
    pub instructions: String,
    pub model: String,
    pub tools: Vec<String>,
    pub approval_policy: Value,
    pub skills: Vec<String>,
    pub limits: Value,
    pub title: Option<String>,
    pub reports_to: Option<Uuid>,
    pub template_id: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgentRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub kind: String,
    pub role: String,
    pub description: String,
    pub instructions: String,
    pub model: String,
    pub tools: Json<Vec<String>>,
    pub approval_policy: Json<Value>,
    pub skills: Json<Vec<String>>,
    pub limits: Json<Value>,
    pub title: Option<String>,
    pub reports_to: Option<Uuid>,
    pub template_id: Option<String>,
    pub status: String,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub deleted_at: Option<OffsetDateTime>,
}

impl AgentRow {
    /// The definition this row holds.
    pub fn spec(&self) -> AgentSpec {
        AgentSpec {
            name: self.name.clone(),
            kind: self.kind.clone(),
            role: self.role.clone(),
            description: self.description.clone(),
            instructions: self.instructions.clone(),
            model: self.model.clone(),
            tools: self.tools.0.clone(),
            approval_policy: self.approval_policy.0.clone(),
            skills: self.skills.0.clone(),
            limits: self.limits.0.clone(),
            title: self.title.clone(),
            reports_to: self.reports_to,
            template_id: self.template_id.clone(),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgentVersionRow {
    pub agent_id: Uuid,
    pub version: i64,
    pub snapshot: Json<AgentSpec>,
    pub changed_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

#[async_trait::async_trait]
pub trait AgentQueries: Send + Sync {
    /// The org of a live agent, for authorization.
    async fn agent_org(&self, id: Uuid) -> Result<Option<Uuid>>;
    /// Creates the agent and its version 1.
    async fn create_agent(
        &self,
        tenant: Tenant,
        id: Uuid,
        spec: &AgentSpec,
        by: Option<Uuid>,
        at: OffsetDateTime,
    ) -> Result<AgentRow>;
    async fn agents(&self, tenant: Tenant, page: Page) -> Result<(Vec<AgentRow>, u64)>;
    /// A live agent.
    async fn agent(&self, tenant: Tenant, id: Uuid) -> Result<AgentRow>;
    /// Replaces the definition: a new version with its snapshot.
    async fn update_agent(
        &self,
        tenant: Tenant,
        id: Uuid,
        spec: &AgentSpec,
        by: Option<Uuid>,
        at: OffsetDateTime,
    ) -> Result<AgentRow>;
    /// `idle` or `disabled`: what people set. What an agent is doing is
    /// read from its executions ([`AgentQueries::agent_activity`]).
    async fn set_agent_status(
        &self,
        tenant: Tenant,
        id: Uuid,
        status: &str,
        at: OffsetDateTime,
    ) -> Result<AgentRow>;
    /// Soft delete: versions and executions stay.
    async fn delete_agent(&self, tenant: Tenant, id: Uuid, at: OffsetDateTime) -> Result<()>;
    /// How many unfinished executions each agent of the org has, by
    /// status: `(agent, status, count)`.
    async fn agent_activity(&self, tenant: Tenant) -> Result<Vec<(Uuid, String, i64)>>;
    /// Versions, newest first (deleted agents' too).
    async fn agent_versions(&self, tenant: Tenant, id: Uuid) -> Result<Vec<AgentVersionRow>>;
    async fn agent_version(
        &self,
        tenant: Tenant,
        id: Uuid,
        version: i64,
    ) -> Result<AgentVersionRow>;
}

macro_rules! agent_columns {
    () => {
        "id, org_id, name, kind, role, description, instructions, model, tools, approval_policy, skills, limits, title, reports_to, template_id, status, version, created_at, updated_at, deleted_at"
    };
}

const INSERT_VERSION: &str =
    "INSERT INTO agent_versions (agent_id, version, org_id, snapshot, changed_by, created_at)
                              VALUES ($1, $2, $3, $4, $5, $6)";

super::for_both_backends!(AgentQueries {
    async fn agent_org(&self, id: Uuid) -> Result<Option<Uuid>> {
        Ok(sqlx::query_scalar("SELECT org_id FROM agents WHERE id = $1 AND deleted_at IS NULL")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn create_agent(&self, tenant: Tenant, id: Uuid, spec: &AgentSpec, by: Option<Uuid>, at: OffsetDateTime) -> Result<AgentRow> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query_as::<_, AgentRow>(concat!(
            "INSERT INTO agents (id, org_id, name, kind, role, description, instructions, model, tools, approval_policy,
                                 skills, limits, title, reports_to, template_id, status, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'idle', 1, $16, $16)
             RETURNING ", agent_columns!()))
        .bind(id)
        .bind(tenant.org_id())
        .bind(&spec.name)
        .bind(&spec.kind)
        .bind(&spec.role)
        .bind(&spec.description)
        .bind(&spec.instructions)
        .bind(&spec.model)
        .bind(Json(&spec.tools))
        .bind(Json(&spec.approval_policy))
        .bind(Json(&spec.skills))
        .bind(Json(&spec.limits))
        .bind(&spec.title)
        .bind(spec.reports_to)
        .bind(&spec.template_id)
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(INSERT_VERSION)
            .bind(id)
            .bind(1_i64)
            .bind(tenant.org_id())
            .bind(Json(spec))
            .bind(by)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn agents(&self, tenant: Tenant, page: Page) -> Result<(Vec<AgentRow>, u64)> {
        let rows = sqlx::query_as::<_, Counted<AgentRow>>(concat!(
            "SELECT ", agent_columns!(), ", COUNT(*) OVER () AS total FROM agents
             WHERE org_id = $1 AND deleted_at IS NULL
             ORDER BY created_at, id LIMIT $2 OFFSET $3"))
        .bind(tenant.org_id())
        .bind(i64::from(page.page_size))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        super::paged(rows, || sqlx::query_scalar("SELECT COUNT(*) FROM agents WHERE org_id = $1 AND deleted_at IS NULL")
                .bind(tenant.org_id())
                .fetch_one(&self.pool)).await
    }

    async fn agent(&self, tenant: Tenant, id: Uuid) -> Result<AgentRow> {
        Ok(sqlx::query_as::<_, AgentRow>(concat!(
            "SELECT ", agent_columns!(), " FROM agents WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL"))
        .bind(tenant.org_id())
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn update_agent(&self, tenant: Tenant, id: Uuid, spec: &AgentSpec, by: Option<Uuid>, at: OffsetDateTime) -> Result<AgentRow> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query_as::<_, AgentRow>(concat!(
            "UPDATE agents SET name = $3, kind = $4, role = $5, description = $6, instructions = $7, model = $8,
                    tools = $9, approval_policy = $10, skills = $11, limits = $12, title = $13, reports_to = $14,
                    template_id = $15, version = version + 1, updated_at = $16
             WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING ", agent_columns!()))
        .bind(tenant.org_id())
        .bind(id)
        .bind(&spec.name)
        .bind(&spec.kind)
        .bind(&spec.role)
        .bind(&spec.description)
        .bind(&spec.instructions)
        .bind(&spec.model)
        .bind(Json(&spec.tools))
        .bind(Json(&spec.approval_policy))
        .bind(Json(&spec.skills))
        .bind(Json(&spec.limits))
        .bind(&spec.title)
        .bind(spec.reports_to)
        .bind(&spec.template_id)
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(INSERT_VERSION)
            .bind(id)
            .bind(row.version)
            .bind(tenant.org_id())
            .bind(Json(spec))
            .bind(by)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn set_agent_status(&self, tenant: Tenant, id: Uuid, status: &str, at: OffsetDateTime) -> Result<AgentRow> {
        Ok(sqlx::query_as::<_, AgentRow>(concat!(
            "UPDATE agents SET status = $3, updated_at = $4
             WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING ", agent_columns!()))
        .bind(tenant.org_id())
        .bind(id)
        .bind(status)
        .bind(at)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn agent_activity(&self, tenant: Tenant) -> Result<Vec<(Uuid, String, i64)>> {
        // The predicate is the partial index `executions_live`'s, word for word.
        Ok(sqlx::query_as::<_, (Uuid, String, i64)>(
            "SELECT agent_id, status, COUNT(*) FROM executions
             WHERE org_id = $1 AND status NOT IN ('completed', 'failed', 'cancelled')
             GROUP BY agent_id, status",
        )
        .bind(tenant.org_id())
        .fetch_all(&self.pool)
        .await?)
    }

    async fn delete_agent(&self, tenant: Tenant, id: Uuid, at: OffsetDateTime) -> Result<()> {
        let done = sqlx::query("UPDATE agents SET deleted_at = $3, updated_at = $3 WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL")
            .bind(tenant.org_id())
            .bind(id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 1 { Ok(()) } else { Err(crate::StoreError::NotFound) }
    }

    async fn agent_versions(&self, tenant: Tenant, id: Uuid) -> Result<Vec<AgentVersionRow>> {
        Ok(sqlx::query_as::<_, AgentVersionRow>(
            "SELECT agent_id, version, snapshot, changed_by, created_at FROM agent_versions
             WHERE org_id = $1 AND agent_id = $2 ORDER BY version DESC")
        .bind(tenant.org_id())
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn agent_version(&self, tenant: Tenant, id: Uuid, version: i64) -> Result<AgentVersionRow> {
        Ok(sqlx::query_as::<_, AgentVersionRow>(
            "SELECT agent_id, version, snapshot, changed_by, created_at FROM agent_versions
             WHERE org_id = $1 AND agent_id = $2 AND version = $3")
        .bind(tenant.org_id())
        .bind(id)
        .bind(version)
        .fetch_one(&self.pool)
        .await?)
    }
});
