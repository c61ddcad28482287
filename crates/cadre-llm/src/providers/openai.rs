//! Any OpenAI-compatible Chat Completions server (`POST {base}/chat/completions`):
//! OpenAI, vLLM, Ollama, llama.cpp's server, LM Studio, OpenRouter, Groq, …
//! Only fields every such server understands are sent.

use std::collections::{BTreeMap, VecDeque};

use eventsource_stream::Event;
use serde::Deserialize;
use serde_json::{Value, json};

use super::stream_state::{Decoder, drive};
use crate::error::{ErrorKind, LlmError};
use crate::sse::{events, fetch_json, parse_json, send, tool_arguments};
use crate::{
    ChatRequest, ChatResponse, EventStream, FinishReason, Provider, Role, StreamEvent, ToolCall,
    Usage,
};

/// A Chat Completions endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiCompatible {
    name: String,
    base_url: String,
    api_key: Option<String>,
    client: reqwest::Client,
}

impl OpenAiCompatible {
    /// `base_url` ends before `/chat/completions`, e.g. `https://api.openai.com/v1`.
    pub fn new(
        name: impl Into<String>,
        base_url: impl Into<String>,
        api_key: Option<String>,
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
        let mut request = self
            .client
            .post(format!("{}/chat/completions", self.base_url))
            .json(body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        request
    }
}

/// The wire body of a request.
pub(crate) fn body(request: &ChatRequest, stream: bool) -> Value {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| match m.role {
            Role::System => json!({"role": "system", "content": m.content}),
            Role::User => json!({"role": "user", "content": m.content}),
            Role::Assistant if m.tool_calls.is_empty() => json!({"role": "assistant", "content": m.content}),
            Role::Assistant => json!({
                "role": "assistant",
                "content": if m.content.is_empty() { Value::Null } else { Value::String(m.content.clone()) },
                "tool_calls": m.tool_calls.iter().map(|c| json!({
                    "id": c.id, "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments.to_string()},
                })).collect::<Vec<_>>(),
            }),
            Role::Tool => json!({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content}),
        })
        .collect();
    let mut body = json!({"model": request.model, "messages": messages});
    let map = body.as_object_mut();
    if let Some(map) = map {
        if !request.tools.is_empty() {
            map.insert(
                "tools".into(),
                request
                    .tools
                    .iter()
                    .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
                    .collect(),
            );
        }
        if let Some(max) = request.max_tokens {
            map.insert("max_tokens".into(), max.into());
        }
        if let Some(t) = request.temperature {
            map.insert("temperature".into(), t.into());
        }
        if !request.stop.is_empty() {
            map.insert("stop".into(), request.stop.clone().into());
        }
        if request.json_mode {
            map.insert("response_format".into(), json!({"type": "json_object"}));
        }
        if stream {
            map.insert("stream".into(), true.into());
            map.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    body
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    model: String,
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: WireMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: String,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize, Clone, Copy)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        Usage {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
        }
    }
}

pub(crate) fn finish_reason(text: &str) -> FinishReason {
    match text {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

#[derive(Deserialize)]
struct Embeddings {
    data: Vec<EmbeddingItem>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    #[serde(default)]
    index: usize,
    embedding: Vec<f32>,
}

impl OpenAiCompatible {
    /// Embeds `inputs` with `model` through `POST {base}/embeddings`; the
    /// vectors come back in the order of the inputs.
    pub async fn embed(
        &self,
        model: &str,
        inputs: &[String],
    ) -> Result<(Vec<Vec<f32>>, Usage), LlmError> {
        let mut request = self
            .client
            .post(format!("{}/embeddings", self.base_url))
            .json(&json!({"model": model, "input": inputs}));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let mut parsed: Embeddings = fetch_json(&self.name, request).await?;
        if parsed.data.len() != inputs.len() {
            return Err(LlmError::new(
                ErrorKind::BadResponse,
                &self.name,
                format!(
                    "asked for {} embeddings, got {}",
                    inputs.len(),
                    parsed.data.len()
                ),
            ));
        }
        parsed.data.sort_by_key(|d| d.index);
        let usage = parsed.usage.map(Usage::from).unwrap_or_default();
        Ok((
            parsed.data.into_iter().map(|d| d.embedding).collect(),
            usage,
        ))
    }
}

#[async_trait::async_trait]
impl Provider for OpenAiCompatible {
    fn name(&self) -> &str {
        &self.name
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let completion: Completion =
            fetch_json(&self.name, self.post(&body(request, false))).await?;
        let choice = completion.choices.into_iter().next().ok_or_else(|| {
            LlmError::new(
                ErrorKind::BadResponse,
                &self.name,
                "the answer has no choices",
            )
        })?;
        let tool_calls = choice
            .message
            .tool_calls
            .into_iter()
            .map(|c| {
                Ok(ToolCall {
                    arguments: tool_arguments(&self.name, &c.function.name, &c.function.arguments)?,
                    id: c.id,
                    name: c.function.name,
                })
            })
            .collect::<Result<Vec<_>, LlmError>>()?;
        Ok(ChatResponse {
            model: if completion.model.is_empty() {
                request.model.clone()
            } else {
                completion.model
            },
            text: choice.message.content.unwrap_or_default(),
            tool_calls,
            finish_reason: finish_reason(choice.finish_reason.as_deref().unwrap_or("stop")),
            usage: completion.usage.map(Usage::from).unwrap_or_default(),
        })
    }

    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, LlmError> {
        let response = send(&self.name, self.post(&body(request, true))).await?;
        Ok(drive(
            events(&self.name, response),
            ChunkDecoder {
                provider: self.name.clone(),
                ..ChunkDecoder::default()
            },
        ))
    }
}

/// Assembles streamed chunks: text deltas pass through; tool calls arrive in
/// pieces by index (id and name first, arguments split anywhere) and are
/// emitted whole when the choice finishes.
#[derive(Default)]
struct ChunkDecoder {
    provider: String,
    calls: BTreeMap<u64, (String, String, String)>,
    finish: Option<FinishReason>,
    usage: Usage,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Delta,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCallDelta>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

impl ChunkDecoder {
    fn flush_calls(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), LlmError> {
        for (_, (id, name, args)) in std::mem::take(&mut self.calls) {
            let arguments = tool_arguments(&self.provider, &name, &args)?;
            out.push_back(StreamEvent::ToolCall(ToolCall {
                id,
                name,
                arguments,
            }));
        }
        Ok(())
    }
}

impl Decoder for ChunkDecoder {
    fn provider(&self) -> &str {
        &self.provider
    }

    fn decode(&mut self, event: &Event, out: &mut VecDeque<StreamEvent>) -> Result<bool, LlmError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.flush_calls(out)?;
            let finish_reason = self.finish.take().ok_or_else(|| {
                LlmError::new(
                    ErrorKind::BadResponse,
                    &self.provider,
                    "the stream ended without a finish reason",
                )
            })?;
            out.push_back(StreamEvent::Done {
                finish_reason,
                usage: self.usage,
            });
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let chunk: Chunk = parse_json(&self.provider, data.as_bytes())?;
        if let Some(usage) = chunk.usage {
            self.usage = usage.into();
        }
        for choice in chunk.choices {
            if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                out.push_back(StreamEvent::Text(text));
            }
            for delta in choice.delta.tool_calls {
                let entry = self.calls.entry(delta.index).or_default();
                if let Some(id) = delta.id {
                    entry.0 = id;
                }
                if let Some(function) = delta.function {
                    if let Some(name) = function.name {
                        entry.1.push_str(&name);
                    }
                    if let Some(args) = function.arguments {
                        entry.2.push_str(&args);
                    }
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(finish_reason(&reason));
            }
        }
        Ok(false)
    }
}
