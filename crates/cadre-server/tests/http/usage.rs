//! `GET /orgs/{orgId}/usage`: spend by day against the plan's quota.

use serde_json::json;

use crate::chat::org_with_model;
use crate::harness::TestServer;

#[tokio::test]
async fn usage_counts_todays_executions_and_their_tokens() {
    let app = TestServer::start_with_workers().await;
    let (owner, org, _) = org_with_model(&app, "usage@example.com", None).await;
    let path = format!("/api/v1/orgs/{org}/usage");

    let before = app
        .call(reqwest::Method::GET, &path, &owner, json!(null), 200)
        .await;
    let days = before["days"].as_array().unwrap();
    assert_eq!(days.len(), 14, "{before}");
    let today = cadre_types::time::rfc3339(cadre_types::time::now())[..10].to_owned();
    assert_eq!(
        days[13]["date"],
        today.as_str(),
        "the last day is today: {before}"
    );
    assert!(days.iter().all(|d| d["executions"] == 0), "{before}");
    assert_eq!(before["today"]["tokens"], 0);
    assert_eq!(before["plan"], "free");

    let agent = app
        .agent(
            &owner,
            &org,
            json!({"name": "Brief", "instructions": "Work.", "model": "orchestra"}),
        )
        .await;
    let execution = app
        .execute(&owner, &agent, json!({"title": "Say hello"}))
        .await;
    let id = execution["id"].as_str().unwrap();
    let finished = loop {
        let e = app
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/executions/{id}"),
                &owner,
                json!(null),
                200,
            )
            .await;
        if e["finishedAt"].is_string() {
            break e;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let spent = finished["tokensIn"].as_i64().unwrap() + finished["tokensOut"].as_i64().unwrap();
    assert!(spent > 0, "the fake model reports usage: {finished}");

    let after = app
        .call(reqwest::Method::GET, &path, &owner, json!(null), 200)
        .await;
    assert_eq!(after["days"][13]["executions"], 1, "{after}");
    assert_eq!(after["days"][13]["tokens"], spent, "{after}");
    assert_eq!(after["days"][12]["executions"], 0, "{after}");
    assert_eq!(after["today"]["tokens"], spent, "{after}");
    assert!(
        after["month"]["tokens"].as_i64().unwrap() >= spent,
        "{after}"
    );
    assert_eq!(after["days"][13]["costUsd"], finished["costUsd"], "{after}");
}
