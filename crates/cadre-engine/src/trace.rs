//! The hash-chained trace: each event's hash covers the previous event's
//! hash, its sequence number, type, time and data, so changing, removing or
//! reordering any event breaks every hash after it.

use cadre_store::Json;
use cadre_store::TraceEventRow;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The `prev_hash` of an execution's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// JSON with object keys sorted at every level: the form hashed and bound
/// to approvals, so equal arguments always hash equally.
pub fn canonical(value: &Value) -> String {
    fn sort(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sort(&map[k])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(value).to_string()
}

/// SHA-256 of the canonical JSON, hex.
pub fn digest(value: &Value) -> String {
    hex::encode(Sha256::digest(canonical(value).as_bytes()))
}

fn event_hash(prev_hash: &str, seq: i64, kind: &str, at: OffsetDateTime, data: &Value) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(seq.to_string().as_bytes());
    h.update(b"\n");
    h.update(kind.as_bytes());
    h.update(b"\n");
    h.update(at.unix_timestamp_nanos().to_string().as_bytes());
    h.update(b"\n");
    h.update(canonical(data).as_bytes());
    hex::encode(h.finalize())
}

/// Appends events to a chain whose head is `(seq, hash)`.
#[derive(Debug, Clone)]
pub struct Chain {
    seq: i64,
    hash: String,
    pub events: Vec<TraceEventRow>,
}

impl Chain {
    pub fn from_head(seq: i64, hash: &str) -> Self {
        Self {
            seq,
            hash: hash.to_owned(),
            events: Vec::new(),
        }
    }

    pub fn push(&mut self, kind: &str, at: OffsetDateTime, data: Value) {
        // Stored timestamps keep microseconds: hash what will be read back.
        let at = at
            .replace_nanosecond(at.nanosecond() / 1000 * 1000)
            .unwrap_or(at);
        let seq = self.seq + 1;
        let hash = event_hash(&self.hash, seq, kind, at, &data);
        self.events.push(TraceEventRow {
            seq,
            kind: kind.to_owned(),
            at,
            data: Json(data),
            prev_hash: std::mem::replace(&mut self.hash, hash.clone()),
            hash,
        });
        self.seq = seq;
    }
}

/// `Ok(n)` when all `n` events chain correctly from genesis, or the
/// sequence number of the first event that does not.
pub fn verify(events: &[TraceEventRow]) -> Result<usize, i64> {
    let mut prev = GENESIS.to_owned();
    for (i, e) in events.iter().enumerate() {
        let expected_seq = i64::try_from(i).unwrap_or(i64::MAX) + 1;
        if e.seq != expected_seq
            || e.prev_hash != prev
            || event_hash(&prev, e.seq, &e.kind, e.at, &e.data.0) != e.hash
        {
            return Err(e.seq.min(expected_seq));
        }
        prev = e.hash.clone();
    }
    Ok(events.len())
}
