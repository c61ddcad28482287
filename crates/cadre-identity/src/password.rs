//! Argon2id password hashing (OWASP's parameters: 19 MiB, 2 passes).
//!
//! Hashing takes tens of milliseconds of CPU, so the async functions run it
//! on the blocking pool. A login for an unknown email still verifies against
//! a dummy hash, so the answer takes as long as for a known one.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::{IdentityError, Result};

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 256;

/// Checks the length rule of SPEC §7.5 (8–256 characters).
pub fn validate(password: &str, field: &'static str) -> Result<()> {
    let len = password.chars().count();
    if (MIN_LEN..=MAX_LEN).contains(&len) {
        Ok(())
    } else {
        Err(IdentityError::validation(
            field,
            format!("password must be {MIN_LEN} to {MAX_LEN} characters"),
        ))
    }
}

/// The PHC string of a new hash.
pub async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|e| IdentityError::Internal(format!("password hashing task failed: {e}")))?
}

fn hash_now(password: &str) -> Result<String> {
    let mut salt_bytes = [0u8; 16];
    getrandom::fill(&mut salt_bytes)
        .map_err(|e| IdentityError::Internal(format!("random source failed: {e}")))?;
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt_bytes)
        .map(|h| h.to_string())
        .map_err(|e| IdentityError::Internal(format!("password hashing failed: {e}")))
}

/// Whether `password` matches `stored` (a PHC string). With `None` it
/// verifies against a dummy hash and answers `false`, taking the same time.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let target = stored.as_deref().unwrap_or_else(|| dummy_hash());
        let matches = PasswordHash::new(target)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        matches && stored.is_some()
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_now("not-a-real-password-used-for-timing").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let h = hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(h.clone())).await);
        assert!(!verify("wrong horse".into(), Some(h)).await);
        assert!(!verify("correct horse".into(), None).await);
    }

    #[test]
    fn length_rule_is_8_to_256_characters() {
        assert!(validate("1234567", "password").is_err());
        assert!(validate("12345678", "password").is_ok());
        assert!(validate(&"é".repeat(256), "password").is_ok());
        assert!(validate(&"x".repeat(257), "password").is_err());
    }
}
