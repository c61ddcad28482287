//! Every answer is an envelope with the right status and code.

use crate::harness::{TestServer, body, expect_error};

#[tokio::test]
async fn health_answers_the_success_envelope() {
    let app = TestServer::start().await;
    let (status, id, json) = body(app.get("/api/v1/health").await).await;
    assert_eq!(status, 200);
    assert_eq!(json["success"], true);
    assert_eq!(json["data"]["status"], "ok");
    assert_eq!(json["data"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(json["data"]["uptimeSeconds"].is_u64());
    assert_eq!(json["meta"]["requestId"], id.as_str());
    assert!(json["meta"]["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn detailed_health_reports_the_database() {
    let app = TestServer::start().await;
    let (status, _, json) = body(app.get("/api/v1/health/detailed").await).await;
    assert_eq!(status, 200, "{json}");
    let db = &json["data"]["database"];
    assert_eq!(db["status"], "up");
    assert_eq!(db["backend"], "sqlite");
    assert!(db["latencyMs"].as_f64().is_some_and(|ms| ms >= 0.0), "{db}");
    assert_eq!(db["schemaVersion"], db["latestSchemaVersion"]);
    assert_eq!(json["data"]["status"], "ok");
    assert_eq!(json["data"]["queue"]["depth"], 0);
    let providers = &json["data"]["modelProviders"];
    assert_eq!(
        (
            providers["status"].as_str(),
            providers["openaiKey"].as_bool()
        ),
        (Some("up"), Some(false)),
        "{providers}"
    );
    let bus = &json["data"]["eventBus"];
    assert_eq!(
        (&bus["status"], &bus["backend"]),
        (&serde_json::json!("up"), &serde_json::json!("memory")),
        "{bus}"
    );
}

#[tokio::test]
async fn detailed_health_is_503_with_the_report_when_the_database_is_down() {
    let app = TestServer::start().await;
    app.db.store.close().await;
    let json = expect_error(
        app.get("/api/v1/health/detailed").await,
        503,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    assert_eq!(
        json["error"]["details"]["database"]["status"], "down",
        "{json}"
    );
    // Liveness does not depend on the database.
    assert_eq!(app.get("/api/v1/health").await.status(), 200);
}

#[tokio::test]
async fn a_plain_client_request_id_is_echoed() {
    let app = TestServer::start().await;
    let resp = app
        .client
        .get(app.url("/api/v1/health"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    let (_, id, json) = body(resp).await;
    assert_eq!(id, "trace-abc-123");
    assert_eq!(json["meta"]["requestId"], "trace-abc-123");
}

#[tokio::test]
async fn unknown_route_is_404_not_found() {
    let app = TestServer::start().await;
    expect_error(app.get("/api/v1/no-such-thing").await, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let app = TestServer::start().await;
    let resp = app
        .client
        .delete(app.url("/api/v1/health"))
        .send()
        .await
        .unwrap();
    let allow = resp
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned());
    expect_error(resp, 405, "METHOD_NOT_ALLOWED").await;
    assert!(
        allow.is_some_and(|a| a.contains("GET")),
        "the Allow header survives the envelope"
    );
}

#[tokio::test]
async fn valid_json_body_is_accepted() {
    let app = TestServer::start().await;
    let (status, _, json) = body(
        app.post_json("/probe/echo", r#"{"name":"a","count":2}"#)
            .await,
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(json["data"], serde_json::json!({"name": "a", "count": 2}));
}

#[tokio::test]
async fn malformed_json_is_400_validation_error() {
    let app = TestServer::start().await;
    let json = expect_error(
        app.post_json("/probe/echo", r#"{"name": "a", "#).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON"),
        "{json}"
    );
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_422_naming_the_field() {
    let app = TestServer::start().await;
    let json = expect_error(
        app.post_json("/probe/echo", r#"{"name":"a","count":"many"}"#)
            .await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(json["error"]["field"], "count", "{json}");
}

#[tokio::test]
async fn body_over_one_mebibyte_is_413() {
    let app = TestServer::start().await;
    let big = format!(r#"{{"name":"{}","count":1}}"#, "x".repeat(1024 * 1024 + 1));
    expect_error(
        app.post_json("/probe/echo", &big).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;

    // Without a declared length the limit applies as the body is read.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(big.clone().into_bytes())];
    let resp = app
        .client
        .post(app.url("/probe/echo"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    expect_error(resp, 413, "PAYLOAD_TOO_LARGE").await;
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = TestServer::start().await;
    let resp = app
        .client
        .post(app.url("/probe/echo"))
        .header("content-type", "text/plain")
        .body(r#"{"name":"a","count":1}"#)
        .send()
        .await
        .unwrap();
    expect_error(resp, 415, "UNSUPPORTED_MEDIA_TYPE").await;
}

#[tokio::test]
async fn a_panic_is_500_and_leaks_nothing() {
    let app = TestServer::start().await;
    let resp = app.get("/probe/panic").await;
    let json = expect_error(resp, 500, "INTERNAL_ERROR").await;
    assert!(!json.to_string().contains("/etc/secret"), "{json}");
    // The server keeps serving.
    assert_eq!(app.get("/api/v1/health").await.status(), 200);
}

#[tokio::test]
async fn an_internal_error_hides_its_cause() {
    let app = TestServer::start().await;
    let json = expect_error(app.get("/probe/internal").await, 500, "INTERNAL_ERROR").await;
    let text = json.to_string();
    assert!(
        !text.contains("hunter22") && !text.contains("db.internal"),
        "{text}"
    );
}
