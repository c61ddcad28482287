//! The [`Realtime`] handle: publish committed changes, open an [`Inbox`] per
//! connection, replay what a reconnecting client missed.
//!
//! Publishing never waits: a notice goes into a bounded outbox and a
//! background task numbers it, keeps it for replay and fans it out. With
//! Redis, the number comes from Redis and every instance (this one too)
//! takes events from one pub/sub channel, so all instances see one order
//! and a `lastEventId` means the same everywhere.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cadre_runtime::{Supervisor, TaskSpec};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::channel::Channel;
use crate::event::{Event, Notice, Pending};
use crate::hub::{Hub, Inbox};
use crate::ring::{ReplayUnavailable, Ring};

/// Most waiting events the in-process bus hands to the hub at once.
const BATCH: usize = 256;

/// The bounds that keep the bus's memory in check.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Events kept for replay…
    pub replay_events: usize,
    /// …and at most this many bytes of them.
    pub replay_bytes: usize,
    /// A payload larger than this is cut to its small fields
    /// ([`Notice::encode`]).
    pub max_event_bytes: usize,
    /// Events queued for one connection before it counts as too slow.
    pub connection_queue: usize,
    /// Notices waiting to be numbered; more are dropped (and counted).
    pub outbox: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // A client away for a few seconds of a busy org catches up; one
            // away longer reloads. (16 MiB of replay was a third of what
            // 10,000 parked executions cost.)
            replay_events: 4_096,
            replay_bytes: 8 << 20,
            max_event_bytes: 64 << 10,
            connection_queue: 256,
            outbox: 65_536,
        }
    }
}

/// The event bus of this process. Cheap to clone.
#[derive(Clone)]
pub struct Realtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Realtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realtime")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

struct Inner {
    outbox: mpsc::Sender<Pending>,
    ring: Mutex<Ring>,
    hub: Arc<Hub>,
    limits: Limits,
    dropped: AtomicU64,
    redis: Option<crate::redis::RedisLink>,
    roster: crate::presence::Roster,
}

impl Realtime {
    /// A bus for this process only (the default, and enough when one
    /// `cadre serve` both serves and runs the workers).
    pub fn memory(supervisor: &Supervisor, limits: Limits) -> Self {
        let (outbox, mut notices) = mpsc::channel(limits.outbox.max(1));
        let bus = Self::with(outbox, limits, None);
        let local = bus.clone();
        supervisor.spawn(TaskSpec::helper("event-bus"), move |shutdown| async move {
            // Ids continue across restarts (they start from the clock), so
            // an id from before a restart is never mistaken for a new one.
            let mut seq = clock_seq();
            // Whatever is waiting is taken together, so a burst (one
            // transaction's events) reaches each connection at once.
            let mut waiting = Vec::with_capacity(BATCH);
            loop {
                let taken = tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    taken = notices.recv_many(&mut waiting, BATCH) => taken,
                };
                if taken == 0 {
                    return Ok(());
                }
                let events = waiting
                    .drain(..)
                    .map(|notice| {
                        seq += 1;
                        Event::new(seq, notice)
                    })
                    .collect();
                local.deliver_all(events);
            }
        });
        bus
    }

    /// The bus the configuration asks for: through the Redis at
    /// `redis_url`, or in process when it is empty.
    pub async fn connect(
        redis_url: &str,
        supervisor: &Supervisor,
        limits: Limits,
    ) -> anyhow::Result<Self> {
        if redis_url.is_empty() {
            Ok(Self::memory(supervisor, limits))
        } else {
            Self::redis(redis_url, supervisor, limits).await
        }
    }

    /// A bus shared by every instance using the Redis at `url`.
    pub async fn redis(url: &str, supervisor: &Supervisor, limits: Limits) -> anyhow::Result<Self> {
        let (outbox, notices) = mpsc::channel(limits.outbox.max(1));
        let link = crate::redis::RedisLink::connect(url).await?;
        let bus = Self::with(outbox, limits, Some(link.clone()));
        link.start(supervisor, notices, bus.clone()).await?;
        Ok(bus)
    }

    fn with(
        outbox: mpsc::Sender<Pending>,
        limits: Limits,
        redis: Option<crate::redis::RedisLink>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                outbox,
                ring: Mutex::new(Ring::new(limits.replay_events, limits.replay_bytes)),
                hub: Arc::default(),
                limits,
                dropped: AtomicU64::new(0),
                redis,
                roster: crate::presence::Roster::default(),
            }),
        }
    }

    /// Announces a committed change. Never waits; if the outbox is full the
    /// notice is dropped and counted (subscribers recover with a reload).
    pub fn publish(&self, notice: Notice) {
        let notice = notice.encode(self.inner.limits.max_event_bytes);
        if let Err(mpsc::error::TrySendError::Full(n)) = self.inner.outbox.try_send(notice) {
            let dropped = self.inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(kind = %n.kind, dropped, "event bus outbox full; an event was dropped");
        }
    }

    /// Numbered events enter here (from the local task or from Redis).
    pub(crate) fn deliver(&self, event: Event) {
        self.deliver_all(vec![event]);
    }

    /// Several numbered events, in order: a burst reaches each connection
    /// together (see [`crate::hub::Hub::deliver_all`]).
    pub(crate) fn deliver_all(&self, events: Vec<Event>) {
        let events: Vec<Arc<Event>> = events.into_iter().map(Arc::new).collect();
        for event in &events {
            if event.kind == "presence_update" {
                self.inner.roster.observe(event);
            }
        }
        {
            let mut ring = lock(&self.inner.ring);
            for event in &events {
                ring.push(event.clone());
            }
        }
        self.inner.hub.deliver_all(&events);
    }

    /// A new connection's inbox.
    pub fn inbox(&self) -> Inbox {
        Inbox::open(&self.inner.hub, self.inner.limits.connection_queue)
    }

    /// Starts delivering `channel` (already authorized for `org`) to
    /// `inbox` and returns the events after `last_event_id` it missed, or
    /// [`ReplayUnavailable`] when they are no longer all known (the
    /// subscription is live either way).
    pub fn subscribe(
        &self,
        inbox: &mut Inbox,
        channel: Channel,
        org: Uuid,
        last_event_id: Option<u64>,
    ) -> Result<Vec<Arc<Event>>, ReplayUnavailable> {
        // Listen first, then read the buffer: an event in between is in
        // both, and the inbox skips the second copy.
        inbox.listen(channel, org);
        let Some(after) = last_event_id else {
            return Ok(Vec::new());
        };
        let missed = lock(&self.inner.ring)
            .after(after, |e| e.scope.org == org && e.scope.reaches(channel))?;
        inbox.replayed(&missed);
        Ok(missed)
    }

    /// Who is on `task` now (`[{user, action, since}]`), from the
    /// presence updates of every instance.
    pub fn present(&self, task: Uuid) -> Vec<serde_json::Value> {
        self.inner.roster.present(task)
    }

    /// The id of the last event this instance saw (0: none yet).
    pub fn head(&self) -> u64 {
        lock(&self.inner.ring).head()
    }

    /// `memory` or `redis`.
    pub fn backend(&self) -> &'static str {
        if self.inner.redis.is_some() {
            "redis"
        } else {
            "memory"
        }
    }

    /// Open connections (inboxes) on this instance.
    pub fn connections(&self) -> u64 {
        self.inner.hub.connections()
    }

    /// Events dropped because the outbox was full.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Whether the bus can deliver: Redis answers when it is used.
    pub async fn check(&self) -> Result<(), String> {
        match &self.inner.redis {
            None => Ok(()),
            Some(link) => link.ping().await,
        }
    }
}

/// The first id of a bus that starts now: milliseconds since the epoch
/// times 1,000, so ids keep growing across restarts at up to 1,000 events
/// per millisecond on average.
pub(crate) fn clock_seq() -> u64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    u64::try_from(ms)
        .unwrap_or(u64::MAX / 2_000)
        .saturating_mul(1_000)
}

fn lock(ring: &Mutex<Ring>) -> std::sync::MutexGuard<'_, Ring> {
    ring.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
