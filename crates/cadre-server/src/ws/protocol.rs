//! The WebSocket messages of SPEC §6: `{"type", "payload", "requestId"?}`
//! both ways. Server events come pre-serialized from the bus
//! ([`cadre_realtime::Event::wire`]); this module builds the direct replies.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ErrorCode;

/// A message from the client, before its payload is read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ClientMessage {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub payload: Value,
    /// Echoed back on the reply, so a client can match it.
    #[serde(default)]
    pub request_id: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Subscribe {
    pub channel: String,
    /// Overrides the connection's `lastEventId` for this channel.
    #[serde(default, deserialize_with = "event_id")]
    pub last_event_id: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Unsubscribe {
    pub channel: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Presence {
    pub task_id: uuid::Uuid,
    pub action: PresenceAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PresenceAction {
    Viewing,
    Editing,
    Idle,
}

impl PresenceAction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Viewing => "viewing",
            Self::Editing => "editing",
            Self::Idle => "idle",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LockAcquire {
    pub task_id: uuid::Uuid,
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LockRelease {
    pub task_id: uuid::Uuid,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Approve {
    pub approval_id: uuid::Uuid,
    /// `false` rejects.
    #[serde(default = "yes")]
    pub approved: bool,
    #[serde(default)]
    pub reason: Option<String>,
    /// Approve with these arguments instead of the proposed ones.
    #[serde(default)]
    pub arguments: Option<Value>,
}

fn yes() -> bool {
    true
}

/// Event ids are numbers, sent as strings (JavaScript loses precision past
/// 2^53); either form is accepted.
fn event_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("lastEventId must be a positive integer")),
        Some(Value::String(s)) => parse_event_id(&s)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("lastEventId must be a positive integer")),
        Some(_) => Err(serde::de::Error::custom(
            "lastEventId must be a positive integer",
        )),
    }
}

pub(crate) fn parse_event_id(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

/// A direct reply: `{"type", "payload", "requestId"?}`.
pub(crate) fn reply(kind: &str, payload: Value, request_id: Option<&Value>) -> String {
    let mut msg = json!({"type": kind, "payload": payload});
    if let Some(id) = request_id {
        msg["requestId"] = id.clone();
    }
    msg.to_string()
}

/// An `error` message (`{code, message}`, SPEC §6), with the request's id.
pub(crate) fn error(code: &str, message: &str, request_id: Option<&Value>) -> String {
    reply(
        "error",
        json!({"code": code, "message": message}),
        request_id,
    )
}

/// The code name of an [`ErrorCode`], as the REST envelope spells it.
pub(crate) fn code_name(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "INTERNAL_ERROR".to_owned())
}

/// Close codes (RFC 6455 §7.4 and the 4000–4999 private range).
pub(crate) mod close {
    /// The server is shutting down; reconnect elsewhere or later.
    pub const GOING_AWAY: u16 = 1001;
    /// A message over the 1 MiB limit.
    pub const TOO_BIG: u16 = 1009;
    /// No traffic (not even a pong) for too long.
    pub const IDLE: u16 = 4000;
    /// The caller lost access (left the org, key revoked) mid-connection.
    pub const ACCESS_LOST: u16 = 4003;
    /// Events were not read fast enough.
    pub const SLOW_CONSUMER: u16 = 4008;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_takes_event_ids_as_numbers_or_strings() {
        let s: Subscribe =
            serde_json::from_value(json!({"channel": "org:x", "lastEventId": "17"})).unwrap();
        assert_eq!(s.last_event_id, Some(17));
        let s: Subscribe =
            serde_json::from_value(json!({"channel": "org:x", "lastEventId": 18})).unwrap();
        assert_eq!(s.last_event_id, Some(18));
        assert!(
            serde_json::from_value::<Subscribe>(json!({"channel": "c", "lastEventId": -1}))
                .is_err()
        );
        assert!(serde_json::from_value::<Subscribe>(json!({"channel": "c", "extra": 1})).is_err());
    }

    #[test]
    fn replies_echo_the_request_id() {
        let r: Value = serde_json::from_str(&error("NOT_FOUND", "no", Some(&json!("r1")))).unwrap();
        assert_eq!(
            r,
            json!({"type": "error", "payload": {"code": "NOT_FOUND", "message": "no"}, "requestId": "r1"})
        );
        assert_eq!(code_name(ErrorCode::NotFound), "NOT_FOUND");
    }
}
