//! The store test suite: every test runs on SQLite, and on PostgreSQL when
//! `CADRE_TEST_DATABASE_URL` is set.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]
#![allow(
    clippy::disallowed_methods,
    reason = "store tests build tenants and spawn tasks directly"
)]

mod api_keys;
mod audit;
mod executions;
mod fixtures;
mod health;
mod instances;
mod job_state_machine;
mod jobs;
mod orgs;
mod projects;
mod sessions;
mod users;
mod work_graph;
