//! API keys: shown once, scoped, revocable.

use reqwest::Method;
use serde_json::json;

use crate::harness::{TestServer, body, expect_error};

#[tokio::test]
async fn an_api_key_works_until_revoked_then_401() {
    let app = TestServer::start().await;
    let owner = app.user_token("owner@example.com").await;
    let org = app.create_org(&owner, "Acme").await;
    let resp = app
        .authed(Method::POST, "/api/v1/api-keys", &owner)
        .json(&json!({"name": "ci", "orgId": org, "scopes": ["read", "write"]}))
        .send()
        .await
        .unwrap();
    let (status, _, created) = body(resp).await;
    assert_eq!(status, 201, "{created}");
    let key = created["data"]["key"].as_str().unwrap().to_owned();
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("cdr_"));
    assert_eq!(created["data"]["keyPrefix"].as_str().unwrap(), &key[..8]);

    let with_key = |path: String| {
        app.client
            .get(app.url(&path))
            .header("x-api-key", key.clone())
            .send()
    };
    let (status, _, projects) = body(
        with_key(format!("/api/v1/orgs/{org}/projects"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{projects}");
    assert!(projects["data"][0]["name"] == "Inbox");
    // Bearer works too.
    assert_eq!(
        app.authed(Method::GET, &format!("/api/v1/orgs/{org}/projects"), &key)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let (_, _, listed) = body(
        app.authed(
            Method::GET,
            &format!("/api/v1/api-keys?orgId={org}"),
            &owner,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert!(
        listed["data"][0].get("key").is_none(),
        "the key is shown only once"
    );

    assert_eq!(
        app.authed(Method::DELETE, &format!("/api/v1/api-keys/{id}"), &owner)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    expect_error(
        with_key(format!("/api/v1/orgs/{org}/projects"))
            .await
            .unwrap(),
        401,
        "INVALID_API_KEY",
    )
    .await;
}

#[tokio::test]
async fn a_read_key_cannot_write_and_a_key_stays_in_its_org() {
    let app = TestServer::start().await;
    let owner = app.user_token("owner@example.com").await;
    let org = app.create_org(&owner, "Acme").await;
    let other_org = app.create_org(&owner, "Other").await;
    let resp = app
        .authed(Method::POST, "/api/v1/api-keys", &owner)
        .json(&json!({"name": "ro", "orgId": org, "scopes": ["read"]}))
        .send()
        .await
        .unwrap();
    let key = body(resp).await.2["data"]["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let write = app
        .client
        .post(app.url(&format!("/api/v1/orgs/{org}/projects")))
        .header("x-api-key", &key)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(write, 403, "FORBIDDEN").await;
    let other = app
        .client
        .get(app.url(&format!("/api/v1/orgs/{other_org}/projects")))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    expect_error(other, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn an_api_key_with_its_own_limit_gets_rate_limit_headers_and_429() {
    let app = TestServer::start().await;
    let owner = app.user_token("owner@example.com").await;
    let org = app.create_org(&owner, "Acme").await;
    let resp = app
        .authed(Method::POST, "/api/v1/api-keys", &owner)
        .json(&json!({"name": "tight", "orgId": org, "scopes": ["read"], "rateLimitPerMinute": 2}))
        .send()
        .await
        .unwrap();
    let key = body(resp).await.2["data"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let get = || {
        app.client
            .get(app.url(&format!("/api/v1/orgs/{org}/projects")))
            .header("x-api-key", &key)
            .send()
    };
    let first = get().await.unwrap();
    assert_eq!(first.headers()["x-ratelimit-limit"], "2");
    assert_eq!(first.headers()["x-ratelimit-remaining"], "1");
    assert!(first.headers().contains_key("x-ratelimit-reset"));
    assert_eq!(get().await.unwrap().status(), 200);
    let third = get().await.unwrap();
    assert!(third.headers().contains_key("retry-after"));
    assert_eq!(third.headers()["x-ratelimit-remaining"], "0");
    expect_error(third, 429, "RATE_LIMIT_EXCEEDED").await;
}

#[tokio::test]
async fn bad_key_requests_are_validation_errors() {
    let app = TestServer::start().await;
    let owner = app.user_token("owner@example.com").await;
    let org = app.create_org(&owner, "Acme").await;
    let none = app
        .authed(Method::POST, "/api/v1/api-keys", &owner)
        .json(&json!({"name": "x", "orgId": org, "scopes": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_error(none, 400, "VALIDATION_ERROR").await["error"]["field"],
        "scopes"
    );
    let unknown = app
        .authed(Method::POST, "/api/v1/api-keys", &owner)
        .json(&json!({"name": "x", "orgId": org, "scopes": ["root"]}))
        .send()
        .await
        .unwrap();
    expect_error(unknown, 422, "VALIDATION_ERROR").await;
    let past = app
        .authed(Method::POST, "/api/v1/api-keys", &owner)
        .json(&json!({"name": "x", "orgId": org, "scopes": ["read"], "expiresAt": "2020-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_error(past, 400, "VALIDATION_ERROR").await["error"]["field"],
        "expiresAt"
    );
}
