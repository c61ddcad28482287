//! Executions, their hash-chained trace, checkpoints, tool intents,
//! approvals and agent memory.
//!
//! The engine writes an execution only through [`ExecutionQueries::commit_step`]:
//! one transaction that checks the job's lease epoch (and extends the
//! lease), compares-and-sets the trace head, and applies everything the step
//! produced. API actions (approve, answer, pause, cancel) only record a
//! decision and enqueue the execution's job; the engine turns decisions into
//! trace events, so the trace has a single writer.

use cadre_types::Tenant;
use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::jobs::{Lease, NewJob};
use super::tasks::{NewOutput, NewTask};
use super::{Counted, Page};
use crate::{Result, StoreError};

#[derive(Debug, Clone)]
pub struct NewExecution {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub agent_version: i64,
    pub task_id: Uuid,
    pub parent_id: Option<Uuid>,
    /// `user | schedule | webhook | agent | fork`.
    pub trigger_kind: String,
    pub triggered_by: Option<Uuid>,
    pub checkpoint: Value,
    pub forked_from: Option<Uuid>,
    pub forked_at_step: Option<i64>,
    /// The trace head the execution starts from (genesis for a new one).
    pub trace_hash: String,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExecutionRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub agent_id: Uuid,
    pub agent_version: i64,
    pub task_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub trigger_kind: String,
    pub triggered_by: Option<Uuid>,
    pub status: String,
    pub control: Option<String>,
    pub input: Option<Json<Value>>,
    pub steps: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_nanos: i64,
    pub models: Json<Vec<String>>,
    pub checkpoint: Json<Value>,
    pub trace_seq: i64,
    pub trace_hash: String,
    pub forked_from: Option<Uuid>,
    pub forked_at_step: Option<i64>,
    pub error: Option<String>,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Filters of an org's execution list.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub status: Option<String>,
    pub agent_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
    pub since: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct TraceEventRow {
    pub seq: i64,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub at: OffsetDateTime,
    pub data: Json<Value>,
    pub prev_hash: String,
    pub hash: String,
}

/// The execution's counters and state after a step.
#[derive(Debug, Clone)]
pub struct ExecutionState {
    pub status: String,
    pub steps: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_nanos: i64,
    pub models: Vec<String>,
    pub checkpoint: Value,
    pub error: Option<String>,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    /// The pause/cancel request was acted on.
    pub clear_control: bool,
    /// The human's answer was taken into the conversation.
    pub clear_input: bool,
}

#[derive(Debug, Clone)]
pub struct NewApproval {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub call_id: String,
    pub action: String,
    pub description: String,
    pub details: Value,
    pub args_hash: String,
    pub risk_level: String,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApprovalRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub execution_id: Uuid,
    pub agent_id: Uuid,
    pub call_id: String,
    pub action: String,
    pub description: String,
    pub details: Json<Value>,
    pub args_hash: String,
    pub risk_level: String,
    pub status: String,
    pub decided_by: Option<Uuid>,
    pub decided_at: Option<OffsetDateTime>,
    pub reason: Option<String>,
    pub edited_details: Option<Json<Value>>,
    pub expires_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
}

/// One UTC day of an org's executions.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DailyUsage {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub executions: i64,
    pub failed: i64,
    pub tokens: i64,
    pub cost_nanos: i64,
}

/// What an agent's executions add up to.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AgentMetrics {
    pub executions: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub steps: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_nanos: i64,
    /// Of finished executions.
    pub avg_duration_ms: Option<f64>,
}

/// A human's decision on a pending approval.
#[derive(Debug, Clone)]
pub struct Decision {
    /// `approved` or `rejected`.
    pub status: String,
    pub by: Uuid,
    pub reason: Option<String>,
    /// Arguments the approver changed (approve only).
    pub edited_details: Option<Value>,
}

/// A pause, resume or cancel: applied when the execution's status is one
/// of `from`, setting the control request and optionally the status, and
/// enqueueing `job` with it.
#[derive(Debug, Clone, Copy)]
pub struct ControlChange<'a> {
    pub from: &'a [&'a str],
    pub control: Option<&'a str>,
    pub status: Option<&'a str>,
    pub job: Option<&'a NewJob>,
}

/// A tool call with outside effects, recorded before it runs.
#[derive(Debug, Clone)]
pub struct NewIntent {
    pub call_id: String,
    pub step: i64,
    pub tool: String,
    pub arguments: Value,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IntentRow {
    pub call_id: String,
    pub step: i64,
    pub tool: String,
    pub arguments: Json<Value>,
    pub idempotency_key: String,
    pub result: Option<Json<Value>>,
}

/// What others may change on an execution while a job runs it, as it
/// stands once a step is committed: a pause or cancel request, a human's
/// answer. The rest of the row is the step's own.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct StepHead {
    pub control: Option<String>,
    pub input: Option<Json<Value>>,
}

/// Everything one step writes, in one transaction.
#[derive(Debug, Clone)]
pub struct StepCommit {
    pub execution_id: Uuid,
    /// The job lease the step ran under: a stale one refuses the commit
    /// ([`StoreError::StaleLease`]). The worker's heartbeat keeps it alive.
    pub lease: Option<Lease>,
    /// The trace head the step started from: if another writer moved it,
    /// the commit is refused with a `trace_head` conflict.
    pub expected_seq: i64,
    /// The control request the step saw. A step that parks or finishes the
    /// execution (`release_runner`) is refused the same way when a pause or
    /// cancel was asked for since, so it is taken again and honours it.
    pub expected_control: Option<String>,
    /// The execution stops here (parked or finished): the job gives it up.
    pub release_runner: bool,
    pub state: ExecutionState,
    /// Events to append (hashes already chained from the head).
    pub events: Vec<TraceEventRow>,
    /// `(step, state)`: what to keep of the state after this step, so the
    /// execution can be forked from it. The engine keeps only what changed
    /// since its previous snapshot ([`ExecutionQueries::snapshots_through`]).
    pub snapshot: Option<(i64, Value)>,
    pub outputs: Vec<NewOutput>,
    pub tasks: Vec<NewTask>,
    pub executions: Vec<NewExecution>,
    pub approvals: Vec<NewApproval>,
    /// Pending approvals this step found expired.
    pub expired_approvals: Vec<Uuid>,
    /// `(agent, key, value)` to remember.
    pub memories: Vec<(Uuid, String, String)>,
    pub intent_started: Option<NewIntent>,
    /// `(call id, result)` of an intent whose tool has run.
    pub intent_finished: Option<(String, Value)>,
    /// The execution succeeded: its task moves to the project's last
    /// workflow state (`review` when the project requires review).
    pub task_done: Option<Uuid>,
    /// The execution failed: the error is recorded on its task, which stays
    /// where it was.
    pub task_failed: Option<(Uuid, String)>,
    /// The agent that ran the step (the author of the task changes it makes).
    pub agent_id: Uuid,
    /// Child executions to cancel with this one (their jobs are in `jobs`).
    pub cancel_children: Vec<Uuid>,
    /// Follow-up work (a child execution, waking a parent, a timer).
    pub jobs: Vec<NewJob>,
    pub at: OffsetDateTime,
}

#[async_trait::async_trait]
pub trait ExecutionQueries: Send + Sync {
    /// The org of an execution, for authorization.
    async fn execution_org(&self, id: Uuid) -> Result<Option<Uuid>>;
    /// The org of an approval, for authorization.
    async fn approval_org(&self, id: Uuid) -> Result<Option<Uuid>>;
    /// Creates a queued execution and its job in one transaction.
    async fn create_execution(
        &self,
        tenant: Tenant,
        execution: &NewExecution,
        job: &NewJob,
    ) -> Result<ExecutionRow>;
    async fn execution(&self, tenant: Tenant, id: Uuid) -> Result<ExecutionRow>;
    /// Newest first.
    async fn executions(
        &self,
        tenant: Tenant,
        filter: &ExecutionFilter,
        page: Page,
    ) -> Result<(Vec<ExecutionRow>, u64)>;
    async fn trace(&self, tenant: Tenant, id: Uuid) -> Result<Vec<TraceEventRow>>;
    /// The trace events after sequence number `after`, in order (a stream
    /// resuming from `Last-Event-ID`).
    async fn trace_after(&self, tenant: Tenant, id: Uuid, after: i64)
    -> Result<Vec<TraceEventRow>>;
    /// The snapshots kept after each step up to `step`, in step order (the
    /// engine composes a state from them).
    async fn snapshots_through(
        &self,
        tenant: Tenant,
        id: Uuid,
        step: i64,
    ) -> Result<Vec<(i64, Value)>>;
    /// Makes `job` the execution's runner unless another job whose lease is
    /// live holds it: the execution as it stands, or `None` when one does
    /// (or there is no such execution).
    async fn take_runner(
        &self,
        tenant: Tenant,
        id: Uuid,
        job: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<ExecutionRow>>;
    /// Gives the execution up (if `job` holds it).
    async fn release_runner(&self, tenant: Tenant, id: Uuid, job: Uuid) -> Result<()>;
    /// Applies one step; see [`StepCommit`]. Returns what others may have
    /// changed on the execution meanwhile.
    async fn commit_step(&self, tenant: Tenant, commit: &StepCommit) -> Result<StepHead>;
    /// Applies many steps (of different executions: a batch naming one twice
    /// is refused whole) in one transaction: the outcome of each, in order. A refused step (stale lease, moved trace
    /// head) writes nothing and the others go on; any other error fails the
    /// whole batch. One commit (and one WAL sync) for all of them, and one
    /// multi-row statement per table for what they append.
    async fn commit_steps(&self, steps: &[(Tenant, &StepCommit)]) -> Result<Vec<Result<StepHead>>>;
    /// Applies a [`ControlChange`]; `None` when the execution's status was
    /// not one of its `from`.
    async fn control_execution(
        &self,
        tenant: Tenant,
        id: Uuid,
        change: &ControlChange<'_>,
        at: OffsetDateTime,
    ) -> Result<Option<ExecutionRow>>;
    /// Records the answer to a pending question and enqueues the execution;
    /// `None` when it is not waiting for input (or already answered).
    async fn answer_input(
        &self,
        tenant: Tenant,
        id: Uuid,
        answer: &Value,
        job: &NewJob,
        at: OffsetDateTime,
    ) -> Result<Option<ExecutionRow>>;
    /// An org's approvals, newest first; optionally only those with
    /// `status`, or of one execution.
    async fn approvals(
        &self,
        tenant: Tenant,
        status: Option<&str>,
        execution_id: Option<Uuid>,
        page: Page,
    ) -> Result<(Vec<ApprovalRow>, u64)>;
    async fn approval(&self, tenant: Tenant, id: Uuid) -> Result<ApprovalRow>;
    /// The approval of one tool call of an execution.
    async fn approval_for_call(
        &self,
        tenant: Tenant,
        execution_id: Uuid,
        call_id: &str,
    ) -> Result<Option<ApprovalRow>>;
    /// Decides a pending, unexpired approval and enqueues its execution;
    /// `None` when it is no longer pending (or has expired).
    async fn decide_approval(
        &self,
        tenant: Tenant,
        id: Uuid,
        decision: &Decision,
        job: &NewJob,
        at: OffsetDateTime,
    ) -> Result<Option<ApprovalRow>>;
    async fn intent(
        &self,
        tenant: Tenant,
        execution_id: Uuid,
        call_id: &str,
    ) -> Result<Option<IntentRow>>;
    /// Memories of an agent whose key or value contains `query` (all when
    /// empty), most recently written first.
    async fn recall(
        &self,
        tenant: Tenant,
        agent_id: Uuid,
        query: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>>;
    /// An agent's executions (created since `since`, if given), counted and
    /// summed.
    async fn agent_metrics(
        &self,
        tenant: Tenant,
        agent_id: Uuid,
        since: Option<OffsetDateTime>,
    ) -> Result<AgentMetrics>;
    /// Tokens and cost (nanodollars) of the org's executions created since
    /// `since`, optionally of one agent.
    async fn spend_since(
        &self,
        tenant: Tenant,
        agent_id: Option<Uuid>,
        since: OffsetDateTime,
    ) -> Result<(i64, i64)>;

    /// The org's executions per UTC day since `since`, oldest first; days
    /// without executions are absent.
    async fn daily_usage(&self, tenant: Tenant, since: OffsetDateTime) -> Result<Vec<DailyUsage>>;
}

macro_rules! execution_columns {
    () => {
        "id, org_id, agent_id, agent_version, task_id, parent_id, trigger_kind, triggered_by, status, control, input, steps, tokens_in, tokens_out, cost_nanos, models, checkpoint, trace_seq, trace_hash, forked_from, forked_at_step, error, started_at, finished_at, created_at, updated_at"
    };
}

macro_rules! approval_columns {
    () => {
        "id, org_id, execution_id, agent_id, call_id, action, description, details, args_hash, risk_level, status, decided_by, decided_at, reason, edited_details, expires_at, created_at"
    };
}

/// Inserts an execution (binds: id, org, agent, version, task, parent,
/// trigger, triggered by, checkpoint, forked from, forked at, trace hash, at).
pub(crate) const INSERT_EXECUTION: &str = concat!(
    "INSERT INTO executions (id, org_id, agent_id, agent_version, task_id, parent_id, trigger_kind, triggered_by,
                             status, steps, tokens_in, tokens_out, cost_nanos, models, checkpoint, trace_seq,
                             trace_hash, forked_from, forked_at_step, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', 0, 0, 0, 0, '[]', $9, 0, $12, $10, $11, $13, $13)
     RETURNING ",
    execution_columns!()
);

macro_rules! bind_execution {
    ($query:expr, $org:expr, $e:expr) => {
        $query
            .bind($e.id)
            .bind($org)
            .bind($e.agent_id)
            .bind($e.agent_version)
            .bind($e.task_id)
            .bind($e.parent_id)
            .bind(&$e.trigger_kind)
            .bind($e.triggered_by)
            .bind(Json(&$e.checkpoint))
            .bind($e.forked_from)
            .bind($e.forked_at_step)
            .bind(&$e.trace_hash)
            .bind($e.at)
    };
}
pub(crate) use bind_execution;

/// Moves the executions of a batch of steps to their new heads with one
/// statement (per chunk), on an open transaction: for each, a
/// compare-and-set on the trace head (and, for a step that stops the
/// execution, on the control request it saw), fenced by the job's lease
/// epoch. Evaluates to `Result<Vec<Result<StepHead>>>`, in the order of the
/// steps: the outer error is the database's (the caller rolls back), an
/// inner one says why that step alone is refused ([`StoreError::StaleLease`]
/// or a `trace_head` conflict), having written nothing.
macro_rules! move_heads {
    ($tx:ident, $steps:expr) => {
        async {
            let steps: &[(Uuid, &StepCommit)] = $steps;
            let mut moved: std::collections::HashMap<Uuid, StepHead> =
                std::collections::HashMap::with_capacity(steps.len());
            for chunk in steps.chunks(HEADS_CHUNK) {
                // VALUES columns are named column1, column2, … on both backends.
                let mut update = sqlx::QueryBuilder::new(MOVE_HEADS);
                update.push_values(chunk, |mut row, (org, c)| head_binds!(row, org, c));
                update.push(MOVE_HEADS_WHERE);
                let rows: Vec<(Uuid, Option<String>, Option<Json<Value>>)> =
                    update.build_query_as().fetch_all(&mut *$tx).await?;
                for (id, control, input) in rows {
                    moved.insert(id, StepHead { control, input });
                }
            }
            outcomes!($tx, steps, moved)
        }
        .await
    };
}

/// The outcome of each step of a batch once the heads that moved are known
/// (`$moved`): a refused step is told apart as a lost lease or a moved
/// head by one look-up. Evaluates to `Result<Vec<Result<StepHead>>>`.
macro_rules! outcomes {
    ($conn:expr, $steps:expr, $moved:expr) => {
        async {
            let mut moved: std::collections::HashMap<Uuid, StepHead> = $moved;
            let mut outcomes = Vec::with_capacity($steps.len());
            for (_, c) in $steps {
                if let Some(head) = moved.remove(&c.execution_id) {
                    outcomes.push(Ok(head));
                    continue;
                }
                // Refused: say whether the job lost its lease or the
                // execution moved on under the step.
                let mut stale = false;
                if let Some(lease) = c.lease {
                    let held: Option<i32> = sqlx::query_scalar(
                        "SELECT 1 FROM jobs WHERE id = $1 AND lease_epoch = $2 AND state = 'running'",
                    )
                    .bind(lease.job_id)
                    .bind(lease.epoch)
                    .fetch_optional(&mut *$conn)
                    .await?;
                    stale = held.is_none();
                }
                outcomes.push(Err(if stale {
                    StoreError::StaleLease
                } else {
                    StoreError::Conflict { constraint: "trace_head".into() }
                }));
            }
            Ok::<_, StoreError>(outcomes)
        }
        .await
    };
}

/// Moves execution heads from the `VALUES` list that follows (one row per
/// step, as [`head_binds`] binds it; columns are named column1, column2, …
/// on both backends).
const MOVE_HEADS: &str =
    "UPDATE executions SET status = v.column4, steps = v.column5, tokens_in = v.column6,
        tokens_out = v.column7, cost_nanos = v.column8, models = v.column9,
        checkpoint = v.column10, error = v.column11, started_at = v.column12,
        finished_at = v.column13,
        control = CASE WHEN v.column14 THEN NULL ELSE control END,
        input = CASE WHEN v.column15 THEN NULL ELSE input END,
        trace_seq = COALESCE(v.column16, trace_seq),
        trace_hash = COALESCE(v.column17, trace_hash), updated_at = v.column18,
        runner = CASE WHEN v.column19 THEN NULL ELSE runner END
     FROM (";

/// The fences of a head move: the trace head it started from, the control
/// request it saw (for a step that stops the execution), the job's lease.
const MOVE_HEADS_WHERE: &str = ") AS v
     WHERE executions.org_id = v.column1 AND executions.id = v.column2
       AND executions.trace_seq = v.column3
       AND (NOT v.column19 OR COALESCE(executions.control, '') = v.column20)
       AND (v.column21 IS NULL OR EXISTS (
            SELECT 1 FROM jobs j WHERE j.id = v.column21 AND j.lease_epoch = v.column22 AND j.state = 'running'))
     RETURNING id, control, input";

/// Binds one step's row of [`MOVE_HEADS`].
macro_rules! head_binds {
    ($row:ident, $org:expr, $c:expr) => {{
        let (s, head) = (&$c.state, $c.events.last());
        $row.push_bind(*$org)
            .push_bind($c.execution_id)
            .push_bind($c.expected_seq)
            .push_bind(&s.status)
            .push_bind(s.steps)
            .push_bind(s.tokens_in)
            .push_bind(s.tokens_out)
            .push_bind(s.cost_nanos)
            .push_bind(Json(&s.models))
            .push_bind(Json(&s.checkpoint))
            .push_bind(&s.error)
            .push_bind(s.started_at)
            .push_bind(s.finished_at)
            .push_bind(s.clear_control)
            .push_bind(s.clear_input)
            .push_bind(head.map(|e| e.seq))
            .push_bind(head.map(|e| e.hash.as_str()))
            .push_bind($c.at)
            .push_bind($c.release_runner)
            .push_bind($c.expected_control.as_deref().unwrap_or(""))
            .push_bind($c.lease.map(|l| l.job_id))
            .push_bind($c.lease.map_or(0, |l| l.epoch));
    }};
}

/// Most steps in one head-moving UPDATE (22 binds a step).
const HEADS_CHUNK: usize = 400;

/// Most rows in one multi-row INSERT of step writes (at most 8 binds a row
/// keeps this under both backends' parameter limits).
const STEP_ROWS_CHUNK: usize = 500;

/// Writes what the accepted steps of a batch append to the trace, the
/// per-step snapshots and agent memory, with one multi-row statement per
/// table (per chunk). Evaluates to `Result<()>`.
macro_rules! append_steps {
    ($tx:ident, $steps:expr) => {
        async {
            let steps: &[(Uuid, &StepCommit)] = $steps;
            let events: Vec<(Uuid, &StepCommit, &TraceEventRow)> = steps
                .iter()
                .flat_map(|(org, c)| c.events.iter().map(move |e| (*org, *c, e)))
                .collect();
            for chunk in events.chunks(STEP_ROWS_CHUNK) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO trace_events (execution_id, seq, org_id, type, at, data, prev_hash, hash) ",
                );
                insert.push_values(chunk, |mut row, (org, c, e)| {
                    row.push_bind(c.execution_id)
                        .push_bind(e.seq)
                        .push_bind(*org)
                        .push_bind(&e.kind)
                        .push_bind(e.at)
                        .push_bind(&e.data)
                        .push_bind(&e.prev_hash)
                        .push_bind(&e.hash);
                });
                insert.build().execute(&mut *$tx).await?;
            }
            let snapshots: Vec<(&StepCommit, &(i64, Value))> = steps
                .iter()
                .filter_map(|(_, c)| c.snapshot.as_ref().map(|s| (*c, s)))
                .collect();
            for chunk in snapshots.chunks(STEP_ROWS_CHUNK) {
                let mut insert =
                    sqlx::QueryBuilder::new("INSERT INTO execution_checkpoints (execution_id, step, state) ");
                insert.push_values(chunk, |mut row, (c, (step, state))| {
                    row.push_bind(c.execution_id)
                        .push_bind(*step)
                        .push_bind(Json(state));
                });
                insert.push(" ON CONFLICT (execution_id, step) DO UPDATE SET state = excluded.state");
                insert.build().execute(&mut *$tx).await?;
            }
            // In key order, so concurrent batches lock rows in one order, and
            // one row per key: a multi-row upsert may not touch a row twice.
            // The sort is stable, so of equal keys the last written is last;
            // it takes the place of the one kept, as one by one it would win.
            let mut memories: Vec<(Uuid, &Uuid, &str, &str, OffsetDateTime)> = steps
                .iter()
                .flat_map(|(org, c)| {
                    c.memories
                        .iter()
                        .map(move |(agent, key, value)| (*org, agent, key.as_str(), value.as_str(), c.at))
                })
                .collect();
            memories.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
            memories.dedup_by(|later, kept| {
                let same = (later.0, later.1, later.2) == (kept.0, kept.1, kept.2);
                if same {
                    std::mem::swap(later, kept);
                }
                same
            });
            for chunk in memories.chunks(STEP_ROWS_CHUNK) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO memories (org_id, agent_id, key, value, created_at, updated_at) ",
                );
                insert.push_values(chunk, |mut row, (org, agent, key, value, at)| {
                    row.push_bind(*org)
                        .push_bind(**agent)
                        .push_bind(*key)
                        .push_bind(*value)
                        .push_bind(*at)
                        .push_bind(*at);
                });
                insert.push(
                    " ON CONFLICT (org_id, agent_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                );
                insert.build().execute(&mut *$tx).await?;
            }
            Ok::<(), StoreError>(())
        }
        .await
    };
}

/// Applies the rest of an accepted step — outputs, sub-tasks, child
/// executions, approvals, intents, task and agent status, follow-up jobs —
/// on an open transaction. Evaluates to `Result<()>`; an error leaves the
/// transaction for the caller to roll back.
macro_rules! apply_step {
    ($out:ident, $tx:ident, $org:expr, $c:expr) => {
        async {
            for o in &$c.outputs {
                sqlx::query(super::tasks::INSERT_OUTPUT)
                    .bind(o.id)
                    .bind($org)
                    .bind(o.task_id)
                    .bind(&o.kind)
                    .bind(&o.label)
                    .bind(Json(&o.content))
                    .bind(o.execution_id)
                    .bind(o.at)
                    .execute(&mut *$tx)
                    .await?;
            }
            let agent = super::events::Actor::new("agent", Some($c.agent_id));
            for t in &$c.tasks {
                super::tasks::bind_task!(sqlx::query(super::tasks::INSERT_TASK), $org, t)
                    .execute(&mut *$tx)
                    .await?;
                super::tasks::store_version!($tx, $org, t.id, "created", "created by an agent", &agent, $c.at)?;
                super::events::emit!($out, $tx, $org, "task_created", "task", t.id, &agent,
                    serde_json::json!({ "taskId": t.id, "projectId": t.project_id, "parentId": t.parent_id, "title": t.title, "status": t.status }), $c.at)?;
            }
            // A sub-task for an agent may auto-run; a delegated one already
            // has its execution in this step.
            let subtasks: Vec<Uuid> = $c.tasks.iter()
                .filter(|t| t.assignee.as_ref().is_some_and(|a| a.0 == "agent"))
                .filter(|t| !$c.executions.iter().any(|e| e.task_id == t.id))
                .map(|t| t.id)
                .collect();
            super::tasks::queue_ready_check!($tx, $org, subtasks, $c.at)?;
            for e in &$c.executions {
                bind_execution!(sqlx::query(INSERT_EXECUTION), $org, e)
                    .execute(&mut *$tx)
                    .await?;
            }
            for a in &$c.approvals {
                sqlx::query(
                    "INSERT INTO approvals (id, org_id, execution_id, agent_id, call_id, action, description, details,
                                            args_hash, risk_level, status, expires_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $12)",
                )
                .bind(a.id)
                .bind($org)
                .bind($c.execution_id)
                .bind(a.agent_id)
                .bind(&a.call_id)
                .bind(&a.action)
                .bind(&a.description)
                .bind(Json(&a.details))
                .bind(&a.args_hash)
                .bind(&a.risk_level)
                .bind(a.expires_at)
                .bind($c.at)
                .execute(&mut *$tx)
                .await?;
            }
            for id in &$c.expired_approvals {
                sqlx::query("UPDATE approvals SET status = 'expired', decided_at = $3 WHERE org_id = $1 AND id = $2 AND status = 'pending'")
                    .bind($org)
                    .bind(id)
                    .bind($c.at)
                    .execute(&mut *$tx)
                    .await?;
            }
            if let Some(i) = &$c.intent_started {
                sqlx::query(
                    "INSERT INTO tool_intents (execution_id, call_id, step, tool, arguments, idempotency_key, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind($c.execution_id)
                .bind(&i.call_id)
                .bind(i.step)
                .bind(&i.tool)
                .bind(Json(&i.arguments))
                .bind(&i.idempotency_key)
                .bind($c.at)
                .execute(&mut *$tx)
                .await?;
            }
            if let Some((call_id, result)) = &$c.intent_finished {
                sqlx::query("UPDATE tool_intents SET result = $3, finished_at = $4 WHERE execution_id = $1 AND call_id = $2")
                    .bind($c.execution_id)
                    .bind(call_id)
                    .bind(Json(result))
                    .bind($c.at)
                    .execute(&mut *$tx)
                    .await?;
            }
            if let Some(task) = $c.task_done {
                let project: Option<(Json<Vec<String>>, bool)> = sqlx::query_as(
                    "SELECT p.workflow_states, p.require_review FROM projects p JOIN tasks t ON t.project_id = p.id
                     WHERE t.org_id = $1 AND t.id = $2",
                )
                .bind($org)
                .bind(task)
                .fetch_optional(&mut *$tx)
                .await?;
                if let Some((states, review)) = project {
                    let target = if review && states.0.iter().any(|s| s == "review") {
                        Some("review")
                    } else {
                        states.0.last().map(String::as_str)
                    };
                    if let Some(target) = target {
                        let moved = sqlx::query(
                            "UPDATE tasks SET status = $3, last_error = NULL, updated_at = $4
                             WHERE org_id = $1 AND id = $2 AND status <> 'cancelled' AND deleted_at IS NULL")
                            .bind($org)
                            .bind(task)
                            .bind(target)
                            .bind($c.at)
                            .execute(&mut *$tx)
                            .await?;
                        if moved.rows_affected() == 1 {
                            let summary = format!("execution {} succeeded: {target}", $c.execution_id);
                            super::tasks::new_version!($out, $tx, $org, task, "execution_completed", summary.as_str(), &agent, $c.at)?;
                            if super::tasks::is_final(target, &states.0) {
                                let downstream = super::tasks::downstream_ids!($tx, $org, task).await?;
                                super::tasks::queue_ready_check!($tx, $org, downstream, $c.at)?;
                            }
                        }
                    }
                }
            }
            if let Some((task, error)) = &$c.task_failed {
                let recorded = sqlx::query("UPDATE tasks SET last_error = $3 WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL")
                    .bind($org)
                    .bind(task)
                    .bind(error)
                    .execute(&mut *$tx)
                    .await?;
                if recorded.rows_affected() == 1 {
                    let summary = format!("execution {} failed: {error}", $c.execution_id);
                    super::tasks::new_version!($out, $tx, $org, *task, "execution_failed", summary.as_str(), &agent, $c.at)?;
                }
            }
            for child in &$c.cancel_children {
                sqlx::query(
                    "UPDATE executions SET control = 'cancel', updated_at = $3
                     WHERE org_id = $1 AND id = $2 AND status NOT IN ('completed', 'failed', 'cancelled')",
                )
                .bind($org)
                .bind(child)
                .bind($c.at)
                .execute(&mut *$tx)
                .await?;
            }
            for job in &$c.jobs {
                super::jobs::bind_new_job!(sqlx::query(super::jobs::insert_job_sql!()), job, $c.at)
                    .execute(&mut *$tx)
                    .await?;
            }
            Ok::<(), StoreError>(())
        }
        .await
    };
}

/// Whether a step writes only its head, trace events, snapshot and
/// memories (most steps do): nothing for [`apply_step`] to do.
fn is_plain(c: &StepCommit) -> bool {
    c.outputs.is_empty()
        && c.tasks.is_empty()
        && c.executions.is_empty()
        && c.approvals.is_empty()
        && c.expired_approvals.is_empty()
        && c.intent_started.is_none()
        && c.intent_finished.is_none()
        && c.task_done.is_none()
        && c.task_failed.is_none()
        && c.cancel_children.is_empty()
        && c.jobs.is_empty()
}

/// A batch's heads and appends in one statement on PostgreSQL (all of a
/// plain batch; the first statement of the general path): each table's
/// rows go in as arrays (one per column) that `UNNEST` turns back into
/// rows, so the statement's text is the same whatever the batch, and it is
/// prepared once per connection and planned from its cached plan. The heads
/// move in a data-modifying CTE (the fences of [`MOVE_HEADS_WHERE`]); only
/// the steps whose head moved append their trace events, snapshots and
/// memories (the inserts read the `UPDATE`'s `RETURNING`). Of several
/// writes to one memory key the last in the batch wins, as one by one.
const PG_MOVE_AND_APPEND: &str = "WITH v AS (
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int8[], $4::text[], $5::int8[], $6::int8[],
        $7::int8[], $8::int8[], $9::jsonb[], $10::jsonb[], $11::text[], $12::timestamptz[],
        $13::timestamptz[], $14::bool[], $15::bool[], $16::int8[], $17::text[], $18::timestamptz[],
        $19::bool[], $20::text[], $21::uuid[], $22::int8[])
    AS v (org_id, id, expected_seq, status, steps, tokens_in, tokens_out, cost_nanos, models,
          checkpoint, error, started_at, finished_at, clear_control, clear_input, seq, hash, at,
          release_runner, expected_control, job_id, lease_epoch)
), moved AS (
    UPDATE executions e SET status = v.status, steps = v.steps, tokens_in = v.tokens_in,
        tokens_out = v.tokens_out, cost_nanos = v.cost_nanos, models = v.models,
        checkpoint = v.checkpoint, error = v.error, started_at = v.started_at,
        finished_at = v.finished_at,
        control = CASE WHEN v.clear_control THEN NULL ELSE e.control END,
        input = CASE WHEN v.clear_input THEN NULL ELSE e.input END,
        trace_seq = COALESCE(v.seq, e.trace_seq), trace_hash = COALESCE(v.hash, e.trace_hash),
        updated_at = v.at, runner = CASE WHEN v.release_runner THEN NULL ELSE e.runner END
    FROM v
    WHERE e.org_id = v.org_id AND e.id = v.id AND e.trace_seq = v.expected_seq
      AND (NOT v.release_runner OR COALESCE(e.control, '') = v.expected_control)
      AND (v.job_id IS NULL OR EXISTS (
           SELECT 1 FROM jobs j WHERE j.id = v.job_id AND j.lease_epoch = v.lease_epoch AND j.state = 'running'))
    RETURNING e.id, e.control, e.input
), t AS (
    INSERT INTO trace_events (execution_id, seq, org_id, type, at, data, prev_hash, hash)
    SELECT * FROM UNNEST($23::uuid[], $24::int8[], $25::uuid[], $26::text[], $27::timestamptz[],
                         $28::jsonb[], $29::text[], $30::text[])
        AS t (execution_id, seq, org_id, type, at, data, prev_hash, hash)
    WHERE t.execution_id IN (SELECT id FROM moved)
), s AS (
    INSERT INTO execution_checkpoints (execution_id, step, state)
    SELECT * FROM UNNEST($31::uuid[], $32::int8[], $33::jsonb[]) AS s (execution_id, step, state)
    WHERE s.execution_id IN (SELECT id FROM moved)
    ON CONFLICT (execution_id, step) DO UPDATE SET state = excluded.state
), m AS (
    INSERT INTO memories (org_id, agent_id, key, value, created_at, updated_at)
    SELECT DISTINCT ON (m.org_id, m.agent_id, m.key) m.org_id, m.agent_id, m.key, m.value, m.at, m.at
    FROM UNNEST($34::uuid[], $35::uuid[], $36::uuid[], $37::text[], $38::text[], $39::timestamptz[])
        WITH ORDINALITY AS m (execution_id, org_id, agent_id, key, value, at, n)
    WHERE m.execution_id IN (SELECT id FROM moved)
    ORDER BY m.org_id, m.agent_id, m.key, m.n DESC
    ON CONFLICT (org_id, agent_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
)
SELECT id, control, input FROM moved";

/// One column of a batch, as the array [`PG_MOVE_AND_APPEND`] binds.
fn column<T, U>(rows: &[T], f: impl FnMut(&T) -> U) -> Vec<U> {
    rows.iter().map(f).collect()
}

/// The steps of a batch whose heads moved, by agent and execution: what
/// they write is then locked in one order by every batch in flight (no
/// deadlock between batches).
fn accepted<'a>(
    steps: &[(Uuid, &'a StepCommit)],
    outcomes: &[Result<StepHead>],
) -> Vec<(Uuid, &'a StepCommit)> {
    let mut accepted: Vec<(Uuid, &StepCommit)> = steps
        .iter()
        .zip(outcomes)
        .filter(|(_, outcome)| outcome.is_ok())
        .map(|(step, _)| *step)
        .collect();
    accepted.sort_by_key(|(_, c)| (c.agent_id, c.execution_id));
    accepted
}

impl crate::sqlite::SqliteStore {
    /// SQLite's statements cost no round trip: the general path is as fast.
    async fn commit_plain(
        &self,
        _steps: &[(Uuid, &StepCommit)],
    ) -> Result<Option<Vec<Result<StepHead>>>> {
        Ok(None)
    }

    async fn begin_steps(&self) -> Result<crate::sqlite::WriteTx> {
        self.begin_write().await
    }

    /// Moves the heads of a batch (in `tx`), then appends the trace events,
    /// snapshots and memories of the steps whose head moved; the outcome of
    /// each step, in order.
    async fn move_and_append(
        &self,
        tx: &mut sqlx::SqliteConnection,
        steps: &[(Uuid, &StepCommit)],
    ) -> Result<Vec<Result<StepHead>>> {
        let outcomes = move_heads!(tx, steps)?;
        append_steps!(tx, &accepted(steps, &outcomes))?;
        Ok(outcomes)
    }
}

/// Runs [`PG_MOVE_AND_APPEND`] for `steps` on `conn`: the heads that moved
/// and what the other side changed on them meanwhile.
async fn pg_move_and_append<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    steps: &[(Uuid, &StepCommit)],
) -> Result<std::collections::HashMap<Uuid, StepHead>> {
    let events: Vec<(Uuid, &StepCommit, &TraceEventRow)> = steps
        .iter()
        .flat_map(|(org, c)| c.events.iter().map(move |e| (*org, *c, e)))
        .collect();
    let snapshots: Vec<(Uuid, i64, &Value)> = steps
        .iter()
        .filter_map(|(_, c)| {
            c.snapshot
                .as_ref()
                .map(|(step, state)| (c.execution_id, *step, state))
        })
        .collect();
    let memories: Vec<(Uuid, Uuid, Uuid, &str, &str, OffsetDateTime)> = steps
        .iter()
        .flat_map(|(org, c)| {
            c.memories.iter().map(move |(agent, key, value)| {
                (
                    c.execution_id,
                    *org,
                    *agent,
                    key.as_str(),
                    value.as_str(),
                    c.at,
                )
            })
        })
        .collect();
    let rows: Vec<(Uuid, Option<String>, Option<Json<Value>>)> = sqlx::query_as(PG_MOVE_AND_APPEND)
        .bind(column(steps, |(org, _)| *org))
        .bind(column(steps, |(_, c)| c.execution_id))
        .bind(column(steps, |(_, c)| c.expected_seq))
        .bind(column(steps, |(_, c)| c.state.status.as_str()))
        .bind(column(steps, |(_, c)| c.state.steps))
        .bind(column(steps, |(_, c)| c.state.tokens_in))
        .bind(column(steps, |(_, c)| c.state.tokens_out))
        .bind(column(steps, |(_, c)| c.state.cost_nanos))
        .bind(column(steps, |(_, c)| Json(&c.state.models)))
        .bind(column(steps, |(_, c)| Json(&c.state.checkpoint)))
        .bind(column(steps, |(_, c)| c.state.error.as_deref()))
        .bind(column(steps, |(_, c)| c.state.started_at))
        .bind(column(steps, |(_, c)| c.state.finished_at))
        .bind(column(steps, |(_, c)| c.state.clear_control))
        .bind(column(steps, |(_, c)| c.state.clear_input))
        .bind(column(steps, |(_, c)| c.events.last().map(|e| e.seq)))
        .bind(column(steps, |(_, c)| {
            c.events.last().map(|e| e.hash.as_str())
        }))
        .bind(column(steps, |(_, c)| c.at))
        .bind(column(steps, |(_, c)| c.release_runner))
        .bind(column(steps, |(_, c)| {
            c.expected_control.as_deref().unwrap_or("")
        }))
        .bind(column(steps, |(_, c)| c.lease.map(|l| l.job_id)))
        .bind(column(steps, |(_, c)| c.lease.map_or(0, |l| l.epoch)))
        .bind(column(&events, |(_, c, _)| c.execution_id))
        .bind(column(&events, |(_, _, e)| e.seq))
        .bind(column(&events, |(org, _, _)| *org))
        .bind(column(&events, |(_, _, e)| e.kind.as_str()))
        .bind(column(&events, |(_, _, e)| e.at))
        .bind(column(&events, |(_, _, e)| Json(&e.data.0)))
        .bind(column(&events, |(_, _, e)| e.prev_hash.as_str()))
        .bind(column(&events, |(_, _, e)| e.hash.as_str()))
        .bind(column(&snapshots, |s| s.0))
        .bind(column(&snapshots, |s| s.1))
        .bind(column(&snapshots, |s| Json(s.2)))
        .bind(column(&memories, |m| m.0))
        .bind(column(&memories, |m| m.1))
        .bind(column(&memories, |m| m.2))
        .bind(column(&memories, |m| m.3))
        .bind(column(&memories, |m| m.4))
        .bind(column(&memories, |m| m.5))
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, control, input)| (id, StepHead { control, input }))
        .collect())
}

impl crate::postgres::PgStore {
    /// A batch of plain steps as one statement, [`PG_MOVE_AND_APPEND`]: one
    /// round trip and one implicit transaction, where the general path
    /// takes six, and one prepared statement whatever the batch — the
    /// batches were found waiting on round trips, and a `VALUES` list per
    /// batch size was parsed and planned anew (docs/benchmarks.md). It runs
    /// on the commit pool, whose sessions keep its generic plan. `None` for
    /// the general path: a step that is not plain.
    async fn commit_plain(
        &self,
        steps: &[(Uuid, &StepCommit)],
    ) -> Result<Option<Vec<Result<StepHead>>>> {
        if !steps.iter().all(|(_, c)| is_plain(c)) {
            return Ok(None);
        }
        let mut moved = pg_move_and_append(&self.commits, steps).await?;
        if moved.len() == steps.len() {
            // Every head moved (the usual case): no look-up needed.
            return Ok(Some(
                steps
                    .iter()
                    .map(|(_, c)| {
                        moved.remove(&c.execution_id).ok_or(StoreError::Conflict {
                            constraint: "trace_head".into(),
                        })
                    })
                    .collect(),
            ));
        }
        let mut conn = self.pool.acquire().await?;
        Ok(Some(outcomes!(conn, steps, moved)?))
    }

    /// The general path's transaction, on the commit pool too: its heads
    /// and appends are the same statement as a plain batch's.
    async fn begin_steps(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.commits.begin().await?)
    }

    /// Moves the heads of a batch and appends what the steps whose head
    /// moved write, with [`PG_MOVE_AND_APPEND`] (in `tx`); the outcome of each
    /// step, in order.
    async fn move_and_append(
        &self,
        tx: &mut sqlx::PgConnection,
        steps: &[(Uuid, &StepCommit)],
    ) -> Result<Vec<Result<StepHead>>> {
        let moved = pg_move_and_append(&mut *tx, steps).await?;
        outcomes!(tx, steps, moved)
    }
}

super::for_both_backends!(ExecutionQueries {
    async fn execution_org(&self, id: Uuid) -> Result<Option<Uuid>> {
        Ok(sqlx::query_scalar("SELECT org_id FROM executions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn approval_org(&self, id: Uuid) -> Result<Option<Uuid>> {
        Ok(sqlx::query_scalar("SELECT org_id FROM approvals WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn create_execution(&self, tenant: Tenant, execution: &NewExecution, job: &NewJob) -> Result<ExecutionRow> {
        let mut tx = self.begin_write().await?;
        let row = bind_execution!(sqlx::query_as::<_, ExecutionRow>(INSERT_EXECUTION), tenant.org_id(), execution)
            .fetch_one(&mut *tx)
            .await?;
        super::jobs::bind_new_job!(sqlx::query(super::jobs::insert_job_sql!()), job, execution.at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn execution(&self, tenant: Tenant, id: Uuid) -> Result<ExecutionRow> {
        Ok(sqlx::query_as::<_, ExecutionRow>(concat!(
            "SELECT ", execution_columns!(), " FROM executions WHERE org_id = $1 AND id = $2"))
        .bind(tenant.org_id())
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn executions(&self, tenant: Tenant, f: &ExecutionFilter, page: Page) -> Result<(Vec<ExecutionRow>, u64)> {
        let rows = sqlx::query_as::<_, Counted<ExecutionRow>>(concat!(
            "SELECT ", execution_columns!(), ", COUNT(*) OVER () AS total FROM executions
             WHERE org_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR agent_id = $3)
               AND ($4 IS NULL OR task_id = $4) AND ($5 IS NULL OR created_at >= $5)
             ORDER BY created_at DESC, id DESC LIMIT $6 OFFSET $7"))
        .bind(tenant.org_id())
        .bind(f.status.as_deref())
        .bind(f.agent_id)
        .bind(f.task_id)
        .bind(f.since)
        .bind(i64::from(page.page_size))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        super::paged(rows, || sqlx::query_scalar(
            "SELECT COUNT(*) FROM executions
             WHERE org_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR agent_id = $3)
               AND ($4 IS NULL OR task_id = $4) AND ($5 IS NULL OR created_at >= $5)")
            .bind(tenant.org_id())
            .bind(f.status.as_deref())
            .bind(f.agent_id)
            .bind(f.task_id)
            .bind(f.since)
            .fetch_one(&self.pool)).await
    }

    async fn trace(&self, tenant: Tenant, id: Uuid) -> Result<Vec<TraceEventRow>> {
        self.trace_after(tenant, id, 0).await
    }

    async fn trace_after(&self, tenant: Tenant, id: Uuid, after: i64) -> Result<Vec<TraceEventRow>> {
        Ok(sqlx::query_as::<_, TraceEventRow>(
            "SELECT seq, type, at, data, prev_hash, hash FROM trace_events
             WHERE org_id = $1 AND execution_id = $2 AND seq > $3 ORDER BY seq")
        .bind(tenant.org_id())
        .bind(id)
        .bind(after)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn snapshots_through(&self, tenant: Tenant, id: Uuid, step: i64) -> Result<Vec<(i64, Value)>> {
        let rows: Vec<(i64, Json<Value>)> = sqlx::query_as(
            "SELECT c.step, c.state FROM execution_checkpoints c JOIN executions e ON e.id = c.execution_id
             WHERE e.org_id = $1 AND c.execution_id = $2 AND c.step <= $3 ORDER BY c.step")
        .bind(tenant.org_id())
        .bind(id)
        .bind(step)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(step, state)| (step, state.0)).collect())
    }

    async fn take_runner(&self, tenant: Tenant, id: Uuid, job: Uuid, now: OffsetDateTime) -> Result<Option<ExecutionRow>> {
        // In a write transaction: on SQLite a write outside one would wait
        // for a group commit in SQLite's sleeping busy handler.
        let mut tx = self.begin_write().await?;
        let row = sqlx::query_as::<_, ExecutionRow>(concat!(
            "UPDATE executions SET runner = $3
             WHERE org_id = $1 AND id = $2
               AND (runner IS NULL OR runner = $3
                    OR NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = executions.runner AND j.state = 'running' AND j.lease_until > $4))
             RETURNING ", execution_columns!()))
        .bind(tenant.org_id())
        .bind(id)
        .bind(job)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn release_runner(&self, tenant: Tenant, id: Uuid, job: Uuid) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE executions SET runner = NULL WHERE org_id = $1 AND id = $2 AND runner = $3")
            .bind(tenant.org_id())
            .bind(id)
            .bind(job)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn commit_step(&self, tenant: Tenant, c: &StepCommit) -> Result<StepHead> {
        let mut outcomes = self.commit_steps(&[(tenant, c)]).await?;
        outcomes.pop().unwrap_or(Err(StoreError::Conflict { constraint: "trace_head".into() }))
    }

    async fn commit_steps(&self, steps: &[(Tenant, &StepCommit)]) -> Result<Vec<Result<StepHead>>> {
        let steps: Vec<(Uuid, &StepCommit)> = steps.iter().map(|(t, c)| (t.org_id(), *c)).collect();
        // One step per execution: the heads' outcomes are told apart by id.
        let mut ids = std::collections::HashSet::with_capacity(steps.len());
        if !steps.iter().all(|(_, c)| ids.insert(c.execution_id)) {
            return Err(StoreError::Conflict { constraint: "one_step_per_execution".into() });
        }
        if let Some(outcomes) = self.commit_plain(&steps).await? {
            return Ok(outcomes);
        }
        let mut tx = self.begin_steps().await?;
        // Heads first: a refused step has written nothing when it is found
        // out, so the others go on in the same transaction.
        let outcomes = self.move_and_append(&mut tx, &steps).await?;
        let accepted = accepted(&steps, &outcomes);
        let mut out = Vec::new();
        for (org, c) in &accepted {
            apply_step!(out, tx, *org, c)?;
        }
        tx.commit().await?;
        self.events.send(out);
        Ok(outcomes)
    }

    async fn control_execution(&self, tenant: Tenant, id: Uuid, change: &ControlChange<'_>, at: OffsetDateTime) -> Result<Option<ExecutionRow>> {
        let mut tx = self.begin_write().await?;
        let current: Option<String> = sqlx::query_scalar("SELECT status FROM executions WHERE org_id = $1 AND id = $2")
            .bind(tenant.org_id())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(current) = current else { return Err(StoreError::NotFound) };
        let ControlChange { from, control, status, job } = *change;
        if !from.contains(&current.as_str()) {
            return Ok(None);
        }
        // Compare-and-set on the status read: a step committed in between
        // makes this a no-op rather than undoing it.
        let row = sqlx::query_as::<_, ExecutionRow>(concat!(
            "UPDATE executions SET control = $3, status = COALESCE($4, status), updated_at = $5
             WHERE org_id = $1 AND id = $2 AND status = $6
             RETURNING ", execution_columns!()))
        .bind(tenant.org_id())
        .bind(id)
        .bind(control)
        .bind(status)
        .bind(at)
        .bind(&current)
        .fetch_optional(&mut *tx)
        .await?;
        if let (Some(_), Some(job)) = (&row, job) {
            super::jobs::bind_new_job!(sqlx::query(super::jobs::insert_job_sql!()), job, at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(row)
    }

    async fn answer_input(&self, tenant: Tenant, id: Uuid, answer: &Value, job: &NewJob, at: OffsetDateTime) -> Result<Option<ExecutionRow>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query_as::<_, ExecutionRow>(concat!(
            "UPDATE executions SET input = $3, updated_at = $4
             WHERE org_id = $1 AND id = $2 AND status = 'waiting_input' AND input IS NULL
             RETURNING ", execution_columns!()))
        .bind(tenant.org_id())
        .bind(id)
        .bind(Json(answer))
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        if row.is_some() {
            super::jobs::bind_new_job!(sqlx::query(super::jobs::insert_job_sql!()), job, at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(row)
    }

    async fn approvals(&self, tenant: Tenant, status: Option<&str>, execution_id: Option<Uuid>, page: Page) -> Result<(Vec<ApprovalRow>, u64)> {
        let rows = sqlx::query_as::<_, Counted<ApprovalRow>>(concat!(
            "SELECT ", approval_columns!(), ", COUNT(*) OVER () AS total FROM approvals
             WHERE org_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR execution_id = $3)
             ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"))
        .bind(tenant.org_id())
        .bind(status)
        .bind(execution_id)
        .bind(i64::from(page.page_size))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        super::paged(rows, || sqlx::query_scalar(
            "SELECT COUNT(*) FROM approvals WHERE org_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR execution_id = $3)")
            .bind(tenant.org_id())
            .bind(status)
            .bind(execution_id)
            .fetch_one(&self.pool)).await
    }

    async fn approval(&self, tenant: Tenant, id: Uuid) -> Result<ApprovalRow> {
        Ok(sqlx::query_as::<_, ApprovalRow>(concat!(
            "SELECT ", approval_columns!(), " FROM approvals WHERE org_id = $1 AND id = $2"))
        .bind(tenant.org_id())
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn approval_for_call(&self, tenant: Tenant, execution_id: Uuid, call_id: &str) -> Result<Option<ApprovalRow>> {
        Ok(sqlx::query_as::<_, ApprovalRow>(concat!(
            "SELECT ", approval_columns!(), " FROM approvals WHERE org_id = $1 AND execution_id = $2 AND call_id = $3"))
        .bind(tenant.org_id())
        .bind(execution_id)
        .bind(call_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn decide_approval(&self, tenant: Tenant, id: Uuid, d: &Decision, job: &NewJob, at: OffsetDateTime) -> Result<Option<ApprovalRow>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query_as::<_, ApprovalRow>(concat!(
            "UPDATE approvals SET status = $3, decided_by = $4, decided_at = $5, reason = $6, edited_details = $7
             WHERE org_id = $1 AND id = $2 AND status = 'pending' AND expires_at > $5
             RETURNING ", approval_columns!()))
        .bind(tenant.org_id())
        .bind(id)
        .bind(&d.status)
        .bind(d.by)
        .bind(at)
        .bind(&d.reason)
        .bind(d.edited_details.as_ref().map(Json))
        .fetch_optional(&mut *tx)
        .await?;
        if row.is_some() {
            super::jobs::bind_new_job!(sqlx::query(super::jobs::insert_job_sql!()), job, at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(row)
    }

    async fn intent(&self, tenant: Tenant, execution_id: Uuid, call_id: &str) -> Result<Option<IntentRow>> {
        Ok(sqlx::query_as::<_, IntentRow>(
            "SELECT i.call_id, i.step, i.tool, i.arguments, i.idempotency_key, i.result
             FROM tool_intents i JOIN executions e ON e.id = i.execution_id
             WHERE e.org_id = $1 AND i.execution_id = $2 AND i.call_id = $3")
        .bind(tenant.org_id())
        .bind(execution_id)
        .bind(call_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn recall(&self, tenant: Tenant, agent_id: Uuid, query: &str, limit: u32) -> Result<Vec<(String, String)>> {
        let pattern = format!("%{}%", query.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        Ok(sqlx::query_as::<_, (String, String)>(
            "SELECT key, value FROM memories
             WHERE org_id = $1 AND agent_id = $2
               AND (LOWER(key) LIKE $3 ESCAPE '\\' OR LOWER(value) LIKE $3 ESCAPE '\\')
             ORDER BY updated_at DESC LIMIT $4")
        .bind(tenant.org_id())
        .bind(agent_id)
        .bind(pattern)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn agent_metrics(&self, tenant: Tenant, agent_id: Uuid, since: Option<OffsetDateTime>) -> Result<AgentMetrics> {
        Ok(sqlx::query_as::<_, AgentMetrics>(Self::AGENT_METRICS)
            .bind(tenant.org_id())
            .bind(agent_id)
            .bind(since)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn daily_usage(&self, tenant: Tenant, since: OffsetDateTime) -> Result<Vec<DailyUsage>> {
        Ok(sqlx::query_as::<_, DailyUsage>(Self::DAILY_USAGE)
            .bind(tenant.org_id())
            .bind(since)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn spend_since(&self, tenant: Tenant, agent_id: Option<Uuid>, since: OffsetDateTime) -> Result<(i64, i64)> {
        let (tokens, cost): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT CAST(SUM(tokens_in + tokens_out) AS BIGINT), CAST(SUM(cost_nanos) AS BIGINT) FROM executions
             WHERE org_id = $1 AND ($2 IS NULL OR agent_id = $2) AND created_at >= $3")
        .bind(tenant.org_id())
        .bind(agent_id)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        // The whole org's spend includes its chat with the orchestrator.
        let chat: Option<i64> = match agent_id {
            Some(_) => None,
            None => sqlx::query_scalar(
                "SELECT CAST(SUM(tokens_in + tokens_out) AS BIGINT) FROM chat_messages WHERE org_id = $1 AND created_at >= $2")
                .bind(tenant.org_id())
                .bind(since)
                .fetch_one(&self.pool)
                .await?,
        };
        Ok((tokens.unwrap_or(0) + chat.unwrap_or(0), cost.unwrap_or(0)))
    }
});
