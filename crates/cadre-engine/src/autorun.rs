//! Auto-run: the handler of the store's ready-check job. A task whose
//! dependencies are all done, that has an agent assignee and sits in a
//! project with auto-run on, gets one execution, queued exactly once (the
//! claim and the execution are one transaction).

use cadre_store::{NewExecution, Store, StoreError};
use cadre_types::Tenant;
use cadre_worker::{JobContext, JobError};
use serde_json::Value;
use uuid::Uuid;

use crate::{advance_job, spec, trace};

/// Handles a [`cadre_store::READY_JOB`]: `{"taskIds": [...]}` checks those
/// tasks, `{"projectId"}` every task of the project that could run.
pub async fn run_ready(store: &Store, ctx: JobContext) -> Result<(), JobError> {
    let Some(org) = ctx.job.org_id else {
        return Err(JobError::Fatal("a ready check needs an org".into()));
    };
    #[expect(
        clippy::disallowed_methods,
        reason = "the job was queued by a change inside this org"
    )]
    let tenant = Tenant::new(org);
    let retry = |e: StoreError| JobError::Retry(e.to_string());
    let payload = &ctx.job.payload.0;
    let mut tasks: Vec<Uuid> = payload
        .get("taskIds")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().and_then(|s| Uuid::parse_str(s).ok()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(project) = payload
        .get("projectId")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
    {
        tasks.extend(
            store
                .graph()
                .auto_run_candidates(tenant, project)
                .await
                .map_err(retry)?,
        );
    }
    let mut started = false;
    for task in tasks {
        match start_if_ready(store, tenant, task).await {
            Ok(Some(execution)) => {
                started = true;
                tracing::info!(%task, %execution, "auto-run: task is ready, execution queued");
            }
            Ok(None) => {}
            // Deleted since: nothing to run.
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(retry(e)),
        }
    }
    if started {
        store.jobs_added(crate::QUEUE).await;
    }
    Ok(())
}

/// Queues the task's auto-run execution if it is ready and has none yet.
async fn start_if_ready(
    store: &Store,
    tenant: Tenant,
    task: Uuid,
) -> Result<Option<Uuid>, StoreError> {
    let readiness = store.graph().readiness(tenant, task).await?;
    if !readiness.should_run() {
        return Ok(None);
    }
    let Some(agent_id) = readiness.task.assignee_id else {
        return Ok(None);
    };
    let agent = match store.agents().agent(tenant, agent_id).await {
        Ok(agent) if agent.status != "disabled" => agent,
        Ok(_) | Err(StoreError::NotFound) => {
            tracing::warn!(%task, agent = %agent_id, "auto-run: the assignee is disabled or deleted; the task waits for a person");
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let id = cadre_types::new_id();
    let execution = NewExecution {
        id,
        agent_id: agent.id,
        agent_version: agent.version,
        task_id: task,
        parent_id: None,
        trigger_kind: "auto_run".into(),
        triggered_by: None,
        checkpoint: crate::checkpoint::Checkpoint::default().to_json(),
        forked_from: None,
        forked_at_step: None,
        trace_hash: trace::GENESIS.into(),
        at: cadre_types::time::now(),
    };
    let job = advance_job(
        id,
        tenant.org_id(),
        "start",
        spec::execution_timeout(&agent.limits.0),
    );
    Ok(store
        .graph()
        .claim_auto_run(tenant, task, &execution, &job)
        .await?
        .then_some(id))
}
