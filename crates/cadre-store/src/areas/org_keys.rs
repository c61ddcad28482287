//! Wrapped per-organization data keys (the secrets module's storage).

use cadre_types::Tenant;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrgKeyRow {
    pub org_id: Uuid,
    pub version: i64,
    /// Nonce and ciphertext of the data key under the master key.
    pub wrapped_key: Vec<u8>,
    /// Which master key wrapped it.
    pub master_key_id: String,
    pub created_at: OffsetDateTime,
}

#[async_trait::async_trait]
pub trait OrgKeyQueries: Send + Sync {
    /// The newest key version of the org.
    async fn latest_org_key(&self, tenant: Tenant) -> Result<Option<OrgKeyRow>>;
    async fn org_key(&self, tenant: Tenant, version: i64) -> Result<Option<OrgKeyRow>>;
    /// Adds a version; a version that exists already is a conflict (another
    /// instance created it first: read the latest again).
    async fn insert_org_key(&self, tenant: Tenant, row: &OrgKeyRow) -> Result<()>;
    /// Every key of every org (rotation, an operator task).
    async fn all_org_keys(&self) -> Result<Vec<OrgKeyRow>>;
    /// Replaces the wrapping of one key version (rotation).
    async fn rewrap_org_key(
        &self,
        org_id: Uuid,
        version: i64,
        wrapped_key: &[u8],
        master_key_id: &str,
    ) -> Result<()>;
}

super::for_both_backends!(OrgKeyQueries {
    async fn latest_org_key(&self, tenant: Tenant) -> Result<Option<OrgKeyRow>> {
        Ok(sqlx::query_as::<_, OrgKeyRow>(
            "SELECT org_id, version, wrapped_key, master_key_id, created_at FROM org_keys
             WHERE org_id = $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(tenant.org_id())
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn org_key(&self, tenant: Tenant, version: i64) -> Result<Option<OrgKeyRow>> {
        Ok(sqlx::query_as::<_, OrgKeyRow>(
            "SELECT org_id, version, wrapped_key, master_key_id, created_at FROM org_keys WHERE org_id = $1 AND version = $2",
        )
        .bind(tenant.org_id())
        .bind(version)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn insert_org_key(&self, tenant: Tenant, row: &OrgKeyRow) -> Result<()> {
        sqlx::query("INSERT INTO org_keys (org_id, version, wrapped_key, master_key_id, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(tenant.org_id())
            .bind(row.version)
            .bind(&row.wrapped_key)
            .bind(&row.master_key_id)
            .bind(row.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn all_org_keys(&self) -> Result<Vec<OrgKeyRow>> {
        Ok(sqlx::query_as::<_, OrgKeyRow>(
            "SELECT org_id, version, wrapped_key, master_key_id, created_at FROM org_keys ORDER BY org_id, version",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn rewrap_org_key(&self, org_id: Uuid, version: i64, wrapped_key: &[u8], master_key_id: &str) -> Result<()> {
        sqlx::query("UPDATE org_keys SET wrapped_key = $3, master_key_id = $4 WHERE org_id = $1 AND version = $2")
            .bind(org_id)
            .bind(version)
            .bind(wrapped_key)
            .bind(master_key_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
});
