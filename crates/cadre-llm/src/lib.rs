//! The model gateway (SPEC §5).
//!
//! One [`Provider`] trait, one module per wire format ([`providers`]): any
//! OpenAI-compatible Chat Completions server, and Anthropic's Messages API.
//! Both stream and call tools. The [`Gateway`] picks the endpoints for a
//! model, retries what retrying can fix, falls back along the chain, and
//! accounts tokens and cost on every call.

pub mod cache;
pub mod catalog;
mod error;
pub mod gateway;
pub mod pricing;
mod provider;
pub mod providers;
mod sse;
pub mod tokens;
mod types;

pub use error::{ErrorKind, LlmError};
pub use gateway::{Endpoint, Gateway, Outcome, RetryPolicy};
pub use provider::{EventStream, Provider};
pub use types::*;
