//! The process runtime: one supervisor for every background task, and the
//! signals that start a graceful shutdown.

mod signal;
mod supervisor;

pub use signal::ShutdownSignals;
pub use supervisor::{OnCancel, OnError, ShutdownReport, Supervisor, TaskSpec};
pub use tokio_util::sync::CancellationToken;
