//! Errors of model calls, typed by what the caller can do about them.

use std::time::Duration;

/// What went wrong, in terms of what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 429: slow down (retry after `retry_after` when given).
    RateLimited,
    /// 5xx, connection failures, timeouts, a stream cut short: retry or fall back.
    Unavailable,
    /// 401/403: the key is wrong; retrying cannot help.
    Auth,
    /// 400/404/422: the request is wrong for this model; retrying cannot help.
    BadRequest,
    /// The provider answered something we cannot read (HTML, broken JSON,
    /// bad tool arguments): retry, since another attempt may be well formed.
    BadResponse,
    /// The answer exceeded the size cap.
    TooLarge,
}

impl ErrorKind {
    /// Whether another attempt (or another endpoint) may succeed.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited | ErrorKind::Unavailable | ErrorKind::BadResponse
        )
    }
}

/// A failed model call: the kind, the provider's status when there was one,
/// and a short excerpt of what it said.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{provider}: {message}{}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
pub struct LlmError {
    pub kind: ErrorKind,
    pub provider: String,
    pub status: Option<u16>,
    pub message: String,
    /// From `Retry-After`.
    pub retry_after: Option<Duration>,
}

/// How much of a provider's error body is kept.
const EXCERPT: usize = 300;

impl LlmError {
    pub fn new(kind: ErrorKind, provider: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            provider: provider.to_owned(),
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The error for an HTTP status and body.
    pub fn from_status(
        provider: &str,
        status: u16,
        body: &str,
        retry_after: Option<Duration>,
    ) -> Self {
        let kind = match status {
            429 => ErrorKind::RateLimited,
            401 | 403 => ErrorKind::Auth,
            408 | 500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::BadRequest,
        };
        Self {
            kind,
            provider: provider.to_owned(),
            status: Some(status),
            message: excerpt(body),
            retry_after,
        }
    }

    /// A transport failure from reqwest.
    pub fn transport(provider: &str, err: &reqwest::Error) -> Self {
        let what = if err.is_timeout() {
            "timed out"
        } else if err.is_connect() {
            "could not connect"
        } else {
            "connection failed"
        };
        Self::new(ErrorKind::Unavailable, provider, format!("{what}: {err}"))
    }
}

/// The first characters of a body, on one line.
pub(crate) fn excerpt(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > EXCERPT {
        format!("{}…", one_line.chars().take(EXCERPT).collect::<String>())
    } else {
        one_line
    }
}
