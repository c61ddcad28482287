//! Organizations, their members and invitations. Creating an organization
//! also creates its owner's membership and its default project `Inbox`, in
//! one transaction.

use cadre_types::{Plan, Role, Tenant};
use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Result, StoreError};

/// The default workflow states of a project (SPEC §3).
pub const DEFAULT_WORKFLOW_STATES: [&str; 4] = ["draft", "in_progress", "review", "complete"];

#[derive(Debug, Clone)]
pub struct NewOrg {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub plan: Plan,
    pub owner: Uuid,
    /// Id of the `Inbox` project created with it.
    pub inbox_id: Uuid,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgRow {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub plan: String,
    pub settings: Json<Value>,
    pub status: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// An organization as one of its members sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgWithRole {
    #[sqlx(flatten)]
    pub org: OrgRow,
    pub role: String,
}

#[derive(Debug, Clone, Default)]
pub struct OrgPatch {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub plan: Option<Plan>,
    pub settings: Option<Value>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub token_hash: String,
    pub invited_by: Uuid,
    pub expires_at: OffsetDateTime,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub email: String,
    pub role: String,
    pub invited_by: Uuid,
    pub expires_at: OffsetDateTime,
    pub accepted_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

#[async_trait::async_trait]
pub trait OrgQueries: Send + Sync {
    /// Creates the org, its owner's membership and its `Inbox`. A taken slug
    /// is [`StoreError::Conflict`].
    async fn create_org(&self, org: &NewOrg) -> Result<OrgRow>;
    /// The caller's role in an org and the org's plan; `None` when not a
    /// member (or no such org). This is the check the authorization layer
    /// makes before it creates a [`Tenant`].
    async fn membership(&self, user_id: Uuid, org_id: Uuid) -> Result<Option<(Role, Plan)>>;
    /// The plan of an org (for API keys, which belong to one org).
    async fn plan_of(&self, org_id: Uuid) -> Result<Option<Plan>>;
    async fn org(&self, tenant: Tenant) -> Result<OrgRow>;
    async fn orgs_of_user(&self, user_id: Uuid) -> Result<Vec<OrgWithRole>>;
    /// Every org on the instance (platform admin routes only), oldest first.
    async fn all_orgs(&self, page: super::Page) -> Result<(Vec<OrgRow>, u64)>;
    async fn update_org(
        &self,
        tenant: Tenant,
        patch: &OrgPatch,
        at: OffsetDateTime,
    ) -> Result<OrgRow>;
    async fn delete_org(&self, tenant: Tenant) -> Result<()>;
    async fn members(&self, tenant: Tenant) -> Result<Vec<MemberRow>>;
    /// Changes a member's role (`Some`) or removes the member (`None`).
    /// Leaving the org without an owner is [`StoreError::Conflict`] with
    /// constraint `last_owner`; a non-member is [`StoreError::NotFound`].
    async fn change_member(
        &self,
        tenant: Tenant,
        user_id: Uuid,
        role: Option<Role>,
    ) -> Result<Option<MemberRow>>;

    /// Changes a member's role (see [`OrgQueries::change_member`]).
    async fn set_member_role(
        &self,
        tenant: Tenant,
        user_id: Uuid,
        role: Role,
    ) -> Result<MemberRow> {
        self.change_member(tenant, user_id, Some(role))
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Removes a member (see [`OrgQueries::change_member`]).
    async fn remove_member(&self, tenant: Tenant, user_id: Uuid) -> Result<()> {
        self.change_member(tenant, user_id, None).await.map(|_| ())
    }
    async fn create_invitation(
        &self,
        tenant: Tenant,
        invitation: &NewInvitation,
    ) -> Result<InvitationRow>;
    async fn invitation_by_token(&self, token_hash: &str) -> Result<Option<InvitationRow>>;
    /// Invitations not accepted and not expired at `now`, newest first (at
    /// most 200).
    async fn pending_invitations(
        &self,
        tenant: Tenant,
        now: OffsetDateTime,
    ) -> Result<Vec<InvitationRow>>;
    /// Withdraws an invitation not yet accepted; its link stops working.
    /// [`StoreError::NotFound`] when there is no such pending invitation.
    async fn revoke_invitation(&self, tenant: Tenant, id: Uuid) -> Result<()>;
    /// Makes the user a member with the invitation's role (a user who is
    /// already a member keeps their role) and marks the invitation accepted.
    /// An invitation already accepted is [`StoreError::Conflict`].
    async fn accept_invitation(
        &self,
        invitation_id: Uuid,
        user_id: Uuid,
        at: OffsetDateTime,
    ) -> Result<()>;
}

macro_rules! org_columns {
    () => {
        "id, name, slug, plan, settings, status, created_at, updated_at"
    };
}

macro_rules! invitation_columns {
    () => {
        "id, org_id, email, role, invited_by, expires_at, accepted_at, created_at"
    };
}

fn last_owner() -> StoreError {
    StoreError::Conflict {
        constraint: "last_owner".to_owned(),
    }
}

super::for_both_backends!(OrgQueries {
    async fn create_org(&self, o: &NewOrg) -> Result<OrgRow> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query_as::<_, OrgRow>(concat!(
            "INSERT INTO orgs (id, name, slug, plan, settings, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'active', $6, $6) RETURNING ", org_columns!()))
        .bind(o.id)
        .bind(&o.name)
        .bind(&o.slug)
        .bind(o.plan.as_str())
        .bind(Json(serde_json::json!({})))
        .bind(o.at)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)")
            .bind(o.id)
            .bind(o.owner)
            .bind(o.at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO projects (id, org_id, name, description, workflow_states, auto_run, require_review, is_default, created_at, updated_at)
             VALUES ($1, $2, 'Inbox', 'Default project for new work.', $3, FALSE, FALSE, TRUE, $4, $4)",
        )
        .bind(o.inbox_id)
        .bind(o.id)
        .bind(Json(DEFAULT_WORKFLOW_STATES))
        .bind(o.at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn membership(&self, user_id: Uuid, org_id: Uuid) -> Result<Option<(Role, Plan)>> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT m.role, o.plan FROM memberships m JOIN orgs o ON o.id = m.org_id WHERE m.org_id = $1 AND m.user_id = $2",
        )
        .bind(org_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(role, plan)| Some((role.parse().ok()?, plan.parse().unwrap_or(Plan::Free)))))
    }

    async fn plan_of(&self, org_id: Uuid) -> Result<Option<Plan>> {
        let plan: Option<String> = sqlx::query_scalar("SELECT plan FROM orgs WHERE id = $1").bind(org_id).fetch_optional(&self.pool).await?;
        Ok(plan.map(|p| p.parse().unwrap_or(Plan::Free)))
    }

    async fn org(&self, tenant: Tenant) -> Result<OrgRow> {
        Ok(sqlx::query_as::<_, OrgRow>(concat!("SELECT ", org_columns!(), " FROM orgs WHERE id = $1"))
            .bind(tenant.org_id())
            .fetch_one(&self.pool)
            .await?)
    }

    async fn orgs_of_user(&self, user_id: Uuid) -> Result<Vec<OrgWithRole>> {
        Ok(sqlx::query_as::<_, OrgWithRole>(
            "SELECT o.id, o.name, o.slug, o.plan, o.settings, o.status, o.created_at, o.updated_at, m.role
             FROM orgs o JOIN memberships m ON m.org_id = o.id
             WHERE m.user_id = $1 ORDER BY o.created_at, o.id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn all_orgs(&self, page: super::Page) -> Result<(Vec<OrgRow>, u64)> {
        let rows = sqlx::query_as::<_, OrgRow>(concat!("SELECT ", org_columns!(), " FROM orgs ORDER BY created_at, id LIMIT $1 OFFSET $2"))
            .bind(i64::from(page.page_size))
            .bind(page.offset())
            .fetch_all(&self.pool)
            .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orgs").fetch_one(&self.pool).await?;
        Ok((rows, u64::try_from(total).unwrap_or(0)))
    }

    async fn update_org(&self, tenant: Tenant, p: &OrgPatch, at: OffsetDateTime) -> Result<OrgRow> {
        Ok(sqlx::query_as::<_, OrgRow>(concat!(
            "UPDATE orgs SET name = COALESCE($2, name), slug = COALESCE($3, slug), plan = COALESCE($4, plan),
                    settings = COALESCE($5, settings), updated_at = $6
             WHERE id = $1 RETURNING ", org_columns!()))
        .bind(tenant.org_id())
        .bind(p.name.as_deref())
        .bind(p.slug.as_deref())
        .bind(p.plan.map(|plan| plan.as_str()))
        .bind(p.settings.clone().map(Json))
        .bind(at)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn delete_org(&self, tenant: Tenant) -> Result<()> {
        let done = sqlx::query("DELETE FROM orgs WHERE id = $1").bind(tenant.org_id()).execute(&self.pool).await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn members(&self, tenant: Tenant) -> Result<Vec<MemberRow>> {
        Ok(sqlx::query_as::<_, MemberRow>(
            "SELECT u.id AS user_id, u.email, u.name, m.role, m.created_at
             FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.org_id = $1 ORDER BY m.created_at, u.id",
        )
        .bind(tenant.org_id())
        .fetch_all(&self.pool)
        .await?)
    }

    async fn change_member(&self, tenant: Tenant, user_id: Uuid, role: Option<Role>) -> Result<Option<MemberRow>> {
        let mut tx = self.begin_write().await?;
        sqlx::query(Self::LOCK_ORG).bind(tenant.org_id()).execute(&mut *tx).await?;
        let current: Option<String> = sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(tenant.org_id())
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        let current = current.ok_or(StoreError::NotFound)?;
        if current == Role::Owner.as_str() && role != Some(Role::Owner) {
            let other_owners: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'owner' AND user_id <> $2",
            )
            .bind(tenant.org_id())
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
            if other_owners == 0 {
                return Err(last_owner());
            }
        }
        let row = match role {
            Some(role) => {
                sqlx::query("UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2")
                    .bind(tenant.org_id())
                    .bind(user_id)
                    .bind(role.as_str())
                    .execute(&mut *tx)
                    .await?;
                Some(
                    sqlx::query_as::<_, MemberRow>(
                        "SELECT u.id AS user_id, u.email, u.name, m.role, m.created_at
                         FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND m.user_id = $2",
                    )
                    .bind(tenant.org_id())
                    .bind(user_id)
                    .fetch_one(&mut *tx)
                    .await?,
                )
            }
            None => {
                sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
                    .bind(tenant.org_id())
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                None
            }
        };
        tx.commit().await?;
        Ok(row)
    }

    async fn create_invitation(&self, tenant: Tenant, i: &NewInvitation) -> Result<InvitationRow> {
        Ok(sqlx::query_as::<_, InvitationRow>(concat!(
            "INSERT INTO invitations (id, org_id, email, role, token_hash, invited_by, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ", invitation_columns!()))
        .bind(i.id)
        .bind(tenant.org_id())
        .bind(i.email.to_lowercase())
        .bind(i.role.as_str())
        .bind(&i.token_hash)
        .bind(i.invited_by)
        .bind(i.expires_at)
        .bind(i.at)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn invitation_by_token(&self, token_hash: &str) -> Result<Option<InvitationRow>> {
        Ok(sqlx::query_as::<_, InvitationRow>(concat!("SELECT ", invitation_columns!(), " FROM invitations WHERE token_hash = $1"))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn pending_invitations(&self, tenant: Tenant, now: OffsetDateTime) -> Result<Vec<InvitationRow>> {
        Ok(sqlx::query_as::<_, InvitationRow>(concat!(
            "SELECT ", invitation_columns!(), " FROM invitations
             WHERE org_id = $1 AND accepted_at IS NULL AND expires_at > $2
             ORDER BY created_at DESC, id DESC LIMIT 200"))
            .bind(tenant.org_id())
            .bind(now)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn revoke_invitation(&self, tenant: Tenant, id: Uuid) -> Result<()> {
        let done = sqlx::query("DELETE FROM invitations WHERE org_id = $1 AND id = $2 AND accepted_at IS NULL")
            .bind(tenant.org_id())
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn accept_invitation(&self, invitation_id: Uuid, user_id: Uuid, at: OffsetDateTime) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let accepted = sqlx::query_as::<_, (Uuid, String)>(
            "UPDATE invitations SET accepted_at = $2 WHERE id = $1 AND accepted_at IS NULL RETURNING org_id, role",
        )
        .bind(invitation_id)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        let (org_id, role) = accepted.ok_or_else(|| StoreError::Conflict { constraint: "invitation_accepted".to_owned() })?;
        sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (org_id, user_id) DO NOTHING",
        )
        .bind(org_id)
        .bind(user_id)
        .bind(role)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
});
