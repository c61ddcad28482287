//! The plan and its daily token quota, spend, and every agent's limits.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{Outcome, Tab, refused};
use crate::Web;
use crate::form::Posted;
use crate::pages::model::{Agent, Usage};
use crate::session::Visit;
use crate::view::{Chrome, PageError, count, html_as, money};

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
    outcome: Outcome,
) -> Result<Response, PageError> {
    let (chrome, tab, status) = Tab::load(web, visit, org, "budgets", outcome).await?;
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
