//! `cadre worker` processes: a worker killed with SIGKILL mid-job loses the
//! job to another worker once its lease expires, and its late result is
//! refused.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cadre_store::{JobState, NewJob, Store, StoreError, Target};
use serde_json::json;

use crate::process::cadre;

fn start_worker(data: &std::path::Path) -> Child {
    let mut cmd = cadre(data);
    cmd.env("CADRE_WORKERS_LEASE_SECS", "2")
        .arg("worker")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn().unwrap()
}

async fn wait_until(
    store: &Store,
    id: uuid::Uuid,
    pred: impl Fn(&cadre_store::JobRow) -> bool,
) -> cadre_store::JobRow {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let row = store.jobs().job(id).await.unwrap().unwrap();
            if pred(&row) {
                return row;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the job never reached the expected state")
}

#[tokio::test]
async fn a_killed_workers_job_runs_again_and_its_late_result_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    assert!(
        cadre(&data)
            .arg("migrate")
            .output()
            .unwrap()
            .status
            .success()
    );
    let store = Store::connect(&Target::Sqlite(data.join("cadre.db")), &Default::default())
        .await
        .unwrap();
    let job = NewJob::new("default", "system.probe.v1", json!({"sleepMs": 3000}));
    let (row, _) = store.enqueue(&job).await.unwrap();

    let mut first = start_worker(&data);
    let running = wait_until(&store, row.id, |j| j.state() == Some(JobState::Running)).await;
    let old_lease = running.lease();
    // SIGKILL: no drain, no release, no deregistration.
    assert!(
        Command::new("kill")
            .args(["-KILL", &first.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    first.wait().unwrap();

    let mut second = start_worker(&data);
    let done = wait_until(&store, row.id, |j| j.state() == Some(JobState::Completed)).await;
    assert_eq!(
        done.attempts, 2,
        "the job ran again after the lease expired"
    );
    assert!(done.lease_epoch > old_lease.epoch);

    // The killed worker's completion, arriving late with its old epoch.
    let late = store
        .jobs()
        .complete_job(old_lease, cadre_types::time::now())
        .await;
    assert!(matches!(late, Err(StoreError::StaleLease)), "{late:?}");

    assert!(
        Command::new("kill")
            .args(["-TERM", &second.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(second.wait().unwrap().success());
    store.close().await;
}
