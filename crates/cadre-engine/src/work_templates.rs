//! Task templates: a whole task tree with its dependencies and agent
//! assignments, created in one go. The built-in ones are
//! `templates/work.toml` (embedded); an org can add its own with the same
//! shape. [`WorkTemplate::check`] is the one validation for both.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::spec::Invalid;

/// Most tasks one template may create.
pub const MAX_TASKS: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkTemplate {
    #[serde(default)]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub description: String,
    pub tasks: Vec<TemplateTask>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateTask {
    pub key: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub priority: Option<i64>,
    /// Key of the parent task.
    #[serde(default)]
    pub parent: Option<String>,
    /// Keys of the tasks this one consumes the outputs of.
    #[serde(default, alias = "depends_on")]
    pub depends_on: Vec<String>,
    /// An agent template id: the org's agent made from it gets the task.
    #[serde(default, alias = "agent_template")]
    pub agent_template: Option<String>,
}

#[derive(Deserialize)]
struct Catalogue {
    template: Vec<WorkTemplate>,
}

static CATALOGUE: LazyLock<Vec<WorkTemplate>> = LazyLock::new(|| {
    // A unit test keeps the catalogue valid; should a broken one ship
    // anyway, the log says so.
    toml::from_str::<Catalogue>(include_str!("../templates/work.toml"))
        .map(|c| c.template)
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "the built-in task templates do not parse");
            Vec::new()
        })
});

/// The built-in task templates.
pub fn catalogue() -> &'static [WorkTemplate] {
    &CATALOGUE
}

pub fn find(id: &str) -> Option<&'static WorkTemplate> {
    catalogue().iter().find(|t| t.id == id)
}

fn invalid(field: String, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        message: message.into(),
    }
}

impl WorkTemplate {
    /// Checks names, keys and references; that parents form a tree and
    /// dependencies a DAG; and that agent templates exist.
    pub fn check(&self) -> Result<(), Invalid> {
        if !(1..=200).contains(&self.name.trim().chars().count()) {
            return Err(invalid("name".into(), "name must be 1 to 200 characters"));
        }
        if self.category.chars().count() > 100 {
            return Err(invalid(
                "category".into(),
                "category is at most 100 characters",
            ));
        }
        if self.description.chars().count() > 2000 {
            return Err(invalid(
                "description".into(),
                "description is at most 2000 characters",
            ));
        }
        if !(1..=MAX_TASKS).contains(&self.tasks.len()) {
            return Err(invalid(
                "tasks".into(),
                format!("a template has 1 to {MAX_TASKS} tasks"),
            ));
        }
        let keys: HashSet<&str> = self.tasks.iter().map(|t| t.key.as_str()).collect();
        if keys.len() != self.tasks.len() {
            return Err(invalid("tasks".into(), "task keys must be unique"));
        }
        for (i, t) in self.tasks.iter().enumerate() {
            let field = |f: &str| format!("tasks[{i}].{f}");
            if !(1..=100).contains(&t.key.chars().count()) {
                return Err(invalid(field("key"), "key must be 1 to 100 characters"));
            }
            if !(1..=500).contains(&t.title.trim().chars().count()) {
                return Err(invalid(field("title"), "title must be 1 to 500 characters"));
            }
            if t.description.chars().count() > 50_000 {
                return Err(invalid(
                    field("description"),
                    "description is at most 50000 characters",
                ));
            }
            if t.priority.is_some_and(|p| !(1..=10).contains(&p)) {
                return Err(invalid(field("priority"), "priority must be 1 to 10"));
            }
            if let Some(parent) = &t.parent
                && (!keys.contains(parent.as_str()) || *parent == t.key)
            {
                return Err(invalid(
                    field("parent"),
                    format!("no other task has key {parent}"),
                ));
            }
            for dep in &t.depends_on {
                if !keys.contains(dep.as_str()) || *dep == t.key {
                    return Err(invalid(
                        field("dependsOn"),
                        format!("no other task has key {dep}"),
                    ));
                }
            }
            if let Some(agent) = &t.agent_template
                && crate::templates::find(agent).is_none()
            {
                return Err(invalid(
                    field("agentTemplate"),
                    format!("{agent} is not an agent template (GET /agent-templates)"),
                ));
            }
        }
        if self.order(|t| t.parent.iter().collect()).is_none() {
            return Err(invalid(
                "tasks".into(),
                "parents must form a tree (no task is its own ancestor)",
            ));
        }
        if self.order(|t| t.depends_on.iter().collect()).is_none() {
            return Err(invalid(
                "tasks".into(),
                "dependencies must not form a cycle",
            ));
        }
        Ok(())
    }

    /// Task indexes so that every task comes after those `before` names;
    /// `None` when they form a cycle (Kahn's algorithm).
    fn order<'a>(
        &'a self,
        before: impl Fn(&'a TemplateTask) -> Vec<&'a String>,
    ) -> Option<Vec<usize>> {
        let index: HashMap<&str, usize> = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.key.as_str(), i))
            .collect();
        let mut waiting: Vec<usize> = self.tasks.iter().map(|t| before(t).len()).collect();
        let mut next: Vec<Vec<usize>> = vec![Vec::new(); self.tasks.len()];
        for (i, t) in self.tasks.iter().enumerate() {
            for key in before(t) {
                next[*index.get(key.as_str())?].push(i);
            }
        }
        let mut ready: Vec<usize> = (0..self.tasks.len()).filter(|i| waiting[*i] == 0).collect();
        let mut out = Vec::with_capacity(self.tasks.len());
        while let Some(i) = ready.pop() {
            out.push(i);
            for &j in &next[i] {
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    ready.push(j);
                }
            }
        }
        (out.len() == self.tasks.len()).then_some(out)
    }

    /// The tasks in an order where every parent comes before its children
    /// (the order to insert them in). Call after [`Self::check`].
    pub fn parent_first(&self) -> Vec<&TemplateTask> {
        self.order(|t| t.parent.iter().collect())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| self.tasks.get(i))
            .collect()
    }

    /// The agent templates the tasks ask for, each once.
    pub fn agent_templates(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.tasks
            .iter()
            .filter_map(|t| t.agent_template.as_deref())
            .filter(|a| seen.insert(*a))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_templates_are_valid() {
        let raw: Catalogue = toml::from_str(include_str!("../templates/work.toml"))
            .expect("templates/work.toml parses");
        assert_eq!(raw.template.len(), catalogue().len());
        for id in [
            "product-launch",
            "weekly-report",
            "pr-review-pipeline",
            "content-calendar",
        ] {
            let t = find(id).unwrap_or_else(|| panic!("{id} missing"));
            t.check().unwrap_or_else(|e| panic!("{id}: {e:?}"));
            assert!(
                t.tasks.iter().any(|t| !t.depends_on.is_empty()),
                "{id} has a graph"
            );
            assert!(!t.agent_templates().is_empty(), "{id} assigns agents");
        }
    }

    fn template(tasks: serde_json::Value) -> WorkTemplate {
        serde_json::from_value(serde_json::json!({ "name": "T", "tasks": tasks })).expect("shape")
    }

    #[test]
    fn bad_templates_are_refused_naming_the_field() {
        let cases = [
            (serde_json::json!([]), "tasks"),
            (
                serde_json::json!([{ "key": "a", "title": "A" }, { "key": "a", "title": "B" }]),
                "tasks",
            ),
            (
                serde_json::json!([{ "key": "a", "title": "A", "dependsOn": ["b"] }]),
                "tasks[0].dependsOn",
            ),
            (
                serde_json::json!([{ "key": "a", "title": "A", "parent": "a" }]),
                "tasks[0].parent",
            ),
            (
                serde_json::json!([{ "key": "a", "title": "" }]),
                "tasks[0].title",
            ),
            (
                serde_json::json!([{ "key": "a", "title": "A", "priority": 0 }]),
                "tasks[0].priority",
            ),
            (
                serde_json::json!([{ "key": "a", "title": "A", "agentTemplate": "nobody" }]),
                "tasks[0].agentTemplate",
            ),
            (
                serde_json::json!([{ "key": "a", "title": "A", "dependsOn": ["b"] }, { "key": "b", "title": "B", "dependsOn": ["a"] }]),
                "tasks",
            ),
            (
                serde_json::json!([{ "key": "a", "title": "A", "parent": "b" }, { "key": "b", "title": "B", "parent": "a" }]),
                "tasks",
            ),
        ];
        for (tasks, field) in cases {
            let err = template(tasks.clone())
                .check()
                .expect_err(&tasks.to_string());
            assert_eq!(err.field, field, "{tasks}: {}", err.message);
        }
    }

    #[test]
    fn parents_come_before_their_children() {
        let t = template(serde_json::json!([
            { "key": "leaf", "title": "L", "parent": "mid" },
            { "key": "mid", "title": "M", "parent": "root" },
            { "key": "root", "title": "R" }
        ]));
        t.check().expect("valid");
        let keys: Vec<&str> = t.parent_first().iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["root", "mid", "leaf"]);
    }
}
