//! `/orgs`: organizations, members and invitations.

use axum::extract::State;
use axum::response::Response;
use cadre_identity::orgs as org_service;
use cadre_store::{OrgPatch, OrgRow};
use cadre_types::{Plan, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::envelope::no_content;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::ApiPath;
use crate::{ApiJson, ApiResponse, AppState};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrgOut {
    id: Uuid,
    name: String,
    slug: String,
    plan: String,
    status: String,
    #[schema(value_type = Object)]
    settings: serde_json::Value,
    /// The caller's role.
    role: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    created_at: time::OffsetDateTime,
}

impl OrgOut {
    fn new(o: OrgRow, role: &str) -> Self {
        Self {
            id: o.id,
            name: o.name,
            slug: o.slug,
            plan: o.plan,
            status: o.status,
            settings: o.settings.0,
            role: role.to_owned(),
            created_at: o.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct OrgIn {
    name: String,
    slug: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct OrgPatchIn {
    name: Option<String>,
    slug: Option<String>,
    #[schema(value_type = Option<String>)]
    plan: Option<Plan>,
    #[schema(value_type = Option<Object>)]
    settings: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MemberOut {
    user_id: Uuid,
    email: String,
    name: String,
    role: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    joined_at: time::OffsetDateTime,
}

impl From<cadre_store::MemberRow> for MemberOut {
    fn from(m: cadre_store::MemberRow) -> Self {
        Self {
            user_id: m.user_id,
            email: m.email,
            name: m.name,
            role: m.role,
            joined_at: m.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct InviteIn {
    email: String,
    #[schema(value_type = String)]
    role: Role,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RoleIn {
    #[schema(value_type = String)]
    role: Role,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InvitationOut {
    id: Uuid,
    email: String,
    role: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    expires_at: time::OffsetDateTime,
    /// Returned because no mailer is configured: pass the link on yourself.
    token: Option<String>,
    accept_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AcceptOut {
    org_id: Uuid,
}

/// Organizations the caller belongs to, with their role.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "orgs", responses((status = 200, body = Vec<OrgOut>)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn list_orgs_handler(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<ApiResponse<Vec<OrgOut>>> {
    let user_id = caller.user()?;
    let orgs = state.store().orgs().orgs_of_user(user_id).await?;
    Ok(ApiResponse::ok(
        orgs.into_iter()
            .map(|o| OrgOut::new(o.org, &o.role))
            .collect(),
    ))
}

/// Create an organization; the caller becomes its owner and its `Inbox` project exists at once.
#[utoipa::path(post, path = "/api/v1/orgs", tag = "orgs", request_body = OrgIn,
    responses((status = 201, body = OrgOut), (status = 409, description = "Slug taken")))]
#[tracing::instrument(skip_all)]
pub(crate) async fn create_org_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<OrgIn>,
) -> ApiResult<ApiResponse<OrgOut>> {
    let user_id = caller.user()?;
    let org = org_service::create_org(
        state.store(),
        user_id,
        &body.name,
        body.slug.as_deref(),
        state.limits().default_plan(),
    )
    .await?;
    caller
        .audit(
            Some(org.id),
            None,
            "org.created",
            Some(("org", org.id.to_string())),
            serde_json::json!({ "slug": org.slug }),
        )
        .await;
    Ok(ApiResponse::created(OrgOut::new(org, Role::Owner.as_str())))
}

/// One organization.
#[utoipa::path(get, path = "/api/v1/orgs/{orgId}", tag = "orgs", params(("orgId" = Uuid, Path)), responses((status = 200, body = OrgOut), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_org_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<OrgOut>> {
    let tenant = caller.authorize(org_id).await?;
    let org = state.store().orgs().org(tenant).await?;
    let role = role_label(&caller);
    Ok(ApiResponse::ok(OrgOut::new(org, role)))
}

/// Rename, change slug, plan or settings (admins).
#[utoipa::path(patch, path = "/api/v1/orgs/{orgId}", tag = "orgs", params(("orgId" = Uuid, Path)), request_body = OrgPatchIn, responses((status = 200, body = OrgOut)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn update_org_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<OrgPatchIn>,
) -> ApiResult<ApiResponse<OrgOut>> {
    let tenant = caller.authorize(org_id).await?;
    let patch = OrgPatch {
        name: body
            .name
            .as_deref()
            .map(cadre_identity::accounts::validate_name)
            .transpose()?,
        slug: body
            .slug
            .as_deref()
            .map(org_service::validate_slug)
            .transpose()?,
        plan: body.plan,
        settings: body.settings,
    };
    let org = state
        .store()
        .orgs()
        .update_org(tenant, &patch, cadre_types::time::now())
        .await
        .map_err(|e| match e {
            cadre_store::StoreError::Conflict { .. } => {
                ApiError::new(ErrorCode::Conflict, "that slug is taken").with_field("slug")
            }
            other => other.into(),
        })?;
    let role = role_label(&caller);
    Ok(ApiResponse::ok(OrgOut::new(org, role)))
}

/// Delete the organization and everything in it (owners only).
#[utoipa::path(delete, path = "/api/v1/orgs/{orgId}", tag = "orgs", params(("orgId" = Uuid, Path)), responses((status = 204), (status = 403)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn delete_org_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let tenant = caller.authorize(org_id).await?;
    state.store().orgs().delete_org(tenant).await?;
    caller
        .audit(
            Some(org_id),
            None,
            "org.deleted",
            Some(("org", org_id.to_string())),
            serde_json::json!({}),
        )
        .await;
    Ok(no_content())
}

/// Members and their roles.
#[utoipa::path(get, path = "/api/v1/orgs/{orgId}/members", tag = "orgs", params(("orgId" = Uuid, Path)), responses((status = 200, body = Vec<MemberOut>)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn list_members_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<Vec<MemberOut>>> {
    let tenant = caller.authorize(org_id).await?;
    Ok(ApiResponse::ok(
        state
            .store()
            .orgs()
            .members(tenant)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Invite someone by email (valid 7 days). Without a mailer the token is returned so an admin can pass the link on.
#[utoipa::path(post, path = "/api/v1/orgs/{orgId}/members", tag = "orgs", params(("orgId" = Uuid, Path)), request_body = InviteIn, responses((status = 201, body = InvitationOut)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn invite_member_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<InviteIn>,
) -> ApiResult<ApiResponse<InvitationOut>> {
    let tenant = caller.authorize(org_id).await?;
    let inviter = caller.principal().map(|p| p.actor().1).unwrap_or_default();
    let inviter_user = match caller.principal() {
        Some(crate::auth::Principal::ApiKey { created_by, .. }) => *created_by,
        _ => inviter,
    };
    if body.role == Role::Owner && caller.role() != Some(Role::Owner) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only an owner can invite another owner",
        ));
    }
    let (inv, token) =
        org_service::invite(state.store(), tenant, inviter_user, &body.email, body.role).await?;
    caller
        .audit(
            Some(org_id),
            None,
            "org.member.invited",
            Some(("invitation", inv.id.to_string())),
            serde_json::json!({ "email": inv.email, "role": inv.role }),
        )
        .await;
    let accept_url = format!("{}/invitations/{token}", state.public_url());
    // With a mailer the invitee gets the link and the token stays secret;
    // without one the inviter passes it on.
    let shown = match state.mailer() {
        Some(mailer) => {
            let body = format!(
                "You are invited to join an organization on Cadre as {}.\n\nAccept within 7 days: {accept_url}\n(or POST /api/v1/invitations/{token}/accept while signed in as {}).\n",
                inv.role, inv.email
            );
            mailer.send(&inv.email, "You are invited to Cadre", body).await.map_err(|e| {
                tracing::error!(error = %e, "could not mail an invitation");
                ApiError::new(ErrorCode::ServiceUnavailable, "the invitation was created but the email could not be sent; try again later")
            })?;
            None
        }
        None => Some((token, accept_url)),
    };
    let (token, accept_url) = shown.map_or((None, None), |(t, u)| (Some(t), Some(u)));
    Ok(ApiResponse::created(InvitationOut {
        id: inv.id,
        email: inv.email,
        role: inv.role,
        expires_at: inv.expires_at,
        token,
        accept_url,
    }))
}

/// Change a member's role. The last owner cannot be demoted (409).
#[utoipa::path(patch, path = "/api/v1/orgs/{orgId}/members/{userId}", tag = "orgs", params(("orgId" = Uuid, Path), ("userId" = Uuid, Path)), request_body = RoleIn, responses((status = 200, body = MemberOut), (status = 409)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn update_member_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((org_id, user_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<RoleIn>,
) -> ApiResult<ApiResponse<MemberOut>> {
    let tenant = caller.authorize(org_id).await?;
    let mine = caller.role();
    let target = state
        .store()
        .orgs()
        .membership(user_id, org_id)
        .await?
        .map(|(r, _)| r);
    let Some(target) = target else {
        return Err(ApiError::not_found("member"));
    };
    if (body.role == Role::Owner || target == Role::Owner) && mine != Some(Role::Owner) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only an owner can grant or take away the owner role",
        ));
    }
    let member = state
        .store()
        .orgs()
        .set_member_role(tenant, user_id, body.role)
        .await?;
    caller
        .audit(
            Some(org_id),
            None,
            "org.member.role_changed",
            Some(("user", user_id.to_string())),
            serde_json::json!({ "from": target.as_str(), "to": body.role.as_str() }),
        )
        .await;
    Ok(ApiResponse::ok(member.into()))
}

/// Remove a member. The last owner cannot be removed (409).
#[utoipa::path(delete, path = "/api/v1/orgs/{orgId}/members/{userId}", tag = "orgs", params(("orgId" = Uuid, Path), ("userId" = Uuid, Path)), responses((status = 204), (status = 409)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn remove_member_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((org_id, user_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    let tenant = caller.authorize(org_id).await?;
    let target = state
        .store()
        .orgs()
        .membership(user_id, org_id)
        .await?
        .map(|(r, _)| r);
    if target == Some(Role::Owner) && caller.role() != Some(Role::Owner) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only an owner can remove an owner",
        ));
    }
    state.store().orgs().remove_member(tenant, user_id).await?;
    caller
        .audit(
            Some(org_id),
            None,
            "org.member.removed",
            Some(("user", user_id.to_string())),
            serde_json::json!({}),
        )
        .await;
    Ok(no_content())
}

/// Invitations not yet accepted and not expired, newest first (admins).
/// Their links are not shown again.
#[utoipa::path(get, path = "/api/v1/orgs/{orgId}/invitations", tag = "orgs", params(("orgId" = Uuid, Path)), responses((status = 200, body = Vec<InvitationOut>)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn list_invitations_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<Vec<InvitationOut>>> {
    let tenant = caller.authorize(org_id).await?;
    let rows = state
        .store()
        .orgs()
        .pending_invitations(tenant, cadre_types::time::now())
        .await?;
    Ok(ApiResponse::ok(
        rows.into_iter()
            .map(|inv| InvitationOut {
                id: inv.id,
                email: inv.email,
                role: inv.role,
                expires_at: inv.expires_at,
                token: None,
                accept_url: None,
            })
            .collect(),
    ))
}

/// Withdraw an invitation not yet accepted: its link stops working.
#[utoipa::path(delete, path = "/api/v1/orgs/{orgId}/invitations/{invitationId}", tag = "orgs", params(("orgId" = Uuid, Path), ("invitationId" = Uuid, Path)), responses((status = 204), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn revoke_invitation_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((org_id, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    let tenant = caller.authorize(org_id).await?;
    state
        .store()
        .orgs()
        .revoke_invitation(tenant, id)
        .await
        .map_err(|e| match e {
            cadre_store::StoreError::NotFound => ApiError::not_found("invitation"),
            other => other.into(),
        })?;
    caller
        .audit(
            Some(org_id),
            None,
            "org.invitation.revoked",
            Some(("invitation", id.to_string())),
            serde_json::json!({}),
        )
        .await;
    Ok(no_content())
}

/// Accept an invitation as the signed-in user (whose email must be the invited one).
#[utoipa::path(post, path = "/api/v1/invitations/{token}/accept", tag = "orgs", params(("token" = String, Path)), responses((status = 200, body = AcceptOut), (status = 404), (status = 409)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn accept_invitation_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<ApiResponse<AcceptOut>> {
    let user_id = caller.user()?;
    let user = state.accounts().me(user_id).await?;
    let org_id =
        org_service::accept_invitation(state.store(), &token, user_id, &user.email).await?;
    caller
        .audit(
            Some(org_id),
            None,
            "org.member.joined",
            Some(("user", user_id.to_string())),
            serde_json::json!({}),
        )
        .await;
    Ok(ApiResponse::ok(AcceptOut { org_id }))
}

/// The caller's role as shown in answers (`api_key` for keys).
fn role_label(caller: &Caller) -> &'static str {
    caller.role().map_or("api_key", Role::as_str)
}
