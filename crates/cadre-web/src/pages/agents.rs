//! Agents: the list, creating one (from a template or from scratch),
//! editing it, and its versions with a diff between any two.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::model::{Agent, AgentMetrics, AgentTemplate, AgentVersion, Execution};
use crate::Web;
use crate::form::{Posted, blank_is_none};
use crate::session::Visit;
use crate::view::{
    Chrome, PageError, Pager, first_page, html, html_as, money, pretty, read_in_org,
};

#[derive(Template)]
#[template(path = "agents.html")]
struct AgentsPage {
    chrome: Chrome,
    agents: Vec<Agent>,
    pager: Pager,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default = "first_page")]
    page: u32,
}

/// Agents a list page shows at a time.
const LIST_PAGE: u32 = 100;

pub async fn list(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(&web, &visit, org, "agents", "Agents").await?;
    let page = q.page.max(1);
    let agents = web
        .api()
        .list::<Agent>(
            visit.caller(),
            format!("/orgs/{org}/agents?pageSize={LIST_PAGE}&page={page}"),
        )
        .await?;
    html(&AgentsPage {
        pager: Pager::new(&chrome.at("/agents"), "", page, LIST_PAGE, agents.total),
        chrome,
        agents: agents.items,
    })
}

#[derive(Template)]
#[template(path = "agent_new.html")]
struct NewAgentPage {
    chrome: Chrome,
    /// Templates by category, in catalogue order.
    groups: Vec<(String, Vec<AgentTemplate>)>,
    /// The org's configured models (`GET /orgs/{id}/models`), first is
    /// the default choice.
    models: Vec<String>,
    error: Option<String>,
}

impl NewAgentPage {
    fn default_model(&self) -> &str {
        self.models.first().map_or("", String::as_str)
    }
}

#[derive(Deserialize)]
struct ModelName {
    name: String,
}

pub async fn new_page(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
) -> Result<Response, PageError> {
    render_new(&web, &visit, org, None, StatusCode::OK).await
}

async fn render_new(
    web: &Web,
    visit: &Visit,
    org: Uuid,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(web, visit, org, "agents", "New agent").await?;
    let (templates, models) = futures_util::join!(
        web.api()
            .get::<Vec<AgentTemplate>>(visit.caller(), "/agent-templates"),
        web.api()
            .get::<Vec<ModelName>>(visit.caller(), format!("/orgs/{org}/models")),
    );
    let (templates, models) = (templates?, models?);
    let mut groups: Vec<(String, Vec<AgentTemplate>)> = Vec::new();
    for t in templates {
        match groups.iter_mut().find(|(c, _)| *c == t.category) {
            Some((_, list)) => list.push(t),
            None => groups.push((t.category.clone(), vec![t])),
        }
    }
    let models = models.into_iter().map(|m| m.name).collect();
    let page = NewAgentPage {
        chrome,
        groups,
        models,
        error,
    };
    html_as(status, &page)
}

/// The agent form, for both creating and editing. Blank fields are left
/// out, so the template's (or the current version's) value stays.
#[derive(Deserialize, Default)]
pub struct AgentForm {
    #[serde(default, deserialize_with = "blank_is_none")]
    template_id: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    name: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    role: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    description: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    instructions: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    model: Option<String>,
    /// Comma- or line-separated tool names.
    #[serde(default, deserialize_with = "blank_is_none")]
    tools: Option<String>,
    /// JSON.
    #[serde(default, deserialize_with = "blank_is_none")]
    approval_policy: Option<String>,
    /// JSON.
    #[serde(default, deserialize_with = "blank_is_none")]
    limits: Option<String>,
}

impl AgentForm {
    /// The API body, or which JSON field does not parse.
    fn body(&self) -> Result<Value, String> {
        let mut body = Map::new();
        let mut text = |key: &str, value: &Option<String>| {
            if let Some(v) = value {
                body.insert(key.to_owned(), Value::String(v.clone()));
            }
        };
        text("templateId", &self.template_id);
        text("name", &self.name);
        text("role", &self.role);
        text("description", &self.description);
        text("instructions", &self.instructions);
        text("model", &self.model);
        if let Some(tools) = &self.tools {
            let list: Vec<&str> = tools
                .split([',', '\n'])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect();
            body.insert("tools".to_owned(), json!(list));
        }
        for (key, label, value) in [
            ("approvalPolicy", "Approval policy", &self.approval_policy),
            ("limits", "Limits", &self.limits),
        ] {
            if let Some(v) = value {
                let parsed: Value = serde_json::from_str(v)
                    .map_err(|e| format!("{label} is not valid JSON: {e}"))?;
                body.insert(key.to_owned(), parsed);
            }
        }
        Ok(Value::Object(body))
    }
}

pub async fn create(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    Posted(form): Posted<AgentForm>,
) -> Result<Response, PageError> {
    let body = match form.body() {
        Ok(body) => body,
        Err(message) => {
            return render_new(
                &web,
                &visit,
                org,
                Some(message),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    match web
        .api()
        .send(
            visit.caller(),
            Method::POST,
            format!("/orgs/{org}/agents"),
            Some(&body),
        )
        .await
    {
        Ok(agent) => {
            let id = agent["id"].as_str().unwrap_or_default();
            Ok(Redirect::to(&format!("/o/{org}/agents/{id}")).into_response())
        }
        Err(failure) if failure.shown_on_page() => {
            render_new(&web, &visit, org, Some(failure.message), failure.status).await
        }
        Err(failure) => Err(failure.into()),
    }
}

#[derive(Template)]
#[template(path = "agent.html")]
struct AgentPage {
    chrome: Chrome,
    agent: Agent,
    metrics: AgentMetrics,
    versions: Vec<AgentVersion>,
    executions: Vec<Execution>,
    tools: String,
    policy: String,
    limits: String,
    error: Option<String>,
    saved: bool,
}

impl AgentPage {
    fn money(&self, usd: &str) -> String {
        money(usd)
    }
}

#[derive(Deserialize, Default)]
pub struct Saved {
    #[serde(default)]
    saved: Option<String>,
}

pub async fn detail(
    State(web): State<Web>,
    visit: Visit,
    Path((org, id)): Path<(Uuid, Uuid)>,
    Query(q): Query<Saved>,
) -> Result<Response, PageError> {
    render_agent(
        &web,
        &visit,
        org,
        id,
        None,
        q.saved.is_some(),
        StatusCode::OK,
    )
    .await
}

async fn render_agent(
    web: &Web,
    visit: &Visit,
    org: Uuid,
    id: Uuid,
    error: Option<String>,
    saved: bool,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (api, who) = (web.api(), visit.caller());
    let agent: Agent = read_in_org(web, visit, org, format!("/agents/{id}")).await?;
    let chrome = Chrome::load(web, visit, org, "agents", agent.spec.name.clone())
        .await?
        .listen(format!("agent:{id}"));
    let (metrics, versions, executions) = futures_util::join!(
        api.get::<AgentMetrics>(who, format!("/agents/{id}/metrics")),
        api.list::<AgentVersion>(who, format!("/agents/{id}/versions?pageSize=50")),
        api.list::<Execution>(
            who,
            format!("/orgs/{org}/executions?agentId={id}&pageSize=10")
        ),
    );
    let page = AgentPage {
        tools: agent.spec.tools.join(", "),
        policy: pretty(&agent.spec.approval_policy),
        limits: pretty(&agent.spec.limits),
        chrome,
        agent,
        metrics: metrics?,
        versions: versions?.items,
        executions: executions?.items,
        error,
        saved,
    };
    html_as(status, &page)
}

pub async fn update(
    State(web): State<Web>,
    visit: Visit,
    Path((org, id)): Path<(Uuid, Uuid)>,
    Posted(form): Posted<AgentForm>,
) -> Result<Response, PageError> {
    let body = match form.body() {
        Ok(body) => body,
        Err(message) => {
            return render_agent(
                &web,
                &visit,
                org,
                id,
                Some(message),
                false,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    read_in_org::<Agent>(&web, &visit, org, format!("/agents/{id}")).await?;
    match web
        .api()
        .send(
            visit.caller(),
            Method::PATCH,
            format!("/agents/{id}"),
            Some(&body),
        )
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/o/{org}/agents/{id}?saved=1")).into_response()),
        Err(failure) if failure.shown_on_page() => {
            render_agent(
                &web,
                &visit,
                org,
                id,
                Some(failure.message),
                false,
                failure.status,
            )
            .await
        }
        Err(failure) => Err(failure.into()),
    }
}

#[derive(Deserialize)]
pub struct StatusForm {
    status: String,
}

/// Disables an agent (it stops taking work) or enables it again.
pub async fn set_status(
    State(web): State<Web>,
    visit: Visit,
    Path((org, id)): Path<(Uuid, Uuid)>,
    Posted(form): Posted<StatusForm>,
) -> Result<Response, PageError> {
    read_in_org::<Agent>(&web, &visit, org, format!("/agents/{id}")).await?;
    web.api()
        .send(
            visit.caller(),
            Method::PATCH,
            format!("/agents/{id}"),
            Some(&json!({ "status": form.status })),
        )
        .await?;
    Ok(Redirect::to(&format!("/o/{org}/agents/{id}")).into_response())
}

/// Deletes an agent; its executions and their traces stay readable.
pub async fn delete(
    State(web): State<Web>,
    visit: Visit,
    Path((org, id)): Path<(Uuid, Uuid)>,
    Posted(_): Posted<Value>,
) -> Result<Response, PageError> {
    read_in_org::<Agent>(&web, &visit, org, format!("/agents/{id}")).await?;
    web.api()
        .send(
            visit.caller(),
            Method::DELETE,
            format!("/agents/{id}"),
            None,
        )
        .await?;
    Ok(Redirect::to(&format!("/o/{org}/agents")).into_response())
}

#[derive(Template)]
#[template(path = "agent_diff.html")]
struct DiffPage {
    chrome: Chrome,
    agent: Agent,
    from: i64,
    to: i64,
    lines: Vec<crate::diff::Line>,
}

#[derive(Deserialize)]
pub struct DiffQuery {
    from: i64,
    to: i64,
}

pub async fn diff(
    State(web): State<Web>,
    visit: Visit,
    Path((org, id)): Path<(Uuid, Uuid)>,
    Query(q): Query<DiffQuery>,
) -> Result<Response, PageError> {
    let agent: Agent = read_in_org(&web, &visit, org, format!("/agents/{id}")).await?;
    let (api, who) = (web.api(), visit.caller());
    let (from, to) = futures_util::join!(
        api.get::<AgentVersion>(who, format!("/agents/{id}/versions/{}", q.from)),
        api.get::<AgentVersion>(who, format!("/agents/{id}/versions/{}", q.to)),
    );
    let (from, to) = (from?, to?);
    let chrome = Chrome::load(
        &web,
        &visit,
        org,
        "agents",
        format!("{}: v{} → v{}", agent.spec.name, q.from, q.to),
    )
    .await?;
    html(&DiffPage {
        lines: crate::diff::lines(&pretty(&from.snapshot), &pretty(&to.snapshot)),
        chrome,
        agent,
        from: q.from,
        to: q.to,
    })
}
