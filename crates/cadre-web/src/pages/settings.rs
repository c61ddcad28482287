//! Settings: members and invitations, API keys (the secret shown once),
//! model providers and prices, budgets, and the audit log with its hash
//! chain verified. Everyone in the org can look at members and budgets;
//! the API decides who may see keys, models and the audit log (admins)
//! and who may change anything, and a refusal is shown on the page.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::model::{Agent, Usage};
use crate::Web;
use crate::api::ApiFailure;
use crate::form::{Posted, blank_is_none};
use crate::session::Visit;
use crate::view::{Chrome, PageError, ago, count, html_as, money, pretty};

/// The settings tabs, in order: (path segment, label).
const TABS: &[(&str, &str)] = &[
    ("members", "Members"),
    ("keys", "API keys"),
    ("models", "Models"),
    ("budgets", "Budgets"),
    ("audit", "Audit log"),
];

/// Which settings tab a page is, and what went wrong on it.
struct Tab {
    name: &'static str,
    /// A refusal or a problem with the form, shown in place.
    error: Option<String>,
}

impl Tab {
    /// The page's frame and tab.
    async fn load(
        web: &Web,
        visit: &Visit,
        org: Uuid,
        name: &'static str,
        error: Option<String>,
    ) -> Result<(Chrome, Tab), PageError> {
        let label = TABS.iter().find(|(t, _)| *t == name).map_or("", |(_, l)| l);
        let chrome =
            Chrome::load(web, visit, org, "settings", format!("Settings · {label}")).await?;
        Ok((chrome, Tab { name, error }))
    }

    fn all(&self) -> &'static [(&'static str, &'static str)] {
        TABS
    }

    fn current(&self, tab: &str) -> &'static str {
        if self.name == tab { "page" } else { "false" }
    }
}

/// The outcome of a settings form: back to the tab, or the tab again with
/// the API's refusal (and its status).
fn refused(failure: ApiFailure) -> Result<(StatusCode, String), PageError> {
    if failure.shown_on_page() {
        Ok((failure.status, failure.message))
    } else {
        Err(failure.into())
    }
}

pub async fn index(Path(org): Path<Uuid>) -> Redirect {
    Redirect::to(&format!("/o/{org}/settings/members"))
}

// ---- Members and invitations ----------------------------------------------

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
    outcome: Result<StatusCode, (StatusCode, String)>,
) -> Result<Response, PageError> {
    let (status, error) = split(outcome);
    let (chrome, tab) = Tab::load(web, visit, org, "members", error).await?;
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

fn split(outcome: Result<StatusCode, (StatusCode, String)>) -> (StatusCode, Option<String>) {
    match outcome {
        Ok(status) => (status, None),
        Err((status, message)) => (status, Some(message)),
    }
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

// ---- Invitations, from the invitee's side ---------------------------------

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

/// A query value, percent-encoded.
fn query_value(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Invitation tokens are URL-safe; anything else is not one of ours.
fn is_token(text: &str) -> bool {
    (1..=200).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

// ---- API keys ---------------------------------------------------------------

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
    outcome: Result<StatusCode, (StatusCode, String)>,
) -> Result<Response, PageError> {
    let (status, mut error) = split(outcome);
    let frame_error = error.take();
    let listed = web
        .api()
        .get::<Vec<ApiKey>>(visit.caller(), format!("/api-keys?orgId={org}"))
        .await;
    // Keys are for admins: a member sees why the tab is empty.
    let (keys, error) = match listed {
        Ok(keys) => (keys, frame_error),
        Err(f) if f.status == StatusCode::FORBIDDEN => (Vec::new(), Some(f.message)),
        Err(f) => return Err(f.into()),
    };
    let (chrome, tab) = Tab::load(web, visit, org, "keys", error).await?;
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

// ---- Models -----------------------------------------------------------------

/// A configured model, as the API lists it and takes it back (the API key
/// is never shown; leaving it out keeps the stored one).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Model {
    name: String,
    provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    base_url: Option<String>,
    #[serde(default, skip_serializing)]
    has_api_key: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_price_per_m_tok: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_price_per_m_tok: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context_window: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    script: Option<Value>,
}

impl Model {
    fn price(value: &Option<String>) -> String {
        value.as_deref().map_or("—".to_owned(), money)
    }
}

#[derive(Template)]
#[template(path = "settings_models.html")]
struct ModelsPage {
    chrome: Chrome,
    tab: Tab,
    models: Vec<Model>,
    providers: &'static [&'static str],
}

pub async fn models(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
) -> Result<Response, PageError> {
    render_models(&web, &visit, org, Ok(StatusCode::OK)).await
}

async fn render_models(
    web: &Web,
    visit: &Visit,
    org: Uuid,
    outcome: Result<StatusCode, (StatusCode, String)>,
) -> Result<Response, PageError> {
    let (status, error) = split(outcome);
    let (chrome, tab) = Tab::load(web, visit, org, "models", error).await?;
    let models = web
        .api()
        .get::<Vec<Model>>(visit.caller(), format!("/orgs/{org}/models"))
        .await?;
    let page = ModelsPage {
        chrome,
        tab,
        models,
        providers: &["openai", "anthropic", "scripted"],
    };
    html_as(status, &page)
}

#[derive(Deserialize)]
pub struct ModelForm {
    /// `save` (add, or replace the model of that name) or `remove`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    provider: String,
    #[serde(default, deserialize_with = "blank_is_none")]
    base_url: Option<String>,
    /// Blank keeps the stored key.
    #[serde(default, deserialize_with = "blank_is_none")]
    api_key: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    input_price_per_m_tok: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    output_price_per_m_tok: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    context_window: Option<String>,
    /// JSON, for a scripted model.
    #[serde(default, deserialize_with = "blank_is_none")]
    script: Option<String>,
}

/// One model added, replaced or removed: the page reads the list, changes
/// that entry and puts the whole list back (the API's `PUT` replaces it).
pub async fn change_model(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    Posted(form): Posted<ModelForm>,
) -> Result<Response, PageError> {
    let path = format!("/orgs/{org}/models");
    let current = web.api().get::<Vec<Model>>(visit.caller(), &path).await?;
    let body = match models_body(current, &form) {
        Ok(body) => body,
        Err(message) => {
            let outcome = Err((StatusCode::UNPROCESSABLE_ENTITY, message));
            return render_models(&web, &visit, org, outcome).await;
        }
    };
    match web
        .api()
        .send(visit.caller(), Method::PUT, path, Some(&body))
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/o/{org}/settings/models")).into_response()),
        Err(f) => render_models(&web, &visit, org, Err(refused(f)?)).await,
    }
}

fn models_body(current: Vec<Model>, form: &ModelForm) -> Result<Value, String> {
    let name = form.name.trim();
    let mut list: Vec<Value> = current
        .into_iter()
        .filter(|m| m.name != name)
        .map(|m| serde_json::to_value(m).unwrap_or(Value::Null))
        .collect();
    if form.action == "save" {
        let mut model = json!({ "name": name, "provider": form.provider });
        if let Some(url) = &form.base_url {
            model["baseUrl"] = json!(url.trim());
        }
        if let Some(key) = &form.api_key {
            model["apiKey"] = json!(key);
        }
        if let Some(price) = &form.input_price_per_m_tok {
            model["inputPricePerMTok"] = json!(price.trim());
        }
        if let Some(price) = &form.output_price_per_m_tok {
            model["outputPricePerMTok"] = json!(price.trim());
        }
        if let Some(window) = &form.context_window {
            let window: i64 = window
                .trim()
                .parse()
                .map_err(|_| "The context window is a whole number of tokens.".to_owned())?;
            model["contextWindow"] = json!(window);
        }
        if let Some(script) = &form.script {
            let script: Value = serde_json::from_str(script)
                .map_err(|e| format!("The script is not valid JSON: {e}"))?;
            model["script"] = script;
        }
        list.push(model);
    } else if form.action != "remove" {
        return Err("Choose to save or remove a model.".to_owned());
    }
    Ok(json!({ "models": list }))
}

// ---- Budgets ----------------------------------------------------------------

/// A plan the org can be on, with the daily token quota it brings here.
struct PlanChoice {
    name: &'static str,
    tokens_per_day: Option<u64>,
}

impl PlanChoice {
    fn quota(&self) -> String {
        self.tokens_per_day
            .map_or("no daily token quota".to_owned(), |t| {
                format!(
                    "{} tokens a day",
                    count(i64::try_from(t).unwrap_or(i64::MAX))
                )
            })
    }
}

#[derive(Template)]
#[template(path = "settings_budgets.html")]
struct BudgetsPage {
    chrome: Chrome,
    tab: Tab,
    usage: Usage,
    plans: Vec<PlanChoice>,
    agents: Vec<AgentBudget>,
}

impl BudgetsPage {
    fn money(&self, usd: &str) -> String {
        money(usd)
    }

    fn count(&self, n: i64) -> String {
        count(n)
    }

    fn quota_tokens(&self) -> String {
        self.usage
            .tokens_per_day
            .map_or_else(String::new, |t| count(i64::try_from(t).unwrap_or(i64::MAX)))
    }
}

/// An agent with the limits the engine applies to it: its own, with the
/// engine's defaults for what it leaves out.
struct AgentBudget {
    id: Uuid,
    name: String,
    limits: Option<cadre_engine::spec::Limits>,
}

impl AgentBudget {
    fn new(agent: Agent) -> Self {
        Self {
            limits: serde_json::from_value(agent.spec.limits).ok(),
            id: agent.id,
            name: agent.spec.name,
        }
    }

    /// A figure of the limits, or "—" when the agent has none.
    fn show<T: ToString>(&self, pick: impl Fn(&cadre_engine::spec::Limits) -> Option<T>) -> String {
        self.limits
            .as_ref()
            .and_then(pick)
            .map_or_else(|| "—".to_owned(), |v| v.to_string())
    }

    fn per_day(&self) -> String {
        self.show(|l| l.max_cost_usd_per_day.map(|d| money(&d.to_string())))
    }

    fn per_month(&self) -> String {
        self.show(|l| l.max_cost_usd_per_month.map(|d| money(&d.to_string())))
    }

    fn per_run(&self) -> String {
        self.show(|l| Some(money(&l.max_cost_usd.to_string())))
    }

    fn tokens(&self) -> String {
        self.show(|l| Some(count(i64::try_from(l.max_tokens).unwrap_or(i64::MAX))))
    }

    fn steps(&self) -> String {
        self.show(|l| Some(l.max_steps))
    }
}

pub async fn budgets(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
) -> Result<Response, PageError> {
    render_budgets(&web, &visit, org, Ok(StatusCode::OK)).await
}

async fn render_budgets(
    web: &Web,
    visit: &Visit,
    org: Uuid,
    outcome: Result<StatusCode, (StatusCode, String)>,
) -> Result<Response, PageError> {
    let (status, error) = split(outcome);
    let (chrome, tab) = Tab::load(web, visit, org, "budgets", error).await?;
    let (usage, agents) = futures_util::join!(
        web.api()
            .get::<Usage>(visit.caller(), format!("/orgs/{org}/usage")),
        web.api()
            .list::<Agent>(visit.caller(), format!("/orgs/{org}/agents?pageSize=100")),
    );
    let limits = web.app().limits();
    let plans = cadre_types::Plan::ALL
        .iter()
        .map(|p| PlanChoice {
            name: p.as_str(),
            tokens_per_day: limits.tokens_per_day(*p),
        })
        .collect();
    let page = BudgetsPage {
        chrome,
        tab,
        usage: usage?,
        plans,
        agents: agents?.items.into_iter().map(AgentBudget::new).collect(),
    };
    html_as(status, &page)
}

#[derive(Deserialize)]
pub struct PlanForm {
    #[serde(default)]
    plan: String,
}

pub async fn set_plan(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    Posted(form): Posted<PlanForm>,
) -> Result<Response, PageError> {
    let body = json!({ "plan": form.plan });
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
        Ok(_) => Ok(Redirect::to(&format!("/o/{org}/settings/budgets")).into_response()),
        Err(f) => render_budgets(&web, &visit, org, Err(refused(f)?)).await,
    }
}

// ---- Audit log --------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditEntry {
    seq: i64,
    at: String,
    actor_type: String,
    actor_id: Option<String>,
    action: String,
    resource_type: Option<String>,
    resource_id: Option<String>,
    ip: Option<String>,
    details: Value,
    hash: String,
}

impl AuditPage {
    fn has_older(&self) -> bool {
        u64::from(self.page) < self.pages
    }

    /// The filter, for the paging links.
    fn action_query(&self) -> String {
        query_value(&self.action)
    }
}

impl AuditEntry {
    fn when(&self) -> String {
        ago(&self.at)
    }

    fn details_text(&self) -> String {
        if self.details.as_object().is_some_and(|o| o.is_empty()) {
            String::new()
        } else {
            pretty(&self.details)
        }
    }

    fn short_hash(&self) -> &str {
        self.hash.get(..12).unwrap_or(&self.hash)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Verification {
    valid: bool,
    entries: u64,
    first_bad_seq: Option<i64>,
}

#[derive(Template)]
#[template(path = "settings_audit.html")]
struct AuditPage {
    chrome: Chrome,
    tab: Tab,
    entries: Vec<AuditEntry>,
    verification: Verification,
    page: u32,
    pages: u64,
    action: String,
}

#[derive(Deserialize)]
pub struct AuditFilter {
    #[serde(default = "first")]
    page: u32,
    #[serde(default)]
    action: String,
}

fn first() -> u32 {
    1
}

const AUDIT_PAGE: u32 = 50;

pub async fn audit(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    Query(filter): Query<AuditFilter>,
) -> Result<Response, PageError> {
    let page = filter.page.max(1);
    let action = filter.action.trim().to_owned();
    let mut path = format!("/orgs/{org}/audit-log?page={page}&pageSize={AUDIT_PAGE}");
    if !action.is_empty() {
        path.push_str(&format!("&action={}", query_value(&action)));
    }
    let (entries, verification) = futures_util::join!(
        web.api().list::<AuditEntry>(visit.caller(), path),
        web.api()
            .get::<Verification>(visit.caller(), format!("/orgs/{org}/audit-log/verify")),
    );
    let (entries, verification) = match (entries, verification) {
        (Ok(e), Ok(v)) => (e, v),
        // Members and viewers are refused the log: say so on the tab.
        (Err(f), _) | (_, Err(f)) if f.status == StatusCode::FORBIDDEN => {
            let (chrome, tab) = Tab::load(&web, &visit, org, "audit", Some(f.message)).await?;
            let page = AuditPage {
                chrome,
                tab,
                entries: Vec::new(),
                verification: Verification {
                    valid: true,
                    entries: 0,
                    first_bad_seq: None,
                },
                page: 1,
                pages: 1,
                action,
            };
            return html_as(StatusCode::FORBIDDEN, &page);
        }
        (Err(f), _) | (_, Err(f)) => return Err(f.into()),
    };
    let (chrome, tab) = Tab::load(&web, &visit, org, "audit", None).await?;
    let page = AuditPage {
        chrome,
        tab,
        pages: entries.total.div_ceil(u64::from(AUDIT_PAGE)).max(1),
        entries: entries.items,
        verification,
        page,
        action,
    };
    html_as(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(action: &str, name: &str) -> ModelForm {
        ModelForm {
            action: action.to_owned(),
            name: name.to_owned(),
            provider: "openai".to_owned(),
            base_url: Some("http://127.0.0.1:9/v1".to_owned()),
            api_key: None,
            input_price_per_m_tok: Some("0.5".to_owned()),
            output_price_per_m_tok: None,
            context_window: Some("8192".to_owned()),
            script: None,
        }
    }

    fn existing(name: &str) -> Model {
        Model {
            name: name.to_owned(),
            provider: "anthropic".to_owned(),
            base_url: None,
            has_api_key: true,
            input_price_per_m_tok: Some("3".to_owned()),
            output_price_per_m_tok: Some("15".to_owned()),
            context_window: None,
            script: None,
        }
    }

    #[test]
    fn saving_a_model_replaces_the_one_of_that_name_and_keeps_the_others() {
        let body = models_body(vec![existing("a"), existing("b")], &form("save", "b")).unwrap();
        let list = body["models"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["name"], "a");
        // The kept model goes back without an apiKey, so the stored one stays.
        assert!(list[0].get("apiKey").is_none());
        assert!(list[0].get("hasApiKey").is_none());
        assert_eq!(list[0]["outputPricePerMTok"], "15");
        assert_eq!(list[1]["name"], "b");
        assert_eq!(list[1]["provider"], "openai");
        assert_eq!(list[1]["contextWindow"], 8192);
    }

    #[test]
    fn removing_a_model_drops_only_it() {
        let body = models_body(vec![existing("a"), existing("b")], &form("remove", "a")).unwrap();
        let names: Vec<_> = body["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["b"]);
    }

    #[test]
    fn a_bad_context_window_or_script_is_named() {
        let mut f = form("save", "c");
        f.context_window = Some("lots".to_owned());
        assert!(
            models_body(vec![], &f)
                .unwrap_err()
                .contains("context window")
        );
        let mut f = form("save", "c");
        f.script = Some("[oops".to_owned());
        assert!(
            models_body(vec![], &f)
                .unwrap_err()
                .contains("not valid JSON")
        );
    }

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
