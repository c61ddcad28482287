//! The route table: paths → handlers, nothing else. Each route's access is
//! declared in `crate::auth::access::ROUTES`.

mod admin;
mod agents;
mod api_keys;
mod audit;
mod auth;
mod chat;
mod events;
mod executions;
mod health;
mod meta;
mod models;
mod orgs;
mod projects;
mod realtime;
mod task_graph;
mod task_io;
mod task_templates;
mod tasks;
mod usage;

use axum::routing::get;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub(crate) use executions::{Origin, Verdict, record_decision, start_execution};
pub(crate) use projects::inbox_project;
pub(crate) use tasks::{lock_ttl, take_lock};

/// Every `/api/v1` route, with its OpenAPI description.
pub(crate) fn api_v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::health_handler))
        .routes(routes!(health::health_detailed_handler))
        .routes(routes!(auth::signup_handler))
        .routes(routes!(auth::login_handler))
        .routes(routes!(auth::refresh_handler))
        .routes(routes!(auth::logout_handler))
        .routes(routes!(auth::forgot_password_handler))
        .routes(routes!(auth::reset_password_handler))
        .routes(routes!(auth::me_handler, auth::update_me_handler))
        .routes(routes!(realtime::ws_token_handler))
        .routes(routes!(realtime::execution_events_handler))
        .routes(routes!(chat::chat_handler))
        .routes(routes!(chat::chat_stream_handler))
        .routes(routes!(chat::list_sessions_handler))
        .routes(routes!(
            chat::get_session_handler,
            chat::delete_session_handler
        ))
        .routes(routes!(
            api_keys::list_api_keys_handler,
            api_keys::create_api_key_handler
        ))
        .routes(routes!(api_keys::revoke_api_key_handler))
        .routes(routes!(orgs::list_orgs_handler, orgs::create_org_handler))
        .routes(routes!(
            orgs::get_org_handler,
            orgs::update_org_handler,
            orgs::delete_org_handler
        ))
        .routes(routes!(
            orgs::list_members_handler,
            orgs::invite_member_handler
        ))
        .routes(routes!(
            orgs::update_member_handler,
            orgs::remove_member_handler
        ))
        .routes(routes!(orgs::list_invitations_handler))
        .routes(routes!(orgs::revoke_invitation_handler))
        .routes(routes!(orgs::accept_invitation_handler))
        .routes(routes!(
            projects::list_projects_handler,
            projects::create_project_handler
        ))
        .routes(routes!(
            projects::get_project_handler,
            projects::update_project_handler,
            projects::delete_project_handler
        ))
        .routes(routes!(usage::usage_handler))
        .routes(routes!(audit::audit_log_handler))
        .routes(routes!(audit::verify_audit_handler))
        .routes(routes!(
            models::list_models_handler,
            models::put_models_handler
        ))
        .routes(routes!(admin::admin_orgs_handler))
        .routes(routes!(agents::list_templates_handler))
        .routes(routes!(
            agents::list_agents_handler,
            agents::create_agent_handler
        ))
        .routes(routes!(
            agents::get_agent_handler,
            agents::update_agent_handler,
            agents::delete_agent_handler
        ))
        .routes(routes!(agents::list_versions_handler))
        .routes(routes!(agents::get_version_handler))
        .routes(routes!(agents::agent_metrics_handler))
        .routes(routes!(agents::execute_agent_handler))
        .routes(routes!(executions::list_executions_handler))
        .routes(routes!(executions::get_execution_handler))
        .routes(routes!(executions::trace_handler))
        .routes(routes!(executions::verify_trace_handler))
        .routes(routes!(executions::pause_handler))
        .routes(routes!(executions::resume_handler))
        .routes(routes!(executions::cancel_handler))
        .routes(routes!(executions::input_handler))
        .routes(routes!(executions::fork_handler))
        .routes(routes!(tasks::execute_task_handler))
        .routes(routes!(
            tasks::list_tasks_handler,
            tasks::create_task_handler
        ))
        .routes(routes!(
            tasks::get_task_handler,
            tasks::update_task_handler,
            tasks::delete_task_handler
        ))
        .routes(routes!(tasks::children_handler))
        .routes(routes!(tasks::versions_handler))
        .routes(routes!(tasks::version_handler))
        .routes(routes!(tasks::rollback_handler))
        .routes(routes!(tasks::lock_handler, tasks::unlock_handler))
        .routes(routes!(task_io::add_input_handler))
        .routes(routes!(task_io::delete_input_handler))
        .routes(routes!(task_io::add_output_handler))
        .routes(routes!(task_io::delete_output_handler))
        .routes(routes!(
            task_graph::graph_handler,
            task_graph::add_dependency_handler
        ))
        .routes(routes!(task_graph::delete_dependency_handler))
        .routes(routes!(task_graph::project_graph_handler))
        .routes(routes!(events::list_events_handler))
        .routes(routes!(task_templates::list_templates_handler))
        .routes(routes!(task_templates::create_template_handler))
        .routes(routes!(task_templates::apply_template_handler))
        .routes(routes!(executions::list_approvals_handler))
        .routes(routes!(executions::approve_handler))
        .routes(routes!(executions::reject_handler))
}

/// Routes outside `/api/v1` and outside the OpenAPI document.
pub(crate) fn outside_api() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/metrics", get(meta::metrics_handler))
        .route("/api/v1/openapi.json", get(meta::openapi_handler))
        .route("/ws", get(realtime::ws_handler))
}
