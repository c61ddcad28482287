//! Access tokens: HS256 JWTs, 15 minutes by default, with issuer and
//! audience checked and the algorithm pinned (a token signed any other way,
//! or `alg: none`, is refused).

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{IdentityError, Result};

const ISSUER: &str = "cadre";
const AUDIENCE: &str = "cadre-api";

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// Issues and checks access tokens with one secret.
#[derive(Clone)]
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    /// How long an access token lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A signed token for `user_id`.
    pub fn issue(&self, user_id: Uuid) -> Result<String> {
        let now = cadre_types::time::now().unix_timestamp();
        let claims = Claims {
            sub: user_id,
            iat: now,
            exp: now + i64::try_from(self.ttl.as_secs()).unwrap_or(900),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| IdentityError::Internal(format!("signing an access token failed: {e}")))
    }

    /// The claims of a valid token; `TokenExpired` or `InvalidToken` otherwise.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => IdentityError::TokenExpired,
                _ => IdentityError::InvalidToken,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(
            b"0123456789abcdef0123456789abcdef",
            Duration::from_secs(900),
        )
    }

    #[test]
    fn an_issued_token_verifies_and_names_its_user() {
        let user = Uuid::now_v7();
        let token = issuer().issue(user).unwrap();
        let claims = issuer().verify(&token).unwrap();
        assert_eq!(claims.sub, user);
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn a_token_from_another_secret_is_invalid() {
        let other = TokenIssuer::new(
            b"another-secret-another-secret-xx",
            Duration::from_secs(900),
        );
        let token = other.issue(Uuid::now_v7()).unwrap();
        assert!(matches!(
            issuer().verify(&token),
            Err(IdentityError::InvalidToken)
        ));
    }

    #[test]
    fn an_expired_token_is_reported_as_expired() {
        // Signed with the right key, but expired well beyond the 5 s leeway.
        let claims = Claims {
            sub: Uuid::now_v7(),
            iat: 1_000,
            exp: 2_000,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &issuer().encoding).unwrap();
        assert!(matches!(
            issuer().verify(&token),
            Err(IdentityError::TokenExpired)
        ));
    }

    #[test]
    fn alg_none_and_garbage_are_invalid() {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let payload = b64.encode(format!(
            r#"{{"sub":"{}","iat":1,"exp":99999999999,"iss":"cadre","aud":"cadre-api"}}"#,
            Uuid::now_v7()
        ));
        assert!(matches!(
            issuer().verify(&format!("{header}.{payload}.")),
            Err(IdentityError::InvalidToken)
        ));
        assert!(matches!(
            issuer().verify("not-a-jwt"),
            Err(IdentityError::InvalidToken)
        ));
    }
}
