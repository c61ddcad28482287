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

/// Consecutive retryable failures that open an endpoint's circuit.
const BREAKER_THRESHOLD: u32 = 5;
/// How long an open circuit keeps an endpoint out of chains that have
/// another choice.
const BREAKER_COOLDOWN: Duration = Duration::from_secs(30);

#[derive(Debug, Default, Clone, Copy)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

/// The model gateway. Cheap to clone; clones share circuit breakers.
#[derive(Debug, Clone, Default)]
pub struct Gateway {
    policy: RetryPolicy,
    breakers: Arc<std::sync::Mutex<std::collections::HashMap<String, Breaker>>>,
}

impl Gateway {
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            breakers: Arc::default(),
        }
    }

    /// Endpoints whose circuit is open now (for health reports).
    pub fn open_circuits(&self) -> Vec<String> {
        let now = Instant::now();
        let mut open: Vec<String> = self
            .breakers()
            .iter()
            .filter(|(_, b)| b.open_until.is_some_and(|t| t > now))
            .map(|(k, _)| k.clone())
            .collect();
        open.sort();
        open
    }

    fn breakers(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Breaker>> {
        self.breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether an endpoint is skipped: its circuit is open and the chain has
    /// another endpoint after it (the last one is always tried).
    fn skip(&self, chain: &[Endpoint], index: usize) -> bool {
        let is_last = index + 1 == chain.len();
        let open = self
            .breakers()
            .get(chain[index].provider.name())
            .and_then(|b| b.open_until)
            .is_some_and(|t| t > Instant::now());
        if open && !is_last {
            tracing::debug!(
                provider = chain[index].provider.name(),
                "circuit open; skipping endpoint"
            );
        }
        open && !is_last
    }

    fn succeeded(&self, endpoint: &Endpoint) {
        self.breakers().remove(endpoint.provider.name());
    }

    fn failed(&self, endpoint: &Endpoint) {
        let mut breakers = self.breakers();
        let b = breakers
            .entry(endpoint.provider.name().to_owned())
            .or_default();
        b.failures += 1;
        if b.failures >= BREAKER_THRESHOLD {
            b.open_until = Some(Instant::now() + BREAKER_COOLDOWN);
            tracing::warn!(
                provider = endpoint.provider.name(),
                "circuit opened after repeated failures"
            );
        }
    }

    /// One complete answer from the first endpoint of `chain` that gives one.
    pub async fn chat(
        &self,
        chain: &[Endpoint],
        request: &ChatRequest,
    ) -> Result<Outcome, LlmError> {
        self.run(chain, request, Whole).await
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
        self.run(
            chain,
            request,
            Streamed {
                on_event,
                delivered: false,
            },
        )
        .await
    }

    /// Tries the chain in order. An attempt answers an error with whether
    /// it is final (something was already shown); other retryable errors
    /// are retried with backoff, then the next endpoint is tried.
    async fn run(
        &self,
        chain: &[Endpoint],
        request: &ChatRequest,
        mut call: impl Attempt,
    ) -> Result<Outcome, LlmError> {
        let started = Instant::now();
        let mut attempts = 0;
        let mut last_error = None;
        for (index, endpoint) in chain.iter().enumerate() {
            if self.skip(chain, index) {
                continue;
            }
            let request = ChatRequest {
                model: endpoint.model.clone(),
                ..request.clone()
            };
            for attempt in 0..self.policy.attempts {
                attempts += 1;
                let call_started = Instant::now();
                match call.call(endpoint, request.clone()).await {
                    Ok(response) => {
                        self.succeeded(endpoint);
                        return Ok(self.account(
                            endpoint,
                            response,
                            attempts,
                            started,
                            call_started,
                        ));
                    }
                    Err((e, final_)) => {
                        record_error(endpoint, &e);
                        if final_ || !e.kind.retryable() {
                            return Err(e);
                        }
                        self.failed(endpoint);
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

/// One way of asking an endpoint. (A trait with explicit lifetimes rather
/// than an async closure: futures from async closures that capture
/// references are not provably `Send` where callers need them to be.)
trait Attempt: Send {
    fn call<'a>(
        &'a mut self,
        endpoint: &'a Endpoint,
        request: ChatRequest,
    ) -> impl Future<Output = Result<ChatResponse, (LlmError, bool)>> + Send + 'a;
}

/// A complete answer in one response.
struct Whole;

impl Attempt for Whole {
    async fn call<'a>(
        &'a mut self,
        endpoint: &'a Endpoint,
        request: ChatRequest,
    ) -> Result<ChatResponse, (LlmError, bool)> {
        endpoint
            .provider
            .chat(&request)
            .await
            .map_err(|e| (e, false))
    }
}

/// A streamed answer, each event passed on as it arrives.
struct Streamed<'e> {
    on_event: &'e mut (dyn FnMut(&StreamEvent) + Send),
    /// Whether an event reached `on_event` (then no fallback is possible).
    delivered: bool,
}

impl Attempt for Streamed<'_> {
    async fn call<'a>(
        &'a mut self,
        endpoint: &'a Endpoint,
        request: ChatRequest,
    ) -> Result<ChatResponse, (LlmError, bool)> {
        let mut events = endpoint
            .provider
            .stream(&request)
            .await
            .map_err(|e| (e, self.delivered))?;
        let mut answer = Assembler::default();
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| (e, self.delivered))?;
            (self.on_event)(&event);
            self.delivered = true;
            if answer.push(event) {
                break;
            }
        }
        answer
            .finish(&request.model, endpoint.provider.name())
            .map_err(|e| (e, self.delivered))
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
