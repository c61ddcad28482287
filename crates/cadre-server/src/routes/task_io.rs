//! A task's inputs (`text | file | task_output | url`, ordered and
//! labelled) and outputs (`text | structured | file | url`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use cadre_store::{InputRow, NewInput, NewOutput, OutputRow};
use cadre_types::Tenant;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::tasks::{task_tenant, write};
use crate::auth::Caller;
use crate::envelope::no_content;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::{ApiJson, ApiResponse, AppState};

const MAX_TEXT: usize = 100_000;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InputOut {
    id: Uuid,
    #[serde(rename = "type")]
    kind: String,
    label: String,
    position: i64,
    /// `{"text"}`, `{"url"}`, `{"fileId"}` or `{"taskId", "version"?}`.
    #[schema(value_type = Object)]
    content: Value,
}

impl From<InputRow> for InputOut {
    fn from(i: InputRow) -> Self {
        Self {
            id: i.id,
            kind: i.kind,
            label: i.label,
            position: i.position,
            content: i.content.0,
        }
    }
}

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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct InputIn {
    /// `text`, `file`, `task_output` or `url`.
    #[serde(rename = "type")]
    kind: String,
    label: Option<String>,
    /// Where among the inputs (0-based; appended by default).
    position: Option<i64>,
    /// For `text`.
    text: Option<String>,
    /// For `url` (http or https).
    url: Option<String>,
    /// For `file`.
    file_id: Option<Uuid>,
    /// For `task_output`: the task whose outputs this is.
    task_id: Option<Uuid>,
    /// For `task_output`: pin the outputs as of this version of that task.
    version: Option<i64>,
    /// The task's version this change was made against (or `If-Match`).
    expected_version: Option<i64>,
}

/// Checks an input and shapes what the store keeps; `field` prefixes the
/// names of offending fields (`inputs[2]`).
pub(crate) async fn valid_input(
    state: &AppState,
    tenant: Tenant,
    i: InputIn,
    field: &str,
    at: time::OffsetDateTime,
) -> ApiResult<NewInput> {
    let name = |f: &str| {
        if field.is_empty() {
            f.to_owned()
        } else {
            format!("{field}.{f}")
        }
    };
    let missing = |f: &str| ApiError::validation(name(f), format!("a {} input needs {f}", i.kind));
    let content = match i.kind.as_str() {
        "text" => {
            let text = i.text.clone().ok_or_else(|| missing("text"))?;
            if text.chars().count() > MAX_TEXT {
                return Err(ApiError::validation(
                    name("text"),
                    "text is at most 100000 characters",
                ));
            }
            json!({ "text": text })
        }
        "url" => {
            let url = i.url.clone().ok_or_else(|| missing("url"))?;
            match url::Url::parse(&url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && url.len() <= 2048 => {}
                _ => {
                    return Err(ApiError::validation(
                        name("url"),
                        "url must be an http or https URL of at most 2048 characters",
                    ));
                }
            }
            json!({ "url": url })
        }
        "file" => json!({ "fileId": i.file_id.ok_or_else(|| missing("fileId"))? }),
        "task_output" => {
            let task = i.task_id.ok_or_else(|| missing("taskId"))?;
            state
                .store()
                .tasks()
                .task(tenant, task)
                .await
                .map_err(ApiError::at_field("task", name("taskId")))?;
            if let Some(v) = i.version {
                match state.store().tasks().task_version(tenant, task, v).await {
                    Ok(_) => {}
                    Err(cadre_store::StoreError::NotFound) => {
                        return Err(ApiError::unprocessable(
                            name("version"),
                            "that task has no such version",
                        ));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            json!({ "taskId": task, "version": i.version })
        }
        _ => {
            return Err(ApiError::validation(
                name("type"),
                "type must be text, file, task_output or url",
            ));
        }
    };
    let label = valid_label(i.label.as_deref().unwrap_or(&i.kind), name("label"))?;
    Ok(NewInput {
        id: cadre_types::new_id(),
        kind: i.kind,
        label,
        position: i.position,
        content,
        at,
    })
}

/// Add an input to a task.
#[utoipa::path(post, path = "/api/v1/tasks/{taskId}/inputs", tag = "tasks", params(("taskId" = Uuid, Path)), request_body = InputIn, responses((status = 201, body = InputOut), (status = 404), (status = 412), (status = 423)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn add_input_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(task_id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<InputIn>,
) -> ApiResult<ApiResponse<InputOut>> {
    let tenant = task_tenant(&state, &caller, task_id).await?;
    let write = write(&caller, &headers, body.expected_version)?;
    let input = valid_input(&state, tenant, body, "", write.at).await?;
    let row = state
        .store()
        .tasks()
        .add_input(tenant, task_id, &input, &write)
        .await?;
    Ok(ApiResponse::created(row.into()))
}

/// Remove an input from a task.
#[utoipa::path(delete, path = "/api/v1/tasks/{taskId}/inputs/{inputId}", tag = "tasks", params(("taskId" = Uuid, Path), ("inputId" = Uuid, Path)), responses((status = 204), (status = 404), (status = 412), (status = 423)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn delete_input_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((task_id, input_id)): ApiPath<(Uuid, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let tenant = task_tenant(&state, &caller, task_id).await?;
    let write = write(&caller, &headers, None)?;
    state
        .store()
        .tasks()
        .delete_input(tenant, task_id, input_id, &write)
        .await?;
    Ok(no_content())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct OutputIn {
    /// `text`, `structured`, `file` or `url`.
    #[serde(rename = "type")]
    kind: String,
    label: String,
    /// A string for `text` and `url`, any JSON for `structured`,
    /// `{"fileId"}` for `file`.
    #[schema(value_type = Object)]
    content: Value,
    /// The task's version this change was made against (or `If-Match`).
    expected_version: Option<i64>,
}

/// Checks an output; the trimmed label.
fn valid_output(o: &OutputIn) -> ApiResult<String> {
    let ok = match o.kind.as_str() {
        "text" => o
            .content
            .as_str()
            .is_some_and(|t| t.chars().count() <= MAX_TEXT),
        "url" => o
            .content
            .as_str()
            .and_then(|u| url::Url::parse(u).ok())
            .is_some_and(|u| matches!(u.scheme(), "http" | "https")),
        "file" => o
            .content
            .get("fileId")
            .and_then(Value::as_str)
            .is_some_and(|id| Uuid::parse_str(id).is_ok()),
        "structured" => o.content.to_string().len() <= 1_000_000,
        _ => {
            return Err(ApiError::validation(
                "type",
                "type must be text, structured, file or url",
            ));
        }
    };
    if !ok {
        return Err(ApiError::validation(
            "content",
            "content must be a string (at most 100000 characters) for text, an http(s) URL for url, {\"fileId\"} for file, JSON for structured",
        ));
    }
    valid_label(&o.label, "label".into())
}

/// A label of 1 to 200 characters, trimmed.
fn valid_label(label: &str, field: String) -> ApiResult<String> {
    let label = label.trim();
    if (1..=200).contains(&label.chars().count()) {
        Ok(label.to_owned())
    } else {
        Err(ApiError::validation(
            field,
            "label must be 1 to 200 characters",
        ))
    }
}

/// Add an output to a task by hand (agents add theirs with `add_output`).
#[utoipa::path(post, path = "/api/v1/tasks/{taskId}/outputs", tag = "tasks", params(("taskId" = Uuid, Path)), request_body = OutputIn, responses((status = 201, body = OutputOut), (status = 404), (status = 412), (status = 423)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn add_output_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(task_id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<OutputIn>,
) -> ApiResult<ApiResponse<OutputOut>> {
    let tenant = task_tenant(&state, &caller, task_id).await?;
    let label = valid_output(&body)?;
    let write = write(&caller, &headers, body.expected_version)?;
    let output = NewOutput {
        id: cadre_types::new_id(),
        task_id,
        kind: body.kind,
        label,
        content: body.content,
        execution_id: None,
        at: write.at,
    };
    let row = state
        .store()
        .tasks()
        .add_output(tenant, task_id, &output, &write)
        .await?;
    Ok(ApiResponse::created(row.into()))
}

/// Remove an output from a task (kept for versions that had it).
#[utoipa::path(delete, path = "/api/v1/tasks/{taskId}/outputs/{outputId}", tag = "tasks", params(("taskId" = Uuid, Path), ("outputId" = Uuid, Path)), responses((status = 204), (status = 404), (status = 412), (status = 423)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn delete_output_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((task_id, output_id)): ApiPath<(Uuid, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let tenant = task_tenant(&state, &caller, task_id).await?;
    let write = write(&caller, &headers, None)?;
    state
        .store()
        .tasks()
        .delete_output(tenant, task_id, output_id, &write)
        .await?;
    Ok(no_content())
}
