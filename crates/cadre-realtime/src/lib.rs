//! Cadre's real-time layer: the event bus that carries committed changes
//! (task changes, execution steps, approvals, chat) to WebSocket and SSE
//! subscribers.
//!
//! - [`Notice`]: what a publisher announces, with its [`Scope`] (org and
//!   the resources it concerns).
//! - [`Realtime`]: the bus. In process by default; through Redis pub/sub
//!   when `redis.url` is set, so every `cadre serve` instance delivers every
//!   event. Events carry a sequence id; the most recent are kept (bounded)
//!   for replay to clients that reconnect with `lastEventId`.
//! - [`Inbox`]: one connection's subscriptions and its bounded queue; a
//!   connection that falls behind is told so and is closed by its owner.
//!
//! The bus carries notifications, not state: the database stays the truth,
//! and a client that cannot be given a complete replay reloads over REST.

mod bus;
mod channel;
mod event;
mod hub;
mod presence;
mod redis;
mod ring;
pub mod store_events;

pub use bus::{Limits, Realtime};
pub use channel::{BadChannel, Channel, Scope};
pub use event::{Event, Notice, Pending};
pub use hub::Inbox;
pub use ring::ReplayUnavailable;
