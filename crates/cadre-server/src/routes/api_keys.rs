//! `/api-keys`: keys that act for an organization, shown once.

use axum::extract::State;
use axum::response::Response;
use cadre_identity::keys;
use cadre_store::{ApiKeyRow, NewApiKey};
use cadre_types::Scope;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::envelope::no_content;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::{ApiJson, ApiResponse, AppState};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ApiKeyIn {
    name: String,
    org_id: Uuid,
    /// read, write, admin, agents, executions
    #[schema(value_type = Vec<String>)]
    scopes: Vec<Scope>,
    /// Requests per minute for this key (default: the plan's API limit).
    rate_limit_per_minute: Option<i64>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    expires_at: Option<time::OffsetDateTime>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiKeyFilter {
    /// Only this organization's keys.
    org_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiKeyOut {
    id: Uuid,
    org_id: Uuid,
    name: String,
    key_prefix: String,
    #[schema(value_type = Vec<String>)]
    scopes: Vec<Scope>,
    rate_limit_per_minute: Option<i64>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    expires_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    last_used_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    revoked_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    created_at: time::OffsetDateTime,
    /// The whole key: present only in the answer to its creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

impl From<ApiKeyRow> for ApiKeyOut {
    fn from(k: ApiKeyRow) -> Self {
        Self {
            id: k.id,
            org_id: k.org_id,
            name: k.name,
            key_prefix: k.key_prefix,
            scopes: k.scopes.0,
            rate_limit_per_minute: k.rate_limit_per_minute,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
            created_at: k.created_at,
            key: None,
        }
    }
}

/// API keys of one organization (`orgId`), or of every organization the caller administers.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", params(ApiKeyFilter), responses((status = 200, body = Vec<ApiKeyOut>)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn list_api_keys_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<ApiKeyFilter>,
) -> ApiResult<ApiResponse<Vec<ApiKeyOut>>> {
    let orgs = match filter.org_id {
        Some(org) => vec![org],
        None => match caller.principal() {
            Some(crate::auth::Principal::ApiKey { org_id, .. }) => vec![*org_id],
            _ => state
                .store()
                .orgs()
                .orgs_of_user(caller.user()?)
                .await?
                .into_iter()
                .map(|o| o.org.id)
                .collect(),
        },
    };
    let mut out = Vec::new();
    for org in orgs {
        match caller.authorize(org).await {
            Ok(tenant) => out.extend(
                state
                    .store()
                    .api_keys()
                    .api_keys(tenant)
                    .await?
                    .into_iter()
                    .map(ApiKeyOut::from),
            ),
            // Listing across orgs skips those the caller does not administer.
            Err(e)
                if filter.org_id.is_none()
                    && e.status.is_client_error()
                    && e.status.as_u16() != 429 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(ApiResponse::ok(out))
}

/// Create a key for an organization (admins). The key is in this answer only.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = ApiKeyIn, responses((status = 201, body = ApiKeyOut)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn create_api_key_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ApiKeyIn>,
) -> ApiResult<ApiResponse<ApiKeyOut>> {
    let tenant = caller.authorize(body.org_id).await?;
    let user_id = caller.user()?;
    let name = body.name.trim();
    if !(1..=100).contains(&name.chars().count()) {
        return Err(ApiError::validation(
            "name",
            "name must be 1 to 100 characters",
        ));
    }
    if body.scopes.is_empty() {
        return Err(ApiError::validation(
            "scopes",
            "give at least one scope: read, write, admin, agents, executions",
        ));
    }
    if body
        .rate_limit_per_minute
        .is_some_and(|l| !(1..=1_000_000).contains(&l))
    {
        return Err(ApiError::validation(
            "rateLimitPerMinute",
            "rateLimitPerMinute must be 1 to 1000000",
        ));
    }
    let now = cadre_types::time::now();
    if body.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::validation(
            "expiresAt",
            "expiresAt must be in the future",
        ));
    }
    let (key, hash, prefix) = keys::new_api_key()?;
    let row = state
        .store()
        .api_keys()
        .create_api_key(
            tenant,
            &NewApiKey {
                id: cadre_types::new_id(),
                created_by: user_id,
                name: name.to_owned(),
                key_hash: hash,
                key_prefix: prefix,
                scopes: body.scopes,
                rate_limit_per_minute: body.rate_limit_per_minute,
                expires_at: body.expires_at,
                at: now,
            },
        )
        .await?;
    caller
        .audit(
            Some(body.org_id),
            None,
            "api_key.created",
            Some(("api_key", row.id.to_string())),
            serde_json::json!({ "name": row.name }),
        )
        .await;
    let mut out = ApiKeyOut::from(row);
    out.key = Some(key);
    Ok(ApiResponse::created(out))
}

/// Revoke a key; it stops working on the next request.
#[utoipa::path(delete, path = "/api/v1/api-keys/{keyId}", tag = "api-keys", params(("keyId" = Uuid, Path)), responses((status = 204), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn revoke_api_key_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(key_id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let tenant = caller
        .authorize_owner(
            state.store().api_keys().api_key_org(key_id).await?,
            "API key",
        )
        .await?;
    state
        .store()
        .api_keys()
        .revoke_api_key(tenant, key_id, cadre_types::time::now())
        .await?;
    caller
        .audit(
            Some(tenant.org_id()),
            None,
            "api_key.revoked",
            Some(("api_key", key_id.to_string())),
            serde_json::json!({}),
        )
        .await;
    Ok(no_content())
}
