//! Projects: the minimal CRUD the identity layer needs (every org's `Inbox`,
//! tenant isolation). Tasks and the rest of the work graph come later.

use axum::extract::State;
use axum::response::Response;
use cadre_store::{DEFAULT_WORKFLOW_STATES, NewProject, ProjectPatch, ProjectRow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::envelope::{ApiList, no_content};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery, PageQuery};
use crate::{ApiJson, ApiResponse, AppState};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProjectOut {
    id: Uuid,
    org_id: Uuid,
    name: String,
    description: String,
    workflow_states: Vec<String>,
    auto_run: bool,
    require_review: bool,
    is_default: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    updated_at: time::OffsetDateTime,
}

impl From<ProjectRow> for ProjectOut {
    fn from(p: ProjectRow) -> Self {
        Self {
            id: p.id,
            org_id: p.org_id,
            name: p.name,
            description: p.description,
            workflow_states: p.workflow_states.0,
            auto_run: p.auto_run,
            require_review: p.require_review,
            is_default: p.is_default,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ProjectIn {
    name: String,
    description: Option<String>,
    workflow_states: Option<Vec<String>>,
    auto_run: Option<bool>,
    require_review: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ProjectPatchIn {
    name: Option<String>,
    description: Option<String>,
    workflow_states: Option<Vec<String>>,
    auto_run: Option<bool>,
    require_review: Option<bool>,
}

fn valid_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if (1..=200).contains(&name.chars().count()) {
        Ok(name.to_owned())
    } else {
        Err(ApiError::validation(
            "name",
            "name must be 1 to 200 characters",
        ))
    }
}

/// Workflow states: 1–20 distinct names of 1–50 characters; `cancelled` is
/// always implied and cannot be listed.
fn valid_states(states: Vec<String>) -> Result<Vec<String>, ApiError> {
    let bad = || {
        ApiError::validation(
            "workflowStates",
            "give 1 to 20 distinct state names of 1 to 50 characters (cancelled always exists)",
        )
    };
    let states: Vec<String> = states.into_iter().map(|s| s.trim().to_owned()).collect();
    let distinct = states
        .iter()
        .collect::<std::collections::HashSet<_>>()
        .len()
        == states.len();
    let ok = (1..=20).contains(&states.len())
        && distinct
        && states
            .iter()
            .all(|s| (1..=50).contains(&s.chars().count()) && s != "cancelled");
    if ok { Ok(states) } else { Err(bad()) }
}

fn valid_description(text: Option<String>) -> Result<Option<String>, ApiError> {
    match text {
        Some(t) if t.chars().count() > 10_000 => Err(ApiError::validation(
            "description",
            "description is at most 10000 characters",
        )),
        other => Ok(other),
    }
}

/// The org's default project (`Inbox`), where work without a project goes.
pub(crate) async fn inbox_project(
    state: &AppState,
    tenant: cadre_types::Tenant,
) -> ApiResult<Uuid> {
    let (projects, _) = state
        .store()
        .projects()
        .projects(
            tenant,
            cadre_store::Page {
                page: 1,
                page_size: 100,
            },
        )
        .await?;
    projects
        .into_iter()
        .find(|p| p.is_default)
        .map(|p| p.id)
        .ok_or_else(|| ApiError::not_found("project"))
}

/// Projects of an organization (its `Inbox` included).
#[utoipa::path(get, path = "/api/v1/orgs/{orgId}/projects", tag = "projects", params(("orgId" = Uuid, Path)), responses((status = 200, body = Vec<ProjectOut>)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn list_projects_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<ApiList<ProjectOut>> {
    let page = page.page()?;
    let tenant = caller.authorize(org_id).await?;
    let (rows, total) = state.store().projects().projects(tenant, page).await?;
    Ok(ApiList::new(
        rows.into_iter().map(Into::into).collect(),
        page,
        total,
    ))
}

/// Create a project.
#[utoipa::path(post, path = "/api/v1/orgs/{orgId}/projects", tag = "projects", params(("orgId" = Uuid, Path)), request_body = ProjectIn, responses((status = 201, body = ProjectOut)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn create_project_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ProjectIn>,
) -> ApiResult<ApiResponse<ProjectOut>> {
    let tenant = caller.authorize(org_id).await?;
    let project = NewProject {
        id: cadre_types::new_id(),
        name: valid_name(&body.name)?,
        description: valid_description(body.description)?.unwrap_or_default(),
        workflow_states: valid_states(
            body.workflow_states
                .unwrap_or_else(|| DEFAULT_WORKFLOW_STATES.map(String::from).to_vec()),
        )?,
        auto_run: body.auto_run.unwrap_or(false),
        require_review: body.require_review.unwrap_or(false),
        at: cadre_types::time::now(),
    };
    Ok(ApiResponse::created(
        state
            .store()
            .projects()
            .create_project(tenant, &project)
            .await?
            .into(),
    ))
}

pub(crate) async fn project_tenant(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<cadre_types::Tenant> {
    caller
        .authorize_owner(state.store().projects().project_org(id).await?, "project")
        .await
}

/// One project.
#[utoipa::path(get, path = "/api/v1/projects/{projectId}", tag = "projects", params(("projectId" = Uuid, Path)), responses((status = 200, body = ProjectOut), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_project_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<ProjectOut>> {
    let tenant = project_tenant(&state, &caller, id).await?;
    Ok(ApiResponse::ok(
        state.store().projects().project(tenant, id).await?.into(),
    ))
}

/// Change a project.
#[utoipa::path(patch, path = "/api/v1/projects/{projectId}", tag = "projects", params(("projectId" = Uuid, Path)), request_body = ProjectPatchIn, responses((status = 200, body = ProjectOut)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn update_project_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ProjectPatchIn>,
) -> ApiResult<ApiResponse<ProjectOut>> {
    let tenant = project_tenant(&state, &caller, id).await?;
    let patch = ProjectPatch {
        name: body.name.as_deref().map(valid_name).transpose()?,
        description: valid_description(body.description)?,
        workflow_states: body.workflow_states.map(valid_states).transpose()?,
        auto_run: body.auto_run,
        require_review: body.require_review,
    };
    Ok(ApiResponse::ok(
        state
            .store()
            .projects()
            .update_project(tenant, id, &patch, cadre_types::time::now())
            .await?
            .into(),
    ))
}

/// Delete a project (soft; the `Inbox` cannot be deleted).
#[utoipa::path(delete, path = "/api/v1/projects/{projectId}", tag = "projects", params(("projectId" = Uuid, Path)), responses((status = 204), (status = 409)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn delete_project_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let tenant = project_tenant(&state, &caller, id).await?;
    state
        .store()
        .projects()
        .delete_project(tenant, id, cadre_types::time::now())
        .await?;
    Ok(no_content())
}
