//! Schedules fire once per tick, however many instances race for it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::time::Duration;

use cadre_store::{CatchUp, NewSchedule, Store};
use cadre_testkit::store_test;
use cadre_worker::scheduler;
use serde_json::json;

fn every_minute(name: &str, catch_up: CatchUp) -> NewSchedule {
    NewSchedule {
        name: name.into(),
        cron: "* * * * *".into(),
        queue: "sched".into(),
        kind: "report.v1".into(),
        payload: json!({"report": name}),
        org_id: None,
        catch_up,
        next_run_at: cadre_types::time::now(),
    }
}

async fn queued(store: &Store) -> u64 {
    store.jobs().queue_depth("sched").await.unwrap().0
}

store_test!(two_instances_fire_each_tick_once, |db| async move {
    let row = scheduler::save(&db.store, every_minute("weekly-report", CatchUp::Skip))
        .await
        .unwrap();
    let other = Store::connect(&db.target, &db.options).await.unwrap();
    let at = row.next_run_at + Duration::from_secs(1);
    let (a, b) = tokio::join!(
        scheduler::fire_due(&db.store, at),
        scheduler::fire_due(&other, at)
    );
    assert_eq!(
        a.unwrap() + b.unwrap(),
        1,
        "exactly one instance fired the tick"
    );
    assert_eq!(queued(&db.store).await, 1);
    // The next tick fires again, once.
    let next = at + Duration::from_secs(60);
    let (a, b) = tokio::join!(
        scheduler::fire_due(&db.store, next),
        scheduler::fire_due(&other, next)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(queued(&db.store).await, 2);
    other.close().await;
});

store_test!(missed_ticks_are_skipped_or_run_once, |db| async move {
    let skip = scheduler::save(&db.store, every_minute("skipper", CatchUp::Skip))
        .await
        .unwrap();
    let late = skip.next_run_at + Duration::from_secs(600);
    assert_eq!(
        scheduler::fire_due(&db.store, late).await.unwrap(),
        0,
        "ten minutes late: skipped"
    );
    assert_eq!(queued(&db.store).await, 0);
    // Out of the way: had a minute boundary passed since it was saved, its
    // next tick could fall due again at the catcher's late time below.
    assert!(
        db.store
            .schedules()
            .delete_schedule("skipper")
            .await
            .unwrap()
    );

    scheduler::save(&db.store, every_minute("catcher", CatchUp::Once))
        .await
        .unwrap();
    let row = scheduler::save(&db.store, every_minute("catcher", CatchUp::Once))
        .await
        .unwrap();
    let late = row.next_run_at + Duration::from_secs(600);
    assert_eq!(
        scheduler::fire_due(&db.store, late).await.unwrap(),
        1,
        "caught up with one run"
    );
    assert_eq!(
        scheduler::fire_due(&db.store, late).await.unwrap(),
        0,
        "and only one"
    );
    let due = db.store.schedules().due_schedules(late).await.unwrap();
    assert!(
        due.is_empty(),
        "every schedule moved past the late time: {due:?}"
    );
});
