//! The route table: paths → handlers, nothing else.

mod health;
mod meta;

use axum::routing::get;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// Every `/api/v1` route, with its OpenAPI description.
pub(crate) fn api_v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::health_handler))
        .routes(routes!(health::health_detailed_handler))
}

/// Routes outside `/api/v1` and outside the OpenAPI document.
pub(crate) fn outside_api() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/metrics", get(meta::metrics_handler))
        .route("/api/v1/openapi.json", get(meta::openapi_handler))
}
