//! Cadre's storage layer.
//!
//! One query trait per area ([`areas`]), each implemented for SQLite
//! ([`sqlite`]) and PostgreSQL ([`postgres`]). Callers hold a [`Store`] and
//! never learn which database is underneath. Migrations for each backend are
//! embedded in the binary and applied by [`Store::migrate`].

pub mod areas;

/// JSON columns, as the row types carry them.
pub use sqlx::types::Json;
mod error;
mod postgres;
mod sqlite;
mod store;

pub use areas::Page;
pub use areas::agents::{AgentQueries, AgentRow, AgentSpec, AgentVersionRow};
pub use areas::api_keys::{ApiKeyQueries, ApiKeyRow, NewApiKey};
pub use areas::audit::{
    AuditFilter, AuditQueries, AuditRow, ChainCheck, NewAuditEntry, PLATFORM_CHAIN,
};
pub use areas::chat::{ChatMessageRow, ChatQueries, ChatSessionRow, NewChatMessage};
pub use areas::events::{Actor, CommittedEvents, EventQueries, EventRow};
pub use areas::executions::{
    AgentMetrics, ApprovalRow, ControlChange, DailyUsage, Decision, ExecutionFilter,
    ExecutionQueries, ExecutionRow, ExecutionState, IntentRow, NewApproval, NewExecution,
    NewIntent, StepCommit, StepHead, TraceEventRow,
};
pub use areas::health::{HealthQueries, SchemaVersion};
pub use areas::instances::{InstanceIn, InstanceQueries, InstanceRow};
pub use areas::jobs::{DEFAULT_QUEUE, JobQueries, JobRow, JobState, Lease, NewJob};
pub use areas::models::{ModelQueries, OrgModelRow};
pub use areas::org_keys::{OrgKeyQueries, OrgKeyRow};
pub use areas::orgs::{
    DEFAULT_WORKFLOW_STATES, InvitationRow, MemberRow, NewInvitation, NewOrg, OrgPatch, OrgQueries,
    OrgRow, OrgWithRole,
};
pub use areas::projects::{NewProject, ProjectPatch, ProjectQueries, ProjectRow};
pub use areas::schedules::{CatchUp, NewSchedule, ScheduleQueries, ScheduleRow};
pub use areas::sessions::{NewRefreshToken, RefreshUse, SessionQueries, WsHolder};
pub use areas::task_graph::{DependencyRow, Graph, GraphQueries, Readiness};
pub use areas::task_templates::{TaskTemplateQueries, TaskTemplateRow};
pub use areas::tasks::{
    InputRow, NewInput, NewOutput, NewTask, OutputRow, READY_JOB, TaskFilter, TaskPatch,
    TaskQueries, TaskRow, TaskVersionRow, TaskWrite, is_final, ready_job,
};
pub use areas::users::{NewUser, UserPatch, UserQueries, UserRow};
pub use error::{Result, StoreError};
pub use store::{ConnectOptions, Store, Target};
