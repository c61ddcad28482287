//! Refuses a body whose declared length is over the limit before reading it.
//! (Bodies without a declared length are cut off by `DefaultBodyLimit` as
//! they are read.)

use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorCode};

pub(crate) async fn reject_oversized(
    State(limit): State<usize>,
    req: Request,
    next: Next,
) -> Response {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > limit as u64 => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body is {len} bytes; the limit is {limit} bytes"),
        )
        .into_response(),
        Some(_) | None => next.run(req).await,
    }
}
