//! Agents, their versions and the template catalogue; starting an
//! execution of an agent on a task.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::Response;
use cadre_engine::{spec, templates};
use cadre_store::{AgentRow, AgentSpec, AgentVersionRow, NewTask};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::executions::{ExecutionOut, Origin, start_execution};
use crate::auth::Caller;
use crate::envelope::{ApiList, no_content};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{ApiPath, ApiQuery, PageQuery};
use crate::{ApiJson, ApiResponse, AppState};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentOut {
    id: Uuid,
    org_id: Uuid,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    spec: AgentSpec,
    status: String,
    version: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    updated_at: time::OffsetDateTime,
}

impl AgentOut {
    fn new(a: AgentRow, activity: &Activity) -> Self {
        Self {
            spec: a.spec(),
            status: activity.status(&a),
            id: a.id,
            org_id: a.org_id,
            version: a.version,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// What an org's agents are doing, read from their unfinished executions
/// (SPEC §3's agent status): `disabled` when a person disabled it, else
/// `working` with an execution queued or running, `waiting_approval` or
/// `waiting_input` with one waiting for a person, `idle` otherwise.
#[derive(Default)]
struct Activity(HashMap<Uuid, Vec<String>>);

impl Activity {
    async fn of(state: &AppState, tenant: cadre_types::Tenant) -> ApiResult<Activity> {
        let mut by_agent: HashMap<Uuid, Vec<String>> = HashMap::new();
        for (agent, status, _) in state.store().agents().agent_activity(tenant).await? {
            by_agent.entry(agent).or_default().push(status);
        }
        Ok(Activity(by_agent))
    }

    fn status(&self, agent: &AgentRow) -> String {
        if agent.status == "disabled" {
            return agent.status.clone();
        }
        let live = self.0.get(&agent.id).map(Vec::as_slice).unwrap_or_default();
        let has = |s: &str| live.iter().any(|l| l == s);
        let status = if has("queued") || has("running") {
            "working"
        } else if has("waiting_approval") {
            "waiting_approval"
        } else if has("waiting_input") {
            "waiting_input"
        } else {
            "idle"
        };
        status.to_owned()
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentVersionOut {
    agent_id: Uuid,
    version: i64,
    #[schema(value_type = Object)]
    snapshot: AgentSpec,
    changed_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    created_at: time::OffsetDateTime,
}

impl From<AgentVersionRow> for AgentVersionOut {
    fn from(v: AgentVersionRow) -> Self {
        Self {
            agent_id: v.agent_id,
            version: v.version,
            snapshot: v.snapshot.0,
            changed_by: v.changed_by,
            created_at: v.created_at,
        }
    }
}

/// An agent definition; on create, `templateId` fills what is not given.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AgentIn {
    template_id: Option<String>,
    name: Option<String>,
    kind: Option<String>,
    role: Option<String>,
    description: Option<String>,
    instructions: Option<String>,
    model: Option<String>,
    tools: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    approval_policy: Option<Value>,
    skills: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    limits: Option<Value>,
    title: Option<String>,
    reports_to: Option<Uuid>,
    /// `disabled` stops the agent from running; `idle` enables it again.
    status: Option<String>,
}

/// Applies the given fields over `base` and checks the result.
fn merged(base: AgentSpec, body: &AgentIn) -> Result<AgentSpec, ApiError> {
    let text = |field: &str,
                v: &Option<String>,
                old: String,
                max: usize|
     -> Result<String, ApiError> {
        match v {
            Some(v) if v.trim().is_empty() || v.chars().count() > max => Err(
                ApiError::unprocessable(field, format!("{field} must be 1 to {max} characters")),
            ),
            Some(v) => Ok(v.trim().to_owned()),
            None => Ok(old),
        }
    };
    let spec = AgentSpec {
        name: text("name", &body.name, base.name, 200)?,
        kind: text("kind", &body.kind, base.kind, 40)?,
        role: body.role.clone().unwrap_or(base.role),
        description: body.description.clone().unwrap_or(base.description),
        instructions: text(
            "instructions",
            &body.instructions,
            base.instructions,
            100_000,
        )?,
        model: text("model", &body.model, base.model, 200)?,
        tools: body.tools.clone().unwrap_or(base.tools),
        approval_policy: body.approval_policy.clone().unwrap_or(base.approval_policy),
        skills: body.skills.clone().unwrap_or(base.skills),
        limits: body.limits.clone().unwrap_or(base.limits),
        title: body.title.clone().or(base.title),
        reports_to: body.reports_to.or(base.reports_to),
        template_id: base.template_id,
    };
    if !spec::KINDS.contains(&spec.kind.as_str()) {
        return Err(ApiError::unprocessable(
            "kind",
            format!("kind must be one of {}", spec::KINDS.join(", ")),
        ));
    }
    let invalid = |e: spec::Invalid| ApiError::unprocessable(e.field, e.message);
    spec::tool_list(&spec.tools).map_err(invalid)?;
    spec::approval_policy(&spec.approval_policy).map_err(invalid)?;
    spec::limits(&spec.limits).map_err(invalid)?;
    Ok(spec)
}

fn blank() -> AgentSpec {
    AgentSpec {
        name: String::new(),
        kind: "executor".into(),
        role: String::new(),
        description: String::new(),
        instructions: String::new(),
        model: String::new(),
        tools: vec!["add_output".into()],
        approval_policy: serde_json::json!({"default": "auto"}),
        skills: Vec::new(),
        limits: serde_json::json!({}),
        title: None,
        reports_to: None,
        template_id: None,
    }
}

/// A disabled agent does not run (409).
pub(crate) fn runnable(agent: &AgentRow) -> ApiResult<()> {
    if agent.status == "disabled" {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the agent is disabled; enable it (PATCH status idle) to run it",
        ));
    }
    Ok(())
}

pub(crate) fn by(caller: &Caller) -> Option<Uuid> {
    caller.principal().map(|p| p.actor().1)
}

/// The built-in agent templates.
#[utoipa::path(get, path = "/api/v1/agent-templates", tag = "agents", responses((status = 200, body = Vec<Object>)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn list_templates_handler(
    _caller: Caller,
) -> ApiResult<ApiResponse<Vec<templates::Template>>> {
    Ok(ApiResponse::ok(templates::catalogue().to_vec()))
}

/// Agents of an organization.
#[utoipa::path(get, path = "/api/v1/orgs/{orgId}/agents", tag = "agents", params(("orgId" = Uuid, Path)), responses((status = 200, body = Vec<AgentOut>)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn list_agents_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<ApiList<AgentOut>> {
    let page = page.page()?;
    let tenant = caller.authorize(org_id).await?;
    let (rows, total) = state.store().agents().agents(tenant, page).await?;
    let activity = Activity::of(&state, tenant).await?;
    Ok(ApiList::new(
        rows.into_iter()
            .map(|a| AgentOut::new(a, &activity))
            .collect(),
        page,
        total,
    ))
}

/// Create an agent from scratch or from a template (`templateId`).
#[utoipa::path(post, path = "/api/v1/orgs/{orgId}/agents", tag = "agents", params(("orgId" = Uuid, Path)), request_body = AgentIn, responses((status = 201, body = AgentOut), (status = 422)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn create_agent_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<AgentIn>,
) -> ApiResult<ApiResponse<AgentOut>> {
    let tenant = caller.authorize(org_id).await?;
    let base = match &body.template_id {
        Some(id) => templates::find(id)
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "templateId",
                    format!("no template {id:?}; see GET /api/v1/agent-templates"),
                )
            })?
            .spec(body.model.as_deref().unwrap_or_default()),
        None => blank(),
    };
    for (field, given) in [("name", &body.name), ("instructions", &body.instructions)] {
        if body.template_id.is_none() && given.is_none() {
            return Err(ApiError::unprocessable(
                field,
                format!("{field} is required (or give a templateId)"),
            ));
        }
    }
    if body.model.is_none() {
        return Err(ApiError::unprocessable(
            "model",
            "model is required: a model name from GET /orgs/{orgId}/models or a provider's model",
        ));
    }
    let spec = merged(base, &body)?;
    let row = state
        .store()
        .agents()
        .create_agent(
            tenant,
            cadre_types::new_id(),
            &spec,
            by(&caller),
            cadre_types::time::now(),
        )
        .await?;
    // A new agent has no executions yet.
    Ok(ApiResponse::created(AgentOut::new(
        row,
        &Activity::default(),
    )))
}

pub(crate) async fn agent_tenant(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<cadre_types::Tenant> {
    caller
        .authorize_owner(state.store().agents().agent_org(id).await?, "agent")
        .await
}

/// One agent.
#[utoipa::path(get, path = "/api/v1/agents/{agentId}", tag = "agents", params(("agentId" = Uuid, Path)), responses((status = 200, body = AgentOut), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_agent_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<AgentOut>> {
    let tenant = agent_tenant(&state, &caller, id).await?;
    let row = state.store().agents().agent(tenant, id).await?;
    let activity = Activity::of(&state, tenant).await?;
    Ok(ApiResponse::ok(AgentOut::new(row, &activity)))
}

/// Change an agent: a new version.
#[utoipa::path(patch, path = "/api/v1/agents/{agentId}", tag = "agents", params(("agentId" = Uuid, Path)), request_body = AgentIn, responses((status = 200, body = AgentOut), (status = 422)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn update_agent_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<AgentIn>,
) -> ApiResult<ApiResponse<AgentOut>> {
    let tenant = agent_tenant(&state, &caller, id).await?;
    if body.template_id.is_some() {
        return Err(ApiError::unprocessable(
            "templateId",
            "a template only applies when creating an agent",
        ));
    }
    let current = state.store().agents().agent(tenant, id).await?;
    let now = cadre_types::time::now();
    let spec = merged(current.spec(), &body)?;
    let mut row = if spec == current.spec() {
        current
    } else {
        state
            .store()
            .agents()
            .update_agent(tenant, id, &spec, by(&caller), now)
            .await?
    };
    if let Some(status) = &body.status {
        if !["idle", "disabled"].contains(&status.as_str()) {
            return Err(ApiError::unprocessable(
                "status",
                "status can be set to idle or disabled",
            ));
        }
        row = state
            .store()
            .agents()
            .set_agent_status(tenant, id, status, now)
            .await?;
    }
    let activity = Activity::of(&state, tenant).await?;
    Ok(ApiResponse::ok(AgentOut::new(row, &activity)))
}

/// Delete an agent (soft: its versions and executions stay).
#[utoipa::path(delete, path = "/api/v1/agents/{agentId}", tag = "agents", params(("agentId" = Uuid, Path)), responses((status = 204), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn delete_agent_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let tenant = agent_tenant(&state, &caller, id).await?;
    state
        .store()
        .agents()
        .delete_agent(tenant, id, cadre_types::time::now())
        .await?;
    Ok(no_content())
}

/// An agent's versions, newest first.
#[utoipa::path(get, path = "/api/v1/agents/{agentId}/versions", tag = "agents", params(("agentId" = Uuid, Path)), responses((status = 200, body = Vec<AgentVersionOut>)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn list_versions_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<Vec<AgentVersionOut>>> {
    let tenant = agent_tenant(&state, &caller, id).await?;
    let rows = state.store().agents().agent_versions(tenant, id).await?;
    Ok(ApiResponse::ok(rows.into_iter().map(Into::into).collect()))
}

/// One version of an agent.
#[utoipa::path(get, path = "/api/v1/agents/{agentId}/versions/{version}", tag = "agents", params(("agentId" = Uuid, Path), ("version" = i64, Path)), responses((status = 200, body = AgentVersionOut), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_version_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, version)): ApiPath<(Uuid, i64)>,
) -> ApiResult<ApiResponse<AgentVersionOut>> {
    let tenant = agent_tenant(&state, &caller, id).await?;
    Ok(ApiResponse::ok(
        state
            .store()
            .agents()
            .agent_version(tenant, id, version)
            .await?
            .into(),
    ))
}

/// A task given inline to `execute`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct InlineTask {
    title: String,
    description: Option<String>,
    /// Defaults to the org's `Inbox`.
    project_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ExecuteIn {
    task: Option<InlineTask>,
    task_id: Option<Uuid>,
}

/// Run the agent on a task (an existing one, or one given inline).
#[utoipa::path(post, path = "/api/v1/agents/{agentId}/execute", tag = "agents", params(("agentId" = Uuid, Path)), request_body = ExecuteIn, responses((status = 202, body = ExecutionOut), (status = 404), (status = 409)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn execute_agent_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ExecuteIn>,
) -> ApiResult<ApiResponse<ExecutionOut>> {
    let tenant = agent_tenant(&state, &caller, id).await?;
    let agent = state.store().agents().agent(tenant, id).await?;
    runnable(&agent)?;
    let task_id = match (body.task, body.task_id) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(ApiError::validation("task", "give either task or taskId"));
        }
        (None, Some(task_id)) => {
            state
                .store()
                .tasks()
                .task(tenant, task_id)
                .await
                .map_err(ApiError::at_field("task", "taskId"))?
                .id
        }
        (Some(t), None) => {
            let title = t.title.trim();
            if !(1..=500).contains(&title.chars().count()) {
                return Err(ApiError::validation(
                    "task.title",
                    "title must be 1 to 500 characters",
                ));
            }
            let project_id = match t.project_id {
                Some(p) => p,
                None => super::inbox_project(&state, tenant).await?,
            };
            let task = NewTask {
                id: cadre_types::new_id(),
                project_id,
                parent_id: None,
                title: title.to_owned(),
                description: t.description.unwrap_or_default(),
                status: "in_progress".into(),
                priority: 5,
                assignee: Some(("agent".into(), id)),
                author: ("human".into(), by(&caller)),
                at: cadre_types::time::now(),
                supervisor_id: None,
                due_at: None,
                position: None,
            };
            state
                .store()
                .tasks()
                .create_task(tenant, &task, &[], &super::tasks::actor(&caller))
                .await
                .map_err(ApiError::at_field("project", "task.projectId"))?
                .id
        }
    };
    let execution = start_execution(
        &state,
        tenant,
        &agent,
        agent.version,
        task_id,
        by(&caller),
        Origin::fresh(),
    )
    .await?;
    Ok(ApiResponse::accepted(execution))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AgentMetricsOut {
    executions: i64,
    completed: i64,
    failed: i64,
    cancelled: i64,
    /// Not finished yet (queued, running, waiting or paused).
    active: i64,
    /// Completed among finished executions; `null` before any finished.
    success_rate: Option<f64>,
    steps: i64,
    tokens_in: i64,
    tokens_out: i64,
    /// US dollars, a decimal string.
    cost_usd: String,
    /// Mean wall time of finished executions.
    avg_duration_ms: Option<f64>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct MetricsQuery {
    /// Only executions created since (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>)]
    since: Option<time::OffsetDateTime>,
}

/// What an agent's executions add up to: counts, success rate, steps,
/// tokens, cost and mean duration.
#[utoipa::path(get, path = "/api/v1/agents/{agentId}/metrics", tag = "agents", params(("agentId" = Uuid, Path), MetricsQuery), responses((status = 200, body = AgentMetricsOut), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn agent_metrics_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<MetricsQuery>,
) -> ApiResult<ApiResponse<AgentMetricsOut>> {
    let tenant = agent_tenant(&state, &caller, id).await?;
    let m = state
        .store()
        .executions()
        .agent_metrics(tenant, id, q.since)
        .await?;
    let finished = m.completed + m.failed + m.cancelled;
    Ok(ApiResponse::ok(AgentMetricsOut {
        active: m.executions - finished,
        success_rate: (finished > 0).then(|| m.completed as f64 / finished as f64),
        cost_usd: spec::usd(m.cost_nanos),
        executions: m.executions,
        completed: m.completed,
        failed: m.failed,
        cancelled: m.cancelled,
        steps: m.steps,
        tokens_in: m.tokens_in,
        tokens_out: m.tokens_out,
        avg_duration_ms: m.avg_duration_ms,
    }))
}
