//! The OpenAPI 3.1 description, generated from the route table and handler
//! annotations. A copy is committed at `docs/openapi.json`; a test fails when
//! it is stale.

use std::sync::OnceLock;

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(info(
    title = "Cadre API",
    description = "Run a workforce of AI agents under human supervision. Every response is wrapped in the success envelope `{success, data, meta}` or the error envelope `{success: false, error: {code, message, details, field, requestId}, timestamp}`.",
))]
struct ApiDoc;

/// The OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut api) = utoipa_axum::router::OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::routes::api_v1())
        .split_for_parts();
    api.info.version = cadre_types::VERSION.to_owned();
    api
}

/// The document as pretty JSON, built once.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document()
            .to_pretty_json()
            .unwrap_or_else(|_| "{}".to_owned())
    })
}
