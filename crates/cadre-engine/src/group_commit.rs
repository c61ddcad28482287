//! Group commit: the step commits of concurrent executions are written
//! together, one transaction (one WAL sync) for all that are waiting, with
//! one multi-row statement per table for what they append — instead of each
//! step taking its own transaction and round trips. A refused step (stale
//! lease, moved trace head) writes nothing and does not hold the others back.
//!
//! There is no background task: a committer that finds fewer than the
//! backend's leaders at work leads, writing batches until the queue is
//! empty; the others wait for their outcome. SQLite has one writer, so one
//! leader; PostgreSQL commits transactions in parallel, so as many batches
//! as the store's commit lanes (two) may be in flight
//! (docs/architecture.md). A leader that is dropped mid-batch (its job timed
//! out) hands leadership back, and the steps it held see an error and are
//! taken again from the database's state.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use cadre_store::{StepCommit, StepHead, Store, StoreError};
use cadre_types::Tenant;
use tokio::sync::oneshot;

/// Most steps in one transaction.
const MAX_BATCH: usize = 128;

/// A committed step comes back with its commit, for what is announced.
type Outcome = Result<(StepHead, StepCommit), StoreError>;

type Waiting = (Tenant, StepCommit, oneshot::Sender<Outcome>);

#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Vec<Waiting>>,
    leaders: AtomicUsize,
}

/// Gives leadership back however the leader's future ends.
struct Leadership<'a>(&'a AtomicUsize);

impl Drop for Leadership<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl GroupCommit {
    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a leader's place if one is free.
    fn lead(&self, most: usize) -> Option<Leadership<'_>> {
        self.leaders
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < most).then_some(n + 1)
            })
            .ok()
            .map(|_| Leadership(&self.leaders))
    }

    /// Commits one step, together with whatever other steps are waiting;
    /// returns what others changed on the execution meanwhile, and the
    /// commit.
    pub(crate) async fn commit(
        &self,
        store: &Store,
        tenant: Tenant,
        commit: StepCommit,
    ) -> Outcome {
        let leaders = store.commit_lanes();
        let (reply, outcome) = oneshot::channel();
        self.queue().push((tenant, commit, reply));
        // Lead while there is work and a leader's place is free. Checking
        // the queue after giving leadership back closes the gap in which a
        // step is queued just as a leader finds the queue empty.
        while !self.queue().is_empty() {
            let Some(_lead) = self.lead(leaders) else {
                break;
            };
            loop {
                let batch: Vec<Waiting> = {
                    let mut queue = self.queue();
                    let n = queue.len().min(MAX_BATCH);
                    queue.drain(..n).collect()
                };
                if batch.is_empty() {
                    break;
                }
                write(store, batch).await;
            }
        }
        outcome.await.unwrap_or_else(|_| {
            Err(StoreError::Conflict {
                constraint: "trace_head".into(),
            })
        })
    }
}

async fn write(store: &Store, batch: Vec<Waiting>) {
    let (steps, replies): (Vec<(Tenant, StepCommit)>, Vec<_>) = batch
        .into_iter()
        .map(|(tenant, commit, reply)| ((tenant, commit), reply))
        .unzip();
    let refs: Vec<(Tenant, &StepCommit)> = steps.iter().map(|(t, c)| (*t, c)).collect();
    match store.executions().commit_steps(&refs).await {
        Ok(outcomes) => {
            for ((reply, outcome), (_, commit)) in replies.into_iter().zip(outcomes).zip(steps) {
                let _ = reply.send(outcome.map(|head| (head, commit)));
            }
        }
        // The transaction itself failed: each step on its own, so each
        // gets its own answer.
        Err(e) => {
            tracing::warn!(error = %e, steps = steps.len(), "a group commit failed; committing its steps one by one");
            for ((tenant, commit), reply) in steps.into_iter().zip(replies) {
                let outcome = store.executions().commit_step(tenant, &commit).await;
                let _ = reply.send(outcome.map(|head| (head, commit)));
            }
        }
    }
}
