use std::collections::HashSet;
use std::time::Duration;

use cadre_store::areas::jobs::backoff;
use cadre_store::{JobState, NewJob, StoreError};
use cadre_testkit::store_test;
use serde_json::json;
use uuid::Uuid;

use crate::fixtures::now;

fn job(queue: &str) -> NewJob {
    NewJob::new(queue, "test.v1", json!({"n": 1}))
}

const LEASE: Duration = Duration::from_secs(30);

store_test!(
    an_enqueued_job_is_claimed_once_and_completed,
    |db| async move {
        let jobs = db.store.jobs();
        let (row, created) = db.store.enqueue(&job("q")).await.unwrap();
        assert!(created);
        assert_eq!(row.state(), Some(JobState::Available));

        let worker = Uuid::now_v7();
        let claimed = jobs
            .claim("q", 10, LEASE, worker, now(), None)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(
            (
                claimed[0].attempts,
                claimed[0].lease_epoch,
                claimed[0].instance_id
            ),
            (1, 1, Some(worker))
        );
        assert!(
            jobs.claim("q", 10, LEASE, worker, now(), None)
                .await
                .unwrap()
                .is_empty(),
            "a running job is not claimed twice"
        );

        jobs.complete_job(claimed[0].lease(), now()).await.unwrap();
        let done = jobs.job(row.id).await.unwrap().unwrap();
        assert_eq!(done.state(), Some(JobState::Completed));
        assert!(done.finished_at.is_some());
    }
);

store_test!(
    a_unique_key_dedupes_while_pending_but_not_after_completion,
    |db| async move {
        let jobs = db.store.jobs();
        let keyed = NewJob {
            unique_key: Some("sync-repo-1".into()),
            ..job("q")
        };
        let (first, created) = db.store.enqueue(&keyed).await.unwrap();
        let (second, created_again) = db.store.enqueue(&keyed).await.unwrap();
        assert!(created && !created_again);
        assert_eq!(first.id, second.id);
        let claimed = jobs
            .claim("q", 1, LEASE, Uuid::now_v7(), now(), None)
            .await
            .unwrap();
        jobs.complete_job(claimed[0].lease(), now()).await.unwrap();
        let (third, created_third) = db.store.enqueue(&keyed).await.unwrap();
        assert!(created_third, "a finished job no longer blocks its key");
        assert_ne!(third.id, first.id);
    }
);

store_test!(
    a_late_write_by_a_worker_whose_lease_was_taken_over_is_refused,
    |db| async move {
        let jobs = db.store.jobs();
        let (row, _) = db.store.enqueue(&job("q")).await.unwrap();
        let t0 = now();
        let a = jobs
            .claim("q", 1, Duration::from_secs(1), Uuid::now_v7(), t0, None)
            .await
            .unwrap()
            .remove(0);

        // Worker A stalls past its lease; the job is rescued and B takes it.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(jobs.rescue_expired(later).await.unwrap(), 1);
        let b = jobs
            .claim("q", 1, LEASE, Uuid::now_v7(), later, None)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(b.lease_epoch, a.lease_epoch + 1);

        assert!(matches!(
            jobs.complete_job(a.lease(), later).await,
            Err(StoreError::StaleLease)
        ));
        assert!(matches!(
            jobs.heartbeat_job(a.lease(), later).await,
            Err(StoreError::StaleLease)
        ));
        assert!(matches!(
            jobs.fail_job(a.lease(), "late", Some(later), later).await,
            Err(StoreError::StaleLease)
        ));
        jobs.complete_job(b.lease(), later).await.unwrap();
        assert_eq!(
            jobs.job(row.id).await.unwrap().unwrap().state(),
            Some(JobState::Completed)
        );
    }
);

store_test!(
    failures_retry_later_and_end_dead_with_the_last_error,
    |db| async move {
        let jobs = db.store.jobs();
        let (row, _) = db
            .store
            .enqueue(&NewJob {
                max_attempts: 2,
                ..job("q")
            })
            .await
            .unwrap();
        let t0 = now();
        let first = jobs
            .claim("q", 1, LEASE, Uuid::now_v7(), t0, None)
            .await
            .unwrap()
            .remove(0);
        let retry_at = t0 + Duration::from_secs(60);
        assert_eq!(
            jobs.fail_job(first.lease(), "boom 1", Some(retry_at), t0)
                .await
                .unwrap(),
            JobState::Failed
        );
        assert!(
            jobs.claim("q", 1, LEASE, Uuid::now_v7(), t0, None)
                .await
                .unwrap()
                .is_empty(),
            "not before run_at"
        );

        let second = jobs
            .claim("q", 1, LEASE, Uuid::now_v7(), retry_at, None)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(second.attempts, 2);
        assert_eq!(
            jobs.fail_job(second.lease(), "boom 2", Some(retry_at), retry_at)
                .await
                .unwrap(),
            JobState::Dead
        );
        let dead = jobs.job(row.id).await.unwrap().unwrap();
        assert_eq!(
            (dead.state(), dead.last_error.as_deref()),
            (Some(JobState::Dead), Some("boom 2"))
        );

        jobs.retry_job_now(row.id, retry_at).await.unwrap();
        let again = jobs
            .claim("q", 1, LEASE, Uuid::now_v7(), retry_at, None)
            .await
            .unwrap();
        assert_eq!(
            again.len(),
            1,
            "retry-now makes a dead job runnable once more"
        );
    }
);

store_test!(a_busy_org_does_not_starve_the_others, |db| async move {
    let jobs = db.store.jobs();
    let (busy, quiet) = (Uuid::now_v7(), Uuid::now_v7());
    for _ in 0..10 {
        db.store
            .enqueue(&NewJob {
                org_id: Some(busy),
                ..job("q")
            })
            .await
            .unwrap();
    }
    let (quiet_job, _) = db
        .store
        .enqueue(&NewJob {
            org_id: Some(quiet),
            ..job("q")
        })
        .await
        .unwrap();
    let claimed = jobs
        .claim("q", 2, LEASE, Uuid::now_v7(), now(), None)
        .await
        .unwrap();
    let orgs: HashSet<_> = claimed.iter().map(|j| j.org_id).collect();
    assert_eq!(orgs.len(), 2, "one job of each org: {claimed:?}");
    assert!(claimed.iter().any(|j| j.id == quiet_job.id));
});

store_test!(priority_runs_first_within_an_org, |db| async move {
    let jobs = db.store.jobs();
    db.store.enqueue(&job("q")).await.unwrap();
    let (urgent, _) = db
        .store
        .enqueue(&NewJob {
            priority: 10,
            ..job("q")
        })
        .await
        .unwrap();
    let claimed = jobs
        .claim("q", 1, LEASE, Uuid::now_v7(), now(), None)
        .await
        .unwrap();
    assert_eq!(claimed[0].id, urgent.id);
});

store_test!(
    a_dead_instances_jobs_are_rescued_and_cancel_and_purge_work,
    |db| async move {
        let jobs = db.store.jobs();
        let dead_instance = Uuid::now_v7();
        let (a, _) = db.store.enqueue(&job("q")).await.unwrap();
        let (b, _) = db.store.enqueue(&job("q")).await.unwrap();
        jobs.claim("q", 2, LEASE, dead_instance, now(), None)
            .await
            .unwrap();
        assert_eq!(jobs.rescue_instance(dead_instance, now()).await.unwrap(), 2);
        assert_eq!(jobs.queue_depth("q").await.unwrap().0, 2);

        jobs.cancel_job(a.id, now()).await.unwrap();
        assert!(
            matches!(
                jobs.cancel_job(a.id, now()).await,
                Err(StoreError::NotFound)
            ),
            "cancelled once"
        );
        let claimed = jobs
            .claim("q", 10, LEASE, Uuid::now_v7(), now(), None)
            .await
            .unwrap();
        assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![b.id]);
        jobs.complete_job(claimed[0].lease(), now()).await.unwrap();
        assert_eq!(
            jobs.purge_jobs(now() + Duration::from_secs(1))
                .await
                .unwrap(),
            2
        );
        assert!(jobs.job(a.id).await.unwrap().is_none());
    }
);

store_test!(
    concurrent_workers_complete_every_job_exactly_once,
    |db| async move {
        let total = 200;
        for i in 0..total {
            db.store
                .enqueue(&NewJob {
                    org_id: Some(Uuid::from_u128(i % 7)),
                    ..job("load")
                })
                .await
                .unwrap();
        }
        let mut workers = Vec::new();
        for _ in 0..6 {
            let store = db.store.clone();
            workers.push(tokio::spawn(async move {
                let me = Uuid::now_v7();
                let mut done = Vec::new();
                loop {
                    let batch = store
                        .jobs()
                        .claim("load", 5, LEASE, me, now(), None)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        return done;
                    }
                    for j in batch {
                        store.jobs().complete_job(j.lease(), now()).await.unwrap();
                        done.push(j.id);
                    }
                }
            }));
        }
        let mut seen = Vec::new();
        for w in workers {
            seen.extend(w.await.unwrap());
        }
        let unique: HashSet<_> = seen.iter().collect();
        assert_eq!(seen.len(), total as usize, "no job ran twice");
        assert_eq!(unique.len(), total as usize, "no job was lost");
    }
);

#[test]
fn backoff_doubles_with_jitter_and_is_capped() {
    let base = Duration::from_secs(1);
    assert_eq!(backoff(base, 1, 1.0), Duration::from_secs(1));
    assert_eq!(backoff(base, 3, 1.0), Duration::from_secs(4));
    assert_eq!(backoff(base, 3, 0.0), Duration::from_secs(2));
    assert_eq!(backoff(base, 40, 1.0), Duration::from_secs(3600));
}

store_test!(
    a_released_job_is_available_again_without_losing_an_attempt,
    |db| async move {
        let jobs = db.store.jobs();
        let (row, _) = db
            .store
            .enqueue(&NewJob {
                max_attempts: 1,
                ..job("q")
            })
            .await
            .unwrap();
        let claimed = jobs
            .claim("q", 1, LEASE, Uuid::now_v7(), now(), None)
            .await
            .unwrap()
            .remove(0);
        jobs.release_job(claimed.lease(), now()).await.unwrap();
        let again = jobs
            .claim("q", 1, LEASE, Uuid::now_v7(), now(), None)
            .await
            .unwrap()
            .remove(0);
        assert_eq!((again.id, again.attempts), (row.id, 1));
        // A failure that is not worth retrying is dead at once.
        assert_eq!(
            jobs.fail_job(again.lease(), "bad payload", None, now())
                .await
                .unwrap(),
            JobState::Dead
        );
    }
);

store_test!(
    an_enqueue_wakes_waiting_workers_here_and_in_other_processes,
    |db| async move {
        // Another "process": a second pool on the same database.
        let other = cadre_store::Store::connect(&db.target, &db.options)
            .await
            .unwrap();
        let listener = other.job_listener().map(tokio::spawn);
        let wakeups = if listener.is_some() {
            other.job_wakeups()
        } else {
            db.store.job_wakeups()
        };
        let woken = wakeups.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        // Give the listener time to LISTEN before the enqueue: retry the enqueue
        // until the waiter wakes, bounded.
        let result = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                db.store.enqueue(&job("wake")).await.unwrap();
                if tokio::time::timeout(Duration::from_millis(200), woken.as_mut())
                    .await
                    .is_ok()
                {
                    return;
                }
            }
        })
        .await;
        assert!(result.is_ok(), "no wake-up arrived");
        if let Some(l) = listener {
            l.abort();
        }
        other.close().await;
    }
);

store_test!(a_batch_is_enqueued_in_one_transaction, |db| async move {
    let batch: Vec<NewJob> = (0..50).map(|_| job("batch")).collect();
    assert_eq!(db.store.enqueue_many(&batch).await.unwrap(), 50);
    assert_eq!(db.store.jobs().queue_depth("batch").await.unwrap().0, 50);
    let claimed = db
        .store
        .jobs()
        .claim("batch", 100, LEASE, Uuid::now_v7(), now(), None)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 50);
});

store_test!(
    the_per_org_limit_holds_across_claims_and_spares_system_jobs,
    |db| async move {
        let jobs = db.store.jobs();
        let (busy, quiet) = (Uuid::now_v7(), Uuid::now_v7());
        let in_org = |org| NewJob {
            org_id: Some(org),
            ..job("q")
        };
        for _ in 0..5 {
            db.store.enqueue(&in_org(busy)).await.unwrap();
        }
        db.store.enqueue(&in_org(quiet)).await.unwrap();
        for _ in 0..3 {
            db.store.enqueue(&job("q")).await.unwrap();
        }
        let count = |rows: &[cadre_store::JobRow], org: Option<Uuid>| {
            rows.iter().filter(|j| j.org_id == org).count()
        };
        let first = jobs
            .claim("q", 20, LEASE, Uuid::now_v7(), now(), Some(2))
            .await
            .unwrap();
        assert_eq!(count(&first, Some(busy)), 2, "{first:?}");
        assert_eq!(count(&first, Some(quiet)), 1);
        assert_eq!(count(&first, None), 3, "system jobs are not limited");

        let second = jobs
            .claim("q", 20, LEASE, Uuid::now_v7(), now(), Some(2))
            .await
            .unwrap();
        assert!(second.is_empty(), "busy already runs 2: {second:?}");

        let done = first.iter().find(|j| j.org_id == Some(busy)).unwrap();
        jobs.complete_job(done.lease(), now()).await.unwrap();
        let third = jobs
            .claim("q", 20, LEASE, Uuid::now_v7(), now(), Some(2))
            .await
            .unwrap();
        assert_eq!(count(&third, Some(busy)), 1, "one slot freed: {third:?}");
    }
);

store_test!(
    an_org_already_running_jobs_yields_to_one_that_is_not,
    |db| async move {
        let jobs = db.store.jobs();
        let (running, waiting) = (Uuid::now_v7(), Uuid::now_v7());
        for _ in 0..4 {
            db.store
                .enqueue(&NewJob {
                    org_id: Some(running),
                    ..job("q")
                })
                .await
                .unwrap();
        }
        let first = jobs
            .claim("q", 2, LEASE, Uuid::now_v7(), now(), None)
            .await
            .unwrap();
        assert_eq!(first.len(), 2);
        let (late, _) = db
            .store
            .enqueue(&NewJob {
                org_id: Some(waiting),
                ..job("q")
            })
            .await
            .unwrap();
        let next = jobs
            .claim("q", 1, LEASE, Uuid::now_v7(), now(), None)
            .await
            .unwrap();
        assert_eq!(
            next[0].id, late.id,
            "the org with nothing running goes first, though its job is newer"
        );
    }
);

store_test!(
    a_batch_of_completions_skips_the_stale_leases,
    |db| async move {
        let jobs = db.store.jobs();
        for _ in 0..3 {
            db.store.enqueue(&job("q")).await.unwrap();
        }
        let t0 = now();
        let claimed = jobs
            .claim("q", 3, Duration::from_secs(1), Uuid::now_v7(), t0, None)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 3);
        // One lease expires and another worker takes the job over.
        let later = t0 + Duration::from_secs(5);
        jobs.heartbeat_job(claimed[0].lease(), later + LEASE)
            .await
            .unwrap();
        jobs.heartbeat_job(claimed[1].lease(), later + LEASE)
            .await
            .unwrap();
        assert_eq!(jobs.rescue_expired(later).await.unwrap(), 1);
        let retaken = jobs
            .claim("q", 1, LEASE, Uuid::now_v7(), later, None)
            .await
            .unwrap();
        assert_eq!(retaken[0].id, claimed[2].id);

        let leases: Vec<_> = claimed.iter().map(|j| j.lease()).collect();
        let done: HashSet<_> = jobs
            .complete_jobs(&leases, later)
            .await
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(done, HashSet::from([claimed[0].id, claimed[1].id]));
        let still = jobs.job(claimed[2].id).await.unwrap().unwrap();
        assert_eq!(still.state(), Some(JobState::Running));
        assert_eq!(still.lease_epoch, retaken[0].lease_epoch);
    }
);
