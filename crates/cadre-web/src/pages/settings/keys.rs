//! API keys: scopes, limit and expiry; the secret shown once; revoke.

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
struct ApiKey {
    id: Uuid,
    name: String,
    key_prefix: String,
    scopes: Vec<String>,
    rate_limit_per_minute: Option<i64>,
    expires_at: Option<String>,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
    created_at: String,
    /// The secret, in the answer that created it only.
    key: Option<String>,
}

impl ApiKey {
    fn created(&self) -> String {
        ago(&self.created_at)
    }

    fn last_used(&self) -> String {
        self.last_used_at.as_deref().map_or("never".to_owned(), ago)
    }

    fn expires(&self) -> String {
        self.expires_at.as_deref().map_or("never".to_owned(), ago)
    }
}

#[derive(Template)]
#[template(path = "settings_keys.html")]
struct KeysPage {
    chrome: Chrome,
    tab: Tab,
    keys: Vec<ApiKey>,
    created: Option<ApiKey>,
    scopes: &'static [&'static str],
}

pub async fn keys(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
) -> Result<Response, PageError> {
    render_keys(&web, &visit, org, None, Ok(StatusCode::OK)).await
}

async fn render_keys(
    web: &Web,
    visit: &Visit,
    org: Uuid,
    created: Option<ApiKey>,
    outcome: Outcome,
) -> Result<Response, PageError> {
    let listed = web
        .api()
        .get::<Vec<ApiKey>>(visit.caller(), format!("/api-keys?orgId={org}"))
        .await;
    // Keys are for admins: a member sees why the tab is empty.
    let (keys, outcome) = match listed {
        Ok(keys) => (keys, outcome),
        Err(f) if f.status == StatusCode::FORBIDDEN => (Vec::new(), Err((f.status, f.message))),
        Err(f) => return Err(f.into()),
    };
    let (chrome, tab, status) = Tab::load(web, visit, org, "keys", outcome).await?;
    let page = KeysPage {
        chrome,
        tab,
        keys,
        created,
        scopes: &["read", "write", "agents", "executions", "admin"],
    };
    html_as(status, &page)
}

/// The new key form. Its scope boxes all post as `scopes`, so it is read
/// from the form's pairs rather than as a struct.
#[derive(Default)]
pub struct KeyForm {
    name: String,
    scopes: Vec<String>,
    rate_limit_per_minute: Option<String>,
    /// Days until it expires; none for never.
    expires_in_days: Option<String>,
}

impl KeyForm {
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut form = KeyForm::default();
        for (name, value) in pairs {
            let filled = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
            match name.as_str() {
                "name" => form.name = value,
                "scopes" => form.scopes.push(value),
                "rate_limit_per_minute" => form.rate_limit_per_minute = filled,
                "expires_in_days" => form.expires_in_days = filled,
                _ => {}
            }
        }
        form
    }
}

pub async fn create_key(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    Posted(pairs): Posted<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let form = KeyForm::from_pairs(pairs);
    let body = match key_body(org, &form) {
        Ok(body) => body,
        Err(message) => {
            let outcome = Err((StatusCode::UNPROCESSABLE_ENTITY, message));
            return render_keys(&web, &visit, org, None, outcome).await;
        }
    };
    let answer = web
        .api()
        .send(visit.caller(), Method::POST, "/api-keys", Some(&body))
        .await;
    match answer {
        Ok(data) => {
            let created = serde_json::from_value(data).ok();
            render_keys(&web, &visit, org, created, Ok(StatusCode::CREATED)).await
        }
        Err(f) => render_keys(&web, &visit, org, None, Err(refused(f)?)).await,
    }
}

fn key_body(org: Uuid, form: &KeyForm) -> Result<Value, String> {
    let mut body = json!({ "orgId": org, "name": form.name.trim(), "scopes": form.scopes });
    if let Some(limit) = &form.rate_limit_per_minute {
        let limit: i64 = limit
            .trim()
            .parse()
            .map_err(|_| "The rate limit is a whole number of requests a minute.".to_owned())?;
        body["rateLimitPerMinute"] = json!(limit);
    }
    if let Some(days) = &form.expires_in_days {
        let days: i64 = days
            .trim()
            .parse()
            .ok()
            .filter(|d| (1..=3650).contains(d))
            .ok_or_else(|| "Expiry is a number of days from 1 to 3650.".to_owned())?;
        let at = time::OffsetDateTime::now_utc() + time::Duration::days(days);
        body["expiresAt"] = json!(cadre_types::time::rfc3339(at));
    }
    Ok(body)
}

pub async fn revoke_key(
    State(web): State<Web>,
    visit: Visit,
    Path((org, key)): Path<(Uuid, Uuid)>,
    Posted(_): Posted<Value>,
) -> Result<Response, PageError> {
    // Only a key of this page's org: the API would let an admin of two orgs
    // revoke the other's from here.
    let listed = web
        .api()
        .get::<Vec<ApiKey>>(visit.caller(), format!("/api-keys?orgId={org}"))
        .await?;
    if !listed.iter().any(|k| k.id == key) {
        return Err(PageError::NotFound);
    }
    let answer = web
        .api()
        .send(
            visit.caller(),
            Method::DELETE,
            format!("/api-keys/{key}"),
            None,
        )
        .await;
    match answer {
        Ok(_) => Ok(Redirect::to(&format!("/o/{org}/settings/keys")).into_response()),
        Err(f) => render_keys(&web, &visit, org, None, Err(refused(f)?)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_expiry_and_limits_are_checked_before_the_api() {
        let pairs = [
            ("_csrf", "x"),
            ("name", "ci"),
            ("scopes", "read"),
            ("scopes", "agents"),
            ("rate_limit_per_minute", "60"),
            ("expires_in_days", " 30 "),
        ];
        let mut f = KeyForm::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        assert_eq!(f.scopes, ["read", "agents"]);
        let body = key_body(Uuid::nil(), &f).unwrap();
        assert_eq!(body["rateLimitPerMinute"], 60);
        assert!(body["expiresAt"].as_str().unwrap().ends_with('Z'));
        f.expires_in_days = Some("0".to_owned());
        assert!(key_body(Uuid::nil(), &f).is_err());
        f.expires_in_days = None;
        f.rate_limit_per_minute = Some("many".to_owned());
        assert!(key_body(Uuid::nil(), &f).is_err());
    }
}
