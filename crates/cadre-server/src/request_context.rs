//! The request id of the request being served, readable anywhere inside it.
//!
//! Set by [`crate::middleware::request_context`] for the duration of each
//! request, so envelopes and log lines carry it without threading it through
//! every function.

use axum::http::HeaderMap;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The header clients may send and always get back.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The current request's id, or `"none"` outside a request.
pub fn request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "none".to_owned())
}

/// Runs `fut` with `id` as the current request id.
pub(crate) async fn scope<F: Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// The client's id when it is usable, a new one otherwise. Client ids are
/// echoed into logs and headers, so only short, plain ones are kept.
pub(crate) fn from_headers(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(|| cadre_types::new_id().to_string())
}

fn is_acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_client_ids_are_kept_and_odd_ones_replaced() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID_HEADER, "abc-123_x.y:z".parse().unwrap());
        assert_eq!(from_headers(&h), "abc-123_x.y:z");
        h.insert(REQUEST_ID_HEADER, "has space\"quote".parse().unwrap());
        let generated = from_headers(&h);
        assert_ne!(generated, "has space\"quote");
        assert!(uuid::Uuid::parse_str(&generated).is_ok());
        h.insert(REQUEST_ID_HEADER, "a".repeat(129).parse().unwrap());
        assert_eq!(from_headers(&h).len(), 36);
    }
}
