//! Storage errors. Database errors are inspected once, here: a unique-key
//! violation becomes [`StoreError::Conflict`] and a foreign-key violation
//! [`StoreError::NotFound`], so callers never race a pre-check.

/// What can go wrong in the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist (or belongs to another organization).
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write.
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    /// Someone else holds the task's edit lock until `expires_at`.
    #[error("locked by {holder_type} {holder_id:?} until {expires_at}")]
    Locked {
        holder_type: String,
        holder_id: Option<uuid::Uuid>,
        expires_at: time::OffsetDateTime,
    },
    /// The write named a version that is no longer the current one.
    #[error("stale write: the current version is {current}")]
    Stale { current: i64 },
    /// The dependency would close a cycle; `path` runs from the task that
    /// would depend back to itself (first and last are the same task).
    #[error("the dependency would close a cycle")]
    Cycle { path: Vec<uuid::Uuid> },
    /// A worker's lease on a job has been taken over (its epoch is stale):
    /// its write was refused so it cannot overwrite the new owner's result.
    #[error("the job's lease is held by another worker now")]
    StaleLease,
    /// The database cannot be reached or refused the connection.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
                constraint: db.constraint().unwrap_or("unique key").to_owned(),
            },
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err),
            _ => StoreError::Database(err),
        }
    }
}
