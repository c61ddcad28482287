//! Sign-up, sign-in, token refresh, sign-out, password reset and profile
//! changes: the account rules of SPEC §7.5 and §9.

use std::time::Duration;

use cadre_store::{NewRefreshToken, NewUser, RefreshUse, Store, StoreError, UserPatch, UserRow};
use uuid::Uuid;

use crate::keys::{random_token, token_hash};
use crate::tokens::TokenIssuer;
use crate::{IdentityError, Result, password};

/// Who may create an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupMode {
    /// Anyone.
    Open,
    /// Only someone holding an invitation for their email address.
    Invite,
    /// Nobody (except the first user of an empty instance).
    Closed,
}

/// Account rules taken from configuration.
#[derive(Debug, Clone)]
pub struct AccountPolicy {
    pub signup: SignupMode,
    pub refresh_ttl: Duration,
    pub reset_ttl: Duration,
}

/// A signed-in session: what sign-up, sign-in and refresh return.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: UserRow,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

/// A fresh account request.
#[derive(Debug, Clone)]
pub struct SignupIn {
    pub email: String,
    pub password: String,
    pub name: String,
    pub invitation_token: Option<String>,
}

/// A profile change; changing the password needs the current one.
#[derive(Debug, Clone, Default)]
pub struct MePatch {
    pub name: Option<String>,
    pub email: Option<String>,
    pub settings: Option<serde_json::Value>,
    pub current_password: Option<String>,
    pub new_password: Option<String>,
}

/// The account service.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: Store,
    tokens: TokenIssuer,
    policy: AccountPolicy,
}

impl Accounts {
    pub fn new(store: Store, tokens: TokenIssuer, policy: AccountPolicy) -> Self {
        Self {
            store,
            tokens,
            policy,
        }
    }

    pub fn tokens(&self) -> &TokenIssuer {
        &self.tokens
    }

    pub async fn signup(&self, input: SignupIn) -> Result<Session> {
        let email = normalize_email(&input.email)?;
        let name = validate_name(&input.name)?;
        password::validate(&input.password, "password")?;
        self.check_signup_allowed(&email, input.invitation_token.as_deref())
            .await?;
        let password_hash = password::hash(input.password).await?;
        let user = self
            .store
            .users()
            .create_user(&NewUser {
                id: cadre_types::new_id(),
                email,
                name,
                password_hash,
                at: cadre_types::time::now(),
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => IdentityError::Conflict(
                    "an account with this email already exists; sign in instead".into(),
                ),
                other => other.into(),
            })?;
        self.start_session(user, cadre_types::new_id()).await
    }

    async fn check_signup_allowed(&self, email: &str, invitation: Option<&str>) -> Result<()> {
        if self.policy.signup == SignupMode::Open {
            return Ok(());
        }
        // The first account of an empty instance can always be created:
        // otherwise nobody could ever get in.
        if !self.store.users().any_user().await? {
            return Ok(());
        }
        if self.policy.signup == SignupMode::Invite
            && let Some(token) = invitation
            && let Some(inv) = self
                .store
                .orgs()
                .invitation_by_token(&token_hash(token))
                .await?
            && inv.email == email
            && inv.accepted_at.is_none()
            && inv.expires_at > cadre_types::time::now()
        {
            return Ok(());
        }
        Err(IdentityError::Forbidden(match self.policy.signup {
            SignupMode::Invite => {
                "sign-up needs an invitation for this email address (send invitationToken)".into()
            }
            SignupMode::Closed | SignupMode::Open => {
                "sign-up is closed on this instance; ask an administrator for an account".into()
            }
        }))
    }

    /// Signs in. Unknown email and wrong password answer the same error in
    /// the same time.
    pub async fn login(&self, email: &str, password_text: String) -> Result<Session> {
        let user = match normalize_email(email) {
            Ok(email) => self.store.users().user_by_email(&email).await?,
            Err(_) => None,
        };
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        if !password::verify(password_text, stored).await {
            return Err(IdentityError::InvalidCredentials);
        }
        let user = user.ok_or(IdentityError::InvalidCredentials)?;
        self.store
            .users()
            .record_login(user.id, cadre_types::time::now())
            .await?;
        self.start_session(user, cadre_types::new_id()).await
    }

    /// Trades a refresh token for a new pair. A token presented twice
    /// revokes its whole family.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session> {
        let now = cadre_types::time::now();
        match self
            .store
            .sessions()
            .use_refresh_token(&token_hash(refresh_token), now)
            .await?
        {
            RefreshUse::Rotated { user_id, family_id } => {
                let user = self
                    .store
                    .users()
                    .user_by_id(user_id)
                    .await?
                    .ok_or(IdentityError::InvalidToken)?;
                self.start_session(user, family_id).await
            }
            RefreshUse::Reused { user_id } => {
                tracing::warn!(user_id = %user_id, "refresh token reused; its session family is revoked");
                Err(IdentityError::InvalidToken)
            }
            RefreshUse::Expired => Err(IdentityError::TokenExpired),
            RefreshUse::Unknown => Err(IdentityError::InvalidToken),
        }
    }

    /// Revokes the session family of this refresh token.
    pub async fn logout(&self, refresh_token: &str) -> Result<()> {
        self.store
            .sessions()
            .revoke_refresh_family_of(&token_hash(refresh_token), cadre_types::time::now())
            .await?;
        Ok(())
    }

    /// Creates a single-use reset token for the account, if it exists. The
    /// caller delivers it; the client learns nothing either way.
    pub async fn forgot_password(&self, email: &str) -> Result<Option<(UserRow, String)>> {
        let Ok(email) = normalize_email(email) else {
            return Ok(None);
        };
        let Some(user) = self.store.users().user_by_email(&email).await? else {
            return Ok(None);
        };
        let token = random_token("rst_")?;
        let now = cadre_types::time::now();
        let expires = now + self.policy.reset_ttl;
        self.store
            .sessions()
            .insert_password_reset(
                cadre_types::new_id(),
                user.id,
                &token_hash(&token),
                expires,
                now,
            )
            .await?;
        Ok(Some((user, token)))
    }

    /// Sets a new password with a reset token and signs out every session.
    pub async fn reset_password(&self, token: &str, new_password: String) -> Result<UserRow> {
        password::validate(&new_password, "password")?;
        let now = cadre_types::time::now();
        let user_id = self
            .store
            .sessions()
            .consume_password_reset(&token_hash(token), now)
            .await?
            .ok_or(IdentityError::InvalidToken)?;
        self.set_password(user_id, new_password).await
    }

    async fn set_password(&self, user_id: Uuid, new_password: String) -> Result<UserRow> {
        let hash = password::hash(new_password).await?;
        let now = cadre_types::time::now();
        self.store.users().set_password(user_id, &hash, now).await?;
        self.store
            .sessions()
            .revoke_user_refresh_tokens(user_id, now)
            .await?;
        self.store
            .users()
            .user_by_id(user_id)
            .await?
            .ok_or(IdentityError::NotFound)
    }

    pub async fn me(&self, user_id: Uuid) -> Result<UserRow> {
        self.store
            .users()
            .user_by_id(user_id)
            .await?
            .ok_or(IdentityError::InvalidToken)
    }

    pub async fn update_me(&self, user_id: Uuid, patch: MePatch) -> Result<UserRow> {
        let user = self.me(user_id).await?;
        if let Some(new_password) = patch.new_password {
            password::validate(&new_password, "newPassword")?;
            let current = patch.current_password.ok_or_else(|| {
                IdentityError::validation(
                    "currentPassword",
                    "send currentPassword to change the password",
                )
            })?;
            if !password::verify(current, Some(user.password_hash.clone())).await {
                return Err(IdentityError::validation(
                    "currentPassword",
                    "the current password is wrong",
                ));
            }
            self.set_password(user_id, new_password).await?;
        }
        let store_patch = UserPatch {
            name: patch.name.as_deref().map(validate_name).transpose()?,
            email: patch.email.as_deref().map(normalize_email).transpose()?,
            settings: patch.settings,
        };
        self.store
            .users()
            .update_user(user_id, &store_patch, cadre_types::time::now())
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => {
                    IdentityError::Conflict("another account uses this email".into())
                }
                other => other.into(),
            })
    }

    async fn start_session(&self, user: UserRow, family_id: Uuid) -> Result<Session> {
        let access_token = self.tokens.issue(user.id)?;
        let refresh_token = random_token("rt_")?;
        let now = cadre_types::time::now();
        self.store
            .sessions()
            .insert_refresh_token(&NewRefreshToken {
                id: cadre_types::new_id(),
                user_id: user.id,
                family_id,
                token_hash: token_hash(&refresh_token),
                expires_at: now + self.policy.refresh_ttl,
                at: now,
            })
            .await?;
        Ok(Session {
            user,
            access_token,
            refresh_token,
            expires_in: self.tokens.ttl().as_secs(),
        })
    }
}

/// Lower-cases and checks an email address.
pub fn normalize_email(raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        });
    if valid {
        Ok(email)
    } else {
        Err(IdentityError::validation(
            "email",
            "enter an email address such as ada@example.com",
        ))
    }
}

/// A person's or an organization's name: 1 to 200 characters, trimmed.
pub fn validate_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if (1..=200).contains(&name.chars().count()) {
        Ok(name.to_owned())
    } else {
        Err(IdentityError::validation(
            "name",
            "name must be 1 to 200 characters",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_email("  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
