//! A handler that panics answers 500 with the envelope; the panic message
//! goes to the log with the request id, never to the client.

use std::any::Any;

use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorCode};

pub(crate) fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    tracing::error!(panic = %message, "request handler panicked");
    ApiError::new(
        ErrorCode::InternalError,
        ErrorCode::InternalError.default_message(),
    )
    .into_response()
}
