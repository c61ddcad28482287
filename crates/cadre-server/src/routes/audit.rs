//! The audit log of an organization and its verification.

use axum::extract::State;
use cadre_store::areas::audit::verify_chain;
use cadre_store::{AuditFilter, AuditRow, ChainCheck};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::envelope::ApiList;
use crate::error::ApiResult;
use crate::extract::{ApiPath, ApiQuery, PageQuery};
use crate::{ApiResponse, AppState};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuditEntryOut {
    id: Uuid,
    seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    at: time::OffsetDateTime,
    actor_type: String,
    actor_id: Option<String>,
    action: String,
    resource_type: Option<String>,
    resource_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    #[schema(value_type = Object)]
    details: serde_json::Value,
    prev_hash: String,
    hash: String,
}

impl From<AuditRow> for AuditEntryOut {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            seq: r.seq,
            at: r.at,
            actor_type: r.actor_type,
            actor_id: r.actor_id,
            action: r.action,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            ip: r.ip,
            user_agent: r.user_agent,
            details: r.details.0,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
/// Page fields are repeated rather than a flattened `PageQuery`: serde's
/// flatten hands query values over as strings, which numbers then refuse.
pub(crate) struct AuditQuery {
    #[serde(default = "crate::extract::first_page")]
    page: u32,
    #[serde(default = "crate::extract::default_page_size")]
    page_size: u32,
    /// Only this action (for example `org.member.removed`).
    action: Option<String>,
    /// Only this actor id.
    actor_id: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>)]
    since: Option<time::OffsetDateTime>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VerifyOut {
    valid: bool,
    entries: u64,
    /// The first entry whose hash or link does not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_bad_seq: Option<i64>,
}

/// The organization's audit log, newest first (admins).
#[utoipa::path(get, path = "/api/v1/orgs/{orgId}/audit-log", tag = "audit", params(("orgId" = Uuid, Path), AuditQuery), responses((status = 200, body = Vec<AuditEntryOut>)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn audit_log_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<ApiList<AuditEntryOut>> {
    let page = PageQuery {
        page: q.page,
        page_size: q.page_size,
    }
    .page()?;
    let tenant = caller.authorize(org_id).await?;
    let filter = AuditFilter {
        action: q.action,
        actor_id: q.actor_id,
        since: q.since,
    };
    let (rows, total) = state
        .store()
        .audit()
        .audit_entries(tenant, &filter, page)
        .await?;
    Ok(ApiList::new(
        rows.into_iter().map(Into::into).collect(),
        page,
        total,
    ))
}

/// Recomputes the hash chain and names the first entry that does not match.
#[utoipa::path(get, path = "/api/v1/orgs/{orgId}/audit-log/verify", tag = "audit", params(("orgId" = Uuid, Path)), responses((status = 200, body = VerifyOut)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn verify_audit_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<VerifyOut>> {
    let tenant = caller.authorize(org_id).await?;
    let chain = state.store().audit().audit_chain(tenant.org_id()).await?;
    Ok(ApiResponse::ok(match verify_chain(&chain) {
        ChainCheck::Valid { entries } => VerifyOut {
            valid: true,
            entries,
            first_bad_seq: None,
        },
        ChainCheck::Broken {
            first_bad_seq,
            entries,
        } => VerifyOut {
            valid: false,
            entries,
            first_bad_seq: Some(first_bad_seq),
        },
    }))
}
