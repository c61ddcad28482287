//! Cadre's shared vocabulary: the small types every other crate speaks.
//!
//! Nothing here does I/O. Ids, timestamps and the redaction rule live here so
//! that the store, the server and the binary agree on them without depending
//! on each other.

pub mod canonical;
pub mod id;
pub mod redact;
pub mod roles;
pub mod tenant;
pub mod time;

pub use id::new_id;
pub use roles::{Plan, PlatformRole, Role, Scope, UnknownName};
pub use tenant::Tenant;

/// The version of this build, as reported by `cadre --version` and `/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
