//! Documents about the service itself: metrics and the OpenAPI description.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

pub(crate) async fn metrics_handler() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        crate::metrics::render(),
    )
}

pub(crate) async fn openapi_handler() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], crate::openapi::json())
}
