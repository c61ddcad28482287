//! Queue loops, job tasks, heartbeats, timeouts, rescue.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cadre_runtime::{CancellationToken, Supervisor, TaskSpec};
use cadre_store::{JobRow, JobState, Lease, Store, StoreError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use uuid::Uuid;

/// The longest a freed slot waits for others under load before claiming.
const COALESCE: Duration = Duration::from_millis(2);

/// Most completions recorded in one statement.
const COMPLETION_BATCH: usize = 512;

/// A finished job's lease, and where to send whether its completion was
/// recorded.
type Completion = (Lease, oneshot::Sender<Result<(), StoreError>>);
type Completions = mpsc::UnboundedSender<Completion>;

/// Why a job's run failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt (after backoff).
    #[error("{0}")]
    Retry(String),
    /// Not worth retrying (a bad payload): the job is dead at once.
    #[error("{0}")]
    Fatal(String),
}

/// What a handler gets: the job, and a token cancelled when the job times
/// out or the worker drains past its deadline.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub job: JobRow,
    pub cancel: CancellationToken,
}

pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>>;
pub type Handler = Arc<dyn Fn(JobContext) -> HandlerFuture + Send + Sync>;

/// Handlers by job kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Handler>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.handlers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    /// Registers the handler of a job kind (`agent_step.v1`).
    pub fn on<F, Fut>(mut self, kind: &str, handler: F) -> Self
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        self.handlers
            .insert(kind.to_owned(), Arc::new(move |ctx| Box::pin(handler(ctx))));
        self
    }
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Queues to serve and how many jobs of each to run at once.
    pub queues: Vec<(String, usize)>,
    /// How long a claim is held without a heartbeat (SPEC default 30 s).
    pub lease: Duration,
    /// Running jobs allowed per organization and queue, across workers.
    pub per_org: Option<u32>,
    /// How often a running job's lease is extended (default 10 s).
    pub heartbeat: Duration,
    /// The slow poll behind wake-ups.
    pub poll: Duration,
    /// How often expired leases are rescued.
    pub rescue_every: Duration,
    /// How long shutdown waits for running jobs before giving them back.
    pub drain: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            queues: vec![(cadre_store::DEFAULT_QUEUE.to_owned(), 4)],
            lease: Duration::from_secs(30),
            per_org: None,
            heartbeat: Duration::from_secs(10),
            poll: Duration::from_secs(5),
            rescue_every: Duration::from_secs(10),
            drain: Duration::from_secs(8),
        }
    }
}

/// A worker: one loop per queue plus the rescue loop.
#[derive(Debug, Clone)]
pub struct Worker {
    store: Store,
    registry: Arc<Registry>,
    config: Arc<WorkerConfig>,
    instance: Uuid,
}

impl Worker {
    pub fn new(store: Store, registry: Registry, config: WorkerConfig, instance: Uuid) -> Self {
        Self {
            store,
            registry: Arc::new(registry),
            config: Arc::new(config),
            instance,
        }
    }

    /// Starts every loop under the supervisor.
    pub fn start(&self, supervisor: &Supervisor) {
        for (queue, concurrency) in self.config.queues.clone() {
            let worker = self.clone();
            supervisor.spawn(
                TaskSpec::critical("job-queue"),
                move |shutdown| async move {
                    worker
                        .serve_queue(&queue, concurrency.max(1), shutdown)
                        .await;
                    Ok(())
                },
            );
        }
        let worker = self.clone();
        supervisor.spawn(TaskSpec::helper("job-rescue"), move |shutdown| async move {
            worker.rescue_loop(shutdown).await;
            Ok(())
        });
        if let Some(listener) = self.store.job_listener() {
            supervisor.spawn(TaskSpec::helper("job-notifications"), move |_| async move {
                listener.await;
                Ok(())
            });
        }
    }

    /// Claims and runs jobs while recording completions in batches: the
    /// recorder ends once the claim loop and every job it started are done.
    async fn serve_queue(&self, queue: &str, concurrency: usize, shutdown: CancellationToken) {
        let (completions, pending) = mpsc::unbounded_channel();
        tokio::join!(
            self.claim_loop(queue, concurrency, shutdown, completions),
            self.record_completions(pending),
        );
    }

    async fn claim_loop(
        &self,
        queue: &str,
        concurrency: usize,
        shutdown: CancellationToken,
        completions: Completions,
    ) {
        let wakeups = self.store.job_wakeups();
        let mut running: JoinSet<()> = JoinSet::new();
        let drain_cancel = CancellationToken::new();
        tracing::info!(queue, concurrency, "serving job queue");
        // Under load (the last claim filled every free slot), a slot or two
        // freeing up waits up to COALESCE for more to free, so claims come
        // in batches instead of one query per finished job.
        let floor = (concurrency / 4).max(1);
        let mut saturated = false;
        while !shutdown.is_cancelled() {
            while running.try_join_next().is_some() {}
            let mut free = concurrency.saturating_sub(running.len());
            if saturated && free > 0 && free < floor {
                let pause = tokio::time::sleep(COALESCE);
                tokio::pin!(pause);
                while free < floor {
                    tokio::select! {
                        () = &mut pause => break,
                        Some(_) = running.join_next() => free += 1,
                    }
                }
                while running.try_join_next().is_some() {}
                free = concurrency.saturating_sub(running.len());
            }
            let mut claimed = 0;
            if free > 0 {
                // Register interest before claiming so a wake-up between the
                // claim and the wait is not missed.
                let woken = wakeups.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                match self
                    .store
                    .jobs()
                    .claim(
                        queue,
                        u32::try_from(free).unwrap_or(u32::MAX),
                        self.config.lease,
                        self.instance,
                        cadre_types::time::now(),
                        self.config.per_org,
                    )
                    .await
                {
                    Ok(jobs) => {
                        claimed = jobs.len();
                        saturated = claimed == free;
                        for job in jobs {
                            metrics::histogram!("job_wait_seconds", "queue" => queue.to_owned())
                                .record(
                                    (cadre_types::time::now() - job.run_at)
                                        .as_seconds_f64()
                                        .max(0.0),
                                );
                            let worker = self.clone();
                            let cancel = drain_cancel.child_token();
                            let completions = completions.clone();
                            running.spawn(async move {
                                worker.run_job(job, cancel, &completions).await;
                            });
                        }
                    }
                    Err(e) => tracing::warn!(queue, error = %e, "claiming jobs failed; retrying"),
                }
                if claimed == 0 {
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = woken => {}
                        _ = tokio::time::sleep(self.config.poll) => {}
                        Some(_) = running.join_next(), if !running.is_empty() => {}
                    }
                }
            } else {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    Some(_) = running.join_next() => {}
                }
            }
        }
        // Drain: running jobs get until the deadline, then are cancelled and
        // give their leases back.
        if !running.is_empty() {
            tracing::info!(queue, running = running.len(), "draining running jobs");
            let deadline = tokio::time::sleep(self.config.drain);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    next = running.join_next() => if next.is_none() { break },
                    () = &mut deadline => {
                        drain_cancel.cancel();
                        while running.join_next().await.is_some() {}
                        break;
                    }
                }
            }
        }
    }

    /// Runs one claimed job to an outcome, heartbeating its lease.
    async fn run_job(&self, job: JobRow, drain: CancellationToken, completions: &Completions) {
        let lease = job.lease();
        let queue = job.queue.clone();
        let started = Instant::now();
        let Some(handler) = self.registry.handlers.get(&job.kind).cloned() else {
            let msg = format!("no handler for job kind {:?}", job.kind);
            tracing::error!(job_id = %job.id, kind = %job.kind, "{msg}");
            self.finish(lease, &queue, Err(JobError::Fatal(msg)), &job, completions)
                .await;
            return;
        };
        let timeout = Duration::from_secs(u64::try_from(job.timeout_secs).unwrap_or(300).max(1));
        let cancel = drain.child_token();
        let context = JobContext {
            job: job.clone(),
            cancel: cancel.clone(),
        };
        let mut heartbeat = tokio::time::interval(self.config.heartbeat);
        heartbeat.tick().await;
        let run = handler(context);
        tokio::pin!(run);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let outcome = loop {
            tokio::select! {
                result = &mut run => break Some(result),
                () = &mut deadline => {
                    cancel.cancel();
                    break Some(Err(JobError::Retry(format!("timed out after {} s", timeout.as_secs()))));
                }
                () = drain.cancelled() => break None,
                _ = heartbeat.tick() => {
                    let until = cadre_types::time::now() + self.config.lease;
                    match self.store.jobs().heartbeat_job(lease, until).await {
                        Ok(()) => {}
                        Err(StoreError::StaleLease) => {
                            tracing::warn!(job_id = %job.id, "lease lost to another worker; abandoning this run");
                            cancel.cancel();
                            return;
                        }
                        Err(e) => tracing::warn!(job_id = %job.id, error = %e, "heartbeat failed; will retry"),
                    }
                }
            }
        };
        metrics::histogram!("job_duration_seconds", "queue" => queue.clone())
            .record(started.elapsed().as_secs_f64());
        // A handler that stopped because the drain cancelled it did not
        // fail: its job goes back, uncounted. A success is kept.
        let outcome = match outcome {
            Some(Err(_)) if drain.is_cancelled() => None,
            other => other,
        };
        match outcome {
            Some(result) => {
                self.finish(lease, &queue, result, &job, completions).await;
            }
            None => {
                // Drain deadline: give the job back for another worker.
                if let Err(e) = self
                    .store
                    .jobs()
                    .release_job(lease, cadre_types::time::now())
                    .await
                {
                    tracing::warn!(job_id = %job.id, error = %e, "could not release the job; its lease will expire");
                }
                metrics::counter!("jobs_processed_total", "queue" => queue, "outcome" => "released").increment(1);
            }
        }
    }

    async fn finish(
        &self,
        lease: Lease,
        queue: &str,
        result: Result<(), JobError>,
        job: &JobRow,
        completions: &Completions,
    ) {
        let now = cadre_types::time::now();
        let (written, outcome) = match result {
            Ok(()) => (
                self.complete(completions, lease)
                    .await
                    .map(|()| JobState::Completed),
                "completed",
            ),
            Err(JobError::Retry(msg)) => {
                let jitter =
                    f64::from(getrandom::u32().unwrap_or(u32::MAX / 2)) / f64::from(u32::MAX);
                let delay = cadre_store::areas::jobs::backoff(
                    Duration::from_millis(u64::try_from(job.backoff_base_ms).unwrap_or(1000)),
                    job.attempts,
                    jitter,
                );
                let state = self
                    .store
                    .jobs()
                    .fail_job(
                        lease,
                        &msg,
                        Some(cadre_types::time::normalize(now + delay)),
                        now,
                    )
                    .await;
                tracing::warn!(job_id = %job.id, kind = %job.kind, attempt = job.attempts, error = %msg, "job failed");
                (state, "failed")
            }
            Err(JobError::Fatal(msg)) => {
                tracing::error!(job_id = %job.id, kind = %job.kind, error = %msg, "job failed for good");
                (
                    self.store.jobs().fail_job(lease, &msg, None, now).await,
                    "dead",
                )
            }
        };
        let outcome = match written {
            Ok(JobState::Dead) => "dead",
            Ok(_) => outcome,
            Err(StoreError::StaleLease) => {
                tracing::warn!(job_id = %job.id, "result not recorded: another worker holds the job now");
                "stale"
            }
            Err(e) => {
                tracing::error!(job_id = %job.id, error = %e, "could not record the job's outcome; its lease will expire and it will run again");
                "unrecorded"
            }
        };
        metrics::counter!("jobs_processed_total", "queue" => queue.to_owned(), "outcome" => outcome).increment(1);
    }

    /// Records a completion through the queue's batching recorder (directly
    /// if the recorder is gone, which only a bug could cause).
    async fn complete(&self, completions: &Completions, lease: Lease) -> Result<(), StoreError> {
        let (reply, written) = oneshot::channel();
        if completions.send((lease, reply)).is_ok()
            && let Ok(written) = written.await
        {
            return written;
        }
        self.store
            .jobs()
            .complete_job(lease, cadre_types::time::now())
            .await
    }

    /// Records completions as they come, all those waiting in one statement:
    /// under load a batch rides on one commit, and a lone job is not delayed.
    async fn record_completions(&self, mut pending: mpsc::UnboundedReceiver<Completion>) {
        let mut batch = Vec::with_capacity(COMPLETION_BATCH);
        while pending.recv_many(&mut batch, COMPLETION_BATCH).await > 0 {
            let leases: Vec<Lease> = batch.iter().map(|(lease, _)| *lease).collect();
            match self
                .store
                .jobs()
                .complete_jobs(&leases, cadre_types::time::now())
                .await
            {
                Ok(done) => {
                    for (lease, reply) in batch.drain(..) {
                        let written = if done.contains(&lease.job_id) {
                            Ok(())
                        } else {
                            Err(StoreError::StaleLease)
                        };
                        let _ = reply.send(written);
                    }
                }
                // One by one, so that each job gets its own error.
                Err(e) => {
                    tracing::warn!(error = %e, jobs = batch.len(), "recording a batch of completions failed; recording them one by one");
                    for (lease, reply) in batch.drain(..) {
                        let written = self
                            .store
                            .jobs()
                            .complete_job(lease, cadre_types::time::now())
                            .await;
                        let _ = reply.send(written);
                    }
                }
            }
        }
    }

    async fn rescue_loop(&self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.rescue_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self
                .store
                .jobs()
                .rescue_expired(cadre_types::time::now())
                .await
            {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(jobs = n, "rescued jobs whose lease expired");
                    self.store.job_wakeups().notify_waiters();
                }
                Err(e) => tracing::warn!(error = %e, "rescuing expired leases failed"),
            }
            for (queue, _) in &self.config.queues {
                if let Ok((depth, _)) = self.store.jobs().queue_depth(queue).await {
                    metrics::gauge!("queue_depth", "queue" => queue.clone()).set(depth as f64);
                }
            }
        }
    }
}
