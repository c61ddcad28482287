//! The bus across instances: one Redis pub/sub channel. A Lua script takes
//! the next id and publishes in one step, so ids are gap-free and every
//! subscriber receives them in order. Pub/sub delivers at most once; a lost
//! connection shows up as a gap in the ids, and a replay across it is
//! refused rather than silently incomplete.

use std::time::Duration;

use anyhow::Context as _;
use cadre_runtime::{Supervisor, TaskSpec};
use futures_util::StreamExt as _;
use tokio::sync::mpsc;

use crate::bus::{Realtime, clock_seq};
use crate::event::{Event, Notice, Pending};

const SEQ_KEY: &str = "cadre:events:seq";
const CHANNEL: &str = "cadre:events";

/// A restarted Redis has lost the counter: it starts again from the clock,
/// so ids keep growing. (Lua numbers are doubles: `%.0f` writes the id
/// whole, where `..` would write 1.79e+15; ids stay below 2^53.)
const PUBLISH: &str = "if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[2]) end \
     local s = redis.call('INCR', KEYS[1]) \
     redis.call('PUBLISH', KEYS[2], string.format('%.0f', s) .. ' ' .. ARGV[1]) \
     return s";

#[derive(Clone)]
pub(crate) struct RedisLink {
    client: redis::Client,
    conn: redis::aio::ConnectionManager,
}

impl RedisLink {
    pub(crate) async fn connect(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("parsing the Redis URL")?;
        let conn = redis::aio::ConnectionManager::new(client.clone())
            .await
            .context("connecting to Redis for the event bus")?;
        Ok(Self { client, conn })
    }

    /// Subscribes (before returning, so no event published after start-up
    /// is missed) and starts the tasks that publish this instance's notices
    /// and deliver everyone's events.
    pub(crate) async fn start(
        &self,
        supervisor: &Supervisor,
        notices: mpsc::Receiver<Pending>,
        bus: Realtime,
    ) -> anyhow::Result<()> {
        let first = self.subscribe().await?;
        let link = self.clone();
        let receiver = bus.clone();
        supervisor.spawn(
            TaskSpec::helper("event-bus-redis-subscriber"),
            move |shutdown| async move {
                let mut stream = Some(first);
                loop {
                    if let Some(mut messages) = stream.take() {
                        loop {
                            let msg = tokio::select! {
                                () = shutdown.cancelled() => return Ok(()),
                                msg = messages.next() => msg,
                            };
                            let Some(msg) = msg else { break };
                            match parse(msg.get_payload_bytes()) {
                                Some((seq, notice)) => receiver.deliver(Event::new(seq, notice)),
                                None => tracing::warn!("ignored a malformed message on the Redis event channel"),
                            }
                        }
                        tracing::warn!("lost the Redis event subscription; reconnecting");
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    match link.subscribe().await {
                        Ok(s) => {
                            tracing::info!("event bus subscribed to Redis again; events published meanwhile were missed");
                            stream = Some(s);
                        }
                        Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot subscribe to Redis events; retrying"),
                    }
                }
            },
        );
        let link = self.clone();
        supervisor.spawn(
            TaskSpec::helper("event-bus-redis-publisher"),
            move |shutdown| async move { link.publish_all(notices, shutdown).await },
        );
        Ok(())
    }

    async fn subscribe(&self) -> anyhow::Result<redis::aio::PubSubStream> {
        let mut pubsub = self
            .client
            .get_async_pubsub()
            .await
            .context("opening a Redis pub/sub connection")?;
        pubsub
            .subscribe(CHANNEL)
            .await
            .context("subscribing to the Redis event channel")?;
        Ok(pubsub.into_on_message())
    }

    async fn publish_all(
        &self,
        mut notices: mpsc::Receiver<Pending>,
        shutdown: cadre_runtime::CancellationToken,
    ) -> anyhow::Result<()> {
        let script = redis::Script::new(PUBLISH);
        let mut conn = self.conn.clone();
        loop {
            let notice = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                notice = notices.recv() => notice,
            };
            let Some(notice) = notice else {
                return Ok(());
            };
            let body = notice.to_json();
            let sent = script
                .key(SEQ_KEY)
                .key(CHANNEL)
                .arg(body)
                .arg(clock_seq())
                .invoke_async::<u64>(&mut conn)
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, kind = %notice.kind, "could not publish an event to Redis; dropped");
            }
        }
    }

    pub(crate) async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// `"<seq> <notice JSON>"` (bounded by its publisher already).
fn parse(payload: &[u8]) -> Option<(u64, Pending)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (seq, body) = text.split_once(' ')?;
    let notice: Notice = serde_json::from_str(body).ok()?;
    Some((seq.parse().ok()?, notice.encode(usize::MAX)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::channel::Scope;

    #[test]
    fn parses_what_the_script_publishes_and_rejects_garbage() {
        let notice = Notice::new("task_created", Scope::org(Uuid::now_v7()), json!({"a": 1}))
            .encode(usize::MAX);
        let text = format!("17 {}", notice.to_json());
        assert_eq!(parse(text.as_bytes()), Some((17, notice)));
        assert_eq!(parse(b"17"), None);
        assert_eq!(parse(b"x {}"), None);
        assert_eq!(parse(b"17 {not json"), None);
        assert_eq!(parse(&[0xff, 0xfe]), None);
    }
}
