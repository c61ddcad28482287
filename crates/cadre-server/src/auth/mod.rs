//! Authentication, authorization and rate limits, as extractors.
//!
//! Every route declares its [`Access`] in one table ([`access`]); the
//! [`Caller`] extractor reads the declaration for the matched route,
//! authenticates the request, and for organization routes
//! [`Caller::authorize`] checks membership and permission and hands back the
//! [`cadre_types::Tenant`] that tenant-scoped queries require. A route
//! missing from the table answers 500 — and a test fails first.

pub mod access;
mod caller;
mod limits;

pub use access::{Access, Category};
pub(crate) use caller::RequestScope;
pub use caller::{Caller, Principal, UiRead};
pub(crate) use caller::{authorize_principal, ws_principal};
pub use limits::{KeyUsage, Limits};
