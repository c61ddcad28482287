//! Cron schedules: each instance checks for due ticks every second and
//! races to fire them; the store's compare-and-set lets exactly one win per
//! tick, and the job is enqueued in the same transaction.

use std::str::FromStr as _;
use std::time::Duration;

use cadre_runtime::{Supervisor, TaskSpec};
use cadre_store::{CatchUp, NewJob, NewSchedule, ScheduleRow, Store};
use time::OffsetDateTime;

/// How often due schedules are looked for.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// A tick this late counts as missed (for [`CatchUp::Skip`]).
const MISSED_AFTER: time::Duration = time::Duration::seconds(60);

/// The first tick of `pattern` strictly after `after`, in UTC (normalized
/// for storage: 1 µs past the tick).
pub fn next_tick(pattern: &str, after: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let cron = croner::Cron::from_str(pattern)
        .map_err(|e| format!("invalid cron pattern {pattern:?}: {e}"))?;
    let start =
        chrono::DateTime::<chrono::Utc>::from_timestamp(after.unix_timestamp(), after.nanosecond())
            .ok_or_else(|| "time out of range".to_owned())?;
    let next = cron
        .find_next_occurrence(&start, false)
        .map_err(|e| format!("no next tick for {pattern:?}: {e}"))?;
    OffsetDateTime::from_unix_timestamp(next.timestamp())
        .map(cadre_types::time::normalize)
        .map_err(|e| e.to_string())
}

/// Creates or replaces a schedule; its first tick is the next one from now.
pub async fn save(store: &Store, mut schedule: NewSchedule) -> Result<ScheduleRow, String> {
    let now = cadre_types::time::now();
    schedule.next_run_at = next_tick(&schedule.cron, now)?;
    store
        .schedules()
        .save_schedule(&schedule, now)
        .await
        .map_err(|e| e.to_string())
}

/// Fires every due schedule once; returns how many jobs this instance
/// enqueued (ticks fired by another instance are not counted).
pub async fn fire_due(store: &Store, now: OffsetDateTime) -> Result<usize, String> {
    let mut fired = 0;
    for schedule in store
        .schedules()
        .due_schedules(now)
        .await
        .map_err(|e| e.to_string())?
    {
        let next = match next_tick(&schedule.cron, now) {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(schedule = %schedule.name, error = %e, "schedule cannot be evaluated; skipping");
                continue;
            }
        };
        let missed = now - schedule.next_run_at > MISSED_AFTER;
        let run = !missed || CatchUp::parse(&schedule.catch_up) == CatchUp::Once;
        let job = run.then(|| NewJob {
            org_id: schedule.org_id,
            // One job per tick even if this tick were fired twice.
            unique_key: Some(format!(
                "schedule:{}:{}",
                schedule.id,
                schedule.next_run_at.unix_timestamp()
            )),
            ..NewJob::new(&schedule.queue, &schedule.kind, schedule.payload.0.clone())
        });
        match store
            .schedules()
            .fire_schedule(schedule.id, schedule.next_run_at, next, job.as_ref(), now)
            .await
        {
            Ok(Some(_)) if run => {
                fired += 1;
                if missed {
                    tracing::info!(schedule = %schedule.name, "missed ticks caught up with one run");
                }
            }
            Ok(Some(_)) => tracing::info!(schedule = %schedule.name, "missed ticks skipped"),
            Ok(None) => {} // another instance fired this tick
            Err(e) => {
                tracing::warn!(schedule = %schedule.name, error = %e, "firing a schedule failed; will retry")
            }
        }
    }
    if fired > 0 {
        store.job_wakeups().notify_waiters();
    }
    Ok(fired)
}

/// Checks for due schedules every second until shutdown.
pub fn start(store: Store, supervisor: &Supervisor) {
    supervisor.spawn(TaskSpec::helper("scheduler"), move |shutdown| async move {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = tick.tick() => {}
            }
            if let Err(e) = fire_due(&store, cadre_types::time::now()).await {
                tracing::warn!(error = %e, "checking schedules failed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_tick_is_strictly_after_and_bad_patterns_say_why() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(); // 2027-01-15T08:00:00Z
        let next = next_tick("*/15 * * * *", at).unwrap();
        assert_eq!(next.unix_timestamp(), 1_800_000_000 + 900);
        assert!(
            next_tick("not a cron", at)
                .unwrap_err()
                .contains("invalid cron pattern")
        );
    }
}
