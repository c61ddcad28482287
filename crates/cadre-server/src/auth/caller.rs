//! The `Caller` extractor: who is calling, and what the matched route lets
//! them do.

use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use cadre_identity::permissions::{self, Permission};
use cadre_identity::rate_limit::Decision;
use cadre_identity::{IdentityError, keys};
use cadre_types::{Plan, Scope, Tenant};
use uuid::Uuid;

use super::access::{self, Access, Category};
use crate::AppState;
use crate::error::{ApiError, ErrorCode};

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A signed-in user (the access token's subject).
    User { id: Uuid },
    ApiKey {
        id: Uuid,
        org_id: Uuid,
        created_by: Uuid,
        scopes: Vec<Scope>,
        rate_limit: Option<i64>,
    },
}

impl Principal {
    /// `user` or `api_key`, and the id, for audit entries.
    pub fn actor(&self) -> (&'static str, Uuid) {
        match self {
            Principal::User { id, .. } => ("user", *id),
            Principal::ApiKey { id, .. } => ("api_key", *id),
        }
    }

    /// The principal as the author of a change (locks, tasks, events).
    pub fn as_actor(&self) -> cadre_store::Actor {
        let (kind, id) = self.actor();
        cadre_store::Actor::new(kind, Some(id))
    }
}

/// What the request has learnt about itself on the way in, read on the way
/// out: the org it acted in and who acted (for the audit entry), and the
/// rate-limit decision (for the `X-RateLimit-*` headers).
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestScope(pub(crate) Arc<Mutex<ScopeData>>);

#[derive(Debug, Clone, Default)]
pub(crate) struct ScopeData {
    pub(crate) org_id: Option<Uuid>,
    pub(crate) actor: Option<(&'static str, Uuid)>,
    pub(crate) rate: Option<Decision>,
    pub(crate) ip: Option<String>,
    pub(crate) user_agent: Option<String>,
    /// The signed-in user's role in the authorized org (none for API keys).
    pub(crate) role: Option<cadre_types::Role>,
    /// A handler wrote a specific audit entry; skip the generic one.
    pub(crate) audited: bool,
}

impl RequestScope {
    pub(crate) fn update(&self, f: impl FnOnce(&mut ScopeData)) {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    pub(crate) fn snapshot(&self) -> ScopeData {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Marks a read the web UI makes in process for a page it renders. Such
/// reads never count against the user's rate limits (SPEC §7.4: the UI's
/// own traffic must not exhaust an API budget). Only code in this process
/// can set a request extension, so a client cannot claim it.
#[derive(Debug, Clone, Copy)]
pub struct UiRead;

/// The authenticated caller of a route, with the route's declared access.
#[derive(Debug, Clone)]
pub struct Caller {
    principal: Option<Principal>,
    access: Access,
    category: Category,
    state: AppState,
    scope: RequestScope,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let Some((access, mut category)) = access::lookup(&parts.method, &route) else {
            tracing::error!(route, method = %parts.method, "route has no access declaration in auth::access::ROUTES");
            return Err(ApiError::new(
                ErrorCode::InternalError,
                ErrorCode::InternalError.default_message(),
            ));
        };
        if parts.method == axum::http::Method::GET && parts.extensions.get::<UiRead>().is_some() {
            category = Category::Unlimited;
        }
        let scope = parts
            .extensions
            .get::<RequestScope>()
            .cloned()
            .unwrap_or_default();
        let mut caller = Caller {
            principal: None,
            access,
            category,
            state: state.clone(),
            scope,
        };
        if access == Access::Public {
            return Ok(caller);
        }
        let principal = authenticate(parts, state).await?;
        caller.scope.update(|s| s.actor = Some(principal.actor()));
        caller.principal = Some(principal);
        match access {
            Access::Public | Access::Org(_) => {}
            Access::Authenticated => caller.limit(caller.state.limits().default_plan()).await?,
            Access::PlatformAdmin => {
                let is_admin = match &caller.principal {
                    Some(Principal::User { id }) => state
                        .store()
                        .users()
                        .user_by_id(*id)
                        .await?
                        .is_some_and(|u| u.platform_role().is_admin()),
                    Some(Principal::ApiKey { .. }) | None => false,
                };
                if !is_admin {
                    return Err(ApiError::new(
                        ErrorCode::Forbidden,
                        "platform administrators only",
                    ));
                }
            }
        }
        Ok(caller)
    }
}

impl Caller {
    /// The authenticated principal (`None` only on public routes).
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    /// The signed-in user; API keys are refused (the route is about a person).
    pub fn user(&self) -> Result<Uuid, ApiError> {
        match &self.principal {
            Some(Principal::User { id }) => Ok(*id),
            Some(Principal::ApiKey { .. }) => Err(ApiError::new(
                ErrorCode::Forbidden,
                "this route needs a signed-in user, not an API key",
            )),
            None => Err(ApiError::new(
                ErrorCode::MissingToken,
                ErrorCode::MissingToken.default_message(),
            )),
        }
    }

    /// Checks that the caller may act in `org_id` as the route declares and
    /// returns the tenant to scope queries with. A caller outside the org
    /// gets 404: it never learns the org exists.
    /// Authorizes a route about one resource, given the org that owns it as
    /// the store found it (`None`: no such resource). An unknown id and a
    /// foreign one both answer 404 `what`, so neither reveals anything.
    pub async fn authorize_owner(&self, org: Option<Uuid>, what: &str) -> Result<Tenant, ApiError> {
        match org {
            Some(org) => self.authorize(org).await,
            None => Err(ApiError::not_found(what)),
        }
    }

    pub async fn authorize(&self, org_id: Uuid) -> Result<Tenant, ApiError> {
        let Access::Org(permission) = self.access else {
            tracing::error!(access = ?self.access, "authorize() called on a route not declared as an org route");
            return Err(ApiError::new(
                ErrorCode::InternalError,
                ErrorCode::InternalError.default_message(),
            ));
        };
        let Some(principal) = &self.principal else {
            return Err(ApiError::new(
                ErrorCode::MissingToken,
                ErrorCode::MissingToken.default_message(),
            ));
        };
        let (role, plan) = check_access(&self.state, principal, org_id, permission).await?;
        if let Some(role) = role {
            self.scope.update(|s| s.role = Some(role));
        }
        self.scope.update(|s| s.org_id = Some(org_id));
        self.limit(plan).await?;
        #[expect(
            clippy::disallowed_methods,
            reason = "this is the authorization layer: membership was just checked"
        )]
        Ok(Tenant::new(org_id))
    }

    /// The signed-in user's role in the org of the last [`Caller::authorize`]
    /// (read there, so handlers need not query it again); `None` for API
    /// keys, which act with their scopes rather than a role.
    pub fn role(&self) -> Option<cadre_types::Role> {
        self.scope.snapshot().role
    }

    /// The client's address, as the connection reports it.
    pub fn ip(&self) -> Option<String> {
        self.scope.snapshot().ip
    }

    /// Writes a specific audit entry for this request (instead of the
    /// generic one). `org_id` `None` writes to the platform chain. Details
    /// are redacted here.
    pub async fn audit(
        &self,
        org_id: Option<Uuid>,
        actor: Option<(&'static str, Uuid)>,
        action: &str,
        resource: Option<(&str, String)>,
        mut details: serde_json::Value,
    ) {
        cadre_types::redact::redact_json(&mut details);
        let data = self.scope.snapshot();
        let actor = actor.or(data.actor);
        let entry = cadre_store::NewAuditEntry {
            actor_type: actor.map_or("anonymous", |a| a.0).to_owned(),
            actor_id: actor.map(|a| a.1.to_string()),
            action: action.to_owned(),
            resource_type: resource.as_ref().map(|r| r.0.to_owned()),
            resource_id: resource.map(|r| r.1),
            ip: data.ip,
            user_agent: data.user_agent,
            details,
        };
        let chain = org_id
            .or(data.org_id)
            .unwrap_or(cadre_store::PLATFORM_CHAIN);
        match self
            .state
            .store()
            .audit()
            .append_audit(chain, &entry, cadre_types::time::now())
            .await
        {
            Ok(_) => self.scope.update(|s| s.audited = true),
            Err(e) => tracing::error!(error = %e, action, "could not write an audit entry"),
        }
    }

    /// Counts the request against the default plan's limit: for org routes
    /// that, in some forms, act in no org (`GET /templates` without
    /// `orgId`).
    pub async fn limit_unscoped(&self) -> Result<(), ApiError> {
        self.limit(self.state.limits().default_plan()).await
    }

    async fn limit(&self, plan: Plan) -> Result<(), ApiError> {
        let (who, key_limit) = match &self.principal {
            Some(Principal::User { id, .. }) => (format!("user:{id}"), None),
            Some(Principal::ApiKey { id, rate_limit, .. }) => (format!("key:{id}"), *rate_limit),
            None => return Ok(()),
        };
        match self
            .state
            .limits()
            .check(&who, plan, self.category, key_limit)
            .await
        {
            Ok(decision) => {
                self.scope.update(|s| s.rate = decision);
                Ok(())
            }
            Err(err) => {
                self.scope.update(|s| s.rate = err.rate);
                Err(err)
            }
        }
    }
}

/// Whether `principal` may act in `org_id` with `permission`: the user's
/// role (`None` for API keys, which act with their scopes) and the org's
/// plan. A principal outside the org gets 404: it never learns the org
/// exists.
async fn check_access(
    state: &AppState,
    principal: &Principal,
    org_id: Uuid,
    permission: Permission,
) -> Result<(Option<cadre_types::Role>, Plan), ApiError> {
    let store = state.store();
    match principal {
        Principal::User { id, .. } => {
            let (role, plan) = store
                .orgs()
                .membership(*id, org_id)
                .await?
                .ok_or_else(|| ApiError::not_found("resource"))?;
            if !permissions::role_allows(role, permission) {
                return Err(forbidden(permission, &format!("the {role} role")));
            }
            Ok((Some(role), plan))
        }
        Principal::ApiKey {
            org_id: key_org,
            created_by,
            scopes,
            ..
        } => {
            if *key_org != org_id {
                return Err(ApiError::not_found("resource"));
            }
            if !permissions::scopes_allow(scopes, permission) {
                return Err(forbidden(permission, "this API key's scopes"));
            }
            // A key never does more than the member who created it can.
            let (role, plan) = store
                .orgs()
                .membership(*created_by, org_id)
                .await?
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidApiKey,
                        "the member who created this API key has left the organization",
                    )
                })?;
            if !permissions::role_allows(role, permission) {
                return Err(forbidden(permission, "the role of this API key's creator"));
            }
            Ok((None, plan))
        }
    }
}

/// Authorizes a principal outside a request (a WebSocket subscription):
/// the same membership, role and scope checks as [`Caller::authorize`],
/// without counting against the API rate limit (SPEC §7.4: the UI's own
/// live traffic never spends a user's API budget).
pub(crate) async fn authorize_principal(
    state: &AppState,
    principal: &Principal,
    org_id: Uuid,
    permission: Permission,
) -> Result<Tenant, ApiError> {
    check_access(state, principal, org_id, permission).await?;
    #[expect(
        clippy::disallowed_methods,
        reason = "this is the authorization layer: membership was just checked"
    )]
    Ok(Tenant::new(org_id))
}

fn forbidden(permission: Permission, what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Forbidden,
        format!("{what} does not allow this ({permission:?})"),
    )
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let api_key = parts
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let bearer = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match (api_key, bearer) {
        (Some(key), _) => api_key_principal(key, state).await,
        (None, Some(token)) if token.starts_with(keys::API_KEY_PREFIX) => {
            api_key_principal(token, state).await
        }
        (None, Some(token)) => {
            let claims = state
                .accounts()
                .tokens()
                .verify(token)
                .map_err(|e| match e {
                    IdentityError::TokenExpired => ApiError::new(
                        ErrorCode::TokenExpired,
                        "the access token has expired; refresh it",
                    ),
                    _ => ApiError::new(ErrorCode::InvalidToken, "the access token is invalid"),
                })?;
            // The signature is the proof; the account itself is read only by
            // the routes that need it (org routes check membership, which a
            // deleted account no longer has).
            Ok(Principal::User { id: claims.sub })
        }
        (None, None) => Err(ApiError::new(
            ErrorCode::MissingToken,
            ErrorCode::MissingToken.default_message(),
        )),
    }
}

/// The principal behind a WebSocket token: the user, or the API key if it
/// is still active.
pub(crate) async fn ws_principal(
    holder: cadre_store::WsHolder,
    state: &AppState,
) -> Result<Principal, ApiError> {
    match holder {
        cadre_store::WsHolder::User(id) => Ok(Principal::User { id }),
        cadre_store::WsHolder::ApiKey(id) => {
            let row = state
                .store()
                .api_keys()
                .active_api_key_by_id(id, cadre_types::time::now())
                .await?
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidApiKey,
                        ErrorCode::InvalidApiKey.default_message(),
                    )
                })?;
            Ok(key_principal(row))
        }
    }
}

async fn api_key_principal(key: &str, state: &AppState) -> Result<Principal, ApiError> {
    let invalid = || {
        ApiError::new(
            ErrorCode::InvalidApiKey,
            ErrorCode::InvalidApiKey.default_message(),
        )
    };
    if !keys::looks_like_api_key(key) {
        return Err(invalid());
    }
    let row = state
        .store()
        .api_keys()
        .active_api_key(&keys::token_hash(key), cadre_types::time::now())
        .await?
        .ok_or_else(invalid)?;
    state.key_usage().record(row.id);
    Ok(key_principal(row))
}

fn key_principal(row: cadre_store::ApiKeyRow) -> Principal {
    Principal::ApiKey {
        id: row.id,
        org_id: row.org_id,
        created_by: row.created_by,
        scopes: row.scopes.0,
        rate_limit: row.rate_limit_per_minute,
    }
}
