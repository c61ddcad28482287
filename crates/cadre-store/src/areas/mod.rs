//! One module per query area: the trait callers use, and, where the SQL is
//! the same on both databases, its one implementation for both backends.

pub mod agents;
pub mod api_keys;
pub mod audit;
pub mod chat;
pub mod events;
pub mod executions;
pub mod health;
pub mod instances;
pub mod jobs;
pub mod models;
pub mod org_keys;
pub mod orgs;
pub mod projects;
pub mod schedules;
pub mod sessions;
pub mod task_graph;
pub mod task_templates;
pub mod tasks;
pub mod users;

/// A row of a page together with the total the page was cut from
/// (`COUNT(*) OVER ()`).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Counted<T> {
    #[sqlx(flatten)]
    pub(crate) row: T,
    pub(crate) total: i64,
}

/// A page and the total it was cut from. The total rides along with the
/// rows (`COUNT(*) OVER ()`, one query); only a page past the end, which has
/// no rows to carry it, needs `count`.
pub(crate) async fn paged<T, F, Fut>(
    rows: Vec<Counted<T>>,
    count: F,
) -> crate::Result<(Vec<T>, u64)>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<i64, sqlx::Error>>,
{
    let total = match rows.first() {
        Some(first) => first.total,
        None => count().await?,
    };
    Ok((
        rows.into_iter().map(|r| r.row).collect(),
        u64::try_from(total).unwrap_or(0),
    ))
}

/// One page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1-based.
    pub page: u32,
    pub page_size: u32,
}

impl Page {
    pub(crate) fn offset(self) -> i64 {
        i64::from(self.page.saturating_sub(1)) * i64::from(self.page_size)
    }
}

/// Implements a query trait for both backends from one body, for areas whose
/// SQL text is the same on SQLite and PostgreSQL (`$1` placeholders work on
/// both). Inside the body, `self.pool` is the backend's pool.
macro_rules! for_both_backends {
    ($trait:path { $($body:tt)* }) => {
        #[async_trait::async_trait]
        impl $trait for $crate::sqlite::SqliteStore { $($body)* }
        #[async_trait::async_trait]
        impl $trait for $crate::postgres::PgStore { $($body)* }
    };
}
pub(crate) use for_both_backends;
