//! Tenant isolation: a caller from another organization gets 404 on every
//! org-scoped route — for ids in paths and in bodies — and changes nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestServer, body};

struct World {
    org: String,
    project: String,
    key_id: String,
    owner_id: String,
    agent: String,
    execution: String,
    task: String,
    /// A second task, with an input, an output and a dependency on `task`.
    task2: String,
    input: String,
    output: String,
    dependency: String,
    /// A pending invitation to org A.
    invitation: String,
}

async fn org_a(app: &TestServer, owner: &str, owner_id: &str) -> World {
    let org = app.create_org(owner, "Org A").await;
    let resp = app
        .authed(Method::POST, &format!("/api/v1/orgs/{org}/projects"), owner)
        .json(&json!({"name": "Secret plans"}))
        .send()
        .await
        .unwrap();
    let project = body(resp).await.2["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = app
        .authed(Method::POST, "/api/v1/api-keys", owner)
        .json(&json!({"name": "a-key", "orgId": org, "scopes": ["read"]}))
        .send()
        .await
        .unwrap();
    let key_id = body(resp).await.2["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = app
        .authed(Method::POST, &format!("/api/v1/orgs/{org}/agents"), owner)
        .json(&json!({"name": "Secret agent", "instructions": "x", "model": "gpt-4o-mini"}))
        .send()
        .await
        .unwrap();
    let agent = body(resp).await.2["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = app
        .authed(
            Method::POST,
            &format!("/api/v1/agents/{agent}/execute"),
            owner,
        )
        .json(&json!({"task": {"title": "Secret task"}}))
        .send()
        .await
        .unwrap();
    let (status, _, execution) = body(resp).await;
    assert_eq!(status, 202, "{execution}");
    let task = execution["data"]["taskId"].as_str().unwrap().to_owned();
    let post = |path: String, json: Value| {
        let req = app.authed(Method::POST, &path, owner).json(&json);
        async move {
            let (status, _, resp) = body(req.send().await.unwrap()).await;
            assert_eq!(status, 201, "{path}: {resp}");
            resp["data"]["id"].as_str().unwrap().to_owned()
        }
    };
    let task2 = post(
        format!("/api/v1/projects/{project}/tasks"),
        json!({"title": "Secret follow-up", "inputs": [{"type": "text", "label": "brief", "text": "secret"}]}),
    )
    .await;
    let input = post(
        format!("/api/v1/tasks/{task2}/inputs"),
        json!({"type": "url", "label": "site", "url": "https://example.com/"}),
    )
    .await;
    let output = post(
        format!("/api/v1/tasks/{task2}/outputs"),
        json!({"type": "text", "label": "draft", "content": "secret draft"}),
    )
    .await;
    let dependency = post(
        format!("/api/v1/tasks/{task2}/dependencies"),
        json!({"dependsOn": task}),
    )
    .await;
    let resp = app
        .authed(Method::POST, &format!("/api/v1/orgs/{org}/members"), owner)
        .json(&json!({"email": "guest@example.com", "role": "member"}))
        .send()
        .await
        .unwrap();
    let invitation = body(resp).await.2["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    World {
        invitation,
        org,
        project,
        key_id,
        owner_id: owner_id.to_owned(),
        agent,
        execution: execution["data"]["id"].as_str().unwrap().to_owned(),
        task,
        task2,
        input,
        output,
        dependency,
    }
}

fn foreign_requests(a: &World) -> Vec<(Method, String, Option<Value>)> {
    let (org, project, key, user) = (&a.org, &a.project, &a.key_id, &a.owner_id);
    let (agent, execution, task, task2) = (&a.agent, &a.execution, &a.task, &a.task2);
    vec![
        (Method::GET, format!("/api/v1/orgs/{org}"), None),
        (
            Method::PATCH,
            format!("/api/v1/orgs/{org}"),
            Some(json!({"name": "pwned"})),
        ),
        (Method::DELETE, format!("/api/v1/orgs/{org}"), None),
        (Method::GET, format!("/api/v1/orgs/{org}/members"), None),
        (Method::GET, format!("/api/v1/orgs/{org}/invitations"), None),
        (
            Method::DELETE,
            format!("/api/v1/orgs/{org}/invitations/{}", a.invitation),
            None,
        ),
        (Method::GET, format!("/api/v1/orgs/{org}/usage"), None),
        (
            Method::POST,
            format!("/api/v1/orgs/{org}/members"),
            Some(json!({"email": "spy@example.com", "role": "owner"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/orgs/{org}/members/{user}"),
            Some(json!({"role": "viewer"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/orgs/{org}/members/{user}"),
            None,
        ),
        (Method::GET, format!("/api/v1/orgs/{org}/projects"), None),
        (
            Method::POST,
            format!("/api/v1/orgs/{org}/projects"),
            Some(json!({"name": "planted"})),
        ),
        (Method::GET, format!("/api/v1/projects/{project}"), None),
        (
            Method::GET,
            format!("/api/v1/projects/{project}/graph"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/projects/{project}"),
            Some(json!({"name": "pwned"})),
        ),
        (Method::DELETE, format!("/api/v1/projects/{project}"), None),
        (Method::GET, format!("/api/v1/orgs/{org}/models"), None),
        (
            Method::PUT,
            format!("/api/v1/orgs/{org}/models"),
            Some(json!({"models": []})),
        ),
        (Method::GET, format!("/api/v1/orgs/{org}/audit-log"), None),
        (
            Method::GET,
            format!("/api/v1/orgs/{org}/audit-log/verify"),
            None,
        ),
        (Method::GET, format!("/api/v1/api-keys?orgId={org}"), None),
        (
            Method::POST,
            "/api/v1/api-keys".to_owned(),
            Some(json!({"name": "spy", "orgId": org, "scopes": ["admin"]})),
        ),
        (Method::DELETE, format!("/api/v1/api-keys/{key}"), None),
        (Method::GET, format!("/api/v1/orgs/{org}/agents"), None),
        (
            Method::POST,
            format!("/api/v1/orgs/{org}/agents"),
            Some(json!({"name": "planted", "instructions": "x", "model": "gpt-4o-mini"})),
        ),
        (Method::GET, format!("/api/v1/agents/{agent}"), None),
        (
            Method::PATCH,
            format!("/api/v1/agents/{agent}"),
            Some(json!({"instructions": "pwned"})),
        ),
        (Method::DELETE, format!("/api/v1/agents/{agent}"), None),
        (
            Method::GET,
            format!("/api/v1/agents/{agent}/versions"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/agents/{agent}/versions/1"),
            None,
        ),
        (Method::GET, format!("/api/v1/agents/{agent}/metrics"), None),
        (
            Method::POST,
            format!("/api/v1/agents/{agent}/execute"),
            Some(json!({"task": {"title": "planted"}})),
        ),
        (
            Method::POST,
            format!("/api/v1/tasks/{task}/execute"),
            Some(json!({})),
        ),
        (Method::GET, format!("/api/v1/tasks/{task}"), None),
        (Method::GET, format!("/api/v1/orgs/{org}/executions"), None),
        (Method::GET, format!("/api/v1/executions/{execution}"), None),
        (
            Method::GET,
            format!("/api/v1/executions/{execution}/trace"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/executions/{execution}/trace/verify"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/executions/{execution}/events"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/executions/{execution}/pause"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/executions/{execution}/resume"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/executions/{execution}/cancel"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/executions/{execution}/input"),
            Some(json!({"answer": "x"})),
        ),
        (
            Method::POST,
            format!("/api/v1/executions/{execution}/fork"),
            Some(json!({"fromStep": 0})),
        ),
        (Method::GET, format!("/api/v1/orgs/{org}/approvals"), None),
        (
            Method::GET,
            format!("/api/v1/projects/{project}/tasks"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{project}/tasks"),
            Some(json!({"title": "planted"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/tasks/{task2}"),
            Some(json!({"title": "pwned"})),
        ),
        (Method::DELETE, format!("/api/v1/tasks/{task2}"), None),
        (Method::GET, format!("/api/v1/tasks/{task2}/children"), None),
        (Method::GET, format!("/api/v1/tasks/{task2}/versions"), None),
        (
            Method::GET,
            format!("/api/v1/tasks/{task2}/versions/1"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/tasks/{task2}/rollback/1"),
            None,
        ),
        (Method::POST, format!("/api/v1/tasks/{task2}/lock"), None),
        (Method::DELETE, format!("/api/v1/tasks/{task2}/lock"), None),
        (
            Method::POST,
            format!("/api/v1/tasks/{task2}/inputs"),
            Some(json!({"type": "text", "text": "planted"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/tasks/{task2}/inputs/{}", a.input),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/tasks/{task2}/outputs"),
            Some(json!({"type": "text", "label": "x", "content": "planted"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/tasks/{task2}/outputs/{}", a.output),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/tasks/{task2}/dependencies"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/tasks/{task}/dependencies"),
            Some(json!({"dependsOn": task2})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/tasks/{task2}/dependencies/{}", a.dependency),
            None,
        ),
        (Method::GET, format!("/api/v1/orgs/{org}/events"), None),
        (Method::GET, format!("/api/v1/templates?orgId={org}"), None),
        (
            Method::POST,
            format!("/api/v1/orgs/{org}/templates"),
            Some(json!({"name": "planted", "tasks": [{"key": "a", "title": "A"}]})),
        ),
        (
            Method::POST,
            "/api/v1/templates/weekly-report/apply".to_owned(),
            Some(json!({"projectId": project})),
        ),
    ]
}

async fn assert_untouched(app: &TestServer, owner: &str, a: &World) {
    let (status, _, org) = body(
        app.authed(Method::GET, &format!("/api/v1/orgs/{}", a.org), owner)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "org A still exists");
    assert_eq!(org["data"]["name"], "Org A");
    let (_, _, members) = body(
        app.authed(
            Method::GET,
            &format!("/api/v1/orgs/{}/members", a.org),
            owner,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(members["data"].as_array().unwrap().len(), 1);
    assert_eq!(members["data"][0]["role"], "owner");
    let (_, _, invitations) = body(
        app.authed(
            Method::GET,
            &format!("/api/v1/orgs/{}/invitations", a.org),
            owner,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        invitations["data"][0]["id"],
        a.invitation.as_str(),
        "the invitation is still pending, and no other was made: {invitations}"
    );
    assert_eq!(invitations["data"].as_array().unwrap().len(), 1);
    let (_, _, project) = body(
        app.authed(
            Method::GET,
            &format!("/api/v1/projects/{}", a.project),
            owner,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(project["data"]["name"], "Secret plans");
    let (_, _, projects) = body(
        app.authed(
            Method::GET,
            &format!("/api/v1/orgs/{}/projects", a.org),
            owner,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(projects["pagination"]["totalItems"], 2, "nothing planted");
    let (_, _, keys) = body(
        app.authed(
            Method::GET,
            &format!("/api/v1/api-keys?orgId={}", a.org),
            owner,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 1, "no key added");
    assert!(keys["data"][0]["revokedAt"].is_null(), "key not revoked");
    let get = |path: String| {
        let req = app.authed(Method::GET, &path, owner);
        async move { body(req.send().await.unwrap()).await.2 }
    };
    let agent = get(format!("/api/v1/agents/{}", a.agent)).await;
    assert_eq!(agent["data"]["version"], 1, "agent unchanged: {agent}");
    let executions = get(format!("/api/v1/orgs/{}/executions", a.org)).await;
    assert_eq!(executions["pagination"]["totalItems"], 1, "nothing started");
    assert_eq!(
        executions["data"][0]["status"], "queued",
        "not paused or cancelled"
    );
    let agents = get(format!("/api/v1/orgs/{}/agents", a.org)).await;
    assert_eq!(agents["pagination"]["totalItems"], 1, "nothing planted");
    let task2 = get(format!("/api/v1/tasks/{}", a.task2)).await;
    assert_eq!(task2["data"]["title"], "Secret follow-up", "{task2}");
    assert_eq!(task2["data"]["version"], 3, "no version added: {task2}");
    assert!(task2["data"]["lock"].is_null(), "not locked: {task2}");
    assert_eq!(task2["data"]["inputs"].as_array().unwrap().len(), 2);
    assert_eq!(task2["data"]["outputs"].as_array().unwrap().len(), 1);
    let graph = get(format!("/api/v1/tasks/{}/dependencies", a.task2)).await;
    assert_eq!(
        graph["data"]["edges"].as_array().unwrap().len(),
        1,
        "{graph}"
    );
    let tasks = get(format!("/api/v1/projects/{}/tasks", a.project)).await;
    assert_eq!(
        tasks["pagination"]["totalItems"], 1,
        "nothing planted: {tasks}"
    );
}

/// Ids of org A's resources inside org B's own requests are refused as if
/// they did not exist (404 naming the field) and nothing links across.
#[tokio::test]
async fn ids_of_another_org_in_bodies_are_not_found() {
    let app = TestServer::start().await;
    let a_session = app.signup("a@example.com").await;
    let a_token = a_session["accessToken"].as_str().unwrap().to_owned();
    let a = org_a(&app, &a_token, a_session["user"]["id"].as_str().unwrap()).await;
    let b_session = app.signup("b@example.com").await;
    let b_token = b_session["accessToken"].as_str().unwrap().to_owned();
    let b_org = app.create_org(&b_token, "Org B").await;
    let (_, _, projects) = body(
        app.authed(
            Method::GET,
            &format!("/api/v1/orgs/{b_org}/projects"),
            &b_token,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let inbox = projects["data"][0]["id"].as_str().unwrap().to_owned();
    let (status, _, own) = body(
        app.authed(
            Method::POST,
            &format!("/api/v1/projects/{inbox}/tasks"),
            &b_token,
        )
        .json(&json!({"title": "B's task"}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{own}");
    let own = own["data"]["id"].as_str().unwrap().to_owned();
    let attempts = [
        (
            format!("/api/v1/projects/{inbox}/tasks"),
            json!({"title": "x", "parentId": a.task}),
            "parentId",
        ),
        (
            format!("/api/v1/projects/{inbox}/tasks"),
            json!({"title": "x", "assignee": {"type": "agent", "id": a.agent}}),
            "assignee.id",
        ),
        (
            format!("/api/v1/projects/{inbox}/tasks"),
            json!({"title": "x", "assignee": {"type": "user", "id": a.owner_id}}),
            "assignee.id",
        ),
        (
            format!("/api/v1/projects/{inbox}/tasks"),
            json!({"title": "x", "inputs": [{"type": "task_output", "taskId": a.task2}]}),
            "inputs[0].taskId",
        ),
        (
            format!("/api/v1/tasks/{own}/inputs"),
            json!({"type": "task_output", "taskId": a.task2}),
            "taskId",
        ),
        (
            format!("/api/v1/tasks/{own}/dependencies"),
            json!({"dependsOn": a.task2}),
            "dependsOn",
        ),
        (
            format!("/api/v1/tasks/{own}/execute"),
            json!({"agentId": a.agent}),
            "agentId",
        ),
        (
            "/api/v1/templates/weekly-report/apply".to_owned(),
            json!({"projectId": inbox, "agents": {"omnidash-analytics": a.agent}}),
            "agents.omnidash-analytics",
        ),
    ];
    let (status, _, template) = body(
        app.authed(
            Method::POST,
            &format!("/api/v1/orgs/{}/templates", a.org),
            &a_token,
        )
        .json(&json!({"name": "Secret playbook", "tasks": [{"key": "a", "title": "Secret step"}]}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{template}");
    let template = template["data"]["id"].as_str().unwrap().to_owned();
    let (status, _, resp) = body(
        app.authed(
            Method::POST,
            &format!("/api/v1/templates/{template}/apply"),
            &b_token,
        )
        .json(&json!({"projectId": inbox}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 404, "{resp}");
    assert!(!resp.to_string().contains("Secret"), "leaked: {resp}");
    for (path, json_body, field) in attempts {
        let (status, _, resp) = body(
            app.authed(Method::POST, &path, &b_token)
                .json(&json_body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 404, "{path} {json_body}: {resp}");
        assert_eq!(resp["error"]["field"], field, "{path}: {resp}");
        assert!(
            !resp.to_string().contains("Secret"),
            "{path} leaked: {resp}"
        );
    }
    let (status, _, resp) = body(
        app.authed(Method::PATCH, &format!("/api/v1/tasks/{own}"), &b_token)
            .json(&json!({"parentId": a.task}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404, "{resp}");
    assert_eq!(resp["error"]["field"], "parentId");
    let (_, _, graph) = body(
        app.authed(
            Method::GET,
            &format!("/api/v1/tasks/{own}/dependencies"),
            &b_token,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        graph["data"]["nodes"].as_array().unwrap().len(),
        1,
        "{graph}"
    );
    assert_untouched(&app, &a_token, &a).await;
}

#[tokio::test]
async fn a_user_of_another_org_gets_404_everywhere_and_changes_nothing() {
    let app = TestServer::start().await;
    let a_session = app.signup("a@example.com").await;
    let a_token = a_session["accessToken"].as_str().unwrap().to_owned();
    let a = org_a(&app, &a_token, a_session["user"]["id"].as_str().unwrap()).await;
    let b_token = app.user_token("b@example.com").await;
    app.create_org(&b_token, "Org B").await;

    for (method, path, json_body) in foreign_requests(&a) {
        let mut req = app.authed(method.clone(), &path, &b_token);
        if let Some(b) = json_body {
            req = req.json(&b);
        }
        let (status, _, resp) = body(req.send().await.unwrap()).await;
        assert_eq!(status, 404, "{method} {path}: {resp}");
        assert_eq!(resp["error"]["code"], "NOT_FOUND", "{method} {path}");
        assert!(
            !resp.to_string().contains("Org A") && !resp.to_string().contains("Secret plans"),
            "{method} {path} leaked: {resp}"
        );
    }
    assert_untouched(&app, &a_token, &a).await;
}

#[tokio::test]
async fn an_api_key_of_another_org_gets_404_everywhere_and_changes_nothing() {
    let app = TestServer::start().await;
    let a_session = app.signup("a@example.com").await;
    let a_token = a_session["accessToken"].as_str().unwrap().to_owned();
    let a = org_a(&app, &a_token, a_session["user"]["id"].as_str().unwrap()).await;
    let b_token = app.user_token("b@example.com").await;
    let b_org = app.create_org(&b_token, "Org B").await;
    let resp = app
        .authed(Method::POST, "/api/v1/api-keys", &b_token)
        .json(&json!({"name": "b", "orgId": b_org, "scopes": ["admin"]}))
        .send()
        .await
        .unwrap();
    let b_key = body(resp).await.2["data"]["key"]
        .as_str()
        .unwrap()
        .to_owned();

    for (method, path, json_body) in foreign_requests(&a) {
        let mut req = app
            .client
            .request(method.clone(), app.url(&path))
            .header("x-api-key", &b_key);
        if let Some(b) = json_body {
            req = req.json(&b);
        }
        let (status, _, resp) = body(req.send().await.unwrap()).await;
        // An API key cannot delete an org at all (403) — that is about the key, not org A.
        let expected = if method == Method::DELETE && path == format!("/api/v1/orgs/{}", a.org) {
            [404, 403]
        } else {
            [404, 404]
        };
        assert!(
            expected.contains(&status.as_u16()),
            "{method} {path}: {status} {resp}"
        );
        assert!(
            !resp.to_string().contains("Org A"),
            "{method} {path} leaked: {resp}"
        );
    }
    assert_untouched(&app, &a_token, &a).await;
}
