//! Domain events (`task_created`, `dependency_added`, …): written in the
//! transaction of the change they describe, so the activity feed and the
//! real-time layer never see a change that did not happen or miss one that
//! did.

use cadre_types::Tenant;
use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;

/// Who made a change: `user`, `api_key`, `agent` (an execution's agent) or
/// `system`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: String,
    pub id: Option<Uuid>,
}

impl Actor {
    pub fn new(kind: &str, id: Option<Uuid>) -> Self {
        Self {
            kind: kind.to_owned(),
            id,
        }
    }

    pub fn system() -> Self {
        Self::new("system", None)
    }

    /// Whether this actor is the holder `(kind, id)`.
    pub fn is(&self, kind: &str, id: Option<Uuid>) -> bool {
        self.kind == kind && self.id == id
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: Uuid,
    pub org_id: Uuid,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub resource_type: String,
    pub resource_id: Uuid,
    pub actor_type: String,
    pub actor_id: Option<Uuid>,
    pub data: Json<Value>,
    pub created_at: OffsetDateTime,
}

/// Told about domain events once the transaction that wrote them has
/// committed, in commit order within one process.
pub trait CommittedEvents: Send + Sync {
    fn committed(&self, events: Vec<EventRow>);
}

/// The backend's slot for the [`CommittedEvents`] sink, empty until the
/// application installs one.
#[derive(Clone, Default)]
pub(crate) struct EventSink(
    std::sync::Arc<std::sync::OnceLock<std::sync::Arc<dyn CommittedEvents>>>,
);

impl EventSink {
    pub(crate) fn install(&self, sink: std::sync::Arc<dyn CommittedEvents>) {
        if self.0.set(sink).is_err() {
            tracing::warn!("a committed-events sink was already installed; keeping the first");
        }
    }

    /// Called right after a commit with the events the transaction wrote.
    pub(crate) fn send(&self, events: Vec<EventRow>) {
        if events.is_empty() {
            return;
        }
        if let Some(sink) = self.0.get() {
            sink.committed(events);
        }
    }
}

#[async_trait::async_trait]
pub trait EventQueries: Send + Sync {
    /// The org's events, newest first; only those before `before` (an event
    /// id) when given, and of one resource when given.
    async fn events(
        &self,
        tenant: Tenant,
        resource_id: Option<Uuid>,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<EventRow>>;
}

/// Writes a domain event in `$tx` and keeps its row in `$out` (a
/// `Vec<EventRow>`), which the caller hands to [`crate::EventSink::send`]
/// once the transaction has committed; evaluates to `Result<()>`.
macro_rules! emit {
    ($out:ident, $tx:ident, $org:expr, $kind:expr, $resource_type:expr, $resource_id:expr, $actor:expr, $data:expr, $at:expr) => {{
        let row = $crate::areas::events::EventRow {
            id: cadre_types::new_id(),
            org_id: $org,
            kind: String::from($kind),
            resource_type: String::from($resource_type),
            resource_id: $resource_id,
            actor_type: $actor.kind.clone(),
            actor_id: $actor.id,
            data: sqlx::types::Json($data),
            created_at: $at,
        };
        let inserted = sqlx::query(
            "INSERT INTO events (id, org_id, type, resource_type, resource_id, actor_type, actor_id, data, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(row.id)
        .bind(row.org_id)
        .bind(&row.kind)
        .bind(&row.resource_type)
        .bind(row.resource_id)
        .bind(&row.actor_type)
        .bind(row.actor_id)
        .bind(&row.data)
        .bind(row.created_at)
        .execute(&mut *$tx)
        .await
        .map(|_| ());
        $out.push(row);
        inserted
    }};
}
pub(crate) use emit;

super::for_both_backends!(EventQueries {
    async fn events(&self, tenant: Tenant, resource_id: Option<Uuid>, before: Option<Uuid>, limit: u32) -> Result<Vec<EventRow>> {
        Ok(sqlx::query_as::<_, EventRow>(
            "SELECT id, org_id, type, resource_type, resource_id, actor_type, actor_id, data, created_at FROM events
             WHERE org_id = $1 AND ($2 IS NULL OR resource_id = $2) AND ($3 IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4")
        .bind(tenant.org_id())
        .bind(resource_id)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
});
