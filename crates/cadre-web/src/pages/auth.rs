//! Sign up, sign in, sign out, and the password reset pair.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use crate::Web;
use crate::api::ApiFailure;
use crate::form::{Posted, blank_is_none};
use crate::session::{TokenPair, Visit};
use crate::view::{PageError, html_as};

/// The sign-in and sign-up pages: one form, told apart by `mode`.
#[derive(Template)]
#[template(path = "auth.html")]
struct AuthPage<'a> {
    mode: &'a str,
    csrf: &'a str,
    email: &'a str,
    name: &'a str,
    next: &'a str,
    /// Set on the reset form.
    token: &'a str,
    notice: &'a str,
    error: Option<&'a str>,
    assets: &'static str,
}

impl<'a> AuthPage<'a> {
    fn new(mode: &'a str, visit: &'a Visit) -> Self {
        Self {
            mode,
            csrf: &visit.csrf,
            email: "",
            name: "",
            next: "",
            token: "",
            notice: "",
            error: None,
            assets: crate::assets::VERSION.as_str(),
        }
    }

    fn respond(&self, status: StatusCode) -> Result<Response, PageError> {
        html_as(status, self)
    }
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Only paths on this site: an open redirect would hand a phishing page
/// a trusted link.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next
    } else {
        "/"
    }
}

pub async fn login_page(visit: Visit, Query(q): Query<NextQuery>) -> Result<Response, PageError> {
    if visit.session.is_some() {
        return Ok(Redirect::to(safe_next(&q.next)).into_response());
    }
    let mut page = AuthPage::new("login", &visit);
    page.next = &q.next;
    page.respond(StatusCode::OK)
}

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    next: String,
}

pub async fn login(
    State(web): State<Web>,
    visit: Visit,
    Posted(form): Posted<Credentials>,
) -> Result<Response, PageError> {
    let answer = web
        .api()
        .send(
            visit.caller(),
            Method::POST,
            "/auth/login",
            Some(&json!({ "email": form.email, "password": form.password })),
        )
        .await;
    match answer.and_then(pair) {
        Ok(tokens) => {
            visit.sign_in(&web, &tokens);
            Ok(Redirect::to(safe_next(&form.next)).into_response())
        }
        Err(failure) => {
            let mut page = AuthPage::new("login", &visit);
            page.email = &form.email;
            page.next = &form.next;
            page.error = Some(&failure.message);
            page.respond(failure.status)
        }
    }
}

pub async fn signup_page(visit: Visit) -> Result<Response, PageError> {
    if visit.session.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    AuthPage::new("signup", &visit).respond(StatusCode::OK)
}

pub async fn signup(
    State(web): State<Web>,
    visit: Visit,
    Posted(form): Posted<Credentials>,
) -> Result<Response, PageError> {
    let body = json!({ "email": form.email, "password": form.password, "name": form.name });
    let answer = web
        .api()
        .send(visit.caller(), Method::POST, "/auth/signup", Some(&body))
        .await;
    match answer.and_then(pair) {
        Ok(tokens) => {
            visit.sign_in(&web, &tokens);
            Ok(Redirect::to("/orgs/new").into_response())
        }
        Err(failure) => {
            let mut page = AuthPage::new("signup", &visit);
            page.email = &form.email;
            page.name = &form.name;
            page.error = Some(&failure.message);
            page.respond(failure.status)
        }
    }
}

pub async fn logout(
    State(web): State<Web>,
    visit: Visit,
    Posted(_): Posted<serde::de::IgnoredAny>,
) -> Response {
    if let Some(refresh) = visit.refresh_token() {
        // Revokes the token family server-side; the cookies go either way.
        let body = json!({ "refreshToken": refresh });
        if let Err(failure) = web
            .api()
            .send(visit.caller(), Method::POST, "/auth/logout", Some(&body))
            .await
        {
            tracing::debug!(%failure, "sign-out: the refresh token was already gone");
        }
    }
    visit.sign_out(&web);
    Redirect::to("/login").into_response()
}

pub async fn forgot_page(visit: Visit) -> Result<Response, PageError> {
    AuthPage::new("forgot", &visit).respond(StatusCode::OK)
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

pub async fn forgot(
    State(web): State<Web>,
    visit: Visit,
    Posted(form): Posted<ForgotForm>,
) -> Result<Response, PageError> {
    let body = json!({ "email": form.email });
    let answer = web
        .api()
        .send(
            visit.caller(),
            Method::POST,
            "/auth/forgot-password",
            Some(&body),
        )
        .await;
    let mut page = AuthPage::new("forgot", &visit);
    page.email = &form.email;
    match &answer {
        // The same answer whether or not the address has an account.
        Ok(_) => page.notice = "If that address has an account, a reset link is on its way.",
        Err(failure) => page.error = Some(&failure.message),
    }
    let status = answer.as_ref().err().map_or(StatusCode::OK, |f| f.status);
    page.respond(status)
}

#[derive(Deserialize, Default)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

pub async fn reset_page(visit: Visit, Query(q): Query<TokenQuery>) -> Result<Response, PageError> {
    let mut page = AuthPage::new("reset", &visit);
    page.token = &q.token;
    page.respond(StatusCode::OK)
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default, deserialize_with = "blank_is_none")]
    password: Option<String>,
}

pub async fn reset(
    State(web): State<Web>,
    visit: Visit,
    Posted(form): Posted<ResetForm>,
) -> Result<Response, PageError> {
    let body = json!({ "token": form.token, "password": form.password.unwrap_or_default() });
    let answer = web
        .api()
        .send(
            visit.caller(),
            Method::POST,
            "/auth/reset-password",
            Some(&body),
        )
        .await;
    match answer {
        Ok(_) => {
            let mut page = AuthPage::new("login", &visit);
            page.notice = "Your password is changed. Sign in with the new one.";
            page.respond(StatusCode::OK)
        }
        Err(failure) => {
            let mut page = AuthPage::new("reset", &visit);
            page.token = &form.token;
            page.error = Some(&failure.message);
            page.respond(failure.status)
        }
    }
}

fn pair(data: serde_json::Value) -> Result<TokenPair, ApiFailure> {
    serde_json::from_value(data).map_err(|e| ApiFailure {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "INTERNAL_ERROR".to_owned(),
        message: format!("the sign-in answer had an unexpected shape: {e}"),
        field: None,
    })
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next("/o/1/agents"), "/o/1/agents");
        assert_eq!(safe_next("//evil.example"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(safe_next(""), "/");
    }
}
