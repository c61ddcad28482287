//! The route table's permission column: what each route requires.

use axum::http::Method;
use cadre_identity::permissions::Permission;

/// What a route requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, sign-up, sign-in…).
    Public,
    /// Any signed-in user or API key.
    Authenticated,
    /// A member of the organization the route names (or whose resource it
    /// names) with this permission.
    Org(Permission),
    /// A platform `admin` or `super_admin`.
    PlatformAdmin,
}

/// Which rate limit a route counts against (SPEC §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Api,
    Chat,
    Executions,
    Uploads,
    /// Not counted (health, metrics, the sign-in flow has its own throttles).
    Unlimited,
}

use Access::{Authenticated, Org, PlatformAdmin, Public};
use Category::{Api, Chat, Executions, Unlimited};
use Permission::{Approve, DeleteOrg, EditWork, ManageAgents, ManageIntegrations, ManageOrg, View};

/// Every route: method, path template, access, rate-limit category.
pub const ROUTES: &[(&str, &str, Access, Category)] = &[
    ("GET", "/api/v1/health", Public, Unlimited),
    ("GET", "/api/v1/health/detailed", Public, Unlimited),
    ("GET", "/api/v1/openapi.json", Public, Unlimited),
    ("GET", "/metrics", Public, Unlimited),
    ("POST", "/api/v1/auth/signup", Public, Unlimited),
    ("POST", "/api/v1/auth/login", Public, Unlimited),
    ("POST", "/api/v1/auth/refresh", Public, Unlimited),
    ("POST", "/api/v1/auth/logout", Public, Unlimited),
    ("POST", "/api/v1/auth/forgot-password", Public, Unlimited),
    ("POST", "/api/v1/auth/reset-password", Public, Unlimited),
    ("GET", "/api/v1/auth/me", Authenticated, Api),
    ("PATCH", "/api/v1/auth/me", Authenticated, Api),
    // Live traffic never spends the API budget (SPEC §7.4).
    ("POST", "/api/v1/auth/ws-token", Authenticated, Unlimited),
    ("GET", "/ws", Public, Unlimited),
    ("POST", "/api/v1/orgs/{orgId}/chat", Org(EditWork), Chat),
    (
        "POST",
        "/api/v1/orgs/{orgId}/chat/stream",
        Org(EditWork),
        Chat,
    ),
    ("GET", "/api/v1/orgs/{orgId}/chat/sessions", Org(View), Api),
    ("GET", "/api/v1/chat/sessions/{id}", Org(View), Api),
    ("DELETE", "/api/v1/chat/sessions/{id}", Org(View), Api),
    (
        "GET",
        "/api/v1/executions/{id}/events",
        Org(View),
        Unlimited,
    ),
    // The org comes from the query, the body or the key itself.
    ("GET", "/api/v1/api-keys", Org(ManageOrg), Api),
    ("POST", "/api/v1/api-keys", Org(ManageOrg), Api),
    ("DELETE", "/api/v1/api-keys/{keyId}", Org(ManageOrg), Api),
    ("GET", "/api/v1/orgs", Authenticated, Api),
    ("POST", "/api/v1/orgs", Authenticated, Api),
    ("GET", "/api/v1/orgs/{orgId}", Org(View), Api),
    ("PATCH", "/api/v1/orgs/{orgId}", Org(ManageOrg), Api),
    ("DELETE", "/api/v1/orgs/{orgId}", Org(DeleteOrg), Api),
    ("GET", "/api/v1/orgs/{orgId}/members", Org(View), Api),
    ("POST", "/api/v1/orgs/{orgId}/members", Org(ManageOrg), Api),
    (
        "GET",
        "/api/v1/orgs/{orgId}/invitations",
        Org(ManageOrg),
        Api,
    ),
    (
        "DELETE",
        "/api/v1/orgs/{orgId}/invitations/{invitationId}",
        Org(ManageOrg),
        Api,
    ),
    (
        "PATCH",
        "/api/v1/orgs/{orgId}/members/{userId}",
        Org(ManageOrg),
        Api,
    ),
    (
        "DELETE",
        "/api/v1/orgs/{orgId}/members/{userId}",
        Org(ManageOrg),
        Api,
    ),
    (
        "POST",
        "/api/v1/invitations/{token}/accept",
        Authenticated,
        Api,
    ),
    ("GET", "/api/v1/orgs/{orgId}/projects", Org(View), Api),
    ("POST", "/api/v1/orgs/{orgId}/projects", Org(EditWork), Api),
    ("GET", "/api/v1/projects/{projectId}", Org(View), Api),
    ("PATCH", "/api/v1/projects/{projectId}", Org(EditWork), Api),
    ("DELETE", "/api/v1/projects/{projectId}", Org(EditWork), Api),
    ("GET", "/api/v1/orgs/{orgId}/usage", Org(View), Api),
    ("GET", "/api/v1/orgs/{orgId}/audit-log", Org(ManageOrg), Api),
    (
        "GET",
        "/api/v1/orgs/{orgId}/audit-log/verify",
        Org(ManageOrg),
        Api,
    ),
    ("GET", "/api/v1/orgs/{orgId}/models", Org(View), Api),
    (
        "PUT",
        "/api/v1/orgs/{orgId}/models",
        Org(ManageIntegrations),
        Api,
    ),
    ("GET", "/api/v1/admin/orgs", PlatformAdmin, Api),
    ("GET", "/api/v1/agent-templates", Authenticated, Api),
    ("GET", "/api/v1/orgs/{orgId}/agents", Org(View), Api),
    (
        "POST",
        "/api/v1/orgs/{orgId}/agents",
        Org(ManageAgents),
        Api,
    ),
    ("GET", "/api/v1/agents/{agentId}", Org(View), Api),
    ("PATCH", "/api/v1/agents/{agentId}", Org(ManageAgents), Api),
    ("DELETE", "/api/v1/agents/{agentId}", Org(ManageAgents), Api),
    ("GET", "/api/v1/agents/{agentId}/versions", Org(View), Api),
    (
        "GET",
        "/api/v1/agents/{agentId}/versions/{version}",
        Org(View),
        Api,
    ),
    ("GET", "/api/v1/agents/{agentId}/metrics", Org(View), Api),
    (
        "POST",
        "/api/v1/agents/{agentId}/execute",
        Org(EditWork),
        Executions,
    ),
    ("GET", "/api/v1/orgs/{orgId}/executions", Org(View), Api),
    ("GET", "/api/v1/executions/{id}", Org(View), Api),
    ("GET", "/api/v1/executions/{id}/trace", Org(View), Api),
    (
        "GET",
        "/api/v1/executions/{id}/trace/verify",
        Org(View),
        Api,
    ),
    ("POST", "/api/v1/executions/{id}/pause", Org(EditWork), Api),
    ("POST", "/api/v1/executions/{id}/resume", Org(EditWork), Api),
    ("POST", "/api/v1/executions/{id}/cancel", Org(EditWork), Api),
    ("POST", "/api/v1/executions/{id}/input", Org(EditWork), Api),
    (
        "POST",
        "/api/v1/executions/{id}/fork",
        Org(EditWork),
        Executions,
    ),
    (
        "POST",
        "/api/v1/tasks/{taskId}/execute",
        Org(EditWork),
        Executions,
    ),
    ("GET", "/api/v1/tasks/{taskId}", Org(View), Api),
    ("PATCH", "/api/v1/tasks/{taskId}", Org(EditWork), Api),
    ("DELETE", "/api/v1/tasks/{taskId}", Org(EditWork), Api),
    ("GET", "/api/v1/projects/{projectId}/tasks", Org(View), Api),
    ("GET", "/api/v1/projects/{projectId}/graph", Org(View), Api),
    (
        "POST",
        "/api/v1/projects/{projectId}/tasks",
        Org(EditWork),
        Api,
    ),
    ("GET", "/api/v1/tasks/{taskId}/children", Org(View), Api),
    ("GET", "/api/v1/tasks/{taskId}/versions", Org(View), Api),
    (
        "GET",
        "/api/v1/tasks/{taskId}/versions/{version}",
        Org(View),
        Api,
    ),
    (
        "POST",
        "/api/v1/tasks/{taskId}/rollback/{version}",
        Org(EditWork),
        Api,
    ),
    ("POST", "/api/v1/tasks/{taskId}/lock", Org(EditWork), Api),
    ("DELETE", "/api/v1/tasks/{taskId}/lock", Org(EditWork), Api),
    ("POST", "/api/v1/tasks/{taskId}/inputs", Org(EditWork), Api),
    (
        "DELETE",
        "/api/v1/tasks/{taskId}/inputs/{inputId}",
        Org(EditWork),
        Api,
    ),
    ("POST", "/api/v1/tasks/{taskId}/outputs", Org(EditWork), Api),
    (
        "DELETE",
        "/api/v1/tasks/{taskId}/outputs/{outputId}",
        Org(EditWork),
        Api,
    ),
    ("GET", "/api/v1/tasks/{taskId}/dependencies", Org(View), Api),
    (
        "POST",
        "/api/v1/tasks/{taskId}/dependencies",
        Org(EditWork),
        Api,
    ),
    (
        "DELETE",
        "/api/v1/tasks/{taskId}/dependencies/{depId}",
        Org(EditWork),
        Api,
    ),
    ("GET", "/api/v1/orgs/{orgId}/events", Org(View), Api),
    // The built-in list needs only a sign-in; `?orgId=` authorizes that org.
    ("GET", "/api/v1/templates", Org(View), Api),
    ("POST", "/api/v1/orgs/{orgId}/templates", Org(EditWork), Api),
    (
        "POST",
        "/api/v1/templates/{templateId}/apply",
        Org(EditWork),
        Api,
    ),
    ("GET", "/api/v1/orgs/{orgId}/approvals", Org(View), Api),
    ("POST", "/api/v1/approvals/{id}/approve", Org(Approve), Api),
    ("POST", "/api/v1/approvals/{id}/reject", Org(Approve), Api),
];

/// The declaration for a matched route, if there is one.
pub fn lookup(method: &Method, route: &str) -> Option<(Access, Category)> {
    // HEAD is served by GET routes.
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES
        .iter()
        .find(|(m, path, _, _)| *path == route && *m == method)
        .map(|(_, _, access, category)| (*access, *category))
}
