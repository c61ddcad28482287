//! The step loop. One job (`execution.advance.v1`) advances one execution
//! step by step until it finishes or has to wait; each step is committed
//! with its checkpoint and trace events in one transaction fenced by the
//! job's lease, so a crash at any instant loses at most the step in flight,
//! and a tool with outside effects has its intent committed before it runs.

use std::sync::Arc;
use std::time::Duration;

use cadre_identity::secrets::Secrets;
use cadre_llm::{Message, ToolCall};
use cadre_store::{
    AgentSpec, ExecutionRow, ExecutionState, Lease, NewJob, StepCommit, Store, StoreError,
};
use cadre_types::Tenant;
use cadre_worker::{JobContext, JobError};
use serde_json::{Value, json};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::checkpoint::{Checkpoint, Wait};
use crate::egress::Egress;
use crate::models::Llm;
use crate::spec::{self, Limits};
use crate::trace::Chain;

/// The job kind that advances an execution.
pub const ADVANCE: &str = "execution.advance.v1";
/// The queue executions run on.
pub const QUEUE: &str = cadre_store::DEFAULT_QUEUE;

/// Statuses of an execution that waits for something outside the engine.
const PARKED: [&str; 3] = ["waiting_approval", "waiting_input", "paused"];

/// Statuses an execution never leaves.
pub const TERMINAL: [&str; 3] = ["completed", "failed", "cancelled"];

/// Every status an execution can have, in the order of its life.
pub const STATUSES: [&str; 8] = [
    "queued",
    "running",
    "waiting_approval",
    "waiting_input",
    "paused",
    "completed",
    "failed",
    "cancelled",
];

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long an approval stays open (SPEC default 5 minutes).
    pub approval_ttl: Duration,
    /// Model tokens an org may use per UTC day, by plan.
    pub tokens_per_day: TokenQuotas,
    /// Ask models for streamed answers (the time to the first event is
    /// recorded); off for proxies that break server-sent events.
    pub stream_model_calls: bool,
}

/// Daily token quotas by plan (`None`: no quota).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenQuotas {
    pub free: Option<u64>,
    pub pro: Option<u64>,
    pub enterprise: Option<u64>,
}

impl TokenQuotas {
    /// The quota of a plan by its name (`free`, `pro`, `enterprise`).
    pub fn for_plan(&self, plan: &str) -> Option<u64> {
        match plan {
            "free" => self.free,
            "pro" => self.pro,
            "enterprise" => self.enterprise,
            _ => None,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            approval_ttl: Duration::from_secs(300),
            tokens_per_day: TokenQuotas::default(),
            stream_model_calls: true,
        }
    }
}

/// The agent engine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    store: Store,
    commits: crate::group_commit::GroupCommit,
    pub(crate) secrets: Secrets,
    pub(crate) llm: Llm,
    pub(crate) egress: Egress,
    config: EngineConfig,
    realtime: cadre_realtime::Realtime,
    projects: crate::live::Projects,
}

/// Why a step could not be taken (the job decides what to do).
#[derive(Debug, thiserror::Error)]
pub(crate) enum StepError {
    /// The job's lease was taken over: another worker owns the job now.
    #[error("superseded")]
    Superseded,
    /// The execution changed under the step (a pause or cancel came in as
    /// it parked): take the step again from the new state.
    #[error("the execution changed during the step")]
    Moved,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::StaleLease => StepError::Superseded,
            StoreError::Conflict { ref constraint } if constraint == "trace_head" => {
                StepError::Moved
            }
            other => StepError::Store(other),
        }
    }
}

/// Whether to take another step.
pub(crate) enum Next {
    Continue,
    Stop,
}

/// The job that advances `execution` (`reason` keeps wake-ups for
/// different causes from being deduplicated into one another).
pub fn advance_job(execution: Uuid, org: Uuid, reason: &str, timeout: Duration) -> NewJob {
    NewJob {
        org_id: Some(org),
        unique_key: Some(format!("exec:{execution}:{reason}")),
        max_attempts: 10,
        // Most failures here are a busy database: try again soon.
        backoff_base: Duration::from_millis(250),
        timeout: timeout + Duration::from_secs(60),
        ..NewJob::new(QUEUE, ADVANCE, json!({ "executionId": execution }))
    }
}

/// The execution as the last step of a job run committed it, so the next
/// step starts from memory instead of reading the row back, and whether
/// that step gave the execution up. Shared by the run and its steps (a step
/// that commits twice lands twice).
#[derive(Debug, Clone, Default)]
pub(crate) struct Landing(Arc<std::sync::Mutex<Landed>>);

#[derive(Debug, Default)]
struct Landed {
    at: Option<(ExecutionRow, Checkpoint)>,
    released: bool,
}

impl Landing {
    fn slot(&self) -> std::sync::MutexGuard<'_, Landed> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The execution as the last commit (or the run's read) left it.
    pub(crate) fn take(&self) -> Option<(ExecutionRow, Checkpoint)> {
        self.slot().at.take()
    }

    /// The execution as just read from the database.
    fn read(&self, ex: ExecutionRow, checkpoint: Checkpoint) {
        self.slot().at = Some((ex, checkpoint));
    }

    fn set(&self, ex: ExecutionRow, checkpoint: Checkpoint, released: bool) {
        let mut slot = self.slot();
        slot.at = Some((ex, checkpoint));
        slot.released |= released;
    }

    fn released(&self) -> bool {
        self.slot().released
    }
}

/// One step's writes, built up as the step goes.
#[derive(Clone)]
pub(crate) struct Step {
    pub(crate) commit: StepCommit,
    pub(crate) chain: Chain,
    pub(crate) checkpoint: Checkpoint,
    /// Keep the state after this step (numbered so) for fork.
    pub(crate) snapshot_step: Option<i64>,
    /// The row the step started from (its checkpoint is in `checkpoint`).
    base: ExecutionRow,
    landing: Landing,
}

impl Step {
    pub(crate) fn new(
        ex: &ExecutionRow,
        checkpoint: Checkpoint,
        lease: Option<Lease>,
        landing: &Landing,
    ) -> Self {
        let at = cadre_types::time::now();
        Self {
            commit: StepCommit {
                execution_id: ex.id,
                lease,
                expected_seq: ex.trace_seq,
                expected_control: ex.control.clone(),
                release_runner: false,
                state: ExecutionState {
                    status: ex.status.clone(),
                    steps: ex.steps,
                    tokens_in: ex.tokens_in,
                    tokens_out: ex.tokens_out,
                    cost_nanos: ex.cost_nanos,
                    models: ex.models.0.clone(),
                    checkpoint: Value::Null,
                    error: ex.error.clone(),
                    started_at: ex.started_at,
                    finished_at: ex.finished_at,
                    clear_control: false,
                    clear_input: false,
                },
                events: Vec::new(),
                snapshot: None,
                outputs: Vec::new(),
                tasks: Vec::new(),
                executions: Vec::new(),
                approvals: Vec::new(),
                expired_approvals: Vec::new(),
                memories: Vec::new(),
                intent_started: None,
                intent_finished: None,
                task_done: None,
                task_failed: None,
                agent_id: ex.agent_id,
                cancel_children: Vec::new(),
                jobs: Vec::new(),
                at,
            },
            chain: Chain::from_head(ex.trace_seq, &ex.trace_hash),
            checkpoint,
            snapshot_step: None,
            base: ex.clone(),
            landing: landing.clone(),
        }
    }

    /// Where this step's commit leaves the execution.
    pub(crate) fn landing(&self) -> Landing {
        self.landing.clone()
    }

    pub(crate) fn event(&mut self, kind: &str, data: Value) {
        self.chain.push(kind, self.commit.at, data);
    }

    pub(crate) fn status(&mut self, status: &str) {
        status.clone_into(&mut self.commit.state.status);
    }

    /// Answers the tool call `call_id` in the conversation, delimited as
    /// data: the model is told never to take instructions from it.
    pub(crate) fn tool_result(&mut self, call: &ToolCall, result: &str) {
        self.checkpoint.messages.push(Message::tool_result(
            &call.id,
            format!(
                "<tool_result tool=\"{}\">\n{result}\n</tool_result>",
                call.name
            ),
        ));
        self.checkpoint.pending.retain(|c| c.id != call.id);
    }

    fn cancel_children(&mut self, ex: &ExecutionRow, children: &[Uuid]) {
        for &child in children {
            self.commit.cancel_children.push(child);
            self.commit.jobs.push(advance_job(
                child,
                ex.org_id,
                &format!("cancel:{}", ex.id),
                Duration::from_secs(60),
            ));
        }
    }

    pub(crate) fn finish(&mut self, ex: &ExecutionRow, status: &str, reason: Option<String>) {
        if let Some(reason) = &reason {
            self.event("error", json!({ "message": reason }));
        }
        self.event(
            "execution_finished",
            json!({ "status": status, "reason": reason, "steps": self.commit.state.steps }),
        );
        self.status(status);
        self.commit.state.error = reason;
        self.commit.state.finished_at = Some(self.commit.at);
        match self.checkpoint.waiting.take() {
            // A decision can no longer matter: the approval leaves the inbox.
            Some(Wait::Approval { approval_id, .. }) => {
                self.commit.expired_approvals.push(approval_id);
            }
            // Delegated work stops with the work it was for.
            Some(Wait::Child { execution_id, .. }) => self.cancel_children(ex, &[execution_id]),
            Some(Wait::Children { execution_ids, .. }) => self.cancel_children(ex, &execution_ids),
            _ => {}
        }
        if status == "completed" {
            self.commit.task_done = Some(ex.task_id);
        } else if status == "failed" {
            let error = self
                .commit
                .state
                .error
                .clone()
                .unwrap_or_else(|| "failed".into());
            self.commit.task_failed = Some((ex.task_id, error));
        }
        if let Some(parent) = ex.parent_id {
            self.commit.jobs.push(advance_job(
                parent,
                ex.org_id,
                &format!("child:{}", ex.id),
                Duration::from_secs(3600),
            ));
        }
    }
}

impl Engine {
    pub fn new(
        store: Store,
        secrets: Secrets,
        llm: Llm,
        egress: Egress,
        config: EngineConfig,
        realtime: cadre_realtime::Realtime,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                commits: crate::group_commit::GroupCommit::default(),
                secrets,
                llm,
                egress,
                config,
                realtime,
                projects: crate::live::Projects::default(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The job handler: advances the execution named in the payload.
    pub async fn run(&self, ctx: JobContext) -> Result<(), JobError> {
        let Some(id) = ctx
            .job
            .payload
            .0
            .get("executionId")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            return Err(JobError::Fatal("payload has no executionId".into()));
        };
        let org = match ctx.job.org_id {
            Some(org) => Some(org),
            None => self
                .store()
                .executions()
                .execution_org(id)
                .await
                .map_err(|e| JobError::Retry(e.to_string()))?,
        };
        let Some(org) = org else {
            return Err(JobError::Fatal(format!("execution {id} does not exist")));
        };
        #[expect(
            clippy::disallowed_methods,
            reason = "the engine acts for the org that owns the execution it was handed"
        )]
        let tenant = Tenant::new(org);
        let lease = Some(ctx.job.lease());
        let job = ctx.job.id;
        let store = self.store();
        let fail = |e: StoreError| JobError::Retry(e.to_string());
        if let Some(Value::String(approval)) = ctx.job.payload.0.get("ifWaitingFor") {
            // An approval's expiry timer: only if the execution still waits on it.
            let ex = store
                .executions()
                .execution(tenant, id)
                .await
                .map_err(fail)?;
            let waiting = Checkpoint::from_json(&ex.checkpoint.0).waiting;
            if !matches!(waiting, Some(Wait::Approval { approval_id, .. }) if approval_id.to_string() == *approval)
            {
                return Ok(());
            }
        }
        let Some(mut ex) = store
            .executions()
            .take_runner(tenant, id, job, cadre_types::time::now())
            .await
            .map_err(fail)?
        else {
            // Another job is advancing it: a running one sees pauses and
            // cancels at its next step; one that is just parking gives the
            // execution up in a moment, so try again then.
            let ex = match store.executions().execution(tenant, id).await {
                Err(StoreError::NotFound) => {
                    return Err(JobError::Fatal(format!("execution {id} does not exist")));
                }
                other => other.map_err(fail)?,
            };
            let waiting = Checkpoint::from_json(&ex.checkpoint.0).waiting.is_some();
            return if waiting || PARKED.contains(&ex.status.as_str()) {
                Err(JobError::Retry(
                    "another job is finishing a step of this execution".into(),
                ))
            } else {
                Ok(())
            };
        };
        let mut moved = 0;
        let mut cache = RunCache::default();
        let agent = store
            .agents()
            .agent_version(tenant, ex.agent_id, ex.agent_version)
            .await
            .map_err(fail)?
            .snapshot
            .0;
        // One span per job run (GenAI semantic conventions); model and tool
        // steps are its children.
        let span = tracing::info_span!(
            "invoke_agent",
            otel.name = %format!("invoke_agent {}", agent.name),
            gen_ai.operation.name = "invoke_agent",
            gen_ai.agent.id = %ex.agent_id,
            gen_ai.agent.name = %agent.name,
            cadre.execution.id = %id,
        );
        cache.agent = Some(agent);
        let checkpoint = Checkpoint::from_json(&std::mem::take(&mut ex.checkpoint.0));
        cache.landing.read(ex, checkpoint);
        let outcome = async {
            loop {
                if ctx.cancel.is_cancelled() {
                    break Err(JobError::Retry("the worker is stopping".into()));
                }
                match self.step(tenant, id, lease, &mut cache).await {
                    Ok(Next::Continue) => {}
                    Ok(Next::Stop) | Err(StepError::Superseded) => break Ok(()),
                    Err(StepError::Moved) if moved < 5 => moved += 1,
                    Err(StepError::Moved) => {
                        break Err(JobError::Retry(
                            "the execution kept changing under its steps".into(),
                        ));
                    }
                    Err(StepError::Store(e)) => break Err(fail(e)),
                }
            }
        }
        .instrument(span)
        .await;
        if cache.landing.released() {
            // The last step gave the execution up as it committed.
        } else if let Err(e) = store.executions().release_runner(tenant, id, job).await {
            tracing::warn!(execution_id = %id, error = %e, "could not give up the execution; it frees itself when this job ends");
        }
        outcome
    }

    /// Takes one step of the execution (or records why it cannot).
    async fn step(
        &self,
        tenant: Tenant,
        id: Uuid,
        lease: Option<Lease>,
        cache: &mut RunCache,
    ) -> Result<Next, StepError> {
        let store = self.store();
        let (ex, checkpoint) = match cache.landing.take() {
            // A pause or cancel asked for while a step ran comes back with
            // its commit, so the next step honours it: the step in flight
            // is the most that runs after the request (SPEC §4).
            Some(landed) => landed,
            None => {
                let mut ex = store.executions().execution(tenant, id).await?;
                let checkpoint = Checkpoint::from_json(&std::mem::take(&mut ex.checkpoint.0));
                (ex, checkpoint)
            }
        };
        if TERMINAL.contains(&ex.status.as_str()) {
            return Ok(Next::Stop);
        }
        let agent: AgentSpec = match &cache.agent {
            Some(agent) => agent.clone(),
            None => {
                let agent = store
                    .agents()
                    .agent_version(tenant, ex.agent_id, ex.agent_version)
                    .await?
                    .snapshot
                    .0;
                cache.agent = Some(agent.clone());
                agent
            }
        };
        let mut step = Step::new(&ex, checkpoint, lease, &cache.landing);

        match ex.control.as_deref() {
            Some("cancel") => {
                step.commit.state.clear_control = true;
                step.finish(&ex, "cancelled", Some("cancelled by a user".into()));
                return self.commit(tenant, step, Next::Stop).await;
            }
            Some("pause") => {
                step.commit.state.clear_control = true;
                step.status("paused");
                step.event("decision", json!({ "decision": "paused" }));
                return self.commit(tenant, step, Next::Stop).await;
            }
            _ => {}
        }
        if ex.status == "paused" {
            return Ok(Next::Stop);
        }
        if ex.status == "queued" {
            if ex.trace_seq == 0 {
                step.event(
                    "execution_started",
                    json!({ "agentId": ex.agent_id, "agentVersion": ex.agent_version, "taskId": ex.task_id,
                            "trigger": ex.trigger_kind, "forkedFrom": ex.forked_from, "forkedAtStep": ex.forked_at_step }),
                );
                step.commit.state.started_at = Some(step.commit.at);
            } else {
                step.event("decision", json!({ "decision": "resumed" }));
            }
            step.status("running");
        }

        // A parked execution first takes in what it waited for.
        let mut approved: Option<ToolCall> = None;
        if let Some(wait) = step.checkpoint.waiting.clone() {
            match self.resolve_wait(tenant, &ex, &mut step, &wait).await? {
                Resolved::StillWaiting => {
                    // Resumed (from a pause) but still waiting: back to the
                    // waiting status, where decisions and answers are taken.
                    let parked = match wait {
                        Wait::Approval { .. } => "waiting_approval",
                        Wait::Input { .. } => "waiting_input",
                        Wait::Child { .. } | Wait::Children { .. } => "running",
                    };
                    if ex.status == parked && step.chain.events.is_empty() {
                        return Ok(Next::Stop);
                    }
                    step.status(parked);
                    return self.commit(tenant, step, Next::Stop).await;
                }
                Resolved::Done => step.checkpoint.waiting = None,
                Resolved::Approved(call) => {
                    step.checkpoint.waiting = None;
                    approved = Some(call);
                }
            }
            step.status("running");
        }

        let limits = spec::limits(&agent.limits).unwrap_or_default();
        let ctx = Ctx {
            tenant,
            ex: &ex,
            agent: &agent,
            limits: &limits,
        };
        if let Some(call) = step.checkpoint.pending.first().cloned() {
            return match approved.filter(|a| a.id == call.id) {
                Some(call) => self.run_tool(&ctx, step, call).await,
                None => self.tool_step(&ctx, step, call).await,
            };
        }
        self.model_step(&ctx, step, cache).await
    }

    pub(crate) async fn commit(
        &self,
        tenant: Tenant,
        mut step: Step,
        next: Next,
    ) -> Result<Next, StepError> {
        if let Some(number) = step.snapshot_step {
            step.commit.snapshot = Some((number, step.checkpoint.snapshot()));
        }
        step.commit.state.checkpoint = step.checkpoint.to_json();
        step.commit.events = std::mem::take(&mut step.chain.events);
        step.commit.at = step.commit.at.max(cadre_types::time::now());
        let added_jobs = !step.commit.jobs.is_empty();
        // A step that parks or ends the execution gives it up as it commits.
        let released = matches!(next, Next::Stop);
        step.commit.release_runner = released;
        // The row as this commit leaves it, but for what others changed.
        let (mut row, s) = (step.base, &step.commit.state);
        row.status.clone_from(&s.status);
        (row.steps, row.tokens_in, row.tokens_out) = (s.steps, s.tokens_in, s.tokens_out);
        row.cost_nanos = s.cost_nanos;
        row.models.0.clone_from(&s.models);
        row.error.clone_from(&s.error);
        (row.started_at, row.finished_at) = (s.started_at, s.finished_at);
        row.updated_at = step.commit.at;
        if let Some(head) = step.commit.events.last() {
            row.trace_seq = head.seq;
            row.trace_hash.clone_from(&head.hash);
        }
        let (head, commit) = self
            .inner
            .commits
            .commit(self.store(), tenant, step.commit)
            .await?;
        (row.control, row.input) = (head.control, head.input);
        let project = self
            .inner
            .projects
            .of(self.store(), tenant, row.task_id)
            .await;
        for notice in crate::live::step_notices(&row, project, commit) {
            self.inner.realtime.publish(notice);
        }
        step.landing.set(row, step.checkpoint, released);
        if added_jobs {
            self.store().jobs_added(QUEUE).await;
        }
        Ok(next)
    }
}

/// What one job run reads once and reuses across its steps: the agent
/// version (immutable), the task's brief and the model's endpoints (a change
/// to either applies from the execution's next job).
#[derive(Default)]
pub(crate) struct RunCache {
    pub landing: Landing,
    pub agent: Option<AgentSpec>,
    pub brief: Option<(String, String)>,
    pub chain: Option<Vec<cadre_llm::Endpoint>>,
    pub plan: Option<String>,
    /// How many messages the last model request of this run had (its
    /// `llm_call` event holds them; the next one records only what follows).
    pub prompted: Option<usize>,
}

/// What every part of a step reads.
pub(crate) struct Ctx<'a> {
    pub tenant: Tenant,
    pub ex: &'a ExecutionRow,
    pub agent: &'a AgentSpec,
    pub limits: &'a Limits,
}

enum Resolved {
    StillWaiting,
    Done,
    /// Approved: run this call (with the approver's edits, if any).
    Approved(ToolCall),
}

impl Engine {
    async fn resolve_wait(
        &self,
        tenant: Tenant,
        ex: &ExecutionRow,
        step: &mut Step,
        wait: &Wait,
    ) -> Result<Resolved, StepError> {
        let store = self.store();
        let call = |call_id: &str, step: &Step| {
            step.checkpoint
                .pending
                .iter()
                .find(|c| c.id == call_id)
                .cloned()
        };
        match wait {
            Wait::Approval {
                call_id,
                approval_id,
            } => {
                let Some(call) = call(call_id, step) else {
                    return Ok(Resolved::Done);
                };
                let approval = store.executions().approval(tenant, *approval_id).await?;
                match approval.status.as_str() {
                    "pending" if approval.expires_at > step.commit.at => Ok(Resolved::StillWaiting),
                    "pending" | "expired" => {
                        step.commit.expired_approvals.push(approval.id);
                        step.event(
                            "approval_resolved",
                            json!({ "approvalId": approval.id, "status": "expired" }),
                        );
                        step.tool_result(
                            &call,
                            "The approval request expired before anyone decided; the action was not taken.",
                        );
                        Ok(Resolved::Done)
                    }
                    "approved" => {
                        let edited = approval.edited_details.as_ref().map(|d| d.0.clone());
                        step.event(
                            "approval_resolved",
                            json!({ "approvalId": approval.id, "status": "approved", "by": approval.decided_by,
                                    "editedArguments": edited }),
                        );
                        let mut call = call;
                        if let Some(args) = edited {
                            call.arguments = args;
                        }
                        // Run the approved call now, with the approved arguments.
                        if let Some(pending) =
                            step.checkpoint.pending.iter_mut().find(|c| c.id == call.id)
                        {
                            pending.arguments = call.arguments.clone();
                        }
                        Ok(Resolved::Approved(call))
                    }
                    _ => {
                        let reason = approval
                            .reason
                            .clone()
                            .unwrap_or_else(|| "no reason given".into());
                        step.event(
                            "approval_resolved",
                            json!({ "approvalId": approval.id, "status": "rejected", "by": approval.decided_by,
                                    "reason": reason }),
                        );
                        step.tool_result(&call, &format!("A human rejected this action: {reason}"));
                        Ok(Resolved::Done)
                    }
                }
            }
            Wait::Input { call_id, .. } => {
                let Some(answer) = ex.input.as_ref().map(|a| a.0.clone()) else {
                    return Ok(Resolved::StillWaiting);
                };
                step.commit.state.clear_input = true;
                step.event(
                    "input_received",
                    json!({ "callId": call_id, "answer": answer }),
                );
                if let Some(call) = call(call_id, step) {
                    let text = answer
                        .get("answer")
                        .and_then(Value::as_str)
                        .map_or_else(|| answer.to_string(), str::to_owned);
                    step.tool_result(&call, &format!("The human answered: {text}"));
                }
                Ok(Resolved::Done)
            }
            Wait::Child {
                call_id,
                execution_id,
            } => {
                let child = store.executions().execution(tenant, *execution_id).await?;
                if !TERMINAL.contains(&child.status.as_str()) {
                    return Ok(Resolved::StillWaiting);
                }
                let outputs = store.tasks().task_outputs(tenant, child.task_id).await?;
                let outputs: Vec<Value> = outputs
                    .iter()
                    .map(|o| json!({ "label": o.label, "type": o.kind, "content": o.content.0 }))
                    .collect();
                let result = json!({ "executionId": child.id, "status": child.status, "error": child.error,
                                     "outputs": outputs });
                step.event("handoff", json!({ "direction": "returned", "childExecutionId": child.id, "status": child.status }));
                if let Some(call) = call(call_id, step) {
                    step.tool_result(&call, &result.to_string());
                }
                Ok(Resolved::Done)
            }
            Wait::Children {
                call_id,
                execution_ids,
                min_successes,
            } => {
                let mut children = Vec::with_capacity(execution_ids.len());
                for id in execution_ids {
                    let child = store.executions().execution(tenant, *id).await?;
                    if !TERMINAL.contains(&child.status.as_str()) {
                        return Ok(Resolved::StillWaiting);
                    }
                    children.push(child);
                }
                let mut results = Vec::with_capacity(children.len());
                for child in &children {
                    let outputs = store.tasks().task_outputs(tenant, child.task_id).await?;
                    results.push(json!({ "executionId": child.id, "agentId": child.agent_id, "status": child.status,
                                         "error": child.error,
                                         "outputs": outputs.iter().map(|o| json!({ "label": o.label, "type": o.kind, "content": o.content.0 })).collect::<Vec<_>>() }));
                    step.event("handoff", json!({ "direction": "returned", "childExecutionId": child.id, "status": child.status }));
                }
                let succeeded = children.iter().filter(|c| c.status == "completed").count();
                let result = json!({ "succeeded": succeeded, "required": min_successes,
                                     "ok": succeeded >= *min_successes, "children": results });
                if let Some(call) = call(call_id, step) {
                    step.tool_result(&call, &result.to_string());
                }
                Ok(Resolved::Done)
            }
        }
    }
}
