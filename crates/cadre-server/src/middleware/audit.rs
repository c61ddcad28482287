//! Per-request scope for authorization (org, actor, rate-limit decision),
//! the `X-RateLimit-*` headers, and the audit entry of every successful
//! mutating request that a handler did not describe more precisely itself.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use cadre_store::{NewAuditEntry, PLATFORM_CHAIN};

use crate::AppState;
use crate::auth::RequestScope;

pub(crate) async fn audit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let scope = RequestScope::default();
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let user_agent = req
        .headers()
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(512).collect::<String>());
    scope.update(|s| {
        s.ip.clone_from(&ip);
        s.user_agent.clone_from(&user_agent);
    });
    req.extensions_mut().insert(scope.clone());
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());

    let mut response = next.run(req).await;

    let data = scope.snapshot();
    if let Some(rate) = data.rate {
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-limit", HeaderValue::from(rate.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(rate.remaining));
        headers.insert(
            "x-ratelimit-reset",
            HeaderValue::from(rate.reset_after.as_secs().max(1)),
        );
    }
    let mutating = matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if mutating
        && response.status().is_success()
        && !data.audited
        && let (Some((actor_type, actor_id)), Some(route)) = (data.actor, route)
    {
        let entry = NewAuditEntry {
            actor_type: actor_type.to_owned(),
            actor_id: Some(actor_id.to_string()),
            action: format!("{method} {route}"),
            resource_type: None,
            resource_id: None,
            ip,
            user_agent,
            details: serde_json::json!({ "status": response.status().as_u16() }),
        };
        let org = data.org_id.unwrap_or(PLATFORM_CHAIN);
        if let Err(e) = state
            .store()
            .audit()
            .append_audit(org, &entry, cadre_types::time::now())
            .await
        {
            tracing::error!(error = %e, "could not write the audit entry of a completed request");
        }
    }
    response
}
