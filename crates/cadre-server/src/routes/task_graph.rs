//! Dependencies between tasks: add (refused with 409 `CYCLE` and the path
//! when the edge would close a cycle), remove, and the graph around a task.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::response::Response;
use cadre_store::DependencyRow;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::tasks::{actor, task_tenant};
use crate::auth::Caller;
use crate::envelope::no_content;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::{ApiJson, ApiResponse, AppState};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DependencyOut {
    id: Uuid,
    /// The task that consumes the upstream task's outputs.
    task_id: Uuid,
    /// The upstream task.
    depends_on: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    created_at: time::OffsetDateTime,
}

impl From<DependencyRow> for DependencyOut {
    fn from(d: DependencyRow) -> Self {
        Self {
            id: d.id,
            task_id: d.task_id,
            depends_on: d.depends_on,
            created_at: d.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct DependencyIn {
    /// The upstream task (same org; any project).
    depends_on: Uuid,
}

/// Make this task depend on another (consume its outputs).
#[utoipa::path(post, path = "/api/v1/tasks/{taskId}/dependencies", tag = "tasks", params(("taskId" = Uuid, Path)), request_body = DependencyIn, responses((status = 201, body = DependencyOut), (status = 404), (status = 409)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn add_dependency_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(task_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<DependencyIn>,
) -> ApiResult<ApiResponse<DependencyOut>> {
    let tenant = task_tenant(&state, &caller, task_id).await?;
    let result = state
        .store()
        .graph()
        .add_dependency(
            tenant,
            task_id,
            body.depends_on,
            &actor(&caller),
            cadre_types::time::now(),
        )
        .await;
    match result {
        Ok(edge) => Ok(ApiResponse::created(edge.into())),
        Err(cadre_store::StoreError::NotFound) => {
            Err(ApiError::not_found("task").with_field("dependsOn"))
        }
        Err(cadre_store::StoreError::Conflict { .. }) => Err(ApiError::new(
            crate::error::ErrorCode::Conflict,
            "this task already depends on that one",
        )
        .with_field("dependsOn")),
        Err(cadre_store::StoreError::Cycle { path }) => {
            // Name the path by title: "A → B → A".
            let mut titles = Vec::with_capacity(path.len());
            for id in &path {
                let title = match state.store().tasks().task(tenant, *id).await {
                    Ok(t) => format!("\"{}\"", t.title),
                    Err(_) => id.to_string(),
                };
                titles.push(title);
            }
            Err(ApiError::new(
                crate::error::ErrorCode::Cycle,
                format!(
                    "this dependency would close a cycle: {} (each depends on the next)",
                    titles.join(" → ")
                ),
            )
            .with_field("dependsOn")
            .with_details(json!({ "path": path })))
        }
        Err(e) => Err(e.into()),
    }
}

/// Remove one of this task's dependencies.
#[utoipa::path(delete, path = "/api/v1/tasks/{taskId}/dependencies/{depId}", tag = "tasks", params(("taskId" = Uuid, Path), ("depId" = Uuid, Path)), responses((status = 204), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn delete_dependency_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((task_id, dep_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    let tenant = task_tenant(&state, &caller, task_id).await?;
    state
        .store()
        .graph()
        .delete_dependency(
            tenant,
            task_id,
            dep_id,
            &actor(&caller),
            cadre_types::time::now(),
        )
        .await?;
    state.store().jobs_added(cadre_store::DEFAULT_QUEUE).await;
    Ok(no_content())
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GraphOut {
    task_id: Uuid,
    /// Every dependency of this task is in its project's last state.
    ready: bool,
    /// Direct upstream tasks not done yet.
    blocked_by: Vec<Uuid>,
    /// The task and everything up- and downstream of it:
    /// `{"id", "title", "status", "projectId", "assignee", "done"}`.
    #[schema(value_type = Vec<Object>)]
    nodes: Vec<Value>,
    edges: Vec<DependencyOut>,
}

/// The dependency graph around a task: everything up- and downstream of
/// it, with statuses.
#[utoipa::path(get, path = "/api/v1/tasks/{taskId}/dependencies", tag = "tasks", params(("taskId" = Uuid, Path)), responses((status = 200, body = GraphOut), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn graph_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(task_id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<GraphOut>> {
    let tenant = task_tenant(&state, &caller, task_id).await?;
    let graph = state.store().graph().graph(tenant, task_id).await?;
    let (nodes, done) = graph_nodes(&state, tenant, graph.nodes).await?;
    // Readiness from the graph itself: the task's own edges to undone tasks.
    let mut blocked_by: Vec<Uuid> = graph
        .edges
        .iter()
        .filter(|e| e.task_id == task_id && !done.get(&e.depends_on).copied().unwrap_or(false))
        .map(|e| e.depends_on)
        .collect();
    blocked_by.sort_unstable();
    Ok(ApiResponse::ok(GraphOut {
        task_id,
        ready: blocked_by.is_empty(),
        blocked_by,
        nodes,
        edges: graph.edges.into_iter().map(Into::into).collect(),
    }))
}

/// A graph's tasks as the API shows them, and which are done: each node's
/// project decides what "done" means for it.
async fn graph_nodes(
    state: &AppState,
    tenant: cadre_types::Tenant,
    tasks: Vec<cadre_store::TaskRow>,
) -> ApiResult<(Vec<Value>, HashMap<Uuid, bool>)> {
    let mut states: HashMap<Uuid, Vec<String>> = HashMap::new();
    let mut done: HashMap<Uuid, bool> = HashMap::with_capacity(tasks.len());
    let mut nodes = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Entry::Vacant(slot) = states.entry(t.project_id) {
            let project = match state.store().projects().project(tenant, t.project_id).await {
                Ok(p) => p.workflow_states.0,
                // A deleted project's tasks are never done.
                Err(cadre_store::StoreError::NotFound) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            slot.insert(project);
        }
        let is_done = states
            .get(&t.project_id)
            .is_some_and(|s| cadre_store::is_final(&t.status, s));
        done.insert(t.id, is_done);
        nodes.push(json!({
            "id": t.id,
            "title": t.title,
            "status": t.status,
            "projectId": t.project_id,
            "assignee": t.assignee_type.zip(t.assignee_id).map(|(kind, id)| json!({ "type": kind, "id": id })),
            "done": is_done,
        }));
    }
    Ok((nodes, done))
}

/// The most tasks a project's graph shows.
const PROJECT_GRAPH_TASKS: u32 = 500;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProjectGraphOut {
    project_id: Uuid,
    /// The project's tasks (the oldest 500) and the tasks of other projects
    /// its edges reach: `{"id", "title", "status", "projectId", "assignee", "done"}`.
    #[schema(value_type = Vec<Object>)]
    nodes: Vec<Value>,
    edges: Vec<DependencyOut>,
    /// The project has more tasks than the graph shows.
    truncated: bool,
}

/// The dependency graph of a whole project.
#[utoipa::path(get, path = "/api/v1/projects/{projectId}/graph", tag = "projects", params(("projectId" = Uuid, Path)), responses((status = 200, body = ProjectGraphOut), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn project_graph_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(project_id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<ProjectGraphOut>> {
    let tenant = super::projects::project_tenant(&state, &caller, project_id).await?;
    let graph = state
        .store()
        .graph()
        .project_graph(tenant, project_id, PROJECT_GRAPH_TASKS + 1)
        .await?;
    let own = graph
        .nodes
        .iter()
        .filter(|t| t.project_id == project_id)
        .count();
    let truncated = own > PROJECT_GRAPH_TASKS as usize;
    let mut tasks = graph.nodes;
    if truncated {
        // The one extra task was read only to know there are more.
        if let Some(i) = tasks.iter().rposition(|t| t.project_id == project_id) {
            tasks.remove(i);
        }
    }
    let own: HashSet<Uuid> = tasks
        .iter()
        .filter(|t| t.project_id == project_id)
        .map(|t| t.id)
        .collect();
    let read: HashSet<Uuid> = tasks.iter().map(|t| t.id).collect();
    // Edges between shown tasks (the store gives only those touching the
    // project).
    let edges: Vec<DependencyOut> = graph
        .edges
        .into_iter()
        .filter(|e| read.contains(&e.task_id) && read.contains(&e.depends_on))
        .map(Into::into)
        .collect();
    // Another project's task stays only while an edge still reaches it.
    let reached: HashSet<Uuid> = edges
        .iter()
        .flat_map(|e| [e.task_id, e.depends_on])
        .collect();
    tasks.retain(|t| own.contains(&t.id) || reached.contains(&t.id));
    let (nodes, _) = graph_nodes(&state, tenant, tasks).await?;
    Ok(ApiResponse::ok(ProjectGraphOut {
        project_id,
        nodes,
        edges,
        truncated,
    }))
}
