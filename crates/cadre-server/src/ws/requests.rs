//! What the client asks for over the WebSocket: subscriptions (with
//! replay and the presence snapshot), presence, edit locks, approvals,
//! pings. Each request answers with the messages to send back; locks and
//! approvals go through the same code as their REST routes.

use cadre_identity::permissions::Permission;
use cadre_realtime::{Channel, Notice, Scope};
use cadre_types::Tenant;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use super::channels;
use super::connection::Connection;
use super::protocol::{self, ClientMessage};
use crate::error::ApiError;
use crate::routes::Verdict;

/// Subscriptions one connection may hold.
const MAX_SUBSCRIPTIONS: usize = 200;

impl Connection {
    /// Handles one message; returns the replies, in order.
    pub(super) async fn handle(&mut self, msg: ClientMessage) -> Result<Vec<String>, ApiError> {
        let rid = msg.request_id.as_ref();
        let reply = |kind: &str, payload: Value| vec![protocol::reply(kind, payload, rid)];
        match msg.kind.as_str() {
            "ping" => Ok(reply("pong", json!({"timestamp": now()}))),
            "subscribe" => {
                let body: protocol::Subscribe = payload(msg.payload)?;
                self.subscribe(&body, rid).await
            }
            "unsubscribe" => {
                let body: protocol::Unsubscribe = payload(msg.payload)?;
                let was = self.inbox.unlisten(parse_channel(&body.channel)?);
                Ok(reply(
                    "unsubscribed",
                    json!({"channel": body.channel, "wasSubscribed": was}),
                ))
            }
            "presence" => {
                let body: protocol::Presence = payload(msg.payload)?;
                let org = self
                    .task_tenant(body.task_id, Permission::View)
                    .await?
                    .org_id();
                self.announce_presence(org, body.task_id, body.action.as_str());
                if body.action == protocol::PresenceAction::Idle {
                    self.present.remove(&body.task_id);
                } else {
                    self.present.insert(body.task_id, org);
                }
                Ok(Vec::new())
            }
            "lock_acquire" => {
                let body: protocol::LockAcquire = payload(msg.payload)?;
                let ttl = crate::routes::lock_ttl(body.ttl_seconds)?;
                let tenant = self.task_tenant(body.task_id, Permission::EditWork).await?;
                let lock = crate::routes::take_lock(
                    &self.state,
                    tenant,
                    body.task_id,
                    &self.principal.as_actor(),
                    ttl,
                )
                .await?;
                Ok(reply(
                    "lock_acquired",
                    serde_json::to_value(lock).unwrap_or_default(),
                ))
            }
            "lock_release" => {
                let body: protocol::LockRelease = payload(msg.payload)?;
                let tenant = self.task_tenant(body.task_id, Permission::EditWork).await?;
                self.state
                    .store()
                    .tasks()
                    .unlock_task(
                        tenant,
                        body.task_id,
                        &self.principal.as_actor(),
                        cadre_types::time::now(),
                    )
                    .await?;
                Ok(reply("lock_released", json!({"taskId": body.task_id})))
            }
            "approve" => {
                let body: protocol::Approve = payload(msg.payload)?;
                let org = self
                    .state
                    .store()
                    .executions()
                    .approval_org(body.approval_id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("approval"))?;
                let tenant = crate::auth::authorize_principal(
                    &self.state,
                    &self.principal,
                    org,
                    Permission::Approve,
                )
                .await?;
                let verdict = if body.approved {
                    Verdict::Approve(body.arguments)
                } else {
                    Verdict::Reject(body.reason)
                };
                let by = self.principal.actor().1;
                let row = crate::routes::record_decision(
                    &self.state,
                    tenant,
                    body.approval_id,
                    by,
                    verdict,
                )
                .await?;
                Ok(reply(
                    "approval_resolved",
                    json!({"approvalId": row.id, "executionId": row.execution_id, "status": row.status, "decidedBy": row.decided_by, "reason": row.reason}),
                ))
            }
            other => Err(ApiError::validation(
                "type",
                format!(
                    "unknown message type '{other}'; use subscribe, unsubscribe, presence, lock_acquire, lock_release, approve or ping"
                ),
            )),
        }
    }

    /// `subscribed`, then for a task who is present, then the events missed
    /// since `lastEventId` (or `REPLAY_UNAVAILABLE`).
    async fn subscribe(
        &mut self,
        body: &protocol::Subscribe,
        rid: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let channel = parse_channel(&body.channel)?;
        if !self.inbox.listens(channel) && self.inbox.channel_count() >= MAX_SUBSCRIPTIONS {
            return Err(ApiError::validation(
                "channel",
                format!(
                    "at most {MAX_SUBSCRIPTIONS} subscriptions per connection; unsubscribe from some first"
                ),
            ));
        }
        let org = channels::authorize(&self.state, &self.principal, channel, Permission::View)
            .await?
            .org_id();
        let realtime = self.state.realtime();
        let replay = realtime.subscribe(
            &mut self.inbox,
            channel,
            org,
            body.last_event_id.or(self.last_event_id),
        );
        let mut replies = vec![protocol::reply(
            "subscribed",
            json!({"channel": channel.to_string(), "lastEventId": realtime.head().to_string()}),
            rid,
        )];
        if let Channel::Task(task) = channel {
            // Who is already here (presence updates follow live).
            replies.push(protocol::reply(
                "presence_update",
                json!({"taskId": task, "users": realtime.present(task), "snapshot": true}),
                rid,
            ));
        }
        match replay {
            Ok(events) => replies.extend(events.iter().map(|e| e.text().to_owned())),
            Err(cadre_realtime::ReplayUnavailable) => replies.push(protocol::error(
                "REPLAY_UNAVAILABLE",
                &format!(
                    "events after lastEventId are no longer all kept for {channel}; reload its state over the REST API (live events follow)"
                ),
                rid,
            )),
        }
        Ok(replies)
    }

    /// The tenant of a task the caller may act on with `permission`.
    async fn task_tenant(&self, task: Uuid, permission: Permission) -> Result<Tenant, ApiError> {
        channels::authorize(
            &self.state,
            &self.principal,
            Channel::Task(task),
            permission,
        )
        .await
    }

    fn announce_presence(&self, org: Uuid, task: Uuid, action: &str) {
        let (kind, id) = self.principal.actor();
        self.state.realtime().publish(Notice::new(
            "presence_update",
            Scope::task(org, task),
            json!({"taskId": task, "user": {"type": kind, "id": id}, "action": action, "at": now()}),
        ));
    }

    /// Says the connection left every task it was present on.
    pub(super) fn leave(&mut self) {
        for (task, org) in std::mem::take(&mut self.present) {
            self.announce_presence(org, task, "left");
        }
    }
}

fn payload<T: DeserializeOwned>(payload: Value) -> Result<T, ApiError> {
    serde_json::from_value(payload)
        .map_err(|e| ApiError::validation("payload", format!("invalid payload: {e}")))
}

fn parse_channel(name: &str) -> Result<Channel, ApiError> {
    name.parse()
        .map_err(|e: cadre_realtime::BadChannel| ApiError::validation("channel", e.0))
}

fn now() -> String {
    cadre_types::time::rfc3339(cadre_types::time::now())
}
