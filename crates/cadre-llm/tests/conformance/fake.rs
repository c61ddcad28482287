//! Fake OpenAI and Anthropic servers. The model name picks the scenario.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

#[derive(Clone, Default)]
pub struct Fake {
    pub calls: Arc<AtomicUsize>,
    /// Headers of the last request.
    pub last_headers: Arc<std::sync::Mutex<Option<HeaderMap>>>,
    pub last_body: Arc<std::sync::Mutex<Option<Value>>>,
}

pub async fn start(router: Router<Fake>) -> (String, Fake) {
    let fake = Fake::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let app = router.with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), fake)
}

pub fn openai() -> Router<Fake> {
    Router::new()
        .route("/v1/chat/completions", post(openai_handler))
        .route("/v1/embeddings", post(embeddings_handler))
}

/// Answers in reverse order (the API allows it) so the client must sort.
async fn embeddings_handler(State(fake): State<Fake>, body: String) -> Response {
    fake.calls.fetch_add(1, Ordering::SeqCst);
    let req: Value = serde_json::from_str(&body).unwrap();
    let inputs = req["input"].as_array().cloned().unwrap_or_default();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": [text.as_str().unwrap_or("").len() as f32, 0.5, -1.0]}))
        .collect();
    axum::Json(json!({"object": "list", "data": data, "model": req["model"], "usage": {"prompt_tokens": 7, "total_tokens": 7}})).into_response()
}

pub fn anthropic() -> Router<Fake> {
    Router::new().route("/v1/messages", post(anthropic_handler))
}

fn sse(events: Vec<String>) -> Response {
    let body: String = events.concat();
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

fn html_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/html")],
        "<html><body><h1>502 Bad Gateway</h1>\n<p>upstream fell over</p></body></html>",
    )
        .into_response()
}

/// Shared scenarios that do not depend on the wire format.
async fn common(fake: &Fake, model: &str) -> Option<Response> {
    match model {
        "html" => Some(html_error()),
        "garbage" => {
            Some(([(header::CONTENT_TYPE, "application/json")], "{not json").into_response())
        }
        "down" => Some((StatusCode::SERVICE_UNAVAILABLE, "overloaded").into_response()),
        "unauthorized" => Some(
            (
                StatusCode::UNAUTHORIZED,
                r#"{"error":{"message":"bad key"}}"#,
            )
                .into_response(),
        ),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Some(StatusCode::OK.into_response())
        }
        "flaky" if fake.calls.load(Ordering::SeqCst) == 1 => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "0")],
                "slow down",
            )
                .into_response(),
        ),
        _ => None,
    }
}

async fn openai_handler(State(fake): State<Fake>, headers: HeaderMap, body: String) -> Response {
    fake.calls.fetch_add(1, Ordering::SeqCst);
    let req: Value = serde_json::from_str(&body).unwrap();
    *fake.last_headers.lock().unwrap() = Some(headers);
    *fake.last_body.lock().unwrap() = Some(req.clone());
    let model = req["model"].as_str().unwrap_or_default().to_owned();
    if let Some(r) = common(&fake, &model).await {
        return r;
    }
    let stream = req["stream"].as_bool().unwrap_or(false);
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "c1", "object": "chat.completion.chunk", "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let usage = json!({"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17});
    match (model.as_str(), stream) {
        ("tools" | "bad-args", false) => {
            let args = if model == "bad-args" {
                "{not json".to_owned()
            } else {
                r#"{"city":"Paris"}"#.to_owned()
            };
            axum::Json(json!({"id": "c1", "object": "chat.completion", "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": args}}]}, "finish_reason": "tool_calls"}],
                "usage": usage})).into_response()
        }
        ("tools" | "bad-args", true) => {
            let first = if model == "bad-args" {
                "{not"
            } else {
                r#"{"ci"#
            };
            sse(vec![
                chunk(
                    json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
                    Value::Null,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 1, "id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{\"tz\":"}}]}),
                    Value::Null,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": first}}]}),
                    Value::Null,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": if model == "bad-args" { " json" } else { r#"ty":"Paris"}"# }}}]}),
                    Value::Null,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 1, "function": {"arguments": "\"UTC\"}"}}]}),
                    Value::Null,
                ),
                chunk(json!({}), json!("tool_calls")),
                format!(
                    "data: {}\n\n",
                    json!({"id": "c1", "choices": [], "usage": usage})
                ),
                "data: [DONE]\n\n".to_owned(),
            ])
        }
        ("cut", true) => sse(vec![
            chunk(json!({"content": "Hel"}), Value::Null),
            "data: {\"id\":\"c1\",\"choi".to_owned(),
        ]),
        (_, false) => {
            let finish = if model == "weird-finish" {
                "something_new"
            } else {
                "stop"
            };
            axum::Json(json!({"id": "c1", "object": "chat.completion", "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"}, "finish_reason": finish}], "usage": usage}))
                .into_response()
        }
        (_, true) => {
            let finish = if model == "weird-finish" {
                "something_new"
            } else {
                "stop"
            };
            sse(vec![
                chunk(json!({"role": "assistant", "content": ""}), Value::Null),
                chunk(json!({"content": "Hello"}), Value::Null),
                chunk(json!({"content": " there"}), Value::Null),
                chunk(json!({}), json!(finish)),
                format!(
                    "data: {}\n\n",
                    json!({"id": "c1", "choices": [], "usage": usage})
                ),
                "data: [DONE]\n\n".to_owned(),
            ])
        }
    }
}

async fn anthropic_handler(State(fake): State<Fake>, headers: HeaderMap, body: String) -> Response {
    fake.calls.fetch_add(1, Ordering::SeqCst);
    let req: Value = serde_json::from_str(&body).unwrap();
    *fake.last_headers.lock().unwrap() = Some(headers);
    *fake.last_body.lock().unwrap() = Some(req.clone());
    let model = req["model"].as_str().unwrap_or_default().to_owned();
    if let Some(r) = common(&fake, &model).await {
        return r;
    }
    let stream = req["stream"].as_bool().unwrap_or(false);
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let start = event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "usage": {"input_tokens": 12, "output_tokens": 1}}}),
    );
    match (model.as_str(), stream) {
        ("tools" | "bad-args", false) => {
            if model == "bad-args" {
                // Anthropic sends `input` as an object; a broken one is unreadable JSON.
                return ([(header::CONTENT_TYPE, "application/json")], r#"{"content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{not json}}]}"#).into_response();
            }
            axum::Json(json!({"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}],
                "stop_reason": "tool_use", "usage": {"input_tokens": 12, "output_tokens": 5}})).into_response()
        }
        ("tools" | "bad-args", true) => {
            let (a, b) = if model == "bad-args" {
                ("{not", " json")
            } else {
                (r#"{"ci"#, r#"ty":"Paris"}"#)
            };
            sse(vec![
                start,
                event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
                ),
                event("ping", json!({"type": "ping"})),
                event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": a}}),
                ),
                event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": b}}),
                ),
                event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                ),
                event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}}),
                ),
                event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"tz\":\"UTC\"}"}}),
                ),
                event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 1}),
                ),
                event(
                    "message_delta",
                    json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}}),
                ),
                event("message_stop", json!({"type": "message_stop"})),
            ])
        }
        ("cut", true) => sse(vec![
            start,
            "event: content_block_delta\ndata: {\"type\":\"content_blo".to_owned(),
        ]),
        (_, false) => {
            let stop = if model == "weird-finish" {
                "something_new"
            } else {
                "end_turn"
            };
            axum::Json(json!({"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": "Hello there"}], "stop_reason": stop, "usage": {"input_tokens": 12, "output_tokens": 5}}))
                .into_response()
        }
        (_, true) => {
            let stop = if model == "weird-finish" {
                "something_new"
            } else {
                "end_turn"
            };
            sse(vec![
                start,
                event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                ),
                event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
                ),
                event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " there"}}),
                ),
                event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                ),
                event(
                    "message_delta",
                    json!({"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 5}}),
                ),
                event("message_stop", json!({"type": "message_stop"})),
            ])
        }
    }
}
