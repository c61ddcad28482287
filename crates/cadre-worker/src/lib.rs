//! The worker runtime: claims jobs from the queue and runs the handler
//! registered for each job's kind.
//!
//! Per queue, a loop claims as many jobs as it has free slots, waits for a
//! wake-up (or a slow poll) when there is nothing to do, and runs each job
//! with a heartbeat that extends its lease and a timeout that cancels it.
//! A handler's error retries the job with backoff; a [`JobError::Fatal`]
//! makes it dead at once. On shutdown the loop stops claiming, lets running
//! jobs finish until the drain deadline, and gives back the rest.

mod pool;
pub mod probe;
pub mod scheduler;

pub use pool::{Handler, HandlerFuture, JobContext, JobError, Registry, Worker, WorkerConfig};
