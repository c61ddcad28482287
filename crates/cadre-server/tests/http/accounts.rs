//! Sign-up, sign-in, refresh rotation, sign-out, password reset, profile.

use reqwest::Method;
use serde_json::json;

use crate::harness::{TestServer, body, expect_error};

#[tokio::test]
async fn signup_then_login_then_me() {
    let app = TestServer::start().await;
    let session = app.signup("Ada@Example.com").await;
    assert_eq!(session["user"]["email"], "ada@example.com");
    assert_eq!(
        session["user"]["platformRole"], "super_admin",
        "the first user of an empty instance"
    );
    assert_eq!(session["expiresIn"], 900);
    assert!(session["refreshToken"].as_str().unwrap().starts_with("rt_"));

    let login = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "ada@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    let (status, _, login) = body(login).await;
    assert_eq!(status, 200, "{login}");
    let token = login["data"]["accessToken"].as_str().unwrap();

    let (status, _, me) = body(
        app.authed(Method::GET, "/api/v1/auth/me", token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(me["data"]["email"], "ada@example.com");
    assert!(me["data"]["lastLoginAt"].is_string());
    assert!(
        me["data"].get("passwordHash").is_none(),
        "never in a response"
    );

    let second = app.signup("bob@example.com").await;
    assert_eq!(second["user"]["platformRole"], "user");
}

#[tokio::test]
async fn signup_validates_every_field_and_refuses_a_taken_email() {
    let app = TestServer::start().await;
    for (body_json, field) in [
        (
            json!({"email": "not-an-email", "password": "long enough pw", "name": "A"}),
            "email",
        ),
        (
            json!({"email": "a@example.com", "password": "short", "name": "A"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": "long enough pw", "name": "  "}),
            "name",
        ),
    ] {
        let resp = app
            .client
            .post(app.url("/api/v1/auth/signup"))
            .json(&body_json)
            .send()
            .await
            .unwrap();
        let json = expect_error(resp, 400, "VALIDATION_ERROR").await;
        assert_eq!(json["error"]["field"], field, "{json}");
    }
    let missing = app
        .client
        .post(app.url("/api/v1/auth/signup"))
        .json(&json!({"email": "a@example.com"}))
        .send()
        .await
        .unwrap();
    expect_error(missing, 422, "VALIDATION_ERROR").await;

    app.signup("taken@example.com").await;
    let again = app
        .client
        .post(app.url("/api/v1/auth/signup"))
        .json(&json!({"email": "TAKEN@example.com", "password": "another password", "name": "B"}))
        .send()
        .await
        .unwrap();
    expect_error(again, 409, "CONFLICT").await;
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = TestServer::start().await;
    app.signup("ada@example.com").await;
    for (email, password) in [
        ("ada@example.com", "wrong password"),
        ("nobody@example.com", "whatever pw"),
    ] {
        let resp = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        let json = expect_error(resp, 401, "INVALID_CREDENTIALS").await;
        assert_eq!(json["error"]["message"], "wrong email or password");
    }
}

#[tokio::test]
async fn the_sixth_login_attempt_in_15_minutes_is_429_with_retry_after() {
    let app = TestServer::start().await;
    app.signup("ada@example.com").await;
    for attempt in 1..=5 {
        let resp = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": "ada@example.com", "password": "wrong password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "attempt {attempt}");
    }
    let resp = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "ada@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    expect_error(resp, 429, "RATE_LIMIT_EXCEEDED").await;
}

#[tokio::test]
async fn a_refresh_token_rotates_and_its_reuse_revokes_the_family() {
    let app = TestServer::start().await;
    let first = app.signup("ada@example.com").await["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();

    let refresh = |token: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/api/v1/auth/refresh"))
                .json(&json!({"refreshToken": token}))
                .send()
                .await
                .unwrap()
        }
    };
    let (status, _, rotated) = body(refresh(first.clone()).await).await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["data"]["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(second, first);

    expect_error(refresh(first).await, 401, "INVALID_TOKEN").await;
    // The reuse revoked the family: the newest token is dead too.
    expect_error(refresh(second).await, 401, "INVALID_TOKEN").await;
    expect_error(
        refresh("rt_never_issued".into()).await,
        401,
        "INVALID_TOKEN",
    )
    .await;
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let app = TestServer::start().await;
    let refresh = app.signup("ada@example.com").await["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .json(&json!({"refreshToken": refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refreshToken": refresh}))
        .send()
        .await
        .unwrap();
    expect_error(resp, 401, "INVALID_TOKEN").await;
}

#[tokio::test]
async fn bad_tokens_get_the_right_codes() {
    let app = TestServer::start().await;
    expect_error(app.get("/api/v1/auth/me").await, 401, "MISSING_TOKEN").await;
    expect_error(
        app.authed(Method::GET, "/api/v1/auth/me", "garbage")
            .send()
            .await
            .unwrap(),
        401,
        "INVALID_TOKEN",
    )
    .await;
    let key = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .header("x-api-key", "cdr_not_a_real_key")
        .send()
        .await
        .unwrap();
    expect_error(key, 401, "INVALID_API_KEY").await;
}

#[tokio::test]
async fn password_change_needs_the_current_one_and_signs_out_other_sessions() {
    let app = TestServer::start().await;
    let session = app.signup("ada@example.com").await;
    let token = session["accessToken"].as_str().unwrap();
    let refresh = session["refreshToken"].as_str().unwrap();

    let wrong = app
        .authed(Method::PATCH, "/api/v1/auth/me", token)
        .json(&json!({"currentPassword": "nope nope", "newPassword": "brand new password"}))
        .send()
        .await
        .unwrap();
    let json = expect_error(wrong, 400, "VALIDATION_ERROR").await;
    assert_eq!(json["error"]["field"], "currentPassword");

    let ok = app
        .authed(Method::PATCH, "/api/v1/auth/me", token)
        .json(&json!({"currentPassword": "correct horse battery", "newPassword": "brand new password", "name": "Ada L."}))
        .send()
        .await
        .unwrap();
    let (status, _, me) = body(ok).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["data"]["name"], "Ada L.");
    let resp = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refreshToken": refresh}))
        .send()
        .await
        .unwrap();
    expect_error(resp, 401, "INVALID_TOKEN").await;
    let login = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "ada@example.com", "password": "brand new password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
}

#[tokio::test]
async fn forgot_password_answers_the_same_for_unknown_emails_and_is_throttled() {
    let app = TestServer::start().await;
    app.signup("ada@example.com").await;
    for email in ["ada@example.com", "nobody@example.com"] {
        let resp = app
            .client
            .post(app.url("/api/v1/auth/forgot-password"))
            .json(&json!({"email": email}))
            .send()
            .await
            .unwrap();
        let (status, _, json) = body(resp).await;
        assert_eq!(
            (status.as_u16(), &json["data"]),
            (202, &json!({"accepted": true}))
        );
    }
    for _ in 0..2 {
        app.client
            .post(app.url("/api/v1/auth/forgot-password"))
            .json(&json!({"email": "ada@example.com"}))
            .send()
            .await
            .unwrap();
    }
    let resp = app
        .client
        .post(app.url("/api/v1/auth/forgot-password"))
        .json(&json!({"email": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    expect_error(resp, 429, "RATE_LIMIT_EXCEEDED").await;
}

#[tokio::test]
async fn a_reset_token_sets_the_password_once() {
    let app = TestServer::start().await;
    app.signup("ada@example.com").await;
    // The link goes to the operator's log; the test reads the token the
    // service issued directly, as the operator would from the log.
    let (_, token) = app
        .state_accounts()
        .forgot_password("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    let reset = |t: &str| {
        app.client
            .post(app.url("/api/v1/auth/reset-password"))
            .json(&json!({"token": t, "password": "after the reset"}))
            .send()
    };
    assert_eq!(reset(&token).await.unwrap().status(), 204);
    expect_error(reset(&token).await.unwrap(), 401, "INVALID_TOKEN").await;
    let login = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "ada@example.com", "password": "after the reset"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
}
