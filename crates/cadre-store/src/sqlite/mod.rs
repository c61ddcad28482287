//! The embedded SQLite backend: one file in the data directory, WAL mode,
//! `synchronous=FULL` (a committed step survives power loss), foreign keys on.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::{ConnectOptions, Result, StoreError};

pub(crate) struct SqliteStore {
    pub(crate) pool: SqlitePool,
}

impl SqliteStore {
    pub(crate) const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

    pub(crate) async fn connect(path: &Path, options: &ConnectOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::from_str("sqlite://")
            .map_err(StoreError::Database)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(options.sqlite_busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(StoreError::Unavailable)?;
        tracing::debug!(path = %path.display(), "opened SQLite database");
        Ok(Self { pool })
    }
}

#[async_trait::async_trait]
impl crate::store::Backend for SqliteStore {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
