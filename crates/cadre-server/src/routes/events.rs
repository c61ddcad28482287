//! The activity feed: an org's domain events, newest first.

use axum::extract::State;
use cadre_store::EventRow;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::{ApiResponse, AppState};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventOut {
    id: Uuid,
    /// `task_created`, `task_updated`, `task_deleted`, `task_locked`,
    /// `task_unlocked`, `dependency_added`, `dependency_removed`,
    /// `execution_queued`.
    #[serde(rename = "type")]
    kind: String,
    resource_type: String,
    resource_id: Uuid,
    /// `{"type": "user" | "api_key" | "agent" | "system", "id"}`.
    #[schema(value_type = Object)]
    actor: Value,
    #[schema(value_type = Object)]
    data: Value,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    created_at: time::OffsetDateTime,
}

impl From<EventRow> for EventOut {
    fn from(e: EventRow) -> Self {
        Self {
            id: e.id,
            kind: e.kind,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            actor: json!({ "type": e.actor_type, "id": e.actor_id }),
            data: e.data.0,
            created_at: e.created_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct EventQuery {
    /// Only events about this resource (a task id, …).
    resource_id: Option<Uuid>,
    /// Only events older than this event id (the last one of a page).
    before: Option<Uuid>,
    /// 1–200, default 50.
    limit: Option<u32>,
}

/// The org's activity: domain events, newest first (page with `before`).
#[utoipa::path(get, path = "/api/v1/orgs/{orgId}/events", tag = "events", params(("orgId" = Uuid, Path), EventQuery), responses((status = 200, body = Vec<EventOut>)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn list_events_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<ApiResponse<Vec<EventOut>>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation("limit", "limit must be 1 to 200"));
    }
    let tenant = caller.authorize(org_id).await?;
    let rows = state
        .store()
        .events()
        .events(tenant, q.resource_id, q.before, limit)
        .await?;
    Ok(ApiResponse::ok(rows.into_iter().map(Into::into).collect()))
}
