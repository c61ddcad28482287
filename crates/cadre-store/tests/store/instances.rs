use cadre_store::{InstanceIn, StoreError};
use cadre_testkit::store_test;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn instance(started_at: OffsetDateTime) -> InstanceIn {
    InstanceIn {
        id: Uuid::now_v7(),
        hostname: "test-host".into(),
        pid: 4242,
        version: "0.0.0-test".into(),
        roles: "api,worker".into(),
        started_at,
    }
}

/// Whole seconds, so both backends round-trip it exactly.
fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

store_test!(
    registered_instance_is_listed_as_it_was_registered,
    |db| async move {
        let i = instance(at(1_800_000_000));
        db.store.instances().register(&i).await.unwrap();

        let live = db
            .store
            .instances()
            .list_live(at(1_799_999_000))
            .await
            .unwrap();
        assert_eq!(live.len(), 1);
        let row = &live[0];
        assert_eq!(
            (row.id, row.hostname.as_str(), row.pid, row.roles.as_str()),
            (i.id, "test-host", 4242, "api,worker")
        );
        assert_eq!(row.started_at, i.started_at);
        assert_eq!(
            row.heartbeat_at, i.started_at,
            "registration counts as the first heartbeat"
        );
    }
);

store_test!(
    registering_the_same_id_twice_is_a_conflict,
    |db| async move {
        let i = instance(at(1_800_000_000));
        db.store.instances().register(&i).await.unwrap();
        let err = db.store.instances().register(&i).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    }
);

store_test!(
    stale_instances_are_not_live_and_are_reaped,
    |db| async move {
        let t0 = at(1_800_000_000);
        let old = instance(t0);
        let fresh = instance(t0);
        db.store.instances().register(&old).await.unwrap();
        db.store.instances().register(&fresh).await.unwrap();
        assert!(
            db.store
                .instances()
                .heartbeat(fresh.id, t0 + Duration::seconds(60))
                .await
                .unwrap()
        );

        let cutoff = t0 + Duration::seconds(30);
        let live: Vec<Uuid> = db
            .store
            .instances()
            .list_live(cutoff)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(live, vec![fresh.id]);

        let reaped = db.store.instances().reap(cutoff).await.unwrap();
        assert_eq!(reaped, vec![old.id]);
        assert!(
            !db.store.instances().heartbeat(old.id, t0).await.unwrap(),
            "a reaped instance learns it is gone"
        );
    }
);

store_test!(deregistered_instance_disappears, |db| async move {
    let i = instance(at(1_800_000_000));
    db.store.instances().register(&i).await.unwrap();
    db.store.instances().deregister(i.id).await.unwrap();
    assert!(
        db.store
            .instances()
            .list_live(at(0))
            .await
            .unwrap()
            .is_empty()
    );
});
