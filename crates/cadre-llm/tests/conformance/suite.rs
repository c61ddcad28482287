//! The conformance suite every provider passes.

use std::sync::Arc;
use std::time::Duration;

use cadre_llm::providers::anthropic::Anthropic;
use cadre_llm::providers::openai::OpenAiCompatible;
use cadre_llm::{
    ChatRequest, ErrorKind, FinishReason, Message, Provider, StreamEvent, ToolDef, Usage,
};
use futures_util::StreamExt;
use serde_json::json;

use crate::fake::{self, Fake};

pub struct Target {
    pub provider: Arc<dyn Provider>,
    pub fake: Fake,
}

pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(timeout)
        .build()
        .unwrap()
}

pub async fn openai_target() -> Target {
    let (url, fake) = fake::start(fake::openai()).await;
    Target {
        provider: Arc::new(OpenAiCompatible::new(
            "openai",
            format!("{url}/v1"),
            Some("sk-test".into()),
            client(Duration::from_secs(2)),
        )),
        fake,
    }
}

pub async fn anthropic_target() -> Target {
    let (url, fake) = fake::start(fake::anthropic()).await;
    Target {
        provider: Arc::new(Anthropic::new(
            "anthropic",
            url,
            "sk-ant-test".into(),
            client(Duration::from_secs(2)),
        )),
        fake,
    }
}

pub fn request(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        messages: vec![Message::system("Be brief."), Message::user("Say hello.")],
        tools: vec![ToolDef {
            name: "get_weather".into(),
            description: "Weather for a city".into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        }],
        max_tokens: Some(64),
        ..ChatRequest::default()
    }
}

pub async fn collect(
    provider: &dyn Provider,
    req: &ChatRequest,
) -> Vec<Result<StreamEvent, cadre_llm::LlmError>> {
    match provider.stream(req).await {
        Ok(stream) => stream.collect().await,
        Err(e) => vec![Err(e)],
    }
}

macro_rules! conformance {
    ($name:ident, $target:path) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn chat_returns_text_usage_and_finish_reason() {
                let t = $target().await;
                let r = t.provider.chat(&request("echo")).await.unwrap();
                assert_eq!(r.text, "Hello there");
                assert_eq!(r.finish_reason, FinishReason::Stop);
                assert_eq!(r.usage, Usage { input_tokens: 12, output_tokens: 5 });
                assert!(r.tool_calls.is_empty());
            }

            #[tokio::test]
            async fn stream_delivers_text_then_done_with_usage() {
                let t = $target().await;
                let events: Vec<_> = collect(t.provider.as_ref(), &request("echo")).await.into_iter().map(Result::unwrap).collect();
                assert_eq!(
                    events,
                    vec![
                        StreamEvent::Text("Hello".into()),
                        StreamEvent::Text(" there".into()),
                        StreamEvent::Done { finish_reason: FinishReason::Stop, usage: Usage { input_tokens: 12, output_tokens: 5 } },
                    ]
                );
            }

            #[tokio::test]
            async fn chat_parses_tool_calls() {
                let t = $target().await;
                let r = t.provider.chat(&request("tools")).await.unwrap();
                assert_eq!(r.finish_reason, FinishReason::ToolCalls);
                assert_eq!(r.tool_calls.len(), 1);
                assert_eq!(r.tool_calls[0].name, "get_weather");
                assert_eq!(r.tool_calls[0].arguments, json!({"city": "Paris"}));
            }

            #[tokio::test]
            async fn stream_assembles_parallel_tool_calls_split_across_chunks() {
                let t = $target().await;
                let events: Vec<_> = collect(t.provider.as_ref(), &request("tools")).await.into_iter().map(Result::unwrap).collect();
                let calls: Vec<_> = events
                    .iter()
                    .filter_map(|e| match e {
                        StreamEvent::ToolCall(c) => Some((c.name.as_str(), c.arguments.clone())),
                        _ => None,
                    })
                    .collect();
                assert_eq!(calls, vec![("get_weather", json!({"city": "Paris"})), ("get_time", json!({"tz": "UTC"}))]);
                assert!(matches!(events.last(), Some(StreamEvent::Done { finish_reason: FinishReason::ToolCalls, .. })), "{events:?}");
            }

            #[tokio::test]
            async fn an_html_error_page_is_a_typed_error_with_status_and_excerpt() {
                let t = $target().await;
                let e = t.provider.chat(&request("html")).await.unwrap_err();
                assert_eq!((e.kind, e.status), (ErrorKind::Unavailable, Some(500)));
                assert!(e.message.contains("502 Bad Gateway") && e.message.len() < 400, "{}", e.message);
                assert!(e.kind.retryable());
            }

            #[tokio::test]
            async fn invalid_json_is_a_bad_response() {
                let t = $target().await;
                let e = t.provider.chat(&request("garbage")).await.unwrap_err();
                assert_eq!(e.kind, ErrorKind::BadResponse, "{e}");
                assert!(e.message.contains("{not json"), "{}", e.message);
            }

            #[tokio::test]
            async fn tool_arguments_that_are_not_json_are_a_bad_response() {
                let t = $target().await;
                let e = t.provider.chat(&request("bad-args")).await.unwrap_err();
                assert_eq!(e.kind, ErrorKind::BadResponse, "{e}");
                let streamed: Vec<_> = collect(t.provider.as_ref(), &request("bad-args")).await;
                let err = streamed.into_iter().find_map(Result::err).expect("the stream reports the bad arguments");
                assert_eq!(err.kind, ErrorKind::BadResponse);
                assert!(err.message.contains("get_weather"), "{}", err.message);
            }

            #[tokio::test]
            async fn a_stream_that_stops_mid_event_is_unavailable_not_a_panic() {
                let t = $target().await;
                let events = collect(t.provider.as_ref(), &request("cut")).await;
                let err = events.into_iter().find_map(Result::err).expect("truncation is reported");
                assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
            }

            #[tokio::test]
            async fn an_unknown_finish_reason_is_kept_as_sent() {
                let t = $target().await;
                let r = t.provider.chat(&request("weird-finish")).await.unwrap();
                assert_eq!(r.finish_reason, FinishReason::Other("something_new".into()));
            }

            #[tokio::test]
            async fn a_wrong_key_is_auth_and_not_retryable() {
                let t = $target().await;
                let e = t.provider.chat(&request("unauthorized")).await.unwrap_err();
                assert_eq!((e.kind, e.status), (ErrorKind::Auth, Some(401)));
                assert!(!e.kind.retryable());
            }
        }
    };
}

conformance!(openai, openai_target);
conformance!(anthropic, anthropic_target);

#[tokio::test]
async fn openai_wire_request_has_tools_stream_usage_and_auth() {
    let t = openai_target().await;
    let mut req = request("echo");
    req.json_mode = true;
    req.stop = vec!["END".into()];
    req.messages.push(Message::assistant(
        "",
        vec![cadre_llm::ToolCall {
            id: "call_9".into(),
            name: "get_weather".into(),
            arguments: json!({"city": "Oslo"}),
        }],
    ));
    req.messages.push(Message::tool_result("call_9", "sunny"));
    let _ = collect(t.provider.as_ref(), &req).await;
    let body = t.fake.last_body.lock().unwrap().clone().unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["response_format"], json!({"type": "json_object"}));
    assert_eq!(body["stop"], json!(["END"]));
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(
        body["messages"][2]["tool_calls"][0]["function"]["arguments"],
        r#"{"city":"Oslo"}"#
    );
    assert_eq!(
        body["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_9", "content": "sunny"})
    );
    let headers = t.fake.last_headers.lock().unwrap().clone().unwrap();
    assert_eq!(headers["authorization"], "Bearer sk-test");
}

#[tokio::test]
async fn anthropic_wire_request_separates_system_and_merges_tool_results() {
    let t = anthropic_target().await;
    let mut req = request("echo");
    req.messages.push(Message::assistant(
        "checking",
        vec![
            cadre_llm::ToolCall {
                id: "toolu_1".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Oslo"}),
            },
            cadre_llm::ToolCall {
                id: "toolu_2".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Rome"}),
            },
        ],
    ));
    req.messages.push(Message::tool_result("toolu_1", "sunny"));
    req.messages.push(Message::tool_result("toolu_2", "rain"));
    t.provider.chat(&req).await.unwrap();
    let body = t.fake.last_body.lock().unwrap().clone().unwrap();
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(body["max_tokens"], 64);
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        3,
        "user, assistant, one user turn with both results: {body}"
    );
    assert_eq!(messages[1]["content"][1]["type"], "tool_use");
    assert_eq!(
        messages[2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"})
    );
    assert_eq!(messages[2]["content"][1]["tool_use_id"], "toolu_2");
    assert_eq!(body["tools"][0]["input_schema"]["required"][0], "city");
    let headers = t.fake.last_headers.lock().unwrap().clone().unwrap();
    assert_eq!(headers["x-api-key"], "sk-ant-test");
    assert_eq!(headers["anthropic-version"], "2023-06-01");
}

#[tokio::test]
async fn embeddings_come_back_in_input_order_with_usage() {
    let (url, _fake) = fake::start(fake::openai()).await;
    let provider = OpenAiCompatible::new(
        "openai",
        format!("{url}/v1"),
        None,
        client(Duration::from_secs(2)),
    );
    let (vectors, usage) = provider
        .embed("text-embedding-3-small", &["a".into(), "abc".into()])
        .await
        .unwrap();
    assert_eq!(vectors, vec![vec![1.0, 0.5, -1.0], vec![3.0, 0.5, -1.0]]);
    assert_eq!(usage.input_tokens, 7);
}
