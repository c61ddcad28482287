//! Shutdown signals: SIGTERM (what orchestrators send) and SIGINT (Ctrl-C).
//!
//! Handlers are installed by [`ShutdownSignals::install`], before the
//! process starts serving, so a signal that arrives during start-up is not
//! lost to the default action (which would kill the process uncleanly).

/// Installed signal handlers, waited on with [`ShutdownSignals::recv`].
pub struct ShutdownSignals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl std::fmt::Debug for ShutdownSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownSignals").finish_non_exhaustive()
    }
}

impl ShutdownSignals {
    /// Installs the handlers now. Must run inside the Tokio runtime.
    pub fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let term = signal(SignalKind::terminate())
                .inspect_err(|e| tracing::warn!(error = %e, "cannot listen for SIGTERM"))
                .ok();
            let int = signal(SignalKind::interrupt())
                .inspect_err(|e| tracing::warn!(error = %e, "cannot listen for SIGINT"))
                .ok();
            Self { term, int }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Resolves when the process is asked to stop, naming the signal.
    pub async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            match (&mut self.term, &mut self.int) {
                (Some(term), Some(int)) => tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                },
                (Some(term), None) => {
                    term.recv().await;
                    "SIGTERM"
                }
                (None, Some(int)) => {
                    int.recv().await;
                    "SIGINT"
                }
                (None, None) => ctrl_c().await,
            }
        }
        #[cfg(not(unix))]
        {
            ctrl_c().await
        }
    }
}

async fn ctrl_c() -> &'static str {
    match tokio::signal::ctrl_c().await {
        Ok(()) => "Ctrl-C",
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for Ctrl-C; only an internal error will stop the process");
            std::future::pending().await
        }
    }
}
