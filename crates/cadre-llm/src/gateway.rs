//! Calling a model through a chain of endpoints: retries with exponential
//! backoff and jitter (honouring `Retry-After`), fallback to the next
//! endpoint on retryable errors, and token and cost accounting on every
//! call, streamed or not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rust_decimal::Decimal;

use crate::pricing::{self, Prices};
use crate::{ChatRequest, ChatResponse, LlmError, Provider, StreamEvent, Usage};

/// One place a model can be called: a provider, the model name it knows,
/// and the prices to charge (the built-in table when `None`).
#[derive(Clone)]
pub struct Endpoint {
    pub provider: Arc<dyn Provider>,
    pub model: String,
    pub prices: Option<Prices>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("provider", &self.provider.name())
            .field("model", &self.model)
            .finish()
    }
}

/// How hard to try one endpoint before falling back.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per endpoint (the first included).
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
        }
    }
}

/// A successful call and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub response: ChatResponse,
    /// The provider that answered.
    pub provider: String,
    /// Attempts made across the chain, the successful one included.
    pub attempts: u32,
    pub latency: Duration,
    /// USD; zero when the model is unpriced.
    pub cost_usd: Decimal,
    pub priced: bool,
}

/// The model gateway.
#[derive(Debug, Clone, Default)]
pub struct Gateway {
    policy: RetryPolicy,
}

impl Gateway {
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy }
    }

    /// One complete answer from the first endpoint of `chain` that gives one.
    pub async fn chat(
        &self,
        chain: &[Endpoint],
        request: &ChatRequest,
    ) -> Result<Outcome, LlmError> {
        self.run(chain, request, |endpoint, request| {
            let provider = Arc::clone(&endpoint.provider);
            async move { provider.chat(&request).await }
        })
        .await
    }

    /// A streamed answer: every event goes to `on_event` as it arrives, and
    /// the assembled answer is returned with its cost. Falling back is only
    /// possible before the first event reaches `on_event`; after that a
    /// broken stream is an error (what was shown cannot be taken back).
    pub async fn stream(
        &self,
        chain: &[Endpoint],
        request: &ChatRequest,
        on_event: &mut (dyn FnMut(&StreamEvent) + Send),
    ) -> Result<Outcome, LlmError> {
        let mut delivered = false;
        let mut last_error = None;
        let started = Instant::now();
        let mut attempts = 0;
        for endpoint in chain {
            let request = ChatRequest {
                model: endpoint.model.clone(),
                ..request.clone()
            };
            for attempt in 0..self.policy.attempts {
                attempts += 1;
                let call_started = Instant::now();
                let result = async {
                    let mut events = endpoint.provider.stream(&request).await?;
                    let mut answer = Assembler::default();
                    while let Some(event) = events.next().await {
                        let event = event?;
                        on_event(&event);
                        delivered = true;
                        if answer.push(event) {
                            break;
                        }
                    }
                    answer.finish(&request.model, endpoint.provider.name())
                }
                .await;
                match result {
                    Ok(response) => {
                        return Ok(self.account(
                            endpoint,
                            response,
                            attempts,
                            started,
                            call_started,
                        ));
                    }
                    Err(e) => {
                        record_error(endpoint, &e);
                        if delivered || !e.kind.retryable() {
                            return Err(e);
                        }
                        self.pause(attempt, &e).await;
                        last_error = Some(e);
                    }
                }
            }
        }
        Err(last_error.unwrap_or_else(empty_chain))
    }

    async fn run<F, Fut>(
        &self,
        chain: &[Endpoint],
        request: &ChatRequest,
        call: F,
    ) -> Result<Outcome, LlmError>
    where
        F: Fn(&Endpoint, ChatRequest) -> Fut,
        Fut: Future<Output = Result<ChatResponse, LlmError>>,
    {
        let started = Instant::now();
        let mut attempts = 0;
        let mut last_error = None;
        for endpoint in chain {
            let request = ChatRequest {
                model: endpoint.model.clone(),
                ..request.clone()
            };
            for attempt in 0..self.policy.attempts {
                attempts += 1;
                let call_started = Instant::now();
                match call(endpoint, request.clone()).await {
                    Ok(response) => {
                        return Ok(self.account(
                            endpoint,
                            response,
                            attempts,
                            started,
                            call_started,
                        ));
                    }
                    Err(e) => {
                        record_error(endpoint, &e);
                        if !e.kind.retryable() {
                            return Err(e);
                        }
                        tracing::warn!(provider = endpoint.provider.name(), model = %endpoint.model, attempt = attempt + 1, error = %e, "model call failed; retrying");
                        self.pause(attempt, &e).await;
                        last_error = Some(e);
                    }
                }
            }
            tracing::warn!(provider = endpoint.provider.name(), model = %endpoint.model, "endpoint exhausted; falling back");
        }
        Err(last_error.unwrap_or_else(empty_chain))
    }

    /// Waits before the next attempt: exponential backoff with full jitter,
    /// never less than the provider's `Retry-After`.
    async fn pause(&self, attempt: u32, error: &LlmError) {
        let exp = self
            .policy
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.policy.max_delay);
        let jitter = f64::from(getrandom::u32().unwrap_or(u32::MAX / 2)) / f64::from(u32::MAX);
        let backoff = exp.mul_f64(0.5 + jitter / 2.0);
        let wait = error
            .retry_after
            .map_or(backoff, |ra| ra.max(backoff))
            .min(self.policy.max_delay);
        tokio::time::sleep(wait).await;
    }

    fn account(
        &self,
        endpoint: &Endpoint,
        response: ChatResponse,
        attempts: u32,
        started: Instant,
        call_started: Instant,
    ) -> Outcome {
        let prices = endpoint
            .prices
            .or_else(|| pricing::built_in(&endpoint.model));
        let cost_usd = prices.map_or(Decimal::ZERO, |p| p.cost(response.usage));
        let provider = endpoint.provider.name().to_owned();
        let labels = [
            ("provider", provider.clone()),
            ("model", endpoint.model.clone()),
        ];
        metrics::counter!("llm_requests_total", &labels).increment(1);
        metrics::histogram!("llm_response_time_seconds", &labels)
            .record(call_started.elapsed().as_secs_f64());
        metrics::counter!(
            "llm_tokens_total",
            &[
                ("provider", provider.clone()),
                ("model", endpoint.model.clone()),
                ("direction", "input".to_owned())
            ]
        )
        .increment(response.usage.input_tokens);
        metrics::counter!(
            "llm_tokens_total",
            &[
                ("provider", provider.clone()),
                ("model", endpoint.model.clone()),
                ("direction", "output".to_owned())
            ]
        )
        .increment(response.usage.output_tokens);
        Outcome {
            response,
            provider,
            attempts,
            latency: started.elapsed(),
            cost_usd,
            priced: prices.is_some(),
        }
    }
}

fn record_error(endpoint: &Endpoint, error: &LlmError) {
    metrics::counter!(
        "llm_errors_total",
        &[
            ("provider", endpoint.provider.name().to_owned()),
            ("kind", format!("{:?}", error.kind))
        ]
    )
    .increment(1);
}

fn empty_chain() -> LlmError {
    LlmError::new(
        crate::ErrorKind::BadRequest,
        "gateway",
        "no endpoint is configured for this model",
    )
}

/// Builds the complete answer from stream events.
#[derive(Default)]
struct Assembler {
    text: String,
    tool_calls: Vec<crate::ToolCall>,
    done: Option<(crate::FinishReason, Usage)>,
}

impl Assembler {
    /// Returns `true` on the last event.
    fn push(&mut self, event: StreamEvent) -> bool {
        match event {
            StreamEvent::Text(t) => self.text.push_str(&t),
            StreamEvent::ToolCall(c) => self.tool_calls.push(c),
            StreamEvent::Done {
                finish_reason,
                usage,
            } => {
                self.done = Some((finish_reason, usage));
                return true;
            }
        }
        false
    }

    fn finish(self, model: &str, provider: &str) -> Result<ChatResponse, LlmError> {
        let (finish_reason, usage) = self.done.ok_or_else(|| {
            LlmError::new(
                crate::ErrorKind::Unavailable,
                provider,
                "the stream ended before the answer was complete",
            )
        })?;
        Ok(ChatResponse {
            model: model.to_owned(),
            text: self.text,
            tool_calls: self.tool_calls,
            finish_reason,
            usage,
        })
    }
}
