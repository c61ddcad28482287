//! Cadre's web UI, served by `cadre serve` at `/`.
//!
//! Pages are rendered on the server (askama) from what the HTTP API answers
//! ([`api`]): the UI is one more client of the API, called in process, so
//! every rule the API enforces holds for the UI by construction. Small ES
//! modules add live updates over the WebSocket, streaming chat and inline
//! actions; without them every page still works with plain forms. Every
//! asset is compiled into the binary ([`assets`]); pages make no request to
//! any other host.

pub mod api;
mod assets;
mod diff;
mod form;
mod pages;
mod session;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};
use cadre_server::AppState;

pub use session::{Session, Visit};

/// Every page gets this policy: scripts and styles only from this origin,
/// no inline script, nothing fetched from anywhere else.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// What the UI's handlers share.
#[derive(Clone)]
pub struct Web {
    inner: Arc<Inner>,
}

struct Inner {
    api: api::Api,
    app: AppState,
    secure_cookies: bool,
    refresh_ttl_secs: u64,
    rotations: session::Rotations,
}

impl Web {
    /// `api` is the HTTP API's router (what [`cadre_server::router`] builds);
    /// cookies are marked `Secure` when the public URL is `https`.
    pub fn new(api: Router, app: AppState, refresh_ttl_secs: u64) -> Self {
        let secure_cookies = app.public_url().starts_with("https://");
        Self {
            inner: Arc::new(Inner {
                api: api::Api::new(api),
                app,
                secure_cookies,
                refresh_ttl_secs,
                rotations: session::Rotations::default(),
            }),
        }
    }

    pub fn api(&self) -> &api::Api {
        &self.inner.api
    }

    pub fn app(&self) -> &AppState {
        &self.inner.app
    }

    fn secure_cookies(&self) -> bool {
        self.inner.secure_cookies
    }

    fn refresh_ttl_secs(&self) -> u64 {
        self.inner.refresh_ttl_secs
    }

    fn rotations(&self) -> &session::Rotations {
        &self.inner.rotations
    }
}

/// The UI's routes, to merge beside the API (`cadre_server::router_with`).
pub fn router<S: Clone + Send + Sync + 'static>(web: Web) -> Router<S> {
    use pages::{account, agents, approvals, auth, chat, executions, home, settings, tasks};
    let pages = Router::new()
        .route("/", get(home::root))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/signup", get(auth::signup_page).post(auth::signup))
        .route("/logout", post(auth::logout))
        .route("/forgot", get(auth::forgot_page).post(auth::forgot))
        .route("/reset-password", get(auth::reset_page).post(auth::reset))
        .route("/orgs/new", get(home::new_org_page).post(home::create_org))
        .route("/ui/ws-token", post(home::ws_token))
        .route("/o/{org}", get(home::command_center))
        .route("/o/{org}/agents", get(agents::list))
        .route(
            "/o/{org}/agents/new",
            get(agents::new_page).post(agents::create),
        )
        .route(
            "/o/{org}/agents/{id}",
            get(agents::detail).post(agents::update),
        )
        .route("/o/{org}/agents/{id}/status", post(agents::set_status))
        .route("/o/{org}/agents/{id}/delete", post(agents::delete))
        .route("/o/{org}/agents/{id}/diff", get(agents::diff))
        .route("/o/{org}/tasks", get(tasks::tree).post(tasks::create))
        .route(
            "/o/{org}/tasks/{id}",
            get(tasks::detail).post(tasks::update),
        )
        .route("/o/{org}/tasks/{id}/run", post(tasks::run))
        .route("/o/{org}/tasks/{id}/delete", post(tasks::delete))
        .route("/o/{org}/projects", post(tasks::create_project))
        .route("/o/{org}/projects/{id}", post(tasks::update_project))
        .route("/o/{org}/tasks/{id}/rollback", post(tasks::rollback))
        .route("/o/{org}/tasks/{id}/dependencies", post(tasks::dependency))
        .route("/o/{org}/executions", get(executions::list))
        .route("/o/{org}/executions/{id}", get(executions::detail))
        .route("/o/{org}/executions/{id}/{action}", post(executions::act))
        .route("/o/{org}/approvals", get(approvals::inbox))
        .route("/o/{org}/approvals/{id}/{verdict}", post(approvals::decide))
        .route("/o/{org}/account", get(account::page).post(account::update))
        .route("/o/{org}/chat", get(chat::index).post(chat::send))
        .route("/o/{org}/chat/stream", post(chat::stream))
        .route("/o/{org}/chat/{id}", get(chat::session))
        .route("/o/{org}/chat/{id}/delete", post(chat::delete))
        .route("/o/{org}/settings", get(settings::index))
        .route(
            "/o/{org}/settings/general",
            get(settings::general).post(settings::update_general),
        )
        .route(
            "/o/{org}/settings/general/delete",
            post(settings::delete_org),
        )
        .route(
            "/o/{org}/settings/members",
            get(settings::members).post(settings::invite),
        )
        .route(
            "/o/{org}/settings/members/{user}",
            post(settings::change_member),
        )
        .route(
            "/o/{org}/settings/invitations/{id}/revoke",
            post(settings::revoke_invitation),
        )
        .route(
            "/o/{org}/settings/keys",
            get(settings::keys).post(settings::create_key),
        )
        .route(
            "/o/{org}/settings/keys/{id}/revoke",
            post(settings::revoke_key),
        )
        .route(
            "/o/{org}/settings/models",
            get(settings::models).post(settings::change_model),
        )
        .route(
            "/o/{org}/settings/budgets",
            get(settings::budgets).post(settings::set_plan),
        )
        .route("/o/{org}/settings/audit", get(settings::audit))
        .route(
            "/invitations/{token}",
            get(settings::invitation_page).post(settings::accept_invitation),
        )
        .layer(middleware::from_fn_with_state(web.clone(), session::visit))
        .layer(middleware::map_response(page_headers));
    Router::new()
        .route("/assets/{*file}", get(assets::serve))
        .merge(pages)
        .with_state(web)
}

async fn page_headers(mut response: Response) -> Response {
    // A page's error status keeps its page (the API would envelope it).
    response.extensions_mut().insert(cadre_server::Enveloped);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}
