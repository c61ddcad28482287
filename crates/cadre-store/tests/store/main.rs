//! The store test suite: every test runs on SQLite, and on PostgreSQL when
//! `CADRE_TEST_DATABASE_URL` is set.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]
mod health;
mod instances;
