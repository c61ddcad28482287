//! The HTTP layer tested over real sockets: envelopes, error mapping,
//! middleware, metrics, shutdown.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod envelope;
mod harness;
mod middleware;
mod openapi;
mod shutdown;
