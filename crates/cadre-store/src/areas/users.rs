//! User accounts. Emails are stored lower-cased, so uniqueness and look-ups
//! are case-insensitive.

use cadre_types::PlatformRole;
use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;

/// A new account.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub at: OffsetDateTime,
}

/// A stored account.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub platform_role: String,
    pub settings: Json<Value>,
    pub last_login_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl UserRow {
    /// The platform role; an unreadable value counts as a plain user.
    pub fn platform_role(&self) -> PlatformRole {
        self.platform_role.parse().unwrap_or(PlatformRole::User)
    }
}

/// Changes to a profile; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub name: Option<String>,
    pub email: Option<String>,
    pub settings: Option<Value>,
}

#[async_trait::async_trait]
pub trait UserQueries: Send + Sync {
    /// Creates the account. The first account of an empty instance becomes
    /// `super_admin`. A taken email is [`crate::StoreError::Conflict`].
    async fn create_user(&self, user: &NewUser) -> Result<UserRow>;
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>>;
    /// Whether the instance has any account yet.
    async fn any_user(&self) -> Result<bool>;
    async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRow>>;
    async fn update_user(&self, id: Uuid, patch: &UserPatch, at: OffsetDateTime)
    -> Result<UserRow>;
    async fn set_password(&self, id: Uuid, password_hash: &str, at: OffsetDateTime) -> Result<()>;
    async fn record_login(&self, id: Uuid, at: OffsetDateTime) -> Result<()>;
}

macro_rules! user_columns {
    () => {
        "id, email, name, password_hash, platform_role, settings, last_login_at, created_at, updated_at"
    };
}

super::for_both_backends!(UserQueries {
    async fn create_user(&self, u: &NewUser) -> Result<UserRow> {
        let row = sqlx::query_as::<_, UserRow>(concat!(
            "INSERT INTO users (id, email, name, password_hash, platform_role, settings, created_at, updated_at)
             VALUES ($1, $2, $3, $4,
                     CASE WHEN EXISTS (SELECT 1 FROM users) THEN 'user' ELSE 'super_admin' END,
                     $5, $6, $6)
             RETURNING ", user_columns!()))
        .bind(u.id)
        .bind(u.email.to_lowercase())
        .bind(&u.name)
        .bind(&u.password_hash)
        .bind(Json(serde_json::json!({})))
        .bind(u.at)
        .fetch_one(&self.pool)
        .await?;
        Ok(row)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>> {
        Ok(sqlx::query_as::<_, UserRow>(concat!("SELECT ", user_columns!(), " FROM users WHERE email = $1"))
            .bind(email.to_lowercase())
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn any_user(&self) -> Result<bool> {
        Ok(sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM users)").fetch_one(&self.pool).await?)
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRow>> {
        Ok(sqlx::query_as::<_, UserRow>(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn update_user(&self, id: Uuid, p: &UserPatch, at: OffsetDateTime) -> Result<UserRow> {
        Ok(sqlx::query_as::<_, UserRow>(concat!(
            "UPDATE users SET name = COALESCE($2, name), email = COALESCE($3, email),
                    settings = COALESCE($4, settings), updated_at = $5
             WHERE id = $1 RETURNING ", user_columns!()))
        .bind(id)
        .bind(p.name.as_deref())
        .bind(p.email.as_ref().map(|e| e.to_lowercase()))
        .bind(p.settings.clone().map(Json))
        .bind(at)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn set_password(&self, id: Uuid, hash: &str, at: OffsetDateTime) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(hash)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn record_login(&self, id: Uuid, at: OffsetDateTime) -> Result<()> {
        sqlx::query("UPDATE users SET last_login_at = $2 WHERE id = $1").bind(id).bind(at).execute(&self.pool).await?;
        Ok(())
    }
});
