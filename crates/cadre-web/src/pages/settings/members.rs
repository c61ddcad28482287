//! Members and their roles, inviting someone, and invitations waiting.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Outcome, Tab, refused};
use crate::Web;
use crate::form::Posted;
use crate::session::Visit;
use crate::view::{Chrome, PageError, ago, html_as};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Member {
    user_id: Uuid,
    email: String,
    name: String,
    role: String,
    joined_at: String,
}

impl Member {
    fn joined(&self) -> String {
        ago(&self.joined_at)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Invitation {
    id: Uuid,
    email: String,
    role: String,
    expires_at: String,
    /// Present when the instance has no mailer: the inviter passes it on.
    accept_url: Option<String>,
}

impl Invitation {
    fn expires(&self) -> String {
        ago(&self.expires_at)
    }
}

#[derive(Template)]
#[template(path = "settings_members.html")]
struct MembersPage {
    chrome: Chrome,
    tab: Tab,
    members: Vec<Member>,
    /// Invitations not yet accepted (for those who manage members).
    pending: Vec<Invitation>,
    roles: &'static [&'static str],
    invited: Option<Invitation>,
}

pub async fn members(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
) -> Result<Response, PageError> {
    render_members(&web, &visit, org, None, Ok(StatusCode::OK)).await
}

async fn render_members(
    web: &Web,
    visit: &Visit,
    org: Uuid,
    invited: Option<Invitation>,
    outcome: Outcome,
) -> Result<Response, PageError> {
    let (chrome, tab, status) = Tab::load(web, visit, org, "members", outcome).await?;
    let members = web
        .api()
        .get::<Vec<Member>>(visit.caller(), format!("/orgs/{org}/members"))
        .await?;
    let pending = if chrome.can_manage() {
        web.api()
            .get::<Vec<Invitation>>(visit.caller(), format!("/orgs/{org}/invitations"))
            .await?
    } else {
        Vec::new()
    };
    let page = MembersPage {
        chrome,
        tab,
        members,
        pending,
        roles: &["owner", "admin", "member", "viewer"],
        invited,
    };
    html_as(status, &page)
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

pub async fn invite(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    Posted(form): Posted<InviteForm>,
) -> Result<Response, PageError> {
    let body = json!({ "email": form.email.trim(), "role": form.role });
    let answer = web
        .api()
        .send(
            visit.caller(),
            Method::POST,
            format!("/orgs/{org}/members"),
            Some(&body),
        )
        .await;
    match answer {
        // The accept link is in this answer only: show it now, no redirect.
        Ok(data) => {
            let invited = serde_json::from_value(data).ok();
            render_members(&web, &visit, org, invited, Ok(StatusCode::CREATED)).await
        }
        Err(f) => render_members(&web, &visit, org, None, Err(refused(f)?)).await,
    }
}

#[derive(Deserialize)]
pub struct MemberForm {
    /// `role` or `remove`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    role: String,
}

pub async fn change_member(
    State(web): State<Web>,
    visit: Visit,
    Path((org, user)): Path<(Uuid, Uuid)>,
    Posted(form): Posted<MemberForm>,
) -> Result<Response, PageError> {
    let path = format!("/orgs/{org}/members/{user}");
    let (method, body) = match form.action.as_str() {
        "remove" => (Method::DELETE, None),
        "role" => (Method::PATCH, Some(json!({ "role": form.role }))),
        _ => return Err(PageError::NotFound),
    };
    match web
        .api()
        .send(visit.caller(), method, path, body.as_ref())
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/o/{org}/settings/members")).into_response()),
        Err(f) => render_members(&web, &visit, org, None, Err(refused(f)?)).await,
    }
}

pub async fn revoke_invitation(
    State(web): State<Web>,
    visit: Visit,
    Path((org, id)): Path<(Uuid, Uuid)>,
    Posted(_): Posted<Value>,
) -> Result<Response, PageError> {
    let path = format!("/orgs/{org}/invitations/{id}");
    match web
        .api()
        .send(visit.caller(), Method::DELETE, path, None)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/o/{org}/settings/members")).into_response()),
        Err(f) => render_members(&web, &visit, org, None, Err(refused(f)?)).await,
    }
}
