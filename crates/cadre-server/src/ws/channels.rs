//! Which organization a channel belongs to, and whether a principal may see
//! it: the same membership, role and key-scope checks as the REST routes.
//! An unknown id and another organization's id both answer `NOT_FOUND`.

use cadre_identity::permissions::Permission;
use cadre_realtime::Channel;
use cadre_types::Tenant;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Principal, authorize_principal};
use crate::error::ApiError;

/// The org that owns the channel's resource (`None`: no such resource).
pub(crate) async fn owner(state: &AppState, channel: Channel) -> Result<Option<Uuid>, ApiError> {
    let store = state.store();
    Ok(match channel {
        Channel::Org(id) => Some(id),
        Channel::Project(id) => store.projects().project_org(id).await?,
        Channel::Task(id) => store.tasks().task_org(id).await?,
        Channel::Execution(id) => store.executions().execution_org(id).await?,
        Channel::Agent(id) => store.agents().agent_org(id).await?,
        // A session is private to whoever opened it: checked in `authorize`.
        Channel::Session(id) => store
            .chat()
            .chat_session_owner(id)
            .await?
            .map(|(org, _, _)| org),
    })
}

/// Authorizes `principal` for `channel` with `permission`.
pub(crate) async fn authorize(
    state: &AppState,
    principal: &Principal,
    channel: Channel,
    permission: Permission,
) -> Result<Tenant, ApiError> {
    if let Channel::Session(id) = channel {
        let owner = state.store().chat().chat_session_owner(id).await?;
        let (kind, who) = principal.actor();
        if !owner.is_some_and(|(_, t, o)| t == kind && o == who) {
            return Err(ApiError::not_found("session"));
        }
    }
    match owner(state, channel).await? {
        Some(org) => authorize_principal(state, principal, org, permission).await,
        None => Err(ApiError::not_found(channel.kind())),
    }
}
