//! Group commit on SQLite: the step commits of concurrent executions are
//! written together, one transaction (one WAL sync) for all that are
//! waiting, each in a savepoint so one refused step does not take the
//! others with it — instead of each waiting its turn for the single write
//! lock. PostgreSQL commits concurrent transactions in parallel and shares
//! WAL flushes itself; funnelling them through one connection measured
//! slower there (docs/benchmarks.md), so steps commit directly.
//!
//! There is no background task: the first committer to find nobody leading
//! leads, writing batches until the queue is empty; the others wait for
//! their outcome. A leader that is dropped mid-batch (its job timed out)
//! hands leadership back, and the steps it held see an error and are taken
//! again from the database's state.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use cadre_store::{StepCommit, Store, StoreError};
use cadre_types::Tenant;
use tokio::sync::oneshot;

/// Most steps in one transaction.
const MAX_BATCH: usize = 128;

type Waiting = (Tenant, StepCommit, oneshot::Sender<Result<(), StoreError>>);

#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Vec<Waiting>>,
    leading: AtomicBool,
}

/// Gives leadership back however the leader's future ends.
struct Leadership<'a>(&'a AtomicBool);

impl Drop for Leadership<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl GroupCommit {
    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Commits one step, together with whatever other steps are waiting.
    pub(crate) async fn commit(
        &self,
        store: &Store,
        tenant: Tenant,
        commit: StepCommit,
    ) -> Result<(), StoreError> {
        if store.backend_name() != "sqlite" {
            return store.executions().commit_step(tenant, &commit).await;
        }
        let (reply, outcome) = oneshot::channel();
        self.queue().push((tenant, commit, reply));
        // Lead while there is work and nobody else leads. Checking the queue
        // after giving leadership back closes the gap in which a step is
        // queued just as the leader finds the queue empty.
        while !self.queue().is_empty()
            && self
                .leading
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            let _lead = Leadership(&self.leading);
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
    match store.executions().commit_steps(&steps).await {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(outcome);
            }
        }
        // The transaction itself failed: each step on its own, so each
        // gets its own answer.
        Err(e) => {
            tracing::warn!(error = %e, steps = steps.len(), "a group commit failed; committing its steps one by one");
            for ((tenant, commit), reply) in steps.iter().zip(replies) {
                let _ = reply.send(store.executions().commit_step(*tenant, commit).await);
            }
        }
    }
}
