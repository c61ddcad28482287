//! The API's answers as pages read them: only the fields a page shows,
//! named as the API names them (SPEC §7.5, camelCase).

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::view::{InOrg, ago, money, pretty};

macro_rules! in_org {
    ($($t:ty),*) => {
        $(impl InOrg for $t {
            fn org_id(&self) -> Uuid {
                self.org_id
            }
        })*
    };
}

in_org!(Execution, Agent, Task, Project, ChatSession);

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub id: Uuid,
    pub org_id: Uuid,
    pub task_id: Uuid,
    pub agent_id: Uuid,
    pub agent_version: i64,
    pub parent_id: Option<Uuid>,
    pub status: String,
    pub steps: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: String,
    #[serde(default)]
    pub models: Vec<String>,
    pub forked_from: Option<Uuid>,
    pub forked_at_step: Option<i64>,
    pub error: Option<String>,
    pub waiting: Option<Value>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub created_at: String,
}

impl Execution {
    /// The id's first block, enough to tell executions apart on a page.
    pub fn short(&self) -> String {
        self.id.to_string()[..8].to_owned()
    }

    pub fn cost(&self) -> String {
        money(&self.cost_usd)
    }

    pub fn created(&self) -> String {
        ago(&self.created_at)
    }

    pub fn tokens(&self) -> i64 {
        self.tokens_in + self.tokens_out
    }

    /// Still able to take steps (or to be resumed).
    pub fn is_live(&self) -> bool {
        !cadre_engine::TERMINAL.contains(&self.status.as_str())
    }

    /// The wall time so far, or in all once finished.
    pub fn duration(&self) -> String {
        use time::OffsetDateTime;
        use time::format_description::well_known::Rfc3339;
        let parse = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        };
        let Some(start) = parse(&self.started_at) else {
            return "—".to_owned();
        };
        let end = parse(&self.finished_at).unwrap_or_else(OffsetDateTime::now_utc);
        let ms = (end - start).whole_milliseconds().max(0);
        if ms < 1000 {
            format!("{ms} ms")
        } else if ms < 60_000 {
            format!("{:.1} s", ms as f64 / 1000.0)
        } else {
            format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub id: Uuid,
    pub execution_id: Uuid,
    pub action: String,
    pub description: String,
    pub details: Value,
    pub risk_level: String,
    pub status: String,
    pub reason: Option<String>,
    pub edited_details: Option<Value>,
    pub expires_at: String,
    pub created_at: String,
}

impl Approval {
    pub fn arguments(&self) -> String {
        pretty(&self.details)
    }

    pub fn expires(&self) -> String {
        ago(&self.expires_at)
    }

    pub fn created(&self) -> String {
        ago(&self.created_at)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spend {
    pub tokens: i64,
    pub cost_usd: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Day {
    pub date: String,
    pub executions: i64,
    pub failed: i64,
    pub tokens: i64,
    pub cost_usd: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub plan: String,
    pub tokens_per_day: Option<u64>,
    pub today: Spend,
    pub month: Spend,
    pub days: Vec<Day>,
}

impl Usage {
    /// Today's tokens as a share of the daily quota, for a meter (0–100).
    pub fn quota_percent(&self) -> u64 {
        match self.tokens_per_day {
            Some(quota) if quota > 0 => {
                let used = u64::try_from(self.today.tokens).unwrap_or(0);
                (used.saturating_mul(100) / quota).min(100)
            }
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub id: Uuid,
    pub org_id: Uuid,
    /// The definition, as the API flattens it into the agent.
    #[serde(flatten)]
    pub spec: cadre_store::AgentSpec,
    pub status: String,
    pub version: i64,
    pub updated_at: String,
}

impl Agent {
    pub fn updated(&self) -> String {
        ago(&self.updated_at)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentMetrics {
    pub executions: i64,
    pub failed: i64,
    pub active: i64,
    pub success_rate: Option<f64>,
    pub steps: i64,
    pub cost_usd: String,
}

/// A built-in template (`GET /agent-templates`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentTemplate {
    pub id: String,
    pub name: String,
    pub category: String,
    pub role: String,
    pub description: String,
    pub tools: Vec<String>,
}

impl AgentTemplate {
    pub fn tool_list(&self) -> String {
        self.tools.join(", ")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentVersion {
    pub version: i64,
    pub snapshot: Value,
    pub created_at: String,
}

impl AgentVersion {
    pub fn created(&self) -> String {
        ago(&self.created_at)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub workflow_states: Vec<String>,
    #[serde(default)]
    pub auto_run: bool,
    #[serde(default)]
    pub require_review: bool,
    pub is_default: bool,
}

impl Project {
    /// The workflow states as the project form shows them.
    pub fn states(&self) -> String {
        self.workflow_states.join(", ")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: Uuid,
    pub org_id: Uuid,
    pub project_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub title: String,
    pub description: String,
    pub status: String,
    pub priority: i64,
    pub assignee: Option<Value>,
    pub lock: Option<Value>,
    pub last_error: Option<String>,
    pub version: i64,
    #[serde(default)]
    pub inputs: Vec<TaskInput>,
    #[serde(default)]
    pub outputs: Vec<TaskOutput>,
    pub updated_at: String,
}

impl Task {
    pub fn updated(&self) -> String {
        ago(&self.updated_at)
    }
}

/// Text content as text; anything else as its JSON.
fn content_text(content: &Value) -> String {
    match content.get("text").and_then(Value::as_str) {
        Some(text) => text.to_owned(),
        None => match content.get("url").and_then(Value::as_str) {
            Some(url) => url.to_owned(),
            None => pretty(content),
        },
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInput {
    #[serde(rename = "type")]
    pub kind: String,
    pub label: String,
    pub content: Value,
}

impl TaskInput {
    pub fn text(&self) -> String {
        content_text(&self.content)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOutput {
    #[serde(rename = "type")]
    pub kind: String,
    pub label: String,
    pub content: Value,
    pub execution_id: Option<Uuid>,
    pub created_at: String,
}

impl TaskOutput {
    pub fn text(&self) -> String {
        content_text(&self.content)
    }

    pub fn created(&self) -> String {
        ago(&self.created_at)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskVersion {
    pub version: i64,
    pub change_type: String,
    pub summary: String,
    pub created_at: String,
}

impl TaskVersion {
    pub fn created(&self) -> String {
        ago(&self.created_at)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub user_id: Uuid,
    pub name: String,
}

/// Who can hold work in an org, for naming assignees and lock holders.
pub struct People {
    pub agents: Vec<Agent>,
    pub members: Vec<Member>,
}

impl People {
    pub fn member(&self, id: &str) -> String {
        self.members
            .iter()
            .find(|m| m.user_id.to_string() == id)
            .map_or_else(|| "someone".to_owned(), |m| m.name.clone())
    }

    pub fn agent(&self, id: &str) -> String {
        self.agents
            .iter()
            .find(|a| a.id.to_string() == id)
            .map_or_else(|| "an agent".to_owned(), |a| a.spec.name.clone())
    }

    /// A task's assignee (`{"type", "id"}`: an agent or a person), in words.
    pub fn assignee(&self, who: &Value) -> String {
        let id = who["id"].as_str().unwrap_or_default();
        match who["type"].as_str() {
            Some("agent") => self.agent(id),
            _ => self.member(id),
        }
    }

    /// A lock holder (`{"type", "id"}`: an agent, a user or an API key), in words.
    pub fn holder(&self, who: &Value) -> String {
        let id = who["id"].as_str().unwrap_or_default();
        match who["type"].as_str() {
            Some("agent") => self.agent(id),
            Some("user") => self.member(id),
            _ => "an API key".to_owned(),
        }
    }
}

/// A chat session; `messages` when one is read.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatSession {
    pub id: Uuid,
    pub org_id: Uuid,
    pub title: String,
    pub summary: Option<String>,
    pub updated_at: String,
    #[serde(default)]
    pub messages: Vec<ChatMessage>,
}

impl ChatSession {
    pub fn updated(&self) -> String {
        ago(&self.updated_at)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub id: Uuid,
    /// `user`, `assistant`, `agent` or `system`.
    pub role: String,
    pub content: String,
    pub agent_id: Option<Uuid>,
    pub execution_id: Option<Uuid>,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub created_at: String,
}

impl ChatMessage {
    pub fn created(&self) -> String {
        ago(&self.created_at)
    }

    pub fn tokens(&self) -> i64 {
        self.tokens_in + self.tokens_out
    }
}
