//! Bounds how long one ordinary request may take; past it the client gets
//! 503 and the handler's future is dropped (its transaction rolls back).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorCode};

pub(crate) async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout_secs = limit.as_secs(), "request timed out");
            ApiError::new(
                ErrorCode::ServiceUnavailable,
                format!(
                    "the request took longer than {} seconds and was stopped; try again",
                    limit.as_secs()
                ),
            )
            .into_response()
        }
    }
}
