//! The `scripted` provider: a JSON script of answers for tests, demos and
//! benchmarks. The answer given is the one at the conversation's position
//! (the number of assistant messages already in it), not a counter: a
//! conversation resumed after a crash, or run again, gets the same answers.
//! It is never chosen implicitly — a model must be configured with provider
//! `scripted`.

use futures_util::stream;
use serde::Deserialize;

use crate::error::{ErrorKind, LlmError};
use crate::{
    ChatRequest, ChatResponse, EventStream, FinishReason, Provider, StreamEvent, ToolCall, Usage,
};

/// One scripted answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptedAnswer {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default)]
    pub usage: Usage,
}

/// Answers by position; past the end of the script, an error says so.
#[derive(Debug)]
pub struct Scripted {
    answers: Vec<ScriptedAnswer>,
}

impl Scripted {
    pub fn new(answers: Vec<ScriptedAnswer>) -> Self {
        Self { answers }
    }

    /// A script from JSON: an array of answers.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        Ok(Self::new(serde_json::from_str(text)?))
    }

    fn next(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let position = request
            .messages
            .iter()
            .filter(|m| m.role == crate::Role::Assistant)
            .count();
        let answer = self.answers.get(position).cloned().ok_or_else(|| {
            LlmError::new(
                ErrorKind::BadRequest,
                "scripted",
                format!(
                    "the script has {} answers and the conversation is at answer {}",
                    self.answers.len(),
                    position + 1
                ),
            )
        })?;
        let finish_reason = if answer.tool_calls.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        };
        Ok(ChatResponse {
            model: request.model.clone(),
            text: answer.text,
            tool_calls: answer.tool_calls,
            finish_reason,
            usage: answer.usage,
        })
    }
}

#[async_trait::async_trait]
impl Provider for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        self.next(request)
    }

    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, LlmError> {
        let answer = self.next(request)?;
        let mut events: Vec<Result<StreamEvent, LlmError>> = Vec::new();
        if !answer.text.is_empty() {
            events.push(Ok(StreamEvent::Text(answer.text)));
        }
        events.extend(
            answer
                .tool_calls
                .into_iter()
                .map(|c| Ok(StreamEvent::ToolCall(c))),
        );
        events.push(Ok(StreamEvent::Done {
            finish_reason: answer.finish_reason,
            usage: answer.usage,
        }));
        Ok(Box::pin(stream::iter(events)))
    }
}
