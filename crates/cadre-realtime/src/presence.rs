//! Who is on each task now, as `presence_update` events say. Every instance
//! sees every event, so every instance keeps the same roster, and a client
//! that subscribes to a task is told who is already there.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::event::Event;

/// Presence not renewed for this long is dropped (a client keeps its
/// presence by sending it again while it stays, e.g. every 30 seconds).
pub(crate) const PRESENCE_TTL: Duration = Duration::from_secs(90);

/// Tasks with presence kept before stale entries are swept.
const STALE_SWEEP_AFTER: usize = 10_000;

struct Entry {
    user: Value,
    action: String,
    since: String,
    seen: Instant,
}

#[derive(Default)]
pub(crate) struct Roster {
    tasks: Mutex<HashMap<Uuid, HashMap<String, Entry>>>,
}

impl Roster {
    fn tasks(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, HashMap<String, Entry>>> {
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes in a `presence_update` event.
    pub(crate) fn observe(&self, event: &Event) {
        let Ok(data) = serde_json::from_str::<Value>(event.data()) else {
            return;
        };
        let Some(task) = data["taskId"]
            .as_str()
            .and_then(|t| Uuid::parse_str(t).ok())
        else {
            return;
        };
        let key = data["user"].to_string();
        let action = data["action"].as_str().unwrap_or_default().to_owned();
        let mut tasks = self.tasks();
        let users = tasks.entry(task).or_default();
        if action == "idle" || action == "left" {
            users.remove(&key);
        } else {
            users.insert(
                key,
                Entry {
                    user: data["user"].clone(),
                    action,
                    since: data["at"].as_str().unwrap_or_default().to_owned(),
                    seen: Instant::now(),
                },
            );
        }
        if users.is_empty() {
            tasks.remove(&task);
        }
        // Presence left behind by an instance that died is only dropped
        // when read; past this many tasks, everything stale goes.
        if tasks.len() > STALE_SWEEP_AFTER {
            tasks.retain(|_, users| {
                users.retain(|_, e| e.seen.elapsed() < PRESENCE_TTL);
                !users.is_empty()
            });
        }
    }

    /// Who is on `task`: `[{user, action, since}]`.
    pub(crate) fn present(&self, task: Uuid) -> Vec<Value> {
        let mut tasks = self.tasks();
        let Some(users) = tasks.get_mut(&task) else {
            return Vec::new();
        };
        users.retain(|_, e| e.seen.elapsed() < PRESENCE_TTL);
        let list = users
            .values()
            .map(|e| json!({"user": e.user, "action": e.action, "since": e.since}))
            .collect();
        if users.is_empty() {
            tasks.remove(&task);
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Scope;
    use crate::event::Notice;

    fn presence(task: Uuid, user: &str, action: &str) -> Event {
        Event::new(
            1,
            Notice::new(
                "presence_update",
                Scope::org(Uuid::nil()),
                json!({"taskId": task, "user": {"type": "user", "id": user}, "action": action, "at": "2026-12-03T00:00:00Z"}),
            )
            .encode(usize::MAX),
        )
    }

    #[test]
    fn keeps_who_is_present_until_they_go() {
        let roster = Roster::default();
        let task = Uuid::now_v7();
        roster.observe(&presence(task, "a", "viewing"));
        roster.observe(&presence(task, "b", "editing"));
        roster.observe(&presence(task, "a", "editing"));
        let mut now: Vec<String> = roster
            .present(task)
            .iter()
            .map(|p| format!("{}:{}", p["user"]["id"], p["action"]))
            .collect();
        now.sort();
        assert_eq!(now, [r#""a":"editing""#, r#""b":"editing""#]);
        roster.observe(&presence(task, "a", "left"));
        roster.observe(&presence(task, "b", "idle"));
        assert!(roster.present(task).is_empty());
        assert!(roster.tasks().is_empty(), "nothing kept for an empty task");
    }
}
