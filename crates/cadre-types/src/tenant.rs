//! The tenant a query is scoped to.
//!
//! Every query on tenant-owned rows takes a [`Tenant`]. Only the
//! authorization layer creates one, after checking that the caller belongs to
//! the organization (clippy forbids `Tenant::new` everywhere else), so a query
//! cannot be written without the caller's org — and a foreign id is simply
//! not found.

use uuid::Uuid;

/// Proof that the current caller may act inside this organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tenant {
    org_id: Uuid,
}

impl Tenant {
    /// Only the authorization layer calls this (enforced by clippy's
    /// `disallowed-methods`), after it has checked membership.
    pub fn new(org_id: Uuid) -> Self {
        Self { org_id }
    }

    pub fn org_id(&self) -> Uuid {
        self.org_id
    }
}
