//! Refresh tokens and password-reset tokens, stored only as hashes.
//!
//! A refresh token is used once: using it marks it used and the caller
//! issues the next one in the same family. Presenting a used token again
//! means it was stolen or replayed, and the whole family is revoked.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;

#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub id: Uuid,
    pub user_id: Uuid,
    pub family_id: Uuid,
    pub token_hash: String,
    pub expires_at: OffsetDateTime,
    pub at: OffsetDateTime,
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// Valid and now used: issue the next token in `family_id`.
    Rotated { user_id: Uuid, family_id: Uuid },
    /// Already used (or its family revoked): the family is now revoked.
    Reused { user_id: Uuid },
    /// Past its expiry.
    Expired,
    /// Never issued.
    Unknown,
}

/// Who a WebSocket token was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsHolder {
    User(Uuid),
    ApiKey(Uuid),
}

#[async_trait::async_trait]
pub trait SessionQueries: Send + Sync {
    async fn insert_refresh_token(&self, token: &NewRefreshToken) -> Result<()>;
    /// Uses a refresh token atomically (two concurrent uses cannot both rotate).
    async fn use_refresh_token(&self, token_hash: &str, now: OffsetDateTime) -> Result<RefreshUse>;
    /// Revokes the family of this token (logout). Unknown tokens are ignored.
    async fn revoke_refresh_family_of(&self, token_hash: &str, now: OffsetDateTime) -> Result<()>;
    /// Revokes every refresh token of a user (password change or reset).
    async fn revoke_user_refresh_tokens(&self, user_id: Uuid, now: OffsetDateTime) -> Result<()>;
    async fn insert_password_reset(
        &self,
        id: Uuid,
        user_id: Uuid,
        token_hash: &str,
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<()>;
    /// Consumes a reset token: returns its user when it was unused and
    /// unexpired, and marks it used.
    async fn consume_password_reset(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>>;
    /// Stores a WebSocket token's hash for a user or an API key (exactly
    /// one of them).
    async fn insert_ws_token(
        &self,
        token_hash: &str,
        holder: WsHolder,
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<()>;
    /// Uses a WebSocket token up: its holder if it was unused and unexpired
    /// (never twice, even from two instances at once).
    async fn consume_ws_token(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<WsHolder>>;
    /// Deletes tokens that expired before `before`; returns how many.
    async fn purge_ws_tokens(&self, before: OffsetDateTime) -> Result<u64>;
}

super::for_both_backends!(SessionQueries {
    async fn insert_refresh_token(&self, t: &NewRefreshToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(t.id)
        .bind(t.user_id)
        .bind(t.family_id)
        .bind(&t.token_hash)
        .bind(t.expires_at)
        .bind(t.at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn use_refresh_token(&self, token_hash: &str, now: OffsetDateTime) -> Result<RefreshUse> {
        let mut tx = self.begin_write().await?;
        let rotated = sqlx::query_as::<_, (Uuid, Uuid)>(
            "UPDATE refresh_tokens SET used_at = $2
             WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2
             RETURNING user_id, family_id",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((user_id, family_id)) = rotated {
            tx.commit().await?;
            return Ok(RefreshUse::Rotated { user_id, family_id });
        }
        let known = sqlx::query_as::<_, (Uuid, Uuid, OffsetDateTime, bool)>(
            "SELECT user_id, family_id, expires_at, (used_at IS NOT NULL OR revoked_at IS NOT NULL) AS spent
             FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match known {
            None => RefreshUse::Unknown,
            Some((user_id, family_id, _, true)) => {
                sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL")
                    .bind(family_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                RefreshUse::Reused { user_id }
            }
            Some((_, _, _, false)) => RefreshUse::Expired,
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn revoke_refresh_family_of(&self, token_hash: &str, now: OffsetDateTime) -> Result<()> {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2
             WHERE revoked_at IS NULL AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)",
        )
        .bind(token_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn revoke_user_refresh_tokens(&self, user_id: Uuid, now: OffsetDateTime) -> Result<()> {
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(user_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_password_reset(&self, id: Uuid, user_id: Uuid, token_hash: &str, expires_at: OffsetDateTime, at: OffsetDateTime) -> Result<()> {
        sqlx::query(
            "INSERT INTO password_resets (id, user_id, token_hash, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(user_id)
        .bind(token_hash)
        .bind(expires_at)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn consume_password_reset(&self, token_hash: &str, now: OffsetDateTime) -> Result<Option<Uuid>> {
        Ok(sqlx::query_scalar::<_, Uuid>(
            "UPDATE password_resets SET used_at = $2
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn insert_ws_token(&self, token_hash: &str, holder: WsHolder, expires_at: OffsetDateTime, at: OffsetDateTime) -> Result<()> {
        let (user, key) = match holder {
            WsHolder::User(id) => (Some(id), None),
            WsHolder::ApiKey(id) => (None, Some(id)),
        };
        sqlx::query("INSERT INTO ws_tokens (token_hash, user_id, api_key_id, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(token_hash)
            .bind(user)
            .bind(key)
            .bind(expires_at)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn consume_ws_token(&self, token_hash: &str, now: OffsetDateTime) -> Result<Option<WsHolder>> {
        let row: Option<(Option<Uuid>, Option<Uuid>)> = sqlx::query_as(
            "UPDATE ws_tokens SET used_at = $2
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id, api_key_id")
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some((Some(user), _)) => Some(WsHolder::User(user)),
            Some((None, Some(key))) => Some(WsHolder::ApiKey(key)),
            Some((None, None)) | None => None,
        })
    }

    async fn purge_ws_tokens(&self, before: OffsetDateTime) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM ws_tokens WHERE expires_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
});
