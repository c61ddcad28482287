//! The [`Store`] handle and how it connects.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::areas::{
    agents::AgentQueries, api_keys::ApiKeyQueries, audit::AuditQueries, chat::ChatQueries,
    events::EventQueries, executions::ExecutionQueries, health::HealthQueries,
    instances::InstanceQueries, jobs::JobQueries, models::ModelQueries, org_keys::OrgKeyQueries,
    orgs::OrgQueries, projects::ProjectQueries, schedules::ScheduleQueries,
    sessions::SessionQueries, task_graph::GraphQueries, task_templates::TaskTemplateQueries,
    tasks::TaskQueries, users::UserQueries,
};
use crate::{Result, postgres::PgStore, sqlite::SqliteStore};

/// Which database to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An SQLite file, created if missing.
    Sqlite(PathBuf),
    /// A PostgreSQL URL.
    Postgres(String),
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    /// How long an SQLite statement waits for the write lock.
    pub sqlite_busy_timeout: Duration,
    /// PostgreSQL schema to use instead of `public` (created if missing).
    pub pg_schema: Option<String>,
    /// How long to wait for a connection before reporting the database down.
    pub acquire_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            sqlite_busy_timeout: Duration::from_secs(5),
            pg_schema: None,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Every query area a backend implements.
/// Runs until the process stops, turning another instance's enqueue
/// notifications into local wake-ups.
pub type JobListener = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

#[async_trait::async_trait]
pub(crate) trait Backend:
    HealthQueries
    + InstanceQueries
    + UserQueries
    + OrgQueries
    + SessionQueries
    + ApiKeyQueries
    + ProjectQueries
    + AuditQueries
    + ChatQueries
    + OrgKeyQueries
    + ModelQueries
    + JobQueries
    + ScheduleQueries
    + AgentQueries
    + TaskQueries
    + GraphQueries
    + TaskTemplateQueries
    + EventQueries
    + ExecutionQueries
    + Send
    + Sync
    + 'static
{
    fn name(&self) -> &'static str;
    /// How many step batches may commit at once.
    fn commit_lanes(&self) -> usize;
    /// Where committed domain events go.
    fn event_sink(&self) -> &crate::areas::events::EventSink;
    /// Closes the pool: waits for checked-out connections, refuses new ones.
    async fn close(&self);
    /// Tells other processes sharing the database that `queue` has work.
    async fn announce_jobs(&self, queue: &str);
    /// A task that wakes `wakeups` when another process announces work
    /// (`None` where every writer shares this process, as with SQLite).
    fn job_listener(&self, wakeups: Arc<tokio::sync::Notify>) -> Option<JobListener>;
}

/// A handle to the database. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    wakeups: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend.name())
            .finish()
    }
}

impl Store {
    /// Opens a pool to the target. Does not migrate; call [`Store::migrate`].
    pub async fn connect(target: &Target, options: &ConnectOptions) -> Result<Store> {
        let backend: Arc<dyn Backend> = match target {
            Target::Sqlite(path) => Arc::new(SqliteStore::connect(path, options).await?),
            Target::Postgres(url) => Arc::new(PgStore::connect(url, options).await?),
        };
        Ok(Store {
            backend,
            wakeups: Arc::default(),
        })
    }

    /// Applies every embedded migration not yet applied; returns the schema
    /// version afterwards. Safe to run from several instances at once.
    pub async fn migrate(&self) -> Result<i64> {
        self.backend.migrate().await
    }

    /// Closes every connection (at shutdown, after the last query). Later
    /// queries fail with [`crate::StoreError::Unavailable`].
    pub async fn close(&self) {
        self.backend.close().await;
    }

    /// Enqueues a job and wakes the workers that wait for its queue, here
    /// and (on PostgreSQL) in every other process.
    pub async fn enqueue(&self, job: &crate::NewJob) -> Result<(crate::JobRow, bool)> {
        let (row, created) = self.backend.insert_job(job).await?;
        if created {
            self.wakeups.notify_waiters();
            self.backend.announce_jobs(&job.queue).await;
        }
        Ok((row, created))
    }

    /// Enqueues many jobs in one transaction (all or none) and wakes the
    /// workers; returns how many were new.
    pub async fn enqueue_many(&self, jobs: &[crate::NewJob]) -> Result<u64> {
        let created = self.backend.insert_jobs(jobs).await?;
        if created > 0 {
            self.wakeups.notify_waiters();
            let mut queues: Vec<&str> = jobs.iter().map(|j| j.queue.as_str()).collect();
            queues.sort_unstable();
            queues.dedup();
            for queue in queues {
                self.backend.announce_jobs(queue).await;
            }
        }
        Ok(created)
    }

    /// Wakes the workers of `queue` after jobs were written by another
    /// transaction (an execution created or a step committed with its
    /// follow-up jobs).
    pub async fn jobs_added(&self, queue: &str) {
        self.wakeups.notify_waiters();
        self.backend.announce_jobs(queue).await;
    }

    /// Resolves when new work may be waiting (or never, if none comes):
    /// workers wait on this between claims instead of polling.
    pub fn job_wakeups(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.wakeups)
    }

    /// The task that relays other processes' enqueue notifications, if the
    /// database needs one. The caller runs it for the life of the process.
    pub fn job_listener(&self) -> Option<JobListener> {
        self.backend.job_listener(Arc::clone(&self.wakeups))
    }

    /// Hands every domain event to `sink` once its transaction has
    /// committed (the real-time layer installs one at start-up; a second
    /// call is ignored).
    pub fn on_committed_events(&self, sink: Arc<dyn crate::CommittedEvents>) {
        self.backend.event_sink().install(sink);
    }

    /// How many batches of engine steps may commit at once: SQLite has one
    /// writer; PostgreSQL commits them on a pool of their own, this size.
    pub fn commit_lanes(&self) -> usize {
        self.backend.commit_lanes()
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    pub fn health(&self) -> &dyn HealthQueries {
        self.backend.as_ref()
    }

    pub fn instances(&self) -> &dyn InstanceQueries {
        self.backend.as_ref()
    }

    pub fn chat(&self) -> &dyn ChatQueries {
        self.backend.as_ref()
    }

    pub fn users(&self) -> &dyn UserQueries {
        self.backend.as_ref()
    }

    pub fn orgs(&self) -> &dyn OrgQueries {
        self.backend.as_ref()
    }

    pub fn sessions(&self) -> &dyn SessionQueries {
        self.backend.as_ref()
    }

    pub fn api_keys(&self) -> &dyn ApiKeyQueries {
        self.backend.as_ref()
    }

    pub fn projects(&self) -> &dyn ProjectQueries {
        self.backend.as_ref()
    }

    pub fn audit(&self) -> &dyn AuditQueries {
        self.backend.as_ref()
    }

    pub fn org_keys(&self) -> &dyn OrgKeyQueries {
        self.backend.as_ref()
    }

    pub fn models(&self) -> &dyn ModelQueries {
        self.backend.as_ref()
    }

    pub fn jobs(&self) -> &dyn JobQueries {
        self.backend.as_ref()
    }

    pub fn schedules(&self) -> &dyn ScheduleQueries {
        self.backend.as_ref()
    }

    pub fn agents(&self) -> &dyn AgentQueries {
        self.backend.as_ref()
    }

    pub fn tasks(&self) -> &dyn TaskQueries {
        self.backend.as_ref()
    }

    pub fn executions(&self) -> &dyn ExecutionQueries {
        self.backend.as_ref()
    }

    /// Dependencies between tasks, and readiness for auto-run.
    pub fn graph(&self) -> &dyn GraphQueries {
        self.backend.as_ref()
    }

    /// An org's task templates, and creating task trees.
    pub fn task_templates(&self) -> &dyn TaskTemplateQueries {
        self.backend.as_ref()
    }

    /// Domain events (the activity feed).
    pub fn events(&self) -> &dyn EventQueries {
        self.backend.as_ref()
    }
}
