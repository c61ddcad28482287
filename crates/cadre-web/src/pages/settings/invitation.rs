//! Where an invitation link lands, from the invitee's side.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

use super::{is_token, query_value};
use crate::Web;
use crate::form::Posted;
use crate::session::Visit;
use crate::view::{PageError, html_as};

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage<'a> {
    csrf: &'a str,
    error: Option<String>,
    assets: &'static str,
}

/// Where an invitation link lands: sign in (or up) first, then accept.
pub async fn invitation_page(
    visit: Visit,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    if visit.session.is_none() {
        let next = format!("/invitations/{token}");
        return Ok(Redirect::to(&format!("/login?next={}", query_value(&next))).into_response());
    }
    if !is_token(&token) {
        return Err(PageError::NotFound);
    }
    let page = InvitationPage {
        csrf: &visit.csrf,
        error: None,
        assets: crate::assets::VERSION.as_str(),
    };
    html_as(StatusCode::OK, &page)
}

pub async fn accept_invitation(
    State(web): State<Web>,
    visit: Visit,
    Path(token): Path<String>,
    Posted(_): Posted<Value>,
) -> Result<Response, PageError> {
    if !is_token(&token) {
        return Err(PageError::NotFound);
    }
    let answer = web
        .api()
        .send(
            visit.caller(),
            Method::POST,
            format!("/invitations/{token}/accept"),
            None,
        )
        .await;
    match answer {
        Ok(data) => {
            let org = data["orgId"].as_str().unwrap_or_default();
            Ok(Redirect::to(&format!("/o/{org}")).into_response())
        }
        Err(f) if f.is_unauthorized() => Err(PageError::SignIn),
        // An unknown or used token is a 404 or 409: say so on the page.
        Err(f) => {
            let message = if f.is_not_found() {
                "This invitation is unknown or has expired. Ask for a new one.".to_owned()
            } else {
                f.message
            };
            let page = InvitationPage {
                csrf: &visit.csrf,
                error: Some(message),
                assets: crate::assets::VERSION.as_str(),
            };
            html_as(f.status, &page)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_url_safe_tokens_reach_the_api() {
        assert!(is_token("AbC-12_x"));
        assert!(!is_token("a/../b"));
        assert!(!is_token("a?b"));
        assert!(!is_token(""));
        assert_eq!(
            query_value("/invitations/a b&c"),
            "%2Finvitations%2Fa+b%26c"
        );
    }
}
