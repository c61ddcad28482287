//! Every provider against a local server speaking its real wire format:
//! the same suite for each, plus the gateway's retries and fallbacks.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "test code; skip reasons are printed"
)]
#![allow(
    clippy::disallowed_methods,
    reason = "fake servers run for the test's lifetime"
)]

mod fake;
mod gateway;
mod llamacpp;
mod suite;
