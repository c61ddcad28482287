//! Forms posted by pages: the fields, after the visitor's CSRF token has
//! been checked.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::api::ApiFailure;
use crate::session::Visit;
use crate::view::PageError;

/// Forms are small; uploads do not come this way.
const MAX_FORM: usize = 1024 * 1024;

/// A posted form of `T`, its `_csrf` field checked.
pub struct Posted<T>(pub T);

#[derive(Deserialize)]
struct CsrfField {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Posted<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let visit = req
            .extensions()
            .get::<Visit>()
            .cloned()
            .ok_or_else(|| refused(StatusCode::INTERNAL_SERVER_ERROR, "no visit"))?;
        let bytes = axum::body::to_bytes(req.into_body(), MAX_FORM)
            .await
            .map_err(|_| {
                refused(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The form is larger than 1 MiB.",
                )
            })?;
        let field: CsrfField = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
            refused(
                StatusCode::BAD_REQUEST,
                &format!("The form could not be read: {e}"),
            )
        })?;
        if !visit.csrf_matches(&field.csrf) {
            return Err(expired());
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
            refused(
                StatusCode::BAD_REQUEST,
                &format!("The form could not be read: {e}"),
            )
        })?;
        Ok(Posted(form))
    }
}

/// Checks the `X-CSRF-Token` header scripts send with their writes.
pub fn check_header(visit: &Visit, headers: &HeaderMap) -> Result<(), PageError> {
    let token = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if visit.csrf_matches(token) {
        Ok(())
    } else {
        Err(expired())
    }
}

fn expired() -> PageError {
    refused(
        StatusCode::FORBIDDEN,
        "This form has expired or did not come from this site. Reload the page and try again.",
    )
}

fn refused(status: StatusCode, message: &str) -> PageError {
    let code = match status {
        StatusCode::FORBIDDEN => "FORBIDDEN",
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::BAD_REQUEST => "VALIDATION_ERROR",
        _ => "INTERNAL_ERROR",
    };
    PageError::Api(ApiFailure {
        status,
        code: code.to_owned(),
        message: message.to_owned(),
        field: None,
    })
}

/// An optional text field: blank reads as absent.
pub fn blank_is_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty()))
}
