//! Executions: the list, and the glass box — every step of one execution
//! as its trace records it, live, with its controls and pending approvals.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::model::{Agent, Approval, Execution, Task};
use crate::Web;
use crate::form::{Posted, blank_is_none};
use crate::session::Visit;
use crate::view::{
    Chrome, PageError, Pager, first_page, html, html_as, money, pretty, read_in_org,
};

#[derive(Template)]
#[template(path = "executions.html")]
struct ListPage {
    chrome: Chrome,
    executions: Vec<Execution>,
    total: u64,
    status: String,
    statuses: &'static [&'static str],
    pager: Pager,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default = "first_page")]
    page: u32,
}

const LIST_PAGE: u32 = 50;

pub async fn list(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let chrome = Chrome::load(&web, &visit, org, "executions", "Executions").await?;
    // Only a status the engine knows goes into the query; anything else
    // shows them all.
    let status = if cadre_engine::STATUSES.contains(&q.status.as_str()) {
        q.status
    } else {
        String::new()
    };
    let filter = if status.is_empty() {
        String::new()
    } else {
        format!("status={status}")
    };
    let page = q.page.max(1);
    let executions = web
        .api()
        .list::<Execution>(
            visit.caller(),
            format!("/orgs/{org}/executions?pageSize={LIST_PAGE}&page={page}&{filter}")
                .trim_end_matches('&')
                .to_owned(),
        )
        .await?;
    html(&ListPage {
        pager: Pager::new(
            &chrome.at("/executions"),
            &filter,
            page,
            LIST_PAGE,
            executions.total,
        ),
        chrome,
        total: executions.total,
        executions: executions.items,
        status,
        statuses: &cadre_engine::STATUSES,
    })
}

/// What the API's trace answers, one event.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TraceEvent {
    seq: i64,
    #[serde(rename = "type")]
    kind: String,
    at: String,
    data: Value,
    hash: String,
}

/// A trace event as the timeline shows it.
pub struct Item {
    pub seq: i64,
    pub kind: String,
    pub at: String,
    /// One line saying what happened.
    pub title: String,
    /// Step, tokens, cost, duration — whatever the event has.
    pub meta: String,
    /// Collapsible bodies: prompt, response, arguments, result…
    pub sections: Vec<Section>,
    pub hash: String,
}

impl Item {
    /// The start of the event's hash: enough to compare with an export.
    pub fn short_hash(&self) -> &str {
        self.hash.get(..12).unwrap_or(&self.hash)
    }
}

pub struct Section {
    /// Stable across refreshes, so an opened section stays open.
    pub id: String,
    pub label: &'static str,
    pub text: String,
    pub open: bool,
}

fn item(e: TraceEvent) -> Item {
    let d = &e.data;
    let mut meta = Vec::new();
    if let Some(step) = d["step"].as_i64() {
        meta.push(format!("step {step}"));
    }
    if let (Some(i), Some(o)) = (d["tokensIn"].as_i64(), d["tokensOut"].as_i64()) {
        meta.push(format!("{i} in / {o} out tokens"));
    }
    if let Some(cost) = d["costUsd"].as_str() {
        meta.push(money(cost));
    }
    for key in ["latencyMs", "durationMs"] {
        if let Some(ms) = d[key].as_u64() {
            meta.push(format!("{ms} ms"));
        }
    }
    let mut sections = Vec::new();
    let mut section = |label: &'static str, value: &Value, open: bool| {
        if value.is_null() {
            return;
        }
        let text = match value.as_str() {
            Some(s) => s.to_owned(),
            None => pretty(value),
        };
        if text.is_empty() {
            return;
        }
        sections.push(Section {
            id: format!("ev{}-{}", e.seq, label.to_lowercase().replace(' ', "-")),
            label,
            text,
            open,
        });
    };
    let title = match e.kind.as_str() {
        "llm_call" => {
            section("Prompt", &prompt(&d["request"]["messages"]), false);
            section("Response", &d["response"]["text"], true);
            if d["response"]["toolCalls"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
            {
                section("Tool calls", &d["response"]["toolCalls"], false);
            }
            format!(
                "Model call to {}{}",
                d["model"].as_str().unwrap_or("a model"),
                d["provider"]
                    .as_str()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default()
            )
        }
        "tool_call" => {
            section("Arguments", &d["arguments"], true);
            section("Result", &d["result"], false);
            format!("Tool {}", d["tool"].as_str().unwrap_or("?"))
        }
        "approval_requested" => {
            section("Arguments", &d["details"], true);
            format!(
                "Approval requested ({} risk): {}",
                d["riskLevel"].as_str().unwrap_or("?"),
                d["description"]
                    .as_str()
                    .or(d["action"].as_str())
                    .unwrap_or("")
            )
        }
        "decision" => {
            section("Details", d, false);
            d["summary"]
                .as_str()
                .or(d["reason"].as_str())
                .map_or_else(|| "Decision".to_owned(), |s| format!("Decision: {s}"))
        }
        "input_requested" => {
            section("Options", &d["options"], false);
            format!("Asked a person: {}", d["question"].as_str().unwrap_or(""))
        }
        "error" => {
            section("Details", d, false);
            format!(
                "Error: {}",
                d["message"].as_str().or(d["error"].as_str()).unwrap_or("")
            )
        }
        other => {
            section("Details", d, false);
            other.replace('_', " ")
        }
    };
    Item {
        seq: e.seq,
        kind: e.kind,
        at: e.at,
        title,
        meta: meta.join(" · "),
        sections,
        hash: e.hash,
    }
}

/// The prompt's messages as "role: content" blocks, easier to read than
/// their JSON.
fn prompt(messages: &Value) -> Value {
    let Some(list) = messages.as_array() else {
        return Value::Null;
    };
    let text = list
        .iter()
        .map(|m| {
            let content = match &m["content"] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => pretty(other),
            };
            let calls = if m["toolCalls"].is_null() && m["tool_calls"].is_null() {
                String::new()
            } else {
                format!(
                    "\n[tool calls] {}",
                    pretty(if m["toolCalls"].is_null() {
                        &m["tool_calls"]
                    } else {
                        &m["toolCalls"]
                    })
                )
            };
            format!(
                "── {} ──\n{content}{calls}",
                m["role"].as_str().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    Value::String(text)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Verification {
    valid: bool,
    events: u64,
    first_bad_seq: Option<i64>,
}

#[derive(Template)]
#[template(path = "execution.html")]
struct DetailPage {
    chrome: Chrome,
    execution: Execution,
    agent: Option<Agent>,
    task: Option<Task>,
    items: Vec<Item>,
    approvals: Vec<Approval>,
    verification: Verification,
    /// The question of a `waiting_input` execution.
    question: Option<String>,
    error: Option<String>,
}

impl DetailPage {
    /// Where a decision made on this page returns to.
    fn back(&self) -> String {
        self.chrome
            .at(&format!("/executions/{}", self.execution.id))
    }
}

pub async fn detail(
    State(web): State<Web>,
    visit: Visit,
    Path((org, id)): Path<(Uuid, Uuid)>,
) -> Result<Response, PageError> {
    render(&web, &visit, org, id, None, StatusCode::OK).await
}

async fn render(
    web: &Web,
    visit: &Visit,
    org: Uuid,
    id: Uuid,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (api, who) = (web.api(), visit.caller());
    let execution = owned(web, visit, org, id).await?;
    let chrome = Chrome::load(
        web,
        visit,
        org,
        "executions",
        format!("Execution {}", execution.short()),
    )
    .await?
    .listen(format!("execution:{id}"));
    let (agent, task, trace, verification, approvals) = futures_util::join!(
        api.get::<Agent>(who, format!("/agents/{}", execution.agent_id)),
        api.get::<Task>(who, format!("/tasks/{}", execution.task_id)),
        api.get::<Vec<TraceEvent>>(who, format!("/executions/{id}/trace")),
        api.get::<Verification>(who, format!("/executions/{id}/trace/verify")),
        api.list::<Approval>(
            who,
            format!("/orgs/{org}/approvals?status=pending&executionId={id}")
        ),
    );
    let question = execution
        .waiting
        .as_ref()
        .and_then(|w| w["question"].as_str())
        .map(str::to_owned);
    let page = DetailPage {
        // A deleted agent or task keeps its executions (soft delete).
        agent: agent.ok(),
        task: task.ok(),
        items: trace?.into_iter().map(item).collect(),
        verification: verification?,
        approvals: approvals?.items,
        question,
        chrome,
        execution,
        error,
    };
    html_as(status, &page)
}

async fn owned(web: &Web, visit: &Visit, org: Uuid, id: Uuid) -> Result<Execution, PageError> {
    read_in_org(web, visit, org, format!("/executions/{id}")).await
}

#[derive(Deserialize, Default)]
pub struct ActionForm {
    #[serde(default, deserialize_with = "blank_is_none")]
    answer: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    from_step: Option<String>,
}

/// Pause, resume, cancel, answer a question, or fork from a step.
pub async fn act(
    State(web): State<Web>,
    visit: Visit,
    Path((org, id, action)): Path<(Uuid, Uuid, String)>,
    Posted(form): Posted<ActionForm>,
) -> Result<Response, PageError> {
    owned(&web, &visit, org, id).await?;
    let body = match action.as_str() {
        "pause" | "resume" | "cancel" => json!({}),
        "input" => json!({ "answer": form.answer.unwrap_or_default() }),
        "fork" => {
            json!({ "fromStep": form.from_step.and_then(|s| s.parse::<i64>().ok()).unwrap_or(0) })
        }
        _ => return Err(PageError::NotFound),
    };
    let answer = web
        .api()
        .send(
            visit.caller(),
            Method::POST,
            format!("/executions/{id}/{action}"),
            Some(&body),
        )
        .await;
    match answer {
        Ok(result) => {
            // A fork is a new execution: open it.
            let next = match (action.as_str(), result["id"].as_str()) {
                ("fork", Some(fork)) => fork.to_owned(),
                _ => id.to_string(),
            };
            Ok(Redirect::to(&format!("/o/{org}/executions/{next}")).into_response())
        }
        Err(f) if f.shown_on_page() => {
            render(&web, &visit, org, id, Some(f.message), f.status).await
        }
        Err(f) => Err(f.into()),
    }
}
