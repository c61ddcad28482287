//! The work graph over HTTP: tasks with filters and a tree, inputs and
//! outputs, versions and rollback, edit locks (423), stale writes (412),
//! dependencies with cycle refusal (409 `CYCLE`), the graph around a task,
//! soft delete and the activity feed.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestServer, body, expect_error};

struct Ctx {
    app: TestServer,
    token: String,
    org: String,
    project: String,
}

impl Ctx {
    async fn new() -> Ctx {
        let app = TestServer::start().await;
        let token = app.user_token("owner@example.com").await;
        let org = app.create_org(&token, "Acme").await;
        let (_, _, project) = body(
            app.authed(
                Method::POST,
                &format!("/api/v1/orgs/{org}/projects"),
                &token,
            )
            .json(&json!({"name": "Launch"}))
            .send()
            .await
            .unwrap(),
        )
        .await;
        let project = project["data"]["id"].as_str().unwrap().to_owned();
        Ctx {
            app,
            token,
            org,
            project,
        }
    }

    async fn send(&self, method: Method, path: &str, json: Option<Value>) -> reqwest::Response {
        let mut req = self.app.authed(method, path, &self.token);
        if let Some(json) = json {
            req = req.json(&json);
        }
        req.send().await.unwrap()
    }

    async fn ok(&self, method: Method, path: &str, json: Option<Value>) -> Value {
        let (status, _, resp) = body(self.send(method.clone(), path, json).await).await;
        assert!(status.is_success(), "{method} {path}: {status} {resp}");
        resp
    }

    async fn task(&self, json: Value) -> String {
        let resp = self
            .ok(
                Method::POST,
                &format!("/api/v1/projects/{}/tasks", self.project),
                Some(json),
            )
            .await;
        resp["data"]["id"].as_str().unwrap().to_owned()
    }
}

/// The string `key` of every item of a list response's `data`.
fn strings<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[key].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn tasks_are_listed_filtered_searched_and_nested() {
    let c = Ctx::new().await;
    let parent = c
        .task(json!({"title": "Plan the launch", "priority": 8}))
        .await;
    let child = c
        .task(
            json!({"title": "Write the press release", "parentId": parent, "status": "in_progress",
                     "description": "Mention the 50% discount"}),
        )
        .await;
    c.task(json!({"title": "Book the venue", "priority": 2}))
        .await;
    let list = |query: &str| {
        let path = format!("/api/v1/projects/{}/tasks{query}", c.project);
        let c = &c;
        async move { c.ok(Method::GET, &path, None).await }
    };
    let all = list("").await;
    assert_eq!(all["pagination"]["totalItems"], 3);
    assert_eq!(
        all["data"][0]["title"], "Plan the launch",
        "highest priority first"
    );
    assert_eq!(
        all["data"][0]["status"], "draft",
        "the project's first state"
    );
    let titles =
        |v: &Value| -> Vec<String> { strings(v, "title").into_iter().map(str::to_owned).collect() };
    assert_eq!(
        titles(&list("?status=in_progress").await),
        ["Write the press release"]
    );
    assert_eq!(titles(&list("?q=PRESS").await), ["Write the press release"]);
    assert_eq!(
        titles(&list("?q=50%25").await),
        ["Write the press release"],
        "a literal %"
    );
    assert!(titles(&list("?q=%25%25%25x").await).is_empty());
    assert_eq!(list("?parentId=root").await["pagination"]["totalItems"], 2);
    assert_eq!(
        titles(&list(&format!("?parentId={parent}")).await),
        ["Write the press release"]
    );
    assert_eq!(list("?assignee=none").await["pagination"]["totalItems"], 3);
    let children = c
        .ok(
            Method::GET,
            &format!("/api/v1/tasks/{parent}/children"),
            None,
        )
        .await;
    assert_eq!(children["data"][0]["id"], child.as_str());

    for (query, field) in [
        ("?assignee=robot:1", "assignee"),
        ("?parentId=nope", "parentId"),
    ] {
        let resp = c
            .send(
                Method::GET,
                &format!("/api/v1/projects/{}/tasks{query}", c.project),
                None,
            )
            .await;
        let err = expect_error(resp, 400, "VALIDATION_ERROR").await;
        assert_eq!(err["error"]["field"], field);
    }
    let bad = [
        (json!({"title": ""}), "title"),
        (json!({"title": "x", "priority": 11}), "priority"),
        (json!({"title": "x", "status": "shipped"}), "status"),
        (json!({"title": "x", "position": {"x": 1}}), "position"),
        (
            json!({"title": "x", "inputs": [{"type": "url", "url": "ftp://x"}]}),
            "inputs[0].url",
        ),
        (
            json!({"title": "x", "inputs": [{"type": "text"}]}),
            "inputs[0].text",
        ),
    ];
    for (input, field) in bad {
        let resp = c
            .send(
                Method::POST,
                &format!("/api/v1/projects/{}/tasks", c.project),
                Some(input.clone()),
            )
            .await;
        let (status, _, err) = body(resp).await;
        assert!(matches!(status.as_u16(), 400 | 422), "{input}: {err}");
        assert_eq!(err["error"]["field"], field, "{input}: {err}");
    }
    // A task cannot become its own ancestor.
    let resp = c
        .send(
            Method::PATCH,
            &format!("/api/v1/tasks/{parent}"),
            Some(json!({"parentId": child})),
        )
        .await;
    expect_error(resp, 409, "CYCLE").await;
}

#[tokio::test]
async fn versions_roll_back_and_stale_writes_get_412() {
    let c = Ctx::new().await;
    let id = c
        .task(json!({"title": "Weekly report", "inputs": [{"type": "text", "label": "scope", "text": "sales"}]}))
        .await;
    let path = format!("/api/v1/tasks/{id}");
    let v2 = c
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"title": "Monthly report", "version": 1})),
        )
        .await;
    assert_eq!(v2["data"]["version"], 2);
    // Against version 1 again: stale.
    let resp = c
        .send(
            Method::PATCH,
            &path,
            Some(json!({"title": "Lost update", "version": 1})),
        )
        .await;
    let err = expect_error(resp, 412, "PRECONDITION_FAILED").await;
    assert_eq!(err["error"]["details"]["currentVersion"], 2);
    let resp = c
        .app
        .authed(Method::PATCH, &path, &c.token)
        .header("if-match", "\"1\"")
        .json(&json!({"priority": 1}))
        .send()
        .await
        .unwrap();
    expect_error(resp, 412, "PRECONDITION_FAILED").await;
    let input = c
        .ok(
            Method::POST,
            &format!("{path}/inputs"),
            Some(json!({"type": "url", "label": "dashboard", "url": "https://example.com/d", "position": 0})),
        )
        .await;
    assert_eq!(input["data"]["position"], 0, "inserted first");

    let versions = c.ok(Method::GET, &format!("{path}/versions"), None).await;
    let changes = strings(&versions, "changeType");
    assert_eq!(changes, ["input_added", "updated", "created"]);
    let v1 = c.ok(Method::GET, &format!("{path}/versions/1"), None).await;
    assert_eq!(v1["data"]["snapshot"]["title"], "Weekly report");

    let rolled = c
        .ok(Method::POST, &format!("{path}/rollback/1"), None)
        .await;
    assert_eq!(rolled["data"]["version"], 4);
    assert_eq!(rolled["data"]["title"], "Weekly report");
    let inputs = rolled["data"]["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 1, "the input added later is gone");
    assert_eq!(inputs[0]["content"]["text"], "sales");
    let v4 = c.ok(Method::GET, &format!("{path}/versions/4"), None).await;
    assert_eq!(v4["data"]["snapshot"], v1["data"]["snapshot"], "round trip");
    let resp = c
        .send(Method::POST, &format!("{path}/rollback/99"), None)
        .await;
    expect_error(resp, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn a_lock_refuses_other_members_with_423_until_released_or_expired() {
    let c = Ctx::new().await;
    let org = c.org.clone();
    let bob = c.app.user_token("bob@example.com").await;
    c.app
        .add_member(&c.token, &org, "bob@example.com", &bob, "member")
        .await;
    let id = c.task(json!({"title": "Pricing page"})).await;
    let path = format!("/api/v1/tasks/{id}");
    let lock = c
        .ok(
            Method::POST,
            &format!("{path}/lock"),
            Some(json!({"ttlSeconds": 1})),
        )
        .await;
    assert_eq!(lock["data"]["holder"]["type"], "user");
    let bob_patch = || {
        c.app
            .authed(Method::PATCH, &path, &bob)
            .json(&json!({"title": "Bob's"}))
            .send()
    };
    let err = expect_error(bob_patch().await.unwrap(), 423, "LOCKED").await;
    assert_eq!(
        err["error"]["details"]["holder"]["id"],
        lock["data"]["holder"]["id"]
    );
    let resp = c
        .app
        .authed(Method::POST, &format!("{path}/lock"), &bob)
        .send()
        .await
        .unwrap();
    expect_error(resp, 423, "LOCKED").await;
    let shown = c.ok(Method::GET, &path, None).await;
    assert_eq!(shown["data"]["lock"]["holder"], lock["data"]["holder"]);
    // The holder writes through it.
    c.ok(Method::PATCH, &path, Some(json!({"priority": 7})))
        .await;
    // Expired: it blocks no one.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _, resp) = body(bob_patch().await.unwrap()).await;
    assert_eq!(status, 200, "{resp}");
    assert!(resp["data"]["lock"].is_null());
    // Bob locks, then releases; the owner can write again.
    let resp = c
        .app
        .authed(Method::POST, &format!("{path}/lock"), &bob)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = c
        .send(Method::PATCH, &path, Some(json!({"title": "Owner's"})))
        .await;
    expect_error(resp, 423, "LOCKED").await;
    let resp = c.send(Method::DELETE, &format!("{path}/lock"), None).await;
    expect_error(resp, 423, "LOCKED").await;
    let resp = c
        .app
        .authed(Method::DELETE, &format!("{path}/lock"), &bob)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    c.ok(Method::PATCH, &path, Some(json!({"title": "Owner's"})))
        .await;
}

#[tokio::test]
async fn dependencies_refuse_cycles_naming_the_path_and_show_the_graph() {
    let c = Ctx::new().await;
    let a = c.task(json!({"title": "Research"})).await;
    let b = c.task(json!({"title": "Draft"})).await;
    let d = c.task(json!({"title": "Publish"})).await;
    let depend = |task: &str, on: &str| {
        let path = format!("/api/v1/tasks/{task}/dependencies");
        let json = json!({"dependsOn": on});
        let c = &c;
        async move { c.send(Method::POST, &path, Some(json)).await }
    };
    let (status, _, edge_ab) = body(depend(&b, &a).await).await;
    assert_eq!(status, 201, "{edge_ab}");
    assert_eq!(edge_ab["data"]["dependsOn"], a.as_str());
    assert_eq!(depend(&d, &b).await.status(), 201);
    let err = expect_error(depend(&a, &d).await, 409, "CYCLE").await;
    assert_eq!(
        err["error"]["details"]["path"],
        json!([a, d, b, a]),
        "{err}"
    );
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"Research\" → \"Publish\" → \"Draft\" → \"Research\""),
        "{message}"
    );
    expect_error(depend(&a, &a).await, 409, "CYCLE").await;
    expect_error(depend(&b, &a).await, 409, "CONFLICT").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let err = expect_error(depend(&b, &unknown).await, 404, "NOT_FOUND").await;
    assert_eq!(err["error"]["field"], "dependsOn");

    let graph = c
        .ok(
            Method::GET,
            &format!("/api/v1/tasks/{b}/dependencies"),
            None,
        )
        .await;
    assert_eq!(graph["data"]["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(graph["data"]["edges"].as_array().unwrap().len(), 2);
    assert_eq!(graph["data"]["ready"], false);
    assert_eq!(graph["data"]["blockedBy"], json!([a]));
    c.ok(
        Method::PATCH,
        &format!("/api/v1/tasks/{a}"),
        Some(json!({"status": "complete"})),
    )
    .await;
    let graph = c
        .ok(
            Method::GET,
            &format!("/api/v1/tasks/{b}/dependencies"),
            None,
        )
        .await;
    assert_eq!(graph["data"]["ready"], true, "{graph}");
    let done: Vec<bool> = graph["data"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["done"].as_bool().unwrap())
        .collect();
    assert_eq!(done, [true, false, false]);

    // Removing an edge allows what it blocked.
    let edge = edge_ab["data"]["id"].as_str().unwrap();
    let resp = c
        .send(
            Method::DELETE,
            &format!("/api/v1/tasks/{b}/dependencies/{edge}"),
            None,
        )
        .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(depend(&a, &d).await.status(), 201, "no cycle any more");

    let events = c
        .ok(Method::GET, &format!("/api/v1/orgs/{}/events", c.org), None)
        .await;
    let kinds = strings(&events, "type");
    for kind in [
        "task_created",
        "task_updated",
        "dependency_added",
        "dependency_removed",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
}

#[tokio::test]
async fn a_projects_graph_shows_its_tasks_its_edges_and_the_far_ends_elsewhere() {
    let c = Ctx::new().await;
    let research = c.task(json!({"title": "Research"})).await;
    let draft = c.task(json!({"title": "Draft"})).await;
    let alone = c.task(json!({"title": "Alone"})).await;
    let other = c
        .ok(
            Method::POST,
            &format!("/api/v1/orgs/{}/projects", c.org),
            Some(json!({"name": "Legal"})),
        )
        .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let task_in_other = |title: &str| {
        let (c, path) = (&c, format!("/api/v1/projects/{other}/tasks"));
        let json = json!({ "title": title });
        async move {
            c.ok(Method::POST, &path, Some(json)).await["data"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let review = task_in_other("Legal review").await;
    let unrelated = task_in_other("Unrelated").await;
    for (task, on) in [
        (&draft, &research),
        (&review, &draft),
        (&unrelated, &review),
    ] {
        c.ok(
            Method::POST,
            &format!("/api/v1/tasks/{task}/dependencies"),
            Some(json!({"dependsOn": on})),
        )
        .await;
    }
    let graph = c
        .ok(
            Method::GET,
            &format!("/api/v1/projects/{}/graph", c.project),
            None,
        )
        .await;
    let nodes = json!({"data": graph["data"]["nodes"]});
    let ids = strings(&nodes, "id");
    assert_eq!(
        ids,
        [
            research.as_str(),
            draft.as_str(),
            alone.as_str(),
            review.as_str()
        ],
        "the project's tasks, then the other project's task its edge reaches: {graph}"
    );
    let edges: Vec<(String, String)> = graph["data"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["taskId"].as_str().unwrap().to_owned(),
                e["dependsOn"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        edges,
        [
            (draft.clone(), research.clone()),
            (review.clone(), draft.clone())
        ],
        "the edge between two other-project tasks is not this project's"
    );
    assert_eq!(graph["data"]["truncated"], false);
    assert_eq!(graph["data"]["nodes"][3]["projectId"], other.as_str());

    // A deleted task leaves the graph with its edges.
    let resp = c
        .send(Method::DELETE, &format!("/api/v1/tasks/{draft}"), None)
        .await;
    assert_eq!(resp.status(), 204);
    let graph = c
        .ok(
            Method::GET,
            &format!("/api/v1/projects/{}/graph", c.project),
            None,
        )
        .await;
    assert_eq!(graph["data"]["edges"], json!([]), "{graph}");
    assert_eq!(graph["data"]["nodes"].as_array().unwrap().len(), 2);
    let unknown = uuid::Uuid::now_v7();
    expect_error(
        c.send(
            Method::GET,
            &format!("/api/v1/projects/{unknown}/graph"),
            None,
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn a_deleted_task_keeps_its_executions_outputs_and_versions_readable() {
    let c = Ctx::new().await;
    let org = c.org.clone();
    let agent = c
        .ok(
            Method::POST,
            &format!("/api/v1/orgs/{org}/agents"),
            Some(json!({"name": "Writer", "instructions": "x", "model": "gpt-4o-mini"})),
        )
        .await;
    let agent = agent["data"]["id"].as_str().unwrap().to_owned();
    let id = c
        .task(json!({"title": "Doomed", "assignee": {"type": "agent", "id": agent}}))
        .await;
    let output = c
        .ok(
            Method::POST,
            &format!("/api/v1/tasks/{id}/outputs"),
            Some(json!({"type": "structured", "label": "numbers", "content": {"a": 1}})),
        )
        .await;
    assert_eq!(output["data"]["content"]["a"], 1);
    let execution = c
        .ok(
            Method::POST,
            &format!("/api/v1/tasks/{id}/execute"),
            Some(json!({})),
        )
        .await;
    let execution = execution["data"]["id"].as_str().unwrap().to_owned();
    let resp = c
        .send(Method::DELETE, &format!("/api/v1/tasks/{id}"), None)
        .await;
    assert_eq!(resp.status(), 204);
    let resp = c
        .send(Method::GET, &format!("/api/v1/tasks/{id}"), None)
        .await;
    expect_error(resp, 404, "NOT_FOUND").await;
    let ex = c
        .ok(
            Method::GET,
            &format!("/api/v1/executions/{execution}"),
            None,
        )
        .await;
    assert_eq!(ex["data"]["taskId"], id.as_str());
    c.ok(
        Method::GET,
        &format!("/api/v1/executions/{execution}/trace"),
        None,
    )
    .await;
    let listed = c
        .ok(
            Method::GET,
            &format!("/api/v1/orgs/{org}/executions?taskId={id}"),
            None,
        )
        .await;
    assert_eq!(listed["pagination"]["totalItems"], 1);
    let tasks = c
        .ok(
            Method::GET,
            &format!("/api/v1/projects/{}/tasks", c.project),
            None,
        )
        .await;
    assert_eq!(tasks["pagination"]["totalItems"], 0);
}

#[tokio::test]
async fn a_template_creates_a_task_tree_with_dependencies_and_agents() {
    let c = Ctx::new().await;
    let listed = c.ok(Method::GET, "/api/v1/templates", None).await;
    let ids = strings(&listed, "id");
    for id in [
        "product-launch",
        "weekly-report",
        "pr-review-pipeline",
        "content-calendar",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let analyst = c
        .ok(
            Method::POST,
            &format!("/api/v1/orgs/{}/agents", c.org),
            Some(json!({"templateId": "omnidash-analytics", "model": "gpt-4o-mini"})),
        )
        .await;
    let analyst = analyst["data"]["id"].as_str().unwrap().to_owned();
    let applied = c
        .ok(
            Method::POST,
            "/api/v1/templates/weekly-report/apply",
            Some(json!({"projectId": c.project})),
        )
        .await;
    let tasks = applied["data"]["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 3);
    assert_eq!(applied["data"]["dependencies"], 3);
    assert_eq!(
        applied["data"]["unassigned"],
        json!(["companyos-anomaly-detection", "omnidash-content-creator"])
    );
    let by_title = |t: &str| {
        tasks
            .iter()
            .find(|x| x["title"].as_str().unwrap().contains(t))
            .unwrap()
            .clone()
    };
    let collect = by_title("Collect");
    assert_eq!(collect["assignee"]["id"], analyst.as_str());
    assert!(by_title("Write")["assignee"].is_null());
    let write = by_title("Write")["id"].as_str().unwrap().to_owned();
    let graph = c
        .ok(
            Method::GET,
            &format!("/api/v1/tasks/{write}/dependencies"),
            None,
        )
        .await;
    assert_eq!(graph["data"]["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(graph["data"]["edges"].as_array().unwrap().len(), 3);
    assert_eq!(graph["data"]["blockedBy"].as_array().unwrap().len(), 2);

    // An org's own template: checked like the built-in ones.
    let path = format!("/api/v1/orgs/{}/templates", c.org);
    let cyclic = json!({"name": "Loop", "tasks": [
        {"key": "a", "title": "A", "dependsOn": ["b"]},
        {"key": "b", "title": "B", "dependsOn": ["a"]}
    ]});
    let err = expect_error(
        c.send(Method::POST, &path, Some(cyclic)).await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(err["error"]["field"], "tasks");
    let own = c
        .ok(
            Method::POST,
            &path,
            Some(json!({"name": "Release", "tasks": [
                {"key": "notes", "title": "Write release notes"},
                {"key": "ship", "title": "Ship it", "dependsOn": ["notes"], "agentTemplate": "omnidash-analytics"}
            ]})),
        )
        .await;
    let own_id = own["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(own["data"]["source"], "org");
    let listed = c
        .ok(
            Method::GET,
            &format!("/api/v1/templates?orgId={}", c.org),
            None,
        )
        .await;
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == own_id.as_str())
    );
    let applied = c
        .ok(
            Method::POST,
            &format!("/api/v1/templates/{own_id}/apply"),
            Some(json!({"projectId": c.project, "agents": {"omnidash-analytics": analyst}})),
        )
        .await;
    assert_eq!(applied["data"]["dependencies"], 1);
    assert_eq!(applied["data"]["unassigned"], json!([]));
    let resp = c
        .send(
            Method::POST,
            "/api/v1/templates/no-such-template/apply",
            Some(json!({"projectId": c.project})),
        )
        .await;
    expect_error(resp, 404, "NOT_FOUND").await;
}
