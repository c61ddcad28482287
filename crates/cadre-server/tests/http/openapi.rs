//! The OpenAPI document is served and the committed copy is current.

use crate::harness::TestServer;

#[tokio::test]
async fn openapi_is_served_and_lists_every_api_route() {
    let app = TestServer::start().await;
    let resp = app.get("/api/v1/openapi.json").await;
    assert_eq!(resp.status(), 200);
    let doc: serde_json::Value = resp.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in ["/api/v1/health", "/api/v1/health/detailed"] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} missing from OpenAPI"
        );
    }
}

#[test]
fn committed_openapi_matches_the_code() {
    let committed_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let committed = std::fs::read_to_string(committed_path).unwrap_or_default();
    let current = format!("{}\n", cadre_server::openapi::json());
    assert!(
        committed == current,
        "docs/openapi.json is stale: run `cargo run -- openapi > docs/openapi.json` and commit it"
    );
}
