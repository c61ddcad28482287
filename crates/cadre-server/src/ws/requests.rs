//! What the client asks for over the WebSocket: subscriptions (with
//! replay and the presence snapshot), presence, edit locks, approvals,
//! pings.

use std::time::Duration;

use axum::extract::ws::WebSocket;
use cadre_identity::permissions::Permission;
use cadre_realtime::{Channel, Notice, Scope};
use cadre_store::Actor;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use super::channels;
use super::connection::{Connection, send_text};
use super::protocol::{self, ClientMessage};
use crate::error::ApiError;

/// Subscriptions one connection may hold.
const MAX_SUBSCRIPTIONS: usize = 200;
/// Default and longest edit-lock time, as the REST route.
const LOCK_TTL_SECS: u64 = 300;

impl Connection {
    /// Handles one message; returns the direct reply, if any.
    pub(super) async fn handle(
        &mut self,
        socket: &mut WebSocket,
        msg: ClientMessage,
    ) -> Result<Option<String>, ApiError> {
        let rid = msg.request_id.as_ref();
        match msg.kind.as_str() {
            "ping" => Ok(Some(protocol::reply(
                "pong",
                json!({"timestamp": now()}),
                rid,
            ))),
            "subscribe" => {
                let body: protocol::Subscribe = payload(msg.payload)?;
                self.subscribe(socket, &body, rid).await.map(|()| None)
            }
            "unsubscribe" => {
                let body: protocol::Unsubscribe = payload(msg.payload)?;
                let channel = parse_channel(&body.channel)?;
                self.subscribed.remove(&channel);
                let was = self.inbox.unlisten(channel);
                Ok(Some(protocol::reply(
                    "unsubscribed",
                    json!({"channel": body.channel, "wasSubscribed": was}),
                    rid,
                )))
            }
            "presence" => {
                let body: protocol::Presence = payload(msg.payload)?;
                let tenant = channels::authorize(
                    &self.state,
                    &self.principal,
                    Channel::Task(body.task_id),
                    Permission::View,
                )
                .await?;
                self.announce_presence(tenant.org_id(), body.task_id, body.action.as_str());
                if body.action == protocol::PresenceAction::Idle {
                    self.present.remove(&body.task_id);
                } else {
                    self.present.insert(body.task_id, tenant.org_id());
                }
                Ok(None)
            }
            "lock_acquire" => {
                let body: protocol::LockAcquire = payload(msg.payload)?;
                let ttl = body.ttl_seconds.unwrap_or(LOCK_TTL_SECS);
                if !(1..=3600).contains(&ttl) {
                    return Err(ApiError::validation(
                        "ttlSeconds",
                        "ttlSeconds must be 1 to 3600",
                    ));
                }
                let tenant = channels::authorize(
                    &self.state,
                    &self.principal,
                    Channel::Task(body.task_id),
                    Permission::EditWork,
                )
                .await?;
                let holder = self.actor();
                let now = cadre_types::time::now();
                let until = cadre_types::time::normalize(now + Duration::from_secs(ttl));
                self.state
                    .store()
                    .tasks()
                    .lock_task(tenant, body.task_id, &holder, until, now)
                    .await?;
                Ok(Some(protocol::reply(
                    "lock_acquired",
                    json!({"taskId": body.task_id, "holder": {"type": holder.kind, "id": holder.id}, "expiresAt": rfc3339(until)}),
                    rid,
                )))
            }
            "lock_release" => {
                let body: protocol::LockRelease = payload(msg.payload)?;
                let tenant = channels::authorize(
                    &self.state,
                    &self.principal,
                    Channel::Task(body.task_id),
                    Permission::EditWork,
                )
                .await?;
                self.state
                    .store()
                    .tasks()
                    .unlock_task(
                        tenant,
                        body.task_id,
                        &self.actor(),
                        cadre_types::time::now(),
                    )
                    .await?;
                Ok(Some(protocol::reply(
                    "lock_released",
                    json!({"taskId": body.task_id}),
                    rid,
                )))
            }
            "approve" => {
                let body: protocol::Approve = payload(msg.payload)?;
                let org = self
                    .state
                    .store()
                    .executions()
                    .approval_org(body.approval_id)
                    .await?;
                let Some(org) = org else {
                    return Err(ApiError::not_found("approval"));
                };
                let tenant = crate::auth::authorize_principal(
                    &self.state,
                    &self.principal,
                    org,
                    Permission::Approve,
                )
                .await?;
                if body.arguments.as_ref().is_some_and(|a| !a.is_object()) {
                    return Err(ApiError::validation(
                        "arguments",
                        "arguments must be a JSON object",
                    ));
                }
                let (status, reason, edited) = if body.approved {
                    ("approved", None, body.arguments)
                } else {
                    (
                        "rejected",
                        body.reason.map(|r| r.chars().take(2000).collect()),
                        None,
                    )
                };
                let by = self.principal.actor().1;
                let row = crate::routes::record_decision(
                    &self.state,
                    tenant,
                    body.approval_id,
                    status,
                    by,
                    reason,
                    edited,
                )
                .await?;
                Ok(Some(protocol::reply(
                    "approval_resolved",
                    json!({"approvalId": row.id, "executionId": row.execution_id, "status": row.status, "decidedBy": row.decided_by, "reason": row.reason}),
                    rid,
                )))
            }
            other => Err(ApiError::validation(
                "type",
                format!(
                    "unknown message type '{other}'; use subscribe, unsubscribe, presence, lock_acquire, lock_release, approve or ping"
                ),
            )),
        }
    }

    async fn subscribe(
        &mut self,
        socket: &mut WebSocket,
        body: &protocol::Subscribe,
        rid: Option<&Value>,
    ) -> Result<(), ApiError> {
        let channel = parse_channel(&body.channel)?;
        if !self.subscribed.contains(&channel) && self.subscribed.len() >= MAX_SUBSCRIPTIONS {
            return Err(ApiError::validation(
                "channel",
                format!(
                    "at most {MAX_SUBSCRIPTIONS} subscriptions per connection; unsubscribe from some first"
                ),
            ));
        }
        let tenant =
            channels::authorize(&self.state, &self.principal, channel, Permission::View).await?;
        let org = tenant.org_id();
        self.subscribed.insert(channel);
        let replay = self.state.realtime().subscribe(
            &mut self.inbox,
            channel,
            org,
            body.last_event_id.or(self.last_event_id),
        );
        let head = self.state.realtime().head();
        send_text(
            socket,
            protocol::reply(
                "subscribed",
                json!({"channel": channel.to_string(), "lastEventId": head.to_string()}),
                rid,
            ),
        )
        .await
        .map_err(|_| {
            ApiError::new(
                crate::error::ErrorCode::InternalError,
                "the connection failed",
            )
        })?;
        if let Channel::Task(task) = channel {
            // Who is already here (presence updates follow live).
            let users = self.state.realtime().present(task);
            send_text(
                socket,
                protocol::reply(
                    "presence_update",
                    json!({"taskId": task, "users": users, "snapshot": true}),
                    rid,
                ),
            )
            .await
            .map_err(|_| {
                ApiError::new(
                    crate::error::ErrorCode::InternalError,
                    "the connection failed",
                )
            })?;
        }
        match replay {
            Ok(events) => {
                for event in events {
                    send_text(socket, event.text().to_owned())
                        .await
                        .map_err(|_| {
                            ApiError::new(
                                crate::error::ErrorCode::InternalError,
                                "the connection failed",
                            )
                        })?;
                }
                Ok(())
            }
            Err(cadre_realtime::ReplayUnavailable) => {
                let message = format!(
                    "events after lastEventId are no longer all kept for {channel}; reload its state over the REST API (live events follow)"
                );
                send_text(socket, protocol::error("REPLAY_UNAVAILABLE", &message, rid))
                    .await
                    .map_err(|_| {
                        ApiError::new(
                            crate::error::ErrorCode::InternalError,
                            "the connection failed",
                        )
                    })
            }
        }
    }

    fn actor(&self) -> Actor {
        let (kind, id) = self.principal.actor();
        Actor::new(kind, Some(id))
    }

    fn announce_presence(&self, org: Uuid, task: Uuid, action: &str) {
        let (kind, id) = self.principal.actor();
        self.state.realtime().publish(Notice::new(
            "presence_update",
            Scope {
                task: Some(task),
                ..Scope { org, ..Scope::default() }
            },
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
    rfc3339(cadre_types::time::now())
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
