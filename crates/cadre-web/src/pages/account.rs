//! The signed-in person's own account: name, email and password
//! (`PATCH /auth/me`; a new password needs the current one, and signs out
//! every other session).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::Web;
use crate::form::{Posted, blank_is_none};
use crate::session::Visit;
use crate::view::{Chrome, PageError, html_as};

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    saved: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct Saved {
    #[serde(default)]
    saved: Option<String>,
}

pub async fn page(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    Query(q): Query<Saved>,
) -> Result<Response, PageError> {
    render(&web, &visit, org, q.saved.is_some(), None, StatusCode::OK).await
}

async fn render(
    web: &Web,
    visit: &Visit,
    org: Uuid,
    saved: bool,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(web, visit, org, "account", "Your account").await?;
    html_as(
        status,
        &AccountPage {
            chrome,
            saved,
            error,
        },
    )
}

#[derive(Deserialize)]
pub struct AccountForm {
    #[serde(default, deserialize_with = "blank_is_none")]
    name: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    email: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    current_password: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    new_password: Option<String>,
}

impl AccountForm {
    /// Only what was filled in changes.
    fn body(&self) -> Value {
        let mut body = Map::new();
        for (key, value) in [
            ("name", &self.name),
            ("email", &self.email),
            ("currentPassword", &self.current_password),
            ("newPassword", &self.new_password),
        ] {
            if let Some(v) = value {
                body.insert(key.to_owned(), Value::String(v.clone()));
            }
        }
        Value::Object(body)
    }
}

pub async fn update(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    Posted(form): Posted<AccountForm>,
) -> Result<Response, PageError> {
    let answer = web
        .api()
        .send(
            visit.caller(),
            Method::PATCH,
            "/auth/me",
            Some(&form.body()),
        )
        .await;
    match answer {
        Ok(_) => Ok(Redirect::to(&format!("/o/{org}/account?saved=1")).into_response()),
        Err(f) if f.shown_on_page() => {
            render(&web, &visit, org, false, Some(f.message), f.status).await
        }
        Err(f) => Err(f.into()),
    }
}
