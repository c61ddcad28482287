//! What the engine tells the real-time layer: after a step commits, its
//! trace events, the approvals it asked for and the execution's new state.
//! Built from the committed step itself, so nothing is announced that the
//! database does not hold.

use std::collections::HashMap;
use std::sync::Mutex;

use cadre_realtime::{Notice, Scope};
use cadre_store::{ExecutionRow, StepCommit, Store};
use cadre_types::Tenant;
use serde_json::json;
use uuid::Uuid;

/// Where an execution's messages belong: its task, agent and (when known)
/// project; org-wide for the ones a dashboard follows.
pub fn scope(ex: &ExecutionRow, project: Option<Uuid>, org_wide: bool) -> Scope {
    Scope {
        org: ex.org_id,
        org_wide,
        project,
        task: Some(ex.task_id),
        execution: Some(ex.id),
        agent: Some(ex.agent_id),
        session: None,
    }
}

/// `execution_update`: the execution's status and counters.
pub fn execution_update(ex: &ExecutionRow, project: Option<Uuid>) -> Notice {
    Notice::new(
        "execution_update",
        scope(ex, project, true),
        json!({
            "executionId": ex.id,
            "taskId": ex.task_id,
            "agentId": ex.agent_id,
            "status": ex.status,
            "steps": ex.steps,
            "tokensIn": ex.tokens_in,
            "tokensOut": ex.tokens_out,
            "costUsd": crate::spec::usd(ex.cost_nanos),
            "traceSeq": ex.trace_seq,
            "control": ex.control,
            "error": ex.error,
        }),
    )
}

/// The messages of a committed step, `ex` being the row as it left it.
pub(crate) fn step_notices(
    ex: &ExecutionRow,
    project: Option<Uuid>,
    commit: StepCommit,
) -> Vec<Notice> {
    let mut notices = Vec::with_capacity(commit.events.len() + commit.approvals.len() + 1);
    for event in commit.events {
        notices.push(Notice::new(
            "trace_event",
            scope(ex, project, false),
            json!({
                "executionId": ex.id,
                "seq": event.seq,
                "type": event.kind,
                "at": cadre_types::time::rfc3339(event.at),
                "data": event.data.0,
                "hash": event.hash,
            }),
        ));
    }
    for approval in commit.approvals {
        notices.push(Notice::new(
            "approval_requested",
            scope(ex, project, true),
            json!({
                "approvalId": approval.id,
                "executionId": ex.id,
                "taskId": ex.task_id,
                "agentId": approval.agent_id,
                "action": approval.action,
                "description": approval.description,
                "details": approval.details,
                "riskLevel": approval.risk_level,
                "expiresAt": cadre_types::time::rfc3339(approval.expires_at),
            }),
        ));
    }
    for approval in commit.expired_approvals {
        notices.push(Notice::new(
            "approval_resolved",
            scope(ex, project, true),
            json!({"approvalId": approval, "executionId": ex.id, "status": "expired"}),
        ));
        notices.push(notification(
            ex,
            project,
            "warning",
            "An approval expired",
            "Nobody decided in time; the agent was told the action was not approved.",
        ));
    }
    if let Some((_, error)) = &commit.task_failed {
        notices.push(notification(
            ex,
            project,
            "error",
            "An execution failed",
            error,
        ));
    }
    notices.push(execution_update(ex, project));
    notices
}

/// `notification`: something a person should look at (SPEC §6), on the
/// org's channel and the execution's.
fn notification(
    ex: &ExecutionRow,
    project: Option<Uuid>,
    level: &str,
    title: &str,
    message: &str,
) -> Notice {
    Notice::new(
        "notification",
        scope(ex, project, true),
        json!({
            "level": level,
            "title": title,
            "message": message,
            "executionId": ex.id,
            "taskId": ex.task_id,
            "agentId": ex.agent_id,
        }),
    )
}

/// Tasks' projects, remembered (a task never moves to another project), so
/// a step's messages reach the project's subscribers without a query per
/// step.
#[derive(Debug, Default)]
pub(crate) struct Projects(Mutex<HashMap<Uuid, Uuid>>);

/// Forgotten all at once past this many tasks: a bound, not a policy.
const REMEMBERED: usize = 50_000;

impl Projects {
    pub(crate) async fn of(&self, store: &Store, tenant: Tenant, task: Uuid) -> Option<Uuid> {
        if let Some(project) = self.map().get(&task) {
            return Some(*project);
        }
        let project = store.tasks().task_any(tenant, task).await.ok()?.project_id;
        let mut map = self.map();
        if map.len() >= REMEMBERED {
            map.clear();
        }
        map.insert(task, project);
        Some(project)
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Uuid>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
