//! Domain events from the store (task changes, locks, queued executions),
//! turned into the real-time messages of SPEC §6 once their transaction has
//! committed.

use cadre_store::{CommittedEvents, EventRow};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::bus::Realtime;
use crate::channel::Scope;
use crate::event::Notice;

impl CommittedEvents for Realtime {
    fn committed(&self, events: Vec<EventRow>) {
        for row in events {
            self.publish(notice(row));
        }
    }
}

/// The message a domain event becomes: `task_*` keep their names, locks
/// become `lock_acquired`/`lock_released`, dependency changes are task
/// updates (`change` says which), a queued execution is an
/// `execution_update`. Every one reaches the org, the task and, when the
/// event names it, the project.
pub fn notice(row: EventRow) -> Notice {
    let mut payload = match row.data.0 {
        Value::Object(map) => map,
        other => Map::from_iter([("data".to_owned(), other)]),
    };
    let id = |key: &str| {
        payload
            .get(key)
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
    };
    let scope = Scope {
        org: row.org_id,
        org_wide: true,
        project: id("projectId"),
        task: Some(row.resource_id),
        execution: id("executionId"),
        agent: id("agentId"),
        session: None,
    };
    let kind = match row.kind.as_str() {
        "task_locked" => "lock_acquired",
        "task_unlocked" => "lock_released",
        "dependency_added" | "dependency_removed" => {
            payload.insert("change".into(), Value::String(row.kind.clone()));
            "task_updated"
        }
        "execution_queued" => {
            payload.insert("status".into(), Value::String("queued".into()));
            "execution_update"
        }
        other => other,
    }
    .to_owned();
    payload.insert("eventId".into(), json!(row.id));
    payload.insert(
        "actor".into(),
        json!({"type": row.actor_type, "id": row.actor_id}),
    );
    payload.insert(
        "at".into(),
        json!(cadre_types::time::rfc3339(row.created_at)),
    );
    Notice::new(kind, scope, Value::Object(payload))
}

#[cfg(test)]
mod tests {
    use cadre_store::Json;
    use time::OffsetDateTime;

    use super::*;
    use crate::channel::Channel;

    fn row(kind: &str, data: Value) -> EventRow {
        EventRow {
            id: Uuid::now_v7(),
            org_id: Uuid::now_v7(),
            kind: kind.into(),
            resource_type: "task".into(),
            resource_id: Uuid::now_v7(),
            actor_type: "user".into(),
            actor_id: Some(Uuid::now_v7()),
            data: Json(data),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn task_events_reach_org_project_and_task() {
        let project = Uuid::now_v7();
        let r = row("task_created", json!({"projectId": project, "title": "t"}));
        let (org, task, actor) = (r.org_id, r.resource_id, r.actor_id);
        let n = notice(r);
        assert_eq!(n.kind, "task_created");
        for c in [
            Channel::Org(org),
            Channel::Project(project),
            Channel::Task(task),
        ] {
            assert!(n.scope.reaches(c), "{c}");
        }
        assert_eq!(n.payload["title"], "t");
        assert_eq!(n.payload["actor"], json!({"type": "user", "id": actor}));
        assert_eq!(n.payload["at"], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn locks_dependencies_and_queued_runs_take_their_message_names() {
        assert_eq!(notice(row("task_locked", json!({}))).kind, "lock_acquired");
        assert_eq!(
            notice(row("task_unlocked", json!({}))).kind,
            "lock_released"
        );
        let dep = notice(row("dependency_added", json!({})));
        assert_eq!(
            (dep.kind.as_str(), &dep.payload["change"]),
            ("task_updated", &json!("dependency_added"))
        );
        let execution = Uuid::now_v7();
        let queued = notice(row("execution_queued", json!({"executionId": execution})));
        assert_eq!(queued.kind, "execution_update");
        assert_eq!(queued.payload["status"], "queued");
        assert!(queued.scope.reaches(Channel::Execution(execution)));
    }
}
