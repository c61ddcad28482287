//! The audit log: append-only and hash-chained per organization.
//!
//! Each entry's hash covers the previous entry's hash and every field of the
//! entry (in canonical JSON), so altering, inserting or deleting a row breaks
//! the chain at that row and [`verify_chain`] names it.

use cadre_types::Tenant;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;

/// The chain of events that belong to no organization (sign-ins, sign-ups).
pub const PLATFORM_CHAIN: Uuid = Uuid::nil();

/// The `prev_hash` of a chain's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, before it is placed in the chain.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEntry {
    /// `user`, `api_key`, `agent` or `system`.
    pub actor_type: String,
    pub actor_id: Option<String>,
    /// For example `auth.login`, `org.member.removed`, `POST /api/v1/orgs/{orgId}/projects`.
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Already redacted by the caller.
    pub details: Value,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditRow {
    pub org_id: Uuid,
    pub seq: i64,
    pub id: Uuid,
    pub at: OffsetDateTime,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: Json<Value>,
    pub prev_hash: String,
    pub hash: String,
}

/// Filters for listing.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub since: Option<OffsetDateTime>,
}

/// The result of checking a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainCheck {
    Valid {
        entries: u64,
    },
    /// The first entry whose hash or link does not match.
    Broken {
        first_bad_seq: i64,
        entries: u64,
    },
}

/// The hash of an entry: SHA-256 over the canonical JSON of the previous
/// hash and every field.
pub fn entry_hash(row: &AuditRow) -> String {
    let fields = serde_json::json!([
        row.prev_hash,
        row.org_id.to_string(),
        row.seq,
        row.id.to_string(),
        cadre_types::time::rfc3339(row.at),
        row.actor_type,
        row.actor_id,
        row.action,
        row.resource_type,
        row.resource_id,
        row.ip,
        row.user_agent,
        row.details.0,
    ]);
    let digest = Sha256::digest(cadre_types::canonical::to_string(&fields).as_bytes());
    hex_lower(&digest)
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Checks a chain given in sequence order.
pub fn verify_chain(rows: &[AuditRow]) -> ChainCheck {
    let entries = rows.len() as u64;
    let mut prev = GENESIS.to_owned();
    for (i, row) in rows.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        if row.seq != expected_seq || row.prev_hash != prev || entry_hash(row) != row.hash {
            return ChainCheck::Broken {
                first_bad_seq: row.seq.min(expected_seq),
                entries,
            };
        }
        prev.clone_from(&row.hash);
    }
    ChainCheck::Valid { entries }
}

#[async_trait::async_trait]
pub trait AuditQueries: Send + Sync {
    /// Appends to the chain of `org_id` (or [`PLATFORM_CHAIN`]).
    async fn append_audit(
        &self,
        org_id: Uuid,
        entry: &NewAuditEntry,
        at: OffsetDateTime,
    ) -> Result<AuditRow>;
    /// Newest first, and the total matching.
    async fn audit_entries(
        &self,
        tenant: Tenant,
        filter: &AuditFilter,
        page: super::Page,
    ) -> Result<(Vec<AuditRow>, u64)>;
    /// The whole chain of an org in order (for verification).
    async fn audit_chain(&self, org_id: Uuid) -> Result<Vec<AuditRow>>;
    /// Every org id that has a chain, the platform chain included.
    async fn audit_chains(&self) -> Result<Vec<Uuid>>;
}

macro_rules! audit_columns {
    () => {
        "org_id, seq, id, at, actor_type, actor_id, action, resource_type, resource_id, ip, user_agent, details, prev_hash, hash"
    };
}

super::for_both_backends!(AuditQueries {
    async fn append_audit(&self, org_id: Uuid, e: &NewAuditEntry, at: OffsetDateTime) -> Result<AuditRow> {
        let mut tx = self.begin_write().await?;
        sqlx::query(Self::LOCK_AUDIT_CHAIN).bind(org_id.to_string()).execute(&mut *tx).await?;
        let last = sqlx::query_as::<_, (i64, String)>(
            "SELECT seq, hash FROM audit_log WHERE org_id = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(org_id)
        .fetch_optional(&mut *tx)
        .await?;
        let (seq, prev_hash) = last.map_or((1, GENESIS.to_owned()), |(s, h)| (s + 1, h));
        let mut row = AuditRow {
            org_id,
            seq,
            id: cadre_types::new_id(),
            at,
            actor_type: e.actor_type.clone(),
            actor_id: e.actor_id.clone(),
            action: e.action.clone(),
            resource_type: e.resource_type.clone(),
            resource_id: e.resource_id.clone(),
            ip: e.ip.clone(),
            user_agent: e.user_agent.clone(),
            details: Json(e.details.clone()),
            prev_hash,
            hash: String::new(),
        };
        row.hash = entry_hash(&row);
        sqlx::query(concat!("INSERT INTO audit_log (", audit_columns!(), ")
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"))
        .bind(row.org_id)
        .bind(row.seq)
        .bind(row.id)
        .bind(row.at)
        .bind(&row.actor_type)
        .bind(&row.actor_id)
        .bind(&row.action)
        .bind(&row.resource_type)
        .bind(&row.resource_id)
        .bind(&row.ip)
        .bind(&row.user_agent)
        .bind(&row.details)
        .bind(&row.prev_hash)
        .bind(&row.hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn audit_entries(&self, tenant: Tenant, f: &AuditFilter, page: super::Page) -> Result<(Vec<AuditRow>, u64)> {
        let rows = sqlx::query_as::<_, AuditRow>(concat!(
            "SELECT ", audit_columns!(), " FROM audit_log
             WHERE org_id = $1 AND ($2 IS NULL OR action = $2) AND ($3 IS NULL OR actor_id = $3) AND ($4 IS NULL OR at >= $4)
             ORDER BY seq DESC LIMIT $5 OFFSET $6"))
        .bind(tenant.org_id())
        .bind(f.action.as_deref())
        .bind(f.actor_id.as_deref())
        .bind(f.since)
        .bind(i64::from(page.page_size))
        .bind(page.offset())
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log
             WHERE org_id = $1 AND ($2 IS NULL OR action = $2) AND ($3 IS NULL OR actor_id = $3) AND ($4 IS NULL OR at >= $4)",
        )
        .bind(tenant.org_id())
        .bind(f.action.as_deref())
        .bind(f.actor_id.as_deref())
        .bind(f.since)
        .fetch_one(&self.pool)
        .await?;
        Ok((rows, u64::try_from(total).unwrap_or(0)))
    }

    async fn audit_chain(&self, org_id: Uuid) -> Result<Vec<AuditRow>> {
        Ok(sqlx::query_as::<_, AuditRow>(concat!("SELECT ", audit_columns!(), " FROM audit_log WHERE org_id = $1 ORDER BY seq"))
            .bind(org_id)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn audit_chains(&self) -> Result<Vec<Uuid>> {
        Ok(sqlx::query_scalar("SELECT DISTINCT org_id FROM audit_log ORDER BY org_id").fetch_all(&self.pool).await?)
    }
});
