//! Timeouts, CORS, security headers and metrics.

use crate::harness::{TestServer, expect_error};

#[tokio::test]
async fn a_request_over_the_timeout_is_503() {
    let app = TestServer::start_with(&[("CADRE_SERVER_REQUEST_TIMEOUT_SECS", "1")]).await;
    let json = expect_error(
        app.get("/probe/slow?ms=3000").await,
        503,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 seconds"),
        "{json}"
    );
}

#[tokio::test]
async fn cors_is_closed_unless_configured() {
    let app = TestServer::start().await;
    let resp = app
        .client
        .get(app.url("/api/v1/health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());

    let app =
        TestServer::start_with(&[("CADRE_SERVER_CORS_ORIGINS", r#"["https://ui.example"]"#)]).await;
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/health"))
        .header("origin", "https://ui.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://ui.example"
    );
    let other = app
        .client
        .get(app.url("/api/v1/health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        other.headers().get("access-control-allow-origin").is_none(),
        "only configured origins"
    );
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let app = TestServer::start().await;
    for path in ["/api/v1/health", "/api/v1/missing"] {
        let resp = app.get(path).await;
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(h.contains_key("content-security-policy"), "{path}");
    }
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = TestServer::start().await;
    // Unique ids: the raw paths must never appear as labels.
    let ids = [
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
    ];
    for id in &ids {
        assert_eq!(app.get(&format!("/probe/items/{id}")).await.status(), 200);
    }
    let before = count(&app, "/probe/items/{id}", "200").await;
    assert_eq!(
        app.get(&format!("/probe/items/{}", ids[0])).await.status(),
        200
    );
    let after = count(&app, "/probe/items/{id}", "200").await;
    assert!(after > before, "the counter grows: {before} -> {after}");

    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "histogram exported"
    );
    for id in &ids {
        assert!(!text.contains(id.as_str()), "raw path leaked into labels");
    }
}

/// The value of `http_requests_total` for one route and status.
async fn count(app: &TestServer, route: &str, status: &str) -> f64 {
    let resp = app.get("/metrics").await;
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .filter(|l| {
            l.contains(&format!("route=\"{route}\"")) && l.contains(&format!("status=\"{status}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
