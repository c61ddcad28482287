//! `system.probe.v1`: a job that does nothing (or waits a while) so an
//! operator can check the whole path — enqueue, claim, heartbeat, complete —
//! on a running installation, and tests can hold a worker mid-job.

use std::time::Duration;

use crate::{JobContext, JobError};

pub const KIND: &str = "system.probe.v1";

/// Longest wait a probe may ask for.
const MAX_SLEEP: Duration = Duration::from_secs(600);

/// Waits `payload.sleepMs` (at most ten minutes), then succeeds; stops early
/// if the run is cancelled.
pub async fn run(ctx: JobContext) -> Result<(), JobError> {
    let sleep = ctx
        .job
        .payload
        .0
        .get("sleepMs")
        .and_then(serde_json::Value::as_u64)
        .map_or(Duration::ZERO, Duration::from_millis);
    if sleep > MAX_SLEEP {
        return Err(JobError::Fatal(format!(
            "sleepMs may be at most {}",
            MAX_SLEEP.as_millis()
        )));
    }
    tokio::select! {
        () = tokio::time::sleep(sleep) => Ok(()),
        () = ctx.cancel.cancelled() => Err(JobError::Retry("cancelled".into())),
    }
}
