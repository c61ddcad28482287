//! An organization's own model configuration. Prices are decimal text, the
//! key is sealed by the secrets module before it reaches this table.

use cadre_types::Tenant;
use time::OffsetDateTime;

use crate::Result;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrgModelRow {
    pub name: String,
    /// `openai`, `anthropic` or `scripted`.
    pub provider: String,
    pub base_url: Option<String>,
    pub api_key_sealed: Option<String>,
    pub input_price_per_mtok: Option<String>,
    pub output_price_per_mtok: Option<String>,
    pub context_window: Option<i64>,
    /// For `scripted` models: the JSON list of answers to replay.
    pub script: Option<String>,
    pub updated_at: OffsetDateTime,
}

#[async_trait::async_trait]
pub trait ModelQueries: Send + Sync {
    /// The org's models, by name.
    async fn org_models(&self, tenant: Tenant) -> Result<Vec<OrgModelRow>>;
    /// Replaces the org's whole model list in one transaction.
    async fn replace_org_models(&self, tenant: Tenant, models: &[OrgModelRow]) -> Result<()>;
}

super::for_both_backends!(ModelQueries {
    async fn org_models(&self, tenant: Tenant) -> Result<Vec<OrgModelRow>> {
        Ok(sqlx::query_as::<_, OrgModelRow>(
            "SELECT name, provider, base_url, api_key_sealed, input_price_per_mtok, output_price_per_mtok, context_window, script, updated_at
             FROM org_models WHERE org_id = $1 ORDER BY name",
        )
        .bind(tenant.org_id())
        .fetch_all(&self.pool)
        .await?)
    }

    async fn replace_org_models(&self, tenant: Tenant, models: &[OrgModelRow]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM org_models WHERE org_id = $1").bind(tenant.org_id()).execute(&mut *tx).await?;
        for m in models {
            sqlx::query(
                "INSERT INTO org_models (org_id, name, provider, base_url, api_key_sealed, input_price_per_mtok, output_price_per_mtok, context_window, script, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(tenant.org_id())
            .bind(&m.name)
            .bind(&m.provider)
            .bind(&m.base_url)
            .bind(&m.api_key_sealed)
            .bind(&m.input_price_per_mtok)
            .bind(&m.output_price_per_mtok)
            .bind(m.context_window)
            .bind(&m.script)
            .bind(m.updated_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
});
