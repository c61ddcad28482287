//! The WebSocket and SSE of SPEC §6 over real sockets: tokens, channel
//! authorization, live events from REST changes, presence and locks,
//! replay after reconnecting, slow consumers, bad input.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::harness::{TestServer, body, expect_error};

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Waits this long at most for a message that must come.
const PATIENCE: Duration = Duration::from_secs(15);

async fn ws_token(app: &TestServer, token: &str) -> String {
    let resp = app
        .authed(Method::POST, "/api/v1/auth/ws-token", token)
        .send()
        .await
        .unwrap();
    let (status, _, json) = body(resp).await;
    assert_eq!(status, 200, "{json}");
    assert!(json["data"]["expiresAt"].is_string());
    json["data"]["token"].as_str().unwrap().to_owned()
}

pub(crate) async fn connect(app: &TestServer, token: &str, last_event_id: Option<&str>) -> Socket {
    let ws = ws_token(app, token).await;
    let mut url = format!("ws://{}/ws?token={ws}", app.addr);
    if let Some(id) = last_event_id {
        url.push_str(&format!("&lastEventId={id}"));
    }
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

pub(crate) async fn send(socket: &mut Socket, msg: Value) {
    socket
        .send(Message::Text(msg.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON message (pings and pongs skipped).
pub(crate) async fn next(socket: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a message in time")
            .expect("the connection is open")
            .unwrap();
        match msg {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The next message of `kind`, skipping others.
pub(crate) async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let msg = next(socket).await;
        if msg["type"] == kind {
            return msg;
        }
    }
}

pub(crate) async fn subscribe(socket: &mut Socket, channel: &str) -> Value {
    send(
        socket,
        json!({"type": "subscribe", "payload": {"channel": channel}, "requestId": channel}),
    )
    .await;
    next(socket).await
}

pub(crate) async fn project(app: &TestServer, token: &str, org: &str) -> String {
    let path = format!("/api/v1/orgs/{org}/projects");
    app.call(Method::POST, &path, token, json!({"name": "Launch"}), 201)
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn task(app: &TestServer, token: &str, project: &str, title: &str) -> String {
    let path = format!("/api/v1/projects/{project}/tasks");
    app.call(Method::POST, &path, token, json!({"title": title}), 201)
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn ws_tokens_are_single_use_and_checked_before_the_upgrade() {
    let app = TestServer::start().await;
    let resp = app
        .client
        .post(app.url("/api/v1/auth/ws-token"))
        .send()
        .await
        .unwrap();
    expect_error(resp, 401, "MISSING_TOKEN").await;

    let owner = app.user_token("ws-owner@example.com").await;
    let token = ws_token(&app, &owner).await;
    assert!(token.starts_with("wst_"));
    let url = format!("ws://{}/ws?token={token}", app.addr);
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    send(&mut socket, json!({"type": "ping", "requestId": 7})).await;
    let pong = next(&mut socket).await;
    assert_eq!(
        (&pong["type"], &pong["requestId"]),
        (&json!("pong"), &json!(7))
    );

    // Used once: refused with the JSON envelope, before any upgrade.
    for url in [
        url,
        format!("ws://{}/ws?token=wst_forged", app.addr),
        format!("ws://{}/ws", app.addr),
    ] {
        match tokio_tungstenite::connect_async(&url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 401, "{url}");
                let body: Value =
                    serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap();
                assert!(
                    ["INVALID_TOKEN", "MISSING_TOKEN"]
                        .contains(&body["error"]["code"].as_str().unwrap()),
                    "{body}"
                );
            }
            other => panic!("{url} was not refused: {other:?}"),
        }
    }
}

#[tokio::test]
async fn project_subscribers_see_rest_changes_and_other_orgs_are_refused() {
    let app = TestServer::start().await;
    let owner = app.user_token("ws-a@example.com").await;
    let org = app.create_org(&owner, "A").await;
    let project = project(&app, &owner, &org).await;
    let stranger = app.user_token("ws-b@example.com").await;
    let other_org = app.create_org(&stranger, "B").await;
    let other_project = self::project(&app, &stranger, &other_org).await;

    let mut watcher = connect(&app, &owner, None).await;
    let ok = subscribe(&mut watcher, &format!("project:{project}")).await;
    assert_eq!(ok["type"], "subscribed", "{ok}");
    assert_eq!(ok["requestId"], format!("project:{project}"));

    let mut spy = connect(&app, &stranger, None).await;
    for channel in [format!("project:{project}"), format!("org:{org}")] {
        let refused = subscribe(&mut spy, &channel).await;
        assert_eq!(refused["type"], "error", "{refused}");
        assert_eq!(refused["payload"]["code"], "NOT_FOUND");
    }
    // An id that does not exist answers the same.
    let unknown = subscribe(&mut spy, &format!("task:{}", uuid::Uuid::now_v7())).await;
    assert_eq!(unknown["payload"]["code"], "NOT_FOUND");
    assert_eq!(
        subscribe(&mut spy, &format!("project:{other_project}")).await["type"],
        "subscribed"
    );

    let id = task(&app, &owner, &project, "Write the launch post").await;
    let created = next_of(&mut watcher, "task_created").await;
    assert_eq!(created["payload"]["taskId"], id.as_str());
    assert_eq!(created["payload"]["title"], "Write the launch post");
    assert!(created["id"].as_str().unwrap().parse::<u64>().is_ok());
    assert_eq!(created["org"], org.as_str());
    let channels = created["channels"].as_array().unwrap();
    for channel in [
        format!("org:{org}"),
        format!("project:{project}"),
        format!("task:{id}"),
    ] {
        assert!(
            channels.contains(&json!(channel)),
            "{channel} missing: {created}"
        );
    }

    let resp = app
        .authed(Method::PATCH, &format!("/api/v1/tasks/{id}"), &owner)
        .header("if-match", "1")
        .json(&json!({"status": "in_progress"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let updated = next_of(&mut watcher, "task_updated").await;
    assert_eq!(
        (&updated["payload"]["taskId"], &updated["payload"]["status"]),
        (&json!(id), &json!("in_progress"))
    );

    // The bus has one order: once the spy sees its own org's task, it
    // would already have seen anything of org A.
    let own = task(&app, &stranger, &other_project, "Mine").await;
    let first = next(&mut spy).await;
    assert_eq!(first["type"], "task_created", "{first}");
    assert_eq!(
        first["payload"]["taskId"],
        own.as_str(),
        "org A's events leaked: {first}"
    );
}

/// One transaction's events (a task template applied) reach each
/// subscriber in order and once each: first with one channel that carries
/// them (queued as a run, listener by listener), then with a second
/// connection on two channels that both carry them (event by event).
#[tokio::test]
async fn a_burst_from_one_transaction_arrives_in_order_once_each() {
    let app = TestServer::start().await;
    let owner = app.user_token("ws-burst@example.com").await;
    let org = app.create_org(&owner, "Burst").await;
    let project = project(&app, &owner, &org).await;
    let titles: Vec<String> = (1..=5).map(|n| format!("Step {n}")).collect();
    let tasks: Vec<Value> = titles
        .iter()
        .enumerate()
        .map(|(n, title)| json!({"key": format!("s{n}"), "title": title}))
        .collect();
    let template = app
        .call(
            Method::POST,
            &format!("/api/v1/orgs/{org}/templates"),
            &owner,
            json!({"name": "Five steps", "tasks": tasks}),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let apply = format!("/api/v1/templates/{template}/apply");
    let into_project = json!({"projectId": project});
    let mut on_project = connect(&app, &owner, None).await;
    subscribe(&mut on_project, &format!("project:{project}")).await;
    app.call(Method::POST, &apply, &owner, into_project.clone(), 201)
        .await;
    let mut on_both = connect(&app, &owner, None).await;
    subscribe(&mut on_both, &format!("project:{project}")).await;
    subscribe(&mut on_both, &format!("org:{org}")).await;
    app.call(Method::POST, &apply, &owner, into_project.clone(), 201)
        .await;
    let after = task(&app, &owner, &project, "After the bursts").await;

    let twice: Vec<String> = titles.iter().chain(&titles).cloned().collect();
    for (socket, expected) in [(&mut on_project, twice), (&mut on_both, titles.clone())] {
        let mut seen = Vec::new();
        let mut last_id = 0u64;
        loop {
            let created = next_of(socket, "task_created").await;
            let id: u64 = created["id"].as_str().unwrap().parse().unwrap();
            assert!(id > last_id, "out of order: {id} after {last_id}");
            last_id = id;
            if created["payload"]["taskId"] == after.as_str() {
                break;
            }
            seen.push(created["payload"]["title"].as_str().unwrap().to_owned());
        }
        seen.sort();
        let mut expected = expected;
        expected.sort();
        assert_eq!(seen, expected, "each of the bursts' tasks once");
    }
}

#[tokio::test]
async fn presence_and_locks_reach_the_other_subscribers() {
    let app = TestServer::start().await;
    let owner = app.user_token("ws-lock-a@example.com").await;
    let org = app.create_org(&owner, "A").await;
    let colleague = app.user_token("ws-lock-b@example.com").await;
    app.add_member(&owner, &org, "ws-lock-b@example.com", &colleague, "member")
        .await;
    let viewer = app.user_token("ws-lock-c@example.com").await;
    app.add_member(&owner, &org, "ws-lock-c@example.com", &viewer, "viewer")
        .await;
    let project = project(&app, &owner, &org).await;
    let id = task(&app, &owner, &project, "Shared doc").await;

    let mut a = connect(&app, &owner, None).await;
    let mut b = connect(&app, &colleague, None).await;
    assert_eq!(
        subscribe(&mut b, &format!("task:{id}")).await["type"],
        "subscribed"
    );
    // A subscriber to a task is first told who is there: nobody yet.
    let snapshot = next(&mut b).await;
    assert_eq!(
        (&snapshot["type"], &snapshot["payload"]["users"]),
        (&json!("presence_update"), &json!([])),
        "{snapshot}"
    );
    send(
        &mut a,
        json!({"type": "presence", "payload": {"taskId": id, "action": "editing"}}),
    )
    .await;
    let presence = next_of(&mut b, "presence_update").await;
    assert_eq!(presence["payload"]["action"], "editing");
    assert_eq!(presence["payload"]["user"]["type"], "user");
    // Someone arriving later learns who is already there.
    let mut late = connect(&app, &colleague, None).await;
    subscribe(&mut late, &format!("task:{id}")).await;
    let snapshot = next(&mut late).await;
    let users = snapshot["payload"]["users"].as_array().unwrap();
    assert_eq!(users.len(), 1, "{snapshot}");
    assert_eq!(users[0]["action"], "editing");
    assert_eq!(users[0]["user"], presence["payload"]["user"]);

    send(&mut a, json!({"type": "lock_acquire", "payload": {"taskId": id, "ttlSeconds": 60}, "requestId": "l1"})).await;
    let acquired = next(&mut a).await;
    assert_eq!(
        (&acquired["type"], &acquired["requestId"]),
        (&json!("lock_acquired"), &json!("l1")),
        "{acquired}"
    );
    let seen = next_of(&mut b, "lock_acquired").await;
    assert_eq!(seen["payload"]["taskId"], id.as_str());

    send(
        &mut b,
        json!({"type": "lock_acquire", "payload": {"taskId": id}, "requestId": "l2"}),
    )
    .await;
    let refused = next_of(&mut b, "error").await;
    assert_eq!(
        (&refused["payload"]["code"], &refused["requestId"]),
        (&json!("LOCKED"), &json!("l2")),
        "{refused}"
    );

    // A viewer may watch but not lock.
    let mut v = connect(&app, &viewer, None).await;
    send(
        &mut v,
        json!({"type": "lock_release", "payload": {"taskId": id}}),
    )
    .await;
    assert_eq!(next(&mut v).await["payload"]["code"], "FORBIDDEN");

    send(
        &mut a,
        json!({"type": "lock_release", "payload": {"taskId": id}}),
    )
    .await;
    assert_eq!(next(&mut a).await["type"], "lock_released");
    assert_eq!(
        next_of(&mut b, "lock_released").await["payload"]["taskId"],
        id.as_str()
    );

    // Leaving tells the others.
    a.close(None).await.unwrap();
    let left = next_of(&mut b, "presence_update").await;
    assert_eq!(left["payload"]["action"], "left");
}

#[tokio::test]
async fn a_reconnecting_client_receives_what_it_missed() {
    let app = TestServer::start().await;
    let owner = app.user_token("ws-replay@example.com").await;
    let org = app.create_org(&owner, "A").await;
    let project = project(&app, &owner, &org).await;

    let mut first = connect(&app, &owner, None).await;
    subscribe(&mut first, &format!("org:{org}")).await;
    task(&app, &owner, &project, "seen").await;
    let seen = next_of(&mut first, "task_created").await;
    let last = seen["id"].as_str().unwrap().to_owned();
    drop(first);

    let missed = [
        task(&app, &owner, &project, "missed 1").await,
        task(&app, &owner, &project, "missed 2").await,
    ];
    let mut again = connect(&app, &owner, Some(&last)).await;
    assert_eq!(
        subscribe(&mut again, &format!("org:{org}")).await["type"],
        "subscribed"
    );
    for id in &missed {
        let replayed = next_of(&mut again, "task_created").await;
        assert_eq!(replayed["payload"]["taskId"], id.as_str(), "{replayed}");
    }
    // Live events follow, none repeated.
    let live = task(&app, &owner, &project, "live").await;
    assert_eq!(
        next_of(&mut again, "task_created").await["payload"]["taskId"],
        live.as_str()
    );

    // An id the bus no longer (or never) knew cannot be replayed completely.
    let mut lost = connect(&app, &owner, None).await;
    send(&mut lost, json!({"type": "subscribe", "payload": {"channel": format!("org:{org}"), "lastEventId": "1"}})).await;
    assert_eq!(next(&mut lost).await["type"], "subscribed");
    assert_eq!(
        next(&mut lost).await["payload"]["code"],
        "REPLAY_UNAVAILABLE"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_while_others_keep_up() {
    let app = TestServer::start().await;
    let owner = app.user_token("ws-slow@example.com").await;
    let org = app.create_org(&owner, "A").await;
    let mut slow = connect(&app, &owner, None).await;
    subscribe(&mut slow, &format!("org:{org}")).await;
    let mut fast = connect(&app, &owner, None).await;
    subscribe(&mut fast, &format!("org:{org}")).await;

    // 32 MiB of events: more than the socket buffers and the queue hold.
    // They go out in rounds the fast client reads before the next (a
    // reader slower than the publisher is the case under test, not this).
    let filler = "x".repeat(1000);
    let org_id: uuid::Uuid = org.parse().unwrap();
    let round = 128;
    for start in (0..32_768).step_by(round) {
        for n in start..start + round {
            app.state.realtime().publish(cadre_realtime::Notice::new(
                "notification",
                cadre_realtime::Scope::org(org_id),
                json!({"n": n, "filler": filler}),
            ));
        }
        for n in start..start + round {
            let msg = next(&mut fast).await;
            assert_eq!(
                msg["payload"]["n"], n,
                "the fast client missed or reordered events"
            );
        }
    }

    // The slow one gets what was queued, then a close saying why.
    let close = loop {
        match tokio::time::timeout(PATIENCE, slow.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(frame))) => break frame.expect("a close frame with a code"),
            Some(Ok(_)) => {}
            other => panic!("closed without a close frame: {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Library(4008), "{close:?}");
    assert!(close.reason.contains("slow consumer"), "{close:?}");
}

#[tokio::test]
async fn bad_messages_get_errors_and_oversize_ones_close_the_connection() {
    let app = TestServer::start().await;
    let owner = app.user_token("ws-bad@example.com").await;
    let mut socket = connect(&app, &owner, None).await;
    for (msg, code) in [
        ("{not json", "VALIDATION_ERROR"),
        (r#"{"type": "teleport"}"#, "VALIDATION_ERROR"),
        (
            r#"{"type": "subscribe", "payload": {"channel": "galaxy:1"}}"#,
            "VALIDATION_ERROR",
        ),
        (
            r#"{"type": "subscribe", "payload": {}}"#,
            "VALIDATION_ERROR",
        ),
        (
            r#"{"type": "lock_acquire", "payload": {"taskId": "00000000-0000-0000-0000-000000000000", "ttlSeconds": 99999}}"#,
            "VALIDATION_ERROR",
        ),
        (
            r#"{"type": "approve", "payload": {"approvalId": "0190b5a0-0000-7000-8000-000000000000"}}"#,
            "NOT_FOUND",
        ),
    ] {
        socket.send(Message::Text(msg.into())).await.unwrap();
        let error = next(&mut socket).await;
        assert_eq!(
            (&error["type"], &error["payload"]["code"]),
            (&json!("error"), &json!(code)),
            "{msg}: {error}"
        );
        assert!(!error["payload"]["message"].as_str().unwrap().is_empty());
    }
    socket
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(
        next(&mut socket).await["payload"]["code"],
        "VALIDATION_ERROR"
    );
    // Still serving after all that.
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next(&mut socket).await["type"], "pong");
    // A flood is answered with errors, not handled.
    for _ in 0..80 {
        send(&mut socket, json!({"type": "ping"})).await;
    }
    let mut refused = 0;
    for _ in 0..80 {
        let reply = next(&mut socket).await;
        if reply["payload"]["code"] == "RATE_LIMIT_EXCEEDED" {
            refused += 1;
        }
    }
    assert!(refused >= 20, "{refused} of 80 refused");

    let huge = format!(
        r#"{{"type": "ping", "payload": {{"pad": "{}"}}}}"#,
        "x".repeat(1 << 20)
    );
    let _ = socket.send(Message::Text(huge.into())).await;
    let close = loop {
        match tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            // The server may drop the connection as it closes.
            Some(Err(_)) | None => break None,
        }
    };
    if let Some(frame) = close {
        assert_eq!(frame.code, CloseCode::Size, "{frame:?}");
    }
    // The server is fine.
    let mut other = connect(&app, &owner, None).await;
    send(&mut other, json!({"type": "ping"})).await;
    assert_eq!(next(&mut other).await["type"], "pong");
}

#[tokio::test]
async fn execution_events_stream_over_sse_and_honour_last_event_id() {
    let app = TestServer::start().await;
    let owner = app.user_token("sse@example.com").await;
    let org = app.create_org(&owner, "A").await;
    let agent = app
        .agent(
            &owner,
            &org,
            json!({"name": "Writer", "instructions": "x", "model": "gpt-4o-mini"}),
        )
        .await;
    let execution = app.execute(&owner, &agent, json!({"title": "Draft"})).await;
    let id = execution["id"].as_str().unwrap().to_owned();

    let resp = app
        .authed(
            Method::GET,
            &format!("/api/v1/executions/{id}/events"),
            &owner,
        )
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
    let mut stream = resp.bytes_stream();
    let mut text = String::new();
    let mut read_until = async |needle: &str, text: &mut String| {
        while !text.contains(needle) {
            let chunk = tokio::time::timeout(PATIENCE, stream.next())
                .await
                .expect("an event in time")
                .expect("the stream is open")
                .unwrap();
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    };
    read_until("\"status\":\"queued\"", &mut text).await;
    assert!(text.contains("event: execution_update"), "{text}");

    // A cancel through the API shows up on the stream.
    let resp = app
        .authed(
            Method::POST,
            &format!("/api/v1/executions/{id}/cancel"),
            &owner,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    read_until("\"control\":\"cancel\"", &mut text).await;

    // Malformed Last-Event-ID: a clear 400.
    let resp = app
        .authed(
            Method::GET,
            &format!("/api/v1/executions/{id}/events"),
            &owner,
        )
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, "VALIDATION_ERROR").await;
}

#[tokio::test]
async fn with_redis_an_event_caused_on_one_instance_reaches_a_client_of_another() {
    let Some(redis) = cadre_config::testing::redis_url() else {
        eprintln!(
            "skipping Redis test: set CADRE_TEST_REDIS_URL (for example redis://127.0.0.1:6379) to run it"
        );
        return;
    };
    let a = TestServer::start_with(&[("CADRE_REDIS_URL", &redis)]).await;
    let b = TestServer::start_with(&[("CADRE_REDIS_URL", &redis)]).await;
    assert_eq!(a.state.realtime().backend(), "redis");
    // Each test server has its own database; the same account and org
    // exist only on `a`, so `b`'s client watches an org of its own and `a`
    // publishes into it the way a worker process would.
    let owner = b.user_token("ws-redis@example.com").await;
    let org = b.create_org(&owner, "Shared").await;
    let mut client = connect(&b, &owner, None).await;
    assert_eq!(
        subscribe(&mut client, &format!("org:{org}")).await["type"],
        "subscribed"
    );

    let org_id: uuid::Uuid = org.parse().unwrap();
    a.state.realtime().publish(cadre_realtime::Notice::new(
        "notification",
        cadre_realtime::Scope::org(org_id),
        json!({"from": "instance a"}),
    ));
    let seen = next_of(&mut client, "notification").await;
    assert_eq!(seen["payload"]["from"], "instance a");
    // Ids come from Redis: both instances agree on them.
    let id: u64 = seen["id"].as_str().unwrap().parse().unwrap();
    tokio::time::timeout(PATIENCE, async {
        while a.state.realtime().head() < id {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("instance a saw its own event come back through Redis");

    // A REST change on `b` reaches `b`'s client through Redis too.
    let project = project(&b, &owner, &org).await;
    let id = task(&b, &owner, &project, "via redis").await;
    assert_eq!(
        next_of(&mut client, "task_created").await["payload"]["taskId"],
        id.as_str()
    );
}
