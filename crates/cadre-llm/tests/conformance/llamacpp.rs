//! The suite, minus what a 135M-parameter model cannot do reliably (tool
//! calls), against a real llama.cpp server we did not write. Runs when
//! `CADRE_TEST_LLAMACPP_URL` is set (`.ci/run` starts one).

use std::sync::Arc;
use std::time::Duration;

use cadre_llm::providers::openai::OpenAiCompatible;
use cadre_llm::{ChatRequest, Endpoint, FinishReason, Gateway, Message, Provider, StreamEvent};

use crate::suite::{client, collect};

fn provider() -> Option<OpenAiCompatible> {
    let Some(url) = cadre_config::testing::llamacpp_url() else {
        eprintln!(
            "skipping llama.cpp test: set CADRE_TEST_LLAMACPP_URL (for example http://127.0.0.1:18231) to run it"
        );
        return None;
    };
    Some(OpenAiCompatible::new(
        "llama.cpp",
        format!("{}/v1", url.trim_end_matches('/')),
        None,
        client(Duration::from_secs(120)),
    ))
}

fn request(max_tokens: u32) -> ChatRequest {
    ChatRequest {
        model: "smollm2".into(),
        messages: vec![
            Message::system("You are brief."),
            Message::user("Name one colour."),
        ],
        max_tokens: Some(max_tokens),
        temperature: Some(0.0),
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn a_real_server_answers_with_text_usage_and_a_finish_reason() {
    let Some(p) = provider() else { return };
    let r = p.chat(&request(8)).await.unwrap();
    assert!(!r.text.is_empty());
    assert!(
        r.usage.input_tokens > 0 && r.usage.output_tokens > 0,
        "{:?}",
        r.usage
    );
    assert!(r.usage.output_tokens <= 8);
    assert!(
        matches!(r.finish_reason, FinishReason::Stop | FinishReason::Length),
        "{:?}",
        r.finish_reason
    );
}

#[tokio::test]
async fn a_real_server_streams_text_then_done_with_usage() {
    let Some(p) = provider() else { return };
    let events: Vec<_> = collect(&p, &request(8))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let text: String = events
        .iter()
        .filter_map(|e| {
            if let StreamEvent::Text(t) = e {
                Some(t.as_str())
            } else {
                None
            }
        })
        .collect();
    assert!(!text.is_empty(), "{events:?}");
    match events.last() {
        Some(StreamEvent::Done { usage, .. }) => {
            assert!(usage.output_tokens > 0, "include_usage honoured: {usage:?}")
        }
        other => panic!("the stream must end with Done, got {other:?}"),
    }
}

#[tokio::test]
async fn a_real_server_stops_at_max_tokens_with_length() {
    let Some(p) = provider() else { return };
    let mut req = request(2);
    req.messages = vec![Message::user("Write a long story about the sea.")];
    let r = p.chat(&req).await.unwrap();
    assert_eq!(r.finish_reason, FinishReason::Length);
    assert_eq!(r.usage.output_tokens, 2);
}

#[tokio::test]
async fn the_gateway_accounts_a_real_call() {
    let Some(p) = provider() else { return };
    let endpoint = Endpoint {
        provider: Arc::new(p),
        model: "smollm2".into(),
        prices: None,
    };
    let out = Gateway::default()
        .chat(&[endpoint], &request(4))
        .await
        .unwrap();
    assert_eq!(out.provider, "llama.cpp");
    assert!(!out.priced, "a local model has no built-in price");
    assert!(out.response.usage.input_tokens > 0);
}
