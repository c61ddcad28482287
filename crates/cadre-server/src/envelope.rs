//! The success envelope of SPEC §7.1: `{"success":true,"data":…,"meta":{…}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::Enveloped;
use crate::request_context;

/// A successful answer carrying `data`.
#[derive(Debug)]
pub struct ApiResponse<T> {
    status: StatusCode,
    data: T,
}

impl<T: Serialize> ApiResponse<T> {
    /// 200 OK.
    pub fn ok(data: T) -> Self {
        Self {
            status: StatusCode::OK,
            data,
        }
    }

    /// 201 Created.
    pub fn created(data: T) -> Self {
        Self {
            status: StatusCode::CREATED,
            data,
        }
    }

    /// 202 Accepted (work queued).
    pub fn accepted(data: T) -> Self {
        Self {
            status: StatusCode::ACCEPTED,
            data,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<T> {
    success: bool,
    data: T,
    meta: Meta,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Meta {
    request_id: String,
    timestamp: String,
}

impl Meta {
    pub(crate) fn now() -> Self {
        Self {
            request_id: request_context::request_id(),
            timestamp: cadre_types::time::rfc3339(cadre_types::time::now()),
        }
    }
}

impl<T: Serialize> IntoResponse for ApiResponse<T> {
    fn into_response(self) -> Response {
        let body = Envelope {
            success: true,
            data: self.data,
            meta: Meta::now(),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        response.extensions_mut().insert(Enveloped);
        response
    }
}
