//! Tasks: CRUD with filters, the tree, versions and rollback, edit locks,
//! and running an agent on a task. Inputs and outputs are in
//! [`super::task_io`], dependencies in [`super::task_graph`].
//!
//! Writes honour the edit lock (423 `LOCKED` naming the holder) and an
//! expected version from `If-Match` or the body's `version` (412
//! `PRECONDITION_FAILED` when stale).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use cadre_store::{Actor, OutputRow, TaskFilter, TaskPatch, TaskRow, TaskVersionRow, TaskWrite};
use cadre_types::Tenant;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::agents::{by, runnable};
use super::executions::{ExecutionOut, Origin, start_execution};
use super::task_io::{InputIn, InputOut, OutputOut, valid_input};
use crate::auth::Caller;
use crate::envelope::{ApiList, no_content};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery, PageQuery};
use crate::{ApiJson, ApiResponse, AppState};

/// How long a lock lasts unless the request says otherwise.
const LOCK_TTL_SECS: u64 = 300;

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
    /// `{"type": "human" | "agent", "id"}`.
    #[schema(value_type = Object)]
    author: Value,
    supervisor_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    due_at: Option<time::OffsetDateTime>,
    /// `{"x", "y"}` on the canvas.
    #[schema(value_type = Option<Object>)]
    position: Option<Value>,
    /// The live edit lock: `{"holder": {"type", "id"}, "expiresAt"}`.
    #[schema(value_type = Option<Object>)]
    lock: Option<Value>,
    /// The error of the last failed execution (cleared by a success).
    last_error: Option<String>,
    /// The execution auto-run queued for this task, if any.
    auto_run_execution_id: Option<Uuid>,
    version: i64,
    /// Only on a single task.
    #[serde(skip_serializing_if = "Option::is_none")]
    inputs: Option<Vec<InputOut>>,
    /// Only on a single task.
    #[serde(skip_serializing_if = "Option::is_none")]
    outputs: Option<Vec<OutputOut>>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    updated_at: time::OffsetDateTime,
}

impl From<TaskRow> for TaskOut {
    fn from(t: TaskRow) -> Self {
        let lock = t
            .live_lock(cadre_types::time::now())
            .map(|(kind, id, until)| {
                json!({ "holder": { "type": kind, "id": id }, "expiresAt": cadre_types::time::rfc3339(until) })
            });
        Self {
            assignee: t
                .assignee_type
                .zip(t.assignee_id)
                .map(|(kind, id)| json!({ "type": kind, "id": id })),
            author: json!({ "type": t.author_type, "id": t.author_id }),
            lock,
            id: t.id,
            org_id: t.org_id,
            project_id: t.project_id,
            parent_id: t.parent_id,
            title: t.title,
            description: t.description,
            status: t.status,
            priority: t.priority,
            supervisor_id: t.supervisor_id,
            due_at: t.due_at,
            position: t.position.map(|p| p.0),
            last_error: t.last_error,
            auto_run_execution_id: t.auto_run_execution_id,
            version: t.version,
            inputs: None,
            outputs: None,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

impl TaskOut {
    pub(crate) fn with_io(
        t: TaskRow,
        inputs: Vec<cadre_store::InputRow>,
        outputs: Vec<OutputRow>,
    ) -> Self {
        Self {
            inputs: Some(inputs.into_iter().map(Into::into).collect()),
            outputs: Some(outputs.into_iter().map(Into::into).collect()),
            ..t.into()
        }
    }
}

/// The live task's org, authorized for the caller (404 for other orgs).
pub(crate) async fn task_tenant(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<Tenant> {
    caller
        .authorize_owner(state.store().tasks().task_org(id).await?, "task")
        .await
}

/// Who is acting, as the store records it.
pub(crate) fn actor(caller: &Caller) -> Actor {
    caller
        .principal()
        .map_or_else(Actor::system, crate::auth::Principal::as_actor)
}

/// A write by the caller, expecting the version in `If-Match` or `body`.
pub(crate) fn write(
    caller: &Caller,
    headers: &HeaderMap,
    body_version: Option<i64>,
) -> ApiResult<TaskWrite> {
    let header = match headers.get(axum::http::header::IF_MATCH) {
        Some(value) => {
            let text = value.to_str().unwrap_or_default().trim();
            let text = text.trim_start_matches("W/").trim_matches('"');
            if text == "*" {
                None
            } else {
                Some(text.parse::<i64>().map_err(|_| {
                    ApiError::validation("If-Match", "If-Match must be the task's version number")
                })?)
            }
        }
        None => None,
    };
    Ok(TaskWrite {
        actor: actor(caller),
        expected_version: header.or(body_version),
        at: cadre_types::time::now(),
    })
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AssigneeIn {
    /// `agent` or `user`.
    #[serde(rename = "type")]
    kind: String,
    id: Uuid,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TaskIn {
    title: String,
    description: Option<String>,
    parent_id: Option<Uuid>,
    /// One of the project's workflow states (default: the first).
    status: Option<String>,
    /// 1 (lowest) to 10; default 5.
    priority: Option<i64>,
    assignee: Option<AssigneeIn>,
    supervisor_id: Option<Uuid>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    due_at: Option<time::OffsetDateTime>,
    #[schema(value_type = Option<Object>)]
    position: Option<Value>,
    #[serde(default)]
    inputs: Vec<InputIn>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TaskPatchIn {
    title: Option<String>,
    description: Option<String>,
    status: Option<String>,
    priority: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    parent_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<AssigneeIn>)]
    assignee: Option<Option<AssigneeIn>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    supervisor_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable_time")]
    #[schema(value_type = Option<String>)]
    due_at: Option<Option<time::OffsetDateTime>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    position: Option<Option<Value>>,
    /// The version this change was made against (or send `If-Match`).
    version: Option<i64>,
}

fn nullable_time<'de, D>(d: D) -> Result<Option<Option<time::OffsetDateTime>>, D::Error>
where
    D: Deserializer<'de>,
{
    time::serde::rfc3339::option::deserialize(d).map(Some)
}

fn valid_title(title: &str) -> ApiResult<String> {
    let title = title.trim();
    if (1..=500).contains(&title.chars().count()) {
        Ok(title.to_owned())
    } else {
        Err(ApiError::validation(
            "title",
            "title must be 1 to 500 characters",
        ))
    }
}

fn valid_description(text: String) -> ApiResult<String> {
    if text.chars().count() > 50_000 {
        return Err(ApiError::validation(
            "description",
            "description is at most 50000 characters",
        ));
    }
    Ok(text)
}

fn valid_priority(p: i64) -> ApiResult<i64> {
    if (1..=10).contains(&p) {
        Ok(p)
    } else {
        Err(ApiError::validation("priority", "priority must be 1 to 10"))
    }
}

fn valid_status(status: String, states: &[String]) -> ApiResult<String> {
    if status == "cancelled" || states.contains(&status) {
        Ok(status)
    } else {
        Err(ApiError::unprocessable(
            "status",
            format!(
                "status must be one of the project's states ({}) or cancelled",
                states.join(", ")
            ),
        ))
    }
}

fn valid_position(position: Value) -> ApiResult<Value> {
    let ok = position.as_object().is_some_and(|p| {
        p.len() == 2
            && p.get("x").is_some_and(Value::is_number)
            && p.get("y").is_some_and(Value::is_number)
    });
    if ok {
        Ok(position)
    } else {
        Err(ApiError::validation(
            "position",
            "position must be {\"x\": number, \"y\": number}",
        ))
    }
}

/// Checks that an assignee exists in the org (404 naming the field).
async fn valid_assignee(
    state: &AppState,
    tenant: Tenant,
    a: AssigneeIn,
) -> ApiResult<(String, Uuid)> {
    match a.kind.as_str() {
        "agent" => {
            state
                .store()
                .agents()
                .agent(tenant, a.id)
                .await
                .map_err(ApiError::at_field("agent", "assignee.id"))?;
            Ok(("agent".into(), a.id))
        }
        "user" => {
            valid_member(state, tenant, a.id, "assignee.id").await?;
            Ok(("user".into(), a.id))
        }
        _ => Err(ApiError::validation(
            "assignee.type",
            "assignee.type must be agent or user",
        )),
    }
}

async fn valid_member(state: &AppState, tenant: Tenant, user: Uuid, field: &str) -> ApiResult<()> {
    match state
        .store()
        .orgs()
        .membership(user, tenant.org_id())
        .await?
    {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("member").with_field(field)),
    }
}

async fn project_tenant(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<Tenant> {
    caller
        .authorize_owner(state.store().projects().project_org(id).await?, "project")
        .await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TaskQuery {
    status: Option<String>,
    /// `agent:ID`, `user:ID` or `none`.
    assignee: Option<String>,
    /// A task id, or `root` for top-level tasks.
    parent_id: Option<String>,
    /// Text in the title or description (case-insensitive).
    q: Option<String>,
    page: Option<u32>,
    page_size: Option<u32>,
}

/// Tasks of a project, highest priority first.
#[utoipa::path(get, path = "/api/v1/projects/{projectId}/tasks", tag = "tasks", params(("projectId" = Uuid, Path), TaskQuery), responses((status = 200, body = Vec<TaskOut>), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn list_tasks_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(project_id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<TaskQuery>,
) -> ApiResult<ApiList<TaskOut>> {
    let page = PageQuery {
        page: q.page.unwrap_or(1),
        page_size: q.page_size.unwrap_or(20),
    }
    .page()?;
    let assignee = match q.assignee.as_deref() {
        None => None,
        Some("none") => Some(("none".to_owned(), None)),
        Some(text) => {
            let parsed = text.split_once(':').and_then(|(kind, id)| {
                matches!(kind, "agent" | "user")
                    .then(|| Uuid::parse_str(id).ok())
                    .flatten()
                    .map(|id| (kind.to_owned(), Some(id)))
            });
            Some(parsed.ok_or_else(|| {
                ApiError::validation("assignee", "assignee must be agent:ID, user:ID or none")
            })?)
        }
    };
    let parent_id = match q.parent_id.as_deref() {
        None => None,
        Some("root") => Some(None),
        Some(text) => Some(Some(Uuid::parse_str(text).map_err(|_| {
            ApiError::validation("parentId", "parentId must be a task id or root")
        })?)),
    };
    if q.q.as_ref().is_some_and(|t| t.chars().count() > 200) {
        return Err(ApiError::validation("q", "q is at most 200 characters"));
    }
    let tenant = project_tenant(&state, &caller, project_id).await?;
    let filter = TaskFilter {
        status: q.status,
        assignee,
        parent_id,
        q: q.q.filter(|t| !t.trim().is_empty()),
    };
    let (rows, total) = state
        .store()
        .tasks()
        .tasks(tenant, project_id, &filter, page)
        .await?;
    Ok(ApiList::new(
        rows.into_iter().map(Into::into).collect(),
        page,
        total,
    ))
}

/// Create a task in a project, with its inputs.
#[utoipa::path(post, path = "/api/v1/projects/{projectId}/tasks", tag = "tasks", params(("projectId" = Uuid, Path)), request_body = TaskIn, responses((status = 201, body = TaskOut), (status = 404), (status = 422)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn create_task_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(project_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<TaskIn>,
) -> ApiResult<ApiResponse<TaskOut>> {
    let title = valid_title(&body.title)?;
    let description = valid_description(body.description.unwrap_or_default())?;
    let priority = valid_priority(body.priority.unwrap_or(5))?;
    let position = body.position.map(valid_position).transpose()?;
    if body.inputs.len() > 50 {
        return Err(ApiError::validation(
            "inputs",
            "a task has at most 50 inputs",
        ));
    }
    let tenant = project_tenant(&state, &caller, project_id).await?;
    let project = state.store().projects().project(tenant, project_id).await?;
    let states = project.workflow_states.0;
    let status = match body.status {
        Some(s) => valid_status(s, &states)?,
        None => states.first().cloned().unwrap_or_else(|| "draft".into()),
    };
    let assignee = match body.assignee {
        Some(a) => Some(valid_assignee(&state, tenant, a).await?),
        None => None,
    };
    if let Some(supervisor) = body.supervisor_id {
        valid_member(&state, tenant, supervisor, "supervisorId").await?;
    }
    let at = cadre_types::time::now();
    let mut inputs = Vec::with_capacity(body.inputs.len());
    for (i, input) in body.inputs.into_iter().enumerate() {
        inputs.push(valid_input(&state, tenant, input, &format!("inputs[{i}]"), at).await?);
    }
    let actor = actor(&caller);
    let task = cadre_store::NewTask {
        id: cadre_types::new_id(),
        project_id,
        parent_id: body.parent_id,
        title,
        description,
        status,
        priority,
        assignee,
        author: ("human".into(), by(&caller)),
        supervisor_id: body.supervisor_id,
        due_at: body.due_at,
        position,
        at,
    };
    let row = state
        .store()
        .tasks()
        .create_task(tenant, &task, &inputs, &actor)
        .await
        .map_err(ApiError::at_field("task", "parentId"))?;
    if row.assignee_type.as_deref() == Some("agent") && project.auto_run {
        state.store().jobs_added(cadre_store::DEFAULT_QUEUE).await;
    }
    let inputs = state.store().tasks().task_inputs(tenant, row.id).await?;
    Ok(ApiResponse::created(TaskOut::with_io(
        row,
        inputs,
        Vec::new(),
    )))
}

/// One task, with its inputs and outputs.
#[utoipa::path(get, path = "/api/v1/tasks/{taskId}", tag = "tasks", params(("taskId" = Uuid, Path)), responses((status = 200, body = TaskOut), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_task_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<TaskOut>> {
    let tenant = task_tenant(&state, &caller, id).await?;
    let tasks = state.store().tasks();
    let task = tasks.task(tenant, id).await?;
    let inputs = tasks.task_inputs(tenant, id).await?;
    let outputs = tasks.task_outputs(tenant, id).await?;
    Ok(ApiResponse::ok(TaskOut::with_io(task, inputs, outputs)))
}

/// Change a task. Send `If-Match: VERSION` (or `version`) to refuse a stale
/// write with 412.
#[utoipa::path(patch, path = "/api/v1/tasks/{taskId}", tag = "tasks", params(("taskId" = Uuid, Path)), request_body = TaskPatchIn, responses((status = 200, body = TaskOut), (status = 404), (status = 409), (status = 412), (status = 423)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn update_task_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TaskPatchIn>,
) -> ApiResult<ApiResponse<TaskOut>> {
    let tenant = task_tenant(&state, &caller, id).await?;
    let write = write(&caller, &headers, body.version)?;
    let status = match body.status {
        Some(s) => {
            let current = state.store().tasks().task(tenant, id).await?;
            let project = state
                .store()
                .projects()
                .project(tenant, current.project_id)
                .await?;
            Some(valid_status(s, &project.workflow_states.0)?)
        }
        None => None,
    };
    let assignee = match body.assignee {
        Some(Some(a)) => Some(Some(valid_assignee(&state, tenant, a).await?)),
        Some(None) => Some(None),
        None => None,
    };
    if let Some(Some(supervisor)) = body.supervisor_id {
        valid_member(&state, tenant, supervisor, "supervisorId").await?;
    }
    let patch = TaskPatch {
        title: body.title.as_deref().map(valid_title).transpose()?,
        description: body.description.map(valid_description).transpose()?,
        status,
        priority: body.priority.map(valid_priority).transpose()?,
        parent_id: body.parent_id,
        assignee,
        supervisor_id: body.supervisor_id,
        due_at: body.due_at,
        position: body
            .position
            .map(|p| p.map(valid_position).transpose())
            .transpose()?,
    };
    let row = state
        .store()
        .tasks()
        .update_task(tenant, id, &patch, &write)
        .await
        .map_err(|e| match e {
            cadre_store::StoreError::NotFound if patch.parent_id.is_some() => {
                ApiError::not_found("task").with_field("parentId")
            }
            other => other.into(),
        })?;
    state.store().jobs_added(cadre_store::DEFAULT_QUEUE).await;
    Ok(ApiResponse::ok(row.into()))
}

/// Delete a task (soft: its executions, traces, outputs and versions stay
/// readable; its dependency edges go).
#[utoipa::path(delete, path = "/api/v1/tasks/{taskId}", tag = "tasks", params(("taskId" = Uuid, Path)), responses((status = 204), (status = 404), (status = 412), (status = 423)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn delete_task_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let tenant = task_tenant(&state, &caller, id).await?;
    let write = write(&caller, &headers, None)?;
    state
        .store()
        .tasks()
        .delete_task(tenant, id, &write)
        .await?;
    state.store().jobs_added(cadre_store::DEFAULT_QUEUE).await;
    Ok(no_content())
}

/// The live sub-tasks of a task, oldest first.
#[utoipa::path(get, path = "/api/v1/tasks/{taskId}/children", tag = "tasks", params(("taskId" = Uuid, Path)), responses((status = 200, body = Vec<TaskOut>), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn children_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<Vec<TaskOut>>> {
    let tenant = task_tenant(&state, &caller, id).await?;
    let rows = state.store().tasks().children(tenant, id).await?;
    Ok(ApiResponse::ok(rows.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VersionOut {
    version: i64,
    /// `created`, `updated`, `input_added`, `output_added`, `rollback`,
    /// `execution_completed`, `execution_failed`, …
    change_type: String,
    summary: String,
    /// `{"type": "user" | "api_key" | "agent" | "system", "id"}`.
    #[schema(value_type = Object)]
    actor: Value,
    /// The task's fields and inputs as they were at this version.
    #[schema(value_type = Object)]
    snapshot: Value,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    created_at: time::OffsetDateTime,
}

impl From<TaskVersionRow> for VersionOut {
    fn from(v: TaskVersionRow) -> Self {
        Self {
            version: v.version,
            change_type: v.change_type,
            summary: v.summary,
            actor: json!({ "type": v.actor_type, "id": v.actor_id }),
            snapshot: v.snapshot.0,
            created_at: v.created_at,
        }
    }
}

/// Every version of a task, newest first.
#[utoipa::path(get, path = "/api/v1/tasks/{taskId}/versions", tag = "tasks", params(("taskId" = Uuid, Path)), responses((status = 200, body = Vec<VersionOut>), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn versions_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<Vec<VersionOut>>> {
    let tenant = task_tenant(&state, &caller, id).await?;
    let rows = state.store().tasks().task_versions(tenant, id).await?;
    Ok(ApiResponse::ok(rows.into_iter().map(Into::into).collect()))
}

/// One version of a task.
#[utoipa::path(get, path = "/api/v1/tasks/{taskId}/versions/{version}", tag = "tasks", params(("taskId" = Uuid, Path), ("version" = i64, Path)), responses((status = 200, body = VersionOut), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn version_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, version)): ApiPath<(Uuid, i64)>,
) -> ApiResult<ApiResponse<VersionOut>> {
    let tenant = task_tenant(&state, &caller, id).await?;
    let row = state
        .store()
        .tasks()
        .task_version(tenant, id, version)
        .await?;
    Ok(ApiResponse::ok(row.into()))
}

/// Make the task what it was at a version, as a new version (outputs stay).
#[utoipa::path(post, path = "/api/v1/tasks/{taskId}/rollback/{version}", tag = "tasks", params(("taskId" = Uuid, Path), ("version" = i64, Path)), responses((status = 200, body = TaskOut), (status = 404), (status = 412), (status = 423)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn rollback_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, version)): ApiPath<(Uuid, i64)>,
    headers: HeaderMap,
) -> ApiResult<ApiResponse<TaskOut>> {
    let tenant = task_tenant(&state, &caller, id).await?;
    let write = write(&caller, &headers, None)?;
    let tasks = state.store().tasks();
    let row = tasks.rollback_task(tenant, id, version, &write).await?;
    state.store().jobs_added(cadre_store::DEFAULT_QUEUE).await;
    let inputs = tasks.task_inputs(tenant, id).await?;
    let outputs = tasks.task_outputs(tenant, id).await?;
    Ok(ApiResponse::ok(TaskOut::with_io(row, inputs, outputs)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LockIn {
    /// How long the lock lasts (1–3600 s, default 300); take it again to
    /// renew.
    ttl_seconds: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LockOut {
    task_id: Uuid,
    /// `{"type": "user" | "api_key", "id"}`.
    #[schema(value_type = Object)]
    holder: Value,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    expires_at: time::OffsetDateTime,
}

/// Take (or renew) the task's edit lock; 423 when someone else holds it.
#[utoipa::path(post, path = "/api/v1/tasks/{taskId}/lock", tag = "tasks", params(("taskId" = Uuid, Path)), request_body = LockIn, responses((status = 200, body = LockOut), (status = 404), (status = 423)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn lock_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: axum::body::Bytes,
) -> ApiResult<ApiResponse<LockOut>> {
    let tenant = task_tenant(&state, &caller, id).await?;
    let ttl = lock_ttl(crate::extract::optional_body::<LockIn>(&body)?.ttl_seconds)?;
    Ok(ApiResponse::ok(
        take_lock(&state, tenant, id, &actor(&caller), ttl).await?,
    ))
}

/// How long an edit lock lasts: `ttlSeconds` (1–3600), 300 when not given.
pub(crate) fn lock_ttl(ttl_seconds: Option<u64>) -> ApiResult<std::time::Duration> {
    let ttl = ttl_seconds.unwrap_or(LOCK_TTL_SECS);
    if !(1..=3600).contains(&ttl) {
        return Err(ApiError::validation(
            "ttlSeconds",
            "ttlSeconds must be 1 to 3600",
        ));
    }
    Ok(std::time::Duration::from_secs(ttl))
}

/// Takes (or renews) `holder`'s edit lock on a task of `tenant` for `ttl`;
/// 423 when someone else holds it. Shared by the REST route and the
/// WebSocket's `lock_acquire`.
pub(crate) async fn take_lock(
    state: &AppState,
    tenant: Tenant,
    task: Uuid,
    holder: &Actor,
    ttl: std::time::Duration,
) -> ApiResult<LockOut> {
    let now = cadre_types::time::now();
    let until = cadre_types::time::normalize(now + ttl);
    state
        .store()
        .tasks()
        .lock_task(tenant, task, holder, until, now)
        .await?;
    Ok(LockOut {
        task_id: task,
        holder: json!({ "type": holder.kind, "id": holder.id }),
        expires_at: until,
    })
}

/// Release the task's edit lock (yours, or one that has expired).
#[utoipa::path(delete, path = "/api/v1/tasks/{taskId}/lock", tag = "tasks", params(("taskId" = Uuid, Path)), responses((status = 204), (status = 404), (status = 423)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn unlock_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let tenant = task_tenant(&state, &caller, id).await?;
    state
        .store()
        .tasks()
        .unlock_task(tenant, id, &actor(&caller), cadre_types::time::now())
        .await?;
    Ok(no_content())
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
    let agent = state
        .store()
        .agents()
        .agent(tenant, agent_id)
        .await
        .map_err(ApiError::at_field("agent", "agentId"))?;
    runnable(&agent)?;
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
