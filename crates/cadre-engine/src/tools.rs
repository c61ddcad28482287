//! The built-in tools: what the model sees (name, description, JSON schema
//! of the arguments) and what the engine needs to know to run them safely.

use cadre_llm::ToolDef;
use serde_json::{Value, json};

/// What to do with a tool call whose intent was recorded but whose result
/// was not (the process died in between).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// Run again with the same idempotency key: the receiver dedupes.
    RetrySameKey,
    /// Tell the model the outcome is unknown; do not run again.
    Fail,
}

#[derive(Debug)]
pub struct Tool {
    pub name: &'static str,
    pub description: &'static str,
    /// Effects outside Cadre: the intent is recorded first, the call carries
    /// an idempotency key, and the default policy is `require`.
    pub external: bool,
    /// `low | medium | high | critical`, shown on approvals.
    pub risk: &'static str,
    pub on_unknown: Unknown,
    schema: fn() -> Value,
}

impl Tool {
    pub fn def(&self) -> ToolDef {
        ToolDef {
            name: self.name.to_owned(),
            description: self.description.to_owned(),
            parameters: (self.schema)(),
        }
    }
}

static TOOLS: [Tool; 9] = [
    Tool {
        name: "add_output",
        description: "Add an output to the task you are working on: your deliverable. Use type \"text\" for prose or Markdown, \"structured\" for JSON data, \"url\" for a link.",
        external: false,
        risk: "low",
        on_unknown: Unknown::Fail,
        schema: || {
            json!({"type": "object", "properties": {
                "label": {"type": "string", "description": "A short name for the output"},
                "type": {"type": "string", "enum": ["text", "structured", "url"]},
                "content": {"description": "The output: a string, or any JSON value for structured"}
            }, "required": ["label", "content"]})
        },
    },
    Tool {
        name: "request_human_input",
        description: "Ask a human a question and wait for the answer. Use when you need a decision, a fact only a person has, or a choice between options.",
        external: false,
        risk: "low",
        on_unknown: Unknown::Fail,
        schema: || {
            json!({"type": "object", "properties": {
                "question": {"type": "string"},
                "options": {"type": "array", "items": {"type": "string"}, "description": "Choices to offer, if any"}
            }, "required": ["question"]})
        },
    },
    Tool {
        name: "read_task",
        description: "Read a task of this organization: its title, description, status, inputs, outputs, the tasks it depends on and which of them are not done yet.",
        external: false,
        risk: "low",
        on_unknown: Unknown::Fail,
        schema: || {
            json!({"type": "object", "properties": {
                "taskId": {"type": "string", "description": "The task's id"}
            }, "required": ["taskId"]})
        },
    },
    Tool {
        name: "create_subtask",
        description: "Create a sub-task of the task you are working on, optionally assigned to an agent.",
        external: false,
        risk: "low",
        on_unknown: Unknown::Fail,
        schema: || {
            json!({"type": "object", "properties": {
                "title": {"type": "string"},
                "description": {"type": "string"},
                "priority": {"type": "integer", "minimum": 1, "maximum": 10},
                "assigneeAgentId": {"type": "string"}
            }, "required": ["title"]})
        },
    },
    Tool {
        name: "delegate",
        description: "Hand a sub-task to another agent of this organization and wait for its result.",
        external: false,
        risk: "medium",
        on_unknown: Unknown::Fail,
        schema: || {
            json!({"type": "object", "properties": {
                "agentId": {"type": "string"},
                "title": {"type": "string"},
                "instructions": {"type": "string", "description": "What the other agent must do and deliver"}
            }, "required": ["agentId", "title", "instructions"]})
        },
    },
    Tool {
        name: "delegate_parallel",
        description: "Hand several sub-tasks to agents of this organization at once and wait for all of them; succeeds when at least minSuccesses of them complete (all, by default).",
        external: false,
        risk: "medium",
        on_unknown: Unknown::Fail,
        schema: || {
            json!({"type": "object", "properties": {
                "tasks": {"type": "array", "minItems": 1, "maxItems": 10, "items": {"type": "object", "properties": {
                    "agentId": {"type": "string"},
                    "title": {"type": "string"},
                    "instructions": {"type": "string"}
                }, "required": ["agentId", "instructions"]}},
                "minSuccesses": {"type": "integer", "minimum": 1}
            }, "required": ["tasks"]})
        },
    },
    Tool {
        name: "http_request",
        description: "Make an HTTP request to a public address. Requests to private or internal addresses are refused.",
        external: true,
        risk: "high",
        on_unknown: Unknown::RetrySameKey,
        schema: || {
            json!({"type": "object", "properties": {
                "method": {"type": "string", "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]},
                "url": {"type": "string"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "body": {"type": "string"}
            }, "required": ["method", "url"]})
        },
    },
    Tool {
        name: "remember",
        description: "Store a fact in your long-term memory under a key, for later executions.",
        external: false,
        risk: "low",
        on_unknown: Unknown::Fail,
        schema: || {
            json!({"type": "object", "properties": {
                "key": {"type": "string"},
                "value": {"type": "string"}
            }, "required": ["key", "value"]})
        },
    },
    Tool {
        name: "recall",
        description: "Search your long-term memory: facts whose key or value contains the query (all facts when empty).",
        external: false,
        risk: "low",
        on_unknown: Unknown::Fail,
        schema: || {
            json!({"type": "object", "properties": {
                "query": {"type": "string"}
            }})
        },
    },
];

pub fn find(name: &str) -> Option<&'static Tool> {
    TOOLS.iter().find(|t| t.name == name)
}

pub fn names() -> Vec<&'static str> {
    TOOLS.iter().map(|t| t.name).collect()
}

/// The definitions of the named tools, for a model request.
pub fn defs(names: &[String]) -> Vec<ToolDef> {
    names
        .iter()
        .filter_map(|n| find(n))
        .map(Tool::def)
        .collect()
}
