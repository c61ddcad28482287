//! With SMTP configured, reset links and invitations go by mail.

use reqwest::Method;
use serde_json::json;

use crate::harness::{TestServer, body};
use crate::smtp_sink::SmtpSink;

async fn with_mail() -> (TestServer, SmtpSink) {
    let sink = SmtpSink::start().await;
    let port = sink.port.to_string();
    let app = TestServer::start_with(&[
        ("CADRE_SMTP_HOST", "127.0.0.1"),
        ("CADRE_SMTP_PORT", &port),
        ("CADRE_SMTP_SECURITY", "none"),
        ("CADRE_SMTP_FROM", "Cadre <cadre@test.example>"),
    ])
    .await;
    (app, sink)
}

/// The token in a link `…{marker}TOKEN` of a mail body.
fn token_after(mail: &str, marker: &str) -> String {
    let start = mail
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {mail}"))
        + marker.len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

#[tokio::test]
async fn the_reset_link_arrives_by_mail_and_works() {
    let (app, sink) = with_mail().await;
    app.signup("ada@example.com").await;
    let resp = app
        .client
        .post(app.url("/api/v1/auth/forgot-password"))
        .json(&json!({"email": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);

    let mail = sink.decoded(0).await;
    assert!(mail.contains("To: ada@example.com"), "{mail}");
    assert!(
        mail.contains("Subject: Reset your Cadre password"),
        "{mail}"
    );
    let token = token_after(&mail, "reset-password?token=");
    assert!(token.starts_with("rst_"), "{token}");

    let reset = app
        .client
        .post(app.url("/api/v1/auth/reset-password"))
        .json(&json!({"token": token, "password": "mailed new password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 204);
}

#[tokio::test]
async fn an_invitation_is_mailed_and_its_token_is_not_returned() {
    let (app, sink) = with_mail().await;
    let owner = app.user_token("owner@example.com").await;
    let invitee = app.user_token("invitee@example.com").await;
    let org = app.create_org(&owner, "Acme").await;
    let resp = app
        .authed(Method::POST, &format!("/api/v1/orgs/{org}/members"), &owner)
        .json(&json!({"email": "invitee@example.com", "role": "member"}))
        .send()
        .await
        .unwrap();
    let (status, _, inv) = body(resp).await;
    assert_eq!(status, 201, "{inv}");
    assert!(
        inv["data"]["token"].is_null(),
        "with a mailer the token stays out of the answer: {inv}"
    );

    let mail = sink.decoded(0).await;
    assert!(mail.contains("To: invitee@example.com"), "{mail}");
    let token = token_after(&mail, "/invitations/");
    let accepted = app
        .authed(
            Method::POST,
            &format!("/api/v1/invitations/{token}/accept"),
            &invitee,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
}
