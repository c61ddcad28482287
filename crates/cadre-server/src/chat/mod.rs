//! Chat with the org's orchestrator (SPEC §3, §7.5): a turn answers the
//! newest message directly, streaming its tokens, or routes the request to
//! the best-suited agent and starts an execution of it. Every token chunk
//! and the stored answer are announced on the session's channel, so the
//! SSE response, other tabs and a resumed stream all see the same turn.

mod context;
mod follow;

use cadre_llm::StreamEvent;
use cadre_realtime::{Notice, Scope};
use cadre_store::{Actor, AgentRow, ChatMessageRow, ChatSessionRow, NewChatMessage};
use cadre_types::Tenant;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

/// The model the orchestrator uses when the org has no coordinator agent
/// and no model of its own.
const FALLBACK_MODEL: &str = "gpt-4o-mini";

/// A chat message as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChatMessageOut {
    pub(crate) id: Uuid,
    session_id: Uuid,
    /// `user`, `assistant`, `agent` or `system`.
    role: String,
    content: String,
    agent_id: Option<Uuid>,
    execution_id: Option<Uuid>,
    #[schema(value_type = Vec<Object>)]
    attachments: Value,
    tokens_in: i64,
    tokens_out: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    created_at: time::OffsetDateTime,
}

impl From<ChatMessageRow> for ChatMessageOut {
    fn from(m: ChatMessageRow) -> Self {
        Self {
            id: m.id,
            session_id: m.session_id,
            role: m.role,
            content: m.content,
            agent_id: m.agent_id,
            execution_id: m.execution_id,
            attachments: m.attachments.0,
            tokens_in: m.tokens_in,
            tokens_out: m.tokens_out,
            created_at: m.created_at,
        }
    }
}

/// One turn to answer.
pub(crate) struct Turn {
    pub state: AppState,
    pub tenant: Tenant,
    pub session: ChatSessionRow,
    /// Who is chatting (the author of tasks the turn creates).
    pub actor: Actor,
    /// The user behind the request, for the executions it starts.
    pub by: Option<Uuid>,
    /// The id the answer will be stored under (announced with every chunk).
    pub message_id: Uuid,
}

/// What a turn produced.
pub(crate) struct Answered {
    pub message: ChatMessageOut,
    pub execution: Option<Value>,
}

impl Turn {
    fn announce(&self, kind: &str, payload: Value) {
        self.state.realtime().publish(Notice::new(
            kind,
            Scope::session(self.tenant.org_id(), self.session.id),
            payload,
        ));
    }

    /// Answers the session's newest message. A failure is announced as an
    /// `error` on the session (so a stream ends) and returned.
    pub(crate) async fn run(mut self) -> Result<Answered, ApiError> {
        match self.answer().await {
            Ok(answered) => Ok(answered),
            Err(e) => {
                self.announce(
                    "error",
                    json!({"messageId": self.message_id, "code": crate::ws::protocol::code_name(e.code), "message": e.message}),
                );
                Err(e)
            }
        }
    }

    async fn answer(&mut self) -> Result<Answered, ApiError> {
        let state = self.state.clone();
        let store = state.store();
        let agents = org_agents(&state, self.tenant).await?;
        let orchestrator = agents.iter().find(|a| a.kind == "coordinator");
        let candidates: Vec<&AgentRow> = agents
            .iter()
            .filter(|a| Some(a.id) != orchestrator.map(|o| o.id))
            .collect();
        let models = store.models().org_models(self.tenant).await?;
        let model = match orchestrator {
            Some(o) => o.model.clone(),
            None => models
                .first()
                .map_or_else(|| FALLBACK_MODEL.to_owned(), |m| m.name.clone()),
        };
        self.within_quota().await?;
        let chain = crate::models::endpoints_for(&state, self.tenant, &model).await?;
        let prompt = context::Prompt {
            state: &state,
            tenant: self.tenant,
            chain: &chain,
            model: &model,
            window: context::window(&models, &model),
            system: context::system_prompt(
                orchestrator.map_or("", |o| o.instructions.as_str()),
                &candidates,
            ),
            tools: if candidates.is_empty() {
                vec![]
            } else {
                vec![context::route_tool(&candidates)]
            },
        };
        let messages = store
            .chat()
            .chat_messages(self.tenant, self.session.id)
            .await?;
        let (request, _) = prompt.request(&mut self.session, &messages).await?;

        let mut chunks = 0u64;
        let outcome = {
            let this = &*self;
            let mut on_event = |event: &StreamEvent| {
                if let StreamEvent::Text(delta) = event
                    && !delta.is_empty()
                {
                    this.announce(
                        "chat_stream",
                        json!({"sessionId": this.session.id, "messageId": this.message_id, "index": chunks, "delta": delta}),
                    );
                    chunks += 1;
                }
            };
            state
                .llm()
                .gateway
                .stream(&chain, &request, &mut on_event)
                .await
                .map_err(model_error)?
        };
        let response = outcome.response;
        let usage = response.usage;
        let route = response
            .tool_calls
            .iter()
            .find(|c| c.name == context::ROUTE_TOOL)
            .and_then(|c| {
                let id = c.arguments.get("agentId")?.as_str()?.parse::<Uuid>().ok()?;
                let agent = candidates.iter().find(|a| a.id == id)?;
                let instructions = c.arguments.get("instructions")?.as_str()?.trim().to_owned();
                Some(((*agent).clone(), instructions))
            });

        let mut message = NewChatMessage {
            id: self.message_id,
            role: "assistant".into(),
            content: response.text.clone(),
            agent_id: None,
            execution_id: None,
            attachments: json!([]),
            tokens_in: i64::try_from(usage.input_tokens).unwrap_or(i64::MAX),
            tokens_out: i64::try_from(usage.output_tokens).unwrap_or(i64::MAX),
            at: cadre_types::time::now(),
        };
        let mut execution = None;
        if let Some((agent, instructions)) = route {
            let started = self.start(&agent, &instructions).await?;
            let execution_id = started["id"].as_str().and_then(|s| s.parse().ok());
            self.announce(
                "routed",
                json!({"sessionId": self.session.id, "messageId": self.message_id, "agentId": agent.id, "agentName": agent.name, "execution": started}),
            );
            message.role = "agent".into();
            message.agent_id = Some(agent.id);
            message.execution_id = execution_id;
            if message.content.trim().is_empty() {
                message.content = format!("{} is on it: {instructions}", agent.name);
            }
            if let Some(execution) = execution_id {
                follow::Follow {
                    state: state.clone(),
                    tenant: self.tenant,
                    session: self.session.id,
                    execution,
                    agent: (agent.id, agent.name.clone()),
                }
                .start();
            }
            execution = Some(started);
        } else if message.content.trim().is_empty() {
            message.content = "(the model gave no answer)".into();
        }
        let stored: ChatMessageOut = store
            .chat()
            .add_chat_message(self.tenant, self.session.id, &message)
            .await?
            .into();
        self.announce(
            "chat_message",
            serde_json::to_value(&stored).unwrap_or_default(),
        );
        Ok(Answered {
            message: stored,
            execution,
        })
    }

    /// No model call past the org's daily token quota (SPEC §7.4), which
    /// its executions and its chat share.
    async fn within_quota(&self) -> Result<(), ApiError> {
        let (plan, quota) = self.state.token_quota(self.tenant.org_id()).await?;
        let Some(quota) = quota else {
            return Ok(());
        };
        let today = cadre_types::time::now().replace_time(time::Time::MIDNIGHT);
        let (used, _) = self
            .state
            .store()
            .executions()
            .spend_since(self.tenant, None, today)
            .await?;
        if u64::try_from(used).unwrap_or(0) >= quota {
            return Err(ApiError::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "the organization used {used} model tokens today; its {plan} plan allows {quota} a day"
                ),
            ));
        }
        Ok(())
    }

    /// Creates the agent's task in the org's `Inbox` and starts it.
    async fn start(&self, agent: &AgentRow, instructions: &str) -> Result<Value, ApiError> {
        let project = crate::routes::inbox_project(&self.state, self.tenant).await?;
        let title: String = instructions.chars().take(120).collect();
        let task = cadre_store::NewTask {
            id: cadre_types::new_id(),
            project_id: project,
            parent_id: None,
            title: if title.trim().is_empty() {
                "Chat request".into()
            } else {
                title
            },
            description: format!(
                "{instructions}\n\n(Started from chat session {}.)",
                self.session.id
            ),
            status: "in_progress".into(),
            priority: 5,
            assignee: Some(("agent".into(), agent.id)),
            author: ("human".into(), self.by),
            at: cadre_types::time::now(),
            supervisor_id: None,
            due_at: None,
            position: None,
        };
        let task = self
            .state
            .store()
            .tasks()
            .create_task(self.tenant, &task, &[], &self.actor)
            .await?;
        let execution = crate::routes::start_execution(
            &self.state,
            self.tenant,
            agent,
            agent.version,
            task.id,
            self.by,
            crate::routes::Origin::fresh(),
        )
        .await?;
        Ok(serde_json::to_value(execution).unwrap_or_default())
    }
}

/// The org's agents that can take work (live and not disabled), oldest
/// first.
async fn org_agents(state: &AppState, tenant: Tenant) -> Result<Vec<AgentRow>, ApiError> {
    let mut all = Vec::new();
    for page in 1.. {
        let (rows, total) = state
            .store()
            .agents()
            .agents(
                tenant,
                cadre_store::Page {
                    page,
                    page_size: 100,
                },
            )
            .await?;
        let done = rows.is_empty() || all.len() + rows.len() >= usize::try_from(total).unwrap_or(0);
        all.extend(rows);
        if done || page >= 10 {
            break;
        }
    }
    all.retain(|a| a.deleted_at.is_none() && a.status != "disabled");
    all.sort_by_key(|a| (a.created_at, a.id));
    Ok(all)
}

/// A model failure as the API reports it.
pub(crate) fn model_error(e: cadre_llm::LlmError) -> ApiError {
    ApiError::new(
        ErrorCode::ServiceUnavailable,
        format!(
            "the orchestrator's model failed: {e}; check the org's models (PUT /orgs/{{orgId}}/models) or try again"
        ),
    )
}
