//! Per-org model configuration: write-only keys, validation, and the key
//! reaching the provider when the gateway calls it.

use std::sync::{Arc, Mutex};

use axum::routing::post;
use reqwest::Method;
use serde_json::json;

use crate::harness::{TestServer, body, expect_error};

#[tokio::test]
async fn keys_are_write_only_and_sealed_at_rest() {
    let app = TestServer::start().await;
    let owner = app.user_token("owner@example.com").await;
    let org = app.create_org(&owner, "Acme").await;
    let put = |models: serde_json::Value| {
        app.authed(Method::PUT, &format!("/api/v1/orgs/{org}/models"), &owner)
            .json(&json!({"models": models}))
            .send()
    };

    let resp = put(json!([{"name": "local-llama", "provider": "openai", "baseUrl": "http://10.0.0.5:8000/v1/", "apiKey": "sk-org-secret-123",
        "inputPricePerMTok": 0.2, "outputPricePerMTok": "0.60", "contextWindow": 8192}])).await.unwrap();
    let (status, _, saved) = body(resp).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["data"][0]["hasApiKey"], true);
    assert_eq!(saved["data"][0]["baseUrl"], "http://10.0.0.5:8000/v1");
    assert_eq!(saved["data"][0]["outputPricePerMTok"], "0.6");
    assert!(!saved.to_string().contains("sk-org-secret"), "{saved}");

    let (_, _, listed) = body(
        app.authed(Method::GET, &format!("/api/v1/orgs/{org}/models"), &owner)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(!listed.to_string().contains("sk-org-secret"));

    let cadre_store::Target::Sqlite(path) = &app.db.target else {
        unreachable!()
    };
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let stored: String = sqlx::query_scalar("SELECT api_key_sealed FROM org_models")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        stored.starts_with("cdr1:") && !stored.contains("sk-org-secret"),
        "{stored}"
    );

    // Omitting the key keeps it; an empty key removes it.
    let (_, _, kept) = body(
        put(json!([{"name": "local-llama", "provider": "openai"}]))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(kept["data"][0]["hasApiKey"], true);
    let (_, _, removed) = body(
        put(json!([{"name": "local-llama", "provider": "openai", "apiKey": ""}]))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(removed["data"][0]["hasApiKey"], false);
}

#[tokio::test]
async fn bad_model_entries_name_the_field() {
    let app = TestServer::start().await;
    let owner = app.user_token("owner@example.com").await;
    let org = app.create_org(&owner, "Acme").await;
    for (models, field) in [
        (
            json!([{"name": "x", "provider": "cohere"}]),
            "models[0].provider",
        ),
        (
            json!([{"name": "x", "provider": "openai", "inputPricePerMTok": -1}]),
            "models[0].inputPricePerMTok",
        ),
        (
            json!([{"name": "x", "provider": "openai", "baseUrl": "ftp://x"}]),
            "models[0].baseUrl",
        ),
        (
            json!([{"name": "x", "provider": "openai"}, {"name": "x", "provider": "anthropic"}]),
            "models[1].name",
        ),
    ] {
        let resp = app
            .authed(Method::PUT, &format!("/api/v1/orgs/{org}/models"), &owner)
            .json(&json!({"models": models}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            expect_error(resp, 400, "VALIDATION_ERROR").await["error"]["field"],
            field
        );
    }
}

#[tokio::test]
async fn a_viewer_reads_models_but_cannot_change_them() {
    let app = TestServer::start().await;
    let owner = app.user_token("owner@example.com").await;
    let viewer = app.user_token("viewer@example.com").await;
    let org = app.create_org(&owner, "Acme").await;
    app.add_member(&owner, &org, "viewer@example.com", &viewer, "viewer")
        .await;
    assert_eq!(
        app.authed(Method::GET, &format!("/api/v1/orgs/{org}/models"), &viewer)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let put = app
        .authed(Method::PUT, &format!("/api/v1/orgs/{org}/models"), &viewer)
        .json(&json!({"models": []}))
        .send()
        .await
        .unwrap();
    expect_error(put, 403, "FORBIDDEN").await;
}

#[tokio::test]
async fn the_configured_key_and_endpoint_are_what_the_gateway_calls() {
    // A local OpenAI-compatible server that records the key it was called with.
    let seen: Arc<Mutex<Option<String>>> = Arc::default();
    let record = Arc::clone(&seen);
    let fake = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |headers: axum::http::HeaderMap| {
            let record = Arc::clone(&record);
            async move {
                *record.lock().unwrap() = headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
                axum::Json(json!({"id": "c1", "object": "chat.completion", "model": "local-llama",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1000000, "completion_tokens": 1000000}}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, fake).await });

    let app = TestServer::start().await;
    let owner = app.user_token("owner@example.com").await;
    let org = app.create_org(&owner, "Acme").await;
    let resp = app
        .authed(Method::PUT, &format!("/api/v1/orgs/{org}/models"), &owner)
        .json(&json!({"models": [{"name": "local-llama", "provider": "openai", "baseUrl": url, "apiKey": "sk-org-secret",
            "inputPricePerMTok": "1.5", "outputPricePerMTok": "2"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let tenant = cadre_types::Tenant::new(org.parse().unwrap());
    let chain = cadre_server::models::endpoints_for(&app.state, tenant, "local-llama")
        .await
        .unwrap();
    let request = cadre_llm::ChatRequest {
        model: "local-llama".into(),
        messages: vec![cadre_llm::Message::user("hello")],
        ..Default::default()
    };
    let out = app
        .state
        .llm()
        .gateway
        .chat(&chain, &request)
        .await
        .unwrap();
    assert_eq!(out.response.text, "hi");
    assert_eq!(
        seen.lock().unwrap().as_deref(),
        Some("Bearer sk-org-secret")
    );
    assert_eq!(
        out.cost_usd.normalize().to_string(),
        "3.5",
        "1M in × $1.5 + 1M out × $2"
    );
}

#[tokio::test]
async fn a_scripted_model_replays_its_script_and_is_chosen_only_by_name() {
    let app = TestServer::start().await;
    let owner = app.user_token("owner@example.com").await;
    let org = app.create_org(&owner, "Acme").await;
    let script = json!([{"text": "first answer", "usage": {"inputTokens": 3, "outputTokens": 2}},
        {"toolCalls": [{"id": "t1", "name": "add_output", "arguments": {"text": "done"}}]}]);
    let resp = app
        .authed(Method::PUT, &format!("/api/v1/orgs/{org}/models"), &owner)
        .json(&json!({"models": [{"name": "demo", "provider": "scripted", "script": script}]}))
        .send()
        .await
        .unwrap();
    let (status, _, saved) = body(resp).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["data"][0]["script"], script);

    let tenant = cadre_types::Tenant::new(org.parse().unwrap());
    let chain = cadre_server::models::endpoints_for(&app.state, tenant, "demo")
        .await
        .unwrap();
    let request = cadre_llm::ChatRequest {
        model: "demo".into(),
        messages: vec![cadre_llm::Message::user("go")],
        ..Default::default()
    };
    let gateway = &app.state.llm().gateway;
    assert_eq!(
        gateway.chat(&chain, &request).await.unwrap().response.text,
        "first answer"
    );
    // The answer follows the conversation's position, not a counter.
    assert_eq!(
        gateway.chat(&chain, &request).await.unwrap().response.text,
        "first answer"
    );
    let mut later = request.clone();
    later
        .messages
        .push(cadre_llm::Message::assistant("first answer", vec![]));
    later.messages.push(cadre_llm::Message::user("and then?"));
    let second = gateway.chat(&chain, &later).await.unwrap().response;
    assert_eq!(second.tool_calls[0].name, "add_output");
    // Any other name still goes to the default provider, never to the script.
    let other = cadre_server::models::endpoints_for(&app.state, tenant, "gpt-4o")
        .await
        .unwrap();
    assert_eq!(other[0].provider.name(), "openai");

    let bad = app
        .authed(Method::PUT, &format!("/api/v1/orgs/{org}/models"), &owner)
        .json(&json!({"models": [{"name": "demo", "provider": "scripted", "script": {"not": "a list"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_error(bad, 400, "VALIDATION_ERROR").await["error"]["field"],
        "models[0].script"
    );
}
