//! What identity operations can refuse, phrased for the client.

use cadre_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{message}")]
    Validation {
        field: &'static str,
        message: String,
    },
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("the token is invalid")]
    InvalidToken,
    #[error("the token has expired")]
    TokenExpired,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A failure of our own (hashing, randomness); details are logged.
    #[error("{0}")]
    Internal(String),
}

impl IdentityError {
    pub fn validation(field: &'static str, message: impl Into<String>) -> Self {
        Self::Validation {
            field,
            message: message.into(),
        }
    }
}

pub type Result<T, E = IdentityError> = std::result::Result<T, E>;
