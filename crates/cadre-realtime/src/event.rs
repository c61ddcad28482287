//! What publishers hand the bus ([`Notice`]) and what subscribers receive
//! ([`Event`]: a notice with its sequence id, serialized once for every
//! subscriber).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::channel::Scope;

/// A change to announce: its message type (`task_created`,
/// `execution_update`, …, SPEC §6), where it belongs, and its payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub kind: String,
    pub scope: Scope,
    pub payload: Value,
}

impl Notice {
    pub fn new(kind: impl Into<String>, scope: Scope, payload: Value) -> Self {
        Self {
            kind: kind.into(),
            scope,
            payload,
        }
    }

    /// The notice as the bus keeps it until it is numbered: the payload as
    /// JSON text (a `Value` tree takes several times the memory), at most
    /// `max_bytes` of it. A larger payload (a model call with a long
    /// prompt) is replaced by its small top-level fields and
    /// `"truncated": true`, and the client reads the rest over the REST
    /// API, so the bus never carries an unbounded message.
    pub fn encode(self, max_bytes: usize) -> Pending {
        let mut payload = self.payload.to_string();
        if payload.len() > max_bytes {
            payload = cut(&self.payload, payload.len()).to_string();
        }
        Pending {
            kind: self.kind,
            scope: self.scope,
            payload,
        }
    }
}

/// The small top-level fields of `payload`, marked as cut from `size`
/// bytes.
fn cut(payload: &Value, size: usize) -> Value {
    let mut kept = Map::new();
    if let Value::Object(fields) = payload {
        for (key, value) in fields {
            let small = match value {
                Value::String(s) => s.len() <= 256,
                Value::Number(_) | Value::Bool(_) | Value::Null => true,
                Value::Array(_) | Value::Object(_) => false,
            };
            if small {
                kept.insert(key.clone(), value.clone());
            }
        }
    }
    kept.insert("truncated".into(), Value::Bool(true));
    kept.insert("bytes".into(), Value::from(size));
    Value::Object(kept)
}

/// A notice on its way through the bus: its payload already JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub kind: String,
    pub scope: Scope,
    pub payload: String,
}

impl Pending {
    /// `{"kind","scope","payload"}`, as the bus carries it between
    /// instances.
    pub(crate) fn to_json(&self) -> String {
        format!(
            r#"{{"kind":{},"scope":{},"payload":{}}}"#,
            Value::String(self.kind.clone()),
            serde_json::to_string(&self.scope).unwrap_or_else(|_| "{}".into()),
            self.payload
        )
    }
}

/// A notice with its place in the bus's order.
#[derive(Debug)]
pub struct Event {
    /// Increases by one per event across every instance sharing the bus; a
    /// client passes the last one it saw as `lastEventId` to catch up.
    pub seq: u64,
    pub kind: String,
    pub scope: Scope,
    /// `{"type","id","org","channels","payload"}` as sent on the
    /// WebSocket, built once and shared by every connection (cloning is a
    /// reference count). `channels` names every channel the event reaches,
    /// so a client with several subscriptions can tell which it answers.
    pub wire: bytes::Bytes,
    /// Where the payload lies in `wire` (kept once, not twice).
    data: std::ops::Range<usize>,
}

impl Event {
    pub fn new(seq: u64, notice: Pending) -> Self {
        let channels: Vec<Value> = notice
            .scope
            .channels()
            .map(|c| Value::String(c.to_string()))
            .collect();
        let head = format!(
            r#"{{"type":{},"id":"{seq}","org":"{}","channels":{},"payload":"#,
            Value::String(notice.kind.clone()),
            notice.scope.org,
            Value::Array(channels)
        );
        let mut wire = head.clone();
        let data = notice.payload;
        wire.push_str(&data);
        wire.push('}');
        Self {
            seq,
            kind: notice.kind,
            scope: notice.scope,
            wire: bytes::Bytes::from(wire),
            data: head.len()..head.len() + data.len(),
        }
    }

    /// The whole message as text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.wire).unwrap_or("{}")
    }

    /// The payload alone, as an SSE `data:` line carries it.
    pub fn data(&self) -> &str {
        self.wire
            .get(self.data.clone())
            .and_then(|d| std::str::from_utf8(d).ok())
            .unwrap_or("null")
    }

    /// Bytes the event holds, for the replay buffer's bound.
    pub fn size(&self) -> usize {
        self.wire.len() + self.kind.len() + 128
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    #[test]
    fn the_wire_form_is_the_spec_envelope_with_the_sequence_as_id() {
        let notice = Notice::new(
            "task_created",
            Scope::org(Uuid::nil()),
            json!({"taskId": "t", "title": "a \"quoted\" title"}),
        );
        let event = Event::new(42, notice.encode(usize::MAX));
        let wire: Value = serde_json::from_str(event.text()).unwrap();
        assert_eq!(
            wire,
            json!({"type": "task_created", "id": "42", "org": Uuid::nil(), "channels": [format!("org:{}", Uuid::nil())],
                   "payload": {"taskId": "t", "title": "a \"quoted\" title"}})
        );
        let data: Value = serde_json::from_str(event.data()).unwrap();
        assert_eq!(data["title"], "a \"quoted\" title");
    }

    #[test]
    fn an_oversized_payload_keeps_its_small_fields_and_says_it_was_cut() {
        let big = "x".repeat(10_000);
        let notice = Notice::new(
            "trace_event",
            Scope::org(Uuid::nil()),
            json!({"seq": 7, "type": "llm_call", "data": {"prompt": big}}),
        )
        .encode(1024);
        let payload: Value = serde_json::from_str(&notice.payload).unwrap();
        assert_eq!(payload["seq"], 7);
        assert_eq!(payload["type"], "llm_call");
        assert_eq!(payload["truncated"], true);
        assert!(payload.get("data").is_none());
        assert!(payload["bytes"].as_u64().unwrap() > 10_000);

        let small = Notice::new("x", Scope::org(Uuid::nil()), json!({"a": 1})).encode(1024);
        assert_eq!(small.payload, r#"{"a":1}"#);
    }
}
