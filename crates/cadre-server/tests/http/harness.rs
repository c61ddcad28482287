//! A real server on port 0 with probe routes that exercise what the
//! foundation's own routes cannot (JSON bodies, panics, slow handlers).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query};
use axum::routing::{get, post};
use cadre_config::{Config, Overrides, Sources};
use cadre_runtime::{CancellationToken, Supervisor};
use cadre_server::{ApiError, ApiJson, ApiResponse, ApiResult, AppParts, AppState};
use cadre_testkit::TestDb;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

pub const TEST_JWT_SECRET: &[u8] = b"test-secret-test-secret-test-secret-0123";

pub struct TestServer {
    pub state: AppState,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub db: TestDb,
    pub shutdown: CancellationToken,
    pub served: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(&[]).await
    }

    /// A server that also runs executions: the engine under a worker, as
    /// `cadre serve` does.
    pub async fn start_with_workers() -> TestServer {
        let app = Self::start().await;
        let engine = cadre_engine::Engine::new(
            app.state.store().clone(),
            app.state.secrets().clone(),
            app.state.llm().clone(),
            cadre_engine::egress::Egress::new(cadre_engine::egress::AllowList::default()).unwrap(),
            cadre_engine::EngineConfig::default(),
            app.state.realtime().clone(),
        );
        let registry = cadre_worker::Registry::default().on(cadre_engine::ADVANCE, move |ctx| {
            let engine = engine.clone();
            async move { engine.run(ctx).await }
        });
        let config = cadre_worker::WorkerConfig {
            queues: vec![(cadre_engine::QUEUE.to_owned(), 4)],
            ..cadre_worker::WorkerConfig::default()
        };
        cadre_worker::Worker::new(
            app.state.store().clone(),
            registry,
            config,
            app.state.instance_id(),
        )
        .start(app.state.supervisor());
        app
    }

    /// Starts a server whose configuration has these `CADRE_*` variables.
    pub async fn start_with(vars: &[(&str, &str)]) -> TestServer {
        let vars = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let config = Config::load(Sources::Given(vars), &Overrides::default()).unwrap();
        let db = TestDb::sqlite().await;
        let supervisor = Supervisor::new();
        let realtime = cadre_realtime::Realtime::connect(
            cadre_config::ExposeSecret::expose_secret(&config.redis.url),
            &supervisor,
            cadre_realtime::Limits::default(),
        )
        .await
        .unwrap();
        db.store
            .on_committed_events(std::sync::Arc::new(realtime.clone()));
        let parts = AppParts::from_config(
            &config,
            db.store.clone(),
            supervisor,
            uuid::Uuid::now_v7(),
            TEST_JWT_SECRET,
            &[9; 32],
            realtime,
        )
        .await
        .unwrap();
        let state = AppState::new(parts);
        let app = cadre_server::router_with(probes(), state.clone(), &config.server);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        #[expect(
            clippy::disallowed_methods,
            reason = "the test owns this task and joins it"
        )]
        let served = tokio::spawn(cadre_server::serve(listener, app, shutdown.clone()));
        TestServer {
            state,
            addr,
            client: reqwest::Client::new(),
            db,
            shutdown,
            served,
        }
    }

    pub fn state_accounts(&self) -> &cadre_identity::accounts::Accounts {
        self.state.accounts()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// A request with `Authorization: Bearer token`.
    pub fn authed(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    /// Signs up and returns the session (`user`, `accessToken`, `refreshToken`).
    pub async fn signup(&self, email: &str) -> serde_json::Value {
        let input = serde_json::json!({"email": email, "password": "correct horse battery", "name": "Test Person"});
        let resp = self
            .client
            .post(self.url("/api/v1/auth/signup"))
            .json(&input)
            .send()
            .await
            .unwrap();
        let (status, _, json) = body(resp).await;
        assert_eq!(status, 201, "{json}");
        json["data"].clone()
    }

    /// Signs up and returns the access token.
    pub async fn user_token(&self, email: &str) -> String {
        self.signup(email).await["accessToken"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates an org as the holder of `token`; returns its id.
    pub async fn create_org(&self, token: &str, name: &str) -> String {
        let resp = self
            .authed(reqwest::Method::POST, "/api/v1/orgs", token)
            .json(&serde_json::json!({"name": name}))
            .send()
            .await
            .unwrap();
        let (status, _, json) = body(resp).await;
        assert_eq!(status, 201, "{json}");
        json["data"]["id"].as_str().unwrap().to_owned()
    }

    /// Invites `email` into `org` with `role` and has the holder of
    /// `invitee_token` accept.
    pub async fn add_member(
        &self,
        owner_token: &str,
        org: &str,
        email: &str,
        invitee_token: &str,
        role: &str,
    ) {
        let resp = self
            .authed(
                reqwest::Method::POST,
                &format!("/api/v1/orgs/{org}/members"),
                owner_token,
            )
            .json(&serde_json::json!({"email": email, "role": role}))
            .send()
            .await
            .unwrap();
        let (status, _, json) = body(resp).await;
        assert_eq!(status, 201, "{json}");
        let token = json["data"]["token"].as_str().unwrap();
        let resp = self
            .authed(
                reqwest::Method::POST,
                &format!("/api/v1/invitations/{token}/accept"),
                invitee_token,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    /// `method path` with a JSON `body` as the holder of `token`; the
    /// answer must have `status`. Returns its `data`.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: serde_json::Value,
        status: u16,
    ) -> serde_json::Value {
        let resp = self
            .authed(method, path, token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (got, _, json) = self::body(resp).await;
        assert_eq!(got, status, "{path}: {json}");
        json["data"].clone()
    }

    /// An agent of `org` made from `spec`; its id.
    pub async fn agent(&self, token: &str, org: &str, spec: serde_json::Value) -> String {
        let path = format!("/api/v1/orgs/{org}/agents");
        self.call(reqwest::Method::POST, &path, token, spec, 201)
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Starts `agent` on a new task (`task`: its title and project); the
    /// execution.
    pub async fn execute(
        &self,
        token: &str,
        agent: &str,
        task: serde_json::Value,
    ) -> serde_json::Value {
        let path = format!("/api/v1/agents/{agent}/execute");
        self.call(
            reqwest::Method::POST,
            &path,
            token,
            serde_json::json!({"task": task}),
            202,
        )
        .await
    }

    pub async fn post_json(&self, path: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }
}

#[derive(Debug, Deserialize, Serialize)]
struct EchoIn {
    name: String,
    count: u32,
}

#[derive(Debug, Deserialize)]
struct SlowQuery {
    ms: u64,
}

fn probes() -> Router<AppState> {
    Router::new()
        .route(
            "/probe/echo",
            post(|ApiJson(body): ApiJson<EchoIn>| async move { ApiResponse::created(body) }),
        )
        .route("/probe/panic", get(|| async { panic_now() }))
        .route(
            "/probe/internal",
            get(|| async {
                let cause = std::io::Error::other("password=hunter22 at db.internal:5432");
                ApiResult::<ApiResponse<()>>::Err(ApiError::internal(&cause))
            }),
        )
        .route(
            "/probe/slow",
            get(|Query(q): Query<SlowQuery>| async move {
                tokio::time::sleep(Duration::from_millis(q.ms)).await;
                ApiResponse::ok("done")
            }),
        )
        .route(
            "/probe/held",
            get(|| async {
                HELD_ENTERED.notify_one();
                tokio::time::sleep(Duration::from_millis(300)).await;
                ApiResponse::ok("finished")
            }),
        )
        .route(
            "/probe/items/{id}",
            get(|Path(id): Path<String>| async move { ApiResponse::ok(id) }),
        )
}

/// Signalled when `/probe/held` starts serving (used by one test only).
pub static HELD_ENTERED: tokio::sync::Notify = tokio::sync::Notify::const_new();

fn panic_now() -> ApiResponse<()> {
    panic!("probe panic with internals: /etc/secret")
}

/// The parsed body and the request id header of a response.
pub async fn body(resp: reqwest::Response) -> (reqwest::StatusCode, String, serde_json::Value) {
    let status = resp.status();
    let id = resp
        .headers()
        .get("x-request-id")
        .expect("every response carries X-Request-Id")
        .to_str()
        .unwrap()
        .to_owned();
    let text = resp.text().await.unwrap();
    let json =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"));
    (status, id, json)
}

/// Asserts the SPEC §7.1 error envelope and returns it.
pub async fn expect_error(resp: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    let (got, id, json) = body(resp).await;
    assert_eq!(got.as_u16(), status, "{json}");
    assert_eq!(json["success"], false, "{json}");
    assert_eq!(json["error"]["code"], code, "{json}");
    assert_eq!(
        json["error"]["requestId"],
        id.as_str(),
        "the envelope carries the header's request id"
    );
    assert!(
        json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{json}"
    );
    assert!(json["timestamp"].is_string(), "{json}");
    json
}
