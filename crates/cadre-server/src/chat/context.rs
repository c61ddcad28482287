//! What the orchestrator's model sees: its instructions, the org's agents,
//! the summary of older turns and the recent messages — kept inside the
//! model's context window by summarising the oldest turns when the prompt
//! grows past a share of it (the summary is recorded on the session).

use cadre_llm::{ChatRequest, Endpoint, Message, ToolDef};
use cadre_store::{AgentRow, ChatMessageRow, ChatSessionRow};
use cadre_types::Tenant;
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;

/// The tool the orchestrator routes work with.
pub(crate) const ROUTE_TOOL: &str = "route_to_agent";
/// A model whose window is not configured is assumed to have this one.
const DEFAULT_WINDOW: u64 = 128_000;
/// The prompt may fill this share of the window; the rest is for the
/// answer.
const PROMPT_SHARE: f64 = 0.75;
/// Messages always kept word for word (the newest).
const KEEP_RECENT: usize = 4;

/// The orchestrator's system prompt.
pub(crate) fn system_prompt(instructions: &str, agents: &[&AgentRow]) -> String {
    let mut prompt = String::from(
        "You are the orchestrator of this organization's AI workforce, talking with a member of the organization. \
         Answer directly when you can. When the request is work that one of the agents below is suited for \
         (by role, skills and description), call route_to_agent with that agent's id and clear instructions; \
         the agent then runs it as a task and its progress appears in this conversation.",
    );
    if !instructions.trim().is_empty() {
        prompt.push_str("\n\n");
        prompt.push_str(instructions.trim());
    }
    if agents.is_empty() {
        prompt.push_str("\n\nThe organization has no agents to route to yet.");
    } else {
        prompt.push_str("\n\nAgents:");
        for a in agents {
            prompt.push_str(&format!(
                "\n- id {}: {} ({}, {}): {} Skills: {}.",
                a.id,
                a.name,
                a.kind,
                a.role,
                a.description,
                a.skills.0.join(", ")
            ));
        }
    }
    prompt
}

/// The routing tool, listing the agents it accepts.
pub(crate) fn route_tool(agents: &[&AgentRow]) -> ToolDef {
    let ids: Vec<String> = agents.iter().map(|a| a.id.to_string()).collect();
    ToolDef {
        name: ROUTE_TOOL.into(),
        description: "Hand the request to the best-suited agent, which runs it as a task.".into(),
        parameters: json!({
            "type": "object",
            "properties": {
                "agentId": {"type": "string", "enum": ids, "description": "the agent's id"},
                "instructions": {"type": "string", "description": "what the agent should do, self-contained"}
            },
            "required": ["agentId", "instructions"]
        }),
    }
}

fn as_message(m: &ChatMessageRow) -> Message {
    match m.role.as_str() {
        "user" => Message::user(m.content.clone()),
        "system" => Message::system(m.content.clone()),
        _ => Message::assistant(m.content.clone(), vec![]),
    }
}

/// Everything the next answer needs to be asked for.
pub(crate) struct Prompt<'a> {
    pub state: &'a AppState,
    pub tenant: Tenant,
    pub chain: &'a [Endpoint],
    pub model: &'a str,
    pub system: String,
    pub tools: Vec<ToolDef>,
    /// The model's context window, in tokens.
    pub window: u64,
}

impl Prompt<'_> {
    /// The request for the next answer. When it would not fit, the oldest
    /// turns (all but the newest few) are summarised first and the summary
    /// is recorded on the session.
    pub(crate) async fn request(
        &self,
        session: &mut ChatSessionRow,
        messages: &[ChatMessageRow],
    ) -> Result<(ChatRequest, u64), ApiError> {
        let budget = (self.window as f64 * PROMPT_SHARE) as u64;
        loop {
            let recent = unsummarised(session, messages);
            let request = self.build(session, recent);
            let tokens = cadre_llm::tokens::count_request(&request).tokens;
            if tokens <= budget || recent.len() <= KEEP_RECENT {
                return Ok((request, tokens));
            }
            let older = &recent[..recent.len() - KEEP_RECENT];
            self.summarise(session, older).await?;
        }
    }

    fn build(&self, session: &ChatSessionRow, recent: &[ChatMessageRow]) -> ChatRequest {
        let mut all = vec![Message::system(self.system.clone())];
        if let Some(summary) = &session.summary {
            all.push(Message::system(format!(
                "Summary of the earlier conversation: {summary}"
            )));
        }
        all.extend(recent.iter().map(as_message));
        ChatRequest {
            model: self.model.to_owned(),
            messages: all,
            tools: self.tools.clone(),
            ..ChatRequest::default()
        }
    }

    /// One model call that folds `older` (and the summary so far) into a new
    /// summary, recorded on the session.
    async fn summarise(
        &self,
        session: &mut ChatSessionRow,
        older: &[ChatMessageRow],
    ) -> Result<(), ApiError> {
        let Some(last) = older.last() else {
            return Ok(());
        };
        let mut transcript = String::new();
        if let Some(summary) = &session.summary {
            transcript.push_str(&format!("Summary so far: {summary}\n\n"));
        }
        for m in older {
            transcript.push_str(&format!("{}: {}\n", m.role, m.content));
        }
        let request = ChatRequest {
            model: self.model.to_owned(),
            messages: vec![Message::system(SUMMARY_PROMPT), Message::user(transcript)],
            ..ChatRequest::default()
        };
        let outcome = self
            .state
            .llm()
            .gateway
            .chat(self.chain, &request)
            .await
            .map_err(super::model_error)?;
        let summary = outcome.response.text.trim().to_owned();
        self.state
            .store()
            .chat()
            .summarize_chat(self.tenant, session.id, &summary, last.id)
            .await?;
        session.summary = Some(summary);
        session.summary_through = Some(last.id);
        Ok(())
    }
}

/// The context window of `model` as the org configured it, or the default.
pub(crate) fn window(models: &[cadre_store::OrgModelRow], model: &str) -> u64 {
    models
        .iter()
        .find(|m| m.name == model)
        .and_then(|m| m.context_window)
        .and_then(|w| u64::try_from(w).ok())
        .filter(|w| *w > 0)
        .unwrap_or(DEFAULT_WINDOW)
}

/// The instruction of a summarising call (a fake model can tell it apart).
const SUMMARY_PROMPT: &str = "Summarize this conversation for your own later reference: the facts, decisions and open requests, in under 200 words.";

/// The messages after the summary.
fn unsummarised<'m>(
    session: &ChatSessionRow,
    messages: &'m [ChatMessageRow],
) -> &'m [ChatMessageRow] {
    match session.summary_through {
        Some(through) => {
            let start = messages
                .iter()
                .position(|m| m.id == through)
                .map_or(0, |i| i + 1);
            &messages[start..]
        }
        None => messages,
    }
}
