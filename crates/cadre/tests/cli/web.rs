//! The web UI as a browser without JavaScript meets it: `cadre serve`, real
//! HTTP, cookies kept from `Set-Cookie`, forms posted with their CSRF
//! field. (The real-browser tests drive the same pages with scripts on.)

use std::collections::HashMap;

use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::process::{Running, cadre};

/// One browser: its cookies, and the CSRF token of the last page it read.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
    csrf: String,
}

struct Page {
    status: u16,
    location: String,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Browser {
    fn new(base: &str) -> Browser {
        Browser {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
            csrf: String::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let resp = req
            .header("cookie", cookie.join("; "))
            .send()
            .await
            .unwrap();
        for value in resp.headers().get_all("set-cookie") {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let page = Page {
            status: resp.status().as_u16(),
            location: resp
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned())
                .unwrap_or_default(),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        };
        if let Some(token) = field_value(&page.body, "_csrf") {
            self.csrf = token;
        }
        page
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    /// The page at `path` once it shows `needle` (reloaded for up to 30 s,
    /// as a person would; the engine runs on its own schedule).
    async fn until(&mut self, path: &str, needle: &str) -> Page {
        let mut page = self.get(path).await;
        for _ in 0..300 {
            if page.body.contains(needle) {
                return page;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            page = self.get(path).await;
        }
        panic!("{path} never showed {needle:?}: {}", page.body);
    }

    /// Posts a form as the page's own form would (with its CSRF field).
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(&str, &str)> = vec![("_csrf", &self.csrf)];
        form.extend_from_slice(fields);
        let body = serde_urlencoded::to_string(&form).unwrap();
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }

    /// Signs up and creates an org through the pages; returns the org id.
    async fn sign_up_with_org(&mut self, name: &str, email: &str, org: &str) -> String {
        self.get("/signup").await;
        let page = self
            .post(
                "/signup",
                &[
                    ("name", name),
                    ("email", email),
                    ("password", "correct horse battery"),
                ],
            )
            .await;
        assert_eq!(
            (page.status, page.location.as_str()),
            (303, "/orgs/new"),
            "{}",
            page.body
        );
        self.get("/orgs/new").await;
        let page = self.post("/orgs/new", &[("name", org)]).await;
        assert_eq!(page.status, 303, "{}", page.body);
        page.location.trim_start_matches("/o/").to_owned()
    }

    /// Signs up as Ada and creates her org "Acme"; returns the org id.
    async fn acme_owner(&mut self) -> String {
        self.sign_up_with_org("Ada", "ada@example.com", "Acme")
            .await
    }

    /// Signs up as Ada, creates her org "Acme" with the scripted model;
    /// returns the org id.
    async fn owner_with_model(&mut self) -> String {
        let org = self.acme_owner().await;
        self.api(
            reqwest::Method::PUT,
            &format!("/orgs/{org}/models"),
            scripted_model(),
        )
        .await;
        org
    }

    /// Creates something through the API; returns its id.
    async fn create(&self, path: &str, body: Value) -> String {
        self.api(reqwest::Method::POST, path, body).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates a task in the org's default project (`Inbox`); returns its id.
    async fn task_in_inbox(&self, org: &str, title: &str) -> String {
        let projects = self
            .api(
                reqwest::Method::GET,
                &format!("/orgs/{org}/projects"),
                Value::Null,
            )
            .await;
        let project = projects[0]["id"].as_str().unwrap();
        self.create(
            &format!("/projects/{project}/tasks"),
            json!({ "title": title }),
        )
        .await
    }

    /// The session's access token, for setting up what the UI does not
    /// cover yet (model configuration) through the API.
    fn token(&self) -> String {
        self.cookies["cadre_at"].clone()
    }

    async fn api(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let resp = self
            .client
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(self.token())
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let json: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {json}");
        json["data"].clone()
    }
}

/// The `value` of the first input named `name` on a page.
fn field_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// `cadre serve` on embedded SQLite in a folder of its own (removed when
/// the returned guard drops), with `env` for what a test needs set.
fn serve(env: &[(&str, &str)]) -> (tempfile::TempDir, Running) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = cadre(&dir.path().join("data"));
    cmd.envs(env.iter().copied());
    (dir, Running::serve(cmd))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A model that adds an output, then finishes.
fn scripted_model() -> Value {
    json!({ "models": [{ "name": "demo", "provider": "scripted", "script": [
        { "text": "", "toolCalls": [{ "id": "c1", "name": "add_output",
          "arguments": { "label": "summary", "content": "All good, in plain words." } }] },
        { "text": "Done." }
    ] }] })
}

#[test]
fn a_person_goes_from_sign_up_to_an_agents_output_in_the_ui() {
    let (_dir, server) = serve(&[]);
    runtime().block_on(async {
        let mut ada = Browser::new(&server.base_url);
        // Signed out, every page leads to sign-in.
        assert_eq!(ada.get("/").await.location, "/login");
        let org = ada.owner_with_model().await;

        // An agent from a template, on the org's model.
        let page = ada.get(&format!("/o/{org}/agents/new")).await;
        assert_eq!(page.status, 200);
        let template = field_value(&page.body, "template_id").expect("a template to pick");
        assert!(
            page.body.contains("value=\"demo\""),
            "the org's model is offered"
        );
        let page = ada
            .post(
                &format!("/o/{org}/agents/new"),
                &[("template_id", &template), ("model", "demo")],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        let agent = page.location.rsplit('/').next().unwrap().to_owned();

        // A task in the default project, run with that agent.
        let page = ada.get(&format!("/o/{org}/tasks")).await;
        let project = field_value(&page.body, "project").unwrap();
        let page = ada
            .post(
                &format!("/o/{org}/tasks"),
                &[
                    ("project", &project),
                    ("title", "Summarise the week"),
                    ("priority", "5"),
                ],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        let task = page.location.rsplit('/').next().unwrap().to_owned();
        ada.get(&format!("/o/{org}/tasks/{task}")).await;
        let page = ada
            .post(&format!("/o/{org}/tasks/{task}/run"), &[("agent", &agent)])
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        let execution_path = page.location.clone();

        // The glass box: every step, the verified trace, and the end.
        let page = ada.until(&execution_path, "s-completed").await;
        assert!(page.body.contains("Model call to demo"));
        assert!(page.body.contains("Tool add_output"));
        assert!(page.body.contains("✔ verified"));
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );

        // The output, escaped, on the task; the spend on the command center.
        let page = ada.get(&format!("/o/{org}/tasks/{task}")).await;
        assert!(
            page.body.contains("All good, in plain words."),
            "{}",
            page.body
        );
        let page = ada.get(&format!("/o/{org}")).await;
        assert!(
            page.body.contains(">1<") || page.body.contains("1 executions over 14 days"),
            "{}",
            page.body
        );
        assert!(page.body.contains(&format!("/o/{org}/agents/{agent}")));

        // Assets come from the binary, cacheable for good.
        let page = ada.get("/assets/app.css").await;
        assert_eq!(page.status, 200);
        assert!(
            page.headers["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );

        // Signing out ends the session: the old refresh token is revoked.
        ada.get(&format!("/o/{org}")).await;
        let page = ada.post("/logout", &[]).await;
        assert_eq!(page.location, "/login");
        assert_eq!(ada.get(&format!("/o/{org}")).await.location, "/login");
    });
}

#[test]
fn the_ui_refuses_forged_writes_and_never_shows_another_orgs_work() {
    let (_dir, server) = serve(&[]);
    runtime().block_on(async {
        let mut ada = Browser::new(&server.base_url);
        let org_a = ada.owner_with_model().await;
        let agent = ada
            .create(
                &format!("/orgs/{org_a}/agents"),
                json!({"name": "Secret agent", "model": "demo", "instructions": "Work."}),
            )
            .await;

        // A form without its CSRF token, or posted from another site.
        ada.get("/orgs/new").await;
        ada.csrf = "0".repeat(64);
        assert_eq!(
            ada.post("/orgs/new", &[("name", "Forged")]).await.status,
            403
        );
        ada.get("/orgs/new").await;
        let body = serde_urlencoded::to_string([("_csrf", ada.csrf.as_str()), ("name", "Forged")])
            .unwrap();
        let req = ada
            .client
            .post(format!("{}/orgs/new", ada.base))
            .header("origin", "https://evil.example")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        assert_eq!(ada.send(req).await.status, 403);
        let orgs = ada.api(reqwest::Method::GET, "/orgs", Value::Null).await;
        assert_eq!(
            orgs.as_array().unwrap().len(),
            1,
            "no org was created: {orgs}"
        );

        // Bob, in his own org, sees nothing of Acme's, whichever door he tries.
        let mut bob = Browser::new(&server.base_url);
        let org_b = bob
            .sign_up_with_org("Bob", "bob@example.com", "Bobco")
            .await;
        for path in [
            format!("/o/{org_a}"),
            format!("/o/{org_a}/agents"),
            format!("/o/{org_a}/agents/{agent}"),
            format!("/o/{org_b}/agents/{agent}"),
            format!("/o/{org_b}/agents/{agent}/diff?from=1&to=1"),
        ] {
            let page = bob.get(&path).await;
            assert_eq!(page.status, 404, "{path}");
            assert!(
                !page.body.contains("Secret agent") && !page.body.contains("Acme"),
                "{path}"
            );
        }
        let page = bob.get(&format!("/o/{org_b}/agents")).await;
        assert!(!page.body.contains("Secret agent"));
        bob.get(&format!("/o/{org_b}/agents")).await;
        let page = bob
            .post(
                &format!("/o/{org_b}/agents/{agent}/status"),
                &[("status", "disabled")],
            )
            .await;
        assert_eq!(page.status, 404);
        let a = ada
            .api(
                reqwest::Method::GET,
                &format!("/agents/{agent}"),
                Value::Null,
            )
            .await;
        assert_eq!(a["status"], "idle", "Bob's post changed nothing");
    });
}

#[test]
fn a_viewer_gets_no_edit_controls_and_cannot_act() {
    let (_dir, server) = serve(&[]);
    runtime().block_on(async {
        let mut ada = Browser::new(&server.base_url);
        let org = ada.owner_with_model().await;
        let agent = ada
            .create(
                &format!("/orgs/{org}/agents"),
                json!({"name": "Writer", "model": "demo", "instructions": "Write."}),
            )
            .await;
        let task = ada.task_in_inbox(&org, "Draft").await;

        let mut vic = Browser::new(&server.base_url);
        vic.sign_up_with_org("Vic", "vic@example.com", "Vic's own")
            .await;
        let invitation = ada
            .api(
                reqwest::Method::POST,
                &format!("/orgs/{org}/members"),
                json!({"email": "vic@example.com", "role": "viewer"}),
            )
            .await;
        vic.api(
            reqwest::Method::POST,
            &format!(
                "/invitations/{}/accept",
                invitation["token"].as_str().unwrap()
            ),
            Value::Null,
        )
        .await;

        // Ada, an owner, gets the controls; Vic, a viewer, sees the work without them.
        let owner_task = ada.get(&format!("/o/{org}/tasks/{task}")).await.body;
        assert!(owner_task.contains("/run\""), "the owner can run the task");
        let page = vic.get(&format!("/o/{org}/tasks/{task}")).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Draft"));
        assert!(
            !page.body.contains("/run\"") && !page.body.contains("name=\"version\""),
            "no run or edit form for a viewer"
        );
        let page = vic.get(&format!("/o/{org}/tasks")).await;
        assert!(!page.body.contains("id=\"new-task\""));
        let page = vic.get(&format!("/o/{org}/agents/{agent}")).await;
        assert!(page.body.contains("Writer") && !page.body.contains("Save as a new version"));
        assert!(
            vic.get(&format!("/o/{org}/agents/new"))
                .await
                .body
                .contains("can look at agents but not create them")
        );

        // A hand-made post is refused by the API's own permission check.
        let page = vic
            .post(&format!("/o/{org}/tasks/{task}/run"), &[("agent", &agent)])
            .await;
        assert_eq!(page.status, 403, "{}", page.body);
        let runs = ada
            .api(
                reqwest::Method::GET,
                &format!("/orgs/{org}/executions?taskId={task}"),
                Value::Null,
            )
            .await;
        assert_eq!(runs.as_array().unwrap().len(), 0);
    });
}

#[test]
fn an_approval_is_edited_and_approved_from_the_execution_page() {
    let (_dir, server) = serve(&[]);
    runtime().block_on(async {
        let mut ada = Browser::new(&server.base_url);
        let org = ada.owner_with_model().await;
        let agent = ada
            .create(
                &format!("/orgs/{org}/agents"),
                json!({"name": "Careful", "model": "demo", "instructions": "Report.",
                       "approvalPolicy": {"default": "auto", "tools": {"add_output": "require"}}}),
            )
            .await;
        let task = ada.task_in_inbox(&org, "Weekly report").await;
        ada.get(&format!("/o/{org}/tasks/{task}")).await;
        let run = ada
            .post(&format!("/o/{org}/tasks/{task}/run"), &[("agent", &agent)])
            .await;
        let execution_path = run.location;
        let execution = execution_path.rsplit('/').next().unwrap().to_owned();

        // The execution page holds the pending action, with its exact arguments.
        // (A page reads the execution and its approvals side by side, so a
        // render taken mid-commit may show one before the other: wait for
        // the status, then for the approval.)
        ada.until(&execution_path, "s-waiting_approval").await;
        let page = ada.until(&execution_path, "id=\"approval-").await;
        assert!(page.body.contains("s-waiting_approval"), "{}", page.body);
        assert!(
            page.body.contains("All good, in plain words."),
            "the arguments are shown"
        );
        let at = page.body.find("id=\"approval-").unwrap() + "id=\"approval-".len();
        let approval = page.body[at..at + 36].to_owned();
        // The page asked only for this execution's approvals.
        let mine = ada
            .api(
                reqwest::Method::GET,
                &format!("/orgs/{org}/approvals?executionId={execution}"),
                Value::Null,
            )
            .await;
        assert_eq!(mine[0]["id"], approval.as_str(), "{mine}");
        let other = uuid::Uuid::now_v7();
        let none = ada
            .api(
                reqwest::Method::GET,
                &format!("/orgs/{org}/approvals?executionId={other}"),
                Value::Null,
            )
            .await;
        assert_eq!(none, json!([]));

        // Edited arguments that are not JSON are refused on the page; then
        // the edit goes through and the tool runs with it.
        let decide = format!("/o/{org}/approvals/{approval}/approve");
        let page = ada
            .post(
                &decide,
                &[("arguments", "{not json"), ("back", &execution_path)],
            )
            .await;
        assert_eq!(page.status, 422);
        assert!(page.body.contains("not valid JSON"), "{}", page.body);
        let edited = json!({"label": "summary", "content": "Edited by a person."}).to_string();
        let page = ada
            .post(
                &decide,
                &[("arguments", &edited), ("back", &execution_path)],
            )
            .await;
        assert_eq!(
            (page.status, page.location.as_str()),
            (303, execution_path.as_str()),
            "{}",
            page.body
        );
        let page = ada.until(&execution_path, "s-completed").await;
        assert!(page.body.contains("✔ verified"));
        let page = ada.get(&format!("/o/{org}/tasks/{task}")).await;
        assert!(page.body.contains("Edited by a person."), "{}", page.body);
        assert!(
            !page.body.contains("All good, in plain words."),
            "the model's arguments did not run"
        );
        let decided = ada.get(&format!("/o/{org}/approvals")).await;
        assert!(
            decided.body.contains("arguments edited"),
            "{}",
            decided.body
        );
    });
}

/// The `value` of the element with `id` on a page.
fn value_of(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} on the page: {html}"));
    let rest = &html[at..];
    let start = rest.find("value=\"").unwrap() + 7;
    let rest = &rest[start..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[test]
fn settings_manage_members_keys_models_and_the_plan_and_show_the_audit_log() {
    let (_dir, server) = serve(&[]);
    runtime().block_on(async {
        let mut ada = Browser::new(&server.base_url);
        let org = ada.acme_owner().await;
        let settings = format!("/o/{org}/settings");

        // Models: a bad script is refused on the page; a good one is saved,
        // then removed, through the page's own form.
        ada.get(&format!("{settings}/models")).await;
        let bad = [
            ("action", "save"),
            ("name", "demo"),
            ("provider", "scripted"),
            ("script", "[{\"text\": "),
        ];
        let page = ada.post(&format!("{settings}/models"), &bad).await;
        assert_eq!(page.status, 422, "{}", page.body);
        assert!(page.body.contains("not valid JSON"));
        let good = [
            ("action", "save"),
            ("name", "demo"),
            ("provider", "scripted"),
            ("script", "[{\"text\": \"Hi.\"}]"),
            ("input_price_per_m_tok", "0.5"),
        ];
        let page = ada.post(&format!("{settings}/models"), &good).await;
        assert_eq!(page.status, 303, "{}", page.body);
        let models = ada
            .api(
                reqwest::Method::GET,
                &format!("/orgs/{org}/models"),
                Value::Null,
            )
            .await;
        assert_eq!(models[0]["name"], "demo");
        assert_eq!(models[0]["inputPricePerMTok"], "0.5");
        let page = ada.get(&format!("{settings}/models")).await;
        assert!(page.body.contains("$0.50"), "{}", page.body);
        ada.post(
            &format!("{settings}/models"),
            &[("action", "remove"), ("name", "demo")],
        )
        .await;
        let models = ada
            .api(
                reqwest::Method::GET,
                &format!("/orgs/{org}/models"),
                Value::Null,
            )
            .await;
        assert_eq!(models, json!([]));

        // Members: an invitation's link is shown once and lets Bob in.
        ada.get(&format!("{settings}/members")).await;
        let page = ada
            .post(
                &format!("{settings}/members"),
                &[("email", "bob@example.com"), ("role", "member")],
            )
            .await;
        assert_eq!(page.status, 201, "{}", page.body);
        let link = value_of(&page.body, "invite-link");
        // The link is on the instance's public URL; this test's server has its own port.
        let path = link[link.find("/invitations/").expect("an invitation link")..].to_owned();
        let members = ada.get(&format!("{settings}/members")).await.body;
        assert!(!members.contains(&path), "the link is shown once");
        assert!(members.contains("Pending invitations") && members.contains("bob@example.com"));

        // An invitation withdrawn from the page stops working.
        let page = ada
            .post(
                &format!("{settings}/members"),
                &[("email", "carol@example.com"), ("role", "viewer")],
            )
            .await;
        let carol_link = value_of(&page.body, "invite-link");
        let carol_path = carol_link[carol_link.find("/invitations/").unwrap()..].to_owned();
        let pending = ada
            .api(
                reqwest::Method::GET,
                &format!("/orgs/{org}/invitations"),
                Value::Null,
            )
            .await;
        let carol_id = pending[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(pending[0]["email"], "carol@example.com");
        let page = ada
            .post(&format!("{settings}/invitations/{carol_id}/revoke"), &[])
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        assert!(
            !ada.get(&format!("{settings}/members"))
                .await
                .body
                .contains("carol@example.com")
        );
        let mut carol = Browser::new(&server.base_url);
        carol
            .sign_up_with_org("Carol", "carol@example.com", "Carol's")
            .await;
        carol.get(&carol_path).await;
        let page = carol.post(&carol_path, &[]).await;
        assert_eq!(page.status, 404, "{}", page.body);
        assert!(page.body.contains("unknown or has expired"));

        let mut bob = Browser::new(&server.base_url);
        let page = bob.get(&path).await;
        assert_eq!(page.status, 303);
        assert!(
            page.location.starts_with("/login?next="),
            "{}",
            page.location
        );
        bob.sign_up_with_org("Bob", "bob@example.com", "Bob's own")
            .await;
        bob.get(&path).await;
        let page = bob.post(&path, &[]).await;
        assert_eq!(page.location, format!("/o/{org}"), "{}", page.body);
        let page = bob.post(&path, &[]).await;
        assert!(page.status >= 400, "an invitation is used once");
        let bob_id = bob.api(reqwest::Method::GET, "/auth/me", Value::Null).await["id"]
            .as_str()
            .unwrap()
            .to_owned();

        // Bob, a member, sees the members without the controls, and is told
        // keys and the audit log are for admins.
        let page = bob.get(&format!("{settings}/members")).await;
        assert!(page.body.contains("Ada") && page.body.contains("bob@example.com"));
        assert!(!page.body.contains("Invite someone"));
        let page = bob.get(&format!("{settings}/keys")).await;
        assert!(!page.body.contains("New key"));
        assert!(page.body.contains("role=\"alert\""), "{}", page.body);
        assert_eq!(bob.get(&format!("{settings}/audit")).await.status, 403);

        // Ada makes Bob a viewer, then removes him: his pages of the org are gone.
        ada.get(&format!("{settings}/members")).await;
        let member = format!("{settings}/members/{bob_id}");
        let page = ada
            .post(&member, &[("action", "role"), ("role", "viewer")])
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        let members = ada
            .api(
                reqwest::Method::GET,
                &format!("/orgs/{org}/members"),
                Value::Null,
            )
            .await;
        let roles: Vec<_> = members
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert!(roles.contains(&"viewer"), "{members}");
        // The last owner cannot be demoted: the API's refusal is on the page.
        let ada_id = ada.api(reqwest::Method::GET, "/auth/me", Value::Null).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let page = ada
            .post(
                &format!("{settings}/members/{ada_id}"),
                &[("action", "role"), ("role", "viewer")],
            )
            .await;
        assert_eq!(page.status, 409, "{}", page.body);
        ada.post(&member, &[("action", "remove")]).await;
        assert_eq!(bob.get(&format!("/o/{org}")).await.status, 404);
        assert_eq!(bob.get(&format!("{settings}/members")).await.status, 404);

        // Keys: the secret is shown once and works; revoked, it does not.
        ada.get(&format!("{settings}/keys")).await;
        let page = ada
            .post(
                &format!("{settings}/keys"),
                &[
                    ("name", "CI"),
                    ("scopes", "read"),
                    ("scopes", "agents"),
                    ("expires_in_days", "30"),
                ],
            )
            .await;
        assert_eq!(page.status, 201, "{}", page.body);
        let key = value_of(&page.body, "new-key");
        let listed = ada.get(&format!("{settings}/keys")).await.body;
        assert!(listed.contains("CI") && !listed.contains(&key));
        let with_key = |key: String| {
            let client = reqwest::Client::new();
            let url = format!("{}/api/v1/orgs/{org}/agents", server.base_url);
            async move {
                client
                    .get(url)
                    .bearer_auth(key)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(with_key(key.clone()).await, 200);
        let keys = ada
            .api(
                reqwest::Method::GET,
                &format!("/api-keys?orgId={org}"),
                Value::Null,
            )
            .await;
        assert_eq!(keys[0]["scopes"], json!(["read", "agents"]));
        let id = keys[0]["id"].as_str().unwrap().to_owned();
        // Not from the page of Ada's other org, though she owns both.
        let other = ada.create("/orgs", json!({"name": "Acme Labs"})).await;
        let page = ada
            .post(&format!("/o/{other}/settings/keys/{id}/revoke"), &[])
            .await;
        assert_eq!(page.status, 404, "{}", page.body);
        assert_eq!(with_key(key.clone()).await, 200);
        let page = ada.post(&format!("{settings}/keys/{id}/revoke"), &[]).await;
        assert_eq!(page.status, 303, "{}", page.body);
        assert_eq!(with_key(key).await, 401);
        let page = ada
            .post(&format!("{settings}/keys"), &[("name", "No scopes")])
            .await;
        assert_eq!(
            page.status, 400,
            "the API's validation status: {}",
            page.body
        );
        assert!(page.body.contains("at least one scope"));

        // Budgets: the plan changes through the page.
        ada.get(&format!("{settings}/budgets")).await;
        let page = ada
            .post(&format!("{settings}/budgets"), &[("plan", "pro")])
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        let usage = ada
            .api(
                reqwest::Method::GET,
                &format!("/orgs/{org}/usage"),
                Value::Null,
            )
            .await;
        assert_eq!(usage["plan"], "pro");
        let page = ada.get(&format!("{settings}/budgets")).await;
        assert!(page.body.contains("on the pro plan"), "{}", page.body);

        // The audit log shows what was done here, and that its chain holds.
        let page = ada.get(&format!("{settings}/audit")).await;
        assert_eq!(page.status, 200);
        for action in ["org.member.invited", "api_key.created", "api_key.revoked"] {
            assert!(page.body.contains(action), "{action} missing");
        }
        assert!(page.body.contains("verifies"), "{}", page.body);
        let page = ada
            .get(&format!("{settings}/audit?action=api_key.revoked"))
            .await;
        assert!(page.body.contains("api_key.revoked") && !page.body.contains("org.member.invited"));

        // Another org's settings are not found, reading or writing.
        let mut eve = Browser::new(&server.base_url);
        eve.sign_up_with_org("Eve", "eve@example.com", "Eve's")
            .await;
        for tab in ["members", "keys", "models", "budgets", "audit"] {
            assert_eq!(
                eve.get(&format!("{settings}/{tab}")).await.status,
                404,
                "{tab}"
            );
        }
        let page = eve
            .post(&format!("{settings}/budgets"), &[("plan", "free")])
            .await;
        assert_eq!(page.status, 404, "{}", page.body);
        let page = eve
            .post(
                &format!("{settings}/members"),
                &[("email", "eve@example.com"), ("role", "owner")],
            )
            .await;
        assert_eq!(page.status, 404, "{}", page.body);
    });
}

#[test]
fn chat_routes_to_an_agent_shows_its_execution_and_streams_answers() {
    let (_dir, server) = serve(&[]);
    runtime().block_on(async {
        let mut ada = Browser::new(&server.base_url);
        let org = ada.acme_owner().await;
        let agent = ada
            .create(
                &format!("/orgs/{org}/agents"),
                json!({"name": "Researcher", "role": "researcher", "description": "market research",
                       "model": "worker", "instructions": "Research."}),
            )
            .await;
        // The orchestrator (the org's first model) routes the first request
        // and answers the second itself; the agent's model adds an output.
        // A script is indexed by the answers so far in the conversation, and
        // the agent's reported outcome is one of them: the second request
        // meets the third answer.
        ada.api(
            reqwest::Method::PUT,
            &format!("/orgs/{org}/models"),
            json!({ "models": [
                { "name": "router", "provider": "scripted", "script": [
                    { "text": "", "toolCalls": [{ "id": "r1", "name": "route_to_agent",
                      "arguments": { "agentId": agent, "instructions": "Compare three note apps." } }] },
                    { "text": "(not reached: the agent's outcome takes this place)" },
                    { "text": "Happy to help directly." }
                ] },
                { "name": "worker", "provider": "scripted", "script": [
                    { "text": "", "toolCalls": [{ "id": "c1", "name": "add_output",
                      "arguments": { "label": "summary", "content": "Notion, Obsidian and Bear compared." } }] },
                    { "text": "Done." }
                ] }
            ] }),
        )
        .await;

        // Without scripts the form posts the message and shows the session.
        let page = ada.get(&format!("/o/{org}/chat")).await;
        assert!(page.body.contains("New conversation"));
        let page = ada
            .post(
                &format!("/o/{org}/chat"),
                &[("message", "Compare note-taking apps"), ("session_id", "")],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        let session_page = page.location.clone();
        let session = session_page.rsplit('/').next().unwrap().to_owned();
        let page = ada.until(&session_page, "Notion, Obsidian and Bear compared.").await;
        assert!(page.body.contains("Compare note-taking apps"));
        assert!(page.body.contains("Researcher"), "the routed agent is named");
        assert!(page.body.contains("class=\"run\""), "the execution is inline");
        assert!(page.body.contains("s-completed"), "{}", page.body);
        assert!(page.body.contains(&format!("session:{session}")), "the page listens to its session");

        // The page's script reads the answer as an event stream.
        let stream = |csrf: String, body: String| {
            let client = reqwest::Client::new();
            let url = format!("{}/o/{org}/chat/stream", server.base_url);
            let cookie: Vec<String> = ada.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            async move {
                let resp = client
                    .post(url)
                    .header("cookie", cookie.join("; "))
                    .header("x-csrf-token", csrf)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                (resp.status().as_u16(), resp.text().await.unwrap())
            }
        };
        let turn = json!({"message": "And one more thing?", "sessionId": session}).to_string();
        let (status, _) = stream("0".repeat(64), turn.clone()).await;
        assert_eq!(status, 403, "a stream without the page's token is refused");
        // Bad input is the API's to refuse, in its own envelope.
        for bad in ["{not json", r#"{"message": ""}"#, r#"{"message": "hi", "sessionId": "nope"}"#] {
            let (status, answer) = stream(ada.csrf.clone(), bad.to_owned()).await;
            let answer: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
            assert!((400..500).contains(&status), "{bad}: {status} {answer}");
            assert_eq!(answer["success"], false, "{bad}: {answer}");
            assert!(answer["error"]["code"].is_string(), "{bad}: {answer}");
        }
        let (status, events) = stream(ada.csrf.clone(), turn).await;
        assert_eq!(status, 200, "{events}");
        assert!(events.contains("event: session"), "{events}");
        assert!(events.contains("event: chat_message"), "{events}");
        assert!(events.contains("Happy to help directly."), "{events}");
        let page = ada.get(&session_page).await;
        assert!(page.body.contains("And one more thing?") && page.body.contains("Happy to help directly."));

        // Another org's member finds neither the session nor a way to delete it.
        let mut eve = Browser::new(&server.base_url);
        eve.sign_up_with_org("Eve", "eve@example.com", "Eve's").await;
        assert_eq!(eve.get(&session_page).await.status, 404);
        let page = eve.post(&format!("{session_page}/delete"), &[]).await;
        assert_eq!(page.status, 404, "{}", page.body);

        // Ada deletes it: gone from the list, and its page is not found.
        ada.get(&session_page).await;
        let page = ada.post(&format!("{session_page}/delete"), &[]).await;
        assert_eq!(page.location, format!("/o/{org}/chat"));
        assert!(!ada.get(&format!("/o/{org}/chat")).await.body.contains(&session));
        assert_eq!(ada.get(&session_page).await.status, 404);
    });
}

#[test]
fn dependencies_are_added_refused_as_cycles_and_drawn_for_the_project() {
    let (_dir, server) = serve(&[]);
    runtime().block_on(async {
        let mut ada = Browser::new(&server.base_url);
        let org = ada.acme_owner().await;
        let research = ada.task_in_inbox(&org, "Research").await;
        let draft = ada.task_in_inbox(&org, "Draft").await;
        let page = ada.get(&format!("/o/{org}/tasks")).await;
        assert!(page.body.contains("No task here depends on another yet"));

        // Draft depends on Research, chosen from the project's tasks.
        let page = ada.get(&format!("/o/{org}/tasks/{draft}")).await;
        assert!(
            page.body
                .contains(&format!("<option value=\"{research}\">Research</option>"))
        );
        let deps = format!("/o/{org}/tasks/{draft}/dependencies");
        let page = ada.post(&deps, &[("depends_on", &research)]).await;
        assert_eq!(page.status, 303, "{}", page.body);

        // The reverse would close a cycle: the API's words are on the page.
        ada.get(&format!("/o/{org}/tasks/{research}")).await;
        let page = ada
            .post(
                &format!("/o/{org}/tasks/{research}/dependencies"),
                &[("depends_on", &draft)],
            )
            .await;
        assert_eq!(page.status, 409, "{}", page.body);
        assert!(page.body.contains("would close a cycle"), "{}", page.body);

        // The project's page draws the graph: both tasks, one edge.
        let page = ada.get(&format!("/o/{org}/tasks")).await;
        assert!(
            page.body.contains("Dependency graph: 2 tasks"),
            "{}",
            page.body
        );
        assert_eq!(page.body.matches("class=\"edge\"").count(), 1);

        // Removing it empties the graph again.
        let page = ada.get(&format!("/o/{org}/tasks/{draft}")).await;
        let at = page.body.find("name=\"remove\" value=\"").unwrap() + 21;
        let edge = page.body[at..at + 36].to_owned();
        let page = ada.post(&deps, &[("remove", &edge)]).await;
        assert_eq!(page.status, 303, "{}", page.body);
        let page = ada.get(&format!("/o/{org}/tasks")).await;
        assert!(page.body.contains("No task here depends on another yet"));

        // Another org's task cannot be reached through this form.
        let mut eve = Browser::new(&server.base_url);
        eve.sign_up_with_org("Eve", "eve@example.com", "Eve's")
            .await;
        let page = eve.post(&deps, &[("depends_on", &research)]).await;
        assert_eq!(page.status, 404, "{}", page.body);
    });
}

#[test]
fn the_task_tree_names_assignees_and_pages_through_a_large_project() {
    // 105 tasks made through the API in a moment: past the free plan's
    // 60 writes a minute, which is not what this test is about.
    let (_dir, server) = serve(&[("CADRE_LIMITS_ENABLED", "false")]);
    runtime().block_on(async {
        let mut ada = Browser::new(&server.base_url);
        let org = ada.acme_owner().await;
        let agent = ada
            .create(
                &format!("/orgs/{org}/agents"),
                json!({"name": "Writer", "model": "gpt-4o-mini", "instructions": "Write."}),
            )
            .await;
        let projects = ada
            .api(
                reqwest::Method::GET,
                &format!("/orgs/{org}/projects"),
                Value::Null,
            )
            .await;
        let project = projects[0]["id"].as_str().unwrap().to_owned();
        ada.create(
            &format!("/projects/{project}/tasks"),
            json!({"title": "Assigned one", "assignee": {"type": "agent", "id": agent}}),
        )
        .await;
        for n in 0..104 {
            ada.create(
                &format!("/projects/{project}/tasks"),
                json!({ "title": format!("Task number {n:03}") }),
            )
            .await;
        }

        let first = ada.get(&format!("/o/{org}/tasks")).await.body;
        assert!(
            first.contains("105 tasks") && first.contains("Page 1 of 2"),
            "{first}"
        );
        let next = format!("href=\"/o/{org}/tasks?project={project}&page=2\"");
        assert!(
            first.replace("&#38;", "&").contains(&next),
            "a link to the next page: {first}"
        );
        let shown = |body: &str| body.matches("class=\"line\"").count();
        let second = ada
            .get(&format!("/o/{org}/tasks?project={project}&page=2"))
            .await
            .body;
        assert_eq!((shown(&first), shown(&second)), (100, 5));
        assert!(second.contains("Page 2 of 2") && !second.contains("page=3"));
        let assigned = if first.contains("Assigned one") {
            &first
        } else {
            &second
        };
        assert!(assigned.contains("→ Writer"), "the assignee is named");
    });
}

#[test]
fn projects_are_made_and_changed_and_tasks_and_agents_deleted_from_their_pages() {
    let (_dir, server) = serve(&[]);
    runtime().block_on(async {
        let mut ada = Browser::new(&server.base_url);
        let org = ada.acme_owner().await;
        ada.get(&format!("/o/{org}/tasks")).await;

        // A project with its own workflow, made and then changed on the page.
        let page = ada
            .post(&format!("/o/{org}/projects"), &[("name", "")])
            .await;
        assert_eq!(page.status, 400, "{}", page.body);
        let page = ada
            .post(
                &format!("/o/{org}/projects"),
                &[
                    ("name", "Launch"),
                    ("workflow_states", "todo, doing,\ndone"),
                    ("auto_run", "on"),
                ],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        let project = page.location.rsplit('=').next().unwrap().to_owned();
        let read = ada
            .api(
                reqwest::Method::GET,
                &format!("/projects/{project}"),
                Value::Null,
            )
            .await;
        assert_eq!(read["workflowStates"], json!(["todo", "doing", "done"]));
        assert_eq!(
            (read["autoRun"].clone(), read["requireReview"].clone()),
            (json!(true), json!(false))
        );
        let page = ada.get(&page.location).await;
        assert!(
            page.body.contains("value=\"todo, doing, done\""),
            "{}",
            page.body
        );
        let page = ada
            .post(
                &format!("/o/{org}/projects/{project}"),
                &[
                    ("name", "Launch v2"),
                    ("workflow_states", "todo, done"),
                    ("require_review", "on"),
                ],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        let read = ada
            .api(
                reqwest::Method::GET,
                &format!("/projects/{project}"),
                Value::Null,
            )
            .await;
        assert_eq!(read["name"], "Launch v2");
        assert_eq!(
            (read["autoRun"].clone(), read["requireReview"].clone()),
            (json!(false), json!(true))
        );

        // A task deleted from its page leaves the tree; its page is gone.
        let task = ada
            .create(
                &format!("/projects/{project}/tasks"),
                json!({"title": "Write the post"}),
            )
            .await;
        ada.get(&format!("/o/{org}/tasks/{task}")).await;
        let page = ada
            .post(&format!("/o/{org}/tasks/{task}/delete"), &[])
            .await;
        assert_eq!(page.location, format!("/o/{org}/tasks?project={project}"));
        assert!(
            !ada.get(&page.location)
                .await
                .body
                .contains("Write the post")
        );
        assert_eq!(ada.get(&format!("/o/{org}/tasks/{task}")).await.status, 404);

        // So does an agent.
        let agent = ada
            .create(
                &format!("/orgs/{org}/agents"),
                json!({"name": "Short-lived", "model": "gpt-4o-mini", "instructions": "x"}),
            )
            .await;
        ada.get(&format!("/o/{org}/agents/{agent}")).await;
        let page = ada
            .post(&format!("/o/{org}/agents/{agent}/delete"), &[])
            .await;
        assert_eq!(page.location, format!("/o/{org}/agents"));
        assert!(!ada.get(&page.location).await.body.contains("Short-lived"));

        // Another org can do none of it.
        let mut eve = Browser::new(&server.base_url);
        eve.sign_up_with_org("Eve", "eve@example.com", "Eve's")
            .await;
        let page = eve
            .post(
                &format!("/o/{org}/projects/{project}"),
                &[("name", "pwned")],
            )
            .await;
        assert_eq!(page.status, 404, "{}", page.body);
        let page = eve
            .post(&format!("/o/{org}/projects"), &[("name", "planted")])
            .await;
        assert_eq!(page.status, 404, "{}", page.body);
    });
}

#[test]
fn the_org_and_ones_own_account_are_changed_and_the_org_deleted_from_settings() {
    let (_dir, server) = serve(&[]);
    runtime().block_on(async {
        let mut ada = Browser::new(&server.base_url);
        let org = ada.acme_owner().await;
        let general = format!("/o/{org}/settings/general");

        // Name, slug and the hosts agents may reach, kept beside other settings.
        ada.api(
            reqwest::Method::PATCH,
            &format!("/orgs/{org}"),
            json!({"settings": {"note": "kept"}}),
        )
        .await;
        ada.get(&general).await;
        let page = ada
            .post(
                &general,
                &[
                    ("name", "Acme Inc"),
                    ("slug", "acme-inc"),
                    ("egress_allow", "crm.internal:8443\nerp.internal"),
                ],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        let read = ada
            .api(reqwest::Method::GET, &format!("/orgs/{org}"), Value::Null)
            .await;
        assert_eq!(
            (read["name"].clone(), read["slug"].clone()),
            (json!("Acme Inc"), json!("acme-inc"))
        );
        assert_eq!(
            read["settings"],
            json!({"note": "kept", "egress": {"allow": ["crm.internal:8443", "erp.internal"]}})
        );
        let page = ada.get(&general).await;
        assert!(
            page.body.contains("crm.internal:8443\nerp.internal"),
            "{}",
            page.body
        );

        // One's own account: a new name, then a new password that signs in.
        let account = format!("/o/{org}/account");
        ada.get(&account).await;
        let page = ada
            .post(
                &account,
                &[("name", "Ada L."), ("email", "ada@example.com")],
            )
            .await;
        assert_eq!(page.location, format!("{account}?saved=1"), "{}", page.body);
        assert!(ada.get(&page.location).await.body.contains("Ada L."));
        let page = ada
            .post(
                &account,
                &[
                    ("current_password", "wrong guess"),
                    ("new_password", "an even longer one"),
                ],
            )
            .await;
        assert!(
            page.status >= 400 && page.body.contains("role=\"alert\""),
            "{}",
            page.body
        );
        ada.get(&account).await;
        let page = ada
            .post(
                &account,
                &[
                    ("current_password", "correct horse battery"),
                    ("new_password", "an even longer one"),
                ],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        let mut again = Browser::new(&server.base_url);
        again.get("/login").await;
        let page = again
            .post(
                "/login",
                &[
                    ("email", "ada@example.com"),
                    ("password", "an even longer one"),
                    ("next", ""),
                ],
            )
            .await;
        assert_eq!(page.status, 303, "the new password signs in: {}", page.body);

        // Another org can change nothing here.
        let mut eve = Browser::new(&server.base_url);
        eve.sign_up_with_org("Eve", "eve@example.com", "Eve's")
            .await;
        let page = eve
            .post(&general, &[("name", "pwned"), ("slug", "pwned")])
            .await;
        assert_eq!(page.status, 404, "{}", page.body);

        // Deleting asks for the name typed again.
        let mut ada = again;
        ada.get(&general).await;
        let delete = format!("{general}/delete");
        let page = ada.post(&delete, &[("confirm", "Acme")]).await;
        assert_eq!(page.status, 422, "{}", page.body);
        assert!(page.body.contains("Type the organization"));
        let page = ada.post(&delete, &[("confirm", "Acme Inc")]).await;
        assert_eq!(
            (page.status, page.location.as_str()),
            (303, "/"),
            "{}",
            page.body
        );
        assert_eq!(ada.get(&format!("/o/{org}")).await.status, 404);
    });
}
