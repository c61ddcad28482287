//! Random secrets handed to clients (refresh, reset and invitation tokens,
//! API keys) and the hashes we keep of them.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::{IdentityError, Result};

/// The prefix every API key starts with.
pub const API_KEY_PREFIX: &str = "cdr_";
/// How many leading characters of an API key are kept to recognise it.
pub const API_KEY_SHOWN: usize = 8;

/// 32 random bytes, base64url without padding, after `prefix`.
pub fn random_token(prefix: &str) -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| IdentityError::Internal(format!("random source failed: {e}")))?;
    Ok(format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The SHA-256 of a token, hex-encoded: what the database stores. The
/// tokens are 256-bit random, so a fast hash is enough.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A new API key: the full key (shown once), its hash and its prefix.
pub fn new_api_key() -> Result<(String, String, String)> {
    let key = random_token(API_KEY_PREFIX)?;
    let hash = token_hash(&key);
    let prefix = key.chars().take(API_KEY_SHOWN).collect();
    Ok((key, hash, prefix))
}

/// Whether a presented value looks like one of our API keys at all.
pub fn looks_like_api_key(value: &str) -> bool {
    value.starts_with(API_KEY_PREFIX) && value.len() == API_KEY_PREFIX.len() + 43
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_have_the_documented_shape() {
        let (key, hash, prefix) = new_api_key().unwrap();
        assert!(key.starts_with("cdr_") && looks_like_api_key(&key), "{key}");
        assert_eq!(prefix, &key[..8]);
        assert_eq!(hash, token_hash(&key));
        assert_eq!(hash.len(), 64);
        assert_ne!(new_api_key().unwrap().0, key);
    }
}
