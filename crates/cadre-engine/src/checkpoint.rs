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
    /// How many of `messages` earlier snapshots already hold: each snapshot
    /// keeps only the messages added since, so keeping one per step costs
    /// what the step added, not the whole conversation again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub snapshotted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One kept snapshot: the state after a step, with only the messages from
/// index `from` on (those before are in earlier snapshots; 0: all here).
#[derive(Serialize, Deserialize)]
struct Snapshot {
    #[serde(default)]
    from: usize,
    #[serde(flatten)]
    state: Checkpoint,
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
        Self::deserialize(value).unwrap_or_default()
    }

    /// What to keep of this state as a snapshot: the messages added since
    /// the previous one, which then count as kept.
    pub fn snapshot(&mut self) -> serde_json::Value {
        let from = self.snapshotted.min(self.messages.len());
        let snapshot = Snapshot {
            from,
            state: Checkpoint {
                messages: self.messages[from..].to_vec(),
                pending: self.pending.clone(),
                waiting: self.waiting.clone(),
                recent_calls: self.recent_calls.clone(),
                snapshotted: 0,
            },
        };
        self.snapshotted = self.messages.len();
        serde_json::to_value(snapshot).unwrap_or_default()
    }

    /// The state after `step`, from the snapshots kept up to it (in step
    /// order); `None` when none was kept after that step itself or the
    /// snapshots do not add up.
    pub fn compose(snapshots: &[(i64, serde_json::Value)], step: i64) -> Option<Self> {
        if snapshots.last().map(|(s, _)| *s) != Some(step) {
            return None;
        }
        let mut messages = Vec::new();
        let mut last = None;
        for (_, value) in snapshots {
            let snapshot = Snapshot::deserialize(value).ok()?;
            if snapshot.from > messages.len() {
                return None;
            }
            messages.truncate(snapshot.from);
            messages.extend(snapshot.state.messages.iter().cloned());
            last = Some(snapshot.state);
        }
        last.map(|state| Checkpoint {
            messages,
            snapshotted: 0,
            ..state
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(i: usize) -> Message {
        Message::user(format!("message {i}"))
    }

    #[test]
    fn snapshots_keep_what_each_step_added_and_compose_back_to_each_state() {
        let mut state = Checkpoint::default();
        let mut kept = Vec::new();
        let mut states = Vec::new();
        for step in 1..=6_i64 {
            // Some steps add two messages, some none.
            for _ in 0..(step % 3) {
                state.messages.push(said(state.messages.len()));
            }
            state.recent_calls = vec![format!("call {step}")];
            let added = state.messages.len() - state.snapshotted;
            let snapshot = state.snapshot();
            assert_eq!(
                snapshot["messages"].as_array().map(Vec::len),
                Some(added),
                "step {step} keeps only what it added"
            );
            kept.push((step, snapshot));
            states.push(Checkpoint {
                snapshotted: 0,
                ..state.clone()
            });
        }
        for (i, expected) in states.iter().enumerate() {
            let step = i64::try_from(i).unwrap() + 1;
            let upto = &kept[..=i];
            assert_eq!(
                Checkpoint::compose(upto, step).as_ref(),
                Some(expected),
                "state after step {step}"
            );
        }
        assert_eq!(Checkpoint::compose(&kept[..2], 3), None, "step 3 not kept");
    }

    #[test]
    fn whole_states_kept_before_deltas_still_compose() {
        let full = Checkpoint {
            messages: vec![said(0), said(1)],
            ..Checkpoint::default()
        };
        let kept = vec![(1, full.to_json()), (2, full.to_json())];
        assert_eq!(Checkpoint::compose(&kept, 2), Some(full));
        let gap = vec![(1, serde_json::json!({ "from": 3, "messages": [] }))];
        assert_eq!(Checkpoint::compose(&gap, 1), None, "a gap is refused");
    }
}
