//! Anthropic's Messages API (`POST {base}/v1/messages`).

use std::collections::{BTreeMap, VecDeque};

use eventsource_stream::Event;
use serde::Deserialize;
use serde_json::{Value, json};

use super::stream_state::{Decoder, drive};
use crate::error::{ErrorKind, LlmError, excerpt};
use crate::sse::{events, fetch_json, parse_json, send, tool_arguments};
use crate::{
    ChatRequest, ChatResponse, EventStream, FinishReason, Provider, Role, StreamEvent, ToolCall,
    Usage,
};

const API_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; this is used when the caller sets none.
const DEFAULT_MAX_TOKENS: u32 = 4096;

#[derive(Debug, Clone)]
pub struct Anthropic {
    name: String,
    base_url: String,
    api_key: String,
    client: reqwest::Client,
}

impl Anthropic {
    /// `base_url` is the host part, e.g. `https://api.anthropic.com`.
    pub fn new(
        name: impl Into<String>,
        base_url: impl Into<String>,
        api_key: String,
        client: reqwest::Client,
    ) -> Self {
        Self {
            name: name.into(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_key,
            client,
        }
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}/v1/messages", self.base_url))
            .header("x-api-key", &self.api_key)
            .header("anthropic-version", API_VERSION)
            .json(body)
    }
}

/// The wire body: system text apart, tool results as `tool_result` blocks of
/// a user turn, consecutive turns of one role merged (the API requires
/// alternation).
pub(crate) fn body(request: &ChatRequest, stream: bool) -> Value {
    let system: Vec<&str> = request
        .messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.content.as_str())
        .collect();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in request.messages.iter().filter(|m| m.role != Role::System) {
        let (role, blocks) = match m.role {
            Role::User => ("user", vec![json!({"type": "text", "text": m.content})]),
            Role::Tool => (
                "user",
                vec![
                    json!({"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}),
                ],
            ),
            Role::Assistant | Role::System => {
                let mut blocks = Vec::new();
                if !m.content.is_empty() {
                    blocks.push(json!({"type": "text", "text": m.content}));
                }
                blocks.extend(m.tool_calls.iter().map(|c| json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})));
                ("assistant", blocks)
            }
        };
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    let mut body = json!({
        "model": request.model,
        "max_tokens": request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages,
    });
    if let Some(map) = body.as_object_mut() {
        if !system.is_empty() {
            map.insert("system".into(), system.join("\n\n").into());
        }
        if !request.tools.is_empty() {
            map.insert(
                "tools".into(),
                request.tools.iter().map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters})).collect(),
            );
        }
        if let Some(t) = request.temperature {
            map.insert("temperature".into(), t.into());
        }
        if !request.stop.is_empty() {
            map.insert("stop_sequences".into(), request.stop.clone().into());
        }
        if stream {
            map.insert("stream".into(), true.into());
        }
    }
    body
}

pub(crate) fn finish_reason(text: &str) -> FinishReason {
    match text {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    model: String,
    content: Vec<Block>,
    stop_reason: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct WireUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
}

#[async_trait::async_trait]
impl Provider for Anthropic {
    fn name(&self) -> &str {
        &self.name
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let message: WireMessage = fetch_json(&self.name, self.post(&body(request, false))).await?;
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        for block in message.content {
            match block {
                Block::Text { text: t } => text.push_str(&t),
                Block::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments: input,
                }),
                Block::Other => {}
            }
        }
        Ok(ChatResponse {
            model: if message.model.is_empty() {
                request.model.clone()
            } else {
                message.model
            },
            text,
            tool_calls,
            finish_reason: finish_reason(message.stop_reason.as_deref().unwrap_or("end_turn")),
            usage: Usage {
                input_tokens: message.usage.input_tokens,
                output_tokens: message.usage.output_tokens,
            },
        })
    }

    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, LlmError> {
        let response = send(&self.name, self.post(&body(request, true))).await?;
        Ok(drive(
            events(&self.name, response),
            EventDecoder {
                provider: self.name.clone(),
                ..EventDecoder::default()
            },
        ))
    }
}

/// Assembles `message_start` / `content_block_*` / `message_delta` /
/// `message_stop` events.
#[derive(Default)]
struct EventDecoder {
    provider: String,
    /// Tool-use blocks by index: id, name, partial JSON.
    tools: BTreeMap<u64, (String, String, String)>,
    usage: Usage,
    finish: Option<FinishReason>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u64,
        content_block: Value,
    },
    ContentBlockDelta {
        index: u64,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: u64,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Ping,
    Error {
        error: Value,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDeltaBody {
    stop_reason: Option<String>,
}

impl Decoder for EventDecoder {
    fn provider(&self) -> &str {
        &self.provider
    }

    fn decode(&mut self, event: &Event, out: &mut VecDeque<StreamEvent>) -> Result<bool, LlmError> {
        if event.data.trim().is_empty() {
            return Ok(false);
        }
        let wire: WireEvent = parse_json(&self.provider, event.data.as_bytes())?;
        match wire {
            WireEvent::MessageStart { message } => {
                self.usage.input_tokens = message.usage.input_tokens;
                self.usage.output_tokens = message.usage.output_tokens;
            }
            WireEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                if content_block.get("type").and_then(Value::as_str) == Some("tool_use") {
                    let id = content_block
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let name = content_block
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    self.tools.insert(index, (id, name, String::new()));
                }
            }
            WireEvent::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } if !text.is_empty() => {
                    out.push_back(StreamEvent::Text(text))
                }
                BlockDelta::InputJsonDelta { partial_json } => {
                    if let Some(tool) = self.tools.get_mut(&index) {
                        tool.2.push_str(&partial_json);
                    }
                }
                BlockDelta::TextDelta { .. } | BlockDelta::Other => {}
            },
            WireEvent::ContentBlockStop { index } => {
                if let Some((id, name, json)) = self.tools.remove(&index) {
                    let arguments = tool_arguments(&self.provider, &name, &json)?;
                    out.push_back(StreamEvent::ToolCall(ToolCall {
                        id,
                        name,
                        arguments,
                    }));
                }
            }
            WireEvent::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.finish = Some(finish_reason(&reason));
                }
                if let Some(usage) = usage {
                    self.usage.output_tokens = usage.output_tokens;
                }
            }
            WireEvent::MessageStop => {
                let finish_reason = self.finish.take().unwrap_or(FinishReason::Stop);
                out.push_back(StreamEvent::Done {
                    finish_reason,
                    usage: self.usage,
                });
                return Ok(true);
            }
            WireEvent::Error { error } => {
                let kind = match error.get("type").and_then(Value::as_str) {
                    Some("overloaded_error" | "api_error") => ErrorKind::Unavailable,
                    Some("rate_limit_error") => ErrorKind::RateLimited,
                    _ => ErrorKind::BadResponse,
                };
                return Err(LlmError::new(
                    kind,
                    &self.provider,
                    format!("error event: {}", excerpt(&error.to_string())),
                ));
            }
            WireEvent::Ping | WireEvent::Unknown => {}
        }
        Ok(false)
    }
}
