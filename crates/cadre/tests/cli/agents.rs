//! An agent run end to end through the real binary: a local server speaking
//! the OpenAI Chat Completions wire format scripts the model's tool calls,
//! and a local receiver stands for the outside world `http_request` reaches.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};

use crate::process::{Running, cadre};

/// Runs `app` on a free port in a thread of its own; returns the address.
fn serve_in_background(app: axum::Router) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// The fake model: its answer depends on how many tool results the
/// conversation holds, so every retry of a step gets the same answer.
fn fake_model(hook: SocketAddr) -> axum::Router {
    axum::Router::new().route(
        "/v1/chat/completions",
        post(move |Json(request): Json<Value>| async move {
            let results = request["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["role"] == "tool")
                .count();
            let call = |id: &str, name: &str, args: Value| {
                json!({ "id": id, "type": "function",
                        "function": { "name": name, "arguments": args.to_string() } })
            };
            let (content, calls) = match results {
                0 => (Value::Null, vec![call("call_out", "add_output", json!({ "label": "summary", "content": "all good" }))]),
                1 => (Value::Null, vec![call("call_http", "http_request",
                        json!({ "method": "POST", "url": format!("http://{hook}/hook"), "body": "original" }))]),
                _ => (json!("Done: the summary is recorded and the hook was called."), vec![]),
            };
            let finish = if calls.is_empty() { "stop" } else { "tool_calls" };
            let mut message = json!({ "role": "assistant", "content": content });
            if !calls.is_empty() {
                message["tool_calls"] = Value::Array(calls);
            }
            Json(json!({
                "id": "chatcmpl-1", "object": "chat.completion", "model": "fake-model",
                "choices": [{ "index": 0, "message": message, "finish_reason": finish }],
                "usage": { "prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120 }
            }))
        }),
    )
}

struct Api {
    base: String,
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Api {
    fn new(server: &Running) -> Self {
        Self {
            base: server.base_url.clone(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::new(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>, token: &str) -> (u16, Value) {
        self.rt.block_on(async {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let mut req = self
                .client
                .request(method, format!("{}{path}", self.base))
                .bearer_auth(token);
            if let Some(body) = body {
                req = req.json(&body);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap_or(Value::Null))
        })
    }

    fn signup(&self, email: &str) -> String {
        let (status, body) = self.rt.block_on(async {
            let resp = self.client.post(format!("{}/api/v1/auth/signup", self.base))
                .json(&json!({ "email": email, "password": "correct horse battery", "name": "Tester" }))
                .send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        });
        assert_eq!(status, 201, "{body}");
        body["data"]["accessToken"].as_str().unwrap().to_owned()
    }

    /// Polls the execution until `done` holds (at most 30 s).
    fn wait(&self, id: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = self.call("GET", &format!("/api/v1/executions/{id}"), None, token);
            assert_eq!(status, 200, "{body}");
            if done(&body["data"]) {
                return body["data"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "execution never got there: {body}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_tool_loop_with_an_edited_approval_runs_to_completion_with_a_verifiable_trace() {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let record = Arc::clone(&seen);
    let hook = serve_in_background(axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| async move {
            let key = headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            record.lock().unwrap().push((key, body));
            "ok"
        }),
    ));
    let model = serve_in_background(fake_model(hook));

    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = cadre(&tmp.path().join("data"));
    cmd.env("CADRE_EGRESS_ALLOW", hook.to_string());
    let server = Running::serve(cmd);
    let api = Api::new(&server);
    let token = api.signup("owner@example.com");
    let (_, org) = api.call(
        "POST",
        "/api/v1/orgs",
        Some(json!({ "name": "Acme" })),
        &token,
    );
    let org = org["data"]["id"].as_str().unwrap().to_owned();
    let (status, body) = api.call("PUT", &format!("/api/v1/orgs/{org}/models"), Some(json!({ "models": [{
        "name": "fake", "provider": "openai", "baseUrl": format!("http://{model}/v1"), "apiKey": "sk-test",
        "inputPricePerMTok": "1.00", "outputPricePerMTok": "2.00" }] })), &token);
    assert_eq!(status, 200, "{body}");

    let (status, agent) = api.call(
        "POST",
        &format!("/api/v1/orgs/{org}/agents"),
        Some(json!({
        "name": "Tester", "instructions": "Record a summary, then call the hook.", "model": "fake",
        "tools": ["add_output", "http_request"] })),
        &token,
    );
    assert_eq!(status, 201, "{agent}");
    assert_eq!(agent["data"]["version"], 1);
    let agent = agent["data"]["id"].as_str().unwrap().to_owned();
    let (status, execution) = api.call(
        "POST",
        &format!("/api/v1/agents/{agent}/execute"),
        Some(json!({ "task": { "title": "Report and notify" } })),
        &token,
    );
    assert_eq!(status, 202, "{execution}");
    let id = execution["data"]["id"].as_str().unwrap().to_owned();

    // http_request has outside effects: it waits for a human by default.
    let waiting = api.wait(&id, &token, |e| e["status"] == "waiting_approval");
    assert_eq!(waiting["waiting"]["type"], "approval");
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing is sent before approval"
    );
    let (_, approvals) = api.call(
        "GET",
        &format!("/api/v1/orgs/{org}/approvals?status=pending"),
        None,
        &token,
    );
    let approval = &approvals["data"][0];
    assert_eq!(approval["action"], "http_request");
    assert_eq!(approval["details"]["body"], "original");
    let edited =
        json!({ "method": "POST", "url": format!("http://{hook}/hook"), "body": "edited" });
    let (status, decided) = api.call(
        "POST",
        &format!(
            "/api/v1/approvals/{}/approve",
            approval["id"].as_str().unwrap()
        ),
        Some(json!({ "arguments": edited })),
        &token,
    );
    assert_eq!(status, 200, "{decided}");
    let (status, again) = api.call(
        "POST",
        &format!(
            "/api/v1/approvals/{}/approve",
            approval["id"].as_str().unwrap()
        ),
        None,
        &token,
    );
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("CONFLICT")),
        "decided once only"
    );

    let done = api.wait(&id, &token, |e| {
        e["status"] == "completed" || e["status"] == "failed"
    });
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["steps"], 5, "3 model calls and 2 tool calls: {done}");
    assert_eq!(done["tokensIn"], 300);
    // 300 input tokens at $1/MTok and 60 output tokens at $2/MTok.
    assert_eq!(done["costUsd"], "0.00042");
    let (_, trace) = api.call(
        "GET",
        &format!("/api/v1/executions/{id}/trace"),
        None,
        &token,
    );
    let hits = seen.lock().unwrap().clone();
    assert_eq!(
        hits,
        vec![(format!("{id}:call_http"), "edited".to_owned())],
        "sent once, as edited, with its key: {trace:#}"
    );

    let kinds: Vec<&str> = trace["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for kind in [
        "execution_started",
        "llm_call",
        "output_added",
        "tool_call",
        "approval_requested",
        "approval_resolved",
        "execution_finished",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let resolved = trace["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "approval_resolved")
        .unwrap();
    assert_eq!(resolved["data"]["editedArguments"]["body"], "edited");
    let (_, verify) = api.call(
        "GET",
        &format!("/api/v1/executions/{id}/trace/verify"),
        None,
        &token,
    );
    assert_eq!(verify["data"]["valid"], true, "{verify}");
    assert_eq!(verify["data"]["events"], kinds.len());

    // Another organization's user learns nothing about it.
    let stranger = api.signup("stranger@example.com");
    for path in [
        format!("/api/v1/executions/{id}"),
        format!("/api/v1/executions/{id}/trace"),
        format!("/api/v1/agents/{agent}"),
    ] {
        let (status, body) = api.call("GET", &path, None, &stranger);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("NOT_FOUND")),
            "{path}"
        );
    }
    let (status, _) = api.call(
        "POST",
        &format!("/api/v1/executions/{id}/cancel"),
        None,
        &stranger,
    );
    assert_eq!(status, 404);
    // A finished execution cannot be cancelled or resumed.
    let (status, body) = api.call(
        "POST",
        &format!("/api/v1/executions/{id}/resume"),
        None,
        &token,
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("CONFLICT"))
    );
    assert!(server.terminate().0.success());
}
