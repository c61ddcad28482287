//! The organization itself: its name and slug, the hosts its agents may
//! reach besides the public internet (`settings.egress.allow`), and
//! deleting it (owners).

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
use crate::view::{Chrome, PageError, html_as};

/// What `GET /orgs/{id}` answers, as this tab shows it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Org {
    name: String,
    slug: String,
    #[serde(default)]
    settings: Value,
}

impl Org {
    /// The egress allow-list, one host per line.
    fn allowed(&self) -> String {
        self.settings["egress"]["allow"]
            .as_array()
            .map(|hosts| {
                hosts
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }
}

#[derive(Template)]
#[template(path = "settings_general.html")]
struct GeneralPage {
    chrome: Chrome,
    tab: Tab,
    org: Org,
}

pub async fn general(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
) -> Result<Response, PageError> {
    render(&web, &visit, org, Ok(StatusCode::OK)).await
}

async fn render(
    web: &Web,
    visit: &Visit,
    org: Uuid,
    outcome: Outcome,
) -> Result<Response, PageError> {
    let (chrome, tab, status) = Tab::load(web, visit, org, "general", outcome).await?;
    let read = web
        .api()
        .get::<Org>(visit.caller(), format!("/orgs/{org}"))
        .await?;
    html_as(
        status,
        &GeneralPage {
            chrome,
            tab,
            org: read,
        },
    )
}

#[derive(Deserialize)]
pub struct GeneralForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    slug: String,
    /// Hosts (`host` or `host:port`), one per line or comma-separated.
    #[serde(default)]
    egress_allow: String,
}

/// The org's settings with the egress allow-list replaced (other keys
/// kept: the API's `settings` replaces the whole object).
fn with_allow_list(mut settings: Value, text: &str) -> Value {
    let hosts: Vec<&str> = text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    if !settings.is_object() {
        settings = json!({});
    }
    if !settings["egress"].is_object() {
        settings["egress"] = json!({});
    }
    settings["egress"]["allow"] = json!(hosts);
    settings
}

pub async fn update(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    Posted(form): Posted<GeneralForm>,
) -> Result<Response, PageError> {
    let current = web
        .api()
        .get::<Org>(visit.caller(), format!("/orgs/{org}"))
        .await?;
    let body = json!({
        "name": form.name.trim(),
        "slug": form.slug.trim(),
        "settings": with_allow_list(current.settings, &form.egress_allow),
    });
    match web
        .api()
        .send(
            visit.caller(),
            Method::PATCH,
            format!("/orgs/{org}"),
            Some(&body),
        )
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/o/{org}/settings/general")).into_response()),
        Err(f) => render(&web, &visit, org, Err(refused(f)?)).await,
    }
}

#[derive(Deserialize)]
pub struct DeleteForm {
    /// The org's name, typed again.
    #[serde(default)]
    confirm: String,
}

/// Deletes the organization (owners), once its name is typed again.
pub async fn delete(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    Posted(form): Posted<DeleteForm>,
) -> Result<Response, PageError> {
    let current = web
        .api()
        .get::<Org>(visit.caller(), format!("/orgs/{org}"))
        .await?;
    if form.confirm.trim() != current.name {
        let message = format!(
            "Type the organization's name, {}, to delete it.",
            current.name
        );
        return render(
            &web,
            &visit,
            org,
            Err((StatusCode::UNPROCESSABLE_ENTITY, message)),
        )
        .await;
    }
    match web
        .api()
        .send(visit.caller(), Method::DELETE, format!("/orgs/{org}"), None)
        .await
    {
        Ok(_) => Ok(Redirect::to("/").into_response()),
        Err(f) => render(&web, &visit, org, Err(refused(f)?)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_replaces_only_its_own_key() {
        let settings = json!({"theme": "dark", "egress": {"allow": ["old.example"], "other": 1}});
        let out = with_allow_list(settings, "crm.internal:8443\n, erp.internal ,\n");
        assert_eq!(
            out,
            json!({"theme": "dark", "egress": {"allow": ["crm.internal:8443", "erp.internal"], "other": 1}})
        );
        assert_eq!(
            with_allow_list(Value::Null, ""),
            json!({"egress": {"allow": []}})
        );
    }
}
