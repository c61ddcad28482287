//! Executions (start, read, trace and its verification, pause, resume,
//! cancel, answer a question) and approvals (list, approve, reject).

use std::time::Duration;

use axum::extract::State;
use cadre_engine::{STATUSES, advance_job, spec, trace};
use cadre_store::{
    AgentRow, ApprovalRow, ControlChange, Decision, ExecutionFilter, ExecutionRow, NewExecution,
    TraceEventRow,
};
use cadre_types::Tenant;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::envelope::ApiList;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{ApiPath, ApiQuery, PageQuery};
use crate::{ApiJson, ApiResponse, AppState};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExecutionOut {
    id: Uuid,
    org_id: Uuid,
    task_id: Uuid,
    agent_id: Uuid,
    agent_version: i64,
    parent_id: Option<Uuid>,
    trigger: String,
    status: String,
    steps: i64,
    tokens_in: i64,
    tokens_out: i64,
    /// US dollars, a decimal string.
    cost_usd: String,
    models: Vec<String>,
    forked_from: Option<Uuid>,
    forked_at_step: Option<i64>,
    error: Option<String>,
    /// What a paused or waiting execution is waiting for.
    #[schema(value_type = Option<Object>)]
    waiting: Option<Value>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    started_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    finished_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    created_at: time::OffsetDateTime,
}

impl From<ExecutionRow> for ExecutionOut {
    fn from(e: ExecutionRow) -> Self {
        Self {
            waiting: e.checkpoint.0.get("waiting").cloned(),
            id: e.id,
            org_id: e.org_id,
            task_id: e.task_id,
            agent_id: e.agent_id,
            agent_version: e.agent_version,
            parent_id: e.parent_id,
            trigger: e.trigger_kind,
            status: e.status,
            steps: e.steps,
            tokens_in: e.tokens_in,
            tokens_out: e.tokens_out,
            cost_usd: spec::usd(e.cost_nanos),
            models: e.models.0,
            forked_from: e.forked_from,
            forked_at_step: e.forked_at_step,
            error: e.error,
            started_at: e.started_at,
            finished_at: e.finished_at,
            created_at: e.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TraceEventOut {
    seq: i64,
    #[serde(rename = "type")]
    kind: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    at: time::OffsetDateTime,
    #[schema(value_type = Object)]
    data: Value,
    prev_hash: String,
    hash: String,
}

impl From<TraceEventRow> for TraceEventOut {
    fn from(e: TraceEventRow) -> Self {
        Self {
            seq: e.seq,
            kind: e.kind,
            at: e.at,
            data: e.data.0,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VerifyOut {
    valid: bool,
    events: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_bad_seq: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApprovalOut {
    id: Uuid,
    execution_id: Uuid,
    agent_id: Uuid,
    action: String,
    description: String,
    /// The exact arguments that will run.
    #[schema(value_type = Object)]
    details: Value,
    args_hash: String,
    risk_level: String,
    status: String,
    decided_by: Option<Uuid>,
    reason: Option<String>,
    #[schema(value_type = Option<Object>)]
    edited_details: Option<Value>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    expires_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    created_at: time::OffsetDateTime,
}

impl From<ApprovalRow> for ApprovalOut {
    fn from(a: ApprovalRow) -> Self {
        // A pending approval past its expiry is expired, whether or not the
        // engine has recorded it yet.
        let status = if a.status == "pending" && a.expires_at <= cadre_types::time::now() {
            "expired".to_owned()
        } else {
            a.status
        };
        Self {
            id: a.id,
            execution_id: a.execution_id,
            agent_id: a.agent_id,
            action: a.action,
            description: a.description,
            details: a.details.0,
            args_hash: a.args_hash,
            risk_level: a.risk_level,
            status,
            decided_by: a.decided_by,
            reason: a.reason,
            edited_details: a.edited_details.map(|d| d.0),
            expires_at: a.expires_at,
            created_at: a.created_at,
        }
    }
}

/// What a new execution starts from: nothing (a fresh run) or an earlier
/// execution's state after one of its steps (a fork).
pub(crate) struct Origin {
    pub trigger: &'static str,
    pub forked: Option<(Uuid, i64)>,
    pub checkpoint: Value,
}

impl Origin {
    pub(crate) fn fresh() -> Self {
        Self {
            trigger: "user",
            forked: None,
            checkpoint: cadre_engine::checkpoint::Checkpoint::default().to_json(),
        }
    }
}

/// Creates a queued execution of `agent` (at `agent_version`) on `task_id`
/// with its first job, in one transaction.
pub(crate) async fn start_execution(
    state: &AppState,
    tenant: Tenant,
    agent: &AgentRow,
    agent_version: i64,
    task_id: Uuid,
    by: Option<Uuid>,
    origin: Origin,
) -> ApiResult<ExecutionOut> {
    let id = cadre_types::new_id();
    let execution = NewExecution {
        id,
        agent_id: agent.id,
        agent_version,
        task_id,
        parent_id: None,
        trigger_kind: origin.trigger.into(),
        triggered_by: by,
        checkpoint: origin.checkpoint,
        forked_from: origin.forked.map(|f| f.0),
        forked_at_step: origin.forked.map(|f| f.1),
        trace_hash: trace::GENESIS.into(),
        at: cadre_types::time::now(),
    };
    let job = advance_job(
        id,
        tenant.org_id(),
        "start",
        cadre_engine::spec::execution_timeout(&agent.limits.0),
    );
    let row = state
        .store()
        .executions()
        .create_execution(tenant, &execution, &job)
        .await?;
    state.store().jobs_added(cadre_engine::QUEUE).await;
    announce(state, tenant, &row).await;
    Ok(row.into())
}

/// Tells real-time subscribers what an API action did to an execution
/// (the engine announces its own steps).
async fn announce(state: &AppState, tenant: Tenant, row: &cadre_store::ExecutionRow) {
    state
        .realtime()
        .publish(update_notice(state, tenant, row).await);
}

/// `execution_update` for `row`, addressed to its project's channel too
/// (when its task can still be read).
pub(crate) async fn update_notice(
    state: &AppState,
    tenant: Tenant,
    row: &cadre_store::ExecutionRow,
) -> cadre_realtime::Notice {
    let project = state
        .store()
        .tasks()
        .task_any(tenant, row.task_id)
        .await
        .ok()
        .map(|t| t.project_id);
    cadre_engine::live::execution_update(row, project)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ForkIn {
    /// Start from the state after this step (0: from the beginning).
    from_step: i64,
    /// Replace that state (a checkpoint as the engine keeps it:
    /// `{"messages": [...], "pending": [...]}`), for "what if" runs.
    #[schema(value_type = Option<Object>)]
    state: Option<Value>,
}

/// Start a new execution from an earlier step of this one.
#[utoipa::path(post, path = "/api/v1/executions/{id}/fork", tag = "executions", params(("id" = Uuid, Path)), request_body = ForkIn, responses((status = 202, body = ExecutionOut), (status = 404), (status = 409), (status = 422)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn fork_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ForkIn>,
) -> ApiResult<ApiResponse<ExecutionOut>> {
    use cadre_engine::checkpoint::Checkpoint;
    let tenant = execution_tenant(&state, &caller, id).await?;
    let ex = state.store().executions().execution(tenant, id).await?;
    if !(0..=ex.steps).contains(&body.from_step) {
        return Err(ApiError::unprocessable(
            "fromStep",
            format!(
                "fromStep must be between 0 and {} (the steps taken)",
                ex.steps
            ),
        ));
    }
    let checkpoint = match (body.state, body.from_step) {
        (Some(edited), _) => {
            let parsed: Checkpoint = serde_json::from_value(edited)
                .map_err(|e| ApiError::unprocessable("state", format!("not an execution state: {e}")))?;
            // A new execution has kept no snapshots, whatever the state says.
            Checkpoint {
                snapshotted: 0,
                ..parsed
            }
            .to_json()
        }
        (None, 0) => Checkpoint::default().to_json(),
        (None, step) => Checkpoint::compose(
            &state
                .store()
                .executions()
                .snapshots_through(tenant, id, step)
                .await?,
            step,
        )
        .map(|c| c.to_json())
        .ok_or_else(|| ApiError::unprocessable("fromStep", format!("no state was kept after step {step} (it parked the execution); choose an earlier or later step")))?,
    };
    let agent = match state.store().agents().agent(tenant, ex.agent_id).await {
        Ok(agent) => agent,
        Err(cadre_store::StoreError::NotFound) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the agent of this execution was deleted; it cannot be forked",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let origin = Origin {
        trigger: "fork",
        forked: Some((id, body.from_step)),
        checkpoint,
    };
    let by = caller.principal().map(|p| p.actor().1);
    let forked = start_execution(
        &state,
        tenant,
        &agent,
        ex.agent_version,
        ex.task_id,
        by,
        origin,
    )
    .await?;
    Ok(ApiResponse::accepted(forked))
}

async fn execution_tenant(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<Tenant> {
    caller
        .authorize_owner(
            state.store().executions().execution_org(id).await?,
            "execution",
        )
        .await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ExecutionQuery {
    status: Option<String>,
    agent_id: Option<Uuid>,
    task_id: Option<Uuid>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>)]
    since: Option<time::OffsetDateTime>,
    page: Option<u32>,
    page_size: Option<u32>,
}

/// Executions of an organization, newest first.
#[utoipa::path(get, path = "/api/v1/orgs/{orgId}/executions", tag = "executions", params(("orgId" = Uuid, Path), ExecutionQuery), responses((status = 200, body = Vec<ExecutionOut>)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn list_executions_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<ExecutionQuery>,
) -> ApiResult<ApiList<ExecutionOut>> {
    let page = PageQuery {
        page: q.page.unwrap_or(1),
        page_size: q.page_size.unwrap_or(20),
    }
    .page()?;
    if let Some(s) = &q.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::validation(
            "status",
            format!("status must be one of {}", STATUSES.join(", ")),
        ));
    }
    let tenant = caller.authorize(org_id).await?;
    let filter = ExecutionFilter {
        status: q.status,
        agent_id: q.agent_id,
        task_id: q.task_id,
        since: q.since,
    };
    let (rows, total) = state
        .store()
        .executions()
        .executions(tenant, &filter, page)
        .await?;
    Ok(ApiList::new(
        rows.into_iter().map(Into::into).collect(),
        page,
        total,
    ))
}

/// One execution.
#[utoipa::path(get, path = "/api/v1/executions/{id}", tag = "executions", params(("id" = Uuid, Path)), responses((status = 200, body = ExecutionOut), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_execution_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<ExecutionOut>> {
    let tenant = execution_tenant(&state, &caller, id).await?;
    Ok(ApiResponse::ok(
        state
            .store()
            .executions()
            .execution(tenant, id)
            .await?
            .into(),
    ))
}

/// The execution's trace, in order.
#[utoipa::path(get, path = "/api/v1/executions/{id}/trace", tag = "executions", params(("id" = Uuid, Path)), responses((status = 200, body = Vec<TraceEventOut>)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn trace_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<Vec<TraceEventOut>>> {
    let tenant = execution_tenant(&state, &caller, id).await?;
    let events = state.store().executions().trace(tenant, id).await?;
    Ok(ApiResponse::ok(
        events.into_iter().map(Into::into).collect(),
    ))
}

/// Checks the trace's hash chain.
#[utoipa::path(get, path = "/api/v1/executions/{id}/trace/verify", tag = "executions", params(("id" = Uuid, Path)), responses((status = 200, body = VerifyOut)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn verify_trace_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<VerifyOut>> {
    let tenant = execution_tenant(&state, &caller, id).await?;
    let events = state.store().executions().trace(tenant, id).await?;
    Ok(ApiResponse::ok(match trace::verify(&events) {
        Ok(n) => VerifyOut {
            valid: true,
            events: n,
            first_bad_seq: None,
        },
        Err(seq) => VerifyOut {
            valid: false,
            events: events.len(),
            first_bad_seq: Some(seq),
        },
    }))
}

/// A pause, resume or cancel as the API offers it.
struct Control {
    /// The statuses it applies to.
    from: &'static [&'static str],
    control: Option<&'static str>,
    status: Option<&'static str>,
    /// Names the wake-up job (`pause:…`) and how long its run may take.
    reason: &'static str,
    timeout: Duration,
    refusal: &'static str,
}

const PAUSE: Control = Control {
    from: &["queued", "running", "waiting_approval", "waiting_input"],
    control: Some("pause"),
    status: None,
    reason: "pause",
    timeout: Duration::from_secs(60),
    refusal: "only a queued, running or waiting execution can be paused",
};

const RESUME: Control = Control {
    from: &["paused"],
    control: None,
    status: Some("queued"),
    reason: "resume",
    timeout: Duration::from_secs(3600),
    refusal: "only a paused execution can be resumed",
};

const CANCEL: Control = Control {
    from: &[
        "queued",
        "running",
        "waiting_approval",
        "waiting_input",
        "paused",
    ],
    control: Some("cancel"),
    status: None,
    reason: "cancel",
    timeout: Duration::from_secs(60),
    refusal: "the execution has already finished",
};

/// Authorizes, then records the request and enqueues the job that acts on
/// it; 409 naming the status when the execution is past it.
async fn control(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    c: &Control,
) -> ApiResult<ApiResponse<ExecutionOut>> {
    let tenant = execution_tenant(state, caller, id).await?;
    let job = advance_job(
        id,
        tenant.org_id(),
        &format!("{}:{}", c.reason, cadre_types::new_id()),
        c.timeout,
    );
    let change = ControlChange {
        from: c.from,
        control: c.control,
        status: c.status,
        job: Some(&job),
    };
    let row = state
        .store()
        .executions()
        .control_execution(tenant, id, &change, cadre_types::time::now())
        .await?;
    match row {
        Some(row) => {
            state.store().jobs_added(cadre_engine::QUEUE).await;
            announce(state, tenant, &row).await;
            Ok(ApiResponse::ok(row.into()))
        }
        None => {
            let current = state.store().executions().execution(tenant, id).await?;
            Err(ApiError::new(
                ErrorCode::Conflict,
                format!("{} (the execution is {})", c.refusal, current.status),
            ))
        }
    }
}

/// Pause at the next step boundary.
#[utoipa::path(post, path = "/api/v1/executions/{id}/pause", tag = "executions", params(("id" = Uuid, Path)), responses((status = 200, body = ExecutionOut), (status = 409)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn pause_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<ExecutionOut>> {
    control(&state, &caller, id, &PAUSE).await
}

/// Resume a paused execution.
#[utoipa::path(post, path = "/api/v1/executions/{id}/resume", tag = "executions", params(("id" = Uuid, Path)), responses((status = 200, body = ExecutionOut), (status = 409)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn resume_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<ExecutionOut>> {
    control(&state, &caller, id, &RESUME).await
}

/// Cancel: takes effect within one step.
#[utoipa::path(post, path = "/api/v1/executions/{id}/cancel", tag = "executions", params(("id" = Uuid, Path)), responses((status = 200, body = ExecutionOut), (status = 409)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn cancel_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<ExecutionOut>> {
    control(&state, &caller, id, &CANCEL).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct InputIn {
    answer: String,
}

/// Answer the execution's pending question (`request_human_input`).
#[utoipa::path(post, path = "/api/v1/executions/{id}/input", tag = "executions", params(("id" = Uuid, Path)), request_body = InputIn, responses((status = 200, body = ExecutionOut), (status = 409)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn input_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<InputIn>,
) -> ApiResult<ApiResponse<ExecutionOut>> {
    let tenant = execution_tenant(&state, &caller, id).await?;
    if body.answer.trim().is_empty() || body.answer.chars().count() > 20_000 {
        return Err(ApiError::validation(
            "answer",
            "answer must be 1 to 20000 characters",
        ));
    }
    let job = advance_job(
        id,
        tenant.org_id(),
        &format!("input:{}", cadre_types::new_id()),
        Duration::from_secs(3600),
    );
    let answer =
        serde_json::json!({ "answer": body.answer, "by": caller.principal().map(|p| p.actor().1) });
    match state
        .store()
        .executions()
        .answer_input(tenant, id, &answer, &job, cadre_types::time::now())
        .await?
    {
        Some(row) => {
            state.store().jobs_added(cadre_engine::QUEUE).await;
            announce(&state, tenant, &row).await;
            Ok(ApiResponse::ok(row.into()))
        }
        None => Err(ApiError::new(
            ErrorCode::Conflict,
            "the execution is not waiting for an answer",
        )),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ApprovalQuery {
    status: Option<String>,
    /// Only the approvals of this execution.
    execution_id: Option<Uuid>,
    page: Option<u32>,
    page_size: Option<u32>,
}

/// Approvals of an organization, newest first.
#[utoipa::path(get, path = "/api/v1/orgs/{orgId}/approvals", tag = "approvals", params(("orgId" = Uuid, Path), ApprovalQuery), responses((status = 200, body = Vec<ApprovalOut>)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn list_approvals_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<ApprovalQuery>,
) -> ApiResult<ApiList<ApprovalOut>> {
    let page = PageQuery {
        page: q.page.unwrap_or(1),
        page_size: q.page_size.unwrap_or(20),
    }
    .page()?;
    if let Some(s) = &q.status
        && !["pending", "approved", "rejected", "expired"].contains(&s.as_str())
    {
        return Err(ApiError::validation(
            "status",
            "status must be pending, approved, rejected or expired",
        ));
    }
    let tenant = caller.authorize(org_id).await?;
    let (rows, total) = state
        .store()
        .executions()
        .approvals(tenant, q.status.as_deref(), q.execution_id, page)
        .await?;
    Ok(ApiList::new(
        rows.into_iter().map(Into::into).collect(),
        page,
        total,
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ApproveIn {
    /// Run with these arguments instead (recorded as an edit).
    #[schema(value_type = Option<Object>)]
    arguments: Option<Value>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RejectIn {
    reason: Option<String>,
}

/// Records a decision. The body is read only once the caller may see the
/// approval: a foreign id is 404 whatever the body says.
async fn decide(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    approve: bool,
    body: &[u8],
) -> ApiResult<ApiResponse<ApprovalOut>> {
    let tenant = caller
        .authorize_owner(
            state.store().executions().approval_org(id).await?,
            "approval",
        )
        .await?;
    let verdict = if approve {
        Verdict::Approve(crate::extract::optional_body::<ApproveIn>(body)?.arguments)
    } else {
        Verdict::Reject(crate::extract::optional_body::<RejectIn>(body)?.reason)
    };
    let by = caller.principal().map(|p| p.actor().1).unwrap_or_default();
    let row = record_decision(state, tenant, id, by, verdict).await?;
    Ok(ApiResponse::ok(row.into()))
}

/// A person's decision on an approval.
pub(crate) enum Verdict {
    /// Approve, as proposed or with edited arguments (a JSON object).
    Approve(Option<Value>),
    /// Reject, with a reason the agent is told (cut to 2,000 characters).
    Reject(Option<String>),
}

/// Records a decision on an approval of `tenant` (the caller was
/// authorized for it), wakes the execution and announces it; 409 when the
/// approval was already decided or has expired. Shared by the REST routes
/// and the WebSocket's `approve`.
pub(crate) async fn record_decision(
    state: &AppState,
    tenant: Tenant,
    id: Uuid,
    by: Uuid,
    verdict: Verdict,
) -> ApiResult<cadre_store::ApprovalRow> {
    let (status, reason, edited) = match verdict {
        Verdict::Approve(Some(arguments)) if !arguments.is_object() => {
            return Err(ApiError::validation(
                "arguments",
                "arguments must be a JSON object",
            ));
        }
        Verdict::Approve(edited) => ("approved", None, edited),
        Verdict::Reject(reason) => (
            "rejected",
            reason.map(|r| r.chars().take(2000).collect()),
            None,
        ),
    };
    let approval = state.store().executions().approval(tenant, id).await?;
    let job = advance_job(
        approval.execution_id,
        tenant.org_id(),
        &format!("approval:{id}"),
        Duration::from_secs(3600),
    );
    let decision = Decision {
        status: status.into(),
        by,
        reason,
        edited_details: edited,
    };
    match state
        .store()
        .executions()
        .decide_approval(tenant, id, &decision, &job, cadre_types::time::now())
        .await?
    {
        Some(row) => {
            state.store().jobs_added(cadre_engine::QUEUE).await;
            state.realtime().publish(cadre_realtime::Notice::new(
                "approval_resolved",
                cadre_realtime::Scope {
                    execution: Some(row.execution_id),
                    agent: Some(row.agent_id),
                    ..cadre_realtime::Scope::org(row.org_id)
                },
                serde_json::json!({
                    "approvalId": row.id,
                    "executionId": row.execution_id,
                    "status": row.status,
                    "decidedBy": row.decided_by,
                    "reason": row.reason,
                    "editedArguments": row.edited_details.as_ref().map(|d| &d.0),
                }),
            ));
            Ok(row)
        }
        None => Err(ApiError::new(
            ErrorCode::Conflict,
            "the approval is no longer pending (decided or expired)",
        )),
    }
}

/// Approve a pending action, optionally with edited arguments
/// (`{"arguments": {...}}`; the body may be left out).
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "approvals", params(("id" = Uuid, Path)), request_body = ApproveIn, responses((status = 200, body = ApprovalOut), (status = 409)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn approve_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: axum::body::Bytes,
) -> ApiResult<ApiResponse<ApprovalOut>> {
    decide(&state, &caller, id, true, &body).await
}

/// Reject a pending action (`{"reason": "..."}`, optional); the agent is
/// told the reason.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/reject", tag = "approvals", params(("id" = Uuid, Path)), request_body = RejectIn, responses((status = 200, body = ApprovalOut), (status = 409)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn reject_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: axum::body::Bytes,
) -> ApiResult<ApiResponse<ApprovalOut>> {
    decide(&state, &caller, id, false, &body).await
}
