//! The engine state an execution carries between steps (its checkpoint):
//! the conversation so far, the tool calls the model asked for that have not
//! run yet, and what the execution is waiting for.

use cadre_llm::{Message, ToolCall};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// Everything after the system prompt and the task brief.
    pub messages: Vec<Message>,
    /// Tool calls of the last model answer still to run, in order.
    #[serde(default)]
    pub pending: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Wait>,
    /// `tool:digest(arguments)` of the latest tool calls, for loop detection.
    #[serde(default)]
    pub recent_calls: Vec<String>,
}

/// What a parked execution waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Wait {
    Approval {
        call_id: String,
        approval_id: Uuid,
    },
    Input {
        call_id: String,
        question: String,
    },
    Child {
        call_id: String,
        execution_id: Uuid,
    },
    /// `delegate_parallel`: every child finishes, then the join checks how
    /// many succeeded.
    Children {
        call_id: String,
        execution_ids: Vec<Uuid>,
        min_successes: usize,
    },
}

impl Checkpoint {
    pub fn from_json(value: &serde_json::Value) -> Self {
        serde_json::from_value(value.clone()).unwrap_or_default()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}
