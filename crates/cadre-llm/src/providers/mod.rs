//! One module per wire format.

pub mod anthropic;
pub mod openai;
pub mod scripted;
mod stream_state;
