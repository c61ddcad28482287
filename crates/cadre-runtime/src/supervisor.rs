//! The one place where Cadre spawns background tasks.
//!
//! Every task declares what happens when the process shuts down
//! ([`OnCancel`]) and what its failure means ([`OnError`]). Shutdown cancels
//! one token, waits for the tasks that asked to finish their work, aborts the
//! rest, and reports what did not stop in time.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// What a task does when shutdown begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCancel {
    /// The task watches its token and finishes in-flight work; shutdown waits
    /// for it (up to the deadline).
    Drain,
    /// The task holds nothing worth finishing; it is aborted at once.
    Abort,
}

/// What a task's failure (an `Err` or a panic) means for the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// The process cannot work without it: log and shut everything down.
    Shutdown,
    /// Log the failure; the rest of the process carries on.
    Log,
}

/// How a task is declared to the supervisor.
#[derive(Debug, Clone, Copy)]
pub struct TaskSpec {
    /// A stable name for logs.
    pub name: &'static str,
    pub on_cancel: OnCancel,
    pub on_error: OnError,
}

impl TaskSpec {
    /// A task the process cannot run without, which drains on shutdown (the
    /// HTTP server, the worker pool).
    pub const fn critical(name: &'static str) -> Self {
        Self {
            name,
            on_cancel: OnCancel::Drain,
            on_error: OnError::Shutdown,
        }
    }

    /// The same task, but its failure is only logged.
    pub const fn with_on_error_log(self) -> Self {
        Self {
            on_error: OnError::Log,
            ..self
        }
    }

    /// A periodic helper (heartbeats, clean-ups) that is aborted on shutdown
    /// and whose failure is logged.
    pub const fn helper(name: &'static str) -> Self {
        Self {
            name,
            on_cancel: OnCancel::Abort,
            on_error: OnError::Log,
        }
    }
}

/// What happened during [`Supervisor::shutdown`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Tasks that were still running at the deadline and were aborted.
    pub timed_out: Vec<&'static str>,
    /// Tasks that failed (returned an error or panicked).
    pub failed: Vec<&'static str>,
}

/// Owns every background task of the process. Cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    shutdown: CancellationToken,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    tasks: JoinSet<()>,
    /// Tasks still running, by a key of our own, so a shutdown that times out
    /// can name them.
    running: HashMap<u64, &'static str>,
    next_key: u64,
    abortable: Vec<AbortHandle>,
    failed: Vec<&'static str>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("shutting_down", &self.shutdown.is_cancelled())
            .finish()
    }
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    pub fn new() -> Self {
        Self {
            shutdown: CancellationToken::new(),
            inner: Arc::default(),
        }
    }

    /// The token cancelled when shutdown begins.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Begins shutdown: every task's token is cancelled.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Resolves once shutdown has begun (by a signal, a call, or a critical
    /// task's failure).
    pub async fn shutdown_requested(&self) {
        self.shutdown.cancelled().await;
    }

    /// Names of the tasks that have failed so far (for health reports).
    pub fn failed_tasks(&self) -> Vec<&'static str> {
        lock(&self.inner).failed.clone()
    }

    /// Runs `task` in the background. It receives a token that is cancelled
    /// when shutdown begins; a [`OnCancel::Drain`] task must return soon after.
    pub fn spawn<F, Fut>(&self, spec: TaskSpec, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let fut = task(self.shutdown.child_token());
        let shutdown = self.shutdown.clone();
        let inner = Arc::clone(&self.inner);
        let mut guard = lock(&self.inner);
        let key = guard.next_key;
        guard.next_key += 1;
        guard.running.insert(key, spec.name);
        let watched = async move {
            // The work runs in its own task so that a panic surfaces as a
            // JoinError here instead of unwinding through the supervisor; the
            // handle aborts it if this watcher is aborted.
            #[expect(
                clippy::disallowed_methods,
                reason = "the supervisor is the one place that spawns"
            )]
            let work = AbortOnDropHandle::new(tokio::spawn(fut));
            let outcome = match work.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("{e:#}")),
                Err(e) if e.is_panic() => Err(format!("panicked: {}", panic_message(e))),
                Err(_) => Ok(()), // aborted by shutdown: expected
            };
            let mut inner = lock(&inner);
            inner.running.remove(&key);
            if let Err(msg) = outcome {
                inner.failed.push(spec.name);
                drop(inner);
                match spec.on_error {
                    OnError::Shutdown => {
                        tracing::error!(task = spec.name, error = %msg, "critical background task failed; shutting down");
                        shutdown.cancel();
                    }
                    OnError::Log => {
                        tracing::error!(task = spec.name, error = %msg, "background task failed")
                    }
                }
            } else {
                tracing::debug!(task = spec.name, "background task finished");
            }
        };
        // Short-lived tasks (a chat turn each) would otherwise pile up
        // until shutdown: forget the ones that have finished.
        while guard.tasks.try_join_next().is_some() {}
        guard.abortable.retain(|h| !h.is_finished());
        let handle = guard.tasks.spawn(watched);
        if spec.on_cancel == OnCancel::Abort {
            guard.abortable.push(handle);
        }
    }

    /// Cancels every task, waits up to `deadline` for the draining ones, and
    /// aborts whatever is left.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.shutdown.cancel();
        let mut tasks = {
            let mut inner = lock(&self.inner);
            for handle in inner.abortable.drain(..) {
                handle.abort();
            }
            std::mem::take(&mut inner.tasks)
        };
        let drained = tokio::time::timeout(deadline, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        let mut inner = lock(&self.inner);
        let mut report = ShutdownReport {
            timed_out: Vec::new(),
            failed: inner.failed.clone(),
        };
        if drained.is_err() {
            report.timed_out = inner.running.values().copied().collect();
            report.timed_out.sort_unstable();
            tracing::warn!(tasks = ?report.timed_out, "background tasks did not stop in time; aborting them");
            tasks.abort_all();
            inner.running.clear();
        }
        report
    }
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned()),
        Err(_) => "cancelled".to_owned(),
    }
}

/// A poisoned lock here only means a thread panicked while holding it; the
/// bookkeeping itself is still sound.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn finished_tasks_are_forgotten_as_new_ones_come() {
        let sup = Supervisor::new();
        for _ in 0..100 {
            sup.spawn(TaskSpec::helper("short"), |_| async { Ok(()) });
            tokio::task::yield_now().await;
        }
        // Each spawn forgets what has finished by then; however long the
        // machine takes to finish the 100, the count comes down (no
        // timing is asserted: the deadline only stops a broken build).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            sup.spawn(TaskSpec::helper("later"), |_| async { Ok(()) });
            let (tasks, handles) = {
                let inner = lock(&sup.inner);
                (inner.tasks.len(), inner.abortable.len())
            };
            if tasks < 10 && handles < 10 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{tasks} tasks and {handles} handles still kept"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn draining_task_finishes_its_work_before_shutdown_returns() {
        let sup = Supervisor::new();
        let done = Arc::new(Mutex::new(false));
        let flag = Arc::clone(&done);
        sup.spawn(TaskSpec::critical("drainer"), |token| async move {
            token.cancelled().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            *lock(&flag) = true;
            Ok(())
        });
        let report = sup.shutdown(Duration::from_secs(5)).await;
        assert_eq!(report, ShutdownReport::default());
        assert!(*lock(&done), "the drain work should have completed");
    }

    #[tokio::test]
    async fn failing_critical_task_requests_shutdown() {
        let sup = Supervisor::new();
        sup.spawn(TaskSpec::critical("server"), |_| async {
            anyhow::bail!("bind failed")
        });
        tokio::time::timeout(Duration::from_secs(5), sup.shutdown_requested())
            .await
            .expect("a critical failure must begin shutdown");
        let report = sup.shutdown(Duration::from_secs(1)).await;
        assert_eq!(report.failed, vec!["server"]);
    }

    #[tokio::test]
    async fn panicking_helper_is_logged_and_does_not_stop_the_process() {
        let sup = Supervisor::new();
        sup.spawn(TaskSpec::helper("flaky"), |_| async { panic!("boom") });
        sup.spawn(TaskSpec::helper("idle"), |_| std::future::pending());
        tokio::time::timeout(Duration::from_secs(5), async {
            while sup.failed_tasks().is_empty() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the panic should be recorded");
        assert!(!sup.shutdown_token().is_cancelled());
        let report = sup.shutdown(Duration::from_secs(1)).await;
        assert_eq!(report.failed, vec!["flaky"]);
        assert!(
            report.timed_out.is_empty(),
            "abortable tasks never time out: {report:?}"
        );
    }

    #[tokio::test]
    async fn task_ignoring_its_token_is_named_and_aborted_at_the_deadline() {
        let sup = Supervisor::new();
        sup.spawn(TaskSpec::critical("stubborn"), |_| std::future::pending());
        let report = sup.shutdown(Duration::from_millis(50)).await;
        assert_eq!(report.timed_out, vec!["stubborn"]);
    }
}
