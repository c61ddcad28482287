//! Test support: a fresh database per test, on SQLite always and on
//! PostgreSQL when `CADRE_TEST_DATABASE_URL` is set.
//!
//! Each PostgreSQL test gets its own schema, dropped when the [`TestDb`] is,
//! so tests run in parallel against one server without seeing each other.

#![expect(
    clippy::print_stderr,
    reason = "skip reasons are printed for the person running the tests"
)]

use std::time::Duration;

use cadre_store::{ConnectOptions, Store, Target};

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, migrated database that cleans up after itself.
pub struct TestDb {
    pub store: Store,
    pub target: Target,
    pub options: ConnectOptions,
    _dir: Option<tempfile::TempDir>,
    pg_cleanup: Option<(String, String)>,
}

impl TestDb {
    /// A fresh migrated database on `backend`, or `None` (with the reason
    /// printed) when that backend is not available here.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite().await),
            Backend::Postgres => Self::postgres().await,
        }
    }

    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap_or_else(|e| fail(format!("temp dir: {e}")));
        let target = Target::Sqlite(dir.path().join("cadre.db"));
        let options = ConnectOptions::default();
        let store = connect(&target, &options).await;
        TestDb {
            store,
            target,
            options,
            _dir: Some(dir),
            pg_cleanup: None,
        }
    }

    pub async fn postgres() -> Option<TestDb> {
        let Some(url) = postgres_url() else {
            eprintln!(
                "skipping PostgreSQL test: set CADRE_TEST_DATABASE_URL (for example postgres://postgres@127.0.0.1:5432/test) to run it"
            );
            return None;
        };
        sweep_stale_schemas(&url).await;
        let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
        let options = ConnectOptions {
            pg_schema: Some(schema.clone()),
            max_connections: 5,
            ..ConnectOptions::default()
        };
        let target = Target::Postgres(url.clone());
        let store = connect(&target, &options).await;
        Some(TestDb {
            store,
            target,
            options,
            _dir: None,
            pg_cleanup: Some((url, schema)),
        })
    }
}

impl TestDb {
    /// A database URL another process can use to reach this database (its
    /// own schema, for PostgreSQL), or `None` for SQLite.
    pub fn postgres_url_for_process(&self) -> Option<String> {
        let (url, schema) = self.pg_cleanup.as_ref()?;
        let sep = if url.contains('?') { '&' } else { '?' };
        Some(format!("{url}{sep}options%5Bsearch_path%5D={schema}"))
    }
}

/// Drops `t_*` schemas left by tests that panicked more than an hour ago
/// (their names carry the UUIDv7 creation time). Once per test process.
async fn sweep_stale_schemas(url: &str) {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let Ok(pool) = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await
            else {
                return;
            };
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 't\\_%'",
            )
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
            let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
            for name in names {
                let created = name
                    .strip_prefix("t_")
                    .and_then(|hex| uuid::Uuid::try_parse(hex).ok())
                    .and_then(|id| id.get_timestamp())
                    .map(|ts| {
                        let (secs, nanos) = ts.to_unix();
                        std::time::UNIX_EPOCH + Duration::new(secs, nanos)
                    });
                if created.is_some_and(|at| at < hour_ago) {
                    let sql = format!("DROP SCHEMA IF EXISTS {name} CASCADE");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
                }
            }
            pool.close().await;
        })
        .await;
}

/// The PostgreSQL server tests may use, if any.
pub fn postgres_url() -> Option<String> {
    cadre_config::testing::database_url()
}

async fn connect(target: &Target, options: &ConnectOptions) -> Store {
    let store = Store::connect(target, options)
        .await
        .unwrap_or_else(|e| fail(format!("connect to {target:?}: {e}")));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| fail(format!("migrate: {e}")));
    store
}

fn fail(msg: String) -> ! {
    // A broken test environment should stop the test with its reason.
    #[expect(
        clippy::panic,
        reason = "test support reports an unusable environment by failing the test"
    )]
    {
        panic!("{msg}")
    }
}

impl TestDb {
    /// Closes the pool and drops the PostgreSQL schema. Call it at the end of
    /// a test (the `store_test!` macro does); a test that panics leaves its
    /// `t_*` schema behind. It cannot live in `Drop`: dropping the schema
    /// waits for the pool's connections, and only the runtime that `Drop`
    /// would block can release them.
    /// A second handle on the same database, for cleaning up after a body
    /// that took the first one.
    pub fn handle(&self) -> TestDb {
        TestDb {
            store: self.store.clone(),
            target: self.target.clone(),
            options: self.options.clone(),
            _dir: None,
            pg_cleanup: self.pg_cleanup.clone(),
        }
    }

    pub async fn cleanup(self) {
        self.store.close().await;
        let Some((url, schema)) = &self.pg_cleanup else {
            return;
        };
        let dropped = async {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
                .await?;
            let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await?;
            pool.close().await;
            Ok::<_, sqlx::Error>(())
        };
        if let Err(e) = dropped.await {
            eprintln!("warning: could not drop test schema {schema}: {e}");
        }
    }
}

/// Runs one async test body against every available backend.
///
/// ```ignore
/// store_test!(instances_register_and_list, |db| async move { ... });
/// ```
/// expands to `instances_register_and_list::sqlite` and `::postgres`.
#[macro_export]
macro_rules! store_test {
    ($name:ident, |$db:ident| $body:expr) => {
        mod $name {
            #[allow(
                unused_imports,
                reason = "the body may or may not use the parent's items"
            )]
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let $db = $crate::TestDb::new($crate::Backend::Sqlite).await.unwrap();
                $body.await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some($db) = $crate::TestDb::new($crate::Backend::Postgres).await else {
                    return;
                };
                $body.await;
            }
        }
    };
}
