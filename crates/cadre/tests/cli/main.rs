//! The `cadre` binary run as a user runs it: real processes, real signals.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod admin;
mod agents;
mod browser;
mod config;
mod process;
mod serve;
mod web;
mod worker;
