//! Shared HTTP plumbing for providers: sending a request, turning error
//! answers into typed errors, and reading Server-Sent Events with a cap.

use std::time::Duration;

use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};

use crate::error::{ErrorKind, LlmError, excerpt};

/// Largest non-streamed answer read, in bytes.
pub(crate) const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// Sends the request; a non-2xx answer becomes an [`LlmError`] with the
/// status, `Retry-After` and an excerpt of the body.
pub(crate) async fn send(
    provider: &str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, LlmError> {
    let response = request
        .send()
        .await
        .map_err(|e| LlmError::transport(provider, &e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = read_capped(provider, response).await.unwrap_or_default();
    Err(LlmError::from_status(
        provider,
        status.as_u16(),
        &String::from_utf8_lossy(&body),
        retry_after,
    ))
}

/// Sends the request and parses its JSON answer (capped, errors typed).
pub(crate) async fn fetch_json<T: serde::de::DeserializeOwned>(
    provider: &str,
    request: reqwest::RequestBuilder,
) -> Result<T, LlmError> {
    let response = send(provider, request).await?;
    let body = read_capped(provider, response).await?;
    parse_json(provider, &body)
}

/// Reads a whole body, refusing one over [`MAX_RESPONSE_BYTES`].
pub(crate) async fn read_capped(
    provider: &str,
    response: reqwest::Response,
) -> Result<Vec<u8>, LlmError> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| LlmError::transport(provider, &e))?;
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(LlmError::new(
                ErrorKind::TooLarge,
                provider,
                format!("answer larger than {MAX_RESPONSE_BYTES} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses a JSON answer, naming what was wrong with an excerpt.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    provider: &str,
    body: &[u8],
) -> Result<T, LlmError> {
    serde_json::from_slice(body).map_err(|e| {
        LlmError::new(
            ErrorKind::BadResponse,
            provider,
            format!(
                "unreadable answer ({e}): {}",
                excerpt(&String::from_utf8_lossy(body))
            ),
        )
    })
}

/// The SSE events of a streamed answer. Each event's data is capped; a
/// transport error mid-stream is `Unavailable` (the stream was cut short).
pub(crate) fn events(
    provider: &str,
    response: reqwest::Response,
) -> impl Stream<Item = Result<Event, LlmError>> + Send + 'static {
    let provider = provider.to_owned();
    response
        .bytes_stream()
        .eventsource()
        .map(move |item| match item {
            Ok(event) if event.data.len() > MAX_RESPONSE_BYTES => Err(LlmError::new(
                ErrorKind::TooLarge,
                &provider,
                "a streamed event is too large",
            )),
            Ok(event) => Ok(event),
            Err(e) => Err(LlmError::new(
                ErrorKind::Unavailable,
                &provider,
                format!("stream interrupted: {e}"),
            )),
        })
}

/// Parses tool-call arguments; text that is not JSON is a bad response.
pub(crate) fn tool_arguments(
    provider: &str,
    name: &str,
    text: &str,
) -> Result<serde_json::Value, LlmError> {
    if text.trim().is_empty() {
        return Ok(serde_json::json!({}));
    }
    serde_json::from_str(text).map_err(|e| {
        LlmError::new(
            ErrorKind::BadResponse,
            provider,
            format!(
                "tool call {name} has arguments that are not JSON ({e}): {}",
                excerpt(text)
            ),
        )
    })
}
