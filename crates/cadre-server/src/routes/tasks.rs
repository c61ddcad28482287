//! Tasks as far as the engine needs them: read one (with its outputs) and
//! run an agent on it. The work graph issue brings the rest.

use axum::extract::State;
use cadre_store::{OutputRow, TaskRow};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::agents::by;
use super::executions::{ExecutionOut, Origin, start_execution};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::ApiPath;
use crate::{ApiJson, ApiResponse, AppState};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OutputOut {
    id: Uuid,
    #[serde(rename = "type")]
    kind: String,
    label: String,
    #[schema(value_type = Object)]
    content: Value,
    execution_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    created_at: time::OffsetDateTime,
}

impl From<OutputRow> for OutputOut {
    fn from(o: OutputRow) -> Self {
        Self {
            id: o.id,
            kind: o.kind,
            label: o.label,
            content: o.content.0,
            execution_id: o.execution_id,
            created_at: o.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskOut {
    id: Uuid,
    org_id: Uuid,
    project_id: Uuid,
    parent_id: Option<Uuid>,
    title: String,
    description: String,
    status: String,
    priority: i64,
    /// `{"type": "agent" | "user", "id"}`.
    #[schema(value_type = Option<Object>)]
    assignee: Option<Value>,
    #[schema(value_type = Object)]
    author: Value,
    version: i64,
    outputs: Vec<OutputOut>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    updated_at: time::OffsetDateTime,
}

impl TaskOut {
    fn new(t: TaskRow, outputs: Vec<OutputRow>) -> Self {
        Self {
            assignee: t
                .assignee_type
                .zip(t.assignee_id)
                .map(|(kind, id)| serde_json::json!({ "type": kind, "id": id })),
            author: serde_json::json!({ "type": t.author_type, "id": t.author_id }),
            id: t.id,
            org_id: t.org_id,
            project_id: t.project_id,
            parent_id: t.parent_id,
            title: t.title,
            description: t.description,
            status: t.status,
            priority: t.priority,
            version: t.version,
            outputs: outputs.into_iter().map(Into::into).collect(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

async fn task_tenant(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<cadre_types::Tenant> {
    caller
        .authorize_owner(state.store().tasks().task_org(id).await?, "task")
        .await
}

/// One task, with its outputs.
#[utoipa::path(get, path = "/api/v1/tasks/{taskId}", tag = "tasks", params(("taskId" = Uuid, Path)), responses((status = 200, body = TaskOut), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_task_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<TaskOut>> {
    let tenant = task_tenant(&state, &caller, id).await?;
    let task = state.store().tasks().task(tenant, id).await?;
    let outputs = state.store().tasks().task_outputs(tenant, id).await?;
    Ok(ApiResponse::ok(TaskOut::new(task, outputs)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TaskExecuteIn {
    /// The agent to run; defaults to the task's agent assignee.
    agent_id: Option<Uuid>,
}

/// Run an agent on this task.
#[utoipa::path(post, path = "/api/v1/tasks/{taskId}/execute", tag = "tasks", params(("taskId" = Uuid, Path)), request_body = TaskExecuteIn, responses((status = 202, body = ExecutionOut), (status = 404), (status = 409)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn execute_task_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(task_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<TaskExecuteIn>,
) -> ApiResult<ApiResponse<ExecutionOut>> {
    let tenant = task_tenant(&state, &caller, task_id).await?;
    let task = state.store().tasks().task(tenant, task_id).await?;
    let assignee = (task.assignee_type.as_deref() == Some("agent"))
        .then_some(task.assignee_id)
        .flatten();
    let Some(agent_id) = body.agent_id.or(assignee) else {
        return Err(ApiError::unprocessable(
            "agentId",
            "the task has no agent assignee; give agentId",
        ));
    };
    let agent = match state.store().agents().agent(tenant, agent_id).await {
        Ok(agent) => agent,
        Err(cadre_store::StoreError::NotFound) => {
            return Err(ApiError::not_found("agent").with_field("agentId"));
        }
        Err(e) => return Err(e.into()),
    };
    if agent.status == "disabled" {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the agent is disabled; enable it (PATCH status idle) to run it",
        ));
    }
    let execution = start_execution(
        &state,
        tenant,
        &agent,
        agent.version,
        task.id,
        by(&caller),
        Origin::fresh(),
    )
    .await?;
    Ok(ApiResponse::accepted(execution))
}
