//! An agent's approval policy and limits: parsed from the stored JSON,
//! validated on the way in (each problem names its field).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::tools;

/// What happens when an agent calls a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolPolicy {
    /// Runs.
    Auto,
    /// Waits for a human's approval.
    Require,
    /// Refused.
    Deny,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApprovalPolicy {
    #[serde(default = "auto")]
    pub default: ToolPolicy,
    #[serde(default)]
    pub tools: BTreeMap<String, ToolPolicy>,
}

fn auto() -> ToolPolicy {
    ToolPolicy::Auto
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self {
            default: ToolPolicy::Auto,
            tools: BTreeMap::new(),
        }
    }
}

impl ApprovalPolicy {
    /// The tool's own rule, else `require` for tools with outside effects,
    /// else the default.
    pub fn for_tool(&self, tool: &str) -> ToolPolicy {
        if let Some(p) = self.tools.get(tool) {
            return *p;
        }
        match tools::find(tool) {
            Some(t) if t.external => ToolPolicy::Require,
            _ => self.default,
        }
    }
}

/// Per-execution and per-agent budgets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "default_steps")]
    pub max_steps: u32,
    #[serde(default = "default_tokens")]
    pub max_tokens: u64,
    #[serde(default = "default_cost", with = "rust_decimal::serde::str")]
    pub max_cost_usd: Decimal,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Spend of all of the agent's executions started today (UTC).
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_cost_usd_per_day: Option<Decimal>,
    /// … and this calendar month (UTC).
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_cost_usd_per_month: Option<Decimal>,
    /// The same tool with the same arguments this many times in a row ends
    /// the execution.
    #[serde(default = "default_repeat")]
    pub max_repeated_calls: u32,
}

fn default_steps() -> u32 {
    30
}
fn default_tokens() -> u64 {
    200_000
}
fn default_cost() -> Decimal {
    Decimal::new(200, 2)
}
fn default_timeout() -> u64 {
    900
}
fn default_repeat() -> u32 {
    3
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_steps: default_steps(),
            max_tokens: default_tokens(),
            max_cost_usd: default_cost(),
            timeout_seconds: default_timeout(),
            max_cost_usd_per_day: None,
            max_cost_usd_per_month: None,
            max_repeated_calls: default_repeat(),
        }
    }
}

/// A problem with an agent definition: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Parses and checks an approval policy.
pub fn approval_policy(value: &Value) -> Result<ApprovalPolicy, Invalid> {
    let policy: ApprovalPolicy = serde_json::from_value(value.clone()).map_err(|e| {
        invalid(
            "approvalPolicy",
            format!("{e}; expected {{\"default\": \"auto|require|deny\", \"tools\": {{\"TOOL\": \"auto|require|deny\"}}}}"),
        )
    })?;
    for tool in policy.tools.keys() {
        if tools::find(tool).is_none() {
            return Err(invalid(
                &format!("approvalPolicy.tools.{tool}"),
                format!(
                    "unknown tool {tool:?}; known tools: {}",
                    tools::names().join(", ")
                ),
            ));
        }
    }
    Ok(policy)
}

/// How long an execution of an agent with these limits may run.
pub fn execution_timeout(agent_limits: &Value) -> std::time::Duration {
    std::time::Duration::from_secs(limits(agent_limits).unwrap_or_default().timeout_seconds)
}

/// Parses and checks limits.
pub fn limits(value: &Value) -> Result<Limits, Invalid> {
    let limits: Limits =
        serde_json::from_value(value.clone()).map_err(|e| invalid("limits", format!("{e}")))?;
    if !(1..=1000).contains(&limits.max_steps) {
        return Err(invalid("limits.maxSteps", "must be between 1 and 1000"));
    }
    if !(1..=100_000_000).contains(&limits.max_tokens) {
        return Err(invalid(
            "limits.maxTokens",
            "must be between 1 and 100000000",
        ));
    }
    if limits.max_cost_usd <= Decimal::ZERO || limits.max_cost_usd > Decimal::new(10_000, 0) {
        return Err(invalid(
            "limits.maxCostUsd",
            "must be more than 0 and at most 10000",
        ));
    }
    if !(1..=86_400).contains(&limits.timeout_seconds) {
        return Err(invalid(
            "limits.timeoutSeconds",
            "must be between 1 and 86400",
        ));
    }
    for (field, v) in [
        ("limits.maxCostUsdPerDay", limits.max_cost_usd_per_day),
        ("limits.maxCostUsdPerMonth", limits.max_cost_usd_per_month),
    ] {
        if v.is_some_and(|v| v <= Decimal::ZERO) {
            return Err(invalid(field, "must be more than 0"));
        }
    }
    if !(2..=100).contains(&limits.max_repeated_calls) {
        return Err(invalid(
            "limits.maxRepeatedCalls",
            "must be between 2 and 100",
        ));
    }
    Ok(limits)
}

/// Checks tool names.
pub fn tool_list(tools_: &[String]) -> Result<(), Invalid> {
    for (i, t) in tools_.iter().enumerate() {
        if tools::find(t).is_none() {
            return Err(invalid(
                &format!("tools[{i}]"),
                format!(
                    "unknown tool {t:?}; known tools: {}",
                    tools::names().join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Agent kinds (SPEC §3).
pub const KINDS: [&str; 4] = ["executor", "coordinator", "watcher", "analyst"];

/// Nanodollars, the unit costs are stored in.
pub fn to_nanos(usd: Decimal) -> i64 {
    (usd * Decimal::new(1_000_000_000, 0))
        .round()
        .try_into()
        .unwrap_or(i64::MAX)
}

/// A decimal string of dollars from nanodollars (`"0.000123"`).
pub fn usd(nanos: i64) -> String {
    Decimal::from_i128_with_scale(i128::from(nanos), 9)
        .normalize()
        .to_string()
}
