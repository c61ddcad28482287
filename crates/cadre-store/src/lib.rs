//! Cadre's storage layer.
//!
//! One query trait per area ([`areas`]), each implemented for SQLite
//! ([`sqlite`]) and PostgreSQL ([`postgres`]). Callers hold a [`Store`] and
//! never learn which database is underneath. Migrations for each backend are
//! embedded in the binary and applied by [`Store::migrate`].

pub mod areas;
mod error;
mod postgres;
mod sqlite;
mod store;

pub use areas::health::{HealthQueries, SchemaVersion};
pub use areas::instances::{InstanceIn, InstanceQueries, InstanceRow};
pub use error::{Result, StoreError};
pub use store::{ConnectOptions, Store, Target};
