//! The one trait every model provider implements.

use std::pin::Pin;

use futures_util::Stream;

use crate::{ChatRequest, ChatResponse, LlmError, StreamEvent};

/// A stream of answer pieces; it ends after a `Done` event or an error.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, LlmError>> + Send>>;

#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// A short name for logs, metrics and errors (`openai`, `anthropic`, …).
    fn name(&self) -> &str;

    /// One complete answer.
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError>;

    /// The answer as it is produced.
    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, LlmError>;
}
