//! With Redis, rate-limit counters are shared by every instance.

use serde_json::json;

use crate::harness::{TestServer, expect_error};

#[tokio::test]
async fn two_instances_on_one_redis_share_the_login_throttle() {
    let Some(redis) = cadre_config::testing::redis_url() else {
        eprintln!(
            "skipping Redis test: set CADRE_TEST_REDIS_URL (for example redis://127.0.0.1:6379) to run it"
        );
        return;
    };
    let a = TestServer::start_with(&[("CADRE_REDIS_URL", &redis)]).await;
    let b = TestServer::start_with(&[("CADRE_REDIS_URL", &redis)]).await;
    assert_eq!(a.state.limits().backend(), "redis");
    // A fresh address per run: counters in Redis outlive the test.
    let email = format!("shared-{}@example.com", uuid::Uuid::now_v7().simple());
    a.signup(&email).await;
    b.signup(&email).await;

    let attempt = |app: &TestServer| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": "wrong password"}))
            .send()
    };
    for app in [&a, &b, &a, &b, &a] {
        assert_eq!(attempt(app).await.unwrap().status(), 401);
    }
    // The sixth attempt, on the instance that saw only two, is refused.
    let refused = attempt(&b).await.unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    expect_error(refused, 429, "RATE_LIMIT_EXCEEDED").await;
}
