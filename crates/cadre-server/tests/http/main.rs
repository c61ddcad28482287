//! The HTTP layer tested over real sockets: envelopes, error mapping,
//! middleware, metrics, shutdown.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]
#![allow(
    clippy::disallowed_methods,
    reason = "tests spawn fake servers and build tenants directly"
)]

mod accounts;
mod api_keys;
mod audit;
mod chat;
mod envelope;
mod harness;
mod isolation;
mod mail;
mod middleware;
mod models;
mod openapi;
mod orgs;
mod realtime;
mod redis_limits;
mod routes;
mod shutdown;
mod smtp_sink;
mod tasks;
mod usage;
