//! The outermost middleware: gives each request its id and span, logs one
//! line when it finishes, records the HTTP metrics by route template, and
//! wraps any error response that is not yet an envelope (unknown route, wrong
//! method, framework rejections) in one.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::error::{ApiError, Enveloped};
use crate::{metrics, request_context};

pub(crate) async fn request_context(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_context::from_headers(req.headers());
    let method = req.method().clone();
    // Labelled by template (`/api/v1/tasks/{taskId}`), never by raw path, so
    // metrics and logs do not grow with every id.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = route.as_deref().unwrap_or("-"));

    let mut response = request_context::scope(id.clone(), next.run(req))
        .instrument(span.clone())
        .await;

    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && response.extensions().get::<Enveloped>().is_none()
    {
        let headers = std::mem::take(response.headers_mut());
        response = request_context::scope(id.clone(), async {
            ApiError::from_status(status).into_response()
        })
        .await;
        for (name, value) in headers.iter() {
            // Keep what the framework said (Allow, Retry-After…), not its body's type.
            if name != axum::http::header::CONTENT_TYPE
                && name != axum::http::header::CONTENT_LENGTH
            {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(request_context::REQUEST_ID_HEADER, value);
    }

    let elapsed = started.elapsed();
    let route_label = route.as_deref().unwrap_or(metrics::UNMATCHED_ROUTE);
    metrics::record_request(method.as_str(), route_label, status.as_u16(), elapsed);
    span.in_scope(|| {
        let latency_ms = cadre_types::time::millis(elapsed);
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), latency_ms, "request failed");
        } else {
            tracing::info!(status = status.as_u16(), latency_ms, "request finished");
        }
    });
    response
}
