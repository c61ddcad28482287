//! The API's errors and the one place they become HTTP responses (SPEC §7.1).
//!
//! Handlers return [`ApiError`]; its `IntoResponse` writes the error envelope.
//! Errors produced outside our handlers (unknown route, wrong method, a
//! framework rejection) are given the same envelope by
//! [`crate::middleware::request_context`], so a client never sees another shape.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::request_context;

/// The error codes of SPEC §7.1 (plus `METHOD_NOT_ALLOWED`, which the SPEC
/// leaves unnamed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    MissingToken,
    InvalidToken,
    TokenExpired,
    InvalidCredentials,
    InvalidApiKey,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    ValidationError,
    Conflict,
    Cycle,
    PreconditionFailed,
    Locked,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimitExceeded,
    QuotaExceeded,
    InternalError,
    ServiceUnavailable,
}

impl ErrorCode {
    /// The status a code is answered with by default.
    pub fn status(self) -> StatusCode {
        match self {
            Self::MissingToken
            | Self::InvalidToken
            | Self::TokenExpired
            | Self::InvalidCredentials
            | Self::InvalidApiKey => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::ValidationError => StatusCode::BAD_REQUEST,
            Self::Conflict | Self::Cycle => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::Locked => StatusCode::LOCKED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            Self::QuotaExceeded => StatusCode::PAYMENT_REQUIRED,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// What a client is told when nothing more specific is known.
    pub fn default_message(self) -> &'static str {
        match self {
            Self::MissingToken => {
                "authentication required: send Authorization: Bearer <access token> or X-API-Key: <key>"
            }
            Self::InvalidToken => "the token is invalid; sign in again",
            Self::TokenExpired => "the token has expired; refresh it or sign in again",
            Self::InvalidCredentials => "wrong email or password",
            Self::InvalidApiKey => "the API key is invalid, expired or revoked",
            Self::Forbidden => "your role does not allow this",
            Self::NotFound => "no such route; see /api/v1/openapi.json for the API",
            Self::MethodNotAllowed => {
                "method not allowed on this route; the Allow header lists the ones that are"
            }
            Self::ValidationError => "the request is invalid",
            Self::Conflict => "conflicts with the current state",
            Self::Cycle => "the change would create a dependency cycle",
            Self::PreconditionFailed => {
                "the resource changed since you read it; read it again and retry"
            }
            Self::Locked => "the resource is locked by someone else",
            Self::PayloadTooLarge => "request body is too large",
            Self::UnsupportedMediaType => "unsupported content type",
            Self::RateLimitExceeded => {
                "too many requests; retry after the number of seconds in Retry-After"
            }
            Self::QuotaExceeded => "the plan's quota is used up",
            Self::InternalError => "internal error; quote the request id when reporting it",
            Self::ServiceUnavailable => "temporarily unavailable; try again shortly",
        }
    }

    /// The code for a status produced outside our handlers.
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::InvalidToken,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            409 => Self::Conflict,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            423 => Self::Locked,
            429 => Self::RateLimitExceeded,
            400..=499 => Self::ValidationError,
            503 | 504 => Self::ServiceUnavailable,
            _ => Self::InternalError,
        }
    }
}

/// An error answered to an API client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    pub details: Option<serde_json::Value>,
    /// The rate-limit decision behind a 429 (for `Retry-After`).
    pub rate: Option<cadre_identity::rate_limit::Decision>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            code,
            message: message.into(),
            field: None,
            details: None,
            rate: None,
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// Maps a store error about a resource the request names in `field`:
    /// not found (or another org's) is a 404 naming that field.
    pub fn at_field<'a>(
        what: &'a str,
        field: impl Into<String> + 'a,
    ) -> impl FnOnce(cadre_store::StoreError) -> Self + 'a {
        move |e| match e {
            cadre_store::StoreError::NotFound => Self::not_found(what).with_field(field),
            other => other.into(),
        }
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationError, message).with_field(field)
    }

    /// Input that parses but does not make sense (an unknown tool, a step
    /// that does not exist): 422 `VALIDATION_ERROR` naming the field, as
    /// body shape errors are.
    pub fn unprocessable(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(field, message).with_status(StatusCode::UNPROCESSABLE_ENTITY)
    }

    /// An unexpected failure: the cause is logged with the request id, the
    /// client learns only that it happened.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %ErrorChain(cause), "internal error");
        Self::new(
            ErrorCode::InternalError,
            ErrorCode::InternalError.default_message(),
        )
    }

    /// The error for a status produced outside our handlers.
    pub fn from_status(status: StatusCode) -> Self {
        let code = ErrorCode::for_status(status);
        Self::new(code, code.default_message()).with_status(status)
    }
}

impl From<cadre_store::StoreError> for ApiError {
    fn from(err: cadre_store::StoreError) -> Self {
        use cadre_store::StoreError;
        match err {
            StoreError::NotFound => Self::new(ErrorCode::NotFound, "not found"),
            StoreError::Conflict { constraint } if constraint == "last_owner" => Self::new(
                ErrorCode::Conflict,
                "an organization needs at least one owner; make someone else owner first",
            ),
            StoreError::Conflict { constraint } if constraint == "default_project" => {
                Self::new(ErrorCode::Conflict, "the default project cannot be deleted")
            }
            StoreError::Conflict { .. } => {
                Self::new(ErrorCode::Conflict, "conflicts with an existing resource")
            }
            StoreError::Locked {
                holder_type,
                holder_id,
                expires_at,
            } => Self::new(
                ErrorCode::Locked,
                format!(
                    "the task is locked for editing by {holder_type} {} until {}; wait for it to be released or to expire",
                    holder_id.map(|id| id.to_string()).unwrap_or_default(),
                    cadre_types::time::rfc3339(expires_at)
                ),
            )
            .with_details(serde_json::json!({
                "holder": { "type": holder_type, "id": holder_id },
                "expiresAt": cadre_types::time::rfc3339(expires_at),
            })),
            StoreError::Stale { current } => Self::new(
                ErrorCode::PreconditionFailed,
                format!("stale write: the task is at version {current} now; read it again and retry"),
            )
            .with_details(serde_json::json!({ "currentVersion": current })),
            StoreError::Cycle { path } => Self::new(
                ErrorCode::Cycle,
                "the dependency would close a cycle (details.path: each task depends on the next)",
            )
            .with_details(serde_json::json!({ "path": path })),
            StoreError::StaleLease => {
                Self::new(ErrorCode::Conflict, "the job is held by another worker")
            }
            StoreError::Unavailable(_) => {
                tracing::error!(error = %ErrorChain(&err), "database unavailable");
                Self::new(
                    ErrorCode::ServiceUnavailable,
                    "the database is unavailable; try again shortly",
                )
            }
            StoreError::Migration(_) | StoreError::Database(_) => Self::internal(&err),
        }
    }
}

impl From<cadre_identity::IdentityError> for ApiError {
    fn from(err: cadre_identity::IdentityError) -> Self {
        use cadre_identity::IdentityError;
        match err {
            IdentityError::Validation { field, message } => Self::validation(field, message),
            IdentityError::InvalidCredentials => {
                Self::new(ErrorCode::InvalidCredentials, "wrong email or password")
            }
            IdentityError::InvalidToken => Self::new(
                ErrorCode::InvalidToken,
                "the token is invalid or has been used",
            ),
            IdentityError::TokenExpired => {
                Self::new(ErrorCode::TokenExpired, "the token has expired")
            }
            IdentityError::Conflict(message) => Self::new(ErrorCode::Conflict, message),
            IdentityError::Forbidden(message) => Self::new(ErrorCode::Forbidden, message),
            IdentityError::NotFound => Self::not_found("resource"),
            IdentityError::Store(e) => e.into(),
            IdentityError::Internal(message) => Self::internal(&std::io::Error::other(message)),
        }
    }
}

/// Marks a response whose body is final: an error envelope already, or a
/// web page (the UI sets it on its responses). Without it, an error status
/// from the framework (a rejected extractor, an unmatched route) gets its
/// body replaced by the SPEC §7.1 envelope.
#[derive(Debug, Clone, Copy)]
pub struct Enveloped;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorEnvelope<'a> {
    success: bool,
    error: ErrorBody<'a>,
    timestamp: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    code: ErrorCode,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    request_id: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let envelope = ErrorEnvelope {
            success: false,
            error: ErrorBody {
                code: self.code,
                message: &self.message,
                details: self.details.as_ref(),
                field: self.field.as_deref(),
                request_id: request_context::request_id(),
            },
            timestamp: cadre_types::time::rfc3339(cadre_types::time::now()),
        };
        let mut response = (self.status, axum::Json(envelope)).into_response();
        response.extensions_mut().insert(Enveloped);
        if let Some(rate) = self.rate.filter(|r| !r.allowed) {
            let secs = rate.reset_after.as_secs().max(1);
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        response
    }
}

/// Displays an error with its whole cause chain, for logs.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
