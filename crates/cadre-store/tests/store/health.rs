use cadre_store::Store;
use cadre_testkit::store_test;

store_test!(
    migrations_are_applied_and_rerunning_them_is_a_no_op,
    |db| async move {
        let before = db.store.health().schema_version().await.unwrap();
        assert_eq!(
            before.applied,
            Some(before.latest),
            "TestDb migrates on creation"
        );
        assert!(before.latest >= 1);

        let again = db.store.migrate().await.unwrap();
        assert_eq!(again, before.latest);
    }
);

store_test!(ping_answers_on_an_open_store, |db| async move {
    // No bound on the latency itself: timing belongs in benchmarks.
    let ping = db.store.health().ping().await;
    assert!(ping.is_ok(), "{ping:?}");
});

store_test!(a_second_connection_sees_the_same_schema, |db| async move {
    // What a restart does: open the same database again.
    let reopened = Store::connect(&db.target, &db.options).await.unwrap();
    let v = reopened.health().schema_version().await.unwrap();
    assert_eq!(v.applied, Some(v.latest));
    assert_eq!(reopened.backend_name(), db.store.backend_name());
});

store_test!(
    a_closed_store_reports_the_database_unavailable,
    |db| async move {
        db.store.close().await;
        let err = db.store.health().ping().await.unwrap_err();
        assert!(
            matches!(err, cadre_store::StoreError::Unavailable(_)),
            "{err:?}"
        );
    }
);
