//! The replay buffer: the most recent events, bounded by count and bytes, so
//! a client that reconnects with `lastEventId` receives what it missed.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::event::Event;

/// A client's `lastEventId` is older than what the buffer still holds (or
/// from before a gap in delivery, or unknown to this bus): it must reload
/// the state over the REST API instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayUnavailable;

#[derive(Debug)]
pub struct Ring {
    events: VecDeque<Arc<Event>>,
    bytes: usize,
    max_events: usize,
    max_bytes: usize,
    /// The last sequence id seen (0: none yet).
    last: u64,
    /// The buffer holds every event from this id on (a gap in delivery,
    /// such as a lost Redis connection, moves it forward).
    complete_from: u64,
}

impl Ring {
    pub fn new(max_events: usize, max_bytes: usize) -> Self {
        Self {
            events: VecDeque::new(),
            bytes: 0,
            max_events: max_events.max(1),
            max_bytes,
            last: 0,
            complete_from: 0,
        }
    }

    /// Adds the next event. An id not after the last one means the
    /// sequence restarted (the Redis that numbers events lost its counter):
    /// what the buffer held can no longer be placed, so it is emptied.
    pub fn push(&mut self, event: Arc<Event>) {
        if self.last != 0 && event.seq <= self.last {
            self.events.clear();
            self.bytes = 0;
        }
        if self.last == 0 || event.seq != self.last + 1 {
            self.complete_from = event.seq;
        }
        self.last = event.seq;
        self.bytes += event.size();
        self.events.push_back(event);
        while self.events.len() > self.max_events || self.bytes > self.max_bytes {
            match self.events.pop_front() {
                Some(old) => self.bytes -= old.size(),
                None => break,
            }
        }
    }

    /// The last sequence id seen (0 before the first event).
    pub fn head(&self) -> u64 {
        self.last
    }

    /// Every event after `after` that `wanted` accepts, oldest first.
    pub fn after(
        &self,
        after: u64,
        wanted: impl Fn(&Event) -> bool,
    ) -> Result<Vec<Arc<Event>>, ReplayUnavailable> {
        if after == self.last {
            return Ok(Vec::new());
        }
        if after > self.last {
            return Err(ReplayUnavailable);
        }
        let oldest = self.events.front().map_or(self.last + 1, |e| e.seq);
        if after + 1 < oldest.max(self.complete_from) {
            return Err(ReplayUnavailable);
        }
        let start = self.events.partition_point(|e| e.seq <= after);
        Ok(self
            .events
            .range(start..)
            .filter(|e| wanted(e))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::channel::Scope;
    use crate::event::Notice;

    fn event(seq: u64) -> Arc<Event> {
        Arc::new(Event::new(
            seq,
            Notice::new("x", Scope::org(Uuid::nil()), json!({"n": seq})).encode(usize::MAX),
        ))
    }

    fn seqs(events: &[Arc<Event>]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn replays_what_followed_the_last_seen_event() {
        let mut ring = Ring::new(100, usize::MAX);
        for seq in 10..20 {
            ring.push(event(seq));
        }
        assert_eq!(
            seqs(&ring.after(14, |_| true).unwrap()),
            [15, 16, 17, 18, 19]
        );
        assert_eq!(
            seqs(&ring.after(9, |e| e.seq % 2 == 0).unwrap()),
            [10, 12, 14, 16, 18]
        );
        assert!(ring.after(19, |_| true).unwrap().is_empty());
        // Older than the buffer, or an id this bus never gave.
        assert_eq!(
            ring.after(8, |_| true).map(|e| seqs(&e)),
            Err(ReplayUnavailable)
        );
        assert_eq!(
            ring.after(25, |_| true).map(|e| seqs(&e)),
            Err(ReplayUnavailable)
        );
    }

    #[test]
    fn stays_within_its_bounds() {
        let mut ring = Ring::new(5, usize::MAX);
        for seq in 1..=20 {
            ring.push(event(seq));
        }
        assert_eq!(
            seqs(&ring.after(15, |_| true).unwrap()),
            [16, 17, 18, 19, 20]
        );
        assert_eq!(
            ring.after(14, |_| true).map(|e| seqs(&e)),
            Err(ReplayUnavailable)
        );

        let size = event(20).size();
        let mut ring = Ring::new(1000, size * 3);
        for seq in 1..=20 {
            ring.push(event(seq));
        }
        assert_eq!(seqs(&ring.after(17, |_| true).unwrap()), [18, 19, 20]);
        assert_eq!(
            ring.after(16, |_| true).map(|e| seqs(&e)),
            Err(ReplayUnavailable)
        );
    }

    #[test]
    fn a_gap_in_delivery_makes_older_replays_unavailable() {
        let mut ring = Ring::new(100, usize::MAX);
        for seq in [1, 2, 3, 7, 8] {
            ring.push(event(seq));
        }
        // Events 4 to 6 never arrived here: a client that saw 2 cannot be
        // given a complete picture.
        assert_eq!(
            ring.after(2, |_| true).map(|e| seqs(&e)),
            Err(ReplayUnavailable)
        );
        assert_eq!(seqs(&ring.after(7, |_| true).unwrap()), [8]);
        assert_eq!(seqs(&ring.after(6, |_| true).unwrap()), [7, 8]);
    }

    #[test]
    fn a_restarted_sequence_empties_the_buffer() {
        let mut ring = Ring::new(100, usize::MAX);
        for seq in [100, 101, 102, 5, 6] {
            ring.push(event(seq));
        }
        assert_eq!(ring.head(), 6);
        assert_eq!(seqs(&ring.after(5, |_| true).unwrap()), [6]);
        // An id from before the restart is unknown now.
        assert_eq!(
            ring.after(101, |_| true).map(|e| seqs(&e)),
            Err(ReplayUnavailable)
        );
        assert_eq!(seqs(&ring.after(4, |_| true).unwrap()), [5, 6]);
    }
}
