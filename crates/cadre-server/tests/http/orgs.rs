//! Organizations, members, invitations, roles.

use reqwest::Method;
use serde_json::json;

use crate::harness::{TestServer, body, expect_error};

#[tokio::test]
async fn a_new_org_has_its_owner_and_inbox() {
    let app = TestServer::start().await;
    let token = app.user_token("owner@example.com").await;
    let resp = app
        .authed(Method::POST, "/api/v1/orgs", &token)
        .json(&json!({"name": "Acme Corp"}))
        .send()
        .await
        .unwrap();
    let (status, _, org) = body(resp).await;
    assert_eq!(status, 201);
    assert_eq!(
        (
            org["data"]["slug"].as_str(),
            org["data"]["plan"].as_str(),
            org["data"]["role"].as_str()
        ),
        (Some("acme-corp"), Some("free"), Some("owner"))
    );
    let id = org["data"]["id"].as_str().unwrap();

    let (status, _, projects) = body(
        app.authed(Method::GET, &format!("/api/v1/orgs/{id}/projects"), &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(projects["data"][0]["name"], "Inbox");
    assert_eq!(projects["pagination"]["totalItems"], 1);

    // Same name again: a derived slug gets a suffix; an explicit taken slug is a conflict.
    let again = app
        .authed(Method::POST, "/api/v1/orgs", &token)
        .json(&json!({"name": "Acme Corp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(again).await.2["data"]["slug"], "acme-corp-2");
    let taken = app
        .authed(Method::POST, "/api/v1/orgs", &token)
        .json(&json!({"name": "X", "slug": "acme-corp"}))
        .send()
        .await
        .unwrap();
    expect_error(taken, 409, "CONFLICT").await;
    let bad = app
        .authed(Method::POST, "/api/v1/orgs", &token)
        .json(&json!({"name": "X", "slug": "Bad Slug"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_error(bad, 400, "VALIDATION_ERROR").await["error"]["field"],
        "slug"
    );
}

#[tokio::test]
async fn a_viewer_can_read_but_gets_403_on_create() {
    let app = TestServer::start().await;
    let owner = app.user_token("owner@example.com").await;
    let viewer = app.user_token("viewer@example.com").await;
    let org = app.create_org(&owner, "Acme").await;
    app.add_member(&owner, &org, "viewer@example.com", &viewer, "viewer")
        .await;

    assert_eq!(
        app.authed(
            Method::GET,
            &format!("/api/v1/orgs/{org}/projects"),
            &viewer
        )
        .send()
        .await
        .unwrap()
        .status(),
        200
    );
    let create = app
        .authed(
            Method::POST,
            &format!("/api/v1/orgs/{org}/projects"),
            &viewer,
        )
        .json(&json!({"name": "Nope"}))
        .send()
        .await
        .unwrap();
    expect_error(create, 403, "FORBIDDEN").await;
    let invite = app
        .authed(
            Method::POST,
            &format!("/api/v1/orgs/{org}/members"),
            &viewer,
        )
        .json(&json!({"email": "x@example.com", "role": "member"}))
        .send()
        .await
        .unwrap();
    expect_error(invite, 403, "FORBIDDEN").await;
}

#[tokio::test]
async fn the_last_owner_cannot_be_removed_or_demoted() {
    let app = TestServer::start().await;
    let session = app.signup("owner@example.com").await;
    let owner = session["accessToken"].as_str().unwrap();
    let owner_id = session["user"]["id"].as_str().unwrap();
    let org = app.create_org(owner, "Acme").await;

    let demote = app
        .authed(
            Method::PATCH,
            &format!("/api/v1/orgs/{org}/members/{owner_id}"),
            owner,
        )
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    expect_error(demote, 409, "CONFLICT").await;
    let remove = app
        .authed(
            Method::DELETE,
            &format!("/api/v1/orgs/{org}/members/{owner_id}"),
            owner,
        )
        .send()
        .await
        .unwrap();
    expect_error(remove, 409, "CONFLICT").await;
}

#[tokio::test]
async fn an_admin_manages_members_but_only_an_owner_deletes_the_org() {
    let app = TestServer::start().await;
    let owner = app.user_token("owner@example.com").await;
    let admin_session = app.signup("admin@example.com").await;
    let admin = admin_session["accessToken"].as_str().unwrap();
    let member_session = app.signup("member@example.com").await;
    let member = member_session["accessToken"].as_str().unwrap();
    let member_id = member_session["user"]["id"].as_str().unwrap();
    let org = app.create_org(&owner, "Acme").await;
    app.add_member(&owner, &org, "admin@example.com", admin, "admin")
        .await;
    app.add_member(&owner, &org, "member@example.com", member, "member")
        .await;

    let (status, _, members) = body(
        app.authed(Method::GET, &format!("/api/v1/orgs/{org}/members"), admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status.as_u16(), members["data"].as_array().unwrap().len()),
        (200, 3)
    );

    let promote = app
        .authed(
            Method::PATCH,
            &format!("/api/v1/orgs/{org}/members/{member_id}"),
            admin,
        )
        .json(&json!({"role": "owner"}))
        .send()
        .await
        .unwrap();
    expect_error(promote, 403, "FORBIDDEN").await;
    let changed = app
        .authed(
            Method::PATCH,
            &format!("/api/v1/orgs/{org}/members/{member_id}"),
            admin,
        )
        .json(&json!({"role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(changed).await.2["data"]["role"], "viewer");

    expect_error(
        app.authed(Method::DELETE, &format!("/api/v1/orgs/{org}"), admin)
            .send()
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert_eq!(
        app.authed(Method::DELETE, &format!("/api/v1/orgs/{org}"), &owner)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    expect_error(
        app.authed(Method::GET, &format!("/api/v1/orgs/{org}"), &owner)
            .send()
            .await
            .unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn an_invitation_is_for_its_email_and_works_once() {
    let app = TestServer::start().await;
    let owner = app.user_token("owner@example.com").await;
    let invitee = app.user_token("invitee@example.com").await;
    let other = app.user_token("other@example.com").await;
    let org = app.create_org(&owner, "Acme").await;
    let resp = app
        .authed(Method::POST, &format!("/api/v1/orgs/{org}/members"), &owner)
        .json(&json!({"email": "Invitee@example.com", "role": "member"}))
        .send()
        .await
        .unwrap();
    let (_, _, inv) = body(resp).await;
    assert_eq!(inv["data"]["role"], "member");
    let token = inv["data"]["token"].as_str().unwrap();

    let wrong = app
        .authed(
            Method::POST,
            &format!("/api/v1/invitations/{token}/accept"),
            &other,
        )
        .send()
        .await
        .unwrap();
    expect_error(wrong, 403, "FORBIDDEN").await;
    let ok = app
        .authed(
            Method::POST,
            &format!("/api/v1/invitations/{token}/accept"),
            &invitee,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(body(ok).await.2["data"]["orgId"], org.as_str());
    let again = app
        .authed(
            Method::POST,
            &format!("/api/v1/invitations/{token}/accept"),
            &invitee,
        )
        .send()
        .await
        .unwrap();
    expect_error(again, 409, "CONFLICT").await;
    expect_error(
        app.authed(
            Method::POST,
            "/api/v1/invitations/inv_unknown/accept",
            &invitee,
        )
        .send()
        .await
        .unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn pending_invitations_are_listed_without_their_links_and_can_be_withdrawn() {
    let app = TestServer::start().await;
    let owner = app.user_token("owner@example.com").await;
    let invitee = app.user_token("late@example.com").await;
    let org = app.create_org(&owner, "Acme").await;
    let invite = |email: &str| {
        let (app, owner) = (&app, &owner);
        let json = json!({"email": email, "role": "viewer"});
        let path = format!("/api/v1/orgs/{org}/members");
        async move {
            let resp = app
                .authed(Method::POST, &path, owner)
                .json(&json)
                .send()
                .await
                .unwrap();
            body(resp).await.2["data"].clone()
        }
    };
    let first = invite("early@example.com").await;
    let second = invite("late@example.com").await;
    let list = || async {
        let resp = app
            .authed(
                Method::GET,
                &format!("/api/v1/orgs/{org}/invitations"),
                &owner,
            )
            .send()
            .await
            .unwrap();
        body(resp).await.2["data"].clone()
    };
    let pending = list().await;
    assert_eq!(pending[0]["email"], "late@example.com", "newest first");
    assert_eq!(pending[1]["email"], "early@example.com");
    assert!(
        pending[0]["token"].is_null() && pending[0]["acceptUrl"].is_null(),
        "a link is shown once, when made: {pending}"
    );

    // Withdrawn, the link stops working and the list forgets it.
    let withdraw = |id: &str| {
        let path = format!("/api/v1/orgs/{org}/invitations/{id}");
        let (app, owner) = (&app, &owner);
        async move {
            app.authed(Method::DELETE, &path, owner)
                .send()
                .await
                .unwrap()
        }
    };
    let second_id = second["id"].as_str().unwrap();
    assert_eq!(withdraw(second_id).await.status(), 204);
    expect_error(withdraw(second_id).await, 404, "NOT_FOUND").await;
    let token = second["token"].as_str().unwrap();
    let accept = app
        .authed(
            Method::POST,
            &format!("/api/v1/invitations/{token}/accept"),
            &invitee,
        )
        .send()
        .await
        .unwrap();
    expect_error(accept, 404, "NOT_FOUND").await;
    let pending = list().await;
    assert_eq!(pending.as_array().unwrap().len(), 1);
    assert_eq!(pending[0]["id"], first["id"]);
}

#[tokio::test]
async fn admin_routes_are_for_platform_admins_only() {
    let app = TestServer::start().await;
    let super_admin = app.user_token("first@example.com").await;
    let user = app.user_token("second@example.com").await;
    app.create_org(&user, "Someone's").await;
    let (status, _, all) = body(
        app.authed(Method::GET, "/api/v1/admin/orgs", &super_admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(all["pagination"]["totalItems"], 1);
    expect_error(
        app.authed(Method::GET, "/api/v1/admin/orgs", &user)
            .send()
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    // Outside the admin routes a platform admin is an ordinary non-member.
    let org = all["data"][0]["id"].as_str().unwrap();
    expect_error(
        app.authed(Method::GET, &format!("/api/v1/orgs/{org}"), &super_admin)
            .send()
            .await
            .unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
}
