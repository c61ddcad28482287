//! The WebSocket at `/ws` (SPEC §6): one task per connection, which reads
//! the client's messages, forwards the bus events of the channels it
//! subscribed to, keeps the connection alive and closes it with a clear code
//! when it must (slow consumer, idle, access lost, shutdown).
//!
//! Memory per connection is bounded: events wait in the inbox's bounded
//! queue, and a client that does not read them fast enough is disconnected
//! (4008) rather than buffered for.

mod channels;
mod connection;
pub(crate) mod protocol;
mod requests;

pub(crate) use connection::{Connection, MAX_MESSAGE_BYTES};
