//! The audit log records what happened and detects tampering.

use reqwest::Method;
use serde_json::json;

use crate::harness::{TestServer, body};

#[tokio::test]
async fn mutations_and_member_changes_are_audited_and_the_chain_verifies() {
    let app = TestServer::start().await;
    let owner = app.user_token("owner@example.com").await;
    let member = app.user_token("member@example.com").await;
    let org = app.create_org(&owner, "Acme").await;
    app.add_member(&owner, &org, "member@example.com", &member, "member")
        .await;
    let project = app
        .authed(
            Method::POST,
            &format!("/api/v1/orgs/{org}/projects"),
            &owner,
        )
        .json(&json!({"name": "Launch"}))
        .send()
        .await
        .unwrap();
    assert_eq!(project.status(), 201);

    let (status, _, log) = body(
        app.authed(
            Method::GET,
            &format!("/api/v1/orgs/{org}/audit-log?pageSize=50"),
            &owner,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{log}");
    let actions: Vec<&str> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "org.created",
        "org.member.invited",
        "org.member.joined",
        "POST /api/v1/orgs/{orgId}/projects",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    let invited = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "org.member.invited")
        .unwrap();
    assert_eq!(invited["details"]["email"], "member@example.com");
    assert!(invited["ip"].as_str().is_some_and(|ip| ip == "127.0.0.1"));

    let (_, _, verify) = body(
        app.authed(
            Method::GET,
            &format!("/api/v1/orgs/{org}/audit-log/verify"),
            &owner,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(verify["data"]["valid"], true, "{verify}");
    assert_eq!(verify["data"]["entries"], log["pagination"]["totalItems"]);

    // A member may not read the audit log.
    assert_eq!(
        app.authed(
            Method::GET,
            &format!("/api/v1/orgs/{org}/audit-log"),
            &member
        )
        .send()
        .await
        .unwrap()
        .status(),
        403
    );
}

#[tokio::test]
async fn an_entry_altered_in_the_database_is_named_by_verify() {
    let app = TestServer::start().await;
    let owner = app.user_token("owner@example.com").await;
    let org = app.create_org(&owner, "Acme").await;
    for name in ["a", "b", "c"] {
        app.authed(
            Method::POST,
            &format!("/api/v1/orgs/{org}/projects"),
            &owner,
        )
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap();
    }
    let cadre_store::Target::Sqlite(path) = &app.db.target else {
        unreachable!("TestServer runs on SQLite")
    };
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let org_id: uuid::Uuid = org.parse().unwrap();
    let changed = sqlx::query(
        "UPDATE audit_log SET action = 'nothing happened' WHERE org_id = $1 AND seq = 2",
    )
    .bind(org_id)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(changed.rows_affected(), 1);

    let (_, _, verify) = body(
        app.authed(
            Method::GET,
            &format!("/api/v1/orgs/{org}/audit-log/verify"),
            &owner,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(verify["data"]["valid"], false, "{verify}");
    assert_eq!(verify["data"]["firstBadSeq"], 2);
}
