//! Who is calling and what they may do.
//!
//! Passwords ([`password`]), access and refresh tokens ([`tokens`]), API keys
//! ([`keys`]), the permission table ([`permissions`]), rate limits
//! ([`rate_limit`]), and the account and organization services
//! ([`accounts`], [`orgs`]) that the HTTP layer calls. Nothing here knows
//! about HTTP.

pub mod accounts;
mod error;
pub mod keys;
pub mod mail;
pub mod orgs;
pub mod password;
pub mod permissions;
pub mod rate_limit;
pub mod secrets;
pub mod tokens;

pub use error::{IdentityError, Result};
