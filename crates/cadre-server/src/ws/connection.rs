//! One WebSocket connection's loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use cadre_identity::permissions::Permission;
use cadre_realtime::{Channel, Event, Inbox};
use futures_util::SinkExt as _;
use uuid::Uuid;

use super::channels;
use super::protocol::{self, ClientMessage, close};
use crate::AppState;
use crate::auth::Principal;
use crate::error::ErrorCode;

/// SPEC §7.4: WebSocket messages are at most 1 MiB.
pub(crate) const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// The server pings this often…
const PING_EVERY: Duration = Duration::from_secs(30);
/// …and closes a connection silent for this long.
const IDLE_AFTER: Duration = Duration::from_secs(90);
/// Access to every subscribed channel is checked again this often, so a
/// member removed from an org stops receiving its events.
const RECHECK_EVERY: Duration = Duration::from_secs(60);
/// A send that takes longer means the client stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// A client may send this many messages at once…
const MESSAGE_BURST: f64 = 50.0;
/// …and this many a second after that.
const MESSAGES_PER_SECOND: f64 = 20.0;
/// Events written before one flush.
const FORWARD_BATCH: usize = 64;

/// What ends a connection.
enum End {
    /// The client closed or the socket failed: nothing more to send.
    Gone,
    /// Close with this code and reason.
    Close(u16, &'static str),
}

/// One authenticated connection.
pub(crate) struct Connection {
    pub(super) state: AppState,
    pub(super) principal: Principal,
    pub(super) inbox: Inbox,
    /// The connection's `lastEventId` (from the URL), used by subscriptions
    /// that do not give their own.
    pub(super) last_event_id: Option<u64>,
    /// Tasks this connection announced presence on, to say it left.
    pub(super) present: HashMap<Uuid, Uuid>,
    last_heard: Instant,
    /// Messages the client may still send now (refilled over time).
    allowance: f64,
}

impl Connection {
    pub(crate) fn new(state: AppState, principal: Principal, last_event_id: Option<u64>) -> Self {
        let inbox = state.realtime().inbox();
        Self {
            state,
            principal,
            inbox,
            last_event_id,
            present: HashMap::new(),
            last_heard: Instant::now(),
            allowance: MESSAGE_BURST,
        }
    }

    /// Runs until the client leaves, misbehaves or the server stops.
    pub(crate) async fn run(mut self, mut socket: WebSocket) {
        let shutdown = self.state.supervisor().shutdown_token();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let mut recheck = tokio::time::interval(RECHECK_EVERY);
        recheck.tick().await;
        let end = loop {
            // Biased, events first: a wake-up for an event polls only that
            // branch (a fan-out wakes every subscriber at once).
            let step = tokio::select! {
                biased;
                event = self.inbox.recv() => match event {
                    Some(event) => self.forward(&mut socket, event).await,
                    None => Err(End::Gone),
                },
                () = shutdown.cancelled() => Err(End::Close(close::GOING_AWAY, "the server is shutting down; reconnect with lastEventId")),
                // Boxed: handling a message needs a large future (database
                // calls), which would otherwise sit in every idle
                // connection's task.
                incoming = socket.recv() => Box::pin(self.incoming(&mut socket, incoming)).await,
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > IDLE_AFTER {
                        Err(End::Close(close::IDLE, "no messages or pongs for 90 seconds"))
                    } else {
                        send(&mut socket, Message::Ping(Default::default())).await
                    }
                }
                _ = recheck.tick() => Box::pin(self.recheck(&mut socket)).await,
            };
            if let Err(end) = step {
                break end;
            }
        };
        self.leave();
        if let End::Close(code, reason) = end {
            tracing::debug!(code, reason, "closing a WebSocket");
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            let _ =
                tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
        }
    }

    /// Sends `first` and whatever else is queued (up to a batch), with one
    /// flush.
    async fn forward(&mut self, socket: &mut WebSocket, first: Arc<Event>) -> Result<(), End> {
        let mut next = Some(first);
        let mut sent = 0;
        while let Some(event) = next {
            if self.inbox.is_behind() {
                return Err(End::Close(
                    close::SLOW_CONSUMER,
                    "slow consumer: events were not read fast enough; reconnect with lastEventId",
                ));
            }
            if let Ok(text) = Utf8Bytes::try_from(event.wire.clone()) {
                within(socket.feed(Message::Text(text))).await?;
            }
            sent += 1;
            next = if sent < FORWARD_BATCH {
                self.inbox.try_recv()
            } else {
                None
            };
        }
        within(socket.flush()).await
    }

    async fn incoming(
        &mut self,
        socket: &mut WebSocket,
        incoming: Option<Result<Message, axum::Error>>,
    ) -> Result<(), End> {
        let message = match incoming {
            None | Some(Ok(Message::Close(_))) => return Err(End::Gone),
            Some(Err(e)) => {
                // tungstenite refuses a message over the limit before
                // reading it; anything else is a broken connection.
                let text = e.to_string();
                return if text.contains("too long")
                    || text.contains("Message too big")
                    || text.contains("Space limit")
                {
                    Err(End::Close(close::TOO_BIG, "messages are limited to 1 MiB"))
                } else {
                    tracing::debug!(error = %text, "WebSocket read failed");
                    Err(End::Gone)
                };
            }
            Some(Ok(message)) => message,
        };
        let elapsed = self.last_heard.elapsed().as_secs_f64();
        self.last_heard = Instant::now();
        self.allowance = (self.allowance + elapsed * MESSAGES_PER_SECOND).min(MESSAGE_BURST);
        if matches!(message, Message::Text(_) | Message::Binary(_)) {
            if self.allowance < 1.0 {
                return send_text(
                    socket,
                    protocol::error(
                        "RATE_LIMIT_EXCEEDED",
                        "at most 20 messages a second (bursts of 50); this one was not handled",
                        None,
                    ),
                )
                .await;
            }
            self.allowance -= 1.0;
        }
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                return send_text(
                    socket,
                    protocol::error(
                        "VALIDATION_ERROR",
                        "send JSON text messages, not binary ones",
                        None,
                    ),
                )
                .await;
            }
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
            Message::Close(_) => return Err(End::Gone),
        };
        let msg: ClientMessage = match serde_json::from_str(&text) {
            Ok(msg) => msg,
            Err(e) => {
                let message = format!(
                    "not a message: {e}; send {{\"type\": …, \"payload\": {{…}}, \"requestId\"?: …}}"
                );
                return send_text(socket, protocol::error("VALIDATION_ERROR", &message, None))
                    .await;
            }
        };
        let request_id = msg.request_id.clone();
        let replies = match self.handle(msg).await {
            Ok(replies) => replies,
            Err(e) => vec![protocol::error(
                &protocol::code_name(e.code),
                &e.message,
                request_id.as_ref(),
            )],
        };
        for reply in replies {
            send_text(socket, reply).await?;
        }
        Ok(())
    }

    /// Checks every subscription again; a refused one is dropped with an
    /// `error`, and a connection that can see nothing any more is closed.
    async fn recheck(&mut self, socket: &mut WebSocket) -> Result<(), End> {
        let subscribed: Vec<Channel> = self.inbox.channels().collect();
        let mut lost = Vec::new();
        for channel in subscribed {
            // Only a refusal withdraws access; a database that does not
            // answer right now does not.
            if let Err(e) =
                channels::authorize(&self.state, &self.principal, channel, Permission::View).await
                && matches!(
                    e.code,
                    ErrorCode::NotFound | ErrorCode::Forbidden | ErrorCode::InvalidApiKey
                )
            {
                lost.push(channel);
            }
        }
        if lost.is_empty() {
            return Ok(());
        }
        for channel in &lost {
            self.inbox.unlisten(*channel);
            let message = format!("access to {channel} was withdrawn; unsubscribed");
            send_text(socket, protocol::error("NOT_FOUND", &message, None)).await?;
        }
        if self.inbox.channel_count() == 0 {
            return Err(End::Close(
                close::ACCESS_LOST,
                "access to every subscribed channel was withdrawn",
            ));
        }
        Ok(())
    }
}

async fn send(socket: &mut WebSocket, message: Message) -> Result<(), End> {
    within(socket.send(message)).await
}

/// Runs a write, giving up on a client that has not taken it within
/// `SEND_TIMEOUT`. Most writes complete at once; only one that waits gets a
/// timer (a timer per message is a large share of a fan-out's cost).
async fn within(
    write: impl std::future::Future<Output = Result<(), axum::Error>>,
) -> Result<(), End> {
    tokio::pin!(write);
    let written = match futures_util::poll!(&mut write) {
        std::task::Poll::Ready(written) => written,
        std::task::Poll::Pending => match tokio::time::timeout(SEND_TIMEOUT, write).await {
            Ok(written) => written,
            Err(_) => {
                return Err(End::Close(
                    close::SLOW_CONSUMER,
                    "slow consumer: a message could not be sent within 10 seconds",
                ));
            }
        },
    };
    written.map_err(|_| End::Gone)
}

async fn send_text(socket: &mut WebSocket, text: String) -> Result<(), End> {
    send(socket, Message::Text(text.into())).await
}
