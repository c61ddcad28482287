//! API keys: stored as a SHA-256 hash with the first characters kept as a
//! prefix to recognise them by. Revocation takes effect on the next request
//! because every request looks the key up.

use cadre_types::{Scope, Tenant};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Result, StoreError};

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: Uuid,
    pub created_by: Uuid,
    pub name: String,
    pub key_hash: String,
    pub key_prefix: String,
    pub scopes: Vec<Scope>,
    pub rate_limit_per_minute: Option<i64>,
    pub expires_at: Option<OffsetDateTime>,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub created_by: Uuid,
    pub name: String,
    pub key_prefix: String,
    pub scopes: Json<Vec<Scope>>,
    pub rate_limit_per_minute: Option<i64>,
    pub expires_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

#[async_trait::async_trait]
pub trait ApiKeyQueries: Send + Sync {
    /// The org a key belongs to, so authorization can decide whether the
    /// caller may manage it.
    async fn api_key_org(&self, id: Uuid) -> Result<Option<Uuid>>;
    async fn create_api_key(&self, tenant: Tenant, key: &NewApiKey) -> Result<ApiKeyRow>;
    /// Keys of the org, newest first, revoked ones included.
    async fn api_keys(&self, tenant: Tenant) -> Result<Vec<ApiKeyRow>>;
    /// Revokes a key of the org; a key of another org is not found.
    async fn revoke_api_key(&self, tenant: Tenant, id: Uuid, now: OffsetDateTime) -> Result<()>;
    /// The key with this hash if it is neither revoked nor expired.
    async fn active_api_key(
        &self,
        key_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ApiKeyRow>>;
    /// The key with this id if it is neither revoked nor expired.
    async fn active_api_key_by_id(
        &self,
        id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<ApiKeyRow>>;
    /// Records last use for many keys in one statement per key batch.
    async fn touch_api_keys(&self, ids: &[Uuid], at: OffsetDateTime) -> Result<()>;
}

macro_rules! key_columns {
    () => {
        "id, org_id, created_by, name, key_prefix, scopes, rate_limit_per_minute, expires_at, last_used_at, revoked_at, created_at"
    };
}

super::for_both_backends!(ApiKeyQueries {
    async fn api_key_org(&self, id: Uuid) -> Result<Option<Uuid>> {
        Ok(sqlx::query_scalar("SELECT org_id FROM api_keys WHERE id = $1").bind(id).fetch_optional(&self.pool).await?)
    }

    async fn create_api_key(&self, tenant: Tenant, k: &NewApiKey) -> Result<ApiKeyRow> {
        Ok(sqlx::query_as::<_, ApiKeyRow>(concat!(
            "INSERT INTO api_keys (id, org_id, created_by, name, key_hash, key_prefix, scopes, rate_limit_per_minute, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ", key_columns!()))
        .bind(k.id)
        .bind(tenant.org_id())
        .bind(k.created_by)
        .bind(&k.name)
        .bind(&k.key_hash)
        .bind(&k.key_prefix)
        .bind(Json(&k.scopes))
        .bind(k.rate_limit_per_minute)
        .bind(k.expires_at)
        .bind(k.at)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn api_keys(&self, tenant: Tenant) -> Result<Vec<ApiKeyRow>> {
        Ok(sqlx::query_as::<_, ApiKeyRow>(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE org_id = $1 ORDER BY created_at DESC, id DESC"))
            .bind(tenant.org_id())
            .fetch_all(&self.pool)
            .await?)
    }

    async fn revoke_api_key(&self, tenant: Tenant, id: Uuid, now: OffsetDateTime) -> Result<()> {
        let done = sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE org_id = $1 AND id = $2")
            .bind(tenant.org_id())
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn active_api_key(&self, key_hash: &str, now: OffsetDateTime) -> Result<Option<ApiKeyRow>> {
        Ok(sqlx::query_as::<_, ApiKeyRow>(concat!(
            "SELECT ", key_columns!(), " FROM api_keys
             WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)"))
        .bind(key_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn active_api_key_by_id(&self, id: Uuid, now: OffsetDateTime) -> Result<Option<ApiKeyRow>> {
        Ok(sqlx::query_as::<_, ApiKeyRow>(concat!(
            "SELECT ", key_columns!(), " FROM api_keys
             WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)"))
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn touch_api_keys(&self, ids: &[Uuid], at: OffsetDateTime) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for id in ids {
            sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1").bind(id).bind(at).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
});
