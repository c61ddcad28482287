//! Local fan-out: which connection listens to which channel, and a bounded
//! queue per connection. Delivery costs one look-up per channel an event
//! names, not one check per connection; a connection whose queue is full is
//! told it fell behind (and is then disconnected by its owner) instead of
//! growing memory.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};

use tokio::sync::mpsc;
use uuid::Uuid;

use crate::channel::Channel;
use crate::event::Event;

type Listeners = HashMap<Channel, HashMap<u64, Listener>>;

struct Listener {
    /// The org the subscription was authorized in: an event of another org
    /// is never delivered, whatever its scope says.
    org: Uuid,
    queue: mpsc::Sender<Arc<Event>>,
    behind: Arc<Behind>,
}

impl Listener {
    /// Queues events in order; a full queue marks the connection behind.
    fn queue_all(&self, events: &[Arc<Event>]) {
        for event in events {
            if let Err(mpsc::error::TrySendError::Full(_)) = self.queue.try_send(event.clone()) {
                self.behind.flag.store(true, Ordering::Release);
                return;
            }
        }
    }
}

/// The listeners of each channel `event` reaches that has any.
fn matched<'a>(
    listeners: &'a Listeners,
    event: &Event,
) -> impl Iterator<Item = &'a HashMap<u64, Listener>> {
    event
        .scope
        .channels()
        .filter_map(|c| listeners.get(&c).filter(|m| !m.is_empty()))
}

/// The listeners of the one channel of `event` that has any, if only one
/// has.
fn sole_channel<'a>(listeners: &'a Listeners, event: &Event) -> Option<&'a HashMap<u64, Listener>> {
    let mut matched = matched(listeners, event);
    let map = matched.next()?;
    matched.next().is_none().then_some(map)
}

/// Delivers an event to every connection listening on a channel it
/// reaches, once per connection.
fn deliver_one(listeners: &Listeners, event: &Arc<Event>) {
    let mut matched = matched(listeners, event);
    let Some(first) = matched.next() else {
        return;
    };
    let rest: Vec<_> = matched.collect();
    let mut seen = HashSet::new();
    for (id, listener) in std::iter::once(first).chain(rest.iter().copied()).flatten() {
        if listener.org != event.scope.org {
            continue;
        }
        // Only several channels can name one connection twice.
        if !rest.is_empty() && !seen.insert(*id) {
            continue;
        }
        listener.queue_all(std::slice::from_ref(event));
    }
}

/// Set once a connection's queue overflowed.
#[derive(Default)]
struct Behind {
    flag: AtomicBool,
}

#[derive(Default)]
pub(crate) struct Hub {
    listeners: RwLock<Listeners>,
    next_id: AtomicU64,
    connections: AtomicU64,
}

impl Hub {
    /// Delivers events in order. A run of events that reach the same
    /// listeners through one channel (a burst in one project: a template
    /// applied, many tasks changed in one transaction) is queued listener by
    /// listener, so each connection is woken once with the whole run
    /// waiting and writes it with one flush; anything else goes event by
    /// event.
    pub(crate) fn deliver_all(&self, events: &[Arc<Event>]) {
        let listeners = read(&self.listeners);
        let sole: Vec<_> = events.iter().map(|e| sole_channel(&listeners, e)).collect();
        let mut at = 0;
        while let Some(first) = events.get(at) {
            let Some(map) = sole[at] else {
                deliver_one(&listeners, first);
                at += 1;
                continue;
            };
            let run = events[at..]
                .iter()
                .zip(&sole[at..])
                .take_while(|(e, m)| {
                    e.scope.org == first.scope.org && m.is_some_and(|m| std::ptr::eq(m, map))
                })
                .count();
            for listener in map.values().filter(|l| l.org == first.scope.org) {
                listener.queue_all(&events[at..at + run]);
            }
            at += run;
        }
    }

    pub(crate) fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

/// One connection's view of the bus: the channels it listens to and its
/// bounded queue of events. Dropping it stops every delivery to it.
pub struct Inbox {
    id: u64,
    hub: Weak<Hub>,
    sender: mpsc::Sender<Arc<Event>>,
    queue: mpsc::Receiver<Arc<Event>>,
    behind: Arc<Behind>,
    channels: HashSet<Channel>,
    /// Ids already sent by a replay, which the live queue may hold again.
    replayed: BTreeSet<u64>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("id", &self.id)
            .field("channels", &self.channels.len())
            .finish()
    }
}

impl Inbox {
    pub(crate) fn open(hub: &Arc<Hub>, capacity: usize) -> Self {
        let (sender, queue) = mpsc::channel(capacity.max(1));
        hub.connections.fetch_add(1, Ordering::Relaxed);
        Self {
            id: hub.next_id.fetch_add(1, Ordering::Relaxed),
            hub: Arc::downgrade(hub),
            sender,
            queue,
            behind: Arc::default(),
            channels: HashSet::new(),
            replayed: BTreeSet::new(),
        }
    }

    /// Starts delivering `channel`'s events of `org` (the caller has
    /// checked that this connection may see them).
    pub fn listen(&mut self, channel: Channel, org: Uuid) {
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        self.channels.insert(channel);
        write(&hub.listeners).entry(channel).or_default().insert(
            self.id,
            Listener {
                org,
                queue: self.sender.clone(),
                behind: self.behind.clone(),
            },
        );
    }

    /// Stops delivering `channel`; returns whether it was listened to.
    pub fn unlisten(&mut self, channel: Channel) -> bool {
        if !self.channels.remove(&channel) {
            return false;
        }
        if let Some(hub) = self.hub.upgrade() {
            remove(&hub, channel, self.id);
        }
        true
    }

    /// Whether the connection listens to `channel`.
    pub fn listens(&self, channel: Channel) -> bool {
        self.channels.contains(&channel)
    }

    /// The channels the connection listens to.
    pub fn channels(&self) -> impl Iterator<Item = Channel> + '_ {
        self.channels.iter().copied()
    }

    /// How many channels the connection listens to.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// The next event for this connection (never one a replay already
    /// gave it).
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        loop {
            let event = self.queue.recv().await?;
            if let Some(event) = self.fresh(event) {
                return Some(event);
            }
        }
    }

    /// The next event if one is queued already (to send several at once).
    pub fn try_recv(&mut self) -> Option<Arc<Event>> {
        loop {
            let event = self.queue.try_recv().ok()?;
            if let Some(event) = self.fresh(event) {
                return Some(event);
            }
        }
    }

    /// `event`, unless a replay already sent it.
    fn fresh(&mut self, event: Arc<Event>) -> Option<Arc<Event>> {
        if self.replayed.is_empty() {
            return Some(event);
        }
        // The queue is in id order: replayed ids below this one will not
        // come again.
        self.replayed = self.replayed.split_off(&event.seq);
        (!self.replayed.remove(&event.seq)).then_some(event)
    }

    /// Notes events a replay sent, so the live queue does not repeat them.
    pub(crate) fn replayed(&mut self, events: &[Arc<Event>]) {
        self.replayed.extend(events.iter().map(|e| e.seq));
    }

    /// Whether events were dropped because the queue was full: the
    /// connection is too slow and must be closed. (The queue was full when
    /// it happened, so the next [`Inbox::recv`] returns at once and the
    /// owner finds out there.)
    pub fn is_behind(&self) -> bool {
        self.behind.flag.load(Ordering::Acquire)
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            for channel in self.channels.drain() {
                remove(&hub, channel, self.id);
            }
            hub.connections.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn remove(hub: &Hub, channel: Channel, id: u64) {
    let mut listeners = write(&hub.listeners);
    if let Some(ids) = listeners.get_mut(&channel) {
        ids.remove(&id);
        if ids.is_empty() {
            listeners.remove(&channel);
        }
    }
}

// A panic while holding the lock leaves the map consistent (every change is
// one insert or remove), so a poisoned lock is still usable.
fn read(lock: &RwLock<Listeners>) -> std::sync::RwLockReadGuard<'_, Listeners> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write(lock: &RwLock<Listeners>) -> std::sync::RwLockWriteGuard<'_, Listeners> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::channel::Scope;
    use crate::event::Notice;

    fn event(seq: u64, scope: Scope) -> Arc<Event> {
        Arc::new(Event::new(
            seq,
            Notice::new("x", scope, json!({})).encode(usize::MAX),
        ))
    }

    #[tokio::test]
    async fn delivers_once_per_connection_and_only_within_the_org() {
        let hub = Arc::new(Hub::default());
        let org = Uuid::now_v7();
        let task = Uuid::now_v7();
        let project = Uuid::now_v7();
        let mut both = Inbox::open(&hub, 8);
        both.listen(Channel::Task(task), org);
        both.listen(Channel::Project(project), org);
        let mut other_org = Inbox::open(&hub, 8);
        other_org.listen(Channel::Task(task), Uuid::now_v7());
        let scope = Scope {
            org,
            project: Some(project),
            task: Some(task),
            ..Scope::default()
        };
        hub.deliver_all(&[event(1, scope.clone())]);
        hub.deliver_all(&[event(2, Scope::org(org))]);
        assert_eq!(both.recv().await.unwrap().seq, 1);
        assert!(
            both.queue.try_recv().is_err(),
            "delivered twice or off-channel"
        );
        assert!(other_org.queue.try_recv().is_err(), "crossed organizations");

        assert!(both.unlisten(Channel::Task(task)));
        assert!(!both.unlisten(Channel::Task(task)));
        drop(other_org);
        assert_eq!(hub.connections(), 1);
        drop(both);
        assert!(read(&hub.listeners).is_empty());
    }

    #[tokio::test]
    async fn a_full_queue_marks_the_connection_behind() {
        let hub = Arc::new(Hub::default());
        let org = Uuid::now_v7();
        let mut slow = Inbox::open(&hub, 2);
        slow.listen(Channel::Org(org), org);
        let mut fast = Inbox::open(&hub, 16);
        fast.listen(Channel::Org(org), org);
        for seq in 1..=5 {
            hub.deliver_all(&[event(seq, Scope::org(org))]);
        }
        assert!(
            slow.is_behind(),
            "the slow connection is told it fell behind"
        );
        assert_eq!(
            slow.recv().await.unwrap().seq,
            1,
            "what was queued is still there"
        );
        for seq in 1..=5 {
            assert_eq!(fast.recv().await.unwrap().seq, seq);
        }
        assert!(!fast.is_behind());
    }

    #[tokio::test]
    async fn a_burst_reaches_each_connection_in_order_and_only_within_its_org() {
        let hub = Arc::new(Hub::default());
        let org = Uuid::now_v7();
        let project = Uuid::now_v7();
        let in_project = |task: Uuid| Scope {
            org,
            project: Some(project),
            task: Some(task),
            ..Scope::default()
        };
        let watched = Uuid::now_v7();
        let mut project_only = Inbox::open(&hub, 16);
        project_only.listen(Channel::Project(project), org);
        let mut also_task = Inbox::open(&hub, 16);
        also_task.listen(Channel::Project(project), org);
        also_task.listen(Channel::Task(watched), org);
        let mut foreign = Inbox::open(&hub, 16);
        foreign.listen(Channel::Project(project), Uuid::now_v7());
        let mut slow = Inbox::open(&hub, 2);
        slow.listen(Channel::Project(project), org);
        // A run through the project channel, an event that also reaches a
        // task channel (delivered on its own, once), then another run.
        let mut burst: Vec<_> = (1..=3)
            .map(|seq| event(seq, in_project(Uuid::now_v7())))
            .collect();
        burst.push(event(4, in_project(watched)));
        burst.extend((5..=6).map(|seq| event(seq, in_project(Uuid::now_v7()))));
        hub.deliver_all(&burst);
        for inbox in [&mut project_only, &mut also_task] {
            for seq in 1..=6 {
                assert_eq!(inbox.recv().await.unwrap().seq, seq);
            }
            assert!(inbox.queue.try_recv().is_err(), "delivered twice");
        }
        assert!(foreign.queue.try_recv().is_err(), "crossed organizations");
        assert!(slow.is_behind(), "a full queue is noticed within a run");
    }
}
