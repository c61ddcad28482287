//! An execution a chat turn started, followed from the session: its state
//! changes and approvals appear on the session's channel, and when it ends
//! its outcome (the task's outputs, or why it failed) is stored in the
//! session as the agent's message. The follower runs on the instance that
//! took the turn; it re-reads the execution, so a missed event only delays
//! it.

use std::time::Duration;

use cadre_realtime::{Channel, Notice, Scope};
use cadre_runtime::TaskSpec;
use cadre_store::{ExecutionRow, NewChatMessage};
use cadre_types::Tenant;
use serde_json::{Value, json};
use uuid::Uuid;

use super::ChatMessageOut;
use crate::AppState;

/// A follower gives up after this long; the session can still be read, and
/// the execution followed on its own channel.
const FOLLOW_AT_MOST: Duration = Duration::from_secs(24 * 3600);
/// The execution is read again this often in case an event was missed.
const RECHECK_EVERY: Duration = Duration::from_secs(30);

/// Which execution to follow, and for which session.
pub(crate) struct Follow {
    pub state: AppState,
    pub tenant: Tenant,
    pub session: Uuid,
    pub execution: Uuid,
    pub agent: (Uuid, String),
}

impl Follow {
    pub(crate) fn start(self) {
        let supervisor = self.state.supervisor().clone();
        supervisor.spawn(
            TaskSpec::helper("chat-follow"),
            move |shutdown| async move {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    _ = tokio::time::timeout(FOLLOW_AT_MOST, self.run()) => {}
                }
                Ok(())
            },
        );
    }

    async fn run(self) {
        let realtime = self.state.realtime().clone();
        let mut inbox = realtime.inbox();
        // Listen first, then read: an end in between is seen either way.
        inbox.listen(Channel::Execution(self.execution), self.tenant.org_id());
        let mut recheck = tokio::time::interval(RECHECK_EVERY);
        loop {
            tokio::select! {
                event = inbox.recv() => {
                    let Some(event) = event else { return };
                    if !matches!(event.kind.as_str(), "execution_update" | "approval_requested" | "approval_resolved") {
                        continue;
                    }
                    let mut payload: Value = serde_json::from_str(event.data()).unwrap_or(Value::Null);
                    payload["sessionId"] = json!(self.session);
                    let finished = event.kind == "execution_update"
                        && cadre_engine::TERMINAL.contains(&payload["status"].as_str().unwrap_or_default());
                    realtime.publish(Notice::new(
                        event.kind.clone(),
                        Scope::session(self.tenant.org_id(), self.session),
                        payload,
                    ));
                    if finished {
                        break;
                    }
                }
                _ = recheck.tick() => {
                    match self.state.store().executions().execution(self.tenant, self.execution).await {
                        Ok(row) if cadre_engine::TERMINAL.contains(&row.status.as_str()) => break,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, execution = %self.execution, "a chat could not read the execution it follows");
                            return;
                        }
                    }
                }
            }
        }
        if let Err(e) = self.finish().await {
            tracing::warn!(error = %e.message, execution = %self.execution, "a chat could not record the outcome of its execution");
        }
    }

    /// Stores the outcome as the agent's message in the session.
    async fn finish(&self) -> Result<(), crate::error::ApiError> {
        let store = self.state.store();
        let row = store
            .executions()
            .execution(self.tenant, self.execution)
            .await?;
        let content = outcome(
            &self.agent.1,
            &row,
            &store.tasks().task_outputs(self.tenant, row.task_id).await?,
        );
        let stored: ChatMessageOut = store
            .chat()
            .add_chat_message(
                self.tenant,
                self.session,
                &NewChatMessage {
                    id: cadre_types::new_id(),
                    role: "agent".into(),
                    content,
                    agent_id: Some(self.agent.0),
                    execution_id: Some(self.execution),
                    attachments: json!([]),
                    tokens_in: row.tokens_in,
                    tokens_out: row.tokens_out,
                    at: cadre_types::time::now(),
                },
            )
            .await?
            .into();
        self.state.realtime().publish(Notice::new(
            "chat_message",
            Scope::session(self.tenant.org_id(), self.session),
            serde_json::to_value(&stored).unwrap_or_default(),
        ));
        Ok(())
    }
}

/// What the agent's message says: the outputs on its task (a task the chat
/// created for it), or how the execution ended.
fn outcome(agent: &str, row: &ExecutionRow, mine: &[cadre_store::OutputRow]) -> String {
    match row.status.as_str() {
        "completed" if mine.is_empty() => format!("{agent} finished (no outputs)."),
        "completed" => {
            let mut text = format!("{agent} finished:");
            for o in mine {
                let body = match &o.content.0 {
                    Value::String(s) => s.clone(),
                    Value::Object(m) if m.get("text").is_some_and(Value::is_string) => {
                        m["text"].as_str().unwrap_or_default().to_owned()
                    }
                    other => other.to_string(),
                };
                text.push_str(&format!("\n\n{}: {body}", o.label));
            }
            text
        }
        "failed" => format!(
            "{agent} could not finish: {}",
            row.error.as_deref().unwrap_or("the execution failed")
        ),
        other => format!("{agent} stopped ({other})."),
    }
}
