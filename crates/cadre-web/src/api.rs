//! The UI's only way to data: the HTTP API itself, called in process.
//!
//! Every page reads and every form writes through the same routes API
//! clients use (`tower::ServiceExt::oneshot` on the API router), so the UI
//! gets the API's authorization, tenant isolation, validation and audit
//! without a second copy of any of them.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Response;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::ServiceExt as _;

/// Bodies the UI reads are small; anything bigger is an error, not a page.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// The in-process API client.
#[derive(Clone)]
pub struct Api {
    router: Router,
}

/// An API error as its envelope gives it.
#[derive(Debug, Clone)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// The request field at fault, when the API names one.
    pub field: Option<String>,
}

impl ApiFailure {
    pub fn is_not_found(&self) -> bool {
        self.status == StatusCode::NOT_FOUND
    }

    pub fn is_unauthorized(&self) -> bool {
        self.status == StatusCode::UNAUTHORIZED
    }

    /// A refusal the page that sent the form shows in place (bad input, a
    /// conflict, a lock, a permission, a quota), with the API's status.
    /// Not "signed out" (sign in again) nor "not found" (which must look
    /// the same for a stranger as for an unknown id).
    pub fn shown_on_page(&self) -> bool {
        self.status.is_client_error()
            && self.status != StatusCode::UNAUTHORIZED
            && self.status != StatusCode::NOT_FOUND
    }

    fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "INTERNAL_ERROR".to_owned(),
            message: message.into(),
            field: None,
        }
    }
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

/// One call: who makes it and from where.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller<'a> {
    /// The session's access token; `None` for the sign-in flow.
    pub token: Option<&'a str>,
    /// The browser's address, so audit entries and throttles see it.
    pub peer: Option<SocketAddr>,
}

/// A list answer: the items and how many there are in all.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub total: u64,
}

impl Api {
    pub fn new(router: Router) -> Self {
        Self { router }
    }

    /// GET `path` (under `/api/v1`) and read `data`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        who: Caller<'_>,
        path: impl Into<String>,
    ) -> Result<T, ApiFailure> {
        let body = self.call(who, Method::GET, &path.into(), None).await?;
        data(body)
    }

    /// GET a list route and read its items and total.
    pub async fn list<T: DeserializeOwned>(
        &self,
        who: Caller<'_>,
        path: impl Into<String>,
    ) -> Result<Listed<T>, ApiFailure> {
        let body = self.call(who, Method::GET, &path.into(), None).await?;
        let total = body["pagination"]["totalItems"].as_u64().unwrap_or(0);
        Ok(Listed {
            items: data(body)?,
            total,
        })
    }

    /// A write; `data` of the answer (`Null` for 204).
    pub async fn send(
        &self,
        who: Caller<'_>,
        method: Method,
        path: impl Into<String>,
        body: Option<&Value>,
    ) -> Result<Value, ApiFailure> {
        let answer = self.call(who, method, &path.into(), body).await?;
        Ok(answer.get("data").cloned().unwrap_or(Value::Null))
    }

    async fn call(
        &self,
        who: Caller<'_>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiFailure> {
        let response = self.respond(who, method.clone(), path, body).await?;
        let status = response.status();
        let bytes = read(response).await?;
        if status == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        let body: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiFailure::internal(format!(
                "the API answered {method} {path} with something other than JSON: {e}"
            ))
        })?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(refusal(status, &body))
        }
    }

    /// A script's JSON request passed to the API as it came, and the API's
    /// answer passed back as it comes: an event stream, or the API's own
    /// error envelope (so bad input is refused by the API's own rules and
    /// in its own words).
    pub async fn forward(
        &self,
        who: Caller<'_>,
        method: Method,
        path: impl Into<String>,
        json: axum::body::Bytes,
    ) -> Result<Response, ApiFailure> {
        let request = self.request(who, method, &path.into(), Some(Body::from(json)))?;
        Ok(self.answer(request).await)
    }

    async fn respond(
        &self,
        who: Caller<'_>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, ApiFailure> {
        let body = body.map(|json| Body::from(json.to_string()));
        let request = self.request(who, method, path, body)?;
        Ok(self.answer(request).await)
    }

    async fn answer(&self, request: Request<Body>) -> Response {
        match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    fn request(
        &self,
        who: Caller<'_>,
        method: Method,
        path: &str,
        json: Option<Body>,
    ) -> Result<Request<Body>, ApiFailure> {
        let is_read = method == Method::GET;
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("/api/v1{path}"));
        if let Some(token) = who.token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match json {
            Some(json) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                json
            }
            None => Body::empty(),
        };
        let mut request = builder
            .body(body)
            .map_err(|e| ApiFailure::internal(format!("building an API request failed: {e}")))?;
        if let Some(peer) = who.peer {
            request.extensions_mut().insert(ConnectInfo(peer));
        }
        if is_read {
            // Page loads never count against the user's API budget (SPEC §7.4).
            request.extensions_mut().insert(cadre_server::auth::UiRead);
        }
        Ok(request)
    }
}

async fn read(response: Response) -> Result<axum::body::Bytes, ApiFailure> {
    axum::body::to_bytes(response.into_body(), MAX_BODY)
        .await
        .map_err(|e| ApiFailure::internal(format!("reading the API's answer failed: {e}")))
}

/// The API's error envelope as a failure.
fn refusal(status: StatusCode, body: &Value) -> ApiFailure {
    let error = &body["error"];
    ApiFailure {
        status,
        code: error["code"]
            .as_str()
            .unwrap_or("INTERNAL_ERROR")
            .to_owned(),
        message: error["message"]
            .as_str()
            .unwrap_or("the request failed")
            .to_owned(),
        field: error["field"].as_str().map(str::to_owned),
    }
}

fn data<T: DeserializeOwned>(mut body: Value) -> Result<T, ApiFailure> {
    let data = body.get_mut("data").map(Value::take).unwrap_or(Value::Null);
    serde_json::from_value(data)
        .map_err(|e| ApiFailure::internal(format!("the API's answer had an unexpected shape: {e}")))
}
