//! The worker runtime against a real queue on both databases.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cadre_runtime::Supervisor;
use cadre_store::{JobState, NewJob, Store};
use cadre_testkit::store_test;
use cadre_worker::{JobError, Registry, Worker, WorkerConfig};
use serde_json::json;
use uuid::Uuid;

fn config(queue: &str) -> WorkerConfig {
    WorkerConfig {
        queues: vec![(queue.to_owned(), 4)],
        lease: Duration::from_secs(30),
        per_org: None,
        heartbeat: Duration::from_millis(100),
        poll: Duration::from_millis(200),
        rescue_every: Duration::from_millis(200),
        drain: Duration::from_millis(300),
    }
}

fn fast(queue: &str, kind: &str, n: i64) -> NewJob {
    NewJob {
        backoff_base: Duration::from_millis(1),
        max_attempts: 3,
        ..NewJob::new(queue, kind, json!({ "n": n }))
    }
}

async fn wait_for(store: &Store, id: Uuid, state: JobState) -> cadre_store::JobRow {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let row = store.jobs().job(id).await.unwrap().unwrap();
            if row.state() == Some(state) {
                return row;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("job {id} never reached {state:?}"))
}

store_test!(every_job_runs_exactly_once_and_completes, |db| async move {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let registry = Registry::default().on("count.v1", move |ctx| {
        let record = Arc::clone(&record);
        async move {
            record.lock().unwrap().push(ctx.job.id);
            Ok(())
        }
    });
    let supervisor = Supervisor::new();
    Worker::new(db.store.clone(), registry, config("work"), Uuid::now_v7()).start(&supervisor);
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(
            db.store
                .enqueue(&fast("work", "count.v1", n))
                .await
                .unwrap()
                .0
                .id,
        );
    }
    for id in &ids {
        wait_for(&db.store, *id, JobState::Completed).await;
    }
    supervisor.shutdown(Duration::from_secs(5)).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 40, "each job ran once");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 40);
});

store_test!(
    a_failing_job_is_retried_and_a_fatal_one_is_dead,
    |db| async move {
        let tries = Arc::new(Mutex::new(0));
        let counter = Arc::clone(&tries);
        let registry = Registry::default()
            .on("flaky.v1", move |_| {
                let counter = Arc::clone(&counter);
                async move {
                    let mut n = counter.lock().unwrap();
                    *n += 1;
                    if *n == 1 {
                        Err(JobError::Retry("first try fails".into()))
                    } else {
                        Ok(())
                    }
                }
            })
            .on("broken.v1", |_| async {
                Err(JobError::Fatal("payload makes no sense".into()))
            });
        let supervisor = Supervisor::new();
        Worker::new(db.store.clone(), registry, config("r"), Uuid::now_v7()).start(&supervisor);
        let flaky = db
            .store
            .enqueue(&fast("r", "flaky.v1", 1))
            .await
            .unwrap()
            .0
            .id;
        let broken = db
            .store
            .enqueue(&fast("r", "broken.v1", 2))
            .await
            .unwrap()
            .0
            .id;
        let unknown = db
            .store
            .enqueue(&fast("r", "nobody-handles.v1", 3))
            .await
            .unwrap()
            .0
            .id;
        assert_eq!(
            wait_for(&db.store, flaky, JobState::Completed)
                .await
                .attempts,
            2
        );
        let dead = wait_for(&db.store, broken, JobState::Dead).await;
        assert_eq!(
            (dead.attempts, dead.last_error.as_deref()),
            (1, Some("payload makes no sense"))
        );
        let unhandled = wait_for(&db.store, unknown, JobState::Dead).await;
        assert!(unhandled.last_error.unwrap().contains("no handler"));
        supervisor.shutdown(Duration::from_secs(5)).await;
    }
);

store_test!(
    a_job_over_its_timeout_is_cancelled_and_retried_later,
    |db| async move {
        let cancelled = Arc::new(Mutex::new(false));
        let flag = Arc::clone(&cancelled);
        let registry = Registry::default().on("slow.v1", move |ctx| {
            let flag = Arc::clone(&flag);
            async move {
                ctx.cancel.cancelled().await;
                *flag.lock().unwrap() = true;
                Ok(())
            }
        });
        let supervisor = Supervisor::new();
        Worker::new(db.store.clone(), registry, config("t"), Uuid::now_v7()).start(&supervisor);
        let job = NewJob {
            timeout: Duration::from_secs(1),
            max_attempts: 1,
            ..fast("t", "slow.v1", 1)
        };
        let id = db.store.enqueue(&job).await.unwrap().0.id;
        let dead = wait_for(&db.store, id, JobState::Dead).await;
        assert!(dead.last_error.unwrap().contains("timed out"));
        supervisor.shutdown(Duration::from_secs(5)).await;
    }
);

store_test!(shutdown_gives_unfinished_jobs_back, |db| async move {
    let started = Arc::new(tokio::sync::Notify::new());
    let signal = Arc::clone(&started);
    let registry = Registry::default().on("endless.v1", move |ctx| {
        let signal = Arc::clone(&signal);
        async move {
            signal.notify_one();
            ctx.cancel.cancelled().await;
            Err(JobError::Retry("cancelled".into()))
        }
    });
    let supervisor = Supervisor::new();
    Worker::new(db.store.clone(), registry, config("d"), Uuid::now_v7()).start(&supervisor);
    let id = db
        .store
        .enqueue(&fast("d", "endless.v1", 1))
        .await
        .unwrap()
        .0
        .id;
    tokio::time::timeout(Duration::from_secs(10), started.notified())
        .await
        .unwrap();
    supervisor.shutdown(Duration::from_secs(5)).await;
    let row = db.store.jobs().job(id).await.unwrap().unwrap();
    assert_eq!(
        (row.state(), row.attempts),
        (Some(JobState::Available), 0),
        "released, attempt not counted"
    );
});
