//! Extractors that answer bad input with the error envelope instead of the
//! framework's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

/// A JSON body. Wrong content type → 415; body over the limit → 413; malformed
/// JSON → 400; JSON of the wrong shape → 422 naming the offending `field`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "expected a JSON body: send Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            let code = ErrorCode::for_status(status);
            let message = if code == ErrorCode::PayloadTooLarge {
                code.default_message().to_owned()
            } else {
                rejection.body_text()
            };
            ApiError::new(code, message).with_status(status)
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON body that may be left out entirely (read it as `Bytes`).
pub fn optional_body<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(body)
}

fn is_json(req: &Request) -> bool {
    let Some(value) = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses JSON, reporting syntax errors by position and shape errors by field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_data() {
            let e = ApiError::new(ErrorCode::ValidationError, data_error_message(&inner))
                .with_status(axum::http::StatusCode::UNPROCESSABLE_ENTITY);
            if path == "." { e } else { e.with_field(path) }
        } else {
            malformed(&inner)
        }
    })?;
    // Trailing garbage after a valid document is malformed input too.
    de.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

fn malformed(err: &serde_json::Error) -> ApiError {
    ApiError::new(ErrorCode::ValidationError, format!("malformed JSON: {err}"))
}

/// serde's message without its " at line L column C" suffix, which points
/// into our internal buffer rather than anything useful to the client.
fn data_error_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields exist to be parsed")]
    struct Probe {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[expect(dead_code, reason = "fields exist to be parsed")]
    struct Inner {
        count: u32,
    }

    #[test]
    fn wrong_type_names_the_nested_field() {
        let err = parse_json::<Probe>(br#"{"name":"x","inner":{"count":"many"}}"#).unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.field.as_deref(), Some("inner.count"));
        assert!(err.message.contains("invalid type"), "{}", err.message);
    }

    #[test]
    fn missing_field_is_a_validation_error() {
        let err = parse_json::<Probe>(br#"{"inner":{"count":1}}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::ValidationError);
        assert!(
            err.message.contains("missing field `name`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn syntax_error_is_400_malformed() {
        let err = parse_json::<Probe>(br#"{"name": "#).unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(err.message.starts_with("malformed JSON"), "{}", err.message);
        let err = parse_json::<Probe>(br#"{"name":"x","inner":{"count":1}} trailing"#).unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST);
    }
}

/// Query parameters; a bad value is 400 `VALIDATION_ERROR`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|err| {
                let field = err.path().to_string();
                ApiError::new(
                    ErrorCode::ValidationError,
                    format!("invalid query parameter: {}", err.into_inner()),
                )
                .with_field(field)
            })
    }
}

/// Path parameters. An id that cannot be parsed names nothing, so it is 404.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(|_| ApiError::not_found("resource"))
    }
}

/// `?page=&pageSize=` (1-based; page size 1–100, default 20).
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    #[serde(default = "first_page")]
    pub page: u32,
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

pub(crate) fn first_page() -> u32 {
    1
}

pub(crate) fn default_page_size() -> u32 {
    20
}

impl PageQuery {
    pub fn page(self) -> Result<cadre_store::Page, ApiError> {
        if self.page == 0 {
            return Err(ApiError::validation("page", "page starts at 1"));
        }
        if !(1..=100).contains(&self.page_size) {
            return Err(ApiError::validation(
                "pageSize",
                "pageSize must be 1 to 100",
            ));
        }
        Ok(cadre_store::Page {
            page: self.page,
            page_size: self.page_size,
        })
    }
}
