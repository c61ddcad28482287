//! Dependencies between tasks (an acyclic graph within an org, across
//! projects), the graph around a task, and readiness for auto-run.

use cadre_types::Tenant;
use serde_json::json;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::events::Actor;
use super::executions::NewExecution;
use super::jobs::NewJob;
use super::tasks::{TaskRow, is_final, task_columns, task_columns_of_t};
use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DependencyRow {
    pub id: Uuid,
    /// The task that consumes the upstream task's outputs.
    pub task_id: Uuid,
    /// The upstream task.
    pub depends_on: Uuid,
    pub created_at: OffsetDateTime,
}

/// The tasks upstream and downstream of a task (transitively), and the
/// edges between them.
#[derive(Debug, Clone)]
pub struct Graph {
    pub nodes: Vec<TaskRow>,
    pub edges: Vec<DependencyRow>,
}

/// Why a task is or is not ready to run by itself.
#[derive(Debug, Clone)]
pub struct Readiness {
    pub task: TaskRow,
    /// The task's project runs ready tasks by itself.
    pub auto_run: bool,
    /// The task is in neither its project's last state nor `cancelled`.
    pub open: bool,
    /// Every live task it depends on.
    pub depends_on: Vec<Uuid>,
    /// Those not yet in their project's last state.
    pub blocked_by: Vec<Uuid>,
}

impl Readiness {
    /// An auto-run execution should be queued now.
    pub fn should_run(&self) -> bool {
        self.auto_run
            && self.open
            && self.blocked_by.is_empty()
            && self.task.assignee_type.as_deref() == Some("agent")
            && self.task.auto_run_execution_id.is_none()
    }
}

#[async_trait::async_trait]
pub trait GraphQueries: Send + Sync {
    /// Makes `task` depend on `depends_on` (both live tasks of the org);
    /// [`StoreError::Cycle`] with the path when the edge would close a
    /// cycle, a `dependency` conflict when it exists already.
    async fn add_dependency(
        &self,
        tenant: Tenant,
        task: Uuid,
        depends_on: Uuid,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<DependencyRow>;
    /// Removes an edge of `task` (as its downstream end).
    async fn delete_dependency(
        &self,
        tenant: Tenant,
        task: Uuid,
        dependency: Uuid,
        actor: &Actor,
        at: OffsetDateTime,
    ) -> Result<()>;
    /// The edges into `task` (what it depends on).
    async fn upstream(&self, tenant: Tenant, task: Uuid) -> Result<Vec<DependencyRow>>;
    async fn graph(&self, tenant: Tenant, task: Uuid) -> Result<Graph>;
    /// The dependency graph of a project: its live tasks (oldest first, at
    /// most `limit`), the edges that touch them, and the tasks of other
    /// projects at the far end of those edges.
    async fn project_graph(&self, tenant: Tenant, project: Uuid, limit: u32) -> Result<Graph>;
    async fn readiness(&self, tenant: Tenant, task: Uuid) -> Result<Readiness>;
    /// Live tasks of a project with an agent assignee and no auto-run yet.
    async fn auto_run_candidates(&self, tenant: Tenant, project: Uuid) -> Result<Vec<Uuid>>;
    /// Queues `execution` (with `job`) as the task's auto-run, once: `false`
    /// when the task has had one already.
    async fn claim_auto_run(
        &self,
        tenant: Tenant,
        task: Uuid,
        execution: &NewExecution,
        job: &NewJob,
    ) -> Result<bool>;
}

/// Applies the backend's planner settings for graph walks (`GRAPH_SETTINGS`)
/// to the transaction `$tx`.
macro_rules! plan_walks {
    ($tx:ident) => {
        for setting in Self::GRAPH_SETTINGS {
            sqlx::query(*setting).execute(&mut *$tx).await?;
        }
    };
}

macro_rules! dependency_columns {
    () => {
        "id, task_id, depends_on, created_at"
    };
}

/// The tasks up- and downstream of `$2`, transitively, as `around(id)`.
macro_rules! around {
    () => {
        "WITH RECURSIVE up(id) AS (
             SELECT id FROM tasks WHERE org_id = $1 AND id = $2
             UNION SELECT d.depends_on FROM task_dependencies d JOIN up ON d.task_id = up.id WHERE d.org_id = $1),
         down(id) AS (
             SELECT id FROM tasks WHERE org_id = $1 AND id = $2
             UNION SELECT d.task_id FROM task_dependencies d JOIN down ON d.depends_on = down.id WHERE d.org_id = $1),
         around(id) AS (SELECT id FROM up UNION SELECT id FROM down) "
    };
}

super::for_both_backends!(GraphQueries {
    async fn add_dependency(&self, tenant: Tenant, task: Uuid, depends_on: Uuid, actor: &Actor, at: OffsetDateTime) -> Result<DependencyRow> {
        let org = tenant.org_id();
        if task == depends_on {
            return Err(StoreError::Cycle { path: vec![task, task] });
        }
        let mut tx = self.begin_write().await?;
        let mut out = Vec::new();
        // One graph change at a time per org, so two edges added at once
        // cannot close a cycle between them.
        sqlx::query(Self::LOCK_GRAPH).bind(org).execute(&mut *tx).await?;
        plan_walks!(tx);
        let live: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tasks WHERE org_id = $1 AND id IN ($2, $3) AND deleted_at IS NULL")
            .bind(org)
            .bind(task)
            .bind(depends_on)
            .fetch_one(&mut *tx)
            .await?;
        if live != 2 {
            return Err(StoreError::NotFound);
        }
        // The edge closes a cycle when `task` is already upstream of
        // `depends_on`: walk up from `depends_on`, keeping how each task was
        // reached, to name the path.
        let reached: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "WITH RECURSIVE up(id, via) AS (
                 SELECT depends_on, task_id FROM task_dependencies WHERE org_id = $1 AND task_id = $2
                 UNION
                 SELECT d.depends_on, d.task_id FROM task_dependencies d JOIN up ON d.task_id = up.id WHERE d.org_id = $1)
             SELECT id, via FROM up")
            .bind(org)
            .bind(depends_on)
            .fetch_all(&mut *tx)
            .await?;
        if reached.iter().any(|(id, _)| *id == task) {
            let via: std::collections::HashMap<Uuid, Uuid> = reached.iter().copied().collect();
            // task <- … <- depends_on, read back from task.
            let mut path = vec![task];
            let mut at_node = task;
            while at_node != depends_on && path.len() <= via.len() + 1 {
                let Some(next) = via.get(&at_node) else { break };
                path.push(*next);
                at_node = *next;
            }
            path.reverse();
            path.insert(0, task);
            return Err(StoreError::Cycle { path });
        }
        let edge = DependencyRow { id: cadre_types::new_id(), task_id: task, depends_on, created_at: at };
        sqlx::query("INSERT INTO task_dependencies (id, org_id, task_id, depends_on, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(edge.id)
            .bind(org)
            .bind(task)
            .bind(depends_on)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict { .. } => StoreError::Conflict { constraint: "dependency".into() },
                other => other,
            })?;
        super::events::emit!(out, tx, org, "dependency_added", "task", task, actor,
            json!({ "dependencyId": edge.id, "taskId": task, "dependsOn": depends_on }), at)?;
        tx.commit().await?;
        self.events.send(out);
        Ok(edge)
    }

    async fn delete_dependency(&self, tenant: Tenant, task: Uuid, dependency: Uuid, actor: &Actor, at: OffsetDateTime) -> Result<()> {
        let org = tenant.org_id();
        let mut tx = self.begin_write().await?;
        let mut out = Vec::new();
        let upstream: Option<Uuid> = sqlx::query_scalar(
            "DELETE FROM task_dependencies WHERE org_id = $1 AND task_id = $2 AND id = $3 RETURNING depends_on")
            .bind(org)
            .bind(task)
            .bind(dependency)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(upstream) = upstream else {
            return Err(StoreError::NotFound);
        };
        super::events::emit!(out, tx, org, "dependency_removed", "task", task, actor,
            json!({ "dependencyId": dependency, "taskId": task, "dependsOn": upstream }), at)?;
        // One requirement fewer: the task may be ready now.
        super::tasks::queue_ready_check!(tx, org, vec![task], at)?;
        tx.commit().await?;
        self.events.send(out);
        Ok(())
    }

    async fn upstream(&self, tenant: Tenant, task: Uuid) -> Result<Vec<DependencyRow>> {
        Ok(sqlx::query_as::<_, DependencyRow>(concat!(
            "SELECT ", dependency_columns!(), " FROM task_dependencies WHERE org_id = $1 AND task_id = $2 ORDER BY created_at, id"))
        .bind(tenant.org_id())
        .bind(task)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn graph(&self, tenant: Tenant, task: Uuid) -> Result<Graph> {
        // One snapshot for nodes and edges.
        let mut tx = self.pool.begin().await?;
        plan_walks!(tx);
        // Joined from the walk's result and sorted here: asked for tasks
        // `IN` it, in order, the planner may read every task in order.
        let mut nodes = sqlx::query_as::<_, TaskRow>(concat!(
            around!(), "SELECT ", task_columns_of_t!(), " FROM around a JOIN tasks t ON t.id = a.id
             WHERE t.org_id = $1 AND t.deleted_at IS NULL"))
            .bind(tenant.org_id())
            .bind(task)
            .fetch_all(&mut *tx)
            .await?;
        if nodes.is_empty() {
            return Err(StoreError::NotFound);
        }
        nodes.sort_by_key(|t| (t.created_at, t.id));
        let mut edges = sqlx::query_as::<_, DependencyRow>(concat!(
            around!(), "SELECT d.id, d.task_id, d.depends_on, d.created_at FROM around a
             JOIN task_dependencies d ON d.task_id = a.id
             WHERE d.org_id = $1 AND d.depends_on IN (SELECT id FROM around)"))
            .bind(tenant.org_id())
            .bind(task)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        edges.sort_by_key(|e| (e.created_at, e.id));
        Ok(Graph { nodes, edges })
    }

    async fn project_graph(&self, tenant: Tenant, project: Uuid, limit: u32) -> Result<Graph> {
        let mut tx = self.pool.begin().await?;
        let mut edges = sqlx::query_as::<_, DependencyRow>(
            "SELECT d.id, d.task_id, d.depends_on, d.created_at FROM task_dependencies d
             JOIN tasks a ON a.id = d.task_id AND a.deleted_at IS NULL
             JOIN tasks b ON b.id = d.depends_on AND b.deleted_at IS NULL
             WHERE d.org_id = $1 AND (a.project_id = $2 OR b.project_id = $2)")
            .bind(tenant.org_id())
            .bind(project)
            .fetch_all(&mut *tx)
            .await?;
        let mut nodes = sqlx::query_as::<_, TaskRow>(concat!(
            "SELECT ", task_columns!(), " FROM tasks
             WHERE org_id = $1 AND project_id = $2 AND deleted_at IS NULL
             ORDER BY created_at, id LIMIT $3"))
            .bind(tenant.org_id())
            .bind(project)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        // The far ends of those edges, in other projects.
        let far = sqlx::query_as::<_, TaskRow>(concat!(
            "SELECT ", task_columns!(), " FROM tasks
             WHERE org_id = $1 AND project_id <> $2 AND deleted_at IS NULL AND id IN (
                 SELECT d.depends_on FROM task_dependencies d JOIN tasks a ON a.id = d.task_id
                  WHERE d.org_id = $1 AND a.project_id = $2 AND a.deleted_at IS NULL
                 UNION
                 SELECT d.task_id FROM task_dependencies d JOIN tasks b ON b.id = d.depends_on
                  WHERE d.org_id = $1 AND b.project_id = $2 AND b.deleted_at IS NULL)
             ORDER BY created_at, id"))
            .bind(tenant.org_id())
            .bind(project)
            .fetch_all(&mut *tx)
            .await?;
        nodes.extend(far);
        tx.commit().await?;
        // An edge to a task past `limit` is left out, and so is a far end
        // only such an edge reached.
        let shown: std::collections::HashSet<Uuid> = nodes.iter().map(|t| t.id).collect();
        edges.retain(|e| shown.contains(&e.task_id) && shown.contains(&e.depends_on));
        let reached: std::collections::HashSet<Uuid> =
            edges.iter().flat_map(|e| [e.task_id, e.depends_on]).collect();
        nodes.retain(|t| t.project_id == project || reached.contains(&t.id));
        edges.sort_by_key(|e| (e.created_at, e.id));
        Ok(Graph { nodes, edges })
    }

    async fn readiness(&self, tenant: Tenant, task: Uuid) -> Result<Readiness> {
        let org = tenant.org_id();
        let mut tx = self.pool.begin().await?;
        plan_walks!(tx);
        let row = sqlx::query_as::<_, TaskRow>(concat!(
            "SELECT ", task_columns!(), " FROM tasks WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL"))
            .bind(org)
            .bind(task)
            .fetch_one(&mut *tx)
            .await?;
        let (states, auto_run): (Json<Vec<String>>, bool) = sqlx::query_as(
            "SELECT workflow_states, auto_run FROM projects WHERE org_id = $1 AND id = $2")
            .bind(org)
            .bind(row.project_id)
            .fetch_one(&mut *tx)
            .await?;
        let upstream: Vec<(Uuid, String, Json<Vec<String>>)> = sqlx::query_as(
            // From the task's edges out: a plan that starts from the live
            // tasks reads them all.
            "WITH up AS MATERIALIZED (SELECT depends_on FROM task_dependencies WHERE org_id = $1 AND task_id = $2)
             SELECT t.id, t.status, p.workflow_states FROM up
             JOIN tasks t ON t.id = up.depends_on JOIN projects p ON p.id = t.project_id
             WHERE t.deleted_at IS NULL ORDER BY t.id")
            .bind(org)
            .bind(task)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let depends_on = upstream.iter().map(|(id, _, _)| *id).collect();
        let blocked_by = upstream
            .into_iter()
            .filter(|(_, status, states)| !is_final(status, &states.0))
            .map(|(id, _, _)| id)
            .collect();
        Ok(Readiness {
            open: row.status != "cancelled" && !is_final(&row.status, &states.0),
            task: row,
            auto_run,
            depends_on,
            blocked_by,
        })
    }

    async fn auto_run_candidates(&self, tenant: Tenant, project: Uuid) -> Result<Vec<Uuid>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM tasks WHERE org_id = $1 AND project_id = $2 AND deleted_at IS NULL
               AND assignee_type = 'agent' AND auto_run_execution_id IS NULL ORDER BY created_at, id")
            .bind(tenant.org_id())
            .bind(project)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn claim_auto_run(&self, tenant: Tenant, task: Uuid, execution: &NewExecution, job: &NewJob) -> Result<bool> {
        let org = tenant.org_id();
        let mut tx = self.begin_write().await?;
        let mut out = Vec::new();
        let claimed = sqlx::query(
            "UPDATE tasks SET auto_run_execution_id = $3 WHERE org_id = $1 AND id = $2 AND auto_run_execution_id IS NULL AND deleted_at IS NULL")
            .bind(org)
            .bind(task)
            .bind(execution.id)
            .execute(&mut *tx)
            .await?;
        if claimed.rows_affected() != 1 {
            return Ok(false);
        }
        super::executions::bind_execution!(sqlx::query(super::executions::INSERT_EXECUTION), org, execution)
            .execute(&mut *tx)
            .await?;
        super::jobs::bind_new_job!(sqlx::query(super::jobs::insert_job_sql!()), job, execution.at)
            .execute(&mut *tx)
            .await?;
        let system = Actor::system();
        super::events::emit!(out, tx, org, "execution_queued", "task", task, system,
            json!({ "taskId": task, "executionId": execution.id, "agentId": execution.agent_id, "trigger": "auto_run" }), execution.at)?;
        tx.commit().await?;
        self.events.send(out);
        Ok(true)
    }
});
