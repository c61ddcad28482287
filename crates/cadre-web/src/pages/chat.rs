//! Chat: the org's orchestrator answers or hands the request to an agent.
//! Answers stream in (the page's script reads the API's event stream
//! through [`stream`]); executions a turn starts are shown in the session
//! with their live progress. Without scripts, the form posts the message
//! and the page shows the stored answer.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::model::{Agent, ChatMessage, ChatSession, Execution};
use crate::Web;
use crate::form::{Posted, blank_is_none, check_header};
use crate::session::Visit;
use crate::view::{Chrome, PageError, count, html_as, read_in_org};

/// A message with what it points at: the agent that wrote it and the
/// execution it started.
struct Turn {
    message: ChatMessage,
    agent: Option<String>,
    execution: Option<Execution>,
}

#[derive(Template)]
#[template(path = "chat.html")]
struct ChatPage {
    chrome: Chrome,
    sessions: Vec<ChatSession>,
    current: Option<ChatSession>,
    turns: Vec<Turn>,
    /// The message sent when the answer could not be had, to send again.
    draft: String,
    error: Option<String>,
}

impl ChatPage {
    fn session_id(&self) -> String {
        self.current
            .as_ref()
            .map_or_else(String::new, |s| s.id.to_string())
    }

    fn count(&self, n: i64) -> String {
        count(n)
    }
}

pub async fn index(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
) -> Result<Response, PageError> {
    render(&web, &visit, org, None, String::new(), None).await
}

pub async fn session(
    State(web): State<Web>,
    visit: Visit,
    Path((org, id)): Path<(Uuid, Uuid)>,
) -> Result<Response, PageError> {
    render(&web, &visit, org, Some(id), String::new(), None).await
}

async fn render(
    web: &Web,
    visit: &Visit,
    org: Uuid,
    session: Option<Uuid>,
    draft: String,
    refused: Option<(StatusCode, String)>,
) -> Result<Response, PageError> {
    let mut chrome = Chrome::load(web, visit, org, "chat", "Chat").await?;
    let (api, who) = (web.api(), visit.caller());
    let current = match session {
        Some(id) => {
            let s: ChatSession =
                read_in_org(web, visit, org, format!("/chat/sessions/{id}")).await?;
            chrome = chrome.listen(format!("session:{id}"));
            chrome.title = s.title.clone();
            Some(s)
        }
        None => None,
    };
    let (sessions, agents) = futures_util::join!(
        api.list::<ChatSession>(who, format!("/orgs/{org}/chat/sessions?pageSize=50")),
        api.list::<Agent>(who, format!("/orgs/{org}/agents?pageSize=100")),
    );
    let agents = agents?.items;
    let messages: Vec<ChatMessage> = current.iter().flat_map(|s| s.messages.clone()).collect();
    // The executions the session started, read side by side; one gone or
    // unreadable leaves its message shown without it.
    let executions = futures_util::future::join_all(messages.iter().map(|m| async move {
        match m.execution_id {
            Some(id) => api
                .get::<Execution>(who, format!("/executions/{id}"))
                .await
                .ok(),
            None => None,
        }
    }))
    .await;
    let turns: Vec<Turn> = messages
        .into_iter()
        .zip(executions)
        .map(|(message, execution)| Turn {
            agent: message
                .agent_id
                .and_then(|id| agents.iter().find(|a| a.id == id))
                .map(|a| a.spec.name.clone()),
            message,
            execution,
        })
        .collect();
    let (status, error) = match refused {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    let page = ChatPage {
        chrome,
        sessions: sessions?.items,
        current,
        turns,
        draft,
        error,
    };
    html_as(status, &page)
}

#[derive(Deserialize)]
pub struct Said {
    #[serde(default)]
    message: String,
    #[serde(default, deserialize_with = "blank_is_none")]
    session_id: Option<String>,
}

impl Said {
    fn body(&self) -> Result<Value, PageError> {
        let mut body = json!({ "message": self.message });
        if let Some(id) = &self.session_id {
            let id: Uuid = id.parse().map_err(|_| PageError::NotFound)?;
            body["sessionId"] = json!(id);
        }
        Ok(body)
    }
}

/// Without scripts: the turn is taken whole, then the session is shown.
pub async fn send(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    Posted(said): Posted<Said>,
) -> Result<Response, PageError> {
    let body = said.body()?;
    let answer = web
        .api()
        .send(
            visit.caller(),
            Method::POST,
            format!("/orgs/{org}/chat"),
            Some(&body),
        )
        .await;
    let session = said.session_id.as_deref().and_then(|s| s.parse().ok());
    match answer {
        Ok(data) => {
            let id = data["sessionId"].as_str().unwrap_or_default();
            Ok(Redirect::to(&format!("/o/{org}/chat/{id}")).into_response())
        }
        Err(f) if f.shown_on_page() => {
            render(
                &web,
                &visit,
                org,
                session,
                said.message,
                Some((f.status, f.message)),
            )
            .await
        }
        Err(f) => Err(f.into()),
    }
}

/// The page's script: its JSON (`{"message", "sessionId"?}`, as the API
/// takes it) goes to the API's chat stream as it came, and the answer comes
/// back as it comes — the event stream, or the API's error envelope. The
/// CSRF token travels in a header.
pub async fn stream(
    State(web): State<Web>,
    visit: Visit,
    Path(org): Path<Uuid>,
    headers: HeaderMap,
    json: axum::body::Bytes,
) -> Result<Response, PageError> {
    check_header(&visit, &headers)?;
    let answer = web
        .api()
        .forward(
            visit.caller(),
            Method::POST,
            format!("/orgs/{org}/chat/stream"),
            json,
        )
        .await?;
    if answer.status() == StatusCode::UNAUTHORIZED {
        return Err(PageError::SignIn);
    }
    Ok(answer)
}

pub async fn delete(
    State(web): State<Web>,
    visit: Visit,
    Path((org, id)): Path<(Uuid, Uuid)>,
    Posted(_): Posted<Value>,
) -> Result<Response, PageError> {
    // Only a session of this org is deleted from this org's page.
    let _: ChatSession = read_in_org(&web, &visit, org, format!("/chat/sessions/{id}")).await?;
    web.api()
        .send(
            visit.caller(),
            Method::DELETE,
            format!("/chat/sessions/{id}"),
            None,
        )
        .await?;
    Ok(Redirect::to(&format!("/o/{org}/chat")).into_response())
}
