//! The approvals inbox, and deciding one: approve, approve with edited
//! arguments, or reject with a reason. The execution page posts here too.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::model::Approval;
use crate::Web;
use crate::form::{Posted, blank_is_none};
use crate::session::Visit;
use crate::view::{Chrome, PageError, html_as};

#[derive(Template)]
#[template(path = "approvals.html")]
struct InboxPage {
    chrome: Chrome,
    pending: Vec<Approval>,
    decided: Vec<Approval>,
    error: Option<String>,
}

pub async fn inbox(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
) -> Result<Response, PageError> {
    render(&web, &visit, org, None, StatusCode::OK).await
}

async fn render(
    web: &Web,
    visit: &Visit,
    org: Uuid,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(web, visit, org, "approvals", "Approvals").await?;
    let (api, who) = (web.api(), visit.caller());
    let (pending, recent) = futures_util::join!(
        api.list::<Approval>(
            who,
            format!("/orgs/{org}/approvals?status=pending&pageSize=100")
        ),
        api.list::<Approval>(who, format!("/orgs/{org}/approvals?pageSize=20")),
    );
    let page = InboxPage {
        pending: pending?.items,
        decided: recent?
            .items
            .into_iter()
            .filter(|a| a.status != "pending")
            .collect(),
        chrome,
        error,
    };
    html_as(status, &page)
}

#[derive(Deserialize)]
pub struct Decision {
    /// Edited arguments (JSON) for an approval; a reason for a rejection.
    #[serde(default, deserialize_with = "blank_is_none")]
    arguments: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    reason: Option<String>,
    /// The page to go back to: the inbox or the execution.
    #[serde(default)]
    back: String,
}

pub async fn decide(
    State(web): State<Web>,
    visit: Visit,
    Path((org, id, verdict)): Path<(Uuid, Uuid, String)>,
    Posted(form): Posted<Decision>,
) -> Result<Response, PageError> {
    let body = match verdict.as_str() {
        "approve" => match form.arguments.as_deref().map(serde_json::from_str::<Value>) {
            None => json!({}),
            Some(Ok(arguments)) => json!({ "arguments": arguments }),
            Some(Err(e)) => {
                let message = format!("The edited arguments are not valid JSON: {e}");
                return render(
                    &web,
                    &visit,
                    org,
                    Some(message),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            }
        },
        "reject" => json!({ "reason": form.reason }),
        _ => return Err(PageError::NotFound),
    };
    // The API decides whether the caller may decide this approval, by the
    // org that owns it and the caller's role there (404 for a stranger).
    let answer = web
        .api()
        .send(
            visit.caller(),
            Method::POST,
            format!("/approvals/{id}/{verdict}"),
            Some(&body),
        )
        .await;
    let back = if form.back.starts_with(&format!("/o/{org}/")) && !form.back.contains("//") {
        form.back
    } else {
        format!("/o/{org}/approvals")
    };
    match answer {
        Ok(_) => Ok(Redirect::to(&back).into_response()),
        Err(f) if f.shown_on_page() => render(&web, &visit, org, Some(f.message), f.status).await,
        Err(f) => Err(f.into()),
    }
}
