//! Chat with the orchestrator over a local model server that speaks
//! OpenAI's wire format (streamed and not): streamed tokens, routing to the
//! agent whose description fits, summaries past the context window,
//! sessions private to their owner.

use std::sync::{Arc, Mutex};

use axum::routing::post;
use futures_util::StreamExt as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestServer, body, expect_error};

/// Every request the fake model received.
type Seen = Arc<Mutex<Vec<Value>>>;

/// The answer's pieces, streamed one chunk each.
const PIECES: [&str; 4] = ["Hel", "lo, ", "how can I ", "help?"];

/// A model that summarises when asked to, routes "research" requests to the
/// agent its prompt describes as doing market research, and otherwise
/// streams `PIECES`.
async fn fake_model() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |axum::Json(request): axum::Json<Value>| {
            let record = Arc::clone(&record);
            async move {
                record.lock().unwrap().push(request.clone());
                answer(&request)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn answer(request: &Value) -> axum::response::Response {
    let messages = request["messages"].as_array().unwrap();
    let system = messages[0]["content"].as_str().unwrap_or_default();
    let last = messages.last().unwrap()["content"]
        .as_str()
        .unwrap_or_default();
    let usage = json!({"prompt_tokens": 40, "completion_tokens": 8, "total_tokens": 48});
    if system.starts_with("Summarize this conversation") {
        return axum::Json(json!({"id": "c1", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "SUMMARY: the user said hello several times."}, "finish_reason": "stop"}],
            "usage": usage}))
        .into_response();
    }
    let chunk = |delta: Value, finish: Value| json!({"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    let mut events = vec![chunk(json!({"role": "assistant"}), Value::Null)];
    let orchestrating = system.starts_with("You are the orchestrator");
    let tool_result_seen = messages.iter().any(|m| m["role"] == "tool");
    let finish = if system.starts_with("Fetch.") {
        // An agent whose work has an outside effect: it waits for a human.
        let arguments = json!({"method": "GET", "url": "https://example.com/"}).to_string();
        events.push(chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_fetch", "type": "function", "function": {"name": "http_request", "arguments": arguments}}]}),
            Value::Null,
        ));
        "tool_calls"
    } else if !orchestrating && !tool_result_seen {
        // An agent at work: it records its findings, then says it is done.
        let arguments = json!({"label": "Top five", "type": "text", "content": "Obsidian, Notion, Bear, Logseq, Joplin"}).to_string();
        events.push(chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_out", "type": "function", "function": {"name": "add_output", "arguments": arguments}}]}),
            Value::Null,
        ));
        "tool_calls"
    } else if !orchestrating {
        events.push(chunk(json!({"content": "Done."}), Value::Null));
        "stop"
    } else if last.contains("research") {
        // The agent the prompt lists for market research.
        let line = system
            .lines()
            .find(|l| l.contains("market research"))
            .expect("the prompt lists the researcher");
        let id = line.trim_start_matches("- id ").split(':').next().unwrap();
        let arguments = json!({"agentId": id, "instructions": "Research note-taking apps and list the top five."}).to_string();
        events.push(chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "route_to_agent", "arguments": arguments}}]}),
            Value::Null,
        ));
        "tool_calls"
    } else {
        for piece in PIECES {
            events.push(chunk(json!({"content": piece}), Value::Null));
        }
        "stop"
    };
    events.push(chunk(json!({}), json!(finish)));
    events.push(json!({"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [], "usage": usage}));
    let mut text: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    text.push_str("data: [DONE]\n\n");
    axum::response::Response::builder()
        .header("content-type", "text/event-stream")
        .body(axum::body::Body::from(text))
        .unwrap()
}

use axum::response::IntoResponse as _;

/// An org whose only model is the fake one (with `window` tokens of
/// context, when given).
pub(crate) async fn org_with_model(
    app: &TestServer,
    email: &str,
    window: Option<u32>,
) -> (String, String, Seen) {
    let (url, seen) = fake_model().await;
    let owner = app.user_token(email).await;
    let org = app.create_org(&owner, "Chatty").await;
    let mut model =
        json!({"name": "orchestra", "provider": "openai", "baseUrl": url, "apiKey": "sk-test"});
    if let Some(window) = window {
        model["contextWindow"] = json!(window);
    }
    let resp = app
        .authed(Method::PUT, &format!("/api/v1/orgs/{org}/models"), &owner)
        .json(&json!({"models": [model]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    (owner, org, seen)
}

/// Parses a whole SSE body into `(event, id, data)`.
fn sse_events(text: &str) -> Vec<(String, Option<String>, Value)> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .filter_map(|block| {
            let (mut event, mut id, mut data) = (String::from("message"), None, String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            (!data.is_empty()).then(|| (event, id, serde_json::from_str(&data).unwrap()))
        })
        .collect()
}

async fn chat(
    app: &TestServer,
    token: &str,
    org: &str,
    body: Value,
) -> (reqwest::StatusCode, Value) {
    let resp = app
        .authed(Method::POST, &format!("/api/v1/orgs/{org}/chat"), token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, _, json) = crate::harness::body(resp).await;
    (status, json)
}

#[tokio::test]
async fn streamed_tokens_arrive_in_order_and_the_stored_answer_is_their_concatenation() {
    let app = TestServer::start().await;
    let (owner, org, seen) = org_with_model(&app, "chat-stream@example.com", None).await;
    let resp = app
        .authed(
            Method::POST,
            &format!("/api/v1/orgs/{org}/chat/stream"),
            &owner,
        )
        .json(&json!({"message": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut text = String::new();
    let mut stream = resp.bytes_stream();
    // The stream ends by itself after the stored answer.
    while let Some(chunk) = tokio::time::timeout(std::time::Duration::from_secs(15), stream.next())
        .await
        .expect("the stream ends")
    {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    let events = sse_events(&text);
    assert_eq!(events[0].0, "session", "{text}");
    let session = events[0].2["sessionId"].as_str().unwrap().to_owned();
    let message_id = events[0].2["messageId"].clone();
    let deltas: Vec<&Value> = events
        .iter()
        .filter(|e| e.0 == "chat_stream")
        .map(|e| &e.2)
        .collect();
    assert_eq!(deltas.len(), PIECES.len(), "{text}");
    for (n, delta) in deltas.iter().enumerate() {
        assert_eq!(
            (&delta["index"], &delta["delta"], &delta["messageId"]),
            (&json!(n), &json!(PIECES[n]), &message_id)
        );
    }
    let last = events.last().unwrap();
    assert_eq!(last.0, "chat_message", "{text}");
    assert_eq!(last.2["id"], message_id);
    assert_eq!(last.2["role"], "assistant");
    assert_eq!(last.2["content"], PIECES.concat());
    assert_eq!(
        (&last.2["tokensIn"], &last.2["tokensOut"]),
        (&json!(40), &json!(8))
    );
    // Ids are the bus's, increasing.
    let ids: Vec<u64> = events
        .iter()
        .filter_map(|e| e.1.as_deref())
        .map(|id| id.parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    // Stored as streamed, after the user's message.
    let resp = app
        .authed(
            Method::GET,
            &format!("/api/v1/chat/sessions/{session}"),
            &owner,
        )
        .send()
        .await
        .unwrap();
    let (status, _, stored) = body(resp).await;
    assert_eq!(status, 200, "{stored}");
    let messages = stored["data"]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(
        (&messages[0]["role"], &messages[0]["content"]),
        (&json!("user"), &json!("hello"))
    );
    assert_eq!(messages[1]["content"], PIECES.concat());
    assert_eq!(stored["data"]["title"], "hello");
    // The model was asked for a stream, with the user's words.
    let request = seen.lock().unwrap()[0].clone();
    assert_eq!(request["stream"], true);
    assert_eq!(
        request["messages"].as_array().unwrap().last().unwrap()["content"],
        "hello"
    );

    // The same session carries on, in the JSON form this time.
    let (status, second) = chat(
        &app,
        &owner,
        &org,
        json!({"message": "and again", "sessionId": session}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["data"]["sessionId"], session.as_str());
    assert_eq!(second["data"]["message"]["content"], PIECES.concat());
    let history = seen.lock().unwrap()[1]["messages"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(history, 4, "system, hello, the answer, and again");
}

#[tokio::test]
async fn routing_picks_the_agent_whose_description_matches_and_starts_it() {
    let app = TestServer::start().await;
    let (owner, org, seen) = org_with_model(&app, "chat-route@example.com", None).await;
    let mut ids = Vec::new();
    for (name, description) in [
        ("Bo", "Writes blog posts and newsletters."),
        ("Ada", "Does market research and competitor analysis."),
        ("Cy", "Reviews pull requests."),
    ] {
        let spec = json!({"name": name, "description": description, "instructions": "x", "model": "orchestra"});
        ids.push(app.agent(&owner, &org, spec).await);
    }
    let (status, out) = chat(
        &app,
        &owner,
        &org,
        json!({"message": "Can someone do some research on note-taking apps?"}),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let message = &out["data"]["message"];
    assert_eq!(
        (&message["role"], &message["agentId"]),
        (&json!("agent"), &json!(ids[1])),
        "{out}"
    );
    assert!(
        message["content"]
            .as_str()
            .unwrap()
            .starts_with("Ada is on it"),
        "{message}"
    );
    let execution = &out["data"]["executions"][0];
    assert_eq!(
        (&execution["agentId"], &execution["status"]),
        (&json!(ids[1]), &json!("queued"))
    );
    assert_eq!(message["executionId"], execution["id"]);

    // The execution works on a task in the Inbox, assigned to Ada.
    let task = execution["taskId"].as_str().unwrap();
    let resp = app
        .authed(Method::GET, &format!("/api/v1/tasks/{task}"), &owner)
        .send()
        .await
        .unwrap();
    let (_, _, task) = body(resp).await;
    assert_eq!(
        task["data"]["assignee"],
        json!({"type": "agent", "id": ids[1]})
    );
    assert!(
        task["data"]["title"]
            .as_str()
            .unwrap()
            .starts_with("Research note-taking apps")
    );
    // The model saw every agent with its description, and the routing tool.
    let request = seen.lock().unwrap()[0].clone();
    let system = request["messages"][0]["content"].as_str().unwrap();
    for id in &ids {
        assert!(system.contains(id.as_str()), "{system}");
    }
    assert_eq!(request["tools"][0]["function"]["name"], "route_to_agent");
}

#[tokio::test]
async fn older_turns_are_summarised_when_the_context_window_fills() {
    let app = TestServer::start().await;
    let (owner, org, seen) = org_with_model(&app, "chat-window@example.com", Some(300)).await;
    let mut session = None;
    for n in 0..5 {
        let mut body = json!({"message": format!("hello number {n}, {}", "and some more words to fill the window ".repeat(2))});
        if let Some(id) = &session {
            body["sessionId"] = json!(id);
        }
        let (status, out) = chat(&app, &owner, &org, body).await;
        assert_eq!(status, 200, "{out}");
        session = Some(out["data"]["sessionId"].as_str().unwrap().to_owned());
    }
    let session = session.unwrap();
    let resp = app
        .authed(
            Method::GET,
            &format!("/api/v1/chat/sessions/{session}"),
            &owner,
        )
        .send()
        .await
        .unwrap();
    let (_, _, stored) = body(resp).await;
    assert_eq!(
        stored["data"]["summary"], "SUMMARY: the user said hello several times.",
        "{stored}"
    );
    assert_eq!(
        stored["data"]["messages"].as_array().unwrap().len(),
        10,
        "every message is kept"
    );

    let requests = seen.lock().unwrap().clone();
    let summaries = requests
        .iter()
        .filter(|r| {
            r["messages"][0]["content"]
                .as_str()
                .unwrap()
                .starts_with("Summarize")
        })
        .count();
    assert!(summaries >= 1, "a summarising call was made");
    // The last answer was asked for with the summary instead of the oldest turns.
    let last = requests.last().unwrap();
    let text = last["messages"].to_string();
    assert!(
        text.contains("Summary of the earlier conversation: SUMMARY"),
        "{text}"
    );
    assert!(!text.contains("hello number 0"), "{text}");
    assert!(text.contains("hello number 4"), "{text}");
}

#[tokio::test]
async fn sessions_are_private_to_their_owner_and_bad_input_is_refused() {
    let app = TestServer::start().await;
    let (owner, org, _) = org_with_model(&app, "chat-owner@example.com", None).await;
    let colleague = app.user_token("chat-colleague@example.com").await;
    app.add_member(
        &owner,
        &org,
        "chat-colleague@example.com",
        &colleague,
        "member",
    )
    .await;
    let viewer = app.user_token("chat-viewer@example.com").await;
    app.add_member(&owner, &org, "chat-viewer@example.com", &viewer, "viewer")
        .await;
    let stranger = app.user_token("chat-stranger@example.com").await;

    let (status, out) = chat(&app, &owner, &org, json!({"message": "hi"})).await;
    assert_eq!(status, 200, "{out}");
    let session = out["data"]["sessionId"].as_str().unwrap().to_owned();

    let list = |token: String| {
        let req = app.authed(
            Method::GET,
            &format!("/api/v1/orgs/{org}/chat/sessions"),
            &token,
        );
        async move { body(req.send().await.unwrap()).await.2 }
    };
    assert_eq!(list(owner.clone()).await["pagination"]["totalItems"], 1);
    assert_eq!(list(colleague.clone()).await["pagination"]["totalItems"], 0);

    // Another member, and a user of another org, learn nothing of it.
    for token in [&colleague, &stranger] {
        for method in [Method::GET, Method::DELETE] {
            let resp = app
                .authed(method, &format!("/api/v1/chat/sessions/{session}"), token)
                .send()
                .await
                .unwrap();
            expect_error(resp, 404, "NOT_FOUND").await;
        }
    }
    let (status, _) = chat(
        &app,
        &colleague,
        &org,
        json!({"message": "me too", "sessionId": session}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = chat(&app, &stranger, &org, json!({"message": "let me in"})).await;
    assert_eq!(status, 404);
    // Viewers may read but not chat (SPEC §7.3).
    let (status, refused) = chat(&app, &viewer, &org, json!({"message": "hi"})).await;
    assert_eq!(
        (status.as_u16(), &refused["error"]["code"]),
        (403, &json!("FORBIDDEN"))
    );

    for (bad, field) in [
        (json!({"message": "   "}), "message"),
        (json!({"message": "x".repeat(20_001)}), "message"),
        (
            json!({"message": "hi", "sessionId": uuid::Uuid::now_v7()}),
            "sessionId",
        ),
    ] {
        let (status, err) = chat(&app, &owner, &org, bad).await;
        assert!(status.is_client_error(), "{err}");
        assert_eq!(err["error"]["field"], field, "{err}");
    }
    let (status, err) = chat(
        &app,
        &owner,
        &org,
        json!({"message": "hi", "mood": "sunny"}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), &err["error"]["code"]),
        (422, &json!("VALIDATION_ERROR"))
    );

    let resp = app
        .authed(
            Method::DELETE,
            &format!("/api/v1/chat/sessions/{session}"),
            &owner,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = app
        .authed(
            Method::GET,
            &format!("/api/v1/chat/sessions/{session}"),
            &owner,
        )
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn a_session_channel_carries_the_turn_to_its_owner_only_and_a_broken_stream_resumes() {
    let app = TestServer::start().await;
    let (owner, org, _) = org_with_model(&app, "chat-ws@example.com", None).await;
    let colleague = app.user_token("chat-ws-colleague@example.com").await;
    app.add_member(
        &owner,
        &org,
        "chat-ws-colleague@example.com",
        &colleague,
        "member",
    )
    .await;
    let (status, out) = chat(&app, &owner, &org, json!({"message": "hi"})).await;
    assert_eq!(status, 200, "{out}");
    let session = out["data"]["sessionId"].as_str().unwrap().to_owned();
    let channel = format!("session:{session}");

    let mut mine = crate::realtime::connect(&app, &owner, None).await;
    assert_eq!(
        crate::realtime::subscribe(&mut mine, &channel).await["type"],
        "subscribed"
    );
    let mut theirs = crate::realtime::connect(&app, &colleague, None).await;
    let refused = crate::realtime::subscribe(&mut theirs, &channel).await;
    assert_eq!(refused["payload"]["code"], "NOT_FOUND", "{refused}");

    // A streamed turn; the client reads only its first event, then the
    // connection breaks.
    let resp = app
        .authed(
            Method::POST,
            &format!("/api/v1/orgs/{org}/chat/stream"),
            &owner,
        )
        .json(&json!({"message": "again", "sessionId": session}))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let first = String::from_utf8(stream.next().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(first.contains("event: session"), "{first}");
    drop(stream);

    // The turn finished anyway; the WebSocket saw it.
    let user = crate::realtime::next_of(&mut mine, "chat_message").await;
    assert_eq!(user["payload"]["role"], "user");
    let first_chunk = crate::realtime::next_of(&mut mine, "chat_stream").await;
    let answer = crate::realtime::next_of(&mut mine, "chat_message").await;
    assert_eq!(answer["payload"]["content"], PIECES.concat());

    // Resuming from the first chunk gives the rest and the answer.
    let resp = app
        .authed(
            Method::POST,
            &format!("/api/v1/orgs/{org}/chat/stream"),
            &owner,
        )
        .header("last-event-id", first_chunk["id"].as_str().unwrap())
        .json(&json!({"sessionId": session}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = tokio::time::timeout(std::time::Duration::from_secs(15), resp.text())
        .await
        .unwrap()
        .unwrap();
    let events = sse_events(&text);
    let deltas: Vec<&str> = events
        .iter()
        .filter(|e| e.0 == "chat_stream")
        .map(|e| e.2["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, PIECES[1..], "{text}");
    assert_eq!(events.last().unwrap().2["id"], answer["payload"]["id"]);
    // The session now holds both turns.
    let resp = app
        .authed(
            Method::GET,
            &format!("/api/v1/chat/sessions/{session}"),
            &owner,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(resp).await.2["data"]["messages"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn a_routed_execution_reports_its_progress_and_outcome_in_the_session() {
    let app = TestServer::start_with_workers().await;
    let (owner, org, _) = org_with_model(&app, "chat-follow@example.com", None).await;
    app.agent(
        &owner,
        &org,
        json!({"name": "Ada", "description": "Does market research.", "instructions": "Research.", "model": "orchestra", "tools": ["add_output"]}),
    )
    .await;
    // Watch the session from the start.
    let (status, first) = chat(&app, &owner, &org, json!({"message": "hello"})).await;
    assert_eq!(status, 200, "{first}");
    let session = first["data"]["sessionId"].as_str().unwrap().to_owned();
    let mut socket = crate::realtime::connect(&app, &owner, None).await;
    assert_eq!(
        crate::realtime::subscribe(&mut socket, &format!("session:{session}")).await["type"],
        "subscribed"
    );

    let (status, routed) = chat(
        &app,
        &owner,
        &org,
        json!({"message": "Please research note-taking apps", "sessionId": session}),
    )
    .await;
    assert_eq!(status, 200, "{routed}");
    let execution = routed["data"]["executions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The execution's progress arrives on the session's channel…
    loop {
        let update = crate::realtime::next_of(&mut socket, "execution_update").await;
        assert_eq!(update["payload"]["executionId"], execution.as_str());
        assert_eq!(update["payload"]["sessionId"], session.as_str());
        if update["payload"]["status"] == "completed" {
            break;
        }
    }
    // …and then its outcome, as the agent's message.
    let outcome = loop {
        let msg = crate::realtime::next_of(&mut socket, "chat_message").await;
        if msg["payload"]["executionId"] == execution.as_str()
            && msg["payload"]["content"]
                .as_str()
                .unwrap()
                .contains("finished")
        {
            break msg;
        }
    };
    assert_eq!(outcome["payload"]["role"], "agent");
    assert_eq!(
        outcome["payload"]["content"],
        "Ada finished:\n\nTop five: Obsidian, Notion, Bear, Logseq, Joplin"
    );
    let resp = app
        .authed(
            Method::GET,
            &format!("/api/v1/chat/sessions/{session}"),
            &owner,
        )
        .send()
        .await
        .unwrap();
    let messages = body(resp).await.2["data"]["messages"]
        .as_array()
        .unwrap()
        .clone();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["user", "assistant", "user", "agent", "agent"],
        "{messages:#?}"
    );
}

#[tokio::test]
async fn a_project_subscriber_sees_the_task_the_execution_and_its_approval_request() {
    let app = TestServer::start_with_workers().await;
    let (owner, org, _) = org_with_model(&app, "ws-engine@example.com", None).await;
    let project = crate::realtime::project(&app, &owner, &org).await;
    let agent = app
        .agent(
            &owner,
            &org,
            json!({"name": "Fetcher", "instructions": "Fetch.", "model": "orchestra", "tools": ["http_request"]}),
        )
        .await;
    let mut socket = crate::realtime::connect(&app, &owner, None).await;
    assert_eq!(
        crate::realtime::subscribe(&mut socket, &format!("project:{project}")).await["type"],
        "subscribed"
    );

    let execution = app
        .execute(
            &owner,
            &agent,
            json!({"title": "Fetch the page", "projectId": project}),
        )
        .await;
    let id = execution["id"].as_str().unwrap().to_owned();

    let created = crate::realtime::next_of(&mut socket, "task_created").await;
    assert_eq!(created["payload"]["title"], "Fetch the page");
    let queued = crate::realtime::next_of(&mut socket, "execution_update").await;
    assert_eq!(
        (
            &queued["payload"]["executionId"],
            &queued["payload"]["status"]
        ),
        (&json!(id), &json!("queued"))
    );
    let approval = crate::realtime::next_of(&mut socket, "approval_requested").await;
    assert_eq!(approval["payload"]["executionId"], id.as_str());
    assert_eq!(approval["payload"]["action"], "http_request");
    loop {
        let update = crate::realtime::next_of(&mut socket, "execution_update").await;
        if update["payload"]["status"] == "waiting_approval" {
            break;
        }
    }
    // Rejecting it over the WebSocket is announced to the project too.
    let approval_id = approval["payload"]["approvalId"].as_str().unwrap();
    crate::realtime::send(&mut socket, json!({"type": "approve", "payload": {"approvalId": approval_id, "approved": false, "reason": "not today"}, "requestId": 9})).await;
    let resolved = crate::realtime::next_of(&mut socket, "approval_resolved").await;
    assert_eq!(
        (
            &resolved["payload"]["status"],
            &resolved["payload"]["reason"]
        ),
        (&json!("rejected"), &json!("not today"))
    );
}

#[tokio::test]
async fn chat_and_executions_share_the_daily_token_quota() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cadre.toml");
    std::fs::write(
        &config,
        "[limits.free]\nchat_per_minute = 1000\napi_per_minute = 100000\nexecutions_per_hour = 1000\n\
         uploads_per_hour = 10\ntokens_per_day = 90\n",
    )
    .unwrap();
    let app = TestServer::start_with(&[("CADRE_CONFIG", config.to_str().unwrap())]).await;
    let (owner, org, seen) = org_with_model(&app, "chat-quota@example.com", None).await;
    // Each answer costs 48 tokens: the second starts at 48 (under 90), the
    // third at 96 and is refused before any model call.
    let mut session = None;
    for _ in 0..2 {
        let mut body = json!({"message": "hello"});
        if let Some(id) = &session {
            body["sessionId"] = json!(id);
        }
        let (status, out) = chat(&app, &owner, &org, body).await;
        assert_eq!(status, 200, "{out}");
        session = Some(out["data"]["sessionId"].as_str().unwrap().to_owned());
    }
    let (status, refused) = chat(
        &app,
        &owner,
        &org,
        json!({"message": "once more", "sessionId": session}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), &refused["error"]["code"]),
        (402, &json!("QUOTA_EXCEEDED")),
        "{refused}"
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("96 model tokens today"),
        "{refused}"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "no model call past the quota"
    );
}

#[tokio::test]
async fn a_failed_execution_is_a_notification_to_the_org() {
    let app = TestServer::start_with_workers().await;
    let (owner, org, _) = org_with_model(&app, "notify@example.com", None).await;
    let agent = app
        .agent(
            &owner,
            &org,
            json!({"name": "Brief", "instructions": "Work.", "model": "orchestra", "tools": ["add_output"],
                   "limits": {"maxSteps": 1}}),
        )
        .await;
    let mut socket = crate::realtime::connect(&app, &owner, None).await;
    assert_eq!(
        crate::realtime::subscribe(&mut socket, &format!("org:{org}")).await["type"],
        "subscribed"
    );
    let execution = app
        .execute(&owner, &agent, json!({"title": "Too much for one step"}))
        .await;
    let note = crate::realtime::next_of(&mut socket, "notification").await;
    assert_eq!(note["payload"]["level"], "error", "{note}");
    assert_eq!(note["payload"]["executionId"], execution["id"]);
    assert!(
        !note["payload"]["message"].as_str().unwrap().is_empty(),
        "{note}"
    );
}
