//! Liveness and the detailed dependency report.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::{ApiResponse, AppState};

/// Liveness: the process is up and answering.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HealthOut {
    /// Always `ok` when the process answers.
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
}

/// Liveness check; needs no database and no authentication.
#[utoipa::path(get, path = "/api/v1/health", tag = "health",
    responses((status = 200, description = "The process is alive (in the success envelope)", body = HealthOut)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn health_handler(State(state): State<AppState>) -> ApiResponse<HealthOut> {
    ApiResponse::ok(HealthOut {
        status: "ok",
        version: cadre_types::VERSION,
        uptime_seconds: state.uptime_seconds(),
    })
}

/// Each dependency's state.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HealthDetailedOut {
    /// `ok` when every dependency is up, `degraded` when a non-essential one
    /// is not, `down` when the database is unreachable.
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    database: DatabaseCheck,
    background_tasks: BackgroundCheck,
    model_providers: ProvidersCheck,
    queue: QueueCheck,
    event_bus: EventBusCheck,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventBusCheck {
    /// `up`, or `degraded` when Redis does not answer (live updates stop;
    /// nothing stored is affected).
    status: &'static str,
    /// `memory` (this process only) or `redis` (shared by every instance).
    backend: &'static str,
    /// Open WebSocket and SSE connections on this instance.
    connections: u64,
    /// Events dropped because the bus's outbox was full, since start.
    dropped: u64,
    error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QueueCheck {
    /// Jobs of the default queue waiting to run (available or waiting to retry).
    depth: u64,
    /// How long the oldest of them has been due, in seconds.
    oldest_age_seconds: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProvidersCheck {
    /// `up`, or `degraded` while an endpoint's circuit is open.
    status: &'static str,
    /// Whether an instance-wide OpenAI-compatible key is set.
    openai_key: bool,
    /// Whether an instance-wide Anthropic key is set.
    anthropic_key: bool,
    /// Endpoints skipped after repeated failures.
    open_circuits: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DatabaseCheck {
    /// `up` or `down`.
    status: &'static str,
    /// `sqlite` or `postgres`.
    backend: &'static str,
    /// Round-trip time of a trivial query.
    latency_ms: Option<f64>,
    /// Highest migration applied.
    schema_version: Option<i64>,
    /// Highest migration this binary carries.
    latest_schema_version: Option<i64>,
    /// Why the database is down, when it is.
    error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BackgroundCheck {
    /// `up`, or `degraded` when a background task has failed.
    status: &'static str,
    /// Names of failed background tasks.
    failed: Vec<&'static str>,
}

/// Detailed health: database reachability, latency and schema version, and
/// background tasks. Answers 503 (with this report in `error.details`) when
/// the database is unreachable.
#[utoipa::path(get, path = "/api/v1/health/detailed", tag = "health",
    responses(
        (status = 200, description = "Every essential dependency is up", body = HealthDetailedOut),
        (status = 503, description = "The database is unreachable; the report is in error.details"),
    ))]
#[tracing::instrument(skip_all)]
pub(crate) async fn health_detailed_handler(
    State(state): State<AppState>,
) -> ApiResult<ApiResponse<HealthDetailedOut>> {
    let store = state.store();
    let health = store.health();
    let database = match health.ping().await {
        Ok(latency) => {
            let schema = health.schema_version().await.ok();
            DatabaseCheck {
                status: "up",
                backend: store.backend_name(),
                latency_ms: Some(cadre_types::time::millis(latency)),
                schema_version: schema.and_then(|s| s.applied),
                latest_schema_version: schema.map(|s| s.latest),
                error: None,
            }
        }
        Err(e) => DatabaseCheck {
            status: "down",
            backend: store.backend_name(),
            latency_ms: None,
            schema_version: None,
            latest_schema_version: None,
            error: Some(e.to_string()),
        },
    };
    let failed = state.supervisor().failed_tasks();
    let background_tasks = BackgroundCheck {
        status: if failed.is_empty() { "up" } else { "degraded" },
        failed,
    };
    let queue = match store.jobs().queue_depth(cadre_store::DEFAULT_QUEUE).await {
        Ok((depth, oldest)) => QueueCheck {
            depth,
            oldest_age_seconds: oldest
                .map(|at| (cadre_types::time::now() - at).as_seconds_f64().max(0.0)),
        },
        Err(_) => QueueCheck {
            depth: 0,
            oldest_age_seconds: None,
        },
    };
    let defaults = &state.llm().defaults;
    let open_circuits = state.llm().gateway.open_circuits();
    let model_providers = ProvidersCheck {
        status: if open_circuits.is_empty() {
            "up"
        } else {
            "degraded"
        },
        openai_key: defaults.openai_api_key.is_some(),
        anthropic_key: defaults.anthropic_api_key.is_some(),
        open_circuits,
    };
    let realtime = state.realtime();
    let bus_error = realtime.check().await.err();
    let event_bus = EventBusCheck {
        status: if bus_error.is_none() {
            "up"
        } else {
            "degraded"
        },
        backend: realtime.backend(),
        connections: realtime.connections(),
        dropped: realtime.dropped(),
        error: bus_error,
    };
    let status = match (
        database.status,
        background_tasks.status,
        model_providers.status,
        event_bus.status,
    ) {
        ("down", _, _, _) => "down",
        (_, "degraded", _, _) | (_, _, "degraded", _) | (_, _, _, "degraded") => "degraded",
        _ => "ok",
    };
    let report = HealthDetailedOut {
        status,
        version: cadre_types::VERSION,
        uptime_seconds: state.uptime_seconds(),
        database,
        background_tasks,
        model_providers,
        queue,
        event_bus,
    };
    if status == "down" {
        let details = serde_json::to_value(&report).unwrap_or_default();
        return Err(
            ApiError::new(ErrorCode::ServiceUnavailable, "the database is unreachable")
                .with_details(details),
        );
    }
    Ok(ApiResponse::ok(report))
}
