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

/// A page of a list: the success envelope plus `pagination` (SPEC §7.1).
#[derive(Debug)]
pub struct ApiList<T> {
    items: Vec<T>,
    page: cadre_store::Page,
    total: u64,
}

impl<T: Serialize> ApiList<T> {
    pub fn new(items: Vec<T>, page: cadre_store::Page, total: u64) -> Self {
        Self { items, page, total }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Pagination {
    page: u32,
    page_size: u32,
    total_items: u64,
    total_pages: u64,
    has_next: bool,
    has_prev: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListEnvelope<T> {
    success: bool,
    data: Vec<T>,
    pagination: Pagination,
    meta: Meta,
}

impl<T: Serialize> IntoResponse for ApiList<T> {
    fn into_response(self) -> Response {
        let size = u64::from(self.page.page_size.max(1));
        let total_pages = self.total.div_ceil(size);
        let page = u64::from(self.page.page);
        let body = ListEnvelope {
            success: true,
            data: self.items,
            pagination: Pagination {
                page: self.page.page,
                page_size: self.page.page_size,
                total_items: self.total,
                total_pages,
                has_next: page < total_pages,
                has_prev: page > 1,
            },
            meta: Meta::now(),
        };
        let mut response = (StatusCode::OK, axum::Json(body)).into_response();
        response.extensions_mut().insert(Enveloped);
        response
    }
}

/// 204 No Content (nothing to wrap).
pub fn no_content() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.extensions_mut().insert(Enveloped);
    response
}
