//! Chat sessions and their messages (SPEC §3). A session belongs to whoever
//! opened it — a user or an API key — and no one else in the org sees it.
//! Deletion is soft; messages stay with the deleted session.

use cadre_types::Tenant;
use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Counted, Page};
use crate::{Result, StoreError};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChatSessionRow {
    pub id: Uuid,
    pub org_id: Uuid,
    /// `user` or `api_key`.
    pub owner_type: String,
    pub owner_id: Uuid,
    pub title: String,
    /// What older turns said, once the conversation outgrew the model's
    /// context window.
    pub summary: Option<String>,
    /// The last message the summary covers.
    pub summary_through: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct NewChatMessage {
    pub id: Uuid,
    /// `user`, `assistant`, `agent` or `system`.
    pub role: String,
    pub content: String,
    pub agent_id: Option<Uuid>,
    pub execution_id: Option<Uuid>,
    pub attachments: Value,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChatMessageRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub session_id: Uuid,
    pub role: String,
    pub content: String,
    pub agent_id: Option<Uuid>,
    pub execution_id: Option<Uuid>,
    pub attachments: Json<Value>,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub created_at: OffsetDateTime,
}

#[async_trait::async_trait]
pub trait ChatQueries: Send + Sync {
    /// The org and owner `(type, id)` of a live session, so authorization
    /// can decide whether the caller may see it.
    async fn chat_session_owner(&self, id: Uuid) -> Result<Option<(Uuid, String, Uuid)>>;
    async fn create_chat_session(
        &self,
        tenant: Tenant,
        id: Uuid,
        owner: (&str, Uuid),
        title: &str,
        at: OffsetDateTime,
    ) -> Result<ChatSessionRow>;
    async fn chat_session(&self, tenant: Tenant, id: Uuid) -> Result<ChatSessionRow>;
    /// The owner's live sessions, most recently active first.
    async fn chat_sessions(
        &self,
        tenant: Tenant,
        owner: (&str, Uuid),
        page: Page,
    ) -> Result<(Vec<ChatSessionRow>, u64)>;
    async fn delete_chat_session(&self, tenant: Tenant, id: Uuid, at: OffsetDateTime)
    -> Result<()>;
    /// Adds a message and marks the session active.
    async fn add_chat_message(
        &self,
        tenant: Tenant,
        session: Uuid,
        message: &NewChatMessage,
    ) -> Result<ChatMessageRow>;
    /// The session's messages, oldest first.
    async fn chat_messages(&self, tenant: Tenant, session: Uuid) -> Result<Vec<ChatMessageRow>>;
    /// Records the summary of every message up to `through`.
    async fn summarize_chat(
        &self,
        tenant: Tenant,
        session: Uuid,
        summary: &str,
        through: Uuid,
    ) -> Result<()>;
}

macro_rules! session_columns {
    () => {
        "id, org_id, owner_type, owner_id, title, summary, summary_through, created_at, updated_at"
    };
}

macro_rules! message_columns {
    () => {
        "id, org_id, session_id, role, content, agent_id, execution_id, attachments, tokens_in, tokens_out, created_at"
    };
}

super::for_both_backends!(ChatQueries {
    async fn chat_session_owner(&self, id: Uuid) -> Result<Option<(Uuid, String, Uuid)>> {
        Ok(sqlx::query_as("SELECT org_id, owner_type, owner_id FROM chat_sessions WHERE id = $1 AND deleted_at IS NULL")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn create_chat_session(&self, tenant: Tenant, id: Uuid, owner: (&str, Uuid), title: &str, at: OffsetDateTime) -> Result<ChatSessionRow> {
        Ok(sqlx::query_as::<_, ChatSessionRow>(concat!(
            "INSERT INTO chat_sessions (id, org_id, owner_type, owner_id, title, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING ", session_columns!()))
        .bind(id)
        .bind(tenant.org_id())
        .bind(owner.0)
        .bind(owner.1)
        .bind(title)
        .bind(at)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn chat_session(&self, tenant: Tenant, id: Uuid) -> Result<ChatSessionRow> {
        Ok(sqlx::query_as::<_, ChatSessionRow>(concat!(
            "SELECT ", session_columns!(), " FROM chat_sessions WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL"))
        .bind(tenant.org_id())
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn chat_sessions(&self, tenant: Tenant, owner: (&str, Uuid), page: Page) -> Result<(Vec<ChatSessionRow>, u64)> {
        let rows = sqlx::query_as::<_, Counted<ChatSessionRow>>(concat!(
            "SELECT ", session_columns!(), ", COUNT(*) OVER () AS total FROM chat_sessions
             WHERE org_id = $1 AND owner_type = $2 AND owner_id = $3 AND deleted_at IS NULL
             ORDER BY updated_at DESC, id DESC LIMIT $4 OFFSET $5"))
        .bind(tenant.org_id())
        .bind(owner.0)
        .bind(owner.1)
        .bind(i64::from(page.page_size))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        super::paged(rows, || {
            sqlx::query_scalar("SELECT COUNT(*) FROM chat_sessions WHERE org_id = $1 AND owner_type = $2 AND owner_id = $3 AND deleted_at IS NULL")
                .bind(tenant.org_id())
                .bind(owner.0)
                .bind(owner.1)
                .fetch_one(&self.pool)
        })
        .await
    }

    async fn delete_chat_session(&self, tenant: Tenant, id: Uuid, at: OffsetDateTime) -> Result<()> {
        let done = sqlx::query("UPDATE chat_sessions SET deleted_at = $3 WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL")
            .bind(tenant.org_id())
            .bind(id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn add_chat_message(&self, tenant: Tenant, session: Uuid, m: &NewChatMessage) -> Result<ChatMessageRow> {
        let mut tx = self.begin_write().await?;
        let live = sqlx::query("UPDATE chat_sessions SET updated_at = $3 WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL")
            .bind(tenant.org_id())
            .bind(session)
            .bind(m.at)
            .execute(&mut *tx)
            .await?;
        if live.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let row = sqlx::query_as::<_, ChatMessageRow>(concat!(
            "INSERT INTO chat_messages (id, org_id, session_id, role, content, agent_id, execution_id, attachments, tokens_in, tokens_out, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ", message_columns!()))
        .bind(m.id)
        .bind(tenant.org_id())
        .bind(session)
        .bind(&m.role)
        .bind(&m.content)
        .bind(m.agent_id)
        .bind(m.execution_id)
        .bind(Json(&m.attachments))
        .bind(m.tokens_in)
        .bind(m.tokens_out)
        .bind(m.at)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn chat_messages(&self, tenant: Tenant, session: Uuid) -> Result<Vec<ChatMessageRow>> {
        Ok(sqlx::query_as::<_, ChatMessageRow>(concat!(
            "SELECT ", message_columns!(), " FROM chat_messages WHERE org_id = $1 AND session_id = $2 ORDER BY id"))
        .bind(tenant.org_id())
        .bind(session)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn summarize_chat(&self, tenant: Tenant, session: Uuid, summary: &str, through: Uuid) -> Result<()> {
        sqlx::query("UPDATE chat_sessions SET summary = $3, summary_through = $4 WHERE org_id = $1 AND id = $2")
            .bind(tenant.org_id())
            .bind(session)
            .bind(summary)
            .bind(through)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
});
