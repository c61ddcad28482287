//! Task templates: the built-in catalogue and an org's own, and applying
//! one to create a whole task tree with dependencies and agent assignments.

use std::collections::HashMap;

use axum::extract::State;
use cadre_engine::work_templates::{self, WorkTemplate};
use cadre_store::{NewTask, Page, TaskTemplateRow};
use cadre_types::Tenant;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::agents::by;
use super::tasks::{TaskOut, actor};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::{ApiJson, ApiResponse, AppState};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TemplateOut {
    /// A slug for built-in templates, a UUID for an org's.
    id: String,
    /// `system` or `org`.
    source: &'static str,
    org_id: Option<Uuid>,
    name: String,
    category: String,
    description: String,
    /// `[{"key", "title", "description", "priority"?, "parent"?,
    /// "dependsOn", "agentTemplate"?}]`.
    #[schema(value_type = Vec<Object>)]
    tasks: Value,
}

impl TemplateOut {
    fn system(t: &WorkTemplate) -> Self {
        Self {
            id: t.id.clone(),
            source: "system",
            org_id: None,
            name: t.name.clone(),
            category: t.category.clone(),
            description: t.description.clone(),
            tasks: serde_json::to_value(&t.tasks).unwrap_or_default(),
        }
    }

    fn org(row: TaskTemplateRow) -> Self {
        let body = row.body.0;
        Self {
            id: row.id.to_string(),
            source: "org",
            org_id: Some(row.org_id),
            name: row.name,
            category: body
                .get("category")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            description: row.description,
            tasks: body.get("tasks").cloned().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TemplateQuery {
    /// Also list this org's own templates.
    org_id: Option<Uuid>,
}

/// Task templates: the built-in ones, and with `orgId` that org's own.
#[utoipa::path(get, path = "/api/v1/templates", tag = "templates", params(TemplateQuery), responses((status = 200, body = Vec<TemplateOut>)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn list_templates_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TemplateQuery>,
) -> ApiResult<ApiResponse<Vec<TemplateOut>>> {
    let mut out: Vec<TemplateOut> = work_templates::catalogue()
        .iter()
        .map(TemplateOut::system)
        .collect();
    match q.org_id {
        Some(org) => {
            let tenant = caller.authorize(org).await?;
            let rows = state.store().task_templates().templates(tenant).await?;
            out.extend(rows.into_iter().map(TemplateOut::org));
        }
        None => caller.limit_unscoped().await?,
    }
    Ok(ApiResponse::ok(out))
}

/// Save a task template for the org (checked like the built-in ones).
#[utoipa::path(post, path = "/api/v1/orgs/{orgId}/templates", tag = "templates", params(("orgId" = Uuid, Path)), request_body = Object, responses((status = 201, body = TemplateOut), (status = 422)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn create_template_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<WorkTemplate>,
) -> ApiResult<ApiResponse<TemplateOut>> {
    let tenant = caller.authorize(org_id).await?;
    body.check()
        .map_err(|e| ApiError::unprocessable(e.field, e.message))?;
    let mut stored = serde_json::to_value(&body).unwrap_or_default();
    if let Some(map) = stored.as_object_mut() {
        map.remove("id");
    }
    let row = state
        .store()
        .task_templates()
        .create_template(
            tenant,
            cadre_types::new_id(),
            body.name.trim(),
            &body.description,
            &stored,
            cadre_types::time::now(),
        )
        .await?;
    Ok(ApiResponse::created(TemplateOut::org(row)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ApplyIn {
    /// The project the tasks go into.
    project_id: Uuid,
    /// Which agent takes the tasks of an agent template:
    /// `{"omnidash-analytics": AGENT_ID}`. By default, the org's agent made
    /// from that template (if any); otherwise the task is unassigned.
    #[serde(default)]
    agents: HashMap<String, Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApplyOut {
    /// The tasks created, parents first.
    tasks: Vec<TaskOut>,
    /// How many dependency edges were created.
    dependencies: usize,
    /// Agent templates no agent of the org was found for (their tasks are
    /// unassigned).
    unassigned: Vec<String>,
}

/// Create a template's whole task tree (with dependencies and agent
/// assignments) in a project, in one transaction.
#[utoipa::path(post, path = "/api/v1/templates/{templateId}/apply", tag = "templates", params(("templateId" = String, Path)), request_body = ApplyIn, responses((status = 201, body = ApplyOut), (status = 404), (status = 422)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn apply_template_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(template_id): ApiPath<String>,
    ApiJson(body): ApiJson<ApplyIn>,
) -> ApiResult<ApiResponse<ApplyOut>> {
    let org = state
        .store()
        .projects()
        .project_org(body.project_id)
        .await?;
    let tenant = match caller.authorize_owner(org, "project").await {
        Ok(tenant) => tenant,
        Err(e) if e.code == crate::error::ErrorCode::NotFound => {
            return Err(ApiError::not_found("project").with_field("projectId"));
        }
        Err(e) => return Err(e),
    };
    let template = load(&state, tenant, &template_id).await?;
    let project = state
        .store()
        .projects()
        .project(tenant, body.project_id)
        .await?;
    let (agents, unassigned) = assignees(&state, tenant, &template, &body.agents).await?;
    let at = cadre_types::time::now();
    let ids: HashMap<&str, Uuid> = template
        .tasks
        .iter()
        .map(|t| (t.key.as_str(), cadre_types::new_id()))
        .collect();
    let status = project
        .workflow_states
        .0
        .first()
        .cloned()
        .unwrap_or_default();
    let tasks: Vec<NewTask> = template
        .parent_first()
        .into_iter()
        .map(|t| NewTask {
            id: ids[t.key.as_str()],
            project_id: project.id,
            parent_id: t.parent.as_deref().map(|p| ids[p]),
            title: t.title.trim().to_owned(),
            description: t.description.clone(),
            status: status.clone(),
            priority: t.priority.unwrap_or(5),
            assignee: t
                .agent_template
                .as_deref()
                .and_then(|a| agents.get(a))
                .map(|id| ("agent".to_owned(), *id)),
            author: ("human".into(), by(&caller)),
            supervisor_id: None,
            due_at: None,
            position: None,
            at,
        })
        .collect();
    let edges: Vec<(Uuid, Uuid)> = template
        .tasks
        .iter()
        .flat_map(|t| {
            t.depends_on
                .iter()
                .map(|d| (ids[t.key.as_str()], ids[d.as_str()]))
        })
        .collect();
    let rows = state
        .store()
        .task_templates()
        .create_tree(tenant, &tasks, &edges, &actor(&caller))
        .await?;
    if project.auto_run {
        state.store().jobs_added(cadre_store::DEFAULT_QUEUE).await;
    }
    Ok(ApiResponse::created(ApplyOut {
        tasks: rows.into_iter().map(Into::into).collect(),
        dependencies: edges.len(),
        unassigned,
    }))
}

/// A built-in template by slug, or one of the org's by id (404 otherwise,
/// also for another org's).
async fn load(state: &AppState, tenant: Tenant, id: &str) -> ApiResult<WorkTemplate> {
    if let Some(t) = work_templates::find(id) {
        return Ok(t.clone());
    }
    let Ok(uuid) = Uuid::parse_str(id) else {
        return Err(ApiError::not_found("template"));
    };
    let row = state
        .store()
        .task_templates()
        .template(tenant, uuid)
        .await?;
    let mut template: WorkTemplate =
        serde_json::from_value(row.body.0).map_err(|_| ApiError::not_found("template"))?;
    template.id = row.id.to_string();
    Ok(template)
}

/// The agent for each agent template the template names: the one the
/// request gives, else the org's live agent made from that template.
async fn assignees(
    state: &AppState,
    tenant: Tenant,
    template: &WorkTemplate,
    given: &HashMap<String, Uuid>,
) -> ApiResult<(HashMap<String, Uuid>, Vec<String>)> {
    let mut agents = HashMap::new();
    for (slot, id) in given {
        state
            .store()
            .agents()
            .agent(tenant, *id)
            .await
            .map_err(ApiError::at_field("agent", format!("agents.{slot}")))?;
        agents.insert(slot.clone(), *id);
    }
    let wanted: Vec<&str> = template
        .agent_templates()
        .into_iter()
        .filter(|a| !agents.contains_key(*a))
        .collect();
    if !wanted.is_empty() {
        let mut page = 1;
        loop {
            let (rows, total) = state
                .store()
                .agents()
                .agents(
                    tenant,
                    Page {
                        page,
                        page_size: 100,
                    },
                )
                .await?;
            for agent in &rows {
                if let Some(t) = agent.template_id.as_deref()
                    && wanted.contains(&t)
                    && agent.status != "disabled"
                {
                    agents.entry(t.to_owned()).or_insert(agent.id);
                }
            }
            if u64::from(page) * 100 >= total || rows.is_empty() {
                break;
            }
            page += 1;
        }
    }
    let unassigned = template
        .agent_templates()
        .into_iter()
        .filter(|a| !agents.contains_key(*a))
        .map(str::to_owned)
        .collect();
    Ok((agents, unassigned))
}
