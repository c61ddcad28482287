//! Cadre's HTTP API.
//!
//! [`router`] builds the whole application; [`serve`] runs it until shutdown.
//! Handlers are thin: they extract, call a service, and map the result.
//! Errors become the SPEC §7.1 envelope in exactly one place ([`error`]).

pub mod auth;
mod chat;
pub mod envelope;
pub mod error;
pub mod extract;
pub mod metrics;
mod middleware;
pub mod models;
pub mod openapi;
pub mod request_context;
mod routes;
mod state;
mod ws;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method};
use cadre_config::ServerConfig;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use envelope::ApiResponse;
pub use error::{ApiError, ApiResult, Enveloped, ErrorCode};
pub use extract::ApiJson;
pub use state::{AppParts, AppState};

/// The whole HTTP application.
pub fn router(state: AppState, config: &ServerConfig) -> Router {
    router_with(Router::new(), state, config)
}

/// The application with extra routes merged in before the middleware is
/// applied (tests use it to mount probes; later the UI mounts its pages).
pub fn router_with(extra: Router<AppState>, state: AppState, config: &ServerConfig) -> Router {
    // Install the recorder before the first request is counted.
    metrics::handle();
    let (api, _) = routes::api_v1().split_for_parts();
    let mut app = Router::new()
        .merge(api)
        .merge(routes::outside_api())
        .merge(extra)
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(axum::middleware::from_fn_with_state(
            config.body_limit_bytes,
            middleware::reject_oversized,
        ))
        .layer(axum::middleware::from_fn_with_state(
            config.request_timeout(),
            middleware::timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::audit,
        ))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn(middleware::security_headers));
    if let Some(cors) = cors_layer(&config.cors_origins) {
        app = app.layer(cors);
    }
    app.layer(axum::middleware::from_fn(middleware::request_context))
        .with_state(state)
}

/// CORS stays closed (no layer: browsers refuse cross-origin calls) unless
/// origins are configured.
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
                axum::http::header::IF_MATCH,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static(request_context::REQUEST_ID_HEADER),
            ])
            .expose_headers([
                HeaderName::from_static(request_context::REQUEST_ID_HEADER),
                HeaderName::from_static("x-ratelimit-limit"),
                HeaderName::from_static("x-ratelimit-remaining"),
                HeaderName::from_static("x-ratelimit-reset"),
                axum::http::header::RETRY_AFTER,
            ])
            .max_age(std::time::Duration::from_secs(3600)),
    )
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then stops
/// accepting and lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
}
