//! Platform administration: the only routes that reach across orgs.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::envelope::ApiList;
use crate::error::ApiResult;
use crate::extract::{ApiQuery, PageQuery};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AdminOrgOut {
    id: Uuid,
    name: String,
    slug: String,
    plan: String,
    status: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    created_at: time::OffsetDateTime,
}

/// Every organization on the instance (platform admins only).
#[utoipa::path(get, path = "/api/v1/admin/orgs", tag = "admin", responses((status = 200, body = Vec<AdminOrgOut>), (status = 403)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn admin_orgs_handler(
    State(state): State<AppState>,
    _admin: Caller,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<ApiList<AdminOrgOut>> {
    let page = page.page()?;
    let (rows, total) = state.store().orgs().all_orgs(page).await?;
    let out = rows
        .into_iter()
        .map(|o| AdminOrgOut {
            id: o.id,
            name: o.name,
            slug: o.slug,
            plan: o.plan,
            status: o.status,
            created_at: o.created_at,
        })
        .collect();
    Ok(ApiList::new(out, page, total))
}
