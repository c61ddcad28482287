//! The running application: store, HTTP server and background tasks, wired
//! together and stopped together.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use cadre_config::{Config, DatabaseKind};
use cadre_runtime::{Supervisor, TaskSpec};
use cadre_server::{AppParts, AppState};
use cadre_store::{ConnectOptions, InstanceIn, Store, Target};
use uuid::Uuid;

use crate::data_dir::{self, Keys};

/// What this process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `cadre serve`: API and in-process workers.
    ApiAndWorkers,
    /// `cadre serve --no-workers`.
    Api,
    /// `cadre worker`.
    Workers,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::ApiAndWorkers => "api,worker",
            Role::Api => "api",
            Role::Workers => "worker",
        }
    }

    fn serves_http(self) -> bool {
        matches!(self, Role::ApiAndWorkers | Role::Api)
    }

    fn runs_workers(self) -> bool {
        matches!(self, Role::ApiAndWorkers | Role::Workers)
    }
}

/// How often a process tells the registry it is alive.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// A process silent this long is dead; its registration is removed.
const INSTANCE_DEAD_AFTER: Duration = Duration::from_secs(60);

/// A built application, listening (when it serves HTTP) but not yet
/// stopped. Tests build one on port 0 and read [`Application::local_addr`].
pub struct Application {
    supervisor: Supervisor,
    store: Store,
    instance_id: Uuid,
    local_addr: Option<SocketAddr>,
    shutdown_timeout: Duration,
    /// The secrets requests are signed and data encrypted with.
    pub keys: Keys,
}

impl Application {
    /// Prepares the data directory, opens and migrates the database,
    /// registers this instance, binds the listener and starts every task.
    pub async fn build(config: Config, role: Role) -> Result<Application> {
        let keys = data_dir::prepare(&config)?;
        let store = open_store(&config).await?;
        let schema = store
            .migrate()
            .await
            .context("applying database migrations")?;

        let supervisor = Supervisor::new();
        let realtime = start_realtime(&config, &store, &supervisor).await?;
        let instance_id = cadre_types::new_id();
        register_instance(&store, instance_id, role).await?;
        spawn_heartbeat(&supervisor, store.clone(), instance_id);
        if role.runs_workers() {
            let lease = Duration::from_secs(config.workers.lease_secs);
            let worker_config = cadre_worker::WorkerConfig {
                queues: vec![(
                    "default".to_owned(),
                    usize::try_from(config.workers.concurrency).unwrap_or(4),
                )],
                lease,
                per_org: (config.workers.max_running_per_org > 0)
                    .then_some(config.workers.max_running_per_org),
                heartbeat: lease / 3,
                rescue_every: lease.min(Duration::from_secs(10)),
                drain: config
                    .server
                    .shutdown_timeout()
                    .saturating_sub(Duration::from_secs(2)),
                ..cadre_worker::WorkerConfig::default()
            };
            let engine = build_engine(&config, &store, &keys, realtime.clone())?;
            // Job kinds register here as the features that enqueue them land.
            let registry = cadre_worker::Registry::default()
                .on(cadre_worker::probe::KIND, cadre_worker::probe::run)
                .on(cadre_engine::ADVANCE, {
                    let engine = engine.clone();
                    move |ctx| {
                        let engine = engine.clone();
                        async move { engine.run(ctx).await }
                    }
                })
                .on(cadre_store::READY_JOB, {
                    let store = store.clone();
                    move |ctx| {
                        let store = store.clone();
                        async move { cadre_engine::autorun::run_ready(&store, ctx).await }
                    }
                });
            cadre_worker::Worker::new(store.clone(), registry, worker_config, instance_id)
                .start(&supervisor);
            cadre_worker::scheduler::start(store.clone(), &supervisor);
            let retention = Duration::from_secs(u64::from(config.workers.retention_days) * 86_400);
            spawn_job_retention(&supervisor, store.clone(), retention);
        }

        let mut local_addr = None;
        let mut rate_limits = "none";
        if role.serves_http() {
            let bind = config.bind_addr()?;
            let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| {
                format!("cannot listen on {bind}; is another process using it? Choose another address with --bind or CADRE_SERVER_BIND")
            })?;
            let addr = listener.local_addr()?;
            local_addr = Some(addr);
            let jwt = cadre_config::ExposeSecret::expose_secret(&keys.jwt_secret)
                .as_bytes()
                .to_vec();
            let master = secrecy::ExposeSecret::expose_secret(&keys.master_key);
            let parts = AppParts::from_config(
                &config,
                store.clone(),
                supervisor.clone(),
                instance_id,
                &jwt,
                master,
                realtime.clone(),
            )
            .await?;
            let state = AppState::new(parts);
            rate_limits = state.limits().backend();
            spawn_key_usage_flush(&supervisor, state.clone());
            // The web UI calls the API in process: it gets its own copy of
            // the API router to call, and its pages are served beside it.
            let web = cadre_web::Web::new(
                cadre_server::router(state.clone(), &config.server),
                state.clone(),
                config.auth.refresh_token_ttl_days * 86_400,
            );
            let app = cadre_server::router_with(cadre_web::router(web), state, &config.server);
            supervisor.spawn(
                TaskSpec::critical("http-server"),
                move |shutdown| async move {
                    cadre_server::serve(listener, app, shutdown)
                        .await
                        .context("HTTP server failed")
                },
            );
        }

        tracing::info!(
            version = cadre_types::VERSION,
            role = role.label(),
            instance_id = %instance_id,
            data_dir = %config.data_dir.display(),
            database = %describe_database(&config),
            schema_version = schema,
            rate_limits,
            event_bus = realtime.backend(),
            jwt_signing_from = %keys.jwt_origin,
            master_encryption_from = %keys.master_origin,
            "cadre started"
        );
        if let Some(addr) = local_addr {
            tracing::info!(url = %format!("http://{addr}"), health = %format!("http://{addr}/api/v1/health"), "listening");
        }
        Ok(Application {
            supervisor,
            store,
            instance_id,
            local_addr,
            shutdown_timeout: config.server.shutdown_timeout(),
            keys,
        })
    }

    /// The address the HTTP server listens on, when it serves HTTP.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// A handle that stops the application when cancelled.
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// Runs until SIGTERM/SIGINT (on `signals`, installed before the build so
    /// none is missed during start-up) or a critical task fails, then stops
    /// accepting, lets in-flight work finish (within the shutdown timeout),
    /// and leaves the instance registry.
    pub async fn run_until_stopped(
        self,
        mut signals: cadre_runtime::ShutdownSignals,
    ) -> Result<()> {
        tokio::select! {
            signal = signals.recv() => tracing::info!(signal, "shutting down"),
            () = self.supervisor.shutdown_requested() => tracing::info!("shutting down"),
        }
        let report = self.supervisor.shutdown(self.shutdown_timeout).await;
        if let Err(e) = self.store.instances().deregister(self.instance_id).await {
            tracing::warn!(error = %e, "could not leave the instance registry; it will expire on its own");
        }
        self.store.close().await;
        if !report.timed_out.is_empty() {
            tracing::warn!(tasks = ?report.timed_out, "stopped before these tasks finished");
        }
        if report.failed.contains(&"http-server") {
            anyhow::bail!("the HTTP server failed; see the log above");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// `cadre migrate`: open the database, apply migrations, report the version.
pub async fn migrate_only(config: &Config) -> Result<i64> {
    data_dir::prepare(config)?;
    let store = open_store(config).await?;
    tracing::info!(database = %describe_database(config), "applying migrations");
    store
        .migrate()
        .await
        .context("applying database migrations")
}

pub(crate) async fn open_store(config: &Config) -> Result<Store> {
    let target = match config.database_kind() {
        DatabaseKind::Sqlite(path) => Target::Sqlite(path),
        DatabaseKind::Postgres(url) => Target::Postgres(url),
    };
    let options = ConnectOptions {
        max_connections: config.database.max_connections,
        sqlite_busy_timeout: Duration::from_millis(config.database.sqlite_busy_timeout_ms),
        ..ConnectOptions::default()
    };
    Store::connect(&target, &options).await.with_context(|| {
        format!("cannot open the database ({}); check database.url / CADRE_DATABASE_URL and that the server is running", describe_database(config))
    })
}

async fn register_instance(store: &Store, id: Uuid, role: Role) -> Result<()> {
    let instance = InstanceIn {
        id,
        hostname: hostname(),
        pid: i64::from(std::process::id()),
        version: cadre_types::VERSION.to_owned(),
        roles: role.label().to_owned(),
        started_at: cadre_types::time::now(),
    };
    store
        .instances()
        .register(&instance)
        .await
        .context("registering this instance")?;
    Ok(())
}

fn spawn_heartbeat(supervisor: &Supervisor, store: Store, id: Uuid) {
    supervisor.spawn(
        TaskSpec::helper("instance-heartbeat"),
        move |shutdown| async move {
            let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    _ = tick.tick() => {}
                }
                let now = cadre_types::time::now();
                match store.instances().heartbeat(id, now).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(
                        "this instance was reaped by another after a long pause; it keeps running"
                    ),
                    Err(e) => tracing::warn!(error = %e, "instance heartbeat failed; retrying"),
                }
                let dead_before = now - INSTANCE_DEAD_AFTER;
                match store.instances().reap(dead_before).await {
                    Ok(reaped) if !reaped.is_empty() => {
                        tracing::info!(count = reaped.len(), "removed instances that stopped heartbeating");
                        for dead in reaped {
                            match store.jobs().rescue_instance(dead, now).await {
                                Ok(0) => {}
                                Ok(n) => tracing::info!(jobs = n, instance = %dead, "rescued the jobs of a dead instance"),
                                Err(e) => tracing::warn!(error = %e, "could not rescue a dead instance's jobs"),
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not reap dead instances"),
                }
            }
        },
    );
}

/// Deletes finished jobs older than `retention` and expired WebSocket
/// tokens, hourly.
fn spawn_job_retention(supervisor: &Supervisor, store: Store, retention: Duration) {
    supervisor.spawn(
        TaskSpec::helper("job-retention"),
        move |shutdown| async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    _ = tick.tick() => {}
                }
                match store
                    .jobs()
                    .purge_jobs(cadre_types::time::now() - retention)
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(jobs = n, "deleted finished jobs past their retention"),
                    Err(e) => tracing::warn!(error = %e, "could not delete old jobs"),
                }
                // WebSocket tokens live five minutes; an hour-old one is dead.
                let hour_ago = cadre_types::time::now() - Duration::from_secs(3600);
                if let Err(e) = store.sessions().purge_ws_tokens(hour_ago).await {
                    tracing::warn!(error = %e, "could not delete expired WebSocket tokens");
                }
            }
        },
    );
}

/// How often API-key `last_used_at` is written (batched, not per request).
const KEY_USAGE_FLUSH_EVERY: Duration = Duration::from_secs(30);

/// The event bus (through Redis when `redis.url` is set), fed with every
/// domain event the store commits. Workers publish to it too, so with
/// Redis a `cadre worker` process's steps reach the API servers' clients.
async fn start_realtime(
    config: &Config,
    store: &Store,
    supervisor: &Supervisor,
) -> Result<cadre_realtime::Realtime> {
    let url = cadre_config::ExposeSecret::expose_secret(&config.redis.url);
    let realtime = cadre_realtime::Realtime::connect(url, supervisor, cadre_realtime::Limits::default())
        .await
        .context("starting the event bus: cannot reach Redis (redis.url / CADRE_REDIS_URL); check that it is running")?;
    store.on_committed_events(std::sync::Arc::new(realtime.clone()));
    Ok(realtime)
}

/// The agent engine the workers run executions with.
fn build_engine(
    config: &Config,
    store: &Store,
    keys: &data_dir::Keys,
    realtime: cadre_realtime::Realtime,
) -> Result<cadre_engine::Engine> {
    let master = secrecy::ExposeSecret::expose_secret(&keys.master_key);
    let previous = config.secrets.previous_master_key_bytes()?;
    let keyring = cadre_identity::secrets::Keyring::new(master, &previous)?;
    let secrets = cadre_identity::secrets::Secrets::new(store.clone(), keyring);
    let llm = cadre_server::models::llm_from_config(&config.providers)?;
    let egress = cadre_engine::egress::Egress::new(cadre_engine::egress::AllowList::new(
        &config.egress.allow,
    ))?;
    Ok(cadre_engine::Engine::new(
        store.clone(),
        secrets,
        llm,
        egress,
        cadre_engine::EngineConfig {
            approval_ttl: Duration::from_secs(config.engine.approval_ttl_secs),
            stream_model_calls: config.engine.stream_model_calls,
            tokens_per_day: if config.limits.enabled {
                let quota = |plan: &cadre_config::PlanLimits| {
                    (plan.tokens_per_day > 0).then_some(plan.tokens_per_day)
                };
                cadre_engine::TokenQuotas {
                    free: quota(&config.limits.free),
                    pro: quota(&config.limits.pro),
                    enterprise: quota(&config.limits.enterprise),
                }
            } else {
                cadre_engine::TokenQuotas::default()
            },
        },
        realtime,
    ))
}

fn spawn_key_usage_flush(supervisor: &Supervisor, state: AppState) {
    supervisor.spawn(TaskSpec::critical("api-key-usage").with_on_error_log(), move |shutdown| async move {
        let mut tick = tokio::time::interval(KEY_USAGE_FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                () = shutdown.cancelled() => true,
                _ = tick.tick() => false,
            };
            let used = state.key_usage().take();
            if let Err(e) = state.store().api_keys().touch_api_keys(&used, cadre_types::time::now()).await {
                tracing::warn!(error = %e, keys = used.len(), "could not record API key use; it will be recorded on the next use");
            }
            if stopping {
                return Ok(());
            }
        }
    });
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The database for logs: the SQLite path, or the PostgreSQL host and
/// database without credentials.
fn describe_database(config: &Config) -> String {
    match config.database_kind() {
        DatabaseKind::Sqlite(path) => format!("sqlite {}", path.display()),
        DatabaseKind::Postgres(url) => {
            let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
            let host_and_db = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            let without_query = host_and_db.split('?').next().unwrap_or(host_and_db);
            format!("postgres {without_query}")
        }
    }
}
