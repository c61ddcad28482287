//! Retries, fallbacks and accounting through the gateway.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cadre_llm::pricing::Prices;
use cadre_llm::providers::openai::OpenAiCompatible;
use cadre_llm::{Endpoint, ErrorKind, Gateway, RetryPolicy, StreamEvent};
use rust_decimal::Decimal;

use crate::fake;
use crate::suite::{anthropic_target, client, openai_target, request};

fn fast() -> Gateway {
    Gateway::new(RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
    })
}

fn endpoint(t: &crate::suite::Target, model: &str) -> Endpoint {
    Endpoint {
        provider: Arc::clone(&t.provider),
        model: model.into(),
        prices: None,
    }
}

#[tokio::test]
async fn a_429_is_retried_and_then_succeeds() {
    let t = openai_target().await;
    let out = fast()
        .chat(&[endpoint(&t, "flaky")], &request("ignored"))
        .await
        .unwrap();
    assert_eq!(out.response.text, "Hello there");
    assert_eq!(out.attempts, 2);
    assert_eq!(t.fake.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_500_falls_back_to_the_next_endpoint() {
    let down = openai_target().await;
    let up = anthropic_target().await;
    let out = fast()
        .chat(
            &[endpoint(&down, "down"), endpoint(&up, "echo")],
            &request("ignored"),
        )
        .await
        .unwrap();
    assert_eq!(out.provider, "anthropic");
    assert_eq!(
        out.attempts, 4,
        "three tries on the failing endpoint, then the fallback"
    );
    assert_eq!(down.fake.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_timeout_falls_back_to_the_next_endpoint() {
    let (url, slow_fake) = fake::start(fake::openai()).await;
    let impatient = OpenAiCompatible::new(
        "slow-openai",
        format!("{url}/v1"),
        None,
        client(Duration::from_millis(200)),
    );
    let slow = Endpoint {
        provider: Arc::new(impatient),
        model: "slow".into(),
        prices: None,
    };
    let up = openai_target().await;
    let gateway = Gateway::new(RetryPolicy {
        attempts: 1,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    });
    let out = gateway
        .chat(&[slow, endpoint(&up, "echo")], &request("ignored"))
        .await
        .unwrap();
    assert_eq!(out.provider, "openai");
    assert_eq!(slow_fake.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_non_retryable_error_is_returned_at_once() {
    let t = openai_target().await;
    let other = anthropic_target().await;
    let err = fast()
        .chat(
            &[endpoint(&t, "unauthorized"), endpoint(&other, "echo")],
            &request("x"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert_eq!(t.fake.calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        other.fake.calls.load(Ordering::SeqCst),
        0,
        "a wrong request is not sent elsewhere"
    );
}

#[tokio::test]
async fn cost_is_computed_from_the_endpoint_prices_streaming_included() {
    let t = openai_target().await;
    let priced = Endpoint {
        provider: Arc::clone(&t.provider),
        model: "echo".into(),
        prices: Some(Prices {
            input_per_mtok: Decimal::new(300, 2),
            output_per_mtok: Decimal::new(1500, 2),
        }),
    };
    let out = fast()
        .chat(std::slice::from_ref(&priced), &request("x"))
        .await
        .unwrap();
    // 12 × $3 / 1e6 + 5 × $15 / 1e6 = 0.000036 + 0.000075
    assert_eq!(out.cost_usd.normalize().to_string(), "0.000111");
    assert!(out.priced);

    let mut seen = Vec::new();
    let streamed = fast()
        .stream(&[priced], &request("x"), &mut |e: &StreamEvent| {
            seen.push(e.clone())
        })
        .await
        .unwrap();
    assert_eq!(streamed.response.text, "Hello there");
    assert_eq!(streamed.cost_usd, out.cost_usd);
    assert_eq!(seen.len(), 3);

    let unpriced = fast()
        .chat(&[endpoint(&t, "echo")], &request("x"))
        .await
        .unwrap();
    assert!(!unpriced.priced && unpriced.cost_usd.is_zero());
}

#[tokio::test]
async fn a_stream_cut_after_tokens_were_shown_is_not_silently_retried() {
    let t = openai_target().await;
    let other = anthropic_target().await;
    let mut seen = Vec::new();
    let err = fast()
        .stream(
            &[endpoint(&t, "cut"), endpoint(&other, "echo")],
            &request("x"),
            &mut |e: &StreamEvent| seen.push(e.clone()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert_eq!(seen, vec![StreamEvent::Text("Hel".into())]);
    assert_eq!(other.fake.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn repeated_failures_open_the_circuit_and_later_calls_skip_the_endpoint() {
    let down = openai_target().await;
    let up = anthropic_target().await;
    let gateway = Gateway::new(RetryPolicy {
        attempts: 5,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
    });
    let chain = [endpoint(&down, "down"), endpoint(&up, "echo")];
    gateway.chat(&chain, &request("x")).await.unwrap();
    assert_eq!(down.fake.calls.load(Ordering::SeqCst), 5);
    // The circuit is open: the next call goes straight to the fallback.
    let out = gateway.chat(&chain, &request("x")).await.unwrap();
    assert_eq!((out.provider.as_str(), out.attempts), ("anthropic", 1));
    assert_eq!(down.fake.calls.load(Ordering::SeqCst), 5);
    // A chain with no other choice still tries it.
    let err = gateway.chat(&chain[..1], &request("x")).await.unwrap_err();
    assert_eq!(err.status, Some(503));
}
