//! The way in (`/` picks an org), creating an org, the WebSocket token for
//! live pages, and the command center.

use askama::Template;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::model::{Agent, AgentMetrics, Approval, Execution, Usage};
use crate::Web;
use crate::form::{Posted, check_header};
use crate::session::Visit;
use crate::view::{Chrome, OrgRef, PageError, count, html, html_as, money};

/// `/`: the first org's command center, or creating one.
pub async fn root(State(web): State<Web>, visit: Visit) -> Result<Response, PageError> {
    if visit.session.is_none() {
        return Ok(Redirect::to("/login").into_response());
    }
    let orgs: Vec<OrgRef> = web.api().get(visit.caller(), "/orgs").await?;
    Ok(match orgs.first() {
        Some(org) => Redirect::to(&format!("/o/{}", org.id)).into_response(),
        None => Redirect::to("/orgs/new").into_response(),
    })
}

#[derive(Template)]
#[template(path = "new_org.html")]
struct NewOrgPage<'a> {
    csrf: &'a str,
    name: &'a str,
    error: Option<&'a str>,
    orgs: Vec<OrgRef>,
    assets: &'static str,
}

pub async fn new_org_page(State(web): State<Web>, visit: Visit) -> Result<Response, PageError> {
    if visit.session.is_none() {
        return Err(PageError::SignIn);
    }
    let orgs = web.api().get(visit.caller(), "/orgs").await?;
    html(&NewOrgPage {
        csrf: &visit.csrf,
        name: "",
        error: None,
        orgs,
        assets: crate::assets::VERSION.as_str(),
    })
}

#[derive(Deserialize)]
pub struct NewOrg {
    #[serde(default)]
    name: String,
}

pub async fn create_org(
    State(web): State<Web>,
    visit: Visit,
    Posted(form): Posted<NewOrg>,
) -> Result<Response, PageError> {
    let body = json!({ "name": form.name.trim() });
    match web
        .api()
        .send(visit.caller(), Method::POST, "/orgs", Some(&body))
        .await
    {
        Ok(org) => {
            let id = org["id"].as_str().unwrap_or_default();
            Ok(Redirect::to(&format!("/o/{id}")).into_response())
        }
        Err(failure) if failure.is_unauthorized() => Err(PageError::SignIn),
        Err(failure) => {
            let orgs = web.api().get(visit.caller(), "/orgs").await?;
            let page = NewOrgPage {
                csrf: &visit.csrf,
                name: &form.name,
                error: Some(&failure.message),
                orgs,
                assets: crate::assets::VERSION.as_str(),
            };
            html_as(failure.status, &page)
        }
    }
}

/// A single-use WebSocket token for the page's live updates; the script
/// asks for it with the page's CSRF token.
pub async fn ws_token(
    State(web): State<Web>,
    visit: Visit,
    headers: HeaderMap,
) -> Result<Json<Value>, PageError> {
    check_header(&visit, &headers)?;
    if visit.session.is_none() {
        return Err(PageError::SignIn);
    }
    let token = web
        .api()
        .send(visit.caller(), Method::POST, "/auth/ws-token", None)
        .await?;
    Ok(Json(token))
}

/// An agent with how much it has done.
struct AgentLoad {
    agent: Agent,
    metrics: AgentMetrics,
}

impl AgentLoad {
    fn success(&self) -> String {
        self.metrics
            .success_rate
            .map_or_else(|| "—".to_owned(), |r| format!("{:.0} %", r * 100.0))
    }
}

#[derive(Template)]
#[template(path = "command_center.html")]
struct CommandCenter {
    chrome: Chrome,
    running: Vec<Execution>,
    running_total: u64,
    recent: Vec<Execution>,
    approvals: Vec<Approval>,
    approvals_total: u64,
    usage: Usage,
    agents: Vec<AgentLoad>,
    chart: super::chart::Chart,
}

impl CommandCenter {
    fn quota(&self) -> String {
        match self.usage.tokens_per_day {
            Some(quota) => format!(
                "{} of {} tokens",
                count(self.usage.today.tokens),
                count(quota as i64)
            ),
            None => format!("{} tokens", count(self.usage.today.tokens)),
        }
    }

    fn money(&self, usd: &str) -> String {
        money(usd)
    }
}

pub async fn command_center(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(&web, &visit, org, "home", "Command center").await?;
    let (api, who) = (web.api(), visit.caller());
    let (running, recent, approvals, usage, agents) = futures_util::join!(
        api.list::<Execution>(
            who,
            format!("/orgs/{org}/executions?status=running&pageSize=20")
        ),
        api.list::<Execution>(who, format!("/orgs/{org}/executions?pageSize=8")),
        api.list::<Approval>(
            who,
            format!("/orgs/{org}/approvals?status=pending&pageSize=5")
        ),
        api.get::<Usage>(who, format!("/orgs/{org}/usage")),
        api.list::<Agent>(who, format!("/orgs/{org}/agents?pageSize=8")),
    );
    let (running, recent, approvals, usage, agents) =
        (running?, recent?, approvals?, usage?, agents?);
    let metrics = futures_util::future::try_join_all(
        agents
            .items
            .iter()
            .map(|a| api.get::<AgentMetrics>(who, format!("/agents/{}/metrics", a.id))),
    )
    .await?;
    let agents = agents
        .items
        .into_iter()
        .zip(metrics)
        .map(|(agent, metrics)| AgentLoad { agent, metrics })
        .collect();
    let chart = super::chart::Chart::of_days(&usage.days);
    html(&CommandCenter {
        chrome,
        running_total: running.total,
        running: running.items,
        recent: recent.items,
        approvals_total: approvals.total,
        approvals: approvals.items,
        usage,
        agents,
        chart,
    })
}
